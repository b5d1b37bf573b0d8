//! Multi-process ensembles on loopback: N peers (participants, then observers) of rzk-server or
//! Apache ZooKeeper 3.8 (Debian package), each a separate process with its own free ports
//! (client, quorum, election), its own data dir and myid under one temp dir, and its output in
//! `<temp>/<id>/log`. The same zoo.cfg keys drive both flavors, so a test body written against
//! [`Ensemble`] runs unchanged with [`Flavor::Rzk`] and [`Flavor::Apache`];
//! [`Ensemble::start_mixed`] gives each peer its own flavor (mixed ensembles).
//!
//! Peer ids are 1..=participants for the participants and the following ones for observers.
//! Every process is killed on drop; when the test is panicking, the end of every log is printed
//! first (`RZK_ENSEMBLE_KEEP=1` also keeps the temp dir). Waits are bounded and panic with the
//! state of every peer when they time out.
//!
//! At most `RZK_TEST_ENSEMBLES` ensembles (default 1) run at once in one test binary: three
//! JVMs per ensemble are already a lot for a small machine.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::slots;
use super::try_four_letter;

/// Which server a peer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// `rzk-server` at this path (in integration tests: `env!("CARGO_BIN_EXE_rzk-server")`).
    Rzk(PathBuf),
    /// Apache ZooKeeper's `QuorumPeerMain` from /usr/share/java.
    Apache,
}

const APACHE_JAR: &str = "/usr/share/java/zookeeper.jar";
/// zookeeper.jar's manifest brings the rest of its class path; slf4j-simple makes it log (at
/// INFO, to stderr, so into the peer's log file); Netty's codec, handler and resolver jars,
/// which the manifest leaves out, are what quorum TLS (UnifiedServerSocket) needs.
const APACHE_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:\
     /usr/share/java/netty-codec.jar:/usr/share/java/netty-handler.jar:\
     /usr/share/java/netty-resolver.jar";

impl Flavor {
    /// rzk-server built for this test binary.
    pub fn rzk() -> Flavor {
        Flavor::Rzk(PathBuf::from(env!("CARGO_BIN_EXE_rzk-server")))
    }

    /// `None` when Apache ZooKeeper can run here, else why not (for a skip message).
    pub fn apache_missing() -> Option<String> {
        if !Path::new(APACHE_JAR).exists() {
            return Some(format!("{APACHE_JAR} is missing (apt-get install zookeeper)"));
        }
        let java = Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !java {
            return Some("`java` does not run".into());
        }
        None
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Flavor::Rzk(_) => "rzk",
            Flavor::Apache => "apache",
        }
    }
}

/// Marks a JVM flag for the peer in its zoo.cfg text (for `tweak_cfg`): a comment line both
/// servers ignore, that the harness passes to Apache's JVM and to rzk as `SERVER_JVMFLAGS`
/// (as zkServer.sh does), e.g. `-Djava.security.auth.login.config=FILE`.
pub fn add_jvm_flag(cfg: &mut String, flag: &str) {
    cfg.push_str(&format!("{JVM_FLAG_MARK}{flag}\n"));
}

const JVM_FLAG_MARK: &str = "#jvm-flag ";

fn jvm_flags(cfg: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(cfg).unwrap_or_default();
    text.lines().filter_map(|l| l.strip_prefix(JVM_FLAG_MARK)).map(String::from).collect()
}

