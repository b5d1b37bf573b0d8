//! LEADING: the shell around the [`Leader`] core (ZooKeeper's `Leader`, `LearnerHandler` and
//! `LeaderZooKeeperServer`).
//!
//! Threads while leading:
//!
//! ```text
//! quorum acceptor  accepts learners on the quorum port; per learner a reader thread and a
//!                  writer thread (queued bytes -> socket). The reader hands the learner's
//!                  REQUEST and REVALIDATE packets straight to prep (in the learner's order,
//!                  waiting while prep's queue is full: back-pressure on that learner's
//!                  socket) and every other packet to the leader thread
//! leader thread    this function's loop: select! over learner events, prep's output, the sync
//!                  stage's output and the core's timer; feeds the core, carries out its
//!                  actions, drives the commit queue
//! pipeline         (once serving) Stages::Leader: cnxn -> prep -> leader thread -> sync ->
//!                  leader thread; leader thread -> apply; session expiry, container reaper
//! ```
//!
//! Out of prep, a txn is proposed, sent to the local log, and enters the commit queue
//! ([`CommitQueue`], ZooKeeper's CommitProcessor) waiting for its commit; reads wait only
//! behind their own session's writes; a local sync() waits for every txn before it.
//! Forwarded requests carry their learner as `origin`; their replies are the learner's
//! business. The leader thread never waits on the sync stage: it reads prep's output only
//! while the sync stage's input has room.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, unbounded, Receiver, SendTimeoutError, Sender};
use log::{debug, info, warn};

use super::auth::PeerSecurity;
use super::commit::{CommitQueue, Released, Wait};
use super::peer::{write_epoch_file, PeerCtx, RoleEnd};
use super::zab::codec::{from_packet, to_packet};
use super::zab::leader::{Action, Handle, Leader, LeaderConfig};
use super::zab::msg::{make_zxid, Msg, Payload};
use super::zab::packet::{
    decode_int_data, decode_ping_sessions, read_packet, write_packet, LearnerInfo, PacketType,
    QuorumPacket, RequestData, RevalidateReply, RevalidateRequest,
};
use super::zab::snap::SnapStream;
use crate::limits;
use crate::proto::{OpCode, ServerId};
use crate::server::role::database::{self, Recovered};
use crate::server::role::AuthInfo;
use crate::server::role::{Kind, Origin, Request};
use crate::server::role::{Pipeline, PipelineSpec, Stages};
use crate::server::role::{ServerMode, Shared};
use crate::tls::duplex::PeerStream;

/// What learner connections (and the txn-log reader) report to the leader thread.
enum Event {
    Connected(Handle, Sender<Outgoing>, PeerStream),
    Packet(Handle, QuorumPacket),
    Gone(Handle),
    /// The txns a learner behind the committed log needs, read from the txn log.
    LogRead(Handle, Option<Vec<(i64, Payload)>>),
}

/// What the leader thread queues for a learner's writer thread, in stream order.
enum Outgoing {
    /// Packet bytes.
    Bytes(Vec<u8>),
    /// A SNAP packet of this zxid followed by a fuzzy snapshot of the live tree, streamed by
    /// the writer thread itself.
    Snap(i64),
}

/// Where learners' readers hand forwarded requests: prep's input, while the leader serves.
/// Readers clone the sender only for one hand-over, so taking it out at the end of the role
/// lets prep see its input close.
type Forward = Arc<Mutex<Option<Sender<Request>>>>;

