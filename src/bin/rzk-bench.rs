//! rzk-bench: a load generator on the rzk client library's callback API. Points at any
//! ZooKeeper (rzk or Apache).
//!
//! `N` sessions each keep `K` requests in flight; every completion records its latency in a
//! HdrHistogram (the `hdrhistogram` crate) and issues the next request from the
//! client's event thread. Before the run it creates a bench root with `M` znodes of `SIZE`
//! bytes; afterwards it deletes everything it created. Prints throughput, latency percentiles
//! and the process's own CPU time (`/proc/self/stat`), or one JSON line with `--json`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rzk::client::{Client, ClientConfig, ClientSecurity, Error, Watch, Watcher};
use rzk::jute::data::Acl;
use rzk::proto::{CreateMode, ErrorCode};

const USAGE: &str = "Usage: rzk-bench --connect HOSTS [options]";
/// Outstanding requests while populating and cleaning up.
const SETUP_WINDOW: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq)]
enum OpKind {
    Create,
    Set,
    Get,
    Exists,
    Delete,
    /// Reads (getData) with this percentage, setData otherwise.
    Mixed(u32),
    /// getData with a watch, then setData; done when the watch fires.
    Watch,
}

impl OpKind {
    fn parse(s: &str) -> Option<OpKind> {
        Some(match s {
            "create" => OpKind::Create,
            "set" => OpKind::Set,
            "get" => OpKind::Get,
            "exists" => OpKind::Exists,
            "delete" => OpKind::Delete,
            "watch" => OpKind::Watch,
            _ => {
                let pct: u32 = s.strip_prefix("mixed:")?.parse().ok()?;
                if pct > 100 {
                    return None;
                }
                OpKind::Mixed(pct)
            }
        })
    }

