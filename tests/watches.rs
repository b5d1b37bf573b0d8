//! Watches: one-shot data/exist/child watches, persistent and recursive watches, removal,
//! ordering against replies, READ filtering and setWatches re-registration
//! (wire-protocol.md §9).
mod harness;

use std::time::Duration;

use harness::wire::{self, err, event, op, Enc, Event, Session};
use harness::*;
use zookeeper_client::{Acls, AddWatchMode, Client, CreateMode, EventType, WatchedEvent};

const WAIT: Duration = Duration::from_secs(5);

async fn client(srv: &TestServer) -> Client {
    Client::connect(&srv.connect_string()).await.expect("connect")
}

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("event within the deadline")
}

fn ev(kind: i32, path: &str) -> (i32, String) {
    (kind, path.to_string())
}

fn kinds(events: &[Event]) -> Vec<(i32, String)> {
    events.iter().map(|e| (e.kind, e.path.clone())).collect()
}

/// A round trip on `s`, so that every event queued for it before now has been read.
fn drain(s: &mut Session) -> Vec<(i32, String)> {
    s.call(op::EXISTS, &wire::path_watch("/", false));
    let got = kinds(&s.events);
    s.events.clear();
    got
}

fn set_watches_body(rel: i64, data: &[&str], exist: &[&str], child: &[&str]) -> Vec<u8> {
    Enc::new().long(rel).strs(data).strs(exist).strs(child).done()
}

#[tokio::test]
async fn data_watch_fires_node_data_changed() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/w", b"", &persistent()).await.expect("create");
    let (_, _, watcher) = zk.get_and_watch_data("/w").await.expect("watch");
    zk.set_data("/w", b"1", None).await.expect("set");
    let e: WatchedEvent = within(watcher.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeDataChanged, "/w"));
}

#[tokio::test]
async fn exist_watch_on_missing_node_fires_node_created() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let (stat, watcher) = zk.check_and_watch_stat("/later").await.expect("watch");
    assert!(stat.is_none());
    let other = client(&srv).await;
    other.create("/later", b"", &persistent()).await.expect("create");
    let e = within(watcher.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeCreated, "/later"));
}

#[tokio::test]
async fn child_watch_fires_node_children_changed() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/p", b"", &persistent()).await.expect("create");
    let (_, watcher) = zk.list_and_watch_children("/p").await.expect("watch");
    zk.create("/p/k", b"", &persistent()).await.expect("create");
    let e = within(watcher.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeChildrenChanged, "/p"));

    let (_, _, watcher) = zk.get_and_watch_children("/p").await.expect("watch");
    zk.delete("/p/k", None).await.expect("delete");
    let e = within(watcher.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeChildrenChanged, "/p"));
}

#[test]
fn standard_watches_fire_once() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/o", b"", 0);
    assert_eq!(a.code(op::GET_DATA, &wire::path_watch("/o", true)), 0);
    assert_eq!(a.code(op::GET_CHILDREN, &wire::path_watch("/o", true)), 0);
    b.call(op::SET_DATA, &wire::set_data("/o", b"1", -1));
    b.call(op::SET_DATA, &wire::set_data("/o", b"2", -1));
    b.create("/o/k1", b"", 0);
    b.create("/o/k2", b"", 0);
    assert_eq!(
        drain(&mut a),
        [ev(event::NODE_DATA_CHANGED, "/o"), ev(event::NODE_CHILDREN_CHANGED, "/o")]
    );
    b.call(op::SET_DATA, &wire::set_data("/o", b"3", -1));
    assert!(drain(&mut a).is_empty(), "fired watches are gone");
}

#[test]
fn delete_fires_node_deleted_then_parent_children_changed() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/a", b"", 0);
    b.create("/a/c", b"", 0);
    a.call(op::GET_CHILDREN, &wire::path_watch("/a", true));
    a.call(op::GET_DATA, &wire::path_watch("/a/c", true));
    a.call(op::GET_CHILDREN, &wire::path_watch("/a/c", true));
    assert_eq!(b.code(op::DELETE, &wire::delete("/a/c", -1)), 0);
    // One NodeDeleted although two tables watched /a/c (captured from ZooKeeper 3.8).
    assert_eq!(
        drain(&mut a),
        [ev(event::NODE_DELETED, "/a/c"), ev(event::NODE_CHILDREN_CHANGED, "/a")]
    );
}

