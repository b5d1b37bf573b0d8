//! Sessions: handshake variants, timeout negotiation, expiry, closeSession, re-attach, ping
//! (wire-protocol.md §3, §4, §12; data-model.md §9).
mod harness;

use std::time::Duration;

use harness::wire::{self, err, event, op, Session};
use harness::*;
use zookeeper_client::{Acls, Client, CreateMode, EventType};

const WAIT: Duration = Duration::from_secs(5);

/// The Java server's session password: java.util.Random seeded with id ^ 0xB3415C00,
/// 16 bytes (wire-protocol.md §3.3), written here independently of the server.
fn java_password(session: i64) -> Vec<u8> {
    let mask = (1u64 << 48) - 1;
    let mut seed = ((session ^ 0xB341_5C00) as u64 ^ 0x5_DEEC_E66D) & mask;
    let mut out = Vec::new();
    for _ in 0..4 {
        seed = (seed.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & mask;
        let r = (seed >> 16) as u32;
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}

fn connect_raw(srv: &TestServer, payload: &[u8]) -> (Raw, Option<Vec<u8>>) {
    let mut raw = Raw::connect(srv.addr);
    raw.send_frame(payload);
    let reply = raw.read_frame();
    (raw, reply)
}

#[test]
fn password_derivation_matches_reference_check_value() {
    let expected = [
        0xdb, 0xc5, 0xda, 0xd6, 0xba, 0xe8, 0x19, 0xf9, 0x5d, 0x5f, 0xd3, 0x50, 0x2c, 0xa0, 0xd9,
        0xbe,
    ];
    assert_eq!(java_password(0x0100_000b_ac35_0002), expected);
}

#[test]
fn new_session_response_is_37_bytes_with_java_password() {
    let srv = TestServer::start();
    let req = wire::connect_request(0, 30_000, 0, &[0; 16], Some(false));
    assert_eq!(req.len(), 45);
    let (_, reply) = connect_raw(&srv, &req);
    let reply = reply.expect("ConnectResponse");
    assert_eq!(reply.len(), 37);
    let c = wire::parse_connect_response(&reply);
    assert_eq!((c.timeout_ms, c.read_only), (30_000, Some(false)));
    assert_eq!(c.session >> 56, 1, "standalone session ids carry server id 1 in the top byte");
    assert_eq!(c.passwd, java_password(c.session));
    let next = Session::open(srv.addr);
    assert_eq!(next.id, c.session + 1, "ids are allocated consecutively");
}

#[test]
fn timeout_is_clamped_to_min_and_max() {
    let srv = TestServer::start_with(|s| {
        s.session_timeouts = harness::timeouts(1_000, 10_000);
    });
    for (asked, got) in
        [(1, 1_000), (999, 1_000), (5_000, 5_000), (10_000, 10_000), (99_999, 10_000)]
    {
        let s = Session::open_with_timeout(srv.addr, asked);
        assert_eq!(s.timeout_ms, got, "asked {asked}");
    }
}

#[tokio::test]
async fn client_sees_negotiated_timeout() {
    let srv = TestServer::start_with(|s| s.session_timeouts = harness::timeouts(400, 10_000));
    let zk = Client::connector()
        .with_session_timeout(Duration::from_secs(100))
        .connect(&srv.connect_string())
        .await
        .expect("connect");
    assert_eq!(zk.session_timeout(), Duration::from_secs(10));
}

#[tokio::test]
async fn expired_session_deletes_ephemerals_and_fires_watches() {
    let srv = TestServer::start();
    let watcher = Client::connect(&srv.connect_string()).await.expect("connect");
    // 1 s leaves the watcher ample time to register before the expiry, even on a busy machine.
    let mut doomed = Session::open_with_timeout(srv.addr, 1_000);
    assert_eq!(doomed.timeout_ms, 1_000);
    assert_eq!(doomed.create("/dir", b"", 0).0.err, 0);
    let last_touch = std::time::Instant::now();
    assert_eq!(doomed.create("/dir/eph", b"", 1).0.err, 0);

    let (stat, node_watch) = watcher.check_and_watch_stat("/dir/eph").await.expect("watch");
    assert_eq!(stat.expect("exists").ephemeral_owner, doomed.id);
    let (_, dir_watch) = watcher.list_and_watch_children("/dir").await.expect("watch");

    // The doomed session sends nothing more: it expires after 1000..1200 ms.
    let e = tokio::time::timeout(WAIT, node_watch.changed()).await.expect("expiry");
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeDeleted, "/dir/eph"));
    assert!(last_touch.elapsed() >= Duration::from_millis(1_000), "not before the timeout");
    let e = tokio::time::timeout(WAIT, dir_watch.changed()).await.expect("expiry");
    assert_eq!((e.event_type, e.path.as_str()), (EventType::NodeChildrenChanged, "/dir"));
    assert_eq!(watcher.check_stat("/dir/eph").await.expect("exists"), None);

    // Its connection was closed without a message, and re-attaching reports expiry.
    assert!(doomed.raw.is_closed());
    let req = wire::connect_request(0, 1_000, doomed.id, &doomed.passwd, Some(false));
    let (mut raw, reply) = connect_raw(&srv, &req);
    let c = wire::parse_connect_response(&reply.expect("ConnectResponse"));
    assert_eq!((c.timeout_ms, c.session, c.passwd), (0, 0, vec![0; 16]));
    assert!(raw.is_closed());
}

