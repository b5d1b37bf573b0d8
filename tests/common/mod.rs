//! Test harness: a real ZooKeeper server (Apache ZooKeeper 3.8 from the Debian package, or
//! rzk's own `rzk-server`) on a free loopback port with a temporary data dir, a TCP proxy
//! that can cut and refuse connections, and wait-until helpers with deadlines.
//!
//! `RZK_TEST_TARGET=apache|rzk|rzk-ensemble` picks the server (default `rzk`);
//! `rzk-ensemble` runs three rzk quorum peers and the tests' clients use the first one (a
//! follower unless it won the election). Apache needs `java`; when it is missing,
//! [`TestServer::start`] returns `None` and the test prints why and passes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rzk::client::{Client, ClientConfig, WatchedEvent, Watcher};

/// Which server the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Apache ZooKeeper 3.8 (`QuorumPeerMain` from /usr/share/java).
    Apache,
    /// `rzk-server` built from this crate.
    Rzk,
    /// Three `rzk-server` quorum peers.
    RzkEnsemble,
}

impl Target {
    /// From `RZK_TEST_TARGET` (default rzk).
    pub fn from_env() -> Target {
        match std::env::var("RZK_TEST_TARGET").as_deref() {
            Ok("apache") => Target::Apache,
            Ok("rzk-ensemble") => Target::RzkEnsemble,
            _ => Target::Rzk,
        }
    }
}

const JARS: &[&str] = &[
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "slf4j-nop.jar",
    "netty-handler.jar",
    "netty-common.jar",
    "netty-buffer.jar",
    "netty-transport.jar",
    "netty-codec.jar",
    "netty-resolver.jar",
    "netty-transport-native-epoll.jar",
    "netty-transport-native-unix-common.jar",
    "metrics-core.jar",
    "commons-cli.jar",
    "commons-io.jar",
    "snappy-java.jar",
];

/// Options for the generated zoo.cfg (which also sets `forceSync=no`: tests on a busy
/// shared disk must not wait for fsync).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// tickTime in ms (min session timeout is 2 ticks).
    pub tick_ms: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { tick_ms: 2000 }
    }
}

#[path = "../slots/mod.rs"]
mod slots;

/// How many servers the tests of one binary run at once (`RZK_TEST_SERVERS`, default 2):
/// the machine has few cores and timing-sensitive tests fail when a dozen JVMs compete.
static RUNNING: slots::Slots = slots::Slots::new();

/// A running server; killed on drop.
pub struct TestServer {
    _permit: slots::Slot,
    target: Target,
    port: u16,
    dir: tempfile::TempDir,
    opts: ServerOptions,
    child: Option<Child>,
    /// Ensemble: (client, quorum, election) ports of every peer (peer 1's client port is
    /// `port`) and the processes of peers 2.. .
    peers: Vec<(u16, u16, u16)>,
    others: Vec<Child>,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn java_available() -> bool {
    Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl TestServer {
    /// Starts the server selected by `RZK_TEST_TARGET`; `None` (with a message) when the
    /// Apache target is selected and java is missing.
    pub fn start() -> Option<TestServer> {
        TestServer::start_with(ServerOptions::default())
    }

    /// Same with options.
    pub fn start_with(opts: ServerOptions) -> Option<TestServer> {
        let _ = env_logger::builder().is_test(true).try_init();
        let target = Target::from_env();
        if target == Target::Apache && !java_available() {
            eprintln!("SKIPPED: RZK_TEST_TARGET=apache but `java` is not installed");
            return None;
        }
        let permit = RUNNING.acquire(slots::limit("RZK_TEST_SERVERS", 2));
        let dir = tempfile::tempdir().expect("temp dir");
        let (port, peers) = if target == Target::RzkEnsemble {
            // All nine bound at once, so the kernel cannot hand out one port twice.
            let held: Vec<TcpListener> = (0..9)
                .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
                .collect();
            let p: Vec<u16> =
                held.iter().map(|l| l.local_addr().expect("local addr").port()).collect();
            (p[0], p.chunks(3).map(|c| (c[0], c[1], c[2])).collect())
        } else {
            (free_port(), Vec::new())
        };
        let mut s = TestServer {
            _permit: permit,
            target,
            port,
            dir,
            opts,
            child: None,
            peers,
            others: Vec::new(),
        };
        s.launch();
        Some(s)
    }

    /// The server kind.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_config(&self) -> PathBuf {
        let cfg = self.dir.path().join("zoo.cfg");
        let text = format!(
            "tickTime={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\nadmin.enableServer=false\n\
             maxClientCnxns=0\nforceSync=no\n",
            self.opts.tick_ms,
            self.data_dir().display(),
            self.port
        );
        std::fs::create_dir_all(self.data_dir()).expect("data dir");
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        cfg
    }

    /// zoo.cfg of ensemble peer `i` (0-based) with its myid file.
    fn write_peer_config(&self, i: usize) -> PathBuf {
        let dir = self.dir.path().join(format!("peer-{}", i + 1));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
        let mut text = format!(
            "tickTime={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\nmaxClientCnxns=0\n\
             forceSync=no\ninitLimit=10\nsyncLimit=5\n",
            self.opts.tick_ms,
            data.display(),
            self.peers[i].0
        );
        for (n, (_, q, e)) in self.peers.iter().enumerate() {
            text.push_str(&format!("server.{}=127.0.0.1:{q}:{e}\n", n + 1));
        }
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        cfg
    }

    fn launch_ensemble(&mut self) {
        let mut children = Vec::new();
        for i in 0..self.peers.len() {
            let cfg = self.write_peer_config(i);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(format!("peer-{}.log", i + 1)))
                .expect("peer log");
            let log2 = log.try_clone().expect("log clone");
            let child = Command::new(env!("CARGO_BIN_EXE_rzk-server"))
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .expect("spawn a peer");
            children.push(child);
        }
        let mut children = children.into_iter();
        self.child = children.next();
        self.others = children.collect();
        let ports: Vec<u16> = self.peers.iter().map(|p| p.0).collect();
        let ok = wait_until(Duration::from_secs(60), || {
            ports.iter().all(|p| {
                four_letter_word(*p, "srvr")
                    .is_some_and(|s| s.contains("Mode: leader") || s.contains("Mode: follower"))
            })
        });
        assert!(ok, "the rzk ensemble did not form; logs:\n{}", self.log());
    }

