//! From merged settings to a [`ServerConfig`]: every key's default, check and log line.
//!
//! [`Settings`] merges system properties, zoo.cfg entries and command-line arguments by the
//! precedence rule in the parent module's doc; [`build`] then takes each key out, in the order
//! of the `ServerConfig` fields, and whatever is left is reported as unsupported or unknown.
//! The standalone-or-quorum decision and the client address follow QuorumPeerConfig.
//!
//! I/O: only through the `read_myid` callback and DNS resolution of client hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};

use super::{
    parse_port_allow_zero, ConfigError, LearnerType, Property, QuorumConfig, QuorumSaslConfig,
    QuorumTlsConfig, ServerConfig, ServerSpec, SessionTimeouts, SessionWeights, SystemProperties,
    ThrottleConfig, ELECTION_ALG_FAST,
};
use crate::limits;
use crate::proto::frame::FOUR_LETTER_WORDS;
use crate::proto::ServerId;

/// Settings Apache reads as system properties without the `zookeeper.` prefix; rzk accepts
/// each as `-D<name>=value` and as a zoo.cfg key of the same name.
pub const UNPREFIXED_PROPERTIES: &[&str] = &[
    "jute.maxbuffer",
    "readonlymode.enabled",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "fsync.warningthresholdms",
    "java.security.auth.login.config",
];

/// NIOServerCnxnFactory's class name, the `serverCnxnFactory` whose behaviour rzk has.
const NIO_FACTORY: &str = "org.apache.zookeeper.server.NIOServerCnxnFactory";

/// NettyServerCnxnFactory's class name: accepted, but rzk's selector is used.
const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";

/// Keys the builder reads (besides `server.N`); a `-Dzookeeper.<key>` property maps to each.
const SUPPORTED_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "clientPortListenBacklog",
    "tickTime",
    "minSessionTimeout",
    "maxSessionTimeout",
    "maxClientCnxns",
    "maxCnxns",
    "globalOutstandingLimit",
    "4lw.commands.whitelist",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "snapCount",
    "snapSizeLimitInKb",
    "txnLogSizeLimitInKb",
    "preAllocSize",
    "forceSync",
    "fsync.warningthresholdms",
    "jute.maxbuffer",
    "jute.maxbuffer.extrasize",
    "extendedTypesEnabled",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "DigestAuthenticationProvider.superDigest",
    "skipACL",
    "enforceQuota",
    "readonlymode.enabled",
    "standaloneEnabled",
    "reconfigEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "serverCnxnFactory",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "cnxTimeout",
    "electionAlg",
    "electionPortBindRetry",
    "peerType",
    "quorumListenOnAllIPs",
    "leaderServes",
    "syncEnabled",
    "snapshotSizeFactor",
    "dynamicConfigFile",
    // Set as `-Dzookeeper.<key>` (or, as Apache turns unknown zoo.cfg keys into
    // `zookeeper.`-prefixed system properties, as zoo.cfg lines).
    "largeRequestMaxBytes",
    "largeRequestThreshold",
    "connection_throttle_tokens",
    "connection_throttle_fill_time",
    "connection_throttle_fill_count",
    "connection_throttle_freeze_time",
    "connection_throttle_drop_increase",
    "connection_throttle_drop_decrease",
    "connection_throttle_decrease_ratio",
    "connection_throttle_weight_enabled",
    "connection_throttle_global_session_weight",
    "connection_throttle_local_session_weight",
    "connection_throttle_renew_session_weight",
    // Client TLS (X509Util's `zookeeper.ssl.*`, ClientX509Util).
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.passwordPath",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.passwordPath",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "ssl.authProvider",
    "ssl.hostnameVerification",
    "ssl.clientHostnameVerification",
    "ssl.handshakeDetectionTimeoutMillis",
    // Quorum TLS (QuorumX509Util).
    "sslQuorum",
    "sslQuorumReloadCertFiles",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.keyStore.passwordPath",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.trustStore.passwordPath",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.protocol",
    "ssl.quorum.enabledProtocols",
    "ssl.quorum.ciphersuites",
    "ssl.quorum.hostnameVerification",
    "ssl.quorum.clientAuth",
    "ssl.quorum.allowReverseDnsLookup",
    "client.certReload",
    "X509AuthenticationProvider.superUser",
    // Client SASL (ZooKeeperSaslServer, SaslServerCallbackHandler, AuthenticationHelper).
    "sasl.serverconfig",
    "superUser",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "allowSaslFailedClients",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "client.portUnification",
    "portUnification",
    "netty.server.outstandingHandshake.limit",
    // Quorum SASL (QuorumAuth, QuorumPeerConfig).
    "quorum.auth.enableSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
    "quorum.cnxn.threads.size",
];

