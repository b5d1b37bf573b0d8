//! Fast leader election (FLE) as a state machine with no I/O (quorum-protocol.md §4;
//! ZooKeeper's `FastLeaderElection.lookForLeader` and `Messenger.WorkerReceiver`).
//!
//! Runs on the election thread, inside a shell that owns the channels. It never touches a
//! socket, a clock, a thread or a random number: every input carries `now`, and every output is
//! drained by the caller:
//!
//! - inputs: [`Election::start`] (enter LOOKING), [`Election::handle_notification`],
//!   [`Election::handle_timeout`];
//! - outputs: [`Election::poll_send`] (one message per recipient; a broadcast is one per
//!   voter, the sender included: the shell hands a message addressed to itself straight back
//!   to `handle_notification`), [`Election::poll_timeout`], [`Election::poll_outcome`], and
//!   [`Election::poll_newer_config`].
//!
//! One core lives as long as the peer. Apache splits the work between the election loop
//! (LOOKING only) and the receiver thread, which keeps answering LOOKING peers while this peer
//! follows or leads; both halves are here, so the core keeps being fed after its outcome. Its
//! logical clock carries over from one election to the next, as Apache's does.
//!
//! # The algorithm, rule by rule (each has a unit test below)
//!
//! - `start`: logical clock + 1, proposal = my initial vote (myid, last logged zxid, current
//!   epoch; `Long.MIN_VALUE`s for a non-voter), notify every voter.
//! - A notification from a non-voter is answered with my current vote and otherwise ignored.
//! - While LOOKING, a LOOKING sender whose round is behind mine gets my proposal back.
//! - While not LOOKING, a LOOKING sender gets my current vote, in my state.
//! - LOOKING notifications (the sender and its leader must be voters; zxid -1 on either side is
//!   ignored): a newer round is adopted (votes cleared, proposal = better of theirs and my
//!   initial vote, notify all); an older round is ignored; a better vote in my round is
//!   adopted (notify all). The vote is recorded; when the voters recorded for my proposal form
//!   a quorum, the core waits `finalize_wait`: a notification that beats my proposal cancels
//!   the wait and is processed; any other one is dropped and restarts the wait; when the wait
//!   expires the core decides LEADING (my proposal is me), FOLLOWING, or OBSERVING.
//! - OBSERVING notifications are ignored.
//! - FOLLOWING / LEADING notifications: in my round they are recorded with the LOOKING ones,
//!   and a quorum agreeing with them plus `check_leader` decides; always, they are recorded in
//!   the out-of-election set, and a quorum there plus `check_leader` adopts their round and
//!   decides (joining an established ensemble, ZOOKEEPER-1732).
//! - `check_leader`: another leader must itself be recorded as LEADING; if I am the leader, the
//!   round must be mine.
//! - No notification for the notification interval: notify all again, double the interval (up
//!   to the maximum). The interval starts at the minimum on each `start`.
//!
//! # Apache behaviours kept on purpose (found or confirmed by `tests/sim_election.rs`)
//!
//! - FLE alone can end a round with two leaders: a peer that does not hear the better vote
//!   within `finalize_wait` decides on the worse one. Zab's epoch agreement makes that safe
//!   (the wrong "leader" never gets a quorum of followers, its followers time out and look
//!   again); the election does not, and neither does this core.
//! - Non-voters are answered with the voter's *current* vote stamped LOOKING and with its
//!   round, even when that vote is an old decision; an observer may therefore settle on a
//!   stale leader and has to time out of it.
//! - An observer whose round is ahead of a LOOKING voter, and that voter, answer each other
//!   for as long as both stay LOOKING (one message per round trip).
//! - Joining an established ensemble sets the logical clock to the ensemble's round, which
//!   can move it backwards.
//! - Notifications that arrive before the first `start` are dropped (the shell starts the core
//!   right away; Apache queues them for the first round).
//!
//! Apache's timeout resends only when a send queue is empty and otherwise reconnects; the send
//! queues hold one message each, and a newer message replaces an unsent one, so resending
//! through them is equivalent, and the shell reconnects whenever it is handed a message for a
//! peer it has no connection to.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use log::{debug, info};

use crate::limits::{ELECTION_FINALIZE_WAIT, ELECTION_MAX_NOTIFICATION_INTERVAL};
use crate::proto::{ServerId, Zxid};
use crate::quorum::vote::{
    total_order_predicate, votes_match, QuorumMaj, ServerState, Vote, NO_LEADER,
};
use crate::quorum::wire::Notification;

