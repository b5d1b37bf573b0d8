//! Server configuration: zoo.cfg and `-D` system properties in, a [`ServerConfig`] that cannot
//! be invalid out.
//!
//! This module owns the meaning of every configuration key. It runs once, on the main thread,
//! before anything else starts; its only I/O is reading the config file, reading `dataDir/myid`
//! when a quorum is configured, and resolving the client port's host name. Everything the
//! server needs afterwards is a typed field: durations are [`Duration`], sizes carry their
//! unit in the field name, "unlimited" and "off" are `None`.
//!
//! Three parts: `properties.rs` reads the Java-properties syntax of zoo.cfg (grammar there;
//! checked against `java.util.Properties.load`) and `-D` flags; `settings.rs` gives every key
//! its default, its checks and its log line, and decides standalone versus quorum; this file
//! holds the resulting types, the entry points and the `conf` four-letter word.
//!
//! # Where a setting comes from
//!
//! Every setting has one name, its zoo.cfg key (`snapCount`, `4lw.commands.whitelist`, ...).
//! Its value is taken from, in order of precedence:
//!
//! 1. the command line's short form (`PORT DATADIR [TICKTIME] [MAXCNXNS]`), for those four;
//! 2. zoo.cfg, if the file sets the key;
//! 3. a Java system property, `-Dzookeeper.<key>=value` from `SERVER_JVMFLAGS` or the command
//!    line (the last one given wins; `SERVER_JVMFLAGS` comes first, as in zkServer.sh), or for
//!    the settings Apache reads without the prefix, `-D<key>=value` ([`UNPREFIXED_PROPERTIES`]);
//! 4. Apache's default.
//!
//! This is Apache's behaviour for all settings it reads from system properties (snapCount,
//! forceSync, jute.maxbuffer, ...): QuorumPeerConfig copies zoo.cfg keys it does not handle
//! itself into the system properties after the JVM started, so zoo.cfg overrides `-D`. For the
//! keys QuorumPeerConfig handles itself (tickTime, dataDir, ...) Apache ignores
//! `-Dzookeeper.<key>`; rzk honours it, a harmless superset. Likewise rzk honours a few keys
//! in zoo.cfg that Apache only reads as plain system properties (`jute.maxbuffer`,
//! `readonlymode.enabled`, `znode.container.*`). Other JVM flags (`-Xmx`, `-XX:...`,
//! `-Dlog4j...`, `-Dzookeeper.log.dir`) are ignored with a debug line.
//!
//! Unknown zoo.cfg keys are logged at warn and ignored, as Apache ignores them in effect.
//! Keys for features rzk does not have yet (Kerberos, the AdminServer, metrics providers,
//! hierarchical quorums) are accepted with a log line, unless ignoring them would change what
//! the server means (`dynamicConfigFile` is an error). Invalid values are a [`ConfigError`]
//! naming the key and the reason; Apache's own quirks are kept where they are harmless
//! (`autopurge.snapRetainCount` below 3 becomes 3, `snapCount` below 2 becomes 2, both with a
//! warning) and replaced by an error where Apache would silently run with a broken value.

pub mod client;
mod properties;
mod security;
mod settings;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::info;

use crate::limits;
use crate::proto::ServerId;

pub use properties::{parse_properties, Property, SystemProperties};
pub use security::{
    ClientAuth, ClientTlsConfig, EnforceAuth, QuorumSaslConfig, QuorumTlsConfig, SaslConfig,
    StoreConfig, StoreKind, TlsConfig,
};
pub use settings::UNPREFIXED_PROPERTIES;

use settings::{build, read_myid_file, Settings};

