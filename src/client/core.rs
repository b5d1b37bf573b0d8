//! The client protocol core [ClientCnxn.SendThread, minus the socket]: session, handshake,
//! outgoing and pending queues, xids, reply matching, watch registry, pings and timeouts.
//!
//! Pure state machine driven by the send thread (`send`): no sockets, threads, channels or
//! clock; time is always an argument and the reconnect jitter comes from a seeded [`Rng`].
//! Inputs: [`ClientCore::handle_timeout`], [`ClientCore::tcp_connected`],
//! [`ClientCore::handle_input`], [`ClientCore::connection_lost`], [`ClientCore::submit`],
//! [`ClientCore::add_auth`], [`ClientCore::close`]. Outputs, drained by the shell: bytes to
//! write ([`ClientCore::take_output`]), [`Action`]s ([`ClientCore::poll_action`]) and the next
//! deadline ([`ClientCore::poll_timeout`]).
//!
//! Invariants: `pending` holds exactly the packets written on the current connection and not
//! yet answered, in xid order; nothing but the ConnectRequest is written before the
//! ConnectResponse arrives; xids run 1..=i32::MAX and wrap to 1; every submitted packet is
//! completed exactly once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::EventItem;
use super::request::{decode_reply, Request, Response};
use super::watches::{WatchKind, WatchRegistry};
use super::{sid, Chroot, Error, State, WatchedEvent, Watcher};
use crate::config::client::SaslLogin;
use crate::jute::proto::SaslToken;
use crate::jute::proto::{
    AuthPacket, ConnectRequest, ConnectRequestBase, ConnectResponse, MultiResponse, ReplyHeader,
    RequestHeader, WatcherEvent,
};
use crate::jute::{Jute, Reader};
use crate::proto::{frame, xid, ErrorCode, EventType, KeeperState, OpCode, WatcherType};
use crate::sasl::DigestMd5Client;

/// Largest reply the client accepts [ClientCnxnSocket packetLen, jute.maxbuffer 0xfffff]
/// plus room for the reply header and Stat, so a maximal znode can still be read back.
const FRAME_BYTES_MAX: usize =
    crate::limits::JUTE_MAX_BUFFER_DEFAULT_BYTES + crate::limits::JUTE_MAX_BUFFER_EXTRA_MIN_BYTES;
/// Longest a connected client stays silent [ClientCnxn MAX_SEND_PING_INTERVAL].
const PING_INTERVAL_MAX: Duration = Duration::from_secs(10);
/// Upper bound of the random delay before a reconnect attempt [ClientCnxn.startConnect].
const RECONNECT_DELAY_MAX_MS: u64 = 1000;
/// Read-only probing interval bounds [ClientCnxn.pingRwServer].
const RO_PROBE_MIN: Duration = Duration::from_millis(100);
const RO_PROBE_MAX: Duration = Duration::from_secs(60);
/// Longest wait between two timer checks.
const TICK_MAX: Duration = Duration::from_secs(1);

/// Completion of one request; gets the decoded reply or the error.
pub(crate) type Completion = Box<dyn FnOnce(Result<Response, Error>) + Send>;

/// A request on its way: body, completion, and whether the completion may run right here.
pub(crate) struct Packet {
    pub req: Request,
    pub completion: Completion,
    /// Run the completion on the send thread: the caller is the event thread, blocked.
    pub direct: bool,
}

/// What the shell must do next.
pub(crate) enum Action {
    /// Open a TCP connection to the next address, then call `tcp_connected` or
    /// `connection_lost`.
    Connect,
    /// Close the socket.
    Disconnect,
    /// Hand to the event thread.
    Deliver(EventItem),
    /// Run here: the caller of a blocking call is the event thread itself.
    RunHere(Completion, Result<Response, Error>),
    /// Ask another host whether it is read-write; call `found_read_write_server` if so.
    ProbeReadWrite,
    /// State, session or negotiated timeout changed: publish them to the application.
    Publish,
}

/// Settings fixed at construction.
pub(crate) struct CoreConfig {
    pub chroot: Chroot,
    pub timeout: Duration,
    pub can_be_read_only: bool,
    pub default_watcher: Watcher,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub request_timeout: Option<Duration>,
    pub host_count: usize,
    pub seed: u64,
    /// DIGEST-MD5 credentials: every new connection authenticates before other requests.
    pub sasl: Option<SaslLogin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// ConnectRequest written, waiting for the ConnectResponse.
    Handshake,
    /// Session established on this connection.
    Connected,
}

