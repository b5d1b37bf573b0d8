//! Connection states, reconnects, session re-establishment, expiry and auth replay, against a
//! real server (restarted on the same port and data dir) and a proxy that cuts connections.

mod harness;

use std::time::Duration;

use rzk::client::{Client, ClientConfig, Error, State, Watcher};
use rzk::jute::data::Acl;
use rzk::proto::{CreateMode, ErrorCode, EventType, KeeperState};

use harness::proxy::Proxy;
use harness::target::{ServerOptions, TargetServer};
use harness::{connect, next_event, next_node_event, next_state, next_state_within, wait_until};

const T: Duration = Duration::from_secs(30);

#[test]
fn state_events_follow_the_connection() {
    let Some(server) = TargetServer::start() else { return };
    let proxy = Proxy::start(server.port());
    let (a, events) = connect(&proxy.connect_string(), T);
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    proxy.pause();
    assert_eq!(next_state(&events).state, KeeperState::Disconnected);
    assert_eq!(a.state(), State::Connecting);
    // A request made while disconnected waits for the next connection attempt: it is sent
    // if that attempt succeeds and fails with ConnectionLoss if it does not (as in Java).
    let (tx, rx) = crossbeam_channel::unbounded();
    a.exists_async("/", false, move |r| {
        let _ = tx.send(r.map(|s| s.is_some()).map_err(|e| e.code()));
    });
    proxy.resume();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    let r = rx.recv_timeout(T).unwrap();
    assert!(r == Ok(true) || r == Err(ErrorCode::ConnectionLoss), "{r:?}");
    assert!(a.exists("/", false).unwrap().is_some());
    a.close().unwrap();
    assert_eq!(next_state(&events).state, KeeperState::Closed);
    assert_eq!(a.state(), State::Closed);
}

#[test]
fn session_survives_a_server_restart_and_watches_are_rearmed() {
    let Some(mut server) = TargetServer::start() else { return };
    let (a, events) = connect(&server.connect_string(), T);
    let (wtx, wrx) = crossbeam_channel::unbounded();
    let w = Watcher::channel(wtx);
    let open = Acl::open_unsafe();
    a.create("/eph", b"", &open, CreateMode::Ephemeral).unwrap();
    a.create("/d", b"0", &open, CreateMode::Persistent).unwrap();
    a.get_data("/d", &w).unwrap();
    a.exists("/later", &w).unwrap();
    let session = a.session_id();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    server.restart();
    // A JVM restart on a busy machine can take a while: allow for it.
    let slow = Duration::from_secs(60);
    assert_eq!(next_state_within(&events, slow).state, KeeperState::Disconnected);
    let back = next_state_within(&events, slow).state;
    assert_eq!(
        back,
        KeeperState::SyncConnected,
        "session {session:?} after the restart; server log:\n{}",
        server.log()
    );
    assert_eq!(a.session_id(), session, "same session after the restart");
    assert!(a.exists("/eph", false).unwrap().is_some(), "ephemeral kept");
    // Watches were re-armed with setWatches: changes made now are delivered.
    let (b, _) = connect(&server.connect_string(), T);
    b.set_data("/d", b"1", -1).unwrap();
    b.create("/later", b"", &open, CreateMode::Persistent).unwrap();
    let mut got = [next_node_event(&wrx), next_node_event(&wrx)];
    got.sort_by_key(|e| e.event_type.code());
    assert_eq!(
        (got[0].event_type, got[0].path.as_deref()),
        (EventType::NodeCreated, Some("/later"))
    );
    assert_eq!(
        (got[1].event_type, got[1].path.as_deref()),
        (EventType::NodeDataChanged, Some("/d"))
    );
}

