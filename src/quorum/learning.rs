//! FOLLOWING and OBSERVING: the shell around the [`Learner`] core (ZooKeeper's `Learner`,
//! `Follower`, `Observer` and their request processors).
//!
//! Until UPTODATE the learner thread does everything itself: it loads a streamed snapshot,
//! truncates, logs and fsyncs, applies and snapshots, in the order the core asks. At UPTODATE
//! it starts the client pipeline:
//!
//! ```text
//! cnxn -> learner thread --REQUEST--> leader          (writes, sync, createSession, close)
//!              |   ^
//!              |   +-- PROPOSAL -> sync stage -> logged -> ACK        (followers)
//!              +-- commit queue -> apply -> replies
//! ```
//!
//! The commit queue holds forwarded writes and syncs in the order they were sent; a write
//! leaves when the COMMIT of its own txn arrives (matched by session and xid), a sync() with
//! the leader's SYNC. Like ZooKeeper's CommitProcessor, a read waits only behind its own
//! session's outstanding writes (held per session, in arrival order) and otherwise goes to
//! apply at once. Txns committed for other servers' clients go to apply at once, in commit
//! order, so every server applies the same sequence.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, unbounded, Receiver, Sender};
use log::{debug, info, warn};

use super::peer::{write_epoch_file, PeerCtx, Pipeline, RoleEnd, Threads};
use super::zab::codec::{from_packet, to_packet};
use super::zab::learner::{Action, Learner, LearnerConfig};
use super::zab::msg::{Msg, Payload};
use super::zab::packet::{
    encode_int_data, encode_ping_sessions, read_packet, write_packet, PacketType, QuorumPacket,
    RequestData, RevalidateReply, RevalidateRequest,
};
use super::zab::snap::{read_snap, SnapState};
use crate::jute::txn::{Txn, TxnEntry};
use crate::proto::{OpCode, ServerId};
use crate::server::database::{self, LogSink, Recovered};
use crate::server::processor::{Kind, Request};
use crate::server::{ConnId, ServerMode, Shared};

enum Event {
    Packet(QuorumPacket),
    Snap(i64, Box<SnapState>),
    Gone(String),
}

/// Inputs handled between two flushes at most.
const BATCH: usize = 256;

/// One input of the learner thread.
enum Input {
    Event(Option<Event>),
    Local(Option<Request>),
    Synced(Option<Request>),
    Timer,
}

/// A session's request behind one of its outstanding writes.
enum Held {
    /// An outstanding write or sync of the session (its request is in the FIFO).
    Outstanding,
    /// A request to run once the writes before it are done.
    Ready(Box<Request>),
}

/// What a queued local request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Nothing (reads, closes of connections).
    Nothing,
    /// The commit of the txn with this (session, cxid).
    Commit(i64, i32),
    /// The leader's SYNC.
    Sync,
}

/// Follows (or observes) `leader` until the core gives up; returns why.
pub fn learn(
    ctx: &PeerCtx,
    rec: Recovered,
    leader: ServerId,
    observer: bool,
    accepted: i64,
    current: i64,
) -> RoleEnd {
    let q = &ctx.quorum;
    let Some(spec) = q.servers.iter().find(|s| s.id == leader) else {
        return RoleEnd::Error(format!("leader {} is not in the configuration", leader.0));
    };
    let deadline = Instant::now() + ctx.settings.tick * q.init_limit_ticks.max(1);
    let stream = match connect(&spec.host, spec.quorum_port, deadline) {
        Ok(s) => s,
        Err(e) => return RoleEnd::Lost(format!("cannot connect to leader {}: {e}", leader.0)),
    };
    info!(
        "{}: connected to leader {} at {}:{}",
        if observer { "OBSERVING" } else { "FOLLOWING" },
        leader.0,
        spec.host,
        spec.quorum_port
    );
    let mut settings = ctx.settings.clone();
    settings.mode = if observer { ServerMode::Observer } else { ServerMode::Follower };
    let last_zxid = rec.tree.last_processed_zxid;
    let snapshot_first = super::peer::needs_snapshot(&rec);
    let shared = Arc::new(Shared::new(settings, rec.tree, ctx.tracker(&rec.sessions)));
    if snapshot_first {
        if let Err(e) = super::peer::snapshot_now(&shared) {
            return RoleEnd::Error(e);
        }
    }
    let (events_tx, events) = unbounded::<Event>();
    let max = ctx.settings.jute_max_buffer.max(1 << 20) * 2;
    let ext = ctx.settings.extended_types;
    let reader = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => return RoleEnd::Error(format!("socket: {e}")),
    };
    let spawned = std::thread::Builder::new()
        .name("leader-reader".into())
        .spawn(move || read_loop(reader, events_tx, max, ext));
    if let Err(e) = spawned {
        return RoleEnd::Error(format!("cannot start the reader: {e}"));
    }
    let writer = match stream.try_clone() {
        Ok(w) => BufWriter::with_capacity(64 * 1024, w),
        Err(e) => return RoleEnd::Error(format!("socket: {e}")),
    };
    let core = Learner::new(
        LearnerConfig {
            my_sid: q.server_id,
            observer,
            tick: ctx.settings.tick,
            init_limit: q.init_limit_ticks,
            sync_limit: q.sync_limit_ticks,
        },
        accepted,
        current,
        last_zxid,
        Instant::now(),
    );
    let mut shell = LearnerShell {
        ctx,
        core,
        shared,
        writer,
        sink: None,
        pipeline: None,
        fifo: VecDeque::new(),
        held: HashMap::new(),
        revalidating: BTreeMap::new(),
        applied: Arc::new(AtomicI64::new(last_zxid)),
        observer,
    };
    let end = shell.run(&events);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    if let Some(p) = shell.pipeline.take() {
        p.stop();
    }
    drop(shell.sink.take());
    end
}