struct Conn {
    phase: Phase,
    rbuf: Vec<u8>,
    last_recv: Instant,
    last_send: Instant,
}

struct Pending {
    xid: i32,
    op: OpCode,
    sent: Instant,
    packet: Option<Packet>,
}

/// The core's state.
pub(crate) struct ClientCore {
    cfg: CoreConfig,
    rng: fastrand::Rng,
    conn: Option<Conn>,
    out: Vec<u8>,
    actions: VecDeque<Action>,
    state: State,
    session_id: i64,
    passwd: Vec<u8>,
    negotiated: Duration,
    last_zxid: i64,
    /// The session was created by a read-only server and no read-write server was seen yet.
    ro_only_session: bool,
    outgoing: VecDeque<Packet>,
    pending: VecDeque<Pending>,
    auth: Vec<(String, Vec<u8>)>,
    watches: WatchRegistry,
    next_xid: i32,
    next_connect_at: Instant,
    last_heard: Instant,
    closing: Option<Instant>,
    ro_probe_at: Instant,
    ro_probe_interval: Duration,
    finished: bool,
    /// The SASL exchange under way on this connection; requests wait until it completes.
    sasl: Option<DigestMd5Client>,
}

impl ClientCore {
    /// A core that will connect at `now`.
    pub(crate) fn new(cfg: CoreConfig, now: Instant) -> ClientCore {
        let passwd = if cfg.passwd.is_empty() { vec![0; 16] } else { cfg.passwd.clone() };
        ClientCore {
            rng: fastrand::Rng::with_seed(cfg.seed),
            conn: None,
            out: Vec::new(),
            actions: VecDeque::new(),
            state: State::Connecting,
            session_id: cfg.session_id,
            passwd,
            negotiated: cfg.timeout,
            last_zxid: 0,
            ro_only_session: false,
            outgoing: VecDeque::new(),
            pending: VecDeque::new(),
            auth: Vec::new(),
            watches: WatchRegistry::new(),
            next_xid: 1,
            next_connect_at: now,
            last_heard: now,
            closing: None,
            ro_probe_at: now,
            ro_probe_interval: RO_PROBE_MIN,
            finished: false,
            sasl: None,
            cfg,
        }
    }

    // ----- outputs -----

    /// The next action for the shell.
    #[must_use]
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Moves the bytes to write onto `buf`.
    pub(crate) fn take_output(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
    }

    /// When `handle_timeout` must run next (at most a second away).
    #[must_use]
    pub(crate) fn poll_timeout(&self, now: Instant) -> Instant {
        let mut at = now + TICK_MAX;
        match &self.conn {
            None => at = at.min(self.next_connect_at),
            Some(c) if c.phase != Phase::Connected => {
                at = at.min(c.last_recv + self.connect_timeout())
            }
            Some(c) => {
                at = at.min(c.last_recv + self.read_timeout());
                at = at.min(c.last_send + self.ping_interval());
                if self.state == State::ConnectedReadOnly {
                    at = at.min(self.ro_probe_at);
                }
            }
        }
        if let Some(deadline) = self.closing {
            at = at.min(deadline);
        }
        if let (Some(t), Some(p)) = (self.cfg.request_timeout, self.pending.front()) {
            at = at.min(p.sent + t);
        }
        at
    }

    /// Whether the client is done (closed, expired or auth failed).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The session id (0 before the first session).
    pub(crate) fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session password.
    pub(crate) fn passwd(&self) -> &[u8] {
        &self.passwd
    }

    /// The negotiated (or, before that, requested) session timeout.
    pub(crate) fn negotiated(&self) -> Duration {
        self.negotiated
    }

    /// The last zxid seen in a reply.
    pub(crate) fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The error for requests made after the end.
    pub(crate) fn final_error(&self) -> Error {
        match self.state {
            State::Expired => Error::Server(ErrorCode::SessionExpired),
            State::AuthFailed => Error::Server(ErrorCode::AuthFailed),
            _ => Error::Closed,
        }
    }

    // ----- timers -----

    fn read_timeout(&self) -> Duration {
        self.negotiated * 2 / 3
    }

    fn connect_timeout(&self) -> Duration {
        self.negotiated / self.cfg.host_count.max(1) as u32
    }

