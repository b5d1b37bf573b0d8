//! The send thread [ClientCnxn.SendThread]: owns the TCP connection, the session, the
//! outgoing and pending queues and the watch registry.
//!
//! One thread, one mio `Poll` with two tokens: the socket and a `Waker` that other threads
//! ring after queueing a [`Command`]. It connects to the hosts in turn, performs the
//! handshake (ConnectRequest, then auth packets and setWatches re-arming the registry relative
//! to the last zxid seen), writes requests with xids 1..=i32::MAX (wrapping back to 1),
//! matches replies with the pending queue in order, pings when idle and reconnects with a
//! random delay below one second when the connection is lost. Everything the application must
//! hear (state events, watch events, completions) goes to the event thread in order.
//!
//! Invariants: the pending queue holds exactly the packets written on the current connection
//! and not yet answered, in xid order; nothing but the ConnectRequest is written before the
//! ConnectResponse arrives; the thread never blocks except in `poll` (and the short read-only
//! probe), and never runs application code except completions of blocking calls.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::event::EventItem;
use super::hosts::{HostList, Rng};
use super::request::{decode_reply, Request, Response};
use super::watches::{WatchKind, WatchRegistry};
use super::{Chroot, Error, Shared, State, WatchedEvent, Watcher};
use crate::jute::proto::{
    AuthPacket, ConnectRequest, ConnectRequestBase, ConnectResponse, MultiResponse, ReplyHeader,
    RequestHeader, WatcherEvent,
};
use crate::jute::{Jute, Reader};
use crate::proto::{frame, xid, ErrorCode, EventType, KeeperState, OpCode};

/// Token of the waker.
pub(crate) const WAKER: Token = Token(0);
const SOCKET: Token = Token(1);

/// Largest reply the client accepts [ClientCnxnSocket packetLen, jute.maxbuffer 0xfffff]
/// plus room for the reply header and Stat, so a maximal znode can still be read back.
const FRAME_BYTES_MAX: usize = 0xfffff + 1024;
/// Longest a connected client stays silent [ClientCnxn MAX_SEND_PING_INTERVAL].
const PING_INTERVAL_MAX: Duration = Duration::from_secs(10);
/// Upper bound of the random delay before a reconnect attempt [ClientCnxn.startConnect].
const RECONNECT_DELAY_MAX_MS: u64 = 1000;
/// Read-only probing interval bounds [ClientCnxn.pingRwServer].
const RO_PROBE_MIN: Duration = Duration::from_millis(100);
const RO_PROBE_MAX: Duration = Duration::from_secs(60);

/// Completion of one request; gets the decoded reply or the error.
pub(crate) type Completion = Box<dyn FnOnce(Result<Response, Error>) + Send>;

/// A request on its way: body, completion, and whether the completion may run right here.
pub(crate) struct Packet {
    pub req: Request,
    pub completion: Completion,
    /// Run the completion on the send thread: the caller is the event thread, blocked.
    pub direct: bool,
}

/// What other threads ask of the send thread.
pub(crate) enum Command {
    /// Queue a request.
    Submit(Packet),
    /// Remember an auth pair and send it now (and after every reconnect).
    AddAuth { scheme: String, auth: Vec<u8> },
    /// Close the session; `done` is dropped once the client is closed.
    Close { done: Sender<()> },
}

/// Settings fixed at construction.
pub(crate) struct SendConfig {
    pub hosts: HostList,
    pub chroot: Chroot,
    pub timeout: Duration,
    pub can_be_read_only: bool,
    pub default_watcher: Watcher,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub request_timeout: Option<Duration>,
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
    stream: TcpStream,
    addr: SocketAddr,
    phase: Phase,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    last_recv: Instant,
    last_send: Instant,
}

struct Pending {
    xid: i32,
    op: OpCode,
    sent: Instant,
    packet: Option<Packet>,
}

struct Closing {
    done: Vec<Sender<()>>,
    deadline: Instant,
}

