//! LEADING: the shell around the [`Leader`] core (ZooKeeper's `Leader`, `LearnerHandler` and
//! `LeaderZooKeeperServer`).
//!
//! Threads while leading:
//!
//! ```text
//! quorum acceptor  accepts learners on the quorum port; per learner a reader thread
//!                  (packets -> leader thread) and a writer thread (queued bytes -> socket)
//! leader thread    this function's loop: select! over learner events, prep's output, the sync
//!                  stage's output and the core's timer; feeds the core, carries out its
//!                  actions; owns the commit queue
//! pipeline         (once serving) cnxn -> prep -> leader thread -> sync -> leader thread ->
//!                  apply, plus session expiry and the container reaper
//! ```
//!
//! The commit queue keeps every request in prep order after the local fsync; the head leaves
//! for the apply stage when it has no txn or its zxid is committed, so replies keep each
//! session's order and a read never sees a txn that is not committed. Forwarded requests
//! (REQUEST packets) enter prep like local ones but carry their learner as `origin`; their
//! replies are the learner's business.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, unbounded, Receiver, Sender};
use log::{debug, error, info, warn};

use super::peer::{write_epoch_file, PeerCtx, Pipeline, RoleEnd, Threads};
use super::zab::codec::{from_packet, to_packet};
use super::zab::leader::{Action, Handle, Leader, LeaderConfig};
use super::zab::msg::{make_zxid, Msg};
use super::zab::packet::{
    decode_int_data, decode_ping_sessions, read_packet, write_packet, PacketType, QuorumPacket,
    RequestData, RevalidateReply, RevalidateRequest,
};
use crate::proto::OpCode;
use crate::server::acl::AuthInfo;
use crate::server::database::Recovered;
use crate::server::processor::{self, Kind, Request};
use crate::server::{ServerMode, Shared};

/// What learner connections report to the leader thread.
enum Event {
    Connected(Handle, Sender<Vec<u8>>, TcpStream),
    Packet(Handle, QuorumPacket),
    Gone(Handle),
}

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
    let mut settings = ctx.settings.clone();
    settings.mode = ServerMode::Leader;
    let last_zxid = rec.tree.last_processed_zxid;
    let snapshot_first = super::peer::needs_snapshot(&rec);
    let shared = Arc::new(Shared::new(settings, rec.tree, ctx.tracker(&rec.sessions)));
    if snapshot_first {
        if let Err(e) = super::peer::snapshot_now(&shared) {
            return RoleEnd::Error(e);
        }
    }
    let committed_log = super::peer::committed_log_tail(&ctx.settings, last_zxid);
    let now = Instant::now();
    let core = Leader::new(
        LeaderConfig {
            my_sid: q.server_id,
            qv: ctx.qv.clone(),
            tick: ctx.settings.tick,
            init_limit: q.init_limit_ticks,
            sync_limit: q.sync_limit_ticks,
            commit_log_count: 500,
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
    let (events_tx, events) = unbounded::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (tx, stop) = (events_tx.clone(), stop.clone());
        let max = ctx.settings.jute_max_buffer.max(1 << 20) * 2;
        std::thread::Builder::new()
            .name("quorum-acceptor".into())
            .spawn(move || accept_loop(listener, tx, stop, max))
    };
    let acceptor = match acceptor {
        Ok(a) => a,
        Err(e) => return RoleEnd::Error(format!("cannot start the acceptor: {e}")),
    };
    let mut shell = LeaderShell {
        not_serving: None,
        ctx,
        core,
        shared,
        writers: BTreeMap::new(),
        streams: BTreeMap::new(),
        sids: BTreeMap::new(),
        fifo: VecDeque::new(),
        pipeline: None,
        applied: Arc::new(AtomicI64::new(last_zxid)),
    };
    let end = shell.run(&events);
    stop.store(true, Ordering::SeqCst);
    for s in shell.streams.values() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    shell.writers.clear();
    if let Some(p) = shell.pipeline.take() {
        p.stop();
    }
    if let Some(t) = shell.not_serving.take() {
        t.stop();
    }
    let _ = acceptor.join();
    end
}