#[test]
fn event_arrives_before_the_reply_that_shows_the_change() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    a.create("/o", b"old", 0);
    assert_eq!(a.code(op::GET_DATA, &wire::path_watch("/o", true)), 0);
    // The change is made on the watching connection itself: the event must precede the reply.
    a.send(50, op::SET_DATA, &wire::set_data("/o", b"new", -1));
    let first = a.raw.read_frame().expect("frame");
    let (h, body) = wire::split_reply(&first);
    assert_eq!(h.xid, -1, "notification first");
    let e = wire::parse_event(h, &body);
    assert_eq!((e.kind, e.state, e.path.as_str()), (event::NODE_DATA_CHANGED, 3, "/o"));
    let (reply, _) = a.reply_to(50);
    assert_eq!(reply.err, 0);
    assert_eq!(e.zxid, reply.zxid, "the event carries the zxid of the txn that fired it");

    // Another session's change: the watcher reads the event before the new data.
    let mut b = Session::open(srv.addr);
    assert_eq!(a.code(op::GET_DATA, &wire::path_watch("/o", true)), 0);
    b.call(op::SET_DATA, &wire::set_data("/o", b"newer", -1));
    a.send(51, op::GET_DATA, &wire::path_watch("/o", false));
    let (h, _) = wire::split_reply(&a.raw.read_frame().expect("frame"));
    assert_eq!(h.xid, -1, "notification before the read that shows the change");
    let (reply, body) = a.reply_to(51);
    assert_eq!(reply.err, 0);
    assert_eq!(wire::Dec::new(&body).buf().as_deref(), Some(&b"newer"[..]));
}

#[tokio::test]
async fn persistent_watch_fires_repeatedly() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/pw", b"", &persistent()).await.expect("create");
    let mut watcher = zk.watch("/pw", AddWatchMode::Persistent).await.expect("addWatch");
    let other = client(&srv).await;
    other.set_data("/pw", b"1", None).await.expect("set");
    other.set_data("/pw", b"2", None).await.expect("set");
    other.create("/pw/k", b"", &persistent()).await.expect("create");
    other.create("/pw/k/deeper", b"", &persistent()).await.expect("create");
    other.delete("/pw/k/deeper", None).await.expect("delete");
    other.delete("/pw/k", None).await.expect("delete");
    other.delete("/pw", None).await.expect("delete");
    let mut got = Vec::new();
    for _ in 0..5 {
        let e = within(watcher.changed()).await;
        got.push((e.event_type, e.path));
    }
    let p = |s: &str| s.to_string();
    // Grandchildren are not reported: the watch is not recursive.
    assert_eq!(
        got,
        [
            (EventType::NodeDataChanged, p("/pw")),
            (EventType::NodeDataChanged, p("/pw")),
            (EventType::NodeChildrenChanged, p("/pw")),
            (EventType::NodeChildrenChanged, p("/pw")),
            (EventType::NodeDeleted, p("/pw")),
        ]
    );
    // The watch outlives the node.
    other.create("/pw", b"", &persistent()).await.expect("create again");
    let e = within(watcher.changed()).await;
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeCreated, "/pw"));
}

#[tokio::test]
async fn persistent_recursive_watch_through_client_sees_subtree() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/r", b"", &persistent()).await.expect("create");
    let mut watcher = zk.watch("/r", AddWatchMode::PersistentRecursive).await.expect("addWatch");
    zk.create("/r/a", b"", &persistent()).await.expect("create");
    zk.create("/r/a/b", b"", &persistent()).await.expect("create");
    zk.set_data("/r/a/b", b"x", None).await.expect("set");
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = within(watcher.changed()).await;
        got.push((e.event_type, e.path));
    }
    assert_eq!(
        got,
        [
            (EventType::NodeCreated, "/r/a".to_string()),
            (EventType::NodeCreated, "/r/a/b".to_string()),
            (EventType::NodeDataChanged, "/r/a/b".to_string()),
        ]
    );
}