/// Election timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionConfig {
    /// First notification interval (`zookeeper.fastleader.minNotificationInterval`).
    pub min_notification_interval: Duration,
    /// Cap of the doubling interval (`zookeeper.fastleader.maxNotificationInterval`).
    pub max_notification_interval: Duration,
    /// How long to wait for a better vote once a quorum agrees (`finalizeWait`).
    pub finalize_wait: Duration,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            min_notification_interval: ELECTION_FINALIZE_WAIT,
            max_notification_interval: ELECTION_MAX_NOTIFICATION_INTERVAL,
            finalize_wait: ELECTION_FINALIZE_WAIT,
        }
    }
}

/// What a finished election decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The elected vote; `state` is my resulting state (LEADING, FOLLOWING or OBSERVING) and
    /// `election_epoch` the round it was decided in.
    pub vote: Vote,
    /// How it was decided.
    pub path: DecisionPath,
    /// The voters whose recorded votes made the quorum, with the state each vote was cast
    /// in. A LOOKING-path quorum may include settled (FOLLOWING/LEADING) votes of the same
    /// round, as Apache's `recvset` does.
    pub supporters: Vec<(ServerId, ServerState)>,
}

/// Which rule ended the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionPath {
    /// A quorum of LOOKING votes agreed on my proposal and nothing better came within
    /// `finalize_wait`.
    Looking,
    /// FOLLOWING/LEADING votes of my own round formed a quorum.
    SettledInRound,
    /// FOLLOWING/LEADING votes from any round formed a quorum (joining an established leader).
    OutOfElection,
}

/// A vote as recorded from a notification, with the sender's format version (it changes how
/// settled votes compare, see [`votes_match`]).
#[derive(Debug, Clone, Copy)]
struct Recorded {
    vote: Vote,
    version: i32,
}

/// The fast leader election core of one peer.
#[derive(Debug)]
pub struct Election {
    my_id: ServerId,
    qv: QuorumMaj,
    config: ElectionConfig,
    last_logged_zxid: Zxid,
    current_epoch: i64,
    /// `logicalclock`: the round.
    logical_clock: i64,
    /// `(proposedLeader, proposedZxid, proposedEpoch)` as a vote of my round.
    proposal: Vote,
    state: ServerState,
    /// QuorumPeer's current vote: the last decided vote (or my initial vote before the first
    /// decision); answered to LOOKING peers while I follow or lead, and to non-voters always.
    current_vote: Vote,
    recvset: BTreeMap<ServerId, Recorded>,
    out_of_election: BTreeMap<ServerId, Recorded>,
    notification_interval: Duration,
    /// When the notification interval expires (LOOKING and not finalizing only).
    notification_deadline: Option<Instant>,
    /// When finalizing: the end of the wait and the supporters of my proposal.
    finalizing: Option<(Instant, Vec<(ServerId, ServerState)>)>,
    outbox: VecDeque<(ServerId, Notification)>,
    outcomes: VecDeque<Outcome>,
    newer_config: Option<Vec<u8>>,
}

impl Election {
    /// A core for peer `my_id` with this configuration and the vote inputs it will start with:
    /// its last logged zxid and its current epoch. Nothing happens until [`Election::start`].
    pub fn new(
        my_id: ServerId,
        qv: QuorumMaj,
        last_logged_zxid: Zxid,
        current_epoch: i64,
        config: ElectionConfig,
    ) -> Election {
        let mut election = Election {
            my_id,
            qv,
            config,
            last_logged_zxid,
            current_epoch,
            logical_clock: 0,
            proposal: Vote {
                leader: my_id,
                zxid: last_logged_zxid,
                election_epoch: 0,
                peer_epoch: current_epoch,
                state: ServerState::Looking,
            },
            state: ServerState::Looking,
            current_vote: Vote {
                leader: my_id,
                zxid: last_logged_zxid,
                election_epoch: -1,
                peer_epoch: current_epoch,
                state: ServerState::Looking,
            },
            recvset: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            notification_interval: config.min_notification_interval,
            notification_deadline: None,
            finalizing: None,
            outbox: VecDeque::new(),
            outcomes: VecDeque::new(),
            newer_config: None,
        };
        election.proposal = election.initial_vote();
        election
    }

    /// Updates the vote inputs after a role ends (the peer synced more txns or a new epoch);
    /// takes effect at the next [`Election::start`].
    pub fn set_vote_inputs(&mut self, last_logged_zxid: Zxid, current_epoch: i64) {
        self.last_logged_zxid = last_logged_zxid;
        self.current_epoch = current_epoch;
    }

    /// Sets the peer epoch advertised in my current vote once a new leader is established
    /// [QuorumPeer.updateElectionVote].
    pub fn update_election_vote(&mut self, new_epoch: i64) {
        self.current_vote.peer_epoch = new_epoch;
    }

