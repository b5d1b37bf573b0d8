//! ACLs and authentication: world, digest, ip, the auth pseudo-scheme, super, NOAUTH,
//! INVALIDACL, getACL redaction and AUTHFAILED (wire-protocol.md §10, §11.2).
mod harness;

use harness::wire::{self, err, op, Dec, Enc, Session};
use harness::*;
use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, Error, Permission};

/// base64(sha1("u:p")), computed independently of the server.
const U_DIGEST: &str = "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=";

async fn client(srv: &TestServer) -> Client {
    Client::connect(&srv.connect_string()).await.expect("connect")
}

fn acl_entry(perms: i32, scheme: &str, id: &str) -> (i32, String, String) {
    (perms, scheme.to_string(), id.to_string())
}

fn get_acl(s: &mut Session, path: &str) -> (i32, Vec<(i32, String, String)>) {
    let (h, body) = s.call(op::GET_ACL, &wire::path(path));
    if h.err != 0 {
        return (h.err, Vec::new());
    }
    (0, Dec::new(&body).acls())
}

#[test]
fn digest_id_matches_an_independent_sha1() {
    assert_eq!(rzk::server::acl::digest_id("u:p"), U_DIGEST);
}

#[tokio::test]
async fn world_read_only_acl_refuses_writes_and_changes_nothing() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    zk.create("/ro", b"orig", &CreateMode::Persistent.with_acls(Acls::anyone_read()))
        .await
        .expect("create");
    assert_eq!(zk.get_data("/ro").await.expect("read").0, b"orig");
    assert_eq!(zk.set_data("/ro", b"new", None).await, Err(Error::NoAuth));
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    assert_eq!(zk.create("/ro/kid", b"", &opts).await, Err(Error::NoAuth));
    let all = [Acl::new(Permission::ALL, AuthId::anyone())];
    assert_eq!(zk.set_acl("/ro", &all, None).await, Err(Error::NoAuth));
    let (data, stat) = zk.get_data("/ro").await.expect("read");
    assert_eq!((data.as_slice(), stat.version, stat.aversion), (&b"orig"[..], 0, 0));
    assert_eq!(stat.num_children, 0);
}

#[tokio::test]
async fn digest_acl_needs_matching_addauth() {
    let srv = TestServer::start();
    let owner = client(&srv).await;
    owner.auth("digest", b"u:p").await.expect("auth");
    let acl = [Acl::new(Permission::ALL, AuthId::new("digest", U_DIGEST))];
    owner
        .create("/dg", b"secret", &CreateMode::Persistent.with_acls(Acls::new(&acl)))
        .await
        .expect("create");
    assert_eq!(owner.get_data("/dg").await.expect("owner reads").0, b"secret");

    let stranger = client(&srv).await;
    assert_eq!(stranger.get_data("/dg").await, Err(Error::NoAuth));
    assert_eq!(stranger.list_children("/dg").await, Err(Error::NoAuth));
    assert_eq!(stranger.set_data("/dg", b"x", None).await, Err(Error::NoAuth));
    assert_eq!(stranger.get_acl("/dg").await, Err(Error::NoAuth));
    stranger.auth("digest", b"u:wrong").await.expect("any digest auth succeeds");
    assert_eq!(stranger.get_data("/dg").await, Err(Error::NoAuth));
    stranger.auth("digest", b"u:p").await.expect("auth");
    assert_eq!(stranger.get_data("/dg").await.expect("now allowed").0, b"secret");
}

