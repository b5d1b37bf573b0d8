//! Unit tests of `txnlog`.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::jute::data::Acl;
use crate::jute::txn::{
    CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, DeleteTxn, SetAclTxn, SetDataTxn,
    SubTxn, Txn, TxnDigest, TxnHeader,
};
use crate::jute::Jute;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apache-3.8.0-datadir/version-2")
}

fn entry(zxid: i64, txn_type: i32, txn: Txn) -> TxnEntry {
    let header = TxnHeader { client_id: 0x100, cxid: zxid as i32, zxid, time: 1_000, txn_type };
    let digest = Some(TxnDigest { version: 2, tree_digest: zxid * 7 });
    TxnEntry { header, txn, digest }
}

fn every_txn_type() -> Vec<TxnEntry> {
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
        (15, Txn::Create(CreateTxn { ephemeral: false, ..create.clone() })),
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
        (
            16,
            Txn::SetData(SetDataTxn { path: "/zookeeper/config".into(), data: None, version: -1 }),
        ),
        (7, Txn::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::read_unsafe(), version: 1 })),
        (
            14,
            Txn::Multi(vec![
                SubTxn { op: 1, txn: Txn::Create(create) },
                SubTxn {
                    op: 13,
                    txn: Txn::Check(CheckVersionTxn { path: "/".into(), version: 0 }),
                },
                SubTxn { op: -1, txn: Txn::Error(-2) },
            ]),
        ),
        (2, Txn::Delete(DeleteTxn { path: "/a".into() })),
        (20, Txn::Delete(DeleteTxn { path: "/c".into() })),
        (-1, Txn::Error(-110)),
        (-11, Txn::CloseSession(Some(vec!["/e1".into(), "/e2".into()]))),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (ty, txn))| {
            let mut e = entry(i as i64 + 1, ty, txn);
            if ty == -1 {
                e.digest = None; // error txns carry no digest
            }
            e
        })
        .collect()
}

/// The first `n` bytes of a (large, sparse) file.
fn read_prefix(path: &Path, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = vec![0; n];
    File::open(path).unwrap().read_exact(&mut bytes).unwrap();
    bytes
}

fn read_all(dir: &Path, from: i64) -> (Vec<TxnEntry>, Option<TornTail>) {
    let mut it = read_log(dir, from).unwrap();
    let txns = it.by_ref().map(|t| t.unwrap().entry).collect();
    (txns, it.torn_tail().cloned())
}

#[test]
fn every_txn_type_round_trips_through_the_mapped_writer() {
    let dir = tempfile::tempdir().unwrap();
    let entries = every_txn_type();
    let mut log = TxnLogWriter::new(dir.path(), 4096).unwrap();
    for e in &entries {
        log.append(e).unwrap();
    }
    log.commit(true).unwrap();
    log.close().unwrap();
    let (read, tail) = read_all(dir.path(), 0);
    assert_eq!(read, entries);
    assert_eq!(tail, None);
    let (from_5, _) = read_all(dir.path(), 5);
    assert_eq!(from_5, entries[4..]);
}

#[test]
fn first_record_makes_an_allocated_16_plus_64_mib_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TxnLogWriter::new(dir.path(), DEFAULT_PREALLOC_BYTES).unwrap();
    log.append(&entry(1, -10, Txn::CreateSession { timeout_ms: 10_000 })).unwrap();
    log.commit(true).unwrap();
    assert_eq!(log.current_path(), Some(dir.path().join("log.1").as_path()));
    assert_eq!(log.current_log_bytes(), 16 + 12 + 48 + 1);
    log.close().unwrap();
    let meta = fs::metadata(dir.path().join("log.1")).unwrap();
    assert_eq!(meta.len(), 16 + 64 * 1024 * 1024);
    // Real blocks (posix_fallocate): a full disk fails the growth, not a store into the map.
    assert!(meta.blocks() * 512 >= 64 * 1024 * 1024, "file is sparse: {} blocks", meta.blocks());
    let bytes = read_prefix(&dir.path().join("log.1"), 4096);
    assert_eq!(&bytes[..16], b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0");
    assert_eq!(bytes[16 + 12 + 48], b'B');
}

