//! The request pipeline, like ZooKeeper's `PrepRequestProcessor -> SyncRequestProcessor ->
//! FinalRequestProcessor`, one thread per stage joined by crossbeam channels:
//!
//! ```text
//! cnxn thread --Request--> prep --Request(+txn)--> sync --Request--> apply --Outbound--> cnxn
//! ```
//!
//! - [`prep`] validates requests, checks ACLs and turns each write into a txn with the next
//!   zxid, tracking outstanding changes so pipelined writes see each other.
//! - [`sync`] is the only stage that writes disk: it logs txns with group commit and passes a
//!   request on only once its txn is durable.
//! - [`apply`] (ZooKeeper's Final) applies txns to the tree, answers reads, triggers watches
//!   and queues replies and events for the connection thread, which it wakes with a
//!   `mio::Waker`.
//! - [`read`] executes the read-only requests, for apply and for the connection thread.
//!
//! Every request, reads included, flows through every stage in order, so a session's replies
//! come back in request order and a read sees the session's earlier writes.

pub mod apply;
pub mod prep;
pub mod read;
pub mod readonly;
pub mod sync;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::acl::AuthInfo;
use super::ConnId;
use crate::jute::txn::TxnEntry;
use crate::limits;
use crate::proto::ErrorCode;

/// What kind of request this is, beyond its opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A request frame from a client (`op`, `xid`, `body` from the wire).
    Client,
    /// The implied createSession of a ConnectRequest with session id 0.
    NewSession {
        /// Negotiated timeout.
        timeout_ms: i32,
        /// Whether the client sent the readOnly flag (new protocol).
        read_only_flag: bool,
    },
    /// closeSession submitted by the expiry thread.
    Expire,
    /// The connection closed: drop its watches (no reply).
    ConnectionClosed,
    /// A server-internal write (the container reaper's deleteContainer).
    Internal,
    /// An opcode the server does not implement: reply UNIMPLEMENTED and close.
    Unimplemented,
    /// A client re-attached to its session on this server (no reply): a learner tells the
    /// leader (REVALIDATE), which makes this server the session's owner.
    Reattach {
        /// The negotiated timeout.
        timeout_ms: i32,
    },
    /// A learner's REVALIDATE at the leader: prep touches the session and, if it lives, makes
    /// the learner its owner; `err` says whether it lives. Ordered with that learner's
    /// forwarded requests, so a write sent after the re-attach sees the new owner.
    Revalidate {
        /// The timeout the client asked for.
        timeout_ms: i32,
    },
}

/// Where a request forwarded by a learner came from (quorum leader only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The learner's server id (the session owner it claims).
    pub sid: u64,
    /// The leader's handle of that learner's connection (where replies such as SYNC and
    /// REVALIDATE go).
    pub link: u64,
}

/// One request moving through the pipeline.
#[derive(Debug)]
pub struct Request {
    /// The connection to answer, if any.
    pub conn: Option<ConnId>,
    /// Session id (0 for internal requests).
    pub session: i64,
    /// Client xid.
    pub xid: i32,
    /// Opcode as sent.
    pub op: i32,
    /// Request record bytes (after the header).
    pub body: Vec<u8>,
    /// The connection's identities when the request was read.
    pub auth: Arc<AuthInfo>,
    /// Kind.
    pub kind: Kind,
    /// When the request was read (latency statistics).
    pub received: Instant,
    /// Wall-clock ms when the request was read (txn time).
    pub wall_ms: i64,
    /// The txn prep produced (writes only); shared, because a quorum leader sends it both to
    /// its log and, once committed, to apply.
    pub txn: Option<Arc<TxnEntry>>,
    /// An error found by prep for a request without a txn (reads): the reply's err.
    pub err: ErrorCode,
    /// The learner that forwarded this request (quorum leader only).
    pub origin: Option<Origin>,
    /// The answering connection's output account (client requests).
    pub outflow: Option<Arc<Outflow>>,
}