#[test]
fn no_auth_for_each_permission_with_nothing_changed() {
    let srv = TestServer::start();
    let mut owner = Session::open(srv.addr);
    assert_eq!(owner.auth("digest", b"u:p").err, 0);
    let mine = |extra: i32| [(extra, "world", "anyone"), (31, "digest", U_DIGEST)];
    // Everything but the permission under test, for the world.
    for (path, world) in [
        ("/noread", 31 & !1),
        ("/nowrite", 31 & !2),
        ("/nocreate", 31 & !4),
        ("/nodelete", 31 & !8),
        ("/noadmin", 31 & !16),
    ] {
        assert_eq!(owner.code(op::CREATE, &wire::create_acl(path, b"d", &mine(world), 0)), 0);
        let kid = format!("{path}/kid");
        assert_eq!(owner.code(op::CREATE, &wire::create(&kid, b"", 0)), 0);
    }
    let mut other = Session::open(srv.addr);
    let reads = [op::GET_DATA, op::GET_CHILDREN, op::GET_CHILDREN2, op::EXISTS];
    for read in reads {
        assert_eq!(
            other.code(read, &wire::path_watch("/noread", false)),
            err::NO_AUTH,
            "op {read}"
        );
    }
    assert_eq!(other.code(op::GET_ALL_CHILDREN_NUMBER, &wire::path("/noread")), err::NO_AUTH);
    let multi_read = wire::multi_body(&[(op::GET_DATA, wire::path_watch("/noread", false))]);
    let (h, body) = other.call(op::MULTI_READ, &multi_read);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!((d.int(), d.boolean(), d.int()), (-1, false, err::NO_AUTH));
    let check = wire::multi_body(&[(op::CHECK, Enc::new().str("/noread").int(-1).done())]);
    let (_, body) = other.call(op::MULTI, &check);
    let mut d = Dec::new(&body);
    assert_eq!((d.int(), d.boolean(), d.int()), (-1, false, err::NO_AUTH), "check needs READ");

    let set = wire::set_data("/nowrite", b"changed", -1);
    assert_eq!(other.code(op::SET_DATA, &set), err::NO_AUTH);
    let create = wire::create("/nocreate/new", b"", 0);
    assert_eq!(other.code(op::CREATE2, &create), err::NO_AUTH);
    assert_eq!(other.code(op::DELETE, &wire::delete("/nodelete/kid", -1)), err::NO_AUTH);
    let set_acl = Enc::new().str("/noadmin").acls(wire::OPEN).int(-1).done();
    assert_eq!(other.code(op::SET_ACL, &set_acl), err::NO_AUTH);
    // In a multi too, and the whole multi is undone.
    let multi = wire::multi_body(&[
        (op::CREATE, wire::create("/fine", b"", 0)),
        (op::SET_DATA, wire::set_data("/nowrite", b"changed", -1)),
    ]);
    let (_, body) = other.call(op::MULTI, &multi);
    let mut d = Dec::new(&body);
    assert_eq!((d.int(), d.boolean(), d.int()), (-1, false, 0));
    d.int();
    assert_eq!((d.int(), d.boolean(), d.int()), (-1, false, err::NO_AUTH));

    // The permissions that were granted work, and nothing above changed anything.
    assert_eq!(other.code(op::GET_DATA, &wire::path_watch("/nowrite", false)), 0);
    assert_eq!(other.code(op::DELETE, &wire::delete("/nocreate/kid", -1)), 0);
    let (data, stat) = owner.get_data("/nowrite");
    assert_eq!((data.as_deref(), stat.version), (Some(&b"d"[..]), 0));
    assert_eq!(owner.stat("/nocreate/new"), None);
    assert!(owner.stat("/nodelete/kid").is_some());
    assert_eq!(owner.stat("/fine"), None);
    assert_eq!(owner.stat("/noadmin").expect("exists").aversion, 0);
}

#[test]
fn ip_acl_matches_address_and_cidr() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let cases = [
        ("/ip-exact", "127.0.0.1", true),
        ("/ip-cidr8", "127.0.0.0/8", true),
        ("/ip-cidr32", "127.0.0.1/32", true),
        ("/ip-other", "10.0.0.1", false),
        ("/ip-other-net", "10.0.0.0/8", false),
        ("/ip-v6", "::1", false),
    ];
    for (path, id, _) in cases {
        let acl = [(1, "ip", id), (30, "world", "anyone")];
        assert_eq!(s.code(op::CREATE, &wire::create_acl(path, b"x", &acl, 0)), 0, "{id}");
    }
    for (path, id, allowed) in cases {
        let code = s.code(op::GET_DATA, &wire::path_watch(path, false));
        assert_eq!(code, if allowed { 0 } else { err::NO_AUTH }, "{id}");
    }
}

