//! The server's durable database (ZooKeeper's `ZKDatabase` + `FileTxnSnapLog`): recovery at
//! start-up, the txn-log sink of the sync stage, and fuzzy snapshots on a background thread.
//!
//! Recovery (persistence-formats.md §5.2): the newest snapshot that reads back with valid seals
//! (older ones are tried when a newer one is damaged), then every logged txn after it; a torn
//! tail of the newest log is cut with a warn line, damage anywhere else stops start-up with an
//! error naming the file and offset. Ephemerals of sessions that did not survive are removed.
//!
//! Snapshots are fuzzy, as ZooKeeper's: the snapshot thread walks the tree in chunks, taking
//! the read lock per chunk so writes go on, and names the file after the last zxid applied when
//! it started. Replaying the log from that zxid makes any mix of before/after states consistent
//! because every txn records the resulting values (versions, cversions), not increments.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{error, info, warn};

use super::datatree::DataTree;
use super::processor::sync::TxnSink;
use super::Shared;
use crate::jute::txn::{Txn, TxnEntry};
use crate::limits;
use crate::persistence::snapshot::{
    self, SnapshotError, SnapshotNode, SnapshotReader, SnapshotSink, SnapshotWriter, OPEN_ACL_REF,
};
use crate::persistence::txnlog::{self, LogError, TxnLogWriter};
use crate::persistence::{list_files, version_dir, LOG_PREFIX};

/// Why the database could not be loaded or written.
#[derive(Debug)]
pub enum DbError {
    /// A txn log is damaged where it cannot be a torn tail, or unreadable.
    Log(LogError),
    /// A snapshot could not be written.
    Snapshot(SnapshotError),
    /// A directory could not be created or listed.
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Logs exist that cannot be replayed from any snapshot.
    MissingSnapshot {
        /// The log directory.
        dir: PathBuf,
        /// Zxid the oldest log starts at.
        first_log_zxid: i64,
    },
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Log(e) => write!(f, "txn log: {e}"),
            DbError::Snapshot(e) => write!(f, "snapshot: {e}"),
            DbError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DbError::MissingSnapshot { dir, first_log_zxid } => write!(
                f,
                "no snapshot found, but there are log entries in {} starting at zxid 0x{first_log_zxid:x}",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Log(e) => Some(e),
            DbError::Snapshot(e) => Some(e),
            DbError::Io { source, .. } => Some(source),
            DbError::MissingSnapshot { .. } => None,
        }
    }
}

impl From<LogError> for DbError {
    fn from(e: LogError) -> Self {
        DbError::Log(e)
    }
}

impl From<SnapshotError> for DbError {
    fn from(e: SnapshotError) -> Self {
        DbError::Snapshot(e)
    }
}

/// What recovery rebuilt.
#[derive(Debug)]
pub struct Recovered {
    /// The tree, at `tree.last_processed_zxid`.
    pub tree: DataTree,
    /// Live sessions and their timeouts.
    pub sessions: Vec<(i64, i32)>,
    /// Zxid of the snapshot used (-1 if none).
    pub snapshot_zxid: i64,
    /// Txns replayed from the log.
    pub replayed: usize,
    /// Whether a torn log tail was cut.
    pub truncated: bool,
}