/// Replaces `key`'s line in a zoo.cfg text, or appends `key=value` (for `tweak_cfg`).
pub fn set_key(cfg: &mut String, key: &str, value: &str) {
    let mut found = false;
    let mut out = String::with_capacity(cfg.len() + key.len() + value.len() + 2);
    for line in cfg.lines() {
        let k = line.split('=').next().unwrap_or("").trim();
        if k == key {
            if !found {
                out.push_str(&format!("{key}={value}\n"));
            }
            found = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !found {
        out.push_str(&format!("{key}={value}\n"));
    }
    *cfg = out;
}

/// One peer of the ensemble.
#[derive(Debug)]
struct Peer {
    id: u32,
    observer: bool,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    flavor: Flavor,
    dir: PathBuf,
    child: Option<Child>,
    /// SIGSTOPped (and not SIGCONTinued since).
    frozen: bool,
}

impl Peer {
    fn server_line(&self) -> String {
        format!(
            "server.{}=127.0.0.1:{}:{}{};127.0.0.1:{}",
            self.id,
            self.quorum_port,
            self.election_port,
            if self.observer { ":observer" } else { "" },
            self.client_port
        )
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// A running ensemble; every process is killed on drop.
pub struct Ensemble {
    /// Peer i+1's flavor (participants, then observers).
    flavors: Vec<Flavor>,
    dir: Option<tempfile::TempDir>,
    peers: Vec<Peer>,
    _permit: slots::Slot,
}

/// What went wrong while starting the peers.
enum StartError {
    /// A port was taken by someone else between choosing and binding it: choose again.
    PortTaken(String),
    Other(String),
}

const START_ATTEMPTS: usize = 3;
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Ensemble {
    /// Starts `participants` voting peers and `observers` observers and waits until every one
    /// serves (answers srvr with a Mode). `tweak_cfg(id, &mut text)` may edit each peer's
    /// zoo.cfg before it is written (see [`set_key`]); it runs again when a port clash makes
    /// the start choose new ports.
    ///
    /// The base config: tickTime=2000, initLimit=10, syncLimit=5, forceSync=no, every
    /// four-letter word, admin server off, no client connection limit.
    pub fn start(
        flavor: Flavor,
        participants: usize,
        observers: usize,
        tweak_cfg: impl Fn(u32, &mut String),
    ) -> Ensemble {
        assert!(participants >= 1, "an ensemble needs a participant");
        Ensemble::start_mixed(vec![flavor; participants + observers], observers, tweak_cfg)
    }

    /// Like [`Ensemble::start`], with one flavor per peer: `flavors[i]` is peer i+1's. The
    /// first `flavors.len() - observers` peers are participants, the rest observers.
    pub fn start_mixed(
        flavors: Vec<Flavor>,
        observers: usize,
        tweak_cfg: impl Fn(u32, &mut String),
    ) -> Ensemble {
        assert!(flavors.len() > observers, "an ensemble needs a participant");
        let participants = flavors.len() - observers;
        let _ = env_logger::builder().is_test(true).try_init();
        let permit = RUNNING.acquire(slots::limit("RZK_TEST_ENSEMBLES", 1));
        let dir = tempfile::Builder::new().prefix("rzk-ensemble.").tempdir().expect("temp dir");
        let mut ens = Ensemble { flavors, dir: Some(dir), peers: Vec::new(), _permit: permit };
        for attempt in 1..=START_ATTEMPTS {
            ens.layout(participants, observers, &tweak_cfg);
            for i in 0..ens.peers.len() {
                ens.launch(i);
            }
            match ens.wait_started(START_TIMEOUT) {
                Ok(()) => return ens,
                Err(StartError::PortTaken(why)) if attempt < START_ATTEMPTS => {
                    eprintln!("ensemble start attempt {attempt}: {why}; choosing new ports");
                    ens.kill_all();
                }
                Err(StartError::PortTaken(why)) | Err(StartError::Other(why)) => {
                    panic!("{} ensemble did not start: {why}\n{}", ens.name(), ens.status())
                }
            }
        }
        unreachable!()
    }

    /// (Re)creates the peers with fresh ports and empty data dirs, and writes their configs.
    fn layout(
        &mut self,
        participants: usize,
        observers: usize,
        tweak_cfg: &dyn Fn(u32, &mut String),
    ) {
        let total = participants + observers;
        let ports = super::ports::take(3 * total);
        let root = self.root().to_path_buf();
        self.peers = (0..total)
            .map(|i| {
                let id = i as u32 + 1;
                let dir = root.join(id.to_string());
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("peer dir");
                std::fs::write(dir.join("myid"), format!("{id}\n")).expect("myid");
                Peer {
                    id,
                    observer: i >= participants,
                    client_port: ports[3 * i],
                    quorum_port: ports[3 * i + 1],
                    election_port: ports[3 * i + 2],
                    flavor: self.flavors[i].clone(),
                    dir,
                    child: None,
                    frozen: false,
                }
            })
            .collect();
        let servers: Vec<String> = self.peers.iter().map(Peer::server_line).collect();
        for p in &self.peers {
            let mut cfg = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n{}\n{}maxClientCnxns=0\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\nforceSync=no\n",
                p.dir.display(),
                p.client_port,
                servers.join("\n"),
                if p.observer { "peerType=observer\n" } else { "" },
            );
            tweak_cfg(p.id, &mut cfg);
            std::fs::write(p.dir.join("zoo.cfg"), cfg).expect("write zoo.cfg");
        }
    }

    /// Spawns peer index `i` with its config (its log appended to).
    fn launch(&mut self, i: usize) {
        let p = &self.peers[i];
        assert!(p.child.is_none(), "peer {} already runs", p.id);
        let cfg = p.dir.join("zoo.cfg");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p.dir.join("log"))
            .expect("peer log");
        let _ = writeln!(&log, "===== ensemble harness: starting peer {} =====", p.id);
        let log2 = log.try_clone().expect("log clone");
        let flags = jvm_flags(&cfg);
        let mut cmd = match &p.flavor {
            Flavor::Apache => {
                let mut c = Command::new("java");
                c.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                    .args(&flags)
                    .arg("-Dzookeeper.admin.enableServer=false")
                    .arg(format!("-Dzookeeper.log.dir={}", p.dir.display()))
                    .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
                    .args(["-cp", APACHE_CLASSPATH])
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg);
                c
            }
            Flavor::Rzk(bin) => {
                let mut c = Command::new(bin);
                c.arg(&cfg);
                if !flags.is_empty() {
                    c.env("SERVER_JVMFLAGS", flags.join(" "));
                }
                if std::env::var_os("RUST_LOG").is_none() {
                    c.env("RUST_LOG", "info");
                }
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn peer {} ({:?}): {e}", p.id, p.flavor));
        let p = &mut self.peers[i];
        p.child = Some(child);
        p.frozen = false;
    }

    /// Waits until every peer serves; a peer that exits or a log that says a port is taken
    /// ends the wait early.
    fn wait_started(&mut self, timeout: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut serving = 0;
            for i in 0..self.peers.len() {
                let id = self.peers[i].id;
                let exited = match self.peers[i].child.as_mut().map(|c| c.try_wait()) {
                    Some(Ok(Some(status))) => Some(status.to_string()),
                    _ => None,
                };
                let log = self.log(id);
                if log.contains("Address already in use") {
                    return Err(StartError::PortTaken(format!("peer {id}: a port is taken")));
                }
                if let Some(status) = exited {
                    return Err(StartError::Other(format!("peer {id} exited ({status})")));
                }
                // With leaderServes=no a leader never answers srvr with a mode (its client port
                // says it is not serving): its log tells that it leads.
                let quiet_leader = std::fs::read_to_string(self.peers[i].dir.join("zoo.cfg"))
                    .is_ok_and(|c| c.contains("leaderServes=no"))
                    && log.contains("leader: serving epoch");
                if quiet_leader || self.mode(id).is_some() {
                    serving += 1;
                }
            }
            if serving == self.peers.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::Other(format!("not all serving within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn root(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    fn peer(&self, id: u32) -> &Peer {
        self.peers.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("no peer {id}"))
    }

    fn index(&self, id: u32) -> usize {
        self.peers.iter().position(|p| p.id == id).unwrap_or_else(|| panic!("no peer {id}"))
    }

    /// The flavor the peers run (peer 1's in a mixed ensemble).
    pub fn flavor(&self) -> &Flavor {
        &self.flavors[0]
    }

    /// Peer `id`'s quorum port address (learners connect to the leader there).
    pub fn quorum_addr(&self, id: u32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.peer(id).quorum_port))
    }

    /// Peer `id`'s election port address.
    pub fn election_addr(&self, id: u32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.peer(id).election_port))
    }

    /// The flavor peer `id` runs.
    pub fn flavor_of(&self, id: u32) -> &Flavor {
        &self.peer(id).flavor
    }

    /// "rzk", "apache", or "mixed".
    fn name(&self) -> &'static str {
        let first = self.flavors[0].name();
        if self.flavors.iter().all(|f| f.name() == first) {
            first
        } else {
            "mixed"
        }
    }

    /// Every peer id: participants first, then observers.
    pub fn ids(&self) -> Vec<u32> {
        self.peers.iter().map(|p| p.id).collect()
    }

    /// The participants' ids.
    pub fn participants(&self) -> Vec<u32> {
        self.peers.iter().filter(|p| !p.observer).map(|p| p.id).collect()
    }

    /// The observers' ids.
    pub fn observers(&self) -> Vec<u32> {
        self.peers.iter().filter(|p| p.observer).map(|p| p.id).collect()
    }

    /// Peer `id`'s client address (127.0.0.1:clientPort).
    pub fn client_addr(&self, id: u32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.peer(id).client_port))
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...` over every peer, observers included.
    pub fn connect_string(&self) -> String {
        let ids = self.ids();
        self.connect_string_of(&ids)
    }

    /// A connect string over the given peers only.
    pub fn connect_string_of(&self, ids: &[u32]) -> String {
        ids.iter().map(|&id| self.client_addr(id).to_string()).collect::<Vec<_>>().join(",")
    }

    /// Peer `id`'s directory (zoo.cfg, myid, log, and its data).
    pub fn dir(&self, id: u32) -> &Path {
        &self.peer(id).dir
    }

    /// Peer `id`'s output so far.
    pub fn log(&self, id: u32) -> String {
        std::fs::read_to_string(self.peer(id).dir.join("log")).unwrap_or_default()
    }

    /// Peer `id`'s process id while it runs.
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.peer(id).pid()
    }

    /// Whether peer `id`'s process runs (frozen or not).
    pub fn is_running(&mut self, id: u32) -> bool {
        let i = self.index(id);
        match self.peers[i].child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                // Exited on its own: reap it.
                self.peers[i].child = None;
                false
            }
            None => false,
        }
    }

    /// Kills peer `id` with SIGKILL (no-op when it does not run).
    pub fn kill9(&mut self, id: u32) {
        let i = self.index(id);
        if let Some(mut c) = self.peers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.peers[i].frozen = false;
    }

    /// Stops peer `id` with SIGTERM, then SIGKILL if it still runs after 10 s.
    pub fn stop(&mut self, id: u32) {
        let i = self.index(id);
        let Some(mut c) = self.peers[i].child.take() else { return };
        if self.peers[i].frozen {
            signal(c.id(), "CONT");
        }
        signal(c.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        self.peers[i].frozen = false;
    }

    /// Starts peer `id` again with the same config, ports and data (stopping it first with
    /// [`Ensemble::stop`] if it runs). Does not wait for it to serve.
    pub fn restart(&mut self, id: u32) {
        if self.is_running(id) {
            self.stop(id);
        }
        let i = self.index(id);
        self.launch(i);
    }

    /// Freezes peer `id` (SIGSTOP): its sockets stay open but nothing answers.
    pub fn sigstop(&mut self, id: u32) {
        let i = self.index(id);
        let pid = self.peers[i].pid().unwrap_or_else(|| panic!("peer {id} does not run"));
        signal(pid, "STOP");
        self.peers[i].frozen = true;
    }

    /// Thaws peer `id` (SIGCONT).
    pub fn sigcont(&mut self, id: u32) {
        let i = self.index(id);
        let pid = self.peers[i].pid().unwrap_or_else(|| panic!("peer {id} does not run"));
        signal(pid, "CONT");
        self.peers[i].frozen = false;
    }

    /// The Mode line of peer `id`'s srvr answer (leader, follower, observer, standalone), or
    /// `None` when it does not run, is frozen, or does not serve.
    pub fn mode(&self, id: u32) -> Option<String> {
        let p = self.peer(id);
        if p.child.is_none() || p.frozen {
            return None;
        }
        let answer = try_four_letter(self.client_addr(id), "srvr")?;
        answer.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
    }

    /// The peers that run and are not frozen.
    fn live(&self) -> Vec<u32> {
        self.peers.iter().filter(|p| p.child.is_some() && !p.frozen).map(|p| p.id).collect()
    }

    /// The leader, if exactly one live peer says it leads right now.
    pub fn leader(&self) -> Option<u32> {
        let leaders: Vec<u32> = self
            .live()
            .into_iter()
            .filter(|&id| self.mode(id).as_deref() == Some("leader"))
            .collect();
        match leaders[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Waits until exactly one live peer says it leads; returns its id (panics on timeout).
    pub fn wait_for_leader(&self, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.leader() {
                return id;
            }
            if Instant::now() >= deadline {
                panic!("no single leader within {timeout:?}\n{}", self.status());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until peer `id` reports `mode` (panics on timeout).
    pub fn wait_for_mode(&self, id: u32, mode: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.mode(id).as_deref() != Some(mode) {
            if Instant::now() >= deadline {
                panic!("peer {id} not {mode} within {timeout:?}\n{}", self.status());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every live (running, not frozen) peer serves (panics on timeout).
    pub fn wait_all_serving(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.live().into_iter().all(|id| self.mode(id).is_some()) {
            if Instant::now() >= deadline {
                panic!("not every live peer serves within {timeout:?}\n{}", self.status());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One line per peer: id, role, client port, pid, Mode.
    pub fn status(&self) -> String {
        let mut out = format!("{} ensemble in {}:\n", self.name(), self.root().display());
        for p in &self.peers {
            let state = match (&p.child, p.frozen) {
                (None, _) => "not running".to_string(),
                (Some(c), _) if !alive(c.id()) => "exited".to_string(),
                (Some(_), true) => "frozen (SIGSTOP)".to_string(),
                (Some(_), false) => self.mode(p.id).unwrap_or_else(|| "not serving".into()),
            };
            out.push_str(&format!(
                "  peer {} ({} {}) client {} pid {}: {state}\n",
                p.id,
                p.flavor.name(),
                if p.observer { "observer" } else { "participant" },
                p.client_port,
                p.pid().map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            ));
        }
        out
    }

    fn kill_all(&mut self) {
        for p in &mut self.peers {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.status());
            for p in &self.peers {
                let log = std::fs::read_to_string(p.dir.join("log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
                eprintln!(
                    "===== peer {} log ({} of {} lines, {}) =====\n{}",
                    p.id,
                    tail.len(),
                    lines.len(),
                    p.dir.join("log").display(),
                    tail.join("\n")
                );
            }
        }
        self.kill_all();
        if std::env::var_os("RZK_ENSEMBLE_KEEP").is_some() {
            if let Some(d) = self.dir.take() {
                eprintln!("RZK_ENSEMBLE_KEEP: kept {}", d.keep().display());
            }
        }
    }
}

/// Log lines per peer printed when a test fails.
const LOG_TAIL: usize = 60;

/// Whether process `pid` exists and is not a zombie (exited, not yet reaped).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.trim().chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Ensembles one test binary runs at once (`RZK_TEST_ENSEMBLES`, default 1).
static RUNNING: slots::Slots = slots::Slots::new();
