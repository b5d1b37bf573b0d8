//! The secure client port: TLS with PEM, PKCS#12 and JKS stores, `ssl.clientAuth`, the
//! `x509` identity of a client certificate in ACLs and whoAmI, the superUser subject,
//! protocol choice, certificate reload, and the ways a bad client fails (no or untrusted
//! certificate, plain bytes on the TLS port, TLS bytes on the plain port) without harm to
//! the server. A real server on loopback; the client side is rustls over a std socket,
//! speaking the ZooKeeper protocol through rzk's jute records.

mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use harness::pki::{Issued, Pki};
use harness::{local, mntr, ports, wait_until, TestServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rzk::config::{ClientAuth, StoreConfig, StoreKind, TlsConfig};
use rzk::jute::proto::{
    ConnectRequest, ConnectRequestBase, ConnectResponse, ReplyHeader, RequestHeader,
};
use rzk::jute::Jute;

/// A CA and certificates it signed, as DER.
const PASSWORD: &str = "apassword";

/// Writes the server's key store and the CA as trust store in one format.
fn write_stores(dir: &Path, kind: StoreKind, pki: &Pki, server: &Issued) -> (PathBuf, PathBuf) {
    match kind {
        StoreKind::Pem => {
            let key_store = dir.join("keystore.pem");
            let trust_store = dir.join("truststore.pem");
            std::fs::write(&key_store, format!("{}{}", server.key_pem, server.cert_pem)).unwrap();
            std::fs::write(&trust_store, pki.ca.pem()).unwrap();
            (key_store, trust_store)
        }
        StoreKind::Jks => {
            let key_store = dir.join("keystore.jks");
            let trust_store = dir.join("truststore.jks");
            let mut ks = jks::KeyStore::new();
            let entry = jks::PrivateKeyEntry {
                creation_time: std::time::SystemTime::now(),
                private_key: server.key.secret_pkcs8_der().to_vec(),
                certificate_chain: vec![jks::Certificate {
                    cert_type: "X509".to_string(),
                    content: server.cert.to_vec(),
                }],
            };
            ks.set_private_key_entry("server cert", entry, PASSWORD.as_bytes()).unwrap();
            ks.store(std::fs::File::create(&key_store).unwrap(), PASSWORD.as_bytes()).unwrap();
            let mut ts = jks::KeyStore::new();
            let ca = jks::TrustedCertificateEntry {
                creation_time: std::time::SystemTime::now(),
                certificate: jks::Certificate {
                    cert_type: "X509".to_string(),
                    content: pki.ca_der().to_vec(),
                },
            };
            ts.set_trusted_certificate_entry("kazoo ca", ca).unwrap();
            ts.store(std::fs::File::create(&trust_store).unwrap(), PASSWORD.as_bytes()).unwrap();
            (key_store, trust_store)
        }
        StoreKind::Pkcs12 => {
            let key_store = dir.join("keystore.p12");
            let trust_store = dir.join("truststore.p12");
            let mut ks = p12_keystore::KeyStore::new();
            let key = p12_keystore::PrivateKey::from_der(server.key.secret_pkcs8_der()).unwrap();
            let cert = p12_keystore::Certificate::from_der(&server.cert).unwrap();
            let chain = p12_keystore::PrivateKeyChain::new("server-key-id-01", key, [cert]);
            ks.add_entry("server", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
            std::fs::write(&key_store, ks.writer(PASSWORD).write().unwrap()).unwrap();
            let mut ts = p12_keystore::KeyStore::new();
            let ca = p12_keystore::Certificate::from_der(&pki.ca_der()).unwrap();
            ts.add_entry("ca", p12_keystore::KeyStoreEntry::Certificate(ca));
            std::fs::write(&trust_store, ts.writer(PASSWORD).write().unwrap()).unwrap();
            (key_store, trust_store)
        }
    }
}

fn tls_config(kind: StoreKind, key_store: PathBuf, trust_store: PathBuf) -> TlsConfig {
    TlsConfig {
        key_store: StoreConfig { location: key_store, password: PASSWORD.into(), kind },
        trust_store: Some(StoreConfig { location: trust_store, password: PASSWORD.into(), kind }),
        client_auth: ClientAuth::Need,
        protocols: vec!["TLSv1.3", "TLSv1.2"],
        cipher_suites: None,
        cert_reload: false,
        auth_provider: "x509".into(),
        x509_super_user: None,
    }
}

/// A server with a secure port on `kind` stores signed by `pki`.
fn secure_server(
    pki: &Pki,
    kind: StoreKind,
    tweak: impl FnOnce(&mut TlsConfig),
) -> (TestServer, SocketAddr) {
    let server_cert = pki.issue("localhost", None);
    let dir = tempfile::tempdir().unwrap().keep();
    let (key_store, trust_store) = write_stores(&dir, kind, pki, &server_cert);
    let mut tls = tls_config(kind, key_store, trust_store);
    tweak(&mut tls);
    let secure = local(ports::one());
    let server = TestServer::start_with(|s| {
        s.secure_client_address = Some(secure);
        s.client_tls = Some(tls);
    });
    (server, secure)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn client_config(ca: &CertificateDer<'static>, identity: Option<&Issued>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder = ClientConfig::builder().with_root_certificates(roots);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert.clone()], PrivateKeyDer::Pkcs8(id.key.clone_key()))
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

fn dial(addr: SocketAddr, config: ClientConfig) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    StreamOwned::new(conn, tcp)
}

fn send_frame(s: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    s.write_all(&f)?;
    s.flush()
}

fn read_frame(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Opens a session over `s`; the error is what the transport said (a failed handshake).
fn session(s: &mut Tls) -> std::io::Result<ConnectResponse> {
    let req = ConnectRequest {
        base: ConnectRequestBase {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        },
        read_only: Some(false),
    };
    send_frame(s, &req.to_bytes())?;
    let f = read_frame(s)?;
    Ok(ConnectResponse::from_bytes(&f).unwrap())
}

fn call(s: &mut Tls, xid: i32, op: i32, body: &[u8]) -> (ReplyHeader, Vec<u8>) {
    let mut p = RequestHeader { xid, op_type: op }.to_bytes();
    p.extend_from_slice(body);
    send_frame(s, &p).unwrap();
    loop {
        let f = read_frame(s).unwrap();
        let h = ReplyHeader::from_bytes(&f).unwrap();
        if h.xid != -1 {
            return (h, f[16..].to_vec());
        }
    }
}

use harness::wire::{Dec, Enc};

fn create(s: &mut Tls, path: &str, acl: &[(i32, &str, &str)]) -> i32 {
    let body = Enc::new().str(path).buf(Some(b"secret")).acls(acl).int(0).done();
    call(s, 1, 1, &body).0.err
}

fn get_data(s: &mut Tls, path: &str) -> i32 {
    call(s, 2, 4, &Enc::new().str(path).boolean(false).done()).0.err
}

/// whoAmI: (scheme, id) pairs.
fn who_am_i(s: &mut Tls) -> Vec<(String, String)> {
    let (h, body) = call(s, 3, 107, &[]);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    let n = d.int();
    (0..n).map(|_| (d.str(), d.str())).collect()
}

/// True when the server ends the TLS session before a session is established.
fn refused(s: &mut Tls) -> bool {
    session(s).is_err()
}

#[test]
fn x509_identity_from_pem_stores_and_acls() {
    let pki = Pki::new("ca.rzk.test");
    let (server, secure) = secure_server(&pki, StoreKind::Pem, |_| {});
    let alice = pki.issue("alice", Some("rzk"));
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&alice)));
    let r = session(&mut s).expect("TLS session");
    assert!(r.session_id != 0 && r.time_out > 0);
    // Java's X500Principal.getName(): RDNs last first, comma-separated.
    let subject = "CN=alice,O=rzk";
    let ids = who_am_i(&mut s);
    assert!(ids.contains(&("x509".to_string(), subject.to_string())), "{ids:?}");
    assert_eq!(create(&mut s, "/tls-x509", &[(31, "x509", subject)]), 0);
    assert_eq!(get_data(&mut s, "/tls-x509"), 0);
    // Another subject, and a plain client, are not alice.
    let bob = pki.issue("bob", Some("rzk"));
    let mut b = dial(secure, client_config(&pki.ca_der(), Some(&bob)));
    session(&mut b).expect("TLS session");
    assert_eq!(get_data(&mut b, "/tls-x509"), -102);
    let mut plain = harness::Raw::connect(server.addr);
    plain.handshake(10_000);
    let (h, _) = plain.call(4, 4, &Enc::new().str("/tls-x509").boolean(false).done());
    assert_eq!(h.err, -102);
    assert_eq!(mntr(server.addr, "zk_outstanding_tls_handshake").as_deref(), Some("0"));
    assert!(mntr(server.addr, "zk_non_mtls_local_conn_count").is_some_and(|n| n != "0"));
}

#[test]
fn jks_and_pkcs12_stores_serve_tls() {
    for kind in [StoreKind::Jks, StoreKind::Pkcs12] {
        let pki = Pki::new("ca.rzk.test");
        let (_server, secure) = secure_server(&pki, kind, |_| {});
        let client = pki.issue("client", None);
        let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
        session(&mut s).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(create(&mut s, &format!("/tls-{kind:?}"), &[(31, "world", "anyone")]), 0);
        let ids = who_am_i(&mut s);
        assert!(ids.contains(&("x509".into(), "CN=client".into())), "{kind:?}: {ids:?}");
    }
}

#[test]
fn client_auth_need_want_none() {
    let pki = Pki::new("ca.rzk.test");
    // need (the default): no certificate, or one from another CA, fails the handshake.
    let (server, secure) = secure_server(&pki, StoreKind::Pem, |_| {});
    let mut anonymous = dial(secure, client_config(&pki.ca_der(), None));
    assert!(refused(&mut anonymous));
    let other = Pki::new("ca.elsewhere");
    let stranger = other.issue("mallory", None);
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&stranger)));
    assert!(refused(&mut s));
    // The right CA, but expired, or not valid yet.
    for expired in [true, false] {
        let stale = pki.issue_outside_validity("stale", expired);
        let mut s = dial(secure, client_config(&pki.ca_der(), Some(&stale)));
        assert!(refused(&mut s), "expired={expired}: a certificate outside its validity passed");
    }
    assert!(wait_until(Duration::from_secs(5), || {
        mntr(server.addr, "zk_outstanding_tls_handshake").as_deref() == Some("0")
    }));
    assert!(
        mntr(server.addr, "zk_auth_failed_count").is_some_and(|n| n.parse::<u64>().unwrap() >= 4)
    );
    // The server still serves TLS clients with a good certificate.
    let good = pki.issue("client", None);
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&good)));
    session(&mut s).expect("TLS session after refused ones");

    // want: a client without a certificate is served, with no x509 identity.
    let (_want, secure) = secure_server(&pki, StoreKind::Pem, |t| t.client_auth = ClientAuth::Want);
    let mut s = dial(secure, client_config(&pki.ca_der(), None));
    session(&mut s).expect("want: no certificate is fine");
    assert!(who_am_i(&mut s).iter().all(|(scheme, _)| scheme != "x509"));
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&stranger)));
    assert!(refused(&mut s), "want: an untrusted certificate still fails");

    // none: no certificate is asked for.
    let (_none, secure) = secure_server(&pki, StoreKind::Pem, |t| {
        t.client_auth = ClientAuth::None;
        t.trust_store = None;
    });
    let mut s = dial(secure, client_config(&pki.ca_der(), None));
    session(&mut s).expect("none: served");
}

