//! Oversized transactions must not wedge an ensemble (Apache's ZOOKEEPER-3496/4306 class of
//! bug): a txn larger than a learner accepts would make learners drop the leader, which has
//! already logged it, wins the next election and sends it again, forever.
//!
//! Two such txns against a 3-peer ensemble, through a real client:
//! - a multi of 5,000 creates with the `auth` ACL from a session holding 63 digest
//!   identities: each create expands to 63 ACL entries, some 19 MB of txn from a 300 KB
//!   request;
//! - a closeSession of a session owning three ephemerals with 900 KB names (2.7 MB of paths).
//!
//! rzk must refuse the first with an error to the client (MARSHALLINGERROR; only a small
//! error txn is logged, as for any failed write), close the second
//! session in several txns, and keep one leader and serve writes on every peer throughout.
//! The same scenario against Apache ZooKeeper 3.8 is run for comparison and allowed to fail
//! (README "Limits"): its outcome is printed, not asserted.

mod harness;

use std::time::{Duration, Instant};

use harness::ensemble::{Ensemble, Flavor};
use harness::ensemble_client::{open, Clients};
use rzk::client::{Error, Op};
use rzk::jute::data::{perms, Acl};
use rzk::proto::{CreateMode, ErrorCode};

/// As many digest identities as a connection may hold beside the `ip` one it gets on accept.
const IDENTITIES: usize = rzk::limits::AUTH_IDS_MAX - 1;
const CREATES: usize = 5_000;
const NAME_BYTES: usize = 900 * 1024;

const CLIENTS: Clients =
    Clients { patience: Duration::from_secs(30), request_timeout: Duration::from_secs(30) };

/// Runs both oversized txns; `Err` says what went wrong (for Apache, printed).
fn scenario(ens: &mut Ensemble) -> Result<String, String> {
    let leader = ens.wait_for_leader(Duration::from_secs(60));
    let connect_all = ens.connect_string();
    let mut report = Vec::new();

    // 1. The auth-ACL bomb.
    let bomber = CLIENTS.connect(CLIENTS.config(&connect_all));
    for i in 0..IDENTITIES {
        bomber.add_auth("digest", format!("user{i}:password{i}").as_bytes());
    }
    bomber.sync("/").map_err(|e| format!("sync after the addauths: {e}"))?;
    let root = "/bomb";
    bomber
        .create(root, b"", &open(), CreateMode::Persistent)
        .map_err(|e| format!("create {root}: {e}"))?;
    let auth_acl = vec![Acl::new(perms::ALL, "auth", "")];
    let ops: Vec<Op> = (0..CREATES)
        .map(|i| Op::Create {
            path: format!("{root}/n{i:05}"),
            data: Vec::new(),
            acl: auth_acl.clone(),
            mode: CreateMode::Persistent,
            ttl: None,
        })
        .collect();
    let zxid_before = zxid(ens, leader);
    let started = Instant::now();
    let outcome = bomber.multi(&ops);
    report.push(format!(
        "multi of {CREATES} auth-ACL creates: {outcome:?} after {:?}",
        started.elapsed()
    ));
    match outcome {
        Err(Error::Server(ErrorCode::MarshallingError)) => {
            // A failed write is logged as a small error txn (ZooKeeper's ErrorTxn): one
            // zxid, not the 19 MB multi.
            let zxid_after = zxid(ens, leader);
            let hex = |z: &str| i64::from_str_radix(z.trim_start_matches("0x"), 16).unwrap_or(-1);
            if hex(&zxid_after) - hex(&zxid_before) != 1 {
                return Err(format!("the refused multi took zxids {zxid_before} -> {zxid_after}"));
            }
        }
        Ok(_) => return Err(format!("the oversized multi was committed; {}", report.join("; "))),
        Err(e) => return Err(format!("the oversized multi failed with {e}, not MARSHALLINGERROR")),
    }
    let _ = bomber.close();

    // 2. The closeSession of big ephemerals.
    let owner = CLIENTS.connect(CLIENTS.config(&connect_all));
    let mut names = Vec::new();
    for c in ['a', 'b', 'c'] {
        let path = format!("/{}", c.to_string().repeat(NAME_BYTES));
        owner
            .create(&path, b"", &open(), CreateMode::Ephemeral)
            .map_err(|e| format!("create a 900 KB ephemeral: {e}"))?;
        names.push(path);
    }
    let owner_id = owner.session_id().0;
    owner.close().map_err(|e| format!("close the owner session 0x{owner_id:x}: {e}"))?;

    // Every peer serves, has dropped the ephemerals, and takes a write; the leader is the same.
    for id in ens.ids() {
        let c = CLIENTS.synced(ens, id);
        for path in &names {
            match c.exists(path, false) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return Err(format!("peer {id} still has a closed session's ephemeral"))
                }
                Err(e) => return Err(format!("exists through peer {id}: {e}")),
            }
        }
        let marker = format!("/after-{id}");
        c.create(&marker, b"ok", &open(), CreateMode::Persistent)
            .map_err(|e| format!("a write through peer {id}: {e}"))?;
        let _ = c.close();
    }
    match ens.leader() {
        Some(l) if l == leader => {}
        other => return Err(format!("the leader changed from {leader} to {other:?}")),
    }
    report.push(format!("closeSession of 3 x 900 KB ephemerals done, leader {leader} kept"));
    Ok(report.join("; "))
}

