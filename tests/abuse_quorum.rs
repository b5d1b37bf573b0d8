//! A stranger on a quorum port costs only itself: thousands of slow connections to a peer's
//! election port (each trickling a byte a second, never completing a handshake) while a probe
//! session on that peer runs `exists("/")` every 100 ms. The peer must keep answering within
//! 1 s, grow by no thread per socket and by less than 256 MB of RSS, and still take part in an
//! election: the leader is stopped afterwards and the attacked peer helps elect a new one.

mod harness;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::ensemble::{Ensemble, Flavor};
use harness::ensemble_client::open;
use harness::{raise_fd_limit, wait_for};
use rzk::client::{Client, ClientConfig};
use rzk::proto::CreateMode;

const SLOW_CONNECTIONS: usize = 2000;
const ATTACK: Duration = Duration::from_secs(20);
const PROBE_MAX: Duration = Duration::from_secs(1);
const RSS_GROWTH_MAX_MB: u64 = 256;
const THREAD_GROWTH_MAX: u64 = 8;

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn client(addr: SocketAddr) -> Client {
    let c = ClientConfig::new(&addr.to_string(), Duration::from_secs(10))
        .request_timeout(Duration::from_secs(20))
        .connect()
        .expect("client");
    c.wait_connected(Duration::from_secs(20)).expect("connected");
    c
}

/// Keeps up to `n` connections to `target` open for `attack`, writing one byte to each
/// every second and reconnecting the ones the server closed. Returns how many times a
/// connection had to be re-made (the server's closes).
fn trickle(target: SocketAddr, n: usize, attack: Duration) -> u64 {
    let deadline = Instant::now() + attack;
    let connect = || TcpStream::connect_timeout(&target, Duration::from_millis(500)).ok();
    let mut socks: Vec<Option<TcpStream>> = (0..n).map(|_| connect()).collect();
    let mut remade = 0;
    while Instant::now() < deadline {
        let round = Instant::now();
        for s in socks.iter_mut() {
            if Instant::now() >= deadline {
                break;
            }
            let ok = s.as_mut().is_some_and(|t| t.write_all(&[0]).is_ok());
            if !ok {
                remade += 1;
                *s = connect();
            }
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
    }
    remade
}

#[test]
fn thousands_of_slow_connections_to_an_election_port_cost_only_themselves() {
    raise_fd_limit(SLOW_CONNECTIONS as u64 + 512);
    let mut ens = Ensemble::start(Flavor::rzk(), 3, 0, |_, _| {});
    let leader = ens.wait_for_leader(Duration::from_secs(60));
    let target = ens.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let pid = ens.pid(target).expect("pid");
    let (rss_before, threads_before) = (status_field(pid, "VmRSS:"), status_field(pid, "Threads:"));

    // The probe, on the attacked peer.
    let probe = client(ens.client_addr(target));
    let stop = Arc::new(AtomicBool::new(false));
    let worst_ms = Arc::new(AtomicU64::new(0));
    let peak_threads = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let prober = {
        let (stop, worst, threads, rss) =
            (stop.clone(), worst_ms.clone(), peak_threads.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            let mut failures = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                if probe.exists("/", false).is_err() {
                    failures += 1;
                }
                worst.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                threads.fetch_max(status_field(pid, "Threads:"), Ordering::Relaxed);
                rss.fetch_max(status_field(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
            failures
        })
    };

    let remade = trickle(ens.election_addr(target), SLOW_CONNECTIONS, ATTACK);
    stop.store(true, Ordering::Relaxed);
    let failures = prober.join().expect("probe thread");
    let log = ens.log(target);
    assert!(ens.is_running(target), "the attacked peer died\n{log}");
    let worst = Duration::from_millis(worst_ms.load(Ordering::Relaxed));
    eprintln!(
        "election-port attack: {remade} connections closed by the peer and re-made, probe worst \
         {worst:?}, threads {threads_before} -> {}, RSS {} -> {} MB",
        peak_threads.load(Ordering::Relaxed),
        rss_before / 1024,
        peak_rss.load(Ordering::Relaxed) / 1024
    );
    assert_eq!(failures, 0, "the probe's exists() failed");
    assert!(worst <= PROBE_MAX, "the probe waited {worst:?}");
    assert!(remade > 0, "the peer never closed a slow handshake");
    let threads = peak_threads.load(Ordering::Relaxed);
    assert!(
        threads <= threads_before + THREAD_GROWTH_MAX,
        "threads grew from {threads_before} to {threads}"
    );
    let growth = peak_rss.load(Ordering::Relaxed).saturating_sub(rss_before) / 1024;
    assert!(growth < RSS_GROWTH_MAX_MB, "RSS grew by {growth} MB");

    // The attacked peer still elects: without the leader, it and the third peer must agree.
    ens.stop(leader);
    let new_leader = ens.wait_for_leader(Duration::from_secs(60));
    assert_ne!(new_leader, leader);
    let c = client(ens.client_addr(target));
    wait_for("a write after the re-election", Duration::from_secs(30), || {
        c.create("/after-election-attack", b"ok", &open(), CreateMode::Persistent).is_ok()
    });
    assert_eq!(c.get_data("/after-election-attack", false).expect("read").0, b"ok");
}
