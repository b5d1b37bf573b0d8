//! Unit tests of `snapshot`.

use std::collections::BTreeMap;

use super::*;
use crate::persistence::digest::{node_digest, TreeDigest};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apache-3.8.0-datadir")
}

fn fixture(name: &str) -> PathBuf {
    fixture_dir().join("version-2").join(name)
}

/// Node data and the stat fields of `expected-tree.json` (pretty-printed by Python's json
/// with sorted keys: one field per line, so a line scanner suffices).
/// Path -> (data, stat field -> value).
type ExpectedTree = BTreeMap<String, (Option<Vec<u8>>, BTreeMap<String, i64>)>;

fn expected_tree() -> ExpectedTree {
    let text = fs::read_to_string(fixture_dir().join("expected-tree.json")).unwrap();
    let mut tree = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(": ") else { continue };
        let key = key.trim_matches('"').to_owned();
        let value = value.trim_end_matches(',');
        if key.starts_with('/') {
            tree.insert(key.clone(), (None, BTreeMap::new()));
            current = Some(key);
        } else if let Some(path) = &current {
            let node = tree.get_mut(path).unwrap();
            if key == "data_b64" {
                node.0 = (value != "null").then(|| base64(value.trim_matches('"')));
            } else if key != "stat" {
                node.1.insert(key, value.parse::<i64>().unwrap());
            }
        }
    }
    tree
}

fn base64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn fixture_snapshot_0_is_the_fresh_tree() {
    let snap = read_snapshot(&fixture("snapshot.0")).unwrap();
    assert!(snap.sessions.is_empty());
    assert_eq!(snap.acl_cache, vec![(1, Acl::read_unsafe())]);
    let paths: Vec<&str> = snap.nodes.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(paths, ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]);
    assert_eq!(snap.nodes[2].acl_ref, 1);
    assert_eq!(snap.nodes[2].stat.aversion, -1);
    let trailer = SnapshotTrailer {
        digest: Some(ZxidDigest { zxid: 0, version: 2, digest: 0 }),
        last_processed_zxid: None,
    };
    assert_eq!(snap.trailer, trailer);
}

#[test]
fn fixture_snapshot_11_matches_the_expected_tree_and_its_digest() {
    let snap = read_snapshot(&fixture("snapshot.11")).unwrap();
    let expected = expected_tree();
    // Sessions were all closed at zxid 0x11.
    assert!(snap.sessions.is_empty());
    let mut seen = Vec::new();
    let mut digest = TreeDigest::new();
    for node in &snap.nodes {
        digest.add(node_digest(&node.path, node.data.as_deref(), &node.stat));
        let (data, stat) = expected.get(&node.path).unwrap_or_else(|| panic!("{}", node.path));
        seen.push(node.path.clone());
        assert_eq!(node.data.as_ref().map(Vec::len).unwrap_or(0) as i64, stat["dataLength"]);
        // Null vs empty data is not visible through the client's JSON (both are 0 bytes).
        assert_eq!(node.data.clone().unwrap_or_default(), data.clone().unwrap_or_default());
        let s = &node.stat;
        let fields = [
            ("czxid", s.czxid),
            ("mzxid", s.mzxid),
            ("ctime", s.ctime),
            ("mtime", s.mtime),
            ("version", s.version.into()),
            ("aversion", s.aversion.into()),
            ("ephemeralOwner", s.ephemeral_owner),
        ];
        for (name, value) in fields {
            assert_eq!(value, stat[name], "{} {name}", node.path);
        }
        // Round 2 (zxid 0x13, 0x14) added children to "/" and "/app" after this snapshot.
        if node.path != "/" && node.path != "/app" && !node.path.starts_with("/zookeeper") {
            assert_eq!(i64::from(s.cversion), stat["cversion"], "{} cversion", node.path);
            assert_eq!(s.pzxid, stat["pzxid"], "{} pzxid", node.path);
        }
        let secure = node.path == "/secure" || node.path == "/empty";
        if node.acl_ref == OPEN_ACL_REF {
            assert!(["/", "/zookeeper", "/zookeeper/quota"].contains(&node.path.as_str()));
        }
        if secure {
            let acl = &snap.acl_cache.iter().find(|(r, _)| *r == node.acl_ref).unwrap().1;
            assert_eq!(acl.len(), 2, "{}", node.path);
        }
    }
    let created_by_round_1: Vec<String> = expected
        .iter()
        .filter(|(_, (_, stat))| stat["czxid"] <= 0x11)
        .map(|(path, _)| path.clone())
        .collect();
    seen.sort();
    assert_eq!(seen, created_by_round_1);
    let null_data = snap.nodes.iter().find(|n| n.path == "/nulldata").unwrap();
    assert_eq!(null_data.data, None);
    // The snapshot was taken at startup (not fuzzy): its digest section is this tree's.
    let recorded = snap.trailer.digest.unwrap();
    assert_eq!((recorded.zxid, recorded.version), (0x11, 2));
    assert_eq!(recorded.digest, digest.value());
    assert_eq!(snap.trailer.last_processed_zxid, None);
    // The same value closes log.1 (the TxnDigest of zxid 0x11).
    let log = crate::persistence::txnlog::read_log(&fixture_dir().join("version-2"), 0x11);
    let last = log.unwrap().next().unwrap().unwrap().entry;
    assert_eq!(last.header.zxid, 0x11);
    assert_eq!(last.digest.unwrap().tree_digest, digest.value());
}

