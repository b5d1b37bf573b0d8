//! Writes the seed corpora under `tests/fuzz/corpus/<target>/`: valid encodings made by rzk's
//! own encoders, plus the bytes captured from Apache ZooKeeper 3.8 that the repository keeps
//! (tests/fixtures, the captured records of the unit tests). Run from the repository root:
//!
//! ```text
//! cargo run --manifest-path tests/fuzz/Cargo.toml --example seeds
//! ```
//!
//! Files named `crash-*` are inputs that once crashed a target (each has a unit test beside
//! the fixed code); they are kept by hand, not written here.
//!
//! Each seed is small (a few hundred bytes at most, the fixture files up to 2 KB), so that the
//! corpora stay a few KB per target. Existing `seed-*` files are overwritten, none are
//! deleted.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rzk::config::HostPort;
use rzk::jute::data::{Acl, Id, Stat};
use rzk::jute::proto::*;
use rzk::jute::txn::*;
use rzk::jute::{Jute, Writer};
use rzk::persistence::snapshot::SnapshotWriter;
use rzk::persistence::txnlog::TxnLogWriter;
use rzk::proto::{frame, OpCode, ServerId, Zxid};
use rzk::quorum::vote::{ServerState, Vote};
use rzk::quorum::wire::{encode_initial, Format, Notification};
use rzk::quorum::zab::codec::to_packet;
use rzk::quorum::zab::msg::Msg;
use rzk::quorum::zab::packet::*;
use rzk::quorum::zab::snap::write_snap;
use rzk::server::datatree::DataTree;