/// Why a configuration was rejected.
#[derive(Debug)]
pub enum ConfigError {
    /// The config file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line of the config file is not valid properties syntax.
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A setting has a value that is not allowed.
    InvalidValue {
        /// The setting as the user wrote it (`tickTime`, `-Dzookeeper.snapCount`, ...).
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required setting is missing.
    Missing {
        /// The zoo.cfg key.
        key: &'static str,
    },
    /// Each setting is valid, but together they are not.
    Inconsistent(String),
    /// The configuration asks for a feature rzk does not have and cannot safely ignore.
    Unsupported {
        /// The setting.
        key: String,
        /// What to do instead.
        reason: &'static str,
    },
    /// A quorum is configured but `dataDir/myid` does not exist.
    MissingMyId {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `dataDir/myid` exists but could not be read.
    ReadMyId {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Syntax { line, reason } => write!(f, "line {line}: {reason}"),
            ConfigError::InvalidValue { key, value, reason } => {
                write!(f, "invalid value \"{value}\" for {key}: {reason}")
            }
            ConfigError::Missing { key } => write!(f, "{key} is not set"),
            ConfigError::Inconsistent(reason) => write!(f, "{reason}"),
            ConfigError::Unsupported { key, reason } => {
                write!(f, "{key} is not supported yet: {reason}")
            }
            ConfigError::MissingMyId { path } => {
                write!(f, "myid file {} is missing (needed with server.N lines)", path.display())
            }
            ConfigError::ReadMyId { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } | ConfigError::ReadMyId { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A validated server configuration.
///
/// The parser is the only producer of values from user input, and it checks every rule below;
/// the fields are public for reading and for tests, and their types carry the rules where they
/// can (durations, `None` for unlimited or off, [`SessionTimeouts`] keeps min <= max).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `dataDir`: where snapshots live (in its `version-2` subdirectory). Relative paths are
    /// relative to the working directory, as in Apache.
    pub data_dir: PathBuf,
    /// `dataLogDir`: where txn logs live (`version-2` below it); defaults to `data_dir`.
    pub data_log_dir: PathBuf,
    /// Where to accept client connections: `clientPortAddress:clientPort` (wildcard address
    /// when no `clientPortAddress`), or this server's `;[host:]port` in its `server.N` line.
    pub client_address: SocketAddr,
    /// `secureClientPortAddress:secureClientPort`: where TLS clients connect (with
    /// [`ServerConfig::client_tls`]).
    pub secure_client_address: Option<SocketAddr>,
    /// The `ssl.*` settings of the secure client port and of port unification; set exactly
    /// when one of them is.
    pub client_tls: Option<TlsConfig>,
    /// `client.portUnification`: the plain client port accepts TLS clients too (with
    /// [`ServerConfig::client_tls`]).
    pub client_port_unification: bool,
    /// `netty.server.outstandingHandshake.limit` (`-Dzookeeper.netty.server...`): TLS
    /// handshakes under way at most on the secure client port; a connection beyond it is
    /// closed at accept. `None` (Apache's -1): no limit.
    pub outstanding_handshake_limit: Option<usize>,
    /// `clientPortListenBacklog`; `None` is the OS default.
    pub client_port_listen_backlog: Option<NonZeroU32>,
    /// `tickTime`: the basic time unit.
    pub tick_time: Duration,
    /// `minSessionTimeout` and `maxSessionTimeout`.
    pub session_timeouts: SessionTimeouts,
    /// `maxClientCnxns`: connections per client IP; `None` is unlimited.
    pub max_client_cnxns: Option<NonZeroU32>,
    /// `maxCnxns`: connections in total; `None` is unlimited.
    pub max_cnxns: Option<NonZeroU32>,
    /// `globalOutstandingLimit`: queued requests before the server stops reading.
    pub global_outstanding_limit: NonZeroU32,
    /// `4lw.commands.whitelist`: the four-letter words that are answered (always has `srvr`).
    pub four_letter_words: BTreeSet<&'static str>,
    /// `autopurge.snapRetainCount`: snapshots kept by the purge task (at least 3).
    pub snap_retain_count: u32,
    /// `autopurge.purgeInterval` (given in hours): how often to purge; `None` is off.
    pub purge_interval: Option<Duration>,
    /// `snapCount`: txns between snapshots, randomised (at least 2).
    pub snap_count: u32,
    /// `snapSizeLimitInKb`: txn log bytes between snapshots; `None` is off.
    pub snap_size_limit_bytes: Option<u64>,
    /// `txnLogSizeLimitInKb`: roll the txn log at this size; `None` is no limit.
    pub txn_log_size_limit_bytes: Option<u64>,
    /// `preAllocSize` (given in KiB): txn log growth block; 0 turns preallocation off.
    pub pre_alloc_bytes: u64,
    /// `forceSync`: fsync the txn log before acknowledging.
    pub force_sync: bool,
    /// `fsync.warningthresholdms`: log fsyncs slower than this.
    pub fsync_warning_threshold: Duration,
    /// `jute.maxbuffer`: largest frame and jute field accepted.
    pub jute_max_buffer_bytes: usize,
    /// `jute.maxbuffer.extrasize`: slack on top of `jute_max_buffer_bytes` for record headers
    /// (defaults to `jute.maxbuffer`, at least 1024).
    pub jute_max_buffer_extra_bytes: usize,
    /// `extendedTypesEnabled`: allow TTL nodes (server ids must then be <= 254).
    pub extended_types_enabled: bool,
    /// `znode.container.checkIntervalMs`: how often the container/TTL reaper runs.
    pub container_check_interval: Duration,
    /// `znode.container.maxPerMinute`: reaper deletions per minute.
    pub container_max_per_minute: NonZeroU32,
    /// `znode.container.maxNeverUsedIntervalMs`: delete never-used containers older than
    /// this; `None` keeps them.
    pub container_max_never_used_interval: Option<Duration>,
    /// `DigestAuthenticationProvider.superDigest` (`-Dzookeeper.` prefixed): the
    /// `super:<base64 sha1>` digest id that bypasses ACLs.
    pub super_digest: Option<String>,
    /// Client SASL, when the JAAS file (`-Djava.security.auth.login.config`) has a `Server`
    /// section (`zookeeper.sasl.serverconfig`) with Apache's DigestLoginModule.
    pub sasl: Option<SaslConfig>,
    /// Enforced client authentication.
    pub enforce_auth: EnforceAuth,
    /// `skipACL`: do not check ACLs at all.
    pub skip_acl: bool,
    /// `enforceQuota`: reject writes over a hard quota instead of only logging.
    pub enforce_quota: bool,
    /// `readonlymode.enabled`: serve reads while out of quorum.
    pub read_only_mode_enabled: bool,
    /// `standaloneEnabled`: a single-participant configuration runs standalone.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`: allow the reconfig operation.
    pub reconfig_enabled: bool,
    /// `localSessionsEnabled`.
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`.
    pub local_sessions_upgrading_enabled: bool,
    /// `zookeeper.connection_throttle_*`: the session-request rate limit (off by default).
    pub connection_throttle: ThrottleConfig,
    /// `zookeeper.largeRequestThreshold`: frames longer than this count against
    /// `large_request_max_bytes`; `None` (-1, the default) turns that budget off.
    pub large_request_threshold: Option<usize>,
    /// `zookeeper.largeRequestMaxBytes`: bytes of large requests the server holds at once
    /// (default 100 MiB).
    pub large_request_max_bytes: usize,
    /// The ensemble, when this server runs as a quorum member; `None` is standalone.
    pub quorum: Option<QuorumConfig>,
}

/// The `zookeeper.connection_throttle_*` settings; Apache's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// `connection_throttle_tokens`: the bucket; 0 turns throttling off.
    pub tokens: u32,
    /// `connection_throttle_fill_time` in ms (at least 1).
    pub fill_time_ms: u32,
    /// `connection_throttle_fill_count`: tokens added per fill time.
    pub fill_count: u32,
    /// `connection_throttle_freeze_time` in ms; `None` (-1) turns the random drop off.
    pub freeze_time_ms: Option<u32>,
    /// `connection_throttle_drop_increase`.
    pub drop_increase: f64,
    /// `connection_throttle_drop_decrease`.
    pub drop_decrease: f64,
    /// `connection_throttle_decrease_ratio`.
    pub decrease_ratio: f64,
    /// `connection_throttle_weight_enabled` with the global, renew and local session weights
    /// (`connection_throttle_{global,renew,local}_session_weight`, already corrected as Apache
    /// corrects them); `None` is one token per session request.
    pub weights: Option<SessionWeights>,
}

/// Tokens a session request costs when weighing is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWeights {
    /// A new (global) session.
    pub global: u32,
    /// A re-attach to an existing session.
    pub renew: u32,
    /// A local session (rzk has none yet: kept for the configuration's sake).
    pub local: u32,
}

impl SessionWeights {
    /// Apache's rules for the three weights: non-positive values fall back to the defaults
    /// (3, 2, 1), and neither the global nor the renew weight may be below the local one.
    pub fn corrected(global: i64, renew: i64, local: i64) -> SessionWeights {
        let local = if local <= 0 { 1 } else { local };
        let global = if global <= 0 { 3 } else { global.max(local) };
        let renew = if renew <= 0 { 2 } else { renew.max(local) };
        let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        SessionWeights { global: clamp(global), renew: clamp(renew), local: clamp(local) }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            tokens: 0,
            fill_time_ms: 1,
            fill_count: 1,
            freeze_time_ms: None,
            drop_increase: 0.02,
            drop_decrease: 0.002,
            decrease_ratio: 0.0,
            weights: None,
        }
    }
}

/// Session timeout bounds; a client's requested timeout is clamped into `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    min: Duration,
    max: Duration,
}

impl SessionTimeouts {
    /// The bounds, if `min <= max`.
    pub fn new(min: Duration, max: Duration) -> Option<SessionTimeouts> {
        (min <= max).then_some(SessionTimeouts { min, max })
    }

    /// Apache's defaults for a tick: `2 * tick` and `20 * tick`.
    pub fn for_tick(tick: Duration) -> SessionTimeouts {
        SessionTimeouts {
            min: tick * limits::MIN_SESSION_TIMEOUT_TICKS,
            max: tick * limits::MAX_SESSION_TIMEOUT_TICKS,
        }
    }

    /// `minSessionTimeout`.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// `maxSessionTimeout`.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The timeout granted for a requested one [ZooKeeperServer.processConnectRequest].
    pub fn negotiate(&self, requested: Duration) -> Duration {
        requested.clamp(self.min, self.max)
    }
}

/// Quorum settings; present only when this server is a member of an ensemble.
///
/// Invariants: `servers` is sorted by id, ids are unique, `server_id` is among them, and there
/// is more than one participant (or `standaloneEnabled=false`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumConfig {
    /// This server's id, from `dataDir/myid`.
    pub server_id: ServerId,
    /// Every `server.N` line.
    pub servers: Vec<ServerSpec>,
    /// `initLimit`: ticks for a learner to connect and sync.
    pub init_limit_ticks: u32,
    /// `syncLimit`: ticks a learner may stay silent.
    pub sync_limit_ticks: u32,
    /// `connectToLearnerMasterLimit`: ticks to connect to the leader (defaults to initLimit).
    pub connect_to_learner_master_limit_ticks: u32,
    /// `cnxTimeout`: election channel connect timeout.
    pub cnx_timeout: Duration,
    /// `electionPortBindRetry`: attempts to bind the election port, 0 = forever.
    pub election_port_bind_retry: u32,
    /// This server's role (taken from its `server.N` line; `peerType` must agree).
    pub peer_type: LearnerType,
    /// `quorumListenOnAllIPs`: bind quorum and election ports on the wildcard address.
    pub quorum_listen_on_all_ips: bool,
    /// `leaderServes`: the leader accepts client connections.
    pub leader_serves: bool,
    /// `syncEnabled`: observers persist txns to disk as well.
    pub sync_enabled: bool,
    /// `snapshotSizeFactor` (ZooKeeper's `zookeeper.snapshotSizeFactor`, default 0.33): a
    /// learner behind the leader's committed log is synced from the txn log when the txns to
    /// send add up to at most this fraction of the newest snapshot's size; negative turns
    /// txn-log sync off.
    pub snapshot_size_factor: f64,
    /// `sslQuorum=true`: TLS on every election and Zab connection.
    pub tls: Option<QuorumTlsConfig>,
    /// `quorum.auth.enableSasl=true`: SASL on every election and Zab connection.
    pub sasl: Option<QuorumSaslConfig>,
    /// `quorum.cnxn.threads.size`: how many accepted quorum connections may be in their
    /// TLS or SASL handshake at once (each in its own thread).
    pub handshake_threads: usize,
}

impl QuorumConfig {
    /// This server's own line.
    pub fn me(&self) -> &ServerSpec {
        self.servers
            .iter()
            .find(|s| s.id == self.server_id)
            .expect("the parser checks that server_id is in servers")
    }

    /// The voting members.
    pub fn participants(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers.iter().filter(|s| s.role == LearnerType::Participant)
    }

    /// The quorum text Apache prints after `membership: ` (and stores as the dynamic config):
    /// one `server.N=...` line per server and `version=0`, with no trailing newline.
    pub fn membership(&self) -> String {
        let mut text = String::new();
        for server in &self.servers {
            text.push_str(&format!("server.{}={server}\n", server.id));
        }
        text.push_str("version=0");
        text
    }
}

/// Whether a server votes [QuorumPeer.LearnerType]; the discriminant is Java's ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    /// Votes and may lead.
    Participant = 0,
    /// Follows without voting.
    Observer = 1,
}

impl LearnerType {
    /// Parses `participant` or `observer`, any case.
    pub fn parse(text: &str) -> Option<LearnerType> {
        match text.trim().to_ascii_lowercase().as_str() {
            "participant" => Some(LearnerType::Participant),
            "observer" => Some(LearnerType::Observer),
            _ => None,
        }
    }
}

impl fmt::Display for LearnerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearnerType::Participant => write!(f, "participant"),
            LearnerType::Observer => write!(f, "observer"),
        }
    }
}

