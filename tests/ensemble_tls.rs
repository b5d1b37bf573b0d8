//! Quorum TLS (`sslQuorum=true`, `ssl.quorum.*`): every election and Zab connection is TLS,
//! both ends present a certificate from the ensemble's CA and verify the other's.
//!
//! - a 3-peer rzk ensemble replicates, fails over and catches a restarted peer up over TLS;
//! - a client with a certificate from another CA, and a plain-TCP FOLLOWERINFO, are refused
//!   on the quorum and election ports (log line) while the ensemble keeps serving;
//! - mixed ensembles with Apache ZooKeeper 3.8 (an Apache leader with rzk followers, an rzk
//!   leader with an Apache follower) replicate and fail over with quorum TLS on;
//! - a mixed ensemble moves from plain to TLS-only with `portUnification`, one peer at a
//!   time, serving throughout.

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use harness::ensemble::{set_key, Ensemble, Flavor};
use harness::ensemble_client::Clients;
use harness::pki::{quorum_tls, write_stores, Pki};

const C: Clients = Clients { patience: ELECTION, request_timeout: Duration::from_secs(10) };
const ELECTION: Duration = Duration::from_secs(40);

fn tls_ensemble(flavors: Vec<Flavor>, stores: &Path) -> Ensemble {
    let stores = stores.to_path_buf();
    Ensemble::start_mixed(flavors, 0, move |_, cfg| quorum_tls(cfg, &stores))
}

/// A TLS handshake to `addr` with a certificate from `pki` (not the ensemble's CA): the peer
/// refuses it, so nothing can be read after it.
fn foreign_tls_refused(addr: std::net::SocketAddr, pki: &Pki, dir: &Path) {
    write_stores(pki, dir, &pki.issue("intruder", None));
    let store = |f: &str| rzk::config::StoreConfig {
        location: dir.join(f),
        password: String::new(),
        kind: rzk::config::StoreKind::Pem,
    };
    let mut cfg = rzk::config::ClientTlsConfig::new(Some(store("truststore.pem")));
    cfg.key_store = Some(store("keystore.pem"));
    cfg.hostname_verification = false;
    let config = Arc::new(rzk::tls::client_config(&cfg).unwrap());
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = rzk::tls::server_name("127.0.0.1").unwrap();
    // Our side rejects their certificate (another CA) or theirs rejects ours: either way
    // no session.
    assert!(rzk::tls::duplex::PeerStream::client(tcp, config, name).is_err());
}

#[test]
fn rzk_ensemble_over_quorum_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ensemble-ca");
    write_stores(&pki, &dir.path().join("stores"), &pki.issue("peer", None));
    let mut ens = tls_ensemble(vec![Flavor::rzk(); 3], &dir.path().join("stores"));
    let leader = ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    for id in ens.ids() {
        assert!(ens.log(id).contains("quorum TLS on"), "peer {id}:\n{}", ens.log(id));
    }
    let follower = ens.ids().into_iter().find(|&i| i != leader).unwrap();
    C.replicates(&ens, follower, &ens.ids(), "/tls-1");

    // Intruders: a certificate from another CA on both ports, plain bytes on the Zab port.
    let other = Pki::new("other-ca");
    foreign_tls_refused(ens.election_addr(leader), &other, &dir.path().join("intruder"));
    foreign_tls_refused(ens.quorum_addr(leader), &other, &dir.path().join("intruder"));
    let mut plain = TcpStream::connect(ens.quorum_addr(leader)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A FOLLOWERINFO frame (type 11) in the clear: not a TLS ClientHello.
    let mut frame = vec![0, 0, 0, 11];
    frame.extend_from_slice(&[0; 28]);
    let _ = plain.write_all(&frame);
    let mut buf = [0u8; 64];
    // At most a TLS alert record (content type 21) comes back, never a Zab packet.
    match plain.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(_) => assert_eq!(buf[0], 21, "a plain learner was answered: {buf:?}"),
    }
    // The ensemble's own CA, but a certificate for another host: the accepting peer checks
    // that the dialler's certificate names its address (ssl.quorum.hostnameVerification).
    let elsewhere = dir.path().join("elsewhere");
    write_stores(&pki, &elsewhere, &pki.issue_for("elsewhere", &["elsewhere.test"]));
    let store = |f: &str| rzk::config::StoreConfig {
        location: elsewhere.join(f),
        password: String::new(),
        kind: rzk::config::StoreKind::Pem,
    };
    let mut cfg = rzk::config::ClientTlsConfig::new(Some(store("truststore.pem")));
    cfg.key_store = Some(store("keystore.pem"));
    let config = Arc::new(rzk::tls::client_config(&cfg).unwrap());
    let tcp = TcpStream::connect(ens.election_addr(leader)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rzk::tls::server_name("127.0.0.1").unwrap();
    if let Ok(mut s) = rzk::tls::duplex::PeerStream::client(tcp, config, name) {
        let mut buf = [0u8; 16];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "a misnamed peer was kept");
    }
    harness::wait_for("the name refusal in the log", Duration::from_secs(10), || {
        ens.log(leader).contains("names none of")
    });
    harness::wait_for("the TLS refusal in the log", Duration::from_secs(10), || {
        ens.log(leader).contains("rejected: TLS")
    });
    C.replicates(&ens, leader, &ens.ids(), "/tls-2");

    // Fail over: the new leader is elected and syncs over TLS; the old one catches up.
    C.fail_over(&mut ens, leader, "/tls-3");
}

