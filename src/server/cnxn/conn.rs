//! One client connection as a pure state machine (the protocol half of ZooKeeper's
//! `NIOServerCnxn`): bytes in, bytes out, and what the selector must do in between.
//!
//! It owns the receive and send buffers, frame assembly (length prefix, `jute.maxbuffer`,
//! a four-letter word as the first bytes), the handshake and session states, the decisions
//! of the handshake (refuse, new session, resume, ask the leader), when to stop reading
//! (back-pressure), when to close, and the per-connection statistics `cons` and `stat` show.
//!
//! It knows no socket, no clock (every call that needs the time takes `now`), no channel and
//! no shared state: the selector ([`super::Selector`]) moves bytes between it and a
//! [`super::transport::Transport`] and carries out the [`Event`]s it yields against the
//! session tracker and the pipeline. TLS plugs in under the transport, never here.
//!
//! ```text
//! Handshake --ConnectRequest--> AwaitSession --(session created / leader's answer)--> Established
//!     |                              |                                                   |
//!     +-- four-letter word ----------+-- refused / invalid session --> closing after flush
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jute::proto::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use crate::jute::Jute;
use crate::limits;
use crate::proto::frame::{self, Frame};
use crate::proto::{ErrorCode, OpCode};
use crate::server::acl::AuthInfo;
use crate::server::fourlw::ConnSummary;
use crate::server::session::password;
use crate::server::{ConnId, ServerMode};

/// Unsent output at which a connection's requests wait (and reading stops).
const OUTBOUND_PAUSE: usize = limits::OUTBOUND_BUFFERED_MAX_BYTES;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the ConnectRequest (or a four-letter word).
    Handshake,
    /// A session is being created, or the leader asked about a re-attach: nothing after the
    /// ConnectRequest is read until then.
    AwaitSession,
    /// Serving requests.
    Established,
}

/// What the selector must do after input ([`Connection::poll_event`]).
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The connection's first bytes were a four-letter word; `extra` followed it.
    FourLetter {
        /// The word.
        word: &'static str,
        /// What followed it (for `stmk`).
        extra: Vec<u8>,
    },
    /// A ConnectRequest arrived: decide with [`Connection::handshake`].
    Connect(ConnectRequest),
    /// An auth packet (opcode 100) with the request's xid and its body.
    Auth {
        /// The xid to echo.
        xid: i32,
        /// The AuthPacket record.
        body: Vec<u8>,
    },
    /// A request for the pipeline.
    Request {
        /// Its header.
        header: RequestHeader,
        /// The record after the header.
        body: Vec<u8>,
    },
    /// The peer broke the protocol: close now, logging `reason`.
    Close(String),
}

/// What the server knows when it decides about a handshake.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeFacts {
    /// The server's role.
    pub mode: ServerMode,
    /// The last zxid applied here.
    pub last_zxid: i64,
    /// `minSessionTimeout`, `maxSessionTimeout` in ms.
    pub timeouts_ms: (i32, i32),
}

/// The handshake's outcome (ZooKeeperServer.processConnectRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Refused: close without an answer, logging the reason.
    Refuse(String),
    /// A new session: create it (the selector gets its id from the tracker and calls
    /// [`Connection::await_session`]).
    NewSession {
        /// The negotiated timeout.
        timeout_ms: i32,
    },
    /// A re-attach to a session this server can check (the selector touches it in the tracker
    /// and calls [`Connection::resumed`]).
    Resume {
        /// The session.
        session: i64,
        /// The negotiated timeout.
        timeout_ms: i32,
    },
    /// A re-attach a learner must have the leader check (Learner.validateSession); the
    /// selector submits it and calls [`Connection::await_session`].
    AskLeader {
        /// The session.
        session: i64,
        /// The negotiated timeout.
        timeout_ms: i32,
    },
    /// A wrong password: the client is told the session expired.
    Invalid {
        /// The session asked for.
        session: i64,
    },
}