/// A host name or IP literal and a port, unresolved (peers are resolved when connecting, so
/// DNS changes are picked up).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Written as Apache prints an address in its quorum configuration: IPv6 hosts in brackets,
/// and IPv6 literals in Java's uncompressed form (`[2001:db8:0:0:0:0:0:1]:2888`), so `conf`
/// output matches.
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => {
                let groups: Vec<String> = ip.segments().iter().map(|g| format!("{g:x}")).collect();
                write!(f, "[{}]:{}", groups.join(":"), self.port)
            }
            Err(_) if self.host.contains(':') => write!(f, "[{}]:{}", self.host, self.port),
            Err(_) => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
///
/// `Display` writes the value part back in Apache's form (`QuorumServer.toString`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// `N`.
    pub id: ServerId,
    /// Host for both quorum ports, without IPv6 brackets.
    pub host: String,
    /// Where learners connect to the leader.
    pub quorum_port: u16,
    /// Where election peers connect.
    pub election_port: u16,
    /// `participant` (default) or `observer`.
    pub role: LearnerType,
    /// The client address after `;`; a bare port means host `0.0.0.0`.
    pub client_address: Option<HostPort>,
}

impl ServerSpec {
    /// Parses the value of a `server.<id>` line; errors name the key `server.<id>`.
    pub fn parse(id: ServerId, text: &str) -> Result<ServerSpec, ConfigError> {
        let key = format!("server.{id}");
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.clone(),
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let form = "expected host:quorumPort:electionPort[:participant|:observer]\
                    [;[clientHost:]clientPort]";
        let mut halves = text.split(';');
        let server_part = halves.next().unwrap_or_default().trim();
        let client_part = halves.next().map(str::trim);
        if halves.next().is_some() {
            return Err(invalid(form));
        }
        if server_part.contains('|') {
            return Err(ConfigError::Unsupported {
                key,
                reason: "give one address per server (multiple addresses, `|`, are not \
                         supported)",
            });
        }
        let parts = split_host_and_ports(server_part).map_err(|r| invalid(&r))?;
        if !(3..=4).contains(&parts.len()) {
            return Err(invalid(form));
        }
        let host = parts[0].trim().to_string();
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        let quorum_port = parse_port(&parts[1]).map_err(|r| invalid(&r))?;
        let election_port = parse_port(&parts[2]).map_err(|r| invalid(&r))?;
        if quorum_port == election_port {
            return Err(invalid("quorum and election port must be different"));
        }
        let role = match parts.get(3) {
            Some(role) => LearnerType::parse(role)
                .ok_or_else(|| invalid("role must be participant or observer"))?,
            None => LearnerType::Participant,
        };
        let client_address = match client_part {
            None => None,
            Some(client) => {
                let parts = split_host_and_ports(client).map_err(|r| invalid(&r))?;
                match parts.as_slice() {
                    [port] => Some(HostPort {
                        host: Ipv4Addr::UNSPECIFIED.to_string(),
                        port: parse_port(port).map_err(|r| invalid(&r))?,
                    }),
                    [host, port] if !host.trim().is_empty() => Some(HostPort {
                        host: host.trim().to_string(),
                        port: parse_port(port).map_err(|r| invalid(&r))?,
                    }),
                    _ => return Err(invalid(form)),
                }
            }
        };
        Ok(ServerSpec { id, host, quorum_port, election_port, role, client_address })
    }

