//! A small jute encoder/decoder written from the wire reference (wire-protocol.md §1, §6),
//! independent of the server's own `rzk::jute`, so raw-socket tests do not check the server
//! against itself.
#![allow(dead_code)]

use std::net::SocketAddr;

use super::Raw;

/// Opcodes (wire-protocol.md §5).
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CLOSE_SESSION: i32 = -11;
}

/// Error codes (wire-protocol.md §8).
pub mod err {
    pub const OK: i32 = 0;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const MARSHALLING_ERROR: i32 = -5;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const SESSION_EXPIRED: i32 = -112;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const NO_WATCHER: i32 = -121;
}

/// Watch event types (wire-protocol.md §9.1).
pub mod event {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// Builds a record field by field.
#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn new() -> Enc {
        Enc(Vec::new())
    }
    pub fn int(mut self, v: i32) -> Enc {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: i64) -> Enc {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn boolean(mut self, v: bool) -> Enc {
        self.0.push(v as u8);
        self
    }
    pub fn str(self, s: &str) -> Enc {
        self.buf(Some(s.as_bytes()))
    }
    pub fn buf(mut self, b: Option<&[u8]>) -> Enc {
        match b {
            None => self.int(-1),
            Some(b) => {
                self = self.int(b.len() as i32);
                self.0.extend_from_slice(b);
                self
            }
        }
    }
    pub fn strs(mut self, v: &[&str]) -> Enc {
        self = self.int(v.len() as i32);
        for s in v {
            self = self.str(s);
        }
        self
    }
    /// `vector<ACL>` from `(perms, scheme, id)` triples.
    pub fn acls(mut self, v: &[(i32, &str, &str)]) -> Enc {
        self = self.int(v.len() as i32);
        for (p, scheme, id) in v {
            self = self.int(*p).str(scheme).str(id);
        }
        self
    }
    pub fn raw(mut self, b: &[u8]) -> Enc {
        self.0.extend_from_slice(b);
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a record field by field; panics on short input (a test failure).
pub struct Dec<'a> {
    b: &'a [u8],
    pub pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8]) -> Dec<'a> {
        Dec { b, pos: 0 }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.pos + n <= self.b.len(), "record too short: need {n} at {}", self.pos);
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn int(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    pub fn long(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    pub fn boolean(&mut self) -> bool {
        self.take(1)[0] != 0
    }
    pub fn buf(&mut self) -> Option<Vec<u8>> {
        let n = self.int();
        if n < 0 {
            return None;
        }
        Some(self.take(n as usize).to_vec())
    }
    pub fn str(&mut self) -> String {
        String::from_utf8(self.buf().expect("non-null string")).expect("utf-8")
    }
    pub fn strs(&mut self) -> Vec<String> {
        let n = self.int();
        (0..n).map(|_| self.str()).collect()
    }
    pub fn acls(&mut self) -> Vec<(i32, String, String)> {
        let n = self.int();
        (0..n)
            .map(|_| {
                let p = self.int();
                (p, self.str(), self.str())
            })
            .collect()
    }
    pub fn stat(&mut self) -> Stat {
        Stat {
            czxid: self.long(),
            mzxid: self.long(),
            ctime: self.long(),
            mtime: self.long(),
            version: self.int(),
            cversion: self.int(),
            aversion: self.int(),
            ephemeral_owner: self.long(),
            data_length: self.int(),
            num_children: self.int(),
            pzxid: self.long(),
        }
    }
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
}

/// The 68-byte Stat record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// A decoded reply header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

/// A decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub zxid: i64,
    pub kind: i32,
    pub state: i32,
    pub path: String,
}

/// A ConnectRequest payload (wire-protocol.md §3.1).
pub fn connect_request(
    last_zxid: i64,
    timeout_ms: i32,
    session: i64,
    passwd: &[u8],
    read_only: Option<bool>,
) -> Vec<u8> {
    let mut e = Enc::new().int(0).long(last_zxid).int(timeout_ms).long(session).buf(Some(passwd));
    if let Some(r) = read_only {
        e = e.boolean(r);
    }
    e.done()
}

/// A decoded ConnectResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub timeout_ms: i32,
    pub session: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

pub fn parse_connect_response(f: &[u8]) -> Connected {
    let mut d = Dec::new(f);
    assert_eq!(d.int(), 0, "protocol version");
    let timeout_ms = d.int();
    let session = d.long();
    let passwd = d.buf().expect("password");
    let read_only = (d.remaining() > 0).then(|| d.boolean());
    assert_eq!(d.remaining(), 0, "trailing bytes in ConnectResponse");
    Connected { timeout_ms, session, passwd, read_only }
}

/// A MultiHeader + op record; `ops` ends with the terminator added by [`multi_body`].
pub fn multi_body(ops: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut e = Enc::new();
    for (t, rec) in ops {
        e = e.int(*t).boolean(false).int(-1).raw(rec);
    }
    e.int(-1).boolean(true).int(-1).done()
}

/// Path-only request (getACL, sync, getAllChildrenNumber, getEphemerals).
pub fn path(p: &str) -> Vec<u8> {
    Enc::new().str(p).done()
}

