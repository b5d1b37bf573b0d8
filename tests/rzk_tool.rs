//! Black-box tests of `rzk-tool` on the Apache ZooKeeper 3.8.0 fixture files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apache-3.8.0-datadir/version-2")
        .join(name)
}

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rzk-tool")).args(args).output().expect("rzk-tool runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn log_prints_every_txn() {
    let out = tool(&["log", fixture("log.1").to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("zxid 0x1 createSession 10000"), "{text}");
    assert!(
        text.contains("zxid 0x2 create '/app,#636f6e6669672d7631,v{s{31,s{'world,'anyone}}},F,1")
    );
    assert!(text.contains("zxid 0x10 error -110"), "{text}");
    assert!(text.ends_with("EOF reached after 17 txns.\n"), "{text}");
}

#[test]
fn snapshot_prints_nodes_and_sessions() {
    let out = tool(&["snapshot", "--data", fixture("snapshot.11").to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("ZNode Details (count=13):"), "{text}");
    assert!(text.contains("----\n/app\n  cZxid = 0x2\n"), "{text}");
    assert!(text.contains("  data = \"config-v3\""), "{text}");
    assert!(text.contains("Digest: zxid 0x11, version 2"), "{text}");
}

#[test]
fn verify_reports_damage_with_offset_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad_log = dir.path().join("log.12");
    let mut bytes = fs::read(fixture("log.12")).unwrap();
    bytes[77 + 30] ^= 0xff;
    fs::write(&bad_log, bytes).unwrap();
    let bad_snap = dir.path().join("snapshot.11");
    let mut bytes = fs::read(fixture("snapshot.11")).unwrap();
    bytes[200] ^= 1;
    fs::write(&bad_snap, bytes).unwrap();

    let good = tool(&[
        "verify",
        fixture("log.1").to_str().unwrap(),
        fixture("snapshot.0").to_str().unwrap(),
    ]);
    assert!(good.status.success(), "{}", stdout(&good));
    assert!(stdout(&good).contains("txn log, 17 txns, zxid 0x1..0x11"));

    let out = tool(&["verify", bad_log.to_str().unwrap(), bad_snap.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("log.12: DAMAGED: txn log"), "{text}");
    assert!(text.contains("corrupt at offset 77"), "{text}");
    assert!(text.contains("snapshot.11: DAMAGED"), "{text}");
}

#[test]
fn purge_keeps_the_newest_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("version-2");
    fs::create_dir(&v2).unwrap();
    for name in ["snapshot.0", "snapshot.11", "log.1", "log.12"] {
        fs::copy(fixture(name), v2.join(name)).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let out = tool(&["purge", d, d, "-n", "2"]);
    assert!(!out.status.success());
    let out = tool(&["purge", d, "-n", "3"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("0 files removed"));
    assert_eq!(fs::read_dir(&v2).unwrap().count(), 4);
}