/// Key prefixes of features that are accepted but not supported yet.
const UNSUPPORTED_PREFIXES: &[(&str, &str)] = &[
    ("admin.", "the AdminServer"),
    ("metricsProvider.", "metrics providers"),
    ("ssl.quorum.", "quorum TLS"),
    ("ssl.", "this TLS option"),
    ("authProvider.", "pluggable auth providers"),
    ("multiAddress.", "multiple addresses per server"),
    ("jvm.pause.", "the JVM pause monitor"),
    ("kerberos.", "Kerberos"),
    ("sasl.", "this SASL option"),
];

/// Keys of features that are accepted but not supported yet.
const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("observerMasterPort", "observer masters"),
    ("oraclePath", "the quorum oracle"),
    ("requireClientAuthScheme", "SASL"),
    ("audit.enable", "audit logging"),
];

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    File,
    Property(String),
    Argument,
}

#[derive(Debug, Clone)]
struct Setting {
    value: String,
    origin: Origin,
}

/// The merged settings, consumed key by key by [`build`].
pub(super) struct Settings {
    values: BTreeMap<String, Setting>,
    /// Every key the builder asked for, to check that [`SUPPORTED_KEYS`] stays in step.
    asked: BTreeSet<String>,
}

impl Settings {
    /// Merges, lowest precedence first: system properties, file entries, arguments.
    pub(super) fn new(
        file: &[Property],
        system: &SystemProperties,
        arguments: &[(&str, &str)],
    ) -> Settings {
        let mut values = BTreeMap::new();
        for (name, value) in system.iter() {
            match key_for_property(name) {
                Some(key) => {
                    let origin = Origin::Property(name.to_string());
                    values.insert(key.to_string(), Setting { value: value.trim().into(), origin });
                }
                None => debug!("system property {name} ignored"),
            }
        }
        let mut file_lines: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in file {
            if let Some(earlier) = file_lines.insert(&entry.key, entry.line) {
                warn!(
                    "{} is set on line {earlier} and again on line {}; using line {}",
                    entry.key, entry.line, entry.line
                );
            }
            let setting = Setting { value: entry.value.clone(), origin: Origin::File };
            values.insert(entry.key.clone(), setting);
        }
        for (key, value) in arguments {
            let setting = Setting { value: value.trim().to_string(), origin: Origin::Argument };
            values.insert(key.to_string(), setting);
        }
        Settings { values, asked: BTreeSet::new() }
    }

    fn take(&mut self, key: &str) -> Option<Setting> {
        self.asked.insert(key.to_string());
        self.values.remove(key)
    }

    /// Removes and returns every key starting with `prefix`.
    fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, Setting)> {
        let keys: Vec<String> =
            self.values.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        keys.into_iter()
            .filter_map(|k| self.values.remove(&k).map(|setting| (k, setting)))
            .collect()
    }

    fn string(&mut self, key: &str) -> Option<String> {
        self.take(key).map(|s| s.value)
    }

    /// An integer in `min..=max`, or `None` if unset.
    fn int(&mut self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        let Some(setting) = self.take(key) else {
            return Ok(None);
        };
        let number: i64 = setting
            .value
            .parse()
            .map_err(|_| invalid(key, &setting, "not an integer".to_string()))?;
        if number < min {
            return Err(invalid(key, &setting, format!("must be at least {min}")));
        }
        if number > max {
            return Err(invalid(key, &setting, format!("must be at most {max}")));
        }
        Ok(Some(number))
    }

    /// A real number (Java's `Double.parseDouble`), or `None` if unset.
    fn float(&mut self, key: &str) -> Result<Option<f64>, ConfigError> {
        let Some(setting) = self.take(key) else {
            return Ok(None);
        };
        match setting.value.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(invalid(key, &setting, "not a number".to_string())),
        }
    }

    /// `true` or `false`, any case (QuorumPeerConfig.parseBoolean).
    fn bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.word(key, &[("true", true), ("false", false)], "expected true or false")
    }

    /// `yes` or `no` (Apache's forceSync/skipACL/leaderServes), or `true`/`false`, any case.
    fn yes_no(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        let words = [("yes", true), ("no", false), ("true", true), ("false", false)];
        self.word(key, &words, "expected yes or no")
    }

    fn word(
        &mut self,
        key: &str,
        words: &[(&str, bool)],
        expected: &str,
    ) -> Result<Option<bool>, ConfigError> {
        let Some(setting) = self.take(key) else {
            return Ok(None);
        };
        words
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(&setting.value))
            .map(|(_, value)| Some(*value))
            .ok_or_else(|| invalid(key, &setting, expected.to_string()))
    }
}

