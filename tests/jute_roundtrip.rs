//! Property tests for every jute record (and the hand-written quorum and election encodings):
//! encoding then decoding gives back the value, and decoding arbitrary bytes returns a value
//! or an error, never a panic. The fuzz targets in tests/fuzz search the byte side far longer;
//! these keep `cargo test` honest in a few seconds (128 cases per property).

use std::fmt::Debug;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use rzk::jute::data::{Acl, ClientInfo, Id, Stat, StatPersisted};
use rzk::jute::proto::*;
use rzk::jute::txn::*;
use rzk::jute::{Jute, Reader};
use rzk::proto::{CreateMode, OpCode, ServerId, Zxid};
use rzk::quorum::vote::ServerState;
use rzk::quorum::wire::{decode_initial, Notification, NOTIFICATION_VERSION};
use rzk::quorum::zab::packet::{
    decode_ping_sessions, encode_ping_sessions, read_packet, LearnerInfo, QuorumPacket,
    RequestData, RevalidateReply, RevalidateRequest,
};

/// `value` encodes to bytes that decode to `value`, using all of them.
fn assert_round_trip<T: Jute + PartialEq + Debug>(value: &T) {
    let bytes = value.to_bytes();
    let mut r = Reader::new(&bytes);
    let back = T::decode(&mut r);
    assert_eq!(back.as_ref(), Ok(value));
    assert_eq!(r.remaining(), 0, "{value:?} left bytes unread");
}

/// Short strings, including non-ASCII ones; jute strings are UTF-8.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z/]{0,8}".prop_map(String::from),
        any::<String>().prop_map(|s| s.chars().take(8).collect())
    ]
}

fn buffer() -> impl Strategy<Value = Option<Vec<u8>>> {
    option::of(vec(any::<u8>(), 0..16))
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

/// A strategy for a record: one strategy per field, in order.
macro_rules! record {
    ($name:ident { $($field:ident: $strategy:expr),* $(,)? }) => {
        ($($strategy,)*).prop_map(|($($field,)*)| $name { $($field),* })
    };
}

fn id() -> impl Strategy<Value = Id> {
    record!(Id { scheme: text(), id: text() })
}

fn acl() -> impl Strategy<Value = Acl> {
    record!(Acl { perms: any::<i32>(), id: id() })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..3)
}

fn stat() -> impl Strategy<Value = Stat> {
    (any::<[i64; 4]>(), any::<[i32; 3]>(), any::<i64>(), any::<[i32; 2]>(), any::<i64>()).prop_map(
        |([czxid, mzxid, ctime, mtime], [version, cversion, aversion], owner, [len, n], pzxid)| {
            Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner: owner,
                data_length: len,
                num_children: n,
                pzxid,
            }
        },
    )
}

fn stat_persisted() -> impl Strategy<Value = StatPersisted> {
    (any::<[i64; 4]>(), any::<[i32; 3]>(), any::<[i64; 2]>()).prop_map(
        |([czxid, mzxid, ctime, mtime], [version, cversion, aversion], [owner, pzxid])| {
            StatPersisted {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner: owner,
                pzxid,
            }
        },
    )
}

/// A create inside a multi, with the opcode its flags re-derive on decoding and a ttl only
/// for the TTL modes.
fn multi_create() -> impl Strategy<Value = MultiOp> {
    (0..7i32, any::<bool>(), text(), buffer(), acls(), 1..i64::MAX).prop_map(
        |(flags, create2, path, data, acl, ttl)| {
            let mode = CreateMode::from_i32(flags).expect("0..7 are modes");
            let (op, ttl) = if mode.is_ttl() {
                (OpCode::CreateTtl, ttl)
            } else if mode.is_container() {
                (OpCode::CreateContainer, -1)
            } else if create2 {
                (OpCode::Create2, -1)
            } else {
                (OpCode::Create, -1)
            };
            MultiOp::Create { op, req: CreateTtlRequest { path, data, acl, flags, ttl } }
        },
    )
}

fn multi_request() -> impl Strategy<Value = MultiRequest> {
    let write = prop_oneof![
        multi_create(),
        record!(DeleteRequest { path: text(), version: any::<i32>() }).prop_map(MultiOp::Delete),
        record!(SetDataRequest { path: text(), data: buffer(), version: any::<i32>() })
            .prop_map(MultiOp::SetData),
        record!(CheckVersionRequest { path: text(), version: any::<i32>() })
            .prop_map(MultiOp::Check),
    ];
    let read = prop_oneof![
        text().prop_map(|path| MultiOp::GetChildren(PathRequest { path })),
        text().prop_map(|path| MultiOp::GetData(PathRequest { path })),
    ];
    // A multi holds only writes, a multiRead only reads.
    prop_oneof![vec(write, 0..4), vec(read, 0..4)].prop_map(|ops| MultiRequest { ops })
}

