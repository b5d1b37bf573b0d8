mod harness;
use harness::*;

#[tokio::test]
async fn smoke_create_get() {
    let srv = TestServer::start();
    let zk = zookeeper_client::Client::connect(&srv.connect_string()).await.expect("connect");
    let opts =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let (stat, _) = zk.create("/a", b"hello", &opts).await.expect("create");
    assert_eq!(stat.version, 0);
    let (data, _) = zk.get_data("/a").await.expect("get");
    assert_eq!(data, b"hello");
    println!("{}", four_letter(srv.addr, "stat"));
}

/// The harness's port allocator: distinct ports, all below the kernel's ephemeral range.
#[test]
fn harness_ports_are_distinct_and_below_the_ephemeral_range() {
    let a = harness::ports::take(50);
    let b = harness::ports::take(50);
    let mut all: Vec<u16> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 100);
    let end = harness::ports::ephemeral_start();
    assert!(all.iter().all(|p| *p >= harness::ports::FIRST && *p < end), "{all:?}");
}