#[test]
fn x509_super_user_bypasses_acls() {
    let pki = Pki::new("ca.rzk.test");
    let (server, secure) = secure_server(&pki, StoreKind::Pem, |t| {
        t.x509_super_user = Some("CN=admin".into());
    });
    let mut plain = harness::Raw::connect(server.addr);
    plain.handshake(10_000);
    let acl = Enc::new().str("/tls-locked").buf(Some(b"x")).acls(&[(31, "digest", "u:h")]).int(0);
    assert_eq!(plain.call(1, 1, &acl.done()).0.err, 0);
    let admin = pki.issue("admin", None);
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&admin)));
    session(&mut s).unwrap();
    assert_eq!(get_data(&mut s, "/tls-locked"), 0);
    let user = pki.issue("user", None);
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&user)));
    session(&mut s).unwrap();
    assert_eq!(get_data(&mut s, "/tls-locked"), -102);
}

#[test]
fn tls_version_choice() {
    let pki = Pki::new("ca.rzk.test");
    let (_server, secure) = secure_server(&pki, StoreKind::Pem, |t| t.protocols = vec!["TLSv1.2"]);
    let client = pki.issue("client", None);
    let only13 = |config: ClientConfig| {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der()).unwrap();
        let builder = ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_root_certificates(roots);
        let _ = config;
        builder
            .with_client_auth_cert(
                vec![client.cert.clone()],
                PrivateKeyDer::Pkcs8(client.key.clone_key()),
            )
            .unwrap()
    };
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
    session(&mut s).expect("TLS 1.2 is offered");
    assert_eq!(s.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    let mut s = dial(secure, only13(client_config(&pki.ca_der(), Some(&client))));
    assert!(refused(&mut s), "a TLS 1.3-only client finds no common version");
}

