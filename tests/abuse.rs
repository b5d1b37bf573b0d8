//! A bad client costs only itself. Each test runs one attack against a real `rzk-server`
//! process while a probe session runs `exists("/")` every 100 ms, and checks: the server is
//! alive, the probe never waited more than 1 s, the server's RSS grew by less than
//! [`RSS_GROWTH_MAX_MB`], a fresh client can still create and read, and the offender got an
//! error or a closed connection (with the server's log line saying why).
//!
//! The attacks are sized so that each would hurt without its limit (a reply queue of
//! gigabytes, a reply of more than a gigabyte, a prep thread busy for seconds, ...). They run
//! one at a time: the probe's latency bound is about the server, not about two attacks
//! sharing two cores.

mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rzk::client::{Client, ClientConfig, ReadOp};
use rzk::jute::data::{Acl, Id};
use rzk::jute::proto::{
    AddWatchRequest, AuthPacket, ConnectRequest, ConnectRequestBase, PathWatchRequest,
    RequestHeader,
};
use rzk::jute::Jute;
use rzk::proto::{CreateMode, ErrorCode, OpCode};

/// How much an attack may grow the server's resident memory.
const RSS_GROWTH_MAX_MB: u64 = 256;
/// The probe's worst acceptable wait.
const PROBE_MAX: Duration = Duration::from_secs(1);