fn connect(host: &str, port: u16, deadline: Instant) -> std::io::Result<TcpStream> {
    loop {
        let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let mut last_err = std::io::Error::other("no address");
        for a in &addrs {
            let left =
                deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            match TcpStream::connect_timeout(a, left.min(Duration::from_secs(5))) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Err(e) => last_err = e,
            }
        }
        if Instant::now() >= deadline {
            return Err(last_err);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_loop(stream: TcpStream, tx: Sender<Event>, max: usize, ext: bool) {
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let p = match read_packet(&mut r, max) {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Event::Gone(e.to_string()));
                return;
            }
        };
        if p.packet_type() == Some(PacketType::Snap) {
            let zxid = p.zxid;
            match read_snap(&mut r, zxid, ext, max) {
                Ok(state) => {
                    if tx.send(Event::Snap(zxid, Box::new(state))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Event::Gone(format!("bad SNAP stream: {e}")));
                    return;
                }
            }
            continue;
        }
        if tx.send(Event::Packet(p)).is_err() {
            return;
        }
    }
}

struct LearnerShell<'a> {
    ctx: &'a PeerCtx,
    core: Learner,
    shared: Arc<Shared>,
    writer: BufWriter<TcpStream>,
    sink: Option<LogSink>,
    pipeline: Option<Pipeline>,
    /// Local writes and syncs forwarded to the leader, in the order their COMMITs (SYNCs)
    /// come back.
    fifo: VecDeque<(Request, Wait)>,
    /// Per session with a write or sync outstanding: its later requests, in order. Reads wait
    /// only behind their own session's writes (ZooKeeper's CommitProcessor), not other
    /// sessions'.
    held: HashMap<i64, VecDeque<Held>>,
    /// Client connections re-attaching a session, waiting for the leader's REVALIDATE answer.
    revalidating: BTreeMap<i64, Vec<ConnId>>,
    applied: Arc<AtomicI64>,
    observer: bool,
}

