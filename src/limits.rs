//! Every numeric bound the server uses, as a named constant with the reason for its value.
//!
//! Defaults mirror Apache ZooKeeper so that a zoo.cfg written for it means the same thing here;
//! each constant names the Java class (or reference document) it comes from. Limits of our own,
//! with no Apache counterpart, say why the value was picked. [`crate::config`] applies the
//! user's overrides on top of these; code elsewhere reads the resulting `ServerConfig`, and
//! uses a constant from here directly only when the value is not configurable.
//!
//! Pure definitions: no I/O, no state.

use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Wire and record sizes
// ---------------------------------------------------------------------------------------------

/// Default `jute.maxbuffer`: the largest frame or jute string/buffer a server accepts, 0xfffff
/// bytes (just under 1 MiB) [BinaryInputArchive.java; wire-protocol.md §1, §2].
pub const JUTE_MAX_BUFFER_DEFAULT_BYTES: usize = 0xfffff;

/// Smallest `zookeeper.jute.maxbuffer.extrasize`: slack allowed on top of `jute.maxbuffer` when
/// reading records (room for headers around a maximal payload). Apache defaults the extra size
/// to `jute.maxbuffer` itself and raises anything smaller than this to it
/// [BinaryInputArchive.java].
pub const JUTE_MAX_BUFFER_EXTRA_MIN_BYTES: usize = 1024;

/// Default bound on a quorum packet's `data` buffer (and on its `authinfo` strings): Apache
/// reads learner-connection packets with `BinaryInputArchive`, which accepts `jute.maxbuffer`
/// plus `jute.maxbuffer.extrasize` (both 0xfffff by default), so that a PROPOSAL can carry a
/// txn whose data is a full `jute.maxbuffer` [BinaryInputArchive.checkLength].
pub const QUORUM_PACKET_MAX_BYTES_DEFAULT: usize = 2 * JUTE_MAX_BUFFER_DEFAULT_BYTES;

/// Bytes a QuorumPacket adds around its data: type, zxid, the data's length and an empty
/// authinfo vector [zookeeper.jute QuorumPacket].
pub const QUORUM_PACKET_OVERHEAD_BYTES: usize = 4 + 8 + 4 + 4;

/// Most entries of one ACL list (rzk's bound; Apache has none beyond `jute.maxbuffer`). Checks
/// cost entries times identities; more than this gets INVALIDACL.
pub const ACL_ENTRIES_MAX: usize = 1024;

/// Most identities one client connection may hold (its `ip` identity included), and the
/// longest one (scheme plus id, in bytes): an addauth past either gets AUTHFAILED and the
/// connection is closed (rzk's bounds; Apache has none).
pub const AUTH_IDS_MAX: usize = 64;

/// See [`AUTH_IDS_MAX`].
pub const AUTH_ID_BYTES_MAX: usize = 4096;

/// Largest leader-election message accepted on the election port; bigger ones mean a confused
/// or hostile peer and close the channel [QuorumCnxManager.PACKETMAXSIZE].
pub const ELECTION_MESSAGE_MAX_BYTES: usize = 512 * 1024;

/// Election-port connections whose handshake is being read at once; more are closed at once
/// (Apache's `zookeeper.quorumCnxnThreadsSize` pool holds 20; rzk reads them all on one
/// thread, so the bound is about descriptors, not threads).
pub const ELECTION_HANDSHAKES_MAX: usize = 64;

/// Largest address string in the initial election-channel handshake [QuorumCnxManager;
/// quorum-protocol.md §10].
pub const ELECTION_INITIAL_ADDRESS_MAX_BYTES: usize = 2048;

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// Default `tickTime`, the basic time unit (session buckets, quorum limits) [ZooKeeperServer
/// DEFAULT_TICK_TIME]. The sample zoo.cfg files, ours included, set 2000.
pub const TICK_TIME_DEFAULT: Duration = Duration::from_millis(3000);

/// Default `minSessionTimeout`, in ticks [ZooKeeperServer: `2 * tickTime`].
pub const MIN_SESSION_TIMEOUT_TICKS: u32 = 2;

/// Default `maxSessionTimeout`, in ticks [ZooKeeperServer: `20 * tickTime`].
pub const MAX_SESSION_TIMEOUT_TICKS: u32 = 20;

/// How long a connection may stay open without completing a `ConnectRequest` (including
/// four-letter-word connections that never send their word) before the selector closes it
/// [NIOServerCnxnFactory `zookeeper.nio.sessionlessCnxnTimeout`, default 10,000 ms].
pub const SESSIONLESS_CNXN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `fsync.warningthresholdms`: an fsync slower than this is logged at warn
/// [FileTxnLog.java].
pub const FSYNC_WARNING_THRESHOLD_DEFAULT: Duration = Duration::from_millis(1000);

