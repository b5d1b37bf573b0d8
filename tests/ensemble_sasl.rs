//! Quorum SASL (`quorum.auth.enableSasl`, `learnerRequireSasl`, `serverRequireSasl`, the JAAS
//! `QuorumServer`/`QuorumLearner` sections passed as `-Djava.security.auth.login.config`):
//! every election and Zab connection opens with a DIGEST-MD5 exchange.
//!
//! - a 3-peer rzk ensemble with SASL required replicates and fails over; connections that do
//!   not authenticate (a plain FOLLOWERINFO, an election handshake claiming a voter's sid)
//!   and a learner with a wrong password are refused with a log line, and the ensemble keeps
//!   serving; a peer restarted with a wrong password cannot join, and joins once fixed;
//! - mixed ensembles with Apache ZooKeeper 3.8 (Apache leading rzk, rzk leading Apache)
//!   replicate and fail over with quorum SASL required;
//! - quorum TLS and quorum SASL together (SASL inside the TLS session), rzk with Apache.

mod harness;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use harness::ensemble::{add_jvm_flag, set_key, Ensemble, Flavor};
use harness::ensemble_client::Clients;
use harness::pki::{quorum_tls, write_stores, Pki};
use rzk::config::{HostPort, QuorumSaslConfig};
use rzk::proto::ServerId;
use rzk::quorum::auth::{authenticate_learner, encode, Status};

const C: Clients = Clients { patience: ELECTION, request_timeout: Duration::from_secs(10) };
const ELECTION: Duration = Duration::from_secs(40);

/// A JAAS file as Apache's admin guide writes it: the users a server accepts, and the login
/// this server uses as a learner.
fn write_jaas(path: &Path, learner_password: &str) {
    let text = format!(
        "QuorumServer {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         user_test=\"test-secret\"\n    user_other=\"other-secret\";\n}};\n\
         QuorumLearner {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         username=\"test\"\n    password=\"{learner_password}\";\n}};\n"
    );
    std::fs::write(path, text).unwrap();
}

/// zoo.cfg lines for quorum SASL required both ways, with the JAAS file as a JVM flag.
fn quorum_sasl(cfg: &mut String, jaas: &Path) {
    set_key(cfg, "quorum.auth.enableSasl", "true");
    set_key(cfg, "quorum.auth.learnerRequireSasl", "true");
    set_key(cfg, "quorum.auth.serverRequireSasl", "true");
    set_key(cfg, "tickTime", "300");
    set_key(cfg, "initLimit", "30");
    set_key(cfg, "syncLimit", "10");
    add_jvm_flag(cfg, &format!("-Djava.security.auth.login.config={}", jaas.display()));
}

/// Every peer with its own JAAS file in `dir` (`jaas-<id>.conf`), all with the right
/// password; with `tls`, quorum TLS too, with the stores in that directory.
fn sasl_ensemble_with(flavors: Vec<Flavor>, dir: &Path, tls: Option<&Path>) -> Ensemble {
    let dir = dir.to_path_buf();
    for id in 1..=flavors.len() {
        write_jaas(&dir.join(format!("jaas-{id}.conf")), "test-secret");
    }
    let tls = tls.map(Path::to_path_buf);
    Ensemble::start_mixed(flavors, 0, move |id, cfg| {
        if let Some(stores) = &tls {
            quorum_tls(cfg, stores);
        }
        quorum_sasl(cfg, &dir.join(format!("jaas-{id}.conf")))
    })
}

fn sasl_ensemble(flavors: Vec<Flavor>, dir: &Path) -> Ensemble {
    sasl_ensemble_with(flavors, dir, None)
}

/// Whether the peer at `addr` ends the connection after `bytes` without sending anything but,
/// at most, a quorum auth ERROR packet.
fn refused_after(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got.is_empty() || got == encode(Status::Error, Some(&[]))
}

fn learner_login(password: &str) -> QuorumSaslConfig {
    QuorumSaslConfig {
        learner_require: true,
        server_require: true,
        learner_user: "test".into(),
        learner_password: password.into(),
        users: BTreeMap::new(),
    }
}