/// Outcome of a pass over the socket.
enum Lost {
    /// Keep going.
    No,
    /// Drop the connection for this reason.
    Yes(String),
}

/// The send thread's state.
pub(crate) struct SendThread {
    poll: Poll,
    commands: Receiver<Command>,
    events: Sender<EventItem>,
    shared: Arc<Shared>,
    cfg: SendConfig,
    rng: Rng,
    addrs: VecDeque<SocketAddr>,
    preferred: Option<SocketAddr>,
    conn: Option<Conn>,
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
    first_connect: bool,
    last_heard: Instant,
    closing: Option<Closing>,
    ro_probe_at: Instant,
    ro_probe_interval: Duration,
    finished: bool,
}

impl SendThread {
    pub(crate) fn new(
        poll: Poll,
        commands: Receiver<Command>,
        events: Sender<EventItem>,
        shared: Arc<Shared>,
        cfg: SendConfig,
    ) -> SendThread {
        let now = Instant::now();
        let session_id = cfg.session_id;
        let passwd = if cfg.passwd.is_empty() { vec![0; 16] } else { cfg.passwd.clone() };
        let negotiated = cfg.timeout;
        SendThread {
            poll,
            commands,
            events,
            shared,
            rng: Rng::from_entropy(),
            addrs: VecDeque::new(),
            preferred: None,
            conn: None,
            state: State::Connecting,
            session_id,
            passwd,
            negotiated,
            last_zxid: 0,
            ro_only_session: false,
            outgoing: VecDeque::new(),
            pending: VecDeque::new(),
            auth: Vec::new(),
            watches: WatchRegistry::new(),
            next_xid: 1,
            next_connect_at: now,
            first_connect: true,
            last_heard: now,
            closing: None,
            ro_probe_at: now,
            ro_probe_interval: RO_PROBE_MIN,
            finished: false,
            cfg,
        }
    }

