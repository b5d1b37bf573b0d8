//! Mixed ensembles (tests/harness/ensemble.rs, [`Ensemble::start_mixed`]): rzk peers and Apache
//! ZooKeeper 3.8 peers in one ensemble, speaking each other's election and Zab wire formats.
//!
//! - an rzk follower under an Apache leader, and an rzk leader with Apache followers: writes
//!   through any peer are seen through every peer, watches on one implementation fire for
//!   writes through the other, ephemerals go everywhere when their session closes, sessions
//!   through a follower are kept alive (or expired) by a leader of the other flavor;
//! - observers of the other flavor (rzk under an Apache leader, Apache under an rzk leader);
//! - failover: an Apache leader is killed and rzk takes over, then the rzk leader is killed
//!   and Apache takes over; the killed peers catch up and all peers serve the same data;
//! - catch-up across implementations: DIFF and SNAP from an Apache leader to an rzk follower
//!   and from an rzk leader to an Apache follower;
//! - sessions created through an Apache peer move to an rzk peer (re-attach, fail over).
//!
//! With equal zxids the highest sid wins the election, so the flavor of the highest sid decides
//! who leads. Skipped (with a message) when Apache ZooKeeper or java is missing.

mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::ensemble::{set_key, Ensemble, Flavor};
use harness::ensemble_client::{open, subtree, Clients};
use harness::{try_four_letter as four_letter, wait_for};
use rzk::client::{Client, ClientConfig, State, Watcher};
use rzk::proto::{CreateMode, EventType, SessionId};

const C: Clients = Clients { patience: ELECTION, request_timeout: Duration::from_secs(10) };
const ELECTION: Duration = Duration::from_secs(30);

/// Short ticks, but generous limits: JVMs and debug builds share 2 cores.
fn fast(cfg: &mut String) {
    set_key(cfg, "tickTime", "300");
    set_key(cfg, "initLimit", "30");
    set_key(cfg, "syncLimit", "10");
    set_key(cfg, "maxSessionTimeout", "30000");
}

/// `fast`, and Apache peers never serve a learner from their txn log instead of a snapshot
/// (zookeeper.snapshotSizeFactor < 0): past its committed log (500) an Apache leader SNAPs.
fn tweak(ens_flavors: &[Flavor]) -> impl Fn(u32, &mut String) + '_ {
    move |id, cfg| {
        fast(cfg);
        if ens_flavors[id as usize - 1] == Flavor::Apache {
            set_key(cfg, "snapshotSizeFactor", "-1");
        }
    }
}

/// A mixed ensemble of `flavors` (peer i+1 runs `flavors[i]`) led by the highest sid, every
/// peer serving; `None` when Apache ZooKeeper cannot run here (outside CI: see
/// `harness::require`).
///
/// The highest sid wins only when it takes part in the first election: when the others
/// were quicker (a JVM starting slowly), the leader they chose is restarted, and the rest
/// then elect the highest sid.
fn start(flavors: Vec<Flavor>) -> Option<Ensemble> {
    start_with_observers(flavors, 0)
}

/// [`start`] where the last `observers` of `flavors` are observers.
fn start_with_observers(flavors: Vec<Flavor>, observers: usize) -> Option<Ensemble> {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return None;
    }
    let t0 = Instant::now();
    let names: Vec<&str> = flavors.iter().map(Flavor::name).collect();
    let mut ens = Ensemble::start_mixed(flavors.clone(), observers, tweak(&flavors));
    let highest = (flavors.len() - observers) as u32;
    for _ in 0..3 {
        let leader = ens.wait_for_leader(ELECTION);
        if leader == highest {
            break;
        }
        eprintln!("peer {leader} leads, not {highest}: restarting it");
        ens.kill9(leader);
        ens.wait_for_leader(ELECTION);
        ens.restart(leader);
        ens.wait_for_mode(leader, "follower", ELECTION);
    }
    assert_eq!(ens.wait_for_leader(ELECTION), highest, "{}", ens.status());
    for id in ens.observers() {
        ens.wait_for_mode(id, "observer", ELECTION);
    }
    ens.wait_all_serving(ELECTION);
    eprintln!("mixed ensemble {names:?} up in {:?}\n{}", t0.elapsed(), ens.status());
    Some(ens)
}