fn multi_response() -> impl Strategy<Value = MultiResponse> {
    let result = prop_oneof![
        text().prop_map(MultiResult::Create),
        (text(), stat()).prop_map(|(p, s)| MultiResult::Create2(p, s)),
        Just(MultiResult::Delete),
        stat().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        strings().prop_map(MultiResult::GetChildren),
        (buffer(), stat()).prop_map(|(d, s)| MultiResult::GetData(d, s)),
        any::<i32>().prop_map(MultiResult::Error),
    ];
    vec(result, 0..4).prop_map(|results| MultiResponse { results })
}

fn create_txn() -> impl Strategy<Value = CreateTxn> {
    record!(CreateTxn {
        path: text(),
        data: buffer(),
        acl: acls(),
        ephemeral: any::<bool>(),
        parent_cversion: any::<i32>(),
    })
}

/// A txn body other than multi, with a type it may be logged under.
fn simple_txn() -> impl Strategy<Value = (i32, Txn)> {
    prop_oneof![
        (prop_oneof![Just(1), Just(15)], create_txn()).prop_map(|(t, c)| (t, Txn::Create(c))),
        record!(CreateTtlTxn {
            path: text(),
            data: buffer(),
            acl: acls(),
            parent_cversion: any::<i32>(),
            ttl: any::<i64>(),
        })
        .prop_map(|t| (21, Txn::CreateTtl(t))),
        record!(CreateContainerTxn {
            path: text(),
            data: buffer(),
            acl: acls(),
            parent_cversion: any::<i32>(),
        })
        .prop_map(|t| (19, Txn::CreateContainer(t))),
        (prop_oneof![Just(2), Just(20)], text())
            .prop_map(|(t, path)| (t, Txn::Delete(DeleteTxn { path }))),
        (
            prop_oneof![Just(5), Just(16)],
            record!(SetDataTxn { path: text(), data: buffer(), version: any::<i32>() })
        )
            .prop_map(|(t, s)| (t, Txn::SetData(s))),
        record!(SetAclTxn { path: text(), acl: acls(), version: any::<i32>() })
            .prop_map(|t| (7, Txn::SetAcl(t))),
        record!(CheckVersionTxn { path: text(), version: any::<i32>() })
            .prop_map(|t| (13, Txn::Check(t))),
        any::<i32>().prop_map(|e| (-1, Txn::Error(e))),
    ]
}

/// Any txn body with its type: the simple ones, session txns and multis of simple ones (each
/// sub-txn under the type ZooKeeper writes for it, `SubTxn::logged_type`).
fn txn() -> impl Strategy<Value = (i32, Txn)> {
    let sub = simple_txn().prop_map(|(op, txn)| {
        let sub = SubTxn { op, txn };
        SubTxn { op: sub.logged_type(), ..sub }
    });
    prop_oneof![
        4 => simple_txn(),
        1 => any::<i32>().prop_map(|t| (-10, Txn::CreateSession { timeout_ms: t })),
        1 => option::of(strings()).prop_map(|p| (-11, Txn::CloseSession(p))),
        1 => vec(sub, 0..4).prop_map(|subs| (14, Txn::Multi(subs))),
    ]
}

fn txn_entry() -> impl Strategy<Value = TxnEntry> {
    let header = (any::<i64>(), any::<i32>(), any::<i64>(), any::<i64>());
    let digest =
        option::of(record!(TxnDigest { version: any::<i32>(), tree_digest: any::<i64>() }));
    (header, txn(), digest).prop_map(|((client_id, cxid, zxid, time), (txn_type, txn), digest)| {
        // A body-less closeSession (pre-3.x) is never followed by a digest: its decoder reads
        // the paths from whatever follows.
        let digest = if txn == Txn::CloseSession(None) { None } else { digest };
        TxnEntry { header: TxnHeader { client_id, cxid, zxid, time, txn_type }, txn, digest }
    })
}

fn quorum_packet() -> impl Strategy<Value = QuorumPacket> {
    (any::<i32>(), any::<i64>(), buffer(), option::of(vec(id(), 0..3)))
        .prop_map(|(typ, zxid, data, authinfo)| QuorumPacket { typ, zxid, data, authinfo })
}

