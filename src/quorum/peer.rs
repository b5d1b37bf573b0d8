//! The quorum peer (ZooKeeper's `QuorumPeer.run`): start-up of a replicated server and its role
//! loop.
//!
//! Start-up binds the election port, starts the election connection manager and the election
//! thread (they live as long as the process), and the purge task. Then, forever: recover the
//! database from disk, read the epoch files, start an election with the last logged zxid and
//! current epoch, and play the decided role — [`super::leading::lead`] or
//! [`super::learning::learn`] (follower or observer) — until it ends (the leader lost its
//! quorum, the learner lost its leader, a protocol error); then LOOKING again. Each role builds
//! its own client pipeline over the freshly recovered database and tears it down at the end,
//! closing client connections (clients reconnect to another server and keep their sessions).

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use log::{error, info, warn};

use super::cnxmanager::CnxManager;
use super::election::{Election, ElectionConfig};
use super::election_thread::{self, Control};
use super::vote::{QuorumMaj, ServerState};
use super::zab::msg::{epoch_of, make_zxid, Payload};
use crate::config::{HostPort, LearnerType, QuorumConfig, ServerConfig};
use crate::persistence::{epoch, txnlog, version_dir};
use crate::proto::Zxid;
use crate::server::cnxn::Selector;
use crate::server::database::LogSink;
use crate::server::processor::{Outbound, Request};
use crate::server::session::SessionTracker;
use crate::server::{database, processor, reaper, ConnId, Settings, Shared};

/// How a role ended.
#[derive(Debug)]
pub enum RoleEnd {
    /// The quorum or the leader was lost: elect again.
    Lost(String),
    /// Something failed locally: elect again after a pause.
    Error(String),
    /// The process is stopping.
    Shutdown,
}

/// What every role needs from the peer.
pub struct PeerCtx {
    /// The parsed configuration.
    pub config: ServerConfig,
    /// Its quorum part.
    pub quorum: QuorumConfig,
    /// The ensemble as the election and Zab see it.
    pub qv: QuorumMaj,
    /// Settings of the client-facing server.
    pub settings: Settings,
    /// The election thread's control channel.
    pub election: Sender<Control>,
    running: AtomicBool,
}

impl PeerCtx {
    /// Whether the peer keeps running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// A session tracker holding the recovered sessions.
    pub fn tracker(&self, sessions: &[(i64, i32)]) -> SessionTracker {
        let tick = self.settings.tick.as_millis() as u64;
        let now = processor::wall_clock_ms() as u64;
        let mut t = SessionTracker::new(tick, self.settings.server_id, now);
        for (id, timeout) in sessions {
            t.add(*id, *timeout, 0);
        }
        t
    }

    /// Whether the leader accepts client connections (`leaderServes`).
    pub fn serve_clients_as_leader(&self) -> bool {
        self.quorum.leader_serves
    }
}

/// Whether the data dir has no snapshot yet: a role then writes one first, so that every later
/// start has a base to replay the log onto. Unlike a standalone server, a peer does not
/// snapshot the replayed log at start-up: its tail may hold txns that never committed, which a
/// TRUNC from the next leader must be able to cut (a snapshot would keep them).
pub fn needs_snapshot(rec: &database::Recovered) -> bool {
    rec.snapshot_zxid < 0
}

/// The role's txn log writer.
pub fn log_sink(shared: &Arc<Shared>) -> Result<LogSink, String> {
    LogSink::new(shared.clone()).map_err(|e| format!("txn log: {e}"))
}

/// Writes a snapshot of `shared` now (before the role serves anyone).
pub fn snapshot_now(shared: &Shared) -> Result<(), String> {
    database::take_snapshot(shared).map(|_| ()).map_err(|e| format!("snapshot: {e}"))
}

/// Writes an epoch file in dataDir's `version-2`.
pub fn write_epoch_file(settings: &Settings, name: &str, value: i64) -> Result<(), String> {
    let dir = version_dir(&settings.data_dir);
    epoch::write_epoch(&dir, name, value.max(0) as u64).map_err(|e| format!("{name}: {e}"))
}