    /// `host:quorumPort`.
    pub fn quorum_address(&self) -> HostPort {
        HostPort { host: self.host.clone(), port: self.quorum_port }
    }

    /// `host:electionPort`.
    pub fn election_address(&self) -> HostPort {
        HostPort { host: self.host.clone(), port: self.election_port }
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = HostPort { host: self.host.clone(), port: self.quorum_port };
        write!(f, "{host}:{}:{}", self.election_port, self.role)?;
        if let Some(client) = &self.client_address {
            write!(f, ";{client}")?;
        }
        Ok(())
    }
}

/// Run-time facts the `conf` four-letter word reports next to the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfStatus {
    /// The port the client listener is bound to (`None` prints -1, as Apache does with no
    /// listener).
    pub client_port: Option<u16>,
    /// Bytes in the snapshot directory.
    pub data_dir_bytes: u64,
    /// Bytes in the txn log directory.
    pub data_log_bytes: u64,
}

impl ServerConfig {
    /// Reads a zoo.cfg file and applies `system` properties under it (see the module doc).
    pub fn load(path: &Path, system: &SystemProperties) -> Result<ServerConfig, ConfigError> {
        info!("reading configuration from {}", path.display());
        let text = fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        ServerConfig::from_text(&text, system)
    }

    /// Parses zoo.cfg text and applies `system` properties under it; reads `dataDir/myid` if
    /// the text configures a quorum.
    pub fn from_text(text: &str, system: &SystemProperties) -> Result<ServerConfig, ConfigError> {
        let settings = Settings::new(&parse_properties(text)?, system, &[]);
        build(settings, &mut read_myid_file)
    }

