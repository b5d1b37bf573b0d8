//! The quorum: leader election now, the Zab roles later (quorum-protocol.md).
//!
//! What exists so far is the part with no I/O:
//!
//! - [`vote`]: [`vote::Vote`], [`vote::ServerState`], the vote order
//!   ([`vote::total_order_predicate`]) and the majority quorum verifier [`vote::QuorumMaj`].
//! - [`wire`]: the election notification and the election-channel handshake, as encode/decode
//!   functions over byte slices.
//! - [`cnxmanager`]: the election channel's TCP connections and worker threads, and
//!   [`election_thread`]: the shell that runs the core over them (neither is wired into the
//!   server yet).
//! - [`election`]: fast leader election (FLE) as a state machine: notifications and `now` in,
//!   notifications to send, the next timer and the outcome out.
//!
//! # Thread map (planned; mirrors QuorumPeer, FastLeaderElection and QuorumCnxManager)
//!
//! ```text
//! election listener  accepts on the election port, reads the handshake (wire::decode_initial),
//!                    applies the "larger sid keeps the connection" rule (§2.2)
//! per peer: sender   takes from a send queue of capacity one (newest vote wins), frames and
//!                    writes; on (re)connect resends the last message (§2.3)
//! per peer: receiver reads frames, decodes with wire::Notification::decode, and forwards
//!                    (sid, notification) to the election thread over a crossbeam channel
//! election thread    the shell around election::Election: select! on the receive channel or
//!                    the core's poll_timeout; feeds the core, drains poll_send into the send
//!                    queues (a message to itself goes straight back into the core), hands
//!                    poll_outcome to the peer thread; no protocol logic of its own
//! peer thread        the role loop: LOOKING (waits for the election outcome), FOLLOWING,
//!                    LEADING, OBSERVING (the Zab cores); when a role ends it calls
//!                    Election::start again with the new last logged zxid and current epoch
//! ```
//!
//! The election core keeps answering notifications while the peer is FOLLOWING or LEADING
//! (that is how a restarted server learns about the established leader), so it lives as long
//! as the peer, and its logical clock carries over from one election to the next.

pub mod cnxmanager;
pub mod election;
pub mod election_thread;
pub mod vote;
pub mod wire;