/// Apache 3.8 peers with quorum TLS (PEM stores), in both roles.
#[test]
fn mixed_ensembles_over_quorum_tls() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ensemble-ca");
    let stores = dir.path().join("stores");
    write_stores(&pki, &stores, &pki.issue("peer", None));
    // Each run kills the first leader; between them, leaders and followers of both flavors.
    let mut leaders = Vec::new();
    for flavors in [
        vec![Flavor::rzk(), Flavor::rzk(), Flavor::Apache],
        vec![Flavor::Apache, Flavor::rzk(), Flavor::rzk()],
    ] {
        let names: Vec<&str> = flavors.iter().map(Flavor::name).collect();
        let mut ens = tls_ensemble(flavors.clone(), &stores);
        let leader = ens.wait_for_leader(ELECTION);
        ens.wait_all_serving(ELECTION);
        eprintln!("{names:?}: peer {leader} leads\n{}", ens.status());
        let path = format!("/mixed-{}", names.join("-"));
        for writer in ens.ids() {
            C.replicates(&ens, writer, &ens.ids(), &format!("{path}-{writer}"));
        }
        let next = C.fail_over(&mut ens, leader, &format!("{path}-after"));
        leaders.extend([ens.flavor_of(leader).name(), ens.flavor_of(next).name()]);
    }
    assert!(leaders.contains(&"apache") && leaders.contains(&"rzk"), "leaders: {leaders:?}");
}

/// Rewrites peer `id`'s zoo.cfg with `edit` and restarts it, then waits until every peer
/// serves and a write through the restarted peer reaches all of them.
fn reconfigure(ens: &mut Ensemble, id: u32, step: &str, edit: impl Fn(&mut String)) {
    let cfg = ens.dir(id).join("zoo.cfg");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    edit(&mut text);
    std::fs::write(&cfg, text).unwrap();
    ens.restart(id);
    ens.wait_all_serving(ELECTION);
    C.replicates(ens, id, &ens.ids(), &format!("/rolling-{step}-{id}"));
}

