//! Four-letter words: the text answers of `ruok`, `srvr`, `stat`, `cons`, `mntr`, ... in
//! Apache ZooKeeper's formats (four-letter-words.md §2-§4).
//!
//! Called on the connection thread with a snapshot of the connections; reads the shared
//! tree, tracker and watch registry briefly. `crst` is handled by the selector itself because it
//! mutates the connections.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::stats::java_double;
use super::Shared;
use crate::server::ServerMode;

/// The ZooKeeper version rzk reports compatibility with.
pub const ZK_COMPAT_VERSION: &str = "3.9.2";

/// The version text of `srvr` and `mntr`.
pub fn version_text() -> String {
    format!("{ZK_COMPAT_VERSION}-rzk-{}, built on unknown", env!("CARGO_PKG_VERSION"))
}

static TRACE_MASK: AtomicI64 = AtomicI64::new(306);

/// One connection as the selector describes it.
#[derive(Debug, Clone)]
pub struct ConnSummary {
    /// Remote address.
    pub peer: SocketAddr,
    /// Interest ops (1 read, 4 write).
    pub interest: u32,
    /// Requests in flight.
    pub queued: usize,
    /// Packets received.
    pub recved: u64,
    /// Packets sent.
    pub sent: u64,
    /// Session, once the handshake is done.
    pub session: Option<i64>,
    /// Last op abbreviation.
    pub lop: &'static str,
    /// Wall ms when accepted.
    pub established_ms: i64,
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// Last answered xid.
    pub lcxid: Option<i32>,
    /// Last zxid sent.
    pub lzxid: i64,
    /// Monotonic ms of the last response.
    pub lresp_ms: u64,
    /// Last latency.
    pub llat: u64,
    /// Min latency.
    pub minlat: u64,
    /// Average latency.
    pub avglat: u64,
    /// Max latency.
    pub maxlat: u64,
    /// Time until the connection would be closed as idle.
    pub expires_in: Duration,
}

/// A four-letter word for the worker thread: the connection asking, the word, what followed
/// it, and the selector's description of every connection when it was asked.
#[derive(Debug)]
pub struct Job {
    /// The connection asking.
    pub conn: crate::server::ConnId,
    /// The word.
    pub word: &'static str,
    /// What followed it (`stmk`).
    pub extra: Vec<u8>,
    /// Every connection.
    pub conns: Vec<ConnSummary>,
}

/// The four-letter-word thread: answers come back to the selector through the outbox, so
/// walks over the whole tree, watch table or session table (`dump`, `wchc`, `wchp`, `cons`
/// with many connections) never run on the selector thread.
pub fn serve(
    shared: &Shared,
    jobs: crossbeam_channel::Receiver<Job>,
    out: &crossbeam_channel::Sender<super::processor::Outbound>,
    waker: &mio::Waker,
) -> Result<(), String> {
    for job in jobs {
        let text = run(job.word, shared, &job.conns, &job.extra);
        let msg = super::processor::Outbound::FourLetter { conn: job.conn, text };
        if out.send(msg).is_err() {
            break;
        }
        waker.wake().map_err(|e| format!("cannot wake the connection thread: {e}"))?;
    }
    Ok(())
}

/// Runs a (whitelisted) four-letter word; `extra` is what followed it (for `stmk`).
pub fn run(word: &str, shared: &Shared, conns: &[ConnSummary], extra: &[u8]) -> String {
    let mode = shared.mode;
    if mode == ServerMode::NotServing && !matches!(word, "ruok" | "envi" | "gtmk" | "stmk") {
        return match word {
            "isro" => "null".to_owned(),
            "hash" => NOT_SERVING.trim_end().to_owned(),
            _ => NOT_SERVING.to_owned(),
        };
    }
    match word {
        "ruok" => "imok".to_owned(),
        "isro" => if mode == ServerMode::ReadOnly { "ro" } else { "rw" }.to_owned(),
        "srvr" => srvr(shared, conns, None),
        "stat" => srvr(shared, conns, Some(brief_lines(conns))),
        "cons" => cons(conns),
        "srst" => {
            shared.stats.reset();
            "Server stats reset.\n".to_owned()
        }
        "conf" => conf(shared),
        "envi" => envi(),
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            dir_size(&shared.config.snap_dir()),
            dir_size(&shared.config.txn_log_dir())
        ),
        "wchs" => shared.lock_watches().summary(),
        "wchc" => wchc(&watched_paths(shared)),
        "wchp" => wchp(&watched_paths(shared)),
        "dump" => dump(shared, conns),
        "mntr" => mntr(shared, conns),
        "gtmk" => TRACE_MASK.load(Ordering::Relaxed).to_string(),
        "stmk" => {
            if extra.len() >= 8 {
                let mut b = [0u8; 8];
                b.copy_from_slice(&extra[..8]);
                TRACE_MASK.store(i64::from_be_bytes(b), Ordering::Relaxed);
            }
            TRACE_MASK.load(Ordering::Relaxed).to_string()
        }
        "hash" => String::new(),
        _ => format!("{word} is not executed because it is not in the whitelist.\n"),
    }
}

