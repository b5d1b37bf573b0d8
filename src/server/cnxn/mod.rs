//! The client port (ZooKeeper's `NIOServerCnxnFactory`): one hand-rolled mio selector loop on
//! its own thread, a thin shell around the connection core ([`conn::Connection`]).
//!
//! Tokens: `Token(0)` the listener, `Token(1)` the waker the apply stage uses, `Token(2)` the
//! secure (TLS) listener when `secureClientPort` is set, connections are slab key + 3. Each round the ready events are shuffled so no connection is always served
//! first. Accept (with `maxClientCnxns` per IP and `maxCnxns` in total), read, write until
//! `WouldBlock` through the connection's [`transport::Transport`]; `Interrupted` is retried;
//! spurious events are harmless. What the bytes mean, and what to do about them, is the
//! core's: this shell carries its [`conn::Event`]s out against the session tracker and the
//! pipeline, and runs four-letter words ([`super::fourlw`]). Authentication (x509 identities,
//! SASL, `auth` packets, enforced schemes) is in `auth.rs`, accepting in `accept.rs`, the
//! outbox and writes in `output.rs`.
//!
//! The loop never blocks, fsyncs or waits for a processor: requests go to the first stage
//! with `try_send` (a full queue holds them in a backlog and pauses reading), replies and
//! events come back over the outbox. Back-pressure, as ZooKeeper throttles: a connection whose
//! unsent output passes [`limits::OUTBOUND_BUFFERED_MAX_BYTES`] is not read until it drains,
//! and no established connection is read while the server has `globalOutstandingLimit`
//! requests in flight. Bad input closes that one connection with a warn line.

mod accept;
mod auth;
pub mod conn;
mod output;
pub mod throttle;
pub mod transport;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use self::accept::{count_connection, default_max_cnxns};
use self::conn::{Connection, Event, Handshake, HandshakeFacts, State};
use self::throttle::{ConnThrottle, LargeRequests};
use self::transport::{TlsStream, Transport, Unified};
use super::acl::{self, AuthOutcome};
use super::fourlw::{self, ConnSummary};
use super::processor::{wall_clock_ms, Kind, Outbound, Outflow, Request};
use super::{ConnId, ServerMode, Shared};
use crate::jute::proto::{AuthPacket, RequestHeader};
use crate::jute::Jute;
use crate::limits;
use crate::proto::{ErrorCode, OpCode};
use crate::sasl::{DigestMd5, Step};
use crate::tls::ServerTls;

/// Frames handed to one vectored write at most.
const WRITE_SLICES: usize = 64;

/// How long accepting pauses after an accept error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often an accept error is logged at most.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SECURE_LISTENER: Token = Token(2);
const FIRST_CONNECTION: usize = 3;

/// A connection in the slab: its core, its transport, and the selector's bookkeeping.
struct Slot {
    conn: Connection,
    /// What its replies and events hold in memory (apply admits against it).
    outflow: Arc<Outflow>,
    transport: Box<dyn Transport>,
    /// The client's SASL exchange, once it sent its first token.
    sasl: Option<DigestMd5>,
    read_paused: bool,
    writable_registered: bool,
}

/// The selector loop.
pub struct Selector {
    shared: Arc<Shared>,
    poll: Poll,
    listener: TcpListener,
    /// The secure client port and its TLS state, when `secureClientPort` is set.
    secure: Option<TcpListener>,
    /// TLS for the secure port and, with `client.portUnification`, the plain one.
    tls: Option<ServerTls>,
    waker: Arc<Waker>,
    slots: Slab<Slot>,
    generation: u32,
    prep: Sender<Request>,
    outbox: Receiver<Outbound>,
    four_letter: Sender<fourlw::Job>,
    stop: Arc<AtomicBool>,
    per_ip: HashMap<IpAddr, usize>,
    by_session: HashMap<i64, ConnId>,
    rng: fastrand::Rng,
    throttled: bool,
    read_buf: Vec<u8>,
    /// Requests the first stage had no room for, in order; while any wait, no client request
    /// is read (the selector never blocks on the pipeline).
    backlog: VecDeque<Request>,
    /// Connections that spent their read budget with input left: read again next round.
    read_again: Vec<usize>,
    /// Accepting is paused until then after an accept error (EMFILE and the like).
    accept_paused_until: Option<Instant>,
    /// When an accept error was last logged (once per interval, not per attempt).
    accept_error_logged: Option<Instant>,
    /// The most connections: `maxCnxns`, or what the descriptor limit leaves.
    max_cnxns: usize,
    /// `zookeeper.connection_throttle_*`: admits session requests.
    throttle: ConnThrottle,
    /// `zookeeper.largeRequest*`: bytes of large requests between read and reply.
    large: LargeRequests,
}