    fn name(self) -> String {
        match self {
            OpKind::Create => "create".into(),
            OpKind::Set => "set".into(),
            OpKind::Get => "get".into(),
            OpKind::Exists => "exists".into(),
            OpKind::Delete => "delete".into(),
            OpKind::Mixed(p) => format!("mixed:{p}"),
            OpKind::Watch => "watch".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    connect: String,
    sessions: usize,
    inflight: usize,
    op: OpKind,
    size: usize,
    znodes: usize,
    seconds: Option<f64>,
    ops: Option<u64>,
    json: bool,
    root: String,
    timeout: Duration,
    keep: bool,
    /// TLS and SASL, from `--client-configuration` (zkCli's properties).
    security: ClientSecurity,
}

/// Why the bench could not run.
#[derive(Debug)]
enum BenchError {
    /// Bad command line.
    Usage(String),
    /// A client operation failed during setup or cleanup.
    Client(&'static str, Error),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Usage(m) => write!(f, "{m}"),
            BenchError::Client(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}

fn parse_args(args: &[String]) -> Result<Option<Config>, BenchError> {
    let mut o = getopts::Options::new();
    o.optopt("", "connect", "connect string host:port,...", "HOSTS");
    o.optopt("", "sessions", "number of sessions (default 1)", "N");
    o.optopt("", "inflight", "requests in flight per session (default 1)", "K");
    o.optopt("", "op", "create|set|get|exists|delete|mixed:READPCT|watch", "OP");
    o.optopt("", "size", "data size in bytes (default 100)", "BYTES");
    o.optopt("", "znodes", "znodes to pre-populate (default 1000)", "M");
    o.optopt("", "seconds", "run for this long", "S");
    o.optopt("", "ops", "run this many operations", "N");
    o.optopt("", "root", "bench root znode (default /rzk-bench-<pid>)", "PATH");
    o.optopt("", "timeout", "session timeout in ms (default 30000)", "MS");
    o.optopt(
        "",
        "client-configuration",
        "zkCli-style client properties: zookeeper.client.secure, zookeeper.ssl.*, \
         java.security.auth.login.config",
        "FILE",
    );
    o.optflag("", "json", "print one JSON line");
    o.optflag("", "keep-znodes", "leave the bench root and its znodes in place");
    o.optflag("h", "help", "this help");
    let m = o.parse(args).map_err(|e| BenchError::Usage(e.to_string()))?;
    if m.opt_present("help") {
        print!("{}", o.usage(USAGE));
        return Ok(None);
    }
    let num = |name: &str, default: u64| -> Result<u64, BenchError> {
        match m.opt_str(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| BenchError::Usage(format!("bad --{name} {v:?}"))),
        }
    };
    let connect = m.opt_str("connect").ok_or_else(|| BenchError::Usage(o.usage(USAGE)))?;
    let op_str = m.opt_str("op").unwrap_or_else(|| "get".into());
    let op =
        OpKind::parse(&op_str).ok_or_else(|| BenchError::Usage(format!("bad --op {op_str:?}")))?;
    let seconds = match m.opt_str("seconds") {
        None => None,
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0)
                .ok_or_else(|| BenchError::Usage(format!("bad --seconds {v:?}")))?,
        ),
    };
    let ops = m.opt_str("ops").map(|_| num("ops", 0)).transpose()?;
    if seconds.is_some() == ops.is_some() {
        return Err(BenchError::Usage("give exactly one of --seconds and --ops".into()));
    }
    let security = match m.opt_str("client-configuration") {
        None => ClientSecurity::default(),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| BenchError::Usage(format!("{path}: {e}")))?;
            let entries = rzk::config::parse_properties(&text)
                .map_err(|e| BenchError::Usage(format!("{path}: {e}")))?;
            let props = entries.iter().map(|p| (p.key.as_str(), p.value.as_str()));
            rzk::config::client::client_security(props).map_err(BenchError::Usage)?
        }
    };
    let cfg = Config {
        connect,
        security,
        sessions: num("sessions", 1)?.max(1) as usize,
        inflight: num("inflight", 1)?.max(1) as usize,
        op,
        size: num("size", 100)? as usize,
        znodes: num("znodes", 1000)?.max(1) as usize,
        seconds,
        ops,
        json: m.opt_present("json"),
        root: m.opt_str("root").unwrap_or_else(|| format!("/rzk-bench-{}", std::process::id())),
        timeout: Duration::from_millis(num("timeout", 30_000)?),
        keep: m.opt_present("keep-znodes"),
    };
    Ok(Some(cfg))
}

/// Latencies in microseconds, to three significant digits (HdrHistogram: every recorded value
/// is within 0.1% of its bucket, from 1 us to an hour, in a few tens of KB).
type Histogram = hdrhistogram::Histogram<u64>;

