//! Zab (quorum-protocol.md §5-§8): the messages, and the leader and learner cores.
//!
//! - [`msg`]: the messages as the cores see them.
//! - [`leader`]: discovery (epoch agreement), synchronisation (DIFF/TRUNC/SNAP decision),
//!   broadcast (proposals, acks, commits in zxid order) and liveness (pings, syncLimit) of the
//!   leader, as an I/O-free state machine.
//! - [`learner`]: the follower's and observer's side of the same phases.
//!
//! Both cores take messages and `now` and return actions; the peer's shells move packets
//! between them and the sockets, the txn log and the tree.

pub mod codec;
pub mod leader;
pub mod learner;
pub mod msg;
pub mod packet;
pub mod snap;
