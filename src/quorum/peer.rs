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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use log::{error, info, warn};

use super::auth::PeerSecurity;
use super::cnxmanager::CnxManager;
use super::election::{Election, ElectionConfig};
use super::election_thread::{self, Control};
use super::vote::{QuorumMaj, ServerState};
use super::zab::msg::{epoch_of, make_zxid, Payload};
use crate::config::{HostPort, LearnerType, QuorumConfig, ServerConfig};
use crate::persistence::{epoch, txnlog};
use crate::proto::Zxid;
use crate::server::role::database::{self, LogSink};
use crate::server::role::PurgeTask;
use crate::server::role::SessionTracker;
use crate::server::role::Shared;
use crate::server::role::{Fatal, FatalTx};

/// How a role ended.
#[derive(Debug)]
pub enum RoleEnd {
    /// The quorum or the leader was lost: elect again.
    Lost(String),
    /// Something failed locally: elect again after a pause.
    Error(String),
    /// The process is stopping.
    Shutdown,
    /// A critical thread failed: the process goes down.
    Fatal(Fatal),
}

/// What every role needs from the peer.
pub struct PeerCtx {
    /// The parsed configuration.
    pub config: Arc<ServerConfig>,
    /// Its quorum part.
    pub quorum: QuorumConfig,
    /// The ensemble as the election and Zab see it.
    pub qv: QuorumMaj,
    /// The election thread's control channel.
    pub election: Sender<Control>,
    /// Where every thread of every role reports a fatal error.
    pub fatal: FatalTx,
    /// What the roles' loops watch for those reports.
    pub fatal_rx: Receiver<Fatal>,
    /// Quorum TLS and SASL for every election and Zab connection.
    pub security: PeerSecurity,
    running: AtomicBool,
}