    /// ZooKeeperServerMain's `PORT DATADIR [TICKTIME] [MAXCNXNS]` form: a standalone server
    /// on the wildcard address. As in Apache, MAXCNXNS defaults to 0 (unlimited) here, and
    /// port 0 means any free port.
    pub fn from_short_form(
        port: &str,
        data_dir: &str,
        tick_time: Option<&str>,
        max_client_cnxns: Option<&str>,
        system: &SystemProperties,
    ) -> Result<ServerConfig, ConfigError> {
        let mut arguments = vec![("clientPort", port), ("dataDir", data_dir)];
        if let Some(tick_time) = tick_time {
            arguments.push(("tickTime", tick_time));
        }
        arguments.push(("maxClientCnxns", max_client_cnxns.unwrap_or("0")));
        let settings = Settings::new(&[], system, &arguments);
        build(settings, &mut read_myid_file)
    }

    /// A standalone configuration with every other setting at Apache's default (for tests and
    /// embedding; `client_address` may use port 0). The defaults are the parser's own: this
    /// is what a zoo.cfg with only `dataDir` and `clientPort` means.
    pub fn standalone(data_dir: impl Into<PathBuf>, client_address: SocketAddr) -> ServerConfig {
        let arguments = [("dataDir", "/"), ("clientPort", "0")];
        let settings = Settings::new(&[], &SystemProperties::new(), &arguments);
        let mut no_myid = |_: &Path| Ok(None);
        let mut config = build(settings, &mut no_myid)
            .expect("dataDir and clientPort alone are a valid standalone configuration");
        let data_dir = data_dir.into();
        config.data_log_dir = data_dir.clone();
        config.data_dir = data_dir;
        config.client_address = client_address;
        config
    }