    fn ping_interval(&self) -> Duration {
        // Ping once idle for half the read timeout, a second early when that is over a
        // second away, and at least every 10 s [ClientCnxn.SendThread.run].
        let half = self.read_timeout() / 2;
        let one = Duration::from_secs(1);
        let i = if half > 2 * one {
            half - one
        } else if half > one {
            one + Duration::from_millis(1)
        } else {
            half
        };
        i.min(PING_INTERVAL_MAX)
    }

    /// Runs every timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if self.closing.is_some_and(|deadline| now >= deadline) {
            log::info!("client: session {} close timed out", sid(self.session_id));
            self.terminate(State::Closed, KeeperState::Closed, || Error::Closed);
            return;
        }
        // Before any session exists, give up after 4/3 of the requested timeout of silence
        // instead of retrying forever.
        if self.session_id == 0
            && self.state == State::Connecting
            && now.duration_since(self.last_heard) >= self.cfg.timeout * 4 / 3
        {
            log::info!("client: no server answered within 4/3 of the session timeout");
            self.terminate(State::Closed, KeeperState::Closed, || Error::ConnectionLoss);
            return;
        }
        if let (Some(t), Some(p)) = (self.cfg.request_timeout, self.pending.front()) {
            if now.duration_since(p.sent) >= t {
                if let Some(packet) = self.pending.pop_front().and_then(|p| p.packet) {
                    self.complete(packet, Err(Error::Timeout));
                }
                self.connection_lost("request timed out", now);
                return;
            }
        }
        let (phase, last_recv, last_send) = match &self.conn {
            None => {
                if self.closing.is_none() && now >= self.next_connect_at {
                    self.conn = Some(Conn {
                        phase: Phase::Connecting,
                        rbuf: Vec::new(),
                        last_recv: now,
                        last_send: now,
                    });
                    self.actions.push_back(Action::Connect);
                }
                return;
            }
            Some(c) => (c.phase, c.last_recv, c.last_send),
        };
        if phase != Phase::Connected {
            if now.duration_since(last_recv) >= self.connect_timeout() {
                self.connection_lost("connect timeout", now);
            }
            return;
        }
        if now.duration_since(last_recv) >= self.read_timeout() {
            let ms = now.duration_since(last_recv).as_millis();
            self.connection_lost(&format!("nothing heard for {ms} ms"), now);
            return;
        }
        if now.duration_since(last_send) >= self.ping_interval() {
            self.write_frame(xid::PING, OpCode::Ping, &[], now);
        }
        if self.state == State::ConnectedReadOnly && now >= self.ro_probe_at {
            self.ro_probe_interval = (self.ro_probe_interval * 2).min(RO_PROBE_MAX);
            self.ro_probe_at = now + self.ro_probe_interval;
            self.actions.push_back(Action::ProbeReadWrite);
        }
    }

    // ----- connection events -----

    /// The TCP connection is up: send the ConnectRequest.
    pub(crate) fn tcp_connected(&mut self, now: Instant) {
        let session_id = if self.ro_only_session { 0 } else { self.session_id };
        let req = ConnectRequest {
            base: ConnectRequestBase {
                protocol_version: 0,
                last_zxid_seen: self.last_zxid,
                time_out: self.cfg.timeout.as_millis().min(i32::MAX as u128) as i32,
                session_id,
                passwd: Some(self.passwd.clone()),
            },
            read_only: Some(self.cfg.can_be_read_only),
        };
        if let Some(c) = self.conn.as_mut() {
            c.phase = Phase::Handshake;
            c.last_send = now;
            frame::write(&mut self.out, &req.to_bytes());
        }
    }

    /// Bytes read from the socket.
    pub(crate) fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        let Some(c) = self.conn.as_mut() else { return };
        c.rbuf.extend_from_slice(bytes);
        c.last_recv = now;
        self.last_heard = now;
        let mut buf = std::mem::take(&mut c.rbuf);
        let mut start = 0;
        let mut lost = None;
        while !self.finished && self.conn.is_some() {
            let len = match frame::parse(&buf[start..], FRAME_BYTES_MAX) {
                frame::Frame::Incomplete => break,
                frame::Frame::BadLength(n) => {
                    lost = Some(format!("bad frame length {n}"));
                    break;
                }
                frame::Frame::Complete { len } => len,
            };
            let payload = &buf[start + 4..start + 4 + len];
            start += 4 + len;
            let connected = self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected);
            let outcome = if connected {
                self.on_reply(payload, now)
            } else {
                self.on_connect_response(payload, now)
            };
            if let Err(reason) = outcome {
                lost = Some(reason);
                break;
            }
        }
        if let Some(reason) = lost {
            self.connection_lost(&reason, now);
            return;
        }
        if let Some(c) = self.conn.as_mut() {
            buf.drain(..start);
            c.rbuf = buf;
        }
    }

    fn on_connect_response(&mut self, payload: &[u8], now: Instant) -> Result<(), String> {
        let resp = ConnectResponse::from_bytes(payload)
            .map_err(|e| format!("bad ConnectResponse: {e}"))?;
        if resp.time_out <= 0 {
            log::info!("client: session {} expired", sid(self.session_id));
            self.terminate(State::Expired, KeeperState::Expired, || {
                Error::Server(ErrorCode::SessionExpired)
            });
            return Ok(());
        }
        let read_only = resp.read_only.unwrap_or(false);
        if !self.cfg.can_be_read_only && read_only {
            log::warn!("client: read/write client got connected to a read-only server");
        }
        // A session created by a read-only server stays "read-only only" until a read-write
        // server is seen; until then reconnects ask for a new session [ClientCnxn
        // seenRwServerBefore].
        let new_session = self.session_id == 0 || self.ro_only_session;
        self.ro_only_session = read_only && new_session;
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        self.negotiated = Duration::from_millis(resp.time_out as u64);
        self.state = if read_only { State::ConnectedReadOnly } else { State::Connected };
        self.ro_probe_interval = RO_PROBE_MIN;
        self.ro_probe_at = now + self.ro_probe_interval;
        log::info!(
            "client: session {} established, negotiated timeout {} ms{}",
            sid(self.session_id),
            resp.time_out,
            if read_only { " (read-only)" } else { "" }
        );
        self.actions.push_back(Action::Publish);
        let ks =
            if read_only { KeeperState::ConnectedReadOnly } else { KeeperState::SyncConnected };
        self.state_event(ks);
        if let Some(c) = self.conn.as_mut() {
            c.phase = Phase::Connected;
        }
        // Prime the connection: auth first, then watches, then queued requests
        // (wire-protocol.md §3.4).
        for (scheme, auth) in self.auth.clone() {
            self.write_auth(&scheme, &auth, now);
        }
        for (op, body) in self.watches.set_watches(&self.cfg.chroot, self.last_zxid) {
            self.write_frame(xid::SET_WATCHES, op, &body, now);
            let p = Pending { xid: xid::SET_WATCHES, op, sent: now, packet: None };
            self.pending.push_back(p);
        }
        // SASL next: ordinary requests wait for it [ClientCnxnSocketNIO.findSendablePacket].
        if let Some(login) = &self.cfg.sasl {
            let rng = &mut self.rng;
            let cnonce = crate::sasl::nonce(32, || rng.u64(..));
            let client = DigestMd5Client::new(&login.user, &login.password, cnonce);
            let first = client.initial();
            self.sasl = Some(client);
            self.write_sasl(first, now);
        }
        self.write_outgoing(now);
        Ok(())
    }

    fn write_sasl(&mut self, token: Vec<u8>, now: Instant) {
        let xid = self.next_xid;
        self.next_xid = next_xid(xid);
        let body = SaslToken { token: Some(token) }.to_bytes();
        self.write_frame(xid, OpCode::Sasl, &body, now);
        self.pending.push_back(Pending { xid, op: OpCode::Sasl, sent: now, packet: None });
    }

    /// The server's answer in the SASL exchange [ZooKeeperSaslClient.respondToServer].
    fn on_sasl_reply(&mut self, err: i32, body: &[u8], now: Instant) {
        let Some(mut client) = self.sasl.take() else { return };
        let step = if err != 0 {
            Err(format!("the server answered {}", Error::from_code(err)))
        } else {
            SaslToken::from_bytes(body)
                .map_err(|e| format!("bad SASL reply: {e}"))
                .and_then(|t| client.step(&t.token.unwrap_or_default()).map_err(|e| e.to_string()))
        };
        match step {
            Ok(Some(token)) => {
                self.sasl = Some(client);
                self.write_sasl(token, now);
            }
            Ok(None) => {
                log::info!(
                    "client: session {} authenticated with SASL (DIGEST-MD5)",
                    sid(self.session_id)
                );
                self.state_event(KeeperState::SaslAuthenticated);
                self.write_outgoing(now);
            }
            Err(why) => {
                log::error!("client: SASL authentication failed: {why}");
                self.terminate(State::AuthFailed, KeeperState::AuthFailed, || {
                    Error::Server(ErrorCode::AuthFailed)
                });
            }
        }
    }

    fn on_reply(&mut self, payload: &[u8], now: Instant) -> Result<(), String> {
        let mut r = Reader::new(payload);
        let hdr = ReplyHeader::decode(&mut r).map_err(|e| format!("bad reply header: {e}"))?;
        match hdr.xid {
            xid::PING => return Ok(()),
            xid::AUTH => {
                if hdr.err == ErrorCode::AuthFailed.code() {
                    log::warn!("client: authentication failed");
                    self.terminate(State::AuthFailed, KeeperState::AuthFailed, || {
                        Error::Server(ErrorCode::AuthFailed)
                    });
                }
                return Ok(());
            }
            xid::NOTIFICATION => {
                let ev =
                    WatcherEvent::decode(&mut r).map_err(|e| format!("bad notification: {e}"))?;
                self.on_notification(ev, hdr.zxid);
                return Ok(());
            }
            _ => {}
        }
        let Some(p) = self.pending.pop_front() else {
            return Err(format!("reply xid {} with nothing pending", hdr.xid));
        };
        if p.xid != hdr.xid {
            let msg = format!("xid mismatch: got {}, expected {}", hdr.xid, p.xid);
            self.pending.push_front(p);
            return Err(msg);
        }
        if hdr.zxid > 0 {
            self.last_zxid = hdr.zxid;
        }
        let Some(packet) = p.packet else {
            if p.op == OpCode::Sasl {
                self.on_sasl_reply(hdr.err, r.rest(), now);
            }
            return Ok(());
        };
        let result = if hdr.err == 0 {
            decode_reply(p.op, r.rest()).map_err(Error::Decode)
        } else if matches!(p.op, OpCode::Multi | OpCode::MultiRead) && r.remaining() > 0 {
            MultiResponse::from_bytes(r.rest()).map(Response::Multi).map_err(Error::Decode)
        } else {
            Err(Error::from_code(hdr.err))
        };
        self.finish_packet(packet, result);
        if p.op == OpCode::CloseSession {
            self.terminate(State::Closed, KeeperState::Closed, || Error::Closed);
        }
        Ok(())
    }

    fn on_notification(&mut self, ev: WatcherEvent, zxid: i64) {
        let Some(event_type) = EventType::from_i32(ev.event_type) else {
            log::warn!("client: unknown event type {}", ev.event_type);
            return;
        };
        let state = KeeperState::from_i32(ev.state).unwrap_or(KeeperState::SyncConnected);
        let path = self.cfg.chroot.to_client(&ev.path);
        let watchers = self.watches.materialize(event_type, &path);
        if watchers.is_empty() {
            return;
        }
        let event = WatchedEvent { event_type, state, path: Some(path), zxid };
        self.actions.push_back(Action::Deliver(EventItem::Event(event, watchers)));
    }

    fn finish_packet(&mut self, packet: Packet, result: Result<Response, Error>) {
        if let Some(w) = &packet.req.watch {
            match &result {
                Ok(_) => self.watches.register(w.kind, &w.path, w.watcher.clone()),
                Err(e) if packet.req.op == OpCode::Exists && e.code() == ErrorCode::NoNode => {
                    self.watches.register(WatchKind::Exist, &w.path, w.watcher.clone())
                }
                Err(_) => {}
            }
        }
        if result.is_ok() {
            if let Some(rm) = &packet.req.removal {
                self.remove_locally(&rm.path, rm.watcher_type, rm.watcher);
            }
        }
        self.complete(packet, result);
    }

    fn remove_locally(&mut self, path: &str, t: WatcherType, watcher: Option<u64>) {
        for removed in self.watches.remove(path, t, watcher) {
            let event = WatchedEvent {
                event_type: removed.event_type,
                state: KeeperState::SyncConnected,
                path: Some(path.to_owned()),
                zxid: -1,
            };
            let item = EventItem::Event(event, vec![removed.watcher]);
            self.actions.push_back(Action::Deliver(item));
        }
    }

    fn complete(&mut self, packet: Packet, result: Result<Response, Error>) {
        let f = packet.completion;
        let action = if packet.direct {
            Action::RunHere(f, result)
        } else {
            Action::Deliver(EventItem::Run(Box::new(move || f(result))))
        };
        self.actions.push_back(action);
    }

    // ----- writing -----

    fn write_frame(&mut self, xid: i32, op: OpCode, body: &[u8], now: Instant) {
        let Some(c) = self.conn.as_mut() else { return };
        let mut payload = RequestHeader { xid, op_type: op.code() }.to_bytes();
        payload.extend_from_slice(body);
        frame::write(&mut self.out, &payload);
        c.last_send = now;
    }

    fn write_auth(&mut self, scheme: &str, auth: &[u8], now: Instant) {
        let body =
            AuthPacket { auth_type: 0, scheme: scheme.to_owned(), auth: Some(auth.to_vec()) };
        self.write_frame(xid::AUTH, OpCode::Auth, &body.to_bytes(), now);
    }

    fn write_outgoing(&mut self, now: Instant) {
        if !self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected) || self.sasl.is_some() {
            return;
        }
        while let Some(mut p) = self.outgoing.pop_front() {
            let xid = self.next_xid;
            self.next_xid = next_xid(xid);
            let op = p.req.op;
            let body = std::mem::take(&mut p.req.body);
            self.write_frame(xid, op, &body, now);
            self.pending.push_back(Pending { xid, op, sent: now, packet: Some(p) });
        }
    }

    // ----- requests from the application -----

    /// Queues a request (sent at once when connected).
    pub(crate) fn submit(&mut self, p: Packet, now: Instant) {
        if self.finished {
            let err = self.final_error();
            self.complete(p, Err(err));
            return;
        }
        if self.closing.is_some() {
            self.complete(p, Err(Error::Closed));
            return;
        }
        if let Some(rm) = &p.req.removal {
            // The Java client checks its own table first: nothing there, nothing to ask.
            if !self.watches.contains(&rm.path, rm.watcher_type, rm.watcher) {
                self.complete(p, Err(Error::Server(ErrorCode::NoWatcher)));
                return;
            }
            if rm.local {
                let (path, t, w) = (rm.path.clone(), rm.watcher_type, rm.watcher);
                self.remove_locally(&path, t, w);
                self.complete(p, Ok(Response::Empty));
                return;
            }
        }
        self.outgoing.push_back(p);
        self.write_outgoing(now);
    }

    /// Remembers an auth pair and sends it now if connected (and after every reconnect).
    pub(crate) fn add_auth(&mut self, scheme: String, auth: Vec<u8>, now: Instant) {
        if self.finished {
            return;
        }
        if self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected) {
            self.write_auth(&scheme, &auth, now);
        }
        self.auth.push((scheme, auth));
    }

    /// Closes the session: closeSession when connected, then the end.
    pub(crate) fn close(&mut self, now: Instant) {
        if self.finished || self.closing.is_some() {
            return;
        }
        let connected = self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected);
        if !connected {
            self.terminate(State::Closed, KeeperState::Closed, || Error::Closed);
            return;
        }
        self.closing = Some(now + self.read_timeout().max(Duration::from_secs(1)));
        log::info!("client: closing session {}", sid(self.session_id));
        self.outgoing.push_back(Packet {
            req: Request::new(OpCode::CloseSession, Vec::new()),
            completion: Box::new(|_| {}),
            direct: true,
        });
        self.write_outgoing(now);
    }

    /// A probe found a read-write server: leave the read-only one and connect right away
    /// (the shell connects to that server next).
    pub(crate) fn found_read_write_server(&mut self, now: Instant) {
        self.connection_lost("switching to a read-write server", now);
        self.next_connect_at = now;
    }

    // ----- losing the connection and the end -----

    fn fail_all(&mut self, err: impl Fn() -> Error) {
        let pending: Vec<Pending> = self.pending.drain(..).collect();
        for p in pending {
            if let Some(packet) = p.packet {
                self.complete(packet, Err(err()));
            }
        }
        let outgoing: Vec<Packet> = self.outgoing.drain(..).collect();
        for p in outgoing {
            self.complete(p, Err(err()));
        }
    }

    /// The connection failed or broke (also a failed TCP connect): fail what was pending and
    /// reconnect after a random delay below a second.
    pub(crate) fn connection_lost(&mut self, reason: &str, now: Instant) {
        let Some(conn) = self.conn.take() else { return };
        log::info!("client: connection lost: {reason}");
        self.sasl = None;
        self.actions.push_back(Action::Disconnect);
        self.out.clear();
        self.fail_all(|| Error::ConnectionLoss);
        if self.closing.is_some() {
            self.terminate(State::Closed, KeeperState::Closed, || Error::Closed);
            return;
        }
        if conn.phase == Phase::Connected {
            self.state = State::Connecting;
            self.actions.push_back(Action::Publish);
            self.state_event(KeeperState::Disconnected);
        }
        let delay = self.rng.u64(0..RECONNECT_DELAY_MAX_MS.max(1));
        self.next_connect_at = now + Duration::from_millis(delay);
    }

    fn terminate(&mut self, state: State, ks: KeeperState, err: impl Fn() -> Error) {
        if self.conn.take().is_some() {
            self.actions.push_back(Action::Disconnect);
        }
        self.out.clear();
        self.sasl = None;
        self.closing = None;
        self.state = state;
        self.actions.push_back(Action::Publish);
        self.fail_all(err);
        self.state_event(ks);
        self.watches.clear();
        self.finished = true;
    }

    fn state_event(&mut self, ks: KeeperState) {
        let mut watchers = vec![self.cfg.default_watcher.clone()];
        for w in self.watches.all() {
            if w.id() != self.cfg.default_watcher.id() {
                watchers.push(w);
            }
        }
        let event = WatchedEvent { event_type: EventType::None, state: ks, path: None, zxid: -1 };
        self.actions.push_back(Action::Deliver(EventItem::Event(event, watchers)));
    }
}