/// Loads the newest valid snapshot of `data_dir` and replays the logs of `data_log_dir`.
pub fn recover(
    data_dir: &Path,
    data_log_dir: &Path,
    extended_types: bool,
) -> Result<Recovered, DbError> {
    let snap_dir = version_dir(data_dir);
    let log_dir = version_dir(data_log_dir);
    for d in [&snap_dir, &log_dir] {
        std::fs::create_dir_all(d).map_err(|source| DbError::Io { path: d.clone(), source })?;
    }
    let candidates =
        snapshot::find_n_most_recent_snapshots(&snap_dir, limits::SNAPSHOT_CANDIDATES_MAX)
            .map_err(|source| DbError::Io { path: snap_dir.clone(), source })?;
    let mut loaded = None;
    for (zxid, path) in candidates {
        match load_snapshot(&path, zxid, extended_types) {
            Ok(x) => {
                info!("loaded snapshot {} (zxid 0x{zxid:x})", path.display());
                loaded = Some(x);
                break;
            }
            Err(e) => warn!("snapshot {} is damaged, trying an older one: {e}", path.display()),
        }
    }
    let (mut tree, sessions, snapshot_zxid) = match loaded {
        Some((t, s)) => {
            let z = t.last_processed_zxid;
            (t, s, z)
        }
        None => {
            let logs = list_files(&log_dir, LOG_PREFIX)
                .map_err(|source| DbError::Io { path: log_dir.clone(), source })?;
            if let Some((first, _)) = logs.first() {
                // Logs that start at the first txn can rebuild everything; anything else means
                // history was lost.
                if *first > 1 {
                    return Err(DbError::MissingSnapshot { dir: log_dir, first_log_zxid: *first });
                }
            }
            (DataTree::new(extended_types), Vec::new(), -1)
        }
    };
    let mut live: BTreeMap<i64, i32> = sessions.into_iter().collect();
    let mut iter = txnlog::read_log(&log_dir, tree.last_processed_zxid + 1)?;
    let mut replayed = 0;
    for item in iter.by_ref() {
        let logged = item?;
        let entry = &logged.entry;
        if entry.header.zxid <= tree.last_processed_zxid {
            continue;
        }
        track_sessions(&mut live, entry);
        let _ = tree.apply(&entry.header, &entry.txn);
        replayed += 1;
    }
    let truncated = match iter.torn_tail() {
        Some(tail) => {
            txnlog::truncate_tail(tail)?;
            true
        }
        None => false,
    };
    let ids: HashSet<i64> = live.keys().copied().collect();
    let orphans = tree.remove_orphan_ephemerals(&ids);
    if orphans > 0 {
        info!("removed {orphans} ephemerals of sessions that no longer exist");
    }
    info!(
        "recovered {} znodes and {} sessions at zxid 0x{:x} ({replayed} txns replayed)",
        tree.node_count(),
        live.len(),
        tree.last_processed_zxid
    );
    Ok(Recovered { tree, sessions: live.into_iter().collect(), snapshot_zxid, replayed, truncated })
}

fn track_sessions(live: &mut BTreeMap<i64, i32>, entry: &TxnEntry) {
    match entry.txn {
        Txn::CreateSession { timeout_ms } => {
            live.insert(entry.header.client_id, timeout_ms);
        }
        Txn::CloseSession(_) => {
            live.remove(&entry.header.client_id);
        }
        _ => {}
    }
}