fn main() {
    let root = Path::new("tests/fuzz/corpus");
    let fixtures = Path::new("tests/fixtures/apache-3.8.0-datadir/version-2");
    assert!(fixtures.is_dir(), "run from the repository root");
    let mut seeds = Seeds { root: root.to_path_buf(), written: 0 };

    // The handshake.
    for (name, req) in connect_requests() {
        let mut framed = Vec::new();
        frame::write(&mut framed, &req.to_bytes());
        seeds.put("client_connect", name, &framed);
    }
    seeds.put("client_connect", "ruok", b"ruok");
    seeds.put("client_connect", "srvr", b"srvr");

    // Request bodies, one per opcode; as a stream after a ConnectRequest too.
    let mut stream = Vec::new();
    frame::write(&mut stream, &connect_requests()[0].1.to_bytes());
    for (op, body) in request_bodies() {
        let index = rzk_fuzz::OPCODES.iter().position(|o| *o == op).expect("listed") as u8;
        let mut selected = vec![index];
        selected.extend_from_slice(&body);
        seeds.put("client_request", &format!("{op:?}"), &selected);
        let mut payload = RequestHeader { xid: 1, op_type: op.code() }.to_bytes();
        payload.extend_from_slice(&body);
        frame::write(&mut stream, &payload);
    }
    seeds.put("client_stream", "session", &stream);
    let mut ping = Vec::new();
    frame::write(&mut ping, &connect_requests()[1].1.to_bytes());
    frame::write(&mut ping, &RequestHeader { xid: -2, op_type: 11 }.to_bytes());
    frame::write(&mut ping, &RequestHeader { xid: 2, op_type: -11 }.to_bytes());
    seeds.put("client_stream", "ping-close", &ping);
    // The same streams for the connection core, cut into 63-byte chunks whose control byte
    // establishes the session and answers every request (0xff), or leaves the session
    // awaited (0x3f).
    for (name, ctl, bytes) in
        [("session", 0xff, &stream), ("awaited", 0x3f, &stream), ("ping", 0xff, &ping)]
    {
        let mut driven = Vec::new();
        for chunk in bytes.chunks(63) {
            driven.push(ctl & 0xc0 | chunk.len() as u8);
            driven.extend_from_slice(chunk);
        }
        seeds.put("server_connection", name, &driven);
    }

    // multi and multiRead, requests and responses.
    seeds.put("multi", "writes", &multi_writes().to_bytes());
    seeds.put("multi", "reads", &multi_reads().to_bytes());
    seeds.put("multi", "results", &multi_results().to_bytes());
    // The failed multi reply captured from ZooKeeper (jute::proto tests).
    let failed = MultiResponse { results: vec![MultiResult::Error(0), MultiResult::Error(-110)] };
    seeds.put("multi", "failed-captured", &failed.to_bytes());

    // What the client reads back.
    let connect = ConnectResponse {
        protocol_version: 0,
        time_out: 30_000,
        session_id: 0x0100_000a_47bc_0000,
        passwd: vec![7; 16],
        read_only: Some(false),
    };
    seeds.put("client_reply", "connect-response", &connect.to_bytes());
    for (op, body) in reply_bodies() {
        let index = rzk_fuzz::OPCODES.iter().position(|o| *o == op).expect("listed") as u8;
        let mut payload = vec![index];
        ReplyHeader { xid: 1, zxid: 5, err: 0 }.encode(&mut payload);
        payload.extend_from_slice(&body);
        seeds.put("client_reply", &format!("{op:?}"), &payload);
    }
    let mut event = vec![0];
    ReplyHeader { xid: -1, zxid: 6, err: 0 }.encode(&mut event);
    WatcherEvent { event_type: 3, state: 3, path: "/a".into() }.encode(&mut event);
    seeds.put("client_reply", "notification", &event);

    // The learner connection.
    for (name, packet) in quorum_packets() {
        seeds.put("quorum_packet", &name, &packet.to_bytes());
    }
    let mut sync = Vec::new();
    for msg in [Msg::Diff { zxid: 1 }, Msg::NewLeader { zxid: 1 << 32 }, Msg::UpToDate] {
        sync.extend_from_slice(&to_packet(&msg, "version=0").to_bytes());
    }
    seeds.put("quorum_packet", "diff-newleader-uptodate", &sync);
    let mut snap = Vec::new();
    write_snap(&mut snap, &sample_tree(), &[(0x55, 30_000), (0x0300_0000_0000_0001, 4000)])
        .expect("in memory");
    seeds.put("snap_stream", "tree", &snap);
    let mut empty = Vec::new();
    write_snap(&mut empty, &DataTree::new(false), &[]).expect("in memory");
    seeds.put("snap_stream", "fresh-tree", &empty);

    // The election port.
    for (name, n) in notifications() {
        seeds.put("election_notification", name, &n);
    }
    let v1 = encode_initial(ServerId(1), &[HostPort { host: "127.0.0.1".into(), port: 23881 }]);
    let v2 = encode_initial(
        ServerId(7),
        &[
            HostPort { host: "10.0.0.1".into(), port: 3888 },
            HostPort { host: "::1".into(), port: 3889 },
        ],
    );
    let mut with_vote = v1.clone();
    with_vote.extend_from_slice(&rzk::quorum::cnxmanager::frame(&notifications()[0].1));
    seeds.put("election_handshake", "v1-captured", &v1);
    seeds.put("election_handshake", "v2", &v2);
    seeds.put("election_handshake", "v1-then-vote", &with_vote);
    seeds.put("election_handshake", "legacy", &5i64.to_be_bytes());

    // Txn records, log files and snapshots: ours and the fixture files written by ZooKeeper.
    for (i, entry) in txn_entries().iter().enumerate() {
        let mut payload = Vec::new();
        entry.encode(&mut payload);
        seeds.put("txn_entry", &format!("type{}-{i}", entry.header.txn_type), &payload);
    }
    let captured = "0100000bac350000 00000000 0000000000000001 000001a2183444fc fffffff6 \
                    00002710 00000002 0000000051c6d660";
    seeds.put("txn_entry", "create-session-captured", &hex(captured));
    for name in ["log.1", "log.12"] {
        seeds.put("txn_log", name, &fs::read(fixtures.join(name)).expect("fixture log"));
    }
    for name in ["snapshot.0", "snapshot.11"] {
        seeds.put("snapshot", name, &fs::read(fixtures.join(name)).expect("fixture snapshot"));
    }
    let scratch = std::env::temp_dir().join(format!("rzk-fuzz-seeds-{}", std::process::id()));
    fs::create_dir_all(&scratch).expect("scratch dir");
    seeds.put("txn_log", "every-type", &written_log(&scratch));
    seeds.put("snapshot", "ours", &written_snapshot(&scratch));
    fs::remove_dir_all(&scratch).expect("scratch dir");

    // zoo.cfg.
    for entry in fs::read_dir("conf").expect("conf/") {
        let path = entry.expect("conf entry").path();
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        seeds.put("zoo_cfg", &name, &fs::read(&path).expect("conf file"));
    }
    seeds.put(
        "zoo_cfg",
        "escapes",
        b"a\\\n  b=c\\u0041\\\\\r\nserver.1=[::1]:2888:3888:observer\n",
    );

    println!("wrote {} seeds under {}", seeds.written, root.display());
}

