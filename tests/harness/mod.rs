//! Test harness: an in-process rzk server on a free loopback port with a temp data dir, plus
//! raw-socket helpers for tests that speak the wire protocol byte by byte. [`ensemble`] runs
//! multi-process ensembles (rzk or Apache ZooKeeper) on loopback.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rzk::config::{ServerConfig, SessionTimeouts};
use rzk::jute::proto::{
    ConnectRequest, ConnectRequestBase, ConnectResponse, ReplyHeader, RequestHeader,
};
use rzk::jute::Jute;
use rzk::server::Server;

pub mod ensemble;
pub mod ensemble_client;
pub mod wire;

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

/// Polls `f` until it returns true or `timeout` passes.
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

/// Sends a four-letter word and reads the answer to EOF.
pub fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(word.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