    /// Whether the four-letter word `word` (e.g. `"stat"`) may be answered.
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        self.four_letter_words.contains(word)
    }

    /// This server's id: from `myid` in a quorum, 0 standalone (as Apache reports it).
    pub fn server_id(&self) -> ServerId {
        self.quorum.as_ref().map_or(ServerId(0), |q| q.server_id)
    }

    /// The largest txn (header, record and digest) this server proposes or logs: what a
    /// learner accepts as a PROPOSAL's data (`jute.maxbuffer` plus `jute.maxbuffer.extrasize`,
    /// as Apache's BinaryInputArchive checks), less the packet's own fields. A write whose txn
    /// would be larger is refused in prep, never logged (ZOOKEEPER-3496).
    pub fn txn_bytes_max(&self) -> usize {
        (self.jute_max_buffer_bytes + self.jute_max_buffer_extra_bytes)
            .saturating_sub(limits::QUORUM_PACKET_OVERHEAD_BYTES)
    }

    /// The largest reply payload sent to a client: `jute.maxbuffer` (what clients accept, as
    /// ClientCnxnSocket checks `packetLen`) plus room for the reply header and a Stat. A read
    /// whose answer would be larger gets MARSHALLINGERROR instead, before it is built.
    pub fn reply_bytes_max(&self) -> usize {
        self.jute_max_buffer_bytes + limits::JUTE_MAX_BUFFER_EXTRA_MIN_BYTES
    }

    /// The snapshot directory, `dataDir/version-2`.
    pub fn snap_dir(&self) -> PathBuf {
        self.data_dir.join(DATA_VERSION_DIR)
    }

    /// The txn log directory, `dataLogDir/version-2`.
    pub fn txn_log_dir(&self) -> PathBuf {
        self.data_log_dir.join(DATA_VERSION_DIR)
    }

    /// The answer to the `conf` four-letter word, formatted as Apache's
    /// `ZooKeeperServer.dumpConf` (plus `QuorumZooKeeperServer.dumpConf` for quorum members;
    /// four-letter-words.md §3.4).
    pub fn dump_conf(&self, status: &ConfStatus) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn fmt::Display| {
            out.push_str(&format!("{key}={value}\n"));
        };
        line("clientPort", &status.client_port.map_or(-1, i32::from));
        // No secure listener exists (TLS is not supported yet), so -1 as Apache prints then.
        line("secureClientPort", &-1);
        line("dataDir", &absolute(&self.snap_dir()).display());
        line("dataDirSize", &status.data_dir_bytes);
        line("dataLogDir", &absolute(&self.txn_log_dir()).display());
        line("dataLogSize", &status.data_log_bytes);
        line("tickTime", &self.tick_time.as_millis());
        line("maxClientCnxns", &self.max_client_cnxns.map_or(0, NonZeroU32::get));
        line("minSessionTimeout", &self.session_timeouts.min().as_millis());
        line("maxSessionTimeout", &self.session_timeouts.max().as_millis());
        let backlog = self.client_port_listen_backlog.map_or(-1, |b| i64::from(b.get()));
        line("clientPortListenBacklog", &backlog);
        line("serverId", &self.server_id());
        if let Some(quorum) = &self.quorum {
            let me = quorum.me();
            line("initLimit", &quorum.init_limit_ticks);
            line("syncLimit", &quorum.sync_limit_ticks);
            line("electionAlg", &ELECTION_ALG_FAST);
            line("electionPort", &me.election_port);
            line("quorumPort", &me.quorum_port);
            line("peerType", &(quorum.peer_type as i32));
            out.push_str("membership: \n");
            out.push_str(&quorum.membership());
        }
        out
    }
}

