//! Deterministic simulation of a Zab ensemble built from rzk's I/O-free cores: per peer an
//! election core ([`Election`]) and, once it decided, a [`Leader`] or [`Learner`] core, plus the
//! shell around them as the cores document it, simulated on one thread with a simulated clock.
//!
//! What a simulated peer is:
//! - **Disk** (survives crashes): the txn log as `(zxid, payload)` pairs with a durable prefix
//!   (entries past it are lost by a crash), `acceptedEpoch`, `currentEpoch`, and a "snapshot"
//!   (the applied sequence at the time it was taken). The peer's history after a restart is the
//!   snapshot followed by the log entries past it.
//! - **Memory**: the applied sequence (stands in for the tree), the cores, pending fsyncs.
//!
//! The shell semantics modelled:
//! - Learner actions in order: `Log` appends (synchronously before UPTODATE; afterwards an
//!   fsync completes after a random delay and calls `logged`), `Flush` makes the log durable,
//!   `Apply` appends to the applied sequence, `Truncate` cuts log and snapshot back and reloads,
//!   `TakeSnapshot` stores the applied sequence, `Write*Epoch` are durable at once, `Send` goes
//!   on the connection, `StartServing` marks it serving, `Abort` goes back to LOOKING.
//! - Leader actions: `Send` on the connection, `SendSnap` puts `Snap{zxid: applied}` plus the
//!   applied sequence on the connection and calls `snap_sent`, `ReadLog` answers `log_read`
//!   from the disk log as it is (gaps left by a SNAP sync included), or with `None` when the
//!   learner is older than the snapshot or, a third of the time, for the size limit, `Close` breaks the connection,
//!   `StartServing` starts client writes, `Committed` applies the txn and calls `set_applied`,
//!   `Abandon` goes back to LOOKING.
//! - Background writes at every serving leader (zxid = `make_zxid(epoch, n)`): `propose`,
//!   append to the log, and `logged` after a random fsync delay.
//! - Client sessions at every serving peer (a few per peer, bound to its role incarnation: a
//!   role change loses them, like a connection loss) issue writes, reads and syncs, driven
//!   through the shells' own commit-ordering core ([`CommitQueue`], ZooKeeper's
//!   CommitProcessor): a learner forwards writes (REQUEST) and syncs to its leader over the
//!   Zab connection and answers them when their COMMIT (or SYNC) comes back; the leader
//!   proposes forwarded and local writes, queues every proposal with `Wait::Zxid`, its local
//!   reads and syncs behind it, and releases them to its lagging apply stage in order.
//! - Going back to LOOKING (abort, abandon, disconnect, connection failure): the role's pending
//!   fsyncs are drained (the log is made durable; the election advertises that history), the
//!   applied sequence is reloaded from disk, and the election restarts with the last logged zxid
//!   and currentEpoch.
//! - A crash loses memory and the unflushed log tail; a restart reloads from disk and starts a
//!   new election core.
//!
//! Networks: election notifications go over a lossy network (drop, delay, duplicate, reorder,
//! partition) as in `sim_election.rs`; Zab runs over simulated TCP connections, FIFO and
//! reliable until broken. A partition or crash breaks a connection either loudly (both sides see
//! the disconnect) or silently (messages vanish; the cores' timers must notice).
//!
//! Checked after every step (a failure names the seed and the step), and at every client reply:
//! replies come in each session's order; a write is answered only once it is committed and
//! applied where it is answered; a read sees every write its session had acknowledged; a sync
//! is answered only once everything its leader had committed when it received the sync (a
//! local sync on the leader: everything proposed before it) is applied.
//!
//! After every step:
//! - at most one leader reaches StartServing per epoch;
//! - no committed txn lost or reordered: the committed sequence C (every txn a leader reported
//!   `Committed`, and a new leader's history when it starts serving) must be a prefix of every
//!   later leader's history when it starts serving, and a commit must extend C consistently;
//! - every serving peer's applied sequence is a prefix of C (same zxids, same payloads);
//! - applied zxids strictly increase, log appends strictly increase, epochs never go back,
//!   `currentEpoch <= acceptedEpoch`.
//!
//! Liveness, at the end of a run: after healing partitions and restarting crashed peers, within
//! [`LIVENESS_BOUND_MS`] of simulated time one leader serves, every peer is synced with it, and
//! every peer's applied sequence ends at the leader's last committed zxid.
//!
//! A learner abort or a leader close for anything but a timeout or a stale/too-recent peer is a
//! protocol error over a FIFO connection and fails the run too.
//!
//! Not modelled: session moves and expiry, reconfig, torn or corrupt writes (epoch files and
//! snapshots are atomic),
//! slow-but-alive connections (a connection is fast, silently dead, or broken), learner apply
//! lag (only the leader's apply stage lags), clock skew.
//!
//! Seeds: `ZK_SIM_SEED=<n>` replays one seed (printed on failure), `ZK_SIM_TRACE=1` prints its
//! events; `ZK_SIM_RUNS=<n>` sets the number of seeds per scenario (default [`DEFAULT_RUNS`]).

mod sim;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rzk::proto::{ServerId, Zxid};
use rzk::quorum::commit::{CommitQueue, Released, Wait};
use rzk::quorum::election::{Election, ElectionConfig, Outcome};
use rzk::quorum::vote::{QuorumMaj, ServerState};
use rzk::quorum::wire::Notification;
use rzk::quorum::zab::leader::{self, Handle, Leader, LeaderConfig};
use rzk::quorum::zab::learner::{self, Learner, LearnerConfig};
use rzk::quorum::zab::msg::{make_zxid, Msg, Payload};
use sim::{InFlight, NetParams, Rng};

const DEFAULT_RUNS: u64 = 500;

const TICK_MS: u64 = 200;
const INIT_LIMIT: u32 = 10;
const SYNC_LIMIT: u32 = 5;
/// How long a decided follower keeps trying to connect to its leader.
const CONNECT_TIMEOUT_MS: u64 = TICK_MS * INIT_LIMIT as u64;
const CONNECT_RETRY_MS: u64 = 100;

/// After healing, everything must have converged within this much simulated time.
const LIVENESS_BOUND_MS: u64 = 90_000;
/// Steps allowed per run.
const MAX_STEPS: u64 = 2_000_000;
/// Undelivered election messages per directed link (see `sim_election.rs`).
const LINK_CAPACITY: usize = 2;
/// Zab connection latency, per message, in ms (FIFO is kept regardless).
const CONN_DELAY_MS: (u64, u64) = (1, 15);
/// Local fsync latency in ms.
const FSYNC_MS: (u64, u64) = (1, 12);
/// Time between client writes at a serving leader.
const WRITE_EVERY_MS: (u64, u64) = (10, 60);
/// How long the leader's apply stage lags behind a commit.
const APPLY_LAG_MS: (u64, u64) = (0, 40);
/// Time between client operations (each at a random serving peer and session).
const CLIENT_OP_EVERY_MS: (u64, u64) = (2, 25);
/// Client sessions per serving peer.
const SESSIONS_PER_PEER: usize = 3;

type Entry = (i64, Payload);

macro_rules! trace {
    ($sim:expr, $($fmt:tt)*) => {
        if $sim.trace {
            eprintln!("{:>7} {}", $sim.now, format!($($fmt)*));
        }
    };
}
type Check = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

const HEALTHY: NetParams = NetParams { drop_p: 0.0, dup_p: 0.05, max_delay_ms: 30 };

fn last_zxid(seq: &[Entry]) -> i64 {
    seq.last().map_or(0, |e| e.0)
}

/// What survives a crash.
#[derive(Default, Debug)]
struct Disk {
    /// The applied sequence when the last snapshot was taken.
    snapshot: Vec<Entry>,
    log: Vec<Entry>,
    /// Entries of `log` made durable (a crash keeps only these).
    durable: usize,
    accepted_epoch: i64,
    current_epoch: i64,
}

impl Disk {
    fn snap_zxid(&self) -> i64 {
        last_zxid(&self.snapshot)
    }