struct Seeds {
    root: PathBuf,
    written: usize,
}

impl Seeds {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("corpus dir");
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' })
            .collect();
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed written");
        self.written += 1;
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn connect_requests() -> Vec<(&'static str, ConnectRequest)> {
    let base = ConnectRequestBase {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 30_000,
        session_id: 0,
        passwd: Some(vec![0; 16]),
    };
    let reattach = ConnectRequestBase {
        last_zxid_seen: 0x1_0000_0004,
        session_id: 0x0100_000a_47bc_0000,
        passwd: Some(vec![9; 16]),
        ..base.clone()
    };
    vec![
        ("new-session", ConnectRequest { base: base.clone(), read_only: Some(false) }),
        ("old-client", ConnectRequest { base, read_only: None }),
        ("reattach-read-only", ConnectRequest { base: reattach, read_only: Some(true) }),
    ]
}

fn acl() -> Vec<Acl> {
    vec![Acl::new(31, "world", "anyone"), Acl::new(1, "ip", "10.0.0.0/8")]
}

fn request_bodies() -> Vec<(OpCode, Vec<u8>)> {
    let create =
        CreateRequest { path: "/a".into(), data: Some(b"hello".to_vec()), acl: acl(), flags: 3 };
    let path_watch = PathWatchRequest { path: "/a".into(), watch: true }.to_bytes();
    let path = PathRequest { path: "/a".into() }.to_bytes();
    let mut delete_container = Vec::new();
    delete_container.put_str("/c");
    vec![
        (OpCode::Create, create.to_bytes()),
        (OpCode::Create2, create.to_bytes()),
        (OpCode::CreateContainer, CreateRequest { flags: 4, ..create.clone() }.to_bytes()),
        (
            OpCode::CreateTtl,
            CreateTtlRequest {
                path: "/t".into(),
                data: None,
                acl: vec![Acl::new(31, "digest", "user:x")],
                flags: 5,
                ttl: 60_000,
            }
            .to_bytes(),
        ),
        (OpCode::Delete, DeleteRequest { path: "/a".into(), version: -1 }.to_bytes()),
        (OpCode::DeleteContainer, delete_container),
        (OpCode::Exists, path_watch.clone()),
        (OpCode::GetData, path_watch.clone()),
        (OpCode::GetChildren, path_watch.clone()),
        (OpCode::GetChildren2, path_watch),
        (
            OpCode::SetData,
            SetDataRequest { path: "/a".into(), data: Some(vec![1, 2]), version: 3 }.to_bytes(),
        ),
        (OpCode::GetAcl, path.clone()),
        (OpCode::SetAcl, SetAclRequest { path: "/a".into(), acl: acl(), version: 0 }.to_bytes()),
        (OpCode::Sync, path.clone()),
        (OpCode::GetAllChildrenNumber, path.clone()),
        (OpCode::GetEphemerals, path),
        (OpCode::Check, CheckVersionRequest { path: "/a".into(), version: 1 }.to_bytes()),
        (OpCode::Multi, multi_writes().to_bytes()),
        (OpCode::MultiRead, multi_reads().to_bytes()),
        (
            OpCode::Reconfig,
            ReconfigRequest {
                joining_servers: Some("server.4=127.0.0.1:2891:3891".into()),
                leaving_servers: None,
                new_members: None,
                cur_config_id: -1,
            }
            .to_bytes(),
        ),
        (OpCode::CheckWatches, WatchesRequest { path: "/a".into(), watcher_type: 1 }.to_bytes()),
        (OpCode::RemoveWatches, WatchesRequest { path: "/a".into(), watcher_type: 3 }.to_bytes()),
        (
            OpCode::Auth,
            AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"user:pw".to_vec()) }
                .to_bytes(),
        ),
        (
            OpCode::SetWatches,
            SetWatches {
                relative_zxid: 5,
                data_watches: vec!["/a".into()],
                exist_watches: vec!["/b".into()],
                child_watches: vec!["/".into()],
            }
            .to_bytes(),
        ),
        (
            OpCode::SetWatches2,
            SetWatches2 {
                relative_zxid: 5,
                data_watches: vec!["/a".into()],
                persistent_recursive_watches: vec!["/r".into()],
                ..SetWatches2::default()
            }
            .to_bytes(),
        ),
        (OpCode::Sasl, SaslToken { token: Some(vec![0x60, 0x82]) }.to_bytes()),
        (OpCode::AddWatch, AddWatchRequest { path: "/a".into(), mode: 1 }.to_bytes()),
        (OpCode::WhoAmI, Vec::new()),
        (OpCode::Ping, Vec::new()),
        (OpCode::CloseSession, Vec::new()),
    ]
}