/// Builds the configuration from merged settings; `read_myid` returns the content of the
/// given `myid` file, or `None` if it does not exist.
pub(super) fn build(
    mut s: Settings,
    read_myid: &mut dyn FnMut(&Path) -> Result<Option<String>, ConfigError>,
) -> Result<ServerConfig, ConfigError> {
    const INT_MAX: i64 = i32::MAX as i64;
    const INT_MIN: i64 = i32::MIN as i64;

    // Directories.
    let data_dir = match s.take("dataDir") {
        None => return Err(ConfigError::Missing { key: "dataDir" }),
        Some(setting) if setting.value.is_empty() => {
            return Err(invalid("dataDir", &setting, "empty path".to_string()))
        }
        Some(setting) => PathBuf::from(setting.value),
    };
    let data_log_dir = s.string("dataLogDir").filter(|v| !v.is_empty()).map(PathBuf::from);
    for (key, dir) in [("dataDir", Some(&data_dir)), ("dataLogDir", data_log_dir.as_ref())] {
        if let Some(dir) = dir.filter(|dir| dir.is_relative()) {
            info!("{key} {} is relative to the working directory", dir.display());
        }
    }
    let data_log_dir = data_log_dir.unwrap_or_else(|| data_dir.clone());

    // Client ports. A port of 0 in zoo.cfg means "not set" (QuorumPeerConfig); on the short
    // form's command line it means any free port (ZooKeeperServerMain binds it as given).
    let client_port_setting = s.take("clientPort");
    let client_port = match &client_port_setting {
        None => None,
        Some(setting) => match parse_port_allow_zero(&setting.value) {
            Ok(0) if setting.origin != Origin::Argument => None,
            Ok(port) => Some(port),
            Err(reason) => return Err(invalid("clientPort", setting, reason)),
        },
    };
    let client_host = s.take("clientPortAddress");
    let static_client_address = match (client_port, client_host) {
        (None, Some(_)) => {
            let reason = "clientPortAddress is set but clientPort is not set";
            return Err(ConfigError::Inconsistent(reason.to_string()));
        }
        (None, None) => None,
        (Some(port), None) => Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)),
        (Some(port), Some(host)) => Some(
            resolve(&host.value, port)
                .map_err(|reason| invalid("clientPortAddress", &host, reason))?,
        ),
    };
    let secure_port = s.int("secureClientPort", 0, 65535)?.unwrap_or(0) as u16;
    let secure_host = s.take("secureClientPortAddress");
    let secure_client_address = match (secure_port, secure_host) {
        (0, Some(_)) => {
            let reason = "secureClientPortAddress is set but secureClientPort is not set";
            return Err(ConfigError::Inconsistent(reason.to_string()));
        }
        (0, None) => None,
        (port, None) => Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)),
        (port, Some(host)) => Some(
            resolve(&host.value, port)
                .map_err(|reason| invalid("secureClientPortAddress", &host, reason))?,
        ),
    };
    let client_port_unification = s.bool("client.portUnification")?.unwrap_or(false);
    let handshake_limit =
        s.int("netty.server.outstandingHandshake.limit", i64::from(i32::MIN), INT_MAX)?;
    let outstanding_handshake_limit = handshake_limit.filter(|n| *n > 0).map(|n| n as usize);
    let client_tls =
        tls_settings(&mut s, secure_client_address.is_some() || client_port_unification)?;
    let quorum_tls = quorum_tls_settings(&mut s)?;
    let jaas = jaas(&mut s)?;
    let (sasl, enforce_auth) = sasl_settings(&mut s, jaas.as_ref())?;
    let (quorum_sasl, handshake_threads) = quorum_sasl_settings(&mut s, jaas.as_ref())?;
    let backlog = s.int("clientPortListenBacklog", -1, INT_MAX)?.unwrap_or(-1);
    let client_port_listen_backlog = u32::try_from(backlog).ok().and_then(NonZeroU32::new);

    // Time.
    let tick_ms = s.int("tickTime", 1, INT_MAX)?;
    let tick_time = tick_ms.map_or(limits::TICK_TIME_DEFAULT, millis);
    let defaults = SessionTimeouts::for_tick(tick_time);
    let min_session = match s.int("minSessionTimeout", -1, INT_MAX)? {
        None | Some(-1) => defaults.min(),
        Some(ms) => millis(ms),
    };
    let max_session = match s.int("maxSessionTimeout", -1, INT_MAX)? {
        None | Some(-1) => defaults.max(),
        Some(ms) => millis(ms),
    };
    let session_timeouts = SessionTimeouts::new(min_session, max_session).ok_or_else(|| {
        let reason = format!(
            "minSessionTimeout ({} ms) must not be larger than maxSessionTimeout ({} ms)",
            min_session.as_millis(),
            max_session.as_millis()
        );
        ConfigError::Inconsistent(reason)
    })?;

    // Connections and request flow.
    let max_client_cnxns = s.int("maxClientCnxns", 0, INT_MAX)?;
    let max_client_cnxns = max_client_cnxns.unwrap_or(limits::MAX_CLIENT_CNXNS_DEFAULT.into());
    let mut max_cnxns = s.int("maxCnxns", INT_MIN, INT_MAX)?.unwrap_or(0);
    if max_cnxns < 0 {
        warn!("maxCnxns {max_cnxns} should be >= 0; using 0 (unlimited)");
        max_cnxns = 0;
    }
    let global_outstanding_limit = s
        .int("globalOutstandingLimit", 1, INT_MAX)?
        .unwrap_or(limits::GLOBAL_OUTSTANDING_LIMIT_DEFAULT.into());
    let read_only_mode_enabled = s.bool("readonlymode.enabled")?.unwrap_or(false);
    let whitelist = s.string("4lw.commands.whitelist");
    let four_letter_words = four_letter_whitelist(whitelist.as_deref(), read_only_mode_enabled);
    if let Some(factory) = s.take("serverCnxnFactory") {
        match factory.value.as_str() {
            NIO_FACTORY => {}
            NETTY_FACTORY => warn!(
                "serverCnxnFactory {NETTY_FACTORY} is not supported yet; using rzk's \
                 selector (NIO behaviour)"
            ),
            _ => {
                let reason = format!("unknown connection factory; use {NIO_FACTORY}");
                return Err(invalid("serverCnxnFactory", &factory, reason));
            }
        }
    }

    // Persistence.
    let mut snap_retain_count = s
        .int("autopurge.snapRetainCount", INT_MIN, INT_MAX)?
        .unwrap_or(limits::SNAP_RETAIN_COUNT_MIN.into());
    if snap_retain_count < i64::from(limits::SNAP_RETAIN_COUNT_MIN) {
        warn!(
            "invalid autopurge.snapRetainCount {snap_retain_count}; using {}",
            limits::SNAP_RETAIN_COUNT_MIN
        );
        snap_retain_count = limits::SNAP_RETAIN_COUNT_MIN.into();
    }
    let purge_hours = s.int("autopurge.purgeInterval", INT_MIN, INT_MAX)?.unwrap_or(0);
    let purge_interval = (purge_hours > 0).then(|| Duration::from_secs(purge_hours as u64 * 3600));
    let mut snap_count =
        s.int("snapCount", INT_MIN, INT_MAX)?.unwrap_or(limits::SNAP_COUNT_DEFAULT.into());
    if snap_count < i64::from(limits::SNAP_COUNT_MIN) {
        warn!("snapCount {snap_count} should be 2 or more; using 2");
        snap_count = limits::SNAP_COUNT_MIN.into();
    }
    let kib_max = i64::MAX / 1024;
    let snap_size_kib = s.int("snapSizeLimitInKb", i64::MIN, kib_max)?;
    let snap_size_kib = snap_size_kib.unwrap_or(limits::SNAP_SIZE_LIMIT_DEFAULT_KIB as i64);
    if snap_size_kib <= 0 {
        info!("snapSizeLimitInKb {snap_size_kib} is not positive; size-based snapshots are off");
    }
    let snap_size_limit_bytes = (snap_size_kib > 0).then(|| snap_size_kib as u64 * 1024);
    let txn_log_kib = s.int("txnLogSizeLimitInKb", i64::MIN, kib_max)?.unwrap_or(-1);
    let txn_log_size_limit_bytes = (txn_log_kib > 0).then(|| txn_log_kib as u64 * 1024);
    let pre_alloc_kib = s.int("preAllocSize", 0, kib_max)?;
    let pre_alloc_kib = pre_alloc_kib.unwrap_or(limits::PRE_ALLOC_SIZE_DEFAULT_KIB as i64);
    let force_sync = s.yes_no("forceSync")?.unwrap_or(true);
    if !force_sync {
        warn!("forceSync is off: acknowledged txns can be lost on power failure");
    }
    let fsync_warning_threshold = s
        .int("fsync.warningthresholdms", 0, i64::MAX)?
        .map_or(limits::FSYNC_WARNING_THRESHOLD_DEFAULT, millis);

    // Records and nodes.
    let jute_max_buffer = s.int("jute.maxbuffer", 1, INT_MAX)?;
    let jute_max_buffer = jute_max_buffer.unwrap_or(limits::JUTE_MAX_BUFFER_DEFAULT_BYTES as i64);
    let jute_extra = s.int("jute.maxbuffer.extrasize", INT_MIN, INT_MAX)?;
    // BinaryInputArchive: the extra size defaults to jute.maxbuffer, and is at least 1024.
    let extra_min = limits::JUTE_MAX_BUFFER_EXTRA_MIN_BYTES as i64;
    let jute_extra = jute_extra.unwrap_or(jute_max_buffer).max(extra_min);
    let extended_types_enabled = s.bool("extendedTypesEnabled")?.unwrap_or(false);
    let container_check_interval = s
        .int("znode.container.checkIntervalMs", 1, INT_MAX)?
        .map_or(limits::CONTAINER_CHECK_INTERVAL_DEFAULT, millis);
    let container_max_per_minute = s
        .int("znode.container.maxPerMinute", 1, INT_MAX)?
        .unwrap_or(limits::CONTAINER_MAX_PER_MINUTE_DEFAULT.into());
    let never_used_ms = s.int("znode.container.maxNeverUsedIntervalMs", 0, i64::MAX)?;
    let container_max_never_used_interval = never_used_ms.filter(|ms| *ms > 0).map(millis);

    // Access control.
    let super_digest = match s.take("DigestAuthenticationProvider.superDigest") {
        None => None,
        Some(setting) => match setting.value.split_once(':') {
            Some((user, digest)) if !user.is_empty() && !digest.is_empty() => Some(setting.value),
            _ => {
                let reason = "expected user:base64-sha1-digest".to_string();
                let key = "DigestAuthenticationProvider.superDigest";
                return Err(invalid(key, &setting, reason));
            }
        },
    };
    let skip_acl = s.yes_no("skipACL")?.unwrap_or(false);
    if skip_acl {
        warn!("skipACL is on: ACLs are not checked");
    }
    let enforce_quota = s.bool("enforceQuota")?.unwrap_or(false);

    // Modes.
    let standalone_enabled = s.bool("standaloneEnabled")?.unwrap_or(true);
    let reconfig_enabled = s.bool("reconfigEnabled")?.unwrap_or(false);
    let local_sessions_enabled = s.bool("localSessionsEnabled")?.unwrap_or(false);
    let local_sessions_upgrading_enabled =
        s.bool("localSessionsUpgradingEnabled")?.unwrap_or(false);

    // Admission limits (ZooKeeperServer's large-request budget, BlueThrottle).
    let large_request_max_bytes = match s.int("largeRequestMaxBytes", INT_MIN, INT_MAX)? {
        Some(n) if n > 0 => n as usize,
        Some(n) => {
            warn!("largeRequestMaxBytes {n} should be positive; using the default");
            limits::LARGE_REQUEST_MAX_BYTES_DEFAULT
        }
        None => limits::LARGE_REQUEST_MAX_BYTES_DEFAULT,
    };
    let large_request_threshold = match s.int("largeRequestThreshold", INT_MIN, INT_MAX)? {
        None | Some(-1) => None,
        Some(n) if n > 0 => Some(n as usize),
        Some(n) => {
            warn!("largeRequestThreshold {n} should be -1 or positive; using -1 (off)");
            None
        }
    };
    let connection_throttle = connection_throttle(&mut s)?;

    // Quorum settings (read in standalone too, so that they are validated and not reported
    // as unknown).
    let init_limit = s.int("initLimit", 0, INT_MAX)?.unwrap_or(0);
    let sync_limit = s.int("syncLimit", 0, INT_MAX)?.unwrap_or(0);
    let connect_limit = s.int("connectToLearnerMasterLimit", 0, INT_MAX)?.unwrap_or(0);
    let cnx_timeout = s.int("cnxTimeout", 1, INT_MAX)?.map_or(limits::CNX_TIMEOUT_DEFAULT, millis);
    if let Some(setting) = s.take("electionAlg") {
        if setting.value.parse::<i64>() != Ok(ELECTION_ALG_FAST) {
            let reason = "only 3 (fast leader election) is supported".to_string();
            return Err(invalid("electionAlg", &setting, reason));
        }
    }
    let election_port_bind_retry = s
        .int("electionPortBindRetry", 0, INT_MAX)?
        .unwrap_or(limits::ELECTION_PORT_BIND_RETRY_DEFAULT.into());
    let peer_type = match s.take("peerType") {
        None => None,
        Some(setting) => Some(LearnerType::parse(&setting.value).ok_or_else(|| {
            invalid("peerType", &setting, "expected participant or observer".to_string())
        })?),
    };
    let quorum_listen_on_all_ips = s.bool("quorumListenOnAllIPs")?.unwrap_or(false);
    let leader_serves = s.yes_no("leaderServes")?.unwrap_or(true);
    let sync_enabled = s.bool("syncEnabled")?.unwrap_or(true);
    let snapshot_size_factor = snapshot_size_factor(s.take("snapshotSizeFactor"));
    if s.take("dynamicConfigFile").is_some() {
        return Err(ConfigError::Unsupported {
            key: "dynamicConfigFile".to_string(),
            reason: "put the server.N lines into zoo.cfg",
        });
    }
    let mut servers = Vec::new();
    for (key, setting) in s.take_prefixed("server.") {
        let id = key["server.".len()..]
            .parse::<u64>()
            .map_err(|_| invalid(&key, &setting, "N in server.N must be a number".into()))?;
        servers.push(ServerSpec::parse(ServerId(id), &setting.value)?);
    }
    servers.sort_by_key(|server| server.id);
    for prefix in ["group.", "weight."] {
        for (key, _) in s.take_prefixed(prefix) {
            warn!("{key}: hierarchical quorums are not supported yet; using majority quorums");
        }
    }

    // What is left is either a feature we lack or a key we do not know.
    debug_assert!(
        SUPPORTED_KEYS.iter().all(|key| s.asked.contains(*key)),
        "SUPPORTED_KEYS lists a key the builder does not read"
    );
    for (key, setting) in std::mem::take(&mut s.values) {
        report_leftover(&key, &setting);
    }

    let extras = Extras {
        init_limit,
        sync_limit,
        connect_limit,
        cnx_timeout,
        election_port_bind_retry,
        peer_type,
        quorum_listen_on_all_ips,
        leader_serves,
        sync_enabled,
        snapshot_size_factor,
        quorum_tls,
        quorum_sasl,
        handshake_threads,
    };
    let (quorum, client_address) = quorum_and_client_address(
        servers,
        standalone_enabled,
        static_client_address,
        &data_dir,
        extras,
        read_myid,
    )?;
    if let Some(quorum) = &quorum {
        if extended_types_enabled && quorum.server_id.0 > limits::EXTENDED_TYPES_SERVER_ID_MAX {
            return Err(ConfigError::InvalidValue {
                key: "myid".to_string(),
                value: quorum.server_id.to_string(),
                reason: format!(
                    "server ids must be <= {} when extendedTypesEnabled is true",
                    limits::EXTENDED_TYPES_SERVER_ID_MAX
                ),
            });
        }
    }

    Ok(ServerConfig {
        data_dir,
        data_log_dir,
        client_address,
        secure_client_address,
        client_tls,
        client_port_unification,
        outstanding_handshake_limit,
        client_port_listen_backlog,
        tick_time,
        session_timeouts,
        max_client_cnxns: NonZeroU32::new(max_client_cnxns as u32),
        max_cnxns: NonZeroU32::new(max_cnxns as u32),
        global_outstanding_limit: nonzero(global_outstanding_limit),
        four_letter_words,
        snap_retain_count: snap_retain_count as u32,
        purge_interval,
        snap_count: snap_count as u32,
        snap_size_limit_bytes,
        txn_log_size_limit_bytes,
        pre_alloc_bytes: pre_alloc_kib as u64 * 1024,
        force_sync,
        fsync_warning_threshold,
        jute_max_buffer_bytes: jute_max_buffer as usize,
        jute_max_buffer_extra_bytes: jute_extra as usize,
        extended_types_enabled,
        container_check_interval,
        container_max_per_minute: nonzero(container_max_per_minute),
        container_max_never_used_interval,
        super_digest,
        sasl,
        enforce_auth,
        skip_acl,
        enforce_quota,
        read_only_mode_enabled,
        standalone_enabled,
        reconfig_enabled,
        local_sessions_enabled,
        local_sessions_upgrading_enabled,
        connection_throttle,
        large_request_threshold,
        large_request_max_bytes,
        quorum,
    })
}