#[test]
fn persistent_recursive_watch_never_gets_children_changed() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/r", b"", 0);
    let (h, body) = a.call(op::ADD_WATCH, &Enc::new().str("/r").int(1).done());
    assert_eq!((h.err, body), (0, vec![0, 0, 0, 0]), "addWatch answers ErrorResponse{{0}}");
    b.create("/r/a", b"", 0);
    b.call(op::SET_DATA, &wire::set_data("/r/a", b"x", -1));
    b.create("/r/a/b", b"", 0);
    b.call(op::DELETE, &wire::delete("/r/a/b", -1));
    b.call(op::SET_DATA, &wire::set_data("/r", b"x", -1));
    b.create("/other", b"", 0);
    assert_eq!(
        drain(&mut a),
        [
            ev(event::NODE_CREATED, "/r/a"),
            ev(event::NODE_DATA_CHANGED, "/r/a"),
            ev(event::NODE_CREATED, "/r/a/b"),
            ev(event::NODE_DELETED, "/r/a/b"),
            ev(event::NODE_DATA_CHANGED, "/r"),
        ]
    );
}

#[test]
fn add_watch_works_on_missing_paths() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    assert_eq!(a.code(op::ADD_WATCH, &Enc::new().str("/not/yet").int(0).done()), 0);
    b.create("/not", b"", 0);
    b.create("/not/yet", b"", 0);
    b.create("/not/yet/k", b"", 0);
    assert_eq!(
        drain(&mut a),
        [ev(event::NODE_CREATED, "/not/yet"), ev(event::NODE_CHILDREN_CHANGED, "/not/yet")]
    );
}

#[test]
fn check_and_remove_watches_answer_nowatcher_when_none() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/x", b"", 0);
    let req = |t: i32| Enc::new().str("/x").int(t).done();
    // Types: 1 children, 2 data, 3 any.
    for t in [1, 2, 3] {
        assert_eq!(a.code(op::CHECK_WATCHES, &req(t)), err::NO_WATCHER, "check type {t}");
        assert_eq!(a.code(op::REMOVE_WATCHES, &req(t)), err::NO_WATCHER, "remove type {t}");
    }
    a.call(op::GET_DATA, &wire::path_watch("/x", true));
    assert_eq!(a.code(op::CHECK_WATCHES, &req(2)), 0);
    assert_eq!(a.code(op::CHECK_WATCHES, &req(3)), 0);
    assert_eq!(a.code(op::CHECK_WATCHES, &req(1)), err::NO_WATCHER);
    assert_eq!(a.code(op::REMOVE_WATCHES, &req(2)), 0);
    assert_eq!(a.code(op::CHECK_WATCHES, &req(2)), err::NO_WATCHER);
    b.call(op::SET_DATA, &wire::set_data("/x", b"1", -1));
    assert!(drain(&mut a).is_empty(), "a removed watch does not fire");

    a.call(op::GET_CHILDREN, &wire::path_watch("/x", true));
    a.call(op::EXISTS, &wire::path_watch("/x", true));
    assert_eq!(a.code(op::REMOVE_WATCHES, &req(3)), 0, "any removes both");
    assert_eq!(a.code(op::CHECK_WATCHES, &req(1)), err::NO_WATCHER);
    assert_eq!(a.code(op::CHECK_WATCHES, &req(2)), err::NO_WATCHER);
    b.create("/x/k", b"", 0);
    assert!(drain(&mut a).is_empty());
    // Other connections' watches do not count.
    b.call(op::GET_DATA, &wire::path_watch("/x", true));
    assert_eq!(a.code(op::CHECK_WATCHES, &req(2)), err::NO_WATCHER);
}

// `remove` is deprecated in favour of dropping the watcher, but only `remove` reports the
// server's answer to removeWatches.
#[allow(deprecated)]
#[tokio::test]
async fn removing_a_watch_through_client() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/rm", b"", &persistent()).await.expect("create");
    let (_, _, watcher) = zk.get_and_watch_data("/rm").await.expect("watch");
    within(watcher.remove()).await.expect("removeWatches");
    let watcher = zk.watch("/rm", AddWatchMode::Persistent).await.expect("addWatch");
    within(watcher.remove()).await.expect("removeWatches persistent");
}

