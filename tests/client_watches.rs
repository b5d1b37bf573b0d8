//! Watch registration, delivery order and removal, against a real server.

mod harness;

use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use rzk::client::{WatchedEvent, Watcher};
use rzk::jute::data::Acl;
use rzk::proto::{AddWatchMode, CreateMode, ErrorCode, EventType, WatcherType};

use harness::target::shared_server;
use harness::{connect, next_event, wait_until};

const T: Duration = Duration::from_secs(30);

fn watcher() -> (Watcher, Receiver<WatchedEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Watcher::channel(tx), rx)
}

fn kind(e: &WatchedEvent) -> (EventType, &str) {
    (e.event_type, e.path.as_deref().unwrap_or(""))
}

#[test]
fn data_watch_fires_once_and_before_the_read_that_sees_the_change() {
    let Some(server) = shared_server() else { return };
    let (a, _) = connect(&server.connect_string(), T);
    let (b, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    a.create("/order", b"0", &open, CreateMode::Persistent).unwrap();
    let (w, rx) = watcher();
    a.get_data("/order", &w).unwrap();
    b.set_data("/order", b"1", -1).unwrap();
    // The first read that sees the new value comes after the event.
    let seen = wait_until(T, || a.get_data("/order", false).unwrap().0 == b"1");
    assert!(seen);
    let e = rx.try_recv().expect("event delivered before the read that saw the change");
    assert_eq!(kind(&e), (EventType::NodeDataChanged, "/order"));
    // One-shot: a second change is not delivered (events precede our own reply).
    a.set_data("/order", b"2", -1).unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // Re-registering from inside a watcher (blocking call on the event thread) works.
    let a = std::sync::Arc::new(a);
    let (tx, rx2) = crossbeam_channel::unbounded();
    let a2 = a.clone();
    let reader = Watcher::new(move |e| {
        let data = a2.get_data("/order", false).map(|d| d.0);
        let _ = tx.send((e.event_type, data));
    });
    a.exists("/order", &reader).unwrap();
    b.set_data("/order", b"3", -1).unwrap();
    let (t, data) = rx2.recv_timeout(T).unwrap();
    assert_eq!((t, data.unwrap()), (EventType::NodeDataChanged, b"3".to_vec()));
}

#[test]
fn exists_watch_on_a_missing_node_and_child_watches() {
    let Some(server) = shared_server() else { return };
    let (a, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    let (w, rx) = watcher();
    assert_eq!(a.exists("/ex", &w).unwrap(), None);
    a.create("/ex", b"", &open, CreateMode::Persistent).unwrap();
    assert_eq!(kind(&rx.try_recv().unwrap()), (EventType::NodeCreated, "/ex"));
    a.get_children("/ex", &w).unwrap();
    a.create("/ex/kid", b"", &open, CreateMode::Persistent).unwrap();
    assert_eq!(kind(&rx.try_recv().unwrap()), (EventType::NodeChildrenChanged, "/ex"));
    // Data and child watch of one watcher on one node: one NodeDeleted.
    a.get_data("/ex/kid", &w).unwrap();
    a.get_children("/ex/kid", &w).unwrap();
    a.get_children("/ex", &w).unwrap();
    a.delete("/ex/kid", -1).unwrap();
    assert_eq!(kind(&rx.try_recv().unwrap()), (EventType::NodeDeleted, "/ex/kid"));
    assert_eq!(kind(&rx.try_recv().unwrap()), (EventType::NodeChildrenChanged, "/ex"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn failed_reads_leave_no_watch() {
    let Some(server) = shared_server() else { return };
    let (a, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    let (w, rx) = watcher();
    assert_eq!(a.get_data("/failed", &w).unwrap_err().code(), ErrorCode::NoNode);
    assert_eq!(a.get_children("/failed", &w).unwrap_err().code(), ErrorCode::NoNode);
    a.create("/failed", b"", &open, CreateMode::Persistent).unwrap();
    a.create("/failed/kid", b"", &open, CreateMode::Persistent).unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let err = a.remove_watches("/failed", &w, WatcherType::Any, false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoWatcher);
}

#[test]
fn default_watcher_gets_watch_true_events() {
    let Some(server) = shared_server() else { return };
    let (a, events) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    let first = next_event(&events);
    assert_eq!(first.state, rzk::proto::KeeperState::SyncConnected);
    a.create("/dflt", b"", &open, CreateMode::Persistent).unwrap();
    a.get_data("/dflt", true).unwrap();
    a.delete("/dflt", -1).unwrap();
    assert_eq!(kind(&events.try_recv().unwrap()), (EventType::NodeDeleted, "/dflt"));
}

#[test]
fn persistent_and_recursive_watches_stay_until_removed() {
    let Some(server) = shared_server() else { return };
    let (a, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    let (p, prx) = watcher();
    let (r, rrx) = watcher();
    // Separate paths: 3.8 keeps one watch mode per (connection, path).
    a.add_watch("/pers", &p, AddWatchMode::Persistent).unwrap();
    a.add_watch("/prec", &r, AddWatchMode::PersistentRecursive).unwrap();
    for base in ["/pers", "/prec"] {
        a.create(base, b"", &open, CreateMode::Persistent).unwrap();
        a.set_data(base, b"1", -1).unwrap();
        a.create(&format!("{base}/a"), b"", &open, CreateMode::Persistent).unwrap();
        a.create(&format!("{base}/a/b"), b"", &open, CreateMode::Persistent).unwrap();
        a.set_data(&format!("{base}/a/b"), b"x", -1).unwrap();
        a.set_data(base, b"2", -1).unwrap();
    }
    let events = |rx: &Receiver<WatchedEvent>| -> Vec<(EventType, String)> {
        rx.try_iter().map(|e| (e.event_type, e.path.unwrap_or_default())).collect()
    };
    let e = |t, p: &str| (t, p.to_owned());
    assert_eq!(
        events(&prx),
        vec![
            e(EventType::NodeCreated, "/pers"),
            e(EventType::NodeDataChanged, "/pers"),
            e(EventType::NodeChildrenChanged, "/pers"),
            e(EventType::NodeDataChanged, "/pers"),
        ]
    );
    assert_eq!(
        events(&rrx),
        vec![
            e(EventType::NodeCreated, "/prec"),
            e(EventType::NodeDataChanged, "/prec"),
            e(EventType::NodeCreated, "/prec/a"),
            e(EventType::NodeCreated, "/prec/a/b"),
            e(EventType::NodeDataChanged, "/prec/a/b"),
            e(EventType::NodeDataChanged, "/prec"),
        ]
    );
    a.remove_all_watches("/pers", WatcherType::Any, false).unwrap();
    a.remove_watches("/prec", &r, WatcherType::Any, false).unwrap();
    assert_eq!(events(&prx), vec![e(EventType::PersistentWatchRemoved, "/pers")]);
    assert_eq!(events(&rrx), vec![e(EventType::PersistentWatchRemoved, "/prec")]);
    a.set_data("/pers", b"3", -1).unwrap();
    a.set_data("/prec/a", b"3", -1).unwrap();
    assert_eq!(prx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rrx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn remove_watches_raises_local_removal_events() {
    let Some(server) = shared_server() else { return };
    let (a, _) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    a.create("/rm", b"", &open, CreateMode::Persistent).unwrap();
    let (w1, rx1) = watcher();
    let (w2, rx2) = watcher();
    a.get_data("/rm", &w1).unwrap();
    a.get_data("/rm", &w2).unwrap();
    a.get_children("/rm", &w1).unwrap();
    a.remove_watches("/rm", &w1, WatcherType::Data, false).unwrap();
    assert_eq!(kind(&rx1.try_recv().unwrap()), (EventType::DataWatchRemoved, "/rm"));
    let again = a.remove_watches("/rm", &w1, WatcherType::Data, false).unwrap_err();
    assert_eq!(again.code(), ErrorCode::NoWatcher);
    a.remove_all_watches("/rm", WatcherType::Children, true).unwrap();
    assert_eq!(kind(&rx1.try_recv().unwrap()), (EventType::ChildWatchRemoved, "/rm"));
    // w2's data watch is still armed.
    a.set_data("/rm", b"x", -1).unwrap();
    assert_eq!(kind(&rx2.try_recv().unwrap()), (EventType::NodeDataChanged, "/rm"));
    assert_eq!(rx1.try_recv(), Err(TryRecvError::Empty));
}