fn multi_writes() -> MultiRequest {
    MultiRequest {
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
                op: OpCode::CreateTtl,
                req: CreateTtlRequest {
                    path: "/t".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 6,
                    ttl: 1000,
                },
            },
            MultiOp::Check(CheckVersionRequest { path: "/a".into(), version: 0 }),
            MultiOp::SetData(SetDataRequest { path: "/a".into(), data: None, version: -1 }),
            MultiOp::Delete(DeleteRequest { path: "/a".into(), version: -1 }),
        ],
    }
}

fn multi_reads() -> MultiRequest {
    MultiRequest {
        ops: vec![
            MultiOp::GetChildren(PathRequest { path: "/".into() }),
            MultiOp::GetData(PathRequest { path: "/a".into() }),
        ],
    }
}

fn stat() -> Stat {
    Stat {
        czxid: 2,
        mzxid: 3,
        ctime: 1000,
        mtime: 2000,
        version: 1,
        data_length: 5,
        ..Stat::default()
    }
}

fn multi_results() -> MultiResponse {
    MultiResponse {
        results: vec![
            MultiResult::Create("/a".into()),
            MultiResult::Create2("/b".into(), stat()),
            MultiResult::SetData(stat()),
            MultiResult::Delete,
            MultiResult::Check,
            MultiResult::GetChildren(vec!["x".into(), "y".into()]),
            MultiResult::GetData(Some(b"hello".to_vec()), stat()),
            MultiResult::Error(-101),
        ],
    }
}

fn reply_bodies() -> Vec<(OpCode, Vec<u8>)> {
    vec![
        (OpCode::Create, CreateResponse { path: "/a".into() }.to_bytes()),
        (OpCode::Create2, Create2Response { path: "/a".into(), stat: stat() }.to_bytes()),
        (OpCode::Exists, StatResponse { stat: stat() }.to_bytes()),
        (
            OpCode::GetData,
            GetDataResponse { data: Some(b"hello".to_vec()), stat: stat() }.to_bytes(),
        ),
        (OpCode::GetAcl, GetAclResponse { acl: acl(), stat: stat() }.to_bytes()),
        (OpCode::GetChildren, StringListResponse { list: vec!["a".into(), "b".into()] }.to_bytes()),
        (
            OpCode::GetChildren2,
            GetChildren2Response { children: vec!["a".into()], stat: stat() }.to_bytes(),
        ),
        (OpCode::Sync, SyncResponse { path: "/".into() }.to_bytes()),
        (OpCode::GetAllChildrenNumber, GetAllChildrenNumberResponse { total_number: 7 }.to_bytes()),
        (OpCode::Multi, multi_results().to_bytes()),
        (
            OpCode::WhoAmI,
            WhoAmIResponse {
                client_info: vec![rzk::jute::data::ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                }],
            }
            .to_bytes(),
        ),
    ]
}