#[test]
fn close_session_deletes_ephemerals_replies_then_closes() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    assert_eq!(a.create("/e", b"", 1).0.err, 0);
    assert_eq!(a.create("/s-", b"", 3).0.err, 0);
    assert_eq!(b.code(op::EXISTS, &wire::path_watch("/e", true)), 0);
    let (h, body) = a.call(op::CLOSE_SESSION, &[]);
    assert_eq!((h.err, body.len()), (0, 0));
    assert!(h.zxid > 0, "closeSession is a txn");
    assert!(a.raw.is_closed(), "EOF right after the reply");
    assert_eq!(b.stat("/e"), None);
    assert_eq!(b.stat("/").expect("root").num_children, 1);
    assert_eq!(b.next_event().kind, event::NODE_DELETED);

    // The closed session cannot be resumed.
    let req = wire::connect_request(0, 30_000, a.id, &a.passwd, Some(false));
    let (_, reply) = connect_raw(&srv, &req);
    assert_eq!(wire::parse_connect_response(&reply.expect("response")).timeout_ms, 0);
}

#[tokio::test]
async fn client_close_deletes_its_ephemerals() {
    let srv = TestServer::start();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    zk.create("/client-eph", b"", &eph).await.expect("create");
    let other = Client::connect(&srv.connect_string()).await.expect("connect");
    let (_, watcher) = other.check_and_watch_stat("/client-eph").await.expect("watch");
    drop(zk);
    let e = tokio::time::timeout(WAIT, watcher.changed()).await.expect("event");
    assert_eq!(e.event_type, EventType::NodeDeleted);
}

#[test]
fn reattaching_with_id_and_password_keeps_the_session() {
    let srv = TestServer::start();
    let mut first = Session::open(srv.addr);
    assert_eq!(first.create("/mine", b"", 1).0.err, 0);

    let req = wire::connect_request(0, 20_000, first.id, &first.passwd, Some(false));
    let (raw, reply) = connect_raw(&srv, &req);
    let c = wire::parse_connect_response(&reply.expect("ConnectResponse"));
    assert_eq!((c.timeout_ms, c.session), (20_000, first.id));
    assert_eq!(c.passwd, first.passwd);
    assert!(first.raw.is_closed(), "the second connection closes the first");

    let mut second = Session { raw, ..first };
    let (h, body) = second.call(op::GET_EPHEMERALS, &wire::path("/"));
    assert_eq!(h.err, 0);
    assert_eq!(wire::Dec::new(&body).strs(), ["/mine"]);
    assert_eq!(second.stat("/mine").expect("still there").ephemeral_owner, second.id);
}