    fn last_zxid(&self) -> i64 {
        last_zxid(&self.log).max(self.snap_zxid())
    }

    /// What a restart loads: the snapshot, then the log past it.
    fn history(&self) -> Vec<Entry> {
        let snap = self.snap_zxid();
        let mut h = self.snapshot.clone();
        h.extend(self.log.iter().filter(|e| e.0 > snap).cloned());
        h
    }

    fn append(&mut self, e: Entry) -> Check {
        let last = self.last_zxid();
        check!(e.0 > last, "log append of 0x{:x} after 0x{last:x}", e.0);
        self.log.push(e);
        Ok(())
    }

    /// Cuts the log (and snapshots newer than `zxid`) back to `zxid`.
    fn truncate(&mut self, zxid: i64) {
        let keep = self.log.partition_point(|e| e.0 <= zxid);
        self.log.truncate(keep);
        self.durable = self.durable.min(keep);
        let keep = self.snapshot.partition_point(|e| e.0 <= zxid);
        self.snapshot.truncate(keep);
    }
}

enum Role {
    Down,
    Looking,
    /// Decided to follow/observe `leader`; connecting.
    Connecting {
        leader: usize,
        since: u64,
        next_try: u64,
    },
    Learning {
        core: Learner,
        conn: Handle,
        leader: usize,
        serving: bool,
        /// Local client requests waiting for their commit or SYNC (the shell's CommitQueue).
        queue: Box<CommitQueue<ClientReq, Entry>>,
    },
    Leading {
        core: Box<Leader>,
        serving: bool,
        epoch: i64,
        counter: i64,
        /// Every proposal and the local clients' requests, released to apply in order.
        queue: Box<CommitQueue<LeaderItem, ()>>,
    },
}

/// A client operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Write,
    Read,
    Sync,
}

/// A client request at the server it is connected to.
#[derive(Clone, Debug)]
struct ClientReq {
    session: i64,
    cxid: i32,
    kind: OpKind,
    /// Sync: the zxid the answer must have applied (set where the floor is known).
    floor: i64,
}

/// What leaves the leader's commit queue for its apply stage.
#[derive(Debug)]
enum LeaderItem {
    /// A committed proposal, with the local client request that made it (if any).
    Txn(Entry, Option<ClientReq>),
    /// A local read or sync.
    Client(ClientReq),
}

/// What the leader's apply stage processes, in order.
#[derive(Debug)]
enum Applying {
    Txn(Entry),
    Reply(ClientReq),
}

/// A client session, bound to one peer's role incarnation (a role change loses it, as a
/// client's connection loss does; its outstanding requests then have unknown outcomes).
#[derive(Debug)]
struct SessionState {
    peer: usize,
    gen: u64,
    next_cxid: i32,
    /// The cxid of the last reply.
    last_reply: i32,
    /// Zxids of this session's acknowledged writes.
    acked: Vec<i64>,
}

/// The payload of a client's write: which session and cxid made it.
fn client_payload(session: i64, cxid: i32) -> Payload {
    Arc::from(format!("c{session}:{cxid}").into_bytes())
}

/// The (session, cxid) of a client write's payload; (0, -1) for other txns.
fn client_of(payload: &[u8]) -> (i64, i32) {
    let parsed = std::str::from_utf8(payload).ok().and_then(|t| {
        let (s, c) = t.strip_prefix('c')?.split_once(':')?;
        Some((s.parse().ok()?, c.parse().ok()?))
    });
    parsed.unwrap_or((0, -1))
}

impl Role {
    fn serving(&self) -> bool {
        matches!(self, Role::Learning { serving: true, .. } | Role::Leading { serving: true, .. })
    }

    fn name(&self) -> String {
        match self {
            Role::Down => "down".into(),
            Role::Looking => "looking".into(),
            Role::Connecting { leader, .. } => format!("connecting to sid {}", leader + 1),
            Role::Learning { leader, serving, core, .. } => {
                format!("learning from sid {} epoch {} serving {serving}", leader + 1, core.epoch())
            }
            Role::Leading { serving, core, .. } => {
                format!(
                    "leading epoch {} serving {serving} committed 0x{:x} outstanding {}",
                    core.epoch(),
                    core.last_committed(),
                    core.outstanding()
                )
            }
        }
    }
}

struct Fsync {
    at: u64,
    /// Log length this fsync makes durable.
    len: usize,
    zxid: i64,
    /// The role incarnation that asked for it.
    gen: u64,
}

struct Peer {
    sid: ServerId,
    observer: bool,
    disk: Disk,
    election: Option<Election>,
    role: Role,
    applied: Vec<Entry>,
    /// Prefix of `applied` already checked against the committed sequence.
    checked: usize,
    /// Role incarnation (bumped at every role change and crash).
    gen: u64,
    fsyncs: VecDeque<Fsync>,
    /// Leader: committed txns and replies waiting for the apply stage, with when they get
    /// applied.
    applying: VecDeque<(u64, Applying)>,
}

/// What travels from the leader to a learner: a message, or SNAP with the tree it streams.
enum Down {
    Msg(Msg),
    Snap(i64, Vec<Entry>),
}

/// What travels from a learner to the leader: a message, or a forwarded client request.
#[derive(Debug)]
enum Up {
    Msg(Msg),
    /// A client write (REQUEST).
    Request {
        session: i64,
        cxid: i32,
    },
    /// A client sync() (REQUEST of a sync).
    Sync,
}

/// One learner connection: FIFO both ways.
struct Conn {
    leader: usize,
    learner: usize,
    down: VecDeque<(u64, Down)>,
    up: VecDeque<(u64, Up)>,
    /// For each forwarded sync the leader received, in order: its last committed zxid then,
    /// which the learner must have applied when it answers the sync.
    sync_floors: VecDeque<i64>,
    /// Silently broken: messages vanish and nobody is told.
    dead: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// No faults at all.
    None,
    /// Crash the serving leader; restart crashed peers.
    CrashLeader,
    /// Crash a follower for a short while (DIFF on rejoin).
    FollowerShort,
    /// Crash a follower long enough for the committed log not to cover it (SNAP).
    FollowerLong,
    /// Isolate the serving leader while it keeps proposing; sometimes pause the majority's
    /// writes so that it rejoins before the new leader commits anything (TRUNC).
    IsolateLeader,
    /// Partitions isolating the leader or a random minority, lossy election network.
    Partitions,
    /// Everything: crashes, restarts, partitions, network changes.
    Chaos,
}

#[derive(Clone, Debug)]
struct Scenario {
    participants: u64,
    observers: u64,
    commit_log_count: usize,
    fault: Fault,
    /// Length of the faulty phase, ms.
    chaos_ms: (u64, u64),
    /// Time between faults, ms.
    fault_every_ms: (u64, u64),
}

#[derive(Default, Debug, Clone)]
struct Stats {
    steps: u64,
    commits: u64,
    established: u64,
    diffs: u64,
    truncs: u64,
    snaps: u64,
    log_reads: u64,
    crashes: u64,
    converge_ms: u64,
    write_replies: u64,
    read_replies: u64,
    sync_replies: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.commits += o.commits;
        self.established += o.established;
        self.diffs += o.diffs;
        self.truncs += o.truncs;
        self.snaps += o.snaps;
        self.log_reads += o.log_reads;
        self.crashes += o.crashes;
        self.converge_ms = self.converge_ms.max(o.converge_ms);
        self.write_replies += o.write_replies;
        self.read_replies += o.read_replies;
        self.sync_replies += o.sync_replies;
    }
}

