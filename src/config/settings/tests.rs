//! Unit tests of `settings`.

use super::*;
use crate::config::{ClientAuth, StoreKind};

fn props(entries: &[(&str, &str)]) -> SystemProperties {
    let mut p = SystemProperties::new();
    for (name, value) in entries {
        p.set(*name, *value);
    }
    p
}

fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
    parse_with(text, &SystemProperties::new(), None)
}

fn minimal(extra: &str) -> String {
    format!("dataDir=/var/lib/zk\nclientPort=2181\n{extra}")
}

fn ok(text: &str) -> ServerConfig {
    match parse(text) {
        Ok(config) => config,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("{text:?} should fail, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

const QUORUM: &str = "dataDir=/var/lib/zk\nclientPort=2181\ninitLimit=5\nsyncLimit=2\n\
                      server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\n\
                      server.3=10.0.0.3:2888:3888\n";

#[test]
fn later_duplicate_keys_win() {
    assert_eq!(ok(&minimal("tickTime=1000\ntickTime=2000\n")).tick_time.as_millis(), 2000);
}

// --- defaults

#[test]
fn defaults_match_apache() {
    let c = ok("dataDir=/var/lib/zk\nclientPort=2181\n");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/zk"));
    assert_eq!(c.data_log_dir, c.data_dir);
    assert_eq!(c.client_address, "0.0.0.0:2181".parse().unwrap());
    assert_eq!(c.secure_client_address, None);
    assert_eq!(c.client_port_listen_backlog, None);
    assert_eq!(c.tick_time, Duration::from_millis(3000));
    assert_eq!(c.session_timeouts.min(), Duration::from_millis(6000));
    assert_eq!(c.session_timeouts.max(), Duration::from_millis(60000));
    assert_eq!(c.max_client_cnxns.map(NonZeroU32::get), Some(60));
    assert_eq!(c.max_cnxns, None);
    assert_eq!(c.global_outstanding_limit.get(), 1000);
    assert_eq!(c.four_letter_words, BTreeSet::from(["srvr"]));
    assert_eq!(c.snap_retain_count, 3);
    assert_eq!(c.purge_interval, None);
    assert_eq!(c.snap_count, 100_000);
    assert_eq!(c.snap_size_limit_bytes, Some(4 * 1024 * 1024 * 1024));
    assert_eq!(c.txn_log_size_limit_bytes, None);
    assert_eq!(c.pre_alloc_bytes, 64 * 1024 * 1024);
    assert!(c.force_sync);
    assert_eq!(c.fsync_warning_threshold, Duration::from_secs(1));
    assert_eq!(c.jute_max_buffer_bytes, 1_048_575);
    assert_eq!(c.jute_max_buffer_extra_bytes, 1_048_575);
    assert!(!c.extended_types_enabled);
    assert_eq!(c.container_check_interval, Duration::from_secs(60));
    assert_eq!(c.container_max_per_minute.get(), 10_000);
    assert_eq!(c.container_max_never_used_interval, None);
    assert_eq!(c.super_digest, None);
    assert!(!c.skip_acl && !c.enforce_quota && !c.read_only_mode_enabled);
    assert!(c.standalone_enabled && !c.reconfig_enabled);
    assert!(!c.local_sessions_enabled && !c.local_sessions_upgrading_enabled);
    assert_eq!(c.quorum, None);
    assert_eq!(c.server_id(), ServerId(0));
}

#[test]
fn every_key_is_parsed() {
    let text = "dataDir=d\ndataLogDir=l\nclientPort=2181\nclientPortAddress=127.0.0.1\n\
        secureClientPort=2281\nsecureClientPortAddress=::1\nclientPortListenBacklog=50\n\
        ssl.keyStore.location=/etc/zk/keystore.jks\nssl.keyStore.password=pw\n\
        ssl.trustStore.location=/etc/zk/trust.p12\nssl.trustStore.password=tpw\n\
        ssl.trustStore.type=PKCS12\nssl.clientAuth=want\nssl.protocol=TLSv1.2\n\
        ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\nclient.certReload=true\n\
        X509AuthenticationProvider.superUser=CN=admin\nssl.hostnameVerification=false\n\
        tickTime=2000\nminSessionTimeout=1000\nmaxSessionTimeout=9000\nmaxClientCnxns=0\n\
        maxCnxns=100\nglobalOutstandingLimit=7\n4lw.commands.whitelist=stat\n\
        autopurge.snapRetainCount=5\nautopurge.purgeInterval=2\nsnapCount=10\n\
        snapSizeLimitInKb=8\ntxnLogSizeLimitInKb=16\npreAllocSize=0\nforceSync=no\n\
        fsync.warningthresholdms=50\njute.maxbuffer=4096\njute.maxbuffer.extrasize=10\n\
        extendedTypesEnabled=true\nznode.container.checkIntervalMs=100\n\
        znode.container.maxPerMinute=5\nznode.container.maxNeverUsedIntervalMs=600\n\
        DigestAuthenticationProvider.superDigest=super:abc=\nskipACL=yes\n\
        enforceQuota=true\nreadonlymode.enabled=true\nstandaloneEnabled=true\n\
        reconfigEnabled=true\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n\
        serverCnxnFactory=org.apache.zookeeper.server.NIOServerCnxnFactory\n\
        initLimit=10\nsyncLimit=5\nconnectToLearnerMasterLimit=3\ncnxTimeout=100\n\
        electionAlg=3\nelectionPortBindRetry=0\npeerType=participant\n\
        quorumListenOnAllIPs=true\nleaderServes=no\nsyncEnabled=false\n";
    let c = ok(text);
    assert_eq!(c.data_log_dir, PathBuf::from("l"));
    assert_eq!(c.client_address, "127.0.0.1:2181".parse().unwrap());
    assert_eq!(c.secure_client_address, Some("[::1]:2281".parse().unwrap()));
    let tls = c.client_tls.as_ref().expect("ssl settings with the secure port");
    assert_eq!(tls.key_store.location, PathBuf::from("/etc/zk/keystore.jks"));
    assert_eq!((tls.key_store.kind, tls.key_store.password.as_str()), (StoreKind::Jks, "pw"));
    let trust = tls.trust_store.as_ref().expect("trust store");
    assert_eq!((trust.kind, trust.password.as_str()), (StoreKind::Pkcs12, "tpw"));
    assert_eq!(tls.client_auth, ClientAuth::Want);
    assert_eq!(tls.protocols, vec!["TLSv1.2"]);
    let suites = tls.cipher_suites.clone().unwrap_or_default();
    assert_eq!(suites, vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()]);
    assert!(tls.cert_reload);
    assert_eq!(tls.x509_super_user.as_deref(), Some("CN=admin"));
    assert_eq!(c.client_port_listen_backlog.map(NonZeroU32::get), Some(50));
    assert_eq!(c.tick_time.as_millis(), 2000);
    assert_eq!(c.session_timeouts.min().as_millis(), 1000);
    assert_eq!(c.session_timeouts.max().as_millis(), 9000);
    assert_eq!(c.max_client_cnxns, None);
    assert_eq!(c.max_cnxns.map(NonZeroU32::get), Some(100));
    assert_eq!(c.global_outstanding_limit.get(), 7);
    assert_eq!(c.four_letter_words, BTreeSet::from(["isro", "srvr", "stat"]));
    assert_eq!(c.snap_retain_count, 5);
    assert_eq!(c.purge_interval, Some(Duration::from_secs(7200)));
    assert_eq!(c.snap_count, 10);
    assert_eq!(c.snap_size_limit_bytes, Some(8192));
    assert_eq!(c.txn_log_size_limit_bytes, Some(16384));
    assert_eq!(c.pre_alloc_bytes, 0);
    assert!(!c.force_sync);
    assert_eq!(c.fsync_warning_threshold.as_millis(), 50);
    assert_eq!(c.jute_max_buffer_bytes, 4096);
    assert_eq!(c.jute_max_buffer_extra_bytes, 1024);
    assert!(c.extended_types_enabled);
    assert_eq!(c.container_check_interval.as_millis(), 100);
    assert_eq!(c.container_max_per_minute.get(), 5);
    assert_eq!(c.container_max_never_used_interval, Some(Duration::from_millis(600)));
    assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
    assert!(c.skip_acl && c.enforce_quota && c.read_only_mode_enabled);
    assert!(c.reconfig_enabled && c.local_sessions_enabled);
    assert!(c.local_sessions_upgrading_enabled);
    assert_eq!(c.quorum, None);
}

// --- validation

#[test]
fn missing_data_dir_is_an_error() {
    assert_eq!(err("clientPort=2181\n"), "dataDir is not set");
    assert!(err("dataDir=\nclientPort=2181").contains("empty path"));
}

#[test]
fn standalone_needs_a_client_port() {
    assert_eq!(err("dataDir=/d\n"), "clientPort is not set");
    assert_eq!(err("dataDir=/d\nclientPort=0\n"), "clientPort is not set");
    assert_eq!(
        err("dataDir=/d\nclientPortAddress=127.0.0.1\n"),
        "clientPortAddress is set but clientPort is not set"
    );
}

#[test]
fn invalid_numbers_name_the_key_and_reason() {
    assert_eq!(err(&minimal("tickTime=abc")), "invalid value \"abc\" for tickTime: not an integer");
    assert_eq!(err(&minimal("tickTime=0")), "invalid value \"0\" for tickTime: must be at least 1");
    assert!(err("dataDir=/d\nclientPort=70000").contains("out of range"));
    assert!(err(&minimal("maxClientCnxns=-1")).contains("maxClientCnxns"));
    assert!(err(&minimal("globalOutstandingLimit=0")).contains("globalOutstandingLimit"));
    assert!(err(&minimal("preAllocSize=-5")).contains("preAllocSize"));
    assert!(err(&minimal("jute.maxbuffer=0")).contains("jute.maxbuffer"));
    assert!(err(&minimal("minSessionTimeout=-2")).contains("minSessionTimeout"));
    assert!(err(&minimal("znode.container.checkIntervalMs=0")).contains("checkIntervalMs"));
    assert_eq!(
        err(&minimal("tickTime=2147483648")),
        "invalid value \"2147483648\" for tickTime: must be at most 2147483647"
    );
    assert_eq!(
        err(&minimal("secureClientPort=70000")),
        "invalid value \"70000\" for secureClientPort: must be at most 65535"
    );
}

#[test]
fn session_timeouts_default_from_tick_and_must_be_ordered() {
    let c = ok(&minimal("tickTime=2000\nminSessionTimeout=-1\n"));
    assert_eq!(c.session_timeouts.min().as_millis(), 4000);
    assert_eq!(c.session_timeouts.max().as_millis(), 40000);
    assert_eq!(c.session_timeouts.negotiate(Duration::from_secs(1)).as_millis(), 4000);
    assert_eq!(c.session_timeouts.negotiate(Duration::from_secs(90)).as_millis(), 40000);
    assert_eq!(c.session_timeouts.negotiate(Duration::from_secs(30)).as_millis(), 30000);
    assert_eq!(
        err(&minimal("minSessionTimeout=5000\nmaxSessionTimeout=4000")),
        "minSessionTimeout (5000 ms) must not be larger than maxSessionTimeout (4000 ms)"
    );
    // Only min given: max keeps its default and may not drop below it.
    assert!(parse(&minimal("tickTime=100\nminSessionTimeout=3000")).is_err());
}

#[test]
fn booleans_are_strict() {
    assert!(err(&minimal("standaloneEnabled=yes")).contains("expected true or false"));
    assert!(err(&minimal("forceSync=maybe")).contains("expected yes or no"));
    assert!(ok(&minimal("standaloneEnabled=TRUE")).standalone_enabled);
    assert!(!ok(&minimal("forceSync=No")).force_sync);
    assert!(!ok(&minimal("forceSync=false")).force_sync);
}

#[test]
fn apache_clamps_are_kept_with_warnings() {
    let c = ok(&minimal("autopurge.snapRetainCount=1\nsnapCount=1\nmaxCnxns=-4\n"));
    assert_eq!(c.snap_retain_count, 3);
    assert_eq!(c.snap_count, 2);
    assert_eq!(c.max_cnxns, None);
    let c = ok(&minimal("autopurge.purgeInterval=-3\nsnapSizeLimitInKb=0\n"));
    assert_eq!(c.purge_interval, None);
    assert_eq!(c.snap_size_limit_bytes, None);
}

#[test]
fn election_alg_peer_type_and_factories_are_checked() {
    assert_eq!(
        err(&minimal("electionAlg=1")),
        "invalid value \"1\" for electionAlg: only 3 (fast leader election) is supported"
    );
    assert!(err(&minimal("peerType=leader")).contains("expected participant or observer"));
    assert!(ok(&minimal("peerType=OBSERVER")).quorum.is_none());
    let netty = "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory";
    assert!(parse(&minimal(netty)).is_ok());
    assert!(err(&minimal("serverCnxnFactory=com.example.Mine")).contains("unknown"));
}

#[test]
fn super_digest_must_look_like_a_digest_id() {
    let c =
        ok(&minimal("DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    assert_eq!(c.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    assert!(
        err(&minimal("DigestAuthenticationProvider.superDigest=nocolon")).contains("superDigest")
    );
}

#[test]
fn unsupported_and_unknown_keys_do_not_fail() {
    let text = minimal(
        "admin.enableServer=false\nadmin.serverPort=8080\nmetricsProvider.className=x\n\
         ssl.keyStore.location=/k\nauthProvider.1=x\nquorum.auth.enableSasl=false\n\
         group.1=1:2:3\nweight.1=1\nsomethingElse=1\nzookeeper.snapCount=5\n",
    );
    let c = ok(&text);
    // A zookeeper.-prefixed key in zoo.cfg is not the property: Apache ignores it too.
    assert_eq!(c.snap_count, 100_000);
}

#[test]
fn dynamic_config_file_is_rejected() {
    assert_eq!(
        err(&minimal("dynamicConfigFile=/etc/zk/zoo.cfg.dynamic")),
        "dynamicConfigFile is not supported yet: put the server.N lines into zoo.cfg"
    );
}

#[test]
fn client_port_address_accepts_ipv6_and_names() {
    let c = ok(&minimal("clientPortAddress=::1"));
    assert_eq!(c.client_address, "[::1]:2181".parse().unwrap());
    let c = ok(&minimal("clientPortAddress=[::1]"));
    assert_eq!(c.client_address, "[::1]:2181".parse().unwrap());
    let c = ok(&minimal("clientPortAddress=localhost"));
    assert!(c.client_address.ip().is_loopback());
}

// --- whitelist

#[test]
fn whitelist_always_has_srvr() {
    assert_eq!(ok(&minimal("")).four_letter_words, BTreeSet::from(["srvr"]));
    let c = ok(&minimal("4lw.commands.whitelist= stat , ruok,,"));
    assert_eq!(c.four_letter_words, BTreeSet::from(["ruok", "srvr", "stat"]));
    assert!(c.four_letter_word_enabled("ruok"));
    assert!(!c.four_letter_word_enabled("conf"));
}

#[test]
fn whitelist_star_enables_every_word() {
    let c = ok(&minimal("4lw.commands.whitelist=stat, *"));
    assert_eq!(c.four_letter_words.len(), FOUR_LETTER_WORDS.len());
    assert!(FOUR_LETTER_WORDS.iter().all(|w| c.four_letter_word_enabled(w)));
}

#[test]
fn whitelist_adds_isro_in_read_only_mode_and_drops_unknown_words() {
    let c = ok(&minimal("readonlymode.enabled=true\n4lw.commands.whitelist=bogus,cons"));
    assert_eq!(c.four_letter_words, BTreeSet::from(["cons", "isro", "srvr"]));
}

// --- system properties

#[test]
fn system_properties_apply_under_zoo_cfg() {
    let system = props(&[
        ("zookeeper.snapCount", "1000"),
        ("zookeeper.4lw.commands.whitelist", "*"),
        ("jute.maxbuffer", "2048"),
        ("readonlymode.enabled", "true"),
        ("zookeeper.DigestAuthenticationProvider.superDigest", "super:xyz"),
        ("zookeeper.extendedTypesEnabled", "true"),
        ("zookeeper.skipACL", "yes"),
        ("zookeeper.forceSync", "no"),
        ("zookeeper.preAllocSize", "1024"),
        ("zookeeper.tickTime", "1000"),
        ("zookeeper.log.dir", "/var/log"),
        ("znode.container.checkIntervalMs", "5000"),
    ]);
    let c = parse_with(&minimal("tickTime=2000\n"), &system, None).unwrap();
    assert_eq!(c.snap_count, 1000);
    assert_eq!(c.four_letter_words.len(), FOUR_LETTER_WORDS.len());
    assert_eq!(c.jute_max_buffer_bytes, 2048);
    assert!(c.read_only_mode_enabled);
    assert_eq!(c.super_digest.as_deref(), Some("super:xyz"));
    assert!(c.extended_types_enabled && c.skip_acl && !c.force_sync);
    assert_eq!(c.pre_alloc_bytes, 1024 * 1024);
    assert_eq!(c.container_check_interval.as_millis(), 5000);
    // zoo.cfg sets tickTime, so it wins over -Dzookeeper.tickTime.
    assert_eq!(c.tick_time.as_millis(), 2000);
}

#[test]
fn last_system_property_wins() {
    let system = props(&[("zookeeper.snapCount", "10"), ("zookeeper.snapCount", "20")]);
    assert_eq!(parse_with(&minimal(""), &system, None).unwrap().snap_count, 20);
    let system = props(&[("zookeeper.jute.maxbuffer", "10"), ("jute.maxbuffer", "20")]);
    assert_eq!(parse_with(&minimal(""), &system, None).unwrap().jute_max_buffer_bytes, 20);
}

#[test]
fn invalid_system_property_names_the_flag() {
    let system = props(&[("zookeeper.snapCount", "many")]);
    let e = parse_with(&minimal(""), &system, None).unwrap_err();
    assert_eq!(e.to_string(), "invalid value \"many\" for -Dzookeeper.snapCount: not an integer");
}

#[test]
fn short_form_sets_port_dir_tick_and_unlimited_connections() {
    let system = props(&[("zookeeper.snapCount", "50")]);
    let c = ServerConfig::from_short_form("2181", "/tmp/zk", None, None, &system).unwrap();
    assert_eq!(c.client_address, "0.0.0.0:2181".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("/tmp/zk"));
    assert_eq!(c.tick_time.as_millis(), 3000);
    assert_eq!(c.max_client_cnxns, None);
    assert_eq!(c.snap_count, 50);
    let c = ServerConfig::from_short_form("0", "d", Some("200"), Some("7"), &system).unwrap();
    assert_eq!(c.client_address.port(), 0);
    assert_eq!(c.tick_time.as_millis(), 200);
    assert_eq!(c.max_client_cnxns.map(NonZeroU32::get), Some(7));
    let e = ServerConfig::from_short_form("x", "d", None, None, &system).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value \"x\" for clientPort (command line): port x is not a number"
    );
}

// --- quorum

#[test]
fn three_servers_and_myid_make_a_quorum() {
    let c = parse_with(QUORUM, &SystemProperties::new(), Some("2\n")).unwrap();
    let q = c.quorum.as_ref().unwrap();
    assert_eq!(q.server_id, ServerId(2));
    assert_eq!(c.server_id(), ServerId(2));
    assert_eq!(q.servers.iter().map(|s| s.id.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(q.me().host, "10.0.0.2");
    assert_eq!(q.participants().count(), 3);
    assert_eq!((q.init_limit_ticks, q.sync_limit_ticks), (5, 2));
    assert_eq!(q.connect_to_learner_master_limit_ticks, 5);
    assert_eq!(q.cnx_timeout, Duration::from_secs(5));
    assert_eq!(q.election_port_bind_retry, 3);
    assert_eq!(q.peer_type, LearnerType::Participant);
    assert!(!q.quorum_listen_on_all_ips && q.leader_serves && q.sync_enabled);
    assert_eq!(c.client_address, "0.0.0.0:2181".parse().unwrap());
}

#[test]
fn quorum_tls_keys() {
    let none = SystemProperties::new();
    let q = |extra: &str| {
        let text = format!("{QUORUM}{extra}");
        parse_with(&text, &none, Some("2\n")).map(|c| c.quorum.unwrap().tls)
    };
    assert_eq!(q("ssl.quorum.keyStore.location=/k.pem\n").unwrap(), None, "sslQuorum off");
    let tls = q("sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n\
                 ssl.quorum.trustStore.location=/t.jks\nssl.quorum.trustStore.password=pw\n\
                 ssl.quorum.hostnameVerification=false\nsslQuorumReloadCertFiles=true\n\
                 ssl.quorum.enabledProtocols=TLSv1.3\nssl.keyStore.location=/client-port.jks\n")
    .unwrap()
    .expect("quorum TLS");
    assert_eq!(tls.server.key_store.kind, StoreKind::Pem);
    assert_eq!(tls.server.client_auth, ClientAuth::Need);
    assert_eq!(tls.client.trust_store.as_ref().map(|t| t.kind), Some(StoreKind::Jks));
    assert!(!tls.client.hostname_verification && tls.reload);
    assert_eq!(tls.client.protocols, vec!["TLSv1.3"]);
    let e = q("sslQuorum=true\n").unwrap_err().to_string();
    assert!(e.contains("ssl.quorum.keyStore.location"), "{e}");
    // portUnification alone: the stores are read, this server still dials in the clear.
    let unified = q("portUnification=true\nssl.quorum.keyStore.location=/k.pem\n").unwrap();
    let unified = unified.expect("stores for accepting TLS");
    assert!(unified.port_unification && !unified.dial);
    assert!(tls.dial && !tls.port_unification);
    let e = q("portUnification=true\n").unwrap_err().to_string();
    assert!(e.contains("portUnification is true but ssl.quorum.keyStore.location"), "{e}");
}

#[test]
fn client_port_unification_reads_the_ssl_settings() {
    let c = ok(&minimal("client.portUnification=true\nssl.keyStore.location=/k.pem\n"));
    assert!(c.client_port_unification && c.secure_client_address.is_none());
    assert!(c.client_tls.is_some(), "the plain port needs the TLS settings");
    assert!(ok(&minimal("ssl.keyStore.location=/k.pem\n")).client_tls.is_none());
    assert!(err(&minimal("client.portUnification=true\n")).contains("ssl.keyStore.location"));
    let limit = |line: &str| ok(&minimal(line)).outstanding_handshake_limit;
    assert_eq!(limit(""), None);
    assert_eq!(limit("netty.server.outstandingHandshake.limit=-1\n"), None, "Apache's default");
    assert_eq!(limit("netty.server.outstandingHandshake.limit=0\n"), None);
    assert_eq!(limit("netty.server.outstandingHandshake.limit=32\n"), Some(32));
}

#[test]
fn quorum_sasl_keys_as_quorum_peer_config_checks_them() {
    let none = SystemProperties::new();
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required \
         user_test=\"s1\" user_b=\"s2\"; };\n\
         QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required \
         username=\"test\" password=\"s1\"; };\n\
         Kerb { com.sun.security.auth.module.Krb5LoginModule required; };\n",
    )
    .unwrap();
    let q = |extra: &str| {
        let text = format!("{QUORUM}{extra}java.security.auth.login.config={}\n", jaas.display());
        parse_with(&text, &none, Some("2\n")).map(|c| c.quorum.unwrap())
    };
    let off = q("").unwrap();
    assert_eq!((off.sasl, off.handshake_threads), (None, 20));
    let on = q("quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                quorum.auth.serverRequireSasl=true\nquorum.cnxn.threads.size=4\n")
    .unwrap();
    let sasl = on.sasl.expect("quorum SASL");
    assert!(sasl.learner_require && sasl.server_require);
    assert_eq!((sasl.learner_user.as_str(), sasl.learner_password.as_str()), ("test", "s1"));
    assert_eq!(sasl.users.len(), 2);
    assert_eq!(on.handshake_threads, 4);
    assert!(!format!("{sasl:?}").contains("s1"), "passwords stay out of logs");
    // QuorumPeerConfig's consistency checks.
    for (extra, want) in [
        ("quorum.auth.serverRequireSasl=true\n", "quorum.auth.enableSasl is disabled"),
        ("quorum.auth.learnerRequireSasl=true\n", "quorum.auth.enableSasl is disabled"),
        (
            "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n",
            "quorum.auth.learnerRequireSasl is disabled",
        ),
        (
            "quorum.auth.enableSasl=true\nquorum.auth.learner.saslLoginContext=Nope\n",
            "section 'Nope' could not be found",
        ),
        (
            "quorum.auth.enableSasl=true\nquorum.auth.server.saslLoginContext=Kerb\n",
            "quorum Kerberos is not supported",
        ),
    ] {
        let e = q(extra).unwrap_err().to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
    let text = format!("{QUORUM}quorum.auth.enableSasl=true\n");
    let e = parse_with(&text, &none, Some("2\n")).unwrap_err().to_string();
    assert!(e.contains("java.security.auth.login.config is not set"), "{e}");
}

#[test]
fn snapshot_size_factor_as_zkdatabase_reads_it() {
    let none = SystemProperties::new();
    let factor = |line: &str| {
        let text = format!("{QUORUM}{line}\n");
        parse_with(&text, &none, Some("2\n")).unwrap().quorum.unwrap().snapshot_size_factor
    };
    assert_eq!(factor(""), 0.33);
    assert_eq!(factor("snapshotSizeFactor=0.5"), 0.5);
    assert_eq!(factor("snapshotSizeFactor=-1"), -1.0, "negative turns txn-log sync off");
    assert_eq!(factor("snapshotSizeFactor=2"), 0.33, "above 1: the default");
    assert_eq!(factor("snapshotSizeFactor=lots"), 0.33, "not a number: the default");
}

#[test]
fn quorum_needs_myid_limits_and_membership() {
    let none = SystemProperties::new();
    let e = parse_with(QUORUM, &none, None).unwrap_err();
    assert_eq!(e.to_string(), "myid file /var/lib/zk/myid is missing (needed with server.N lines)");
    let e = parse_with(QUORUM, &none, Some("x")).unwrap_err().to_string();
    assert!(e.contains("not a number"), "{e}");
    let e = parse_with(QUORUM, &none, Some("4")).unwrap_err().to_string();
    assert!(e.contains("my id 4"), "{e}");
    let text = QUORUM.replace("initLimit=5\n", "");
    assert_eq!(
        parse_with(&text, &none, Some("1")).unwrap_err().to_string(),
        "initLimit is not set"
    );
    let text = QUORUM.replace("syncLimit=2\n", "");
    assert_eq!(
        parse_with(&text, &none, Some("1")).unwrap_err().to_string(),
        "syncLimit is not set"
    );
}

#[test]
fn a_single_server_line_runs_standalone_unless_standalone_is_disabled() {
    let text = minimal("server.1=127.0.0.1:2888:3888\n");
    assert_eq!(parse_with(&text, &SystemProperties::new(), Some("1")).unwrap().quorum, None);
    let text = minimal(
        "server.1=127.0.0.1:2888:3888\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2\n",
    );
    let c = parse_with(&text, &SystemProperties::new(), Some("1")).unwrap();
    assert_eq!(c.quorum.unwrap().servers.len(), 1);
    assert!(err(&minimal("standaloneEnabled=false")).contains("at least one participant"));
}

#[test]
fn observers_need_participants() {
    let text = minimal("server.1=127.0.0.1:2888:3888:observer\n");
    assert!(err(&text).contains("observers without participants"));
    let text = minimal("server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889:observer\n");
    assert!(err(&text).contains("observers without a quorum"));
}

#[test]
fn own_server_line_gives_the_client_address_and_role() {
    let text = "dataDir=/d\ninitLimit=5\nsyncLimit=2\npeerType=participant\n\
                server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
                server.2=127.0.0.1:2889:3889;2182\n\
                server.3=127.0.0.1:2890:3890:observer;2183\n\
                server.4=127.0.0.1:2891:3891\n";
    let none = SystemProperties::new();
    let c = parse_with(text, &none, Some("1")).unwrap();
    assert_eq!(c.client_address, "127.0.0.1:2181".parse().unwrap());
    let c = parse_with(text, &none, Some("3")).unwrap();
    assert_eq!(c.client_address, "0.0.0.0:2183".parse().unwrap());
    assert_eq!(c.quorum.as_ref().unwrap().peer_type, LearnerType::Observer);
    // Server 4 has no client address anywhere.
    assert_eq!(
        parse_with(text, &none, Some("4")).unwrap_err().to_string(),
        "clientPort is not set"
    );
    // A static wildcard address must agree on the port; a specific one on everything.
    let with_port = format!("clientPort=2182\n{text}");
    assert!(parse_with(&with_port, &none, Some("2")).is_ok());
    let e = parse_with(&with_port, &none, Some("1")).unwrap_err().to_string();
    assert!(e.contains("client address for this server (id = 1)"), "{e}");
}

#[test]
fn extended_types_limit_server_ids() {
    let text = "dataDir=/d\nclientPort=2181\ninitLimit=5\nsyncLimit=2\nextendedTypesEnabled=true\n\
                server.255=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\n";
    let e = parse_with(text, &SystemProperties::new(), Some("255")).unwrap_err();
    assert!(e.to_string().contains("<= 254"), "{e}");
    assert!(parse_with(text, &SystemProperties::new(), Some("2")).is_ok());
}

#[test]
fn server_keys_need_numeric_ids() {
    assert!(err(&minimal("server.x=10.0.0.1:2888:3888")).contains("must be a number"));
}

#[test]
fn admission_limits_from_properties_or_zoo_cfg_lines() {
    let c = ok(&minimal(""));
    assert_eq!(c.connection_throttle, ThrottleConfig::default());
    assert_eq!(c.large_request_threshold, None);
    assert_eq!(c.large_request_max_bytes, 100 * 1024 * 1024);
    // As -D system properties (how Apache documents them) ...
    let system = props(&[
        ("zookeeper.connection_throttle_tokens", "100"),
        ("zookeeper.connection_throttle_fill_time", "10"),
        ("zookeeper.connection_throttle_fill_count", "2"),
        ("zookeeper.connection_throttle_freeze_time", "500"),
        ("zookeeper.connection_throttle_drop_increase", "0.1"),
        ("zookeeper.connection_throttle_drop_decrease", "0.05"),
        ("zookeeper.connection_throttle_decrease_ratio", "0.2"),
        ("zookeeper.connection_throttle_weight_enabled", "true"),
        ("zookeeper.connection_throttle_global_session_weight", "5"),
        ("zookeeper.largeRequestThreshold", "4096"),
        ("zookeeper.largeRequestMaxBytes", "1048576"),
    ]);
    let c = parse_with(&minimal(""), &system, None).unwrap();
    let t = c.connection_throttle;
    assert_eq!((t.tokens, t.fill_time_ms, t.fill_count, t.freeze_time_ms), (100, 10, 2, Some(500)));
    assert_eq!((t.drop_increase, t.drop_decrease, t.decrease_ratio), (0.1, 0.05, 0.2));
    assert_eq!(t.weights, Some(SessionWeights { global: 5, renew: 2, local: 1 }));
    assert_eq!(c.large_request_threshold, Some(4096));
    assert_eq!(c.large_request_max_bytes, 1_048_576);
    // ... or as zoo.cfg lines (Apache turns unknown keys into zookeeper. properties).
    let c = ok(&minimal("connection_throttle_tokens=7\nlargeRequestThreshold=10\n"));
    assert_eq!(c.connection_throttle.tokens, 7);
    assert_eq!(c.large_request_threshold, Some(10));
    // Apache's corrections: a threshold of 0 or below -1 is off, max bytes must be positive.
    let c = ok(&minimal("largeRequestThreshold=0\nlargeRequestMaxBytes=-5\n"));
    assert_eq!((c.large_request_threshold, c.large_request_max_bytes), (None, 100 << 20));
    assert!(err(&minimal("connection_throttle_drop_increase=lots\n"))
        .contains("connection_throttle_drop_increase"));
}

#[test]
fn tls_settings_follow_x509util() {
    // Defaults: need, TLSv1.3 and 1.2, x509, the type from the extension.
    let c = ok(&minimal("secureClientPort=2281\nssl.keyStore.location=/k.pem\n"));
    let tls = c.client_tls.expect("tls");
    assert_eq!(tls.key_store.kind, StoreKind::Pem);
    assert_eq!(tls.client_auth, ClientAuth::Need);
    assert_eq!(tls.protocols, vec!["TLSv1.3", "TLSv1.2"]);
    assert_eq!(tls.auth_provider, "x509");
    assert!(tls.trust_store.is_none() && !tls.cert_reload);
    // ssl.* without a secure port configures nothing.
    assert!(ok(&minimal("ssl.keyStore.location=/k.pem\n")).client_tls.is_none());
    // As -D properties too.
    let p = props(&[
        ("zookeeper.ssl.keyStore.location", "/p.p12"),
        ("zookeeper.ssl.clientAuth", "none"),
    ]);
    let c = parse_with(&minimal("secureClientPort=2281\n"), &p, None).expect("parses");
    let tls = c.client_tls.expect("tls");
    assert_eq!((tls.key_store.kind, tls.client_auth), (StoreKind::Pkcs12, ClientAuth::None));
    // Errors name the key.
    assert!(err(&minimal("secureClientPort=2281\n")).contains("ssl.keyStore.location"));
    let e = err(&minimal("secureClientPort=2281\nssl.keyStore.location=/k.bin\n"));
    assert!(e.contains("ssl.keyStore.type"), "{e}");
    let e = err(&minimal(
        "secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=maybe\n",
    ));
    assert!(e.contains("ssl.clientAuth"), "{e}");
    let e =
        err(&minimal("secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.protocol=SSLv3\n"));
    assert!(e.contains("ssl.protocol"), "{e}");
    let e = err(&minimal(
        "secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.enabledProtocols=TLSv1,TLSv1.1\n",
    ));
    assert!(e.contains("ssl.enabledProtocols"), "{e}");
}

#[test]
fn sasl_settings_come_from_the_jaas_file() {
    let dir = std::env::temp_dir().join(format!("rzk-jaas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
         user_bob=\"pw\";\n};\n",
    )
    .expect("write");
    let path = jaas.to_string_lossy().to_string();
    let p = props(&[
        ("java.security.auth.login.config", path.as_str()),
        ("zookeeper.superUser", "bob"),
        ("zookeeper.sessionRequireClientSASLAuth", "true"),
    ]);
    let c = parse_with(&minimal(""), &p, None).expect("parses");
    let sasl = c.sasl.expect("sasl");
    assert_eq!(sasl.users.get("bob").map(String::as_str), Some("pw"));
    assert_eq!(sasl.super_user.as_deref(), Some("bob"));
    assert_eq!(c.enforce_auth.schemes, vec!["sasl".to_string()]);
    // Without a JAAS file: no SASL, and requiring it is an error.
    assert!(ok(&minimal("")).sasl.is_none());
    let e = err(&minimal("sessionRequireClientSASLAuth=true\n"));
    assert!(e.contains("sasl"), "{e}");
    let e = err(&minimal("enforce.auth.enabled=true\n"));
    assert!(e.contains("enforce.auth.schemes"), "{e}");
    let c = ok(&minimal("enforce.auth.enabled=true\nenforce.auth.schemes=digest,x509\n"));
    assert_eq!(c.enforce_auth.schemes, vec!["digest".to_string(), "x509".to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
}
