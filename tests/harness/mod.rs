//! The one test harness of the black-box tests (`mod harness;` in each `tests/*.rs`).
//!
//! - [`TestServer`]: an in-process rzk server on a loopback port the server picks itself,
//!   with a temp data dir, and [`Raw`] for tests that speak the wire protocol byte by byte
//!   ([`wire`] has the encoders).
//! - [`target::TargetServer`]: the server a client-library test runs against, chosen by
//!   `RZK_TEST_TARGET` (rzk, Apache ZooKeeper, or a 3-peer rzk ensemble), as a process;
//!   [`proxy::Proxy`] cuts or stalls its connections.
//! - [`ensemble::Ensemble`]: multi-process ensembles of rzk, Apache or both, with kill -9,
//!   SIGSTOP and restarts; [`ensemble_client`] has the clients and helpers those tests share.
//! - Helpers that exist only here: [`ports`] (loopback ports without the bind-then-drop race),
//!   [`wait_until`]/[`wait_for`], [`try_four_letter`]/[`four_letter`], [`connect`] and the
//!   event waits, [`raise_fd_limit`], and [`require`] for prerequisites (Java, tmux, root),
//!   which fails under `CI=true` instead of skipping.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rzk::client::{Client, ClientConfig, WatchedEvent, Watcher};
use rzk::config::{ServerConfig, SessionTimeouts};
use rzk::jute::proto::{
    ConnectRequest, ConnectRequestBase, ConnectResponse, ReplyHeader, RequestHeader,
};
use rzk::jute::Jute;
use rzk::server::Server;

pub mod ensemble;
pub mod ensemble_client;
pub mod pki;
pub mod ports;
pub mod proxy;
mod slots;
pub mod target;
pub mod wire;

/// Whether a prerequisite a test needs is here. `missing` is `None` when it is, else what is
/// missing and how to get it. Under `CI=true` a missing prerequisite fails the test (CI must
/// run everything); elsewhere the test prints `SKIPPED: ...` and should return.
pub fn require(what: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "{what} is required under CI=true: {why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}: {why}");
    false
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Session timeout bounds in ms.
pub fn timeouts(min_ms: u64, max_ms: u64) -> SessionTimeouts {
    SessionTimeouts::new(Duration::from_millis(min_ms), Duration::from_millis(max_ms))
        .expect("min <= max")
}

/// A running in-process server.
pub struct TestServer {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub settings: ServerConfig,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = ServerConfig::standalone(dir.path(), "127.0.0.1:0".parse().unwrap());
        s.tick_time = Duration::from_millis(200);
        s.session_timeouts = timeouts(400, 60_000);
        s.four_letter_words = rzk::proto::frame::FOUR_LETTER_WORDS.iter().copied().collect();
        s.extended_types_enabled = true;
        tweak(&mut s);
        let server = rzk::server::start_standalone(s.clone()).expect("server starts");
        let addr = server.local_addr;
        s.client_address = addr;
        TestServer { server: Some(server), addr, dir, settings: s }
    }

    /// Stops the server (threads joined, files closed).
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    /// Starts the server again on the same port and data directory (recovering from disk).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rzk::server::start_standalone(self.settings.clone()) {
                Ok(s) => {
                    self.server = Some(s);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("restart failed: {e}"),
            }
        }
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

/// Polls `f` until it returns true or `timeout` passes (10 ms between polls); true if it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// [`wait_until`] that panics naming `what` when `f` never held.
pub fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    assert!(wait_until(timeout, f), "timed out after {timeout:?} waiting for {what}");
}

