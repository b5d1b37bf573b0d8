//! The client's wire behaviour checked against a scripted fake server (no Java needed):
//! handshake fields, read-only servers, expiry, xid mismatch, and what a reconnect re-sends
//! (session id, password, last zxid, auth packets, setWatches).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use rzk::client::{ClientConfig, State, WatchedEvent, Watcher};
use rzk::jute::data::Stat;
use rzk::jute::proto::{
    AuthPacket, ConnectRequest, ConnectResponse, GetDataResponse, PathWatchRequest, ReplyHeader,
    RequestHeader, SetWatches, StatResponse,
};
use rzk::jute::{Jute, Reader};
use rzk::proto::{xid, ErrorCode, KeeperState, OpCode};

const T: Duration = Duration::from_secs(20);
const PASSWD: [u8; 16] = [7; 16];

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("frame length");
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).expect("frame body");
    buf
}

fn write_frame(s: &mut TcpStream, payload: &[u8]) {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    s.write_all(&out).expect("write frame");
}

fn handshake(s: &mut TcpStream, read_only: bool, time_out: i32) -> ConnectRequest {
    let req = ConnectRequest::from_bytes(&read_frame(s)).expect("ConnectRequest");
    let resp = ConnectResponse {
        protocol_version: 0,
        time_out,
        session_id: if time_out > 0 { 0x1234 } else { 0 },
        passwd: if time_out > 0 { PASSWD.to_vec() } else { vec![0; 16] },
        read_only: Some(read_only),
    };
    write_frame(s, &resp.to_bytes());
    req
}

/// Reads requests until one that is not a ping; returns its header and body.
fn next_request(s: &mut TcpStream) -> (RequestHeader, Vec<u8>) {
    for _ in 0..1000 {
        let f = read_frame(s);
        let mut r = Reader::new(&f);
        let h = RequestHeader::decode(&mut r).expect("header");
        if h.xid == xid::PING {
            write_frame(s, &ReplyHeader { xid: xid::PING, zxid: 1, err: 0 }.to_bytes());
            continue;
        }
        return (h, r.rest().to_vec());
    }
    panic!("only pings");
}

fn reply(s: &mut TcpStream, xid: i32, zxid: i64, err: i32, body: &[u8]) {
    let mut out = ReplyHeader { xid, zxid, err }.to_bytes();
    out.extend_from_slice(body);
    write_frame(s, &out);
}

fn fake() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("127.0.0.1:{}", l.local_addr().expect("addr").port());
    (l, addr)
}

fn client(
    addr: &str,
    read_only: bool,
) -> (rzk::client::Client, crossbeam_channel::Receiver<WatchedEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let c = ClientConfig::new(addr, Duration::from_secs(30))
        .watcher(Watcher::channel(tx))
        .can_be_read_only(read_only)
        .connect()
        .expect("client");
    (c, rx)
}

#[test]
fn read_only_server_gives_connected_read_only() {
    let (l, addr) = fake();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let req = handshake(&mut s, true, 30_000);
        assert_eq!(req.read_only, Some(true));
        assert_eq!(req.base.session_id, 0);
        assert_eq!(req.base.passwd, Some(vec![0; 16]));
        let (h, body) = next_request(&mut s);
        assert_eq!((h.xid, h.op_type), (1, OpCode::Exists.code()));
        let r = PathWatchRequest::from_bytes(&body).expect("exists body");
        assert_eq!((r.path.as_str(), r.watch), ("/x", false));
        let stat = Stat { version: 3, ..Stat::default() };
        reply(&mut s, 1, 9, 0, &StatResponse { stat }.to_bytes());
        s
    });
    let (c, events) = client(&addr, true);
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::ConnectedReadOnly);
    assert_eq!(c.state(), State::ConnectedReadOnly);
    assert_eq!(c.exists("/x", false).unwrap().map(|s| s.version), Some(3));
    let _keep_open = server.join().expect("fake server");
}

#[test]
fn zero_timeout_in_connect_response_expires_the_client() {
    let (l, addr) = fake();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        handshake(&mut s, false, 0);
        s
    });
    let (c, events) = client(&addr, false);
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::Expired);
    assert_eq!(c.state(), State::Expired);
    assert_eq!(c.exists("/", false).unwrap_err().code(), ErrorCode::SessionExpired);
    drop(server.join());
}