impl PeerCtx {
    /// Whether the peer keeps running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// A session tracker holding the recovered sessions.
    pub fn tracker(&self, sessions: &[(i64, i32)]) -> SessionTracker {
        crate::server::role::session_tracker(&self.config, sessions)
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
pub fn write_epoch_file(config: &ServerConfig, name: &str, value: i64) -> Result<(), String> {
    let dir = config.snap_dir();
    epoch::write_epoch(&dir, name, value.max(0) as u64).map_err(|e| format!("{name}: {e}"))
}

fn read_epoch_file(config: &ServerConfig, name: &str, last_zxid: i64) -> Result<i64, String> {
    let dir = config.snap_dir();
    match epoch::read_epoch(&dir, name).map_err(|e| e.to_string())? {
        Some(e) => Ok(e as i64),
        None => {
            // Like QuorumPeer.loadDataBase: a missing file starts at the last zxid's epoch.
            let e = epoch_of(last_zxid.max(0));
            info!("{name} not found! Creating with a reasonable default of {e}.");
            write_epoch_file(config, name, e)?;
            Ok(e)
        }
    }
}

/// The txns of the local log with zxids in `from..=to`, as the payloads Zab sends (a txn
/// header and body); an `Err` item where a log file cannot be read.
fn logged_payloads(
    config: &ServerConfig,
    from: i64,
    to: i64,
) -> Result<impl Iterator<Item = Result<(i64, Payload), String>>, String> {
    let iter = txnlog::read_log(&config.txn_log_dir(), from).map_err(|e| e.to_string())?;
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
pub fn committed_log_tail(config: &ServerConfig, last_zxid: i64) -> Vec<(i64, Payload)> {
    let count = crate::limits::COMMIT_LOG_COUNT;
    let counter = (last_zxid & 0xffff_ffff) - count as i64;
    let from = make_zxid(epoch_of(last_zxid.max(0)), counter.max(0));
    let mut out: VecDeque<(i64, Payload)> = VecDeque::new();
    let Ok(payloads) = logged_payloads(config, from, last_zxid) else { return Vec::new() };
    for t in payloads {
        let Ok(t) = t else { break };
        out.push_back(t);
        if out.len() > count {
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
    config: &ServerConfig,
    factor: f64,
    from: i64,
    to: i64,
) -> Option<Vec<(i64, Payload)>> {
    if factor < 0.0 {
        info!("txn-log sync is off (snapshotSizeFactor {factor})");
        return None;
    }
    let snap_dir = config.snap_dir();
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
    let payloads = match logged_payloads(config, from, to) {
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

/// Runs a quorum peer until the process is killed or a critical thread fails (the error).
pub fn run(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let Some(quorum) = config.quorum.clone() else {
        return Err("not a quorum configuration".into());
    };
    let config = Arc::new(config);
    let qv = QuorumMaj::from_config(&quorum);
    let me = quorum.me().clone();
    let (fatal, fatal_rx) = FatalTx::channel();
    let purge = PurgeTask::start(&config, &fatal)?;

    let host = if quorum.quorum_listen_on_all_ips { "0.0.0.0".to_owned() } else { me.host.clone() };
    let listener = bind_election_port(&host, me.election_port, quorum.election_port_bind_retry)?;
    let peers: BTreeMap<_, _> = quorum
        .servers
        .iter()
        .map(|s| (s.id, HostPort { host: s.host.clone(), port: s.election_port }))
        .collect();
    let my_address = HostPort { host: me.host.clone(), port: me.election_port };
    let tls = match &quorum.tls {
        None => None,
        Some(settings) => {
            let hosts = quorum.servers.iter().map(|s| s.host.clone()).collect();
            let tls = crate::tls::PeerTls::new(settings, hosts)
                .map_err(|e| format!("quorum TLS: {e}"))?;
            match (settings.dial, settings.port_unification) {
                (true, false) => log::info!(
                    "quorum TLS on: election and Zab connections are TLS, peers verified"
                ),
                (true, true) => log::info!(
                    "quorum TLS on (portUnification): this server dials TLS and accepts TLS \
                     and plain peers"
                ),
                (false, _) => log::info!(
                    "quorum portUnification: this server dials in the clear and accepts TLS \
                     and plain peers"
                ),
            }
            Some(Arc::new(tls))
        }
    };
    let security = PeerSecurity {
        tls,
        dial_tls: quorum.tls.as_ref().is_some_and(|t| t.dial),
        unified: quorum.tls.as_ref().is_some_and(|t| t.port_unification),
        sasl: quorum.sasl.clone().map(Arc::new),
        handshake_threads: quorum.handshake_threads,
    };
    let (cnx, received) = CnxManager::new(
        quorum.server_id,
        vec![my_address],
        peers,
        quorum.cnx_timeout,
        security.clone(),
    );
    cnx.listen(listener)?;

    let recover =
        || database::recover(&config.data_dir, &config.data_log_dir, config.extended_types_enabled);
    let rec = recover()?;
    let last = rec.tree.last_processed_zxid;
    let current = read_epoch_file(&config, "currentEpoch", last)?;
    read_epoch_file(&config, "acceptedEpoch", last)?;
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

    let ctx = PeerCtx {
        security,
        config: config.clone(),
        quorum,
        qv,
        election: control,
        fatal,
        fatal_rx,
        running: AtomicBool::new(true),
    };
    info!(
        "quorum peer {} ({:?}) starting: {} servers",
        ctx.quorum.server_id.0,
        me.role,
        ctx.quorum.servers.len()
    );
    let result = loop {
        let rec = match first.take() {
            Some(rec) => rec,
            None => recover()?,
        };
        let last = rec.tree.last_processed_zxid;
        let current = read_epoch_file(&config, "currentEpoch", last)?;
        let accepted = read_epoch_file(&config, "acceptedEpoch", last)?;
        let start = Control::Start { last_logged_zxid: Zxid(last), current_epoch: current };
        if ctx.election.send(start).is_err() {
            break Err("the election thread stopped".into());
        }
        let outcome = match wait_for_leader(&ctx, &outcomes)? {
            Ok(outcome) => outcome,
            Err(fatal) => break Err(fatal.into()),
        };
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
            RoleEnd::Shutdown => break Ok(()),
            RoleEnd::Fatal(fatal) => break Err(fatal.into()),
        }
    };
    if let Some(p) = purge {
        p.stop();
    }
    result
}

/// Waits for the election outcome, serving the client port meanwhile: not serving, or after a
/// while read-only (`readonlymode.enabled`). The inner error is a critical thread's failure.
fn wait_for_leader(
    ctx: &PeerCtx,
    outcomes: &Receiver<super::election::Outcome>,
) -> Result<Result<super::election::Outcome, Fatal>, Box<dyn std::error::Error>> {
    let mut port = match super::looking::start_not_serving(ctx) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!("client port while looking: {e}");
            None
        }
    };
    let ro_delay = ctx.config.tick_time.max(Duration::from_secs(2));
    let mut ro_timer = if ctx.config.read_only_mode_enabled {
        crossbeam_channel::after(ro_delay)
    } else {
        crossbeam_channel::never()
    };
    let outcome = loop {
        crossbeam_channel::select! {
            recv(outcomes) -> o => match o {
                Ok(o) => break Ok(o),
                Err(_) => return Err("the election thread stopped".into()),
            },
            recv(ctx.fatal_rx) -> f => match f {
                Ok(f) => break Err(f),
                Err(_) => return Err("the fatal channel closed".into()),
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
