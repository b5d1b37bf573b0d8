//! The learner's side of Zab (follower and observer) as an I/O-free state machine
//! (quorum-protocol.md §6, like ZooKeeper's `Learner.registerWithLeader` / `syncWithLeader`
//! and `Follower`/`Observer.processPacket`).
//!
//! Inputs: the leader's messages ([`Learner::handle_msg`]; the shell reads a snapshot stream
//! that follows SNAP and loads it before feeding `Msg::Snap`), the local log's fsyncs
//! ([`Learner::logged`]) and the clock ([`Learner::handle_timeout`]). Outputs: [`Action`]s.
//!
//! Ordering contract with the shell: actions are carried out in order; a [`Action::Flush`]
//! makes every earlier [`Action::Log`] durable before the next action. Until UPTODATE the
//! shell applies and logs synchronously; afterwards logs go through its sync stage, which
//! calls [`Learner::logged`], and only then does the core ACK (followers only).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::msg::{epoch_of, make_zxid, Msg, Payload};
use crate::proto::ServerId;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to the leader.
    Send(Msg),
    /// Persist `acceptedEpoch`.
    WriteAcceptedEpoch(i64),
    /// Persist `currentEpoch`.
    WriteCurrentEpoch(i64),
    /// Cut the txn log back to `zxid` and reload the tree from disk.
    Truncate(i64),
    /// Apply a txn to the tree (in this order).
    Apply {
        /// Zxid.
        zxid: i64,
        /// Txn bytes.
        payload: Payload,
    },
    /// Append a txn to the log.
    Log {
        /// Zxid.
        zxid: i64,
        /// Txn bytes.
        payload: Payload,
    },
    /// Make every logged txn durable now (sync phase).
    Flush,
    /// Write a snapshot of the tree as it is now (after a SNAP or TRUNC sync).
    TakeSnapshot,
    /// UPTODATE: start serving clients.
    StartServing,
    /// Answer the leader's PING (with the sessions touched since the last one).
    PingReply(i64),
    /// The oldest forwarded sync() may complete.
    SyncDone,
    /// Give up on this leader (back to LOOKING).
    Abort(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// LearnerInfo sent; waiting for LEADERINFO.
    Registering,
    /// ACKEPOCH sent; waiting for DIFF/TRUNC/SNAP.
    EpochAcked,
    /// Syncing; `snapshot` = a snapshot is due at NEWLEADER (SNAP or TRUNC).
    Syncing { snapshot: bool },
    /// NEWLEADER handled; waiting for UPTODATE.
    NewLeader,
    /// Serving.
    Broadcast,
    /// Aborted.
    Done,
}

/// Learner timers.
#[derive(Debug, Clone, Copy)]
pub struct LearnerConfig {
    /// My id.
    pub my_sid: ServerId,
    /// Observer (OBSERVERINFO, INFORM, no ACKs of proposals).
    pub observer: bool,
    /// tickTime.
    pub tick: Duration,
    /// initLimit in ticks (read timeout until NEWLEADER).
    pub init_limit: u32,
    /// syncLimit in ticks (read timeout afterwards).
    pub sync_limit: u32,
}

/// The learner core.
#[derive(Debug)]
pub struct Learner {
    cfg: LearnerConfig,
    accepted_epoch: i64,
    current_epoch: i64,
    last_zxid: i64,
    new_epoch: i64,
    phase: Phase,
    /// Proposals received and not yet committed (zxid order).
    pending: VecDeque<(i64, Payload)>,
    /// Zxids committed during the sync whose apply waits for NEWLEADER.
    committed: VecDeque<i64>,
    last_heard: Instant,
    out: VecDeque<Action>,
}

impl Learner {
    /// A learner with this persisted state; registers with the leader at once.
    pub fn new(
        cfg: LearnerConfig,
        accepted_epoch: i64,
        current_epoch: i64,
        last_zxid: i64,
        now: Instant,
    ) -> Learner {
        let mut l = Learner {
            cfg,
            accepted_epoch,
            current_epoch,
            last_zxid,
            new_epoch: -1,
            phase: Phase::Registering,
            pending: VecDeque::new(),
            committed: VecDeque::new(),
            last_heard: now,
            out: VecDeque::new(),
        };
        l.out.push_back(Action::Send(Msg::LearnerInfo {
            sid: cfg.my_sid,
            accepted_epoch,
            observer: cfg.observer,
        }));
        l
    }

