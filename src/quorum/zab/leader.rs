//! The leader's side of Zab as an I/O-free state machine (quorum-protocol.md §6, like
//! ZooKeeper's `Leader` + `LearnerHandler`).
//!
//! Inputs: learner connections coming and going ([`Leader::connected`],
//! [`Leader::disconnected`]), their messages ([`Leader::handle_msg`]), the local pipeline's
//! proposals and fsyncs ([`Leader::propose`], [`Leader::logged`]), the applied zxid
//! ([`Leader::set_applied`]), the snapshot the shell streamed ([`Leader::snap_sent`]), the txns
//! the shell read from its txn log ([`Leader::log_read`]) and the clock ([`Leader::handle_timeout`]). Outputs: [`Action`]s drained with [`Leader::poll_action`]
//! and the next deadline from [`Leader::poll_timeout`].
//!
//! Phases:
//! 1. **Discovery**: the epoch to propose starts at acceptedEpoch + 1 and is raised past every
//!    connecting participant's accepted epoch until the participants heard from (leader
//!    included) form a quorum; then LEADERINFO goes out and ACKEPOCHs are collected, again
//!    until a quorum. A learner whose history is more recent than the leader's is dropped.
//! 2. **Sync**, per learner: DIFF (committed proposals it lacks, from the committed log or,
//!    for a learner further behind, from the shell's txn log), TRUNC (it has txns the
//!    leader does not) or SNAP (the shell streams the tree), then the outstanding proposals,
//!    then NEWLEADER. A quorum of NEWLEADER acks starts the leader serving; every synced
//!    learner then gets UPTODATE.
//! 3. **Broadcast**: PROPOSAL to followers, ACKs counted per zxid (the leader's own after its
//!    fsync), commits strictly in zxid order: COMMIT to followers, INFORM to observers.
//! 4. **Liveness**: PING every half tick; a learner silent for syncLimit ticks is dropped; the
//!    leader abandons leadership when the synced participants no longer form a quorum, or when
//!    a phase of discovery or sync does not finish within initLimit ticks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::msg::{counter_of, epoch_of, make_zxid, Msg, Payload};
use crate::proto::ServerId;
use crate::quorum::vote::QuorumMaj;

/// Epochs are a zxid's upper 32 bits; a zxid stays positive while the epoch is below this.
pub const MAX_EPOCH: i64 = 0x7fff_ffff;

/// The shell's name for one learner connection.
pub type Handle = u64;

/// Timers and sizes of the leader.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// My id.
    pub my_sid: ServerId,
    /// The ensemble.
    pub qv: QuorumMaj,
    /// tickTime.
    pub tick: Duration,
    /// initLimit in ticks.
    pub init_limit: u32,
    /// syncLimit in ticks.
    pub sync_limit: u32,
    /// Committed proposals kept for DIFF (`zookeeper.commitLogCount`, at least 500).
    pub commit_log_count: usize,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to a learner.
    Send(Handle, Msg),
    /// Stream the tree to a learner: `SNAP(zxid)` + snapshot body + signature, where `zxid` is
    /// the tree's last applied zxid at serialization; then call [`Leader::snap_sent`] before
    /// feeding anything else.
    SendSnap(Handle),
    /// A learner is behind the committed log: read the committed txns with zxids in
    /// `from..=to` from the txn log (ZooKeeper's txn-log sync) and call [`Leader::log_read`]
    /// before feeding anything else, with `None` when the log does not have them or they are
    /// over the size limit (a SNAP follows).
    ReadLog {
        /// The learner.
        h: Handle,
        /// The learner's last zxid: the first txn read must be this one.
        from: i64,
        /// The first zxid of the committed log (or the last committed zxid when it is empty).
        to: i64,
    },
    /// Close a learner's connection.
    Close(Handle, String),
    /// Persist `acceptedEpoch`.
    WriteAcceptedEpoch(i64),
    /// Persist `currentEpoch`.
    WriteCurrentEpoch(i64),
    /// A quorum is synced: start serving clients; the first txn is `make_zxid(epoch, 1)`.
    StartServing {
        /// The established epoch.
        epoch: i64,
    },
    /// A proposal committed (in zxid order): release the requests waiting on it.
    Committed(i64),
    /// Stop leading (back to LOOKING).
    Abandon(String),
}

