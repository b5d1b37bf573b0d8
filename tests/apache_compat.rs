//! Data-directory compatibility with Apache ZooKeeper 3.8, both ways (issue 3).
//!
//! - rzk -> Apache: the `rzk-server` binary writes a varied tree (killed with SIGKILL once in
//!   the middle, so the directory holds the recovery snapshot of the first half and a log
//!   tail with the second), is killed again, and Apache ZooKeeper started on that directory
//!   serves exactly the tree rzk served: data, every `Stat` field and ACLs, node by node. The
//!   session that stayed open resumes on Apache (same id and password).
//! - Apache -> rzk: the same the other way, with Apache taking fuzzy snapshots every ~20 txns.
//! - Apache's `TxnLogToolkit` (3.8's LogFormatter) and `SnapshotFormatter` read rzk's files;
//!   the snapshot's stored stats, raw ephemeralOwner (TTL / container encodings) and data match
//!   rzk's tree.
//! - Purge keeps the newest 3 snapshots and the logs they need (the same files Apache's
//!   `PurgeTxnLog` keeps), and recovery still rebuilds the whole tree.
//! - Null data (which no client can tell from empty data) stays null across both servers'
//!   snapshots and logs.
//!
//! The Apache tests need `java` and the jars of Debian's `zookeeper` package
//! (`/usr/share/java/zookeeper.jar`, which names its dependencies in its manifest); without
//! them they print why and pass. `RZK_ZOOKEEPER_CLASSPATH` overrides the classpath.
//! Every process started here is killed when its guard drops; waits have deadlines.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rzk::jute::data::{Acl as JuteAcl, Id};
use rzk::jute::proto::CreateRequest;
use rzk::jute::Jute;
use rzk::persistence::snapshot::find_n_most_recent_snapshots;
use rzk::persistence::{list_files, log_files_from, version_dir, LOG_PREFIX, SNAPSHOT_PREFIX};
use rzk::proto::OpCode;
use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, Error, Permission, Stat};

/// How long any one server may take to start serving.
const START_DEADLINE: Duration = Duration::from_secs(40);

/// How long one of Apache's command-line tools may run.
const TOOL_DEADLINE: Duration = Duration::from_secs(30);

/// How long a whole test may take before it fails (the machine has two shared cores; a run
/// normally takes 2-10 s).
const TEST_DEADLINE: Duration = Duration::from_secs(120);

/// Session timeout of the test clients: long enough that a session recovered by the next
/// server outlives the comparison, within both servers' bounds (rzk 6..60 s, Apache 4..40 s).
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Processes

/// Runs a test body under [`TEST_DEADLINE`], so a hung server fails the test instead of
/// hanging CI; dropping the body drops its guards, which kill their processes.
async fn bounded(body: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_DEADLINE, body)
        .await
        .unwrap_or_else(|_| panic!("test still running after {TEST_DEADLINE:?}"));
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// SIGKILL, as a crash: nothing is flushed or closed by the server.
    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// Fails if the process logged an error (JUL's `SEVERE:` or an `ERROR` level from other
    /// slf4j bindings): Apache swallows some load problems and only logs them.
    fn assert_no_errors_logged(&self) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let errors: Vec<String> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("SEVERE:") || lines[i].contains(" ERROR "))
            // Noise from four-letter words: Apache closes their sockets noisily.
            .filter(|&i| !lines[i].contains("Error closing a command socket"))
            .map(|i| format!("{}\n{}", lines[i.saturating_sub(1)], lines[i]))
            .collect();
        assert!(errors.is_empty(), "{} logged errors:\n{}", self.name, errors.join("\n"));
    }

    /// The end of the process's output, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// True when `srvr` answers with a zxid: the database is loaded and requests are served (both
/// servers answer "not currently serving requests" before that).
fn serving(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("Zxid: 0x")
}

async fn wait_serving(proc: &mut Proc, addr: SocketAddr) {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("{} exited ({status}) before serving:\n{}", proc.name, proc.log_tail());
        }
        if serving(addr) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not serving on {addr} after {START_DEADLINE:?}:\n{}",
            proc.name,
            proc.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_logged(mut cmd: Command, name: String, log: PathBuf) -> Proc {
    let out = File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    Proc { child, name, log }
}

