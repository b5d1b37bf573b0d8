//! rzk's replicated mode with real processes (tests/harness/ensemble.rs): writes through any
//! server, kill -9 of the leader under write load with no acknowledged write lost, DIFF and
//! SNAP catch-up of a follower, truncation of a stale leader's uncommitted txn, observers'
//! watches and sync, a minority that cannot commit, read-only mode, a 5-peer ensemble losing
//! two peers, sessions moving between servers and expiring, re-attach and read ordering on
//! followers, txn-log catch-up, and quorumListenOnAllIPs.
//!
//! Every scenario uses short ticks (250 ms) so elections and failure detection take a second
//! or two, and is bounded in time and in the number of operations. Ensembles run one at a
//! time (`RZK_TEST_ENSEMBLES`).

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::ensemble::{set_key, Ensemble, Flavor};
use harness::ensemble_client::{open, subtree, Clients};
use harness::{try_four_letter as four_letter, wait_for};
use rzk::client::{ClientConfig, Error, Op, State, Watcher};
use rzk::proto::{CreateMode, ErrorCode, EventType};

const C: Clients = Clients { patience: ELECTION, request_timeout: Duration::from_secs(5) };
const ELECTION: Duration = Duration::from_secs(20);

/// Short ticks, generous init/sync limits (debug builds on a busy 2-core machine) and long
/// enough sessions to survive an election.
fn fast(cfg: &mut String) {
    set_key(cfg, "tickTime", "250");
    set_key(cfg, "initLimit", "20");
    set_key(cfg, "syncLimit", "8");
    set_key(cfg, "maxSessionTimeout", "30000");
}

/// A 3-peer ensemble with [`fast`] settings plus `key=value`, once every peer serves.
fn start_with(key: &str, value: &str) -> Ensemble {
    let ens = Ensemble::start(Flavor::rzk(), 3, 0, |_, cfg| {
        fast(cfg);
        set_key(cfg, key, value);
    });
    ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    ens
}

/// A 3-peer ensemble whose followers wait 5 s (syncLimit 20) before giving up on a frozen
/// leader, for scenarios that freeze it on purpose for a moment.
fn start_patient() -> Ensemble {
    start_with("syncLimit", "20")
}

fn start(participants: usize, observers: usize) -> Ensemble {
    let t0 = Instant::now();
    let ens = Ensemble::start(Flavor::rzk(), participants, observers, |_, cfg| fast(cfg));
    ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    eprintln!("ensemble of {participants}+{observers} up in {:?}", t0.elapsed());
    ens
}

/// Issues many calls with at most `window` outstanding; `issue(i, r` must call `done`
/// exactly once with the outcome of call `i`. Returns the outcomes in order.
fn pipelined<T: Send + 'static>(
    n: usize,
    window: usize,
    mut issue: impl FnMut(usize, Box<dyn FnOnce(T) + Send>),
) -> Vec<T> {
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, T)>();
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut sent = 0;
    let mut received = 0;
    while received < n {
        while sent < n && sent - received < window {
            let tx = tx.clone();
            let i = sent;
            issue(i, Box::new(move |r| drop(tx.send((i, r)))));
            sent += 1;
        }
        let (i, r) = rx.recv_timeout(Duration::from_secs(30)).expect("pipelined reply");
        out[i] = Some(r);
        received += 1;
    }
    out.into_iter().map(|r| r.expect("every reply")).collect()
}

/// The Zxid line of peer `id`'s srvr answer.
fn srvr_zxid(ens: &Ensemble, id: u32) -> Option<String> {
    let a = four_letter(ens.client_addr(id), "srvr")?;
    a.lines().find_map(|l| l.strip_prefix("Zxid: ")).map(|z| z.trim().to_string())
}

/// The first line of `log` after byte `from` where the leader chose how to sync learner `sid`.
fn sync_line(log: &str, from: usize, sid: u32) -> Option<String> {
    let needle = format!("syncing learner Some(ServerId({sid}))");
    log.get(from..)?.lines().find(|l| l.contains(&needle)).map(str::to_string)
}

fn followers(ens: &Ensemble, leader: u32) -> Vec<u32> {
    ens.participants().into_iter().filter(|&id| id != leader).collect()
}

// ---------------------------------------------------------------------------------------

/// Scenario 1: a create through each server is read (after sync) through every other.
#[test]
fn writes_through_any_server_are_seen_by_all() {
    let t0 = Instant::now();
    let ens = start(3, 0);
    let ids = ens.ids();
    for &w in &ids {
        let c = C.connect(C.config(&ens.client_addr(w).to_string()));
        c.create(
            &format!("/via{w}"),
            format!("from {w}").as_bytes(),
            &open(),
            CreateMode::Persistent,
        )
        .unwrap_or_else(|e| panic!("create through {w}: {e}"));
        let _ = c.close();
    }
    for &r in &ids {
        let c = C.synced(&ens, r);
        for &w in &ids {
            let (d, _) = c.get_data(&format!("/via{w}"), false).unwrap();
            assert_eq!(d, format!("from {w}").as_bytes(), "/via{w} read through {r}");
        }
    }
    eprintln!("scenario 1 in {:?}", t0.elapsed());
}

