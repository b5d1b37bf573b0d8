//! FOLLOWING and OBSERVING: the shell around the [`Learner`] core (ZooKeeper's `Learner`,
//! `Follower`, `Observer` and their request processors).
//!
//! Until UPTODATE the learner thread does everything itself: it loads a streamed snapshot,
//! truncates, logs and fsyncs, applies and snapshots, in the order the core asks. At UPTODATE
//! it starts the client pipeline ([`Stages::Learner`]):
//!
//! ```text
//! cnxn -> learner thread --REQUEST--> leader          (writes, sync, createSession, close)
//!              |   ^
//!              |   +-- PROPOSAL -> sync stage -> logged -> ACK        (followers)
//!              +-- commit queue -> apply -> replies
//! ```
//!
//! The commit queue ([`CommitQueue`], ZooKeeper's CommitProcessor) holds forwarded writes and
//! syncs in the order they were sent; a write leaves when the COMMIT of its own txn arrives, a
//! sync() with the leader's SYNC; a read waits only behind its own session's outstanding
//! writes. Txns committed for other servers' clients go to apply at once, in commit order, so
//! every server applies the same sequence. Re-attaching clients wait for the leader's
//! REVALIDATE answer there too.
//!
//! The learner thread never waits on the sync stage's input (its output is the thread's to
//! drain): txns that find the stage's queue full wait in a local backlog, offered again each
//! round.
use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};

use crate::tls::duplex::PeerStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, Receiver, Sender, TrySendError};
use log::{debug, info, warn};

use super::commit::{CommitQueue, Released, Wait};
use super::peer::{write_epoch_file, PeerCtx, RoleEnd};
use super::zab::codec::{from_packet, to_packet};
use super::zab::learner::{Action, Learner, LearnerConfig};
use super::zab::msg::{Msg, Payload};
use super::zab::packet::{
    encode_int_data, encode_ping_sessions, read_packet, write_packet, PacketType, QuorumPacket,
    RequestData, RevalidateReply, RevalidateRequest,
};
use super::zab::snap::{read_snap, SnapState};
use crate::jute::txn::{Txn, TxnEntry};
use crate::limits;
use crate::proto::{OpCode, ServerId};
use crate::server::role::database::{self, LogSink, Recovered};
use crate::server::role::TxnSink;
use crate::server::role::{Kind, Outbound, Request};
use crate::server::role::{Pipeline, PipelineSpec, Stages};
use crate::server::role::{ServerMode, Shared};

enum Event {
    Packet(QuorumPacket),
    Snap(i64, Box<SnapState>),
    Gone(String),
}