/// Starts the `rzk-server` binary on `port` over `data_dir` and waits until it serves.
async fn start_rzk(port: u16, data_dir: &Path, logs: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rzk-server"));
    cmd.args([
        "-Dzookeeper.extendedTypesEnabled=true".to_string(),
        "-Dzookeeper.4lw.commands.whitelist=*".to_string(),
        port.to_string(),
        data_dir.display().to_string(),
    ])
    .env("RUST_LOG", "info");
    let log = logs.join(format!("rzk-{port}-{}.log", unique()));
    let mut proc = spawn_logged(cmd, format!("rzk-server on port {port}"), log);
    wait_serving(&mut proc, loopback(port)).await;
    proc
}

/// A temp dir, kept (and its path printed) when `RZK_COMPAT_KEEP` is set, for post-mortems.
fn temp_dir(what: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("rzk-compat-{what}-"))
        .tempdir()
        .expect("temp dir");
    if std::env::var_os("RZK_COMPAT_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Where Apache ZooKeeper 3.8 lives on this machine.
struct Apache {
    classpath: String,
}

/// The Apache installation, or `None` after printing why the test is skipped.
fn apache(test: &str) -> Option<Apache> {
    let skip = |why: String| {
        harness::require(&format!("Apache ZooKeeper (apache_compat::{test})"), Some(why));
        None
    };
    let classpath = match std::env::var("RZK_ZOOKEEPER_CLASSPATH") {
        Ok(cp) => cp,
        Err(_) => {
            let java = Path::new("/usr/share/java");
            let zk = java.join("zookeeper.jar");
            if !zk.exists() {
                return skip(format!(
                    "{} not found (install Debian's zookeeper package or set \
                     RZK_ZOOKEEPER_CLASSPATH)",
                    zk.display()
                ));
            }
            // zookeeper.jar's manifest lists its dependencies; add jute explicitly and an slf4j
            // binding so Apache's log lands in the process log.
            let mut parts = vec![zk, java.join("zookeeper-jute.jar")];
            if let Some(binding) = ["slf4j-jdk14.jar", "slf4j-simple.jar", "slf4j-nop.jar"]
                .iter()
                .map(|n| java.join(n))
                .find(|p| p.exists())
            {
                parts.push(binding);
            }
            let parts: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
            parts.join(":")
        }
    };
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let mut version = Command::new("java");
    version.arg("-version");
    let child = version
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("temp file"))
        .stderr(out.reopen().expect("temp file"))
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return skip(format!("no `java` on PATH: {e}")),
    };
    let mut proc = Proc { child, name: "java -version".into(), log: out.path().to_path_buf() };
    match wait_exit(&mut proc, TOOL_DEADLINE) {
        0 => Some(Apache { classpath }),
        code => skip(format!("`java -version` exited with {code}: {}", proc.log_tail())),
    }
}

impl Apache {
    fn java(&self) -> Command {
        let mut cmd = Command::new("java");
        // Small, quick-starting JVMs: the machine has two shared cores.
        cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]);
        // Tools print znode paths; under a C/POSIX locale JDK 17 would print non-ASCII as '?'.
        cmd.args([
            "-Dfile.encoding=UTF-8",
            "-Dsun.stdout.encoding=UTF-8",
            "-Dsun.stderr.encoding=UTF-8",
            "-cp",
        ]);
        cmd.arg(&self.classpath);
        cmd
    }

    /// Starts `QuorumPeerMain` (standalone) on `port` over `data_dir`; `snap_count` sets
    /// `zookeeper.snapCount`. Waits until it serves.
    async fn start(
        &self,
        port: u16,
        data_dir: &Path,
        conf_dir: &Path,
        snap_count: Option<u32>,
    ) -> Proc {
        let cfg = conf_dir.join(format!("zoo-{port}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 extendedTypesEnabled=true\n4lw.commands.whitelist=*\n",
                data_dir.display()
            ),
        )
        .expect("zoo.cfg");
        let mut cmd = self.java();
        cmd.arg("-Dzookeeper.admin.enableServer=false");
        if let Some(n) = snap_count {
            cmd.arg(format!("-Dzookeeper.snapCount={n}"));
        }
        cmd.arg("org.apache.zookeeper.server.quorum.QuorumPeerMain").arg(&cfg);
        let log = conf_dir.join(format!("apache-{port}.log"));
        let mut proc = spawn_logged(cmd, format!("Apache ZooKeeper on port {port}"), log);
        wait_serving(&mut proc, loopback(port)).await;
        proc
    }

    /// Runs one of Apache's command-line tools to completion (killed after
    /// [`TOOL_DEADLINE`]); returns its exit code and its stdout + stderr.
    fn tool(&self, class: &str, args: &[&str]) -> (i32, String) {
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let mut cmd = self.java();
        cmd.arg(class).args(args);
        let name = format!("{class} {}", args.join(" "));
        let mut proc = spawn_logged(cmd, name, out.path().to_path_buf());
        let code = wait_exit(&mut proc, TOOL_DEADLINE);
        (code, std::fs::read_to_string(out.path()).expect("tool output"))
    }
}