/// Quorum settings that only matter once we know the server runs in a quorum.
struct Extras {
    init_limit: i64,
    sync_limit: i64,
    connect_limit: i64,
    cnx_timeout: Duration,
    election_port_bind_retry: i64,
    peer_type: Option<LearnerType>,
    quorum_listen_on_all_ips: bool,
    leader_serves: bool,
    sync_enabled: bool,
    snapshot_size_factor: f64,
    quorum_tls: Option<QuorumTlsConfig>,
    quorum_sasl: Option<QuorumSaslConfig>,
    handshake_threads: usize,
}

/// BlueThrottle's settings with Apache's defaults and corrections.
fn connection_throttle(s: &mut Settings) -> Result<ThrottleConfig, ConfigError> {
    const INT_MAX: i64 = i32::MAX as i64;
    let d = ThrottleConfig::default();
    let tokens = s.int("connection_throttle_tokens", i64::from(i32::MIN), INT_MAX)?;
    let tokens = match tokens {
        Some(n) if n < 0 => {
            warn!("connection_throttle_tokens {n} should be >= 0; throttling stays off");
            0
        }
        n => n.unwrap_or(0) as u32,
    };
    let fill_time_ms = s.int("connection_throttle_fill_time", 1, INT_MAX)?;
    let fill_count = s.int("connection_throttle_fill_count", 0, INT_MAX)?;
    let freeze = s.int("connection_throttle_freeze_time", -1, INT_MAX)?;
    let weighted = s.bool("connection_throttle_weight_enabled")?.unwrap_or(false);
    let global = s.int("connection_throttle_global_session_weight", i64::MIN, i64::MAX)?;
    let local = s.int("connection_throttle_local_session_weight", i64::MIN, i64::MAX)?;
    let renew = s.int("connection_throttle_renew_session_weight", i64::MIN, i64::MAX)?;
    let weights =
        SessionWeights::corrected(global.unwrap_or(3), renew.unwrap_or(2), local.unwrap_or(1));
    Ok(ThrottleConfig {
        tokens,
        fill_time_ms: fill_time_ms.map_or(d.fill_time_ms, |v| v as u32),
        fill_count: fill_count.map_or(d.fill_count, |v| v as u32),
        freeze_time_ms: match freeze {
            None | Some(-1) => None,
            Some(v) => Some(v as u32),
        },
        drop_increase: s.float("connection_throttle_drop_increase")?.unwrap_or(d.drop_increase),
        drop_decrease: s.float("connection_throttle_drop_decrease")?.unwrap_or(d.drop_decrease),
        decrease_ratio: s.float("connection_throttle_decrease_ratio")?.unwrap_or(d.decrease_ratio),
        weights: weighted.then_some(weights),
    })
}