impl LearnerShell<'_> {
    fn run(&mut self, events: &Receiver<Event>) -> RoleEnd {
        loop {
            if let Some(end) = self.drain_actions() {
                return end;
            }
            if let Err(e) = self.writer.flush() {
                return RoleEnd::Lost(format!("writing to the leader: {e}"));
            }
            let timer = match self.core.poll_timeout() {
                Some(at) => crossbeam_channel::at(at),
                None => never(),
            };
            let none = never();
            let (local, sync_out) = match &self.pipeline {
                Some(p) => (p.first_out.clone(), p.sync_out.clone()),
                None => (none.clone(), none),
            };
            let input = select! {
                recv(events) -> e => Input::Event(e.ok()),
                recv(local) -> r => Input::Local(r.ok()),
                recv(sync_out) -> r => Input::Synced(r.ok()),
                recv(timer) -> _ => Input::Timer,
            };
            if let Err(end) = self.handle(input) {
                return end;
            }
            // Whatever else is already queued goes into the same flush (one write of many ACKs
            // and REQUESTs instead of one each).
            for _ in 0..BATCH {
                let input = if let Ok(e) = events.try_recv() {
                    Input::Event(Some(e))
                } else if let Ok(r) = sync_out.try_recv() {
                    Input::Synced(Some(r))
                } else if let Ok(r) = local.try_recv() {
                    Input::Local(Some(r))
                } else {
                    break;
                };
                if let Err(end) = self.handle(input) {
                    return end;
                }
                if let Some(end) = self.drain_actions() {
                    return end;
                }
            }
            if !self.ctx.running() {
                return RoleEnd::Shutdown;
            }
        }
    }

    fn handle(&mut self, input: Input) -> Result<(), RoleEnd> {
        let now = Instant::now();
        match input {
            Input::Event(Some(Event::Packet(p)))
                if p.packet_type() == Some(PacketType::Revalidate) =>
            {
                // The leader's answer to a re-attach here: the waiting connections get their
                // ConnectResponse (or are told the session expired).
                match RevalidateReply::decode(p.data()) {
                    Ok(r) => {
                        let (session, valid) = (r.session_id, r.valid);
                        info!("learner: the leader says session 0x{session:x} is valid: {valid}");
                        let waiting = self.revalidating.remove(&session).unwrap_or_default();
                        if let Some(pl) = &self.pipeline {
                            for conn in waiting {
                                pl.threads.revalidated(conn, session, valid);
                            }
                        }
                    }
                    Err(e) => warn!("learner: undecodable REVALIDATE reply: {e}"),
                }
                self.core.handle_msg(Msg::Other, now);
            }
            Input::Event(Some(Event::Packet(p))) => match from_packet(&p) {
                Ok(msg) => self.core.handle_msg(msg, now),
                Err(e) => return Err(RoleEnd::Lost(format!("from the leader: {e}"))),
            },
            Input::Event(Some(Event::Snap(zxid, state))) => {
                self.load_snap(zxid, *state);
                self.core.handle_msg(Msg::Snap { zxid }, now);
            }
            Input::Event(Some(Event::Gone(why))) => {
                return Err(RoleEnd::Lost(format!("leader connection: {why}")))
            }
            Input::Event(None) => return Err(RoleEnd::Lost("leader reader stopped".into())),
            Input::Local(Some(r)) => self.on_local(r),
            Input::Local(None) => return Err(RoleEnd::Error("client pipeline stopped".into())),
            Input::Synced(Some(r)) => {
                if let Some(e) = &r.txn {
                    self.core.logged(e.header.zxid);
                }
            }
            Input::Synced(None) => return Err(RoleEnd::Error("sync stage stopped".into())),
            Input::Timer => self.core.handle_timeout(now),
        }
        Ok(())
    }

    fn send(&mut self, packet: &QuorumPacket) -> Result<(), String> {
        write_packet(&mut self.writer, packet).map_err(|e| format!("writing to the leader: {e}"))
    }

    fn load_snap(&mut self, zxid: i64, state: SnapState) {
        info!(
            "learner: loaded SNAP of zxid 0x{zxid:x}: {} znodes, {} sessions",
            state.tree.node_count(),
            state.sessions.len()
        );
        *self.shared.write_tree() = state.tree;
        let tracker = self.ctx.tracker(&state.sessions);
        self.shared.with_sessions(|s| *s = tracker);
        self.applied.store(zxid, Ordering::Release);
    }

    fn sink(&mut self) -> Result<&mut LogSink, String> {
        if self.sink.is_none() {
            self.sink = Some(super::peer::log_sink(&self.shared)?);
        }
        self.sink.as_mut().ok_or_else(|| "txn log".to_owned())
    }

    fn drain_actions(&mut self) -> Option<RoleEnd> {
        while let Some(action) = self.core.poll_action() {
            if let Err(e) = self.act(action) {
                return Some(e);
            }
        }
        None
    }

    fn act(&mut self, action: Action) -> Result<(), RoleEnd> {
        let err = RoleEnd::Error;
        match action {
            Action::Send(msg) => {
                let p = to_packet(&msg, self.ctx.qv.text());
                self.send(&p).map_err(RoleEnd::Lost)?;
            }
            Action::WriteAcceptedEpoch(e) => {
                write_epoch_file(&self.ctx.settings, "acceptedEpoch", e).map_err(err)?
            }
            Action::WriteCurrentEpoch(e) => {
                write_epoch_file(&self.ctx.settings, "currentEpoch", e).map_err(err)?
            }
            Action::Truncate(zxid) => self.truncate(zxid).map_err(err)?,
            Action::Apply { zxid, payload } => {
                let entry = decode(zxid, &payload).map_err(err)?;
                if self.pipeline.is_some() {
                    self.commit_async(entry);
                } else {
                    self.apply_now(&entry);
                }
            }
            Action::Log { .. } if self.observer && !self.ctx.quorum.sync_enabled => {
                // syncEnabled=false: an observer keeps txns in memory only.
            }
            Action::Log { zxid, payload } => {
                let entry = decode(zxid, &payload).map_err(err)?;
                match &self.pipeline {
                    Some(p) => {
                        let mut r = Request::new(None, 0, 0, entry.header.txn_type, Kind::Internal);
                        r.txn = Some(entry);
                        let _ = p.sync_in.send(r);
                    }
                    None => {
                        use crate::server::processor::sync::TxnSink;
                        let sink = self.sink().map_err(err)?;
                        sink.append(&entry).map_err(|e| RoleEnd::Error(format!("txn log: {e}")))?;
                    }
                }
            }
            Action::Flush => {
                use crate::server::processor::sync::TxnSink;
                if self.pipeline.is_none() {
                    let sink = self.sink().map_err(err)?;
                    sink.commit().map_err(|e| RoleEnd::Error(format!("txn log: {e}")))?;
                }
            }
            Action::TakeSnapshot => {
                database::take_snapshot(&self.shared)
                    .map_err(|e| RoleEnd::Error(format!("snapshot: {e}")))?;
            }
            Action::StartServing => self.start_serving().map_err(err)?,
            Action::PingReply(zxid) => {
                let touched = self.shared.with_sessions(|s| s.take_touched());
                let data = encode_ping_sessions(&touched);
                let p = QuorumPacket::new(PacketType::Ping, zxid, Some(data));
                self.send(&p).map_err(RoleEnd::Lost)?;
            }
            Action::SyncDone => self.sync_done(),
            Action::Abort(why) => return Err(RoleEnd::Lost(why)),
        }
        Ok(())
    }

    fn truncate(&mut self, zxid: i64) -> Result<(), String> {
        self.sink = None;
        let s = &self.shared.settings;
        database::truncate(&s.data_dir, &s.data_log_dir, zxid)
            .map_err(|e| format!("truncating to 0x{zxid:x}: {e}"))?;
        let rec = database::recover(&s.data_dir, &s.data_log_dir, s.extended_types)
            .map_err(|e| format!("reloading after TRUNC: {e}"))?;
        info!("learner: truncated to 0x{zxid:x}, tree at 0x{:x}", rec.tree.last_processed_zxid);
        if rec.tree.last_processed_zxid > zxid {
            return Err(format!(
                "TRUNC to 0x{zxid:x} left the tree at 0x{:x}",
                rec.tree.last_processed_zxid
            ));
        }
        let tracker = self.ctx.tracker(&rec.sessions);
        *self.shared.write_tree() = rec.tree;
        self.shared.with_sessions(|s| *s = tracker);
        Ok(())
    }

    /// Sync phase: apply straight to the tree (no clients yet).
    fn apply_now(&mut self, entry: &TxnEntry) {
        let now = self.shared.now_ms();
        let _ = self.shared.write_tree().apply(&entry.header, &entry.txn);
        self.applied.store(entry.header.zxid, Ordering::Release);
        match &entry.txn {
            Txn::CreateSession { timeout_ms } => {
                self.shared.with_sessions(|s| s.add(entry.header.client_id, *timeout_ms, now))
            }
            Txn::CloseSession(_) => self.shared.with_sessions(|s| s.remove(entry.header.client_id)),
            _ => {}
        }
    }

    /// Serving: a committed txn goes to apply, with the local request that asked for it.
    fn commit_async(&mut self, entry: TxnEntry) {
        let Some(p) = &self.pipeline else { return };
        let (session, cxid) = (entry.header.client_id, entry.header.cxid);
        if let Some((_, Wait::Commit(s, x))) = self.fifo.front() {
            if *s == session && *x == cxid {
                if let Some((mut req, _)) = self.fifo.pop_front() {
                    req.txn = Some(entry);
                    let _ = p.apply_in.send(req);
                }
                self.release(session);
                return;
            }
        }
        // A txn of another server's client (a closeSession too: apply then closes a
        // connection that still holds the session here).
        let mut r = Request::new(None, session, cxid, entry.header.txn_type, Kind::Internal);
        r.txn = Some(entry);
        let _ = p.apply_in.send(r);
    }

    fn sync_done(&mut self) {
        match self.fifo.front() {
            Some((_, Wait::Sync)) => {
                let Some((req, _)) = self.fifo.pop_front() else { return };
                let session = req.session;
                if let Some(p) = &self.pipeline {
                    let _ = p.apply_in.send(req);
                }
                self.release(session);
            }
            _ => warn!("learner: SYNC from the leader without a pending sync"),
        }
    }

    /// One of `session`'s outstanding writes (the oldest) is done: send on the requests held
    /// behind it, up to its next outstanding write.
    fn release(&mut self, session: i64) {
        let Some(p) = &self.pipeline else { return };
        let Some(q) = self.held.get_mut(&session) else { return };
        if let Some(Held::Outstanding) = q.front() {
            q.pop_front();
        }
        while let Some(Held::Ready(_)) = q.front() {
            if let Some(Held::Ready(req)) = q.pop_front() {
                let _ = p.apply_in.send(*req);
            }
        }
        if q.is_empty() {
            self.held.remove(&session);
        }
    }

    /// A request from a local client.
    fn on_local(&mut self, r: Request) {
        let op = OpCode::from_i32(r.op);
        let wait = match (&r.kind, op) {
            (Kind::NewSession { timeout_ms, .. }, _) => {
                let data = RequestData {
                    session_id: r.session,
                    cxid: 0,
                    op: OpCode::CreateSession.code(),
                    body: encode_int_data(*timeout_ms),
                };
                self.forward(&data, &r);
                Wait::Commit(r.session, 0)
            }
            (Kind::Client, Some(OpCode::Sync)) => {
                self.forward(&request_data(&r), &r);
                Wait::Sync
            }
            (Kind::Client, Some(o)) if o.is_write() || o == OpCode::CloseSession => {
                self.forward(&request_data(&r), &r);
                Wait::Commit(r.session, r.xid)
            }
            (Kind::Reattach { timeout_ms }, _) => {
                // The leader makes this server the session's owner (SESSIONMOVED for writes
                // still coming through the old server) and touches it; the client's
                // connection waits for its answer.
                let body = RevalidateRequest { session_id: r.session, timeout_ms: *timeout_ms };
                let p = QuorumPacket::new(PacketType::Revalidate, -1, Some(body.encode()));
                if let Err(e) = self.send(&p) {
                    // The role ends with the leader connection, closing client connections.
                    warn!("learner: cannot revalidate session 0x{:x}: {e}", r.session);
                }
                if let Some(conn) = r.conn {
                    self.revalidating.entry(r.session).or_default().push(conn);
                }
                return;
            }
            (Kind::Expire | Kind::Internal, _) => {
                debug!("learner: dropping a server-internal request (the leader runs those)");
                return;
            }
            _ => Wait::Nothing,
        };
        let held = self.held.get_mut(&r.session);
        match (wait, held) {
            (Wait::Nothing, None) => {
                if let Some(p) = &self.pipeline {
                    let _ = p.apply_in.send(r);
                }
            }
            (Wait::Nothing, Some(q)) => q.push_back(Held::Ready(Box::new(r))),
            (wait, _) => {
                self.held.entry(r.session).or_default().push_back(Held::Outstanding);
                self.fifo.push_back((r, wait));
            }
        }
    }

    fn forward(&mut self, data: &RequestData, r: &Request) {
        let mut p = QuorumPacket::new(PacketType::Request, -1, Some(data.encode()));
        p.authinfo = Some(r.auth.ids.clone());
        if let Err(e) = self.send(&p) {
            warn!("learner: cannot forward request of session 0x{:x}: {e}", r.session);
        }
    }

    fn start_serving(&mut self) -> Result<(), String> {
        let _ = self
            .ctx
            .election
            .send(super::election_thread::Control::UpdateElectionVote(self.core.epoch()));
        let shared = self.shared.clone();
        shared.with_sessions(|s| s.record_touches());
        let sink = match self.sink.take() {
            Some(s) => s,
            None => super::peer::log_sink(&shared)?,
        };
        let mut threads =
            Threads::new(shared.clone(), true).map_err(|e| format!("client port: {e}"))?;
        let local = threads.take_prep_rx();
        let (sync_in, sync_out) = threads.start_sync(sink)?;
        let apply_in = threads.start_apply(self.applied.clone())?;
        threads.start_selector()?;
        self.pipeline = Some(Pipeline { threads, first_out: local, sync_in, sync_out, apply_in });
        Ok(())
    }
}

fn request_data(r: &Request) -> RequestData {
    RequestData { session_id: r.session, cxid: r.xid, op: r.op, body: r.body.clone() }
}

fn decode(zxid: i64, payload: &Payload) -> Result<TxnEntry, String> {
    TxnEntry::decode(payload)
        .map_err(|e| format!("txn 0x{zxid:x} from the leader does not decode: {e}"))
}
