//! rzk's Zab wire formats against a real Apache ZooKeeper 3.8 leader.
//!
//! Two Apache servers (sids 1 and 2) of a three-server ensemble elect a leader between them;
//! this test is sid 3 and joins as a follower by hand, with `rzk::quorum::zab`:
//! FOLLOWERINFO -> LEADERINFO -> ACKEPOCH -> SNAP + stream (read into a `DataTree` with
//! `read_snap`) -> NEWLEADER -> ACK -> UPTODATE -> ACK. Then a znode created through an Apache
//! client port arrives as PROPOSAL (decoded with rzk's txn decoder) and COMMIT, and a setData
//! forwarded by us as REQUEST (after a REVALIDATE that makes us the session's owner) comes
//! back as a PROPOSAL carrying our cxid. PINGs are answered throughout by echoing them.
//!
//! Needs `java` and `/usr/share/java/zookeeper.jar` (Debian's zookeeper package); without them
//! it prints why and passes. The Java processes are killed when their guard drops (also on a
//! panic); every wait has a deadline.

mod harness;

use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::Raw;
use rzk::jute::data::{Acl, Id};
use rzk::jute::proto::{CreateRequest, SetDataRequest};
use rzk::jute::txn::{Txn, TxnEntry};
use rzk::jute::Jute;
use rzk::limits::QUORUM_PACKET_MAX_BYTES_DEFAULT;
use rzk::quorum::zab::packet::{
    decode_int_data, encode_int_data, encode_ping_sessions, read_packet, write_packet, LearnerInfo,
    PacketType, QuorumPacket, RequestData, RevalidateReply, RevalidateRequest, PROTOCOL_VERSION,
};
use rzk::quorum::zab::snap::read_snap;

const TICK_MS: u64 = 400;
const SESSION_TIMEOUT_MS: i32 = 8000;
/// How long the ensemble may take to start and elect.
const START_DEADLINE: Duration = Duration::from_secs(25);

/// Java processes, killed on drop; their logs are printed if the test fails.
struct Ensemble {
    children: Vec<(Child, PathBuf)>,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for (child, log) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                eprintln!("---- {} (tail) ----\n{}", log.display(), tail.join("\n"));
            }
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn classpath() -> Option<String> {
    let java = Path::new("/usr/share/java");
    let zk = java.join("zookeeper.jar");
    if !zk.exists() {
        let why = format!("{} not found (Debian's zookeeper package)", zk.display());
        harness::require("Apache ZooKeeper", Some(why));
        return None;
    }
    let parts = [zk, java.join("zookeeper-jute.jar"), java.join("slf4j-simple.jar")];
    let parts: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
    Some(parts.join(":"))
}

/// The learner side of one connection: reads packets, answers PINGs, records the sequence.
struct Learner {
    input: BufReader<TcpStream>,
    output: BufWriter<TcpStream>,
    seen: Vec<String>,
    touched: Vec<(i64, i32)>,
}

impl Learner {
    fn send(&mut self, p: QuorumPacket) {
        write_packet(&mut self.output, &p).expect("write packet");
        self.output.flush().expect("flush");
    }

    /// The next packet that is not a PING (PINGs are echoed with our touched sessions).
    fn next(&mut self) -> QuorumPacket {
        loop {
            let p = read_packet(&mut self.input, QUORUM_PACKET_MAX_BYTES_DEFAULT)
                .unwrap_or_else(|e| panic!("reading a packet after {:?}: {e}", self.seen));
            if p.packet_type() == Some(PacketType::Ping) {
                self.answer_ping(&p);
                continue;
            }
            self.seen.push(p.to_string());
            return p;
        }
    }

    /// Reads until a PING arrives and echoes it.
    fn wait_ping(&mut self) {
        loop {
            let p = read_packet(&mut self.input, QUORUM_PACKET_MAX_BYTES_DEFAULT)
                .unwrap_or_else(|e| panic!("waiting for a PING after {:?}: {e}", self.seen));
            if p.packet_type() == Some(PacketType::Ping) {
                self.answer_ping(&p);
                return;
            }
            self.seen.push(p.to_string());
        }
    }