fn read_epoch_file(settings: &Settings, name: &str, last_zxid: i64) -> Result<i64, String> {
    let dir = version_dir(&settings.data_dir);
    match epoch::read_epoch(&dir, name).map_err(|e| e.to_string())? {
        Some(e) => Ok(e as i64),
        None => {
            // Like QuorumPeer.loadDataBase: a missing file starts at the last zxid's epoch.
            let e = epoch_of(last_zxid.max(0));
            info!("{name} not found! Creating with a reasonable default of {e}.");
            write_epoch_file(settings, name, e)?;
            Ok(e)
        }
    }
}

/// The txns of the local log with zxids in `from..=to`, as the payloads Zab sends (a txn
/// header and body); an `Err` item where a log file cannot be read.
fn logged_payloads(
    settings: &Settings,
    from: i64,
    to: i64,
) -> Result<impl Iterator<Item = Result<(i64, Payload), String>>, String> {
    let iter =
        txnlog::read_log(&version_dir(&settings.data_log_dir), from).map_err(|e| e.to_string())?;
    let payloads = iter.map(|t| {
        let t = t.map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        t.entry.encode(&mut bytes);
        Ok((t.entry.header.zxid, Arc::from(bytes)))
    });
    Ok(payloads.take_while(move |t| t.as_ref().map_or(true, |(zxid, _)| *zxid <= to)))
}

/// The newest committed txns of the local log (at most 500, ending at `last_zxid`), for the
/// leader's DIFFs.
pub fn committed_log_tail(settings: &Settings, last_zxid: i64) -> Vec<(i64, Payload)> {
    let from = make_zxid(epoch_of(last_zxid.max(0)), ((last_zxid & 0xffff_ffff) - 500).max(0));
    let mut out: VecDeque<(i64, Payload)> = VecDeque::new();
    let Ok(payloads) = logged_payloads(settings, from, last_zxid) else { return Vec::new() };
    for t in payloads {
        let Ok(t) = t else { break };
        out.push_back(t);
        if out.len() > 500 {
            out.pop_front();
        }
    }
    out.into_iter().collect()
}

/// The committed txns with zxids in `from..=to` from the txn log, for a learner behind the
/// leader's committed log (ZooKeeper's `ZKDatabase.getProposalsFromTxnLog`). `None` when
/// txn-log sync is off (`snapshotSizeFactor` < 0), when the txns to send would add up to more
/// than `snapshotSizeFactor` times the newest snapshot's size (no limit without a snapshot,
/// as in ZooKeeper), when `from` is older than the newest snapshot (see below), or when the
/// log cannot be read; the leader core checks that what came
/// back starts at `from`, reaches `to` and has no gap. ZooKeeper compares the log *files'*
/// sizes, preallocation included; rzk counts the bytes it would send.
pub fn committed_txns_from_log(
    settings: &Settings,
    factor: f64,
    from: i64,
    to: i64,
) -> Option<Vec<(i64, Payload)>> {
    if factor < 0.0 {
        info!("txn-log sync is off (snapshotSizeFactor {factor})");
        return None;
    }
    let snap_dir = version_dir(&settings.data_dir);
    let newest = crate::persistence::snapshot::find_n_most_recent_snapshots(&snap_dir, 1)
        .ok()
        .and_then(|v| v.into_iter().next());
    if let Some((snap_zxid, _)) = &newest {
        if from < *snap_zxid {
            // Log entries older than the newest snapshot may be ones a SNAP sync replaced (a
            // txn this peer logged but that never committed stays in its old log file); only
            // the log after the snapshot is known to be this peer's history.
            info!("txn-log sync from 0x{from:x}: older than the newest snapshot (0x{snap_zxid:x})");
            return None;
        }
    }
    let newest_snapshot =
        newest.and_then(|(_, path)| std::fs::metadata(path).ok()).map_or(0, |m| m.len());
    let limit = (newest_snapshot as f64 * factor) as u64;
    let mut out = Vec::new();
    let mut bytes = 0u64;
    let payloads = match logged_payloads(settings, from, to) {
        Ok(p) => p,
        Err(e) => {
            warn!("txn-log sync from 0x{from:x}: {e}");
            return None;
        }
    };
    for t in payloads {
        let (zxid, payload) = match t {
            Ok(t) => t,
            Err(e) => {
                warn!("txn-log sync from 0x{from:x}: {e}");
                return None;
            }
        };
        bytes += payload.len() as u64;
        if limit > 0 && bytes > limit {
            info!(
                "txn-log sync from 0x{from:x}: more than {limit} bytes ({factor} of the newest \
                 snapshot's {newest_snapshot}); a snapshot it is"
            );
            return None;
        }
        out.push((zxid, payload));
        if zxid == to {
            break;
        }
    }
    Some(out)
}