/// `snapshotSizeFactor` as ZKDatabase reads it: a number, at most 1; anything else is logged
/// and the default is used.
fn snapshot_size_factor(setting: Option<Setting>) -> f64 {
    let default = limits::SNAPSHOT_SIZE_FACTOR_DEFAULT;
    let Some(setting) = setting else { return default };
    match setting.value.parse::<f64>() {
        Ok(f) if f.is_finite() && f <= 1.0 => f,
        _ => {
            warn!(
                "snapshotSizeFactor {:?} is not a number at most 1; using {default}",
                setting.value
            );
            default
        }
    }
}

/// Decides standalone versus quorum as QuorumPeerConfig.parseDynamicConfig and isDistributed
/// do, and picks the client address (QuorumPeerConfig.setupClientPort).
fn quorum_and_client_address(
    servers: Vec<ServerSpec>,
    standalone_enabled: bool,
    static_client_address: Option<SocketAddr>,
    data_dir: &Path,
    extras: Extras,
    read_myid: &mut dyn FnMut(&Path) -> Result<Option<String>, ConfigError>,
) -> Result<(Option<QuorumConfig>, SocketAddr), ConfigError> {
    let participants = servers.iter().filter(|s| s.role == LearnerType::Participant).count();
    let observers = servers.len() - participants;
    let inconsistent = |reason: &str| Err(ConfigError::Inconsistent(reason.to_string()));
    if participants == 0 {
        if !standalone_enabled {
            return inconsistent("standaloneEnabled=false needs at least one participant");
        }
        if observers > 0 {
            return inconsistent("observers without participants is an invalid configuration");
        }
    } else if participants == 1 && standalone_enabled {
        // HBase writes a single server line; Apache ignores it and runs standalone.
        error!("invalid configuration, only one server specified (ignoring)");
        if observers > 0 {
            return inconsistent("observers without a quorum is an invalid configuration");
        }
    } else if participants <= 2 {
        warn!("no server failure will be tolerated; you need at least 3 servers");
    } else if participants.is_multiple_of(2) {
        warn!("non-optimal configuration, consider an odd number of servers");
    }
    let distributed = participants > 0 && (!standalone_enabled || participants > 1);
    if !distributed {
        let address = static_client_address.ok_or(ConfigError::Missing { key: "clientPort" })?;
        return Ok((None, address));
    }

    if extras.init_limit == 0 {
        return Err(ConfigError::Missing { key: "initLimit" });
    }
    if extras.sync_limit == 0 {
        return Err(ConfigError::Missing { key: "syncLimit" });
    }
    let myid_path = data_dir.join("myid");
    let myid_text = read_myid(&myid_path)?
        .ok_or_else(|| ConfigError::MissingMyId { path: myid_path.clone() })?;
    let myid_text = myid_text.lines().next().unwrap_or_default().trim().to_string();
    let server_id = ServerId(myid_text.parse::<u64>().map_err(|_| ConfigError::InvalidValue {
        key: format!("myid ({})", myid_path.display()),
        value: myid_text.clone(),
        reason: "not a number".to_string(),
    })?);
    let me = servers.iter().find(|s| s.id == server_id).ok_or_else(|| {
        let reason =
            format!("my id {server_id} (from {}) has no server.N line", myid_path.display());
        ConfigError::Inconsistent(reason)
    })?;
    if let Some(peer_type) = extras.peer_type {
        if peer_type != me.role {
            warn!(
                "peer type from servers list ({}) doesn't match peerType ({peer_type}); using \
                 the servers list",
                me.role
            );
        }
    }
    let line_client = match &me.client_address {
        None => None,
        Some(hp) => {
            Some(resolve(&hp.host, hp.port).map_err(|reason| ConfigError::InvalidValue {
                key: format!("server.{server_id}"),
                value: me.to_string(),
                reason,
            })?)
        }
    };
    let client_address = match (static_client_address, line_client) {
        (Some(static_address), Some(line_address)) => {
            let differs = if static_address.ip().is_unspecified() {
                static_address.port() != line_address.port()
            } else {
                static_address != line_address
            };
            if differs {
                return Err(ConfigError::Inconsistent(format!(
                    "client address for this server (id = {server_id}) is {static_address} \
                     in clientPort/clientPortAddress but {line_address} in server.{server_id}"
                )));
            }
            line_address
        }
        (None, Some(address)) | (Some(address), None) => address,
        (None, None) => return Err(ConfigError::Missing { key: "clientPort" }),
    };
    let peer_type = me.role;
    let connect_limit =
        if extras.connect_limit > 0 { extras.connect_limit } else { extras.init_limit };
    let quorum = QuorumConfig {
        server_id,
        servers,
        init_limit_ticks: extras.init_limit as u32,
        sync_limit_ticks: extras.sync_limit as u32,
        connect_to_learner_master_limit_ticks: connect_limit as u32,
        cnx_timeout: extras.cnx_timeout,
        election_port_bind_retry: extras.election_port_bind_retry as u32,
        peer_type,
        quorum_listen_on_all_ips: extras.quorum_listen_on_all_ips,
        leader_serves: extras.leader_serves,
        sync_enabled: extras.sync_enabled,
        snapshot_size_factor: extras.snapshot_size_factor,
        tls: extras.quorum_tls,
        sasl: extras.quorum_sasl,
        handshake_threads: extras.handshake_threads,
    };
    Ok((Some(quorum), client_address))
}