#[test]
fn wrong_bytes_on_either_port_close_only_that_connection() {
    let pki = Pki::new("ca.rzk.test");
    let (server, secure) = secure_server(&pki, StoreKind::Pem, |_| {});
    // Plain ZooKeeper bytes on the TLS port.
    let mut raw = harness::Raw::connect(secure);
    raw.send_frame(&[0; 44]);
    // The server may answer with a TLS alert first; then it closes.
    let mut sink = Vec::new();
    let closed = match raw.stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => {
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        }
    };
    assert!(closed, "plain bytes on the TLS port: still open after {} bytes", sink.len());
    // A TLS ClientHello on the plain port.
    let client = pki.issue("client", None);
    let mut s = dial(server.addr, client_config(&pki.ca_der(), Some(&client)));
    assert!(refused(&mut s));
    // Both ports still serve.
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
    session(&mut s).unwrap();
    let mut plain = harness::Raw::connect(server.addr);
    assert!(plain.handshake(10_000).time_out > 0);
}

#[test]
fn certificates_reload_when_the_files_change() {
    let pki = Pki::new("ca.rzk.test");
    let server_cert = pki.issue("localhost", Some("first"));
    let dir = tempfile::tempdir().unwrap();
    let (key_store, trust_store) = write_stores(dir.path(), StoreKind::Pem, &pki, &server_cert);
    let mut tls = tls_config(StoreKind::Pem, key_store.clone(), trust_store);
    tls.cert_reload = true;
    let secure = local(ports::one());
    let _server = TestServer::start_with(|s| {
        s.secure_client_address = Some(secure);
        s.client_tls = Some(tls);
    });
    let client = pki.issue("client", None);
    let served_org = || {
        let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
        session(&mut s).unwrap();
        let cert = s.conn.peer_certificates().unwrap()[0].clone();
        rzk::tls::subject_name(&cert).unwrap()
    };
    assert_eq!(served_org(), "CN=localhost,O=first");
    // Files replaced in place (mtime moves on); new connections get the new certificate.
    std::thread::sleep(Duration::from_millis(1100));
    let next = pki.issue("localhost", Some("second"));
    std::fs::write(&key_store, format!("{}{}", next.key_pem, next.cert_pem)).unwrap();
    assert!(wait_until(Duration::from_secs(10), || served_org() == "CN=localhost,O=second"));
}