#[test]
fn wrong_password_gets_expired_response_and_close() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut bad = a.passwd.clone();
    bad[0] ^= 1;
    let req = wire::connect_request(0, 30_000, a.id, &bad, Some(false));
    let (mut raw, reply) = connect_raw(&srv, &req);
    let reply = reply.expect("ConnectResponse");
    assert_eq!(reply.len(), 37);
    let c = wire::parse_connect_response(&reply);
    assert_eq!((c.timeout_ms, c.session, c.passwd), (0, 0, vec![0; 16]));
    assert!(raw.is_closed());
    // As in ZooKeeper, the attached connection was closed before the password check...
    assert!(a.raw.is_closed());
    // ...but the session itself is unharmed.
    let req = wire::connect_request(0, 30_000, a.id, &a.passwd, Some(false));
    let (_, reply) = connect_raw(&srv, &req);
    let c = wire::parse_connect_response(&reply.expect("ConnectResponse"));
    assert_eq!((c.timeout_ms, c.session), (30_000, a.id));
}

#[test]
fn old_client_without_read_only_flag_gets_36_byte_response() {
    let srv = TestServer::start();
    let req = wire::connect_request(0, 30_000, 0, &[0; 16], None);
    assert_eq!(req.len(), 44);
    let (raw, reply) = connect_raw(&srv, &req);
    let reply = reply.expect("ConnectResponse");
    assert_eq!(reply.len(), 36);
    let c = wire::parse_connect_response(&reply);
    assert_eq!((c.timeout_ms, c.read_only), (30_000, None));
    let mut s = Session {
        raw,
        id: c.session,
        passwd: c.passwd.clone(),
        timeout_ms: c.timeout_ms,
        xid: 0,
        events: Vec::new(),
    };
    assert!(s.stat("/").is_some(), "the old client is served");

    // Re-attaching the old way also gets the short form.
    let req = wire::connect_request(0, 30_000, c.session, &c.passwd, None);
    let (_, reply) = connect_raw(&srv, &req);
    assert_eq!(reply.expect("ConnectResponse").len(), 36);
}

#[test]
fn client_ahead_of_server_is_refused_without_response() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let (h, _, _) = a.create("/z", b"", 0);
    let req = wire::connect_request(h.zxid + 1, 30_000, 0, &[0; 16], Some(false));
    let (_, reply) = connect_raw(&srv, &req);
    assert_eq!(reply, None, "EOF, no ConnectResponse");
    let req = wire::connect_request(h.zxid, 30_000, 0, &[0; 16], Some(false));
    let (_, reply) = connect_raw(&srv, &req);
    assert!(reply.is_some(), "a client exactly up to date is accepted");
}

#[test]
fn ping_reply_is_header_with_last_zxid() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let (h, _, _) = a.create("/p", b"", 0);
    a.send(-2, op::PING, &[]);
    let f = a.raw.read_frame().expect("ping reply");
    assert_eq!(f.len(), 16, "header only");
    let (r, _) = wire::split_reply(&f);
    assert_eq!((r.xid, r.zxid, r.err), (-2, h.zxid, 0));
}