    /// The next action for the shell.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Learner::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.phase != Phase::Done).then(|| self.last_heard + self.read_timeout())
    }

    /// Whether the learner is serving (UPTODATE received).
    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// The epoch being joined (-1 before LEADERINFO).
    pub fn epoch(&self) -> i64 {
        self.new_epoch
    }

    /// The last zxid logged or received in a snapshot.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    fn read_timeout(&self) -> Duration {
        let ticks = match self.phase {
            Phase::Registering | Phase::EpochAcked | Phase::Syncing { .. } => self.cfg.init_limit,
            _ => self.cfg.sync_limit,
        };
        self.cfg.tick * ticks.max(1)
    }

    /// No packet from the leader within the read timeout: give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Done && now >= self.last_heard + self.read_timeout() {
            let ms = self.read_timeout().as_millis();
            self.abort(format!("no packet from the leader for {ms} ms"));
        }
    }

    fn abort(&mut self, why: String) {
        if self.phase != Phase::Done {
            warn!("learner {}: leaving the leader: {why}", self.cfg.my_sid.0);
            self.phase = Phase::Done;
            self.out.push_back(Action::Abort(why));
        }
    }

    /// The local log made `zxid` durable (broadcast phase): ACK it (followers).
    pub fn logged(&mut self, zxid: i64) {
        if self.phase == Phase::Broadcast && !self.cfg.observer {
            self.out.push_back(Action::Send(Msg::Ack { zxid }));
        }
    }

    /// A message from the leader.
    pub fn handle_msg(&mut self, msg: Msg, now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        self.last_heard = now;
        match (self.phase, msg) {
            (Phase::Registering, Msg::LeaderInfo { epoch }) => self.on_leader_info(epoch),
            (Phase::EpochAcked, Msg::Diff { .. }) => {
                self.phase = Phase::Syncing { snapshot: false };
            }
            (Phase::EpochAcked, Msg::Trunc { zxid }) => {
                info!("learner {}: truncating the log to 0x{zxid:x}", self.cfg.my_sid.0);
                self.out.push_back(Action::Truncate(zxid));
                self.last_zxid = zxid;
                self.phase = Phase::Syncing { snapshot: true };
            }
            (Phase::EpochAcked, Msg::Snap { zxid }) => {
                self.last_zxid = zxid;
                self.phase = Phase::Syncing { snapshot: true };
            }
            (Phase::Syncing { .. } | Phase::NewLeader, Msg::Proposal { zxid, payload }) => {
                if let Some((last, _)) = self.pending.back() {
                    if epoch_of(*last) == epoch_of(zxid) && zxid != last + 1 {
                        warn!("learner: got zxid 0x{zxid:x} expected 0x{:x}", last + 1);
                    }
                }
                if self.phase == Phase::NewLeader {
                    // After NEWLEADER every txn goes through the log before being acked.
                    self.out.push_back(Action::Log { zxid, payload: payload.clone() });
                    self.out.push_back(Action::Flush);
                    if !self.cfg.observer {
                        self.out.push_back(Action::Send(Msg::Ack { zxid }));
                    }
                }
                self.pending.push_back((zxid, payload));
            }
            (Phase::Syncing { snapshot: true }, Msg::Commit { zxid }) => {
                // The snapshot written at NEWLEADER will capture it: apply now. The COMMIT must
                // name the oldest pending proposal, as in every other phase (one home for the
                // invariant: `commit` aborts otherwise).
                if self.commit(zxid) {
                    self.last_zxid = self.last_zxid.max(zxid);
                }
            }
            (Phase::Syncing { snapshot: false }, Msg::Commit { zxid }) => {
                self.committed.push_back(zxid)
            }
            (Phase::Syncing { snapshot }, Msg::NewLeader { zxid }) => {
                self.on_new_leader(zxid, snapshot)
            }
            (Phase::NewLeader, Msg::Commit { zxid }) => {
                self.commit(zxid);
            }
            (Phase::NewLeader, Msg::UpToDate) => {
                let zxid = make_zxid(self.new_epoch, 0);
                self.out.push_back(Action::Send(Msg::Ack { zxid }));
                self.out.push_back(Action::StartServing);
                self.phase = Phase::Broadcast;
                info!(
                    "learner {}: up to date with epoch 0x{:x} at zxid 0x{:x}",
                    self.cfg.my_sid.0, self.new_epoch, self.last_zxid
                );
            }
            (Phase::Broadcast, Msg::Proposal { zxid, payload }) => {
                if self.cfg.observer {
                    return self.abort("PROPOSAL sent to an observer".to_owned());
                }
                self.last_zxid = zxid;
                self.out.push_back(Action::Log { zxid, payload: payload.clone() });
                self.pending.push_back((zxid, payload));
            }
            (Phase::Broadcast, Msg::Commit { zxid }) => {
                self.commit(zxid);
            }
            // A late observer acks NEWLEADER and is forwarded INFORMs at once; those
            // committed before its UPTODATE arrives come in the NewLeader phase (ZooKeeper's
            // syncWithLeader logs and applies them too).
            (Phase::NewLeader | Phase::Broadcast, Msg::Inform { zxid, payload }) => {
                self.last_zxid = zxid;
                self.out.push_back(Action::Log { zxid, payload: payload.clone() });
                self.out.push_back(Action::Apply { zxid, payload });
            }
            (Phase::NewLeader | Phase::Broadcast, Msg::Ping { zxid }) => {
                self.out.push_back(Action::PingReply(zxid))
            }
            (Phase::Broadcast, Msg::Sync) => self.out.push_back(Action::SyncDone),
            (_, Msg::Other | Msg::Ping { .. }) => {}
            (phase, msg) => self.abort(format!("unexpected {msg:?} in phase {phase:?}")),
        }
    }

    fn on_leader_info(&mut self, epoch: i64) {
        let current = if epoch > self.accepted_epoch {
            self.accepted_epoch = epoch;
            self.out.push_back(Action::WriteAcceptedEpoch(epoch));
            self.current_epoch
        } else if epoch == self.accepted_epoch {
            -1
        } else {
            return self.abort(format!(
                "leader proposed epoch 0x{epoch:x}, below my accepted epoch 0x{:x}",
                self.accepted_epoch
            ));
        };
        self.new_epoch = epoch;
        self.phase = Phase::EpochAcked;
        self.out.push_back(Action::Send(Msg::AckEpoch {
            current_epoch: current,
            last_zxid: self.last_zxid,
        }));
    }

    fn on_new_leader(&mut self, zxid: i64, snapshot: bool) {
        if epoch_of(zxid) != self.new_epoch {
            return self
                .abort(format!("NEWLEADER 0x{zxid:x} is not of epoch 0x{:x}", self.new_epoch));
        }
        if snapshot {
            self.out.push_back(Action::TakeSnapshot);
        }
        // Everything received during the sync goes to the log; the committed part is applied.
        for (z, payload) in &self.pending {
            self.out.push_back(Action::Log { zxid: *z, payload: payload.clone() });
            self.last_zxid = self.last_zxid.max(*z);
        }
        self.out.push_back(Action::Flush);
        while let Some(z) = self.committed.pop_front() {
            if !self.commit(z) {
                return;
            }
        }
        self.current_epoch = self.new_epoch;
        self.out.push_back(Action::WriteCurrentEpoch(self.new_epoch));
        self.phase = Phase::NewLeader;
        self.out.push_back(Action::Send(Msg::Ack { zxid }));
        // The proposals still pending are the leader's outstanding ones, now logged and
        // flushed: ACK them, as ZooKeeper's sync processor does for the txns the follower
        // logs at NEWLEADER. Without these acks a proposal outstanding while a follower
        // syncs never counts that follower, and can stay uncommitted forever (the leader
        // commits in zxid order, so everything after it stalls too).
        if !self.cfg.observer {
            for (z, _) in &self.pending {
                self.out.push_back(Action::Send(Msg::Ack { zxid: *z }));
            }
        }
    }

    /// Applies the oldest pending proposal, which `zxid` must name; aborts otherwise. Returns
    /// whether it applied.
    fn commit(&mut self, zxid: i64) -> bool {
        match self.pending.front() {
            Some((z, _)) if *z == zxid => {
                if let Some((z, payload)) = self.pending.pop_front() {
                    self.out.push_back(Action::Apply { zxid: z, payload });
                }
                true
            }
            Some((z, _)) => {
                let z = *z;
                self.abort(format!("committing zxid 0x{zxid:x} but next pending txn 0x{z:x}"));
                false
            }
            None => {
                self.abort(format!("COMMIT 0x{zxid:x} without a pending proposal"));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn learner(observer: bool, now: Instant) -> Learner {
        let cfg = LearnerConfig {
            my_sid: ServerId(2),
            observer,
            tick: Duration::from_millis(100),
            init_limit: 10,
            sync_limit: 5,
        };
        Learner::new(cfg, 1, 1, make_zxid(1, 3), now)
    }

    fn drain(l: &mut Learner) -> Vec<Action> {
        std::iter::from_fn(|| l.poll_action()).collect()
    }

    /// A leader already serving forwards INFORMs to an observer right after NEWLEADER, so one
    /// can arrive before UPTODATE: it is logged and applied, not a protocol error.
    #[test]
    fn observer_takes_an_inform_between_newleader_and_uptodate() {
        let now = Instant::now();
        let mut l = learner(true, now);
        l.handle_msg(Msg::LeaderInfo { epoch: 2 }, now);
        l.handle_msg(Msg::Diff { zxid: make_zxid(1, 3) }, now);
        l.handle_msg(Msg::NewLeader { zxid: make_zxid(2, 0) }, now);
        drain(&mut l);
        let payload: Payload = Arc::from(&b"x"[..]);
        let zxid = make_zxid(2, 1);
        l.handle_msg(Msg::Inform { zxid, payload: payload.clone() }, now);
        assert_eq!(
            drain(&mut l),
            vec![Action::Log { zxid, payload: payload.clone() }, Action::Apply { zxid, payload }]
        );
        l.handle_msg(Msg::UpToDate, now);
        assert!(drain(&mut l).contains(&Action::StartServing));
        assert_eq!(l.last_zxid(), zxid);
    }

    /// Proposals outstanding at the leader reach a syncing follower before NEWLEADER; once
    /// logged and flushed at NEWLEADER they must be acked like any other proposal.
    #[test]
    fn proposals_received_during_sync_are_acked_after_newleader() {
        let now = Instant::now();
        for observer in [false, true] {
            let mut l = learner(observer, now);
            l.handle_msg(Msg::LeaderInfo { epoch: 2 }, now);
            l.handle_msg(Msg::Diff { zxid: make_zxid(1, 3) }, now);
            let payload: Payload = Arc::from(&b"x"[..]);
            for c in 1..=2 {
                l.handle_msg(
                    Msg::Proposal { zxid: make_zxid(2, c), payload: payload.clone() },
                    now,
                );
            }
            drain(&mut l);
            l.handle_msg(Msg::NewLeader { zxid: make_zxid(2, 0) }, now);
            let acts = drain(&mut l);
            let flush = acts.iter().position(|a| *a == Action::Flush).expect("flush");
            let epoch = acts.iter().position(|a| *a == Action::WriteCurrentEpoch(2)).unwrap();
            let acks: Vec<(usize, i64)> = acts
                .iter()
                .enumerate()
                .filter_map(|(k, a)| match a {
                    Action::Send(Msg::Ack { zxid }) => Some((k, *zxid)),
                    _ => None,
                })
                .collect();
            let zxids: Vec<i64> = acks.iter().map(|(_, z)| *z).collect();
            if observer {
                assert_eq!(zxids, vec![make_zxid(2, 0)]);
            } else {
                assert_eq!(zxids, vec![make_zxid(2, 0), make_zxid(2, 1), make_zxid(2, 2)]);
            }
            assert!(acks.iter().all(|(k, _)| *k > flush && *k > epoch), "{acts:?}");
            // The commits that follow apply them in order.
            l.handle_msg(Msg::Commit { zxid: make_zxid(2, 1) }, now);
            assert!(
                matches!(drain(&mut l)[..], [Action::Apply { zxid, .. }] if zxid == make_zxid(2, 1))
            );
        }
    }
    /// A COMMIT during a SNAP sync must name the oldest pending proposal, as in every other
    /// phase; one that does not is a protocol error, not a warning followed by applying the
    /// wrong txn.
    #[test]
    fn commit_of_another_zxid_during_snap_sync_aborts() {
        let now = Instant::now();
        let mut l = learner(false, now);
        l.handle_msg(Msg::LeaderInfo { epoch: 2 }, now);
        l.handle_msg(Msg::Snap { zxid: make_zxid(1, 9) }, now);
        let payload: Payload = Arc::from(&b"x"[..]);
        l.handle_msg(Msg::Proposal { zxid: make_zxid(1, 10), payload }, now);
        drain(&mut l);
        l.handle_msg(Msg::Commit { zxid: make_zxid(1, 11) }, now);
        let acts = drain(&mut l);
        assert!(
            matches!(acts[..], [Action::Abort(ref why)] if why.contains("0x10000000b")),
            "{acts:?}"
        );
        // The matching commit in the same phase applies.
        let mut l = learner(false, now);
        l.handle_msg(Msg::LeaderInfo { epoch: 2 }, now);
        l.handle_msg(Msg::Snap { zxid: make_zxid(1, 9) }, now);
        let payload: Payload = Arc::from(&b"x"[..]);
        l.handle_msg(Msg::Proposal { zxid: make_zxid(1, 10), payload }, now);
        drain(&mut l);
        l.handle_msg(Msg::Commit { zxid: make_zxid(1, 10) }, now);
        assert!(
            matches!(drain(&mut l)[..], [Action::Apply { zxid, .. }] if zxid == make_zxid(1, 10))
        );
        assert_eq!(l.last_zxid(), make_zxid(1, 10));
    }
}