#[test]
fn auth_scheme_expands_to_session_identities() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let creator = [(31, "auth", "")];
    // An ip identity does not count: it is not an authenticated provider.
    assert_eq!(s.code(op::CREATE, &wire::create_acl("/c", b"", &creator, 0)), err::INVALID_ACL);
    assert_eq!(s.auth("digest", b"u:p").err, 0);
    assert_eq!(s.auth("digest", b"v:q").err, 0);
    assert_eq!(s.code(op::CREATE, &wire::create_acl("/c", b"", &[(21, "auth", "")], 0)), 0);
    let (code, acl) = get_acl(&mut s, "/c");
    assert_eq!(code, 0);
    let v_digest = rzk::server::acl::digest_id("v:q");
    assert_eq!(acl, [acl_entry(21, "digest", U_DIGEST), acl_entry(21, "digest", &v_digest)]);

    let mut other = Session::open(srv.addr);
    assert_eq!(other.code(op::GET_DATA, &wire::path_watch("/c", false)), err::NO_AUTH);
}

#[tokio::test]
async fn creator_all_acl_through_client() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let opts = CreateMode::Persistent.with_acls(Acls::creator_all());
    assert_eq!(zk.create("/mine", b"", &opts).await, Err(Error::InvalidAcl));
    zk.auth("digest", b"u:p").await.expect("auth");
    zk.create("/mine", b"", &opts).await.expect("create");
    let (acl, _) = zk.get_acl("/mine").await.expect("getACL");
    assert_eq!(acl, [Acl::new(Permission::ALL, AuthId::new("digest", U_DIGEST))]);
}

#[test]
fn super_digest_bypasses_every_acl() {
    let super_digest = rzk::server::acl::digest_id("super:secret");
    assert_eq!(super_digest, "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
    let srv = TestServer::start_with(|s| s.super_digest = Some(super_digest.clone()));
    let mut owner = Session::open(srv.addr);
    assert_eq!(owner.auth("digest", b"u:p").err, 0);
    let only_u = [(31, "digest", U_DIGEST)];
    assert_eq!(owner.code(op::CREATE, &wire::create_acl("/locked", b"d", &only_u, 0)), 0);
    assert_eq!(owner.code(op::CREATE, &wire::create_acl("/locked/k", b"", &only_u, 0)), 0);

    let mut admin = Session::open(srv.addr);
    assert_eq!(admin.code(op::GET_DATA, &wire::path_watch("/locked", false)), err::NO_AUTH);
    assert_eq!(admin.auth("digest", b"super:wrong").err, 0);
    assert_eq!(admin.code(op::GET_DATA, &wire::path_watch("/locked", false)), err::NO_AUTH);
    assert_eq!(admin.auth("digest", b"super:secret").err, 0);
    assert_eq!(admin.code(op::GET_DATA, &wire::path_watch("/locked", false)), 0);
    assert_eq!(admin.code(op::SET_DATA, &wire::set_data("/locked", b"x", -1)), 0);
    assert_eq!(admin.code(op::CREATE, &wire::create("/locked/k2", b"", 0)), 0);
    assert_eq!(admin.code(op::DELETE, &wire::delete("/locked/k", -1)), 0);
    let (code, acl) = get_acl(&mut admin, "/locked");
    assert_eq!((code, acl), (0, vec![acl_entry(31, "digest", U_DIGEST)]), "not redacted");
    let set_acl = Enc::new().str("/locked").acls(wire::OPEN).int(-1).done();
    assert_eq!(admin.code(op::SET_ACL, &set_acl), 0);
}

#[test]
fn invalid_acls_are_refused() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let empty: &[(i32, &str, &str)] = &[];
    let cases: &[&[(i32, &str, &str)]] = &[
        empty,
        &[(31, "world", "foo")],
        &[(31, "digest", "nouser")],
        &[(31, "digest", "a:b:c")],
        &[(31, "ip", "300.1.1.1")],
        &[(31, "ip", "abc")],
        &[(31, "ip", "127.0.0.1/33")],
        &[(31, "foo", "bar")],
        &[(31, "auth", "")],
    ];
    assert_eq!(s.create("/n", b"", 0).0.err, 0);
    for (i, acl) in cases.iter().enumerate() {
        let path = format!("/inv{i}");
        let (h, _) = s.call(op::CREATE, &wire::create_acl(&path, b"", acl, 0));
        assert_eq!(h.err, err::INVALID_ACL, "create with {acl:?}");
        let body = Enc::new().str("/n").acls(acl).int(-1).done();
        assert_eq!(s.code(op::SET_ACL, &body), err::INVALID_ACL, "setACL with {acl:?}");
        assert_eq!(s.stat(&path), None);
    }
    let (_, acl) = get_acl(&mut s, "/n");
    assert_eq!(acl, [acl_entry(31, "world", "anyone")]);
    assert_eq!(s.stat("/n").expect("exists").aversion, 0);
}