/// What a quorum member that is not serving answers (four-letter-words.md §2).
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

fn srvr(shared: &Shared, conns: &[ConnSummary], clients: Option<String>) -> String {
    let mut s = format!("Zookeeper version: {}\n", version_text());
    if shared.mode == ServerMode::ReadOnly {
        s.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if let Some(c) = clients {
        s.push_str("Clients:\n");
        s.push_str(&c);
        s.push('\n');
    }
    let (min, avg, max) = shared.stats.latency();
    let tree = shared.read_tree();
    let _ = write!(
        s,
        "Latency min/avg/max: {min}/{}/{max}\nReceived: {}\nSent: {}\nConnections: {}\n\
         Outstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        java_double(avg),
        shared.stats.packets_received.load(Ordering::Relaxed),
        shared.stats.packets_sent.load(Ordering::Relaxed),
        conns.len(),
        shared.stats.outstanding.load(Ordering::Relaxed).max(0),
        tree.last_processed_zxid,
        shared.mode.as_str(),
        znode_count(&tree)
    );
    if shared.mode == ServerMode::Leader {
        let q = &shared.quorum_stats;
        let r = Ordering::Relaxed;
        let size = |v: u64| if v == 0 { -1 } else { v as i64 };
        let _ = writeln!(
            s,
            "Proposal sizes last/min/max: {}/{}/{}",
            size(q.last_proposal_size.load(r)),
            size(q.min_proposal_size.load(r)),
            size(q.max_proposal_size.load(r))
        );
    }
    s
}

fn brief(c: &ConnSummary) -> String {
    format!(
        " /{}[{:x}](queued={},recved={},sent={}",
        c.peer, c.interest, c.queued, c.recved, c.sent
    )
}

fn brief_lines(conns: &[ConnSummary]) -> String {
    conns.iter().map(|c| format!("{})\n", brief(c))).collect()
}

fn cons(conns: &[ConnSummary]) -> String {
    let mut s = String::new();
    for c in conns {
        s.push_str(&brief(c));
        if let Some(sid) = c.session {
            let _ = write!(
                s,
                ",sid=0x{sid:x},lop={},est={},to={}",
                c.lop, c.established_ms, c.timeout_ms
            );
            if let Some(x) = c.lcxid {
                let _ = write!(s, ",lcxid=0x{:x}", x as u32);
            }
            let _ = write!(
                s,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                c.lzxid as u64, c.lresp_ms, c.llat, c.minlat, c.avglat, c.maxlat
            );
        }
        s.push_str(")\n");
    }
    s.push('\n');
    s
}

fn conf(shared: &Shared) -> String {
    let config = &shared.config;
    let status = crate::config::ConfStatus {
        client_port: shared.bound_addr.get().map(SocketAddr::port),
        data_dir_bytes: dir_size(&config.snap_dir()),
        data_log_bytes: dir_size(&config.txn_log_dir()),
    };
    config.dump_conf(&status)
}

fn envi() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "<NA>".to_owned());
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".to_owned());
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "<NA>".to_owned());
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    format!(
        "Environment:\nzookeeper.version={}\nhost.name={host}\njava.version=<NA>\n\
         java.vendor=<NA>\njava.home=<NA>\njava.class.path={exe}\njava.library.path=<NA>\n\
         java.io.tmpdir={}\njava.compiler=<NA>\nos.name={}\nos.arch={}\nos.version={os_version}\n\
         user.name={}\nuser.home={}\nuser.dir={cwd}\nos.memory.free=<NA>\nos.memory.max=<NA>\n\
         os.memory.total=<NA>\n",
        version_text(),
        std::env::temp_dir().display(),
        capitalize(std::env::consts::OS),
        java_arch(),
        std::env::var("USER").ok().or_else(user_from_passwd).unwrap_or_else(|| "<NA>".to_owned()),
        env("HOME"),
    )
}