/// Waits (bounded) for `proc` to exit; its exit code (-1 if killed by a signal).
fn wait_exit(proc: &mut Proc, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = proc.child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "{} still running after {limit:?}", proc.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Clients and the tree

/// Connects once the server serves.
///
/// No client authenticates: rzk answers an auth packet with xid -4 instead of the request's
/// xid, which this client cannot match, and answers one pipelined behind the ConnectRequest
/// before the ConnectResponse (Apache 3.8 does neither). Digest ACLs are written with
/// explicit ids instead, and every node stays readable through world or ip.
async fn connect(addr: SocketAddr) -> Client {
    let c = Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .with_connection_timeout(Duration::from_secs(5));
    tokio::time::timeout(Duration::from_secs(20), c.connect(&addr.to_string()))
        .await
        .unwrap_or_else(|_| panic!("connect to {addr}: timed out"))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

fn open_acl() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// Creates `path`, retrying while the client reconnects to a restarted server; a create that
/// was applied before the connection dropped counts.
async fn create_retrying(zk: &Client, path: &str, data: &[u8], mode: CreateMode) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match zk.create(path, data, &mode.with_acls(Acls::anyone_all())).await {
            Ok(_) | Err(Error::NodeExists) => return,
            Err(e @ (Error::ConnectionLoss | Error::Timeout)) if Instant::now() < deadline => {
                eprintln!("create {path}: {e}, retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("create {path}: {e}"),
        }
    }
}

/// What the raw wire client does: a node with null data (a buffer of length -1, which the
/// Rust client cannot send) and an ephemeral deleted by an explicit closeSession.
fn raw_session_work(addr: SocketAddr, top: &str) {
    let open = vec![JuteAcl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    let mut raw = harness::Raw::connect(addr);
    let resp = raw.handshake(SESSION_TIMEOUT.as_millis() as i32);
    assert_ne!(resp.session_id, 0, "raw session refused by {addr}");
    let create = OpCode::Create.code();
    let null =
        CreateRequest { path: format!("{top}/nulldata"), data: None, acl: open.clone(), flags: 0 };
    let (h, _) = raw.call(1, create, &null.to_bytes());
    assert_eq!(h.err, 0, "create {top}/nulldata");
    let eph = CreateRequest {
        path: format!("{top}/short-lived"),
        data: Some(b"bye".to_vec()),
        acl: open,
        flags: 1,
    };
    let (h, _) = raw.call(2, create, &eph.to_bytes());
    assert_eq!(h.err, 0, "create {top}/short-lived");
    let (h, _) = raw.call(3, OpCode::CloseSession.code(), &[]);
    assert_eq!(h.err, 0, "closeSession");
}

/// Writes a varied subtree under `/<top>`: every kind of node and every kind of write,
/// failed ones included (they are logged too). `eph` is the session whose ephemerals must
/// outlive the server; `addr` is where the raw wire client connects.
async fn write_tree(zk: &Client, eph: &Client, addr: SocketAddr, top: &str) {
    let t = format!("/{top}");
    let p = |s: &str| format!("{t}/{s}");
    let open = open_acl();
    // Both clients may still be reconnecting to a restarted server.
    create_retrying(zk, &t, top.as_bytes(), CreateMode::Persistent).await;
    create_retrying(eph, &p("eph"), b"owned", CreateMode::Ephemeral).await;
    eph.create(&p("eph-seq-"), b"", &CreateMode::EphemeralSequential.with_acls(Acls::anyone_all()))
        .await
        .expect("ephemeral sequential");

    zk.create(&p("app"), b"config-v1", &open).await.expect("create app");
    zk.set_data(&p("app"), b"config-v2", None).await.expect("set app");
    zk.set_data(&p("app"), b"config-v3", Some(1)).await.expect("set app with version");
    zk.create(&p("empty"), b"", &open).await.expect("create empty");
    let (t2, a2) = (top.to_owned(), addr);
    tokio::task::spawn_blocking(move || raw_session_work(a2, &format!("/{t2}")))
        .await
        .expect("raw session");
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    for i in 0..3 {
        zk.create(&p("app/seq-"), format!("s{i}").as_bytes(), &seq).await.expect("sequential");
    }
    // mkdir tries the full path first: its failed creates are logged as error txns.
    zk.mkdir(&p("deep/a/b/c"), &open).await.expect("mkdir");
    zk.set_data(&p("deep/a/b/c"), &[0, 1, 2, 255], None).await.expect("set binary");

    // Digest, ip and world in one list.
    let alice = rzk::server::acl::digest_id("alice:secret");
    let mixed = [
        Acl::new(Permission::ALL, AuthId::new("digest", &alice)),
        Acl::new(Permission::READ | Permission::WRITE, AuthId::new("ip", "127.0.0.1")),
        Acl::new(Permission::READ, AuthId::anyone()),
    ];
    zk.create(&p("secure"), b"secret", &CreateMode::Persistent.with_acls(Acls::new(&mixed)))
        .await
        .expect("create secure");
    zk.set_data(&p("secure"), b"secret-2", None).await.expect("set secure");
    let relaxed = [
        Acl::new(Permission::ALL, AuthId::anyone()),
        Acl::new(Permission::READ, AuthId::new("ip", "127.0.0.0/8")),
    ];
    zk.set_acl(&p("empty"), &relaxed, None).await.expect("setACL");
    zk.set_acl(&p("empty"), &relaxed, Some(1)).await.expect("setACL with version");

    let container = CreateMode::Container.with_acls(Acls::anyone_all());
    zk.create(&p("container"), b"", &container).await.expect("container");
    zk.create(&p("container/item"), b"i", &open).await.expect("container child");
    let ttl = open_acl().with_ttl(Duration::from_secs(3600));
    zk.create(&p("ttl"), b"lives an hour", &ttl).await.expect("ttl");
    let ttl_seq = CreateMode::PersistentSequential
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_secs(7200));
    zk.create(&p("ttl-seq-"), b"", &ttl_seq).await.expect("ttl sequential");

    zk.create(&p("gone"), b"x", &open).await.expect("create gone");
    zk.delete(&p("gone"), Some(0)).await.expect("delete gone");
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    zk.create(&p("big"), &big, &open).await.expect("create big");
    zk.create(&p("ünïcødé ✓"), "ü".as_bytes(), &open).await.expect("create unicode");

    let mut m = zk.new_multi_writer();
    m.add_create(&p("multi"), b"m", &open).expect("multi op");
    m.add_create(&p("multi/a"), b"a", &open).expect("multi op");
    m.add_set_data(&p("app"), b"config-v4", Some(2)).expect("multi op");
    m.add_check_version(&p("empty"), 0).expect("multi op");
    m.add_delete(&p("deep/a/b/c"), Some(1)).expect("multi op");
    m.commit().await.expect("multi");
    // A failing multi: logged with error sub-txns, applies nothing.
    let mut m = zk.new_multi_writer();
    m.add_create(&p("multi/b"), b"b", &open).expect("multi op");
    m.add_create(&p("app"), b"exists", &open).expect("multi op");
    assert!(m.commit().await.is_err(), "multi with an existing node fails");
    assert!(zk.create(&p("app"), b"", &open).await.is_err(), "failed create");

    // Enough small writes to pass a small snapCount a few times.
    zk.create(&p("bulk"), b"", &open).await.expect("bulk");
    for i in 0..30 {
        zk.create(&p(&format!("bulk/n{i}")), format!("{i}").as_bytes(), &open)
            .await
            .expect("bulk create");
        if i % 3 == 0 {
            zk.set_data(&p(&format!("bulk/n{i}")), b"changed", None).await.expect("bulk set");
        }
    }
}

/// One znode as a client sees it.
#[derive(Debug, PartialEq)]
struct Znode {
    data: Vec<u8>,
    stat: Stat,
    acl: Vec<Acl>,
}

/// Every znode from `/` down, read with `zk`.
async fn read_tree(zk: &Client) -> BTreeMap<String, Znode> {
    let mut out = BTreeMap::new();
    let mut todo = vec!["/".to_owned()];
    while let Some(path) = todo.pop() {
        let (data, stat) =
            zk.get_data(&path).await.unwrap_or_else(|e| panic!("get_data {path}: {e}"));
        let (acl, _) = zk.get_acl(&path).await.unwrap_or_else(|e| panic!("get_acl {path}: {e}"));
        let children = zk.list_children(&path).await.unwrap_or_else(|e| panic!("ls {path}: {e}"));
        for c in children {
            todo.push(if path == "/" { format!("/{c}") } else { format!("{path}/{c}") });
        }
        out.insert(path, Znode { data, stat, acl });
    }
    out
}

/// Fails with every difference between two trees, node by node and field by field.
fn assert_same_tree(before: &BTreeMap<String, Znode>, after: &BTreeMap<String, Znode>, what: &str) {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut diffs = Vec::new();
    for path in paths {
        match (before.get(path), after.get(path)) {
            (Some(_), None) => diffs.push(format!("{path}: missing after")),
            (None, Some(_)) => diffs.push(format!("{path}: only after")),
            (Some(a), Some(b)) => {
                if a.data != b.data {
                    diffs.push(format!(
                        "{path}: data {} bytes {:?}.. vs {} bytes {:?}..",
                        a.data.len(),
                        &a.data[..a.data.len().min(16)],
                        b.data.len(),
                        &b.data[..b.data.len().min(16)]
                    ));
                }
                if a.stat != b.stat {
                    diffs.push(format!("{path}: stat\n  {:?}\n  {:?}", a.stat, b.stat));
                }
                if a.acl != b.acl {
                    diffs.push(format!("{path}: acl\n  {:?}\n  {:?}", a.acl, b.acl));
                }
            }
            (None, None) => unreachable!(),
        }
    }
    assert!(diffs.is_empty(), "{what}: {} differences\n{}", diffs.len(), diffs.join("\n"));
}

/// Snapshots (name zxid) and logs in `<dir>/version-2`.
fn files(dir: &Path) -> (Vec<i64>, Vec<i64>) {
    let v = version_dir(dir);
    let snaps = list_files(&v, SNAPSHOT_PREFIX).expect("list").into_iter().map(|f| f.0).collect();
    let logs = list_files(&v, LOG_PREFIX).expect("list").into_iter().map(|f| f.0).collect();
    (snaps, logs)
}

/// File names in a directory.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// The ephemerals `eph` created must be there with its session as owner, and the session
/// itself must have survived: resuming it with its id and password works on the new server.
async fn assert_session_resumes(eph: &Client, addr: SocketAddr, tops: &[&str]) {
    let resumed = tokio::time::timeout(
        Duration::from_secs(20),
        Client::connector().with_session(eph.session().clone()).connect(&addr.to_string()),
    )
    .await
    .expect("resume: timed out")
    .unwrap_or_else(|e| panic!("the open session does not resume on {addr}: {e}"));
    assert_eq!(resumed.session_id(), eph.session_id());
    for top in tops {
        let (data, stat) = resumed.get_data(&format!("/{top}/eph")).await.expect("ephemeral");
        assert_eq!(data, b"owned");
        assert_eq!(stat.ephemeral_owner, eph.session_id().0, "/{top}/eph owner");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_serves_the_tree_rzk_wrote() {
    bounded(async {
        let Some(apache) = apache("apache_serves_the_tree_rzk_wrote") else { return };
        let dir = temp_dir("data");
        let logs = temp_dir("logs");
        let port = harness::ports::one();
        let addr = loopback(port);

        let rzk = start_rzk(port, dir.path(), logs.path()).await;
        let eph = connect(addr).await;
        let zk = connect(addr).await;
        write_tree(&zk, &eph, addr, "one").await;
        eprintln!("first half written");
        rzk.kill9();
        // Recovery replays the first half and writes a snapshot of it; the second half goes to a
        // new log after that snapshot. Both clients reconnect to the restarted server by themselves.
        let rzk = start_rzk(port, dir.path(), logs.path()).await;
        eprintln!("rzk restarted");
        write_tree(&zk, &eph, addr, "two").await;
        eprintln!("second half written");
        let before = read_tree(&zk).await;
        assert!(before.len() > 100, "tree too small: {} nodes", before.len());
        rzk.kill9();
        let (snaps, logs_z) = files(dir.path());
        let newest_snap = *snaps.last().expect("a snapshot");
        assert!(newest_snap > 0, "no snapshot after writes: {snaps:?}");
        assert!(
            logs_z.iter().any(|z| *z > newest_snap),
            "no log tail after the snapshot: {logs_z:?}"
        );

        let apache_port = harness::ports::one();
        let apache_addr = loopback(apache_port);
        let zk_server = apache.start(apache_port, dir.path(), logs.path(), None).await;
        let reader = connect(apache_addr).await;
        let after = read_tree(&reader).await;
        assert_same_tree(&before, &after, "rzk -> Apache");
        // Apache checks every txn digest and the snapshot digest it finds while loading. rzk
        // writes none yet (its snapshots carry the ignored (0, 2, 0)); this guards the day it does.
        let mntr = harness::four_letter(apache_addr, "mntr");
        assert!(mntr.contains("zk_digest_mismatches_count\t0\n"), "digest mismatches:\n{mntr}");
        assert_session_resumes(&eph, apache_addr, &["one", "two"]).await;
        zk_server.assert_no_errors_logged();
        zk_server.kill9();

        // Null data (buffer length -1) survives rzk's snapshot (/one) and log (/two), Apache's
        // reading and Apache's start-up snapshot: no client can tell, so read that snapshot.
        let (snaps_after, _) = files(dir.path());
        assert!(snaps_after.last() > snaps.last(), "Apache wrote no snapshot: {snaps_after:?}");
        assert_null_data_kept(dir.path());
    })
    .await
}

/// `/one/nulldata` and `/two/nulldata` have null data and `/*/empty` empty data in the
/// database recovered from `dir`.
fn assert_null_data_kept(dir: &Path) {
    let rec = rzk::server::database::recover(dir, dir, true).expect("recovers");
    for top in ["one", "two"] {
        let node = rec.tree.node(&format!("/{top}/nulldata")).expect("nulldata");
        assert_eq!(node.data, None, "/{top}/nulldata");
        let node = rec.tree.node(&format!("/{top}/empty")).expect("empty");
        assert_eq!(node.data.as_deref(), Some(&b""[..]), "/{top}/empty");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rzk_serves_the_tree_apache_wrote() {
    bounded(async {
        let Some(apache) = apache("rzk_serves_the_tree_apache_wrote") else { return };
        let dir = temp_dir("data");
        let logs = temp_dir("logs");
        let apache_port = harness::ports::one();
        let apache_addr = loopback(apache_port);

        // snapCount 20: Apache takes fuzzy snapshots (snapshot + roll every 10..20 txns).
        let zk_server = apache.start(apache_port, dir.path(), logs.path(), Some(20)).await;
        let eph = connect(apache_addr).await;
        let zk = connect(apache_addr).await;
        write_tree(&zk, &eph, apache_addr, "one").await;
        write_tree(&zk, &eph, apache_addr, "two").await;
        let before = read_tree(&zk).await;
        zk_server.kill9();
        let (snaps, logs_z) = files(dir.path());
        assert!(snaps.len() > 2 && logs_z.len() > 2, "snapshots {snaps:?}, logs {logs_z:?}");

        let port = harness::ports::one();
        let addr = loopback(port);
        let rzk = start_rzk(port, dir.path(), logs.path()).await;
        let reader = connect(addr).await;
        let after = read_tree(&reader).await;
        assert_same_tree(&before, &after, "Apache -> rzk");
        assert_session_resumes(&eph, addr, &["one", "two"]).await;
        rzk.kill9();

        // Null data (buffer length -1) from Apache's snapshots and logs stays null in rzk's
        // start-up snapshot: no client can tell, so read the files.
        assert_null_data_kept(dir.path());
    })
    .await
}

/// One node of `SnapshotFormatter -d` output.
#[derive(Debug, Default, PartialEq)]
struct Formatted {
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    cversion: i32,
    version: i32,
    aversion: i32,
    ephemeral_owner: i64,
    data_b64: String,
}

fn parse_snapshot_formatter(out: &str) -> BTreeMap<String, Formatted> {
    let hex = |v: &str| u64::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex") as i64;
    let mut nodes = BTreeMap::new();
    let mut current: Option<(String, Formatted)> = None;
    for line in out.lines() {
        if line.starts_with('/') {
            if let Some((p, f)) = current.take() {
                nodes.insert(p, f);
            }
            current = Some((line.to_owned(), Formatted::default()));
            continue;
        }
        if line == "----" || !line.starts_with("  ") {
            if let Some((p, f)) = current.take() {
                nodes.insert(p, f);
            }
            continue;
        }
        let Some((_, f)) = current.as_mut() else { continue };
        let Some((k, v)) = line.trim().split_once(" = ") else {
            if line.trim() == "data =" {
                f.data_b64.clear();
            }
            continue;
        };
        match k {
            "cZxid" => f.czxid = hex(v),
            "mZxid" => f.mzxid = hex(v),
            "pZxid" => f.pzxid = hex(v),
            "cversion" => f.cversion = v.parse().expect("int"),
            "dataVersion" => f.version = v.parse().expect("int"),
            "aclVersion" => f.aversion = v.parse().expect("int"),
            "ephemeralOwner" => f.ephemeral_owner = hex(v),
            "data" => f.data_b64 = v.to_owned(),
            _ => {}
        }
    }
    if let Some((p, f)) = current.take() {
        nodes.insert(p, f);
    }
    nodes
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_tools_read_rzk_logs_and_snapshots() {
    bounded(async {
        let Some(apache) = apache("apache_tools_read_rzk_logs_and_snapshots") else { return };
        let mut srv = harness::TestServer::start_with(|s| s.snap_count = 50);
        let eph = connect(srv.addr).await;
        let zk = connect(srv.addr).await;
        write_tree(&zk, &eph, srv.addr, "one").await;
        // Restart: recovery writes a snapshot of the whole tree, which is then what rzk serves.
        srv.restart();
        let expected: BTreeMap<String, Formatted> = {
            let server = srv.server.as_ref().expect("running");
            let tree = server.shared.read_tree();
            tree.paths_preorder()
                .into_iter()
                .map(|p| {
                    let n = tree.node(&p).expect("listed");
                    let s = &n.stat;
                    let f = Formatted {
                        czxid: s.czxid,
                        mzxid: s.mzxid,
                        pzxid: s.pzxid,
                        cversion: s.cversion,
                        version: s.version,
                        aversion: s.aversion,
                        ephemeral_owner: s.ephemeral_owner,
                        data_b64: base64(n.data.as_deref().unwrap_or_default()),
                    };
                    (if p.is_empty() { "/".to_owned() } else { p }, f)
                })
                .collect()
        };
        srv.stop();
        let v = version_dir(srv.dir.path());

        let (snap_zxid, snap) = find_n_most_recent_snapshots(&v, 1).expect("list").remove(0);
        let (code, out) = apache.tool(
            "org.apache.zookeeper.server.SnapshotFormatter",
            &["-d", &snap.display().to_string()],
        );
        assert_eq!(code, 0, "SnapshotFormatter {}:\n{out}", snap.display());
        let formatted = parse_snapshot_formatter(&out);
        assert_eq!(
            formatted.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "SnapshotFormatter lists the znodes of snapshot.{snap_zxid:x}"
        );
        for (path, want) in &expected {
            assert_eq!(&formatted[path], want, "{path} in snapshot.{snap_zxid:x}");
        }
        // Stored encodings of the special owners: TTL = 0xFF << 56 | ttl ms, container = 1 << 63.
        assert_eq!(formatted["/one/ttl"].ephemeral_owner, (0xff << 56) | 3_600_000);
        assert_eq!(formatted["/one/container"].ephemeral_owner, i64::MIN);
        // Session Details (sid, timeout, ephemeralCount): the open session with its 2 ephemerals.
        let session_line =
            format!("0x{:x}, {}, 2", eph.session_id().0, SESSION_TIMEOUT.as_millis());
        assert!(out.lines().any(|l| l == session_line), "no `{session_line}` in:\n{out}");

        // Every log rzk wrote, through 3.8's TxnLogToolkit (LogFormatter's successor).
        let mut dumped = String::new();
        let mut txns = 0;
        for (zxid, log) in list_files(&v, LOG_PREFIX).expect("list") {
            let (code, out) = apache.tool(
                "org.apache.zookeeper.server.persistence.TxnLogToolkit",
                &["-d", &log.display().to_string()],
            );
            assert_eq!(code, 0, "TxnLogToolkit {}:\n{out}", log.display());
            assert!(!out.contains("CRC"), "checksum complaint in log.{zxid:x}:\n{out}");
            let n: usize = out
                .lines()
                .find_map(|l| {
                    l.strip_prefix("EOF reached after ")?.strip_suffix(" txns.")?.parse().ok()
                })
                .unwrap_or_else(|| panic!("log.{zxid:x} not read to its end:\n{out}"));
            txns += n;
            dumped.push_str(&out);
        }
        assert!(txns > 50, "only {txns} txns in the logs");
        for path in expected.keys().filter(|p| p.starts_with("/one")) {
            // Sequential names get their suffix from the server; the log records the full path.
            assert!(dumped.contains(path.as_str()), "{path} in no txn log dump");
        }
        for path in ["/one/gone", "/one/short-lived", "/one/multi/b"] {
            assert!(dumped.contains(path), "{path} in no txn log dump");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_keeps_three_snapshots_and_the_logs_they_need() {
    bounded(async {
        let mut srv = harness::TestServer::start_with(|s| s.snap_count = 50);
        let eph = connect(srv.addr).await;
        let zk = connect(srv.addr).await;
        write_tree(&zk, &eph, srv.addr, "one").await;
        // Writes in pipelined rounds of 10 (one group commit each, so the snapCount threshold is
        // checked often) until there are 5 snapshots: snapCount 50 means one every 25..50 txns,
        // minus the ones skipped while the previous snapshot is still being written.
        zk.create("/load", b"", &open_acl()).await.expect("create");
        let open = open_acl();
        let mut round = 0;
        while files(srv.dir.path()).0.len() < 5 {
            assert!(round < 300, "no 5 snapshots after {round} rounds of 10 writes");
            let paths: Vec<String> = (0..10).map(|i| format!("/load/r{round}-{i}")).collect();
            let creates: Vec<_> = paths.iter().map(|p| zk.create(p, b"x", &open)).collect();
            for c in creates {
                c.await.expect("create");
            }
            let sets: Vec<_> = paths.iter().map(|p| zk.set_data(p, b"y", None)).collect();
            for s in sets {
                s.await.expect("set");
            }
            round += 1;
        }
        let before = read_tree(&zk).await;
        srv.stop(); // Joins the snapshot thread too: every snapshot is finished.

        let dir = srv.dir.path().to_path_buf();
        let (snaps, logs) = files(&dir);
        let valid: Vec<i64> = find_n_most_recent_snapshots(&version_dir(&dir), usize::MAX)
            .expect("list")
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(valid.len(), snaps.len(), "every snapshot is complete");
        assert!(snaps.len() > 3, "only {} snapshots: {snaps:?}", snaps.len());
        // Apache's PurgeTxnLog gets hard links to the same files and must keep the same ones.
        let apache =
            apache("purge_keeps_three_snapshots_and_the_logs_they_need (PurgeTxnLog part)");
        let twin = temp_dir("purge-twin");
        if apache.is_some() {
            let tv = version_dir(twin.path());
            std::fs::create_dir_all(&tv).expect("mkdir");
            for e in std::fs::read_dir(version_dir(&dir)).expect("list") {
                let e = e.expect("entry");
                std::fs::hard_link(e.path(), tv.join(e.file_name())).expect("link");
            }
        }
        let removed = rzk::persistence::purge::purge(&dir, &dir, 3).expect("purge");
        let (snaps_after, logs_after) = files(&dir);
        let kept: Vec<i64> = snaps[snaps.len() - 3..].to_vec();
        assert_eq!(snaps_after, kept, "the newest 3 snapshots stay");
        let indexed: Vec<(i64, ())> = logs.iter().map(|z| (*z, ())).collect();
        let needed: Vec<i64> = log_files_from(&indexed, kept[0]).into_iter().map(|l| l.0).collect();
        assert_eq!(logs_after, needed, "the logs from the oldest kept snapshot on stay");
        assert_eq!(
            removed.len(),
            snaps.len() + logs.len() - snaps_after.len() - logs_after.len(),
            "removed {removed:?}"
        );

        if let Some(apache) = &apache {
            let t = twin.path().display().to_string();
            let (code, out) =
                apache.tool("org.apache.zookeeper.server.PurgeTxnLog", &[&t, &t, "-n", "3"]);
            assert_eq!(code, 0, "PurgeTxnLog:\n{out}");
            assert_eq!(
                names(&version_dir(twin.path())),
                names(&version_dir(&dir)),
                "rzk's purge and Apache's PurgeTxnLog keep the same files"
            );
            // Apache recovers the purged twin too: rzk's newest snapshot was taken under load
            // (fuzzy), so Apache replays txns whose effects it already holds. New files only:
            // the shared (hard-linked) ones are read, never written.
            let port = harness::ports::one();
            let logs = temp_dir("logs");
            let zk_server = apache.start(port, twin.path(), logs.path(), None).await;
            let reader = connect(loopback(port)).await;
            assert_same_tree(&before, &read_tree(&reader).await, "Apache after rzk's purge");
            zk_server.assert_no_errors_logged();
            zk_server.kill9();
        }

        srv.restart();
        let zk = connect(srv.addr).await;
        let after = read_tree(&zk).await;
        assert_same_tree(&before, &after, "recovery after purge");
        drop(eph);
    })
    .await
}
