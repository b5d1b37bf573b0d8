//! Client SASL (DIGEST-MD5 from a JAAS `Server` section) over the wire: a good exchange
//! gives the connection a `sasl` identity (whoAmI, ACLs), `zookeeper.superUser` makes it
//! super, a wrong password gets AUTHFAILED and a closed connection (or, with
//! `allowSaslFailedClients`, an unauthenticated connection that stays), and
//! `sessionRequireClientSASLAuth` refuses requests of unauthenticated connections with
//! SESSIONCLOSEDREQUIRESASLAUTH. The client side of RFC 2831 is written here, from the RFC.

mod harness;

use std::collections::BTreeMap;

use harness::wire::{Dec, Enc};
use harness::{mntr, Raw, TestServer};
use md5::{Digest, Md5};
use rzk::config::{EnforceAuth, SaslConfig};
use rzk::jute::proto::SaslToken;
use rzk::jute::Jute;

const SASL: i32 = 102;

fn sasl_config() -> SaslConfig {
    let users: BTreeMap<String, String> = [("jaasuser", "jaas_password"), ("admin", "admin_pw")]
        .into_iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect();
    SaslConfig {
        users,
        super_user: Some("admin".into()),
        remove_host: false,
        remove_realm: false,
        allow_failed: false,
    }
}

fn hex_md5(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn field<'a>(challenge: &'a str, key: &str) -> &'a str {
    let start = challenge.find(&format!("{key}=\"")).expect(key) + key.len() + 2;
    let end = challenge[start..].find('"').expect("closing quote") + start;
    &challenge[start..end]
}

/// RFC 2831's digest-response for `challenge`.
fn digest_response(challenge: &str, user: &str, password: &str) -> String {
    let (realm, nonce, cnonce, uri) =
        (field(challenge, "realm"), field(challenge, "nonce"), "c0ffee", "zookeeper/zk-sasl-md5");
    let mut a1 = Md5::digest(format!("{user}:{realm}:{password}").as_bytes()).to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha2 = hex_md5(format!("AUTHENTICATE:{uri}").as_bytes());
    let response =
        hex_md5(format!("{}:{nonce}:00000001:{cnonce}:auth:{ha2}", hex_md5(&a1)).as_bytes());
    format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
         cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={response},qop=auth"
    )
}

fn sasl_call(raw: &mut Raw, xid: i32, token: &[u8]) -> (i32, Option<Vec<u8>>) {
    let (h, body) = raw.call(xid, SASL, &SaslToken { token: Some(token.to_vec()) }.to_bytes());
    let token = SaslToken::from_bytes(&body).map(|t| t.token).unwrap_or(None);
    (h.err, token)
}

/// Runs the exchange; the error code of the last step (0 also comes with `rspauth` when
/// the server authenticated the client).
fn authenticate(raw: &mut Raw, user: &str, password: &str) -> i32 {
    let (err, rspauth) = exchange(raw, user, password);
    assert_eq!(err == 0, rspauth, "a success carries rspauth, a failure does not");
    err
}

fn exchange(raw: &mut Raw, user: &str, password: &str) -> (i32, bool) {
    let (err, challenge) = sasl_call(raw, 1, b"");
    assert_eq!(err, 0);
    let challenge = String::from_utf8(challenge.expect("challenge")).unwrap();
    assert!(challenge.contains("algorithm=md5-sess"), "{challenge}");
    let (err, last) = sasl_call(raw, 2, digest_response(&challenge, user, password).as_bytes());
    (err, last.is_some_and(|t| t.starts_with(b"rspauth=")))
}

fn who_am_i(raw: &mut Raw) -> Vec<(String, String)> {
    let (h, body) = raw.call(9, 107, &[]);
    assert_eq!(h.err, 0);
    let mut d = Dec::new(&body);
    (0..d.int()).map(|_| (d.str(), d.str())).collect()
}

fn get_data(raw: &mut Raw, path: &str) -> i32 {
    raw.call(10, 4, &Enc::new().str(path).boolean(false).done()).0.err
}

#[test]
fn digest_md5_gives_a_sasl_identity() {
    let server = TestServer::start_with(|s| s.sasl = Some(sasl_config()));
    let mut raw = Raw::connect(server.addr);
    raw.handshake(10_000);
    assert_eq!(authenticate(&mut raw, "jaasuser", "jaas_password"), 0);
    assert!(who_am_i(&mut raw).contains(&("sasl".into(), "jaasuser".into())));
    let create =
        Enc::new().str("/sasl-only").buf(Some(b"x")).acls(&[(31, "sasl", "jaasuser")]).int(0);
    assert_eq!(raw.call(3, 1, &create.done()).0.err, 0);
    assert_eq!(get_data(&mut raw, "/sasl-only"), 0);
    let mut other = Raw::connect(server.addr);
    other.handshake(10_000);
    assert_eq!(get_data(&mut other, "/sasl-only"), -102);
    // The super user reads anything.
    let mut admin = Raw::connect(server.addr);
    admin.handshake(10_000);
    assert_eq!(authenticate(&mut admin, "admin", "admin_pw"), 0);
    assert!(who_am_i(&mut admin).iter().any(|(scheme, _)| scheme == "super"));
    assert_eq!(get_data(&mut admin, "/sasl-only"), 0);
}