impl Selector {
    /// Binds the client port.
    pub fn bind(
        shared: Arc<Shared>,
        prep: Sender<Request>,
        outbox: Receiver<Outbound>,
        four_letter: Sender<fourlw::Job>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Selector> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(shared.config.client_address)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Ok(addr) = listener.local_addr() {
            let _ = shared.bound_addr.set(addr);
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let tls = match &shared.config.client_tls {
            Some(settings) => Some(ServerTls::new(settings).map_err(io::Error::other)?),
            None => None,
        };
        let secure = match (shared.config.secure_client_address, &tls) {
            (Some(address), Some(_)) => {
                let mut listener = TcpListener::bind(address)?;
                poll.registry().register(&mut listener, SECURE_LISTENER, Interest::READABLE)?;
                info!("secure client port (TLS) listening on {address}");
                Some(listener)
            }
            _ => None,
        };
        if shared.config.client_port_unification && tls.is_some() {
            info!("client.portUnification: the client port accepts TLS and plain clients");
        }
        let throttle = ConnThrottle::new(shared.config.connection_throttle, shared.now_ms());
        let large = LargeRequests::new(
            shared.config.large_request_threshold,
            shared.config.large_request_max_bytes,
        );
        let max_cnxns = match shared.config.max_cnxns {
            Some(n) => n.get() as usize,
            None => default_max_cnxns(),
        };
        Ok(Selector {
            shared,
            poll,
            listener,
            secure,
            tls,
            waker,
            slots: Slab::new(),
            generation: 0,
            prep,
            outbox,
            four_letter,
            stop,
            per_ip: HashMap::new(),
            by_session: HashMap::new(),
            rng: fastrand::Rng::new(),
            throttle,
            large,
            throttled: false,
            read_buf: vec![0; limits::CLIENT_READ_CHUNK_BYTES],
            backlog: VecDeque::new(),
            read_again: Vec::new(),
            accept_paused_until: None,
            accept_error_logged: None,
            max_cnxns,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.shared.config.client_address)
    }

    /// The waker the apply stage uses.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The thread body; ends when the server stops.
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        let mut ready: Vec<(Token, bool, bool)> = Vec::with_capacity(1024);
        let mut last_check = Instant::now();
        loop {
            // Connections with input left are served again at once; a backlog or a paused
            // accept is retried soon; otherwise the timeout only paces the idle check.
            let timeout = if !self.read_again.is_empty() {
                0
            } else if !self.backlog.is_empty() || self.accept_paused_until.is_some() {
                1
            } else {
                100
            };
            if let Err(e) = self.poll.poll(&mut events, Some(Duration::from_millis(timeout))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(format!("selector poll failed: {e}"));
                }
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                self.close_all();
                return Ok(());
            }
            self.flush_backlog();
            ready.clear();
            for ev in events.iter() {
                ready.push((ev.token(), ev.is_readable() || ev.is_read_closed(), ev.is_writable()));
            }
            for key in self.read_again.drain(..) {
                ready.push((Token(key + FIRST_CONNECTION), true, false));
            }
            if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                self.accept_paused_until = None;
                ready.push((LISTENER, true, false));
                if self.secure.is_some() {
                    ready.push((SECURE_LISTENER, true, false));
                }
            }
            self.rng.shuffle(&mut ready);
            for &(token, readable, writable) in &ready {
                match token {
                    LISTENER if self.accept_paused_until.is_none() => self.accept(false),
                    SECURE_LISTENER if self.accept_paused_until.is_none() => self.accept(true),
                    LISTENER | SECURE_LISTENER => {}
                    WAKER => {}
                    Token(t) => {
                        let key = t - FIRST_CONNECTION;
                        if writable {
                            self.flush(key);
                        }
                        if readable {
                            self.read(key);
                        }
                    }
                }
            }
            self.drain_outbox();
            self.update_throttle();
            if last_check.elapsed() >= Duration::from_millis(200) {
                last_check = Instant::now();
                self.close_idle();
            }
        }
    }

    fn key_of(&self, id: ConnId) -> Option<usize> {
        let key = (id & 0xffff_ffff) as usize;
        self.slots.get(key).filter(|s| s.conn.id() == id).map(|_| key)
    }

    /// Handles input already buffered, then reads until `WouldBlock`, until the core wants no
    /// more, or until this round's budget for the connection is spent (then it is read again
    /// next round: readiness is edge-triggered).
    fn read(&mut self, key: usize) {
        if !self.process(key) {
            return;
        }
        let throttled = self.throttled;
        let limit = limits::OUTBOUND_BUFFERED_MAX_BYTES;
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = limits::CLIENT_READ_BYTES_PER_ROUND;
        while let Some(slot) = self.slots.get_mut(key) {
            if !slot.conn.wants_read(limit, throttled) {
                slot.read_paused = true;
                break;
            }
            slot.read_paused = false;
            if budget == 0 {
                self.read_again.push(key);
                break;
            }
            let want = buf.len().min(budget);
            let result = slot.transport.read(&mut buf[..want]);
            if let Some(tls) = slot.transport.take_detected() {
                count_connection(&self.shared.stats, slot.conn.peer().ip(), tls);
            }
            match result {
                Ok(0) => {
                    let (peer, session) = (slot.conn.peer(), slot.conn.session());
                    debug!("connection from {peer} closed by peer (session 0x{session:x})");
                    self.close(key);
                    break;
                }
                Ok(n) => {
                    budget -= n;
                    // A TLS handshake's end can arrive with the first request: identities
                    // first, so that request already carries them.
                    if let Some(chain) = slot.transport.take_handshake_done() {
                        if !self.tls_established(key, &chain) {
                            break;
                        }
                    }
                    let Some(slot) = self.slots.get_mut(key) else { break };
                    slot.conn.receive(&buf[..n], Instant::now());
                    self.shared.stats.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    if !self.process(key) || !self.large_frame_fits(key) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(chain) = slot.transport.take_handshake_done() {
                        self.tls_established(key, &chain);
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if slot.transport.handshaking() {
                        warn!("TLS handshake with {} failed: {e}", slot.conn.peer());
                    } else {
                        debug!("read error from {}: {e}", slot.conn.peer());
                    }
                    self.close(key);
                    break;
                }
            }
        }
        self.read_buf = buf;
        self.flush(key);
    }

    /// ZooKeeper's check on reading a frame's length: a large request that would not fit the
    /// large-request budget closes its connection before its body is buffered. False if the
    /// connection was closed.
    fn large_frame_fits(&mut self, key: usize) -> bool {
        let Some(slot) = self.slots.get(key) else { return false };
        let Some(len) = slot.conn.incoming_frame_len() else { return true };
        if self.large.may_read(len) {
            return true;
        }
        self.reject_large(key, len);
        false
    }

    /// Closes a connection whose request does not fit the large-request budget.
    fn reject_large(&mut self, key: usize, len: usize) {
        if let Some(slot) = self.slots.get(key) {
            let (peer, session) = (slot.conn.peer(), slot.conn.session());
            warn!(
                "Rejecting large request of {len} bytes from {peer} (session 0x{session:x}): \
                 {} bytes of large requests are held, largeRequestMaxBytes is {}; closing",
                self.large.current(),
                self.shared.config.large_request_max_bytes
            );
        }
        self.shared.stats.large_requests_rejected.fetch_add(1, Ordering::Relaxed);
        self.close(key);
    }

    /// Carries out every event of the connection's buffered input; false if it was closed.
    fn process(&mut self, key: usize) -> bool {
        loop {
            let Some(slot) = self.slots.get_mut(key) else { return false };
            let Some(event) = slot.conn.poll_event() else { return true };
            let stats = &self.shared.stats;
            match event {
                Event::FourLetter { word, extra } => {
                    stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    self.four_letter(key, word, &extra);
                }
                Event::Close(reason) => {
                    let (peer, session) = (slot.conn.peer(), slot.conn.session());
                    warn!("closing connection from {peer} (session 0x{session:x}): {reason}");
                    self.close(key);
                    return false;
                }
                Event::Connect(req) => {
                    stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    if !self.connect(key, &req) {
                        return false;
                    }
                }
                Event::Auth { xid, body } => {
                    stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    self.auth(key, xid, &body);
                }
                Event::Request { header, body } => {
                    stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    self.request(key, header, body);
                }
            }
        }
    }

    /// Carries out the core's handshake decision; false if the connection was closed.
    fn connect(&mut self, key: usize, req: &crate::jute::proto::ConnectRequest) -> bool {
        let shared = self.shared.clone();
        let bounds = shared.config.session_timeouts;
        let facts = HandshakeFacts {
            mode: shared.mode,
            last_zxid: shared.read_tree().last_processed_zxid,
            timeouts_ms: (bounds.min().as_millis() as i32, bounds.max().as_millis() as i32),
        };
        let Some(slot) = self.slots.get_mut(key) else { return false };
        let (peer, conn_id) = (slot.conn.peer(), slot.conn.id());
        let now = shared.now_ms();
        if self.throttle.enabled() {
            // BlueThrottle, checked as ZooKeeper checks it: per session request, a renewal
            // costing the renew weight; a refused client is disconnected.
            let need = self.throttle.cost(req.base.session_id != 0);
            let admitted = self.throttle.check(need, now, self.rng.f64());
            let drop = self.throttle.drop_probability().to_bits();
            shared.stats.connection_drop_probability_bits.store(drop, Ordering::Relaxed);
            if !admitted {
                warn!(
                    "refusing the session request of {peer}: connection throttled \
                     (zookeeper.connection_throttle_tokens, {} tokens missing)",
                    self.throttle.deficit()
                );
                shared.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                self.close(key);
                return false;
            }
        }
        let Some(slot) = self.slots.get_mut(key) else { return false };
        match slot.conn.handshake(req, &facts) {
            Handshake::Refuse(why) => {
                info!("refusing the session request of {peer}: {why}");
                self.close(key);
                return false;
            }
            Handshake::NewSession { timeout_ms } => {
                let id = shared.with_sessions(|t| t.create(timeout_ms, now));
                slot.conn.await_session(id);
                let read_only_flag = slot.conn.new_protocol();
                let auth = slot.conn.auth().clone();
                self.by_session.insert(id, conn_id);
                let kind = Kind::NewSession { timeout_ms, read_only_flag };
                let mut r = Request::new(Some(conn_id), id, 0, OpCode::CreateSession.code(), kind);
                r.auth = auth;
                self.submit(r);
            }
            Handshake::Invalid { session } => {
                // As ZooKeeper does, the session's connection here is closed before the
                // password is checked.
                self.replace_connection(session, conn_id);
                info!("invalid session 0x{session:x} for client {peer}, probably expired");
                shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            }
            Handshake::AskLeader { session, timeout_ms } => {
                self.replace_connection(session, conn_id);
                let Some(slot) = self.slots.get_mut(key) else { return false };
                // Nothing after the ConnectRequest is read until the leader answers.
                slot.conn.await_session(session);
                self.by_session.insert(session, conn_id);
                info!(
                    "session 0x{session:x} re-attaching from {peer}: revalidating with the leader"
                );
                let kind = Kind::Reattach { timeout_ms };
                let op = OpCode::CreateSession.code();
                self.submit(Request::new(Some(conn_id), session, 0, op, kind));
            }
            Handshake::Resume { session, timeout_ms } => {
                self.replace_connection(session, conn_id);
                let valid = shared.with_sessions(|t| t.touch(session, timeout_ms, now));
                let Some(slot) = self.slots.get_mut(key) else { return false };
                slot.conn.resumed(session, valid);
                shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                if !valid {
                    info!("invalid session 0x{session:x} for client {peer}, probably expired");
                    return true;
                }
                self.by_session.insert(session, conn_id);
                info!("session 0x{session:x} re-established from {peer}, timeout {timeout_ms}ms");
                if shared.mode != ServerMode::Standalone {
                    // The leader learns that this server now owns the session.
                    let kind = Kind::Reattach { timeout_ms };
                    let op = OpCode::CreateSession.code();
                    self.submit(Request::new(None, session, 0, op, kind));
                }
            }
        }
        true
    }

    /// A client re-attaching `session` on `conn_id`: its old connection here is closed.
    fn replace_connection(&mut self, session: i64, conn_id: ConnId) {
        if let Some(old) = self.by_session.get(&session).copied() {
            if old != conn_id {
                if let Some(old_key) = self.key_of(old) {
                    info!("closing old connection for session 0x{session:x}: client reconnected");
                    self.close(old_key);
                }
            }
        }
    }

    /// A request for the pipeline, from an established session.
    fn request(&mut self, key: usize, header: RequestHeader, body: Vec<u8>) {
        let op = OpCode::from_i32(header.op_type);
        if op == Some(OpCode::Sasl) && self.shared.config.sasl.is_some() {
            self.sasl(key, header.xid, &body);
            return;
        }
        if !self.authenticated_enough(key, header.xid) {
            return;
        }
        let Some(slot) = self.slots.get_mut(key) else { return };
        let (session, timeout) = (slot.conn.session(), slot.conn.timeout_ms());
        let now = self.shared.now_ms();
        let touched = self.shared.with_sessions(|t| t.touch(session, timeout, now));
        if !touched && op != Some(OpCode::CloseSession) {
            debug!("dropping request xid {} for session 0x{session:x}: not live", header.xid);
            return;
        }
        let supported = match op {
            None => false,
            Some(o) => !matches!(
                o,
                OpCode::Notification
                    | OpCode::Check
                    | OpCode::CreateSession
                    | OpCode::Error
                    | OpCode::DeleteContainer
            ),
        };
        let kind = if supported { Kind::Client } else { Kind::Unimplemented };
        if !supported {
            warn!(
                "unimplemented opcode {} from session 0x{session:x}: replying UNIMPLEMENTED and \
                 closing",
                header.op_type
            );
        }
        let bytes = body.len() + 8;
        if !self.large.admit(bytes) {
            self.reject_large(key, bytes);
            return;
        }
        let Some(slot) = self.slots.get_mut(key) else { return };
        slot.conn.submitted(header.xid, op, bytes, Instant::now());
        let mut r = Request::new(Some(slot.conn.id()), session, header.xid, header.op_type, kind);
        r.body = body;
        r.auth = slot.conn.auth().clone();
        r.outflow = Some(slot.outflow.clone());
        self.submit(r);
    }

    fn submit(&mut self, req: Request) {
        if matches!(req.kind, Kind::Client | Kind::Unimplemented) {
            self.shared.stats.outstanding.fetch_add(1, Ordering::Relaxed);
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back(req);
            return;
        }
        match self.prep.try_send(req) {
            Ok(()) => {}
            Err(TrySendError::Full(req)) => {
                debug!("request pipeline full: holding requests and pausing reads");
                self.backlog.push_back(req);
                self.throttled = true;
            }
            Err(TrySendError::Disconnected(_)) => {
                debug!("request pipeline is gone; server is stopping");
            }
        }
    }

    /// Offers the held requests to the first stage again, in order.
    fn flush_backlog(&mut self) {
        while let Some(req) = self.backlog.pop_front() {
            match self.prep.try_send(req) {
                Ok(()) => {}
                Err(TrySendError::Full(req)) => {
                    self.backlog.push_front(req);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    /// Applies `globalOutstandingLimit` and the backlog: pause reads while too many requests
    /// are in flight or waiting for the pipeline.
    fn update_throttle(&mut self) {
        let limit = i64::from(self.shared.config.global_outstanding_limit.get());
        let outstanding = self.shared.stats.outstanding.load(Ordering::Relaxed);
        let was = self.throttled;
        self.throttled = outstanding >= limit || !self.backlog.is_empty();
        if was && !self.throttled {
            let paused: Vec<usize> =
                self.slots.iter().filter(|(_, s)| s.read_paused).map(|(k, _)| k).collect();
            for key in paused {
                self.read(key);
            }
        }
    }

    fn close_idle(&mut self) {
        let now = Instant::now();
        let sessionless = limits::SESSIONLESS_CNXN_TIMEOUT;
        let idle: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, s)| s.conn.idle(now, sessionless, s.read_paused))
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            let c = &self.slots[key].conn;
            info!(
                "closing idle connection from {} (session 0x{:x}): no traffic for {}ms",
                c.peer(),
                c.session(),
                c.silent_for(now).as_millis()
            );
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        if !self.slots.contains(key) {
            return;
        }
        let mut slot = self.slots.remove(key);
        let _ = self.poll.registry().deregister(slot.transport.source());
        if slot.transport.handshaking() {
            let stats = &self.shared.stats;
            stats.tls_handshakes_outstanding.fetch_sub(1, Ordering::Relaxed);
            stats.tls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
            // Apache counts a failed handshake as a failed authentication too.
            stats.auth_failed.fetch_add(1, Ordering::Relaxed);
        }
        slot.transport.shutdown();
        let conn = &slot.conn;
        // Requests still in the pipeline no longer count against the large-request budget
        // (their replies will find no connection).
        for bytes in conn.pending_sizes() {
            self.large.finished(bytes);
        }
        let ip = conn.peer().ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        let session = conn.session();
        if session != 0 && self.by_session.get(&session) == Some(&conn.id()) {
            self.by_session.remove(&session);
        }
        debug!("closed connection from {} (session 0x{session:x})", conn.peer());
        if conn.state() != State::Handshake {
            let r = Request::new(Some(conn.id()), session, 0, 0, Kind::ConnectionClosed);
            self.submit(r);
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.slots.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k);
        }
    }

    /// Per-connection lines for stat/cons/dump. The connection `asking` is running the command:
    /// like ZooKeeper, it shows interest 0 (its selector interest is off meanwhile).
    fn summaries(&self, asking: usize) -> Vec<ConnSummary> {
        let now = Instant::now();
        self.slots
            .iter()
            .map(|(key, s)| {
                let interest = if key == asking {
                    0
                } else if s.writable_registered {
                    5
                } else {
                    1
                };
                s.conn.summary(interest, now)
            })
            .collect()
    }

    fn four_letter(&mut self, key: usize, word: &'static str, extra: &[u8]) {
        let allowed = self.shared.four_letter_allowed(word);
        let text = if !allowed {
            format!("{word} is not executed because it is not in the whitelist.\n")
        } else if word == "crst" {
            for (_, s) in self.slots.iter_mut() {
                s.conn.reset_stats();
            }
            "Connection stats reset.\n".to_owned()
        } else {
            // Everything else runs on the four-letter-word thread; the answer comes back
            // through the outbox. The connection's input is not read meanwhile (it is
            // closing once answered).
            let Some(slot) = self.slots.get(key) else { return };
            debug!("four-letter word {word} from {}", slot.conn.peer());
            let job = fourlw::Job {
                conn: slot.conn.id(),
                word,
                extra: extra.to_vec(),
                conns: self.summaries(key),
            };
            if let Err(e) = self.four_letter.try_send(job) {
                warn!("four-letter word {word} dropped: {e}");
                self.close(key);
            }
            return;
        };
        let Some(slot) = self.slots.get_mut(key) else { return };
        debug!("four-letter word {word} from {}", slot.conn.peer());
        slot.conn.four_letter_answer(text.into_bytes());
        self.flush(key);
    }
}