struct Sim {
    rng: Rng,
    base: Instant,
    now: u64,
    sc: Scenario,
    peers: Vec<Peer>,
    qv: QuorumMaj,
    election_cfg: ElectionConfig,
    /// Election messages in flight.
    inflight: InFlight<Notification>,
    net: NetParams,
    group: Vec<u8>,
    conns: BTreeMap<Handle, Conn>,
    next_handle: Handle,
    /// The committed sequence C.
    committed: Vec<Entry>,
    /// Epoch -> the sid that started serving it.
    leaders: BTreeMap<i64, ServerId>,
    writes_on: bool,
    /// Only leaders in this partition group take writes.
    write_group: Option<u8>,
    writes_paused_until: u64,
    next_write: u64,
    write_no: u64,
    next_client_op: u64,
    sessions: BTreeMap<i64, SessionState>,
    next_session: i64,
    /// Zxids of the committed sequence C, for the reply checks.
    committed_zxids: std::collections::HashSet<i64>,
    dirty: BTreeSet<usize>,
    stats: Stats,
    /// `ZK_SIM_TRACE=1`: print what happens (for replaying one seed).
    trace: bool,
}

impl Sim {
    fn new(seed: u64, sc: &Scenario) -> Sim {
        let n = sc.participants + sc.observers;
        let voters: Vec<ServerId> = (1..=sc.participants).map(ServerId).collect();
        let observers: Vec<ServerId> = (sc.participants + 1..=n).map(ServerId).collect();
        let qv = QuorumMaj::new(voters, observers, 0, "version=0".into());
        let peers = (1..=n)
            .map(|id| Peer {
                sid: ServerId(id),
                observer: id > sc.participants,
                disk: Disk::default(),
                election: None,
                role: Role::Down,
                applied: Vec::new(),
                checked: 0,
                gen: 0,
                fsyncs: VecDeque::new(),
                applying: VecDeque::new(),
            })
            .collect();
        Sim {
            rng: Rng::new(seed),
            base: Instant::now(),
            now: 0,
            sc: sc.clone(),
            peers,
            qv,
            election_cfg: ElectionConfig {
                min_notification_interval: Duration::from_millis(200),
                max_notification_interval: Duration::from_millis(4_000),
                finalize_wait: Duration::from_millis(200),
            },
            inflight: InFlight::new(LINK_CAPACITY),
            net: HEALTHY,
            group: vec![0; n as usize],
            conns: BTreeMap::new(),
            next_handle: 1,
            committed: Vec::new(),
            leaders: BTreeMap::new(),
            writes_on: false,
            write_group: None,
            writes_paused_until: 0,
            next_write: 0,
            write_no: 0,
            next_client_op: 0,
            sessions: BTreeMap::new(),
            next_session: 1,
            committed_zxids: std::collections::HashSet::new(),
            dirty: BTreeSet::new(),
            stats: Stats::default(),
            trace: std::env::var("ZK_SIM_TRACE").is_ok(),
        }
    }