    /// Enters LOOKING and starts a new round (`lookForLeader`).
    pub fn start(&mut self, now: Instant) {
        self.state = ServerState::Looking;
        self.logical_clock += 1;
        self.recvset.clear();
        self.out_of_election.clear();
        self.finalizing = None;
        self.proposal = self.initial_vote();
        self.notification_interval = self.config.min_notification_interval;
        self.notification_deadline = Some(now + self.notification_interval);
        info!(
            "sid {} looking: new election, round {}, proposing {}",
            self.my_id, self.logical_clock, self.proposal
        );
        self.send_notifications();
    }

    /// Feeds one notification received from `from`.
    pub fn handle_notification(&mut self, from: ServerId, n: &Notification, now: Instant) {
        // The receiver thread's half (WorkerReceiver).
        if self.state == ServerState::Looking {
            if let Some(version) = n.config_version() {
                if version > self.qv.version() {
                    info!(
                        "sid {} received config version 0x{version:x} from sid {from}, mine is \
                         0x{:x}: election must restart with it",
                        self.my_id,
                        self.qv.version()
                    );
                    self.newer_config = n.config.clone();
                    return;
                }
            }
        }
        if !self.qv.is_voter(from) {
            // Observers (and strangers) learn the leader from my current vote.
            let reply =
                Vote { election_epoch: self.logical_clock, state: self.state, ..self.current_vote };
            self.send(from, reply);
            return;
        }
        if self.state != ServerState::Looking {
            if n.state == ServerState::Looking {
                let reply = Vote { state: self.state, ..self.current_vote };
                self.send(from, reply);
            }
            return;
        }
        if n.state == ServerState::Looking && n.election_epoch < self.logical_clock {
            self.send(from, self.proposal);
        }
        if self.logical_clock == 0 {
            // Not started: nothing is waiting for notifications yet.
            return;
        }

        // The election loop's half (lookForLeader).
        if self.finalizing.is_some() {
            if self.beats(n.leader, &n.vote(), &self.proposal) {
                debug!("sid {} finalizing: better vote from sid {from}", self.my_id);
                self.finalizing = None;
            } else {
                let wait = self.config.finalize_wait;
                if let Some((deadline, _)) = &mut self.finalizing {
                    *deadline = now + wait;
                }
                return;
            }
        }
        self.notification_deadline = Some(now + self.notification_interval);
        if !self.qv.is_voter(n.leader) {
            debug!("sid {} ignores a vote for non-voter sid {}", self.my_id, n.leader.0 as i64);
            return;
        }
        match n.state {
            ServerState::Looking => self.handle_looking(from, n, now),
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => self.handle_settled(from, n),
        }
    }

