//! Every client operation and its errors, against a real server.

mod harness;

use std::time::Duration;

use rzk::client::{Error, Op, OpResult, ReadOp, Watch};
use rzk::jute::data::{perms, Acl};
use rzk::proto::{CreateMode, ErrorCode};

use harness::connect;
use harness::target::shared_server;

const T: Duration = Duration::from_secs(30);

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorCode {
    r.expect_err("expected an error").code()
}

#[test]
fn create_in_every_mode_returns_path_and_stat() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    assert_eq!(c.create("/modes", b"root", &open, CreateMode::Persistent).unwrap(), "/modes");
    let (p, stat) = c.create2("/modes/p2", b"abc", &open, CreateMode::Persistent).unwrap();
    assert_eq!((p.as_str(), stat.data_length, stat.ephemeral_owner), ("/modes/p2", 3, 0));
    let (e, stat) = c.create2("/modes/e", b"", &open, CreateMode::Ephemeral).unwrap();
    assert_eq!(e, "/modes/e");
    assert_eq!(stat.ephemeral_owner, c.session_id().0);
    let s1 = c.create("/modes/s-", b"", &open, CreateMode::PersistentSequential).unwrap();
    let s2 = c.create("/modes/s-", b"", &open, CreateMode::EphemeralSequential).unwrap();
    assert_eq!(s1, "/modes/s-0000000002");
    assert_eq!(s2, "/modes/s-0000000003");
    let (cont, _) = c.create2("/modes/cont", b"", &open, CreateMode::Container).unwrap();
    assert_eq!(cont, "/modes/cont");
    assert_eq!(
        c.create("/modes/cont2", b"", &open, CreateMode::Container).unwrap(),
        "/modes/cont2"
    );
    let ttl = Duration::from_secs(60);
    let (t, _) =
        c.create_ttl("/modes/ttl", b"", &open, CreateMode::PersistentWithTtl, ttl).unwrap();
    assert_eq!(t, "/modes/ttl");
    let (ts, _) = c
        .create_ttl("/modes/ttls-", b"", &open, CreateMode::PersistentSequentialWithTtl, ttl)
        .unwrap();
    assert!(ts.starts_with("/modes/ttls-"), "{ts}");
    assert_eq!(c.get_ephemerals("/modes").unwrap().len(), 2);
    let mut kids = c.get_children("/modes", false).unwrap();
    kids.sort();
    assert_eq!(kids.len(), 8, "{kids:?}");
    // TTL modes need a ttl; plain create refuses them before sending anything.
    assert_eq!(
        code(c.create("/modes/x", b"", &open, CreateMode::PersistentWithTtl)),
        ErrorCode::BadArguments
    );
}

#[test]
fn create_errors_carry_server_codes() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    c.create("/cerr", b"", &open, CreateMode::Persistent).unwrap();
    assert_eq!(code(c.create("/cerr", b"", &open, CreateMode::Persistent)), ErrorCode::NodeExists);
    assert_eq!(
        code(c.create("/cerr/no/parent", b"", &open, CreateMode::Persistent)),
        ErrorCode::NoNode
    );
    c.create("/cerr/eph", b"", &open, CreateMode::Ephemeral).unwrap();
    assert_eq!(
        code(c.create("/cerr/eph/kid", b"", &open, CreateMode::Persistent)),
        ErrorCode::NoChildrenForEphemerals
    );
    assert_eq!(code(c.create("bad", b"", &open, CreateMode::Persistent)), ErrorCode::BadArguments);
    assert_eq!(
        code(c.create("/cerr/", b"", &open, CreateMode::Persistent)),
        ErrorCode::BadArguments
    );
    assert_eq!(code(c.create("/cerr/x", b"", &[], CreateMode::Persistent)), ErrorCode::InvalidAcl);
    let bad_acl = vec![Acl::new(perms::ALL, "nosuchscheme", "x")];
    assert_eq!(
        code(c.create("/cerr/y", b"", &bad_acl, CreateMode::Persistent)),
        ErrorCode::InvalidAcl
    );
}