/// The client-facing threads of one role: selector, apply and whatever the role adds.
pub struct Threads {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Into the role's first stage.
    pub prep_tx: Sender<Request>,
    prep_rx: Option<Receiver<Request>>,
    out_tx: Sender<Outbound>,
    selector: Option<Selector>,
    waker: Arc<mio::Waker>,
    _poll: Option<mio::Poll>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    /// Binds the client port (when `serve_clients`) over `shared`.
    pub fn new(shared: Arc<Shared>, serve_clients: bool) -> std::io::Result<Threads> {
        let (prep_tx, prep_rx) = unbounded::<Request>();
        let (out_tx, out_rx) = unbounded::<Outbound>();
        let stop = Arc::new(AtomicBool::new(false));
        let (selector, waker, poll) = if serve_clients {
            let s = bind_retrying(&shared, &prep_tx, out_rx, &stop)?;
            let w = s.waker();
            (Some(s), w, None)
        } else {
            let poll = mio::Poll::new()?;
            let w = Arc::new(mio::Waker::new(poll.registry(), mio::Token(1))?);
            (None, w, Some(poll))
        };
        Ok(Threads {
            shared,
            prep_tx,
            prep_rx: Some(prep_rx),
            out_tx,
            selector,
            waker,
            _poll: poll,
            stop,
            handles: Vec::new(),
        })
    }

    /// The receiving end of the first stage (once).
    pub fn take_prep_rx(&mut self) -> Receiver<Request> {
        self.prep_rx.take().unwrap_or_else(|| unbounded().1)
    }

    /// Spawns a named thread that stops with the others.
    pub fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
        let h = crate::server::spawn(name, f).map_err(|e| format!("thread {name}: {e}"))?;
        self.handles.push(h);
        Ok(())
    }

    /// Starts the sync stage, which writes to the local txn log through `sink`; returns its
    /// input and output channels.
    pub fn start_sync(
        &mut self,
        sink: LogSink,
    ) -> Result<(Sender<Request>, Receiver<Request>), String> {
        let (sync_in, sync_rx) = unbounded::<Request>();
        let (sync_tx, sync_out) = unbounded::<Request>();
        let sink = crate::server::BoxSink(Box::new(sink));
        let sync = processor::sync::Sync::new(sink, self.shared.settings.fsync_warning);
        self.spawn("sync", move || sync.run(sync_rx, sync_tx))?;
        Ok((sync_in, sync_out))
    }

    /// Starts the apply stage; returns its (bounded) input.
    pub fn start_apply(&mut self, applied: Arc<AtomicI64>) -> Result<Sender<Request>, String> {
        let (tx, rx) = crossbeam_channel::bounded::<Request>(crate::server::STAGE_QUEUE);
        let apply = processor::apply::Apply::new(
            self.shared.clone(),
            applied,
            self.out_tx.clone(),
            self.waker.clone(),
        );
        self.spawn("apply", move || apply.run(rx))?;
        Ok(tx)
    }

    /// Session expiry and the container reaper (leader only).
    pub fn start_leader_tasks(&mut self) -> Result<(), String> {
        let (s, p, st) = (self.shared.clone(), self.prep_tx.clone(), self.stop.clone());
        self.spawn("session-expiry", move || crate::server::expiry_loop(s, p, st))?;
        let (s, p, st) = (self.shared.clone(), self.prep_tx.clone(), self.stop.clone());
        self.spawn("container-reaper", move || reaper::run(s, p, st))
    }

    /// Starts serving clients.
    pub fn start_selector(&mut self) -> Result<(), String> {
        if let Some(sel) = self.selector.take() {
            info!("serving clients on {}", sel.local_addr());
            self.spawn("cnxn", move || sel.run())?;
        }
        Ok(())
    }

    /// Finishes the handshake of a client connection re-attaching `session` with the leader's
    /// REVALIDATE answer.
    pub fn revalidated(&self, conn: ConnId, session: i64, valid: bool) {
        let _ = self.out_tx.send(Outbound::Revalidated { conn, session, valid });
        let _ = self.waker.wake();
    }

    /// Stops every thread: the selector closes its connections.
    pub fn stop(self) {
        let Threads { prep_tx, stop, waker, handles, selector, prep_rx, out_tx, shared, .. } = self;
        stop.store(true, Ordering::SeqCst);
        shared.running.store(false, Ordering::SeqCst);
        drop((prep_tx, selector, prep_rx, out_tx));
        let _ = waker.wake();
        for h in handles {
            let _ = h.join();
        }
    }
}