#[test]
fn rzk_ensemble_with_quorum_sasl_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut ens = sasl_ensemble(vec![Flavor::rzk(); 3], dir.path());
    let leader = ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    for id in ens.ids() {
        assert!(ens.log(id).contains("quorum SASL on"), "peer {id}:\n{}", ens.log(id));
    }
    assert!(ens.log(leader).contains("authenticated as test"), "{}", ens.log(leader));
    let follower = ens.ids().into_iter().find(|&i| i != leader).unwrap();
    C.replicates(&ens, follower, &ens.ids(), "/sasl-1");

    // Intruders. A FOLLOWERINFO in the clear (type 11, zxid, empty data, no auth).
    let mut info = vec![0, 0, 0, 11];
    info.extend_from_slice(&[0; 8]);
    info.extend_from_slice(&[0xff; 4]);
    info.extend_from_slice(&[0xff; 4]);
    assert!(refused_after(ens.quorum_addr(leader), &info), "a plain learner was served");
    // An election handshake claiming a voter's sid, then a vote, without SASL.
    let me = HostPort { host: "127.0.0.1".into(), port: 1 };
    let mut hello = rzk::quorum::wire::encode_initial(ServerId(u64::from(follower)), &[me]);
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 1]);
    assert!(refused_after(ens.election_addr(leader), &hello), "a plain voter was kept");
    harness::wait_for("the refusals in the log", Duration::from_secs(10), || {
        ens.log(leader).matches("not trying to authenticate and authentication is required").count()
            >= 2
    });
    // A learner that knows the user but not the password.
    let mut s = TcpStream::connect(ens.quorum_addr(leader)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = authenticate_learner(&learner_login("guess"), &mut s, "leader", deadline);
    assert!(outcome.unwrap_err().contains("authentication failed"));
    harness::wait_for("the wrong password in the log", Duration::from_secs(10), || {
        ens.log(leader).contains("wrong password for test")
    });
    // And one that does: the leader goes on to the Zab handshake (it waits for FOLLOWERINFO).
    let mut s = TcpStream::connect(ens.quorum_addr(leader)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    authenticate_learner(&learner_login("test-secret"), &mut s, "leader", deadline).unwrap();
    drop(s);
    C.replicates(&ens, leader, &ens.ids(), "/sasl-2");

    // A follower restarted with a wrong password cannot join; the others keep serving.
    ens.stop(follower);
    write_jaas(&dir.path().join(format!("jaas-{follower}.conf")), "wrong-secret");
    ens.restart(follower);
    harness::wait_for("the learner's failure in its log", ELECTION, || {
        ens.log(follower).contains("authentication failed against")
    });
    assert_ne!(ens.mode(follower).as_deref(), Some("follower"));
    let alive: Vec<u32> = ens.ids().into_iter().filter(|&i| i != follower).collect();
    C.replicates(&ens, leader, &alive, "/sasl-3");
    // Fixed, it joins and catches up.
    ens.stop(follower);
    write_jaas(&dir.path().join(format!("jaas-{follower}.conf")), "test-secret");
    ens.restart(follower);
    ens.wait_for_mode(follower, "follower", ELECTION);
    assert_eq!(C.read_through(&ens, follower, "/sasl-3").as_deref(), Some(&b"/sasl-3"[..]));

    // Fail over: the new leader is elected and syncs over SASL-checked connections.
    C.fail_over(&mut ens, leader, "/sasl-4");
}

/// Apache 3.8 peers with quorum SASL required, in both roles.
#[test]
fn mixed_ensembles_with_quorum_sasl_required() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Each run kills the first leader; between them, leaders and followers of both flavors.
    let mut leaders = Vec::new();
    for flavors in [
        vec![Flavor::rzk(), Flavor::rzk(), Flavor::Apache],
        vec![Flavor::Apache, Flavor::rzk(), Flavor::rzk()],
    ] {
        let names: Vec<&str> = flavors.iter().map(Flavor::name).collect();
        let mut ens = sasl_ensemble(flavors.clone(), dir.path());
        let leader = ens.wait_for_leader(ELECTION);
        ens.wait_all_serving(ELECTION);
        eprintln!("{names:?}: peer {leader} leads\n{}", ens.status());
        let path = format!("/mixed-{}", names.join("-"));
        for writer in ens.ids() {
            C.replicates(&ens, writer, &ens.ids(), &format!("{path}-{writer}"));
        }
        let next = C.fail_over(&mut ens, leader, &format!("{path}-after"));
        leaders.extend([ens.flavor_of(leader).name(), ens.flavor_of(next).name()]);
        for id in ens.ids() {
            let log = ens.log(id);
            let authenticated = match ens.flavor_of(id) {
                Flavor::Apache => {
                    log.contains("Successfully completed the authentication using SASL")
                }
                Flavor::Rzk(_) => log.contains("quorum SASL: authenticated to"),
            };
            assert!(authenticated, "{names:?}: peer {id} did not authenticate:\n{log}");
        }
    }
    assert!(leaders.contains(&"apache") && leaders.contains(&"rzk"), "leaders: {leaders:?}");
}

/// Quorum TLS and SASL at once: the SASL exchange runs inside the TLS session, on rzk and
/// Apache peers alike.
#[test]
fn quorum_tls_and_sasl_together() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ensemble-ca");
    let stores = dir.path().join("stores");
    write_stores(&pki, &stores, &pki.issue("peer", None));
    let flavors = vec![Flavor::rzk(), Flavor::Apache, Flavor::rzk()];
    let mut ens = sasl_ensemble_with(flavors, dir.path(), Some(&stores));
    let leader = ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    for id in ens.ids() {
        C.replicates(&ens, id, &ens.ids(), &format!("/both-{id}"));
    }
    for id in ens.ids().into_iter().filter(|&i| matches!(ens.flavor_of(i), Flavor::Rzk(_))) {
        let log = ens.log(id);
        assert!(log.contains("quorum TLS on") && log.contains("quorum SASL on"), "{log}");
    }
    C.fail_over(&mut ens, leader, "/both-after");
}