    /// Fires due timers: the end of `finalize_wait` or the notification interval. Calls before
    /// the deadline do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != ServerState::Looking {
            return;
        }
        if let Some((deadline, supporters)) = &self.finalizing {
            if now >= *deadline {
                let supporters = supporters.clone();
                let vote = self.proposal;
                self.decide(vote, DecisionPath::Looking, supporters);
            }
            return;
        }
        match self.notification_deadline {
            Some(deadline) if now >= deadline => {
                self.send_notifications();
                self.notification_interval =
                    (self.notification_interval * 2).min(self.config.max_notification_interval);
                self.notification_deadline = Some(now + self.notification_interval);
                debug!(
                    "sid {} notification time out: {} ms",
                    self.my_id,
                    self.notification_interval.as_millis()
                );
            }
            _ => {}
        }
    }

    /// The next message to send: recipient and notification.
    #[must_use]
    pub fn poll_send(&mut self) -> Option<(ServerId, Notification)> {
        self.outbox.pop_front()
    }

    /// When [`Election::handle_timeout`] must be called next (`None` while not LOOKING).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != ServerState::Looking {
            return None;
        }
        match &self.finalizing {
            Some((deadline, _)) => Some(*deadline),
            None => self.notification_deadline,
        }
    }

    /// The decision of the election that just ended, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.outcomes.pop_front()
    }

    /// A config text with a higher version than mine, received while LOOKING: the peer must
    /// apply it (reconfig) and start a new election with a new core. Once.
    #[must_use]
    pub fn poll_newer_config(&mut self) -> Option<Vec<u8>> {
        self.newer_config.take()
    }

    /// My state: LOOKING until a decision, then the decided role.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The round.
    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    /// My current proposal (meaningful while LOOKING).
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    /// My current vote: the last decision, or my initial vote before the first one.
    pub fn current_vote(&self) -> Vote {
        self.current_vote
    }

    /// This peer's id.
    pub fn my_id(&self) -> ServerId {
        self.my_id
    }

    fn is_participant(&self) -> bool {
        self.qv.is_voter(self.my_id)
    }

    /// My initial vote of the current round [getInitId, getInitLastLoggedZxid, getPeerEpoch].
    fn initial_vote(&self) -> Vote {
        let participant = self.is_participant();
        Vote {
            leader: if participant { self.my_id } else { NO_LEADER },
            zxid: if participant { self.last_logged_zxid } else { Zxid(i64::MIN) },
            election_epoch: self.logical_clock,
            peer_epoch: if participant { self.current_epoch } else { i64::MIN },
            state: ServerState::Looking,
        }
    }

    /// Apache's `totalOrderPredicate`: the order, and a non-voter never wins.
    fn beats(&self, leader: ServerId, new: &Vote, current: &Vote) -> bool {
        self.qv.is_voter(leader) && total_order_predicate(new, current)
    }

    fn handle_looking(&mut self, from: ServerId, n: &Notification, now: Instant) {
        if self.initial_vote().zxid == Zxid(-1) || n.zxid == Zxid(-1) {
            debug!("sid {} ignores a notification with zxid -1", self.my_id);
            return;
        }
        let theirs = n.vote();
        if n.election_epoch > self.logical_clock {
            self.logical_clock = n.election_epoch;
            self.recvset.clear();
            let initial = self.initial_vote();
            let best = if self.beats(n.leader, &theirs, &initial) { theirs } else { initial };
            self.set_proposal(best);
            self.send_notifications();
        } else if n.election_epoch < self.logical_clock {
            return;
        } else if self.beats(n.leader, &theirs, &self.proposal) {
            self.set_proposal(theirs);
            self.send_notifications();
        }
        self.recvset.insert(
            from,
            Recorded { vote: Vote { state: ServerState::Looking, ..theirs }, version: 0 },
        );
        let mine = Recorded { vote: self.proposal, version: 0 };
        let supporters = agreeing(&self.recvset, &mine);
        if self.qv.contains_quorum(supporters.iter().map(|(sid, _)| sid)) {
            debug!(
                "sid {} finalizing {} with supporters {supporters:?}",
                self.my_id, self.proposal
            );
            self.finalizing = Some((now + self.config.finalize_wait, supporters));
        }
    }

    fn handle_settled(&mut self, from: ServerId, n: &Notification) {
        let theirs = n.vote();
        // Apache records settled votes in the round's set without their format version, so
        // there they compare by leader only (Vote.equals; kept for compatibility).
        if n.election_epoch == self.logical_clock {
            self.recvset.insert(from, Recorded { vote: theirs, version: 0 });
            let supporters =
                agreeing(&self.recvset, &Recorded { vote: theirs, version: n.version });
            if self.qv.contains_quorum(supporters.iter().map(|(sid, _)| sid))
                && self.check_leader(&self.recvset, n.leader, n.election_epoch)
            {
                self.decide(theirs, DecisionPath::SettledInRound, supporters);
                return;
            }
        }
        let recorded = Recorded { vote: theirs, version: n.version };
        self.out_of_election.insert(from, recorded);
        let supporters = agreeing(&self.out_of_election, &recorded);
        if self.qv.contains_quorum(supporters.iter().map(|(sid, _)| sid))
            && self.check_leader(&self.out_of_election, n.leader, n.election_epoch)
        {
            self.logical_clock = n.election_epoch;
            self.decide(theirs, DecisionPath::OutOfElection, supporters);
        }
    }

    /// A leader other than me must have told me itself that it leads; if it is me, the round
    /// must be mine (so a crashed leader is not re-elected by stale followers).
    fn check_leader(
        &self,
        votes: &BTreeMap<ServerId, Recorded>,
        leader: ServerId,
        election_epoch: i64,
    ) -> bool {
        if leader != self.my_id {
            votes.get(&leader).is_some_and(|r| r.vote.state == ServerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn set_proposal(&mut self, vote: Vote) {
        debug!("sid {} updates its proposal to {vote}", self.my_id);
        self.proposal = Vote {
            leader: vote.leader,
            zxid: vote.zxid,
            election_epoch: self.logical_clock,
            peer_epoch: vote.peer_epoch,
            state: ServerState::Looking,
        };
    }

    fn decide(&mut self, vote: Vote, path: DecisionPath, supporters: Vec<(ServerId, ServerState)>) {
        let state = if vote.leader == self.my_id {
            ServerState::Leading
        } else if self.is_participant() {
            ServerState::Following
        } else {
            ServerState::Observing
        };
        let vote = Vote {
            leader: vote.leader,
            zxid: vote.zxid,
            election_epoch: self.logical_clock,
            peer_epoch: vote.peer_epoch,
            state,
        };
        info!(
            "sid {} {state}: leader sid {}, zxid {}, epoch {}, round {}",
            self.my_id, vote.leader, vote.zxid, vote.peer_epoch, vote.election_epoch
        );
        self.state = state;
        self.current_vote = vote;
        self.finalizing = None;
        self.notification_deadline = None;
        self.recvset.clear();
        self.out_of_election.clear();
        self.outcomes.push_back(Outcome { vote, path, supporters });
    }

    /// Notifies every voter (myself included) of my proposal.
    fn send_notifications(&mut self) {
        let voters: Vec<ServerId> = self.qv.voters().collect();
        for sid in voters {
            self.send(sid, self.proposal);
        }
    }

    fn send(&mut self, to: ServerId, vote: Vote) {
        let n = Notification::from_vote(&vote, self.qv.text().as_bytes());
        self.outbox.push_back((to, n));
    }
}

/// The voters whose recorded vote matches `target`, in id order, with their votes' states.
fn agreeing(
    votes: &BTreeMap<ServerId, Recorded>,
    target: &Recorded,
) -> Vec<(ServerId, ServerState)> {
    votes
        .iter()
        .filter(|(_, r)| votes_match(&r.vote, r.version, &target.vote, target.version))
        .map(|(sid, r)| (*sid, r.vote.state))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn qv3() -> QuorumMaj {
        QuorumMaj::new([1, 2, 3].map(ServerId), [ServerId(4)], 0, "version=0".into())
    }

    fn core(id: u64, zxid: i64, epoch: i64) -> Election {
        Election::new(ServerId(id), qv3(), Zxid(zxid), epoch, ElectionConfig::default())
    }

    fn drain(e: &mut Election) -> Vec<(ServerId, Notification)> {
        std::iter::from_fn(|| e.poll_send()).collect()
    }

    fn note(
        state: ServerState,
        leader: u64,
        zxid: i64,
        round: i64,
        peer_epoch: i64,
    ) -> Notification {
        Notification::from_vote(
            &Vote {
                leader: ServerId(leader),
                zxid: Zxid(zxid),
                election_epoch: round,
                peer_epoch,
                state,
            },
            b"version=0",
        )
    }

    fn looking(leader: u64, zxid: i64, round: i64, peer_epoch: i64) -> Notification {
        note(ServerState::Looking, leader, zxid, round, peer_epoch)
    }

    /// Feeds back the messages a core addressed to itself; returns the others.
    fn loop_back(e: &mut Election, now: Instant) -> Vec<(ServerId, Notification)> {
        let mut out = Vec::new();
        while let Some((to, n)) = e.poll_send() {
            if to == e.my_id() {
                e.handle_notification(to, &n, now);
            } else {
                out.push((to, n));
            }
        }
        out
    }

    #[test]
    fn start_increments_the_round_and_notifies_every_voter() {
        let t0 = Instant::now();
        let mut e = core(2, 0x1_0000_0005, 1);
        e.start(t0);
        assert_eq!(e.logical_clock(), 1);
        let sent = drain(&mut e);
        let to: Vec<u64> = sent.iter().map(|(sid, _)| sid.0).collect();
        assert_eq!(to, vec![1, 2, 3], "voters only, myself included, observer 4 excluded");
        let n = &sent[0].1;
        assert_eq!(
            (n.state, n.leader, n.zxid),
            (ServerState::Looking, ServerId(2), Zxid(0x1_0000_0005))
        );
        assert_eq!((n.election_epoch, n.peer_epoch, n.version), (1, 1, 2));
        assert_eq!(n.config.as_deref(), Some(&b"version=0"[..]));
        assert_eq!(e.poll_timeout(), Some(t0 + 200 * MS));
    }

    #[test]
    fn notification_interval_doubles_up_to_the_cap() {
        let t0 = Instant::now();
        let mut e = core(1, 0, 0);
        e.start(t0);
        let _ = drain(&mut e);
        e.handle_timeout(t0 + 100 * MS);
        assert!(drain(&mut e).is_empty(), "early call does nothing");
        let mut now = t0;
        let mut intervals = Vec::new();
        for _ in 0..12 {
            let next = e.poll_timeout().expect("looking");
            intervals.push((next - now).as_millis());
            now = next;
            e.handle_timeout(now);
            assert_eq!(drain(&mut e).len(), 3, "each timeout re-notifies all voters");
        }
        assert_eq!(
            intervals,
            vec![200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000]
        );
        // A notification restarts the wait but keeps the interval.
        e.handle_notification(ServerId(2), &looking(2, 0, 1, 0), now + 5 * MS);
        assert_eq!(e.poll_timeout(), Some(now + 5 * MS + 60000 * MS));
        // A new election starts from the minimum again.
        e.start(now);
        assert_eq!(e.poll_timeout(), Some(now + 200 * MS));
    }

    #[test]
    fn better_vote_in_my_round_is_adopted_and_broadcast() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        let _ = drain(&mut e);
        e.handle_notification(ServerId(3), &looking(3, 5, 1, 1), t0);
        assert_eq!(e.proposal().leader, ServerId(3));
        let sent = drain(&mut e);
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|(_, n)| n.leader == ServerId(3) && n.election_epoch == 1));
        // A worse vote changes nothing and sends nothing.
        e.handle_notification(ServerId(2), &looking(2, 5, 1, 1), t0);
        assert_eq!(e.proposal().leader, ServerId(3));
        assert!(drain(&mut e).is_empty());
    }

    #[test]
    fn newer_round_clears_votes_and_takes_the_better_of_theirs_and_my_initial_vote() {
        let t0 = Instant::now();
        let mut e = core(2, 9, 1);
        e.start(t0);
        let _ = drain(&mut e);
        e.handle_notification(ServerId(3), &looking(3, 9, 1, 1), t0);
        assert_eq!(e.proposal().leader, ServerId(3));
        let _ = drain(&mut e);
        // Round 4 from peer 1 proposing itself with a lower zxid: I go back to my own vote.
        e.handle_notification(ServerId(1), &looking(1, 4, 4, 1), t0);
        assert_eq!(e.logical_clock(), 4);
        assert_eq!(e.proposal().leader, ServerId(2), "my initial vote beats theirs");
        assert_eq!(e.proposal().election_epoch, 4);
        let sent = drain(&mut e);
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|(_, n)| n.election_epoch == 4 && n.leader == ServerId(2)));
        // Round 5 with a better vote: adopted.
        e.handle_notification(ServerId(1), &looking(3, 9, 5, 1), t0);
        assert_eq!((e.logical_clock(), e.proposal().leader), (5, ServerId(3)));
    }

    #[test]
    fn older_round_is_ignored_but_answered_with_my_proposal() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        e.start(t0);
        e.start(t0);
        let _ = drain(&mut e);
        assert_eq!(e.logical_clock(), 3);
        e.handle_notification(ServerId(3), &looking(3, 9, 2, 1), t0);
        assert_eq!(e.proposal().leader, ServerId(1), "not adopted");
        let sent = drain(&mut e);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, ServerId(3));
        assert_eq!((sent[0].1.leader, sent[0].1.election_epoch), (ServerId(1), 3));
    }

    #[test]
    fn zxid_minus_one_is_ignored() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        let _ = drain(&mut e);
        e.handle_notification(ServerId(3), &looking(3, -1, 1, 1), t0);
        assert_eq!(e.proposal().leader, ServerId(1));
        let mut empty = core(1, -1, 1);
        empty.start(t0);
        let _ = drain(&mut empty);
        empty.handle_notification(ServerId(3), &looking(3, 9, 1, 1), t0);
        assert_eq!(empty.proposal().leader, ServerId(1));
    }

    #[test]
    fn quorum_then_finalize_wait_then_decide() {
        let t0 = Instant::now();
        let mut e = core(3, 9, 1);
        e.start(t0);
        let out = loop_back(&mut e, t0);
        assert_eq!(out.len(), 2);
        assert_eq!(e.poll_timeout(), Some(t0 + 200 * MS), "one vote is no quorum");
        e.handle_notification(ServerId(1), &looking(3, 9, 1, 1), t0 + 10 * MS);
        assert_eq!(e.poll_timeout(), Some(t0 + 210 * MS), "finalizing");
        // A vote that does not beat mine is dropped and restarts the wait.
        e.handle_notification(ServerId(2), &looking(2, 9, 1, 1), t0 + 50 * MS);
        assert_eq!(e.poll_timeout(), Some(t0 + 250 * MS));
        e.handle_timeout(t0 + 249 * MS);
        assert!(e.poll_outcome().is_none());
        e.handle_timeout(t0 + 250 * MS);
        let outcome = e.poll_outcome().expect("decided");
        assert_eq!(outcome.vote.leader, ServerId(3));
        assert_eq!(outcome.vote.state, ServerState::Leading);
        assert_eq!(outcome.vote.election_epoch, 1);
        assert_eq!(outcome.path, DecisionPath::Looking);
        let looking = ServerState::Looking;
        assert_eq!(outcome.supporters, vec![(ServerId(1), looking), (ServerId(3), looking)]);
        assert_eq!(e.state(), ServerState::Leading);
        assert_eq!(e.poll_timeout(), None, "no timers once decided");
    }

    #[test]
    fn better_vote_during_finalize_wait_cancels_it() {
        let t0 = Instant::now();
        let mut e = core(1, 9, 1);
        e.start(t0);
        let _ = loop_back(&mut e, t0);
        e.handle_notification(ServerId(2), &looking(2, 9, 1, 1), t0);
        let _ = loop_back(&mut e, t0); // my adopted vote for 2 comes back to me
        assert!(e.poll_timeout() == Some(t0 + 200 * MS));
        e.handle_notification(ServerId(3), &looking(3, 9, 1, 1), t0 + 100 * MS);
        assert_eq!(e.proposal().leader, ServerId(3));
        e.handle_timeout(t0 + 200 * MS);
        assert!(e.poll_outcome().is_none(), "the quorum for 2 no longer counts");
        let _ = loop_back(&mut e, t0 + 100 * MS);
        e.handle_notification(ServerId(2), &looking(3, 9, 1, 1), t0 + 150 * MS);
        e.handle_timeout(t0 + 350 * MS);
        let outcome = e.poll_outcome().expect("decided");
        assert_eq!(
            (outcome.vote.leader, outcome.vote.state),
            (ServerId(3), ServerState::Following)
        );
    }

    #[test]
    fn votes_for_non_voters_and_from_observers_do_not_count() {
        let t0 = Instant::now();
        let mut e = core(1, 9, 1);
        e.start(t0);
        let _ = loop_back(&mut e, t0);
        // A vote for observer 4 is ignored.
        e.handle_notification(ServerId(2), &looking(4, 99, 1, 9), t0);
        assert_eq!(e.proposal().leader, ServerId(1));
        // A notification from observer 4 is answered with my current vote, not counted.
        e.handle_notification(ServerId(4), &looking(1, 9, 1, 1), t0);
        let sent = drain(&mut e);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, ServerId(4));
        assert_eq!((sent[0].1.leader, sent[0].1.state), (ServerId(1), ServerState::Looking));
        assert_eq!(e.poll_timeout(), Some(t0 + 200 * MS), "still no quorum");
        // OBSERVING notifications from a voter id are ignored too.
        e.handle_notification(ServerId(2), &note(ServerState::Observing, 1, 9, 1, 1), t0);
        assert_eq!(e.poll_timeout(), Some(t0 + 200 * MS));
    }

    #[test]
    fn joins_an_established_leader_from_a_quorum_of_settled_votes() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        let _ = drain(&mut e);
        // Peers 2 and 3 settled on leader 3 in round 7 long ago; I am in round 1.
        e.handle_notification(ServerId(2), &note(ServerState::Following, 3, 9, 7, 2), t0);
        assert!(e.poll_outcome().is_none(), "one follower alone is not a quorum");
        e.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 7, 2), t0);
        let outcome = e.poll_outcome().expect("joined");
        assert_eq!(outcome.path, DecisionPath::OutOfElection);
        assert_eq!(
            (outcome.vote.leader, outcome.vote.state),
            (ServerId(3), ServerState::Following)
        );
        assert_eq!((outcome.vote.election_epoch, e.logical_clock()), (7, 7), "round adopted");
        let expected =
            vec![(ServerId(2), ServerState::Following), (ServerId(3), ServerState::Leading)];
        assert_eq!(outcome.supporters, expected);
    }

    #[test]
    fn followers_without_the_leaders_own_word_are_not_enough() {
        let t0 = Instant::now();
        let mut e = Election::new(
            ServerId(1),
            QuorumMaj::new([1, 2, 3, 4, 5].map(ServerId), [], 0, String::new()),
            Zxid(5),
            1,
            ElectionConfig::default(),
        );
        e.start(t0);
        let _ = drain(&mut e);
        for sid in [2, 3, 4] {
            e.handle_notification(ServerId(sid), &note(ServerState::Following, 5, 9, 7, 2), t0);
        }
        assert!(e.poll_outcome().is_none(), "leader 5 never said it leads (it may be dead)");
        e.handle_notification(ServerId(5), &note(ServerState::Leading, 5, 9, 7, 2), t0);
        assert_eq!(e.poll_outcome().expect("joined").vote.leader, ServerId(5));
    }

    #[test]
    fn settled_votes_of_my_round_decide_in_round() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        let _ = drain(&mut e);
        // Leader 3 is leading in my round 1; a quorum (2 and 3) settled on it.
        e.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 1, 1), t0);
        assert!(e.poll_outcome().is_none());
        e.handle_notification(ServerId(2), &note(ServerState::Following, 3, 9, 1, 1), t0);
        let outcome = e.poll_outcome().expect("decided");
        assert_eq!(outcome.path, DecisionPath::SettledInRound);
        assert_eq!(outcome.vote.election_epoch, 1);
    }

    #[test]
    fn settled_votes_naming_me_need_my_round() {
        let t0 = Instant::now();
        let mut e = core(3, 9, 1);
        e.start(t0);
        e.start(t0);
        let _ = drain(&mut e);
        // Peers 1 and 2 still follow me from round 1; I am in round 2 (I restarted leading).
        e.handle_notification(ServerId(1), &note(ServerState::Following, 3, 9, 1, 1), t0);
        e.handle_notification(ServerId(2), &note(ServerState::Following, 3, 9, 1, 1), t0);
        assert!(e.poll_outcome().is_none(), "stale followers cannot re-elect me");
        let mut fresh = core(3, 9, 1);
        fresh.start(t0);
        let _ = drain(&mut fresh);
        fresh.handle_notification(ServerId(1), &note(ServerState::Following, 3, 9, 1, 1), t0);
        fresh.handle_notification(ServerId(2), &note(ServerState::Following, 3, 9, 1, 1), t0);
        let outcome = fresh.poll_outcome().expect("same round: I lead");
        assert_eq!(outcome.vote.state, ServerState::Leading);
    }

    #[test]
    fn settled_peer_answers_looking_peers_with_its_vote_and_state() {
        let t0 = Instant::now();
        let mut e = core(2, 9, 1);
        e.start(t0);
        let _ = drain(&mut e);
        e.handle_notification(ServerId(1), &note(ServerState::Following, 3, 9, 1, 1), t0);
        e.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 1, 1), t0);
        assert_eq!(e.poll_outcome().expect("decided").vote.state, ServerState::Following);
        // A LOOKING peer in any round gets my vote, in my state and my vote's round.
        e.handle_notification(ServerId(1), &looking(1, 0, 6, 0), t0);
        let sent = drain(&mut e);
        assert_eq!(sent.len(), 1);
        let (to, n) = &sent[0];
        assert_eq!(
            (*to, n.state, n.leader, n.election_epoch),
            (ServerId(1), ServerState::Following, ServerId(3), 1)
        );
        // Settled peers get no answer; and my state does not change.
        e.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 1, 1), t0);
        assert!(drain(&mut e).is_empty());
        assert_eq!(e.state(), ServerState::Following);
        // After the new leader syncs, replies advertise the new epoch.
        e.update_election_vote(2);
        e.handle_notification(ServerId(1), &looking(1, 0, 6, 0), t0);
        assert_eq!(drain(&mut e)[0].1.peer_epoch, 2);
    }

    #[test]
    fn observer_never_votes_for_itself_and_follows_the_voters() {
        let t0 = Instant::now();
        let mut o = core(4, 9, 1);
        o.start(t0);
        let sent = drain(&mut o);
        assert_eq!(sent.len(), 3, "to the voters, not to itself");
        assert!(sent.iter().all(|(_, n)| n.leader == NO_LEADER && n.zxid == Zxid(i64::MIN)));
        o.handle_notification(ServerId(1), &note(ServerState::Following, 3, 9, 1, 1), t0);
        o.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 1, 1), t0);
        let outcome = o.poll_outcome().expect("decided");
        assert_eq!(
            (outcome.vote.leader, outcome.vote.state),
            (ServerId(3), ServerState::Observing)
        );
    }

    #[test]
    fn restart_keeps_the_round_and_resets_the_votes() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        let _ = drain(&mut e);
        e.handle_notification(ServerId(2), &note(ServerState::Following, 3, 9, 1, 1), t0);
        e.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 1, 1), t0);
        assert!(e.poll_outcome().is_some());
        e.set_vote_inputs(Zxid(0x2_0000_0000), 2);
        e.start(t0 + 1000 * MS);
        assert_eq!(e.state(), ServerState::Looking);
        assert_eq!(e.logical_clock(), 2);
        assert_eq!(e.proposal().zxid, Zxid(0x2_0000_0000));
        assert_eq!(e.proposal().peer_epoch, 2);
        // The old round's settled votes are gone: a single one is no quorum.
        e.handle_notification(ServerId(3), &note(ServerState::Leading, 3, 9, 1, 1), t0);
        assert!(e.poll_outcome().is_none());
    }

    #[test]
    fn newer_config_while_looking_is_surfaced_and_not_processed() {
        let t0 = Instant::now();
        let mut e = core(1, 5, 1);
        e.start(t0);
        let _ = drain(&mut e);
        let mut n = looking(3, 9, 1, 1);
        n.config = Some(b"server.1=a:1:2\nversion=100000000".to_vec());
        e.handle_notification(ServerId(3), &n, t0);
        assert_eq!(e.proposal().leader, ServerId(1), "not processed");
        assert_eq!(e.poll_newer_config(), n.config);
        assert_eq!(e.poll_newer_config(), None);
        // Older or equal versions, and configless old formats, are processed normally.
        n.config = Some(b"version=0".to_vec());
        e.handle_notification(ServerId(3), &n, t0);
        assert_eq!(e.proposal().leader, ServerId(3));
    }
}
