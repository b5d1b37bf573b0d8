//! Zab (quorum-protocol.md §5-§8): packets, the messages, and the leader and learner cores.
//!
//! - [`packet`]: the learner connection's wire format: [`packet::QuorumPacket`], the packet
//!   types 1..=19, [`packet::LearnerInfo`] and the bodies carried in `data` (REQUEST, PING,
//!   REVALIDATE, ACKEPOCH, ...), plus a blocking [`packet::read_packet`] that bounds every
//!   length.
//! - [`snap`]: the SNAP stream: the database (sessions, ACL cache, nodes) as a snapshot body
//!   without header or seals, then the signature "BenWasHere".
//! - [`msg`]: the messages as the cores see them, and [`codec`]: their translation to and from
//!   [`packet::QuorumPacket`].
//! - [`leader`]: discovery (epoch agreement), synchronisation (DIFF/TRUNC/SNAP decision),
//!   broadcast (proposals, acks, commits in zxid order) and liveness (pings, syncLimit) of the
//!   leader, as an I/O-free state machine.
//! - [`learner`]: the follower's and observer's side of the same phases.
//!
//! Both cores take messages and `now` and return actions; the peer's shells move packets
//! between them and the sockets (via [`packet`] and [`snap`]), the txn log and the tree.

pub mod codec;
pub mod leader;
pub mod learner;
pub mod msg;
pub mod packet;
pub mod snap;