/// `n` creates of `{parent}/n{i:04}` (data `i`) through `c`, at most 200 in flight.
fn create_many(c: &Client, parent: &str, n: usize) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let window = 200;
    let (mut sent, mut received) = (0, 0);
    while received < n {
        while sent < n && sent - received < window {
            let tx = tx.clone();
            let i = sent;
            let path = format!("{parent}/n{i:04}");
            c.create_async(&path, i.to_string().as_bytes(), &open(), CreateMode::Persistent, {
                move |r| drop(tx.send((i, r)))
            });
            sent += 1;
        }
        let (i, r) = rx.recv_timeout(Duration::from_secs(30)).expect("pipelined reply");
        if let Err(e) = r {
            panic!("create {parent}/n{i:04}: {e}");
        }
        received += 1;
    }
}

/// `subtree(parent)` through every live peer (after a sync); asserts they are all equal and
/// returns it.
fn same_everywhere(ens: &Ensemble, ids: &[u32], parent: &str) -> BTreeMap<String, Vec<u8>> {
    let mut reference: Option<(u32, BTreeMap<String, Vec<u8>>)> = None;
    for &id in ids {
        let tree = subtree(&C.synced(ens, id), parent);
        match &reference {
            None => reference = Some((id, tree)),
            Some((r, t)) => assert!(
                t == &tree,
                "{parent} through peer {id} ({} children) differs from peer {r} ({})",
                tree.len(),
                t.len()
            ),
        }
    }
    reference.map(|(_, t)| t).unwrap_or_default()
}

/// The `key` line of `mntr` on peer `id`.
fn mntr(ens: &Ensemble, id: u32, key: &str) -> Option<String> {
    harness::mntr(ens.client_addr(id), key)
}

/// Whether `cons` on peer `id` lists session `sid`.
fn serves_session(ens: &Ensemble, id: u32, sid: i64) -> bool {
    let marker = format!("sid=0x{sid:x}");
    four_letter(ens.client_addr(id), "cons").is_some_and(|c| c.contains(&marker))
}

/// The checks of scenarios 1 and 2, for any mixed ensemble whose leader is `leader`: a
/// create through every peer is read through every peer; watches set through every peer
/// fire for writes through another peer of the other flavor; an ephemeral created through
/// each peer disappears everywhere when its session closes.
fn writes_watches_ephemerals(ens: &Ensemble) {
    let ids = ens.ids();
    let name = |id: u32| ens.flavor_of(id).name();
    C.create_until_ok(&ens.client_addr(ids[0]).to_string(), "/mixed", b"");

    // Writes through every peer, visible through every peer.
    for &w in &ids {
        let c = C.client_of(ens, w);
        let data = format!("from {w} ({})", name(w));
        c.create(&format!("/mixed/via{w}"), data.as_bytes(), &open(), CreateMode::Persistent)
            .unwrap_or_else(|e| panic!("create through {w}: {e}"));
        c.set_data("/mixed", data.as_bytes(), -1).unwrap();
        let _ = c.close();
    }
    for &r in &ids {
        let c = C.synced(ens, r);
        for &w in &ids {
            let (d, _) = c.get_data(&format!("/mixed/via{w}"), false).unwrap();
            assert_eq!(d, format!("from {w} ({})", name(w)).as_bytes(), "/via{w} through {r}");
        }
        let last = *ids.last().unwrap();
        assert_eq!(
            c.get_data("/mixed", false).unwrap().0,
            format!("from {last} ({})", name(last)).as_bytes()
        );
    }

    // Watches through each peer fire for writes through a peer of the other flavor.
    for &r in &ids {
        let w = *ids
            .iter()
            .find(|&&w| ens.flavor_of(w) != ens.flavor_of(r))
            .expect("a peer of the other flavor");
        let watched = format!("/mixed/watch{r}");
        let later = format!("/mixed/later{r}");
        let wc = C.client_of(ens, w);
        wc.create(&watched, b"v0", &open(), CreateMode::Persistent).unwrap();
        let rc = C.synced(ens, r);
        let (tx, events) = crossbeam_channel::unbounded();
        let watcher = Watcher::channel(tx);
        assert_eq!(rc.get_data(&watched, &watcher).unwrap().0, b"v0");
        assert!(rc.exists(&later, &watcher).unwrap().is_none());
        rc.get_children(&watched, &watcher).unwrap();

        wc.set_data(&watched, b"v1", -1).unwrap();
        wc.create(&later, b"", &open(), CreateMode::Persistent).unwrap();
        wc.create(&format!("{watched}/child"), b"", &open(), CreateMode::Persistent).unwrap();
        let want = [
            (watched.clone(), EventType::NodeDataChanged),
            (later.clone(), EventType::NodeCreated),
            (watched.clone(), EventType::NodeChildrenChanged),
        ];
        let mut got = Vec::new();
        while !want.iter().all(|w| got.contains(w)) {
            let e = events.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
                panic!("watches through peer {r} ({}) for writes through {w}: got {got:?}", name(r))
            });
            got.push((e.path.clone().unwrap_or_default(), e.event_type));
        }
        eprintln!("peer {r} ({}) saw writes through peer {w} ({}): {got:?}", name(r), name(w));
        let _ = (rc.close(), wc.close());
    }

    // An ephemeral created through each peer is seen everywhere, and gone everywhere once its
    // session closes.
    for &e in &ids {
        let path = format!("/mixed/eph{e}");
        let c = C.client_of(ens, e);
        let sid = c.session_id();
        c.create(&path, b"e", &open(), CreateMode::Ephemeral).unwrap();
        for &r in &ids {
            let stat = C.synced(ens, r).exists(&path, false).unwrap();
            assert_eq!(stat.map(|s| s.ephemeral_owner), Some(sid.0), "{path} through {r}");
        }
        c.close().unwrap();
        for &r in &ids {
            assert_eq!(C.read_through(ens, r, &path), None, "{path} through {r} after close");
        }
    }
}

