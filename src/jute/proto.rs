//! Client protocol records (`org.apache.zookeeper.proto`), plus `multi`'s hand-written framing
//! (wire-protocol.md §6, §7).

use super::data::{Acl, ClientInfo, Stat};
use super::{DecodeError, DecodeResult, Jute, Reader, Writer};
use crate::proto::{CreateMode, OpCode};
use crate::record;

record! {
    /// First frame of a connection, client to server (`readOnly` handled separately).
    pub struct ConnectRequestBase {
        pub protocol_version: i32,
        pub last_zxid_seen: i64,
        pub time_out: i32,
        pub session_id: i64,
        pub passwd: Option<Vec<u8>>,
    }
}

/// `ConnectRequest` with the optional trailing `readOnly` flag (absent from old clients).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// The mandatory fields.
    pub base: ConnectRequestBase,
    /// `None` when the client is too old to send the flag.
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn encode(&self, w: &mut Vec<u8>) {
        self.base.encode(w);
        if let Some(ro) = self.read_only {
            w.put_bool(ro);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let base = ConnectRequestBase::decode(r)?;
        let read_only = if r.remaining() > 0 { Some(r.read_bool()?) } else { None };
        Ok(ConnectRequest { base, read_only })
    }
}

/// `ConnectResponse`; `read_only` is written only when the request carried the flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout; 0 means the session is invalid (expired).
    pub time_out: i32,
    /// Session id; 0 when invalid.
    pub session_id: i64,
    /// 16-byte password.
    pub passwd: Vec<u8>,
    /// `Some(flag)` for new clients, `None` for old ones.
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(self.protocol_version);
        w.put_i32(self.time_out);
        w.put_i64(self.session_id);
        w.put_buffer(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            w.put_bool(ro);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let protocol_version = r.read_i32()?;
        let time_out = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?.unwrap_or_default();
        let read_only = if r.remaining() > 0 { Some(r.read_bool()?) } else { None };
        Ok(ConnectResponse { protocol_version, time_out, session_id, passwd, read_only })
    }
}

record! {
    /// Header of every request after the handshake.
    pub struct RequestHeader {
        pub xid: i32,
        pub op_type: i32,
    }
}

record! {
    /// Header of every reply after the handshake.
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        pub err: i32,
    }
}

record! {
    /// create / create2 / createContainer.
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
    }
}

record! {
    /// createTTL.
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}

record! {
    /// delete.
    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }
}

record! {
    /// exists / getData / getChildren / getChildren2: a path and a watch flag.
    pub struct PathWatchRequest {
        pub path: String,
        pub watch: bool,
    }
}

record! {
    /// setData.
    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

record! {
    /// getACL / sync / getAllChildrenNumber / getEphemerals: just a path.
    pub struct PathRequest {
        pub path: String,
    }
}

record! {
    /// setACL.
    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

record! {
    /// check (inside multi).
    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }
}

record! {
    /// reconfig.
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }
}

record! {
    /// checkWatches / removeWatches.
    pub struct WatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }
}

record! {
    /// addWatch.
    pub struct AddWatchRequest {
        pub path: String,
        pub mode: i32,
    }
}

record! {
    /// auth (xid -4).
    pub struct AuthPacket {
        pub auth_type: i32,
        pub scheme: String,
        pub auth: Option<Vec<u8>>,
    }
}

