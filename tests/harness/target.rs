//! The server a client-library test talks to, chosen by `RZK_TEST_TARGET=apache|rzk|rzk-ensemble`
//! (default `rzk`): Apache ZooKeeper 3.8 from the Debian package, rzk's own `rzk-server`, or
//! three rzk quorum peers whose first peer the tests' clients use (a follower unless it won
//! the election). Each runs as a separate process on harness ports with a temporary data dir.
//! The Apache target needs `java` ([`super::require`]: a failure under `CI=true`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{local, ports, slots, try_four_letter, wait_until};

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

/// How many servers the tests of one binary run at once (`RZK_TEST_SERVERS`, default 2):
/// the machine has few cores and timing-sensitive tests fail when a dozen JVMs compete.
static RUNNING: slots::Slots = slots::Slots::new();

/// A running server; killed on drop.
pub struct TargetServer {
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

impl TargetServer {
    /// Starts the server selected by `RZK_TEST_TARGET`; `None` (outside CI, with a message)
    /// when the Apache target is selected and java is missing.
    pub fn start() -> Option<TargetServer> {
        TargetServer::start_with(ServerOptions::default())
    }

    /// Same with options.
    pub fn start_with(opts: ServerOptions) -> Option<TargetServer> {
        let _ = env_logger::builder().is_test(true).try_init();
        let target = Target::from_env();
        if target == Target::Apache
            && !super::require("Apache ZooKeeper", super::ensemble::Flavor::apache_missing())
        {
            return None;
        }
        let permit = RUNNING.acquire(slots::limit("RZK_TEST_SERVERS", 2));
        let dir = tempfile::tempdir().expect("temp dir");
        let (port, peers) = if target == Target::RzkEnsemble {
            let p = ports::take(9);
            (p[0], p.chunks(3).map(|c| (c[0], c[1], c[2])).collect())
        } else {
            (ports::one(), Vec::new())
        };
        let mut s = TargetServer {
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
                try_four_letter(local(*p), "srvr")
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
            try_four_letter(local(self.port), "ruok").as_deref() == Some("imok")
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

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: Mutex<std::sync::Weak<TargetServer>> = Mutex::new(std::sync::Weak::new());

/// A server shared by the tests of one binary that run at the same time; it is killed when
/// the last holder drops it. Tests must use their own znode subtree.
pub fn shared_server() -> Option<Arc<TargetServer>> {
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = g.upgrade() {
        return Some(s);
    }
    let s = Arc::new(TargetServer::start()?);
    *g = Arc::downgrade(&s);
    Some(s)
}
