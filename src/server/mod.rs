//! The standalone server: shared state and the threads that run it.
//!
//! Thread map (like ZooKeeper's standalone `ZooKeeperServer`):
//!
//! | thread | owns | module |
//! |---|---|---|
//! | `cnxn` | the mio selector, listener, connections (slab) | [`cnxn`] |
//! | `prep` | zxid allocation, outstanding changes | [`processor::prep`] |
//! | `sync` | the txn log (group commit) | [`processor::sync`] |
//! | `apply` | writes to the tree, replies, watch events | [`processor::apply`] |
//! | `session-expiry` | wakes at bucket boundaries, submits closeSession | [`run`] |
//! | `container-reaper` | deletes empty containers and expired TTL nodes | [`reaper`] |
//!
//! State shared between them lives in [`Shared`]: the tree (`RwLock`, written only by apply),
//! the session tracker and the watch registry (mutexes, held briefly), counters (atomics).

pub mod acl;
pub mod cnxn;
pub mod database;
pub mod datatree;
pub mod fourlw;
pub mod processor;
pub mod reaper;
pub mod session;
pub mod stats;
pub mod watch;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use log::{error, info};

use self::datatree::DataTree;
use self::processor::{Kind, Request};
use self::session::SessionTracker;
use self::stats::ServerStats;
use self::watch::WatchManager;
use crate::proto::ErrorCode;

/// Requests queued between two pipeline stages at most.
pub const STAGE_QUEUE: usize = 16 * 1024;

/// Identifies one client connection across threads: slab key in the low 32 bits, a
/// generation in the high 32 so a reused slot is never confused with the old connection.
pub type ConnId = u64;

/// Everything the running server needs to know from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Client port address.
    pub client_addr: SocketAddr,
    /// Snapshot directory (dataDir).
    pub data_dir: PathBuf,
    /// Txn log directory (dataLogDir).
    pub data_log_dir: PathBuf,
    /// tickTime.
    pub tick: Duration,
    /// minSessionTimeout, ms.
    pub min_session_timeout_ms: i32,
    /// maxSessionTimeout, ms.
    pub max_session_timeout_ms: i32,
    /// maxClientCnxns per IP (0 = unlimited).
    pub max_client_cnxns: usize,
    /// maxCnxns in total (0 = unlimited).
    pub max_cnxns: usize,
    /// jute.maxbuffer: largest frame accepted.
    pub jute_max_buffer: usize,
    /// globalOutstandingLimit.
    pub global_outstanding_limit: usize,
    /// extendedTypesEnabled (TTL nodes).
    pub extended_types: bool,
    /// zookeeper.skipACL.
    pub skip_acl: bool,
    /// superDigest (`super:base64hash`).
    pub super_digest: Option<String>,
    /// reconfigEnabled.
    pub reconfig_enabled: bool,
    /// Whitelisted four-letter words (`*` = all).
    pub four_letter_words: BTreeSet<String>,
    /// znode.container.checkIntervalMs.
    pub container_check_interval: Duration,
    /// znode.container.maxPerMinute.
    pub container_max_per_minute: u32,
    /// znode.container.maxNeverUsedIntervalMs (0 = never).
    pub container_max_never_used: Duration,
    /// forceSync.
    pub force_sync: bool,
    /// fsync.warningthresholdms.
    pub fsync_warning: Duration,
    /// The server id (1 standalone).
    pub server_id: u8,
    /// snapCount: txns between snapshots (randomised by up to half).
    pub snap_count: u64,
    /// preAllocSize in bytes.
    pub prealloc_bytes: u64,
    /// autopurge.snapRetainCount.
    pub autopurge_retain: usize,
    /// autopurge.purgeInterval (zero = off).
    pub autopurge_interval: Duration,
    /// snapSizeLimitInKb in bytes: also snapshot once the log since the last one is this big.
    pub snap_size_limit_bytes: Option<u64>,
    /// zookeeper.txnLogSizeLimitInKb in bytes: roll log files at this size.
    pub txn_log_size_limit_bytes: Option<u64>,
    /// The role this server instance plays (four-letter words).
    pub mode: ServerMode,
    /// `conf` lines after `serverId` for a quorum member (initLimit ... membership).
    pub quorum_conf: Option<String>,
}

/// The role a running server instance plays, as the four-letter words name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    /// No ensemble.
    Standalone,
    /// Quorum leader.
    Leader,
    /// Quorum follower.
    Follower,
    /// Quorum observer.
    Observer,
    /// A peer cut off from its quorum serving reads only.
    ReadOnly,
    /// A quorum member that is LOOKING: no client is served.
    NotServing,
}