/// Sessions through follower `f` (of the other flavor than the leader, which tracks their
/// expiry from the follower's pings): a live client's session (1.5 s timeout) stays for over
/// three timeouts with its ephemeral; a session whose client vanished expires, and its
/// ephemeral goes on every peer.
fn sessions_expire_through(ens: &Ensemble, f: u32) {
    let ids = ens.ids();
    let live = C.connect(
        ClientConfig::new(&ens.client_addr(f).to_string(), Duration::from_millis(1500))
            .request_timeout(Duration::from_secs(5)),
    );
    let sid = live.session_id();
    let path = format!("/live{f}");
    live.create(&path, b"", &open(), CreateMode::Ephemeral).unwrap();
    let orphan_path = format!("/orphan{f}");
    let mut orphan = harness::wire::Session::open_with_timeout(ens.client_addr(f), 1500);
    assert_eq!(orphan.create(&orphan_path, b"", 1).0.err, 0);
    for &id in &ids {
        assert!(C.read_through(ens, id, &orphan_path).is_some(), "peer {id}");
    }
    drop(orphan);
    let gone = Instant::now();
    for &id in &ids {
        wait_for("the orphan's ephemeral to expire", Duration::from_secs(15), || {
            C.read_through(ens, id, &orphan_path).is_none()
        });
    }
    eprintln!("orphan session through peer {f} expired within {:?}", gone.elapsed());
    std::thread::sleep(Duration::from_millis(5000).saturating_sub(gone.elapsed()));
    assert_eq!(live.state(), State::Connected);
    assert_eq!(live.session_id(), sid);
    for &id in &ids {
        let stat = C.synced(ens, id).exists(&path, false).unwrap();
        assert_eq!(stat.map(|s| s.ephemeral_owner), Some(sid.0), "{path} through {id}");
    }
    live.close().unwrap();
    for &id in &ids {
        assert_eq!(C.read_through(ens, id, &path), None, "{path} through {id} after close");
    }
}

// ---------------------------------------------------------------------------------------

/// Scenario 1: an rzk follower (sid 1) under an Apache leader (sids 2, 3: 3 leads).
#[test]
fn rzk_follower_under_apache_leader() {
    let t0 = Instant::now();
    let Some(ens) = start(vec![Flavor::rzk(), Flavor::Apache, Flavor::Apache]) else { return };
    assert_eq!(ens.leader(), Some(3));
    assert_eq!(ens.mode(1).as_deref(), Some("follower"));
    writes_watches_ephemerals(&ens);
    sessions_expire_through(&ens, 1);
    eprintln!("scenario 1 in {:?}", t0.elapsed());
}