    fn instant(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn ms(&self, at: Instant) -> u64 {
        (at - self.base).as_micros().div_ceil(1000) as u64
    }

    fn link_up(&self, a: usize, b: usize) -> bool {
        self.group[a] == self.group[b]
    }

    fn alive(&self, i: usize) -> bool {
        self.peers[i].election.is_some()
    }

    // ---- peer lifecycle ----

    fn boot(&mut self, i: usize) {
        let p = &mut self.peers[i];
        let core = Election::new(
            p.sid,
            self.qv.clone(),
            Zxid(p.disk.last_zxid()),
            p.disk.current_epoch,
            self.election_cfg,
        );
        p.election = Some(core);
        self.go_looking(i);
    }

    fn crash(&mut self, i: usize) {
        trace!(self, "sid {} CRASH", i + 1);
        self.stats.crashes += 1;
        // The other side of each connection sees a reset, or nothing (a dead host).
        let hs: Vec<Handle> = self.conns_of(i);
        for h in hs {
            if self.rng.chance(0.5) {
                self.kill_conn(h);
            }
        }
        self.end_role(i);
        let p = &mut self.peers[i];
        p.role = Role::Down;
        p.election = None;
        p.disk.log.truncate(p.disk.durable);
        p.applied.clear();
        p.checked = 0;
        p.fsyncs.clear();
        p.applying.clear();
        p.gen += 1;
    }

    fn conns_of(&self, i: usize) -> Vec<Handle> {
        self.conns
            .iter()
            .filter(|(_, c)| c.leader == i || c.learner == i)
            .map(|(h, _)| *h)
            .collect()
    }

    fn kill_conn(&mut self, h: Handle) {
        if let Some(c) = self.conns.get_mut(&h) {
            c.dead = true;
            c.down.clear();
            c.up.clear();
        }
    }

    /// Ends peer `i`'s role: its connections break (the other sides see it unless dead).
    fn end_role(&mut self, i: usize) {
        for h in self.conns_of(i) {
            let Some(c) = self.conns.remove(&h) else { continue };
            if c.dead {
                continue;
            }
            if c.leader == i {
                self.learner_lost(c.learner, h);
            } else {
                self.leader_lost(c.leader, h);
            }
        }
    }

    fn learner_lost(&mut self, j: usize, h: Handle) {
        if matches!(self.peers[j].role, Role::Learning { conn, .. } if conn == h) {
            self.go_looking(j);
        }
    }

    fn leader_lost(&mut self, j: usize, h: Handle) {
        if let Role::Leading { core, .. } = &mut self.peers[j].role {
            core.disconnected(h);
            self.dirty.insert(j);
        }
    }

    /// Breaks connection `h` loudly: both sides see the disconnect.
    fn break_conn(&mut self, h: Handle) {
        let Some(c) = self.conns.remove(&h) else { return };
        if c.dead {
            return;
        }
        self.leader_lost(c.leader, h);
        self.learner_lost(c.learner, h);
    }

    /// Back to LOOKING: drain the role's fsyncs, reload from disk, start an election.
    fn go_looking(&mut self, i: usize) {
        trace!(self, "sid {} LOOKING (was {})", i + 1, self.peers[i].role.name());
        self.end_role(i);
        let now = self.instant(self.now);
        let p = &mut self.peers[i];
        p.gen += 1;
        p.fsyncs.clear();
        p.applying.clear();
        p.disk.durable = p.disk.log.len();
        p.applied = p.disk.history();
        p.checked = 0;
        p.role = Role::Looking;
        let e = p.election.as_mut().expect("alive");
        e.set_vote_inputs(Zxid(p.disk.last_zxid()), p.disk.current_epoch);
        e.start(now);
        self.dirty.insert(i);
    }

    // ---- draining the cores ----

    fn settle(&mut self) -> Check {
        while let Some(i) = self.dirty.pop_first() {
            self.pump(i)?;
        }
        Ok(())
    }

    fn pump(&mut self, i: usize) -> Check {
        loop {
            let now = self.instant(self.now);
            if let Some(e) = self.peers[i].election.as_mut() {
                if let Some((to, n)) = e.poll_send() {
                    let j = (to.0 - 1) as usize;
                    if j == i {
                        e.handle_notification(to, &n, now);
                    } else {
                        self.transmit(i, j, n);
                    }
                    continue;
                }
                if let Some(outcome) = e.poll_outcome() {
                    self.on_outcome(i, outcome)?;
                    continue;
                }
                check!(e.poll_newer_config().is_none(), "sid {} saw a newer config", i + 1);
            }
            match &mut self.peers[i].role {
                Role::Leading { core, .. } => {
                    if let Some(a) = core.poll_action() {
                        self.leader_action(i, a)?;
                        continue;
                    }
                }
                Role::Learning { core, .. } => {
                    if let Some(a) = core.poll_action() {
                        self.learner_action(i, a)?;
                        continue;
                    }
                }
                _ => {}
            }
            return Ok(());
        }
    }

    fn transmit(&mut self, from: usize, to: usize, n: Notification) {
        if self.link_up(from, to) {
            self.inflight.transmit(&mut self.rng, &self.net, self.now, from, to, n);
        }
    }

    fn on_outcome(&mut self, i: usize, outcome: Outcome) -> Check {
        trace!(self, "sid {} decided {}", i + 1, outcome.vote);
        check!(
            matches!(self.peers[i].role, Role::Looking),
            "sid {} decided while {}",
            i + 1,
            self.peers[i].role.name()
        );
        let now = self.instant(self.now);
        let leader = (outcome.vote.leader.0 - 1) as usize;
        check!(leader < self.peers.len(), "sid {} decided on unknown {}", i + 1, leader + 1);
        let p = &mut self.peers[i];
        p.gen += 1;
        match outcome.vote.state {
            ServerState::Leading => {
                check!(leader == i, "LEADING for another sid");
                let cfg = LeaderConfig {
                    my_sid: p.sid,
                    qv: self.qv.clone(),
                    tick: Duration::from_millis(TICK_MS),
                    init_limit: INIT_LIMIT,
                    sync_limit: SYNC_LIMIT,
                    commit_log_count: self.sc.commit_log_count,
                };
                let tail = p.applied.len().saturating_sub(self.sc.commit_log_count);
                let core = Leader::new(
                    cfg,
                    p.disk.accepted_epoch,
                    p.disk.current_epoch,
                    p.disk.last_zxid(),
                    p.applied[tail..].to_vec(),
                    now,
                );
                p.role = Role::Leading {
                    core: Box::new(core),
                    serving: false,
                    epoch: -1,
                    counter: 0,
                    queue: Box::default(),
                };
            }
            ServerState::Following | ServerState::Observing => {
                check!(
                    (outcome.vote.state == ServerState::Observing) == p.observer,
                    "sid {} decided {:?}",
                    i + 1,
                    outcome.vote.state
                );
                p.role = Role::Connecting { leader, since: self.now, next_try: self.now };
            }
            ServerState::Looking => return Err("decided LOOKING".into()),
        }
        self.dirty.insert(i);
        Ok(())
    }

    fn try_connect(&mut self, i: usize) {
        let Role::Connecting { leader, since, .. } = self.peers[i].role else { return };
        let up = self.alive(leader)
            && self.link_up(i, leader)
            && matches!(self.peers[leader].role, Role::Leading { .. });
        if up {
            let h = self.next_handle;
            self.next_handle += 1;
            self.conns.insert(
                h,
                Conn {
                    leader,
                    learner: i,
                    down: VecDeque::new(),
                    up: VecDeque::new(),
                    sync_floors: VecDeque::new(),
                    dead: false,
                },
            );
            if let Role::Leading { core, .. } = &mut self.peers[leader].role {
                core.connected(h);
            }
            let now = self.instant(self.now);
            let p = &mut self.peers[i];
            let cfg = LearnerConfig {
                my_sid: p.sid,
                observer: p.observer,
                tick: Duration::from_millis(TICK_MS),
                init_limit: INIT_LIMIT,
                sync_limit: SYNC_LIMIT,
            };
            let core = Learner::new(
                cfg,
                p.disk.accepted_epoch,
                p.disk.current_epoch,
                p.disk.last_zxid(),
                now,
            );
            p.role =
                Role::Learning { core, conn: h, leader, serving: false, queue: Box::default() };
            self.dirty.insert(i);
            self.dirty.insert(leader);
        } else if self.now >= since + CONNECT_TIMEOUT_MS {
            self.go_looking(i);
        } else if let Role::Connecting { next_try, .. } = &mut self.peers[i].role {
            *next_try = self.now + CONNECT_RETRY_MS;
        }
    }

    fn conn_delay(&mut self) -> u64 {
        self.now + self.rng.range(CONN_DELAY_MS.0, CONN_DELAY_MS.1)
    }

    fn send_down(&mut self, h: Handle, d: Down) {
        let at = self.conn_delay();
        if let Some(c) = self.conns.get_mut(&h) {
            if !c.dead {
                let at = c.down.back().map_or(at, |(t, _)| at.max(*t));
                c.down.push_back((at, d));
            }
        }
    }

    fn send_up(&mut self, i: usize, m: Msg) {
        self.send_up_raw(i, Up::Msg(m));
    }

    fn send_up_raw(&mut self, i: usize, m: Up) {
        let Role::Learning { conn: h, .. } = self.peers[i].role else { return };
        let at = self.conn_delay();
        if let Some(c) = self.conns.get_mut(&h) {
            if !c.dead {
                let at = c.up.back().map_or(at, |(t, _)| at.max(*t));
                c.up.push_back((at, m));
            }
        }
    }

    fn schedule_fsync(&mut self, i: usize, zxid: i64) {
        let at = self.now + self.rng.range(FSYNC_MS.0, FSYNC_MS.1);
        let p = &mut self.peers[i];
        let at = p.fsyncs.back().map_or(at, |f| at.max(f.at));
        p.fsyncs.push_back(Fsync { at, len: p.disk.log.len(), zxid, gen: p.gen });
    }

    fn write_epoch(&mut self, i: usize, accepted: Option<i64>, current: Option<i64>) -> Check {
        let d = &mut self.peers[i].disk;
        if let Some(e) = accepted {
            check!(
                e >= d.accepted_epoch,
                "sid {} acceptedEpoch {} -> {e}",
                i + 1,
                d.accepted_epoch
            );
            d.accepted_epoch = e;
        }
        if let Some(e) = current {
            check!(e >= d.current_epoch, "sid {} currentEpoch {} -> {e}", i + 1, d.current_epoch);
            check!(e <= d.accepted_epoch, "sid {} currentEpoch {e} > accepted", i + 1);
            d.current_epoch = e;
        }
        Ok(())
    }

    fn apply(&mut self, i: usize, e: Entry) -> Check {
        let p = &mut self.peers[i];
        let last = last_zxid(&p.applied);
        check!(e.0 > last, "sid {} applies 0x{:x} after 0x{last:x}", i + 1, e.0);
        p.applied.push(e);
        Ok(())
    }

    fn leader_action(&mut self, i: usize, a: leader::Action) -> Check {
        if !matches!(a, leader::Action::Send(..)) {
            trace!(self, "leader {}: {a:?}", i + 1);
        }
        match a {
            leader::Action::Send(h, m) => {
                match &m {
                    Msg::Diff { .. } => self.stats.diffs += 1,
                    Msg::Trunc { .. } => self.stats.truncs += 1,
                    _ => {}
                }
                self.send_down(h, Down::Msg(m));
            }
            leader::Action::SendSnap(h) => {
                self.stats.snaps += 1;
                let state = self.peers[i].applied.clone();
                let zxid = last_zxid(&state);
                self.send_down(h, Down::Snap(zxid, state));
                if let Role::Leading { core, .. } = &mut self.peers[i].role {
                    core.snap_sent(h, zxid);
                }
            }
            leader::Action::ReadLog { h, from, to } => {
                // The log as it is on disk (after a SNAP sync it can have a gap the core must
                // notice); a third of the time "over the size limit".
                // The shell refuses when `from` is older than its newest snapshot (the log
                // below it may hold txns a SNAP sync replaced).
                let disk = &self.peers[i].disk;
                let answer = (from >= disk.snap_zxid() && !self.rng.chance(0.3)).then(|| {
                    disk.log.iter().filter(|e| e.0 >= from && e.0 <= to).cloned().collect()
                });
                if answer.is_some() {
                    self.stats.log_reads += 1;
                }
                if let Role::Leading { core, .. } = &mut self.peers[i].role {
                    core.log_read(h, answer);
                }
            }
            leader::Action::Close(h, why) => {
                // A restarted learner's new connection replaces its silent old one; a second
                // claim of a live one is refused (the learner retries).
                let legit = [
                    "learner more recent",
                    "syncLimit exceeded",
                    "committed log does not",
                    "replaced by a newer connection",
                    "a learner with this sid is already connected",
                ]
                .iter()
                .any(|w| why.starts_with(w));
                check!(legit, "leader sid {} closed a learner: {why}", i + 1);
                self.break_conn(h);
            }
            leader::Action::WriteAcceptedEpoch(e) => self.write_epoch(i, Some(e), None)?,
            leader::Action::WriteCurrentEpoch(e) => self.write_epoch(i, None, Some(e))?,
            leader::Action::StartServing { epoch } => self.leader_serves(i, epoch)?,
            leader::Action::Committed(z) => self.leader_committed(i, z)?,
            leader::Action::Abandon(_) => self.go_looking(i),
        }
        Ok(())
    }

    /// A learner's packet at leader `i`: messages go to the core; forwarded writes are
    /// proposed (while serving) and forwarded syncs remember the committed zxid they must see.
    fn on_learner_packet(&mut self, i: usize, h: Handle, m: Up) -> Check {
        match m {
            Up::Msg(m) => {
                let now = self.instant(self.now);
                if let Role::Leading { core, .. } = &mut self.peers[i].role {
                    core.handle_msg(h, m, now);
                    self.dirty.insert(i);
                }
            }
            Up::Request { session, cxid } => {
                self.leader_propose(i, client_payload(session, cxid), None)?;
            }
            Up::Sync => {
                if let Role::Leading { core, serving: true, .. } = &mut self.peers[i].role {
                    let floor = core.last_committed();
                    core.sync_request(h);
                    if let Some(c) = self.conns.get_mut(&h) {
                        c.sync_floors.push_back(floor);
                    }
                    self.dirty.insert(i);
                }
            }
        }
        Ok(())
    }

    fn leader_serves(&mut self, i: usize, epoch: i64) -> Check {
        let sid = self.peers[i].sid;
        if let Some(other) = self.leaders.insert(epoch, sid) {
            return Err(format!("epoch {epoch} established twice: by sid {other} and sid {sid}"));
        }
        self.stats.established += 1;
        let p = &mut self.peers[i];
        let history = &p.applied;
        check!(
            history.len() >= self.committed.len()
                && history[..self.committed.len()] == self.committed[..],
            "sid {sid} serves epoch {epoch} without the committed txns: has {} up to 0x{:x}, \
             committed {} up to 0x{:x}{}",
            history.len(),
            last_zxid(history),
            self.committed.len(),
            last_zxid(&self.committed),
            first_difference(history, &self.committed)
        );
        // Everything the new leader has is committed now.
        self.committed = history.clone();
        p.checked = p.applied.len();
        if let Role::Leading { serving, epoch: e, counter, .. } = &mut p.role {
            *serving = true;
            *e = epoch;
            *counter = 0;
        }
        p.election.as_mut().expect("alive").update_election_vote(epoch);
        Ok(())
    }

    fn leader_committed(&mut self, i: usize, z: i64) -> Check {
        let p = &self.peers[i];
        let Ok(k) = p.disk.log.binary_search_by_key(&z, |e| e.0) else {
            return Err(format!("sid {} committed 0x{z:x}, which is not in its log", i + 1));
        };
        let entry = p.disk.log[k].clone();
        let pending = p.applying.iter().filter(|(_, a)| matches!(a, Applying::Txn(_))).count();
        let at = p.applied.len() + pending;
        if at < self.committed.len() {
            check!(
                self.committed[at] == entry,
                "sid {} commits 0x{z:x} at position {at}, where 0x{:x} was committed",
                i + 1,
                self.committed[at].0
            );
        } else {
            check!(at == self.committed.len(), "leader applied ahead of the committed sequence");
            self.committed_zxids.insert(entry.0);
            self.committed.push(entry);
        }
        self.stats.commits += 1;
        // The shell's commit queue releases the txn (and what waited behind it) to the apply
        // stage, which lags a little behind the commits (SNAP then streams an older tree).
        let Role::Leading { queue, .. } = &mut self.peers[i].role else { return Ok(()) };
        queue.commit_through(z);
        self.release_leader(i);
        Ok(())
    }

    /// Moves what leader `i`'s commit queue released into its apply stage, in order.
    fn release_leader(&mut self, i: usize) {
        let mut items = Vec::new();
        if let Role::Leading { queue, .. } = &mut self.peers[i].role {
            while let Some(r) = queue.poll_released() {
                if let Released::Request(item) | Released::Committed(item, ()) = r {
                    items.push(item);
                }
            }
        }
        for item in items {
            let at = self.now + self.rng.range(APPLY_LAG_MS.0, APPLY_LAG_MS.1);
            let p = &mut self.peers[i];
            let at = p.applying.back().map_or(at, |(t, _)| at.max(*t));
            match item {
                LeaderItem::Txn(entry, client) => {
                    p.applying.push_back((at, Applying::Txn(entry)));
                    if let Some(c) = client {
                        p.applying.push_back((at, Applying::Reply(c)));
                    }
                }
                LeaderItem::Client(c) => p.applying.push_back((at, Applying::Reply(c))),
            }
        }
    }

    /// Leader `i` proposes a txn (a client's write when `client` is set) and queues it for
    /// its commit.
    fn leader_propose(&mut self, i: usize, payload: Payload, client: Option<ClientReq>) -> Check {
        let Role::Leading { core, serving: true, epoch, counter, queue } = &mut self.peers[i].role
        else {
            return Ok(());
        };
        *counter += 1;
        let zxid = make_zxid(*epoch, *counter);
        trace!(self, "leader {} proposes 0x{zxid:x}", i + 1);
        core.propose(zxid, payload.clone());
        let session = client.as_ref().map_or(0, |c| c.session);
        queue.submit(session, Wait::Zxid(zxid), LeaderItem::Txn((zxid, payload.clone()), client));
        self.peers[i].disk.append((zxid, payload))?;
        self.schedule_fsync(i, zxid);
        self.release_leader(i);
        self.dirty.insert(i);
        Ok(())
    }

    fn learner_action(&mut self, i: usize, a: learner::Action) -> Check {
        if !matches!(a, learner::Action::Send(..)) {
            trace!(self, "learner {}: {a:?}", i + 1);
        }
        match a {
            learner::Action::Send(m) => self.send_up(i, m),
            learner::Action::WriteAcceptedEpoch(e) => self.write_epoch(i, Some(e), None)?,
            learner::Action::WriteCurrentEpoch(e) => self.write_epoch(i, None, Some(e))?,
            learner::Action::Truncate(z) => {
                let p = &mut self.peers[i];
                p.disk.truncate(z);
                p.applied = p.disk.history();
                p.checked = 0;
            }
            learner::Action::Apply { zxid, payload } => {
                let Role::Learning { serving: true, queue, .. } = &mut self.peers[i].role else {
                    return self.apply(i, (zxid, payload));
                };
                let (session, cxid) = client_of(&payload);
                queue
                    .commit(session, cxid, (zxid, payload))
                    .map_err(|e| format!("learner sid {}: commit queue: {e}", i + 1))?;
                self.release_learner(i)?;
            }
            learner::Action::Log { zxid, payload } => {
                let p = &mut self.peers[i];
                p.disk.append((zxid, payload)).map_err(|e| format!("sid {}: {e}", i + 1))?;
                if p.role.serving() {
                    self.schedule_fsync(i, zxid);
                }
            }
            learner::Action::Flush => {
                let d = &mut self.peers[i].disk;
                d.durable = d.log.len();
            }
            learner::Action::TakeSnapshot => {
                let p = &mut self.peers[i];
                p.disk.snapshot = p.applied.clone();
            }
            learner::Action::StartServing => {
                let p = &mut self.peers[i];
                if let Role::Learning { serving, core, .. } = &mut p.role {
                    *serving = true;
                    let epoch = core.epoch();
                    p.election.as_mut().expect("alive").update_election_vote(epoch);
                }
                p.checked = 0;
            }
            learner::Action::PingReply(z) => self.send_up(i, Msg::Ping { zxid: z }),
            learner::Action::SyncDone => {
                if let Role::Learning { queue, .. } = &mut self.peers[i].role {
                    queue.sync_done().map_err(|e| format!("learner sid {}: {e}", i + 1))?;
                }
                self.release_learner(i)?;
            }
            learner::Action::Abort(why) => {
                // Over a FIFO connection only timeouts and a stale leader's epoch are reasons
                // to give up; anything else is a protocol error of one of the cores.
                let legit = why.starts_with("no packet from the leader")
                    || why.starts_with("leader proposed epoch");
                check!(legit, "learner sid {} aborted: {why}", i + 1);
                self.go_looking(i);
            }
        }
        Ok(())
    }

    // ---- the clock ----

    fn next_event(&self, until: u64) -> u64 {
        let mut next = until;
        if let Some(at) = self.inflight.next_at() {
            next = next.min(at);
        }
        for c in self.conns.values() {
            if let Some((at, _)) = c.down.front() {
                next = next.min(*at);
            }
            if let Some((at, _)) = c.up.front() {
                next = next.min(*at);
            }
        }
        for p in &self.peers {
            if let Some(at) = p.election.as_ref().and_then(Election::poll_timeout) {
                next = next.min(self.ms(at));
            }
            let role_timeout = match &p.role {
                Role::Leading { core, .. } => core.poll_timeout().map(|at| self.ms(at)),
                Role::Learning { core, .. } => core.poll_timeout().map(|at| self.ms(at)),
                Role::Connecting { next_try, .. } => Some(*next_try),
                _ => None,
            };
            if let Some(at) = role_timeout {
                next = next.min(at);
            }
            if let Some(f) = p.fsyncs.front() {
                next = next.min(f.at);
            }
            if let Some((at, _)) = p.applying.front() {
                next = next.min(*at);
            }
        }
        if self.writes_on {
            next = next.min(self.next_write.max(self.writes_paused_until));
            next = next.min(self.next_client_op.max(self.writes_paused_until));
        }
        next.max(self.now)
    }

    fn run_until(&mut self, until: u64, stop: fn(&Sim) -> bool) -> Check {
        while self.now < until {
            if stop(self) {
                return Ok(());
            }
            self.stats.steps += 1;
            check!(self.stats.steps < MAX_STEPS, "more than {MAX_STEPS} steps");
            self.now = self.next_event(until);
            self.step().map_err(|e| {
                format!("step {} at {} ms: {e}\n{}", self.stats.steps, self.now, describe(self))
            })?;
        }
        Ok(())
    }

    fn step(&mut self) -> Check {
        let now = self.instant(self.now);
        // Election notifications.
        while let Some((from, to, n)) = self.inflight.pop_due(self.now) {
            if !self.link_up(from, to) {
                continue;
            }
            let from_sid = self.peers[from].sid;
            if let Some(core) = self.peers[to].election.as_mut() {
                core.handle_notification(from_sid, &n, now);
                self.dirty.insert(to);
                self.settle()?;
            }
        }
        // Zab connections, in order.
        let handles: Vec<Handle> = self.conns.keys().copied().collect();
        for h in handles {
            while let Some(c) = self.conns.get_mut(&h) {
                let (leader, learner) = (c.leader, c.learner);
                if c.down.front().is_some_and(|(at, _)| *at <= self.now) {
                    let (_, d) = c.down.pop_front().expect("due");
                    match &d {
                        Down::Msg(m) => trace!(self, "{} -> {}: {m:?}", leader + 1, learner + 1),
                        Down::Snap(z, _) => {
                            trace!(self, "{} -> {}: SNAP 0x{z:x}", leader + 1, learner + 1)
                        }
                    }
                    if matches!(self.peers[learner].role, Role::Learning { .. }) {
                        let msg = match d {
                            Down::Msg(m) => m,
                            Down::Snap(zxid, state) => {
                                let p = &mut self.peers[learner];
                                p.applied = state;
                                p.checked = 0;
                                Msg::Snap { zxid }
                            }
                        };
                        if let Role::Learning { core, .. } = &mut self.peers[learner].role {
                            core.handle_msg(msg, now);
                        }
                        self.dirty.insert(learner);
                    }
                } else if c.up.front().is_some_and(|(at, _)| *at <= self.now) {
                    let (_, m) = c.up.pop_front().expect("due");
                    trace!(self, "{} <- {}: {m:?}", leader + 1, learner + 1);
                    self.on_learner_packet(leader, h, m)?;
                } else {
                    break;
                }
                self.settle()?;
            }
        }
        // Timers.
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            let due = p.election.as_ref().and_then(Election::poll_timeout);
            if due.is_some_and(|at| at <= now) {
                p.election.as_mut().expect("alive").handle_timeout(now);
                self.dirty.insert(i);
            }
            let p = &mut self.peers[i];
            match &mut p.role {
                Role::Leading { core, .. } if core.poll_timeout().is_some_and(|at| at <= now) => {
                    core.handle_timeout(now);
                    self.dirty.insert(i);
                }
                Role::Learning { core, .. } if core.poll_timeout().is_some_and(|at| at <= now) => {
                    core.handle_timeout(now);
                    self.dirty.insert(i);
                }
                Role::Connecting { next_try, .. } if *next_try <= self.now => self.try_connect(i),
                _ => {}
            }
            self.settle()?;
            while self.peers[i].applying.front().is_some_and(|(at, _)| *at <= self.now) {
                let (_, item) = self.peers[i].applying.pop_front().expect("due");
                match item {
                    Applying::Txn(entry) => {
                        let z = entry.0;
                        self.apply(i, entry)?;
                        if let Role::Leading { core, .. } = &mut self.peers[i].role {
                            core.set_applied(z);
                        }
                    }
                    Applying::Reply(req) => self.reply(i, req)?,
                }
                self.dirty.insert(i);
                self.settle()?;
            }
            while self.peers[i].fsyncs.front().is_some_and(|f| f.at <= self.now) {
                let p = &mut self.peers[i];
                let f = p.fsyncs.pop_front().expect("due");
                if f.gen != p.gen {
                    continue;
                }
                p.disk.durable = p.disk.durable.max(f.len.min(p.disk.log.len()));
                match &mut p.role {
                    Role::Leading { core, .. } => core.logged(f.zxid),
                    Role::Learning { core, .. } => core.logged(f.zxid),
                    _ => {}
                }
                self.dirty.insert(i);
                self.settle()?;
            }
        }
        // Client sessions' operations.
        if self.writes_on && self.now >= self.next_client_op && self.now >= self.writes_paused_until
        {
            self.next_client_op =
                self.now + self.rng.range(CLIENT_OP_EVERY_MS.0, CLIENT_OP_EVERY_MS.1);
            self.client_op()?;
            self.settle()?;
        }
        // Background writes at the leader.
        if self.writes_on && self.now >= self.next_write && self.now >= self.writes_paused_until {
            self.next_write = self.now + self.rng.range(WRITE_EVERY_MS.0, WRITE_EVERY_MS.1);
            for i in 0..self.peers.len() {
                if self.write_group.is_some_and(|g| g != self.group[i]) {
                    continue;
                }
                self.write(i)?;
            }
            self.settle()?;
        }
        self.check_invariants()
    }

