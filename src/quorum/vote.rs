//! Votes, server states, the vote order and the majority quorum verifier
//! (quorum-protocol.md §1, §4.1; ZooKeeper's `Vote`, `QuorumPeer.ServerState`,
//! `FastLeaderElection.totalOrderPredicate`, `QuorumMaj`).
//!
//! Pure values and functions: no I/O, no clocks. Used by the election core on the election
//! thread and, later, by the Zab cores to count acks.
//!
//! Ids and epochs are compared as Java's signed longs: an observer proposes the placeholder
//! leader [`NO_LEADER`] (`Long.MIN_VALUE`) with zxid and peer epoch `Long.MIN_VALUE`, which must
//! lose against every real vote.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::{LearnerType, QuorumConfig};
use crate::proto::{ServerId, Zxid};

/// The leader an observer proposes before it has heard from anyone: `Long.MIN_VALUE` as a sid
/// [FastLeaderElection.getInitId].
pub const NO_LEADER: ServerId = ServerId(i64::MIN as u64);

/// A peer's role; the discriminant is Java's ordinal, which is what the wire carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// Electing a leader.
    Looking = 0,
    /// Following an elected leader (a voter).
    Following = 1,
    /// Leading.
    Leading = 2,
    /// Following without voting.
    Observing = 3,
}

impl ServerState {
    /// The state for a wire integer; `None` for anything else (such messages are dropped).
    pub fn from_i32(v: i32) -> Option<ServerState> {
        match v {
            0 => Some(ServerState::Looking),
            1 => Some(ServerState::Following),
            2 => Some(ServerState::Leading),
            3 => Some(ServerState::Observing),
            _ => None,
        }
    }

    /// The wire integer.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        };
        f.write_str(name)
    }
}

/// A vote: whom a peer proposes (or follows) as leader, with that leader's last logged zxid and
/// current epoch, the election round it was cast in, and the voter's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The proposed (or elected) leader.
    pub leader: ServerId,
    /// The leader's last logged zxid.
    pub zxid: Zxid,
    /// The round (`logicalclock`) the vote belongs to.
    pub election_epoch: i64,
    /// The leader's current epoch (`currentEpoch` file).
    pub peer_epoch: i64,
    /// The state of the peer that holds this vote.
    pub state: ServerState,
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(sid {}, zxid {}, epoch {}, round {}, {})",
            self.leader.0 as i64, self.zxid, self.peer_epoch, self.election_epoch, self.state
        )
    }
}

/// Whether the vote `new` beats `current` by the election's total order: higher peer epoch,
/// then higher zxid, then higher sid (quorum-protocol.md §4.1). Ids compare as signed longs.
///
/// The caller adds the other half of Apache's predicate: a `new` leader that is not a voter
/// never wins (`QuorumVerifier.getWeight(newId) == 0`).
pub fn total_order_predicate(new: &Vote, current: &Vote) -> bool {
    let key = |v: &Vote| (v.peer_epoch, v.zxid.0, v.leader.0 as i64);
    key(new) > key(current)
}

/// Vote equality as the election counts it (`Vote.equals`): while either side is LOOKING, the
/// leader, zxid, round and peer epoch must all match; between settled votes only the leader and
/// the peer epoch (zxid and round may legitimately differ, ZOOKEEPER-1805), and only the leader
/// when exactly one side came from a pre-3.4.6 sender, message version 0 (ZOOKEEPER-1732).
pub fn votes_match(a: &Vote, a_version: i32, b: &Vote, b_version: i32) -> bool {
    if a.state == ServerState::Looking || b.state == ServerState::Looking {
        a.leader == b.leader
            && a.zxid == b.zxid
            && a.election_epoch == b.election_epoch
            && a.peer_epoch == b.peer_epoch
    } else if (a_version > 0) != (b_version > 0) {
        a.leader == b.leader
    } else {
        a.leader == b.leader && a.peer_epoch == b.peer_epoch
    }
}

/// Majority quorums over the participants of one configuration [QuorumMaj.java].
///
/// Observers are members but never count: a set contains a quorum when more than half of the
/// participants are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMaj {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
    version: i64,
    text: String,
}

impl QuorumMaj {
    /// A verifier over these participants and observers; `text` is the configuration as sent
    /// in notifications (`server.N=...` lines and `version=<hex>`), `version` its version.
    pub fn new(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
        version: i64,
        text: String,
    ) -> QuorumMaj {
        let voters: BTreeSet<ServerId> = voters.into_iter().collect();
        let observers = observers.into_iter().filter(|o| !voters.contains(o)).collect();
        QuorumMaj { voters, observers, version, text }
    }

    /// The verifier of a parsed zoo.cfg (static configuration, version 0).
    pub fn from_config(config: &QuorumConfig) -> QuorumMaj {
        let of = |role| config.servers.iter().filter(move |s| s.role == role).map(|s| s.id);
        QuorumMaj::new(
            of(LearnerType::Participant),
            of(LearnerType::Observer),
            0,
            config.membership(),
        )
    }

