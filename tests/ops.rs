//! Every client operation, its error codes and the exact Stat fields it reports
//! (wire-protocol.md §5-§7, §11; data-model.md §2-§4, §8).
mod harness;

use std::time::Duration;

use harness::wire::{self, err, op, Dec, Enc, Session};
use harness::*;
use zookeeper_client::{
    Acl, Acls, AuthId, Client, CreateMode, Error, MultiReadResult, MultiWriteError,
    MultiWriteResult, Permission,
};

async fn client(srv: &TestServer) -> Client {
    Client::connect(&srv.connect_string()).await.expect("connect")
}

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[test]
fn fresh_server_root_and_zookeeper_stats_are_like_apache() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let root = s.stat("/").expect("/ exists");
    assert_eq!(root.num_children, 1);
    assert_eq!(root.cversion, -1);
    assert_eq!((root.czxid, root.mzxid, root.pzxid), (0, 0, 0));
    assert_eq!((root.version, root.aversion, root.ephemeral_owner), (0, 0, 0));
    let zk = s.stat("/zookeeper").expect("/zookeeper exists");
    assert_eq!(zk.num_children, 2);
    assert_eq!(zk.cversion, -2);

    let (h, body) = s.call(op::GET_CHILDREN, &wire::path_watch("/zookeeper", false));
    assert_eq!(h.err, 0);
    let mut kids = Dec::new(&body).strs();
    kids.sort();
    assert_eq!(kids, ["config", "quota"]);

    let (h, body) = s.call(op::GET_ACL, &wire::path("/zookeeper/config"));
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!(d.acls(), [(1, "world".to_string(), "anyone".to_string())]);
    assert_eq!(d.stat().aversion, -1);
}

#[tokio::test]
async fn create_modes_report_expected_stat() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let sid = zk.session_id().0;

    let (p, _) = zk.create("/p", b"data", &persistent()).await.expect("persistent");
    assert_eq!(p.czxid, p.mzxid);
    assert_eq!(p.czxid, p.pzxid);
    assert_eq!((p.version, p.cversion, p.aversion), (0, 0, 0));
    assert_eq!((p.ephemeral_owner, p.data_length, p.num_children), (0, 4, 0));
    assert_eq!(p.ctime, p.mtime);
    assert!(p.ctime > 1_600_000_000_000, "ctime is wall-clock ms");

    let opts = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let (e, _) = zk.create("/e", b"", &opts).await.expect("ephemeral");
    assert_eq!(e.ephemeral_owner, sid);
    assert!(e.czxid > p.czxid);

    let opts = CreateMode::Container.with_acls(Acls::anyone_all());
    let (c, _) = zk.create("/c", b"", &opts).await.expect("container");
    assert_eq!(c.ephemeral_owner, 0, "containers show owner 0 to clients");

    let opts = persistent().with_ttl(Duration::from_secs(3600));
    let (t, _) = zk.create("/t", b"x", &opts).await.expect("ttl");
    assert_eq!(t.ephemeral_owner, 0, "TTL nodes show owner 0 to clients");
    assert_eq!(t.data_length, 1);

    let (data, stat) = zk.get_data("/p").await.expect("get");
    assert_eq!(data, b"data");
    assert_eq!(stat, p);
    assert_eq!(zk.check_stat("/e").await.expect("exists"), Some(e));
    assert_eq!(zk.check_stat("/missing").await.expect("exists"), None);
}

#[test]
fn sequential_suffix_is_parent_cversion_ten_digits() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/s", b"", 0).0.err, 0);
    let (h, path, _) = s.create("/s/a-", b"", 2);
    assert_eq!((h.err, path.as_str()), (0, "/s/a-0000000000"));
    assert_eq!(s.create("/s/x", b"", 0).0.err, 0);
    assert_eq!(s.code(op::DELETE, &wire::delete("/s/x", -1)), 0);
    // Creations count, deletions do not: /s has seen two creates.
    let (h, path, _) = s.create("/s/b-", b"", 3);
    assert_eq!((h.err, path.as_str()), (0, "/s/b-0000000002"));
    // A sequential path may end with '/'.
    let (h, path, _) = s.create("/s/", b"", 2);
    assert_eq!((h.err, path.as_str()), (0, "/s/0000000003"));
}