impl ServerMode {
    /// The name used by `srvr`/`stat` (`Mode:`) and `mntr` (`zk_server_state`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Standalone => "standalone",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
            ServerMode::ReadOnly => "read-only",
            ServerMode::NotServing => "looking",
        }
    }
}

/// Leader-only counters for `mntr` (updated by the leader thread).
#[derive(Debug, Default)]
pub struct QuorumStats {
    /// Connected learners.
    pub learners: std::sync::atomic::AtomicU64,
    /// Synced voting followers.
    pub synced_followers: std::sync::atomic::AtomicU64,
    /// Synced observers.
    pub synced_observers: std::sync::atomic::AtomicU64,
    /// Forwarded syncs waiting for a commit.
    pub pending_syncs: std::sync::atomic::AtomicU64,
    /// Size of the last proposal's txn bytes.
    pub last_proposal_size: std::sync::atomic::AtomicU64,
    /// Smallest proposal.
    pub min_proposal_size: std::sync::atomic::AtomicU64,
    /// Largest proposal.
    pub max_proposal_size: std::sync::atomic::AtomicU64,
}

impl Settings {
    /// Apache's defaults for a standalone server on `client_addr` with data in `data_dir`.
    pub fn new(client_addr: SocketAddr, data_dir: PathBuf) -> Settings {
        let tick_ms = 3000;
        Settings {
            client_addr,
            data_log_dir: data_dir.clone(),
            data_dir,
            tick: Duration::from_millis(tick_ms),
            min_session_timeout_ms: 2 * tick_ms as i32,
            max_session_timeout_ms: 20 * tick_ms as i32,
            max_client_cnxns: 60,
            max_cnxns: 0,
            jute_max_buffer: 0xfffff,
            global_outstanding_limit: 1000,
            extended_types: false,
            skip_acl: false,
            super_digest: None,
            reconfig_enabled: false,
            four_letter_words: ["srvr".to_owned()].into_iter().collect(),
            container_check_interval: Duration::from_secs(60),
            container_max_per_minute: 10_000,
            container_max_never_used: Duration::ZERO,
            force_sync: true,
            fsync_warning: Duration::from_secs(1),
            server_id: 1,
            snap_count: 100_000,
            prealloc_bytes: 64 << 20,
            autopurge_retain: 3,
            autopurge_interval: Duration::ZERO,
            snap_size_limit_bytes: Some(4 << 30),
            txn_log_size_limit_bytes: None,
            mode: ServerMode::Standalone,
            quorum_conf: None,
        }
    }

    /// Whether a four-letter word may run.
    pub fn four_letter_allowed(&self, word: &str) -> bool {
        self.four_letter_words.contains("*") || self.four_letter_words.contains(word)
    }
}

/// State shared by the server's threads.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub settings: Settings,
    tree: RwLock<DataTree>,
    sessions: Mutex<SessionTracker>,
    watches: Mutex<WatchManager>,
    /// Counters.
    pub stats: ServerStats,
    /// When the server started (monotonic base for session buckets).
    pub started: Instant,
    /// Cleared when the server stops.
    pub running: AtomicBool,
    /// The client address actually bound (differs from the settings with port 0); set once by
    /// the selector.
    pub bound_addr: OnceLock<SocketAddr>,
    /// Leader-only counters.
    pub quorum_stats: QuorumStats,
}

impl Shared {
    /// Shared state over a loaded tree and tracker.
    pub fn new(settings: Settings, tree: DataTree, sessions: SessionTracker) -> Shared {
        Shared {
            settings,
            tree: RwLock::new(tree),
            sessions: Mutex::new(sessions),
            watches: Mutex::new(WatchManager::new()),
            stats: ServerStats::default(),
            started: Instant::now(),
            running: AtomicBool::new(true),
            bound_addr: OnceLock::new(),
            quorum_stats: QuorumStats::default(),
        }
    }