/// Peer `id`'s last zxid, from srvr.
fn zxid(ens: &Ensemble, id: u32) -> String {
    let srvr = harness::four_letter(ens.client_addr(id), "srvr");
    srvr.lines().find_map(|l| l.strip_prefix("Zxid: ")).unwrap_or("?").to_string()
}

#[test]
fn oversized_txns_do_not_wedge_an_rzk_ensemble() {
    // The default jute.maxbuffer (1 MB - 1) takes a 900 KB path in one create.
    let mut ens = Ensemble::start(Flavor::rzk(), 3, 0, |_, _| {});
    match scenario(&mut ens) {
        Ok(report) => eprintln!("rzk: {report}"),
        Err(why) => panic!("rzk ensemble: {why}\n{}", ens.status()),
    }
    // The peers agree on the last zxid once the last writes have reached them.
    let same = || {
        let zxids: Vec<String> = ens.ids().into_iter().map(|id| zxid(&ens, id)).collect();
        zxids.windows(2).all(|w| w[0] == w[1])
    };
    harness::wait_for("the peers to agree on the last zxid", Duration::from_secs(20), same);
}

/// Apache ZooKeeper 3.8 under the same txns: allowed to fail (it has no txn-size check in
/// prep; see the module doc). Its outcome is printed for the README's comparison.
#[test]
fn oversized_txns_against_an_apache_ensemble_for_comparison() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    let mut ens = Ensemble::start(Flavor::Apache, 3, 0, |_, _| {});
    match scenario(&mut ens) {
        Ok(report) => eprintln!("apache 3.8 (allowed to fail) passed: {report}"),
        Err(why) => {
            eprintln!("apache 3.8 (allowed to fail) failed: {why}");
            // Does it recover by itself? Try a write through every peer for up to 60 s.
            let started = Instant::now();
            let healthy = harness::wait_until(Duration::from_secs(60), || {
                ens.ids().into_iter().all(|id| {
                    let cfg = CLIENTS.config(&ens.client_addr(id).to_string());
                    let Ok(c) = cfg.connect() else { return false };
                    let ok = c.wait_connected(Duration::from_secs(5)).is_ok()
                        && c.create(
                            &format!("/probe-{id}-{}", started.elapsed().as_millis()),
                            b"",
                            &open(),
                            CreateMode::Persistent,
                        )
                        .is_ok();
                    let _ = c.close();
                    ok
                })
            });
            eprintln!(
                "apache 3.8 after the oversized multi: {} after {:?}; peers: {}",
                if healthy {
                    "every peer takes writes again"
                } else {
                    "still not serving writes on every peer"
                },
                started.elapsed(),
                ens.status()
            );
        }
    }
}
