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