#[test]
fn watches_are_not_delivered_without_read_permission() {
    let srv = TestServer::start();
    let mut blind = Session::open(srv.addr);
    let mut reader = Session::open(srv.addr);
    let mut writer = Session::open(srv.addr);
    assert_eq!(reader.auth("digest", b"u:p").err, 0);
    assert_eq!(writer.auth("digest", b"u:p").err, 0);
    for s in [&mut blind, &mut reader] {
        assert_eq!(s.code(op::EXISTS, &wire::path_watch("/secret", true)), err::NO_NODE);
        assert_eq!(s.code(op::ADD_WATCH, &Enc::new().str("/").int(1).done()), 0);
    }
    let only_u = [(31, "auth", "")];
    let body = wire::create_acl("/secret", b"", &only_u, 0);
    assert_eq!(writer.code(op::CREATE2, &body), 0);
    writer.create("/public", b"", 0);
    assert_eq!(drain(&mut blind), [ev(event::NODE_CREATED, "/public")]);
    // One event for /secret although two of the reader's watches matched it.
    assert_eq!(
        drain(&mut reader),
        [ev(event::NODE_CREATED, "/secret"), ev(event::NODE_CREATED, "/public")]
    );
}

#[test]
fn set_watches_fires_missed_events_before_its_reply() {
    let srv = TestServer::start();
    let mut b = Session::open(srv.addr);
    for p in ["/d", "/c", "/gone", "/same"] {
        assert_eq!(b.create(p, b"", 0).0.err, 0);
    }
    let (h, _, _) = b.create("/same/k", b"", 0);
    let rel = h.zxid;
    b.call(op::SET_DATA, &wire::set_data("/d", b"1", -1));
    b.create("/c/k", b"", 0);
    b.call(op::DELETE, &wire::delete("/gone", -1));
    b.create("/new", b"", 0);

    let mut a = Session::open(srv.addr);
    let body = set_watches_body(
        rel,
        &["/d", "/gone", "/same"],
        &["/new", "/absent"],
        &["/c", "/gone", "/same"],
    );
    a.send(-8, op::SET_WATCHES, &body);
    let (reply, rest) = a.reply_to(-8);
    assert_eq!((reply.err, rest.len()), (0, 0));
    assert_eq!(
        kinds(&a.events),
        [
            ev(event::NODE_DATA_CHANGED, "/d"),
            ev(event::NODE_DELETED, "/gone"),
            ev(event::NODE_CREATED, "/new"),
            ev(event::NODE_CHILDREN_CHANGED, "/c"),
            ev(event::NODE_DELETED, "/gone"),
        ]
    );
    assert!(a.events.iter().all(|e| e.zxid == -1 && e.state == 3), "{:?}", a.events);
    a.events.clear();

    // Unchanged paths were registered as ordinary watches.
    b.call(op::SET_DATA, &wire::set_data("/same", b"x", -1));
    b.create("/same/k2", b"", 0);
    b.create("/absent", b"", 0);
    assert_eq!(
        drain(&mut a),
        [
            ev(event::NODE_DATA_CHANGED, "/same"),
            ev(event::NODE_CHILDREN_CHANGED, "/same"),
            ev(event::NODE_CREATED, "/absent"),
        ]
    );
}

#[test]
fn set_watches2_registers_persistent_watches() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    let body = Enc::new().long(0).strs(&[]).strs(&[]).strs(&[]).strs(&["/p"]).strs(&["/r"]).done();
    a.send(-8, op::SET_WATCHES2, &body);
    assert_eq!(a.reply_to(-8).0.err, 0);
    b.create("/p", b"", 0);
    b.create("/p/k", b"", 0);
    b.create("/r", b"", 0);
    b.create("/r/k", b"", 0);
    assert_eq!(
        drain(&mut a),
        [
            ev(event::NODE_CREATED, "/p"),
            ev(event::NODE_CHILDREN_CHANGED, "/p"),
            ev(event::NODE_CREATED, "/r"),
            ev(event::NODE_CREATED, "/r/k"),
        ]
    );
}