/// Per-connection statistics (`cons`, `stat`), reset by `crst`.
#[derive(Debug, Clone)]
struct Stats {
    recved: u64,
    sent: u64,
    lop: &'static str,
    lcxid: Option<i32>,
    lzxid: i64,
    lresp_ms: u64,
    llat: u64,
    minlat: u64,
    maxlat: u64,
    total_lat: u64,
    count_lat: u64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            recved: 0,
            sent: 0,
            lop: "NA",
            lcxid: None,
            lzxid: -1,
            lresp_ms: 0,
            llat: 0,
            minlat: 0,
            maxlat: 0,
            total_lat: 0,
            count_lat: 0,
        }
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    id: ConnId,
    peer: SocketAddr,
    max_frame: usize,
    inbuf: Vec<u8>,
    /// Frames to send, owned as they came (no copy per reply); `out_pos` bytes of the front
    /// one are sent, `out_bytes` are unsent in all.
    out: VecDeque<Vec<u8>>,
    out_pos: usize,
    out_bytes: usize,
    state: State,
    session: i64,
    timeout_ms: i32,
    /// The ConnectRequest carried the readOnly flag (so answers carry it too).
    new_protocol: bool,
    auth: Arc<AuthInfo>,
    accepted: Instant,
    last_recv: Instant,
    close_after_flush: bool,
    /// A four-letter word is being answered (off the selector thread): nothing more is read,
    /// and the connection closes once the answer is sent.
    answering: bool,
    stats: Stats,
    /// Requests in the pipeline: when read, xid, op abbreviation, request bytes.
    pending: VecDeque<(Instant, i32, &'static str, usize)>,
    /// Request bytes in the pipeline.
    pending_bytes: usize,
    established_ms: i64,
}

/// Why an addauth is refused before its provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityLimit {
    /// The connection would hold more than [`limits::AUTH_IDS_MAX`] identities.
    TooMany,
    /// An identity is longer than [`limits::AUTH_ID_BYTES_MAX`].
    TooLong,
}