#[test]
fn reconnect_resends_session_auth_and_watches_and_xid_mismatch_is_fatal() {
    let (l, addr) = fake();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let req = handshake(&mut s, false, 30_000);
        assert_eq!(req.read_only, Some(false));
        // addAuth goes out at once, with xid -4.
        let (h, body) = next_request(&mut s);
        assert_eq!((h.xid, h.op_type), (xid::AUTH, OpCode::Auth.code()));
        let auth = AuthPacket::from_bytes(&body).expect("auth");
        assert_eq!((auth.scheme.as_str(), auth.auth.as_deref()), ("digest", Some(&b"u:p"[..])));
        reply(&mut s, xid::AUTH, 0, 0, &[]);
        // getData with a watch, answered with zxid 0x55.
        let (h, body) = next_request(&mut s);
        assert_eq!((h.xid, h.op_type), (1, OpCode::GetData.code()));
        assert!(PathWatchRequest::from_bytes(&body).expect("body").watch);
        let data = GetDataResponse { data: Some(b"d".to_vec()), stat: Stat::default() };
        reply(&mut s, 1, 0x55, 0, &data.to_bytes());
        // The next request gets a reply with the wrong xid: the client must drop us.
        let (h, _) = next_request(&mut s);
        assert_eq!(h.xid, 2);
        reply(&mut s, 77, 0x56, 0, &[]);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        // Second connection: same session, last zxid, then auth, then setWatches.
        let (mut s, _) = l.accept().expect("second accept");
        let req = handshake(&mut s, false, 30_000);
        assert_eq!(req.base.session_id, 0x1234);
        assert_eq!(req.base.passwd, Some(PASSWD.to_vec()));
        assert_eq!(req.base.last_zxid_seen, 0x55);
        let (h, _) = next_request(&mut s);
        assert_eq!((h.xid, h.op_type), (xid::AUTH, OpCode::Auth.code()));
        reply(&mut s, xid::AUTH, 0, 0, &[]);
        let (h, body) = next_request(&mut s);
        assert_eq!((h.xid, h.op_type), (xid::SET_WATCHES, OpCode::SetWatches.code()));
        let sw = SetWatches::from_bytes(&body).expect("setWatches");
        assert_eq!(sw.relative_zxid, 0x55);
        assert_eq!(sw.data_watches, vec!["/app/w".to_owned()]);
        reply(&mut s, xid::SET_WATCHES, 0x55, 0, &[]);
        // Requests continue with the next xid.
        let (h, _) = next_request(&mut s);
        assert_eq!((h.xid, h.op_type), (3, OpCode::Exists.code()));
        reply(&mut s, 3, 0x55, ErrorCode::NoNode.code(), &[]);
        s
    });
    let (c, events) = client(&format!("{addr}/app"), false);
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::SyncConnected);
    c.add_auth("digest", b"u:p");
    let (w, _wrx) = {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Watcher::channel(tx), rx)
    };
    assert_eq!(c.get_data("/w", &w).unwrap().0, b"d");
    assert_eq!(c.exists("/y", false).unwrap_err().code(), ErrorCode::ConnectionLoss);
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::Disconnected);
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::SyncConnected);
    assert_eq!(c.exists("/z", false).unwrap(), None);
    let _keep_open = server.join().expect("fake server");
}

#[test]
fn request_timeout_fails_the_request_and_reconnects() {
    let (l, addr) = fake();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        handshake(&mut s, false, 30_000);
        let (h, _) = next_request(&mut s);
        assert_eq!(h.xid, 1);
        // Never answer; the client gives up on the request and reconnects.
        let (mut s2, _) = l.accept().expect("second accept");
        let req = handshake(&mut s2, false, 30_000);
        assert_eq!(req.base.session_id, 0x1234);
        (s, s2)
    });
    let (tx, events) = crossbeam_channel::unbounded();
    let c = ClientConfig::new(&addr, Duration::from_secs(30))
        .watcher(Watcher::channel(tx))
        .request_timeout(Duration::from_millis(300))
        .connect()
        .expect("client");
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::SyncConnected);
    let err = c.exists("/slow", false).unwrap_err();
    assert!(matches!(err, rzk::client::Error::Timeout), "{err:?}");
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::Disconnected);
    assert_eq!(events.recv_timeout(T).unwrap().state, KeeperState::SyncConnected);
    let _keep_open = server.join().expect("fake server");
}

#[test]
fn read_only_client_moves_to_a_read_write_server_it_finds() {
    let (ro, ro_addr) = fake();
    let (rw, rw_addr) = fake();
    // The read-only server: serves the session until the client leaves.
    let ro_thread = std::thread::spawn(move || {
        let (mut s, _) = ro.accept().expect("accept");
        let req = handshake(&mut s, true, 30_000);
        assert_eq!(req.read_only, Some(true));
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    // The read-write server: refuses sessions until probed with `isro`, so the client is
    // certain to start on the read-only one whatever the host order.
    let rw_thread = std::thread::spawn(move || {
        let mut probed = false;
        for _ in 0..100 {
            let (mut s, _) = rw.accept().expect("accept");
            let mut head = [0u8; 4];
            if s.read_exact(&mut head).is_err() {
                continue;
            }
            if &head == b"isro" {
                let _ = s.write_all(b"rw");
                probed = true;
                continue;
            }
            if !probed {
                continue; // dropped: connection closed without a response
            }
            let len = i32::from_be_bytes(head) as usize;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).expect("ConnectRequest body");
            let req = ConnectRequest::from_bytes(&body).expect("ConnectRequest");
            // The session came from a read-only server: a new one is asked for.
            assert_eq!(req.base.session_id, 0);
            let resp = ConnectResponse {
                protocol_version: 0,
                time_out: 30_000,
                session_id: 0x5678,
                passwd: PASSWD.to_vec(),
                read_only: Some(false),
            };
            write_frame(&mut s, &resp.to_bytes());
            return s;
        }
        panic!("no session request after the probe");
    });
    let (c, events) = client(&format!("{ro_addr},{rw_addr}"), true);
    let mut states = Vec::new();
    for _ in 0..10 {
        let e = events.recv_timeout(T).expect("state event");
        states.push(e.state);
        if e.state == KeeperState::SyncConnected {
            break;
        }
    }
    assert_eq!(
        states,
        vec![KeeperState::ConnectedReadOnly, KeeperState::Disconnected, KeeperState::SyncConnected]
    );
    assert_eq!(c.state(), State::Connected);
    assert_eq!(c.session_id().0, 0x5678);
    // Closing the fake's socket first lets the close finish at once.
    drop(rw_thread.join().expect("rw fake"));
    drop(c);
    ro_thread.join().expect("ro fake");
}