#[tokio::test]
async fn sequential_create_through_client_returns_sequence() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/q", b"", &persistent()).await.expect("parent");
    let opts = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let (_, seq0) = zk.create("/q/n-", b"", &opts).await.expect("seq");
    let (_, seq1) = zk.create("/q/n-", b"", &opts).await.expect("seq");
    assert_eq!((seq0.into_i64(), seq1.into_i64()), (0, 1));
    let mut kids = zk.list_children("/q").await.expect("children");
    kids.sort();
    assert_eq!(kids, ["n-0000000000", "n-0000000001"]);
}

#[test]
fn create_opcode_returns_path_only_and_create2_adds_stat() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h, body) = s.call(op::CREATE, &wire::create("/one", b"ab", 0));
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!(d.str(), "/one");
    assert_eq!(d.remaining(), 0, "CreateResponse is the path only");

    let (h, body) = s.call(op::CREATE2, &wire::create("/two", b"abc", 0));
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!(d.str(), "/two");
    let st = d.stat();
    assert_eq!(d.remaining(), 0);
    assert_eq!((st.czxid, st.data_length), (h.zxid, 3));
}

#[test]
fn create_errors_have_zookeeper_codes_and_consume_a_zxid() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h, _, _) = s.create("/a", b"", 0);
    assert_eq!(h.err, 0);
    let z = h.zxid;

    let (h, _) = s.call(op::CREATE2, &wire::create("/a", b"", 0));
    assert_eq!((h.err, h.zxid), (err::NODE_EXISTS, z + 1), "failed writes take a zxid");
    let (h, _) = s.call(op::CREATE2, &wire::create("/nope/x", b"", 0));
    assert_eq!((h.err, h.zxid), (err::NO_NODE, z + 2));

    assert_eq!(s.create("/eph", b"", 1).0.err, 0);
    assert_eq!(
        s.code(op::CREATE2, &wire::create("/eph/kid", b"", 0)),
        err::NO_CHILDREN_FOR_EPHEMERALS
    );

    // Invalid flags, paths and TTLs.
    assert_eq!(s.code(op::CREATE2, &wire::create("/f", b"", 7)), err::BAD_ARGUMENTS);
    assert_eq!(s.code(op::CREATE2, &wire::create("/f", b"", -1)), err::BAD_ARGUMENTS);
    for bad in ["noslash", "/a/", "/.", "/a/..", "/x\u{1}y", "/nul\0"] {
        assert_eq!(s.code(op::CREATE2, &wire::create(bad, b"", 0)), err::BAD_ARGUMENTS, "{bad:?}");
    }
    // The parent is looked up before the full syntax check: "/a//x" has parent "/a/".
    assert_eq!(s.code(op::CREATE2, &wire::create("/a//x", b"", 0)), err::NO_NODE);

    let ttl = |path: &str, flags: i32, ttl: i64| {
        Enc::new().str(path).buf(Some(b"")).acls(wire::OPEN).int(flags).long(ttl).done()
    };
    assert_eq!(s.code(op::CREATE_TTL, &ttl("/t", 5, 0)), err::BAD_ARGUMENTS);
    assert_eq!(s.code(op::CREATE_TTL, &ttl("/t", 5, -5)), err::BAD_ARGUMENTS);
    assert_eq!(s.code(op::CREATE_TTL, &ttl("/t", 5, 1 << 40)), err::BAD_ARGUMENTS);
    assert_eq!(s.code(op::CREATE_TTL, &ttl("/t", 5, (1 << 40) - 1)), 0);
    assert_eq!(s.code(op::CREATE_TTL, &ttl("/t2", 6, 1000)), 0, "sequential TTL");
    // A TTL mode through the plain create opcode has no TTL (-1): bad arguments.
    assert_eq!(s.code(op::CREATE2, &wire::create("/t3", b"", 5)), err::BAD_ARGUMENTS);

    // ACL problems.
    let empty: &[(i32, &str, &str)] = &[];
    assert_eq!(s.code(op::CREATE2, &wire::create_acl("/acl", b"", empty, 0)), err::INVALID_ACL);

    // Nothing of the above was created.
    for p in ["/f", "/nope", "/t3", "/acl", "/eph/kid"] {
        assert_eq!(s.stat(p), None, "{p}");
    }
}