record! {
    /// setWatches (xid -8).
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

record! {
    /// setWatches2 (xid -8).
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// sasl request / response body.
    pub struct SaslToken {
        pub token: Option<Vec<u8>>,
    }
}

record! {
    /// create reply.
    pub struct CreateResponse {
        pub path: String,
    }
}

record! {
    /// create2 / createContainer / createTTL reply.
    pub struct Create2Response {
        pub path: String,
        pub stat: Stat,
    }
}

record! {
    /// exists / setData / setACL reply.
    pub struct StatResponse {
        pub stat: Stat,
    }
}

record! {
    /// getData reply.
    pub struct GetDataResponse {
        pub data: Option<Vec<u8>>,
        pub stat: Stat,
    }
}

record! {
    /// getChildren reply / getEphemerals reply (a list of strings).
    pub struct StringListResponse {
        pub list: Vec<String>,
    }
}

record! {
    /// getChildren2 reply.
    pub struct GetChildren2Response {
        pub children: Vec<String>,
        pub stat: Stat,
    }
}

record! {
    /// getACL reply.
    pub struct GetAclResponse {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }
}

record! {
    /// sync reply.
    pub struct SyncResponse {
        pub path: String,
    }
}

record! {
    /// getAllChildrenNumber reply.
    pub struct GetAllChildrenNumberResponse {
        pub total_number: i32,
    }
}

record! {
    /// whoAmI reply.
    pub struct WhoAmIResponse {
        pub client_info: Vec<ClientInfo>,
    }
}

record! {
    /// A bare error code (addWatch reply, multi error results).
    pub struct ErrorResponse {
        pub err: i32,
    }
}

record! {
    /// Watch notification body.
    pub struct WatcherEvent {
        pub event_type: i32,
        pub state: i32,
        pub path: String,
    }
}

record! {
    /// Header before each op / result in a multi.
    pub struct MultiHeader {
        pub op_type: i32,
        pub done: bool,
        pub err: i32,
    }
}

/// One operation inside `multi` / `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create / create2 / createContainer / createTTL; the opcode is re-derived from the
    /// flags as the server does when decoding.
    Create {
        /// 1, 15, 19 or 21.
        op: OpCode,
        /// The request (ttl -1 unless op is createTTL).
        req: CreateTtlRequest,
    },
    /// delete.
    Delete(DeleteRequest),
    /// setData.
    SetData(SetDataRequest),
    /// check.
    Check(CheckVersionRequest),
    /// getChildren (multiRead).
    GetChildren(PathRequest),
    /// getData (multiRead).
    GetData(PathRequest),
}

impl MultiOp {
    /// The opcode written in the op's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// Whether the op is a read (allowed only in multiRead).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    /// The path the op touches.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }
}

/// A `multi` / `multiRead` request: ops until the `done` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The ops in order.
    pub ops: Vec<MultiOp>,
}

impl Jute for MultiRequest {
    fn encode(&self, w: &mut Vec<u8>) {
        for op in &self.ops {
            MultiHeader { op_type: op.op_code().code(), done: false, err: -1 }.encode(w);
            match op {
                MultiOp::Create { op: OpCode::CreateTtl, req } => req.encode(w),
                MultiOp::Create { req, .. } => CreateRequest {
                    path: req.path.clone(),
                    data: req.data.clone(),
                    acl: req.acl.clone(),
                    flags: req.flags,
                }
                .encode(w),
                MultiOp::Delete(r) => r.encode(w),
                MultiOp::SetData(r) => r.encode(w),
                MultiOp::Check(r) => r.encode(w),
                MultiOp::GetChildren(r) | MultiOp::GetData(r) => {
                    PathWatchRequest { path: r.path.clone(), watch: false }.encode(w)
                }
            }
        }
        MultiHeader { op_type: -1, done: true, err: -1 }.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                break;
            }
            let op = match OpCode::from_i32(h.op_type) {
                Some(code @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer)) => {
                    let c = CreateRequest::decode(r)?;
                    create_op(code, c.path, c.data, c.acl, c.flags, -1)?
                }
                Some(OpCode::CreateTtl) => {
                    let c = CreateTtlRequest::decode(r)?;
                    create_op(OpCode::CreateTtl, c.path, c.data, c.acl, c.flags, c.ttl)?
                }
                Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::decode(r)?),
                Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::decode(r)?),
                Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::decode(r)?),
                Some(OpCode::GetChildren) => {
                    MultiOp::GetChildren(PathRequest { path: PathWatchRequest::decode(r)?.path })
                }
                Some(OpCode::GetData) => {
                    MultiOp::GetData(PathRequest { path: PathWatchRequest::decode(r)?.path })
                }
                _ => return Err(DecodeError::InvalidValue("multi op type")),
            };
            if let Some(first) = ops.first() {
                if MultiOp::is_read(first) != op.is_read() {
                    return Err(DecodeError::InvalidValue("multi mixes reads and writes"));
                }
            }
            ops.push(op);
        }
        Ok(MultiRequest { ops })
    }
}