/// One attack at a time (see the module doc).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An `rzk-server` process on a fresh data dir.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(extra_config: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = harness::ports::one();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=0.0.0.0\n\
                 4lw.commands.whitelist=*\nforceSync=no\nmaxClientCnxns=0\n{extra_config}",
                dir.path().join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rzk-server"));
        cmd.arg(&cfg).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log);
        let child = cmd.spawn().expect("rzk-server starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = Server { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while harness::try_four_letter(addr, "ruok").as_deref() != Some("imok") {
            assert!(Instant::now() < deadline, "server did not start:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn client(&self) -> Client {
        let c = ClientConfig::new(&self.addr.to_string(), Duration::from_secs(10))
            .request_timeout(Duration::from_secs(20))
            .connect()
            .expect("client");
        c.wait_connected(Duration::from_secs(10)).expect("connected");
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `exists("/")` every 100 ms from its own session, recording the worst wait, plus the
/// server's RSS peak.
struct Probe {
    stop: Arc<AtomicBool>,
    worst_ms: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    peak_rss: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    fn start(server: &Server) -> Probe {
        let client = server.client();
        let pid = server.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let worst_ms = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let (s, w, f, p) = (stop.clone(), worst_ms.clone(), failures.clone(), peak_rss.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let started = Instant::now();
                if client.exists("/", false).is_err() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                let waited = started.elapsed();
                w.fetch_max(waited.as_millis() as u64, Ordering::Relaxed);
                if waited > PROBE_MAX {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    eprintln!("probe waited {waited:?}, until unix time {}", now.as_secs());
                }
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|st| {
                        st.lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
                p.fetch_max(rss / 1024, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Probe { stop, worst_ms, failures, peak_rss, thread: Some(thread) }
    }

    /// Stops the probe and checks what it saw.
    fn finish(self, server: &mut Server, rss_before: u64, attack: &str) {
        self.finish_with(server, rss_before, attack, 0)
    }

    /// Stops the probe and checks what it saw; `data_mb` is memory the server legitimately
    /// holds for the test's own well-behaved writes (on top of the attack's allowance).
    fn finish_with(mut self, server: &mut Server, rss_before: u64, attack: &str, data_mb: u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        assert!(server.alive(), "{attack}: the server died\n{}", tail(&server.log()));
        let worst = Duration::from_millis(self.worst_ms.load(Ordering::Relaxed));
        let failures = self.failures.load(Ordering::Relaxed);
        assert!(
            worst <= PROBE_MAX,
            "{attack}: the probe waited {worst:?}; log:\n{}",
            tail(&server.log())
        );
        assert_eq!(failures, 0, "{attack}: the probe's exists() failed");
        let peak = self.peak_rss.load(Ordering::Relaxed).max(server.rss_mb());
        let growth = peak.saturating_sub(rss_before);
        assert!(
            growth < RSS_GROWTH_MAX_MB + data_mb,
            "{attack}: RSS grew by {growth} MB ({rss_before} -> {peak} MB)"
        );
        eprintln!("{attack}: probe worst {worst:?}, RSS {rss_before} -> {peak} MB");
        // A fresh client still creates and reads.
        let c = server.client();
        let path = format!("/after-{}", attack.replace(' ', "-"));
        c.create(&path, b"fine", &Acl::open_unsafe(), CreateMode::Persistent).expect("create");
        assert_eq!(c.get_data(&path, false).expect("read").0, b"fine");
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn request(xid: i32, op: OpCode, body: &impl Jute) -> Vec<u8> {
    let mut payload = RequestHeader { xid, op_type: op.code() }.to_bytes();
    body.encode(&mut payload);
    frame(&payload)
}

/// A raw session from `local` (an address of 127.0.0.0/8): the handshake's answer is read,
/// nothing else unless the test reads.
fn raw_session(server: &Server, local: [u8; 4]) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&SocketAddr::from((local, 0)).into()).expect("bind a loopback address");
    socket.connect(&server.addr.into()).expect("connect");
    let mut s: TcpStream = socket.into();
    let req = ConnectRequest {
        base: ConnectRequestBase {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        },
        read_only: Some(false),
    };
    s.write_all(&frame(&req.to_bytes())).expect("handshake");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("ConnectResponse length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("ConnectResponse");
    s
}

/// Writes `frames` until the server stops reading (the socket blocks for `patience`) or
/// closes; returns how many went out.
fn write_until_blocked(
    s: &mut TcpStream,
    frames: impl Iterator<Item = Vec<u8>>,
    patience: Duration,
) -> usize {
    s.set_write_timeout(Some(patience)).expect("write timeout");
    let mut sent = 0;
    for f in frames {
        if s.write_all(&f).is_err() {
            break;
        }
        sent += 1;
    }
    sent
}

/// Whether the server closed `s` within `within` (reading and discarding what it sent).
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 1 << 20];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

fn wait_for_log(server: &Server, needle: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if server.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A node `/b` of about 1 MB (jute.maxbuffer less room for the request around it).
fn big_node(server: &Server) {
    let c = server.client();
    let data = vec![7u8; 1_000_000];
    c.create("/b", &data, &Acl::open_unsafe(), CreateMode::Persistent).expect("big node");
}

#[test]
fn a_client_pipelining_getdata_of_a_large_node_without_reading_is_closed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server::start("");
    big_node(&server);
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let mut attacker = raw_session(&server, [127, 0, 0, 2]);
    // 20,000 replies of 1 MB would be 20 GB.
    let get = PathWatchRequest { path: "/b".into(), watch: false };
    let frames = (0..20_000).map(|xid| request(xid + 1, OpCode::GetData, &get));
    let sent = write_until_blocked(&mut attacker, frames, Duration::from_secs(3));
    assert!(
        wait_for_log(&server, "bytes of replies and events unread", Duration::from_secs(15)),
        "the offender was not closed after {sent} requests\n{}",
        tail(&server.log())
    );
    assert!(closed_by_server(&mut attacker, Duration::from_secs(10)));
    probe.finish(&mut server, rss_before, "pipelined getData");
}

#[test]
fn a_multi_read_whose_answer_exceeds_jute_maxbuffer_is_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server::start("");
    big_node(&server);
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let c = server.client();
    // 60,000 getData of the 1 MB node: a 60 GB answer from a request just under 1 MB.
    let ops: Vec<ReadOp> = (0..60_000).map(|_| ReadOp::GetData("/b".into())).collect();
    for _ in 0..5 {
        match c.multi_read(&ops) {
            Err(e) => assert_eq!(e.code(), ErrorCode::MarshallingError, "{e:?}"),
            Ok(r) => panic!("a {}-result multiRead was answered", r.len()),
        }
    }
    // The session is unharmed.
    assert!(c.exists("/b", false).expect("exists").is_some());
    probe.finish(&mut server, rss_before, "huge multiRead");
}

#[test]
fn a_create_with_tens_of_thousands_of_acl_entries_is_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server::start("");
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let c = server.client();
    let acl: Vec<Acl> =
        (0..40_000).map(|i| Acl { perms: 31, id: Id::new("digest", &format!("u{i}:h")) }).collect();
    for i in 0..5 {
        let err =
            c.create(&format!("/acl{i}"), b"", &acl, CreateMode::Persistent).expect_err("refused");
        assert_eq!(err.code(), ErrorCode::InvalidAcl, "{err:?}");
    }
    probe.finish(&mut server, rss_before, "ACL bomb");
}

#[test]
fn hundreds_of_large_addauths_get_authfailed_and_a_close() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server::start("");
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let mut attacker = raw_session(&server, [127, 0, 0, 3]);
    let frames = (0..300).map(|i| {
        let user = format!("{i:04}{}", "u".repeat(3000));
        let auth = AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(format!("{user}:secret").into_bytes()),
        };
        request(-4, OpCode::Auth, &auth)
    });
    write_until_blocked(&mut attacker, frames, Duration::from_secs(3));
    assert!(closed_by_server(&mut attacker, Duration::from_secs(10)), "not closed");
    assert!(server.log().contains("refusing an addauth"), "{}", tail(&server.log()));
    // One identity of a megabyte: refused at once.
    let mut one = raw_session(&server, [127, 0, 0, 3]);
    let auth = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Some(format!("{}:pw", "x".repeat(1_000_000)).into_bytes()),
    };
    let _ = one.write_all(&request(-4, OpCode::Auth, &auth));
    assert!(closed_by_server(&mut one, Duration::from_secs(10)), "not closed");
    probe.finish(&mut server, rss_before, "addauth flood");
}