#[test]
fn events_missed_while_disconnected_are_delivered_after_reconnect() {
    let Some(server) = TargetServer::start() else { return };
    let proxy = Proxy::start(server.port());
    let (a, events) = connect(&proxy.connect_string(), T);
    let (b, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    let (wtx, wrx) = crossbeam_channel::unbounded();
    let w = Watcher::channel(wtx);
    a.create("/m", b"", &open, CreateMode::Persistent).unwrap();
    a.create("/m/gone", b"", &open, CreateMode::Persistent).unwrap();
    a.get_data("/m", &w).unwrap();
    a.get_children("/m", &w).unwrap();
    a.exists("/m/gone", &w).unwrap();
    a.exists("/m/new", &w).unwrap();
    let (p, prx) = crossbeam_channel::unbounded();
    a.add_watch("/m", Watcher::channel(p), rzk::proto::AddWatchMode::PersistentRecursive).unwrap();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    proxy.pause();
    assert_eq!(next_state(&events).state, KeeperState::Disconnected);
    b.set_data("/m", b"changed", -1).unwrap();
    b.delete("/m/gone", -1).unwrap();
    b.create("/m/new", b"", &open, CreateMode::Persistent).unwrap();
    proxy.resume();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    let mut got: Vec<(EventType, String)> = (0..4)
        .map(|_| next_node_event(&wrx))
        .map(|e| (e.event_type, e.path.unwrap_or_default()))
        .collect();
    got.sort_by_key(|(t, p)| (t.code(), p.clone()));
    let want = vec![
        (EventType::NodeCreated, "/m/new".to_owned()),
        (EventType::NodeDeleted, "/m/gone".to_owned()),
        (EventType::NodeDataChanged, "/m".to_owned()),
        (EventType::NodeChildrenChanged, "/m".to_owned()),
    ];
    assert_eq!(got, want);
    // The persistent recursive watch was re-armed (setWatches2) and still fires.
    b.set_data("/m/new", b"x", -1).unwrap();
    // (It also saw the events synthesised for the one-shot watches on /m.)
    let found = (0..10)
        .map(|_| next_node_event(&prx))
        .any(|e| (e.event_type, e.path.as_deref()) == (EventType::NodeDataChanged, Some("/m/new")));
    assert!(found);
}

#[test]
fn session_expires_while_disconnected() {
    let Some(server) = TargetServer::start_with(ServerOptions { tick_ms: 500 }) else { return };
    let proxy = Proxy::start(server.port());
    let (a, events) = connect(&proxy.connect_string(), Duration::from_millis(1500));
    let (b, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    a.create("/exp", b"", &open, CreateMode::Ephemeral).unwrap();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    proxy.pause();
    assert_eq!(next_state(&events).state, KeeperState::Disconnected);
    assert!(wait_until(T, || b.exists("/exp", false).unwrap().is_none()), "server expired it");
    proxy.resume();
    assert_eq!(next_state(&events).state, KeeperState::Expired);
    assert_eq!(a.state(), State::Expired);
    assert_eq!(a.exists("/", false).unwrap_err().code(), ErrorCode::SessionExpired);
    assert_eq!(
        a.wait_connected(Duration::from_secs(1)).unwrap_err().code(),
        ErrorCode::SessionExpired
    );
}

#[test]
fn auth_is_replayed_after_reconnect() {
    let Some(server) = TargetServer::start() else { return };
    let proxy = Proxy::start(server.port());
    let (a, events) = connect(&proxy.connect_string(), T);
    a.add_auth("digest", b"bob:pw");
    a.create("/secret", b"s", &Acl::creator_all(), CreateMode::Persistent).unwrap();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    proxy.pause();
    assert_eq!(next_state(&events).state, KeeperState::Disconnected);
    proxy.resume();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    assert_eq!(a.get_data("/secret", false).unwrap().0, b"s");
    assert!(a.who_am_i().unwrap().iter().any(|i| i.user == "bob"));
}

#[test]
fn unknown_auth_scheme_ends_the_client_with_auth_failed() {
    let Some(server) = TargetServer::start() else { return };
    let (a, events) = connect(&server.connect_string(), T);
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    a.add_auth("nosuchscheme", b"x");
    assert_eq!(next_state(&events).state, KeeperState::AuthFailed);
    assert_eq!(a.state(), State::AuthFailed);
    assert_eq!(a.exists("/", false).unwrap_err().code(), ErrorCode::AuthFailed);
}

#[test]
fn a_second_client_can_reattach_to_the_session() {
    let Some(server) = TargetServer::start() else { return };
    let (a, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    a.create("/owned", b"", &open, CreateMode::Ephemeral).unwrap();
    let cfg = ClientConfig::new(&server.connect_string(), T)
        .session(a.session_id(), a.session_password());
    let b = cfg.connect().unwrap();
    b.wait_connected(T).unwrap();
    assert_eq!(b.session_id(), a.session_id());
    assert_eq!(b.get_ephemerals("/").unwrap(), vec!["/owned".to_owned()]);
    let bad = ClientConfig::new(&server.connect_string(), T)
        .session(a.session_id(), vec![1; 16])
        .connect()
        .unwrap();
    assert_eq!(bad.wait_connected(T).unwrap_err().code(), ErrorCode::SessionExpired);
}

#[test]
fn client_gives_up_when_no_server_answers_before_a_session_exists() {
    let port = harness::ports::one();
    let (tx, rx) = crossbeam_channel::unbounded();
    let c = Client::connect(
        &format!("127.0.0.1:{port}"),
        Duration::from_millis(900),
        Some(Watcher::channel(tx)),
    )
    .unwrap();
    let state = c.wait_for_state(|s| !s.is_alive(), T);
    assert_eq!(state, State::Closed);
    assert_eq!(next_event(&rx).state, KeeperState::Closed);
    assert!(matches!(c.exists("/", false), Err(Error::Closed)));
}

#[test]
fn idle_session_is_kept_alive_by_pings() {
    let Some(server) = TargetServer::start_with(ServerOptions { tick_ms: 500 }) else { return };
    let (a, events) = connect(&server.connect_string(), Duration::from_millis(1500));
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    let session = a.session_id();
    // Stay idle for three session timeouts: the pings must keep both connection and session.
    std::thread::sleep(a.session_timeout() * 3);
    assert!(events.try_recv().is_err(), "no state change while idle");
    assert!(a.exists("/", false).unwrap().is_some());
    assert_eq!(a.session_id(), session);
}

#[test]
fn a_silent_server_is_detected_by_the_read_timeout() {
    let Some(server) = TargetServer::start_with(ServerOptions { tick_ms: 500 }) else { return };
    let proxy = Proxy::start(server.port());
    let (a, events) = connect(&proxy.connect_string(), Duration::from_millis(3000));
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    let session = a.session_id();
    proxy.stall();
    let started = std::time::Instant::now();
    assert_eq!(next_state(&events).state, KeeperState::Disconnected);
    // Read timeout is 2/3 of the negotiated timeout (2 s); pings stop getting answers.
    let waited = started.elapsed();
    assert!(waited <= Duration::from_millis(2900), "detected after {waited:?}");
    proxy.unstall();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    assert_eq!(a.session_id(), session);
}

#[test]
fn dead_hosts_in_the_connect_string_are_skipped() {
    let Some(server) = TargetServer::start() else { return };
    let dead = harness::ports::one();
    let hosts = format!("127.0.0.1:{dead},{},127.0.0.1:{dead}", server.connect_string());
    let (a, events) = connect(&hosts, T);
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    assert!(a.exists("/", false).unwrap().is_some());
}

#[test]
fn many_watches_are_rearmed_in_several_set_watches_batches() {
    let Some(server) = TargetServer::start() else { return };
    let proxy = Proxy::start(server.port());
    let (a, events) = connect(&proxy.connect_string(), T);
    let (b, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    a.create("/bw", b"", &open, CreateMode::Persistent).unwrap();
    // 1,500 paths of ~105 bytes: more than 128 KiB, so at least two setWatches packets.
    let n = 1500;
    let paths: Vec<String> = (0..n).map(|i| format!("/bw/{i:0100}")).collect();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    for p in &paths {
        let tx = done_tx.clone();
        a.create_async(p, b"", &open, CreateMode::Persistent, move |r| {
            let _ = tx.send(r.is_ok());
        });
    }
    assert!((0..n).all(|_| done_rx.recv_timeout(T).unwrap()));
    let (wtx, wrx) = crossbeam_channel::unbounded();
    let w = Watcher::channel(wtx);
    for p in &paths {
        let tx = done_tx.clone();
        a.get_data_async(p, &w, move |r| {
            let _ = tx.send(r.is_ok());
        });
    }
    assert!((0..n).all(|_| done_rx.recv_timeout(T).unwrap()));
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    proxy.pause();
    assert_eq!(next_state(&events).state, KeeperState::Disconnected);
    proxy.resume();
    assert_eq!(next_state(&events).state, KeeperState::SyncConnected);
    for p in [&paths[0], &paths[n / 2], &paths[n - 1]] {
        b.set_data(p, b"x", -1).unwrap();
        let e = next_node_event(&wrx);
        assert_eq!((e.event_type, e.path.as_deref()), (EventType::NodeDataChanged, Some(&p[..])));
    }
}