#[test]
fn wrong_password_is_authfailed_and_closed() {
    let server = TestServer::start_with(|s| s.sasl = Some(sasl_config()));
    for (user, password) in [("jaasuser", "wrong"), ("baduser", "badpassword")] {
        let mut raw = Raw::connect(server.addr);
        raw.handshake(10_000);
        assert_eq!(authenticate(&mut raw, user, password), -115);
        assert!(raw.is_closed());
    }
    // Garbage tokens too, and the server keeps serving.
    let mut raw = Raw::connect(server.addr);
    raw.handshake(10_000);
    assert_eq!(sasl_call(&mut raw, 1, b"").0, 0);
    assert_eq!(sasl_call(&mut raw, 2, b"\xff=,\"").0, -115);
    // As in Apache, failed SASL exchanges are not auth_failed_count's (auth packets are).
    assert_eq!(mntr(server.addr, "zk_auth_failed_count").as_deref(), Some("0"));
    let mut ok = Raw::connect(server.addr);
    ok.handshake(10_000);
    assert_eq!(authenticate(&mut ok, "jaasuser", "jaas_password"), 0);
}

#[test]
fn allow_failed_clients_keeps_the_connection() {
    let server = TestServer::start_with(|s| {
        let mut c = sasl_config();
        c.allow_failed = true;
        s.sasl = Some(c);
    });
    let mut raw = Raw::connect(server.addr);
    raw.handshake(10_000);
    assert_eq!(exchange(&mut raw, "jaasuser", "wrong"), (0, false));
    assert!(who_am_i(&mut raw).iter().all(|(scheme, _)| scheme != "sasl"));
}

#[test]
fn session_require_client_sasl_auth() {
    let server = TestServer::start_with(|s| {
        s.sasl = Some(sasl_config());
        s.enforce_auth = EnforceAuth { schemes: vec!["sasl".into()] };
    });
    let mut raw = Raw::connect(server.addr);
    raw.handshake(10_000);
    assert_eq!(get_data(&mut raw, "/"), -124);
    assert!(raw.is_closed());
    let mut good = Raw::connect(server.addr);
    good.handshake(10_000);
    assert_eq!(authenticate(&mut good, "jaasuser", "jaas_password"), 0);
    assert_eq!(get_data(&mut good, "/"), 0);
    // A failed exchange under enforcement says why.
    let mut bad = Raw::connect(server.addr);
    bad.handshake(10_000);
    assert_eq!(authenticate(&mut bad, "jaasuser", "wrong"), -124);
}

/// rzk's own client: SyncConnected, then SaslAuthenticated, requests after it carry the
/// identity; a wrong password is AuthFailed, the end of the client (as ClientCnxn).
#[test]
fn rzk_client_authenticates_and_reports_events() {
    use rzk::client::{ClientConfig, State, Watcher};
    use rzk::proto::KeeperState;
    use std::time::Duration;
    let server = TestServer::start_with(|s| s.sasl = Some(sasl_config()));
    let connect = format!("127.0.0.1:{}", server.addr.port());
    let (tx, events) = crossbeam_channel::unbounded();
    let zk = ClientConfig::new(&connect, Duration::from_secs(10))
        .watcher(Watcher::channel(tx))
        .sasl("jaasuser", "jaas_password")
        .connect()
        .unwrap();
    // Queued at once: must wait for the exchange, so it runs as jaasuser.
    let ids = zk.who_am_i().unwrap();
    assert!(ids.iter().any(|c| c.auth_scheme == "sasl" && c.user == "jaasuser"), "{ids:?}");
    let states: Vec<KeeperState> =
        (0..2).map(|_| events.recv_timeout(Duration::from_secs(5)).unwrap().state).collect();
    assert_eq!(states, [KeeperState::SyncConnected, KeeperState::SaslAuthenticated]);
    zk.close().unwrap();

    let (tx, events) = crossbeam_channel::unbounded();
    let bad = ClientConfig::new(&connect, Duration::from_secs(10))
        .watcher(Watcher::channel(tx))
        .sasl("jaasuser", "wrong")
        .connect()
        .unwrap();
    let err = bad.who_am_i().unwrap_err();
    assert_eq!(err.code(), rzk::proto::ErrorCode::AuthFailed, "{err}");
    let seen: Vec<_> =
        (0..2).filter_map(|_| events.recv_timeout(Duration::from_secs(5)).ok()).collect();
    let last = seen.into_iter().next_back();
    assert_eq!(last.map(|e| e.state), Some(KeeperState::AuthFailed));
    assert_eq!(bad.state(), State::AuthFailed);
}

/// The JAAS `Client` section (DigestLoginModule username/password), as zkCli reads it.
#[test]
fn rzk_client_takes_credentials_from_a_jaas_file() {
    use rzk::client::ClientConfig;
    use std::time::Duration;
    let server = TestServer::start_with(|s| s.sasl = Some(sasl_config()));
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         username=\"admin\"\n  password=\"admin_pw\";\n};\n",
    )
    .unwrap();
    let jaas = jaas.display().to_string();
    let security =
        rzk::config::client::client_security([("java.security.auth.login.config", jaas.as_str())])
            .unwrap();
    let zk =
        ClientConfig::new(&format!("127.0.0.1:{}", server.addr.port()), Duration::from_secs(10))
            .security(security)
            .connect()
            .unwrap();
    let ids = zk.who_am_i().unwrap();
    assert!(ids.iter().any(|c| c.auth_scheme == "super"), "{ids:?}");
    assert!(ids.iter().any(|c| c.auth_scheme == "sasl" && c.user == "admin"), "{ids:?}");
}