/// A role's running client pipeline: the threads, and the channel ends the role's own thread
/// drives (the first stage's output, the sync stage's input and output, apply's input).
pub struct Pipeline {
    /// The threads.
    pub threads: Threads,
    /// Requests out of the first stage (leader: prep; learner: the clients' requests).
    pub first_out: Receiver<Request>,
    /// Into the local txn log.
    pub sync_in: Sender<Request>,
    /// Out of the local txn log (durable).
    pub sync_out: Receiver<Request>,
    /// Into the apply stage.
    pub apply_in: Sender<Request>,
}

impl Pipeline {
    /// Closes the stages' inputs and stops every thread.
    pub fn stop(self) {
        let Pipeline { threads, sync_in, apply_in, .. } = self;
        drop(sync_in);
        drop(apply_in);
        threads.stop();
    }
}

/// Binds the client port; the previous role's listener may take a moment to go.
fn bind_retrying(
    shared: &Arc<Shared>,
    prep_tx: &Sender<Request>,
    out_rx: Receiver<Outbound>,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Selector> {
    let mut tries = 0;
    loop {
        match Selector::bind(shared.clone(), prep_tx.clone(), out_rx.clone(), stop.clone()) {
            Ok(s) => return Ok(s),
            Err(e) if tries < 50 && e.kind() == std::io::ErrorKind::AddrInUse => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The `conf` lines of a quorum member after `serverId` (like `QuorumZooKeeperServer.dumpConf`).
fn quorum_conf(q: &QuorumConfig) -> String {
    let me = q.me();
    format!(
        "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={}\n\
         membership: \n{}",
        q.init_limit_ticks,
        q.sync_limit_ticks,
        me.election_port,
        me.quorum_port,
        q.peer_type as i32,
        q.membership()
    )
}

/// Runs a quorum peer until the process is killed.
pub fn run(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let Some(quorum) = config.quorum.clone() else {
        return Err("not a quorum configuration".into());
    };
    let mut settings = Settings::from_config(&config);
    settings.server_id = (quorum.server_id.0 & 0xff) as u8;
    settings.quorum_conf = Some(quorum_conf(&quorum));
    let qv = QuorumMaj::from_config(&quorum);
    let me = quorum.me().clone();

    if settings.autopurge_interval > Duration::ZERO {
        let (d, l, n, i) = (
            settings.data_dir.clone(),
            settings.data_log_dir.clone(),
            settings.autopurge_retain,
            settings.autopurge_interval,
        );
        let stop = Arc::new(AtomicBool::new(false));
        crate::server::spawn("purge", move || database::purge_loop(d, l, n, i, stop))?;
    }

    let host = if quorum.quorum_listen_on_all_ips { "0.0.0.0".to_owned() } else { me.host.clone() };
    let listener = bind_election_port(&host, me.election_port, quorum.election_port_bind_retry)?;
    let peers: BTreeMap<_, _> = quorum
        .servers
        .iter()
        .map(|s| (s.id, HostPort { host: s.host.clone(), port: s.election_port }))
        .collect();
    let my_address = HostPort { host: me.host.clone(), port: me.election_port };
    let (cnx, received) =
        CnxManager::new(quorum.server_id, vec![my_address], peers, quorum.cnx_timeout);
    cnx.listen(listener)?;

    let rec =
        database::recover(&settings.data_dir, &settings.data_log_dir, settings.extended_types)?;
    let last = rec.tree.last_processed_zxid;
    let current = read_epoch_file(&settings, "currentEpoch", last)?;
    read_epoch_file(&settings, "acceptedEpoch", last)?;
    if current < epoch_of(last.max(0)) {
        return Err(format!(
            "The current epoch, {current}, is older than the last zxid, 0x{last:x}"
        )
        .into());
    }
    // The first role plays on this database; later ones recover again (the role before
    // changed the data on disk).
    let mut first = Some(rec);
    let core =
        Election::new(quorum.server_id, qv.clone(), Zxid(last), current, ElectionConfig::default());
    let (control, control_rx) = unbounded();
    let (outcomes_tx, outcomes) = unbounded();
    election_thread::spawn(core, cnx, received, control_rx, outcomes_tx)?;

    let ctx =
        PeerCtx { config, quorum, qv, settings, election: control, running: AtomicBool::new(true) };
    info!(
        "quorum peer {} ({:?}) starting: {} servers",
        ctx.quorum.server_id.0,
        me.role,
        ctx.quorum.servers.len()
    );
    loop {
        let rec = match first.take() {
            Some(rec) => rec,
            None => database::recover(
                &ctx.settings.data_dir,
                &ctx.settings.data_log_dir,
                ctx.settings.extended_types,
            )?,
        };
        let last = rec.tree.last_processed_zxid;
        let current = read_epoch_file(&ctx.settings, "currentEpoch", last)?;
        let accepted = read_epoch_file(&ctx.settings, "acceptedEpoch", last)?;
        let start = Control::Start { last_logged_zxid: Zxid(last), current_epoch: current };
        if ctx.election.send(start).is_err() {
            return Err("the election thread stopped".into());
        }
        let outcome = wait_for_leader(&ctx, &outcomes)?;
        let leader = outcome.vote.leader;
        info!(
            "election decided: leader {} (zxid 0x{:x}, epoch 0x{:x}), I am {:?}",
            leader.0, outcome.vote.zxid.0, outcome.vote.peer_epoch, outcome.vote.state
        );
        let end = match outcome.vote.state {
            ServerState::Leading => super::leading::lead(&ctx, rec, accepted, current),
            ServerState::Following | ServerState::Observing => {
                let observer = me.role == LearnerType::Observer;
                super::learning::learn(&ctx, rec, leader, observer, accepted, current)
            }
            ServerState::Looking => RoleEnd::Error("election ended LOOKING".into()),
        };
        match end {
            RoleEnd::Lost(why) => warn!("role ended: {why}; looking for a leader"),
            RoleEnd::Error(why) => {
                error!("role failed: {why}; looking for a leader");
                std::thread::sleep(Duration::from_millis(200));
            }
            RoleEnd::Shutdown => return Ok(()),
        }
    }
}

/// Waits for the election outcome, serving the client port meanwhile: not serving, or after a
/// while read-only (`readonlymode.enabled`).
fn wait_for_leader(
    ctx: &PeerCtx,
    outcomes: &Receiver<super::election::Outcome>,
) -> Result<super::election::Outcome, Box<dyn std::error::Error>> {
    let mut port = match super::looking::start_not_serving(ctx) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!("client port while looking: {e}");
            None
        }
    };
    let ro_delay = ctx.settings.tick.max(Duration::from_secs(2));
    let mut ro_timer = if ctx.config.read_only_mode_enabled {
        crossbeam_channel::after(ro_delay)
    } else {
        crossbeam_channel::never()
    };
    let outcome = loop {
        crossbeam_channel::select! {
            recv(outcomes) -> o => match o {
                Ok(o) => break o,
                Err(_) => return Err("the election thread stopped".into()),
            },
            recv(ro_timer) -> _ => {
                ro_timer = crossbeam_channel::never();
                if let Some(t) = port.take() {
                    t.stop();
                }
                match super::looking::start_read_only(ctx) {
                    Ok(t) => port = Some(t),
                    Err(e) => warn!("cannot start the read-only server: {e}"),
                }
            }
        }
    };
    if let Some(t) = port.take() {
        t.stop();
    }
    Ok(outcome)
}

fn bind_election_port(host: &str, port: u16, retries: u32) -> std::io::Result<TcpListener> {
    let mut attempt = 0u32;
    loop {
        match TcpListener::bind((host, port)) {
            Ok(l) => return Ok(l),
            Err(e) => {
                attempt += 1;
                if retries != 0 && attempt >= retries {
                    return Err(e);
                }
                warn!("cannot bind the election port {host}:{port} ({e}); retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