#[test]
fn padding_follows_file_padding() {
    let block = 64 * 1024 * 1024;
    assert_eq!(padded_size(16, 16, block), 16 + block);
    // Far from the end: unchanged.
    assert_eq!(padded_size(100, 16 + block, block), 16 + block);
    // Within 4 KiB of the end: one more step.
    assert_eq!(padded_size(16 + block - 4096, 16 + block, block), 16 + 2 * block);
    // Past the end (a large record): rounded down to a multiple of the step.
    assert_eq!(padded_size(3 * block + 5, 16 + block, block), 4 * block);
    assert_eq!(padded_size(1000, 16, 0), 16);
}

#[test]
fn files_grow_in_steps_and_records_larger_than_a_step_fit() {
    let dir = tempfile::tempdir().unwrap();
    let step = 8192;
    let mut log = TxnLogWriter::new(dir.path(), step).unwrap();
    let mut entries = Vec::new();
    for zxid in 1..=60 {
        let len = if zxid == 30 { 20_000 } else { 300 };
        let txn =
            Txn::SetData(SetDataTxn { path: "/a".into(), data: Some(vec![1; len]), version: 1 });
        entries.push(entry(zxid, 5, txn));
        log.append(entries.last().unwrap()).unwrap();
        let size = fs::metadata(log.current_path().unwrap()).unwrap().len();
        assert!(size >= log.current_log_bytes());
        assert!((size - 16).is_multiple_of(step) || size.is_multiple_of(step), "size {size}");
        if zxid % 7 == 0 {
            log.commit(zxid % 2 == 0).unwrap();
        }
    }
    log.close().unwrap();
    assert_eq!(read_all(dir.path(), 0).0, entries);
}

#[test]
fn roll_starts_a_file_named_after_the_next_zxid() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TxnLogWriter::new(dir.path(), 4096).unwrap();
    let entries = every_txn_type();
    for e in &entries {
        log.append(e).unwrap();
        if e.header.zxid == 4 || e.header.zxid == 9 {
            log.roll().unwrap();
        }
    }
    assert!(log.commit(true).is_ok());
    drop(log);
    let names: Vec<i64> =
        list_files(dir.path(), LOG_PREFIX).unwrap().into_iter().map(|(z, _)| z).collect();
    assert_eq!(names, vec![1, 5, 0xa]);
    assert_eq!(read_all(dir.path(), 0).0, entries);
    // From zxid 7: log.5 may hold it, log.1 is not read.
    assert_eq!(read_all(dir.path(), 7).0, entries[6..]);
}

#[test]
fn fixture_logs_decode_completely() {
    let (txns, tail) = read_all(&fixture_dir(), 0);
    assert_eq!(tail, None);
    let zxids: Vec<i64> = txns.iter().map(|t| t.header.zxid).collect();
    assert_eq!(zxids, (1..=0x14).collect::<Vec<_>>());
    assert_eq!(txns[0].txn, Txn::CreateSession { timeout_ms: 10_000 });
    assert_eq!(txns[0].digest, Some(TxnDigest { version: 2, tree_digest: 0x51c6_d660 }));
    let Txn::Multi(subs) = &txns[0xe - 1].txn else { panic!("zxid 0xe is a multi") };
    assert_eq!(subs.iter().map(|s| s.op).collect::<Vec<_>>(), vec![1, -1]);
    assert_eq!(txns[0x10 - 1].txn, Txn::Error(-110));
    assert!(matches!(&txns[0x11 - 1].txn, Txn::CloseSession(Some(_))));
    let Txn::Create(c) = &txns[0x14 - 1].txn else { panic!("zxid 0x14 is a create") };
    assert_eq!((c.path.as_str(), c.ephemeral), ("/app/eph2", true));
    // Re-encoding reproduces every payload byte for byte.
    let raw = fs::read(fixture_dir().join("log.1")).unwrap();
    let mut again = Vec::new();
    txns[1].encode(&mut again);
    assert_eq!(&raw[77 + 12..77 + 12 + 97], again.as_slice());
}