/// Where one learner is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Connected; nothing received yet.
    Connected,
    /// FOLLOWERINFO/OBSERVERINFO received; waiting for the epoch to be fixed.
    Info,
    /// LEADERINFO sent; waiting for ACKEPOCH.
    LeaderInfoSent,
    /// ACKEPOCH received; waiting for the epoch-ack quorum before syncing.
    EpochAcked,
    /// Txns requested from the shell's txn log.
    ReadingLog,
    /// SNAP requested from the shell.
    Snapping,
    /// Sync queued and NEWLEADER sent; waiting for its ACK.
    NewLeaderSent,
    /// NEWLEADER acked; waiting for the leader to serve.
    NewLeaderAcked,
    /// UPTODATE sent: in broadcast.
    UpToDate,
}

#[derive(Debug)]
struct LearnerState {
    sid: Option<ServerId>,
    observer: bool,
    phase: Phase,
    last_zxid: i64,
    /// Tick by which the next packet must arrive (ZooKeeper's `tickOfNextAckDeadline`).
    deadline_tick: u64,
    /// Tick of the last packet from it (a live learner answers every half-tick ping).
    heard_tick: u64,
}

impl LearnerState {
    /// Whether new proposals and commits go to this learner.
    fn forwarding(&self) -> bool {
        self.phase >= Phase::NewLeaderSent
    }
}

#[derive(Debug)]
struct Proposal {
    payload: Payload,
    acks: BTreeSet<ServerId>,
}

/// The leader core.
#[derive(Debug)]
pub struct Leader {
    cfg: LeaderConfig,
    /// The leader's history when it started (for "more recent than the leader" checks).
    summary: (i64, i64),
    accepted_epoch: i64,
    epoch: i64,
    epoch_fixed: bool,
    connecting: BTreeSet<ServerId>,
    epoch_acked: bool,
    electing: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    serving: bool,
    learners: BTreeMap<Handle, LearnerState>,
    outstanding: BTreeMap<i64, Proposal>,
    last_proposed: i64,
    last_committed: i64,
    committed_log: VecDeque<(i64, Payload)>,
    applied: i64,
    /// Deadline of the current discovery/sync phase.
    phase_deadline: Instant,
    half_ticks: u64,
    next_half_tick: Instant,
    abandoned: bool,
    /// Forwarded sync()s waiting for the commit of the zxid they were queued behind.
    pending_syncs: BTreeMap<i64, Vec<Handle>>,
    out: VecDeque<Action>,
}

impl Leader {
    /// A leader whose log ends at `last_zxid` (everything in it counts as committed) with
    /// `committed_log` the most recent of those txns, ascending.
    pub fn new(
        cfg: LeaderConfig,
        accepted_epoch: i64,
        current_epoch: i64,
        last_zxid: i64,
        committed_log: Vec<(i64, Payload)>,
        now: Instant,
    ) -> Leader {
        let init = cfg.tick * cfg.init_limit;
        let half = cfg.tick / 2;
        let mut connecting = BTreeSet::new();
        connecting.insert(cfg.my_sid);
        let mut leader = Leader {
            summary: (current_epoch, last_zxid),
            accepted_epoch,
            epoch: accepted_epoch + 1,
            epoch_fixed: false,
            connecting,
            epoch_acked: false,
            electing: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            serving: false,
            learners: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_proposed: last_zxid,
            last_committed: last_zxid,
            committed_log: committed_log.into_iter().collect(),
            applied: last_zxid,
            phase_deadline: now + init,
            half_ticks: 0,
            next_half_tick: now + half,
            abandoned: false,
            pending_syncs: BTreeMap::new(),
            out: VecDeque::new(),
            cfg,
        };
        leader.try_fix_epoch(now);
        leader
    }