/// One input of the learner thread.
enum Input {
    Event(Option<Event>),
    Local(Option<Request>),
    Synced(Option<Request>),
    Timer,
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
    let deadline = Instant::now() + ctx.config.tick_time * q.init_limit_ticks.max(1);
    let stream = match connect(&spec.host, spec.quorum_port, deadline) {
        Ok(s) => s,
        Err(e) => return RoleEnd::Lost(format!("cannot connect to leader {}: {e}", leader.0)),
    };
    let stream = match secure(ctx, stream, &spec.host, deadline) {
        Ok(s) => s,
        Err(e) => {
            warn!("quorum handshake with leader {} failed: {e}", leader.0);
            return RoleEnd::Lost(format!("leader {}: {e}", leader.0));
        }
    };
    info!(
        "{}: connected to leader {} at {}:{}",
        if observer { "OBSERVING" } else { "FOLLOWING" },
        leader.0,
        spec.host,
        spec.quorum_port
    );
    let mode = if observer { ServerMode::Observer } else { ServerMode::Follower };
    let last_zxid = rec.tree.last_processed_zxid;
    let snapshot_first = super::peer::needs_snapshot(&rec);
    let tracker = ctx.tracker(&rec.sessions);
    let shared = Arc::new(Shared::new(ctx.config.clone(), mode, rec.tree, tracker));
    if snapshot_first {
        if let Err(e) = super::peer::snapshot_now(&shared) {
            return RoleEnd::Error(e);
        }
    }
    let (events_tx, events) = bounded::<Event>(limits::STAGE_QUEUE);
    let max = super::leading::quorum_packet_max(ctx);
    let ext = ctx.config.extended_types_enabled;
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
            tick: ctx.config.tick_time,
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
        commits: CommitQueue::new(),
        log_backlog: VecDeque::new(),
        proposed: Proposed::default(),
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

/// TLS (if on), then SASL as the learner (if on; Learner's `authLearner.authenticate`),
/// within initLimit.
fn secure(
    ctx: &PeerCtx,
    tcp: TcpStream,
    host: &str,
    deadline: Instant,
) -> Result<PeerStream, String> {
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
    tcp.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    let mut stream = ctx.security.dial(tcp, host).map_err(|e| format!("TLS: {e}"))?;
    let deadline = deadline.max(Instant::now() + left);
    ctx.security.login(&mut stream, host, deadline)?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(stream)
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

fn read_loop(stream: PeerStream, tx: Sender<Event>, max: usize, ext: bool) {
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
    writer: BufWriter<PeerStream>,
    sink: Option<LogSink>,
    pipeline: Option<Pipeline>,
    /// Local requests waiting for their commit, SYNC or REVALIDATE answer (CommitProcessor).
    commits: CommitQueue<Request, Arc<TxnEntry>>,
    /// Txns for the sync stage that found its queue full, in order.
    log_backlog: VecDeque<Request>,
    /// Proposals decoded for the log, oldest first, kept until their COMMIT so that a txn is
    /// decoded once (ZooKeeper's pendingTxns); older entries go when a later zxid commits.
    proposed: Proposed<Arc<TxnEntry>>,
    applied: Arc<AtomicI64>,
    observer: bool,
}

impl LearnerShell<'_> {
    fn run(&mut self, events: &Receiver<Event>) -> RoleEnd {
        loop {
            if let Some(end) = self.drain_actions() {
                return end;
            }
            if let Err(end) = self.flush_log_backlog() {
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
            let taps = self.pipeline.as_ref().map(|p| &p.taps);
            let local = taps.and_then(|t| t.first_out.clone()).unwrap_or_else(|| none.clone());
            let sync_out = taps.and_then(|t| t.sync_out.clone()).unwrap_or_else(|| none.clone());
            let input = select! {
                recv(events) -> e => Input::Event(e.ok()),
                recv(local) -> r => Input::Local(r.ok()),
                recv(sync_out) -> r => Input::Synced(r.ok()),
                recv(self.ctx.fatal_rx) -> f => match f {
                    Ok(f) => return RoleEnd::Fatal(f),
                    Err(_) => return RoleEnd::Error("the fatal channel closed".into()),
                },
                recv(timer) -> _ => Input::Timer,
            };
            if let Err(end) = self.handle(input) {
                return end;
            }
            // Whatever else is already queued goes into the same flush (one write of many ACKs
            // and REQUESTs instead of one each).
            for _ in 0..limits::LEARNER_BATCH_MAX {
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
                        for req in self.commits.revalidated(session) {
                            if let (Some(conn), Some(pl)) = (req.conn, &self.pipeline) {
                                pl.notify(Outbound::Revalidated { conn, session, valid });
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
            Input::Local(Some(r)) => self.on_local(r)?,
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
                write_epoch_file(&self.ctx.config, "acceptedEpoch", e).map_err(err)?
            }
            Action::WriteCurrentEpoch(e) => {
                write_epoch_file(&self.ctx.config, "currentEpoch", e).map_err(err)?
            }
            Action::Truncate(zxid) => self.truncate(zxid).map_err(err)?,
            Action::Apply { zxid, payload } => {
                let entry = match self.proposed.take(zxid) {
                    Some(entry) => entry,
                    None => Arc::new(decode(zxid, &payload).map_err(err)?),
                };
                if self.pipeline.is_some() {
                    self.commit(entry)?;
                } else {
                    self.apply_now(&entry);
                }
            }
            Action::Log { .. } if self.observer && !self.ctx.quorum.sync_enabled => {
                // syncEnabled=false: an observer keeps txns in memory only.
            }
            Action::Log { zxid, payload } => {
                let entry = Arc::new(decode(zxid, &payload).map_err(err)?);
                self.proposed.remember(zxid, entry.clone());
                if self.pipeline.is_some() {
                    let mut r = Request::new(None, 0, 0, entry.header.txn_type, Kind::Internal);
                    r.txn = Some(entry);
                    self.log_backlog.push_back(r);
                    self.flush_log_backlog()?;
                } else {
                    let sink = self.sink().map_err(err)?;
                    sink.append(&entry).map_err(|e| RoleEnd::Error(format!("txn log: {e}")))?;
                }
            }
            Action::Flush => {
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
            Action::SyncDone => {
                self.commits.sync_done().map_err(|e| RoleEnd::Lost(e.to_string()))?;
                self.release();
            }
            Action::Abort(why) => return Err(RoleEnd::Lost(why)),
        }
        Ok(())
    }

    /// Offers the backlog to the sync stage without waiting.
    fn flush_log_backlog(&mut self) -> Result<(), RoleEnd> {
        let Some(sync_in) = self.pipeline.as_ref().and_then(|p| p.taps.sync_in.as_ref()) else {
            return Ok(());
        };
        while let Some(r) = self.log_backlog.pop_front() {
            match sync_in.try_send(r) {
                Ok(()) => {}
                Err(TrySendError::Full(r)) => {
                    // The sync stage is busy: it will report what it made durable, which
                    // wakes this thread to offer the rest.
                    self.log_backlog.push_front(r);
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(RoleEnd::Error("sync stage stopped".into()))
                }
            }
        }
        Ok(())
    }

    fn truncate(&mut self, zxid: i64) -> Result<(), String> {
        self.sink = None;
        self.proposed.clear();
        let c = &self.shared.config;
        database::truncate(&c.data_dir, &c.data_log_dir, zxid)
            .map_err(|e| format!("truncating to 0x{zxid:x}: {e}"))?;
        let rec = database::recover(&c.data_dir, &c.data_log_dir, c.extended_types_enabled)
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
    fn commit(&mut self, entry: Arc<TxnEntry>) -> Result<(), RoleEnd> {
        let (session, cxid) = (entry.header.client_id, entry.header.cxid);
        self.commits.commit(session, cxid, entry).map_err(|e| RoleEnd::Lost(e.to_string()))?;
        self.release();
        Ok(())
    }

    /// Hands what the commit queue released to apply, in order.
    fn release(&mut self) {
        let Some(apply_in) = self.pipeline.as_ref().and_then(|p| p.taps.apply_in.as_ref()) else {
            return;
        };
        while let Some(released) = self.commits.poll_released() {
            let r = match released {
                Released::Request(r) => r,
                Released::Committed(mut r, entry) => {
                    r.txn = Some(entry);
                    r
                }
                // A txn of another server's client (a closeSession too: apply then closes a
                // connection that still holds the session here).
                Released::Remote(entry) => {
                    let (session, cxid) = (entry.header.client_id, entry.header.cxid);
                    let op = entry.header.txn_type;
                    let mut r = Request::new(None, session, cxid, op, Kind::Internal);
                    r.txn = Some(entry);
                    r
                }
            };
            // Apply never waits on this thread, so waiting for room here cannot deadlock.
            let _ = apply_in.send(r);
        }
    }

    /// A request from a local client.
    fn on_local(&mut self, r: Request) -> Result<(), RoleEnd> {
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
                Wait::Txn { session: r.session, cxid: 0 }
            }
            (Kind::Client, Some(OpCode::Sync)) => {
                self.forward(&request_data(&r), &r);
                Wait::LeaderSync
            }
            (Kind::Client, Some(o)) if o.is_write() || o == OpCode::CloseSession => {
                self.forward(&request_data(&r), &r);
                Wait::Txn { session: r.session, cxid: r.xid }
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
                if r.conn.is_some() {
                    self.commits.revalidate(r.session, r);
                }
                return Ok(());
            }
            (Kind::Expire | Kind::Internal, _) => {
                debug!("learner: dropping a server-internal request (the leader runs those)");
                return Ok(());
            }
            _ => Wait::Nothing,
        };
        self.commits.submit(r.session, wait, r);
        self.release();
        Ok(())
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
        let logs = !self.observer || self.ctx.quorum.sync_enabled;
        let sink = match self.sink.take() {
            Some(s) if logs => Some(s),
            None if logs => Some(super::peer::log_sink(&shared)?),
            _ => None,
        };
        let spec = PipelineSpec {
            stages: Stages::Learner,
            sink,
            serve_clients: true,
            last_zxid: self.core.last_zxid(),
            applied: self.applied.clone(),
        };
        let pipeline = Pipeline::start(shared, spec, &self.ctx.fatal)
            .map_err(|e| format!("client pipeline: {e}"))?;
        self.pipeline = Some(pipeline);
        Ok(())
    }
}

fn request_data(r: &Request) -> RequestData {
    RequestData { session_id: r.session, cxid: r.xid, op: r.op, body: r.body.clone() }
}

/// Decoded proposals by zxid, oldest first, until their COMMIT.
struct Proposed<T>(VecDeque<(i64, T)>);

impl<T> Default for Proposed<T> {
    fn default() -> Self {
        Proposed(VecDeque::new())
    }
}

impl<T> Proposed<T> {
    /// Keeps proposal `zxid`. Zxids only grow within a role; one that does not (a leader
    /// sending again what a TRUNC removed) restarts the list.
    fn remember(&mut self, zxid: i64, txn: T) {
        if self.0.back().is_some_and(|(last, _)| *last >= zxid) {
            self.0.clear();
        }
        self.0.push_back((zxid, txn));
    }

    /// Proposal `zxid`, if it was kept; drops the older ones, which can no longer commit.
    fn take(&mut self, zxid: i64) -> Option<T> {
        while let Some((front, _)) = self.0.front() {
            match front.cmp(&zxid) {
                std::cmp::Ordering::Less => drop(self.0.pop_front()),
                std::cmp::Ordering::Equal => return self.0.pop_front().map(|(_, t)| t),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

fn decode(zxid: i64, payload: &Payload) -> Result<TxnEntry, String> {
    TxnEntry::decode(payload)
        .map_err(|e| format!("txn 0x{zxid:x} from the leader does not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::Proposed;

    #[test]
    fn a_proposal_is_taken_once_at_its_commit() {
        let mut p = Proposed::default();
        for z in 1..=3 {
            p.remember(z, format!("t{z}"));
        }
        assert_eq!(p.take(1).as_deref(), Some("t1"));
        assert_eq!(p.take(1), None, "taken already");
        // Committing 3 drops 2, which can no longer commit.
        assert_eq!(p.take(3).as_deref(), Some("t3"));
        assert_eq!(p.take(2), None);
        assert!(p.0.is_empty());
    }

    #[test]
    fn an_unknown_zxid_keeps_the_later_proposals() {
        let mut p = Proposed::default();
        p.remember(5, "t5");
        assert_eq!(p.take(4), None, "logged before this role: decoded from the COMMIT");
        assert_eq!(p.take(5), Some("t5"));
    }

    #[test]
    fn a_zxid_that_does_not_grow_restarts_the_list() {
        let mut p = Proposed::default();
        p.remember(7, "old7");
        p.remember(8, "old8");
        p.remember(7, "new7");
        assert_eq!(p.take(7), Some("new7"));
        assert_eq!(p.take(8), None, "the old 8 went with the restart");
    }
}