    /// Milliseconds since start (the session tracker's clock).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Reads the tree. A poisoned lock means a stage panicked mid-update: the process is going
    /// down anyway (critical thread), so the guard is taken as is.
    pub fn read_tree(&self) -> RwLockReadGuard<'_, DataTree> {
        self.tree.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the tree (apply stage only).
    pub fn write_tree(&self) -> RwLockWriteGuard<'_, DataTree> {
        self.tree.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the session tracker.
    pub fn with_sessions<T>(&self, f: impl FnOnce(&mut SessionTracker) -> T) -> T {
        let mut guard = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The prep stage's session check.
    pub fn sessions_check(&self, session: i64) -> Result<(), ErrorCode> {
        self.with_sessions(|s| s.check(session))
    }

    /// Locks the watch registry.
    pub fn lock_watches(&self) -> MutexGuard<'_, WatchManager> {
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running server: its threads and the handle to stop it.
pub struct Server {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The bound client address (useful with port 0).
    pub local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts every thread over `tree` and `sessions` (already recovered).
    pub fn start(
        settings: Settings,
        tree: DataTree,
        sessions: SessionTracker,
        sink: impl FnOnce(&Arc<Shared>) -> std::io::Result<Box<dyn processor::sync::TxnSink>>,
    ) -> std::io::Result<Server> {
        let last_zxid = tree.last_processed_zxid;
        let shared = Arc::new(Shared::new(settings, tree, sessions));
        let sink = sink(&shared)?;
        let (prep_tx, prep_rx) = unbounded::<Request>();
        // Between the stages the channels are bounded rings: no allocation per request, and a
        // slow disk pushes back on prep instead of queueing without limit. Nothing downstream
        // ever waits on an upstream stage, so this cannot deadlock. The selector's own channel
        // stays unbounded: the selector must never block.
        let (sync_tx, sync_rx) = bounded::<Request>(STAGE_QUEUE);
        let (apply_tx, apply_rx) = bounded::<Request>(STAGE_QUEUE);
        let (out_tx, out_rx) = unbounded();
        let applied = Arc::new(AtomicI64::new(last_zxid));
        let stop = Arc::new(AtomicBool::new(false));

        let selector = cnxn::Selector::bind(shared.clone(), prep_tx.clone(), out_rx, stop.clone())?;
        let local_addr = selector.local_addr();
        let waker = selector.waker();
        let mut threads = Vec::new();

        let prep = processor::prep::Prep::new(shared.clone(), last_zxid, applied.clone());
        threads.push(spawn("prep", move || prep.run(prep_rx, sync_tx))?);
        let warn = shared.settings.fsync_warning;
        let sync = processor::sync::Sync::new(BoxSink(sink), warn);
        threads.push(spawn("sync", move || sync.run(sync_rx, apply_tx))?);
        let apply = processor::apply::Apply::new(shared.clone(), applied, out_tx, waker.clone());
        threads.push(spawn("apply", move || apply.run(apply_rx))?);
        threads.push(spawn("cnxn", move || selector.run())?);
        let (s2, p2, st2) = (shared.clone(), prep_tx.clone(), stop.clone());
        threads.push(spawn("session-expiry", move || expiry_loop(s2, p2, st2))?);
        let (s3, p3, st3) = (shared.clone(), prep_tx, stop.clone());
        threads.push(spawn("container-reaper", move || reaper::run(s3, p3, st3))?);
        let st = &shared.settings;
        if st.autopurge_interval > Duration::ZERO {
            let (d, l, n, i) = (
                st.data_dir.clone(),
                st.data_log_dir.clone(),
                st.autopurge_retain,
                st.autopurge_interval,
            );
            let st4 = stop.clone();
            info!("purge task: keeping {n} snapshots, every {}h", i.as_secs() / 3600);
            threads.push(spawn("purge", move || database::purge_loop(d, l, n, i, st4))?);
        }
        info!("serving clients on {local_addr}");
        Ok(Server { shared, local_addr, stop, waker, threads })
    }

    /// Stops accepting, closes connections and joins the threads.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.running.store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = self.waker.wake();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Blocks until the server stops (it runs until the process is killed).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_inner();
        }
    }
}

pub(crate) struct BoxSink(pub(crate) Box<dyn processor::sync::TxnSink>);

impl processor::sync::TxnSink for BoxSink {
    fn append(&mut self, e: &crate::jute::txn::TxnEntry) -> std::io::Result<()> {
        self.0.append(e)
    }
    fn commit(&mut self) -> std::io::Result<()> {
        self.0.commit()
    }
}

pub(crate) fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}