/// Leads until the core abandons leadership; returns why.
pub fn lead(ctx: &PeerCtx, rec: Recovered, accepted: i64, current: i64) -> RoleEnd {
    let q = &ctx.quorum;
    let me = q.me();
    let host = if q.quorum_listen_on_all_ips { "0.0.0.0" } else { me.host.as_str() };
    let listener = match TcpListener::bind((host, me.quorum_port)) {
        Ok(l) => l,
        Err(e) => {
            return RoleEnd::Error(format!("cannot bind the quorum port {}: {e}", me.quorum_port))
        }
    };
    if let Err(e) = listener.set_nonblocking(true) {
        return RoleEnd::Error(format!("quorum port: {e}"));
    }
    let last_zxid = rec.tree.last_processed_zxid;
    let snapshot_first = super::peer::needs_snapshot(&rec);
    let tracker = ctx.tracker(&rec.sessions);
    let shared = Arc::new(Shared::new(ctx.config.clone(), ServerMode::Leader, rec.tree, tracker));
    if snapshot_first {
        if let Err(e) = super::peer::snapshot_now(&shared) {
            return RoleEnd::Error(e);
        }
    }
    let committed_log = super::peer::committed_log_tail(&ctx.config, last_zxid);
    let now = Instant::now();
    let core = Leader::new(
        LeaderConfig {
            my_sid: q.server_id,
            qv: ctx.qv.clone(),
            tick: ctx.config.tick_time,
            init_limit: q.init_limit_ticks,
            sync_limit: q.sync_limit_ticks,
            commit_log_count: limits::COMMIT_LOG_COUNT,
        },
        accepted,
        current,
        last_zxid,
        committed_log,
        now,
    );
    info!(
        "LEADING: sid {} at zxid 0x{last_zxid:x}, accepted epoch {accepted}, current epoch {current}",
        q.server_id.0
    );
    let (events_tx, events) = bounded::<Event>(limits::STAGE_QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let forward: Forward = Arc::new(Mutex::new(None));
    let acceptor = {
        let io = LearnerIo {
            events: events_tx.clone(),
            forward: forward.clone(),
            shared: shared.clone(),
            stop: stop.clone(),
            max: quorum_packet_max(ctx),
            security: ctx.security.clone(),
            handshake_timeout: ctx.config.tick_time * q.init_limit_ticks.max(1),
            handshakes: Arc::new(AtomicUsize::new(0)),
        };
        std::thread::Builder::new()
            .name("quorum-acceptor".into())
            .spawn(move || accept_loop(listener, io))
    };
    let acceptor = match acceptor {
        Ok(a) => a,
        Err(e) => return RoleEnd::Error(format!("cannot start the acceptor: {e}")),
    };
    let (log_reads, log_jobs) = bounded::<(Handle, i64, i64)>(limits::STAGE_QUEUE);
    let log_reader = {
        let (config, events) = (ctx.config.clone(), events_tx.clone());
        let factor = ctx.quorum.snapshot_size_factor;
        std::thread::Builder::new().name("txn-log-reader".into()).spawn(move || {
            // Off the leader's loop: a DIFF from the txn log may read many files.
            for (h, from, to) in log_jobs {
                let txns = super::peer::committed_txns_from_log(&config, factor, from, to);
                if events.send(Event::LogRead(h, txns)).is_err() {
                    return;
                }
            }
        })
    };
    let log_reader = match log_reader {
        Ok(r) => r,
        Err(e) => return RoleEnd::Error(format!("cannot start the txn-log reader: {e}")),
    };
    let mut shell = LeaderShell {
        not_serving: None,
        ctx,
        core,
        shared,
        writers: BTreeMap::new(),
        streams: BTreeMap::new(),
        sids: BTreeMap::new(),
        commits: CommitQueue::new(),
        pipeline: None,
        forward,
        log_reads,
        applied: Arc::new(AtomicI64::new(last_zxid)),
    };
    let end = shell.run(&events);
    stop.store(true, Ordering::SeqCst);
    for s in shell.streams.values() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    shell.writers.clear();
    shell.forward.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(p) = shell.pipeline.take() {
        p.stop();
    }
    if let Some(t) = shell.not_serving.take() {
        t.stop();
    }
    let _ = acceptor.join();
    drop(shell);
    drop(events);
    let _ = log_reader.join();
    end
}

/// The largest quorum packet read from a learner: a PROPOSAL may carry a txn with a full
/// `jute.maxbuffer` of data, plus the extra size (BinaryInputArchive's bound).
pub fn quorum_packet_max(ctx: &PeerCtx) -> usize {
    let c = &ctx.config;
    (c.jute_max_buffer_bytes + c.jute_max_buffer_extra_bytes)
        .max(limits::QUORUM_PACKET_MAX_BYTES_DEFAULT)
}

struct LeaderShell<'a> {
    /// With `leaderServes=no`: the client port answers as a server that is not running.
    not_serving: Option<Pipeline>,
    ctx: &'a PeerCtx,
    core: Leader,
    shared: Arc<Shared>,
    writers: BTreeMap<Handle, Sender<Outgoing>>,
    streams: BTreeMap<Handle, PeerStream>,
    /// Learner sids by connection, once their LearnerInfo arrived.
    sids: BTreeMap<Handle, u64>,
    /// Requests out of prep waiting for their commit (CommitProcessor).
    commits: CommitQueue<Request, ()>,
    pipeline: Option<Pipeline>,
    forward: Forward,
    /// Jobs for the txn-log reader thread.
    log_reads: Sender<(Handle, i64, i64)>,
    applied: Arc<AtomicI64>,
}