    fn launch(&mut self) {
        if self.target == Target::RzkEnsemble {
            return self.launch_ensemble();
        }
        let cfg = self.write_config();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let log2 = log.try_clone().expect("log clone");
        let mut cmd = match self.target {
            Target::Apache => {
                let cp: Vec<String> = JARS.iter().map(|j| format!("/usr/share/java/{j}")).collect();
                let mut c = Command::new("java");
                c.arg("-Xmx256m")
                    .arg("-XX:+UseSerialGC")
                    .arg("-XX:TieredStopAtLevel=1")
                    .arg("-Dzookeeper.admin.enableServer=false")
                    .arg("-cp")
                    .arg(cp.join(":"))
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg);
                c
            }
            Target::Rzk | Target::RzkEnsemble => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_rzk-server"));
                c.arg(&cfg);
                c
            }
        };
        let child =
            cmd.stdin(Stdio::null()).stdout(log).stderr(log2).spawn().expect("spawn the server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let ok = wait_until(Duration::from_secs(60), || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "{:?} server exited early ({status}); RZK_TEST_TARGET=apache runs \
                         the tests against Apache ZooKeeper instead; log:\n{}",
                        self.target,
                        self.log()
                    );
                }
            }
            four_letter_word(self.port, "ruok").as_deref() == Some("imok")
        });
        assert!(ok, "{:?} server did not answer ruok; log:\n{}", self.target, self.log());
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        if self.target == Target::RzkEnsemble {
            return (1..=self.peers.len())
                .map(|i| {
                    let path = self.dir.path().join(format!("peer-{i}.log"));
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    format!("--- peer {i}:\n{text}")
                })
                .collect();
        }
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kills the server (every peer of an ensemble; data dirs kept).
    pub fn stop(&mut self) {
        for mut c in self.child.take().into_iter().chain(self.others.drain(..)) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Path of the data dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a four-letter word and returns the answer.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let addr = format!("127.0.0.1:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Polls `f` until it holds or `timeout` passes (bounded; 20 ms between polls).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
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
            Err(rzk::client::Error::Closed) => last_err = Some(rzk::client::Error::Closed),
            Err(e) => panic!("cannot connect to {connect_string}: {e}"),
        }
    }
    panic!("cannot connect to {connect_string}: {:?}", last_err);
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

/// A TCP proxy in front of a server: `pause` cuts every connection and refuses new ones
/// (they are accepted and closed at once) until `resume`.
pub struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let paused = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (p, s, c, st) = (paused.clone(), stop.clone(), conns.clone(), stalled.clone());
        let thread = std::thread::spawn(move || {
            for incoming in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(down) = incoming else { continue };
                if p.load(Ordering::SeqCst) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                };
                let mut list = c.lock().expect("proxy lock");
                for sock in [&down, &up] {
                    if let Ok(clone) = sock.try_clone() {
                        list.push(clone);
                    }
                }
                drop(list);
                pipe(&down, &up, st.clone());
                pipe(&up, &down, st.clone());
            }
        });
        Proxy { port, paused, stalled, stop, conns, thread: Some(thread) }
    }

    /// `127.0.0.1:port` of the proxy.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Cuts all connections and refuses new ones.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for s in self.conns.lock().expect("proxy lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Keeps connections open but silently drops everything in both directions (a hung
    /// server), until `unstall`.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn unstall(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.pause();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pipe(from: &TcpStream, to: &TcpStream, stalled: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if stalled.load(Ordering::SeqCst) => {}
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

static SHARED: Mutex<std::sync::Weak<TestServer>> = Mutex::new(std::sync::Weak::new());

/// A server shared by the tests of one binary that run at the same time; it is killed when
/// the last holder drops it. Tests must use their own znode subtree.
pub fn shared_server() -> Option<Arc<TestServer>> {
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = g.upgrade() {
        return Some(s);
    }
    let s = Arc::new(TestServer::start()?);
    *g = Arc::downgrade(&s);
    Some(s)
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