/// Apache's rolling change to quorum TLS with `portUnification`, with no moment without a
/// quorum: every peer accepts both (dialling in the clear), then each in turn dials TLS,
/// then each in turn stops accepting plain peers. rzk and Apache 3.8 peers side by side.
#[test]
fn rolling_upgrade_to_quorum_tls_with_port_unification() {
    if !harness::require("Apache ZooKeeper", Flavor::apache_missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ensemble-ca");
    let stores = dir.path().join("stores");
    write_stores(&pki, &stores, &pki.issue("peer", None));
    let flavors = vec![Flavor::rzk(), Flavor::Apache, Flavor::rzk()];
    let mut ens = Ensemble::start_mixed(flavors, 0, {
        let stores = stores.clone();
        move |_, cfg| {
            quorum_tls(cfg, &stores);
            set_key(cfg, "sslQuorum", "false");
            set_key(cfg, "portUnification", "true");
        }
    });
    ens.wait_for_leader(ELECTION);
    ens.wait_all_serving(ELECTION);
    for id in ens.ids().into_iter().filter(|&i| matches!(ens.flavor_of(i), Flavor::Rzk(_))) {
        assert!(ens.log(id).contains("dials in the clear and accepts TLS and plain"));
    }
    C.replicates(&ens, 1, &ens.ids(), "/rolling-plain");
    for id in ens.ids() {
        reconfigure(&mut ens, id, "tls", |cfg| set_key(cfg, "sslQuorum", "true"));
    }
    for id in ens.ids() {
        reconfigure(&mut ens, id, "strict", |cfg| set_key(cfg, "portUnification", "false"));
    }
    // Now TLS only: a plain election handshake is not answered.
    let leader = ens.wait_for_leader(ELECTION);
    let mut plain = TcpStream::connect(ens.election_addr(leader)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = plain.write_all(&[0xff; 28]);
    let mut buf = [0u8; 64];
    match plain.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(_) => assert_eq!(buf[0], 21, "a plain peer was answered: {buf:?}"),
    }
    for id in ens.ids().into_iter().filter(|&i| matches!(ens.flavor_of(i), Flavor::Rzk(_))) {
        let log = ens.log(id);
        assert!(log.contains("election and Zab connections are TLS, peers verified"), "{log}");
    }
}

/// `ssl.quorum.allowReverseDnsLookup`: a dialler whose certificate names only `localhost`,
/// connecting from 127.0.0.1 to a peer whose `server.N` hosts are addresses, is refused by
/// the accepting side's name check, and accepted once reverse lookups are allowed (127.0.0.1
/// reverse-resolves to localhost).
#[test]
fn reverse_dns_lookup_widens_the_accepting_name_check() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ensemble-ca");
    let acceptor = dir.path().join("acceptor");
    write_stores(&pki, &acceptor, &pki.issue("peer", None));
    let dialler = dir.path().join("dialler");
    write_stores(&pki, &dialler, &pki.issue_for("dialler", &["localhost"]));
    let settings = |stores: &Path, reverse_dns: bool| {
        let mut cfg = String::new();
        quorum_tls(&mut cfg, stores);
        set_key(&mut cfg, "ssl.quorum.allowReverseDnsLookup", &reverse_dns.to_string());
        let text = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=2181\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2889:3889\n{cfg}",
            stores.display()
        );
        std::fs::write(stores.join("myid"), "1\n").unwrap();
        let none = rzk::config::SystemProperties::new();
        let parsed = rzk::config::ServerConfig::from_text(&text, &none).unwrap();
        parsed.quorum.unwrap().tls.unwrap()
    };
    for reverse_dns in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hosts = vec!["127.0.0.1".to_string(), "127.0.0.2".to_string()];
        let tls = rzk::tls::PeerTls::new(&settings(&acceptor, reverse_dns), hosts).unwrap();
        let dial = rzk::tls::PeerTls::new(&settings(&dialler, false), Vec::new()).unwrap();
        let client = std::thread::spawn(move || {
            let tcp = TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut s = dial.dial(tcp, "127.0.0.1").unwrap();
            let _ = s.write_all(b"hello");
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf);
        });
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match tls.accept(tcp) {
            Ok(_) => assert!(reverse_dns, "accepted without reverse lookups"),
            Err(e) => {
                assert!(!reverse_dns, "refused with reverse lookups: {e}");
                assert!(e.to_string().contains("names none of"), "{e}");
            }
        }
        client.join().unwrap();
    }
}