    fn write(&mut self, i: usize) -> Check {
        if !matches!(self.peers[i].role, Role::Leading { serving: true, .. }) {
            return Ok(());
        }
        self.write_no += 1;
        let payload: Payload = Arc::from(format!("w{} by {}", self.write_no, i + 1).into_bytes());
        self.leader_propose(i, payload, None)
    }

    // ---- clients ----

    /// A client operation at a random serving peer, in one of its sessions.
    fn client_op(&mut self) -> Check {
        let serving: Vec<usize> =
            (0..self.peers.len()).filter(|&i| self.peers[i].role.serving()).collect();
        if serving.is_empty() {
            return Ok(());
        }
        let i = serving[self.rng.below(serving.len() as u64) as usize];
        let gen = self.peers[i].gen;
        self.sessions.retain(|_, s| s.gen == self.peers[s.peer].gen);
        let mine: Vec<i64> =
            self.sessions.iter().filter(|(_, s)| s.peer == i).map(|(id, _)| *id).collect();
        let session = if mine.len() < SESSIONS_PER_PEER {
            let id = self.next_session;
            self.next_session += 1;
            let state = SessionState { peer: i, gen, next_cxid: 1, last_reply: 0, acked: vec![] };
            self.sessions.insert(id, state);
            id
        } else {
            mine[self.rng.below(mine.len() as u64) as usize]
        };
        let kind = match self.rng.below(10) {
            0..=3 => OpKind::Write,
            4..=8 => OpKind::Read,
            _ => OpKind::Sync,
        };
        let Some(state) = self.sessions.get_mut(&session) else { return Ok(()) };
        let cxid = state.next_cxid;
        state.next_cxid += 1;
        let mut req = ClientReq { session, cxid, kind, floor: -1 };
        trace!(self, "sid {} client 0x{session:x} cxid {cxid}: {kind:?}", i + 1);
        match &mut self.peers[i].role {
            Role::Leading { queue, core, .. } => match kind {
                OpKind::Write => {
                    self.leader_propose(i, client_payload(session, cxid), Some(req))?
                }
                OpKind::Read => {
                    queue.submit(session, Wait::Nothing, LeaderItem::Client(req));
                    self.release_leader(i);
                }
                OpKind::Sync => {
                    // A local sync waits for every txn proposed before it.
                    req.floor = core.last_proposed();
                    queue.submit(session, Wait::Barrier, LeaderItem::Client(req));
                    self.release_leader(i);
                }
            },
            Role::Learning { queue, .. } => {
                match kind {
                    OpKind::Write => {
                        queue.submit(session, Wait::Txn { session, cxid }, req);
                        self.send_up_raw(i, Up::Request { session, cxid });
                    }
                    OpKind::Read => queue.submit(session, Wait::Nothing, req),
                    OpKind::Sync => {
                        queue.submit(session, Wait::LeaderSync, req);
                        self.send_up_raw(i, Up::Sync);
                    }
                }
                self.release_learner(i)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies and answers what learner `i`'s commit queue released, in order.
    fn release_learner(&mut self, i: usize) -> Check {
        loop {
            let Role::Learning { queue, conn, .. } = &mut self.peers[i].role else {
                return Ok(());
            };
            let conn = *conn;
            let Some(r) = queue.poll_released() else { return Ok(()) };
            match r {
                Released::Remote(entry) => self.apply(i, entry)?,
                Released::Committed(req, entry) => {
                    self.apply(i, entry)?;
                    self.reply(i, req)?;
                }
                Released::Request(mut req) => {
                    if req.kind == OpKind::Sync {
                        req.floor = match self.conns.get_mut(&conn) {
                            Some(c) => c.sync_floors.pop_front().unwrap_or(-1),
                            None => -1,
                        };
                    }
                    self.reply(i, req)?;
                }
            }
        }
    }

    /// Peer `i` answers a client request (after applying everything released before it).
    /// Checks: replies come in each session's order; a write is answered only once it is
    /// committed and applied here; a read sees every write its session had acknowledged; a
    /// sync is answered only once everything its leader had committed is applied here.
    fn reply(&mut self, i: usize, req: ClientReq) -> Check {
        let gen = self.peers[i].gen;
        let applied_last = last_zxid(&self.peers[i].applied);
        let Some(s) = self.sessions.get_mut(&req.session) else { return Ok(()) };
        if s.gen != gen || s.peer != i {
            return Ok(());
        }
        check!(
            req.cxid > s.last_reply,
            "sid {} answers session 0x{:x} cxid {} after cxid {}",
            i + 1,
            req.session,
            req.cxid,
            s.last_reply
        );
        s.last_reply = req.cxid;
        let applied = &self.peers[i].applied;
        match req.kind {
            OpKind::Write => {
                let mine =
                    applied.iter().rev().find(|(_, p)| client_of(p) == (req.session, req.cxid));
                let Some((zxid, _)) = mine else {
                    return Err(format!(
                        "sid {} acknowledges write cxid {} of session 0x{:x} it has not applied",
                        i + 1,
                        req.cxid,
                        req.session
                    ));
                };
                check!(
                    self.committed_zxids.contains(zxid),
                    "sid {} acknowledges 0x{zxid:x} before it is committed",
                    i + 1
                );
                s.acked.push(*zxid);
                self.stats.write_replies += 1;
            }
            OpKind::Read => {
                for z in &s.acked {
                    check!(
                        applied.binary_search_by_key(z, |e| e.0).is_ok(),
                        "sid {} read of session 0x{:x} misses its own write 0x{z:x}",
                        i + 1,
                        req.session
                    );
                }
                self.stats.read_replies += 1;
            }
            OpKind::Sync => {
                check!(
                    applied_last >= req.floor,
                    "sid {} answers a sync at 0x{applied_last:x}, its leader had committed \
                     0x{:x}",
                    i + 1,
                    req.floor
                );
                self.stats.sync_replies += 1;
            }
        }
        Ok(())
    }

    fn check_invariants(&mut self) -> Check {
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            if !p.role.serving() {
                continue;
            }
            for k in p.checked..p.applied.len() {
                check!(
                    k < self.committed.len() && p.applied[k] == self.committed[k],
                    "serving sid {} applied 0x{:x} at position {k}, committed has {}",
                    i + 1,
                    p.applied[k].0,
                    self.committed.get(k).map_or("nothing".into(), |e| format!("0x{:x}", e.0))
                );
            }
            p.checked = p.applied.len();
        }
        Ok(())
    }

    // ---- faults ----

    fn set_groups(&mut self, groups: Vec<u8>) {
        trace!(self, "groups {groups:?}");
        self.group = groups;
        let cut: Vec<Handle> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.dead && self.group[c.leader] != self.group[c.learner])
            .map(|(h, _)| *h)
            .collect();
        for h in cut {
            if self.rng.chance(0.5) {
                self.kill_conn(h);
            } else {
                self.break_conn(h);
            }
        }
    }

    fn serving_leader(&self) -> Option<usize> {
        (0..self.peers.len())
            .find(|&i| matches!(self.peers[i].role, Role::Leading { serving: true, .. }))
    }

    fn down_peer(&self) -> Option<usize> {
        (0..self.peers.len()).find(|&i| !self.alive(i))
    }

    fn random_follower(&mut self) -> Option<usize> {
        let followers: Vec<usize> = (0..self.peers.len())
            .filter(|&i| matches!(self.peers[i].role, Role::Learning { .. }))
            .collect();
        (!followers.is_empty()).then(|| followers[self.rng.below(followers.len() as u64) as usize])
    }

    fn fault(&mut self) {
        let n = self.peers.len();
        match self.sc.fault {
            Fault::None => {}
            Fault::CrashLeader => {
                if let Some(i) = self.down_peer() {
                    self.boot(i);
                } else if let Some(l) = self.serving_leader() {
                    self.crash(l);
                }
            }
            Fault::FollowerShort | Fault::FollowerLong => {
                if let Some(i) = self.down_peer() {
                    self.boot(i);
                } else if let Some(f) = self.random_follower() {
                    self.crash(f);
                }
            }
            Fault::IsolateLeader => {
                if self.group.iter().any(|g| *g != 0) {
                    self.set_groups(vec![0; n]);
                    // Sometimes the ensemble stays quiet until the old leader rejoined.
                    if self.write_group.is_some() {
                        self.write_group = None;
                        self.writes_paused_until = self.now + 1_500;
                    }
                } else if let Some(l) = self.serving_leader() {
                    let mut g = vec![0; n];
                    g[l] = 1;
                    self.set_groups(g);
                    self.write_group = self.rng.chance(0.5).then_some(1);
                }
            }
            Fault::Partitions => match self.rng.below(5) {
                0 | 1 => {
                    let mut g = vec![0; n];
                    if let Some(l) = self.serving_leader() {
                        g[l] = 1;
                    }
                    self.set_groups(g);
                }
                2 => {
                    let minority = (self.sc.participants as usize - 1) / 2;
                    let mut g = vec![0; n];
                    for _ in 0..minority.max(1) {
                        g[self.rng.below(n as u64) as usize] = 1;
                    }
                    self.set_groups(g);
                }
                3 => self.set_groups(vec![0; n]),
                _ => self.net = NetParams::random(&mut self.rng),
            },
            Fault::Chaos => match self.rng.below(6) {
                0 | 1 => {
                    let i = self.rng.below(n as u64) as usize;
                    if self.alive(i) {
                        self.crash(i);
                    } else {
                        self.boot(i);
                    }
                }
                2 => {
                    let g = (0..n).map(|_| self.rng.below(2) as u8).collect();
                    self.set_groups(g);
                }
                3 => self.set_groups(vec![0; n]),
                4 => {
                    if let Some(l) = self.serving_leader() {
                        self.crash(l);
                    }
                }
                _ => self.net = NetParams::random(&mut self.rng),
            },
        }
    }

    /// One leader serves with every peer synced to it, nothing outstanding, and every peer
    /// applied up to its last commit.
    fn settled(&self) -> bool {
        let Some(l) = self.serving_leader() else { return false };
        let Role::Leading { core, .. } = &self.peers[l].role else { return false };
        let last = core.last_committed();
        if core.outstanding() != 0 || last_zxid(&self.peers[l].applied) != last {
            return false;
        }
        let synced = core.synced_learners();
        (0..self.peers.len()).filter(|&i| i != l).all(|i| {
            let p = &self.peers[i];
            matches!(p.role, Role::Learning { serving: true, leader, .. } if leader == l)
                && synced.iter().any(|(s, _)| *s == p.sid)
                && last_zxid(&p.applied) == last
        })
    }
}

fn first_difference(a: &[Entry], b: &[Entry]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(k) => format!(" (first difference at {k}: 0x{:x} vs 0x{:x})", a[k].0, b[k].0),
        None => String::new(),
    }
}

