//! Bad client input: out-of-range frames, broken handshakes, undecodable bodies, unknown
//! opcodes, oversized data and too many connections. Every case ends by checking that the
//! server still serves another client (wire-protocol.md §2, §3, §5, §11.2).
mod harness;

use std::io::Write;
use std::time::Duration;

use harness::wire::{self, err, op, Enc, Session};
use harness::*;

/// A fresh client on the same server can still create and read a node.
fn assert_serving(srv: &TestServer) {
    let mut s = Session::open(srv.addr);
    let path = format!("/healthy-{}", s.id);
    assert_eq!(s.create(&path, b"ok", 0).0.err, 0);
    assert_eq!(s.get_data(&path).0.as_deref(), Some(&b"ok"[..]));
}

fn send_bytes(raw: &mut Raw, bytes: &[u8]) {
    raw.stream.write_all(bytes).expect("write");
}

#[test]
fn negative_frame_length_closes_the_connection() {
    let srv = TestServer::start();
    let mut fresh = Raw::connect(srv.addr);
    send_bytes(&mut fresh, &(-1i32).to_be_bytes());
    assert!(fresh.is_closed(), "before the handshake");
    let mut s = Session::open(srv.addr);
    send_bytes(&mut s.raw, &i32::MIN.to_be_bytes());
    assert!(s.raw.is_closed(), "after the handshake");
    assert_serving(&srv);
}

#[test]
fn frame_length_above_jute_max_buffer_closes_the_connection() {
    let srv = TestServer::start();
    let mut fresh = Raw::connect(srv.addr);
    send_bytes(&mut fresh, &0x10_0000i32.to_be_bytes());
    assert!(fresh.is_closed(), "before the handshake");
    let mut s = Session::open(srv.addr);
    // Only the length prefix is sent: the server decides on it alone.
    send_bytes(&mut s.raw, &0x10_0000i32.to_be_bytes());
    assert!(s.raw.is_closed(), "after the handshake");
    assert_serving(&srv);
}

#[test]
fn frame_at_jute_max_buffer_is_accepted() {
    let srv = TestServer::start_with(|s| s.jute_max_buffer_bytes = 4096);
    let mut s = Session::open(srv.addr);
    // header 8 + path 4+2 + data 4+n + version 4 = 4096
    let n = 4096 - 8 - 6 - 4 - 4;
    s.create("/b", b"", 0);
    let body = wire::set_data("/b", &vec![7u8; n], -1);
    assert_eq!(body.len() + 8, 4096);
    assert_eq!(s.code(op::SET_DATA, &body), 0);
    let body = wire::set_data("/b", &vec![7u8; n + 1], -1);
    s.send(99, op::SET_DATA, &body);
    assert!(s.raw.is_closed(), "one byte more is too long");
    assert_serving(&srv);
}

#[test]
fn data_over_jute_max_buffer_closes_the_connection() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    s.create("/big", b"", 0);
    let body = wire::set_data("/big", &vec![0u8; 0x10_0000], -1);
    s.send(1, op::SET_DATA, &body);
    assert!(s.raw.is_closed());
    let mut t = Session::open(srv.addr);
    assert_eq!(t.stat("/big").expect("exists").data_length, 0);
    assert_serving(&srv);
}

#[test]
fn truncated_or_malformed_connect_request_closes() {
    let srv = TestServer::start();
    let full = wire::connect_request(0, 30_000, 0, &[0; 16], Some(false));
    let bad_passwd_len = Enc::new().int(0).long(0).int(30_000).long(0).int(0x7fff_ffff).done();
    let negative_passwd_len = Enc::new().int(0).long(0).int(30_000).long(0).int(-5).done();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", full[..10].to_vec()),
        ("cut inside the password", full[..30].to_vec()),
        ("password longer than the frame", bad_passwd_len),
        ("negative password length", negative_passwd_len),
    ];
    for (what, payload) in cases {
        let mut raw = Raw::connect(srv.addr);
        raw.send_frame(&payload);
        assert_eq!(raw.read_frame(), None, "{what}: no response");
        assert_serving(&srv);
    }
}

#[test]
fn request_before_handshake_closes() {
    let srv = TestServer::start();
    let mut raw = Raw::connect(srv.addr);
    let mut p = Enc::new().int(1).int(op::GET_DATA).done();
    p.extend_from_slice(&wire::path_watch("/", false));
    raw.send_frame(&p);
    assert_eq!(raw.read_frame(), None);
    let mut raw = Raw::connect(srv.addr);
    raw.send_frame(&Enc::new().int(-2).int(op::PING).done());
    assert_eq!(raw.read_frame(), None);
    assert_serving(&srv);
}

#[test]
fn undecodable_read_gets_marshalling_error_and_keeps_the_connection() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h0, _, _) = s.create("/a", b"", 0);
    let truncated_path = Enc::new().int(10).raw(b"/a").done();
    for read in [op::GET_DATA, op::EXISTS, op::GET_CHILDREN, op::GET_ACL, op::MULTI_READ] {
        let (h, body) = s.call(read, &truncated_path);
        assert_eq!((h.err, h.zxid, body.len()), (err::MARSHALLING_ERROR, h0.zxid, 0), "op {read}");
    }
    // exists without its watch flag.
    assert_eq!(s.code(op::EXISTS, &Enc::new().str("/").done()), err::MARSHALLING_ERROR);
    assert!(s.stat("/a").is_some(), "the connection is still usable");
    assert_serving(&srv);
}