#[test]
fn bytes_in_memory_read_like_the_file() {
    let path = fixture_dir().join("log.1");
    let from_file: Vec<_> =
        TxnIterator::over_files(vec![path.clone()], 0).map(|t| t.unwrap()).collect();
    let bytes = fs::read(&path).unwrap();
    let from_bytes: Vec<_> =
        TxnIterator::from_bytes(path.clone(), bytes.clone(), 0).map(|t| t.unwrap()).collect();
    assert_eq!(from_bytes, from_file);
    let cut = from_file.last().unwrap().offset as usize + 20;
    let mut torn = TxnIterator::from_bytes(path, bytes[..cut].to_vec(), 0);
    assert_eq!(torn.by_ref().count(), from_file.len() - 1);
    assert_eq!(torn.torn_tail().map(|t| t.damage.clone()), Some(Damage::Truncated));
}

#[test]
fn fixture_logs_are_chosen_like_get_log_files() {
    let from_5: Vec<i64> = read_all(&fixture_dir(), 5).0.iter().map(|t| t.header.zxid).collect();
    assert_eq!(from_5, (5..=0x14).collect::<Vec<_>>());
    let it = read_log(&fixture_dir(), 0x12).unwrap();
    assert_eq!(it.files, vec![fixture_dir().join("log.12")]);
    let (txns, _) = read_all(&fixture_dir(), 0x13);
    assert_eq!(txns.iter().map(|t| t.header.zxid).collect::<Vec<_>>(), vec![0x13, 0x14]);
}

#[test]
fn writer_reproduces_zookeepers_log_bytes() {
    for name in ["log.1", "log.12"] {
        let fixture_bytes = fs::read(fixture_dir().join(name)).unwrap();
        let txns = TxnIterator::over_files(vec![fixture_dir().join(name)], 0);
        let dir = tempfile::tempdir().unwrap();
        let mut log = TxnLogWriter::new(dir.path(), DEFAULT_PREALLOC_BYTES).unwrap();
        for txn in txns {
            log.append(&txn.unwrap().entry).unwrap();
        }
        log.commit(true).unwrap();
        log.close().unwrap();
        let ours = read_prefix(&dir.path().join(name), fixture_bytes.len() + 4096);
        // The fixture's zero fill was trimmed; ours keeps all of it.
        assert_eq!(&ours[..fixture_bytes.len()], fixture_bytes.as_slice(), "{name}");
        assert!(ours[fixture_bytes.len()..].iter().all(|b| *b == 0));
    }
}