struct LeaderShell<'a> {
    /// With `leaderServes=no`: the client port answers as a server that is not running.
    not_serving: Option<Threads>,
    ctx: &'a PeerCtx,
    core: Leader,
    shared: Arc<Shared>,
    writers: BTreeMap<Handle, Sender<Vec<u8>>>,
    streams: BTreeMap<Handle, TcpStream>,
    /// Learner sids by connection, once their LearnerInfo arrived.
    sids: BTreeMap<Handle, u64>,
    fifo: VecDeque<Request>,
    pipeline: Option<Pipeline>,
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
            let (prep_out, sync_out) = match &self.pipeline {
                Some(p) => (&p.first_out, &p.sync_out),
                None => (&none, &none),
            };
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
                    Ok(r) => self.on_logged(r),
                    Err(_) => return RoleEnd::Error("sync stage stopped".into()),
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
                let _ = w.send(bytes);
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
            Event::Packet(h, p) => {
                match p.packet_type() {
                    Some(PacketType::Request) => self.on_request(h, &p),
                    Some(PacketType::Ping) => self.on_ping(&p),
                    Some(PacketType::Revalidate) => self.on_revalidate(h, &p),
                    _ => {}
                }
                match from_packet(&p) {
                    Ok(msg) => {
                        if let Msg::LearnerInfo { sid, .. } = &msg {
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

    fn drop_learner(&mut self, h: Handle) {
        self.sids.remove(&h);
        self.writers.remove(&h);
        if let Some(s) = self.streams.remove(&h) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// A client request forwarded by a learner: into prep, like a local one.
    fn on_request(&mut self, h: Handle, p: &QuorumPacket) {
        let Some(pipeline) = &self.pipeline else {
            debug!("leader: REQUEST before serving, dropped");
            return;
        };
        let data = match RequestData::decode(p.data()) {
            Ok(d) => d,
            Err(e) => return warn!("leader: undecodable REQUEST from learner {h}: {e}"),
        };
        let now_ms = self.shared.now_ms();
        let mut req = if data.op == OpCode::CreateSession.code() {
            let timeout = decode_int_data(&data.body).unwrap_or(0);
            // Tracked at once, as PrepRequestProcessor does, so the session's next request
            // (maybe through another learner) finds it.
            self.shared.with_sessions(|s| s.add(data.session_id, timeout, now_ms));
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
        let Some(sid) = self.sids.get(&h) else {
            return warn!("leader: REQUEST from learner {h} before its LearnerInfo");
        };
        req.origin = Some(*sid);
        let _ = pipeline.threads.prep_tx.send(req);
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

    fn on_revalidate(&mut self, h: Handle, p: &QuorumPacket) {
        let Ok(r) = RevalidateRequest::decode(p.data()) else { return };
        let now = self.shared.now_ms();
        let owner = self.sids.get(&h).copied();
        let valid = self.shared.with_sessions(|s| {
            let valid = s.touch(r.session_id, r.timeout_ms, now);
            if let (true, Some(owner)) = (valid, owner) {
                s.set_owner(r.session_id, owner);
            }
            valid
        });
        info!("leader: revalidated session 0x{:x} for learner {h}: {valid}", r.session_id);
        let reply = RevalidateReply { session_id: r.session_id, valid };
        let packet = QuorumPacket::new(PacketType::Revalidate, -1, Some(reply.encode()));
        self.send(h, &packet);
    }

    /// A request out of prep: propose its txn, then on to the local log.
    fn on_prepared(&mut self, r: Request) {
        if let (Some(sid), None) = (r.origin, &r.txn) {
            if r.op == OpCode::Sync.code() {
                let h = self.sids.iter().find(|(_, s)| **s == sid).map(|(h, _)| *h);
                if let Some(h) = h {
                    self.core.sync_request(h);
                }
                return;
            }
        }
        if let Some(entry) = &r.txn {
            let mut payload = Vec::new();
            entry.encode(&mut payload);
            let q = &self.shared.quorum_stats;
            let size = payload.len() as u64;
            q.last_proposal_size.store(size, Ordering::Relaxed);
            q.max_proposal_size.fetch_max(size, Ordering::Relaxed);
            let min = q.min_proposal_size.load(Ordering::Relaxed);
            if min == 0 || size < min {
                q.min_proposal_size.store(size, Ordering::Relaxed);
            }
            self.core.propose(entry.header.zxid, Arc::from(payload));
        }
        if let Some(p) = &self.pipeline {
            let _ = p.sync_in.send(r);
        }
    }

    /// A request whose txn (if any) is durable locally: the leader's own ack.
    fn on_logged(&mut self, r: Request) {
        if let Some(entry) = &r.txn {
            self.core.logged(entry.header.zxid);
        }
        self.fifo.push_back(r);
        self.release();
    }

    /// Hands committed requests (and the reads queued behind them) to apply, in order.
    fn release(&mut self) {
        let Some(p) = &self.pipeline else { return };
        let committed = self.core.last_committed();
        while let Some(head) = self.fifo.front() {
            if head.txn.as_ref().is_some_and(|e| e.header.zxid > committed) {
                break;
            }
            if let Some(r) = self.fifo.pop_front() {
                if r.origin.is_some() && r.txn.is_none() {
                    continue;
                }
                let _ = p.apply_in.send(r);
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
                    let factor = self.ctx.quorum.snapshot_size_factor;
                    let txns =
                        super::peer::committed_txns_from_log(&self.ctx.settings, factor, from, to);
                    self.core.log_read(h, txns);
                }
                Action::Close(h, why) => {
                    info!("leader: closing learner {h}: {why}");
                    self.drop_learner(h);
                }
                Action::WriteAcceptedEpoch(e) => {
                    if let Err(e) = write_epoch_file(&self.ctx.settings, "acceptedEpoch", e) {
                        return Some(RoleEnd::Error(e));
                    }
                }
                Action::WriteCurrentEpoch(e) => {
                    if let Err(e) = write_epoch_file(&self.ctx.settings, "currentEpoch", e) {
                        return Some(RoleEnd::Error(e));
                    }
                }
                Action::StartServing { epoch } => {
                    if let Err(e) = self.start_serving(epoch) {
                        return Some(RoleEnd::Error(e));
                    }
                }
                Action::Committed(_) => {
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

    /// Streams the tree to a learner: SNAP(zxid) + body + signature, then the core queues the
    /// committed proposals after `zxid`.
    fn send_snap(&mut self, h: Handle) {
        self.core.set_applied(self.applied.load(Ordering::Acquire));
        let sessions = self.shared.with_sessions(|s| s.sessions_with_timeouts());
        let (zxid, bytes) = {
            let tree = self.shared.read_tree();
            let zxid = tree.last_processed_zxid;
            let mut bytes = Vec::new();
            let packet = QuorumPacket::new(PacketType::Snap, zxid, None);
            let ok = write_packet(&mut bytes, &packet).is_ok()
                && super::zab::snap::write_snap(&mut bytes, &tree, &sessions).is_ok();
            if !ok {
                error!("leader: cannot serialize the snapshot for learner {h}");
            }
            (zxid, bytes)
        };
        info!("leader: sending SNAP of zxid 0x{zxid:x} ({} bytes) to learner {h}", bytes.len());
        if let Some(w) = self.writers.get(&h) {
            let _ = w.send(bytes);
        }
        self.core.snap_sent(h, zxid);
    }

    fn start_serving(&mut self, epoch: i64) -> Result<(), String> {
        info!("leader: serving epoch 0x{epoch:x}");
        let _ = self.ctx.election.send(super::election_thread::Control::UpdateElectionVote(epoch));
        let shared = &self.shared;
        let (prep_out_tx, prep_out) = unbounded::<Request>();
        let sink = super::peer::log_sink(shared)?;
        let serve = self.ctx.serve_clients_as_leader();
        if !serve {
            // leaderServes=no: like Apache's leader, which then never attaches its server to
            // the client port: connections are closed, four-letter words say it is not serving.
            self.not_serving = Some(super::looking::start_not_serving(self.ctx)?);
        }
        let mut threads =
            Threads::new(shared.clone(), serve).map_err(|e| format!("client port: {e}"))?;
        let prep =
            processor::prep::Prep::new(shared.clone(), make_zxid(epoch, 0), self.applied.clone());
        let prep_rx = threads.take_prep_rx();
        threads.spawn("prep", move || prep.run(prep_rx, prep_out_tx))?;
        let (sync_in, sync_out) = threads.start_sync(sink)?;
        let apply_in = threads.start_apply(self.applied.clone())?;
        threads.start_leader_tasks()?;
        threads.start_selector()?;
        self.pipeline =
            Some(Pipeline { threads, first_out: prep_out, sync_in, sync_out, apply_in });
        Ok(())
    }
}

fn accept_loop(listener: TcpListener, tx: Sender<Event>, stop: Arc<AtomicBool>, max: usize) {
    let mut next: Handle = 1;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, from)) => {
                let h = next;
                next += 1;
                info!("leader: learner connection {h} from {from}");
                if let Err(e) = start_learner_io(h, stream, &tx, max) {
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

fn start_learner_io(
    h: Handle,
    stream: TcpStream,
    tx: &Sender<Event>,
    max: usize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    let reader = stream.try_clone()?;
    let writer = stream.try_clone()?;
    let (wtx, wrx) = unbounded::<Vec<u8>>();
    let _ = tx.send(Event::Connected(h, wtx, stream));
    let events = tx.clone();
    std::thread::Builder::new().name(format!("learner-reader-{h}")).spawn(move || {
        let mut r = BufReader::with_capacity(64 * 1024, reader);
        loop {
            match read_packet(&mut r, max) {
                Ok(p) => {
                    if events.send(Event::Packet(h, p)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        warn!("leader: closing learner connection {h}: bad packet: {e}");
                    } else {
                        info!("leader: learner connection {h} closed: {e}");
                    }
                    let _ = events.send(Event::Gone(h));
                    return;
                }
            }
        }
    })?;
    std::thread::Builder::new().name(format!("learner-writer-{h}")).spawn(move || {
        let mut w = BufWriter::with_capacity(64 * 1024, writer);
        while let Ok(bytes) = wrx.recv() {
            if w.write_all(&bytes).is_err() {
                return;
            }
            while let Ok(more) = wrx.try_recv() {
                if w.write_all(&more).is_err() {
                    return;
                }
            }
            if w.flush().is_err() {
                return;
            }
        }
        let _ = w.get_ref().shutdown(std::net::Shutdown::Both);
    })?;
    Ok(())
}