impl LeaderShell<'_> {
    fn run(&mut self, events: &Receiver<Event>) -> RoleEnd {
        loop {
            if let Some(end) = self.drain_actions() {
                return end;
            }
            let timer = match self.core.poll_timeout() {
                Some(at) => crossbeam_channel::at(at),
                None => never(),
            };
            let none = never();
            let taps = self.pipeline.as_ref().map(|p| &p.taps);
            // Prep's output is read only while the sync stage has room for its txn: this
            // thread never waits on the sync stage, whose output it must keep draining.
            let sync_has_room = taps.and_then(|t| t.sync_in.as_ref()).is_some_and(|s| !s.is_full());
            let prep_out = match taps.and_then(|t| t.first_out.as_ref()) {
                Some(r) if sync_has_room => r,
                _ => &none,
            };
            let sync_out = taps.and_then(|t| t.sync_out.as_ref()).unwrap_or(&none);
            select! {
                recv(events) -> e => match e {
                    Ok(e) => self.on_event(e),
                    Err(_) => return RoleEnd::Error("learner acceptor stopped".into()),
                },
                recv(prep_out) -> r => match r {
                    Ok(r) => self.on_prepared(r),
                    Err(_) => return RoleEnd::Error("prep stage stopped".into()),
                },
                recv(sync_out) -> r => match r {
                    Ok(r) => self.on_logged(&r),
                    Err(_) => return RoleEnd::Error("sync stage stopped".into()),
                },
                recv(self.ctx.fatal_rx) -> f => match f {
                    Ok(f) => return RoleEnd::Fatal(f),
                    Err(_) => return RoleEnd::Error("the fatal channel closed".into()),
                },
                recv(timer) -> _ => {
                    self.core.handle_timeout(Instant::now());
                    // mntr's leader counters, refreshed every half tick (not per packet).
                    self.publish_stats();
                }
            }
            if !self.ctx.running() {
                return RoleEnd::Shutdown;
            }
        }
    }

    fn publish_stats(&self) {
        let q = &self.shared.quorum_stats;
        let synced = self.core.synced_learners();
        let followers = synced.iter().filter(|(_, obs)| !obs).count() as u64;
        q.learners.store(self.writers.len() as u64, Ordering::Relaxed);
        q.synced_followers.store(followers, Ordering::Relaxed);
        q.synced_observers.store(synced.len() as u64 - followers, Ordering::Relaxed);
        q.pending_syncs.store(self.core.pending_syncs() as u64, Ordering::Relaxed);
    }

    fn send(&self, h: Handle, packet: &QuorumPacket) {
        if let Some(w) = self.writers.get(&h) {
            let mut bytes = Vec::new();
            if write_packet(&mut bytes, packet).is_ok() {
                let _ = w.send(Outgoing::Bytes(bytes));
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        let now = Instant::now();
        match e {
            Event::Connected(h, w, stream) => {
                self.writers.insert(h, w);
                self.streams.insert(h, stream);
                self.core.connected(h);
            }
            Event::Gone(h) => {
                self.drop_learner(h);
                self.core.disconnected(h);
            }
            Event::LogRead(h, txns) => self.core.log_read(h, txns),
            Event::Packet(h, p) => {
                if p.packet_type() == Some(PacketType::Ping) {
                    self.on_ping(&p);
                }
                match from_packet(&p) {
                    Ok(msg) => {
                        if let Msg::LearnerInfo { sid, .. } = &msg {
                            if !self.address_matches(h, *sid) {
                                self.drop_learner(h);
                                self.core.disconnected(h);
                                return;
                            }
                            self.sids.insert(h, sid.0);
                        }
                        self.core.handle_msg(h, msg, now)
                    }
                    Err(e) => {
                        warn!("leader: dropping learner {h}: {e}");
                        self.drop_learner(h);
                        self.core.disconnected(h);
                    }
                }
            }
        }
    }

    /// With `quorumListenOnAllIPs` off, a learner must connect from an address its
    /// `server.N` host resolves to: a sid claimed from elsewhere is refused (logged).
    fn address_matches(&self, h: Handle, sid: ServerId) -> bool {
        let q = &self.ctx.quorum;
        if q.quorum_listen_on_all_ips {
            return true;
        }
        let Some(from) = self.streams.get(&h).and_then(|s| s.peer_addr().ok()) else { return true };
        let Some(spec) = q.servers.iter().find(|s| s.id == sid) else { return true };
        use std::net::ToSocketAddrs;
        let resolved: Vec<std::net::IpAddr> = match (spec.host.as_str(), 0).to_socket_addrs() {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(_) => return true,
        };
        let unspecified = resolved.iter().any(|ip| ip.is_unspecified());
        if unspecified || resolved.contains(&from.ip()) {
            return true;
        }
        warn!(
            "leader: learner {h} from {from} claims sid {sid}, whose server.{} host {} is {resolved:?}: refused",
            sid.0, spec.host
        );
        false
    }

    fn drop_learner(&mut self, h: Handle) {
        self.sids.remove(&h);
        self.writers.remove(&h);
        if let Some(s) = self.streams.remove(&h) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn on_ping(&mut self, p: &QuorumPacket) {
        let Ok(touched) = decode_ping_sessions(p.data()) else { return };
        let now = self.shared.now_ms();
        self.shared.with_sessions(|s| {
            for (id, timeout) in touched {
                s.touch(id, timeout, now);
            }
        });
    }

    /// A request out of prep: forwarded syncs and revalidations are answered to their
    /// learner; a txn is proposed and logged; everything else waits in the commit queue.
    fn on_prepared(&mut self, r: Request) {
        if let Some(origin) = r.origin {
            if let Kind::Revalidate { .. } = r.kind {
                let valid = r.err == crate::proto::ErrorCode::Ok;
                info!(
                    "leader: revalidated session 0x{:x} for learner {}: {valid}",
                    r.session, origin.link
                );
                let reply = RevalidateReply { session_id: r.session, valid };
                let packet = QuorumPacket::new(PacketType::Revalidate, -1, Some(reply.encode()));
                return self.send(origin.link, &packet);
            }
            if r.txn.is_none() && r.op == OpCode::Sync.code() {
                return self.core.sync_request(origin.link);
            }
        }
        let wait = match &r.txn {
            Some(entry) => {
                let zxid = entry.header.zxid;
                let mut payload = Vec::new();
                entry.encode(&mut payload);
                self.note_proposal_size(payload.len() as u64);
                self.core.propose(zxid, Arc::from(payload));
                let mut logged = Request::new(None, r.session, r.xid, r.op, Kind::Internal);
                logged.txn = r.txn.clone();
                if let Some(sync_in) = self.pipeline.as_ref().and_then(|p| p.taps.sync_in.as_ref())
                {
                    // Never blocks: prep's output is read only while this queue has room.
                    let _ = sync_in.try_send(logged);
                }
                Wait::Zxid(zxid)
            }
            None if r.kind == Kind::Client && r.op == OpCode::Sync.code() => Wait::Barrier,
            None => Wait::Nothing,
        };
        self.commits.submit(r.session, wait, r);
        self.release();
    }

    fn note_proposal_size(&self, size: u64) {
        let q = &self.shared.quorum_stats;
        q.last_proposal_size.store(size, Ordering::Relaxed);
        q.max_proposal_size.fetch_max(size, Ordering::Relaxed);
        let min = q.min_proposal_size.load(Ordering::Relaxed);
        if min == 0 || size < min {
            q.min_proposal_size.store(size, Ordering::Relaxed);
        }
    }

    /// A txn is durable in the local log: the leader's own ack.
    fn on_logged(&mut self, r: &Request) {
        if let Some(entry) = &r.txn {
            self.core.logged(entry.header.zxid);
        }
    }

    /// Hands what the commit queue released to apply, in order.
    fn release(&mut self) {
        let Some(apply_in) = self.pipeline.as_ref().and_then(|p| p.taps.apply_in.as_ref()) else {
            return;
        };
        while let Some(released) = self.commits.poll_released() {
            if let Released::Request(r) | Released::Committed(r, ()) = released {
                // Apply never waits on this thread, so waiting for room here cannot deadlock.
                let _ = apply_in.send(r);
            }
        }
    }

    fn drain_actions(&mut self) -> Option<RoleEnd> {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Send(h, msg) => {
                    let packet = to_packet(&msg, self.ctx.qv.text());
                    self.send(h, &packet);
                }
                Action::SendSnap(h) => self.send_snap(h),
                Action::ReadLog { h, from, to } => {
                    if self.log_reads.try_send((h, from, to)).is_err() {
                        // Thousands of learners behind at once: this one gets a SNAP.
                        self.core.log_read(h, None);
                    }
                }
                Action::Close(h, why) => {
                    info!("leader: closing learner {h}: {why}");
                    self.drop_learner(h);
                }
                Action::WriteAcceptedEpoch(e) => {
                    if let Err(e) = write_epoch_file(&self.ctx.config, "acceptedEpoch", e) {
                        return Some(RoleEnd::Error(e));
                    }
                }
                Action::WriteCurrentEpoch(e) => {
                    if let Err(e) = write_epoch_file(&self.ctx.config, "currentEpoch", e) {
                        return Some(RoleEnd::Error(e));
                    }
                }
                Action::StartServing { epoch } => {
                    if let Err(e) = self.start_serving(epoch) {
                        return Some(RoleEnd::Error(e));
                    }
                }
                Action::Committed(_) => {
                    self.commits.commit_through(self.core.last_committed());
                    self.release();
                    // Lets the core trim its committed log (kept for DIFF) down to
                    // commitLogCount: only entries the apply stage has passed may go.
                    self.core.set_applied(self.applied.load(Ordering::Acquire));
                }
                Action::Abandon(why) => return Some(RoleEnd::Lost(why)),
            }
        }
        None
    }

    /// A SNAP for learner `h`: its writer thread streams SNAP(zxid) and a fuzzy snapshot of
    /// the tree (everything up to the applied `zxid`, maybe more), then the committed
    /// proposals after `zxid` the core queues behind it. This loop never walks the tree.
    fn send_snap(&mut self, h: Handle) {
        let zxid = self.applied.load(Ordering::Acquire);
        self.core.set_applied(zxid);
        info!("leader: sending SNAP of zxid 0x{zxid:x} to learner {h}");
        if let Some(w) = self.writers.get(&h) {
            let _ = w.send(Outgoing::Snap(zxid));
        }
        self.core.snap_sent(h, zxid);
    }

    fn start_serving(&mut self, epoch: i64) -> Result<(), String> {
        info!("leader: serving epoch 0x{epoch:x}");
        let _ = self.ctx.election.send(super::election_thread::Control::UpdateElectionVote(epoch));
        let sink = super::peer::log_sink(&self.shared)?;
        let serve = self.ctx.serve_clients_as_leader();
        if !serve {
            // leaderServes=no: like Apache's leader, which then never attaches its server to
            // the client port: connections are closed, four-letter words say it is not serving.
            self.not_serving = Some(super::looking::start_not_serving(self.ctx)?);
        }
        let spec = PipelineSpec {
            stages: Stages::Leader,
            sink: Some(sink),
            serve_clients: serve,
            last_zxid: make_zxid(epoch, 0),
            applied: self.applied.clone(),
        };
        let pipeline = Pipeline::start(self.shared.clone(), spec, &self.ctx.fatal)
            .map_err(|e| format!("client pipeline: {e}"))?;
        *self.forward.lock().unwrap_or_else(|p| p.into_inner()) = Some(pipeline.input().clone());
        self.pipeline = Some(pipeline);
        Ok(())
    }
}