#[test]
fn thousands_of_idle_connections_from_other_addresses_leave_room_and_are_closed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    harness::raise_fd_limit(8192);
    let mut server = Server::start("");
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let mut idle = Vec::new();
    for i in 0..2000u32 {
        let local = [127, 0, 1 + (i / 200) as u8, 1 + (i % 200) as u8];
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if socket.bind(&SocketAddr::from((local, 0)).into()).is_err() {
            continue;
        }
        if socket.connect(&server.addr.into()).is_ok() {
            // A byte, then nothing: the handshake never completes.
            let mut s: TcpStream = socket.into();
            let _ = s.write_all(&[0]);
            idle.push(s);
        }
    }
    assert!(idle.len() >= 1500, "only {} idle connections opened", idle.len());
    // A client on 127.0.0.1 still connects and works.
    let c = server.client();
    c.create("/while-idle", b"", &Acl::open_unsafe(), CreateMode::Persistent).expect("create");
    // The sessionless timeout (10 s from the accept, however many bytes arrive) closes them.
    std::thread::sleep(Duration::from_secs(11));
    let closed = idle
        .iter_mut()
        .map(|s| closed_by_server(s, Duration::from_millis(300)))
        .filter(|c| *c)
        .count();
    assert!(
        closed * 10 >= idle.len() * 9,
        "only {closed} of {} idle connections closed",
        idle.len()
    );
    drop(idle);
    probe.finish(&mut server, rss_before, "idle connections");
}

#[test]
fn random_frames_after_a_valid_handshake_close_only_their_connections() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server::start("");
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut conns = Vec::new();
    for i in 0..300u32 {
        let mut s = raw_session(&server, [127, 0, 2, 1 + (i % 250) as u8]);
        for _ in 0..20 {
            let len = (next() % 4096) as usize;
            let mut f: Vec<u8> = if next() % 4 == 0 {
                // A random length prefix, often out of range.
                (next() as u32).to_be_bytes().to_vec()
            } else {
                (len as i32).to_be_bytes().to_vec()
            };
            f.extend((0..len).map(|_| next() as u8));
            if s.write_all(&f).is_err() {
                break;
            }
        }
        conns.push(s);
    }
    // Each is closed or answered with errors; none takes the server down.
    let mut closed = 0;
    for s in conns.iter_mut() {
        if closed_by_server(s, Duration::from_millis(500)) {
            closed += 1;
        }
    }
    eprintln!("{closed} of {} garbage connections closed by the server", conns.len());
    assert!(closed > 0);
    probe.finish(&mut server, rss_before, "random frames");
}

#[test]
fn a_non_reading_client_with_a_recursive_watch_under_writes_is_closed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The attacker asks for a 30 s session: its limit, not its session timeout, ends it.
    let mut server = Server::start("maxSessionTimeout=60000\n");
    let rss_before = server.rss_mb();
    let probe = Probe::start(&server);
    let mut attacker = raw_session(&server, [127, 0, 0, 4]);
    let watch = AddWatchRequest { path: "/".into(), mode: 1 };
    attacker.write_all(&request(1, OpCode::AddWatch, &watch)).expect("addWatch");
    // The attacker keeps its session alive with pings (never reading their answers).
    let pinging = Arc::new(AtomicBool::new(true));
    let pinger = {
        let mut out = attacker.try_clone().expect("clone");
        let pinging = pinging.clone();
        std::thread::spawn(move || {
            let ping = frame(&RequestHeader { xid: -2, op_type: OpCode::Ping as i32 }.to_bytes());
            while pinging.load(Ordering::Relaxed) && out.write_all(&ping).is_ok() {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // A write load whose events the attacker never reads: setData of a node with a 16 KB
    // name, so each event is about 16 KB and 64 MiB of them (about 4,200) is the attacker's
    // limit, while the tree itself does not grow.
    let writer = server.client();
    let path = format!("/w{}", "p".repeat(16_000));
    writer.create(&path, b"", &Acl::open_unsafe(), CreateMode::Persistent).expect("node");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut writes = 0u64;
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        let mut pending = Vec::new();
        for _ in 0..100 {
            let (tx, rx) = std::sync::mpsc::channel();
            writer.set_data_async(&path, b"x", -1, move |r| {
                let _ = tx.send(r.is_ok());
            });
            pending.push(rx);
        }
        for rx in pending {
            if rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false) {
                writes += 1;
            }
        }
        seen = server.log().contains("bytes of replies and events unread");
    }
    assert!(
        seen,
        "the non-reading watcher was never closed ({writes} writes); cons:\n{}\nlog:\n{}",
        harness::try_four_letter(server.addr, "cons").unwrap_or_default(),
        tail(&server.log())
    );
    assert!(closed_by_server(&mut attacker, Duration::from_secs(10)));
    pinging.store(false, Ordering::Relaxed);
    let _ = pinger.join();
    drop(writer);
    // The txn log is memory-mapped: its pages of the writer's txns (each names the node)
    // count in the RSS.
    let data_mb = writes * 16_000 / (1 << 20);
    probe.finish_with(&mut server, rss_before, "unread recursive watch", data_mb);
}