/// Re-derives a multi create's opcode from its flags [MultiOperationRecord].
fn create_op(
    code: OpCode,
    path: String,
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    flags: i32,
    ttl: i64,
) -> DecodeResult<MultiOp> {
    let mode = CreateMode::from_i32(flags).ok_or(DecodeError::InvalidValue("create flags"))?;
    let op = if mode.is_ttl() {
        OpCode::CreateTtl
    } else if mode.is_container() {
        OpCode::CreateContainer
    } else if code == OpCode::CreateTtl || code == OpCode::CreateContainer {
        OpCode::Create2
    } else {
        code
    };
    // Op.create keeps the ttl only for a TTL mode; a createTTL header with any other mode makes
    // a plain Create, whose ttl prep must not see (it would reject the op as BadArguments).
    let ttl = if code == OpCode::CreateTtl && mode.is_ttl() { ttl } else { -1 };
    Ok(MultiOp::Create { op, req: CreateTtlRequest { path, data, acl, flags, ttl } })
}

/// One result inside a multi reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// create.
    Create(String),
    /// create2 / createContainer / createTTL.
    Create2(String, Stat),
    /// delete.
    Delete,
    /// setData.
    SetData(Stat),
    /// check.
    Check,
    /// getChildren (multiRead).
    GetChildren(Vec<String>),
    /// getData (multiRead).
    GetData(Option<Vec<u8>>, Stat),
    /// error with its code.
    Error(i32),
}

/// A `multi` / `multiRead` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per op.
    pub results: Vec<MultiResult>,
}

