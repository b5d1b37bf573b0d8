//! Crash safety: `kill -9` the server process at random moments under continuous writes,
//! restart it on the same data directory, and check that every acknowledged create is there
//! and that no multi is half-applied. The seed is printed; `RZK_CRASH_SEED` replays a run and
//! `RZK_CRASH_CYCLES` runs more cycles (CI runs 20).

mod harness;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_client::{Acls, Client, CreateMode};

fn start(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_rzk-server"))
        .args([
            "-Dzookeeper.4lw.commands.whitelist=*".to_string(),
            port.to_string(),
            dir.display().to_string(),
            "200".to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rzk-server");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let up = harness::wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr).is_ok() && harness::four_letter(addr, "ruok") == "imok"
    });
    assert!(up, "server did not come up on port {port}");
    child
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let seed: u64 =
        std::env::var("RZK_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64 | 1
        });
    let cycles: usize =
        std::env::var("RZK_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    eprintln!("crash test seed {seed} ({cycles} cycles); replay with RZK_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let port = harness::ports::one();
    let connect = format!("127.0.0.1:{port}");
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let acked_multis: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for cycle in 0..cycles {
        let mut child = start(port, dir.path());
        // Everything acknowledged so far must be there, with the data it was written with.
        let zk = Client::connect(&connect).await.expect("connect after restart");
        let children = zk.list_children("/").await.expect("ls");
        for p in acked.lock().unwrap().iter() {
            let name = &p[1..];
            assert!(
                children.iter().any(|c| c == name),
                "cycle {cycle}: acknowledged {p} lost (seed {seed})"
            );
        }
        for c in &children {
            if c.starts_with('w') {
                let (data, _) = zk.get_data(&format!("/{c}")).await.expect("get");
                assert_eq!(data, c.as_bytes(), "cycle {cycle}: /{c} has torn data (seed {seed})");
            }
            if let Some(n) = c.strip_prefix("ma") {
                assert!(
                    children.contains(&format!("mb{n}")),
                    "cycle {cycle}: half-applied multi {n}"
                );
            }
            if let Some(n) = c.strip_prefix("mb") {
                assert!(
                    children.contains(&format!("ma{n}")),
                    "cycle {cycle}: half-applied multi {n}"
                );
            }
        }
        for n in acked_multis.lock().unwrap().iter() {
            assert!(
                children.contains(&format!("ma{n}")),
                "cycle {cycle}: acknowledged multi {n} lost"
            );
        }
        drop(zk);

        // Load: 4 writers, each with a bounded number of creates, until the kill.
        let mut tasks = Vec::new();
        for w in 0..4u64 {
            let (acked, acked_multis, connect, opts) =
                (acked.clone(), acked_multis.clone(), connect.clone(), opts.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(zk) = Client::connect(&connect).await else { return };
                for i in 0..5_000u64 {
                    let id = (cycle as u64) << 32 | w << 24 | i;
                    if i % 10 == 0 {
                        let mut m = zk.new_multi_writer();
                        let _ = m.add_create(&format!("/ma{id}"), b"a", &opts);
                        let _ = m.add_create(&format!("/mb{id}"), b"b", &opts);
                        match m.commit().await {
                            Ok(_) => acked_multis.lock().unwrap().push(id),
                            Err(_) => return,
                        }
                        continue;
                    }
                    let path = format!("/w{id}");
                    match zk.create(&path, &path.as_bytes()[1..], &opts).await {
                        Ok(_) => acked.lock().unwrap().push(path),
                        Err(_) => return,
                    }
                }
            }));
        }
        let delay = 50 + rng.next() % 250;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.kill().expect("kill -9");
        let _ = child.wait();
        // Requests in flight at the kill are unacknowledged: the writers just stop.
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    let total = acked.lock().unwrap().len();
    eprintln!("crash test: {total} acknowledged creates checked over {cycles} kill -9 cycles");
    assert!(total > 0, "the load generator acknowledged nothing");
}