/// What every learner connection's threads share.
#[derive(Clone)]
struct LearnerIo {
    events: Sender<Event>,
    forward: Forward,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    max: usize,
    /// Quorum TLS (learners are accepted over TLS only) and SASL.
    security: PeerSecurity,
    /// How long a learner's TLS handshake and SASL exchange may take (initLimit ticks).
    handshake_timeout: Duration,
    /// TLS or SASL handshakes under way, each in its own thread.
    handshakes: Arc<AtomicUsize>,
}

fn accept_loop(listener: TcpListener, io: LearnerIo) {
    let mut next: Handle = 1;
    while !io.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, from)) => {
                let h = next;
                next += 1;
                info!("leader: learner connection {h} from {from}");
                if io.security.blocking_handshake() {
                    accept_secured(h, stream, from, &io);
                } else if let Err(e) = start_learner_io(h, PeerStream::plain(stream), &io) {
                    warn!("leader: cannot serve learner {from}: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                warn!("leader: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A learner connection under quorum TLS or SASL: the TLS handshake and the SASL exchange
/// (LearnerHandler's `authServer.authenticate`) run in its own thread within initLimit, at
/// most `quorum.cnxn.threads.size` at a time, then the connection is served as a plain one is.
fn accept_secured(h: Handle, stream: TcpStream, from: std::net::SocketAddr, io: &LearnerIo) {
    let busy = io.handshakes.fetch_add(1, Ordering::SeqCst);
    if busy >= io.security.handshake_threads {
        io.handshakes.fetch_sub(1, Ordering::SeqCst);
        warn!("leader: learner connection {h} from {from} refused: {busy} handshakes pending");
        return;
    }
    let io2 = io.clone();
    let spawned = std::thread::Builder::new().name(format!("learner-auth-{h}")).spawn(move || {
        let result = secure_learner(stream, from, &io2);
        io2.handshakes.fetch_sub(1, Ordering::SeqCst);
        let started = result.and_then(|s| start_learner_io(h, s, &io2).map_err(|e| e.to_string()));
        if let Err(e) = started {
            warn!("leader: learner connection {h} from {from} rejected: {e}");
        }
    });
    if let Err(e) = spawned {
        io.handshakes.fetch_sub(1, Ordering::SeqCst);
        warn!("leader: cannot start a handshake thread for {from}: {e}");
    }
}

/// TLS (if on), then SASL (if on), within initLimit.
fn secure_learner(
    tcp: TcpStream,
    from: std::net::SocketAddr,
    io: &LearnerIo,
) -> Result<PeerStream, String> {
    let deadline = Instant::now() + io.handshake_timeout;
    let timeout = Some(io.handshake_timeout);
    tcp.set_nonblocking(false)
        .and_then(|_| tcp.set_read_timeout(timeout))
        .and_then(|_| tcp.set_write_timeout(timeout))
        .map_err(|e| e.to_string())?;
    let stream = io.security.accept(tcp).map_err(|e| format!("TLS: {e}"))?;
    let stream = io.security.admit(stream, &from.to_string(), deadline)?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    stream.set_write_timeout(None).map_err(|e| e.to_string())?;
    Ok(stream)
}

fn start_learner_io(h: Handle, stream: PeerStream, io: &LearnerIo) -> std::io::Result<()> {
    stream.tcp().set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    // The reader is the handle itself: it replays what a SASL check read ahead.
    let handle = stream.try_clone()?;
    let writer = stream.try_clone()?;
    let reader = stream;
    // The learner's send queue (ZooKeeper's LearnerHandler.queuedPackets): not a stage queue;
    // it holds what the leader thread sends this learner until its socket takes it.
    let (wtx, wrx) = unbounded::<Outgoing>();
    let _ = io.events.send(Event::Connected(h, wtx, handle));
    let reader_io = io.clone();
    std::thread::Builder::new()
        .name(format!("learner-reader-{h}"))
        .spawn(move || read_learner(h, reader, &reader_io))?;
    let shared = io.shared.clone();
    std::thread::Builder::new().name(format!("learner-writer-{h}")).spawn(move || {
        let mut w = BufWriter::with_capacity(64 * 1024, writer);
        if let Err(e) = write_learner(h, &mut w, &wrx, &shared) {
            info!("leader: learner connection {h}: writing stopped: {e}");
        }
        let _ = w.get_ref().shutdown(std::net::Shutdown::Both);
    })?;
    Ok(())
}

/// A learner connection's writer: queued packets in order, flushed when the queue is empty;
/// a SNAP is streamed from the live tree here.
fn write_learner(
    h: Handle,
    w: &mut BufWriter<PeerStream>,
    queue: &Receiver<Outgoing>,
    shared: &Shared,
) -> std::io::Result<()> {
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(out) = next {
            match out {
                Outgoing::Bytes(bytes) => w.write_all(&bytes)?,
                Outgoing::Snap(zxid) => {
                    let started = Instant::now();
                    write_packet(&mut *w, &QuorumPacket::new(PacketType::Snap, zxid, None))?;
                    let mut stream = SnapStream::new(&mut *w);
                    let walked = database::write_fuzzy(shared, &mut stream)
                        .map_err(std::io::Error::other)?;
                    let bytes = stream.bytes();
                    stream.finish()?;
                    info!(
                        "leader: SNAP of zxid 0x{zxid:x} to learner {h}: {} znodes, {bytes} bytes \
                         in {} ms",
                        walked.nodes,
                        started.elapsed().as_millis()
                    );
                }
            }
            next = queue.try_recv().ok();
        }
        w.flush()?;
    }
    Ok(())
}

/// A learner connection's reader: REQUEST and REVALIDATE go to prep, everything else to the
/// leader thread.
fn read_learner(h: Handle, stream: PeerStream, io: &LearnerIo) {
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut sid: Option<u64> = None;
    loop {
        let p = match read_packet(&mut r, io.max) {
            Ok(p) => p,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    warn!("leader: closing learner connection {h}: bad packet: {e}");
                } else {
                    info!("leader: learner connection {h} closed: {e}");
                }
                let _ = io.events.send(Event::Gone(h));
                return;
            }
        };
        let forwarded = match p.packet_type() {
            Some(PacketType::Request) => Some(forwarded_request(h, sid, &p, &io.shared)),
            Some(PacketType::Revalidate) => Some(revalidation(h, sid, &p)),
            Some(PacketType::FollowerInfo | PacketType::ObserverInfo) => {
                sid = LearnerInfo::decode(p.data()).ok().map(|i| i.serverid as u64);
                None
            }
            _ => None,
        };
        match forwarded {
            None => {
                if io.events.send(Event::Packet(h, p)).is_err() {
                    return;
                }
            }
            Some(Err(why)) => warn!("leader: learner {h}: {why}"),
            Some(Ok(req)) => {
                if !forward(io, req) {
                    return;
                }
            }
        }
    }
}