fn notification() -> impl Strategy<Value = Notification> {
    let state = prop_oneof![
        Just(ServerState::Looking),
        Just(ServerState::Following),
        Just(ServerState::Leading),
        Just(ServerState::Observing),
    ];
    (state, any::<u64>(), any::<[i64; 3]>(), vec(any::<u8>(), 0..64)).prop_map(
        |(state, leader, [zxid, election_epoch, peer_epoch], config)| Notification {
            state,
            leader: ServerId(leader),
            zxid: Zxid(zxid),
            election_epoch,
            peer_epoch,
            version: NOTIFICATION_VERSION,
            config: Some(config),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn data_records_round_trip(
        id in id(),
        acl in acls(),
        stat in stat(),
        persisted in stat_persisted(),
        info in record!(ClientInfo { auth_scheme: text(), user: text() }),
    ) {
        assert_round_trip(&id);
        assert_round_trip(&acl);
        assert_round_trip(&stat);
        assert_round_trip(&persisted);
        assert_round_trip(&info);
    }

    #[test]
    fn connection_records_round_trip(
        base in record!(ConnectRequestBase {
            protocol_version: any::<i32>(),
            last_zxid_seen: any::<i64>(),
            time_out: any::<i32>(),
            session_id: any::<i64>(),
            passwd: buffer(),
        }),
        read_only in option::of(any::<bool>()),
        response in record!(ConnectResponse {
            protocol_version: any::<i32>(),
            time_out: any::<i32>(),
            session_id: any::<i64>(),
            passwd: vec(any::<u8>(), 0..16),
            read_only: option::of(any::<bool>()),
        }),
        request_header in record!(RequestHeader { xid: any::<i32>(), op_type: any::<i32>() }),
        reply_header in record!(ReplyHeader {
            xid: any::<i32>(),
            zxid: any::<i64>(),
            err: any::<i32>(),
        }),
        auth in record!(AuthPacket { auth_type: any::<i32>(), scheme: text(), auth: buffer() }),
        sasl in record!(SaslToken { token: buffer() }),
        event in record!(WatcherEvent {
            event_type: any::<i32>(),
            state: any::<i32>(),
            path: text(),
        }),
    ) {
        assert_round_trip(&base);
        assert_round_trip(&ConnectRequest { base, read_only });
        assert_round_trip(&response);
        assert_round_trip(&request_header);
        assert_round_trip(&reply_header);
        assert_round_trip(&auth);
        assert_round_trip(&sasl);
        assert_round_trip(&event);
    }

    #[test]
    fn request_records_round_trip(
        create in record!(CreateRequest {
            path: text(),
            data: buffer(),
            acl: acls(),
            flags: any::<i32>(),
        }),
        create_ttl in record!(CreateTtlRequest {
            path: text(),
            data: buffer(),
            acl: acls(),
            flags: any::<i32>(),
            ttl: any::<i64>(),
        }),
        delete in record!(DeleteRequest { path: text(), version: any::<i32>() }),
        path_watch in record!(PathWatchRequest { path: text(), watch: any::<bool>() }),
        set_data in record!(SetDataRequest { path: text(), data: buffer(), version: any::<i32>() }),
        path in record!(PathRequest { path: text() }),
        set_acl in record!(SetAclRequest { path: text(), acl: acls(), version: any::<i32>() }),
        check in record!(CheckVersionRequest { path: text(), version: any::<i32>() }),
        reconfig in record!(ReconfigRequest {
            joining_servers: option::of(text()),
            leaving_servers: option::of(text()),
            new_members: option::of(text()),
            cur_config_id: any::<i64>(),
        }),
        watches in record!(WatchesRequest { path: text(), watcher_type: any::<i32>() }),
        add_watch in record!(AddWatchRequest { path: text(), mode: any::<i32>() }),
        set_watches in record!(SetWatches {
            relative_zxid: any::<i64>(),
            data_watches: strings(),
            exist_watches: strings(),
            child_watches: strings(),
        }),
        set_watches2 in record!(SetWatches2 {
            relative_zxid: any::<i64>(),
            data_watches: strings(),
            exist_watches: strings(),
            child_watches: strings(),
            persistent_watches: strings(),
            persistent_recursive_watches: strings(),
        }),
        multi_header in record!(MultiHeader {
            op_type: any::<i32>(),
            done: any::<bool>(),
            err: any::<i32>(),
        }),
        multi in multi_request(),
    ) {
        assert_round_trip(&create);
        assert_round_trip(&create_ttl);
        assert_round_trip(&delete);
        assert_round_trip(&path_watch);
        assert_round_trip(&set_data);
        assert_round_trip(&path);
        assert_round_trip(&set_acl);
        assert_round_trip(&check);
        assert_round_trip(&reconfig);
        assert_round_trip(&watches);
        assert_round_trip(&add_watch);
        assert_round_trip(&set_watches);
        assert_round_trip(&set_watches2);
        assert_round_trip(&multi_header);
        assert_round_trip(&multi);
    }

    #[test]
    fn response_records_round_trip(
        create in record!(CreateResponse { path: text() }),
        create2 in record!(Create2Response { path: text(), stat: stat() }),
        stat_response in record!(StatResponse { stat: stat() }),
        data in record!(GetDataResponse { data: buffer(), stat: stat() }),
        list in record!(StringListResponse { list: strings() }),
        children2 in record!(GetChildren2Response { children: strings(), stat: stat() }),
        acl in record!(GetAclResponse { acl: acls(), stat: stat() }),
        sync in record!(SyncResponse { path: text() }),
        count in record!(GetAllChildrenNumberResponse { total_number: any::<i32>() }),
        who in vec(record!(ClientInfo { auth_scheme: text(), user: text() }), 0..3),
        error in record!(ErrorResponse { err: any::<i32>() }),
        multi in multi_response(),
    ) {
        assert_round_trip(&create);
        assert_round_trip(&create2);
        assert_round_trip(&stat_response);
        assert_round_trip(&data);
        assert_round_trip(&list);
        assert_round_trip(&children2);
        assert_round_trip(&acl);
        assert_round_trip(&sync);
        assert_round_trip(&count);
        assert_round_trip(&WhoAmIResponse { client_info: who });
        assert_round_trip(&error);
        assert_round_trip(&multi);
    }

    #[test]
    fn txn_records_round_trip(entry in txn_entry()) {
        assert_round_trip(&entry.header);
        if let Some(digest) = &entry.digest {
            assert_round_trip(digest);
        }
        let mut body = Vec::new();
        entry.txn.encode(&mut body);
        let mut r = Reader::new(&body);
        assert_eq!(Txn::decode_as(entry.header.txn_type, &mut r).as_ref(), Ok(&entry.txn));
        assert_eq!(r.remaining(), 0);
        let mut payload = Vec::new();
        entry.encode(&mut payload);
        assert_eq!(TxnEntry::decode(&payload).as_ref(), Ok(&entry));
    }

    #[test]
    fn quorum_and_election_encodings_round_trip(
        packet in quorum_packet(),
        info in (any::<i64>(), any::<i32>(), any::<i64>()),
        request in (any::<i64>(), any::<i32>(), any::<i32>(), vec(any::<u8>(), 0..16)),
        touched in vec((any::<i64>(), any::<i32>()), 0..4),
        revalidate in (any::<i64>(), any::<i32>(), any::<bool>()),
        notification in notification(),
    ) {
        assert_round_trip(&packet);
        let bytes = packet.to_bytes();
        assert_eq!(read_packet(&mut &bytes[..], 1 << 20).ok().as_ref(), Some(&packet));
        let (serverid, protocol_version, config_version) = info;
        let info = LearnerInfo { serverid, protocol_version, config_version };
        assert_eq!(LearnerInfo::decode(&info.encode()), Ok(info));
        let (session_id, cxid, op, body) = request;
        let request = RequestData { session_id, cxid, op, body };
        assert_eq!(RequestData::decode(&request.encode()).as_ref(), Ok(&request));
        assert_eq!(decode_ping_sessions(&encode_ping_sessions(&touched)), Ok(touched));
        let (session_id, timeout_ms, valid) = revalidate;
        let ask = RevalidateRequest { session_id, timeout_ms };
        assert_eq!(RevalidateRequest::decode(&ask.encode()), Ok(ask));
        let answer = RevalidateReply { session_id, valid };
        assert_eq!(RevalidateReply::decode(&answer.encode()), Ok(answer));
        assert_eq!(Notification::decode(&notification.encode()), Ok(notification));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..96), selector in any::<i32>()) {
        let b = &bytes[..];
        let _ = Id::from_bytes(b);
        let _ = Vec::<Acl>::from_bytes(b);
        let _ = Stat::from_bytes(b);
        let _ = StatPersisted::from_bytes(b);
        let _ = ConnectRequest::from_bytes(b);
        let _ = ConnectResponse::from_bytes(b);
        let _ = ReplyHeader::from_bytes(b);
        let _ = CreateRequest::from_bytes(b);
        let _ = CreateTtlRequest::from_bytes(b);
        let _ = SetAclRequest::from_bytes(b);
        let _ = ReconfigRequest::from_bytes(b);
        let _ = AuthPacket::from_bytes(b);
        let _ = SetWatches2::from_bytes(b);
        let _ = GetAclResponse::from_bytes(b);
        let _ = GetChildren2Response::from_bytes(b);
        let _ = WhoAmIResponse::from_bytes(b);
        let _ = WatcherEvent::from_bytes(b);
        let _ = MultiRequest::from_bytes(b);
        let _ = MultiResponse::from_bytes(b);
        let _ = TxnEntry::decode(b);
        let _ = Txn::decode_as(selector % 25, &mut Reader::new(b));
        let _ = QuorumPacket::from_bytes(b);
        let _ = read_packet(&mut &b[..], 1 << 20);
        let _ = LearnerInfo::decode(b);
        let _ = RequestData::decode(b);
        let _ = decode_ping_sessions(b);
        let _ = Notification::decode(b);
        let _ = decode_initial(b);
    }
}