#[test]
fn get_acl_redacts_digests_for_non_admins() {
    let srv = TestServer::start();
    let mut owner = Session::open(srv.addr);
    let read_and_u = [(1, "world", "anyone"), (31, "digest", U_DIGEST)];
    assert_eq!(owner.code(op::CREATE, &wire::create_acl("/red", b"", &read_and_u, 0)), 0);
    let admin_and_u = [(16, "world", "anyone"), (31, "digest", U_DIGEST)];
    assert_eq!(owner.code(op::CREATE, &wire::create_acl("/adm", b"", &admin_and_u, 0)), 0);
    let write_only = [(2, "world", "anyone")];
    assert_eq!(owner.code(op::CREATE, &wire::create_acl("/wo", b"", &write_only, 0)), 0);

    let mut reader = Session::open(srv.addr);
    let (code, acl) = get_acl(&mut reader, "/red");
    assert_eq!(code, 0);
    assert_eq!(acl, [acl_entry(1, "world", "anyone"), acl_entry(31, "digest", "u:x")]);
    let (_, acl) = get_acl(&mut reader, "/adm");
    assert_eq!(acl, [acl_entry(16, "world", "anyone"), acl_entry(31, "digest", U_DIGEST)]);
    assert_eq!(get_acl(&mut reader, "/wo").0, err::NO_AUTH, "needs READ or ADMIN");
    assert_eq!(reader.auth("digest", b"u:p").err, 0);
    let (_, acl) = get_acl(&mut reader, "/red");
    assert_eq!(acl[1], acl_entry(31, "digest", U_DIGEST));
}

#[test]
fn unknown_auth_scheme_fails_and_closes() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let reply = s.auth("bogus", b"whatever");
    assert_eq!((reply.xid, reply.zxid, reply.err), (-4, 0, err::AUTH_FAILED));
    assert!(s.raw.is_closed(), "AUTHFAILED closes the connection");
    // The server keeps serving others.
    let mut t = Session::open(srv.addr);
    assert_eq!(t.auth("digest", b"u:p").err, 0);
}

#[tokio::test]
async fn unknown_auth_scheme_through_client_is_auth_failed() {
    let srv = TestServer::start();
    let zk = client(&srv).await;
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), zk.auth("bogus", b"x"))
        .await
        .expect("answer within the deadline");
    assert_eq!(r, Err(Error::AuthFailed));
}

#[test]
fn addauth_ip_succeeds_without_new_identities() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    assert_eq!(s.auth("ip", b"anything").err, 0);
    let (h, body) = s.call(op::WHO_AM_I, &[]);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    assert_eq!(d.int(), 1);
    assert_eq!((d.str(), d.str()), ("ip".to_string(), "127.0.0.1".to_string()));
    // Schemes without a provider still fail.
    for scheme in ["world", "super", "auth"] {
        let mut t = Session::open(srv.addr);
        assert_eq!(t.auth(scheme, b"x").err, err::AUTH_FAILED, "{scheme}");
        assert!(t.raw.is_closed());
    }
}