#[test]
fn ttl_create_is_unimplemented_without_extended_types() {
    let srv = TestServer::start_with(|s| s.extended_types_enabled = false);
    let mut s = Session::open(srv.addr);
    let body = Enc::new().str("/t").buf(Some(b"")).acls(wire::OPEN).int(5).long(1000).done();
    assert_eq!(s.code(op::CREATE_TTL, &body), err::UNIMPLEMENTED);
}

#[tokio::test]
async fn delete_checks_version_children_and_special_nodes() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/d", b"", &persistent()).await.expect("create");
    zk.create("/d/kid", b"", &persistent()).await.expect("create");
    zk.set_data("/d/kid", b"v1", None).await.expect("set");

    assert_eq!(zk.delete("/d", None).await, Err(Error::NotEmpty));
    assert_eq!(zk.delete("/d/kid", Some(0)).await, Err(Error::BadVersion));
    assert_eq!(zk.delete("/d/none", None).await, Err(Error::NoNode));
    assert_eq!(zk.delete("/none/kid", None).await, Err(Error::NoNode));
    zk.delete("/d/kid", Some(1)).await.expect("delete with matching version");
    zk.delete("/d", Some(0)).await.expect("delete now empty");
    assert_eq!(zk.check_stat("/d").await.expect("exists"), None);

    let mut s = Session::open(srv.addr);
    for special in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config", "/"] {
        let code = s.code(op::DELETE, &wire::delete(special, -1));
        assert_eq!(code, err::BAD_ARGUMENTS, "{special}");
    }
    assert_eq!(s.code(op::DELETE, &wire::delete("nope", -1)), err::BAD_ARGUMENTS);
    assert!(s.stat("/zookeeper").is_some());
}

#[tokio::test]
async fn set_data_follows_version_rules() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let (created, _) = zk.create("/v", b"0", &persistent()).await.expect("create");

    let s1 = zk.set_data("/v", b"one", None).await.expect("any version");
    assert_eq!(s1.version, 1);
    assert!(s1.mzxid > created.mzxid);
    assert_eq!(s1.czxid, created.czxid);
    assert_eq!(s1.pzxid, created.pzxid, "setData leaves pzxid alone");
    assert!(s1.mtime >= created.mtime);
    assert_eq!(s1.data_length, 3);

    let s2 = zk.set_data("/v", b"two!", Some(1)).await.expect("matching version");
    assert_eq!(s2.version, 2);
    assert_eq!(zk.set_data("/v", b"x", Some(1)).await, Err(Error::BadVersion));
    assert_eq!(zk.set_data("/v", b"x", Some(7)).await, Err(Error::BadVersion));
    assert_eq!(zk.set_data("/missing", b"x", None).await, Err(Error::NoNode));
    let (data, stat) = zk.get_data("/v").await.expect("get");
    assert_eq!((data.as_slice(), stat), (&b"two!"[..], s2));
}