fn new_histogram() -> Histogram {
    // 1 us .. 1 h at 3 significant digits: the bounds are valid constants.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

struct Shared {
    cfg: Config,
    clients: Vec<Client>,
    data: Vec<u8>,
    hists: Vec<Mutex<Histogram>>,
    /// Tickets of the znodes each session created (op create), for the cleanup.
    created: Vec<Mutex<Vec<u64>>>,
    errors: AtomicU64,
    issued: AtomicU64,
    next_delete: AtomicUsize,
    deadline: Option<Instant>,
    streams: AtomicUsize,
    stop: AtomicBool,
    done: Mutex<Option<Sender<()>>>,
}

impl Shared {
    fn ticket(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(d) = self.deadline {
            if Instant::now() >= d {
                return None;
            }
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        if self.cfg.ops.is_some_and(|limit| n >= limit) {
            return None;
        }
        Some(n)
    }

    fn random(&self, n: usize) -> usize {
        // fastrand's thread-local generator: no state shared between the client threads.
        fastrand::usize(0..n.max(1))
    }

    fn node(&self, i: usize) -> String {
        format!("{}/n{}", self.cfg.root, i)
    }

    fn record(&self, session: usize, start: Instant, ok: bool) {
        if ok {
            let us = start.elapsed().as_micros() as u64;
            if let Ok(mut h) = self.hists[session].lock() {
                h.saturating_record(us.max(1));
            }
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stream_ended(&self) {
        if self.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Ok(mut g) = self.done.lock() {
                g.take();
            }
        }
    }
}

/// Issues the next request of one stream; its completion records and issues the one after.
fn issue(sh: Arc<Shared>, session: usize) {
    let Some(n) = sh.ticket() else {
        sh.stream_ended();
        return;
    };
    let c = &sh.clients[session];
    let start = Instant::now();
    let next = sh.clone();
    let done = move |ok: bool| {
        next.record(session, start, ok);
        issue(next, session);
    };
    match sh.cfg.op {
        OpKind::Create => {
            let path = format!("{}/c-{n}", sh.cfg.root);
            let acl = Acl::open_unsafe();
            let created = sh.clone();
            c.create_async(&path, &sh.data, &acl, CreateMode::Persistent, move |r| {
                if r.is_ok() {
                    if let Ok(mut list) = created.created[session].lock() {
                        list.push(n);
                    }
                }
                done(r.is_ok())
            });
        }
        OpKind::Set => {
            let path = sh.node(sh.random(sh.cfg.znodes));
            c.set_data_async(&path, &sh.data, -1, move |r| done(r.is_ok()));
        }
        OpKind::Get => {
            let path = sh.node(sh.random(sh.cfg.znodes));
            c.get_data_async(&path, Watch::No, move |r| done(r.is_ok()));
        }
        OpKind::Exists => {
            let path = sh.node(sh.random(sh.cfg.znodes));
            c.exists_async(&path, Watch::No, move |r| done(matches!(r, Ok(Some(_)))));
        }
        OpKind::Delete => {
            let i = sh.next_delete.fetch_add(1, Ordering::Relaxed);
            if i >= sh.cfg.znodes {
                sh.stop.store(true, Ordering::Relaxed);
                sh.stream_ended();
                return;
            }
            c.delete_async(&sh.node(i), -1, move |r| done(r.is_ok()));
        }
        OpKind::Mixed(read_pct) => {
            let path = sh.node(sh.random(sh.cfg.znodes));
            if (sh.random(100) as u32) < read_pct {
                c.get_data_async(&path, Watch::No, move |r| done(r.is_ok()));
            } else {
                c.set_data_async(&path, &sh.data, -1, move |r| done(r.is_ok()));
            }
        }
        OpKind::Watch => {
            let path = sh.node(sh.random(sh.cfg.znodes));
            let slot: DoneSlot = Arc::new(Mutex::new(Some(Box::new(done))));
            let on_event = slot.clone();
            let watcher = Watcher::new(move |_| fire(&on_event, true));
            let sh2 = sh.clone();
            let p2 = path.clone();
            c.get_data_async(&path, watcher, move |r| {
                if r.is_err() {
                    fire(&slot, false);
                    return;
                }
                sh2.clients[session].set_data_async(&p2, &sh2.data, -1, move |r| {
                    if r.is_err() {
                        fire(&slot, false);
                    }
                });
            });
        }
    }
}

/// A stream's completion, taken by whichever of the watch event or an error comes first.
type DoneSlot = Arc<Mutex<Option<Box<dyn FnOnce(bool) + Send>>>>;

fn fire(slot: &DoneSlot, ok: bool) {
    let taken = slot.lock().ok().and_then(|mut g| g.take());
    if let Some(d) = taken {
        d(ok);
    }
}

/// Runs `f(i, completion)` for `0..n` with at most [`SETUP_WINDOW`] outstanding; returns the
/// first error other than the ones `tolerate`d.
fn pipeline(
    n: usize,
    tolerate: &[ErrorCode],
    f: impl Fn(usize, Box<dyn FnOnce(Result<(), Error>) + Send>),
) -> Result<(), Error> {
    let (tx, rx) = crossbeam_channel::unbounded::<Result<(), Error>>();
    let mut outstanding = 0usize;
    let mut first_err = None;
    let handle = |r: Result<(), Error>, first_err: &mut Option<Error>| {
        if let Err(e) = r {
            if !tolerate.contains(&e.code()) && first_err.is_none() {
                *first_err = Some(e);
            }
        }
    };
    for i in 0..n {
        if outstanding >= SETUP_WINDOW {
            handle(rx.recv().unwrap_or(Err(Error::Closed)), &mut first_err);
            outstanding -= 1;
        }
        let tx = tx.clone();
        f(
            i,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        outstanding += 1;
    }
    for _ in 0..outstanding {
        handle(rx.recv().unwrap_or(Err(Error::Closed)), &mut first_err);
    }
    first_err.map_or(Ok(()), Err)
}

fn setup(cfg: &Config, c: &Client, data: &[u8]) -> Result<(), BenchError> {
    let acl = Acl::open_unsafe();
    match c.create(&cfg.root, b"", &acl, CreateMode::Persistent) {
        Ok(_) => {}
        Err(e) if e.code() == ErrorCode::NodeExists => {}
        Err(e) => return Err(BenchError::Client("create bench root", e)),
    }
    let populate = !matches!(cfg.op, OpKind::Create);
    if populate {
        pipeline(cfg.znodes, &[ErrorCode::NodeExists], |i, done| {
            let path = format!("{}/n{}", cfg.root, i);
            c.create_async(&path, data, &acl, CreateMode::Persistent, move |r| done(r.map(|_| ())));
        })
        .map_err(|e| BenchError::Client("populate znodes", e))?;
    }
    Ok(())
}

/// Deletes what the run created: the znodes it knows by name first (a listing of a root with
/// very many children could exceed the reply size limit), then whatever a listing still shows,
/// then the root.
fn cleanup(cfg: &Config, c: &Client, known: Vec<String>) -> Result<(), BenchError> {
    let delete_all = |paths: &[String]| {
        pipeline(paths.len(), &[ErrorCode::NoNode], |i, done| {
            c.delete_async(&paths[i], -1, done);
        })
        .map_err(|e| BenchError::Client("delete znodes", e))
    };
    delete_all(&known)?;
    let kids = match c.get_children(&cfg.root, false) {
        Ok(k) => k,
        Err(e) if e.code() == ErrorCode::NoNode => return Ok(()),
        Err(e) => return Err(BenchError::Client("list bench root", e)),
    };
    let rest: Vec<String> = kids.iter().map(|k| format!("{}/{}", cfg.root, k)).collect();
    delete_all(&rest)?;
    match c.delete(&cfg.root, -1) {
        Ok(()) => Ok(()),
        Err(e) if e.code() == ErrorCode::NoNode => Ok(()),
        Err(e) => Err(BenchError::Client("delete bench root", e)),
    }
}

/// User and system CPU seconds of this process, from `/proc/self/stat` (fields 14 and 15, in
/// clock ticks; USER_HZ is 100 on every Linux this runs on).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime / 100.0, stime / 100.0))
}

fn run(cfg: Config) -> Result<bool, BenchError> {
    let mut clients = Vec::with_capacity(cfg.sessions);
    for _ in 0..cfg.sessions {
        let c = ClientConfig::new(&cfg.connect, cfg.timeout)
            .security(cfg.security.clone())
            .connect()
            .map_err(|e| BenchError::Client("connect", e))?;
        clients.push(c);
    }
    for c in &clients {
        c.wait_connected(cfg.timeout).map_err(|e| BenchError::Client("connect", e))?;
    }
    let data = vec![b'x'; cfg.size];
    setup(&cfg, &clients[0], &data)?;
    let cpu0 = cpu_seconds();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let start = Instant::now();
    let sh = Arc::new(Shared {
        deadline: cfg.seconds.map(|s| start + Duration::from_secs_f64(s)),
        hists: (0..cfg.sessions).map(|_| Mutex::new(new_histogram())).collect(),
        created: (0..cfg.sessions).map(|_| Mutex::new(Vec::new())).collect(),
        errors: AtomicU64::new(0),
        issued: AtomicU64::new(0),
        next_delete: AtomicUsize::new(0),
        streams: AtomicUsize::new(cfg.sessions * cfg.inflight),
        stop: AtomicBool::new(false),
        done: Mutex::new(Some(done_tx)),
        data,
        clients,
        cfg: cfg.clone(),
    });
    for s in 0..cfg.sessions {
        for _ in 0..cfg.inflight {
            issue(sh.clone(), s);
        }
    }
    // Returns when the last stream drops the sender.
    let _ = done_rx.recv();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds();
    let mut hist = new_histogram();
    for h in &sh.hists {
        if let Ok(h) = h.lock() {
            // Same bounds on both sides, so adding cannot fail.
            let _ = hist.add(&*h);
        }
    }
    let errors = sh.errors.load(Ordering::Relaxed);
    let ops = hist.len();
    let rate = ops as f64 / elapsed.max(1e-9);
    let (user, sys) = match (cpu0, cpu1) {
        (Some(a), Some(b)) => (b.0 - a.0, b.1 - a.1),
        _ => (0.0, 0.0),
    };
    let (p50, p90, p99, p999) = (
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.90),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
    );
    if cfg.json {
        println!(
            "{{\"op\":\"{}\",\"sessions\":{},\"inflight\":{},\"size\":{},\"znodes\":{},\
             \"ops\":{},\"seconds\":{:.3},\"ops_per_sec\":{:.1},\"p50_us\":{},\"p90_us\":{},\
             \"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"errors\":{},\"cpu_user_s\":{:.3},\
             \"cpu_sys_s\":{:.3}}}",
            cfg.op.name(),
            cfg.sessions,
            cfg.inflight,
            cfg.size,
            cfg.znodes,
            ops,
            elapsed,
            rate,
            p50,
            p90,
            p99,
            p999,
            hist.max(),
            errors,
            user,
            sys
        );
    } else {
        println!(
            "op {} sessions {} inflight {} size {} znodes {}",
            cfg.op.name(),
            cfg.sessions,
            cfg.inflight,
            cfg.size,
            cfg.znodes
        );
        println!("{ops} ops in {elapsed:.2} s: {rate:.1} ops/s, {errors} errors");
        println!("latency us: p50 {p50}  p90 {p90}  p99 {p99}  p99.9 {p999}  max {}", hist.max());
        println!(
            "bench cpu: user {user:.2} s  system {sys:.2} s  ({:.0}% of one core)",
            (user + sys) / elapsed.max(1e-9) * 100.0
        );
    }
    if !cfg.keep {
        let mut known: Vec<String> = (0..cfg.znodes).map(|i| sh.node(i)).collect();
        for list in sh.created.iter() {
            if let Ok(list) = list.lock() {
                known.extend(list.iter().map(|n| format!("{}/c-{n}", cfg.root)));
            }
        }
        cleanup(&cfg, &sh.clients[0], known)?;
    }
    Ok(errors == 0)
}

fn main() -> ExitCode {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(Some(c)) => c,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rzk-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cfg) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rzk-bench: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_run() {
        let mut h = new_histogram();
        for v in 1..=10_000 {
            h.saturating_record(v);
        }
        let p50 = h.value_at_quantile(0.5);
        assert!((4990..=5010).contains(&p50), "{p50}");
        assert!(h.value_at_quantile(0.999) <= 10_010);
        assert_eq!(h.len(), 10_000);
        assert!(h.max() >= 10_000 && h.max() <= 10_010, "{}", h.max());
    }

    #[test]
    fn op_names_parse() {
        assert_eq!(OpKind::parse("mixed:90"), Some(OpKind::Mixed(90)));
        assert_eq!(OpKind::parse("mixed:101"), None);
        assert_eq!(OpKind::parse("watch"), Some(OpKind::Watch));
        assert_eq!(OpKind::parse("nope"), None);
    }
}