impl Connection {
    /// A connection accepted from `peer` at `now` (`wall_ms` for `cons`), accepting frames
    /// up to `max_frame` bytes.
    pub fn new(
        id: ConnId,
        peer: SocketAddr,
        max_frame: usize,
        now: Instant,
        wall_ms: i64,
    ) -> Connection {
        Connection {
            id,
            peer,
            max_frame,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            out_pos: 0,
            out_bytes: 0,
            state: State::Handshake,
            session: 0,
            timeout_ms: 0,
            new_protocol: false,
            auth: Arc::new(AuthInfo::for_address(peer.ip())),
            accepted: now,
            last_recv: now,
            close_after_flush: false,
            answering: false,
            stats: Stats::default(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            established_ms: wall_ms,
        }
    }

    /// Its id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The remote address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The session (0 before the handshake).
    pub fn session(&self) -> i64 {
        self.session
    }

    /// The negotiated session timeout.
    pub fn timeout_ms(&self) -> i32 {
        self.timeout_ms
    }

    /// The identities requests carry.
    pub fn auth(&self) -> &Arc<AuthInfo> {
        &self.auth
    }

    // ---- bytes in ----

    /// Bytes read from the peer at `now`.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if self.close_after_flush || self.answering {
            return;
        }
        self.inbuf.extend_from_slice(bytes);
        self.last_recv = now;
    }

    /// The next thing the selector must do about buffered input, if any. While a session is
    /// awaited, once the connection is closing, or while it is over a per-connection limit
    /// (requests or request bytes in the pipeline, unsent output: checked before every
    /// request, not once per read), nothing more is parsed.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.close_after_flush || self.answering {
            self.inbuf.clear();
            return None;
        }
        if self.state == State::AwaitSession || self.over_limits(OUTBOUND_PAUSE) {
            return None;
        }
        if self.state == State::Handshake && self.stats.recved == 0 {
            if let Some(word) = frame::four_letter_word(&self.inbuf) {
                let extra = self.inbuf.split_off(4);
                self.inbuf.clear();
                // The command is the connection's one received packet, as ZooKeeper counts.
                self.stats.recved += 1;
                self.answering = true;
                return Some(Event::FourLetter { word, extra });
            }
        }
        let len = match frame::parse(&self.inbuf, self.max_frame) {
            Frame::Incomplete => return None,
            Frame::BadLength(len) => {
                return Some(self.fail(format!(
                    "frame length {len} out of range (jute.maxbuffer {})",
                    self.max_frame
                )))
            }
            Frame::Complete { len } => len,
        };
        let payload: Vec<u8> = self.inbuf[4..4 + len].to_vec();
        self.inbuf.drain(..4 + len);
        self.stats.recved += 1;
        if self.state == State::Handshake {
            return Some(match ConnectRequest::from_bytes(&payload) {
                Ok(req) => Event::Connect(req),
                Err(e) => self.fail(format!("bad ConnectRequest: {e}")),
            });
        }
        let mut reader = crate::jute::Reader::new(&payload);
        let header = match RequestHeader::decode(&mut reader) {
            Ok(h) => h,
            Err(e) => return Some(self.fail(format!("bad request header: {e}"))),
        };
        let body = reader.rest().to_vec();
        if header.op_type == OpCode::Auth.code() {
            return Some(Event::Auth { xid: header.xid, body });
        }
        Some(Event::Request { header, body })
    }

    fn fail(&mut self, reason: String) -> Event {
        self.close_after_flush = true;
        self.inbuf.clear();
        Event::Close(reason)
    }

    /// Whether the selector should read more from the peer: not while it is closing, while
    /// its unsent output is above `out_limit` bytes or it is over its in-flight limits, while
    /// a frame's worth is buffered and cannot be handled yet (a session is awaited), or, once
    /// established, while the server is throttled.
    pub fn wants_read(&self, out_limit: usize, throttled: bool) -> bool {
        if self.close_after_flush || self.answering || self.over_limits(out_limit) {
            return false;
        }
        match self.state {
            State::AwaitSession => self.inbuf.len() <= self.max_frame,
            State::Established => !throttled && self.inbuf.len() <= self.max_frame + 4,
            State::Handshake => true,
        }
    }

    /// Whether requests must wait: too many or too many bytes of them in the pipeline, or
    /// more than `out_limit` unsent output bytes.
    fn over_limits(&self, out_limit: usize) -> bool {
        self.pending.len() >= limits::CNXN_REQUESTS_IN_FLIGHT_MAX
            || self.pending_bytes >= limits::CNXN_REQUEST_BYTES_IN_FLIGHT_MAX
            || self.pending_out() > out_limit
    }

    /// Whether the unsent output is past [`limits::CNXN_OUTBOUND_CLOSE_BYTES`]: the selector
    /// closes the connection.
    pub fn output_overflow(&self) -> bool {
        self.pending_out() > limits::CNXN_OUTBOUND_CLOSE_BYTES
    }

    /// Whether input is buffered that can be handled now (after a limit cleared).
    pub fn has_input(&self) -> bool {
        !self.inbuf.is_empty() && !self.close_after_flush
    }

    // ---- the handshake ----

    /// Decides about a ConnectRequest (ZooKeeperServer.processConnectRequest); the selector
    /// carries the outcome out. Refusals and invalid sessions close the connection.
    pub fn handshake(&mut self, req: &ConnectRequest, facts: &HandshakeFacts) -> Handshake {
        match facts.mode {
            ServerMode::NotServing => {
                self.close_after_flush = true;
                return Handshake::Refuse("not serving (no quorum)".into());
            }
            ServerMode::ReadOnly if req.read_only != Some(true) => {
                self.close_after_flush = true;
                return Handshake::Refuse(
                    "a not-read-only client asks a read-only server for a session".into(),
                );
            }
            _ => {}
        }
        if req.base.last_zxid_seen > facts.last_zxid {
            self.close_after_flush = true;
            return Handshake::Refuse(format!(
                "the client has seen zxid 0x{:x}, our last zxid is 0x{:x}; client must try \
                 another server",
                req.base.last_zxid_seen, facts.last_zxid
            ));
        }
        let (min, max) = facts.timeouts_ms;
        let timeout_ms = req.base.time_out.clamp(min, max);
        self.timeout_ms = timeout_ms;
        self.new_protocol = req.read_only.is_some();
        let session = req.base.session_id;
        if session == 0 {
            return Handshake::NewSession { timeout_ms };
        }
        if req.base.passwd.as_deref() != Some(&password(session)[..]) {
            let f = connect_response(false, session, timeout_ms, self.read_only_flag(false));
            self.queue(f);
            self.reject_session();
            return Handshake::Invalid { session };
        }
        if matches!(facts.mode, ServerMode::Follower | ServerMode::Observer) {
            Handshake::AskLeader { session, timeout_ms }
        } else {
            Handshake::Resume { session, timeout_ms }
        }
    }

    /// A session (new, or asked about at the leader) is awaited: nothing after the
    /// ConnectRequest is read until [`Connection::established`] or
    /// [`Connection::revalidated`].
    pub fn await_session(&mut self, session: i64) {
        self.session = session;
        self.state = State::AwaitSession;
    }

    /// The new session exists: `frame` is its ConnectResponse.
    pub fn established(&mut self, session: i64, frame: Vec<u8>) -> bool {
        if self.session != session || self.state != State::AwaitSession {
            return false;
        }
        self.state = State::Established;
        self.stats.lop = "SESS";
        self.queue(frame);
        true
    }

    /// A re-attach checked here: `valid` if the tracker knew the session (touched).
    pub fn resumed(&mut self, session: i64, valid: bool) {
        if valid {
            self.session = session;
            self.state = State::Established;
            self.stats.lop = "SESS";
        } else {
            self.close_after_flush = true;
        }
        let f = connect_response(valid, session, self.timeout_ms, self.read_only_flag(false));
        self.queue(f);
    }

    /// The leader's answer about a re-attach this connection waits for; false if it was not
    /// waiting for that session.
    pub fn revalidated(&mut self, session: i64, valid: bool) -> bool {
        if self.session != session || self.state != State::AwaitSession {
            return false;
        }
        let f = connect_response(valid, session, self.timeout_ms, self.read_only_flag(false));
        self.queue(f);
        if valid {
            self.state = State::Established;
            self.stats.lop = "SESS";
        } else {
            // As if the handshake had failed here: no session to clean up.
            self.state = State::Handshake;
            self.session = 0;
            self.reject_session();
        }
        true
    }

    fn reject_session(&mut self) {
        self.close_after_flush = true;
        self.inbuf.clear();
    }

    /// The `readOnly` field of this connection's ConnectResponses (only when it sent one).
    pub fn read_only_flag(&self, read_only: bool) -> Option<bool> {
        self.new_protocol.then_some(read_only)
    }

    /// Whether the ConnectRequest carried the readOnly flag.
    pub fn new_protocol(&self) -> bool {
        self.new_protocol
    }

    // ---- requests and replies ----

    /// A request of `bytes` of this connection entered the pipeline (its answer will come
    /// back in order).
    pub fn submitted(&mut self, xid: i32, op: Option<OpCode>, bytes: usize, now: Instant) {
        self.pending.push_back((now, xid, op.map_or("UNKN", short_op_name), bytes));
        self.pending_bytes += bytes;
    }

    /// Requests of this connection in the pipeline.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Adds identities after a successful auth packet (duplicates are ignored), unless the
    /// connection would then hold too many or one is too long.
    pub fn add_identities(&mut self, ids: Vec<crate::jute::data::Id>) -> Result<(), IdentityLimit> {
        if ids.iter().any(|i| i.scheme.len() + i.id.len() > limits::AUTH_ID_BYTES_MAX) {
            return Err(IdentityLimit::TooLong);
        }
        let new: Vec<_> = ids.into_iter().filter(|id| !self.auth.ids.contains(id)).collect();
        if new.is_empty() {
            return Ok(());
        }
        if self.auth.ids.len() + new.len() > limits::AUTH_IDS_MAX {
            return Err(IdentityLimit::TooMany);
        }
        let mut a = (*self.auth).clone();
        a.ids.extend(new);
        self.auth = Arc::new(a);
        Ok(())
    }

    /// Answers an auth packet with `err` (AUTHFAILED closes the connection after the reply).
    pub fn auth_answer(&mut self, xid: i32, err: ErrorCode) {
        if err != ErrorCode::Ok {
            self.close_after_flush = true;
        }
        let mut f = Vec::new();
        frame::write(&mut f, &ReplyHeader { xid, zxid: 0, err: err.code() }.to_bytes());
        self.queue(f);
    }

    /// Answers a SASL request (xid echoed, zxid 0, SetSASLResponse); an error closes the
    /// connection once the reply is out, as Apache's processSasl does.
    pub fn sasl_answer(&mut self, xid: i32, err: ErrorCode, token: Option<Vec<u8>>) {
        if err != ErrorCode::Ok {
            self.close_after_flush = true;
        }
        let mut body = ReplyHeader { xid, zxid: 0, err: err.code() }.to_bytes();
        body.extend_from_slice(&crate::jute::proto::SaslToken { token }.to_bytes());
        let mut f = Vec::new();
        frame::write(&mut f, &body);
        self.queue(f);
    }

    /// The reply to this connection's oldest request in the pipeline, at `now` (`mono_ms`:
    /// the server's clock for `cons`); returns that request's size in bytes.
    pub fn reply(&mut self, frame: Vec<u8>, close: bool, now: Instant, mono_ms: u64) -> usize {
        let s = &mut self.stats;
        let mut answered = 0;
        if let Some((at, xid, lop, bytes)) = self.pending.pop_front() {
            answered = bytes;
            self.pending_bytes -= bytes;
            let lat = now.saturating_duration_since(at).as_millis() as u64;
            s.lop = lop;
            s.lcxid = Some(xid);
            s.llat = lat;
            s.minlat = if s.count_lat == 0 { lat } else { s.minlat.min(lat) };
            s.maxlat = s.maxlat.max(lat);
            s.total_lat += lat;
            s.count_lat += 1;
        }
        if frame.len() >= 16 {
            let mut z = [0u8; 8];
            z.copy_from_slice(&frame[8..16]);
            s.lzxid = i64::from_be_bytes(z);
        }
        s.lresp_ms = mono_ms;
        self.queue(frame);
        if close {
            self.close_after_flush = true;
        }
        answered
    }

    /// Bytes received and not yet parsed into events.
    pub fn input_bytes(&self) -> usize {
        self.inbuf.len()
    }

    /// Sizes of this connection's requests still in the pipeline.
    pub fn pending_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.pending.iter().map(|p| p.3)
    }

    /// The length of the frame being received, once its 4-byte length has arrived; `None`
    /// for the first bytes of a connection (a ConnectRequest or a four-letter word).
    pub fn incoming_frame_len(&self) -> Option<usize> {
        if self.inbuf.len() < 4
            || self.stats.recved == 0
            || self.answering
            || self.close_after_flush
        {
            return None;
        }
        let len = i32::from_be_bytes([self.inbuf[0], self.inbuf[1], self.inbuf[2], self.inbuf[3]]);
        usize::try_from(len).ok()
    }

    /// A watch notification.
    pub fn event(&mut self, frame: Vec<u8>) {
        self.queue(frame);
    }

    /// A four-letter word's answer (the connection closes once it is sent).
    pub fn four_letter_answer(&mut self, text: Vec<u8>) {
        self.push(text);
        self.answering = false;
        self.close_after_flush = true;
    }

    fn queue(&mut self, frame: Vec<u8>) {
        self.push(frame);
        self.stats.sent += 1;
    }

    fn push(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.out_bytes += bytes.len();
            self.out.push_back(bytes);
        }
    }

    // ---- bytes out ----

    /// What is waiting to be sent, as up to `max` slices (for one vectored write).
    pub fn output<'a>(&'a self, slices: &mut Vec<std::io::IoSlice<'a>>, max: usize) {
        slices.clear();
        for (i, f) in self.out.iter().take(max).enumerate() {
            let from = if i == 0 { self.out_pos } else { 0 };
            slices.push(std::io::IoSlice::new(&f[from..]));
        }
    }

    /// `n` bytes of [`Connection::output`] were sent.
    pub fn sent(&mut self, mut n: usize) {
        n = n.min(self.out_bytes);
        self.out_bytes -= n;
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let left = front.len() - self.out_pos;
            if n < left {
                self.out_pos += n;
                return;
            }
            n -= left;
            self.out.pop_front();
            self.out_pos = 0;
        }
    }

    /// Unsent output bytes.
    pub fn pending_out(&self) -> usize {
        self.out_bytes
    }

    /// Whether the connection is to be closed now: it asked to close and everything is sent.
    pub fn done(&self) -> bool {
        self.close_after_flush && self.pending_out() == 0
    }

    // ---- time ----

    /// Whether the connection is to be closed as idle at `now`: a handshake not completed
    /// within `sessionless` of the accept, however many bytes trickled in meanwhile
    /// (`zookeeper.nio.sessionlessCnxnTimeout`), or a session silent for longer than its
    /// timeout. A session whose reads are paused by back-pressure is not idle.
    pub fn idle(&self, now: Instant, sessionless: Duration, reads_paused: bool) -> bool {
        match self.state {
            State::Handshake => now.saturating_duration_since(self.accepted) > sessionless,
            _ => {
                let limit = Duration::from_millis(self.timeout_ms.max(0) as u64);
                !reads_paused && now.saturating_duration_since(self.last_recv) > limit
            }
        }
    }

    /// How long it has been silent.
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_recv)
    }

    // ---- statistics ----

    /// Resets the statistics (`crst`).
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    /// The `cons` line's facts; `interest` as the selector registered the connection.
    pub fn summary(&self, interest: u32, now: Instant) -> ConnSummary {
        let s = &self.stats;
        ConnSummary {
            peer: self.peer,
            interest,
            queued: self.pending.len(),
            recved: s.recved,
            sent: s.sent,
            session: (self.state != State::Handshake).then_some(self.session),
            lop: s.lop,
            established_ms: self.established_ms,
            timeout_ms: self.timeout_ms,
            lcxid: s.lcxid,
            lzxid: s.lzxid,
            lresp_ms: s.lresp_ms,
            llat: s.llat,
            minlat: s.minlat,
            avglat: s.total_lat.checked_div(s.count_lat).unwrap_or(0),
            maxlat: s.maxlat,
            expires_in: Duration::from_millis(self.timeout_ms.max(0) as u64)
                .saturating_sub(self.silent_for(now)),
        }
    }
}