#[tokio::test]
async fn acl_version_counts_set_acl_calls() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let (created, _) = zk.create("/acl", b"", &persistent()).await.expect("create");
    let (acl, stat) = zk.get_acl("/acl").await.expect("getACL");
    assert_eq!(acl, vec![Acl::new(Permission::ALL, AuthId::anyone())]);
    assert_eq!(stat.aversion, 0);

    let read_only = [Acl::new(Permission::READ | Permission::ADMIN, AuthId::anyone())];
    let st = zk.set_acl("/acl", &read_only, Some(0)).await.expect("setACL");
    assert_eq!(st.aversion, 1);
    assert_eq!((st.version, st.mzxid), (0, created.mzxid), "setACL does not touch data stat");
    assert_eq!(zk.set_acl("/acl", &read_only, Some(0)).await, Err(Error::BadVersion));
    assert_eq!(zk.set_acl("/missing", &read_only, None).await, Err(Error::NoNode));
    let (acl, stat) = zk.get_acl("/acl").await.expect("getACL");
    assert_eq!(acl, read_only.to_vec());
    assert_eq!(stat.aversion, 1);
    // The new ACL is enforced.
    assert_eq!(zk.set_data("/acl", b"x", None).await, Err(Error::NoAuth));
}

#[tokio::test]
async fn children_and_parent_stat() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let (p, _) = zk.create("/p", b"", &persistent()).await.expect("create");
    let (a, _) = zk.create("/p/a", b"", &persistent()).await.expect("create");
    let (b, _) = zk.create("/p/b", b"", &persistent()).await.expect("create");
    let (kids, stat) = zk.get_children("/p").await.expect("children2");
    let mut kids = kids;
    kids.sort();
    assert_eq!(kids, ["a", "b"]);
    assert_eq!((stat.num_children, stat.cversion, stat.pzxid), (2, 2, b.czxid));
    assert_eq!((stat.czxid, stat.mzxid), (p.czxid, p.czxid));
    assert!(a.czxid < b.czxid);

    zk.delete("/p/a", None).await.expect("delete");
    let (_, after) = zk.get_children("/p").await.expect("children2");
    // pzxid moves to the delete's zxid; client cversion = creations + deletions.
    assert!(after.pzxid > b.czxid);
    assert_eq!((after.num_children, after.cversion), (1, 3));
    assert_eq!(after.mzxid, p.mzxid);
    assert_eq!(zk.list_children("/p").await.expect("children"), ["b"]);
    assert_eq!(zk.list_children("/missing").await, Err(Error::NoNode));

    // The delete's zxid is the pzxid (one more than the last create here).
    assert_eq!(after.pzxid, b.czxid + 1);
}

#[tokio::test]
async fn get_all_children_number_counts_descendants() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    // Fresh server: /zookeeper, /zookeeper/quota, /zookeeper/config.
    assert_eq!(zk.count_descendants_number("/").await.expect("count"), 3);
    zk.create("/n", b"", &persistent()).await.expect("create");
    zk.create("/n/a", b"", &persistent()).await.expect("create");
    zk.create("/n/a/b", b"", &persistent()).await.expect("create");
    zk.create("/nn", b"", &persistent()).await.expect("create");
    assert_eq!(zk.count_descendants_number("/n").await.expect("count"), 2);
    assert_eq!(zk.count_descendants_number("/n/a/b").await.expect("count"), 0);
    assert_eq!(zk.count_descendants_number("/").await.expect("count"), 7);
    assert_eq!(zk.count_descendants_number("/none").await, Err(Error::NoNode));
}

#[tokio::test]
async fn get_ephemerals_lists_own_session_by_string_prefix() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let other = client(&srv).await;
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    zk.create("/ex", b"", &persistent()).await.expect("create");
    zk.create("/e1", b"", &eph).await.expect("create");
    zk.create("/e2", b"", &eph).await.expect("create");
    zk.create("/ex/e", b"", &eph).await.expect("create");
    other.create("/e3", b"", &eph).await.expect("create");

    let mut all = zk.list_ephemerals("/").await.expect("all");
    all.sort();
    assert_eq!(all, ["/e1", "/e2", "/ex/e"]);
    let mut e = zk.list_ephemerals("/e").await.expect("prefix");
    e.sort();
    assert_eq!(e, ["/e1", "/e2", "/ex/e"], "plain string prefix, not per component");
    assert_eq!(zk.list_ephemerals("/ex").await.expect("prefix"), ["/ex/e"]);
    assert_eq!(other.list_ephemerals("/").await.expect("other"), ["/e3"]);
    assert!(zk.list_ephemerals("/zz").await.expect("none").is_empty());
}

