//! What the fuzz targets share: the server's and the client library's decoding of outside bytes,
//! replayed through rzk's public decoders, and the checks made on what decodes.
//!
//! Every target asserts three things about its decoder, for any input:
//!
//! 1. no panic (a panic is a crash to libFuzzer);
//! 2. bounded allocation: `scripts/fuzz.sh` runs with `-malloc_limit_mb` and `-rss_limit_mb`,
//!    so a length field that makes a decoder allocate more than the budget is an OOM crash;
//! 3. what decodes re-encodes to bytes that decode to the same value ([`round_trip`]), so a
//!    decoder and its encoder cannot drift apart.
//!
//! The dispatch functions here ([`server_request`], [`client_reply`], [`quorum_bodies`]) mirror
//! the server's connection, prep and apply stages, the client core and the quorum shells,
//! which keep their own decoding private: they call the same jute records in the same order,
//! so a decoder bug reachable from the network is reachable here.

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};

use rzk::jute::data::Id;
use rzk::jute::proto::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, ConnectResponse, Create2Response,
    CreateRequest, CreateResponse, CreateTtlRequest, DeleteRequest, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetDataResponse, MultiRequest,
    MultiResponse, PathRequest, PathWatchRequest, ReconfigRequest, ReplyHeader, SaslToken,
    SetAclRequest, SetDataRequest, SetWatches, SetWatches2, StatResponse, StringListResponse,
    SyncResponse, WatcherEvent, WatchesRequest, WhoAmIResponse,
};
use rzk::jute::txn::TxnEntry;
use rzk::jute::{Jute, Reader};
use rzk::proto::{path, AddWatchMode, CreateMode, OpCode, WatcherType};
use rzk::quorum::wire::config_version;
use rzk::quorum::zab::codec;
use rzk::quorum::zab::packet::{
    decode_designated_leader, decode_int_data, decode_ping_sessions, LearnerInfo, PacketType,
    QuorumPacket, RequestData, RevalidateReply, RevalidateRequest,
};
use rzk::server::acl::{self, AuthInfo};

/// Every opcode a client may send, plus the internal ones a hostile client can still put in a
/// header; the targets that pick an opcode from a byte index this list.
pub const OPCODES: [OpCode; 33] = [
    OpCode::Notification,
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::GetChildren2,
    OpCode::Check,
    OpCode::Multi,
    OpCode::Create2,
    OpCode::Reconfig,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::CreateContainer,
    OpCode::DeleteContainer,
    OpCode::CreateTtl,
    OpCode::MultiRead,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::Sasl,
    OpCode::GetEphemerals,
    OpCode::GetAllChildrenNumber,
    OpCode::SetWatches2,
    OpCode::AddWatch,
    OpCode::WhoAmI,
    OpCode::CreateSession,
    OpCode::CloseSession,
    OpCode::Error,
];

/// The opcode a selector byte picks.
pub fn opcode(selector: u8) -> OpCode {
    OPCODES[selector as usize % OPCODES.len()]
}

/// Decodes `bytes` as a `T`; if that works, checks that its encoding decodes to the same value.
pub fn round_trip<T: Jute + PartialEq + Debug>(bytes: &[u8]) -> Option<T> {
    let value = T::from_bytes(bytes).ok()?;
    let encoded = value.to_bytes();
    match T::from_bytes(&encoded) {
        Ok(again) => assert_eq!(again, value, "re-encoded record decodes differently"),
        Err(e) => panic!("re-encoded {value:?} does not decode: {e}"),
    }
    Some(value)
}

/// Decodes a txn log record payload (or a PROPOSAL / INFORM body) and checks that its encoding
/// is a fixed point: encoding what the re-encoding decodes to gives the same bytes. (Values
/// may change once, legitimately: a create2 inside a multi is written as create, as ZooKeeper
/// does; see `SubTxn::logged_type`.)
pub fn txn_entry(bytes: &[u8]) -> Option<TxnEntry> {
    let entry = TxnEntry::decode(bytes).ok()?;
    let mut once = Vec::new();
    entry.encode(&mut once);
    let again = match TxnEntry::decode(&once) {
        Ok(again) => again,
        Err(e) => panic!("re-encoded {entry:?} does not decode: {e}"),
    };
    let mut twice = Vec::new();
    again.encode(&mut twice);
    assert_eq!(once, twice, "txn encoding is not a fixed point for {entry:?}");
    Some(entry)
}