/// [`Outflow::admit`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Build and send it.
    Yes,
    /// This one went over: the connection is to be closed (tell the selector, once).
    Overflowed,
    /// Over already: drop it.
    Refused,
}

/// What one client connection's replies and watch events hold in memory before its socket
/// takes them: bytes on their way through the outbox, and bytes queued at the connection
/// (published by the selector). Apply admits each reply and event against
/// [`limits::CNXN_OUTBOUND_CLOSE_BYTES`]: past it, nothing more is built for the connection
/// (its replies become empty and it is closed), so a client that stops reading costs at most
/// that much, however many requests or watches it has.
#[derive(Debug, Default)]
pub struct Outflow {
    in_transit: AtomicUsize,
    queued: AtomicUsize,
    overflowed: AtomicBool,
}

impl Outflow {
    /// Whether `bytes` more may be built for the connection (refused for good once over).
    pub fn admit(&self, bytes: usize) -> Admit {
        if self.overflowed.load(Ordering::Relaxed) {
            return Admit::Refused;
        }
        let held = self.in_transit.fetch_add(bytes, Ordering::Relaxed)
            + bytes
            + self.queued.load(Ordering::Relaxed);
        if held > limits::CNXN_OUTBOUND_CLOSE_BYTES {
            self.in_transit.fetch_sub(bytes, Ordering::Relaxed);
            if self.overflowed.swap(true, Ordering::Relaxed) {
                return Admit::Refused;
            }
            return Admit::Overflowed;
        }
        Admit::Yes
    }

    /// The selector took `bytes` out of the outbox (into the connection's queue).
    pub fn arrived(&self, bytes: usize) {
        let _ = self
            .in_transit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(bytes)));
    }

    /// The connection's queue now holds `bytes` unsent.
    pub fn set_queued(&self, bytes: usize) {
        self.queued.store(bytes, Ordering::Relaxed);
    }

    /// Whether something was refused: the connection is to be closed.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Bytes held for the connection.
    pub fn held(&self) -> usize {
        self.in_transit.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed)
    }
}

impl Request {
    /// A request of `kind` with no body.
    pub fn new(conn: Option<ConnId>, session: i64, xid: i32, op: i32, kind: Kind) -> Request {
        Request {
            conn,
            session,
            xid,
            op,
            body: Vec::new(),
            auth: Arc::new(AuthInfo::default()),
            kind,
            received: Instant::now(),
            wall_ms: wall_clock_ms(),
            txn: None,
            err: ErrorCode::Ok,
            origin: None,
            outflow: None,
        }
    }
}

/// What the apply stage hands back to the connection thread.
#[derive(Debug)]
pub enum Outbound {
    /// A reply frame (length-prefixed) answering one request of `conn`.
    Reply {
        /// Connection.
        conn: ConnId,
        /// The whole frame.
        frame: Vec<u8>,
        /// Close the connection once the frame is flushed.
        close: bool,
    },
    /// A watch notification frame.
    Event {
        /// Connection.
        conn: ConnId,
        /// The whole frame.
        frame: Vec<u8>,
    },
    /// A session's ConnectResponse after its createSession txn was applied.
    SessionCreated {
        /// Connection.
        conn: ConnId,
        /// Session id.
        session: i64,
        /// The whole frame.
        frame: Vec<u8>,
    },
    /// The leader's answer to a re-attach through this learner (REVALIDATE): finish the
    /// handshake of `conn`, which waits for it like ZooKeeper's `Learner.validateSession`.
    Revalidated {
        /// Connection.
        conn: ConnId,
        /// Session id.
        session: i64,
        /// Whether the session is live (else the client is told it expired).
        valid: bool,
    },
    /// A four-letter word's answer, computed off the selector thread.
    FourLetter {
        /// Connection.
        conn: ConnId,
        /// The text (the connection closes once it is sent).
        text: String,
    },
    /// A connection went over its output limit ([`Outflow`]): close it with a log line.
    Overflowed {
        /// Connection.
        conn: ConnId,
    },
    /// A session was closed by expiry: close its connection without a message.
    SessionExpired {
        /// Session id.
        session: i64,
    },
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