#[tokio::test]
async fn sync_echoes_path() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.sync("/").await.expect("sync");
    let mut s = Session::open(srv.addr);
    let (h, body) = s.call(op::SYNC, &wire::path("/any/path"));
    assert_eq!(h.err, 0);
    assert_eq!(Dec::new(&body).str(), "/any/path");
}

#[tokio::test]
async fn multi_applies_all_ops_with_per_op_results() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/m", b"", &persistent()).await.expect("create");
    zk.create("/gone", b"", &persistent()).await.expect("create");
    let mut w = zk.new_multi_writer();
    w.add_check_version("/m", 0).unwrap();
    w.add_create("/m/a", b"x", &persistent()).unwrap();
    w.add_create("/m/a/b", b"", &persistent()).unwrap();
    w.add_set_data("/m", b"new", Some(0)).unwrap();
    w.add_delete("/gone", None).unwrap();
    let results = w.commit().await.expect("multi");
    assert_eq!(results.len(), 5);
    assert_eq!(results[0], MultiWriteResult::Check);
    // Creates inside a multi are logged and answered as plain creates (type 1, no Stat), as
    // ZooKeeper 3.8 does: it cannot replay a logged sub-txn of type 15.
    let MultiWriteResult::Create { path, .. } = &results[1] else { panic!("{results:?}") };
    assert_eq!(path, "/m/a");
    let MultiWriteResult::Create { path, .. } = &results[2] else { panic!("{results:?}") };
    assert_eq!(path, "/m/a/b");
    let zxid = zk.check_stat("/m/a").await.expect("exists").expect("created").czxid;
    let b = zk.check_stat("/m/a/b").await.expect("exists").expect("created");
    assert_eq!(b.czxid, zxid, "one zxid for the whole multi");
    let MultiWriteResult::SetData { stat } = &results[3] else { panic!("{results:?}") };
    assert_eq!((stat.version, stat.mzxid), (1, zxid));
    assert_eq!(results[4], MultiWriteResult::Delete);
    assert_eq!(zk.check_stat("/gone").await.expect("exists"), None);
    assert_eq!(zk.get_data("/m").await.expect("get").0, b"new");
}

#[tokio::test]
async fn failed_multi_changes_nothing() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/m", b"", &persistent()).await.expect("create");
    let mut w = zk.new_multi_writer();
    w.add_create("/m/new", b"", &persistent()).unwrap();
    w.add_set_data("/m", b"changed", None).unwrap();
    w.add_check_version("/m", 5).unwrap();
    w.add_delete("/m", None).unwrap();
    let e = w.commit().await.expect_err("check fails");
    assert_eq!(e, MultiWriteError::OperationFailed { index: 2, source: Error::BadVersion });
    assert_eq!(zk.check_stat("/m/new").await.expect("exists"), None);
    let (data, stat) = zk.get_data("/m").await.expect("get");
    assert_eq!((data.len(), stat.version), (0, 0));
}

