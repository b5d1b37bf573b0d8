//! rzk-cli driven non-interactively (one command, or a script on stdin) against a real server.

mod harness;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use harness::target::shared_server;

fn cli(server: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rzk-cli"))
        .args(["-server", server, "-timeout", "30000"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rzk-cli");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write script");
    drop(input);
    child.wait_with_output().expect("rzk-cli output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn one_command_sets_the_exit_status() {
    let Some(server) = shared_server() else { return };
    let s = server.connect_string();
    let out = cli(&s, &["create", "/cli1", "hello"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Created /cli1"));
    let out = cli(&s, &["get", "/cli1"], "");
    assert!(out.status.success());
    assert!(text(&out.stdout).lines().any(|l| l == "hello"), "{}", text(&out.stdout));
    let out = cli(&s, &["get", "/cli1/none"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Node does not exist: /cli1/none"));
    let out = cli(&s, &["create", "/cli1", "again"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Node already exists: /cli1"));
}

#[test]
fn a_script_on_stdin_prints_like_zkcli() {
    let Some(server) = shared_server() else { return };
    let script = "\
create /cli2 data
create -e /cli2/eph
create -s /cli2/seq- x
create -c /cli2/cont
create -t 60000 /cli2/ttl
ls /cli2
ls -R /cli2
get -s /cli2
set -v 0 /cli2 new
get /cli2
stat /cli2
getAcl /cli2
setAcl /cli2 world:anyone:cdrwa
getAllChildrenNumber /cli2
getEphemerals /cli2
sync /cli2
addauth digest u:p
whoami
addWatch -m PERSISTENT /cli2
removewatches /cli2
history
deleteall /cli2
ls /cli2
";
    let out = cli(&server.connect_string(), &[], script);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    // The last `ls` fails: the node is gone, so the exit status is 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(stderr.trim(), "Node does not exist: /cli2");
    for want in [
        "Created /cli2",
        "Created /cli2/eph",
        "Created /cli2/seq-0000000001",
        "Created /cli2/cont",
        "Created /cli2/ttl",
        "[cont, eph, seq-0000000001, ttl]",
        "/cli2\n/cli2/cont\n/cli2/eph\n/cli2/seq-0000000001\n/cli2/ttl\n",
        "data\ncZxid = 0x",
        "new\n",
        "dataVersion = 1",
        "numChildren = 4",
        "'world,'anyone\n: cdrwa",
        "4\n",
        "[/cli2/eph]",
        "Sync is OK",
        "Auth scheme: User\nip: 127.0.0.1\ndigest: u",
        "type:PersistentWatchRemoved path:/cli2",
        "19 - removewatches /cli2\n20 - history",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

/// The interactive shell in a real terminal (tmux): prompt, a command and its output, tab
/// completion of a command name and of a znode path, history recall with the up arrow.
#[test]
fn interactive_shell_in_a_terminal() {
    let tmux_missing = Command::new("tmux").arg("-V").output().is_err();
    if !harness::require("tmux", tmux_missing.then(|| "apt-get install tmux".into())) {
        return;
    }
    let Some(server) = shared_server() else { return };
    let s = server.connect_string();
    assert!(cli(&s, &["create", "/tmuxnode", "typed-in-a-terminal"], "").status.success());
    let name = format!("rzk-cli-{}", std::process::id());
    let home = tempfile::tempdir().unwrap();
    let history = home.path().join("history");
    let cmd = format!(
        "env RZK_CLI_HISTORY={} {} -server {s} -timeout 30000",
        history.display(),
        env!("CARGO_BIN_EXE_rzk-cli")
    );
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("tmux");
    let started = tmux(&["new-session", "-d", "-s", &name, "-x", "160", "-y", "40", &cmd]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
        }
    }
    let _kill = Kill(name.clone());
    let screen = || text(&tmux(&["capture-pane", "-p", "-t", &name]).stdout);
    let wait_for = |needle: &str| {
        harness::wait_until(std::time::Duration::from_secs(10), || screen().contains(needle))
    };
    assert!(wait_for("]"), "no prompt:\n{}", screen());
    // "ge<Tab>" completes the command to "get", "/tmux<Tab>" completes the path.
    tmux(&["send-keys", "-t", &name, "ge", "Tab"]);
    tmux(&["send-keys", "-t", &name, " /tmux", "Tab"]);
    tmux(&["send-keys", "-t", &name, "Enter"]);
    assert!(wait_for("typed-in-a-terminal"), "get did not run:\n{}", screen());
    assert!(screen().contains("/tmuxnode"), "path completion:\n{}", screen());
    assert!(screen().contains("get"), "command completion:\n{}", screen());
    // Up arrow recalls the last command: the data is printed a second time.
    tmux(&["send-keys", "-t", &name, "Up", "Enter"]);
    assert!(
        harness::wait_until(std::time::Duration::from_secs(10), || {
            screen().matches("typed-in-a-terminal").count() >= 2
        }),
        "history recall:\n{}",
        screen()
    );
    tmux(&["send-keys", "-t", &name, "quit", "Enter"]);
    // The history file keeps the command, and a new shell recalls it with the up arrow.
    assert!(
        harness::wait_until(std::time::Duration::from_secs(10), || {
            std::fs::read_to_string(&history).is_ok_and(|h| h.contains("get /tmuxnode"))
        }),
        "history file: {:?}",
        std::fs::read_to_string(&history)
    );
    assert!(harness::wait_until(std::time::Duration::from_secs(10), || {
        !tmux(&["has-session", "-t", &name]).status.success()
    }));
    let started = tmux(&["new-session", "-d", "-s", &name, "-x", "160", "-y", "40", &cmd]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    assert!(wait_for("]"), "no prompt:\n{}", screen());
    // The last entry is "quit"; the one before it is the get.
    tmux(&["send-keys", "-t", &name, "Up", "Up", "Enter"]);
    assert!(wait_for("typed-in-a-terminal"), "history of the last session:\n{}", screen());
    tmux(&["send-keys", "-t", &name, "quit", "Enter"]);
}
