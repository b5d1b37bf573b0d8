//! The server: the state its threads share, the pipeline they form, and the standalone
//! server (ZooKeeperServerMain). It knows nothing of the quorum: a quorum peer
//! (the quorum package) builds its roles from the same pieces through [`pipeline`], [`database`]
//! and [`Shared`].
//!
//! Thread map of a standalone server (like ZooKeeper's standalone `ZooKeeperServer`):
//!
//! | thread | owns | module |
//! |---|---|---|
//! | `cnxn` | the mio selector, listener, connections (slab) | [`cnxn`] |
//! | `prep` | zxid allocation, outstanding changes | [`processor::prep`] |
//! | `sync` | the txn log (group commit) | [`processor::sync`] |
//! | `apply` | writes to the tree, replies, watch events | [`processor::apply`] |
//! | `session-expiry` | wakes at bucket boundaries, submits closeSession | [`pipeline`] |
//! | `container-reaper` | deletes empty containers and expired TTL nodes | [`reaper`] |
//! | `snapshot` | fuzzy snapshots every `snapCount` txns | [`database`] |
//! | `purge` | keeps `autopurge.snapRetainCount` snapshots | [`cleanup`] |
//!
//! Every thread is critical ([`critical`]): its failure ends the server.
//!
//! State shared between them lives in [`Shared`]: the tree (`RwLock`, written only by apply),
//! the session tracker and the watch registry (mutexes, held briefly), counters (atomics).

pub mod acl;
pub mod cleanup;
pub mod cnxn;
pub mod critical;
pub mod database;
pub mod datatree;
pub mod fourlw;
pub mod pipeline;
pub mod processor;
pub mod reaper;
pub mod role;
pub mod session;
pub mod stats;
pub mod watch;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use crossbeam_channel::Receiver;

use self::critical::{Fatal, FatalTx};
use self::datatree::DataTree;
use self::session::SessionTracker;
use self::stats::ServerStats;
use self::watch::WatchManager;
use crate::config::ServerConfig;
use crate::proto::ErrorCode;

/// Identifies one client connection across threads: slab key in the low 32 bits, a
/// generation in the high 32 so a reused slot is never confused with the old connection.
pub type ConnId = u64;

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

/// State shared by the server's threads.
#[derive(Debug)]
pub struct Shared {
    /// The configuration, as parsed from zoo.cfg and `-D` properties (one type from the parser
    /// to the running server).
    pub config: Arc<ServerConfig>,
    /// The role this server instance plays.
    pub mode: ServerMode,
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
    pub fn new(
        config: Arc<ServerConfig>,
        mode: ServerMode,
        tree: DataTree,
        sessions: SessionTracker,
    ) -> Shared {
        Shared {
            config,
            mode,
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

    /// Whether a four-letter word may run (`4lw.commands.whitelist`).
    pub fn four_letter_allowed(&self, word: &str) -> bool {
        self.config.four_letter_word_enabled(word)
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

/// A session tracker for `config` holding `sessions` (id, timeout) recovered from disk; new
/// session ids carry this server's id in their top byte (1 standalone, as ZooKeeperServer's
/// `createSessionTrackerServerId`, else `myid`).
pub fn session_tracker(config: &ServerConfig, sessions: &[(i64, i32)]) -> SessionTracker {
    let tick_ms = config.tick_time.as_millis() as u64;
    let sid = config.quorum.as_ref().map_or(1, |q| (q.server_id.0 & 0xff) as u8);
    let mut tracker = SessionTracker::new(tick_ms, sid, processor::wall_clock_ms() as u64);
    for (id, timeout) in sessions {
        tracker.add(*id, *timeout, 0);
    }
    tracker
}

/// A running standalone server (ZooKeeperServerMain): its pipeline and the purge task.
pub struct Server {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The bound client address (useful with port 0).
    pub local_addr: SocketAddr,
    pipeline: Option<pipeline::Pipeline>,
    purge: Option<cleanup::PurgeTask>,
    fatal: Receiver<Fatal>,
}

impl Server {
    /// Waits until a critical thread fails (the server runs until the process is killed).
    pub fn wait(mut self) -> Fatal {
        let fatal = self.fatal.recv().unwrap_or_else(|_| Fatal {
            thread: "server".into(),
            error: "every thread ended".into(),
        });
        self.stop_inner();
        fatal
    }

    /// The fatal error that stopped a thread, if any has (the server keeps running threads it
    /// was not told to stop: call [`Server::stop`]).
    pub fn fatal(&self) -> Option<Fatal> {
        self.fatal.try_recv().ok()
    }

    /// Stops accepting, closes connections and joins the threads.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(p) = self.pipeline.take() {
            p.stop();
        }
        if let Some(p) = self.purge.take() {
            p.stop();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Recovers the database from disk and starts a standalone server on it.
pub fn start_standalone(
    config: impl Into<Arc<ServerConfig>>,
) -> Result<Server, Box<dyn std::error::Error>> {
    let config = config.into();
    let rec =
        database::recover(&config.data_dir, &config.data_log_dir, config.extended_types_enabled)?;
    let sessions = session_tracker(&config, &rec.sessions);
    let need_snapshot = rec.snapshot_zxid < 0 || rec.replayed > 0 || rec.truncated;
    let last_zxid = rec.tree.last_processed_zxid;
    let shared = Arc::new(Shared::new(config.clone(), ServerMode::Standalone, rec.tree, sessions));
    let mut sink = database::LogSink::new(shared.clone())?;
    if need_snapshot {
        // In the background: the replayed log stays until a later purge, so a crash before
        // this snapshot is written only means replaying it again.
        sink.snapshot_now();
    }
    let (fatal_tx, fatal) = FatalTx::channel();
    let spec = pipeline::PipelineSpec {
        stages: pipeline::Stages::Standalone,
        sink: Some(sink),
        serve_clients: true,
        last_zxid,
        applied: Arc::new(AtomicI64::new(last_zxid)),
    };
    let pipeline = pipeline::Pipeline::start(shared.clone(), spec, &fatal_tx)?;
    let local_addr = pipeline.local_addr().unwrap_or(config.client_address);
    let purge = cleanup::PurgeTask::start(&config, &fatal_tx)?;
    Ok(Server { shared, local_addr, pipeline: Some(pipeline), purge, fatal })
}

/// Runs a standalone server until a critical thread fails (the `rzk-server` entry without
/// `server.N` lines); the error is what stopped it.
pub fn run_standalone(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let fatal = start_standalone(config)?.wait();
    Err(Box::new(fatal))
}