fn describe(sim: &Sim) -> String {
    let mut s = format!(
        "at {} ms, committed {} up to 0x{:x}, groups {:?}\n",
        sim.now,
        sim.committed.len(),
        last_zxid(&sim.committed),
        sim.group
    );
    for p in &sim.peers {
        let _ = writeln!(
            s,
            "  sid {}{}: {}; log {} (durable {}) last 0x{:x}, snapshot 0x{:x}, epochs a{} c{}, \
             applied {} up to 0x{:x}",
            p.sid,
            if p.observer { " (observer)" } else { "" },
            p.role.name(),
            p.disk.log.len(),
            p.disk.durable,
            p.disk.last_zxid(),
            p.disk.snap_zxid(),
            p.disk.accepted_epoch,
            p.disk.current_epoch,
            p.applied.len(),
            last_zxid(&p.applied),
        );
    }
    s
}

/// One seeded run: boot, faults, heal, liveness.
fn run(seed: u64, sc: &Scenario) -> Result<Stats, String> {
    let mut sim = Sim::new(seed, sc);
    let n = sim.peers.len();
    for i in 0..n {
        sim.boot(i);
    }
    sim.settle()?;
    sim.writes_on = true;
    let heal_at = sim.rng.range(sc.chaos_ms.0, sc.chaos_ms.1);
    let mut next_fault = 0;
    while sim.now < heal_at {
        next_fault =
            next_fault.max(sim.now) + sim.rng.range(sc.fault_every_ms.0, sc.fault_every_ms.1);
        sim.run_until(next_fault.min(heal_at), |_| false)?;
        if sim.now < heal_at {
            sim.fault();
            sim.settle()?;
        }
    }
    // Heal: one partition, a healthy network, everyone up; a little more traffic, then quiet.
    sim.net = HEALTHY;
    sim.set_groups(vec![0; n]);
    for i in 0..n {
        if !sim.alive(i) {
            sim.boot(i);
        }
    }
    sim.write_group = None;
    sim.settle()?;
    sim.run_until(heal_at + 1_000, |_| false)?;
    sim.writes_on = false;
    let quiet = sim.now;
    sim.run_until(quiet + LIVENESS_BOUND_MS, Sim::settled)?;
    check!(sim.settled(), "not settled {LIVENESS_BOUND_MS} ms after healing: {}", describe(&sim));
    // Settled means equal last zxids; the prefix checks make the sequences equal to C.
    for (i, p) in sim.peers.iter().enumerate() {
        check!(
            p.applied == sim.committed,
            "sid {} applied {} txns, committed {}{}",
            i + 1,
            p.applied.len(),
            sim.committed.len(),
            first_difference(&p.applied, &sim.committed)
        );
    }
    sim.stats.converge_ms = sim.now - quiet;
    Ok(sim.stats)
}