/// The rzk client's stores for `id`: key store and trust store (the CA) in `kind`.
fn client_stores(pki: &Pki, kind: StoreKind, id: &Issued) -> rzk::config::ClientTlsConfig {
    let dir = tempfile::tempdir().unwrap().keep();
    let (key_store, trust_store) = write_stores(&dir, kind, pki, id);
    let store = |location| StoreConfig { location, password: PASSWORD.into(), kind };
    let mut cfg = rzk::config::ClientTlsConfig::new(Some(store(trust_store)));
    cfg.key_store = Some(store(key_store));
    cfg
}

fn rzk_client(connect: &str, tls: rzk::config::ClientTlsConfig) -> rzk::client::Client {
    rzk::client::ClientConfig::new(connect, Duration::from_secs(10)).tls(tls).connect().unwrap()
}

/// rzk's client library over TLS with each store format, by name and by address; its
/// certificate's subject is its x509 identity.
#[test]
fn rzk_client_over_tls_with_each_store_kind() {
    for kind in [StoreKind::Pem, StoreKind::Jks, StoreKind::Pkcs12] {
        let pki = Pki::new("ca.rzk.test");
        let (_server, secure) = secure_server(&pki, kind, |_| {});
        let carol = pki.issue("carol", Some("rzk"));
        for host in ["localhost", "127.0.0.1"] {
            let zk =
                rzk_client(&format!("{host}:{}", secure.port()), client_stores(&pki, kind, &carol));
            zk.wait_connected(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{kind:?} {host}: {e}"));
            let ids = zk.who_am_i().unwrap();
            assert!(
                ids.iter().any(|c| c.auth_scheme == "x509" && c.user == "CN=carol,O=rzk"),
                "{kind:?}: {ids:?}"
            );
            let path = format!("/rzk-client-{kind:?}-{host}");
            let acl = rzk::jute::data::Acl::open_unsafe();
            zk.create(&path, &[7; 3000], &acl, rzk::proto::CreateMode::Persistent).unwrap();
            assert_eq!(zk.get_data(&path, rzk::client::Watch::No).unwrap().0, vec![7; 3000]);
            zk.close().unwrap();
        }
    }
}

/// A server certificate from another CA, or naming another host, is refused (no session);
/// with `zookeeper.ssl.hostnameVerification=false` only the name check is off.
#[test]
fn rzk_client_verifies_the_server() {
    let pki = Pki::new("ca.rzk.test");
    let (_server, secure) = secure_server(&pki, StoreKind::Pem, |_| {});
    let me = pki.issue("me", None);
    let other = Pki::new("other.ca");
    let wrong_ca = client_stores(&other, StoreKind::Pem, &other.issue("me", None));
    let zk = rzk_client(&format!("127.0.0.1:{}", secure.port()), wrong_ca.clone());
    assert!(zk.wait_connected(Duration::from_millis(1500)).is_err());
    drop(zk);
    let unchecked = rzk::config::ClientTlsConfig { hostname_verification: false, ..wrong_ca };
    let zk = rzk_client(&format!("127.0.0.1:{}", secure.port()), unchecked);
    assert!(zk.wait_connected(Duration::from_millis(1500)).is_err(), "the CA is still checked");
    drop(zk);

    // A server whose certificate names only elsewhere.test.
    let server_cert = pki.issue_for("elsewhere", &["elsewhere.test"]);
    let dir = tempfile::tempdir().unwrap().keep();
    let (key_store, trust_store) = write_stores(&dir, StoreKind::Pem, &pki, &server_cert);
    let tls = tls_config(StoreKind::Pem, key_store, trust_store);
    let elsewhere = local(ports::one());
    let _server2 = TestServer::start_with(|s| {
        s.secure_client_address = Some(elsewhere);
        s.client_tls = Some(tls);
    });
    let connect = format!("127.0.0.1:{}", elsewhere.port());
    let zk = rzk_client(&connect, client_stores(&pki, StoreKind::Pem, &me));
    assert!(zk.wait_connected(Duration::from_millis(1500)).is_err());
    drop(zk);
    let cfg = client_stores(&pki, StoreKind::Pem, &me);
    let zk =
        rzk_client(&connect, rzk::config::ClientTlsConfig { hostname_verification: false, ..cfg });
    zk.wait_connected(Duration::from_secs(10)).unwrap();
    assert!(zk.exists("/", rzk::client::Watch::No).unwrap().is_some());

    // A server whose certificate expired.
    let server_cert = pki.issue_outside_validity("localhost", true);
    let dir = tempfile::tempdir().unwrap().keep();
    let (key_store, trust_store) = write_stores(&dir, StoreKind::Pem, &pki, &server_cert);
    let tls = tls_config(StoreKind::Pem, key_store, trust_store);
    let stale = local(ports::one());
    let _server3 = TestServer::start_with(|s| {
        s.secure_client_address = Some(stale);
        s.client_tls = Some(tls);
    });
    let zk = rzk_client(
        &format!("localhost:{}", stale.port()),
        client_stores(&pki, StoreKind::Pem, &me),
    );
    assert!(zk.wait_connected(Duration::from_millis(1500)).is_err(), "an expired server passed");
}

/// `client.portUnification`: the plain client port serves TLS clients (with x509 identities)
/// and plain clients, four-letter words included; a bad TLS client costs only itself.
#[test]
fn port_unification_serves_tls_and_plain_clients_on_one_port() {
    let pki = Pki::new("ca.rzk.test");
    let server_cert = pki.issue("localhost", None);
    let dir = tempfile::tempdir().unwrap();
    let (key_store, trust_store) = write_stores(dir.path(), StoreKind::Pem, &pki, &server_cert);
    let tls = tls_config(StoreKind::Pem, key_store, trust_store);
    let server = TestServer::start_with(|s| {
        s.client_tls = Some(tls);
        s.client_port_unification = true;
    });
    // TLS (rustls by hand, then rzk's client library) and plain on the same port.
    let alice = pki.issue("alice", Some("rzk"));
    let mut s = dial(server.addr, client_config(&pki.ca_der(), Some(&alice)));
    assert!(session(&mut s).expect("TLS session").time_out > 0);
    assert!(who_am_i(&mut s).contains(&("x509".into(), "CN=alice,O=rzk".into())));
    assert_eq!(create(&mut s, "/unified", &[(31, "x509", "CN=alice,O=rzk")]), 0);
    let zk = rzk_client(
        &format!("localhost:{}", server.addr.port()),
        client_stores(&pki, StoreKind::Pem, &alice),
    );
    zk.wait_connected(Duration::from_secs(10)).unwrap();
    assert!(zk.exists("/unified", rzk::client::Watch::No).unwrap().is_some());
    let mut plain = harness::Raw::connect(server.addr);
    assert!(plain.handshake(10_000).time_out > 0);
    let (h, _) = plain.call(4, 4, &Enc::new().str("/unified").boolean(false).done());
    assert_eq!(h.err, -102, "a plain client is not alice");
    assert_eq!(harness::four_letter(server.addr, "ruok"), "imok");
    // A client the server does not trust fails its handshake; the port keeps serving both.
    let other = Pki::new("other.rzk.test");
    let mallory = other.issue("mallory", None);
    let mut m = dial(server.addr, client_config(&pki.ca_der(), Some(&mallory)));
    assert!(refused(&mut m));
    let mut s = dial(server.addr, client_config(&pki.ca_der(), Some(&alice)));
    session(&mut s).expect("TLS session after a failed one");
    assert!(harness::Raw::connect(server.addr).handshake(10_000).time_out > 0);
    assert!(wait_until(Duration::from_secs(5), || {
        mntr(server.addr, "zk_outstanding_tls_handshake").as_deref() == Some("0")
    }));
    // Apache counts a failed handshake as a failed authentication.
    assert!(mntr(server.addr, "zk_auth_failed_count").is_some_and(|n| n != "0"));
    assert!(mntr(server.addr, "zk_non_mtls_local_conn_count").is_some_and(|n| n != "0"));
    zk.close().unwrap();
}

/// A PEM key store whose private key is encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2`, as
/// Java's PemReader reads with `ssl.keyStore.password`): served with the right password,
/// refused at start-up with a wrong one or none.
#[test]
fn encrypted_pem_private_keys_use_the_store_password() {
    let openssl = std::process::Command::new("openssl").arg("version").output();
    if !harness::require("openssl", openssl.err().map(|e| format!("openssl: {e}"))) {
        return;
    }
    let pki = Pki::new("ca.rzk.test");
    let server_cert = pki.issue("localhost", None);
    let dir = tempfile::tempdir().unwrap();
    let plain_key = dir.path().join("key.pem");
    std::fs::write(&plain_key, &server_cert.key_pem).unwrap();
    let encrypted = dir.path().join("key.enc.pem");
    let status = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(&plain_key)
        .arg("-out")
        .arg(&encrypted)
        .args(["-passout", &format!("pass:{PASSWORD}")])
        .status()
        .unwrap();
    assert!(status.success());
    let encrypted_pem = std::fs::read_to_string(&encrypted).unwrap();
    assert!(encrypted_pem.contains("BEGIN ENCRYPTED PRIVATE KEY"));
    let key_store = dir.path().join("keystore.pem");
    std::fs::write(&key_store, format!("{encrypted_pem}{}", server_cert.cert_pem)).unwrap();
    let trust_store = dir.path().join("truststore.pem");
    std::fs::write(&trust_store, pki.ca.pem()).unwrap();
    let tls = tls_config(StoreKind::Pem, key_store, trust_store);
    for (password, want) in [("wrong", "cannot decrypt"), ("", "has no password")] {
        let mut bad = tls.clone();
        bad.key_store.password = password.into();
        let e = rzk::tls::server_config(&bad).expect_err("a wrong password must fail");
        assert!(e.contains(want), "{password:?}: {e}");
    }
    let secure = local(ports::one());
    let _server = TestServer::start_with(|s| {
        s.secure_client_address = Some(secure);
        s.client_tls = Some(tls);
    });
    let client = pki.issue("client", None);
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
    assert!(session(&mut s).expect("TLS with the decrypted key").time_out > 0);
}

/// `netty.server.outstandingHandshake.limit`: with that many TLS handshakes under way, a new
/// TLS connection is closed at once (`tls_handshake_exceeded`); once they end, TLS serves.
#[test]
fn outstanding_handshake_limit_closes_the_excess() {
    let pki = Pki::new("ca.rzk.test");
    let server_cert = pki.issue("localhost", None);
    let dir = tempfile::tempdir().unwrap();
    let (key_store, trust_store) = write_stores(dir.path(), StoreKind::Pem, &pki, &server_cert);
    let tls = tls_config(StoreKind::Pem, key_store, trust_store);
    let secure = local(ports::one());
    let server = TestServer::start_with(|s| {
        s.secure_client_address = Some(secure);
        s.client_tls = Some(tls);
        s.outstanding_handshake_limit = Some(1);
    });
    // A connection that never says hello holds the one handshake slot.
    let silent = TcpStream::connect(secure).unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        mntr(server.addr, "zk_outstanding_tls_handshake").as_deref() == Some("1")
    }));
    let client = pki.issue("client", None);
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
    assert!(refused(&mut s), "a second handshake got through the limit");
    assert_eq!(mntr(server.addr, "zk_tls_handshake_exceeded").as_deref(), Some("1"));
    drop(silent);
    assert!(wait_until(Duration::from_secs(5), || {
        mntr(server.addr, "zk_outstanding_tls_handshake").as_deref() == Some("0")
    }));
    let mut s = dial(secure, client_config(&pki.ca_der(), Some(&client)));
    assert!(session(&mut s).expect("TLS once the slot is free").time_out > 0);
    // The plain port is not limited.
    assert!(harness::Raw::connect(server.addr).handshake(10_000).time_out > 0);
}