#[test]
fn undecodable_write_gets_error_reply_and_consumes_a_zxid() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h0, _, _) = s.create("/a", b"", 0);
    let mut zxid = h0.zxid;
    let truncated_path = Enc::new().int(10).raw(b"/a").done();
    let cases: Vec<(i32, Vec<u8>)> = vec![
        (op::CREATE, truncated_path.clone()),
        (op::DELETE, truncated_path.clone()),
        (op::SET_DATA, Enc::new().str("/a").done()),
        (op::SET_ACL, Enc::new().str("/a").int(5).done()),
        (op::MULTI, Enc::new().int(1).done()),
    ];
    for (write, body) in cases {
        let (h, rest) = s.call(write, &body);
        zxid += 1;
        assert_eq!((h.err, h.zxid, rest.len()), (err::MARSHALLING_ERROR, zxid, 0), "op {write}");
    }
    let (data, stat) = s.get_data("/a");
    assert_eq!((data.map(|d| d.len()), stat.version, stat.aversion), (Some(0), 0, 0));
    assert_serving(&srv);
}

#[test]
fn unknown_opcode_gets_unimplemented_with_zxid_minus_one_then_close() {
    let srv = TestServer::start();
    for code in [999, 0, -100, 10, 1000] {
        let mut s = Session::open(srv.addr);
        s.create(&format!("/n{}", s.id), b"", 0);
        let (h, body) = s.call(code, &[]);
        assert_eq!((h.err, h.zxid, body.len()), (err::UNIMPLEMENTED, -1, 0), "opcode {code}");
        assert!(s.raw.is_closed(), "opcode {code}");
    }
    assert_serving(&srv);
}

#[test]
fn top_level_check_is_unimplemented_then_close() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h, _) = s.call(op::CHECK, &Enc::new().str("/").int(-1).done());
    assert_eq!((h.err, h.zxid), (err::UNIMPLEMENTED, -1));
    assert!(s.raw.is_closed());
    assert_serving(&srv);
}

#[test]
fn max_client_cnxns_refuses_the_extra_connection() {
    let srv = TestServer::start_with(|s| s.max_client_cnxns = std::num::NonZeroU32::new(3));
    let mut sessions: Vec<Session> = (0..3).map(|_| Session::open(srv.addr)).collect();
    let mut extra = Raw::connect(srv.addr);
    extra.send_frame(&wire::connect_request(0, 30_000, 0, &[0; 16], Some(false)));
    assert_eq!(extra.read_frame(), None, "the fourth connection from 127.0.0.1 is closed");
    for s in &mut sessions {
        assert!(s.stat("/").is_some(), "the first three keep working");
    }
    // Once one goes away there is room again (the server notices the close asynchronously).
    drop(sessions.pop());
    let mut again = None;
    let ok = wait_until(Duration::from_secs(5), || {
        let mut raw = Raw::connect(srv.addr);
        raw.send_frame(&wire::connect_request(0, 30_000, 0, &[0; 16], Some(false)));
        match raw.read_frame() {
            Some(f) => {
                again = Some(f);
                true
            }
            None => false,
        }
    });
    assert!(ok, "a slot frees up when a connection closes");
    assert!(wire::parse_connect_response(&again.expect("response")).timeout_ms > 0);
}

#[test]
fn garbage_after_four_letter_word_prefix_is_not_a_frame() {
    // "ruok" is recognised only as the first four bytes; as a later frame length it is
    // simply too long and closes the connection.
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    send_bytes(&mut s.raw, b"ruok");
    assert!(s.raw.is_closed());
    assert_serving(&srv);
}

#[test]
fn frames_split_across_writes_are_reassembled() {
    let srv = TestServer::start();
    let mut raw = Raw::connect(srv.addr);
    let connect = wire::connect_request(0, 30_000, 0, &[0; 16], Some(false));
    let mut framed = (connect.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&connect);
    for b in &framed {
        send_bytes(&mut raw, &[*b]);
        raw.stream.flush().expect("flush");
    }
    let c = wire::parse_connect_response(&raw.read_frame().expect("ConnectResponse"));
    assert!(c.timeout_ms > 0);
    let mut req = Enc::new().int(1).int(op::CREATE).done();
    req.extend_from_slice(&wire::create("/split", b"data", 0));
    let mut framed = (req.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&req);
    // Split inside the length prefix and inside the body.
    send_bytes(&mut raw, &framed[..2]);
    send_bytes(&mut raw, &framed[2..9]);
    send_bytes(&mut raw, &framed[9..]);
    let (h, body) = wire::split_reply(&raw.read_frame().expect("reply"));
    assert_eq!((h.xid, h.err), (1, 0));
    assert_eq!(wire::Dec::new(&body).str(), "/split");
    assert_serving(&srv);
}

#[test]
fn a_client_vanishing_mid_frame_does_not_disturb_others() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    send_bytes(&mut s.raw, &[0, 0, 1, 0, 1, 2, 3]);
    drop(s);
    let mut fresh = Raw::connect(srv.addr);
    send_bytes(&mut fresh, &[0, 0]);
    drop(fresh);
    assert_serving(&srv);
}