    /// The thread body: runs until the client is closed, expired or fails authentication.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(16);
        while !self.finished {
            let now = Instant::now();
            self.on_timers(now);
            if self.finished {
                break;
            }
            // A ping or a ConnectRequest written by the timers goes out before we sleep.
            self.flush();
            let wait = self.next_wakeup(now);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("client: poll failed: {e}");
                    self.terminate(State::Closed, KeeperState::Closed, || Error::Closed);
                    break;
                }
            }
            let mut socket_ready = false;
            for ev in events.iter() {
                if ev.token() == SOCKET {
                    socket_ready = true;
                }
            }
            if socket_ready {
                self.service_socket();
            }
            self.drain_commands();
            if self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected) {
                self.write_outgoing();
            }
            self.flush();
        }
        // Anything submitted after the end fails with the final error.
        let err = self.final_error();
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Submit(p) => self.complete(p, Err(err())),
                Command::AddAuth { .. } | Command::Close { .. } => {}
            }
        }
        let _ = self.events.send(EventItem::Stop);
    }

    fn final_error(&self) -> fn() -> Error {
        match self.state {
            State::Expired => || Error::Server(ErrorCode::SessionExpired),
            State::AuthFailed => || Error::Server(ErrorCode::AuthFailed),
            _ => || Error::Closed,
        }
    }

    // ----- timers -----

    fn read_timeout(&self) -> Duration {
        self.negotiated * 2 / 3
    }

    fn connect_timeout(&self) -> Duration {
        self.negotiated / self.cfg.hosts.len().max(1) as u32
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

    fn next_wakeup(&self, now: Instant) -> Duration {
        let mut at = now + Duration::from_secs(1);
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
        if let Some(c) = &self.closing {
            at = at.min(c.deadline);
        }
        if let (Some(t), Some(p)) = (self.cfg.request_timeout, self.pending.front()) {
            at = at.min(p.sent + t);
        }
        at.saturating_duration_since(now).max(Duration::from_millis(1))
    }

    fn on_timers(&mut self, now: Instant) {
        if self.closing.as_ref().is_some_and(|c| now >= c.deadline) {
            log::info!("client: session {} close timed out", super::sid(self.session_id));
            self.finish_close();
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
                self.connection_lost("request timed out".into(), true);
                return;
            }
        }
        let (phase, last_recv, last_send) = match &self.conn {
            None => {
                if self.closing.is_none() && now >= self.next_connect_at {
                    self.start_connect(now);
                }
                return;
            }
            Some(c) => (c.phase, c.last_recv, c.last_send),
        };
        if phase != Phase::Connected {
            if now.duration_since(last_recv) >= self.connect_timeout() {
                self.connection_lost("connect timeout".into(), false);
            }
            return;
        }
        if now.duration_since(last_recv) >= self.read_timeout() {
            let ms = now.duration_since(last_recv).as_millis();
            self.connection_lost(format!("nothing heard for {ms} ms"), false);
            return;
        }
        if now.duration_since(last_send) >= self.ping_interval() {
            self.write_frame(xid::PING, OpCode::Ping, &[]);
        }
        if self.state == State::ConnectedReadOnly && now >= self.ro_probe_at {
            self.probe_read_write_server(now);
        }
    }

    // ----- connecting -----

    fn start_connect(&mut self, now: Instant) {
        let addr = match self.preferred.take() {
            Some(a) => a,
            None => {
                if self.addrs.is_empty() {
                    self.addrs = self.cfg.hosts.next_addrs().into();
                }
                match self.addrs.pop_front() {
                    Some(a) => a,
                    None => {
                        self.schedule_reconnect(now);
                        return;
                    }
                }
            }
        };
        log::debug!("client: connecting to {addr}");
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                log::info!("client: connect to {addr} failed: {e}");
                self.schedule_reconnect(now);
                return;
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, SOCKET, interest) {
            log::warn!("client: cannot register socket: {e}");
            self.schedule_reconnect(now);
            return;
        }
        self.first_connect = false;
        self.conn = Some(Conn {
            stream,
            addr,
            phase: Phase::Connecting,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            last_recv: now,
            last_send: now,
        });
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        let delay = if self.first_connect && self.addrs.is_empty() {
            0
        } else {
            self.rng.below(RECONNECT_DELAY_MAX_MS)
        };
        self.next_connect_at = now + Duration::from_millis(delay);
    }

    fn on_tcp_connected(&mut self) {
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
            let _ = c.stream.set_nodelay(true);
            c.phase = Phase::Handshake;
            log::info!("client: socket connected to {}, sending ConnectRequest", c.addr);
            frame::write(&mut c.wbuf, &req.to_bytes());
        }
    }

    fn on_connect_response(&mut self, payload: &[u8]) -> Lost {
        let resp = match ConnectResponse::from_bytes(payload) {
            Ok(r) => r,
            Err(e) => return Lost::Yes(format!("bad ConnectResponse: {e}")),
        };
        if resp.time_out <= 0 {
            log::info!("client: session {} expired", super::sid(self.session_id));
            self.terminate(State::Expired, KeeperState::Expired, || {
                Error::Server(ErrorCode::SessionExpired)
            });
            return Lost::No;
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
        self.ro_probe_at = Instant::now() + self.ro_probe_interval;
        log::info!(
            "client: session {} established, negotiated timeout {} ms{}",
            super::sid(self.session_id),
            resp.time_out,
            if read_only { " (read-only)" } else { "" }
        );
        self.publish();
        let ks =
            if read_only { KeeperState::ConnectedReadOnly } else { KeeperState::SyncConnected };
        self.state_event(ks);
        if let Some(c) = self.conn.as_mut() {
            c.phase = Phase::Connected;
        }
        // Prime the connection: auth first, then watches, then queued requests
        // (wire-protocol.md §3.4).
        for (scheme, auth) in self.auth.clone() {
            self.write_auth(&scheme, &auth);
        }
        for (op, body) in self.watches.set_watches(&self.cfg.chroot, self.last_zxid) {
            self.write_frame(xid::SET_WATCHES, op, &body);
            self.pending.push_back(Pending {
                xid: xid::SET_WATCHES,
                op,
                sent: Instant::now(),
                packet: None,
            });
        }
        self.write_outgoing();
        Lost::No
    }

    // ----- socket I/O -----

    fn service_socket(&mut self) {
        let Some(c) = self.conn.as_mut() else { return };
        if c.phase == Phase::Connecting {
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    let msg = format!("connect to {} failed: {e}", c.addr);
                    self.connection_lost(msg, false);
                    return;
                }
            }
            match c.stream.peer_addr() {
                Ok(_) => self.on_tcp_connected(),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    let msg = format!("connect to {} failed: {e}", c.addr);
                    self.connection_lost(msg, false);
                    return;
                }
            }
        }
        if let Lost::Yes(reason) = self.read_socket() {
            self.connection_lost(reason, false);
        }
    }

    fn read_socket(&mut self) -> Lost {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let Some(c) = self.conn.as_mut() else { return Lost::No };
            match c.stream.read(&mut chunk) {
                Ok(0) => return Lost::Yes("server closed the connection".into()),
                Ok(n) => {
                    c.rbuf.extend_from_slice(&chunk[..n]);
                    c.last_recv = Instant::now();
                    self.last_heard = c.last_recv;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Lost::Yes(format!("read failed: {e}")),
            }
            if let Lost::Yes(r) = self.process_frames() {
                return Lost::Yes(r);
            }
        }
        self.process_frames()
    }

    fn process_frames(&mut self) -> Lost {
        let mut start = 0;
        let result = loop {
            let Some(c) = self.conn.as_ref() else { return Lost::No };
            let len = match frame::parse(&c.rbuf[start..], FRAME_BYTES_MAX) {
                frame::Frame::Incomplete => break Lost::No,
                frame::Frame::BadLength(n) => break Lost::Yes(format!("bad frame length {n}")),
                frame::Frame::Complete { len } => len,
            };
            let payload = c.rbuf[start + 4..start + 4 + len].to_vec();
            start += 4 + len;
            let phase = c.phase;
            let outcome = if phase == Phase::Connected {
                self.on_reply(&payload)
            } else {
                self.on_connect_response(&payload)
            };
            if let Lost::Yes(r) = outcome {
                break Lost::Yes(r);
            }
            if self.finished {
                break Lost::No;
            }
        };
        if let Some(c) = self.conn.as_mut() {
            c.rbuf.drain(..start.min(c.rbuf.len()));
        }
        result
    }

    fn on_reply(&mut self, payload: &[u8]) -> Lost {
        let mut r = Reader::new(payload);
        let hdr = match ReplyHeader::decode(&mut r) {
            Ok(h) => h,
            Err(e) => return Lost::Yes(format!("bad reply header: {e}")),
        };
        match hdr.xid {
            xid::PING => return Lost::No,
            xid::AUTH => {
                if hdr.err == ErrorCode::AuthFailed.code() {
                    log::warn!("client: authentication failed");
                    self.terminate(State::AuthFailed, KeeperState::AuthFailed, || {
                        Error::Server(ErrorCode::AuthFailed)
                    });
                }
                return Lost::No;
            }
            xid::NOTIFICATION => {
                let ev = match WatcherEvent::decode(&mut r) {
                    Ok(e) => e,
                    Err(e) => return Lost::Yes(format!("bad notification: {e}")),
                };
                self.on_notification(ev, hdr.zxid);
                return Lost::No;
            }
            _ => {}
        }
        let Some(p) = self.pending.pop_front() else {
            return Lost::Yes(format!("reply xid {} with nothing pending", hdr.xid));
        };
        if p.xid != hdr.xid {
            let msg = format!("xid mismatch: got {}, expected {}", hdr.xid, p.xid);
            self.pending.push_front(p);
            return Lost::Yes(msg);
        }
        if hdr.zxid > 0 {
            self.last_zxid = hdr.zxid;
            self.shared.last_zxid.store(hdr.zxid, std::sync::atomic::Ordering::Relaxed);
        }
        let Some(packet) = p.packet else { return Lost::No };
        let result = if hdr.err == 0 {
            decode_reply(p.op, r.rest()).map_err(Error::Decode)
        } else if matches!(p.op, OpCode::Multi | OpCode::MultiRead) && r.remaining() > 0 {
            MultiResponse::from_bytes(r.rest()).map(Response::Multi).map_err(Error::Decode)
        } else {
            Err(Error::from_code(hdr.err))
        };
        self.finish_packet(packet, result);
        if p.op == OpCode::CloseSession {
            self.finish_close();
        }
        Lost::No
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
        let _ = self.events.send(EventItem::Event(event, watchers));
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

    fn remove_locally(&mut self, path: &str, t: crate::proto::WatcherType, watcher: Option<u64>) {
        for removed in self.watches.remove(path, t, watcher) {
            let event = WatchedEvent {
                event_type: removed.event_type,
                state: KeeperState::SyncConnected,
                path: Some(path.to_owned()),
                zxid: -1,
            };
            let _ = self.events.send(EventItem::Event(event, vec![removed.watcher]));
        }
    }

    fn complete(&self, packet: Packet, result: Result<Response, Error>) {
        let f = packet.completion;
        if packet.direct {
            f(result);
        } else {
            let _ = self.events.send(EventItem::Run(Box::new(move || f(result))));
        }
    }

    fn write_frame(&mut self, xid: i32, op: OpCode, body: &[u8]) {
        let Some(c) = self.conn.as_mut() else { return };
        let mut payload = RequestHeader { xid, op_type: op.code() }.to_bytes();
        payload.extend_from_slice(body);
        frame::write(&mut c.wbuf, &payload);
        c.last_send = Instant::now();
    }

    fn write_auth(&mut self, scheme: &str, auth: &[u8]) {
        let body =
            AuthPacket { auth_type: 0, scheme: scheme.to_owned(), auth: Some(auth.to_vec()) };
        self.write_frame(xid::AUTH, OpCode::Auth, &body.to_bytes());
    }

    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = next_xid(x);
        x
    }

    fn write_outgoing(&mut self) {
        while let Some(mut p) = self.outgoing.pop_front() {
            let xid = self.take_xid();
            let op = p.req.op;
            let body = std::mem::take(&mut p.req.body);
            self.write_frame(xid, op, &body);
            self.pending.push_back(Pending { xid, op, sent: Instant::now(), packet: Some(p) });
        }
    }

    fn flush(&mut self) {
        let Some(c) = self.conn.as_mut() else { return };
        if c.phase == Phase::Connecting {
            return;
        }
        let mut lost = None;
        while c.wpos < c.wbuf.len() {
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => {
                    lost = Some("write returned 0".to_owned());
                    break;
                }
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    lost = Some(format!("write failed: {e}"));
                    break;
                }
            }
        }
        if c.wpos == c.wbuf.len() {
            c.wbuf.clear();
            c.wpos = 0;
        } else if c.wpos > 1 << 20 {
            c.wbuf.drain(..c.wpos);
            c.wpos = 0;
        }
        if let Some(reason) = lost {
            self.connection_lost(reason, false);
        }
    }

    // ----- commands -----

    fn drain_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            if self.finished {
                let err = self.final_error();
                if let Command::Submit(p) = cmd {
                    self.complete(p, Err(err()));
                }
                continue;
            }
            match cmd {
                Command::Submit(p) => self.submit(p),
                Command::AddAuth { scheme, auth } => {
                    if self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected) {
                        self.write_auth(&scheme, &auth);
                    }
                    self.auth.push((scheme, auth));
                }
                Command::Close { done } => self.close(done),
            }
        }
    }

    fn submit(&mut self, p: Packet) {
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
    }

    fn close(&mut self, done: Sender<()>) {
        if let Some(c) = self.closing.as_mut() {
            c.done.push(done);
            return;
        }
        let connected = self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected);
        self.closing = Some(Closing {
            done: vec![done],
            deadline: Instant::now() + self.read_timeout().max(Duration::from_secs(1)),
        });
        if !connected {
            self.finish_close();
            return;
        }
        log::info!("client: closing session {}", super::sid(self.session_id));
        self.outgoing.push_back(Packet {
            req: Request::new(OpCode::CloseSession, Vec::new()),
            completion: Box::new(|_| {}),
            direct: true,
        });
        self.write_outgoing();
    }

    fn finish_close(&mut self) {
        let done = self.closing.take().map(|c| c.done).unwrap_or_default();
        self.terminate(State::Closed, KeeperState::Closed, || Error::Closed);
        drop(done);
    }

    // ----- losing the connection and the end -----

    fn drop_conn(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

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

    fn connection_lost(&mut self, reason: String, timed_out: bool) {
        let was_connected = self.conn.as_ref().is_some_and(|c| c.phase == Phase::Connected);
        let addr = self.conn.as_ref().map(|c| c.addr);
        match addr {
            Some(a) => log::info!("client: connection to {a} lost: {reason}"),
            None => log::info!("client: connection lost: {reason}"),
        }
        self.drop_conn();
        if timed_out {
            if let Some(p) = self.pending.pop_front() {
                if let Some(packet) = p.packet {
                    self.complete(packet, Err(Error::Timeout));
                }
            }
        }
        self.fail_all(|| Error::ConnectionLoss);
        if self.closing.is_some() {
            self.finish_close();
            return;
        }
        if was_connected {
            self.state = State::Connecting;
            self.publish();
            self.state_event(KeeperState::Disconnected);
        }
        self.schedule_reconnect(Instant::now());
    }

    fn terminate(&mut self, state: State, ks: KeeperState, err: impl Fn() -> Error) {
        self.drop_conn();
        self.state = state;
        self.publish();
        self.fail_all(err);
        self.state_event(ks);
        self.watches.clear();
        self.finished = true;
    }

    fn state_event(&self, ks: KeeperState) {
        let mut watchers = vec![self.cfg.default_watcher.clone()];
        for w in self.watches.all() {
            if w.id() != self.cfg.default_watcher.id() {
                watchers.push(w);
            }
        }
        let event = WatchedEvent { event_type: EventType::None, state: ks, path: None, zxid: -1 };
        let _ = self.events.send(EventItem::Event(event, watchers));
    }

    fn publish(&self) {
        self.shared.update(|s| {
            s.state = self.state;
            s.session_id = self.session_id;
            s.passwd = self.passwd.clone();
            s.negotiated = self.negotiated;
        });
    }

    /// While on a read-only server, asks another host whether it is read-write ("isro"
    /// four-letter word) and switches to it if so [ClientCnxn.pingRwServer].
    fn probe_read_write_server(&mut self, now: Instant) {
        self.ro_probe_interval = (self.ro_probe_interval * 2).min(RO_PROBE_MAX);
        self.ro_probe_at = now + self.ro_probe_interval;
        let current = self.conn.as_ref().map(|c| c.addr);
        let Some(addr) = self.cfg.hosts.next_addrs().into_iter().next() else { return };
        if Some(addr) == current {
            return;
        }
        if probe_isro(addr).as_deref() == Some("rw") {
            log::info!("client: read-write server found at {addr}");
            self.preferred = Some(addr);
            self.connection_lost("switching to a read-write server".into(), false);
            self.next_connect_at = Instant::now();
        }
    }
}

fn probe_isro(addr: SocketAddr) -> Option<String> {
    let timeout = Duration::from_secs(1);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"isro").ok()?;
    let mut out = String::new();
    s.take(16).read_to_string(&mut out).ok()?;
    Some(out.trim().to_owned())
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

    #[test]
    fn xids_wrap_from_max_back_to_one() {
        assert_eq!(next_xid(1), 2);
        assert_eq!(next_xid(i32::MAX - 1), i32::MAX);
        assert_eq!(next_xid(i32::MAX), 1);
    }
}