/// The session-expiry thread: sleeps to the next bucket, expires due sessions, submits their
/// closeSession requests.
pub(crate) fn expiry_loop(shared: Arc<Shared>, prep: Sender<Request>, stop: Arc<AtomicBool>) {
    let tick = shared.settings.tick;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let now = shared.now_ms();
        let expired = shared.with_sessions(|s| s.expire(now));
        for session in expired {
            info!("expiring session 0x{session:x}");
            let req = Request::new(
                None,
                session,
                0,
                crate::proto::OpCode::CloseSession.code(),
                Kind::Expire,
            );
            if prep.send(req).is_err() {
                error!("session-expiry: pipeline is gone");
                return;
            }
        }
        let next = shared.with_sessions(|s| s.next_expiry_ms());
        let now = shared.now_ms();
        let wait = match next {
            Some(at) if at > now => Duration::from_millis(at - now),
            Some(_) => Duration::from_millis(1),
            None => tick,
        };
        std::thread::sleep(wait.min(Duration::from_millis(100)));
    }
}

/// Recovers the database from disk and starts a standalone server on it.
pub fn start_standalone(settings: Settings) -> Result<Server, Box<dyn std::error::Error>> {
    let rec =
        database::recover(&settings.data_dir, &settings.data_log_dir, settings.extended_types)?;
    let tick_ms = settings.tick.as_millis() as u64;
    let mut sessions =
        SessionTracker::new(tick_ms, settings.server_id, processor::wall_clock_ms() as u64);
    for (id, timeout) in &rec.sessions {
        sessions.add(*id, *timeout, 0);
    }
    let need_snapshot = rec.snapshot_zxid < 0 || rec.replayed > 0 || rec.truncated;
    let server = Server::start(settings, rec.tree, sessions, |shared| {
        let mut sink = database::LogSink::new(shared.clone()).map_err(std::io::Error::other)?;
        if need_snapshot {
            // In the background: the replayed log stays until a later purge, so a crash
            // before this snapshot is written only means replaying it again.
            sink.snapshot_now();
        }
        Ok(Box::new(sink))
    })?;
    Ok(server)
}

/// Runs the server described by `config` until the process is killed (the `rzk-server` entry).
pub fn run(config: crate::config::ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(q) = &config.quorum {
        // Like QuorumPeerMain: one participant and standaloneEnabled runs standalone.
        let standalone =
            config.standalone_enabled && q.participants().count() == 1 && q.servers.len() == 1;
        if !standalone {
            return crate::quorum::peer::run(config);
        }
        info!("a single server in the ensemble and standaloneEnabled: running standalone");
    }
    run_standalone(Settings::from_config(&config))
}

impl Settings {
    /// The running settings of a parsed configuration.
    pub fn from_config(c: &crate::config::ServerConfig) -> Settings {
        let mut s = Settings::new(c.client_address, c.data_dir.clone());
        s.data_log_dir = c.data_log_dir.clone();
        s.tick = c.tick_time;
        s.min_session_timeout_ms = c.session_timeouts.min().as_millis() as i32;
        s.max_session_timeout_ms = c.session_timeouts.max().as_millis() as i32;
        s.max_client_cnxns = c.max_client_cnxns.map_or(0, |n| n.get() as usize);
        s.max_cnxns = c.max_cnxns.map_or(0, |n| n.get() as usize);
        s.jute_max_buffer = c.jute_max_buffer_bytes;
        s.global_outstanding_limit = c.global_outstanding_limit.get() as usize;
        s.extended_types = c.extended_types_enabled;
        s.skip_acl = c.skip_acl;
        s.super_digest = c.super_digest.clone();
        s.reconfig_enabled = c.reconfig_enabled;
        s.four_letter_words = crate::proto::frame::FOUR_LETTER_WORDS
            .iter()
            .filter(|w| c.four_letter_word_enabled(w))
            .map(|w| (*w).to_owned())
            .collect();
        s.container_check_interval = c.container_check_interval;
        s.container_max_per_minute = c.container_max_per_minute.get();
        s.container_max_never_used = c.container_max_never_used_interval.unwrap_or_default();
        s.force_sync = c.force_sync;
        s.fsync_warning = c.fsync_warning_threshold;
        s.snap_count = c.snap_count as u64;
        s.prealloc_bytes = c.pre_alloc_bytes;
        s.autopurge_retain = c.snap_retain_count as usize;
        s.autopurge_interval = c.purge_interval.unwrap_or_default();
        s.snap_size_limit_bytes = c.snap_size_limit_bytes;
        s.txn_log_size_limit_bytes = c.txn_log_size_limit_bytes;
        s
    }
}

/// Runs a standalone server until the process is killed.
pub fn run_standalone(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    start_standalone(settings)?.wait();
    Ok(())
}