fn txn_entries() -> Vec<TxnEntry> {
    let create = CreateTxn {
        path: "/a".into(),
        data: Some(b"x".to_vec()),
        acl: Acl::open_unsafe(),
        ephemeral: true,
        parent_cversion: 1,
    };
    let bodies = vec![
        (-10, Txn::CreateSession { timeout_ms: 30_000 }),
        (1, Txn::Create(create.clone())),
        (
            21,
            Txn::CreateTtl(CreateTtlTxn {
                path: "/t".into(),
                data: None,
                acl: Acl::read_unsafe(),
                parent_cversion: 2,
                ttl: 500,
            }),
        ),
        (
            19,
            Txn::CreateContainer(CreateContainerTxn {
                path: "/c".into(),
                data: Some(vec![]),
                acl: Acl::open_unsafe(),
                parent_cversion: 3,
            }),
        ),
        (5, Txn::SetData(SetDataTxn { path: "/a".into(), data: Some(vec![9; 3]), version: 1 })),
        (7, Txn::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::read_unsafe(), version: 1 })),
        (
            14,
            Txn::Multi(vec![
                SubTxn { op: 1, txn: Txn::Create(CreateTxn { path: "/m".into(), ..create }) },
                SubTxn {
                    op: 13,
                    txn: Txn::Check(CheckVersionTxn { path: "/".into(), version: 0 }),
                },
                SubTxn { op: -1, txn: Txn::Error(-2) },
            ]),
        ),
        (2, Txn::Delete(DeleteTxn { path: "/c".into() })),
        (-1, Txn::Error(-110)),
        (-11, Txn::CloseSession(Some(vec!["/a".into()]))),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (txn_type, txn))| {
            let zxid = i as i64 + 1;
            let header =
                TxnHeader { client_id: 0x100, cxid: zxid as i32, zxid, time: 1000, txn_type };
            let digest =
                (txn_type != -1).then_some(TxnDigest { version: 2, tree_digest: zxid * 7 });
            TxnEntry { header, txn, digest }
        })
        .collect()
}

fn sample_tree() -> DataTree {
    let mut tree = DataTree::new(false);
    let creates = [
        ("/a", Some(b"hello".to_vec()), Acl::read_unsafe(), false),
        ("/a/b", None, Acl::open_unsafe(), false),
        ("/e", Some(vec![]), vec![Acl::new(31, "digest", "u:hash")], true),
    ];
    for (i, (path, data, acl, ephemeral)) in creates.into_iter().enumerate() {
        let zxid = i as i64 + 1;
        let hdr = TxnHeader { client_id: 0x55, cxid: 1, zxid, time: 1000, txn_type: 1 };
        let txn =
            Txn::Create(CreateTxn { path: path.into(), data, acl, ephemeral, parent_cversion: -1 });
        let _ = tree.apply(&hdr, &txn);
    }
    tree
}