    /// Whether `sid` votes (has non-zero weight).
    pub fn is_voter(&self, sid: ServerId) -> bool {
        self.voters.contains(&sid)
    }

    /// Whether `sid` is an observer of this configuration.
    pub fn is_observer(&self, sid: ServerId) -> bool {
        self.observers.contains(&sid)
    }

    /// The participants, in id order.
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    /// The observers, in id order.
    pub fn observers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.observers.iter().copied()
    }

    /// Whether the participants among `set` are more than half of all participants.
    pub fn contains_quorum<'a>(&self, set: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let acks = set.into_iter().filter(|sid| self.voters.contains(sid)).count();
        acks > self.voters.len() / 2
    }

    /// The configuration version (`version=<hex>` of a dynamic configuration; 0 for zoo.cfg).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The configuration text sent in notifications.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(leader: i64, zxid: i64, peer_epoch: i64) -> Vote {
        Vote {
            leader: ServerId(leader as u64),
            zxid: Zxid(zxid),
            election_epoch: 1,
            peer_epoch,
            state: ServerState::Looking,
        }
    }

    #[test]
    fn vote_order_is_peer_epoch_then_zxid_then_sid() {
        // (new leader, zxid, peer epoch), (current ...), new beats current?
        type Key = (i64, i64, i64);
        let table: &[(Key, Key, bool)] = &[
            ((1, 0, 2), (3, 0x1_0000_0009, 1), true), // higher peer epoch wins over all
            ((3, 0x1_0000_0009, 1), (1, 0, 2), false),
            ((1, 0x1_0000_0005, 1), (3, 0x1_0000_0004, 1), true), // same epoch: zxid
            ((3, 0x1_0000_0004, 1), (1, 0x1_0000_0005, 1), false),
            ((3, 5, 1), (2, 5, 1), true), // same epoch and zxid: sid
            ((2, 5, 1), (3, 5, 1), false),
            ((2, 5, 1), (2, 5, 1), false), // equal never beats
            ((1, 0, 0), (i64::MIN, i64::MIN, i64::MIN), true), // anything beats an observer's
            ((i64::MIN, i64::MIN, i64::MIN), (1, -1, -1), false),
            ((1, -1, 0), (1, 0, 0), false), // zxids compare signed: -1 is "nothing logged"
        ];
        for &((nl, nz, ne), (cl, cz, ce), beats) in table {
            assert_eq!(
                total_order_predicate(&vote(nl, nz, ne), &vote(cl, cz, ce)),
                beats,
                "{:?} vs {:?}",
                (nl, nz, ne),
                (cl, cz, ce)
            );
        }
    }

    #[test]
    fn looking_votes_match_on_every_field_settled_ones_on_leader_and_epoch() {
        let a = vote(3, 7, 1);
        let mut b = a;
        assert!(votes_match(&a, 2, &b, 2));
        b.election_epoch = 2;
        assert!(!votes_match(&a, 2, &b, 2), "round differs while looking");
        let mut settled_a = a;
        settled_a.state = ServerState::Following;
        let mut settled_b = b;
        settled_b.state = ServerState::Leading;
        settled_b.zxid = Zxid(99);
        assert!(votes_match(&settled_a, 2, &settled_b, 2), "zxid and round are ignored");
        settled_b.peer_epoch = 5;
        assert!(!votes_match(&settled_a, 2, &settled_b, 2), "peer epoch counts");
        assert!(votes_match(&settled_a, 0, &settled_b, 2), "mixed versions: leader only");
        assert!(!votes_match(&settled_a, 0, &settled_b, 0));
    }

    #[test]
    fn majority_counts_participants_only() {
        let qv = QuorumMaj::new([1, 2, 3].map(ServerId), [ServerId(4)], 0, String::new());
        assert!(qv.is_voter(ServerId(2)));
        assert!(!qv.is_voter(ServerId(4)));
        assert!(qv.is_observer(ServerId(4)));
        assert!(!qv.contains_quorum(&[ServerId(1)]));
        assert!(!qv.contains_quorum(&[ServerId(1), ServerId(4)]), "observers do not count");
        assert!(!qv.contains_quorum(&[ServerId(1), ServerId(9)]), "strangers do not count");
        assert!(qv.contains_quorum(&[ServerId(1), ServerId(3)]));
        let four = QuorumMaj::new([1, 2, 3, 4].map(ServerId), [], 0, String::new());
        assert!(!four.contains_quorum(&[ServerId(1), ServerId(2)]), "half is not a majority");
        assert!(four.contains_quorum(&[ServerId(1), ServerId(2), ServerId(3)]));
    }

    #[test]
    fn states_use_java_ordinals() {
        for state in [
            ServerState::Looking,
            ServerState::Following,
            ServerState::Leading,
            ServerState::Observing,
        ] {
            assert_eq!(ServerState::from_i32(state.code()), Some(state));
        }
        assert_eq!(ServerState::Leading.code(), 2);
        assert_eq!(ServerState::from_i32(4), None);
        assert_eq!(ServerState::from_i32(-1), None);
    }
}