#[test]
fn pings_keep_a_short_session_alive() {
    let srv = TestServer::start();
    let mut a = Session::open_with_timeout(srv.addr, 400);
    assert_eq!(a.create("/alive", b"", 1).0.err, 0);
    let start = std::time::Instant::now();
    // 1.5 s of pings every 100 ms: well past the 400 ms timeout.
    while start.elapsed() < Duration::from_millis(1500) {
        a.send(-2, op::PING, &[]);
        let (r, _) = wire::split_reply(&a.raw.read_frame().expect("ping reply"));
        assert_eq!(r.err, 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(a.stat("/alive").is_some());
}

#[test]
fn requests_after_expiry_are_not_served() {
    let srv = TestServer::start();
    let mut a = Session::open_with_timeout(srv.addr, 400);
    let mut b = Session::open(srv.addr);
    assert_eq!(a.create("/gone-soon", b"", 1).0.err, 0);
    assert!(wait_until(WAIT, || b.stat("/gone-soon").is_none()), "expired");
    assert!(a.raw.is_closed());
    assert_eq!(b.code(op::EXISTS, &wire::path_watch("/gone-soon", false)), err::NO_NODE);
}

#[test]
fn read_only_client_on_read_write_server_gets_read_only_false() {
    let srv = TestServer::start();
    let req = wire::connect_request(0, 30_000, 0, &[0; 16], Some(true));
    let (_, reply) = connect_raw(&srv, &req);
    let c = wire::parse_connect_response(&reply.expect("ConnectResponse"));
    assert!(c.timeout_ms > 0);
    assert_eq!(c.read_only, Some(false));
}

#[test]
fn close_session_pipelined_after_ephemeral_creates_deletes_them() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    let mut b = Session::open(srv.addr);
    // No waiting between the requests: the close is prepared while the creates are in flight.
    a.send(1, op::CREATE, &wire::create("/p1", b"", 1));
    a.send(2, op::CREATE, &wire::create("/p2", b"", 1));
    a.send(3, op::DELETE, &wire::delete("/p2", -1));
    a.send(4, op::CREATE, &wire::create("/p3", b"", 3));
    a.send(5, op::CLOSE_SESSION, &[]);
    for xid in 1..=5 {
        assert_eq!(a.reply_to(xid).0.err, 0, "xid {xid}");
    }
    assert!(a.raw.is_closed());
    let (h, body) = b.call(op::GET_CHILDREN, &wire::path_watch("/", false));
    assert_eq!(h.err, 0);
    assert_eq!(wire::Dec::new(&body).strs(), ["zookeeper"]);
}

#[test]
fn get_ephemerals_with_blank_prefix_lists_all() {
    let srv = TestServer::start();
    let mut a = Session::open(srv.addr);
    a.create("/x1", b"", 1);
    a.create("/y1", b"", 1);
    for prefix in ["", " ", "/"] {
        let (h, body) = a.call(op::GET_EPHEMERALS, &wire::path(prefix));
        assert_eq!(h.err, 0);
        let mut got = wire::Dec::new(&body).strs();
        got.sort();
        assert_eq!(got, ["/x1", "/y1"], "prefix {prefix:?}");
    }
}

/// An auth packet pipelined right behind the ConnectRequest is answered after the
/// ConnectResponse (ZooKeeper does not read past the ConnectRequest until the session exists).
#[test]
fn requests_behind_the_connect_request_wait_for_the_session() {
    use rzk::jute::proto::{AuthPacket, ConnectRequest, ConnectRequestBase, ConnectResponse};
    use rzk::jute::proto::{ReplyHeader, RequestHeader};
    use rzk::jute::Jute;
    use std::io::Write;
    let srv = harness::TestServer::start();
    let mut raw = harness::Raw::connect(srv.addr);
    let connect = ConnectRequest {
        base: ConnectRequestBase {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        },
        read_only: Some(false),
    }
    .to_bytes();
    let mut auth = RequestHeader { xid: -4, op_type: 100 }.to_bytes();
    AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"u:p".to_vec()) }
        .encode(&mut auth);
    let mut both = Vec::new();
    for p in [&connect, &auth] {
        both.extend_from_slice(&(p.len() as i32).to_be_bytes());
        both.extend_from_slice(p);
    }
    raw.stream.write_all(&both).unwrap();
    let first = raw.read_frame().expect("connect response");
    let resp = ConnectResponse::from_bytes(&first).expect("the first frame is the ConnectResponse");
    assert!(resp.session_id != 0 && resp.time_out > 0);
    let second = raw.read_frame().expect("auth reply");
    let h = ReplyHeader::from_bytes(&second).unwrap();
    assert_eq!((h.xid, h.err), (-4, 0));
}