    fn answer_ping(&mut self, p: &QuorumPacket) {
        if !self.seen.last().is_some_and(|s| s.starts_with("PING")) {
            self.seen.push(p.to_string());
        }
        let data = encode_ping_sessions(&self.touched);
        let reply = QuorumPacket {
            typ: p.typ,
            zxid: p.zxid,
            data: Some(data),
            authinfo: p.authinfo.clone(),
        };
        self.send(reply);
    }

    fn expect(&mut self, t: PacketType) -> QuorumPacket {
        let p = self.next();
        assert_eq!(p.packet_type(), Some(t), "expected {t}, got {p} after {:?}", self.seen);
        p
    }
}

#[test]
fn rzk_learner_syncs_with_an_apache_leader_and_follows_broadcasts() {
    let Some(cp) = classpath() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (harness::ports::one(), harness::ports::one(), harness::ports::one()))
        .collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (q, e, _))| format!("server.{}=127.0.0.1:{q}:{e}\n", i + 1))
        .collect();
    let mut ensemble = Ensemble { children: Vec::new() };
    for sid in 1..=2usize {
        let data = dir.path().join(format!("data{sid}"));
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{sid}\n")).expect("myid");
        let cfg = dir.path().join(format!("zoo{sid}.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n\
                 admin.enableServer=false\n{servers}",
                data.display(),
                ports[sid - 1].2
            ),
        )
        .expect("zoo.cfg");
        let log = dir.path().join(format!("apache{sid}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-Dzookeeper.forceSync=no")
            .arg("-cp")
            .arg(&cp)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn();
        match child {
            Ok(c) => ensemble.children.push((c, log)),
            Err(e) => {
                harness::require("java", Some(format!("cannot run java: {e}")));
                return;
            }
        }
    }

    // The leader: the one whose `srvr` says so.
    let deadline = Instant::now() + START_DEADLINE;
    let leader = loop {
        let found = (0..2).find(|i| {
            let addr = loopback(ports[*i].2);
            TcpStream::connect(addr).is_ok()
                && harness::four_letter(addr, "srvr").contains("Mode: leader")
        });
        if let Some(i) = found {
            break i;
        }
        assert!(Instant::now() < deadline, "no Apache leader within {START_DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (leader_quorum, _, leader_client) = ports[leader];

    // A session and a znode that exist before we join, so the SNAP carries both.
    let mut client = Raw::connect(loopback(leader_client));
    let session = client.handshake(SESSION_TIMEOUT_MS);
    let create = |path: &str, data: &[u8]| CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
    };
    let (h, _) = client.call(1, 1, &create("/before", b"b").to_bytes());
    assert_eq!(h.err, 0, "create /before");

    // Discovery.
    let stream = TcpStream::connect(loopback(leader_quorum)).expect("connect to the quorum port");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let mut learner = Learner {
        input: BufReader::new(stream.try_clone().expect("clone")),
        output: BufWriter::new(stream),
        seen: Vec::new(),
        touched: Vec::new(),
    };
    let info = LearnerInfo { serverid: 3, protocol_version: PROTOCOL_VERSION, config_version: 0 };
    learner.send(QuorumPacket::new(PacketType::FollowerInfo, 0, Some(info.encode())));
    let leader_info = learner.expect(PacketType::LeaderInfo);
    assert_eq!(decode_int_data(leader_info.data()).expect("protocol version"), PROTOCOL_VERSION);
    let epoch_zxid = leader_info.zxid;
    assert!(epoch_zxid > 0 && epoch_zxid & 0xffff_ffff == 0, "LEADERINFO zxid {epoch_zxid:#x}");
    // Our accepted epoch (0) is older: ACKEPOCH carries our current epoch 0 and last zxid 0.
    learner.send(QuorumPacket::new(PacketType::AckEpoch, 0, Some(encode_int_data(0))));

    // Synchronization: a learner with nothing gets the whole database.
    let snap = learner.expect(PacketType::Snap);
    let state = read_snap(&mut learner.input, snap.zxid, false, QUORUM_PACKET_MAX_BYTES_DEFAULT)
        .expect("SNAP stream");
    let tree = &state.tree;
    for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config", "/before"] {
        assert!(tree.node(path).is_some(), "{path} missing from the SNAP tree");
    }
    let before = tree.node("/before").expect("/before");
    assert_eq!(before.data.as_deref(), Some(&b"b"[..]));
    assert_eq!(tree.acl_of(before).to_vec(), Acl::open_unsafe());
    assert!(
        state.sessions.iter().any(|(id, t)| *id == session.session_id && *t > 0),
        "session 0x{:x} missing from {:?}",
        session.session_id,
        state.sessions
    );
    assert_eq!(tree.last_processed_zxid, snap.zxid);
    learner.seen.push(format!(
        "[{} sessions, {} znodes, {} ACL lists]",
        state.sessions.len(),
        tree.node_count(),
        tree.acl_cache().len()
    ));

    let new_leader = learner.expect(PacketType::NewLeader);
    assert_eq!(new_leader.zxid, epoch_zxid);
    let config = String::from_utf8_lossy(new_leader.data()).into_owned();
    assert!(config.contains("server.3="), "NEWLEADER config {config:?}");
    learner.send(QuorumPacket::new(PacketType::Ack, epoch_zxid, None));
    let up_to_date = learner.expect(PacketType::UpToDate);
    assert_eq!(up_to_date.zxid, -1);
    learner.send(QuorumPacket::new(PacketType::Ack, epoch_zxid, None));

    // Broadcast: a create through Apache's client port.
    let (h, _) = client.call(2, 1, &create("/zabwire", b"from-apache").to_bytes());
    assert_eq!(h.err, 0, "create /zabwire");
    let proposal = learner.expect(PacketType::Proposal);
    let entry = TxnEntry::decode(proposal.data()).expect("txn payload");
    assert_eq!(entry.header.zxid, proposal.zxid);
    assert_eq!(entry.header.client_id, session.session_id);
    // 3.8 proposes the txn exactly as it logs it, TxnDigest trailer included.
    assert_eq!(entry.digest.map(|d| d.version), Some(2));
    match &entry.txn {
        Txn::Create(c) => {
            assert_eq!(c.path, "/zabwire");
            assert_eq!(c.data.as_deref(), Some(&b"from-apache"[..]));
        }
        other => panic!("expected a create txn, got {other:?}"),
    }
    learner.send(QuorumPacket::new(PacketType::Ack, proposal.zxid, None));
    let commit = learner.expect(PacketType::Commit);
    assert_eq!(commit.zxid, proposal.zxid);

    // A request forwarded by us: take the session over (REVALIDATE), then setData.
    let timeout_ms = session.time_out;
    let revalidate = RevalidateRequest { session_id: session.session_id, timeout_ms };
    learner.send(QuorumPacket::new(PacketType::Revalidate, -1, Some(revalidate.encode())));
    let reply = learner.expect(PacketType::Revalidate);
    let reply = RevalidateReply::decode(reply.data()).expect("REVALIDATE reply");
    assert_eq!(reply, RevalidateReply { session_id: session.session_id, valid: true });
    learner.touched = vec![(session.session_id, timeout_ms)];
    let set =
        SetDataRequest { path: "/zabwire".into(), data: Some(b"via-rzk".to_vec()), version: -1 };
    let request =
        RequestData { session_id: session.session_id, cxid: 77, op: 5, body: set.to_bytes() };
    let mut packet = QuorumPacket::new(PacketType::Request, -1, Some(request.encode()));
    packet.authinfo = Some(vec![Id::new("ip", "127.0.0.1")]);
    learner.send(packet);
    let proposal = learner.expect(PacketType::Proposal);
    let entry = TxnEntry::decode(proposal.data()).expect("txn payload");
    assert_eq!((entry.header.client_id, entry.header.cxid), (session.session_id, 77));
    match &entry.txn {
        Txn::SetData(s) => {
            assert_eq!(s.path, "/zabwire");
            assert_eq!(s.data.as_deref(), Some(&b"via-rzk"[..]));
            assert_eq!(s.version, 1);
        }
        other => panic!("expected a setData txn, got {other:?}"),
    }
    learner.send(QuorumPacket::new(PacketType::Ack, proposal.zxid, None));
    let commit = learner.expect(PacketType::Commit);
    assert_eq!(commit.zxid, proposal.zxid);

    // Answer at least one more PING (the leader sends one every tickTime / 2).
    learner.wait_ping();
    let _ = writeln!(
        std::io::stderr(),
        "zab_wire_apache: leader sid {}, packets from the leader: {}",
        leader + 1,
        learner.seen.join(" -> ")
    );
    drop(ensemble);
}