/// Path + watch flag request (exists, getData, getChildren, getChildren2).
pub fn path_watch(p: &str, watch: bool) -> Vec<u8> {
    Enc::new().str(p).boolean(watch).done()
}

pub const OPEN: &[(i32, &str, &str)] = &[(31, "world", "anyone")];

/// CreateRequest with the open ACL.
pub fn create(p: &str, data: &[u8], flags: i32) -> Vec<u8> {
    create_acl(p, data, OPEN, flags)
}

pub fn create_acl(p: &str, data: &[u8], acl: &[(i32, &str, &str)], flags: i32) -> Vec<u8> {
    Enc::new().str(p).buf(Some(data)).acls(acl).int(flags).done()
}

pub fn delete(p: &str, version: i32) -> Vec<u8> {
    Enc::new().str(p).int(version).done()
}

pub fn set_data(p: &str, data: &[u8], version: i32) -> Vec<u8> {
    Enc::new().str(p).buf(Some(data)).int(version).done()
}

/// A raw client with a live session plus conveniences for tests.
pub struct Session {
    pub raw: Raw,
    pub id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    pub xid: i32,
    /// Notifications received while waiting for replies.
    pub events: Vec<Event>,
}

impl Session {
    pub fn open(addr: SocketAddr) -> Session {
        Session::open_with_timeout(addr, 30_000)
    }

    pub fn open_with_timeout(addr: SocketAddr, timeout_ms: i32) -> Session {
        let mut raw = Raw::connect(addr);
        raw.send_frame(&connect_request(0, timeout_ms, 0, &[0; 16], Some(false)));
        let c = parse_connect_response(&raw.read_frame().expect("connect response"));
        assert!(c.timeout_ms > 0, "session refused: {c:?}");
        Session {
            raw,
            id: c.session,
            passwd: c.passwd,
            timeout_ms: c.timeout_ms,
            xid: 0,
            events: Vec::new(),
        }
    }

    /// Sends a request and waits for its reply, collecting notifications on the way.
    pub fn call(&mut self, op: i32, body: &[u8]) -> (Reply, Vec<u8>) {
        self.xid += 1;
        let xid = self.xid;
        self.send(xid, op, body);
        self.reply_to(xid)
    }

    pub fn send(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut p = Enc::new().int(xid).int(op).done();
        p.extend_from_slice(body);
        self.raw.send_frame(&p);
    }

    /// Reads frames until the reply with `xid`, collecting notifications.
    pub fn reply_to(&mut self, xid: i32) -> (Reply, Vec<u8>) {
        loop {
            let f = self.raw.read_frame().expect("reply frame");
            let (h, body) = split_reply(&f);
            if h.xid == -1 {
                self.events.push(parse_event(h, &body));
                continue;
            }
            assert_eq!(h.xid, xid, "reply out of order");
            return (h, body);
        }
    }

    /// The error code of a request.
    pub fn code(&mut self, op: i32, body: &[u8]) -> i32 {
        self.call(op, body).0.err
    }

    /// Reads the next notification (already received ones first).
    pub fn next_event(&mut self) -> Event {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        let f = self.raw.read_frame().expect("event frame");
        let (h, body) = split_reply(&f);
        assert_eq!(h.xid, -1, "expected a notification, got reply {h:?}");
        parse_event(h, &body)
    }

    pub fn create(&mut self, p: &str, data: &[u8], flags: i32) -> (Reply, String, Stat) {
        let (h, b) = self.call(op::CREATE2, &create(p, data, flags));
        if h.err != 0 {
            return (h, String::new(), Stat::default());
        }
        let mut d = Dec::new(&b);
        let path = d.str();
        let stat = d.stat();
        (h, path, stat)
    }

    pub fn stat(&mut self, p: &str) -> Option<Stat> {
        let (h, b) = self.call(op::EXISTS, &path_watch(p, false));
        if h.err == err::NO_NODE {
            return None;
        }
        assert_eq!(h.err, 0, "exists {p}");
        Some(Dec::new(&b).stat())
    }

    pub fn get_data(&mut self, p: &str) -> (Option<Vec<u8>>, Stat) {
        let (h, b) = self.call(op::GET_DATA, &path_watch(p, false));
        assert_eq!(h.err, 0, "getData {p}");
        let mut d = Dec::new(&b);
        (d.buf(), d.stat())
    }

    pub fn auth(&mut self, scheme: &str, auth: &[u8]) -> Reply {
        let body = Enc::new().int(0).str(scheme).buf(Some(auth)).done();
        self.send(-4, op::AUTH, &body);
        self.reply_to(-4).0
    }
}

pub fn split_reply(f: &[u8]) -> (Reply, Vec<u8>) {
    let mut d = Dec::new(f);
    let h = Reply { xid: d.int(), zxid: d.long(), err: d.int() };
    (h, f[16..].to_vec())
}

pub fn parse_event(h: Reply, body: &[u8]) -> Event {
    let mut d = Dec::new(body);
    Event { zxid: h.zxid, kind: d.int(), state: d.int(), path: d.str() }
}