/// A raw client connection speaking frames.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw { stream }
    }

    /// Writes one frame. A server that closes the connection part-way
    /// through (an over-long frame, say) makes the write fail with a broken
    /// pipe or a reset; that is not an error here, since the tests observe
    /// the close with `is_closed` or `read_frame`.
    pub fn send_frame(&mut self, payload: &[u8]) {
        let mut f = (payload.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        if let Err(e) = self.stream.write_all(&f) {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            assert!(
                matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted),
                "write: {e}"
            );
        }
    }

    /// Reads one frame; None on EOF.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        if self.stream.read_exact(&mut len).is_err() {
            return None;
        }
        let n = i32::from_be_bytes(len) as usize;
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// Handshake for a new session; returns the response.
    pub fn handshake(&mut self, timeout_ms: i32) -> ConnectResponse {
        let req = ConnectRequest {
            base: ConnectRequestBase {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: timeout_ms,
                session_id: 0,
                passwd: Some(vec![0; 16]),
            },
            read_only: Some(false),
        };
        self.send_frame(&req.to_bytes());
        let f = self.read_frame().expect("connect response");
        ConnectResponse::from_bytes(&f).expect("decodes")
    }

    /// Sends a request and returns (reply header, body) of the next non-event frame.
    pub fn call(&mut self, xid: i32, op: i32, body: &[u8]) -> (ReplyHeader, Vec<u8>) {
        let mut p = RequestHeader { xid, op_type: op }.to_bytes();
        p.extend_from_slice(body);
        self.send_frame(&p);
        loop {
            let f = self.read_frame().expect("reply");
            let h = ReplyHeader::from_bytes(&f).expect("header");
            if h.xid == -1 {
                continue;
            }
            return (h, f[16..].to_vec());
        }
    }

    /// True when the server closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

/// Sends a four-letter word and reads the answer to EOF; `None` when nothing answers (1 s to
/// connect, 5 s to answer).
pub fn try_four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    // An answer cut short by a reset still counts; no answer at all does not.
    match s.read_to_string(&mut out) {
        Err(_) if out.is_empty() => None,
        _ => Some(out),
    }
}

/// [`try_four_letter`] for a server that must answer: the answer, or "" when none came.
pub fn four_letter(addr: SocketAddr, word: &str) -> String {
    try_four_letter(addr, word).unwrap_or_default()
}

/// The value of `key` (e.g. `zk_connection_rejected`) in the server's `mntr` answer.
pub fn mntr(addr: SocketAddr, key: &str) -> Option<String> {
    let answer = try_four_letter(addr, "mntr")?;
    answer.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('\t').map(str::to_string))
}

/// Raises this process's open-file limit to `want` (or the hard limit): tests that open
/// thousands of connections need more than the usual 1024.
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write a plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A connected client with a channel default watcher. With a short session timeout the
/// client gives up (state Closed) when a busy server takes longer than 4/3 of it to create
/// the session, so a bounded number of fresh attempts is made.
pub fn connect(
    connect_string: &str,
    timeout: Duration,
) -> (Client, crossbeam_channel::Receiver<WatchedEvent>) {
    let mut last_err = None;
    for _ in 0..5 {
        let (tx, rx) = crossbeam_channel::unbounded();
        let c = ClientConfig::new(connect_string, timeout)
            .watcher(Watcher::channel(tx))
            .connect()
            .expect("client");
        match c.wait_connected(Duration::from_secs(30)) {
            Ok(()) => return (c, rx),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("cannot connect to {connect_string} in 5 attempts: {last_err:?}");
}

/// The next event on `rx` within 20 s.
pub fn next_event(rx: &crossbeam_channel::Receiver<WatchedEvent>) -> WatchedEvent {
    rx.recv_timeout(Duration::from_secs(20)).expect("an event within 20 s")
}

/// Skips node events until a state event arrives (bounded by 20 s).
pub fn next_state(rx: &crossbeam_channel::Receiver<WatchedEvent>) -> WatchedEvent {
    next_state_within(rx, Duration::from_secs(20))
}

/// Skips node events until a state event arrives (bounded by `limit`).
pub fn next_state_within(
    rx: &crossbeam_channel::Receiver<WatchedEvent>,
    limit: Duration,
) -> WatchedEvent {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = rx.recv_timeout(left).expect("a state event in time");
        if e.path.is_none() {
            return e;
        }
    }
}

/// Skips state events until a node event arrives (bounded by 20 s).
pub fn next_node_event(rx: &crossbeam_channel::Receiver<WatchedEvent>) -> WatchedEvent {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = rx.recv_timeout(left).expect("a node event within 20 s");
        if e.path.is_some() {
            return e;
        }
    }
}
