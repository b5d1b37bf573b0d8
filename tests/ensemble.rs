//! Multi-process ensembles (tests/harness/ensemble.rs), the same scenarios against rzk and a
//! 3-server Apache ZooKeeper 3.8 ensemble: a leader is elected, a write through one server is
//! read through the others, a kill -9 of the leader elects a new one that takes writes, and
//! the old leader rejoins as a follower; an observer serves reads and forwards writes; a
//! frozen (SIGSTOP) leader is replaced. The Apache runs are skipped (with a message) when
//! Apache ZooKeeper or java is missing.

mod harness;

use std::time::{Duration, Instant};

use harness::ensemble::{Ensemble, Flavor};
use rzk::client::{Client, ClientConfig, Error};
use rzk::jute::data::Acl;
use rzk::proto::{CreateMode, ErrorCode};

const ELECTION: Duration = Duration::from_secs(20);

/// A client of the servers in `connect_string`, connected (bounded retries: a server may be
/// between leaders and close new connections).
fn client(connect_string: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = ClientConfig::new(connect_string, Duration::from_secs(10))
            .request_timeout(Duration::from_secs(5))
            .connect()
            .expect("client");
        match c.wait_connected(Duration::from_secs(5)) {
            Ok(()) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect to {connect_string}: {e}; retrying");
                let _ = c.close();
            }
            Err(e) => panic!("cannot connect to {connect_string}: {e}"),
        }
    }
}

/// Creates `path` through `connect_string`, retrying (with fresh clients) while the ensemble
/// has no leader; NodeExists after a lost reply counts as done. Returns how long it took.
fn create_until_ok(connect_string: &str, path: &str, data: &[u8], limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let c = client(connect_string);
        match c.create(path, data, &Acl::open_unsafe(), CreateMode::Persistent) {
            Ok(_) => return start.elapsed(),
            Err(Error::Server(ErrorCode::NodeExists)) => return start.elapsed(),
            Err(e) if start.elapsed() < limit => {
                eprintln!("create {path} through {connect_string}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("create {path} through {connect_string}: {e}"),
        }
        let _ = c.close();
    }
}

/// Reads `path` through peer `id` after a sync (so a follower has caught up with the leader).
fn read_through(ens: &Ensemble, id: u32, path: &str) -> Vec<u8> {
    let cs = ens.client_addr(id).to_string();
    let c = client(&cs);
    c.sync(path).unwrap_or_else(|e| panic!("sync {path} through peer {id}: {e}"));
    let (data, _) = c.get_data(path, false).unwrap_or_else(|e| panic!("get {path} via {id}: {e}"));
    let _ = c.close();
    data
}

/// The scenario, for any flavor.
fn failover(flavor: Flavor) {
    let t0 = Instant::now();
    let mut ens = Ensemble::start(flavor, 3, 0, |_, _| {});
    eprintln!("started in {:?}", t0.elapsed());

    // One leader, the others follow.
    let leader = ens.wait_for_leader(ELECTION);
    for id in ens.participants() {
        if id != leader {
            ens.wait_for_mode(id, "follower", ELECTION);
        }
    }
    eprintln!("{}", ens.status());

    // A write through one server is visible through the others.
    let ids = ens.ids();
    let (a, others) = (ids[0], &ids[1..]);
    let ca = client(&ens.client_addr(a).to_string());
    ca.create("/ens", b"through-a", &Acl::open_unsafe(), CreateMode::Persistent).unwrap();
    let _ = ca.close();
    for &id in others {
        assert_eq!(read_through(&ens, id, "/ens"), b"through-a", "peer {id}");
    }

    // kill -9 the leader: the others elect a new one, and writes work again.
    ens.kill9(leader);
    let killed = Instant::now();
    let new_leader = ens.wait_for_leader(ELECTION);
    assert_ne!(new_leader, leader);
    let survivors: Vec<u32> = ids.iter().copied().filter(|&id| id != leader).collect();
    let follower = *survivors.iter().find(|&&id| id != new_leader).unwrap();
    let took = create_until_ok(
        &ens.client_addr(follower).to_string(),
        "/ens/after-failover",
        b"new-leader",
        ELECTION,
    );
    eprintln!(
        "peer {new_leader} leads {:?} after the kill; a create through {follower} took {took:?}",
        killed.elapsed()
    );
    assert_eq!(read_through(&ens, new_leader, "/ens/after-failover"), b"new-leader");

    // The old leader comes back as a follower of the new one, with everything written.
    ens.restart(leader);
    ens.wait_for_mode(leader, "follower", ELECTION);
    assert_eq!(ens.leader(), Some(new_leader));
    assert_eq!(read_through(&ens, leader, "/ens"), b"through-a");
    assert_eq!(read_through(&ens, leader, "/ens/after-failover"), b"new-leader");
    ens.wait_all_serving(ELECTION);
    eprintln!("whole scenario in {:?}", t0.elapsed());
}

#[test]
fn apache_ensemble_failover() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    failover(Flavor::Apache);
}