/// The identities of a client connection in the targets: an address and one digest user.
fn auth_info() -> AuthInfo {
    let mut auth = AuthInfo::for_address(IpAddr::V4(Ipv4Addr::LOCALHOST));
    auth.ids.push(Id::new("digest", "user:x"));
    auth
}

/// A request body as the server decodes it for `op` (the connection's auth handling, prep's
/// `decode_write` and apply's reads), plus the checks prep runs on what it decoded: path
/// syntax, create mode and ACL fix-up.
pub fn server_request(op: OpCode, body: &[u8]) {
    let _ = path::null_path_body(op, body);
    let check_path = |p: &str| {
        let _ = path::validate(p);
    };
    let auth = auth_info();
    match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
            if let Some(c) = round_trip::<CreateRequest>(body) {
                check_path(&c.path);
                let _ = CreateMode::from_i32(c.flags);
                let _ = acl::fixup(&c.acl, &auth);
            }
        }
        OpCode::CreateTtl => {
            if let Some(c) = round_trip::<CreateTtlRequest>(body) {
                check_path(&c.path);
                let _ = CreateMode::from_i32(c.flags);
                let _ = acl::fixup(&c.acl, &auth);
            }
        }
        OpCode::Delete => {
            if let Some(d) = round_trip::<DeleteRequest>(body) {
                check_path(&d.path);
            }
        }
        OpCode::DeleteContainer => {
            if let Ok(Some(raw)) = Reader::new(body).read_buffer() {
                let _ = String::from_utf8(raw);
            }
        }
        OpCode::SetData => {
            if let Some(s) = round_trip::<SetDataRequest>(body) {
                check_path(&s.path);
            }
        }
        OpCode::SetAcl => {
            if let Some(s) = round_trip::<SetAclRequest>(body) {
                check_path(&s.path);
                let _ = acl::fixup(&s.acl, &auth);
            }
        }
        OpCode::Check => {
            round_trip::<CheckVersionRequest>(body);
        }
        OpCode::Multi | OpCode::MultiRead => multi_request(body),
        OpCode::Exists | OpCode::GetData | OpCode::GetChildren | OpCode::GetChildren2 => {
            if let Some(r) = round_trip::<PathWatchRequest>(body) {
                check_path(&r.path);
            }
        }
        OpCode::Sync | OpCode::GetAcl | OpCode::GetAllChildrenNumber | OpCode::GetEphemerals => {
            round_trip::<PathRequest>(body);
        }
        OpCode::AddWatch => {
            if let Some(r) = round_trip::<AddWatchRequest>(body) {
                let _ = AddWatchMode::from_i32(r.mode);
            }
        }
        OpCode::CheckWatches | OpCode::RemoveWatches => {
            if let Some(r) = round_trip::<WatchesRequest>(body) {
                let _ = WatcherType::from_i32(r.watcher_type);
            }
        }
        OpCode::SetWatches => {
            round_trip::<SetWatches>(body);
        }
        OpCode::SetWatches2 => {
            round_trip::<SetWatches2>(body);
        }
        OpCode::Auth => {
            if let Some(p) = round_trip::<AuthPacket>(body) {
                let data = p.auth.as_deref().unwrap_or(&[]);
                let _ = acl::authenticate(&p.scheme, data, Some("super:x"));
            }
        }
        OpCode::Reconfig => {
            round_trip::<ReconfigRequest>(body);
        }
        OpCode::Sasl => {
            round_trip::<SaslToken>(body);
        }
        OpCode::Notification
        | OpCode::Ping
        | OpCode::WhoAmI
        | OpCode::CreateSession
        | OpCode::CloseSession
        | OpCode::Error => {}
    }
}