/// Bad input on the quorum and election ports: garbage, absurd lengths, a FOLLOWERINFO from a
/// server that is not in the ensemble, a huge authinfo count. Each connection is dropped; the
/// leader keeps leading and the ensemble keeps taking writes.
#[test]
fn garbage_on_quorum_and_election_ports_harms_nobody() {
    use std::io::{Read, Write};
    let ens = start(3, 0);
    let leader = ens.wait_for_leader(ELECTION);
    let follower_info = {
        let mut body = Vec::new();
        body.extend_from_slice(&99i64.to_be_bytes()); // sid 99: not a member
        body.extend_from_slice(&0x10000i32.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        let mut p = Vec::new();
        p.extend_from_slice(&11i32.to_be_bytes());
        p.extend_from_slice(&0i64.to_be_bytes());
        p.extend_from_slice(&(body.len() as i32).to_be_bytes());
        p.extend_from_slice(&body);
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p
    };
    let mut huge_data = Vec::new();
    huge_data.extend_from_slice(&11i32.to_be_bytes());
    huge_data.extend_from_slice(&0i64.to_be_bytes());
    huge_data.extend_from_slice(&i32::MAX.to_be_bytes());
    let mut huge_auth = Vec::new();
    huge_auth.extend_from_slice(&5i32.to_be_bytes());
    huge_auth.extend_from_slice(&0i64.to_be_bytes());
    huge_auth.extend_from_slice(&(-1i32).to_be_bytes());
    huge_auth.extend_from_slice(&i32::MAX.to_be_bytes());
    let noise: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for addr in [ens.quorum_addr(leader), ens.election_addr(leader)] {
        for bytes in [&noise, &huge_data, &follower_info, &huge_auth] {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            let _ = s.write_all(bytes);
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            // The peer closes the connection (EOF or reset) instead of waiting for more.
            let mut buf = [0u8; 64];
            let closed = matches!(s.read(&mut buf), Ok(0) | Err(_));
            assert!(closed || addr == ens.election_addr(leader), "{addr}: connection kept");
        }
    }
    assert_eq!(ens.leader(), Some(leader), "the leader is unchanged");
    for id in ens.ids() {
        let c = C.connect(C.config(&ens.client_addr(id).to_string()));
        c.create(&format!("/after-garbage-{id}"), b"", &open(), CreateMode::Persistent)
            .unwrap_or_else(|e| panic!("create through {id}: {e}"));
        let _ = c.close();
    }
    assert!(ens.log(leader).contains("bad packet"), "the leader logs why it closed");
}

/// `leaderServes=no`: the leader's client port answers like Apache's with no server attached
/// (four-letter words say it is not serving, client connections are closed) while the
/// followers take every client and their writes.
#[test]
fn leader_serves_no_keeps_clients_on_the_followers() {
    let ens = Ensemble::start(Flavor::rzk(), 3, 0, |_, cfg| {
        fast(cfg);
        set_key(cfg, "leaderServes", "no");
    });
    let deadline = Instant::now() + ELECTION;
    let leader = loop {
        let quiet: Vec<u32> = ens
            .ids()
            .into_iter()
            .filter(|&id| ens.log(id).contains("leader: serving epoch"))
            .filter(|&id| {
                four_letter(ens.client_addr(id), "srvr")
                    .is_some_and(|a| a.contains("not currently serving"))
            })
            .collect();
        let followers =
            ens.ids().into_iter().filter(|&id| ens.mode(id).as_deref() == Some("follower"));
        if quiet.len() == 1 && followers.count() == 2 {
            break quiet[0];
        }
        assert!(Instant::now() < deadline, "no quiet leader:\n{}", ens.status());
        std::thread::sleep(Duration::from_millis(100));
    };
    let c = C.connect(C.config(&ens.connect_string()));
    c.create("/through-followers", b"x", &open(), CreateMode::Persistent).expect("create");
    let _ = c.close();
    // A client that only knows the leader never gets a session.
    let only = C.config(&ens.client_addr(leader).to_string()).connect().expect("client");
    assert!(only.wait_connected(Duration::from_secs(2)).is_err(), "the leader took a client");
    let _ = only.close();
    for id in ens.ids().into_iter().filter(|&id| id != leader) {
        let c = C.synced(&ens, id);
        assert_eq!(c.get_data("/through-followers", false).expect("read").0, b"x");
    }
}

// ---------------------------------------------------------------------------------------

const WRITERS: usize = 4;

#[derive(Default)]
struct Acked {
    /// Sequential node name (under /load/w{i}) -> data, for every acknowledged create.
    creates: BTreeMap<String, Vec<u8>>,
    /// Numbers of the acknowledged multis (each created /load/m/w{i}-{n}-a and -b).
    multis: BTreeSet<usize>,
    errors: usize,
}

/// What one op of a writer did: a sequential create (its node name) or a multi.
enum Done {
    Create(String),
    Multi,
}

/// Ops a writer keeps in flight (pipelined on its session).
const WRITER_WINDOW: usize = 8;

/// One writer: rounds of [`WRITER_WINDOW`] pipelined ops, sequential creates under
/// /load/w{i} and every 8th op a multi (two creates and a setData), until `stop`.
fn writer(i: usize, cs: String, stop: Arc<AtomicBool>, total: Arc<AtomicUsize>) -> Acked {
    let mut acked = Acked::default();
    let mut c = C.connect(C.config(&cs));
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && n < 5000 {
        let first = n;
        n += WRITER_WINDOW;
        let results = pipelined(WRITER_WINDOW, WRITER_WINDOW, |k, done| {
            let n = first + k;
            let data = format!("w{i}-{n}").into_bytes();
            if n % 8 == 7 {
                let create = |suffix: &str| Op::Create {
                    path: format!("/load/m/w{i}-{n}-{suffix}"),
                    data: data.clone(),
                    acl: open(),
                    mode: CreateMode::Persistent,
                    ttl: None,
                };
                let set =
                    Op::SetData { path: format!("/load/w{i}"), data: data.clone(), version: -1 };
                let ops = [create("a"), create("b"), set];
                c.multi_async(&ops, move |r| done(r.map(|_| Done::Multi)));
            } else {
                let path = format!("/load/w{i}/n-");
                c.create_async(&path, &data, &open(), CreateMode::PersistentSequential, move |r| {
                    done(r.map(|p| Done::Create(p.rsplit('/').next().unwrap_or("").to_string())))
                });
            }
        });
        let mut failed = None;
        for (k, r) in results.into_iter().enumerate() {
            let n = first + k;
            match r {
                Ok(Done::Multi) => {
                    acked.multis.insert(n);
                }
                Ok(Done::Create(name)) => {
                    let data = format!("w{i}-{n}").into_bytes();
                    assert!(acked.creates.insert(name.clone(), data).is_none(), "reused: {name}");
                }
                Err(e) => {
                    acked.errors += 1;
                    failed = Some(e);
                    continue;
                }
            }
            total.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(e) = failed {
            if !c.state().is_alive() {
                eprintln!("writer {i}: {e}; client is {:?}, new session", c.state());
                c = C.connect(C.config(&cs));
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let _ = c.close();
    acked
}

/// Scenario 2: kill -9 of the leader under write load (forceSync=yes): a new leader takes the
/// writes, and once the old leader is back every server has every acknowledged create and multi,
/// with no duplicate and no half-applied multi.
#[test]
fn leader_kill9_under_write_load_loses_no_acknowledged_write() {
    let t0 = Instant::now();
    let mut ens = start_with("forceSync", "yes");
    let leader = ens.leader().expect("leader");
    let all = ens.ids();
    let setup = C.connect(C.config(&ens.connect_string()));
    for p in ["/load", "/load/m"] {
        setup.create(p, b"", &open(), CreateMode::Persistent).unwrap();
    }
    for i in 0..WRITERS {
        setup.create(&format!("/load/w{i}"), b"", &open(), CreateMode::Persistent).unwrap();
    }
    let _ = setup.close();

    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            // Each writer lists the servers from a different one (the client shuffles them
            // anyway, so sessions end up spread).
            let mut order = all.clone();
            order.rotate_left(i % all.len());
            let cs = ens.connect_string_of(&order);
            let (stop, total) = (stop.clone(), total.clone());
            std::thread::spawn(move || writer(i, cs, stop, total))
        })
        .collect();

    wait_for("500 writes before the kill", Duration::from_secs(30), || {
        total.load(Ordering::Relaxed) >= 500
    });
    let before = total.load(Ordering::Relaxed);
    ens.kill9(leader);
    let killed = Instant::now();
    let new_leader = ens.wait_for_leader(ELECTION);
    assert_ne!(new_leader, leader);
    eprintln!(
        "{before} writes acked, then peer {new_leader} leads {:?} after the kill",
        killed.elapsed()
    );
    wait_for("800 writes after the kill", Duration::from_secs(40), || {
        total.load(Ordering::Relaxed) >= before + 800
    });
    // The old leader rejoins while the writes go on (more than the leader's committed log
    // behind: a SNAP followed by the proposals committed meanwhile), and follows along.
    let from = ens.log(new_leader).len();
    ens.restart(leader);
    ens.wait_for_mode(leader, "follower", ELECTION);
    let rejoined = total.load(Ordering::Relaxed);
    eprintln!("{rejoined} writes acked when the old leader follows again");
    wait_for("300 writes after the rejoin", Duration::from_secs(40), || {
        total.load(Ordering::Relaxed) >= rejoined + 300
    });
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acked> = threads.into_iter().map(|t| t.join().expect("writer")).collect();
    let errors: usize = acked.iter().map(|a| a.errors).sum();
    eprintln!(
        "{} writes acked, {errors} failed (connection loss / timeout)",
        total.load(Ordering::Relaxed)
    );
    eprintln!("{:?}", sync_line(&ens.log(new_leader), from, leader));
    ens.wait_all_serving(ELECTION);

    let mut reference: Option<Vec<BTreeMap<String, Vec<u8>>>> = None;
    for &id in &all {
        let c = C.synced(&ens, id);
        let mut trees = Vec::new();
        for (i, a) in acked.iter().enumerate() {
            let tree = subtree(&c, &format!("/load/w{i}"));
            for (name, data) in &a.creates {
                assert_eq!(tree.get(name), Some(data), "peer {id}: acked /load/w{i}/{name}");
            }
            let mut seen = BTreeSet::new();
            for (name, data) in &tree {
                assert!(seen.insert(data), "peer {id}: /load/w{i}/{name} duplicates a create");
            }
            trees.push(tree);
        }
        let multis = subtree(&c, "/load/m");
        trees.push(multis.clone());
        for (i, a) in acked.iter().enumerate() {
            for n in &a.multis {
                assert!(multis.contains_key(&format!("w{i}-{n}-a")), "peer {id}: multi w{i}-{n}");
            }
        }
        for name in multis.keys() {
            let other = match name.strip_suffix("-a") {
                Some(stem) => format!("{stem}-b"),
                None => format!("{}-a", name.strip_suffix("-b").unwrap()),
            };
            assert!(multis.contains_key(&other), "peer {id}: half-applied multi ({name})");
        }
        match &reference {
            None => reference = Some(trees),
            Some(r) => assert!(r == &trees, "peer {id} differs from peer {}", all[0]),
        }
    }
    eprintln!("scenario 2 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Asserts that `parent`'s children are exactly n0000..n{count-1}, child i holding "i" (what
/// the pipelined creates of the catch-up scenarios wrote).
fn assert_numbered(c: &rzk::client::Client, parent: &str, count: usize, what: &str) {
    let tree = subtree(c, parent);
    assert_eq!(tree.len(), count, "{what}");
    for (i, (name, data)) in tree.iter().enumerate() {
        assert_eq!(
            (name.as_str(), data.as_slice()),
            (format!("n{i:04}").as_str(), format!("{i}").as_bytes()),
            "{what}"
        );
    }
}

/// Scenario 3: a follower that was down catches up by DIFF after a few writes and by SNAP after
/// more writes than the leader's committed log holds (500).
#[test]
fn follower_catches_up_by_diff_then_snap() {
    let t0 = Instant::now();
    let mut ens = start(3, 0);
    let leader = ens.leader().expect("leader");
    let f = followers(&ens, leader)[0];
    let lc = C.connect(C.config(&ens.client_addr(leader).to_string()));
    lc.create("/diff", b"", &open(), CreateMode::Persistent).unwrap();
    lc.create("/snap", b"", &open(), CreateMode::Persistent).unwrap();
    // The quorum may commit without this follower's ack: make sure it has both creates before
    // it goes down, or the DIFF below would carry them too.
    assert_eq!(C.read_through(&ens, f, "/snap").as_deref(), Some(&b""[..]), "peer {f}");

    // DIFF: a few writes while the follower is down.
    ens.kill9(f);
    for n in 0..10 {
        lc.create(&format!("/diff/n{n}"), b"d", &open(), CreateMode::Persistent).unwrap();
    }
    let from = ens.log(leader).len();
    ens.restart(f);
    ens.wait_for_mode(f, "follower", ELECTION);
    let c = C.synced(&ens, f);
    assert_eq!(subtree(&c, "/diff").len(), 10, "peer {f} after DIFF");
    let _ = c.close();
    let line = sync_line(&ens.log(leader), from, f).expect("the leader logged the sync");
    eprintln!("{line}");
    assert!(line.contains("with DIFF of 10 txns"), "{line}");

    // SNAP: 1500 writes (pipelined) while it is down.
    ens.kill9(f);
    let results = pipelined(1500, 200, |i, done| {
        let path = format!("/snap/n{i:04}");
        lc.create_async(&path, format!("{i}").as_bytes(), &open(), CreateMode::Persistent, done)
    });
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "create /snap/n{i:04}: {r:?}");
    }
    let from = ens.log(leader).len();
    ens.restart(f);
    ens.wait_for_mode(f, "follower", ELECTION);
    let c = C.synced(&ens, f);
    assert_numbered(&c, "/snap", 1500, &format!("peer {f} after SNAP"));
    assert_eq!(subtree(&c, "/diff").len(), 10);
    let line = sync_line(&ens.log(leader), from, f).expect("the leader logged the sync");
    eprintln!("{line}");
    assert!(line.contains("with SNAP"), "{line}");

    // It follows on: a new write through the leader is seen through it.
    lc.create("/snap/after", b"x", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(C.read_through(&ens, f, "/snap/after").as_deref(), Some(&b"x"[..]));
    eprintln!("scenario 3 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Asserts that nothing arrives on `stream` for `wait` (`what` was expected to stay silent),
/// then sets a 10 s read timeout for what follows.
fn assert_silent(stream: &mut std::net::TcpStream, wait: Duration, what: &str) {
    use std::io::{ErrorKind, Read};
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("{what} answered: {other:?}"),
    }
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

/// A client re-attaching its session through a follower gets its ConnectResponse only once the
/// leader has revalidated the session (ZooKeeper's `Learner.validateSession`): nothing while the
/// leader is frozen, the session as soon as it thaws; and once the leader has closed the
/// session, a re-attach through a follower is told it expired.
#[test]
fn reattach_through_a_follower_waits_for_the_leader() {
    use harness::wire::{connect_request, parse_connect_response};
    let t0 = Instant::now();
    let mut ens = start_patient();
    let leader = ens.leader().expect("leader");
    let fs = followers(&ens, leader);
    let mut a = harness::Raw::connect(ens.client_addr(fs[0]));
    let first = a.handshake(30_000);
    assert!(first.time_out > 0 && first.session_id != 0, "{first:?}");
    let reattach = connect_request(0, 30_000, first.session_id, &first.passwd, Some(false));

    ens.sigstop(leader);
    let mut b = harness::Raw::connect(ens.client_addr(fs[1]));
    b.send_frame(&reattach);
    assert_silent(&mut b.stream, Duration::from_millis(700), "the follower without the leader");
    ens.sigcont(leader);
    let f = b.read_frame().expect("a ConnectResponse once the leader answers");
    let r = parse_connect_response(&f);
    assert_eq!((r.session, r.timeout_ms), (first.session_id, 30_000), "{r:?}");

    // Close the session (through the follower now holding it); a later re-attach through the
    // other follower is refused as expired, and the connection is closed.
    b.send_frame(&harness::wire::Enc::new().int(1).int(-11).done());
    let _ = b.read_frame();
    let mut c = harness::Raw::connect(ens.client_addr(fs[0]));
    c.send_frame(&reattach);
    let f = c.read_frame().expect("an answer");
    let r = parse_connect_response(&f);
    assert_eq!((r.session, r.timeout_ms), (0, 0), "expired: {r:?}");
    assert!(c.is_closed());
    eprintln!("re-attach scenario in {:?}", t0.elapsed());
}

/// On a follower, a read waits only behind its own session's outstanding writes (ZooKeeper's
/// CommitProcessor): with the leader frozen, session S's setData cannot commit, so S's next
/// read waits, while session T's read on the same follower is answered at once. When the
/// leader thaws, S gets its two replies in order and its read sees its write.
#[test]
fn follower_reads_wait_only_for_their_own_sessions_writes() {
    use harness::wire::{op, path_watch, set_data, Dec, Session};
    let t0 = Instant::now();
    let mut ens = start_patient();
    let leader = ens.leader().expect("leader");
    let f = followers(&ens, leader)[0];
    let mut s = Session::open(ens.client_addr(f));
    assert_eq!(s.create("/held", b"before", 0).0.err, 0);
    let mut t = Session::open(ens.client_addr(f));

    ens.sigstop(leader);
    s.send(101, op::SET_DATA, &set_data("/held", b"after", -1));
    s.send(102, op::GET_DATA, &path_watch("/held", false));
    t.raw.stream.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let (data, _) = t.get_data("/held");
    assert_eq!(data.as_deref(), Some(&b"before"[..]), "T reads the committed state at once");
    assert_silent(&mut s.raw.stream, Duration::from_millis(300), "S before its write commits");
    ens.sigcont(leader);
    let (h, _) = s.reply_to(101);
    assert_eq!(h.err, 0, "setData");
    let (h, body) = s.reply_to(102);
    assert_eq!(h.err, 0, "getData");
    assert_eq!(Dec::new(&body).buf().as_deref(), Some(&b"after"[..]), "S reads its own write");
    eprintln!("held-reads scenario in {:?}", t0.elapsed());
}

/// With `quorumListenOnAllIPs=true` every peer binds its quorum and election ports on the
/// wildcard address (still reached over loopback here), and the ensemble forms and replicates.
#[test]
fn quorum_listen_on_all_ips_binds_the_wildcard_address() {
    let ens = start_with("quorumListenOnAllIPs", "true");
    let leader = ens.leader().expect("leader");
    let listening = listening_sockets();
    for id in ens.ids() {
        let election = ens.election_addr(id).port();
        assert!(
            listening.contains(&([0, 0, 0, 0], election)),
            "peer {id}'s election port {election} is not bound on 0.0.0.0: {listening:?}"
        );
    }
    let quorum = ens.quorum_addr(leader).port();
    assert!(listening.contains(&([0, 0, 0, 0], quorum)), "leader's quorum port {quorum}");
    let lc = C.connect(C.config(&ens.client_addr(leader).to_string()));
    lc.create("/all-ips", b"y", &open(), CreateMode::Persistent).unwrap();
    for id in ens.ids() {
        assert_eq!(C.read_through(&ens, id, "/all-ips").as_deref(), Some(&b"y"[..]));
    }
}

/// (IPv4 address, port) of every listening TCP socket, from /proc/net/tcp.
fn listening_sockets() -> Vec<([u8; 4], u16)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT (IP in host byte order); state 0A is LISTEN.
            if fields.get(3) != Some(&"0A") {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?.to_le_bytes();
            Some((ip, u16::from_str_radix(port, 16).ok()?))
        })
        .collect()
}

/// The zxids of the snapshots in peer `id`'s data dir.
fn snapshot_zxids(ens: &Ensemble, id: u32) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(ens.dir(id).join("version-2")) else { return vec![] };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            i64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()
        })
        .collect()
}

/// Scenario 3b: a follower behind the leader's committed log (500 txns) but not behind its
/// newest snapshot catches up by a DIFF read from the leader's txn log, as ZooKeeper's
/// `snapshotSizeFactor` sync does, because the 1500 small txns it missed are far smaller than a
/// third of the snapshot (big nodes written first; `snapSizeLimitInKb` makes the peers snapshot
/// them).
#[test]
fn follower_behind_the_committed_log_catches_up_from_the_txn_log() {
    let t0 = Instant::now();
    let mut ens = start_with("snapSizeLimitInKb", "2048");
    let leader = ens.leader().expect("leader");
    let f = followers(&ens, leader)[0];
    let lc = C.connect(C.config(&ens.client_addr(leader).to_string()));
    lc.create("/big", b"", &open(), CreateMode::Persistent).unwrap();
    let big = vec![b'b'; 900_000];
    for n in 0..4 {
        lc.create(&format!("/big/b{n}"), &big, &open(), CreateMode::Persistent).unwrap();
    }
    let deadline = Instant::now() + ELECTION;
    while !snapshot_zxids(&ens, leader).iter().any(|z| *z > 0) {
        assert!(Instant::now() < deadline, "the leader took no snapshot of the big nodes");
        std::thread::sleep(Duration::from_millis(50));
    }
    lc.create("/log-diff", b"", &open(), CreateMode::Persistent).unwrap();
    // The follower has everything so far, so it is not behind the leader's snapshot.
    let c = C.synced(&ens, f);
    assert!(c.exists("/log-diff", false).unwrap().is_some());
    drop(c);
    ens.kill9(f);
    let results = pipelined(1500, 200, |i, done| {
        let path = format!("/log-diff/n{i:04}");
        lc.create_async(&path, format!("{i}").as_bytes(), &open(), CreateMode::Persistent, done)
    });
    assert!(results.iter().all(|r| r.is_ok()), "pipelined creates");
    let from = ens.log(leader).len();
    ens.restart(f);
    ens.wait_for_mode(f, "follower", ELECTION);
    let c = C.synced(&ens, f);
    assert_numbered(&c, "/log-diff", 1500, &format!("peer {f} after the txn-log DIFF"));
    assert_eq!(c.get_data("/big/b3", false).unwrap().0.len(), 900_000);
    let line = sync_line(&ens.log(leader), from, f).expect("the leader logged the sync");
    eprintln!("{line}");
    assert!(line.contains("with DIFF of 1500 txns from the txn log"), "{line}");
    // It follows on, and a restart recovers the same tree from its own files.
    lc.create("/log-diff/after", b"x", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(C.read_through(&ens, f, "/log-diff/after").as_deref(), Some(&b"x"[..]));
    ens.kill9(f);
    ens.restart(f);
    ens.wait_for_mode(f, "follower", ELECTION);
    let c = C.synced(&ens, f);
    assert_eq!(subtree(&c, "/log-diff").len(), 1501);
    eprintln!("scenario 3b in {:?}", t0.elapsed());
}

/// Whether some file under `dir` (the peer's data, not its output) contains `needle`.
fn data_files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            return data_files_contain(&p, needle);
        }
        if p.file_name().is_some_and(|n| n == "log" || n == "zoo.cfg") {
            return false;
        }
        let bytes = std::fs::read(&p).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// How the frozen followers of scenario 4 come back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Thaw {
    /// SIGCONT: they read the proposal still queued in their sockets, log it, and the new
    /// leader (elected with that zxid) commits it.
    Cont,
    /// kill -9 and restart: the queued proposal dies with them, only the old leader has it.
    Kill,
}