/// Logs a key no rule consumed: a feature we lack (info) or an unknown key (warn).
fn report_leftover(key: &str, setting: &Setting) {
    let feature = UNSUPPORTED_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .or_else(|| UNSUPPORTED_PREFIXES.iter().find(|(prefix, _)| key.starts_with(prefix)))
        .map(|(_, feature)| *feature);
    match feature {
        Some(_) if key == "admin.enableServer" && setting.value == "false" => {
            debug!("admin.enableServer=false: there is no AdminServer to disable")
        }
        Some(feature) => info!("{key} ignored: {feature} not supported yet"),
        None => match key.strip_prefix("zookeeper.") {
            Some(unprefixed) => warn!(
                "unknown config key {key} ignored (zoo.cfg keys have no zookeeper. prefix; \
                 did you mean {unprefixed}?)"
            ),
            None => warn!("unknown config key {key} ignored"),
        },
    }
}

/// The zoo.cfg key a system property sets, if any (see the module doc).
fn key_for_property(name: &str) -> Option<&'static str> {
    let prefixed = name
        .strip_prefix("zookeeper.")
        .and_then(|rest| SUPPORTED_KEYS.iter().find(|key| **key == rest));
    prefixed.or_else(|| UNPREFIXED_PROPERTIES.iter().find(|key| **key == name)).copied()
}