impl Jute for MultiResponse {
    fn encode(&self, w: &mut Vec<u8>) {
        for res in &self.results {
            let (op, err) = match res {
                MultiResult::Create(_) => (OpCode::Create.code(), 0),
                MultiResult::Create2(..) => (OpCode::Create2.code(), 0),
                MultiResult::Delete => (OpCode::Delete.code(), 0),
                MultiResult::SetData(_) => (OpCode::SetData.code(), 0),
                MultiResult::Check => (OpCode::Check.code(), 0),
                MultiResult::GetChildren(_) => (OpCode::GetChildren.code(), 0),
                MultiResult::GetData(..) => (OpCode::GetData.code(), 0),
                MultiResult::Error(e) => (-1, *e),
            };
            MultiHeader { op_type: op, done: false, err }.encode(w);
            match res {
                MultiResult::Create(p) => w.put_str(p),
                MultiResult::Create2(p, s) => {
                    w.put_str(p);
                    s.encode(w);
                }
                MultiResult::SetData(s) => s.encode(w),
                MultiResult::GetChildren(c) => c.encode(w),
                MultiResult::GetData(d, s) => {
                    d.encode(w);
                    s.encode(w);
                }
                MultiResult::Error(e) => w.put_i32(*e),
                MultiResult::Delete | MultiResult::Check => {}
            }
        }
        MultiHeader { op_type: -1, done: true, err: -1 }.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                break;
            }
            let res = match h.op_type {
                1 => MultiResult::Create(r.read_string()?),
                15 | 19 | 21 => MultiResult::Create2(r.read_string()?, Stat::decode(r)?),
                2 | 20 => MultiResult::Delete,
                5 => MultiResult::SetData(Stat::decode(r)?),
                13 => MultiResult::Check,
                8 => MultiResult::GetChildren(Vec::<String>::decode(r)?),
                4 => MultiResult::GetData(r.read_buffer()?, Stat::decode(r)?),
                -1 => MultiResult::Error(r.read_i32()?),
                _ => return Err(DecodeError::InvalidValue("multi result type")),
            };
            results.push(res);
        }
        Ok(MultiResponse { results })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_with_and_without_read_only() {
        let req = ConnectRequest {
            base: ConnectRequestBase {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30000,
                session_id: 0,
                passwd: Some(vec![0; 16]),
            },
            read_only: Some(false),
        };
        let bytes = req.to_bytes();
        assert_eq!(bytes.len(), 45);
        assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap(), req);
        let old = ConnectRequest::from_bytes(&bytes[..44]).unwrap();
        assert_eq!(old.read_only, None);
    }

    #[test]
    fn connect_response_lengths() {
        let mut resp = ConnectResponse {
            protocol_version: 0,
            time_out: 30000,
            session_id: 0x0100_000a_47bc_0000,
            passwd: vec![7; 16],
            read_only: Some(false),
        };
        assert_eq!(resp.to_bytes().len(), 37);
        resp.read_only = None;
        assert_eq!(resp.to_bytes().len(), 36);
    }

    #[test]
    fn failed_multi_reply_matches_captured_bytes() {
        let resp = MultiResponse { results: vec![MultiResult::Error(0), MultiResult::Error(-110)] };
        let expected: Vec<u8> =
            ["ffffffff00000000000000000", "0ffffffff00ffffff92ffffff92", "ffffffff01ffffffff"]
                .concat()
                .as_bytes()
                .chunks(2)
                .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
                .collect();
        assert_eq!(resp.to_bytes(), expected);
        assert_eq!(MultiResponse::from_bytes(&expected).unwrap(), resp);
    }

    #[test]
    fn multi_request_round_trips_and_rederives_create_ops() {
        let req = MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create,
                    req: CreateTtlRequest {
                        path: "/a".into(),
                        data: Some(b"x".to_vec()),
                        acl: Acl::open_unsafe(),
                        flags: 0,
                        ttl: -1,
                    },
                },
                MultiOp::Create {
                    op: OpCode::CreateContainer,
                    req: CreateTtlRequest {
                        path: "/c".into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 4,
                        ttl: -1,
                    },
                },
                MultiOp::Check(CheckVersionRequest { path: "/a".into(), version: 0 }),
                MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 }),
            ],
        };
        assert_eq!(MultiRequest::from_bytes(&req.to_bytes()).unwrap(), req);
    }

    /// Found by the `multi` fuzz target: a createTTL op with persistent flags kept its ttl, so
    /// the op did not survive re-encoding (as a create2) and prep rejected what Apache accepts.
    #[test]
    fn multi_create_ttl_op_without_a_ttl_mode_drops_the_ttl() {
        let crash: Vec<u8> = [
            "000000150031000007000000000000000000000000000000",
            "000000000000310000000500ffffff000000000700",
        ]
        .concat()
        .as_bytes()
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect();
        let req = MultiRequest::from_bytes(&crash).unwrap();
        let MultiOp::Create { op, req: create } = &req.ops[0] else { panic!("{req:?}") };
        assert_eq!((*op, create.flags, create.ttl), (OpCode::Create2, 0, -1));
        assert_eq!(MultiRequest::from_bytes(&req.to_bytes()).unwrap(), req);

        let mut ttl_mode = Vec::new();
        MultiHeader { op_type: OpCode::CreateTtl.code(), done: false, err: -1 }
            .encode(&mut ttl_mode);
        CreateTtlRequest { path: "/t".into(), data: None, acl: vec![], flags: 5, ttl: 500 }
            .encode(&mut ttl_mode);
        MultiHeader { op_type: -1, done: true, err: -1 }.encode(&mut ttl_mode);
        let MultiOp::Create { op, req } = &MultiRequest::from_bytes(&ttl_mode).unwrap().ops[0]
        else {
            panic!("not a create")
        };
        assert_eq!((*op, req.ttl), (OpCode::CreateTtl, 500));
    }

    #[test]
    fn multi_rejects_mixed_reads_and_writes_and_bad_types() {
        let mixed = MultiRequest {
            ops: vec![
                MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 }),
                MultiOp::GetData(PathRequest { path: "/a".into() }),
            ],
        };
        assert!(MultiRequest::from_bytes(&mixed.to_bytes()).is_err());
        let mut bad = Vec::new();
        MultiHeader { op_type: 3, done: false, err: -1 }.encode(&mut bad);
        assert!(MultiRequest::from_bytes(&bad).is_err());
        assert!(MultiRequest::from_bytes(&[]).is_err());
    }
}