#[test]
fn failed_multi_reply_is_ok_header_with_zero_code_minus_two_results() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/a", b"", 0).0.err, 0);
    let body = wire::multi_body(&[
        (op::CREATE, wire::create("/m1", b"", 0)),
        (op::CREATE, wire::create("/a", b"", 0)),
        (op::CHECK, Enc::new().str("/a").int(-1).done()),
    ]);
    let (h, body) = s.call(op::MULTI, &body);
    assert_eq!(h.err, 0, "a failed multi still replies err 0");
    // Captured from ZooKeeper 3.8 for [create /m1, create /a (exists)] plus one more op.
    let expected = Enc::new()
        .int(-1)
        .boolean(false)
        .int(0)
        .int(0)
        .int(-1)
        .boolean(false)
        .int(err::NODE_EXISTS)
        .int(err::NODE_EXISTS)
        .int(-1)
        .boolean(false)
        .int(err::RUNTIME_INCONSISTENCY)
        .int(err::RUNTIME_INCONSISTENCY)
        .int(-1)
        .boolean(true)
        .int(-1)
        .done();
    assert_eq!(body, expected);
    assert_eq!(s.stat("/m1"), None);
}

#[test]
fn multi_success_reply_bytes_per_op() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/a", b"", 0).0.err, 0);
    let body = wire::multi_body(&[
        (op::CREATE, wire::create("/b", b"", 0)),
        (op::CHECK, Enc::new().str("/a").int(0).done()),
        (op::SET_DATA, wire::set_data("/a", b"zz", 0)),
        (op::DELETE, wire::delete("/b", -1)),
    ]);
    let (h, body) = s.call(op::MULTI, &body);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!((d.int(), d.boolean(), d.int()), (op::CREATE, false, 0));
    assert_eq!(d.str(), "/b");
    assert_eq!((d.int(), d.boolean(), d.int()), (op::CHECK, false, 0));
    assert_eq!((d.int(), d.boolean(), d.int()), (op::SET_DATA, false, 0));
    let st = d.stat();
    assert_eq!((st.version, st.mzxid, st.data_length), (1, h.zxid, 2));
    assert_eq!((d.int(), d.boolean(), d.int()), (op::DELETE, false, 0));
    assert_eq!((d.int(), d.boolean(), d.int()), (-1, true, -1));
    assert_eq!(d.remaining(), 0);
}

#[tokio::test]
async fn multi_read_evaluates_each_op_independently() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let (st, _) = zk.create("/r", b"rd", &persistent()).await.expect("create");
    zk.create("/r/k", b"", &persistent()).await.expect("create");
    let mut r = zk.new_multi_reader();
    r.add_get_data("/r").unwrap();
    r.add_get_data("/missing").unwrap();
    r.add_get_children("/r").unwrap();
    let results = r.commit().await.expect("multiRead");
    assert_eq!(results.len(), 3);
    let MultiReadResult::Data { data, stat } = &results[0] else { panic!("{results:?}") };
    assert_eq!((data.as_slice(), stat.czxid, stat.num_children), (&b"rd"[..], st.czxid, 1));
    assert!(matches!(&results[1], MultiReadResult::Error { err: Error::NoNode }), "{results:?}");
    let MultiReadResult::Children { children } = &results[2] else { panic!("{results:?}") };
    assert_eq!(children, &["k"]);
}

#[test]
fn who_am_i_lists_ip_then_digest_identities() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h, body) = s.call(op::WHO_AM_I, &[]);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!(d.int(), 1);
    assert_eq!((d.str(), d.str()), ("ip".to_string(), "127.0.0.1".to_string()));
    assert_eq!(s.auth("digest", b"u:p").err, 0);
    let (_, body) = s.call(op::WHO_AM_I, &[]);
    let mut d = Dec::new(&body);
    assert_eq!(d.int(), 2);
    assert_eq!((d.str(), d.str()), ("ip".to_string(), "127.0.0.1".to_string()));
    assert_eq!((d.str(), d.str()), ("digest".to_string(), "u".to_string()));
}

#[tokio::test]
async fn who_am_i_through_client() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.auth("digest", b"alice:secret").await.expect("auth");
    let users = zk.list_auth_users().await.expect("whoAmI");
    let users: Vec<(String, String)> =
        users.iter().map(|u| (u.scheme().to_string(), u.user().to_string())).collect();
    assert!(users.contains(&("digest".to_string(), "alice".to_string())), "{users:?}");
    assert!(users.contains(&("ip".to_string(), "127.0.0.1".to_string())), "{users:?}");
}