/// Hands a forwarded request to prep, waiting while its queue is full; false when the role
/// is ending.
fn forward(io: &LearnerIo, mut req: Request) -> bool {
    let prep = io.forward.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(prep) = prep else {
        debug!("leader: forwarded request before serving, dropped");
        return true;
    };
    loop {
        match prep.send_timeout(req, Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(r)) if !io.stop.load(Ordering::SeqCst) => req = r,
            Err(_) => return false,
        }
    }
}

/// A learner's REQUEST as a request for prep.
fn forwarded_request(
    h: Handle,
    sid: Option<u64>,
    p: &QuorumPacket,
    shared: &Shared,
) -> Result<Request, String> {
    let sid = sid.ok_or("REQUEST before its LearnerInfo")?;
    let data = RequestData::decode(p.data()).map_err(|e| format!("undecodable REQUEST: {e}"))?;
    let mut req = if data.op == OpCode::CreateSession.code() {
        let timeout = decode_int_data(&data.body).unwrap_or(0);
        // Tracked at once, as PrepRequestProcessor does, so the session's next request (maybe
        // through another learner) finds it.
        let now_ms = shared.now_ms();
        shared.with_sessions(|s| s.add(data.session_id, timeout, now_ms));
        let kind = Kind::NewSession { timeout_ms: timeout, read_only_flag: false };
        Request::new(None, data.session_id, data.cxid, data.op, kind)
    } else {
        let mut r = Request::new(None, data.session_id, data.cxid, data.op, Kind::Client);
        r.body = data.body;
        r
    };
    if let Some(ids) = &p.authinfo {
        req.auth = Arc::new(AuthInfo { ids: ids.clone() });
    }
    req.origin = Some(Origin { sid, link: h });
    Ok(req)
}

/// A learner's REVALIDATE as a request for prep (answered by the leader thread).
fn revalidation(h: Handle, sid: Option<u64>, p: &QuorumPacket) -> Result<Request, String> {
    let sid = sid.ok_or("REVALIDATE before its LearnerInfo")?;
    let r = RevalidateRequest::decode(p.data()).map_err(|e| format!("bad REVALIDATE: {e}"))?;
    let kind = Kind::Revalidate { timeout_ms: r.timeout_ms };
    let mut req = Request::new(None, r.session_id, 0, OpCode::CreateSession.code(), kind);
    req.origin = Some(Origin { sid, link: h });
    Ok(req)
}
