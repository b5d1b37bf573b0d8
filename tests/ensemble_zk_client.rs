//! A client we did not write, the `zookeeper-client` crate, against a 3-peer rzk ensemble:
//! every kind of operation issued through different servers and seen through the others,
//! watches set on one server and fired by writes through another, ephemerals and their
//! session's close, multi, and a failover in which the crate's client keeps its session.
//!
//! Ensembles run one at a time (`RZK_TEST_ENSEMBLES`); every wait is bounded.
mod harness;

use std::time::{Duration, Instant};

use harness::ensemble::{set_key, Ensemble, Flavor};
use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, CreateOptions, Error, EventType, SessionState,
    WatchedEvent,
};

const ELECTION: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(10);

fn start() -> Ensemble {
    let ens = Ensemble::start(Flavor::rzk(), 3, 0, |_, cfg| {
        set_key(cfg, "tickTime", "250");
        set_key(cfg, "initLimit", "20");
        set_key(cfg, "syncLimit", "8");
        set_key(cfg, "maxSessionTimeout", "30000");
    });
    ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    ens
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn connect(hosts: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(hosts)
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("{what} within {WAIT:?}"))
}

/// Reads `path` through `zk` after a sync, so that the server has everything committed
/// before the sync.
async fn synced_data(zk: &Client, path: &str) -> Option<(Vec<u8>, i32)> {
    zk.sync(path).await.expect("sync");
    match zk.get_data(path).await {
        Ok((data, stat)) => Some((data, stat.version)),
        Err(Error::NoNode) => None,
        Err(e) => panic!("getData {path}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_through_every_server() {
    let ens = start();
    let ids = ens.ids();
    let mut zk = Vec::new();
    for &id in &ids {
        zk.push(connect(&ens.client_addr(id).to_string()).await);
    }

    // Creates through each server; sequential names are one sequence.
    zk[0].create("/zc", b"v0", &persistent()).await.expect("create /zc");
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let mut names = Vec::new();
    for c in &zk {
        let (_, n) = c.create("/zc/seq-", b"", &seq).await.expect("sequential");
        names.push(n.into_i64());
    }
    assert!(names.windows(2).all(|w| w[0] < w[1]), "one sequence: {names:?}");

    // setData with versions through one server, read through the others.
    let stat = zk[1].set_data("/zc", b"v1", Some(0)).await.expect("set v1");
    assert_eq!(stat.version, 1);
    assert_eq!(zk[2].set_data("/zc", b"stale", Some(0)).await.unwrap_err(), Error::BadVersion);
    for c in &zk {
        assert_eq!(synced_data(c, "/zc").await, Some((b"v1".to_vec(), 1)));
    }

    // An ephemeral through the third server, owned by its session everywhere.
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    zk[2].create("/zc/eph", b"e", &eph).await.expect("ephemeral");
    let owner = zk[2].session_id().0;
    assert_eq!(zk[2].list_ephemerals("/").await.expect("getEphemerals"), ["/zc/eph"]);
    zk[0].sync("/zc").await.expect("sync");
    let stat = zk[0].check_stat("/zc/eph").await.expect("exists").expect("there");
    assert_eq!(stat.ephemeral_owner, owner);

    // Watches set through servers 2 and 3 fire for writes through server 1.
    let (_, _, data_watch) = zk[1].get_and_watch_data("/zc").await.expect("data watch");
    let (_, _, child_watch) = zk[2].get_and_watch_children("/zc").await.expect("child watch");
    let mut recursive =
        zk[1].watch("/zc", AddWatchMode::PersistentRecursive).await.expect("addWatch");
    zk[0].set_data("/zc", b"v2", None).await.expect("set v2");
    let e: WatchedEvent = within("data watch", data_watch.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeDataChanged, "/zc"));
    let e = within("recursive watch", recursive.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeDataChanged, "/zc"));
    zk[0].create("/zc/kid", b"", &persistent()).await.expect("kid");
    let e = within("child watch", child_watch.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeChildrenChanged, "/zc"));
    let e = within("recursive watch", recursive.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeCreated, "/zc/kid"));

    // A multi through server 1: all or nothing, seen through server 3.
    let mut w = zk[0].new_multi_writer();
    w.add_check_version("/zc", 2).unwrap();
    w.add_create("/zc/m", b"m", &persistent()).unwrap();
    w.add_set_data("/zc/kid", b"k", None).unwrap();
    w.commit().await.expect("multi");
    let mut w = zk[0].new_multi_writer();
    w.add_create("/zc/never", b"", &persistent()).unwrap();
    w.add_check_version("/zc", 99).unwrap();
    assert!(w.commit().await.is_err(), "a failing check fails the multi");
    assert_eq!(synced_data(&zk[2], "/zc/m").await, Some((b"m".to_vec(), 0)));
    assert_eq!(synced_data(&zk[2], "/zc/kid").await, Some((b"k".to_vec(), 1)));
    assert_eq!(synced_data(&zk[2], "/zc/never").await, None);
    // /zc/seq-*, eph, kid, m
    assert_eq!(zk[1].count_descendants_number("/zc").await.expect("count"), 6);

    // Deletes with versions; closing the third session removes its ephemeral everywhere.
    assert_eq!(zk[1].delete("/zc/m", Some(3)).await.unwrap_err(), Error::BadVersion);
    zk[1].delete("/zc/m", Some(0)).await.expect("delete");
    let closing = zk.pop().expect("third client");
    drop(closing);
    let deadline = Instant::now() + WAIT;
    loop {
        zk[0].sync("/zc").await.expect("sync");
        if zk[0].check_stat("/zc/eph").await.expect("exists").is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "the ephemeral outlived its closed session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut kids = zk[1].list_children("/zc").await.expect("ls");
    kids.sort();
    assert_eq!(kids.len(), 4, "{kids:?}");
    assert_eq!(&kids[3], "seq-0000000002");
}

/// The crate's client, given all three servers, loses its server when the leader is killed
/// (a follower drops its clients while it elects), reconnects to a survivor with the same
/// session, keeps its ephemeral, and writes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_with_its_session() {
    let mut ens = start();
    let zk = connect(&ens.connect_string()).await;
    let session = zk.session_id();
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    zk.create("/fo-eph", b"", &eph).await.expect("ephemeral");
    let mut states = zk.state_watcher();
    let leader = ens.leader().expect("leader");
    ens.kill9(leader);
    let lost = within("Disconnected", states.changed()).await;
    assert_eq!(lost, SessionState::Disconnected);
    let deadline = Instant::now() + ELECTION;
    let mut failures = 0;
    loop {
        match zk.create("/fo-after", b"x", &persistent()).await {
            Ok(_) | Err(Error::NodeExists) => break,
            Err(Error::SessionExpired) => panic!("the session was lost in the failover"),
            Err(e) => {
                failures += 1;
                assert!(Instant::now() < deadline, "no write after the failover: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!("{failures} failed attempts during the failover");
    assert_eq!(states.state(), SessionState::SyncConnected, "reconnected");
    assert_eq!(zk.session_id(), session, "same session");
    let stat = zk.check_stat("/fo-eph").await.expect("exists").expect("ephemeral survived");
    assert_eq!(stat.ephemeral_owner, session.0);

    ens.restart(leader);
    ens.wait_for_mode(leader, "follower", ELECTION);
    let back = connect(&ens.client_addr(leader).to_string()).await;
    assert_eq!(synced_data(&back, "/fo-after").await, Some((b"x".to_vec(), 0)));
}
