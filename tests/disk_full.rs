//! A full disk stops rzk cleanly: a server whose data dir is a small tmpfs takes acknowledged
//! writes until the txn log cannot grow, then logs the error naming the log file and exits
//! non-zero (ZooKeeper's behaviour). Restarted on a copy of the data dir on a disk with space,
//! it has every write it acknowledged.
//!
//! Needs root (to mount the tmpfs); without it the test says so and passes, except under
//! `CI=true`, where a missing prerequisite fails.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rzk::client::{ClientConfig, Error};
use rzk::jute::data::Acl;
use rzk::proto::CreateMode;

const TMPFS_BYTES: u64 = 24 << 20;
const NODE_BYTES: usize = 10_000;
const WRITES_MAX: usize = 20_000;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, bytes: u64) -> Option<Mount> {
        std::fs::create_dir_all(at).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn start(dir: &Path, data: &Path, port: u16) -> Child {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             preAllocSize=1024\nsnapCount=1000000\n4lw.commands.whitelist=*\n",
            data.display()
        ),
    )
    .expect("zoo.cfg");
    let log = std::fs::File::create(dir.join("log")).expect("log");
    Command::new(env!("CARGO_BIN_EXE_rzk-server"))
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("rzk-server starts")
}

fn connect(port: u16) -> rzk::client::Client {
    let c = ClientConfig::new(&format!("127.0.0.1:{port}"), Duration::from_secs(10))
        .request_timeout(Duration::from_secs(10))
        .connect()
        .expect("client");
    c.wait_connected(Duration::from_secs(30)).expect("connected");
    c
}

#[test]
fn a_full_disk_stops_the_server_and_loses_no_acknowledged_write() {
    let root = tempfile::tempdir().expect("temp dir");
    let Some(mount) = Mount::tmpfs(&root.path().join("small"), TMPFS_BYTES) else {
        harness::require("a small tmpfs", Some("mounting one needs root".into()));
        return;
    };
    let data = mount.0.join("data");
    let port = harness::ports::one();
    let mut server = start(root.path(), &data, port);
    let c = connect(port);
    let body = vec![7u8; NODE_BYTES];
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..WRITES_MAX {
        if Instant::now() >= deadline {
            break;
        }
        let path = format!("/n{i}");
        match c.create(&path, &body, &Acl::open_unsafe(), CreateMode::Persistent) {
            Ok(_) => acked.push(path),
            Err(Error::Closed) => break,
            Err(_) => break,
        }
    }
    drop(c);
    // The server stops on its own.
    let exit_deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = server.try_wait() {
            break Some(s);
        }
        if Instant::now() >= exit_deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(root.path().join("log")).unwrap_or_default();
    let Some(status) = status else {
        let _ = server.kill();
        panic!("the server kept running on a full disk ({} writes)\n{log}", acked.len());
    };
    assert!(!status.success(), "exit status {status}\n{log}");
    assert!(
        acked.len() * NODE_BYTES > (TMPFS_BYTES as usize) / 4,
        "too few writes before the disk filled: {}\n{log}",
        acked.len()
    );
    let line = log
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_else(|| panic!("no ENOSPC line in the log\n{log}"));
    assert!(line.contains("log."), "the line does not name the txn log: {line}");
    eprintln!("{} writes acknowledged; the server said: {line}", acked.len());

    // Every acknowledged write is there after a restart on a disk with space.
    let copy = root.path().join("copy");
    let status = Command::new("cp").arg("-a").arg(&data).arg(&copy).status().expect("cp");
    assert!(status.success());
    drop(mount);
    let port = harness::ports::one();
    let mut again = start(root.path(), &copy, port);
    let c = connect(port);
    for path in &acked {
        let (got, _) = c.get_data(path, false).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(got.len(), NODE_BYTES, "{path}");
    }
    drop(c);
    let _ = again.kill();
    let _ = again.wait();
}