/// Observers, config tweaks and SIGSTOP, for any flavor: an observer serves reads and writes,
/// a frozen leader is replaced, and once thawed it follows the new one.
fn observer_and_frozen_leader(flavor: Flavor) {
    // Short ticks so a frozen leader is noticed within syncLimit * tickTime = 1 s.
    let mut ens = Ensemble::start(flavor, 3, 1, |_, cfg| {
        harness::ensemble::set_key(cfg, "tickTime", "200");
    });
    let observer = ens.observers()[0];
    let leader = ens.wait_for_leader(ELECTION);
    ens.wait_for_mode(observer, "observer", ELECTION);

    let via_observer = ens.client_addr(observer).to_string();
    create_until_ok(&via_observer, "/obs", b"observed", ELECTION);
    assert_eq!(read_through(&ens, leader, "/obs"), b"observed");

    ens.sigstop(leader);
    let deadline = Instant::now() + ELECTION;
    let new_leader = loop {
        match ens.leader() {
            Some(id) if id != leader => break id,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => panic!("no new leader while {leader} is frozen\n{}", ens.status()),
        }
    };
    let follower = ens.participants().into_iter().find(|&id| id != leader && id != new_leader);
    create_until_ok(&ens.client_addr(follower.unwrap()).to_string(), "/frozen", b"", ELECTION);
    ens.wait_for_mode(observer, "observer", ELECTION);
    assert_eq!(read_through(&ens, observer, "/frozen"), b"");

    ens.sigcont(leader);
    ens.wait_for_mode(leader, "follower", ELECTION);
    assert_eq!(read_through(&ens, leader, "/frozen"), b"");
    assert_eq!(ens.leader(), Some(new_leader));
}

#[test]
fn apache_ensemble_observer_and_frozen_leader() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    observer_and_frozen_leader(Flavor::Apache);
}

#[test]
fn rzk_ensemble_failover() {
    failover(Flavor::rzk());
}

#[test]
fn rzk_ensemble_observer_and_frozen_leader() {
    observer_and_frozen_leader(Flavor::rzk());
}

/// A base port whose next `n` ports are free right now (bounded search).
fn free_run(n: u16, avoid: &[u16]) -> u16 {
    let seed = std::process::id() as u16;
    for i in 0..200u16 {
        let base = 20_000 + (seed.wrapping_mul(7).wrapping_add(i * 37)) % 20_000;
        let clash = avoid.iter().any(|a| (base..base + n).contains(a));
        if !clash && (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return base;
        }
    }
    panic!("no run of {n} free ports");
}

/// `scripts/ensemble.sh` runs a local rzk ensemble: start waits until every peer serves,
/// status names the roles, kill -9 of the leader elects another, restart rejoins, stop ends
/// every process.
#[test]
fn ensemble_script_starts_reports_kills_and_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = free_run(3, &[]);
    let quorum = free_run(3, &[client, client + 1, client + 2]);
    let election = free_run(3, &[client, client + 1, client + 2, quorum, quorum + 1, quorum + 2]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ensemble.sh");
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new(script)
            .args(args)
            .env("RZK_SERVER", env!("CARGO_BIN_EXE_rzk-server"))
            .env("RZK_ENSEMBLE_DIR", dir.path())
            .env("RZK_ENSEMBLE_CLIENT_BASE", client.to_string())
            .env("RZK_ENSEMBLE_QUORUM_BASE", quorum.to_string())
            .env("RZK_ENSEMBLE_ELECTION_BASE", election.to_string())
            .output()
            .expect("run scripts/ensemble.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ensemble.sh {args:?} failed:\n{text}");
        text
    };
    struct Stop<'a>(&'a dyn Fn(&[&str]) -> String);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(&["stop"])));
        }
    }
    let _stop = Stop(&run);
    run(&["start"]);
    let leader_of = |status: &str| -> Option<String> {
        status
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some("leader"))
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
    };
    let status = run(&["status"]);
    let leader = leader_of(&status).unwrap_or_else(|| panic!("no leader in:\n{status}"));
    assert_eq!(status.matches("follower").count(), 2, "{status}");
    run(&["kill", &leader]);
    let deadline = Instant::now() + ELECTION;
    let new_leader = loop {
        let status = run(&["status"]);
        match leader_of(&status) {
            Some(l) if l != leader => break l,
            _ if Instant::now() > deadline => panic!("no new leader:\n{status}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_ne!(new_leader, leader);
    run(&["restart", &leader]);
    let deadline = Instant::now() + ELECTION;
    loop {
        let status = run(&["status"]);
        if status.matches("follower").count() == 2 && leader_of(&status).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted peer did not rejoin:\n{status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