/// Java's `os.arch` name for this machine.
fn java_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// The user name of this process from /proc and /etc/passwd.
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1)?.to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Entries looked up per hold of a lock by the walks of `dump`, `wchc` and `wchp`.
const WALK_CHUNK: usize = 1024;

/// Every watched path (data table) with its watching sessions, sorted by path, looked up a
/// chunk per hold of the watch lock.
fn watched_paths(shared: &Shared) -> Vec<(String, std::collections::BTreeSet<i64>)> {
    let mut paths = shared.lock_watches().data_paths();
    paths.sort_unstable();
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(WALK_CHUNK) {
        out.extend(shared.lock_watches().sessions_watching(chunk));
    }
    out
}

/// `wchp`: per path, its watching sessions.
fn wchp(watched: &[(String, std::collections::BTreeSet<i64>)]) -> String {
    let mut s = String::new();
    for (path, sids) in watched {
        s.push_str(path);
        s.push('\n');
        for sid in sids {
            let _ = writeln!(s, "\t0x{sid:x}");
        }
    }
    s.push('\n');
    s
}

/// `wchc`: per session, its watched paths.
fn wchc(watched: &[(String, std::collections::BTreeSet<i64>)]) -> String {
    let mut by_session: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
    for (path, sids) in watched {
        for sid in sids {
            by_session.entry(*sid).or_default().push(path);
        }
    }
    let mut s = String::new();
    for (sid, paths) in by_session {
        let _ = writeln!(s, "0x{sid:x}");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push('\n');
    s
}

fn dump(shared: &Shared, conns: &[ConnSummary]) -> String {
    let mut s = String::from("SessionTracker dump:\n");
    let (buckets, count) = shared.with_sessions(|t| (t.buckets(), t.len()));
    let now_mono = shared.now_ms() as i64;
    let now_wall = super::processor::wall_clock_ms();
    let _ = writeln!(s, "Session Sets ({})/({count}):", buckets.len());
    for (at, ids) in buckets {
        let wall = now_wall + (at as i64 - now_mono);
        let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(wall));
        for id in ids {
            let _ = writeln!(s, "\t0x{id:x}");
        }
    }
    s.push_str("ephemeral nodes dump:\n");
    // Session by session, a chunk per hold of the read lock: a dump never stalls apply for
    // the whole walk.
    let sessions = shared.read_tree().ephemeral_sessions();
    let mut eph = Vec::with_capacity(sessions.len());
    for chunk in sessions.chunks(WALK_CHUNK) {
        let tree = shared.read_tree();
        for &sid in chunk {
            let paths = tree.ephemerals_of(sid);
            if !paths.is_empty() {
                eph.push((sid, paths));
            }
        }
    }
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", eph.len());
    for (sid, paths) in eph {
        let _ = writeln!(s, "0x{sid:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    let mut by_time: std::collections::BTreeMap<i64, Vec<&ConnSummary>> = Default::default();
    for c in conns {
        let at = now_wall + c.expires_in.as_millis() as i64;
        by_time.entry(at / 1000 * 1000).or_default().push(c);
    }
    let _ = writeln!(s, "Connections Sets ({})/({}):", by_time.len(), conns.len());
    for (at, cs) in by_time {
        let _ = writeln!(s, "{} expire at {}:", cs.len(), java_date(at));
        for c in cs {
            let _ = writeln!(s, "\tip: /{} sessionId: 0x{:x}", c.peer, c.session.unwrap_or(0));
        }
    }
    s
}

fn mntr(shared: &Shared, conns: &[ConnSummary]) -> String {
    let st = &shared.stats;
    let (min, avg, max) = st.latency();
    let tree = shared.read_tree();
    let (watch_count, sessions) =
        (shared.lock_watches().watch_count(), shared.with_sessions(|t| t.len()));
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).ok();
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        l.lines()
            .find(|x| x.starts_with("Max open files"))
            .and_then(|x| x.split_whitespace().nth(3).map(|v| v.to_owned()))
    });
    let r = Ordering::Relaxed;
    let fsyncs = st.fsync_count.load(r);
    let mut lines: Vec<(String, String)> = vec![
        ("version".into(), version_text()),
        ("server_state".into(), shared.mode.as_str().into()),
        ("avg_latency".into(), java_double(avg)),
        ("min_latency".into(), min.to_string()),
        ("max_latency".into(), max.to_string()),
        ("packets_received".into(), st.packets_received.load(r).to_string()),
        ("packets_sent".into(), st.packets_sent.load(r).to_string()),
        ("num_alive_connections".into(), conns.len().to_string()),
        ("outstanding_requests".into(), st.outstanding.load(r).max(0).to_string()),
        ("uptime".into(), shared.started.elapsed().as_millis().to_string()),
        ("znode_count".into(), znode_count(&tree).to_string()),
        ("watch_count".into(), watch_count.to_string()),
        ("ephemerals_count".into(), tree.ephemeral_count().to_string()),
        ("approximate_data_size".into(), tree.approximate_data_size().to_string()),
        ("global_sessions".into(), sessions.to_string()),
        ("local_sessions".into(), "0".into()),
        ("connection_drop_probability".into(), {
            let p = f64::from_bits(st.connection_drop_probability_bits.load(r));
            format!("{p:?}")
        }),
        ("last_client_response_size".into(), st.last_response_size.load(r).to_string()),
        ("min_client_response_size".into(), st.min_response_size.load(r).to_string()),
        ("max_client_response_size".into(), st.max_response_size.load(r).to_string()),
        ("outstanding_tls_handshake".into(), st.tls_handshakes_outstanding.load(r).to_string()),
        ("tls_handshake_exceeded".into(), st.tls_handshake_exceeded.load(r).to_string()),
        ("auth_failed_count".into(), st.auth_failed.load(r).to_string()),
        ("non_mtls_remote_conn_count".into(), st.non_mtls_remote.load(r).to_string()),
        ("non_mtls_local_conn_count".into(), st.non_mtls_local.load(r).to_string()),
        ("connection_rejected".into(), st.connections_rejected.load(r).to_string()),
        ("large_requests_rejected".into(), st.large_requests_rejected.load(r).to_string()),
        ("bytes_received_count".into(), st.bytes_received.load(r).to_string()),
        ("cnt_fsynctime".into(), fsyncs.to_string()),
        ("sum_fsynctime".into(), st.fsync_total_ms.load(r).to_string()),
    ];
    if shared.mode == crate::server::ServerMode::Leader {
        let q = &shared.quorum_stats;
        let followers = q.synced_followers.load(r);
        lines.push(("learners".into(), q.learners.load(r).to_string()));
        lines.push(("synced_followers".into(), followers.to_string()));
        lines.push(("synced_non_voting_followers".into(), "0".into()));
        lines.push(("synced_observers".into(), q.synced_observers.load(r).to_string()));
        lines.push(("pending_syncs".into(), q.pending_syncs.load(r).to_string()));
        lines.push(("last_proposal_size".into(), q.last_proposal_size.load(r).to_string()));
        lines.push(("max_proposal_size".into(), q.max_proposal_size.load(r).to_string()));
        lines.push(("min_proposal_size".into(), q.min_proposal_size.load(r).to_string()));
    }
    if let Some(f) = fds {
        lines.push(("open_file_descriptor_count".into(), f.saturating_sub(1).to_string()));
    }
    if let Some(m) = max_fds {
        lines.push(("max_file_descriptor_count".into(), m));
    }
    let mut s = String::new();
    for (k, v) in lines {
        let _ = writeln!(s, "zk_{k}\t{v}");
    }
    s
}