fn copy_fixture(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        fs::copy(fixture_dir().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    f(&mut bytes);
    fs::write(path, bytes).unwrap();
}

#[test]
fn truncated_last_record_is_a_torn_tail_that_can_be_cut() {
    let dir = copy_fixture(&["log.1", "log.12"]);
    let log12 = dir.path().join("log.12");
    rewrite(&log12, |b| b.truncate(183 + 50));
    let (txns, tail) = read_all(dir.path(), 0);
    assert_eq!(txns.last().unwrap().header.zxid, 0x13);
    let tail = tail.expect("torn tail reported");
    assert_eq!((tail.path.clone(), tail.valid_len), (log12.clone(), 183));
    assert_eq!(tail.damage, Damage::Truncated);
    truncate_tail(&tail).unwrap();
    assert_eq!(fs::metadata(&log12).unwrap().len(), 183);
    let (again, tail) = read_all(dir.path(), 0);
    assert_eq!((again, tail), (txns, None));
}

#[test]
fn flipped_byte_in_last_record_is_a_torn_tail() {
    let dir = copy_fixture(&["log.12"]);
    rewrite(&dir.path().join("log.12"), |b| b[183 + 40] ^= 0x10);
    let (txns, tail) = read_all(dir.path(), 0);
    assert_eq!(txns.len(), 2);
    let tail = tail.expect("torn tail reported");
    assert_eq!(tail.valid_len, 183);
    assert!(matches!(tail.damage, Damage::BadChecksum { .. }), "{:?}", tail.damage);
}

#[test]
fn missing_marker_and_zero_fill_end_the_last_file() {
    let dir = copy_fixture(&["log.12"]);
    let log12 = dir.path().join("log.12");
    rewrite(&log12, |b| b.resize(b.len() + 5000, 0));
    assert_eq!(read_all(dir.path(), 0), (read_all(&fixture_dir(), 0x12).0, None));
    rewrite(&log12, |b| b[183 + 12 + 103] = b'X');
    let tail = read_all(dir.path(), 0).1.expect("torn tail");
    assert_eq!((tail.valid_len, tail.damage), (183, Damage::MissingMarker(b'X')));
}

#[test]
fn corruption_followed_by_valid_records_is_an_error_with_the_offset() {
    let dir = copy_fixture(&["log.12"]);
    rewrite(&dir.path().join("log.12"), |b| b[77 + 30] ^= 0xff);
    let mut it = read_log(dir.path(), 0).unwrap();
    assert_eq!(it.next().unwrap().unwrap().entry.header.zxid, 0x12);
    let err = it.next().unwrap().unwrap_err();
    let LogError::Corrupt { path, offset, damage } = &err else { panic!("{err}") };
    assert_eq!((path.file_name().unwrap(), *offset), (std::ffi::OsStr::new("log.12"), 77));
    assert!(matches!(damage, Damage::BadChecksum { .. }));
    assert!(err.to_string().contains("log.12 is corrupt at offset 77"), "{err}");
    assert!(it.next().is_none());
}

#[test]
fn damaged_tail_of_an_older_file_is_an_error() {
    let dir = copy_fixture(&["log.1", "log.12"]);
    rewrite(&dir.path().join("log.1"), |b| b[1789 + 20] ^= 1);
    let err = read_log(dir.path(), 0).unwrap().find_map(|t| t.err()).expect("an error");
    assert!(matches!(err, LogError::Corrupt { offset: 1789, .. }), "{err}");
    // A truncated record in an older file only ends that file (as in ZooKeeper).
    let dir = copy_fixture(&["log.1", "log.12"]);
    rewrite(&dir.path().join("log.1"), |b| b.truncate(1789 + 30));
    let (txns, tail) = read_all(dir.path(), 0);
    assert_eq!(txns.len(), 0x14 - 1);
    assert_eq!(tail, None);
}

#[test]
fn undecodable_record_with_a_good_checksum_is_an_error_even_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TxnLogWriter::new(dir.path(), 4096).unwrap();
    log.append(&entry(1, -10, Txn::CreateSession { timeout_ms: 1 })).unwrap();
    let mut unknown = Vec::new();
    TxnHeader { client_id: 1, cxid: 1, zxid: 2, time: 0, txn_type: 99 }.encode(&mut unknown);
    log.append_raw(2, &unknown).unwrap();
    log.close().unwrap();
    let err = read_log(dir.path(), 0).unwrap().find_map(|t| t.err()).expect("an error");
    assert!(
        matches!(err, LogError::Corrupt { offset: 77, damage: Damage::Undecodable(_), .. }),
        "{err}"
    );
}

#[test]
fn bad_magic_and_short_header() {
    let dir = copy_fixture(&["log.1"]);
    rewrite(&dir.path().join("log.1"), |b| b[0] = b'X');
    let err = read_log(dir.path(), 0).unwrap().next().unwrap().unwrap_err();
    assert!(matches!(err, LogError::BadMagic { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("log.5"), b"").unwrap();
    let (txns, tail) = read_all(dir.path(), 0);
    assert!(txns.is_empty());
    let tail = tail.expect("empty newest file is a torn tail");
    assert_eq!((tail.valid_len, tail.damage.clone()), (0, Damage::ShortHeader));
    truncate_tail(&tail).unwrap();
    assert!(!dir.path().join("log.5").exists());
}

#[test]
fn truncate_cuts_after_the_zxid_and_deletes_later_files() {
    let dir = tempfile::tempdir().unwrap();
    let entries = every_txn_type();
    let mut log = TxnLogWriter::new(dir.path(), 4096).unwrap();
    for e in &entries {
        log.append(e).unwrap();
        if e.header.zxid == 6 {
            log.roll().unwrap();
        }
    }
    log.close().unwrap();
    truncate(dir.path(), 3).unwrap();
    let names: Vec<i64> =
        list_files(dir.path(), LOG_PREFIX).unwrap().into_iter().map(|(z, _)| z).collect();
    assert_eq!(names, vec![1]);
    assert_eq!(read_all(dir.path(), 0), (entries[..3].to_vec(), None));
    // A new writer continues in a new file.
    let mut log = TxnLogWriter::new(dir.path(), 4096).unwrap();
    log.append(&entries[3]).unwrap();
    log.close().unwrap();
    assert_eq!(read_all(dir.path(), 0).0, entries[..4].to_vec());
    assert!(matches!(truncate(dir.path(), 0), Err(LogError::NoLogForZxid { .. })));
}