#[test]
fn read_write_delete_and_their_errors() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    c.create("/rw", b"v0", &open, CreateMode::Persistent).unwrap();
    let (data, stat) = c.get_data("/rw", false).unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"v0"[..], 0));
    let stat = c.set_data("/rw", b"v1", 0).unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(code(c.set_data("/rw", b"v2", 0)), ErrorCode::BadVersion);
    let stat = c.set_data("/rw", b"v2", -1).unwrap();
    assert_eq!(stat.version, 2);
    assert_eq!(c.last_zxid().0, stat.mzxid, "a write's reply carries its zxid");
    assert_eq!(c.exists("/rw", false).unwrap().map(|s| s.version), Some(2));
    assert_eq!(c.exists("/rw/none", false).unwrap(), None);
    assert_eq!(code(c.get_data("/rw/none", false)), ErrorCode::NoNode);
    assert_eq!(code(c.set_data("/rw/none", b"", -1)), ErrorCode::NoNode);
    c.create("/rw/kid", b"", &open, CreateMode::Persistent).unwrap();
    c.create("/rw/kid/deeper", b"", &open, CreateMode::Persistent).unwrap();
    let (kids, stat) = c.get_children2("/rw", false).unwrap();
    assert_eq!((kids, stat.num_children), (vec!["kid".to_owned()], 1));
    assert_eq!(c.get_all_children_number("/rw").unwrap(), 2);
    assert_eq!(code(c.get_children("/rw/none", false)), ErrorCode::NoNode);
    assert_eq!(code(c.delete("/rw", -1)), ErrorCode::NotEmpty);
    assert_eq!(code(c.delete("/rw/kid/deeper", 5)), ErrorCode::BadVersion);
    c.delete("/rw/kid/deeper", 0).unwrap();
    c.delete("/rw/kid", -1).unwrap();
    assert_eq!(code(c.delete("/rw/kid", -1)), ErrorCode::NoNode);
    assert_eq!(c.sync("/rw").unwrap(), "/rw");
    assert_eq!(code(c.get_data("/rw/../x", false)), ErrorCode::BadArguments);
}

#[test]
fn acls_and_digest_auth() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    let (other, _ev2) = connect(&server.connect_string(), T);
    c.add_auth("digest", b"alice:secret");
    let who = c.who_am_i().unwrap();
    assert!(who.iter().any(|i| i.auth_scheme == "digest" && i.user == "alice"), "{who:?}");
    c.create("/acl", b"x", &Acl::creator_all(), CreateMode::Persistent).unwrap();
    let (acl, stat) = c.get_acl("/acl").unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert_eq!(stat.aversion, 0);
    assert_eq!(code(other.get_data("/acl", false)), ErrorCode::NoAuth);
    assert_eq!(code(c.set_acl("/acl", &Acl::read_unsafe(), 3)), ErrorCode::BadVersion);
    assert_eq!(c.set_acl("/acl", &Acl::read_unsafe(), 0).unwrap().aversion, 1);
    assert_eq!(other.get_data("/acl", false).unwrap().0, b"x");
    assert_eq!(code(other.set_data("/acl", b"y", -1)), ErrorCode::NoAuth);
    assert_eq!(code(c.get_acl("/acl/none")), ErrorCode::NoNode);
}

#[test]
fn multi_applies_atomically_and_reports_each_result() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    c.create("/multi", b"", &open, CreateMode::Persistent).unwrap();
    let ops = vec![
        Op::Create {
            path: "/multi/a".into(),
            data: b"1".to_vec(),
            acl: open.clone(),
            mode: CreateMode::Persistent,
            ttl: None,
        },
        Op::SetData { path: "/multi/a".into(), data: b"2".to_vec(), version: 0 },
        Op::Check { path: "/multi".into(), version: 0 },
    ];
    let res = c.multi(&ops).unwrap();
    assert!(matches!(&res[0], OpResult::Create(p, _) if p == "/multi/a"), "{res:?}");
    assert!(matches!(&res[1], OpResult::SetData(s) if s.version == 1));
    assert_eq!(res[2], OpResult::Check);
    let failing = vec![
        Op::Delete { path: "/multi/a".into(), version: -1 },
        Op::Check { path: "/multi/none".into(), version: -1 },
    ];
    match c.multi(&failing) {
        Err(Error::Multi { code, results }) => {
            assert_eq!(code, ErrorCode::NoNode);
            assert_eq!(results.len(), 2);
            assert_eq!(results[1], OpResult::Error(ErrorCode::NoNode));
        }
        other => panic!("expected a failed multi, got {other:?}"),
    }
    assert!(c.exists("/multi/a", false).unwrap().is_some(), "multi must be atomic");
    let reads = c
        .multi_read(&[
            ReadOp::GetData("/multi/a".into()),
            ReadOp::GetChildren("/multi".into()),
            ReadOp::GetData("/multi/none".into()),
        ])
        .unwrap();
    assert!(matches!(&reads[0], OpResult::GetData(d, _) if d == b"2"));
    assert_eq!(reads[1], OpResult::GetChildren(vec!["a".into()]));
    assert_eq!(reads[2], OpResult::Error(ErrorCode::NoNode));
}

