//! Durability through restarts and compatibility with Apache ZooKeeper's data directories.
mod harness;
use harness::*;
use zookeeper_client::{Acls, Client, CreateMode};

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart() {
    let mut srv = TestServer::start();
    {
        let zk = Client::connect(&srv.connect_string()).await.expect("connect");
        for i in 0..50 {
            zk.create(&format!("/n{i}"), format!("v{i}").as_bytes(), &persistent())
                .await
                .expect("create");
        }
        zk.set_data("/n7", b"changed", None).await.expect("set");
        zk.delete("/n8", None).await.expect("delete");
    }
    srv.restart();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    let (data, stat) = zk.get_data("/n7").await.expect("get");
    assert_eq!(data, b"changed");
    assert_eq!(stat.version, 1);
    assert!(zk.check_stat("/n8").await.expect("exists").is_none());
    assert_eq!(zk.list_children("/").await.expect("ls").len(), 50);
}

#[tokio::test]
async fn sessions_and_ephemerals_survive_a_restart() {
    let mut srv = TestServer::start();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    zk.create("/e", b"x", &eph).await.expect("create");
    let owner = zk.session_id();
    srv.restart();
    let zk2 = Client::connect(&srv.connect_string()).await.expect("connect");
    let (_, stat) = zk2.get_data("/e").await.expect("ephemeral still there");
    assert_eq!(stat.ephemeral_owner, owner.0);
}

fn copy_fixture(to: &std::path::Path) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apache-3.8.0-datadir/version-2");
    let dst = to.join("version-2");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn b64decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn apache_data_dir_recovers_into_the_expected_tree() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let rec = rzk::server::database::recover(dir.path(), dir.path(), true).expect("recovers");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/apache-3.8.0-datadir/expected-tree.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let map = expected.as_object().unwrap();
    assert_eq!(rec.tree.node_count(), map.len(), "same set of znodes");
    for (path, want) in map {
        let node = rec.tree.node(path).unwrap_or_else(|| panic!("{path} missing"));
        match want["data_b64"].as_str() {
            Some(b) => {
                assert_eq!(node.data.clone().unwrap_or_default(), b64decode(b), "{path} data")
            }
            None => assert_eq!(node.data, None, "{path} null data"),
        }
        let stat = rec.tree.stat(path).unwrap();
        let w = &want["stat"];
        let got = [
            ("czxid", stat.czxid),
            ("mzxid", stat.mzxid),
            ("pzxid", stat.pzxid),
            ("ctime", stat.ctime),
            ("mtime", stat.mtime),
            ("version", stat.version as i64),
            ("cversion", stat.cversion as i64),
            ("aversion", stat.aversion as i64),
            ("ephemeralOwner", stat.ephemeral_owner),
            ("dataLength", stat.data_length as i64),
            ("numChildren", stat.num_children as i64),
        ];
        for (k, v) in got {
            assert_eq!(w[k].as_i64().unwrap(), v, "{path} {k}");
        }
    }
    // log.12 has a createSession without a closeSession: that session is live again.
    assert!(rec
        .sessions
        .iter()
        .any(|(id, _)| rec.tree.ephemerals_of(*id).contains(&"/app/eph2".to_string())));
}

#[tokio::test]
async fn rzk_serves_an_apache_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let srv = TestServer::start_with(|s| {
        s.data_dir = dir.path().to_path_buf();
        s.data_log_dir = dir.path().to_path_buf();
    });
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    let (data, _) = zk.get_data("/app").await.expect("get");
    assert_eq!(data, b"config-v3");
    let (data, _) = zk.get_data("/app/eph2").await.expect("ephemeral of the killed session");
    assert_eq!(data, b"still-here");
    // The server keeps writing after the recovered history.
    let (stat, _) = zk.create("/after", b"x", &persistent()).await.expect("create");
    assert!(stat.czxid > 0x14);
}

fn version2_files(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("version-2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .filter(|p| !p.to_str().unwrap().ends_with(".tmp"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn snapshots_roll_every_snap_count_and_recovery_uses_them() {
    let mut srv = TestServer::start_with(|s| s.snap_count = 20);
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    for i in 0..200 {
        zk.create(&format!("/s{i}"), b"v", &persistent()).await.expect("create");
    }
    drop(zk);
    let dir = srv.dir.path().to_path_buf();
    assert!(wait_until(std::time::Duration::from_secs(10), || version2_files(&dir, "snapshot.")
        .len()
        >= 5));
    assert!(version2_files(&dir, "log.").len() >= 5, "a new log file per snapshot");
    srv.restart();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    assert_eq!(zk.list_children("/").await.expect("ls").len(), 201);
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_and_the_rest_recovered() {
    let mut srv = TestServer::start();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    for i in 0..10 {
        zk.create(&format!("/t{i}"), b"v", &persistent()).await.expect("create");
    }
    drop(zk);
    srv.stop();
    // A crash in the middle of appending: half a record after the last good one.
    let log = version2_files(srv.dir.path(), "log.").pop().expect("a log file");
    let mut torn = std::fs::read(&log).unwrap();
    let mut last = 0;
    let mut pos = 16;
    while pos + 12 <= torn.len() {
        let len = i32::from_be_bytes(torn[pos + 8..pos + 12].try_into().unwrap());
        if len <= 0 {
            break;
        }
        last = pos;
        pos += 12 + len as usize + 1;
    }
    // Garbage that looks like the start of another record.
    torn[pos..pos + 12].copy_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 99]);
    std::fs::write(&log, &torn).unwrap();
    assert!(last > 0);
    srv.restart();
    let zk = Client::connect(&srv.connect_string()).await.expect("connect");
    assert_eq!(zk.list_children("/").await.expect("ls").len(), 11);
}

#[test]
fn damage_in_the_middle_of_the_log_stops_start_up_with_file_and_offset() {
    let mut srv = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let zk = Client::connect(&srv.connect_string()).await.expect("connect");
        for i in 0..10 {
            zk.create(&format!("/d{i}"), b"value", &persistent()).await.expect("create");
        }
    });
    srv.stop();
    let log = version2_files(srv.dir.path(), "log.").pop().expect("a log file");
    let mut bytes = std::fs::read(&log).unwrap();
    // Flip a byte inside the first record's payload: its checksum no longer matches, and
    // valid records follow, so this is not a torn tail.
    bytes[16 + 12 + 5] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let err = match rzk::server::start_standalone(srv.settings.clone()) {
        Ok(_) => panic!("a corrupt log must stop start-up"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(log.file_name().unwrap().to_str().unwrap()), "{err}");
    assert!(err.contains("16"), "names the offset: {err}");
}