/// The data directory layout version Apache writes below dataDir and dataLogDir
/// [FileTxnSnapLog.version; persistence-formats.md].
const DATA_VERSION_DIR: &str = "version-2";

/// The only `electionAlg` that exists: fast leader election.
pub(super) const ELECTION_ALG_FAST: i64 = 3;

fn parse_port(text: &str) -> Result<u16, String> {
    match parse_port_allow_zero(text)? {
        0 => Err("port must be between 1 and 65535".to_string()),
        port => Ok(port),
    }
}

pub(super) fn parse_port_allow_zero(text: &str) -> Result<u16, String> {
    let number: i64 = text.trim().parse().map_err(|_| format!("port {text} is not a number"))?;
    u16::try_from(number).map_err(|_| format!("port {number} is out of range"))
}

/// ConfigUtils.getHostAndPort: `[ipv6]:a:b...` or `host:a:b...`, split on `:`.
fn split_host_and_ports(text: &str) -> Result<Vec<String>, String> {
    let Some(bracketed) = text.strip_prefix('[') else {
        return Ok(text.split(':').map(str::to_string).collect());
    };
    let Some((host, rest)) = bracketed.split_once(']') else {
        return Err(format!("{text} starts with '[' but has no matching ']'"));
    };
    let mut parts = vec![host.to_string()];
    if !rest.is_empty() {
        let Some(ports) = rest.strip_prefix(':').filter(|p| !p.is_empty()) else {
            return Err(format!("{text} has no port after ']:'"));
        };
        parts.extend(ports.split(':').map(str::to_string));
    }
    Ok(parts)
}