#[test]
fn reads_of_bad_paths_are_not_found_and_exists_rejects_nul() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.code(op::GET_DATA, &wire::path_watch("no/slash", false)), err::NO_NODE);
    assert_eq!(s.code(op::GET_DATA, &wire::path_watch("/a/", false)), err::NO_NODE);
    assert_eq!(s.code(op::EXISTS, &wire::path_watch("/missing", false)), err::NO_NODE);
    assert_eq!(s.code(op::EXISTS, &wire::path_watch("/a\0b", false)), err::BAD_ARGUMENTS);
    assert_eq!(s.code(op::GET_CHILDREN2, &wire::path_watch("/none", false)), err::NO_NODE);
    assert_eq!(s.code(op::GET_ACL, &wire::path("/none")), err::NO_NODE);
    assert_eq!(
        s.code(op::SET_DATA, &wire::set_data("/bad/", b"", -1)),
        err::BAD_ARGUMENTS,
        "setData checks path syntax"
    );
}

#[test]
fn zxids_track_creates_and_deletes() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h1, _, p) = s.create("/p", b"", 0);
    let (h2, _, a) = s.create("/p/a", b"", 0);
    let (h3, _, _) = s.create("/p/b", b"", 0);
    assert_eq!((p.czxid, a.czxid), (h1.zxid, h2.zxid));
    assert_eq!(h3.zxid, h2.zxid + 1, "consecutive writes take consecutive zxids");
    let (h4, _) = s.call(op::DELETE, &wire::delete("/p/a", -1));
    assert_eq!((h4.err, h4.zxid), (0, h3.zxid + 1));

    let st = s.stat("/p").expect("exists");
    assert_eq!((st.czxid, st.mzxid, st.pzxid), (h1.zxid, h1.zxid, h4.zxid));
    assert_eq!((st.cversion, st.num_children), (3, 1));
    let root = s.stat("/").expect("root");
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, h1.zxid, 2));

    // A failed delete does not move pzxid.
    let (h5, _) = s.call(op::DELETE, &wire::delete("/p/a", -1));
    assert_eq!(h5.err, err::NO_NODE);
    assert_eq!(s.stat("/p").expect("exists").pzxid, h4.zxid);
    // Reads report the last processed zxid.
    let (h6, _) = s.call(op::EXISTS, &wire::path_watch("/p", false));
    assert_eq!(h6.zxid, h5.zxid);
}

#[test]
fn multi_read_with_a_write_op_is_a_marshalling_error() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/a", b"", 0).0.err, 0);
    for write in [
        (op::CREATE, wire::create("/q", b"", 0)),
        (op::SET_DATA, wire::set_data("/a", b"x", -1)),
        (op::DELETE, wire::delete("/a", -1)),
    ] {
        let body = wire::multi_body(&[(op::GET_DATA, wire::path_watch("/a", false)), write]);
        let (h, rest) = s.call(op::MULTI_READ, &body);
        assert_eq!((h.err, rest.len()), (err::MARSHALLING_ERROR, 0));
    }
    // And a read op in a multi likewise.
    let body = wire::multi_body(&[(op::GET_DATA, wire::path_watch("/a", false))]);
    assert_eq!(s.code(op::MULTI, &body), err::MARSHALLING_ERROR);
    assert!(s.stat("/a").is_some());
    assert_eq!(s.stat("/q"), None);
}