fn run_seeds(name: &str, salt: u64, sc: Scenario) -> Stats {
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let seeds = sim::seeds(salt, DEFAULT_RUNS);
    for &seed in &seeds {
        match run(seed, &sc) {
            Ok(stats) => total.add(&stats),
            Err(why) => panic!("{name}: seed {seed} failed: {why}\nreplay: ZK_SIM_SEED={seed}"),
        }
    }
    eprintln!("{name}: {} seeds in {:?}: {total:?}", seeds.len(), started.elapsed());
    assert!(total.commits > 0, "{name}: nothing committed");
    assert!(
        total.write_replies > 0 && total.read_replies > 0 && total.sync_replies > 0,
        "{name}: the clients got no answers: {total:?}"
    );
    total
}

/// Whether the seed set is large enough to expect every sync path to show up.
fn many_seeds() -> bool {
    std::env::var("ZK_SIM_SEED").is_err()
        && std::env::var("ZK_SIM_RUNS").map_or(true, |r| r.parse::<u64>().is_ok_and(|r| r >= 20))
}

fn three(fault: Fault, chaos_ms: (u64, u64), fault_every_ms: (u64, u64)) -> Scenario {
    Scenario {
        participants: 3,
        observers: 0,
        commit_log_count: 500,
        fault,
        chaos_ms,
        fault_every_ms,
    }
}