    /// The epoch being established (fixed once a quorum connected).
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Whether the leader serves clients.
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// The last committed zxid.
    pub fn last_committed(&self) -> i64 {
        self.last_committed
    }

    /// The last proposed zxid.
    pub fn last_proposed(&self) -> i64 {
        self.last_proposed
    }

    /// Proposals not yet committed.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Learners in broadcast (UPTODATE sent), as (sid, observer).
    pub fn synced_learners(&self) -> Vec<(ServerId, bool)> {
        self.learners
            .values()
            .filter(|l| l.phase == Phase::UpToDate)
            .filter_map(|l| l.sid.map(|s| (s, l.observer)))
            .collect()
    }

    /// The next action for the shell.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Leader::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.abandoned {
            return None;
        }
        if self.serving {
            Some(self.next_half_tick)
        } else {
            Some(self.next_half_tick.min(self.phase_deadline))
        }
    }

    /// A learner connected.
    pub fn connected(&mut self, h: Handle) {
        let deadline_tick =
            self.tick() + u64::from(self.cfg.init_limit) + u64::from(self.cfg.sync_limit);
        self.learners.insert(
            h,
            LearnerState {
                sid: None,
                observer: false,
                phase: Phase::Connected,
                last_zxid: -1,
                deadline_tick,
                heard_tick: self.tick(),
            },
        );
    }

    /// A learner's connection is gone.
    pub fn disconnected(&mut self, h: Handle) {
        if let Some(l) = self.learners.remove(&h) {
            debug!("leader: learner {:?} left in phase {:?}", l.sid, l.phase);
        }
    }

    /// A message from a learner.
    pub fn handle_msg(&mut self, h: Handle, msg: Msg, now: Instant) {
        if self.abandoned {
            return;
        }
        let tick = self.tick();
        let sync_limit = u64::from(self.cfg.sync_limit);
        let Some(l) = self.learners.get_mut(&h) else { return };
        l.heard_tick = tick;
        if l.phase >= Phase::NewLeaderSent {
            l.deadline_tick = tick + sync_limit;
        }
        match msg {
            Msg::LearnerInfo { sid, accepted_epoch, observer } => {
                self.on_info(h, sid, accepted_epoch, observer, now)
            }
            Msg::AckEpoch { current_epoch, last_zxid } => {
                self.on_ack_epoch(h, current_epoch, last_zxid, now)
            }
            Msg::Ack { zxid } => self.on_ack(h, zxid, now),
            Msg::Ping { .. } | Msg::Other => {}
            other => {
                warn!("leader: unexpected {other:?} from a learner");
                self.close(h, "unexpected packet");
            }
        }
    }

    fn close(&mut self, h: Handle, why: &str) {
        self.learners.remove(&h);
        self.out.push_back(Action::Close(h, why.to_owned()));
    }

    fn is_voter(&self, sid: ServerId) -> bool {
        self.cfg.qv.is_voter(sid)
    }

    fn on_info(
        &mut self,
        h: Handle,
        sid: ServerId,
        accepted_epoch: i64,
        observer: bool,
        now: Instant,
    ) {
        // The new epoch is accepted + 1 and must fit a zxid's upper 32 bits (never wrap to
        // a negative zxid): a learner claiming more is refused, not believed.
        if !(0..MAX_EPOCH).contains(&accepted_epoch) {
            return self.close(h, "accepted epoch out of range");
        }
        // One connection per server. A second claim of a sid whose connection is live (heard
        // from within the last tick: it answers every half-tick ping) is refused; one whose
        // connection went silent replaces it (a learner that restarted before the leader
        // noticed its old connection die).
        let tick = self.tick();
        let existing = self.learners.iter().find(|(other, l)| **other != h && l.sid == Some(sid));
        if let Some((&old, l)) = existing {
            if tick.saturating_sub(l.heard_tick) <= 1 {
                return self.close(h, "a learner with this sid is already connected");
            }
            self.close(old, "replaced by a newer connection of the same sid");
        }
        let Some(l) = self.learners.get_mut(&h) else { return };
        if l.phase != Phase::Connected {
            return self.close(h, "second LearnerInfo");
        }
        if sid == self.cfg.my_sid {
            return self.close(h, "learner uses my own sid");
        }
        if !observer && !self.cfg.qv.is_voter(sid) {
            return self.close(h, "FOLLOWERINFO from a server that is not a participant");
        }
        if observer && self.cfg.qv.is_voter(sid) {
            return self.close(h, "OBSERVERINFO from a participant");
        }
        l.sid = Some(sid);
        l.observer = observer;
        l.phase = Phase::Info;
        info!(
            "leader: {} {sid} connected, accepted epoch 0x{accepted_epoch:x}",
            if observer { "observer" } else { "follower" }
        );
        if !self.epoch_fixed {
            if !observer {
                self.connecting.insert(sid);
                if accepted_epoch >= self.epoch {
                    self.epoch = accepted_epoch + 1;
                }
            }
            self.try_fix_epoch(now);
        } else {
            self.send_leader_info(h);
        }
    }

    fn try_fix_epoch(&mut self, now: Instant) {
        if self.epoch_fixed || !self.cfg.qv.contains_quorum(&self.connecting) {
            return;
        }
        self.epoch_fixed = true;
        self.accepted_epoch = self.epoch;
        self.out.push_back(Action::WriteAcceptedEpoch(self.epoch));
        self.phase_deadline = now + self.cfg.tick * self.cfg.init_limit;
        info!("leader: proposing epoch 0x{:x}", self.epoch);
        self.electing.insert(self.cfg.my_sid);
        let waiting = self.learners_in(Phase::Info);
        for h in waiting {
            self.send_leader_info(h);
        }
        self.try_epoch_quorum(now);
    }

    fn send_leader_info(&mut self, h: Handle) {
        if let Some(l) = self.learners.get_mut(&h) {
            l.phase = Phase::LeaderInfoSent;
            self.out.push_back(Action::Send(h, Msg::LeaderInfo { epoch: self.epoch }));
        }
    }

    fn on_ack_epoch(&mut self, h: Handle, current_epoch: i64, last_zxid: i64, now: Instant) {
        let Some(l) = self.learners.get_mut(&h) else { return };
        if l.phase != Phase::LeaderInfoSent {
            return self.close(h, "ACKEPOCH out of order");
        }
        let (my_epoch, my_zxid) = self.summary;
        if current_epoch != -1
            && (current_epoch > my_epoch || (current_epoch == my_epoch && last_zxid > my_zxid))
        {
            warn!(
                "leader: learner {:?} is more recent (epoch 0x{current_epoch:x}, zxid \
                 0x{last_zxid:x}) than me (epoch 0x{my_epoch:x}, zxid 0x{my_zxid:x})",
                l.sid
            );
            return self.close(h, "learner more recent than the leader");
        }
        l.phase = Phase::EpochAcked;
        l.last_zxid = last_zxid;
        let sid = l.sid;
        if self.epoch_acked {
            self.sync_learner(h);
            return;
        }
        if let Some(sid) = sid {
            if current_epoch != -1 && last_zxid != -1 && self.is_voter(sid) {
                self.electing.insert(sid);
            }
        }
        self.try_epoch_quorum(now);
    }

    fn try_epoch_quorum(&mut self, now: Instant) {
        if self.epoch_acked || !self.epoch_fixed || !self.cfg.qv.contains_quorum(&self.electing) {
            return;
        }
        self.epoch_acked = true;
        self.out.push_back(Action::WriteCurrentEpoch(self.epoch));
        self.phase_deadline = now + self.cfg.tick * self.cfg.init_limit;
        self.newleader_acks.insert(self.cfg.my_sid);
        info!("leader: epoch 0x{:x} acknowledged by {:?}", self.epoch, self.electing);
        let waiting = self.learners_in(Phase::EpochAcked);
        for h in waiting {
            self.sync_learner(h);
        }
        self.try_serve();
    }

    /// Chooses DIFF, TRUNC or SNAP for a learner and queues its sync (§6.2).
    fn sync_learner(&mut self, h: Handle) {
        let Some(l) = self.learners.get(&h) else { return };
        let peer = l.last_zxid;
        let last = self.last_committed;
        let (min, max) = match (self.committed_log.front(), self.committed_log.back()) {
            (Some(f), Some(b)) => (f.0, b.0),
            _ => (last, last),
        };
        let mut queue: Vec<Msg> = Vec::new();
        if peer == last {
            queue.push(Msg::Diff { zxid: peer });
        } else if peer > max && counter_of(peer) != 0 {
            queue.push(Msg::Trunc { zxid: max });
        } else if min <= peer && peer <= max {
            match self.walk_committed(peer) {
                Some((op, proposals)) => {
                    queue.push(op);
                    for (z, p) in proposals {
                        queue.push(Msg::Proposal { zxid: z, payload: p });
                        queue.push(Msg::Commit { zxid: z });
                    }
                }
                None => return self.request_snap(h),
            }
        } else if peer < min {
            if let Some(l) = self.learners.get_mut(&h) {
                l.phase = Phase::ReadingLog;
            }
            self.out.push_back(Action::ReadLog { h, from: peer, to: min });
            return;
        } else {
            return self.request_snap(h);
        }
        info!(
            "leader: syncing learner {:?} (last zxid 0x{peer:x}) with {} (committed log \
             0x{min:x}..0x{max:x})",
            self.learners.get(&h).and_then(|l| l.sid),
            match queue.first() {
                Some(Msg::Trunc { zxid }) => format!("TRUNC to 0x{zxid:x}"),
                _ => format!("DIFF of {} txns", queue.len() / 2),
            }
        );
        for m in queue {
            self.out.push_back(Action::Send(h, m));
        }
        self.finish_sync(h);
    }

    /// Walks the committed log from the learner's position: the op packet (DIFF or TRUNC) and
    /// the proposals to send, or `None` when only a snapshot will do.
    fn walk_committed(&self, peer: i64) -> Option<(Msg, Vec<(i64, Payload)>)> {
        let mut prev = 0;
        let mut op: Option<Msg> = None;
        let mut out = Vec::new();
        for (z, p) in &self.committed_log {
            let z = *z;
            if z < peer {
                prev = z;
                continue;
            }
            if op.is_none() {
                if z == peer {
                    op = Some(Msg::Diff { zxid: self.last_committed });
                    continue;
                }
                if counter_of(peer) == 0 {
                    op = Some(Msg::Diff { zxid: self.last_committed });
                } else {
                    if epoch_of(z) != epoch_of(peer) {
                        return None;
                    }
                    op = Some(Msg::Trunc { zxid: prev });
                }
            }
            out.push((z, p.clone()));
        }
        Some((op.unwrap_or(Msg::Diff { zxid: self.last_committed }), out))
    }

    /// The shell read the txn log for a learner behind the committed log ([`Action::ReadLog`]):
    /// `txns` ascending from the learner's last zxid to the start of the committed log. A DIFF
    /// of them and the committed log follows when they start exactly at the learner's zxid,
    /// reach the committed log and have no gap (consecutive counters within an epoch, a new
    /// epoch starting at counter 1); otherwise, or with `None`, a SNAP.
    pub fn log_read(&mut self, h: Handle, txns: Option<Vec<(i64, Payload)>>) {
        let Some(l) = self.learners.get(&h) else { return };
        if l.phase != Phase::ReadingLog {
            return;
        }
        let (peer, sid) = (l.last_zxid, l.sid);
        let reach = self.committed_log.front().map_or(self.last_committed, |e| e.0);
        let Some(txns) = txns.filter(|t| log_covers(t, peer, reach)) else {
            return self.request_snap(h);
        };
        // With an empty committed log, `reach` is the last committed txn and comes from the
        // txn log too.
        let in_memory = !self.committed_log.is_empty();
        let mut tail: Vec<(i64, Payload)> =
            txns.into_iter().filter(|(z, _)| *z > peer && (!in_memory || *z < reach)).collect();
        tail.extend(self.committed_log.iter().cloned());
        let mut queue = vec![Msg::Diff { zxid: self.last_committed }];
        for (z, p) in tail {
            queue.push(Msg::Proposal { zxid: z, payload: p });
            queue.push(Msg::Commit { zxid: z });
        }
        info!(
            "leader: syncing learner {sid:?} (last zxid 0x{peer:x}) with DIFF of {} txns from \
             the txn log",
            queue.len() / 2
        );
        for m in queue {
            self.out.push_back(Action::Send(h, m));
        }
        self.finish_sync(h);
    }

    fn request_snap(&mut self, h: Handle) {
        if let Some(l) = self.learners.get_mut(&h) {
            info!("leader: syncing learner {:?} with SNAP", l.sid);
            l.phase = Phase::Snapping;
            self.out.push_back(Action::SendSnap(h));
        }
    }

    /// The shell streamed a snapshot reflecting everything up to `zxid` to learner `h`: send
    /// the committed proposals after it, then finish the sync.
    pub fn snap_sent(&mut self, h: Handle, zxid: i64) {
        let Some(l) = self.learners.get(&h) else { return };
        if l.phase != Phase::Snapping {
            return;
        }
        if zxid < self.last_committed {
            // Entries after the applied zxid are never trimmed, and the snapshot was taken at
            // or after it; otherwise the log must start at or before the snapshot.
            let covered =
                self.applied <= zxid || self.committed_log.front().is_some_and(|(z, _)| *z <= zxid);
            if !covered {
                return self.close(h, "committed log does not reach back to the snapshot");
            }
            let tail: Vec<(i64, Payload)> =
                self.committed_log.iter().filter(|(z, _)| *z > zxid).cloned().collect();
            for (z, p) in tail {
                self.out.push_back(Action::Send(h, Msg::Proposal { zxid: z, payload: p }));
                self.out.push_back(Action::Send(h, Msg::Commit { zxid: z }));
            }
        }
        self.finish_sync(h);
    }

    /// After the committed part: outstanding proposals (followers), NEWLEADER, forwarding on.
    fn finish_sync(&mut self, h: Handle) {
        let Some(l) = self.learners.get_mut(&h) else { return };
        if !l.observer {
            for (z, p) in &self.outstanding {
                let msg = Msg::Proposal { zxid: *z, payload: p.payload.clone() };
                self.out.push_back(Action::Send(h, msg));
            }
        }
        l.phase = Phase::NewLeaderSent;
        let zxid = make_zxid(self.epoch, 0);
        self.out.push_back(Action::Send(h, Msg::NewLeader { zxid }));
    }

    fn on_ack(&mut self, h: Handle, zxid: i64, now: Instant) {
        let Some(l) = self.learners.get_mut(&h) else { return };
        let Some(sid) = l.sid else { return self.close(h, "ACK before LearnerInfo") };
        if counter_of(zxid) == 0 {
            if l.phase == Phase::NewLeaderSent && zxid == make_zxid(self.epoch, 0) {
                l.phase = Phase::NewLeaderAcked;
                if self.serving {
                    self.send_up_to_date(h, now);
                } else {
                    if self.is_voter(sid) {
                        self.newleader_acks.insert(sid);
                    }
                    self.try_serve();
                }
            }
            return;
        }
        if l.observer || !self.cfg.qv.is_voter(sid) {
            return;
        }
        if let Some(p) = self.outstanding.get_mut(&zxid) {
            p.acks.insert(sid);
            self.try_commit();
        }
    }

    fn try_serve(&mut self) {
        if self.serving || !self.epoch_acked || !self.cfg.qv.contains_quorum(&self.newleader_acks) {
            return;
        }
        self.serving = true;
        info!("leader: epoch 0x{:x} established with {:?}", self.epoch, self.newleader_acks);
        self.out.push_back(Action::StartServing { epoch: self.epoch });
        let acked = self.learners_in(Phase::NewLeaderAcked);
        let tick = self.tick();
        for h in acked {
            if let Some(l) = self.learners.get_mut(&h) {
                l.phase = Phase::UpToDate;
                l.deadline_tick = tick + u64::from(self.cfg.sync_limit);
                self.out.push_back(Action::Send(h, Msg::UpToDate));
            }
        }
    }

    fn send_up_to_date(&mut self, h: Handle, _now: Instant) {
        let tick = self.tick();
        if let Some(l) = self.learners.get_mut(&h) {
            l.phase = Phase::UpToDate;
            l.deadline_tick = tick + u64::from(self.cfg.sync_limit);
            self.out.push_back(Action::Send(h, Msg::UpToDate));
        }
    }

    /// The local pipeline proposes a txn (zxids must increase; the shell only calls this
    /// while serving).
    pub fn propose(&mut self, zxid: i64, payload: Payload) {
        if self.abandoned || !self.serving {
            return;
        }
        if counter_of(zxid) >= 0xffff_fffe {
            self.abandon("zxid counter is about to roll over: forcing a new epoch".to_owned());
            return;
        }
        self.last_proposed = zxid;
        for (h, l) in &self.learners {
            if l.forwarding() && !l.observer {
                let msg = Msg::Proposal { zxid, payload: payload.clone() };
                self.out.push_back(Action::Send(*h, msg));
            }
        }
        self.outstanding.insert(zxid, Proposal { payload, acks: BTreeSet::new() });
        // A one-voter ensemble commits on the leader's own ack alone (after `logged`).
    }

    /// A learner forwarded a sync(): it gets SYNC right after the commit of the last proposal
    /// made so far, or now if nothing is outstanding (`Leader.processSync`).
    pub fn sync_request(&mut self, h: Handle) {
        if self.outstanding.is_empty() {
            self.out.push_back(Action::Send(h, Msg::Sync));
        } else {
            self.pending_syncs.entry(self.last_proposed).or_default().push(h);
        }
    }

    /// Forwarded syncs waiting for a commit.
    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.values().map(Vec::len).sum()
    }

    /// The local txn log made `zxid` durable: the leader's own ack.
    pub fn logged(&mut self, zxid: i64) {
        let me = self.cfg.my_sid;
        // A group commit covers every earlier proposal too.
        for (_, p) in self.outstanding.range_mut(..=zxid) {
            p.acks.insert(me);
        }
        self.try_commit();
    }

    fn try_commit(&mut self) {
        while let Some(entry) = self.outstanding.first_entry() {
            if !self.cfg.qv.contains_quorum(&entry.get().acks) {
                break;
            }
            let (zxid, p) = entry.remove_entry();
            self.last_committed = zxid;
            for (h, l) in &self.learners {
                if !l.forwarding() {
                    continue;
                }
                let msg = if l.observer {
                    Msg::Inform { zxid, payload: p.payload.clone() }
                } else {
                    Msg::Commit { zxid }
                };
                self.out.push_back(Action::Send(*h, msg));
            }
            self.committed_log.push_back((zxid, p.payload));
            self.out.push_back(Action::Committed(zxid));
            for h in self.pending_syncs.remove(&zxid).unwrap_or_default() {
                self.out.push_back(Action::Send(h, Msg::Sync));
            }
        }
        self.trim_committed_log();
    }

    /// The apply stage reached `zxid` (committed-log entries after it are kept for SNAP).
    pub fn set_applied(&mut self, zxid: i64) {
        self.applied = zxid;
        self.trim_committed_log();
    }

    fn trim_committed_log(&mut self) {
        while self.committed_log.len() > self.cfg.commit_log_count {
            match self.committed_log.front() {
                Some((z, _)) if *z <= self.applied => {
                    self.committed_log.pop_front();
                }
                _ => break,
            }
        }
    }

    /// The learners in `phase`.
    fn learners_in(&self, phase: Phase) -> Vec<Handle> {
        self.learners.iter().filter(|(_, l)| l.phase == phase).map(|(h, _)| *h).collect()
    }

    fn tick(&self) -> u64 {
        self.half_ticks / 2
    }

    fn abandon(&mut self, why: String) {
        if !self.abandoned {
            self.abandoned = true;
            warn!("leader: abandoning leadership of epoch 0x{:x}: {why}", self.epoch);
            self.out.push_back(Action::Abandon(why));
        }
    }

    /// Timers: pings every half tick, learner deadlines, quorum checks, phase deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.abandoned {
            return;
        }
        if !self.serving && now >= self.phase_deadline {
            let what = if !self.epoch_fixed {
                "no quorum of followers connected"
            } else if !self.epoch_acked {
                "no quorum acknowledged the new epoch"
            } else {
                "no quorum acknowledged NEWLEADER"
            };
            return self.abandon(format!("{what} within initLimit"));
        }
        let half = self.cfg.tick / 2;
        while now >= self.next_half_tick {
            self.next_half_tick += half.max(Duration::from_millis(1));
            self.half_ticks += 1;
            if self.serving {
                let zxid = self.last_proposed;
                for (h, l) in &self.learners {
                    if l.phase == Phase::UpToDate {
                        self.out.push_back(Action::Send(*h, Msg::Ping { zxid }));
                    }
                }
            }
            if self.half_ticks.is_multiple_of(2) {
                self.check_liveness();
                if self.abandoned {
                    return;
                }
            }
        }
    }

    fn check_liveness(&mut self) {
        let tick = self.tick();
        let late: Vec<Handle> = self
            .learners
            .iter()
            .filter(|(_, l)| l.phase >= Phase::NewLeaderSent && l.deadline_tick < tick)
            .map(|(h, _)| *h)
            .collect();
        for h in late {
            let sid = self.learners.get(&h).and_then(|l| l.sid);
            warn!("leader: learner {sid:?} missed its syncLimit deadline; dropping it");
            self.close(h, "syncLimit exceeded");
        }
        if !self.serving {
            return;
        }
        let mut synced: BTreeSet<ServerId> = self
            .learners
            .values()
            .filter(|l| l.phase == Phase::UpToDate && !l.observer)
            .filter_map(|l| l.sid)
            .collect();
        synced.insert(self.cfg.my_sid);
        if !self.cfg.qv.contains_quorum(&synced) {
            self.abandon(format!(
                "not sufficient followers synced, only synced with sids: {:?}",
                synced.iter().map(|s| s.0).collect::<Vec<_>>()
            ));
        }
    }
}

/// Whether txns read from the log can sync a learner at `peer` up to `reach`: they start at
/// `peer`, end at `reach`, and have no gap (a log that skipped txns, say because a SNAP
/// replaced them, shows as a jump in counters).
fn log_covers(txns: &[(i64, Payload)], peer: i64, reach: i64) -> bool {
    let (Some(first), Some(last)) = (txns.first(), txns.last()) else {
        return false;
    };
    let contiguous = txns.windows(2).all(|w| {
        let (a, b) = (w[0].0, w[1].0);
        if epoch_of(a) == epoch_of(b) {
            b == a + 1
        } else {
            epoch_of(b) > epoch_of(a) && counter_of(b) == 1
        }
    });
    first.0 == peer && last.0 == reach && contiguous
}

#[cfg(test)]
mod tests;