/// A ConnectResponse frame: the session and its negotiated timeout, or (not `valid`) the
/// expired answer ZooKeeper sends (timeout 0, session 0, a zero password).
pub fn connect_response(valid: bool, id: i64, timeout: i32, read_only: Option<bool>) -> Vec<u8> {
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

/// `cons`'s abbreviation of an op [Request.op2String].
pub fn short_op_name(op: OpCode) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::proto::ConnectRequestBase;

    fn out(c: &Connection) -> Vec<u8> {
        let mut slices = Vec::new();
        c.output(&mut slices, usize::MAX);
        slices.iter().flat_map(|s| s.iter().copied()).collect()
    }

    fn conn() -> (Connection, Instant) {
        let now = Instant::now();
        (Connection::new(7, "127.0.0.1:5000".parse().unwrap(), 1024, now, 0), now)
    }

    fn connect_frame(session: i64, passwd: Option<Vec<u8>>, read_only: Option<bool>) -> Vec<u8> {
        let req = ConnectRequest {
            base: ConnectRequestBase {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30_000,
                session_id: session,
                passwd,
            },
            read_only,
        };
        let mut f = Vec::new();
        frame::write(&mut f, &req.to_bytes());
        f
    }

    fn facts(mode: ServerMode) -> HandshakeFacts {
        HandshakeFacts { mode, last_zxid: 5, timeouts_ms: (4000, 20_000) }
    }

    fn request_frame(xid: i32, op: OpCode, body: &[u8]) -> Vec<u8> {
        let mut payload = RequestHeader { xid, op_type: op.code() }.to_bytes();
        payload.extend_from_slice(body);
        let mut f = Vec::new();
        frame::write(&mut f, &payload);
        f
    }

    #[test]
    fn frames_are_assembled_across_reads_and_requests_wait_for_the_session() {
        let (mut c, now) = conn();
        let f = connect_frame(0, None, Some(false));
        c.receive(&f[..3], now);
        assert_eq!(c.poll_event(), None);
        c.receive(&f[3..], now);
        // A request pipelined behind the ConnectRequest.
        c.receive(&request_frame(1, OpCode::GetData, b"x"), now);
        let Some(Event::Connect(req)) = c.poll_event() else { panic!("connect") };
        assert_eq!(
            c.handshake(&req, &facts(ServerMode::Standalone)),
            Handshake::NewSession { timeout_ms: 20_000 }
        );
        c.await_session(0x55);
        assert_eq!(c.poll_event(), None, "nothing is read while the session is created");
        assert!(c.established(0x55, b"resp".to_vec()));
        assert_eq!(out(&c), b"resp");
        match c.poll_event() {
            Some(Event::Request { header, body }) => {
                assert_eq!((header.xid, body.as_slice()), (1, &b"x"[..]))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_four_letter_word_only_as_the_first_bytes() {
        let (mut c, now) = conn();
        c.receive(b"stmk\0\0\0\0\0\0\0\x01", now);
        assert_eq!(
            c.poll_event(),
            Some(Event::FourLetter { word: "stmk", extra: vec![0, 0, 0, 0, 0, 0, 0, 1] })
        );
        c.four_letter_answer(b"ok\n".to_vec());
        assert!(!c.done());
        c.sent(3);
        assert!(c.done());
    }

    #[test]
    fn bad_frames_close_and_stop_parsing() {
        let (mut c, now) = conn();
        c.receive(&[0, 0, 0x10, 0], now);
        assert!(matches!(c.poll_event(), Some(Event::Close(r)) if r.contains("out of range")));
        assert_eq!(c.poll_event(), None);
        assert!(c.done());
        let (mut c, now) = conn();
        c.receive(&[0, 0, 0, 2, 1, 2], now);
        assert!(matches!(c.poll_event(), Some(Event::Close(r)) if r.contains("ConnectRequest")));
    }

    #[test]
    fn handshake_decisions_follow_the_server_role() {
        let (mut c, _) = conn();
        let good = Some(password(9).to_vec());
        let req = |s, p: Option<Vec<u8>>, ro| match ConnectRequest::from_bytes(
            &connect_frame(s, p, ro)[4..],
        ) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let r = req(9, good.clone(), None);
        assert!(matches!(c.handshake(&r, &facts(ServerMode::NotServing)), Handshake::Refuse(_)));
        let (mut c, _) = conn();
        let ro = facts(ServerMode::ReadOnly);
        assert!(matches!(c.handshake(&r, &ro), Handshake::Refuse(_)));
        let (mut c, _) = conn();
        let resume = Handshake::Resume { session: 9, timeout_ms: 20_000 };
        assert_eq!(c.handshake(&r, &facts(ServerMode::Leader)), resume);
        let (mut c, _) = conn();
        let ask = Handshake::AskLeader { session: 9, timeout_ms: 20_000 };
        assert_eq!(c.handshake(&r, &facts(ServerMode::Observer)), ask);
        let (mut c, _) = conn();
        let bad = req(9, Some(vec![1; 16]), None);
        assert_eq!(
            c.handshake(&bad, &facts(ServerMode::Leader)),
            Handshake::Invalid { session: 9 }
        );
        assert_eq!(out(&c), connect_response(false, 9, 0, None));
        let mut seen = req(0, None, None);
        seen.base.last_zxid_seen = 6;
        let (mut c, _) = conn();
        assert!(matches!(c.handshake(&seen, &facts(ServerMode::Standalone)), Handshake::Refuse(_)));
    }

    #[test]
    fn a_refused_revalidation_answers_expired_and_closes() {
        let (mut c, _) = conn();
        c.await_session(9);
        assert!(!c.revalidated(8, true), "another session's answer is not ours");
        assert!(c.revalidated(9, false));
        assert_eq!(c.state(), State::Handshake);
        assert_eq!(out(&c), connect_response(false, 9, 0, None));
        c.sent(c.pending_out());
        assert!(c.done());
    }

    #[test]
    fn back_pressure_decisions() {
        let (mut c, now) = conn();
        assert!(c.wants_read(10, true), "handshakes go on while the server is throttled");
        c.await_session(1);
        c.receive(&[0; 2000], now);
        assert!(!c.wants_read(10, false), "a frame's worth is buffered behind the handshake");
        let (mut c, _) = conn();
        c.await_session(1);
        c.established(1, vec![0; 20]);
        assert!(!c.wants_read(10, false), "unsent output above the limit");
        c.sent(15);
        assert!(c.wants_read(10, false));
        assert!(!c.wants_read(10, true));
    }

    #[test]
    fn requests_wait_while_the_connection_is_over_its_in_flight_limit() {
        let (mut c, now) = conn();
        c.await_session(1);
        c.established(1, Vec::new());
        c.sent(c.pending_out());
        for xid in 0..limits::CNXN_REQUESTS_IN_FLIGHT_MAX as i32 {
            c.submitted(xid, Some(OpCode::GetData), 20, now);
        }
        c.receive(&request_frame(9999, OpCode::GetData, b"x"), now);
        assert_eq!(c.poll_event(), None, "checked per request");
        assert!(!c.wants_read(usize::MAX, false));
        let mut reply = ReplyHeader { xid: 0, zxid: 1, err: 0 }.to_bytes();
        reply.splice(0..0, [0, 0, 0, 16]);
        c.reply(reply, false, now, 0);
        assert!(c.has_input());
        assert!(matches!(c.poll_event(), Some(Event::Request { .. })));
    }

    #[test]
    fn identities_are_bounded_in_number_and_size() {
        let (mut c, _) = conn();
        let id = |i: usize| crate::jute::data::Id::new("digest", &format!("u{i}:h"));
        let long = crate::jute::data::Id::new("digest", &"x".repeat(limits::AUTH_ID_BYTES_MAX));
        assert_eq!(c.add_identities(vec![long]), Err(IdentityLimit::TooLong));
        for i in 1..limits::AUTH_IDS_MAX {
            assert_eq!(c.add_identities(vec![id(i)]), Ok(()));
        }
        // A duplicate is no new identity.
        assert_eq!(c.add_identities(vec![id(1)]), Ok(()));
        assert_eq!(c.add_identities(vec![id(0)]), Err(IdentityLimit::TooMany));
        assert_eq!(c.auth().ids.len(), limits::AUTH_IDS_MAX);
    }

    #[test]
    fn unread_output_past_the_limit_overflows() {
        let (mut c, _) = conn();
        c.event(vec![0; limits::CNXN_OUTBOUND_CLOSE_BYTES]);
        assert!(!c.output_overflow());
        c.event(vec![0]);
        assert!(c.output_overflow());
    }

    #[test]
    fn replies_update_the_statistics_in_order() {
        let (mut c, now) = conn();
        c.submitted(3, Some(OpCode::GetData), 10, now);
        c.submitted(4, Some(OpCode::Create), 10, now);
        let mut reply = ReplyHeader { xid: 3, zxid: 0x42, err: 0 }.to_bytes();
        reply.splice(0..0, [0, 0, 0, 16]);
        c.reply(reply, false, now + Duration::from_millis(7), 99);
        let s = c.summary(1, now);
        assert_eq!((s.lop, s.lcxid, s.lzxid, s.llat, s.queued), ("GETD", Some(3), 0x42, 7, 1));
        c.reset_stats();
        assert_eq!(c.summary(1, now).lop, "NA");
    }

    #[test]
    fn idle_timers() {
        let (mut c, now) = conn();
        let later = now + Duration::from_secs(11);
        // A handshake has 10 s from the accept, however many bytes trickle in meanwhile.
        c.receive(&[0], now + Duration::from_secs(9));
        assert!(c.idle(later, Duration::from_secs(10), false));
        assert!(c.idle(later, Duration::from_secs(10), true));
        assert!(!c.idle(now + Duration::from_secs(9), Duration::from_secs(10), false));
        // Once a session is attached, its timeout is the limit.
        c.timeout_ms = 20_000;
        c.resumed(5, true);
        assert!(!c.idle(later, Duration::from_secs(10), false));
        assert!(c.idle(now + Duration::from_secs(30), Duration::from_secs(10), false));
    }
}