/// Scenario 2: an rzk leader (sid 3) with Apache followers (sids 1, 2).
#[test]
fn rzk_leader_with_apache_followers() {
    let t0 = Instant::now();
    let Some(ens) = start(vec![Flavor::Apache, Flavor::Apache, Flavor::rzk()]) else { return };
    assert_eq!(ens.leader(), Some(3));
    wait_for("mntr zk_synced_followers 2 on the rzk leader", ELECTION, || {
        mntr(&ens, 3, "zk_synced_followers").as_deref() == Some("2")
    });
    writes_watches_ephemerals(&ens);
    sessions_expire_through(&ens, 1);
    assert_eq!(mntr(&ens, 3, "zk_synced_followers").as_deref(), Some("2"));
    eprintln!("scenario 2 in {:?}", t0.elapsed());
}

/// Observers of the other flavor: an rzk observer (4) under an Apache leader (3), and an
/// Apache observer (4) under an rzk leader (3), serve reads, watches and forwarded writes.
#[test]
fn observers_across_implementations() {
    let t0 = Instant::now();
    for flavors in [
        vec![Flavor::Apache, Flavor::Apache, Flavor::Apache, Flavor::rzk()],
        vec![Flavor::Apache, Flavor::Apache, Flavor::rzk(), Flavor::Apache],
    ] {
        let Some(ens) = start_with_observers(flavors, 1) else { return };
        assert_eq!(ens.observers(), [4]);
        writes_watches_ephemerals(&ens);
    }
    eprintln!("observers in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Scenario 3: failover both ways in an ensemble Apache (1), rzk (2), Apache (3): the Apache
/// leader (3) is killed and rzk (2) takes over; writes continue, 3 comes back as its follower
/// and catches up. Then the rzk leader is killed and Apache 3 takes over; 2 comes back and
/// catches up. Every peer then serves the same /fo subtree.
#[test]
fn failover_between_implementations() {
    let t0 = Instant::now();
    let Some(mut ens) = start(vec![Flavor::Apache, Flavor::rzk(), Flavor::Apache]) else { return };
    let all = ens.ids();
    assert_eq!(ens.leader(), Some(3));
    let setup = C.client_of(&ens, 1);
    setup.create("/fo", b"", &open(), CreateMode::Persistent).unwrap();
    for &id in &all {
        let c = C.client_of(&ens, id);
        c.create(&format!("/fo/before{id}"), b"b", &open(), CreateMode::Persistent).unwrap();
        let _ = c.close();
    }
    let _ = setup.close();
    same_everywhere(&ens, &all, "/fo");

    let mut next = 0;
    for (killed, survivor_leader) in [(3, 2), (2, 3)] {
        let kill_flavor = ens.flavor_of(killed).name();
        ens.kill9(killed);
        let t = Instant::now();
        let new_leader = ens.wait_for_leader(ELECTION);
        eprintln!(
            "killed leader {killed} ({kill_flavor}); peer {new_leader} ({}) leads after {:?}",
            ens.flavor_of(new_leader).name(),
            t.elapsed()
        );
        assert_eq!(new_leader, survivor_leader, "equal zxids: the highest live sid leads");
        let survivors: Vec<u32> = all.iter().copied().filter(|&id| id != killed).collect();
        for &s in &survivors {
            for _ in 0..5 {
                C.create_until_ok(
                    &ens.client_addr(s).to_string(),
                    &format!("/fo/w{next:03}"),
                    b"s",
                );
                next += 1;
            }
        }
        let t = Instant::now();
        ens.restart(killed);
        ens.wait_for_mode(killed, "follower", ELECTION);
        assert_eq!(ens.leader(), Some(new_leader));
        eprintln!("peer {killed} ({kill_flavor}) follows again after {:?}", t.elapsed());
        let tree = same_everywhere(&ens, &all, "/fo");
        assert_eq!(tree.len(), all.len() + next, "{tree:?}");
        // It keeps following: a write through it is seen through the others.
        C.create_until_ok(&ens.client_addr(killed).to_string(), &format!("/fo/w{next:03}"), b"r");
        next += 1;
        let tree = same_everywhere(&ens, &all, "/fo");
        assert_eq!(tree.len(), all.len() + next);
    }
    eprintln!("scenario 3 in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Catch-up of follower `f` from `leader` (of the other flavor): DIFF after 10 writes, SNAP
/// after 700 (past the leader's committed log of 500). `diff_seen` / `snap_seen` tell, from
/// the logs (leader's, follower's) since the restart, which way it was synced.
fn catch_up(
    ens: &mut Ensemble,
    leader: u32,
    f: u32,
    diff_seen: impl Fn(&str, &str) -> bool,
    snap_seen: impl Fn(&str, &str) -> bool,
) {
    let ids = ens.ids();
    let lc = C.client_of(ens, leader);
    lc.create("/diff", b"", &open(), CreateMode::Persistent).unwrap();
    lc.create("/snap", b"", &open(), CreateMode::Persistent).unwrap();
    same_everywhere(ens, &ids, "/");
    // A session of the leader whose ephemerals are created while `f` is down: `f` learns
    // them (and the session) from the DIFF / SNAP, and drops them when the session closes.
    let e = C.client_of(ens, leader);

    for (parent, n, seen) in
        [("/diff", 10, &diff_seen as &dyn Fn(&str, &str) -> bool), ("/snap", 700, &snap_seen)]
    {
        ens.kill9(f);
        let t = Instant::now();
        create_many(&lc, parent, n);
        e.create(&format!("{parent}-eph"), b"", &open(), CreateMode::Ephemeral).unwrap();
        eprintln!("{n} creates under {parent} while peer {f} is down in {:?}", t.elapsed());
        let (lfrom, ffrom) = (ens.log(leader).len(), ens.log(f).len());
        let t = Instant::now();
        ens.restart(f);
        ens.wait_for_mode(f, "follower", ELECTION);
        eprintln!("peer {f} follows again after {:?}", t.elapsed());
        let tree = subtree(&C.synced(ens, f), parent);
        assert_eq!(tree.len(), n, "{parent} through peer {f}");
        for (i, (name, data)) in tree.iter().enumerate() {
            assert_eq!((name.clone(), data.clone()), (format!("n{i:04}"), i.to_string().into()));
        }
        let (llog, flog) = (ens.log(leader), ens.log(f));
        assert!(
            seen(&llog[lfrom..], &flog[ffrom..]),
            "{parent}: the logs do not show the expected sync\n--- leader {leader} ---\n{}\n--- \
             follower {f} ---\n{}",
            &llog[lfrom..],
            &flog[ffrom..]
        );
        same_everywhere(ens, &ids, parent);
        let stat = C.synced(ens, f).exists(&format!("{parent}-eph"), false).unwrap();
        assert_eq!(stat.map(|s| s.ephemeral_owner), Some(e.session_id().0), "{parent}-eph");
    }
    e.close().unwrap();
    for id in ids.iter().copied() {
        assert_eq!(C.read_through(ens, id, "/diff-eph"), None, "peer {id} after close");
        assert_eq!(C.read_through(ens, id, "/snap-eph"), None, "peer {id} after close");
    }
    // It follows on.
    lc.create("/snap/after", b"x", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(C.read_through(ens, f, "/snap/after").as_deref(), Some(&b"x"[..]));
    assert_eq!(subtree(&C.synced(ens, f), "/diff").len(), 10);
}

/// The N of the rzk leader's first "with DIFF of N txns" line in `log`: here the 10 creates
/// and the ephemeral, plus the txns (say the ephemeral's session) that the killed follower
/// had not logged yet.
fn diff_len(log: &str) -> Option<usize> {
    let rest = &log[log.find("with DIFF of ")? + "with DIFF of ".len()..];
    rest.split(' ').next()?.parse().ok()
}

/// Scenario 4a: an rzk follower (1) catches up from an Apache leader (3) by DIFF and SNAP.
#[test]
fn rzk_follower_catches_up_from_apache_leader() {
    let t0 = Instant::now();
    let Some(mut ens) = start(vec![Flavor::rzk(), Flavor::Apache, Flavor::Apache]) else { return };
    assert_eq!(ens.leader(), Some(3));
    catch_up(
        &mut ens,
        3,
        1,
        |leader, _| leader.contains("Sending DIFF"),
        |leader, follower| {
            leader.contains("Sending snapshot") && follower.contains("learner: loaded SNAP")
        },
    );
    eprintln!("scenario 4a in {:?}", t0.elapsed());
}

/// Scenario 4b: an Apache follower (1) catches up from an rzk leader (3) by DIFF and SNAP.
#[test]
fn apache_follower_catches_up_from_rzk_leader() {
    let t0 = Instant::now();
    let Some(mut ens) = start(vec![Flavor::Apache, Flavor::Apache, Flavor::rzk()]) else { return };
    assert_eq!(ens.leader(), Some(3));
    catch_up(
        &mut ens,
        3,
        1,
        |leader, follower| {
            leader.contains("syncing learner Some(ServerId(1))")
                && diff_len(leader).is_some_and(|n| (11..=13).contains(&n))
                && follower.contains("Getting a diff from the leader")
        },
        |leader, follower| {
            leader.contains("leader: sending SNAP")
                && follower.contains("Getting a snapshot from leader")
        },
    );
    eprintln!("scenario 4b in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------

/// Scenario 5: sessions created through an Apache peer move to the rzk peer, in an ensemble
/// rzk (1), Apache (2), Apache (3, leader): (a) a session whose connection to Apache 2 is
/// gone is re-attached (id and password) by a client of rzk 1 only, and keeps its ephemeral;
/// (b) a client connected to Apache 2 fails over to rzk 1 when 2 is killed, and keeps its
/// session and ephemeral. Closing either session removes its ephemerals everywhere.
#[test]
fn sessions_move_from_apache_to_rzk() {
    let t0 = Instant::now();
    let Some(mut ens) = start(vec![Flavor::rzk(), Flavor::Apache, Flavor::Apache]) else { return };
    C.create_until_ok(&ens.client_addr(3).to_string(), "/moved", b"");

    // (a) Re-attach.
    let (sid, passwd) = {
        let mut w = harness::wire::Session::open_with_timeout(ens.client_addr(2), 15_000);
        let (reply, _, _) = w.create("/moved/eph-a", b"a", 1);
        assert_eq!(reply.err, 0, "ephemeral through Apache 2");
        (w.id, w.passwd.clone())
    };
    let y = C.connect(C.config(&ens.client_addr(1).to_string()).session(SessionId(sid), passwd));
    assert_eq!(y.session_id(), SessionId(sid), "re-attached through rzk 1");
    assert!(serves_session(&ens, 1, sid));
    let stat = y.exists("/moved/eph-a", false).unwrap().expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, sid);
    y.create("/moved/eph-a2", b"", &open(), CreateMode::Ephemeral).unwrap();
    let mut ephs = y.get_ephemerals("/moved").unwrap();
    ephs.sort();
    assert_eq!(ephs, ["/moved/eph-a", "/moved/eph-a2"]);
    y.close().unwrap();
    for id in ens.ids() {
        assert_eq!(C.read_through(&ens, id, "/moved/eph-a"), None, "peer {id} after close");
        assert_eq!(C.read_through(&ens, id, "/moved/eph-a2"), None, "peer {id} after close");
    }

    // (b) Fail over: a client of 2 and 1 that landed on 2 (the client shuffles its hosts).
    let cs = ens.connect_string_of(&[2, 1]);
    let mut tries = 0;
    let x = loop {
        let x = C.connect(C.config(&cs));
        if serves_session(&ens, 2, x.session_id().0) {
            break x;
        }
        tries += 1;
        assert!(tries < 20, "no client landed on peer 2");
        x.close().unwrap();
    };
    let sid = x.session_id();
    x.create("/moved/eph-b", b"b", &open(), CreateMode::Ephemeral).unwrap();
    ens.kill9(2);
    assert_eq!(x.wait_for_state(|s| s == State::Connected, ELECTION), State::Connected);
    wait_for("the session on rzk 1", ELECTION, || serves_session(&ens, 1, sid.0));
    assert_eq!(x.session_id(), sid);
    let stat = x.exists("/moved/eph-b", false).unwrap().expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, sid.0);
    x.create("/moved/after-failover", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(C.read_through(&ens, 3, "/moved/eph-b").as_deref(), Some(&b"b"[..]));
    x.close().unwrap();
    for id in [1, 3] {
        assert_eq!(C.read_through(&ens, id, "/moved/eph-b"), None, "peer {id} after close");
        assert!(C.read_through(&ens, id, "/moved/after-failover").is_some());
    }
    eprintln!("scenario 5 in {:?}", t0.elapsed());
}