#[test]
fn steady_state_writes_commit_everywhere() {
    run_seeds("steady", 1, three(Fault::None, (2_000, 5_000), (1_000, 1_000)));
}

#[test]
fn leader_crash_under_writes() {
    let stats =
        run_seeds("leader-crash", 2, three(Fault::CrashLeader, (5_000, 12_000), (500, 3_000)));
    assert!(!many_seeds() || stats.crashes > 0);
}

#[test]
fn follower_crash_and_rejoin_by_diff() {
    let stats =
        run_seeds("follower-diff", 3, three(Fault::FollowerShort, (3_000, 8_000), (100, 800)));
    assert!(!many_seeds() || stats.diffs > 0);
}

#[test]
fn follower_down_past_the_committed_log_rejoins_by_log_diff_or_snap() {
    let sc = Scenario {
        commit_log_count: 10,
        ..three(Fault::FollowerLong, (6_000, 12_000), (1_500, 4_000))
    };
    let stats = run_seeds("follower-snap", 4, sc);
    assert!(!many_seeds() || (stats.snaps > 0 && stats.log_reads > 0), "{stats:?}");
}

#[test]
fn stale_leader_with_uncommitted_txns_rejoins_by_trunc() {
    let stats =
        run_seeds("stale-leader", 5, three(Fault::IsolateLeader, (5_000, 12_000), (1_000, 4_000)));
    assert!(!many_seeds() || stats.truncs > 0);
}

#[test]
fn partitions_isolating_the_leader_or_a_minority() {
    run_seeds("partitions-3", 6, three(Fault::Partitions, (5_000, 15_000), (300, 3_000)));
}

#[test]
fn five_peers_and_an_observer_under_chaos() {
    let sc = Scenario {
        participants: 5,
        observers: 1,
        commit_log_count: 20,
        fault: Fault::Chaos,
        chaos_ms: (5_000, 15_000),
        fault_every_ms: (300, 3_000),
    };
    run_seeds("chaos-5+1", 7, sc);
}

#[test]
fn disk_truncate_and_history() {
    let p = |s: &str| -> Payload { Arc::from(s.as_bytes()) };
    let mut d = Disk::default();
    for c in 1..=4 {
        d.append((make_zxid(1, c), p("x"))).unwrap();
    }
    d.durable = 2;
    d.snapshot = d.log[..3].to_vec();
    assert!(d.append((make_zxid(1, 4), p("y"))).is_err());
    d.truncate(make_zxid(1, 2));
    assert_eq!((d.log.len(), d.durable, d.snapshot.len()), (2, 2, 2));
    assert_eq!(d.history().len(), 2);
}