fn write_sample(dir: &Path, zxid: i64) -> (PathBuf, Snapshot) {
    let nodes = vec![
        SnapshotNode {
            path: "/".into(),
            data: Some(vec![]),
            acl_ref: OPEN_ACL_REF,
            stat: StatPersisted { cversion: 2, pzxid: 3, ..StatPersisted::default() },
        },
        SnapshotNode {
            path: "/a".into(),
            data: Some(b"hello".to_vec()),
            acl_ref: 1,
            stat: StatPersisted { czxid: 2, mzxid: 2, ephemeral_owner: 0x55, ..Default::default() },
        },
        SnapshotNode {
            path: "/a/b".into(),
            data: None,
            acl_ref: 2,
            stat: StatPersisted { czxid: 3, version: 4, ..StatPersisted::default() },
        },
    ];
    let snap = Snapshot {
        sessions: vec![(0x55, 30_000), (0x100000001, 4_000)],
        acl_cache: vec![(1, Acl::open_unsafe()), (2, Acl::read_unsafe())],
        nodes,
        trailer: SnapshotTrailer {
            digest: Some(ZxidDigest { zxid, version: 2, digest: 0x1234 }),
            last_processed_zxid: Some(zxid),
        },
    };
    let mut w = SnapshotWriter::create(dir, zxid).unwrap();
    w.sessions(&snap.sessions).unwrap();
    w.acl_cache(&snap.acl_cache).unwrap();
    for n in &snap.nodes {
        w.node(&n.path, n.data.as_deref(), n.acl_ref, &n.stat).unwrap();
    }
    let path = w.finish(Some((zxid, 0x1234)), zxid).unwrap();
    (path, snap)
}

#[test]
fn writer_and_reader_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (path, snap) = write_sample(dir.path(), 0x1_0000_0005);
    assert_eq!(path, dir.path().join("snapshot.100000005"));
    assert!(!dir.path().join("snapshot.100000005.tmp").exists());
    assert_eq!(read_snapshot(&path).unwrap(), snap);
    assert!(looks_complete(&path).unwrap());
}

#[test]
fn bytes_in_memory_read_like_the_file() {
    let path = fixture("snapshot.11");
    let bytes = fs::read(&path).unwrap();
    let mut reader = SnapshotReader::from_bytes(&path, bytes.clone()).unwrap();
    let sessions = reader.sessions().unwrap();
    let acl_cache = reader.acl_cache().unwrap();
    let mut nodes = Vec::new();
    while let Some(node) = reader.next_node().unwrap() {
        nodes.push(node);
    }
    let trailer = reader.finish().unwrap();
    assert_eq!(Snapshot { sessions, acl_cache, nodes, trailer }, read_snapshot(&path).unwrap());
    let mut bad = bytes;
    bad[0] = b'X';
    assert!(matches!(SnapshotReader::from_bytes(&path, bad), Err(SnapshotError::BadMagic { .. })));
}

/// Found by the `snapshot` fuzz target: a negative session count overflowed the size check
/// (a panic in debug builds) before it was rejected.
#[test]
fn negative_count_is_malformed() {
    let crash = b"ZKSN\0\0\0\0\0\0\0\0\0\0\0\xff\xff\0\0\0";
    let mut reader = SnapshotReader::from_bytes(Path::new("crash"), crash.to_vec()).unwrap();
    let err = reader.sessions().unwrap_err();
    assert!(matches!(err, SnapshotError::Malformed { offset: 16, .. }), "{err}");
    assert!(err.to_string().contains("bad count -16777216"), "{err}");
}