/// FourLetterCommands.isEnabled: a comma-separated list, `*` for all; `srvr` always, `isro`
/// too in read-only mode. Unknown words are dropped with a warning.
fn four_letter_whitelist(list: Option<&str>, read_only: bool) -> BTreeSet<&'static str> {
    let mut words = BTreeSet::new();
    for word in list.unwrap_or_default().split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "*" {
            words.extend(FOUR_LETTER_WORDS.iter().copied());
        } else {
            match FOUR_LETTER_WORDS.iter().find(|known| **known == word) {
                Some(known) => {
                    words.insert(*known);
                }
                None => warn!("4lw.commands.whitelist: unknown four-letter word {word} ignored"),
            }
        }
    }
    if read_only {
        words.insert("isro");
    }
    words.insert("srvr");
    words
}

fn invalid(key: &str, setting: &Setting, reason: String) -> ConfigError {
    let key = match &setting.origin {
        Origin::File => key.to_string(),
        Origin::Property(name) => format!("-D{name}"),
        Origin::Argument => format!("{key} (command line)"),
    };
    ConfigError::InvalidValue { key, value: setting.value.clone(), reason }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

fn nonzero(value: i64) -> NonZeroU32 {
    NonZeroU32::new(value as u32).expect("range-checked to be at least 1")
}

/// Resolves a host as InetAddress.getByName would, preferring IPv4 like the JVM.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let host = host.trim();
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addresses: Vec<SocketAddr> = (literal, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {literal}: {e}"))?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| format!("{literal} resolves to no address"))
}

pub(super) fn read_myid_file(path: &Path) -> Result<Option<String>, ConfigError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::ReadMyId { path: path.to_path_buf(), source }),
    }
}

/// Parses `text` with `system` properties and an in-memory myid file (tests only).
#[cfg(test)]
pub(super) fn parse_with(
    text: &str,
    system: &SystemProperties,
    myid: Option<&str>,
) -> Result<ServerConfig, ConfigError> {
    let settings = Settings::new(&super::parse_properties(text)?, system, &[]);
    build(settings, &mut |_| Ok(myid.map(str::to_string)))
}

mod security;
#[cfg(test)]
mod tests;

use security::{jaas, quorum_sasl_settings, quorum_tls_settings, sasl_settings, tls_settings};
