//! Admission limits ZooKeeper has keys for: the connection throttle
//! (`zookeeper.connection_throttle_*`, Apache's BlueThrottle) and the large-request budget
//! (`zookeeper.largeRequestThreshold` / `largeRequestMaxBytes`). A refused client is
//! disconnected with a log line and counted in mntr; other clients keep being served.
mod harness;

use harness::wire::{self, connect_request, op, Session};
use harness::*;
use rzk::config::ThrottleConfig;

fn mntr_value(srv: &TestServer, key: &str) -> String {
    mntr(srv.addr, &format!("zk_{key}")).unwrap_or_else(|| panic!("zk_{key} in mntr"))
}

/// A handshake on a fresh connection: the session id, or `None` if the server closed the
/// connection instead of answering.
fn try_session(srv: &TestServer, session: i64, passwd: &[u8]) -> Option<i64> {
    let mut raw = Raw::connect(srv.addr);
    raw.send_frame(&connect_request(0, 30_000, session, passwd, Some(false)));
    let frame = raw.read_frame()?;
    Some(wire::parse_connect_response(&frame).session)
}

#[test]
fn the_connection_throttle_refuses_session_requests_past_its_bucket() {
    // Three tokens that refill one per minute: three sessions, then refusals.
    let srv = TestServer::start_with(|c| {
        c.connection_throttle =
            ThrottleConfig { tokens: 3, fill_time_ms: 60_000, ..ThrottleConfig::default() };
    });
    let first = Session::open(srv.addr);
    for _ in 0..2 {
        assert!(try_session(&srv, 0, &[0; 16]).is_some());
    }
    assert_eq!(try_session(&srv, 0, &[0; 16]), None, "a fourth session within the minute");
    // A re-attach costs a token too (one each without weighing).
    assert_eq!(try_session(&srv, first.id, &first.passwd), None);
    assert_eq!(mntr_value(&srv, "connection_rejected"), "2");
    // The established session is untouched.
    let mut first = first;
    assert_eq!(first.create("/still-served", b"", 0).0.err, 0);
}

#[test]
fn the_connection_throttle_is_off_by_default() {
    let srv = TestServer::start();
    for _ in 0..50 {
        assert!(try_session(&srv, 0, &[0; 16]).is_some());
    }
    assert_eq!(mntr_value(&srv, "connection_rejected"), "0");
    assert_eq!(mntr_value(&srv, "connection_drop_probability"), "0.0");
}

#[test]
fn a_request_over_the_large_request_budget_closes_its_connection() {
    let srv = TestServer::start_with(|c| {
        c.large_request_threshold = Some(1_000);
        c.large_request_max_bytes = 3_000;
    });
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/large", b"", 0).0.err, 0);
    // Large (over 1000 bytes) but within the 3000-byte budget: served.
    let fits = wire::set_data("/large", &[7; 2_000], -1);
    assert_eq!(s.code(op::SET_DATA, &fits), 0);
    // Small requests never count.
    assert_eq!(s.code(op::SET_DATA, &wire::set_data("/large", &[1; 900], -1)), 0);
    // 4000 bytes can never fit in 3000: the connection is closed before the body is read.
    s.send(99, op::SET_DATA, &wire::set_data("/large", &[9; 4_000], -1));
    assert!(s.raw.is_closed(), "the large request's connection");
    assert_eq!(mntr_value(&srv, "large_requests_rejected"), "1");
    let mut other = Session::open(srv.addr);
    let (data, _) = other.get_data("/large");
    assert_eq!(data.as_deref(), Some(&[1u8; 900][..]), "the rejected write was not applied");
}

#[test]
fn the_large_request_budget_is_given_back_when_requests_are_answered() {
    let srv = TestServer::start_with(|c| {
        c.large_request_threshold = Some(1_000);
        c.large_request_max_bytes = 5_000;
    });
    let mut s = Session::open(srv.addr);
    assert_eq!(s.create("/again", b"", 0).0.err, 0);
    // Far more large bytes in total than the budget, one at a time: each answered request
    // returns its bytes.
    for i in 0..50u8 {
        assert_eq!(s.code(op::SET_DATA, &wire::set_data("/again", &[i; 4_000], -1)), 0);
    }
    assert_eq!(mntr_value(&srv, "large_requests_rejected"), "0");
}
