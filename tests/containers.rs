//! Container and TTL nodes and the reaper that deletes them (data-model.md §6, §7).
//!
//! "Still there" is never checked after a sleep: each test also has a sentinel node that the
//! reaper must delete, and the node under test is checked once the sentinel is gone, i.e.
//! after at least one reaper pass saw both.
mod harness;

use std::time::Duration;

use harness::wire::{self, event, op, Enc, Session};
use harness::*;
use zookeeper_client::{Acls, Client, CreateMode, EventType};

const WAIT: Duration = Duration::from_secs(5);

fn fast_reaper() -> TestServer {
    TestServer::start_with(|s| s.container_check_interval = Duration::from_millis(50))
}

fn create_container(s: &mut Session, path: &str) {
    let (h, _) = s.call(op::CREATE_CONTAINER, &wire::create(path, b"", 4));
    assert_eq!(h.err, 0, "createContainer {path}");
}

fn create_ttl(s: &mut Session, path: &str, ttl_ms: i64) {
    let body = Enc::new().str(path).buf(Some(b"")).acls(wire::OPEN).int(5).long(ttl_ms).done();
    let (h, _) = s.call(op::CREATE_TTL, &body);
    assert_eq!(h.err, 0, "createTTL {path}");
}

/// A container that had a child and is now empty: the reaper's next pass deletes it.
fn used_and_emptied(s: &mut Session, path: &str) {
    create_container(s, path);
    let kid = format!("{path}/k");
    assert_eq!(s.create(&kid, b"", 0).0.err, 0);
    assert_eq!(s.code(op::DELETE, &wire::delete(&kid, -1)), 0);
}

fn gone(s: &mut Session, path: &str) -> bool {
    wait_until(WAIT, || s.stat(path).is_none())
}

#[test]
fn emptied_container_is_reaped_and_fires_watches() {
    let srv = fast_reaper();
    let mut s = Session::open(srv.addr);
    let mut watcher = Session::open(srv.addr);
    create_container(&mut s, "/c");
    let st = s.stat("/c").expect("exists");
    assert_eq!(st.ephemeral_owner, 0);
    assert_eq!(s.create("/c/k", b"", 0).0.err, 0);
    assert_eq!(watcher.code(op::EXISTS, &wire::path_watch("/c", true)), 0);
    assert_eq!(s.code(op::DELETE, &wire::delete("/c/k", -1)), 0);
    assert!(gone(&mut s, "/c"), "the empty container was reaped");
    let e = watcher.next_event();
    assert_eq!((e.kind, e.path.as_str()), (event::NODE_DELETED, "/c"));
}

#[test]
fn container_with_children_survives() {
    let srv = fast_reaper();
    let mut s = Session::open(srv.addr);
    create_container(&mut s, "/busy");
    assert_eq!(s.create("/busy/k1", b"", 0).0.err, 0);
    assert_eq!(s.create("/busy/k2", b"", 0).0.err, 0);
    assert_eq!(s.code(op::DELETE, &wire::delete("/busy/k1", -1)), 0);
    used_and_emptied(&mut s, "/sentinel");
    assert!(gone(&mut s, "/sentinel"));
    assert!(s.stat("/busy").is_some(), "a container with a child is kept");
    assert_eq!(s.code(op::DELETE, &wire::delete("/busy/k2", -1)), 0);
    assert!(gone(&mut s, "/busy"));
}

#[test]
fn never_used_container_is_kept_by_default() {
    let srv = fast_reaper();
    let mut s = Session::open(srv.addr);
    create_container(&mut s, "/unused");
    used_and_emptied(&mut s, "/sentinel");
    assert!(gone(&mut s, "/sentinel"));
    assert!(s.stat("/unused").is_some(), "maxNeverUsedIntervalMs 0 keeps never-used containers");
}

#[test]
fn never_used_container_is_reaped_after_max_never_used_interval() {
    let srv = TestServer::start_with(|s| {
        s.container_check_interval = Duration::from_millis(50);
        s.container_max_never_used_interval = Some(Duration::from_millis(100));
    });
    let mut s = Session::open(srv.addr);
    create_container(&mut s, "/unused");
    assert!(gone(&mut s, "/unused"));
}

#[test]
fn ttl_node_expires_after_its_ttl() {
    let srv = fast_reaper();
    let mut s = Session::open(srv.addr);
    let mut watcher = Session::open(srv.addr);
    let before_create = std::time::Instant::now();
    create_ttl(&mut s, "/ttl", 800);
    assert_eq!(watcher.code(op::EXISTS, &wire::path_watch("/ttl", true)), 0);
    assert!(gone(&mut s, "/ttl"));
    assert!(before_create.elapsed() >= Duration::from_millis(800), "not before the TTL");
    let e = watcher.next_event();
    assert_eq!((e.kind, e.path.as_str()), (event::NODE_DELETED, "/ttl"));
}

#[test]
fn ttl_node_with_children_survives_until_they_are_gone() {
    let srv = fast_reaper();
    let mut s = Session::open(srv.addr);
    create_ttl(&mut s, "/parent", 1);
    assert_eq!(s.create("/parent/k", b"", 0).0.err, 0);
    create_ttl(&mut s, "/sentinel", 1);
    assert!(gone(&mut s, "/sentinel"));
    assert!(s.stat("/parent").is_some(), "a TTL node with children is kept");
    assert_eq!(s.code(op::DELETE, &wire::delete("/parent/k", -1)), 0);
    assert!(gone(&mut s, "/parent"), "children do not keep it alive once gone");
}

#[test]
fn long_ttl_node_is_kept() {
    let srv = fast_reaper();
    let mut s = Session::open(srv.addr);
    create_ttl(&mut s, "/long", 3_600_000);
    create_ttl(&mut s, "/sentinel", 1);
    assert!(gone(&mut s, "/sentinel"));
    assert!(s.stat("/long").is_some());
}

#[tokio::test]
async fn container_and_ttl_through_client() {
    let srv = fast_reaper();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    let opts = CreateMode::Container.with_acls(Acls::anyone_all());
    zk.create("/cc", b"", &opts).await.expect("container");
    let kid = CreateMode::Persistent.with_acls(Acls::anyone_all());
    zk.create("/cc/k", b"", &kid).await.expect("child");
    let ttl =
        CreateMode::Persistent.with_acls(Acls::anyone_all()).with_ttl(Duration::from_millis(200));
    zk.create("/tt", b"", &ttl).await.expect("ttl");
    let (_, ttl_watch) = zk.check_and_watch_stat("/tt").await.expect("watch");
    let (_, cc_watch) = zk.check_and_watch_stat("/cc").await.expect("watch");
    zk.delete("/cc/k", None).await.expect("delete child");
    let e = tokio::time::timeout(WAIT, ttl_watch.changed()).await.expect("ttl reaped");
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeDeleted, "/tt"));
    let e = tokio::time::timeout(WAIT, cc_watch.changed()).await.expect("container reaped");
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeDeleted, "/cc"));
}