/// Default `zookeeper.cnxTimeout`: connect timeout on the election channel [QuorumCnxManager.java].
pub const CNX_TIMEOUT_DEFAULT: Duration = Duration::from_millis(5000);

/// Default `zookeeper.electionPortBindRetry`: attempts to bind the election port before giving
/// up (0 = forever) [QuorumCnxManager.Listener].
pub const ELECTION_PORT_BIND_RETRY_DEFAULT: u32 = 3;

/// Election: wait this long for better votes before deciding [FastLeaderElection.finalizeWait].
pub const ELECTION_FINALIZE_WAIT: Duration = Duration::from_millis(200);

/// Election: the notification resend interval doubles up to this cap
/// [FastLeaderElection.maxNotificationInterval].
pub const ELECTION_MAX_NOTIFICATION_INTERVAL: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Connections and request flow
// ---------------------------------------------------------------------------------------------

/// File descriptors kept back from client connections when `maxCnxns` is not set: the limit
/// is then the process's descriptor limit minus this, so txn-log rolls, snapshots, quorum and
/// election sockets always find a descriptor (rzk's default; Apache's maxCnxns 0 means
/// unlimited).
pub const FD_RESERVE: usize = 256;

/// Default `maxClientCnxns`: concurrent connections per client IP address, 0 = unlimited
/// [QuorumPeerConfig.java]. (ZooKeeperServerMain's `PORT DATADIR` short form defaults to 0.)
pub const MAX_CLIENT_CNXNS_DEFAULT: u32 = 60;

/// Default `globalOutstandingLimit`: once this many requests are queued in the pipeline, the
/// server stops reading from client sockets until it drains [ZooKeeperServer.java].
pub const GLOBAL_OUTSTANDING_LIMIT_DEFAULT: u32 = 1000;

/// Default `zookeeper.largeRequestMaxBytes`: bytes of large requests (see
/// `largeRequestThreshold`, off by default) held in the server at once [ZooKeeperServer.java].
pub const LARGE_REQUEST_MAX_BYTES_DEFAULT: usize = 100 * 1024 * 1024;

/// Most response bytes we keep queued for one connection before we stop reading requests from
/// it (no Apache counterpart: NIOServerCnxn's queue is unbounded).
///
/// Why 4 MiB: a single response can be close to `jute.maxbuffer` (1 MiB), and a client with a
/// large `getData` in flight also receives watch events and pings, so a few maximal responses
/// must fit without throttling a well-behaved client. A client that stops reading pins at most
/// this much memory (times the connection cap) instead of growing without bound; pausing its
/// reads pushes the back-pressure onto its own TCP window rather than closing it.
pub const OUTBOUND_BUFFERED_MAX_BYTES: usize = 4 * 1024 * 1024;

// The outbound cap must hold several maximal responses (see above).
const _: () = assert!(OUTBOUND_BUFFERED_MAX_BYTES >= 3 * JUTE_MAX_BUFFER_DEFAULT_BYTES);

/// Requests queued between two pipeline stages at most (every stage queue, every role; no
/// Apache counterpart: its processors' queues are unbounded). Far above
/// `globalOutstandingLimit`, so in normal operation a queue never fills; when one does (a
/// stalled disk), the stage before it waits and the selector stops reading clients.
pub const STAGE_QUEUE: usize = 16 * 1024;

/// Bytes the selector reads from a socket per `read` call (the read buffer's size).
pub const CLIENT_READ_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes the selector reads from one connection per round before it serves the others: a
/// fast sender cannot hold the selector on its own connection.
pub const CLIENT_READ_BYTES_PER_ROUND: usize = 256 * 1024;

/// Four-letter words waiting for the four-letter-word thread; more are refused (the
/// connection is closed) rather than queued without bound.
pub const FOUR_LETTER_QUEUE: usize = 64;

/// Requests one connection may have in the pipeline; past it the connection is not read
/// (checked per request, not per read; rzk's bound, Apache has only the global one).
pub const CNXN_REQUESTS_IN_FLIGHT_MAX: usize = 1000;

/// Request bytes one connection may have in the pipeline; past it the connection is not read.
pub const CNXN_REQUEST_BYTES_IN_FLIGHT_MAX: usize = 16 * 1024 * 1024;

/// Unsent reply and watch-event bytes at which a connection is closed (with a log line): a
/// client that stopped reading costs at most this. Its client reconnects and re-arms its
/// watches with setWatches, as after any disconnect (rzk's bound; Apache's queue is
/// unbounded). Reading it stops far earlier, at [`OUTBOUND_BUFFERED_MAX_BYTES`].
pub const CNXN_OUTBOUND_CLOSE_BYTES: usize = 64 * 1024 * 1024;

// Closing must come after pausing, with room for the replies already in flight.
const _: () = assert!(CNXN_OUTBOUND_CLOSE_BYTES >= 8 * OUTBOUND_BUFFERED_MAX_BYTES);