/// Java's `File.getAbsolutePath`: joined to the working directory, not canonicalised.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::FOUR_LETTER_WORDS;
    use settings::parse_with;

    fn ok(text: &str) -> ServerConfig {
        match parse_with(text, &SystemProperties::new(), None) {
            Ok(config) => config,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    #[test]
    fn standalone_constructor_matches_parsed_defaults() {
        let parsed = ok("dataDir=/var/lib/zk\nclientPort=2181\n");
        let built = ServerConfig::standalone("/var/lib/zk", "0.0.0.0:2181".parse().unwrap());
        assert_eq!(parsed, built);
    }

    fn spec(text: &str) -> Result<ServerSpec, ConfigError> {
        ServerSpec::parse(ServerId(1), text)
    }

    #[test]
    fn server_line_basic_forms() {
        let s = spec("zk1.example.com:2888:3888").unwrap();
        assert_eq!(s.host, "zk1.example.com");
        assert_eq!((s.quorum_port, s.election_port), (2888, 3888));
        assert_eq!(s.role, LearnerType::Participant);
        assert_eq!(s.client_address, None);
        assert_eq!(s.to_string(), "zk1.example.com:2888:3888:participant");
        assert_eq!(s.quorum_address().to_string(), "zk1.example.com:2888");
        assert_eq!(s.election_address().to_string(), "zk1.example.com:3888");
        let s = spec("10.0.0.1:2888:3888:Observer").unwrap();
        assert_eq!(s.role, LearnerType::Observer);
    }

    #[test]
    fn server_line_client_port_forms() {
        let s = spec("10.0.0.1:2888:3888;2181").unwrap();
        let client = HostPort { host: "0.0.0.0".into(), port: 2181 };
        assert_eq!(s.client_address, Some(client));
        assert_eq!(s.to_string(), "10.0.0.1:2888:3888:participant;0.0.0.0:2181");
        let s = spec("10.0.0.1:2888:3888:observer;127.0.0.1:2182").unwrap();
        assert_eq!(s.client_address, Some(HostPort { host: "127.0.0.1".into(), port: 2182 }));
        assert_eq!(s.to_string(), "10.0.0.1:2888:3888:observer;127.0.0.1:2182");
    }

    #[test]
    fn server_line_ipv6_in_brackets() {
        let s = spec("[2001:db8::1]:2888:3888:participant;[::1]:2181").unwrap();
        assert_eq!(s.host, "2001:db8::1");
        assert_eq!((s.quorum_port, s.election_port), (2888, 3888));
        assert_eq!(s.client_address, Some(HostPort { host: "::1".into(), port: 2181 }));
        // Java prints IPv6 literals uncompressed (captured from QuorumServer.toString).
        let java = "[2001:db8:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181";
        assert_eq!(s.to_string(), java);
    }

    #[test]
    fn server_line_errors() {
        let cases = [
            ("10.0.0.1:2888", "expected host:quorumPort"),
            ("10.0.0.1:2888:3888:participant:x", "expected host:quorumPort"),
            ("10.0.0.1:2888:2888", "must be different"),
            ("10.0.0.1:2888:3888:leader", "participant or observer"),
            ("10.0.0.1:2888:3888;2181;2182", "expected host:quorumPort"),
            ("10.0.0.1:2888:3888;a:b:2181", "expected host:quorumPort"),
            ("10.0.0.1:x:3888", "not a number"),
            ("10.0.0.1:0:3888", "between 1 and 65535"),
            ("10.0.0.1:2888:70000", "out of range"),
            ("[::1:2888:3888", "no matching ']'"),
            ("[::1]:", "no port"),
            (":2888:3888", "empty host"),
            ("a:1:2|b:1:2", "not supported"),
        ];
        for (text, expected) in cases {
            let e = spec(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(e.contains("server.1"), "{text}: {e}");
        }
    }

    #[test]
    fn dump_conf_standalone_matches_apache_layout() {
        let c = ok("dataDir=/var/lib/zk\nclientPort=2181\ntickTime=2000\n");
        let status =
            ConfStatus { client_port: Some(2181), data_dir_bytes: 597, data_log_bytes: 597 };
        assert_eq!(
            c.dump_conf(&status),
            "clientPort=2181\nsecureClientPort=-1\ndataDir=/var/lib/zk/version-2\n\
             dataDirSize=597\ndataLogDir=/var/lib/zk/version-2\ndataLogSize=597\n\
             tickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\n\
             maxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n"
        );
        let none = ConfStatus::default();
        assert!(c.dump_conf(&none).starts_with("clientPort=-1\n"));
    }

    #[test]
    fn dump_conf_quorum_appends_membership_without_trailing_newline() {
        let text = "dataDir=/data\nclientPort=21821\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
                    server.1=127.0.0.1:22881:23881\nserver.2=127.0.0.1:22882:23882\n\
                    server.3=127.0.0.1:22883:23883\n";
        let c = parse_with(text, &SystemProperties::new(), Some("1")).unwrap();
        let status = ConfStatus { client_port: Some(21821), data_dir_bytes: 1, data_log_bytes: 2 };
        let expected = "clientPort=21821\nsecureClientPort=-1\ndataDir=/data/version-2\n\
                        dataDirSize=1\ndataLogDir=/data/version-2\ndataLogSize=2\ntickTime=2000\n\
                        maxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\n\
                        clientPortListenBacklog=-1\nserverId=1\ninitLimit=5\nsyncLimit=2\n\
                        electionAlg=3\nelectionPort=23881\nquorumPort=22881\npeerType=0\n\
                        membership: \n\
                        server.1=127.0.0.1:22881:23881:participant\n\
                        server.2=127.0.0.1:22882:23882:participant\n\
                        server.3=127.0.0.1:22883:23883:participant\n\
                        version=0";
        assert_eq!(c.dump_conf(&status), expected);
    }

    #[test]
    fn relative_data_dir_is_reported_absolute() {
        let c = ok("dataDir=data\nclientPort=2181\n");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        let cwd = std::env::current_dir().unwrap();
        let dump = c.dump_conf(&ConfStatus::default());
        let expected = format!("dataDir={}\n", cwd.join("data/version-2").display());
        assert!(dump.contains(&expected), "{dump}");
    }

    #[test]
    fn shipped_default_config_parses() {
        let text = crate::cli::DEFAULT_CONFIG;
        let c = parse_with(text, &SystemProperties::new(), None).unwrap();
        assert_eq!(c.client_address, "127.0.0.1:2181".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.tick_time.as_millis(), 2000);
        assert_eq!(c.four_letter_words.len(), FOUR_LETTER_WORDS.len());
        assert_eq!(c.purge_interval, Some(Duration::from_secs(3600)));
        assert_eq!(c.quorum, None);
    }

    #[test]
    fn load_reports_unreadable_files() {
        let e = ServerConfig::load(Path::new("/nonexistent/zoo.cfg"), &SystemProperties::new());
        let e = e.unwrap_err();
        assert!(e.to_string().starts_with("cannot read config file /nonexistent/zoo.cfg"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
