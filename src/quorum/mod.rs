//! The quorum: leader election, Zab and the peer's roles (quorum-protocol.md).
//!
//! The cores have no I/O; the shells around them are thin:
//!
//! - [`vote`]: [`vote::Vote`], [`vote::ServerState`], the vote order
//!   ([`vote::total_order_predicate`]) and the majority quorum verifier [`vote::QuorumMaj`].
//! - [`wire`]: the election notification and the election-channel handshake, as encode/decode
//!   functions over byte slices.
//! - [`election`]: fast leader election (FLE) as a state machine: notifications and `now` in,
//!   notifications to send, the next timer and the outcome out.
//! - [`zab`]: Zab: the learner-connection packets, the SNAP stream, and the leader and
//!   learner cores.
//! - [`auth`]: quorum SASL, the DIGEST-MD5 exchange that opens every election and Zab
//!   connection when `quorum.auth.enableSasl` is on.
//! - [`cnxmanager`]: the election channel's TCP connections and worker threads, and
//!   [`election_thread`]: the shell that runs the core over them.
//! - [`peer`]: the quorum peer's start-up and role loop; [`leading`], [`learning`] and
//!   [`looking`]: the shells of each role around the Zab cores and the server's pipeline.
//!
//! # Thread map (mirrors QuorumPeer, FastLeaderElection and QuorumCnxManager)
//!
//! ```text
//! election listener  (cnxmanager) accepts on the election port; one short thread per
//!                    incoming handshake (wire::decode_initial) applies the "larger sid keeps
//!                    the connection" rule (§2.2)
//! per peer: sender   (cnxmanager) takes from a send queue of capacity one (newest vote
//!                    wins), frames and writes; on (re)connect resends the last message (§2.3)
//! per peer: receiver (cnxmanager) reads frames and forwards (sid, bytes) to the election
//!                    thread over a crossbeam channel
//! election thread    (election_thread) the shell around election::Election: select! on the
//!                    receive channel, control, or the core's poll_timeout; feeds the core,
//!                    hands poll_send to the cnxmanager (a message to itself comes straight
//!                    back) and poll_outcome to the peer thread; no protocol logic of its own
//! peer thread        (peer) the role loop: LOOKING (waits for the election outcome while
//!                    the client port is not serving or read-only), then LEADING (leading:
//!                    this thread runs the leader core; acceptor + per-learner reader/writer
//!                    threads) or FOLLOWING/OBSERVING (learning: this thread runs the learner
//!                    core; a reader thread for the leader's packets); each role starts its
//!                    own client pipeline over the database recovered from disk and stops it
//!                    when the role ends; then the new vote inputs and a new election
//! ```
//!
//! The election core keeps answering notifications while the peer is FOLLOWING or LEADING
//! (that is how a restarted server learns about the established leader), so it lives as long
//! as the peer, and its logical clock carries over from one election to the next.

pub mod auth;
pub mod cnxmanager;
pub mod commit;
pub mod election;
pub mod election_thread;
pub mod leading;
pub mod learning;
pub mod looking;
pub mod peer;
pub mod vote;
pub mod wire;
pub mod zab;