/// Requests the sync stage gathers into one group commit at most: one fsync serves them all,
/// and a bound keeps one batch's replies from waiting behind a huge one.
pub const SYNC_BATCH_MAX: usize = 1000;

/// Requests the apply stage handles before it wakes the selector (one wake-up per batch, yet
/// replies start leaving while a long queue is worked off).
pub const APPLY_BATCH_MAX: usize = 256;

/// Inputs a learner handles between two flushes of its leader connection (many ACKs and
/// REQUESTs in one write).
pub const LEARNER_BATCH_MAX: usize = 256;

// ---------------------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------------------

/// Default `preAllocSize`: txn log files grow in blocks of this many KiB (64 MiB), so appends
/// rarely change the file size and fsync stays cheap [FileTxnLog; persistence-formats.md §3.2].
pub const PRE_ALLOC_SIZE_DEFAULT_KIB: u64 = 65536;

/// Default `snapCount`: about this many txns between snapshots (randomised by half)
/// [ZooKeeperServer.getSnapCount; persistence-formats.md §5.1].
pub const SNAP_COUNT_DEFAULT: u32 = 100_000;

/// Default `snapshotSizeFactor`: a learner behind the committed log is synced from the txn log
/// when that sends at most this fraction of the newest snapshot's bytes [ZKDatabase].
pub const SNAPSHOT_SIZE_FACTOR_DEFAULT: f64 = 0.33;

/// Smallest `snapCount`; Apache raises smaller values to it with a warning, because the
/// randomised threshold `snapCount / 2 + r` needs `snapCount / 2 >= 1`.
pub const SNAP_COUNT_MIN: u32 = 2;

/// Default `snapSizeLimitInKb`: also snapshot after this many KiB of txn log (4 GiB); values
/// <= 0 turn the size trigger off [ZooKeeperServer.getSnapSizeInBytes].
pub const SNAP_SIZE_LIMIT_DEFAULT_KIB: u64 = 4 * 1024 * 1024;

/// Default and smallest `autopurge.snapRetainCount`: PurgeTxnLog refuses to keep fewer than
/// 3 snapshots, so recovery always has a fallback [DatadirCleanupManager, PurgeTxnLog].
pub const SNAP_RETAIN_COUNT_MIN: u32 = 3;

/// Recovery tries at most this many of the newest snapshots [FileSnap.findNValidSnapshots;
/// persistence-formats.md §5.2].
pub const SNAPSHOT_CANDIDATES_MAX: usize = 100;

/// Nodes a snapshot walk encodes per hold of the tree's read lock (a fuzzy snapshot never
/// holds the lock for the whole tree).
pub const SNAPSHOT_CHUNK_NODES: usize = 2048;

/// Bytes a snapshot walk encodes per hold of the read lock, which bounds its buffer when
/// nodes are large.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Pause between two chunks of a snapshot walk: background work must not take a core from
/// the request pipeline for seconds on a small machine (a million nodes: ~0.5 s more).
pub const SNAPSHOT_CHUNK_PAUSE: Duration = Duration::from_micros(1000);

/// Nodes the snapshot loader's decoder thread hands to the tree builder at a time.
pub const SNAPSHOT_LOAD_BATCH: usize = 4096;

/// Proposals the leader keeps in memory to sync learners by DIFF [ZKDatabase.commitLogCount].
pub const COMMIT_LOG_COUNT: usize = 500;

// ---------------------------------------------------------------------------------------------
// Containers, TTL nodes, ids
// ---------------------------------------------------------------------------------------------

/// Default `znode.container.checkIntervalMs`: how often the container/TTL reaper runs
/// [ZooKeeperServerMain; data-model.md §6].
pub const CONTAINER_CHECK_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);

/// Default `znode.container.maxPerMinute`: most container/TTL deletions the reaper issues per
/// minute [ZooKeeperServerMain; data-model.md §6].
pub const CONTAINER_MAX_PER_MINUTE_DEFAULT: u32 = 10_000;

/// Largest server id when `extendedTypesEnabled` is on: TTL session ids reserve the top byte
/// value 0xff, so ids must fit below it [EphemeralType.validateServerId].
pub const EXTENDED_TYPES_SERVER_ID_MAX: u64 = 254;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_apache() {
        assert_eq!(JUTE_MAX_BUFFER_DEFAULT_BYTES, 1_048_575);
        assert_eq!(TICK_TIME_DEFAULT.as_millis(), 3000);
        assert_eq!(PRE_ALLOC_SIZE_DEFAULT_KIB * 1024, 64 * 1024 * 1024);
        assert_eq!(SNAP_SIZE_LIMIT_DEFAULT_KIB, 4_194_304);
        assert_eq!(CONTAINER_CHECK_INTERVAL_DEFAULT.as_millis(), 60_000);
    }
}