/// The xid after `x`: 1..=i32::MAX, then back to 1 (negative xids are reserved).
pub(crate) fn next_xid(x: i32) -> i32 {
    if x == i32::MAX {
        1
    } else {
        x + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn core(timeout_ms: u64, t0: Instant) -> ClientCore {
        let cfg = CoreConfig {
            chroot: Chroot::default(),
            timeout: Duration::from_millis(timeout_ms),
            can_be_read_only: false,
            default_watcher: Watcher::new(|_| {}),
            session_id: 0,
            passwd: Vec::new(),
            request_timeout: None,
            host_count: 1,
            seed: 42,
            sasl: None,
        };
        ClientCore::new(cfg, t0)
    }

    /// Actions as short names; runs completions delivered to the event thread.
    fn drain(c: &mut ClientCore) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(a) = c.poll_action() {
            out.push(match a {
                Action::Connect => "connect".to_owned(),
                Action::Disconnect => "disconnect".to_owned(),
                Action::Publish => "publish".to_owned(),
                Action::ProbeReadWrite => "probe".to_owned(),
                Action::RunHere(f, r) => {
                    f(r);
                    "run-here".to_owned()
                }
                Action::Deliver(EventItem::Event(e, _)) => format!("event {:?}", e.state),
                Action::Deliver(EventItem::Run(f)) => {
                    f();
                    "completion".to_owned()
                }
                Action::Deliver(EventItem::Stop) => "stop".to_owned(),
            });
        }
        out
    }

    fn frames(c: &mut ClientCore) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        c.take_output(&mut buf);
        let mut out = Vec::new();
        let mut at = 0;
        while let frame::Frame::Complete { len } = frame::parse(&buf[at..], 1 << 20) {
            out.push(buf[at + 4..at + 4 + len].to_vec());
            at += 4 + len;
        }
        out
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame::write(&mut v, payload);
        v
    }

    fn connected(timeout_ms: u64, t0: Instant) -> ClientCore {
        let mut c = core(timeout_ms, t0);
        c.handle_timeout(t0);
        assert_eq!(drain(&mut c), vec!["connect"]);
        c.tcp_connected(t0);
        let req = ConnectRequest::from_bytes(&frames(&mut c)[0]).expect("ConnectRequest");
        assert_eq!(req.base.time_out, timeout_ms as i32);
        assert_eq!((req.base.session_id, req.read_only), (0, Some(false)));
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: timeout_ms as i32,
            session_id: 0x77,
            passwd: vec![1; 16],
            read_only: Some(false),
        };
        c.handle_input(&framed(&resp.to_bytes()), t0);
        assert_eq!(drain(&mut c), vec!["publish", "event SyncConnected"]);
        assert_eq!((c.state(), c.session_id()), (State::Connected, 0x77));
        c
    }

    #[test]
    fn handshake_establishes_the_session() {
        connected(30_000, Instant::now());
    }

    #[test]
    fn pings_when_idle_and_drops_a_silent_connection() {
        let t0 = Instant::now();
        let mut c = connected(3000, t0);
        // Read timeout 2 s, ping after 1 s of idle sending.
        c.handle_timeout(t0 + Duration::from_millis(999));
        assert!(frames(&mut c).is_empty());
        c.handle_timeout(t0 + Duration::from_millis(1000));
        let ping = frames(&mut c);
        let h = RequestHeader::from_bytes(&ping[0]).expect("ping header");
        assert_eq!((h.xid, h.op_type), (xid::PING, OpCode::Ping.code()));
        // A ping reply counts as hearing from the server.
        let pong = ReplyHeader { xid: xid::PING, zxid: 5, err: 0 }.to_bytes();
        c.handle_input(&framed(&pong), t0 + Duration::from_millis(1500));
        c.handle_timeout(t0 + Duration::from_millis(3000));
        assert!(drain(&mut c).is_empty());
        let t = t0 + Duration::from_millis(3500);
        c.handle_timeout(t);
        assert_eq!(drain(&mut c), vec!["disconnect", "publish", "event Disconnected"]);
        assert_eq!(c.state(), State::Connecting);
        assert!(c.poll_timeout(t) < t + Duration::from_millis(1000), "reconnect within 1 s");
        c.handle_timeout(t + Duration::from_millis(1000));
        assert_eq!(drain(&mut c), vec!["connect"]);
        c.tcp_connected(t + Duration::from_millis(1000));
        let req = ConnectRequest::from_bytes(&frames(&mut c)[0]).expect("ConnectRequest");
        assert_eq!((req.base.session_id, req.base.passwd), (0x77, Some(vec![1; 16])));
    }

    #[test]
    fn gives_up_when_nothing_is_heard_before_a_session_exists() {
        let t0 = Instant::now();
        let mut c = core(900, t0);
        c.handle_timeout(t0);
        assert_eq!(drain(&mut c), vec!["connect"]);
        c.connection_lost("refused", t0);
        assert_eq!(drain(&mut c), vec!["disconnect"]);
        c.handle_timeout(t0 + Duration::from_millis(1199));
        assert!(!c.is_finished());
        drain(&mut c);
        c.handle_timeout(t0 + Duration::from_millis(1200));
        assert!(c.is_finished());
        assert_eq!(c.state(), State::Closed);
        assert!(drain(&mut c).contains(&"event Closed".to_owned()));
    }

    #[test]
    fn xid_mismatch_fails_pending_requests_with_connection_loss() {
        let t0 = Instant::now();
        let mut c = connected(30_000, t0);
        let got: Arc<Mutex<Vec<ErrorCode>>> = Arc::default();
        for _ in 0..2 {
            let g = got.clone();
            let completion: Completion = Box::new(move |r| {
                if let Err(e) = r {
                    g.lock().expect("lock").push(e.code());
                }
            });
            let req = Request::new(OpCode::Sync, Vec::new());
            c.submit(Packet { req, completion, direct: false }, t0);
        }
        let sent = frames(&mut c);
        let xids: Vec<i32> =
            sent.iter().map(|f| RequestHeader::from_bytes(f).expect("header").xid).collect();
        assert_eq!(xids, vec![1, 2]);
        let wrong = ReplyHeader { xid: 2, zxid: 9, err: 0 }.to_bytes();
        c.handle_input(&framed(&wrong), t0);
        let actions = drain(&mut c);
        assert_eq!(actions[0], "disconnect");
        assert_eq!(*got.lock().expect("lock"), vec![ErrorCode::ConnectionLoss; 2]);
        assert_eq!(c.last_zxid(), 0, "a mismatched reply is not trusted");
    }

    #[test]
    fn xids_wrap_from_max_back_to_one() {
        assert_eq!(next_xid(1), 2);
        assert_eq!(next_xid(i32::MAX - 1), i32::MAX);
        assert_eq!(next_xid(i32::MAX), 1);
    }
}
