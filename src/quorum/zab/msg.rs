//! The Zab messages as the cores see them: one variant per packet type the protocol logic
//! looks at (quorum-protocol.md §5.1), with zxids as plain `i64`. The shells translate to and
//! from the wire's `QuorumPacket`; forwarded client requests, REVALIDATE and ping touches are
//! the shells' business and reach the cores only as [`Msg::Other`] (any packet proves that
//! the sender is alive).

use std::sync::Arc;

use crate::proto::ServerId;

/// A txn exactly as logged: TxnHeader + txn body (+ digest), shared by every copy queued to
/// learners.
pub type Payload = Arc<[u8]>;

/// The epoch of a zxid (its high 32 bits).
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// The counter of a zxid (its low 32 bits).
pub fn counter_of(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

/// `makeZxid(epoch, counter)`.
pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// One Zab message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// FOLLOWERINFO / OBSERVERINFO: a learner registers (zxid = acceptedEpoch << 32).
    LearnerInfo {
        /// The learner's id.
        sid: ServerId,
        /// Its accepted epoch.
        accepted_epoch: i64,
        /// OBSERVERINFO rather than FOLLOWERINFO.
        observer: bool,
    },
    /// LEADERINFO: the proposed epoch.
    LeaderInfo {
        /// New epoch.
        epoch: i64,
    },
    /// ACKEPOCH: the learner's current epoch (-1 when it had already accepted the epoch) and
    /// last logged zxid.
    AckEpoch {
        /// currentEpoch or -1.
        current_epoch: i64,
        /// Last logged zxid.
        last_zxid: i64,
    },
    /// DIFF: proposals follow.
    Diff {
        /// Zxid field (informational).
        zxid: i64,
    },
    /// TRUNC: cut the log back to this zxid.
    Trunc {
        /// Truncate to.
        zxid: i64,
    },
    /// SNAP: a snapshot at this zxid follows on the stream (read by the shell).
    Snap {
        /// Zxid the snapshot reflects.
        zxid: i64,
    },
    /// PROPOSAL.
    Proposal {
        /// Zxid.
        zxid: i64,
        /// Txn bytes.
        payload: Payload,
    },
    /// COMMIT.
    Commit {
        /// Zxid.
        zxid: i64,
    },
    /// INFORM (observers): an already committed txn.
    Inform {
        /// Zxid.
        zxid: i64,
        /// Txn bytes.
        payload: Payload,
    },
    /// NEWLEADER (zxid = newEpoch << 32).
    NewLeader {
        /// Zxid.
        zxid: i64,
    },
    /// UPTODATE.
    UpToDate,
    /// ACK.
    Ack {
        /// Zxid acked.
        zxid: i64,
    },
    /// PING (the leader's carries its last proposed zxid; the learner echoes it).
    Ping {
        /// Zxid.
        zxid: i64,
    },
    /// SYNC: the oldest forwarded sync() may complete.
    Sync,
    /// Any other packet (REQUEST, REVALIDATE...): handled by the shell, seen by the core only
    /// as a sign of life.
    Other,
}