#[test]
fn multi_fires_each_sub_op_event_in_order() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/m", b"", 0);
    b.create("/x", b"", 0);
    a.call(op::GET_CHILDREN, &wire::path_watch("/m", true));
    a.call(op::EXISTS, &wire::path_watch("/m/a", true));
    a.call(op::GET_DATA, &wire::path_watch("/x", true));
    a.call(op::GET_DATA, &wire::path_watch("/m", true));
    let body = wire::multi_body(&[
        (op::CREATE, wire::create("/m/a", b"", 0)),
        (op::DELETE, wire::delete("/x", -1)),
        (op::SET_DATA, wire::set_data("/m", b"1", -1)),
    ]);
    let (h, _) = b.call(op::MULTI, &body);
    assert_eq!(h.err, 0);
    assert_eq!(
        drain(&mut a),
        [
            ev(event::NODE_CREATED, "/m/a"),
            ev(event::NODE_CHILDREN_CHANGED, "/m"),
            ev(event::NODE_DELETED, "/x"),
            ev(event::NODE_DATA_CHANGED, "/m"),
        ]
    );
}

#[test]
fn failed_multi_fires_nothing() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/m", b"", 0);
    a.call(op::GET_CHILDREN, &wire::path_watch("/m", true));
    let body = wire::multi_body(&[
        (op::CREATE, wire::create("/m/a", b"", 0)),
        (op::DELETE, wire::delete("/missing", -1)),
    ]);
    b.call(op::MULTI, &body);
    assert!(drain(&mut a).is_empty());
}

#[test]
fn closed_connection_drops_its_watches() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    a.create("/w", b"", 0);
    a.call(op::EXISTS, &wire::path_watch("/w", true));
    a.call(op::ADD_WATCH, &Enc::new().str("/").int(1).done());
    let before = four_letter(srv.addr, "wchs");
    assert_eq!(before, "1 connections watching 2 paths\nTotal watches:2\n");
    drop(a);
    let none = "0 connections watching 0 paths\nTotal watches:0\n";
    assert!(wait_until(WAIT, || four_letter(srv.addr, "wchs") == none));
}

#[test]
fn failed_reads_register_no_watch_but_exists_does() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    assert_eq!(a.code(op::GET_DATA, &wire::path_watch("/n1", true)), err::NO_NODE);
    assert_eq!(a.code(op::GET_CHILDREN, &wire::path_watch("/n1", true)), err::NO_NODE);
    assert_eq!(a.code(op::GET_CHILDREN2, &wire::path_watch("/n1", true)), err::NO_NODE);
    assert_eq!(a.code(op::EXISTS, &wire::path_watch("/n2", true)), err::NO_NODE);
    b.create("/n1", b"", 0);
    b.create("/n2", b"", 0);
    assert_eq!(drain(&mut a), [ev(event::NODE_CREATED, "/n2")]);
}

#[test]
fn standard_and_persistent_watch_on_one_path_deliver_one_event() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    b.create("/x", b"", 0);
    let req = |t: i32| Enc::new().str("/x").int(t).done();
    a.call(op::GET_DATA, &wire::path_watch("/x", true));
    a.call(op::ADD_WATCH, &Enc::new().str("/x").int(0).done());
    assert_eq!(a.code(op::CHECK_WATCHES, &req(2)), 0);
    assert_eq!(a.code(op::CHECK_WATCHES, &req(4)), 0);
    assert_eq!(a.code(op::CHECK_WATCHES, &req(5)), err::NO_WATCHER);
    b.call(op::SET_DATA, &wire::set_data("/x", b"1", -1));
    assert_eq!(drain(&mut a), [ev(event::NODE_DATA_CHANGED, "/x")], "one event per connection");
    assert_eq!(a.code(op::CHECK_WATCHES, &req(2)), err::NO_WATCHER, "the standard one fired");
    assert_eq!(a.code(op::CHECK_WATCHES, &req(4)), 0, "the persistent one stays");
    b.call(op::SET_DATA, &wire::set_data("/x", b"2", -1));
    assert_eq!(drain(&mut a), [ev(event::NODE_DATA_CHANGED, "/x")]);
    assert_eq!(a.code(op::REMOVE_WATCHES, &req(4)), 0);
    assert_eq!(a.code(op::REMOVE_WATCHES, &req(4)), err::NO_WATCHER);
    b.call(op::SET_DATA, &wire::set_data("/x", b"3", -1));
    assert!(drain(&mut a).is_empty());

    a.call(op::ADD_WATCH, &Enc::new().str("/x").int(1).done());
    assert_eq!(a.code(op::CHECK_WATCHES, &req(5)), 0);
    assert_eq!(a.code(op::REMOVE_WATCHES, &req(5)), 0);
    b.create("/x/k", b"", 0);
    assert!(drain(&mut a).is_empty());
}