#[test]
fn writer_reproduces_the_fixture_bytes_up_to_seal_2() {
    let fixture_bytes = fs::read(fixture("snapshot.11")).unwrap();
    let snap = read_snapshot(&fixture("snapshot.11")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut w = SnapshotWriter::create(dir.path(), 0x11).unwrap();
    w.sessions(&snap.sessions).unwrap();
    w.acl_cache(&snap.acl_cache).unwrap();
    for n in &snap.nodes {
        w.node(&n.path, n.data.as_deref(), n.acl_ref, &n.stat).unwrap();
    }
    let d = snap.trailer.digest.unwrap();
    let path = w.finish(Some((d.zxid, d.digest)), 0x11).unwrap();
    let ours = fs::read(path).unwrap();
    // 3.8 stops after seal 2; we add the last-zxid section (8 + 8 + 5 bytes).
    assert_eq!(&ours[..fixture_bytes.len()], fixture_bytes.as_slice());
    assert_eq!(ours.len(), fixture_bytes.len() + 21);
    let again = read_snapshot(&dir.path().join("snapshot.11")).unwrap();
    assert_eq!(again.nodes, snap.nodes);
    assert_eq!(again.trailer.last_processed_zxid, Some(0x11));
}

#[test]
fn every_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), 7);
    let good = fs::read(&path).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x04;
        fs::write(&path, &bad).unwrap();
        assert!(read_snapshot(&path).is_err(), "flipped byte {i} not detected");
    }
}

#[test]
fn flipped_data_byte_is_a_checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(fixture("snapshot.11"), dir.path().join("snapshot.11")).unwrap();
    let path = dir.path().join("snapshot.11");
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.windows(9).position(|w| w == b"config-v3").unwrap();
    bytes[at] = b'C';
    fs::write(&path, &bytes).unwrap();
    let err = read_snapshot(&path).unwrap_err();
    assert!(matches!(err, SnapshotError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("is damaged"), "{err}");
}

#[test]
fn truncated_snapshot_and_orphan_node_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), 7);
    let good = fs::read(&path).unwrap();
    fs::write(&path, &good[..good.len() - 30]).unwrap();
    assert!(!looks_complete(&path).unwrap());
    assert!(matches!(read_snapshot(&path), Err(SnapshotError::Truncated { .. })));
    // A file ending right after seal 1 (no digest) is valid.
    let seal1_end = fs::read(fixture("snapshot.0")).unwrap()[..0x1a8].to_vec();
    fs::write(&path, &seal1_end).unwrap();
    assert_eq!(read_snapshot(&path).unwrap().trailer.digest, None);

    let mut w = SnapshotWriter::create(dir.path(), 9).unwrap();
    w.sessions(&[]).unwrap();
    w.acl_cache(&[]).unwrap();
    w.node("/", None, OPEN_ACL_REF, &StatPersisted::default()).unwrap();
    w.node("/x/y", None, OPEN_ACL_REF, &StatPersisted::default()).unwrap();
    let path = w.finish(None, 9).unwrap();
    let err = read_snapshot(&path).unwrap_err();
    assert!(err.to_string().contains("before its parent"), "{err}");
}

#[test]
fn abandoned_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SnapshotWriter::create(dir.path(), 3).unwrap();
    w.sessions(&[]).unwrap();
    drop(w);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn listing_is_newest_first_and_skips_tmp_and_incomplete_files() {
    let dir = tempfile::tempdir().unwrap();
    for zxid in [0, 0x11, 0x100000002] {
        write_sample(dir.path(), zxid);
    }
    fs::write(dir.path().join("snapshot.200000000"), b"partial").unwrap();
    fs::write(dir.path().join("snapshot.300000000.tmp"), b"x").unwrap();
    fs::write(dir.path().join("snapshot.5.gz"), b"x").unwrap();
    fs::write(dir.path().join("log.5"), b"x").unwrap();
    let all: Vec<i64> = list_snapshots(dir.path()).unwrap().into_iter().map(|s| s.0).collect();
    assert_eq!(all, vec![0x200000000, 0x100000002, 0x11, 0]);
    let valid: Vec<i64> =
        find_n_most_recent_snapshots(dir.path(), 2).unwrap().into_iter().map(|s| s.0).collect();
    assert_eq!(valid, vec![0x100000002, 0x11]);
}