fn quorum_packets() -> Vec<(String, QuorumPacket)> {
    let mut proposal = Vec::new();
    txn_entries()[1].encode(&mut proposal);
    let payload: Arc<[u8]> = Arc::from(proposal.as_slice());
    let msgs = [
        Msg::LearnerInfo { sid: ServerId(3), accepted_epoch: 7, observer: false },
        Msg::LearnerInfo { sid: ServerId(4), accepted_epoch: 0, observer: true },
        Msg::LeaderInfo { epoch: 8 },
        Msg::AckEpoch { current_epoch: 7, last_zxid: 0x7_0000_0003 },
        Msg::Trunc { zxid: 6 },
        Msg::Snap { zxid: 7 },
        Msg::Proposal { zxid: 0x8_0000_0002, payload: payload.clone() },
        Msg::Commit { zxid: 0x8_0000_0002 },
        Msg::Inform { zxid: 0x8_0000_0002, payload },
        Msg::NewLeader { zxid: 0x8_0000_0000 },
        Msg::Ack { zxid: 11 },
        Msg::Ping { zxid: 12 },
        Msg::Sync,
    ];
    let mut out: Vec<(String, QuorumPacket)> = msgs
        .iter()
        .map(|m| {
            let p = to_packet(m, "server.1=127.0.0.1:2888:3888\nversion=100000000");
            (p.packet_type().expect("known").name().to_lowercase(), p)
        })
        .collect();
    let create = CreateRequest { path: "/a".into(), data: None, acl: Acl::open_unsafe(), flags: 0 }
        .to_bytes();
    let request = RequestData { session_id: 0x0300_0000_0000_0001, cxid: 4, op: 1, body: create };
    let mut forwarded = QuorumPacket::new(PacketType::Request, 0, Some(request.encode()));
    forwarded.authinfo = Some(vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:x")]);
    out.push(("request-with-authinfo".into(), forwarded));
    let touched = encode_ping_sessions(&[(1, 4000), (0x0300_0000_0000_0001, 30_000)]);
    out.push(("ping-touches".into(), QuorumPacket::new(PacketType::Ping, 5, Some(touched))));
    let revalidate = RevalidateRequest { session_id: 77, timeout_ms: 6000 }.encode();
    out.push(("revalidate".into(), QuorumPacket::new(PacketType::Revalidate, 0, Some(revalidate))));
    let answer = RevalidateReply { session_id: 77, valid: true }.encode();
    out.push((
        "revalidate-reply".into(),
        QuorumPacket::new(PacketType::Revalidate, 0, Some(answer)),
    ));
    // The ACK captured from ZooKeeper (zab::packet tests).
    out.push(("ack-captured".into(), QuorumPacket::new(PacketType::Ack, 0x1_0000_0000, None)));
    out
}

fn notifications() -> Vec<(&'static str, Vec<u8>)> {
    // The notification captured from ZooKeeper 3.8 (quorum::wire tests).
    let config = "server.1=127.0.0.1:22881:23881:participant\n\
                  server.2=127.0.0.1:22882:23882:participant\n\
                  server.3=127.0.0.1:22883:23883:participant\n\
                  version=0";
    let vote = Vote {
        leader: ServerId(2),
        zxid: Zxid(0),
        election_epoch: 1,
        peer_epoch: 0,
        state: ServerState::Looking,
    };
    let captured = Notification::from_vote(&vote, config.as_bytes());
    let following = Notification {
        state: ServerState::Following,
        zxid: Zxid::new(5, 9),
        peer_epoch: 4,
        ..captured.clone()
    };
    vec![
        ("captured", captured.encode()),
        ("bytes28", following.encode_as(Format::Bytes28)),
        ("bytes40", following.encode_as(Format::Bytes40)),
        ("version1", following.encode_as(Format::Version1)),
    ]
}

fn written_log(dir: &Path) -> Vec<u8> {
    let mut log = TxnLogWriter::new(dir, 0).expect("log writer");
    for entry in txn_entries() {
        log.append(&entry).expect("append");
    }
    let path = log.current_path().expect("a log file").to_path_buf();
    log.close().expect("close");
    fs::read(path).expect("written log")
}

fn written_snapshot(dir: &Path) -> Vec<u8> {
    let tree = sample_tree();
    let mut w = SnapshotWriter::create(dir, 3).expect("snapshot writer");
    w.sessions(&[(0x55, 30_000)]).expect("sessions");
    w.acl_cache(&tree.acl_cache().entries()).expect("acl cache");
    for path in tree.paths_preorder() {
        let node = tree.node(&path).expect("listed node");
        w.node(&path, node.data.as_deref(), node.acl, &node.stat).expect("node");
    }
    fs::read(w.finish(Some((3, 0x1234)), 3).expect("finish")).expect("written snapshot")
}
