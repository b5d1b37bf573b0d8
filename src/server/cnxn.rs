//! The client port (ZooKeeper's `NIOServerCnxnFactory` + `NIOServerCnxn`): one hand-rolled
//! mio selector loop on its own thread.
//!
//! Tokens: `Token(0)` the listener, `Token(1)` the waker the apply stage uses, connections are
//! slab key + 2. Each round the ready events are shuffled so no connection is always served
//! first. Accept (with `maxClientCnxns` per IP and `maxCnxns` in total), read, write until
//! `WouldBlock`; `Interrupted` is retried; spurious events are harmless.
//!
//! The loop never blocks, fsyncs or waits for a processor: requests go to the prep stage over a
//! channel, replies and events come back over another. Back-pressure, as ZooKeeper throttles:
//! a connection whose unsent output passes [`OUTBOUND_PAUSE_BYTES`] is not read until it
//! drains, and no connection is read while the server has `globalOutstandingLimit` requests in
//! flight. Bad input (a frame length out of range, an undecodable record) closes that one
//! connection with a warn line.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::acl::{self, AuthInfo, AuthOutcome};
use super::fourlw::{self, ConnSummary};
use super::processor::{wall_clock_ms, Kind, Outbound, Request};
use super::session::password;
use super::ServerMode;
use super::{ConnId, Shared};
use crate::jute::proto::{AuthPacket, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use crate::jute::Jute;
use crate::proto::frame::{self, Frame};
use crate::proto::{ErrorCode, OpCode};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Stop reading from a connection whose unsent output exceeds this (a slow reader must not
/// make the server buffer without bound; ZooKeeper disables reads the same way).
pub const OUTBOUND_PAUSE_BYTES: usize = 4 << 20;
/// Connections that never finish the handshake are closed after this long
/// (`zookeeper.nio.sessionlessCnxnTimeout`).
const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the ConnectRequest (or a four-letter word).
    Handshake,
    /// A new session's createSession is in the pipeline.
    AwaitSession,
    /// Serving requests.
    Established,
}

struct Conn {
    id: ConnId,
    stream: TcpStream,
    peer: SocketAddr,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    out_pos: usize,
    state: State,
    session: i64,
    timeout_ms: i32,
    /// The ConnectRequest carried the readOnly flag (so the response carries it too).
    new_protocol: bool,
    auth: Arc<AuthInfo>,
    last_recv: Instant,
    close_after_flush: bool,
    read_paused: bool,
    writable_registered: bool,
    // statistics for cons/stat
    recved: u64,
    sent: u64,
    pending: VecDeque<(Instant, i32, &'static str)>,
    lop: &'static str,
    lcxid: Option<i32>,
    lzxid: i64,
    lresp_ms: u64,
    llat: u64,
    minlat: u64,
    maxlat: u64,
    total_lat: u64,
    count_lat: u64,
    established_ms: i64,
}

impl Conn {
    fn pending_out(&self) -> usize {
        self.outbuf.len() - self.out_pos
    }

    fn queue(&mut self, frame: &[u8]) {
        if self.out_pos == self.outbuf.len() {
            self.outbuf.clear();
            self.out_pos = 0;
        }
        self.outbuf.extend_from_slice(frame);
        self.sent += 1;
    }

    fn reset_stats(&mut self) {
        self.recved = 0;
        self.sent = 0;
        self.lcxid = None;
        self.lzxid = -1;
        self.lop = "NA";
        self.lresp_ms = 0;
        self.llat = 0;
        self.minlat = 0;
        self.maxlat = 0;
        self.total_lat = 0;
        self.count_lat = 0;
    }
}

/// The selector loop.
pub struct Selector {
    shared: Arc<Shared>,
    poll: Poll,
    listener: TcpListener,
    waker: Arc<Waker>,
    conns: Slab<Conn>,
    generation: u32,
    prep: Sender<Request>,
    outbox: Receiver<Outbound>,
    stop: Arc<AtomicBool>,
    per_ip: HashMap<IpAddr, usize>,
    by_session: HashMap<i64, ConnId>,
    rng: u64,
    throttled: bool,
    read_buf: Vec<u8>,
    /// Requests the first stage had no room for, in order; while any wait, no client request
    /// is read (the selector never blocks on the pipeline).
    backlog: VecDeque<Request>,
}

impl Selector {
    /// Binds the client port.
    pub fn bind(
        shared: Arc<Shared>,
        prep: Sender<Request>,
        outbox: Receiver<Outbound>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Selector> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(shared.config.client_address)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Ok(addr) = listener.local_addr() {
            let _ = shared.bound_addr.set(addr);
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let seed = wall_clock_ms() as u64 | 1;
        Ok(Selector {
            shared,
            poll,
            listener,
            waker,
            conns: Slab::new(),
            generation: 0,
            prep,
            outbox,
            stop,
            per_ip: HashMap::new(),
            by_session: HashMap::new(),
            rng: seed,
            throttled: false,
            read_buf: Vec::new(),
            backlog: VecDeque::new(),
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

    fn next_rand(&mut self) -> u64 {
        // xorshift64: only used to shuffle readiness order.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The thread body; ends when the server stops.
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        let mut ready: Vec<(Token, bool, bool)> = Vec::with_capacity(1024);
        let mut last_check = Instant::now();
        loop {
            // A backlog is retried soon; otherwise the timeout only paces the idle check.
            let timeout = if self.backlog.is_empty() { 100 } else { 1 };
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
            for i in (1..ready.len()).rev() {
                let j = (self.next_rand() % (i as u64 + 1)) as usize;
                ready.swap(i, j);
            }
            for &(token, readable, writable) in &ready {
                match token {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let key = t - 2;
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

    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            };
            let config = &self.shared.config;
            let ip = peer.ip();
            let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
            let per_ip_max = config.max_client_cnxns.map_or(usize::MAX, |n| n.get() as usize);
            if from_ip >= per_ip_max {
                warn!("Too many connections from {ip} - max is {per_ip_max}");
                self.shared.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let max = config.max_cnxns.map_or(usize::MAX, |n| n.get() as usize);
            if self.conns.len() >= max {
                warn!("too many connections: max is {max}, closing {peer}");
                self.shared.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll.registry().register(&mut stream, Token(key + 2), Interest::READABLE)
            {
                warn!("cannot register connection from {peer}: {e}");
                continue;
            }
            self.generation = self.generation.wrapping_add(1);
            let id = ((self.generation as u64) << 32) | key as u64;
            entry.insert(Conn {
                id,
                stream,
                peer,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                out_pos: 0,
                state: State::Handshake,
                session: 0,
                timeout_ms: 0,
                new_protocol: false,
                auth: Arc::new(AuthInfo::for_address(ip)),
                last_recv: Instant::now(),
                close_after_flush: false,
                read_paused: false,
                writable_registered: false,
                recved: 0,
                sent: 0,
                pending: VecDeque::new(),
                lop: "NA",
                lcxid: None,
                lzxid: -1,
                lresp_ms: 0,
                llat: 0,
                minlat: 0,
                maxlat: 0,
                total_lat: 0,
                count_lat: 0,
                established_ms: wall_clock_ms(),
            });
            *self.per_ip.entry(ip).or_insert(0) += 1;
            debug!("accepted connection from {peer}");
        }
    }

    fn conn_by_id(&mut self, id: ConnId) -> Option<(usize, &mut Conn)> {
        let key = (id & 0xffff_ffff) as usize;
        match self.conns.get_mut(key) {
            Some(c) if c.id == id => Some((key, c)),
            _ => None,
        }
    }

    fn read(&mut self, key: usize) {
        let throttled = self.throttled;
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.close_after_flush {
            return;
        }
        if conn.pending_out() > OUTBOUND_PAUSE_BYTES
            || (throttled && conn.state == State::Established)
        {
            conn.read_paused = true;
            return;
        }
        conn.read_paused = false;
        let mut buf = std::mem::take(&mut self.read_buf);
        buf.resize(READ_CHUNK, 0);
        self.read_more(key, &mut buf);
        self.read_buf = buf;
    }

    /// Reads until `WouldBlock`, handling complete frames as they arrive.
    fn read_more(&mut self, key: usize, buf: &mut [u8]) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else { return };
            if conn.close_after_flush || conn.read_paused {
                break;
            }
            if conn.pending_out() > OUTBOUND_PAUSE_BYTES {
                conn.read_paused = true;
                break;
            }
            match conn.stream.read(buf) {
                Ok(0) => {
                    debug!(
                        "connection from {} closed by peer (session 0x{:x})",
                        conn.peer, conn.session
                    );
                    self.close(key);
                    return;
                }
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&buf[..n]);
                    conn.last_recv = Instant::now();
                    self.shared.stats.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    if !self.process_input(key) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("read error from {}: {e}", conn.peer);
                    self.close(key);
                    return;
                }
            }
        }
        self.flush(key);
    }

    /// Handles every complete frame in the connection's input; false if it was closed.
    fn process_input(&mut self, key: usize) -> bool {
        let max = self.shared.config.jute_max_buffer_bytes;
        let mut consumed = 0;
        loop {
            let Some(conn) = self.conns.get_mut(key) else { return false };
            if conn.close_after_flush {
                conn.inbuf.clear();
                return true;
            }
            if conn.state == State::AwaitSession {
                // Like ZooKeeper, nothing after the ConnectRequest is read until the session
                // exists, so that (say) an auth packet is answered after the ConnectResponse.
                // A client that keeps sending meanwhile is not read from any more.
                if conn.inbuf.len() - consumed > max {
                    conn.read_paused = true;
                }
                break;
            }
            let buf = &conn.inbuf[consumed..];
            if conn.state == State::Handshake && consumed == 0 && conn.recved == 0 {
                if let Some(word) = frame::four_letter_word(buf) {
                    let extra = conn.inbuf[4..].to_vec();
                    conn.inbuf.clear();
                    self.shared.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    self.four_letter(key, word, &extra);
                    return true;
                }
            }
            match frame::parse(buf, max) {
                Frame::Incomplete => break,
                Frame::BadLength(len) => {
                    warn!(
                        "closing connection from {} (session 0x{:x}): frame length {len} out of \
                         range (jute.maxbuffer {max})",
                        conn.peer, conn.session
                    );
                    self.close(key);
                    return false;
                }
                Frame::Complete { len } => {
                    let payload = conn.inbuf[consumed + 4..consumed + 4 + len].to_vec();
                    consumed += 4 + len;
                    conn.recved += 1;
                    self.shared.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                    let ok = if conn.state == State::Handshake {
                        self.handle_connect(key, &payload)
                    } else {
                        self.handle_request(key, &payload)
                    };
                    if !ok {
                        return false;
                    }
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(key) {
            conn.inbuf.drain(..consumed);
        }
        true
    }

    fn handle_connect(&mut self, key: usize, payload: &[u8]) -> bool {
        let shared = self.shared.clone();
        let Some(conn) = self.conns.get_mut(key) else { return false };
        let req = match ConnectRequest::from_bytes(payload) {
            Ok(r) => r,
            Err(e) => {
                warn!("closing connection from {}: bad ConnectRequest: {e}", conn.peer);
                self.close(key);
                return false;
            }
        };
        match shared.mode {
            ServerMode::NotServing => {
                info!("closing connection from {}: not serving (no quorum)", conn.peer);
                self.close(key);
                return false;
            }
            ServerMode::ReadOnly if req.read_only != Some(true) => {
                info!(
                    "refusing session request for not-read-only client {}: this server is \
                     read-only",
                    conn.peer
                );
                self.close(key);
                return false;
            }
            _ => {}
        }
        let read_only = shared.mode == ServerMode::ReadOnly;
        let last_zxid = shared.read_tree().last_processed_zxid;
        if req.base.last_zxid_seen > last_zxid {
            info!(
                "refusing session request for client {} as it has seen zxid 0x{:x} our last \
                 zxid is 0x{:x} client must try another server",
                conn.peer, req.base.last_zxid_seen, last_zxid
            );
            self.close(key);
            return false;
        }
        let bounds = shared.config.session_timeouts;
        let timeout = req
            .base
            .time_out
            .clamp(bounds.min().as_millis() as i32, bounds.max().as_millis() as i32);
        let new_protocol = req.read_only.is_some();
        conn.timeout_ms = timeout;
        conn.new_protocol = new_protocol;
        let now = shared.now_ms();
        if req.base.session_id == 0 {
            let id = shared.with_sessions(|t| t.create(timeout, now));
            conn.session = id;
            conn.state = State::AwaitSession;
            let conn_id = conn.id;
            let auth = conn.auth.clone();
            self.by_session.insert(id, conn_id);
            let kind = Kind::NewSession { timeout_ms: timeout, read_only_flag: new_protocol };
            let mut r = Request::new(Some(conn_id), id, 0, OpCode::CreateSession.code(), kind);
            r.auth = auth;
            self.submit(r);
            return true;
        }
        let id = req.base.session_id;
        let passwd_ok = req.base.passwd.as_deref() == Some(&password(id)[..]);
        // A follower or observer asks the leader, which owns global sessions, and answers the
        // client when the leader has (ZooKeeper's Learner.validateSession).
        let ask_leader =
            passwd_ok && matches!(shared.mode, ServerMode::Follower | ServerMode::Observer);
        let valid = passwd_ok && !ask_leader && shared.with_sessions(|t| t.touch(id, timeout, now));
        let conn_id = conn.id;
        let peer = conn.peer;
        if let Some(old) = self.by_session.get(&id).copied() {
            if old != conn_id {
                if let Some((old_key, _)) = self.conn_by_id(old) {
                    info!("closing old connection for session 0x{id:x}: client reconnected");
                    self.close(old_key);
                }
            }
        }
        let Some(conn) = self.conns.get_mut(key) else { return false };
        if ask_leader {
            // Nothing after the ConnectRequest is read until the leader answers.
            conn.session = id;
            conn.state = State::AwaitSession;
            self.by_session.insert(id, conn_id);
            info!("session 0x{id:x} re-attaching from {peer}: revalidating with the leader");
            let kind = Kind::Reattach { timeout_ms: timeout };
            self.submit(Request::new(Some(conn_id), id, 0, OpCode::CreateSession.code(), kind));
            return true;
        }
        let mut reattached = false;
        if valid {
            conn.session = id;
            conn.state = State::Established;
            conn.lop = "SESS";
            self.by_session.insert(id, conn_id);
            info!("session 0x{id:x} re-established from {peer}, timeout {timeout}ms");
            reattached = true;
        } else {
            info!("invalid session 0x{id:x} for client {peer}, probably expired");
            conn.close_after_flush = true;
        }
        conn.queue(&connect_response(valid, id, timeout, new_protocol.then_some(read_only)));
        self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        if reattached && shared.mode != ServerMode::Standalone {
            let kind = Kind::Reattach { timeout_ms: timeout };
            self.submit(Request::new(None, id, 0, OpCode::CreateSession.code(), kind));
        }
        true
    }

    fn handle_request(&mut self, key: usize, payload: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(key) else { return false };
        let mut reader = crate::jute::Reader::new(payload);
        let header = match RequestHeader::decode(&mut reader) {
            Ok(h) => h,
            Err(e) => {
                warn!(
                    "closing connection from {} (session 0x{:x}): bad request header: {e}",
                    conn.peer, conn.session
                );
                self.close(key);
                return false;
            }
        };
        let body = reader.rest().to_vec();
        let op = OpCode::from_i32(header.op_type);
        let now = self.shared.now_ms();
        let (session, timeout) = (conn.session, conn.timeout_ms);
        if op == Some(OpCode::Auth) {
            return self.handle_auth(key, header.xid, &body);
        }
        let touched = self.shared.with_sessions(|t| t.touch(session, timeout, now));
        let Some(conn) = self.conns.get_mut(key) else { return false };
        if !touched && op != Some(OpCode::CloseSession) {
            debug!("dropping request xid {} for session 0x{session:x}: not live", header.xid);
            return true;
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
        let lop = op.map_or("UNKN", short_op_name);
        conn.pending.push_back((Instant::now(), header.xid, lop));
        let mut r = Request::new(Some(conn.id), session, header.xid, header.op_type, kind);
        r.body = body;
        r.auth = conn.auth.clone();
        self.submit(r);
        true
    }

    /// Answers an auth packet. The reply echoes the request's xid, as ZooKeeper's
    /// `processPacket` does: the Java client always sends -4, other clients may not.
    fn handle_auth(&mut self, key: usize, xid: i32, body: &[u8]) -> bool {
        let shared = self.shared.clone();
        let Some(conn) = self.conns.get_mut(key) else { return false };
        let outcome = match AuthPacket::from_bytes(body) {
            Ok(p) => acl::authenticate(
                &p.scheme,
                p.auth.as_deref().unwrap_or(&[]),
                shared.config.super_digest.as_deref(),
            ),
            Err(_) => AuthOutcome::Failed,
        };
        let err = match outcome {
            AuthOutcome::Added(ids) => {
                let mut a = (*conn.auth).clone();
                for id in ids {
                    if !a.ids.contains(&id) {
                        a.ids.push(id);
                    }
                }
                conn.auth = Arc::new(a);
                ErrorCode::Ok
            }
            AuthOutcome::Failed => {
                shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
                warn!("authentication failed for session 0x{:x} from {}", conn.session, conn.peer);
                conn.close_after_flush = true;
                ErrorCode::AuthFailed
            }
        };
        let mut f = Vec::new();
        frame::write(&mut f, &ReplyHeader { xid, zxid: 0, err: err.code() }.to_bytes());
        conn.queue(&f);
        shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        true
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
            Err(crossbeam_channel::TrySendError::Full(req)) => {
                debug!("request pipeline full: holding requests and pausing reads");
                self.backlog.push_back(req);
                self.throttled = true;
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                debug!("request pipeline is gone; server is stopping");
            }
        }
    }

    /// Offers the held requests to the first stage again, in order.
    fn flush_backlog(&mut self) {
        while let Some(req) = self.backlog.pop_front() {
            match self.prep.try_send(req) {
                Ok(()) => {}
                Err(crossbeam_channel::TrySendError::Full(req)) => {
                    self.backlog.push_front(req);
                    return;
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    fn drain_outbox(&mut self) {
        let mut touched: Vec<usize> = Vec::new();
        while let Ok(msg) = self.outbox.try_recv() {
            match msg {
                Outbound::Reply { conn, frame, close } => {
                    self.shared.stats.outstanding.fetch_sub(1, Ordering::Relaxed);
                    let lresp = self.shared.now_ms();
                    let Some((key, c)) = self.conn_by_id(conn) else { continue };
                    if let Some((at, xid, lop)) = c.pending.pop_front() {
                        let lat = at.elapsed().as_millis() as u64;
                        c.lop = lop;
                        c.lcxid = Some(xid);
                        c.llat = lat;
                        c.minlat = if c.count_lat == 0 { lat } else { c.minlat.min(lat) };
                        c.maxlat = c.maxlat.max(lat);
                        c.total_lat += lat;
                        c.count_lat += 1;
                    }
                    if frame.len() >= 16 {
                        let mut z = [0u8; 8];
                        z.copy_from_slice(&frame[8..16]);
                        c.lzxid = i64::from_be_bytes(z);
                    }
                    c.lresp_ms = lresp;
                    c.queue(&frame);
                    if close {
                        c.close_after_flush = true;
                    }
                    self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    touched.push(key);
                }
                Outbound::Event { conn, frame } => {
                    let Some((key, c)) = self.conn_by_id(conn) else { continue };
                    c.queue(&frame);
                    self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    touched.push(key);
                }
                Outbound::SessionCreated { conn, session, frame } => {
                    let Some((key, c)) = self.conn_by_id(conn) else { continue };
                    if c.session == session && c.state == State::AwaitSession {
                        c.state = State::Established;
                        c.lop = "SESS";
                        c.queue(&frame);
                        let paused = c.read_paused;
                        self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                        touched.push(key);
                        // Requests that arrived behind the ConnectRequest can run now.
                        if self.process_input(key) && paused {
                            self.read(key);
                        }
                    }
                }
                Outbound::Revalidated { conn, session, valid } => {
                    let Some((key, c)) = self.conn_by_id(conn) else { continue };
                    if c.session != session || c.state != State::AwaitSession {
                        continue;
                    }
                    let timeout = c.timeout_ms;
                    let read_only = c.new_protocol.then_some(false);
                    c.queue(&connect_response(valid, session, timeout, read_only));
                    touched.push(key);
                    if valid {
                        info!(
                            "session 0x{session:x} re-established from {}, timeout {timeout}ms",
                            c.peer
                        );
                        c.state = State::Established;
                        c.lop = "SESS";
                        let paused = c.read_paused;
                        let now = self.shared.now_ms();
                        // The leader is the judge: a session whose createSession this
                        // server has not applied yet is known here from now on.
                        self.shared.with_sessions(|t| {
                            if !t.touch(session, timeout, now) {
                                t.add(session, timeout, now);
                            }
                        });
                        self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                        // Requests that arrived behind the ConnectRequest can run now.
                        if self.process_input(key) && paused {
                            self.read(key);
                        }
                    } else {
                        info!(
                            "invalid session 0x{session:x} for client {}, probably expired",
                            c.peer
                        );
                        // As if the handshake had failed here: no session to clean up.
                        c.state = State::Handshake;
                        c.session = 0;
                        c.close_after_flush = true;
                        c.inbuf.clear();
                        self.shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                        if self.by_session.get(&session) == Some(&conn) {
                            self.by_session.remove(&session);
                        }
                    }
                }
                Outbound::SessionExpired { session } => {
                    if let Some(conn) = self.by_session.get(&session).copied() {
                        // A connection still waiting for its handshake's answer (a re-attach
                        // the leader is revalidating) gets that answer instead: the close may
                        // have been meant for the connection it replaced.
                        match self.conn_by_id(conn) {
                            Some((_, c)) if c.state == State::AwaitSession => {}
                            Some((key, _)) => self.close(key),
                            None => {}
                        }
                    }
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for key in touched {
            self.flush(key);
        }
    }

    /// Writes what the connection has queued; closes it if it asked to be closed once flushed.
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        while conn.out_pos < conn.outbuf.len() {
            match conn.stream.write(&conn.outbuf[conn.out_pos..]) {
                Ok(0) => break,
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("write error to {}: {e}", conn.peer);
                    self.close(key);
                    return;
                }
            }
        }
        let drained = conn.out_pos == conn.outbuf.len();
        if drained {
            conn.outbuf.clear();
            conn.out_pos = 0;
            if conn.close_after_flush {
                self.close(key);
                return;
            }
        }
        let want_write = !drained;
        if want_write != conn.writable_registered {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) =
                self.poll.registry().reregister(&mut conn.stream, Token(key + 2), interest)
            {
                debug!("reregister failed for {}: {e}", conn.peer);
            }
            conn.writable_registered = want_write;
        }
        if conn.read_paused && conn.pending_out() <= OUTBOUND_PAUSE_BYTES / 2 && !self.throttled {
            self.read(key);
        }
    }

    /// Applies `globalOutstandingLimit`: pause reads while too many requests are in flight.
    fn update_throttle(&mut self) {
        let limit = i64::from(self.shared.config.global_outstanding_limit.get());
        let outstanding = self.shared.stats.outstanding.load(Ordering::Relaxed);
        let was = self.throttled;
        self.throttled = (limit > 0 && outstanding >= limit) || !self.backlog.is_empty();
        if was && !self.throttled {
            let paused: Vec<usize> =
                self.conns.iter().filter(|(_, c)| c.read_paused).map(|(k, _)| k).collect();
            for key in paused {
                self.read(key);
            }
        }
    }

    fn close_idle(&mut self) {
        let mut to_close = Vec::new();
        for (key, c) in self.conns.iter() {
            let idle = c.last_recv.elapsed();
            let limit = match c.state {
                State::Handshake => SESSIONLESS_TIMEOUT,
                _ => Duration::from_millis(c.timeout_ms.max(0) as u64),
            };
            if idle > limit && !c.read_paused {
                to_close.push(key);
            }
        }
        for key in to_close {
            if let Some(c) = self.conns.get(key) {
                info!(
                    "closing idle connection from {} (session 0x{:x}): no traffic for {}ms",
                    c.peer,
                    c.session,
                    c.last_recv.elapsed().as_millis()
                );
            }
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        let ip = conn.peer.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        if conn.session != 0 && self.by_session.get(&conn.session) == Some(&conn.id) {
            self.by_session.remove(&conn.session);
        }
        debug!("closed connection from {} (session 0x{:x})", conn.peer, conn.session);
        if conn.state != State::Handshake {
            let r = Request::new(Some(conn.id), conn.session, 0, 0, Kind::ConnectionClosed);
            self.submit(r);
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.close(k);
        }
    }

    /// Per-connection lines for stat/cons/dump. The connection `asking` is running the command:
    /// like ZooKeeper, it shows interest 0 (its selector interest is off meanwhile).
    fn summaries(&self, asking: usize) -> Vec<ConnSummary> {
        let now = Instant::now();
        self.conns
            .iter()
            .map(|(key, c)| ConnSummary {
                peer: c.peer,
                interest: if key == asking {
                    0
                } else if c.writable_registered {
                    5
                } else {
                    1
                },
                queued: c.pending.len(),
                recved: c.recved,
                sent: c.sent,
                session: (c.state != State::Handshake).then_some(c.session),
                lop: c.lop,
                established_ms: c.established_ms,
                timeout_ms: c.timeout_ms,
                lcxid: c.lcxid,
                lzxid: c.lzxid,
                lresp_ms: c.lresp_ms,
                llat: c.llat,
                minlat: c.minlat,
                avglat: c.total_lat.checked_div(c.count_lat).unwrap_or(0),
                maxlat: c.maxlat,
                expires_in: Duration::from_millis(c.timeout_ms.max(0) as u64)
                    .saturating_sub(now.duration_since(c.last_recv)),
            })
            .collect()
    }

    fn four_letter(&mut self, key: usize, word: &'static str, extra: &[u8]) {
        // The command is the connection's one received packet, as ZooKeeper counts it.
        if let Some(c) = self.conns.get_mut(key) {
            c.recved += 1;
        }
        let allowed = self.shared.four_letter_allowed(word);
        let text = if !allowed {
            format!("{word} is not executed because it is not in the whitelist.\n")
        } else if word == "crst" {
            for (_, c) in self.conns.iter_mut() {
                c.reset_stats();
            }
            "Connection stats reset.\n".to_owned()
        } else {
            let summaries = self.summaries(key);
            fourlw::run(word, &self.shared, &summaries, extra)
        };
        let Some(conn) = self.conns.get_mut(key) else { return };
        debug!("four-letter word {word} from {}", conn.peer);
        conn.outbuf.extend_from_slice(text.as_bytes());
        conn.close_after_flush = true;
        self.flush(key);
    }
}

/// `cons`'s abbreviation of an op [Request.op2String].
/// A ConnectResponse frame: the session and its negotiated timeout, or (not `valid`) the
/// expired answer ZooKeeper sends (timeout 0, session 0, a zero password).
fn connect_response(valid: bool, id: i64, timeout: i32, read_only: Option<bool>) -> Vec<u8> {
    let resp = if valid {
        ConnectResponse {
            protocol_version: 0,
            time_out: timeout,
            session_id: id,
            passwd: password(id).to_vec(),
            read_only,
        }
    } else {
        ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only,
        }
    };
    let mut f = Vec::new();
    frame::write(&mut f, &resp.to_bytes());
    f
}

fn short_op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::GetData => "GETD",
        OpCode::Exists => "EXIS",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::GetAcl => "GETA",
        OpCode::SetAcl => "SETA",
        OpCode::Sync => "SYNC",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Check => "CHEC",
        OpCode::CloseSession => "CLOS",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::GetEphemerals => "GETE",
        OpCode::WhoAmI => "HOMI",
        OpCode::Reconfig => "RECO",
        OpCode::Sasl => "SASL",
        OpCode::Auth => "AUTH",
        _ => "UNKN",
    }
}