/// Scenario 4: a leader cut off from its (frozen) followers proposes and logs a txn that cannot
/// commit (the client gets no ack); the leader is killed, the followers come back and elect a new
/// leader that writes on, and the old leader rejoins. With [`Thaw::Kill`] the txn exists only in
/// the old leader's log and must be gone (TRUNC or SNAP), also after another restart from its own
/// data; with [`Thaw::Cont`] the followers logged it too (it sat in their socket buffers), and
/// every server must agree on it.
///
/// With `rejoin_first`, the old leader rejoins before the new leader has written anything:
/// its last zxid is then past the new leader's committed log, which calls for a TRUNC.
fn stale_leader(thaw: Thaw, rejoin_first: bool) {
    let t0 = Instant::now();
    let mut ens = start(3, 0);
    let leader = ens.leader().expect("leader");
    let fs = followers(&ens, leader);
    C.create_until_ok(&ens.client_addr(leader).to_string(), "/base", b"");

    let c = C.connect(
        ClientConfig::new(&ens.client_addr(leader).to_string(), Duration::from_secs(15))
            .request_timeout(Duration::from_secs(1)),
    );
    for &f in &fs {
        ens.sigstop(f);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    c.create_async("/uncommitted", b"never", &open(), CreateMode::Persistent, move |r| {
        let _ = tx.send(r);
    });
    let logged = Instant::now() + Duration::from_secs(3);
    while !data_files_contain(ens.dir(leader), b"/uncommitted") && Instant::now() < logged {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(data_files_contain(ens.dir(leader), b"/uncommitted"), "the leader logged the txn");
    ens.kill9(leader);
    let outcome = rx.recv_timeout(Duration::from_secs(10)).expect("the create completes");
    assert!(outcome.is_err(), "a write without a quorum was acknowledged: {outcome:?}");
    eprintln!("create without quorum: {outcome:?}");
    let _ = c.close();

    for &f in &fs {
        match thaw {
            Thaw::Cont => ens.sigcont(f),
            Thaw::Kill => {
                ens.kill9(f);
                ens.restart(f);
            }
        }
    }
    let new_leader = ens.wait_for_leader(ELECTION);
    assert!(fs.contains(&new_leader));
    if !rejoin_first {
        C.create_until_ok(&ens.connect_string_of(&fs), "/after", b"new");
    }
    let from = ens.log(new_leader).len();
    ens.restart(leader);
    ens.wait_for_mode(leader, "follower", ELECTION);
    let line = sync_line(&ens.log(new_leader), from, leader).expect("the leader logged the sync");
    eprintln!("old leader synced: {line}");
    if rejoin_first {
        assert!(line.contains("with TRUNC"), "{line}");
        C.create_until_ok(&ens.connect_string_of(&fs), "/after", b"new");
    }
    let survived = C.read_through(&ens, new_leader, "/uncommitted");
    eprintln!("{thaw:?}: /uncommitted on the new leader: {survived:?}");
    if thaw == Thaw::Kill {
        assert_eq!(survived, None, "only the old leader had the txn");
    }
    for id in ens.ids() {
        assert_eq!(C.read_through(&ens, id, "/uncommitted"), survived, "peer {id}");
        assert_eq!(C.read_through(&ens, id, "/after").as_deref(), Some(&b"new"[..]), "peer {id}");
    }
    // The outcome holds on disk: once more from the old leader's own data.
    ens.kill9(leader);
    ens.restart(leader);
    ens.wait_for_mode(leader, "follower", ELECTION);
    assert_eq!(C.read_through(&ens, leader, "/uncommitted"), survived, "after a second restart");
    assert_eq!(C.read_through(&ens, leader, "/after").as_deref(), Some(&b"new"[..]));
    eprintln!("scenario 4 ({thaw:?}) in {:?}", t0.elapsed());
}

#[test]
fn stale_leader_uncommitted_txn_is_truncated() {
    stale_leader(Thaw::Kill, false);
}

#[test]
fn stale_leader_rejoining_at_once_is_truncated_by_trunc() {
    stale_leader(Thaw::Kill, true);
}

#[test]
fn stale_leader_txn_logged_by_frozen_followers_is_kept_consistently() {
    stale_leader(Thaw::Cont, false);
}

// ---------------------------------------------------------------------------------------

/// Scenario 5: observers: watches set through an observer fire for writes made through a
/// participant, sync() through the observer returns and the next read sees the write; writes
/// through the observer are forwarded.
#[test]
fn observer_watches_and_sync() {
    let t0 = Instant::now();
    let mut ens = start(3, 1);
    let observer = ens.observers()[0];
    ens.wait_for_mode(observer, "observer", ELECTION);
    let participant = ens.participants()[1];
    let pc = C.connect(C.config(&ens.client_addr(participant).to_string()));
    pc.create("/watched", b"v0", &open(), CreateMode::Persistent).unwrap();

    let oc = C.synced(&ens, observer);
    let (tx, events) = crossbeam_channel::unbounded();
    let w = Watcher::channel(tx);
    assert_eq!(oc.get_data("/watched", &w).unwrap().0, b"v0");
    assert!(oc.exists("/created-later", &w).unwrap().is_none());
    oc.get_children("/watched", &w).unwrap();

    pc.set_data("/watched", b"v1", -1).unwrap();
    pc.create("/created-later", b"", &open(), CreateMode::Persistent).unwrap();
    pc.create("/watched/child", b"", &open(), CreateMode::Persistent).unwrap();
    let want = [
        ("/watched".to_string(), EventType::NodeDataChanged),
        ("/created-later".to_string(), EventType::NodeCreated),
        ("/watched".to_string(), EventType::NodeChildrenChanged),
    ];
    let mut got = Vec::new();
    while !want.iter().all(|w| got.contains(w)) {
        let e = events
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("watch events on the observer: got {got:?}"));
        got.push((e.path.clone().unwrap_or_default(), e.event_type));
    }
    eprintln!("observer events: {got:?}");

    // sync() through the observer, then the read sees a write made just before elsewhere.
    for n in 0..20 {
        let v = format!("v{}", n + 2);
        pc.set_data("/watched", v.as_bytes(), -1).unwrap();
        oc.sync("/watched").unwrap();
        assert_eq!(oc.get_data("/watched", false).unwrap().0, v.as_bytes());
    }
    // Writes through the observer are forwarded to the leader and seen everywhere.
    oc.create("/from-observer", b"o", &open(), CreateMode::Persistent).unwrap();
    for id in ens.participants() {
        assert_eq!(C.read_through(&ens, id, "/from-observer").as_deref(), Some(&b"o"[..]));
    }
    drop(oc);

    // An observer that was down for more writes than the committed log holds catches up.
    ens.kill9(observer);
    pc.create("/obs-snap", b"", &open(), CreateMode::Persistent).unwrap();
    let results = pipelined(600, 200, |i, done| {
        let path = format!("/obs-snap/n{i:03}");
        pc.create_async(&path, b"s", &open(), CreateMode::Persistent, done)
    });
    assert!(results.iter().all(|r| r.is_ok()), "pipelined creates");
    let leader = ens.leader().expect("leader");
    let from = ens.log(leader).len();
    ens.restart(observer);
    ens.wait_for_mode(observer, "observer", ELECTION);
    let line = sync_line(&ens.log(leader), from, observer).expect("the leader logged the sync");
    assert!(line.contains("with SNAP"), "{line}");
    let oc = C.synced(&ens, observer);
    assert_eq!(subtree(&oc, "/obs-snap").len(), 600);
    pc.set_data("/watched", b"last", -1).unwrap();
    oc.sync("/").unwrap();
    assert_eq!(oc.get_data("/watched", false).unwrap().0, b"last");
    eprintln!("scenario 5 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Scenario 6: with two of three peers killed, the survivor cannot commit: a create through it is
/// not acknowledged; after one peer restarts the ensemble takes writes again, and the create's node
/// exists only if it was acknowledged.
#[test]
fn minority_cannot_commit() {
    let t0 = Instant::now();
    let mut ens = start(3, 0);
    let leader = ens.leader().expect("leader");
    let fs = followers(&ens, leader);
    let (survivor, other) = (fs[0], fs[1]);
    let c = C.connect(C.config(&ens.client_addr(survivor).to_string()));
    c.create("/before", b"", &open(), CreateMode::Persistent).unwrap();

    ens.kill9(leader);
    ens.kill9(other);
    wait_for("the survivor to stop serving", ELECTION, || ens.mode(survivor).is_none());
    let (tx, rx) = crossbeam_channel::bounded(1);
    c.create_async("/minority", b"", &open(), CreateMode::Persistent, move |r| {
        let _ = tx.send(r);
    });
    // A new client cannot even get a session from the survivor.
    let fresh = ClientConfig::new(&ens.client_addr(survivor).to_string(), Duration::from_secs(3))
        .connect()
        .unwrap();
    assert!(fresh.wait_connected(Duration::from_secs(3)).is_err(), "a minority gave a session");
    let _ = fresh.close();
    let early = rx.recv_timeout(Duration::from_secs(1));
    assert!(!matches!(early, Ok(Ok(_))), "a minority acknowledged a create");

    ens.restart(other);
    let new_leader = ens.wait_for_leader(ELECTION);
    eprintln!("peer {new_leader} leads again");
    C.create_until_ok(&ens.client_addr(survivor).to_string(), "/after", b"");
    let outcome = match early {
        Ok(r) => r,
        Err(_) => rx.recv_timeout(ELECTION).expect("the queued create completes"),
    };
    eprintln!("create through the minority: {outcome:?}");
    let expected = outcome.is_ok();
    for id in [survivor, other] {
        assert_eq!(C.read_through(&ens, id, "/minority").is_some(), expected, "peer {id}");
        assert!(C.read_through(&ens, id, "/before").is_some());
        assert!(C.read_through(&ens, id, "/after").is_some());
    }
    eprintln!("scenario 6 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Scenario 7: read-only mode: a lone survivor serves reads to canBeReadOnly clients, refuses
/// writes (NOTREADONLY) and other clients; when the quorum is back the client moves to a read-write
/// server and writes.
#[test]
fn read_only_mode_when_out_of_quorum() {
    let t0 = Instant::now();
    let mut ens = start_with("readonlymode.enabled", "true");
    let leader = ens.leader().expect("leader");
    let fs = followers(&ens, leader);
    let survivor = fs[0];
    C.create_until_ok(&ens.connect_string(), "/ro", b"data");
    assert_eq!(C.read_through(&ens, survivor, "/ro").as_deref(), Some(&b"data"[..]));
    let survivor_addr = ens.client_addr(survivor);
    let isro = || four_letter(survivor_addr, "isro").map(|s| s.trim().to_string());
    assert_eq!(isro().as_deref(), Some("rw"));

    ens.kill9(leader);
    ens.kill9(fs[1]);
    wait_for("isro = ro", ELECTION, || isro().as_deref() == Some("ro"));

    let ro = C.connect(C.config(&ens.connect_string()).can_be_read_only(true));
    assert_eq!(ro.state(), State::ConnectedReadOnly);
    assert_eq!(ro.get_data("/ro", false).unwrap().0, b"data");
    assert_eq!(ro.get_children("/", false).map(|c| c.contains(&"ro".to_string())).ok(), Some(true));
    match ro.create("/ro-write", b"", &open(), CreateMode::Persistent) {
        Err(Error::Server(ErrorCode::NotReadOnly)) => {}
        other => panic!("write on a read-only server: {other:?}"),
    }
    let rw = ClientConfig::new(&ens.client_addr(survivor).to_string(), Duration::from_secs(3))
        .connect()
        .unwrap();
    assert!(rw.wait_connected(Duration::from_secs(3)).is_err(), "read-write client accepted");
    let _ = rw.close();

    ens.restart(leader);
    ens.restart(fs[1]);
    ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    wait_for("isro = rw", ELECTION, || isro().as_deref() == Some("rw"));
    let state = ro.wait_for_state(|s| s == State::Connected, Duration::from_secs(30));
    assert_eq!(state, State::Connected, "the read-only client found a read-write server");
    ro.create("/ro-write", b"w", &open(), CreateMode::Persistent).unwrap();
    for id in ens.ids() {
        assert_eq!(C.read_through(&ens, id, "/ro-write").as_deref(), Some(&b"w"[..]), "peer {id}");
    }
    eprintln!("scenario 7 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Scenario 8: five peers lose the leader and a follower: three elect a leader and take writes; the
/// two come back and all five converge.
#[test]
fn five_peers_survive_two_failures() {
    let t0 = Instant::now();
    let mut ens = start(5, 0);
    let leader = ens.leader().expect("leader");
    let f = followers(&ens, leader)[0];
    C.create_until_ok(&ens.connect_string(), "/five", b"0");
    ens.kill9(leader);
    ens.kill9(f);
    let new_leader = ens.wait_for_leader(ELECTION);
    let rest: Vec<u32> = ens.ids().into_iter().filter(|&id| id != leader && id != f).collect();
    assert!(rest.contains(&new_leader));
    C.create_until_ok(&ens.connect_string_of(&rest), "/five/during", b"1");
    let c = C.connect(C.config(&ens.connect_string_of(&rest)));
    for n in 0..50 {
        c.create(&format!("/five/n{n}"), b"", &open(), CreateMode::Persistent).unwrap();
    }
    c.set_data("/five", b"2", -1).unwrap();
    let _ = c.close();

    ens.restart(leader);
    ens.restart(f);
    ens.wait_for_mode(leader, "follower", ELECTION);
    ens.wait_for_mode(f, "follower", ELECTION);
    ens.wait_all_serving(ELECTION);
    let mut reference = None;
    for id in ens.ids() {
        let c = C.synced(&ens, id);
        let tree = (c.get_data("/five", false).unwrap().0, subtree(&c, "/five"));
        assert_eq!(tree.0, b"2", "peer {id}");
        assert_eq!(tree.1.len(), 51, "peer {id}");
        match &reference {
            None => reference = Some(tree),
            Some(r) => assert!(r == &tree, "peer {id} differs"),
        }
    }
    let mut zxids = Vec::new();
    wait_for("equal zxids", Duration::from_secs(10), || {
        zxids = ens.ids().iter().map(|&id| srvr_zxid(&ens, id)).collect();
        zxids[0].is_some() && zxids.iter().all(|z| z == &zxids[0])
    });
    eprintln!("zxids {zxids:?}; scenario 8 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Scenario 9: sessions move between servers: a client fails over to another server with its
/// session and ephemeral; the session re-attached (id and password) through a third server keeps
/// its ephemeral; closing it removes the ephemeral everywhere; a session whose client vanished
/// expires on the leader and its ephemeral disappears on every server.
#[test]
fn sessions_move_between_servers_and_expire() {
    let t0 = Instant::now();
    let mut ens = start(3, 0);
    let leader = ens.leader().expect("leader");
    let fs = followers(&ens, leader);
    let x = C.connect(C.config(&ens.connect_string_of(&fs)));
    let sid = x.session_id();
    x.create("/eph-x", b"x", &open(), CreateMode::Ephemeral).unwrap();
    let marker = format!("sid=0x{:x}", sid.0);
    let on = *fs
        .iter()
        .find(|&&id| four_letter(ens.client_addr(id), "cons").is_some_and(|c| c.contains(&marker)))
        .expect("the session's server");
    let other = *fs.iter().find(|&&id| id != on).unwrap();

    // Fail over: kill its server; the client reconnects to the other follower.
    ens.kill9(on);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(x.wait_for_state(|s| s == State::Connected, ELECTION), State::Connected);
    assert_eq!(x.session_id(), sid);
    let stat = x.exists("/eph-x", false).unwrap().expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, sid.0);
    assert!(four_letter(ens.client_addr(other), "cons").unwrap().contains(&marker));

    // Re-attach the same session through the leader.
    let y = C
        .connect(C.config(&ens.client_addr(leader).to_string()).session(sid, x.session_password()));
    assert_eq!(y.session_id(), sid);
    assert_eq!(y.get_ephemerals("/").unwrap(), vec!["/eph-x".to_string()]);
    assert_eq!(C.read_through(&ens, other, "/eph-x").as_deref(), Some(&b"x"[..]));
    y.close().unwrap();
    for id in [leader, other] {
        assert_eq!(C.read_through(&ens, id, "/eph-x"), None, "peer {id} after close");
    }
    drop(x);
    ens.restart(on);
    ens.wait_for_mode(on, "follower", ELECTION);
    assert_eq!(C.read_through(&ens, on, "/eph-x"), None, "peer {on} after restart");

    // Expiry: a raw session creates an ephemeral and vanishes without closing.
    let mut z = harness::wire::Session::open_with_timeout(ens.client_addr(other), 2000);
    let (reply, _, _) = z.create("/eph-z", b"z", 1);
    assert_eq!(reply.err, 0);
    for id in ens.ids() {
        assert!(C.read_through(&ens, id, "/eph-z").is_some(), "peer {id}");
    }
    drop(z);
    let gone = Instant::now();
    for id in ens.ids() {
        wait_for("the expired session's ephemeral to go", Duration::from_secs(15), || {
            C.read_through(&ens, id, "/eph-z").is_none()
        });
    }
    eprintln!(
        "ephemeral gone {:?} after the client; scenario 9 in {:?}",
        gone.elapsed(),
        t0.elapsed()
    );
}

/// Scenario 9b: sessions across a leader change: a live client's session (4 s timeout) and its
/// ephemeral survive the kill of the leader and stay for several session timeouts under the
/// new leader (the learners report the session's pings); the ephemeral of a session whose
/// client vanished before the kill is expired by the new leader.
#[test]
fn sessions_survive_leader_failover_and_orphans_expire() {
    let t0 = Instant::now();
    let mut ens = start(3, 0);
    let leader = ens.leader().expect("leader");
    let fs = followers(&ens, leader);
    let live = C.connect(
        ClientConfig::new(&ens.connect_string_of(&fs), Duration::from_secs(4))
            .request_timeout(Duration::from_secs(5)),
    );
    let sid = live.session_id();
    live.create("/live", b"", &open(), CreateMode::Ephemeral).unwrap();
    let mut orphan = harness::wire::Session::open_with_timeout(ens.client_addr(fs[0]), 4000);
    assert_eq!(orphan.create("/orphan", b"", 1).0.err, 0);
    drop(orphan);

    ens.kill9(leader);
    let new_leader = ens.wait_for_leader(ELECTION);
    assert_eq!(live.wait_for_state(|s| s == State::Connected, ELECTION), State::Connected);
    let other = *fs.iter().find(|&&id| id != new_leader).unwrap();
    wait_for("the orphan's ephemeral to expire", Duration::from_secs(20), || {
        C.read_through(&ens, other, "/orphan").is_none()
    });
    // Over two session timeouts under the new leader: the live session stays.
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(live.state(), State::Connected);
    assert_eq!(live.session_id(), sid);
    for id in fs.iter().copied() {
        let c = C.synced(&ens, id);
        let stat = c.exists("/live", false).unwrap();
        assert_eq!(stat.map(|s| s.ephemeral_owner), Some(sid.0), "peer {id}");
        assert!(c.exists("/orphan", false).unwrap().is_none(), "peer {id}");
    }
    live.close().unwrap();
    assert_eq!(C.read_through(&ens, other, "/live"), None);
    eprintln!("scenario 9b in {:?}", t0.elapsed());
}

/// Forged FOLLOWERINFOs with nothing but the sid/address/epoch checks (no quorum auth): a
/// second claim of a connected follower's sid, the same sid from an address its server.N line
/// does not name, and an accepted epoch at the 32-bit limit. Each is refused with a log line;
/// the leader keeps its followers and its epoch.
#[test]
fn forged_follower_info_is_refused_by_sid_address_and_epoch_checks() {
    use std::io::{Read, Write};
    let ens = start(3, 0);
    let leader = ens.wait_for_leader(ELECTION);
    let follower = followers(&ens, leader)[0];
    let info = |sid: u64, accepted_epoch: i64| {
        let mut body = Vec::new();
        body.extend_from_slice(&(sid as i64).to_be_bytes());
        body.extend_from_slice(&0x10000i32.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        let mut p = Vec::new();
        p.extend_from_slice(&11i32.to_be_bytes());
        p.extend_from_slice(&(accepted_epoch << 32).to_be_bytes());
        p.extend_from_slice(&(body.len() as i32).to_be_bytes());
        p.extend_from_slice(&body);
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p
    };
    let refused = |source: &str, packet: &[u8]| {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let bind: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
        socket.bind(&bind.into()).unwrap();
        socket.connect(&ens.quorum_addr(leader).into()).unwrap();
        let mut s: std::net::TcpStream = socket.into();
        s.write_all(packet).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let mut got = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return got == 0,
                Ok(n) => got += n,
            }
        }
    };
    let sid = follower as u64;
    assert!(refused("127.0.0.1", &info(sid, 1)), "a second sid {sid} is refused");
    assert!(refused("127.0.0.2", &info(sid, 1)), "sid {sid} from another address is refused");
    assert!(refused("127.0.0.1", &info(sid, 0x7fff_ffff)), "an epoch at the limit is refused");
    let log = ens.log(leader);
    assert!(log.contains("already connected"), "logged: a second connection of the sid");
    assert!(log.contains("claims sid"), "logged: the address does not match");
    assert!(log.contains("out of range"), "logged: the epoch");
    assert_eq!(ens.leader(), Some(leader), "the leader is unchanged");
    for id in ens.ids() {
        let c = C.connect(C.config(&ens.client_addr(id).to_string()));
        c.create(&format!("/after-forgery-{id}"), b"", &open(), CreateMode::Persistent)
            .unwrap_or_else(|e| panic!("create through {id}: {e}"));
        let _ = c.close();
    }
}