/// A `multi` / `multiRead` body: the request (ops until the done header, reads and writes not
/// mixed), then what prep and apply check on each op.
pub fn multi_request(body: &[u8]) {
    let Some(multi) = round_trip::<MultiRequest>(body) else { return };
    let auth = auth_info();
    for op in &multi.ops {
        let _ = path::validate(op.path());
        if let rzk::jute::proto::MultiOp::Create { req, .. } = op {
            let _ = CreateMode::from_i32(req.flags);
            let _ = acl::fixup(&req.acl, &auth);
        }
    }
}

/// A reply payload as the client library decodes it after sending `op`: the reply header,
/// then a notification, an error (a failed multi still carries its results) or the op's
/// response record (`decode_reply`).
pub fn client_reply(op: OpCode, payload: &[u8]) {
    let mut r = Reader::new(payload);
    let Ok(header) = ReplyHeader::decode(&mut r) else { return };
    let body = r.rest();
    if header.xid == rzk::proto::xid::NOTIFICATION {
        round_trip::<WatcherEvent>(body);
        return;
    }
    if header.err != 0 {
        if matches!(op, OpCode::Multi | OpCode::MultiRead) {
            round_trip::<MultiResponse>(body);
        }
        return;
    }
    match op {
        OpCode::Create => {
            round_trip::<CreateResponse>(body);
        }
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            round_trip::<Create2Response>(body);
        }
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
            round_trip::<StatResponse>(body);
        }
        OpCode::GetData => {
            round_trip::<GetDataResponse>(body);
        }
        OpCode::GetAcl => {
            round_trip::<GetAclResponse>(body);
        }
        OpCode::GetChildren | OpCode::GetEphemerals => {
            round_trip::<StringListResponse>(body);
        }
        OpCode::GetChildren2 => {
            round_trip::<GetChildren2Response>(body);
        }
        OpCode::Sync => {
            round_trip::<SyncResponse>(body);
        }
        OpCode::GetAllChildrenNumber => {
            round_trip::<GetAllChildrenNumberResponse>(body);
        }
        OpCode::Multi | OpCode::MultiRead => {
            round_trip::<MultiResponse>(body);
        }
        OpCode::WhoAmI => {
            round_trip::<WhoAmIResponse>(body);
        }
        _ => {}
    }
}

/// The client's first reply: the `ConnectResponse`.
pub fn connect_response(payload: &[u8]) {
    round_trip::<ConnectResponse>(payload);
}

/// What the leader's and the learners' shells decode from a packet: the core message
/// (`codec::from_packet`) and the body the type carries.
pub fn quorum_bodies(packet: &QuorumPacket) {
    let _ = codec::from_packet(packet);
    let _ = packet.to_string();
    let data = packet.data();
    match packet.packet_type() {
        Some(PacketType::FollowerInfo | PacketType::ObserverInfo) => {
            if let Ok(info) = LearnerInfo::decode(data) {
                let again = LearnerInfo::decode(&info.encode()).expect("re-encoded LearnerInfo");
                assert_eq!(again, info);
            }
        }
        Some(PacketType::Request) => {
            if let Ok(request) = RequestData::decode(data) {
                assert_eq!(RequestData::decode(&request.encode()).as_ref(), Ok(&request));
                if let Some(op) = OpCode::from_i32(request.op) {
                    server_request(op, &request.body);
                }
            }
        }
        Some(PacketType::Ping) => {
            if let Ok(touched) = decode_ping_sessions(data) {
                assert_eq!(touched.len(), data.len() / 12);
            }
        }
        Some(PacketType::Revalidate) => {
            if let Ok(r) = RevalidateRequest::decode(data) {
                assert_eq!(RevalidateRequest::decode(&r.encode()), Ok(r));
            }
            let _ = RevalidateReply::decode(data);
        }
        Some(PacketType::LeaderInfo | PacketType::AckEpoch) => {
            let _ = decode_int_data(data);
        }
        Some(PacketType::CommitAndActivate) => {
            let _ = decode_designated_leader(data);
        }
        Some(PacketType::InformAndActivate) if decode_designated_leader(data).is_ok() => {
            txn_entry(&data[8..]);
        }
        Some(PacketType::Proposal | PacketType::Inform) => {
            txn_entry(data);
        }
        Some(PacketType::NewLeader) => {
            let _ = config_version(data);
        }
        _ => {}
    }
}