/// Reads one snapshot into a tree (`tree.last_processed_zxid` = the name's zxid).
pub fn load_snapshot(
    path: &Path,
    zxid: i64,
    extended_types: bool,
) -> Result<(DataTree, Vec<(i64, i32)>), SnapshotError> {
    let mut reader = SnapshotReader::open(path)?;
    let sessions = reader.sessions()?;
    let mut tree = DataTree::empty(extended_types);
    // A node takes at least ~80 bytes in a snapshot; sizing the map once saves the rehashes.
    if let Ok(meta) = std::fs::metadata(path) {
        tree.reserve((meta.len() / 96).min(1 << 27) as usize);
    }
    for (r, acl) in reader.acl_cache()? {
        tree.acl_cache_mut().insert_loaded(r, acl);
    }
    // Decoding and inserting each take about half of a load: decode on a helper thread and
    // insert here, in batches.
    let (tx, rx) = crossbeam_channel::bounded::<Vec<SnapshotNode>>(8);
    let decoder = std::thread::Builder::new().name("snapshot-load".into()).spawn(move || {
        let mut batch = Vec::with_capacity(limits::SNAPSHOT_LOAD_BATCH);
        while let Some(node) = reader.next_node()? {
            batch.push(node);
            if batch.len() == limits::SNAPSHOT_LOAD_BATCH {
                let full =
                    std::mem::replace(&mut batch, Vec::with_capacity(limits::SNAPSHOT_LOAD_BATCH));
                if tx.send(full).is_err() {
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        reader.finish().map(|_| ())
    });
    let decoder =
        decoder.map_err(|source| SnapshotError::Io { path: path.to_path_buf(), source })?;
    for batch in rx {
        for SnapshotNode { path, data, acl_ref, stat } in batch {
            tree.insert_loaded(path, data, acl_ref, stat);
        }
    }
    match decoder.join() {
        Ok(result) => result?,
        Err(_) => {
            return Err(SnapshotError::Malformed {
                path: path.to_path_buf(),
                offset: 0,
                what: "the snapshot decoder thread panicked".to_owned(),
            })
        }
    }
    tree.last_processed_zxid = zxid;
    Ok((tree, sessions))
}

/// Removes every txn after `zxid` from the logs of `data_log_dir` and every snapshot of
/// `data_dir` newer than `zxid` (`FileTxnSnapLog.truncateLog`, a learner's TRUNC): such a
/// snapshot was taken after replaying txns that never committed and would bring them back.
/// No log writer may be open.
pub fn truncate(data_dir: &Path, data_log_dir: &Path, zxid: i64) -> Result<(), DbError> {
    match txnlog::truncate(&version_dir(data_log_dir), zxid) {
        Ok(()) | Err(LogError::NoLogForZxid { .. }) => {}
        Err(e) => return Err(DbError::Log(e)),
    }
    let snap_dir = version_dir(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DbError::Io { path, source }
    };
    let snaps =
        snapshot::find_n_most_recent_snapshots(&snap_dir, usize::MAX).map_err(io(&snap_dir))?;
    for (snap_zxid, path) in snaps.into_iter().filter(|(z, _)| *z > zxid) {
        info!("removing snapshot 0x{snap_zxid:x}: newer than the truncation point 0x{zxid:x}");
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    Ok(())
}

/// Writes a fuzzy snapshot of the running server to `<dataDir>/version-2`, named after the
/// zxid applied now; returns its path.
pub fn take_snapshot(shared: &Shared) -> Result<PathBuf, DbError> {
    let zxid = shared.read_tree().last_processed_zxid;
    take_snapshot_at(shared, zxid)
}

/// Writes a fuzzy snapshot named after `zxid`, a zxid the tree had applied before the walk
/// begins (the walk may see later txns too; replaying the log from `zxid` makes it exact).
pub fn take_snapshot_at(shared: &Shared, zxid: i64) -> Result<PathBuf, DbError> {
    let snap_dir = shared.config.snap_dir();
    let zxid = zxid.max(0);
    let mut w = SnapshotWriter::create(&snap_dir, zxid)?;
    let walked = write_fuzzy(shared, &mut w)?;
    let path = w.finish(None, zxid)?;
    info!(
        "snapshot {} written: {} znodes, {} sessions",
        path.display(),
        walked.nodes,
        walked.sessions
    );
    Ok(path)
}

/// The ACL reference a fuzzy snapshot that started at `zxid` with the ACL cache `known`
/// writes for a node, or `None` to leave the node and its subtree out (see [`write_fuzzy`]).
fn snapshot_acl_ref(acl: i64, czxid: i64, known: &HashSet<i64>, zxid: i64) -> Option<i64> {
    if acl == OPEN_ACL_REF || known.contains(&acl) {
        Some(acl)
    } else if czxid > zxid {
        None
    } else {
        Some(OPEN_ACL_REF)
    }
}

/// What [`write_fuzzy`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// The zxid the snapshot is valid from: every txn up to it is in, later ones may be
    /// (replaying from it makes the result exact).
    pub zxid: i64,
    /// Nodes written.
    pub nodes: usize,
    /// Sessions written.
    pub sessions: usize,
}

/// The one snapshot serializer (ZooKeeper's `DataTree.serialize` over a live tree), for the
/// snapshot file and for a SNAP to a learner: sessions, the ACL cache, then every node
/// depth-first, parents first, holding the tree's read lock for one chunk at a time (at most
/// [`limits::SNAPSHOT_CHUNK_NODES`] nodes or [`limits::SNAPSHOT_CHUNK_BYTES`]) and writing each chunk after letting
/// it go, so writes go on and memory stays bounded whatever the tree's size.
///
/// Fuzzy, as ZooKeeper's: nodes changed during the walk may be written in either state, which
/// replaying the txns after [`Walked::zxid`] fixes (every txn records resulting values). The
/// ACL cache is written first, as the format requires, so a node whose ACL reference is newer
/// than that copy changed after the walk began: if it was also created after that, it and
/// its subtree are left out (replay creates them); otherwise it is written with the
/// `OPEN_ACL_UNSAFE` reference in place of one the file would not know, and replaying its
/// setACL restores the list before anyone can read it. The file thus never names an ACL
/// reference it does not define, which Apache's loader would refuse (ZOOKEEPER-3306/4846).
pub fn write_fuzzy(shared: &Shared, out: &mut dyn SnapshotSink) -> Result<Walked, SnapshotError> {
    let (zxid, acls) = {
        let tree = shared.read_tree();
        (tree.last_processed_zxid, tree.acl_cache().entries())
    };
    let sessions = shared.with_sessions(|s| s.sessions_with_timeouts());
    out.sessions(&sessions)?;
    out.acl_cache(&acls)?;
    let known: HashSet<i64> = acls.iter().map(|(r, _)| *r).collect();
    drop(acls);
    let mut encoded: Vec<u8> = Vec::with_capacity(limits::SNAPSHOT_CHUNK_BYTES + 64 * 1024);
    let mut count = 0usize;
    // Pending nodes as (parent path, name): listing a directory only clones `Arc`s, so even
    // a node with a million children is listed in a few milliseconds under the lock.
    let root: Arc<str> = Arc::from("");
    let mut stack: Vec<(Arc<str>, Arc<str>)> = vec![(root.clone(), root)];
    let mut path = String::new();
    let mut first = true;
    while !stack.is_empty() {
        if !first {
            // A snapshot is background work: on a small machine it must not take a core away
            // from the request pipeline for seconds, so it pauses between chunks.
            std::thread::sleep(limits::SNAPSHOT_CHUNK_PAUSE);
        }
        {
            let tree = shared.read_tree();
            for _ in 0..limits::SNAPSHOT_CHUNK_NODES {
                if encoded.len() >= limits::SNAPSHOT_CHUNK_BYTES {
                    break;
                }
                let Some((parent, name)) = stack.pop() else { break };
                path.clear();
                path.push_str(&parent);
                if !(parent.is_empty() && name.is_empty()) {
                    path.push('/');
                    path.push_str(&name);
                }
                let key = if path.is_empty() { "/" } else { path.as_str() };
                let Some(n) = tree.node(key) else { continue };
                let Some(acl) = snapshot_acl_ref(n.acl, n.stat.czxid, &known, zxid) else {
                    continue;
                };
                snapshot::encode_node(&mut encoded, key, n.data.as_deref(), acl, &n.stat);
                count += 1;
                if !n.children.is_empty() {
                    let me: Arc<str> = Arc::from(path.as_str());
                    stack.extend(n.children.iter().map(|c| (me.clone(), c.clone())));
                }
            }
        }
        out.encoded_nodes(&encoded, first)?;
        encoded.clear();
        first = false;
    }
    Ok(Walked { zxid, nodes: count, sessions: sessions.len() })
}

/// The sync stage's sink: the txn log, plus rolling and snapshot triggering every `snapCount`
/// txns (randomised like ZooKeeper so that peers do not snapshot together).
pub struct LogSink {
    writer: TxnLogWriter,
    shared: Arc<Shared>,
    force_sync: bool,
    snap_count: u64,
    since_roll: u64,
    roll_at: u64,
    snapshotting: Arc<AtomicBool>,
    /// The last snapshot thread started; joined before the next one and on drop, so a stopped
    /// server leaves no snapshot half-written behind it (an in-process restart or a purge
    /// right after `Server::stop` sees only finished files).
    snapshot_thread: Option<std::thread::JoinHandle<()>>,
    rng: fastrand::Rng,
    /// Bytes logged since the last snapshot was triggered.
    logged_bytes: u64,
    /// Size of the current log file when it was last checked.
    last_file_bytes: u64,
}

impl LogSink {
    /// A sink writing to `<dataLogDir>/version-2`, with the server's `snapCount`,
    /// `preAllocSize` and `forceSync`.
    pub fn new(shared: Arc<Shared>) -> Result<LogSink, DbError> {
        let dir = shared.config.txn_log_dir();
        let writer = TxnLogWriter::new(&dir, shared.config.pre_alloc_bytes)?;
        let force_sync = shared.config.force_sync;
        let snap_count = u64::from(shared.config.snap_count);
        let mut sink = LogSink {
            writer,
            shared,
            force_sync,
            snap_count: snap_count.max(2),
            since_roll: 0,
            roll_at: 0,
            snapshotting: Arc::new(AtomicBool::new(false)),
            snapshot_thread: None,
            rng: fastrand::Rng::new(),
            logged_bytes: 0,
            last_file_bytes: 0,
        };
        sink.roll_at = sink.next_threshold();
        Ok(sink)
    }

    fn next_threshold(&mut self) -> u64 {
        // SyncRequestProcessor: snapCount/2 + random(snapCount/2).
        let half = self.snap_count / 2;
        half + self.rng.u64(0..half.max(1))
    }
}

impl LogSink {
    /// Starts a snapshot now on the snapshot thread (start-up after log replay, so the next
    /// start replays less); false if one is already running.
    pub fn snapshot_now(&mut self) -> bool {
        if self.snapshotting.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.spawn_snapshot();
        true
    }
}

impl TxnSink for LogSink {
    fn append(&mut self, entry: &TxnEntry) -> std::io::Result<()> {
        self.writer.append(entry).map_err(std::io::Error::other)?;
        self.since_roll += 1;
        Ok(())
    }

    fn commit(&mut self) -> std::io::Result<()> {
        let took = self.writer.commit(self.force_sync).map_err(std::io::Error::other)?;
        let stats = &self.shared.stats;
        stats.fsync_count.fetch_add(1, Ordering::Relaxed);
        stats.fsync_total_ms.fetch_add(took.as_millis() as u64, Ordering::Relaxed);
        let file_bytes = self.writer.current_log_bytes();
        self.logged_bytes += file_bytes.saturating_sub(self.last_file_bytes);
        self.last_file_bytes = file_bytes;
        let settings = &self.shared.config;
        let too_big = settings.snap_size_limit_bytes.is_some_and(|l| self.logged_bytes >= l);
        if let Some(limit) = settings.txn_log_size_limit_bytes {
            if file_bytes >= limit && !too_big && self.since_roll < self.roll_at {
                // zookeeper.txnLogSizeLimitInKb: a new file, no snapshot.
                self.writer.roll().map_err(std::io::Error::other)?;
                self.last_file_bytes = 0;
            }
        }
        if self.since_roll >= self.roll_at || too_big {
            // As SyncRequestProcessor: roll the log and start counting again whether or not a
            // snapshot can start now; one still running means this one is skipped.
            self.writer.roll().map_err(std::io::Error::other)?;
            self.since_roll = 0;
            self.logged_bytes = 0;
            self.last_file_bytes = 0;
            self.roll_at = self.next_threshold();
            if self.snapshotting.swap(true, Ordering::SeqCst) {
                warn!("too busy to snap, skipping");
            } else {
                self.spawn_snapshot();
            }
        }
        Ok(())
    }
}

impl LogSink {
    /// Runs `take_snapshot` on a new snapshot thread; `snapshotting` must already be set.
    fn spawn_snapshot(&mut self) {
        if let Some(done) = self.snapshot_thread.take() {
            // The flag was clear, so this thread has finished: reap it.
            let _ = done.join();
        }
        let shared = self.shared.clone();
        let flag = self.snapshotting.clone();
        // Named after what is applied when it is due, not when the (low-priority) thread
        // gets to run: the log was rolled here, so the snapshot must not claim later txns.
        let zxid = shared.read_tree().last_processed_zxid;
        let spawned = std::thread::Builder::new().name("snapshot".into()).spawn(move || {
            lower_thread_priority();
            if let Err(e) = take_snapshot_at(&shared, zxid) {
                error!("snapshot failed: {e}");
            }
            flag.store(false, Ordering::SeqCst);
        });
        match spawned {
            Ok(handle) => self.snapshot_thread = Some(handle),
            Err(e) => {
                error!("cannot start the snapshot thread: {e}");
                self.snapshotting.store(false, Ordering::SeqCst);
            }
        }
    }
}

/// Gives the calling thread the lowest CPU priority (nice 19). A snapshot is background
/// work: on a small machine it should use the cycles the request pipeline leaves idle rather
/// than make a woken pipeline thread wait behind it. Linux applies `setpriority` to one thread
/// when given its id; failure only costs that preference, so it is logged at debug.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: both are plain syscall wrappers taking and returning integers.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
        if rc != 0 {
            log::debug!("snapshot thread keeps its priority: {}", std::io::Error::last_os_error());
        }
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        if let Some(handle) = self.snapshot_thread.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_snapshots_never_name_an_acl_reference_they_do_not_define() {
        let known: HashSet<i64> = [0, 1].into_iter().collect();
        // Known references and OPEN_ACL_UNSAFE are written as they are.
        assert_eq!(snapshot_acl_ref(1, 5, &known, 10), Some(1));
        assert_eq!(snapshot_acl_ref(OPEN_ACL_REF, 50, &known, 10), Some(OPEN_ACL_REF));
        // Created after the walk began with a new list: left out, replay creates it.
        assert_eq!(snapshot_acl_ref(2, 11, &known, 10), None);
        // An older node whose list changed meanwhile: a known placeholder until its setACL
        // replays.
        assert_eq!(snapshot_acl_ref(2, 10, &known, 10), Some(OPEN_ACL_REF));
    }
}