/// The node count ZooKeeper reports (srvr's `Node count`, mntr's `zk_znode_count`): its node
/// map holds the root twice, as "" and "/", so a fresh server reports 5, not 4 (checked
/// against ZooKeeper 3.8).
fn znode_count(tree: &crate::server::datatree::DataTree) -> usize {
    tree.node_count() + 1
}

/// Total size of the regular files directly in `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Java's `Date.toString()` in UTC: `Thu Nov 26 14:12:56 UTC 2026`. Formatted by jiff, the
/// date library env_logger already uses for log timestamps, so rzk has one calendar.
pub fn java_date(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%a %b %d %H:%M:%S UTC %Y").to_string(),
        // Outside jiff's range (years -9999..9999): Java would print a far year; show the
        // raw value rather than a wrong date.
        Err(_) => format!("{ms} ms since 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_date_format() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-26 14:12:56 UTC
        assert_eq!(java_date(1_795_702_376_000), "Thu Nov 26 14:12:56 UTC 2026");
        // Before 1970, a leap day, and single-digit days padded as Java pads them.
        assert_eq!(java_date(-86_400_000), "Wed Dec 31 00:00:00 UTC 1969");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_date(1_704_456_000_123), "Fri Jan 05 12:00:00 UTC 2024");
    }
}