#[test]
fn async_callbacks_run_in_reply_order() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    c.create("/async", b"", &open, CreateMode::Persistent).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..200 {
        let tx = tx.clone();
        let path = format!("/async/n{i}");
        if i % 2 == 0 {
            c.create_async(&path, b"", &open, CreateMode::Persistent, move |r| {
                let _ = tx.send((i, r.map(|_| ()).map_err(|e| e.code())));
            });
        } else {
            c.exists_async(&path, Watch::No, move |r| {
                let _ = tx.send((i, r.map(|_| ()).map_err(|e| e.code())));
            });
        }
    }
    c.get_data_async("/async/none", false, move |r| {
        let _ = tx.send((200, r.map(|_| ()).map_err(|e| e.code())));
    });
    for want in 0..=200 {
        let (i, r) = rx.recv_timeout(T).expect("callback");
        assert_eq!(i, want);
        if want == 200 {
            assert_eq!(r, Err(ErrorCode::NoNode));
        } else {
            assert_eq!(r, Ok(()));
        }
    }
    assert_eq!(c.get_all_children_number("/async").unwrap(), 100);
}

#[test]
fn chroot_is_applied_to_paths_results_and_events() {
    let Some(server) = shared_server() else { return };
    let (root, _ev) = connect(&server.connect_string(), T);
    let open = Acl::open_unsafe();
    root.create("/chroot", b"", &open, CreateMode::Persistent).unwrap();
    let (c, _ev2) = connect(&format!("{}/chroot", server.connect_string()), T);
    assert_eq!(c.create("/a", b"x", &open, CreateMode::Persistent).unwrap(), "/a");
    let s = c.create("/q-", b"", &open, CreateMode::EphemeralSequential).unwrap();
    assert_eq!(s, "/q-0000000001");
    assert_eq!(root.get_data("/chroot/a", false).unwrap().0, b"x");
    let mut kids = c.get_children("/", false).unwrap();
    kids.sort();
    assert_eq!(kids, vec!["a".to_owned(), "q-0000000001".to_owned()]);
    assert_eq!(c.get_ephemerals("/").unwrap(), vec!["/q-0000000001".to_owned()]);
    assert_eq!(c.sync("/a").unwrap(), "/a");
    let (tx, rx) = crossbeam_channel::unbounded();
    let w = rzk::client::Watcher::channel(tx);
    c.get_data("/a", &w).unwrap();
    root.set_data("/chroot/a", b"y", -1).unwrap();
    let e = rx.recv_timeout(T).unwrap();
    assert_eq!(e.path.as_deref(), Some("/a"));
    let res = c
        .multi(&[Op::Create {
            path: "/m".into(),
            data: vec![],
            acl: open,
            mode: CreateMode::Persistent,
            ttl: None,
        }])
        .unwrap();
    assert!(matches!(&res[0], OpResult::Create(p, _) if p == "/m"));
}

#[test]
fn operations_after_close_fail_with_closed() {
    let Some(server) = shared_server() else { return };
    let (c, _ev) = connect(&server.connect_string(), T);
    c.close().unwrap();
    assert!(matches!(c.exists("/", false), Err(Error::Closed)));
    c.close().unwrap();
}
