//! Fail-stop: every thread is critical. A stage that panics or meets an unrecoverable I/O
//! error ends the `rzk-server` process with status 1 and a line naming the thread, instead of
//! leaving a selector that accepts connections and answers `ruok` while no request is served;
//! an embedded server stops and tells its owner why.
//!
//! Faults are injected through fail-rs fault points (`FAILPOINTS=name=action`), compiled in
//! only with the `failpoints` feature: `cargo test --features failpoints --test fail_stop`.

mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rzk::jute::proto::{ConnectRequest, ConnectRequestBase, CreateRequest, RequestHeader};
use rzk::jute::Jute;

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Server {
    /// `rzk-server` on a fresh data dir with `failpoints` armed.
    fn start(failpoints: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = harness::ports::one();
        let cfg = dir.path().join("zoo.cfg");
        let data = dir.path().join("data");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\npreAllocSize=1024\n",
                data.display()
            ),
        )
        .expect("zoo.cfg");
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_rzk-server"))
            .arg(&cfg)
            .env("FAILPOINTS", failpoints)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("rzk-server starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let s = Server { child, addr, _dir: dir, log };
        s.wait_until_serving();
        s
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if harness::try_four_letter(self.addr, "ruok").as_deref() == Some("imok") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status once the process has ended, within `within`.
    fn exit_status(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Opens a session and, if `create`, sends one create; returns the socket (maybe never
/// answered).
fn client(addr: SocketAddr, create: bool) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    let req = ConnectRequest {
        base: ConnectRequestBase {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        },
        read_only: Some(false),
    };
    s.write_all(&frame(&req.to_bytes())).ok()?;
    if create {
        let mut payload = RequestHeader { xid: 1, op_type: 1 }.to_bytes();
        let c = CreateRequest {
            path: "/x".into(),
            data: Some(b"x".to_vec()),
            acl: rzk::jute::data::Acl::open_unsafe(),
            flags: 0,
        };
        c.encode(&mut payload);
        s.write_all(&frame(&payload)).ok()?;
    }
    Some(s)
}

/// Arms `failpoint`, sends a request that reaches it, and checks the process goes down with
/// status 1 and a line naming `thread`, and that nothing answers on the client port after.
fn stage_failure_ends_the_process(failpoint: &str, create: bool, thread: &str, why: &str) {
    let mut server = Server::start(failpoint);
    let _client = client(server.addr, create);
    let status = server.exit_status(Duration::from_secs(20));
    let log = server.log();
    assert_eq!(status, Some(1), "{failpoint}: the process must exit with status 1\n{log}");
    let line = format!("from thread {thread}");
    assert!(
        log.lines().any(|l| l.contains("Severe unrecoverable error") && l.contains(&line)),
        "{failpoint}: no fatal line naming {thread}\n{log}"
    );
    assert!(log.contains(why), "{failpoint}: the cause ({why}) is not logged\n{log}");
    assert_eq!(
        harness::try_four_letter(server.addr, "ruok"),
        None,
        "nothing may answer after the failure"
    );
}

#[test]
fn a_panic_in_apply_ends_the_process() {
    // The new session's createSession is the first request apply handles.
    stage_failure_ends_the_process(
        "apply::handle=panic(apply is broken)",
        false,
        "apply",
        "apply is broken",
    );
}

#[test]
fn a_panic_in_prep_ends_the_process() {
    stage_failure_ends_the_process(
        "prep::prepare=panic(prep is broken)",
        false,
        "prep",
        "prep is broken",
    );
}

#[test]
fn a_txn_log_error_in_sync_ends_the_process_before_any_acknowledgement() {
    let mut server = Server::start("sync::commit=return");
    let mut c = client(server.addr, true).expect("connect");
    let status = server.exit_status(Duration::from_secs(20));
    let log = server.log();
    assert_eq!(status, Some(1), "{log}");
    assert!(log.contains("from thread sync: cannot commit the txn log: injected fault"), "{log}");
    // The createSession that failed to commit was never acknowledged: the client got no
    // ConnectResponse, only the close.
    c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{} bytes answered after a failed commit", buf.len());
}

/// In-process, the server stops and [`rzk::server::Server::wait`] says which thread failed.
#[test]
fn an_embedded_server_stops_and_reports_the_failed_thread() {
    let scenario = fail::FailScenario::setup();
    fail::cfg("apply::handle", "panic(embedded apply fault)").expect("failpoint");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = rzk::config::ServerConfig::standalone(dir.path(), ([127, 0, 0, 1], 0).into());
    let server = rzk::server::start_standalone(config).expect("server starts");
    let addr = server.local_addr;
    let _client = client(addr, false);
    let fatal = server.wait();
    assert_eq!(fatal.thread, "apply");
    assert!(fatal.error.contains("embedded apply fault"), "{fatal}");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    fail::remove("apply::handle");
    scenario.teardown();
}