#[test]
fn pipelined_requests_are_answered_in_order_and_reads_see_earlier_writes() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/pipe", b"", 0).0.err, 0);
    let mut frames = Vec::new();
    let mut xid = 100;
    for i in 0..50 {
        let path = format!("/pipe/n{i}");
        for (op, body) in [
            (op::CREATE, wire::create(&path, b"", 0)),
            (op::SET_DATA, wire::set_data(&path, format!("v{i}").as_bytes(), 0)),
            (op::GET_DATA, wire::path_watch(&path, false)),
        ] {
            xid += 1;
            let mut p = Enc::new().int(xid).int(op).done();
            p.extend_from_slice(&body);
            frames.extend_from_slice(&(p.len() as i32).to_be_bytes());
            frames.extend_from_slice(&p);
        }
    }
    // All 150 requests in one write.
    use std::io::Write;
    s.raw.stream.write_all(&frames).expect("write");
    let mut last_zxid = 0;
    for (n, expected_xid) in (101..=xid).enumerate() {
        let (h, body) = s.reply_to(expected_xid);
        assert_eq!(h.err, 0, "xid {expected_xid}");
        assert!(h.zxid >= last_zxid, "zxids never go back");
        last_zxid = h.zxid;
        if n % 3 == 2 {
            let i = n / 3;
            let mut d = Dec::new(&body);
            assert_eq!(
                d.buf(),
                Some(format!("v{i}").into_bytes()),
                "read sees the write before it"
            );
            assert_eq!(d.stat().version, 1);
        }
    }
    let st = s.stat("/pipe").expect("exists");
    assert_eq!(st.num_children, 50);
}

#[test]
fn null_and_empty_data_are_distinct() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let null = Enc::new().str("/null").buf(None).acls(wire::OPEN).int(0).done();
    assert_eq!(s.code(op::CREATE, &null), 0);
    assert_eq!(s.create("/empty", b"", 0).0.err, 0);
    let (data, st) = s.get_data("/null");
    assert_eq!((data, st.data_length), (None, 0));
    let (data, st) = s.get_data("/empty");
    assert_eq!((data, st.data_length), (Some(Vec::new()), 0));
}

#[test]
fn sequential_creates_in_one_multi_get_consecutive_suffixes() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/s", b"", 0).0.err, 0);
    let body = wire::multi_body(&[
        (op::CREATE, wire::create("/s/a-", b"", 2)),
        (op::CREATE, wire::create("/s/a-", b"", 2)),
        (op::DELETE, wire::delete("/s/a-0000000000", -1)),
        (op::CREATE, wire::create("/s/a-0000000000", b"", 0)),
    ]);
    let (h, body) = s.call(op::MULTI, &body);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!(
        (d.int(), d.boolean(), d.int(), d.str()),
        (op::CREATE, false, 0, "/s/a-0000000000".into())
    );
    assert_eq!(
        (d.int(), d.boolean(), d.int(), d.str()),
        (op::CREATE, false, 0, "/s/a-0000000001".into())
    );
    assert_eq!((d.int(), d.boolean(), d.int()), (op::DELETE, false, 0));
    assert_eq!(
        (d.int(), d.boolean(), d.int(), d.str()),
        (op::CREATE, false, 0, "/s/a-0000000000".into())
    );
    // A name the counter will produce next, taken by hand: the sequential create collides.
    assert_eq!(s.create("/s/a-0000000004", b"", 0).0.err, 0);
    assert_eq!(s.code(op::CREATE2, &wire::create("/s/a-", b"", 2)), err::NODE_EXISTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_compare_and_set_loses_no_update() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/counter", b"0", &persistent()).await.expect("create");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = client(&srv).await;
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            // Bounded: 25 increments, each retried at most 200 times.
            for _ in 0..25 {
                for attempt in 0..200 {
                    let (data, stat) = c.get_data("/counter").await.expect("get");
                    let n: u64 = String::from_utf8(data).unwrap().parse().unwrap();
                    let next = (n + 1).to_string();
                    match c.set_data("/counter", next.as_bytes(), Some(stat.version)).await {
                        Ok(_) => {
                            done += 1;
                            break;
                        }
                        Err(Error::BadVersion) => assert!(attempt < 199, "starved"),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    assert_eq!(total, 100);
    let (data, stat) = zk.get_data("/counter").await.expect("get");
    assert_eq!((data.as_slice(), stat.version), (&b"100"[..], 100));
}
