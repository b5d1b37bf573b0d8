//! Server configuration: zoo.cfg and `-D` system properties in, a [`ServerConfig`] that cannot
//! be invalid out.
//!
//! This module owns the meaning of every configuration key. It runs once, on the main thread,
//! before anything else starts; its only I/O is reading the config file, reading `dataDir/myid`
//! when a quorum is configured, and resolving the client port's host name. Everything the
//! server needs afterwards is a typed field: durations are [`Duration`], sizes carry their
//! unit in the field name, "unlimited" and "off" are `None`.
//!
//! # File syntax (Java properties, as `java.util.Properties.load`)
//!
//! ```text
//! file     = { line }
//! line     = blank | comment | entry
//! comment  = ws* ("#" | "!") any*                    (a whole line; never continued)
//! entry    = ws* key [ ws* ("=" | ":") ] ws* value
//! key      = { char except unescaped "=", ":", space, tab, form feed }
//! value    = rest of the logical line
//! escapes  = \t \n \r \f \uXXXX, and "\" before any other char stands for that char
//! a physical line ending in an odd number of "\" continues on the next line, whose leading
//! whitespace is dropped; keys and values are trimmed (QuorumPeerConfig trims both)
//! ```
//!
//! A key given twice keeps its last value (with a warning). The file is read as UTF-8 (Java
//! reads ISO-8859-1; the two agree on ASCII, which is what zoo.cfg files contain).
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
//! Keys for features rzk does not have yet (TLS, SASL, the AdminServer, metrics providers,
//! hierarchical quorums) are accepted with a log line, unless ignoring them would change what
//! the server means (`dynamicConfigFile` is an error). Invalid values are a [`ConfigError`]
//! naming the key and the reason; Apache's own quirks are kept where they are harmless
//! (`autopurge.snapRetainCount` below 3 becomes 3, `snapCount` below 2 becomes 2, both with a
//! warning) and replaced by an error where Apache would silently run with a broken value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::limits;
use crate::proto::frame::FOUR_LETTER_WORDS;
use crate::proto::ServerId;

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

/// Settings Apache reads as system properties without the `zookeeper.` prefix; rzk accepts
/// each as `-D<name>=value` and as a zoo.cfg key of the same name.
pub const UNPREFIXED_PROPERTIES: &[&str] = &[
    "jute.maxbuffer",
    "readonlymode.enabled",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "fsync.warningthresholdms",
];

/// Java system properties, as given by `-Dname=value` JVM flags.
///
/// Kept in the order given; for a name given twice the last value wins, as with `java`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProperties {
    entries: Vec<(String, String)>,
}

impl SystemProperties {
    /// No properties.
    pub fn new() -> SystemProperties {
        SystemProperties::default()
    }

    /// Collects the `-D` flags among `flags` (e.g. the words of `SERVER_JVMFLAGS`); other JVM
    /// flags are ignored with a debug line.
    pub fn from_jvm_flags<I, S>(flags: I) -> SystemProperties
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut props = SystemProperties::new();
        for flag in flags {
            let flag = flag.as_ref();
            if !props.add_jvm_flag(flag) {
                debug!("JVM flag {flag} ignored");
            }
        }
        props
    }

    /// Records `flag` if it is a `-Dname=value` (or `-Dname`, an empty value) flag; returns
    /// whether it was one.
    pub fn add_jvm_flag(&mut self, flag: &str) -> bool {
        let Some(definition) = flag.strip_prefix("-D") else {
            return false;
        };
        if definition.is_empty() {
            return false;
        }
        match definition.split_once('=') {
            Some((name, value)) => self.set(name, value),
            None => self.set(definition, ""),
        }
        true
    }

    /// Sets `name` to `value`, overriding an earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every definition in the order given (a name may repeat).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One `key=value` entry of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key, unescaped and trimmed.
    pub key: String,
    /// The value, unescaped and trimmed.
    pub value: String,
    /// 1-based line on which the entry starts.
    pub line: usize,
}

/// Splits Java-properties text into entries, in file order (see the module doc for the
/// grammar). Only a malformed `\uXXXX` escape is an error.
pub fn parse_properties(text: &str) -> Result<Vec<Property>, ConfigError> {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    let mut entries = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let line = next + 1;
        let first = lines[next].trim_start_matches(is_properties_space);
        next += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = first;
        loop {
            let trailing = current.len() - current.trim_end_matches('\\').len();
            if trailing.is_multiple_of(2) {
                logical.push_str(current);
                break;
            }
            logical.push_str(&current[..current.len() - 1]);
            match lines.get(next) {
                Some(continued) => {
                    current = continued.trim_start_matches(is_properties_space);
                    next += 1;
                }
                None => break,
            }
        }
        entries.push(split_entry(&logical, line)?);
    }
    Ok(entries)
}

/// A validated server configuration.
///
/// The parser is the only producer of values from user input, and it checks every rule below;
/// the fields are public for reading and for tests, and their types carry the rules where they
/// can (durations, `None` for unlimited or off, [`SessionTimeouts`] keeps min <= max).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `dataDir`: where snapshots live (in its `version-2` subdirectory). Relative paths are
    /// relative to the working directory, as in Apache.
    pub data_dir: PathBuf,
    /// `dataLogDir`: where txn logs live (`version-2` below it); defaults to `data_dir`.
    pub data_log_dir: PathBuf,
    /// Where to accept client connections: `clientPortAddress:clientPort` (wildcard address
    /// when no `clientPortAddress`), or this server's `;[host:]port` in its `server.N` line.
    pub client_address: SocketAddr,
    /// `secureClientPort(Address)`: accepted but not served (TLS is not supported yet).
    pub secure_client_address: Option<SocketAddr>,
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
    /// The ensemble, when this server runs as a quorum member; `None` is standalone.
    pub quorum: Option<QuorumConfig>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// embedding; `client_address` may use port 0).
    pub fn standalone(data_dir: impl Into<PathBuf>, client_address: SocketAddr) -> ServerConfig {
        let data_dir = data_dir.into();
        let tick_time = limits::TICK_TIME_DEFAULT;
        ServerConfig {
            data_log_dir: data_dir.clone(),
            data_dir,
            client_address,
            secure_client_address: None,
            client_port_listen_backlog: None,
            tick_time,
            session_timeouts: SessionTimeouts::for_tick(tick_time),
            max_client_cnxns: NonZeroU32::new(limits::MAX_CLIENT_CNXNS_DEFAULT),
            max_cnxns: NonZeroU32::new(limits::MAX_CNXNS_DEFAULT),
            global_outstanding_limit: NonZeroU32::new(limits::GLOBAL_OUTSTANDING_LIMIT_DEFAULT)
                .expect("the default is not zero"),
            four_letter_words: BTreeSet::from(["srvr"]),
            snap_retain_count: limits::SNAP_RETAIN_COUNT_MIN,
            purge_interval: None,
            snap_count: limits::SNAP_COUNT_DEFAULT,
            snap_size_limit_bytes: Some(limits::SNAP_SIZE_LIMIT_DEFAULT_KIB * 1024),
            txn_log_size_limit_bytes: None,
            pre_alloc_bytes: limits::PRE_ALLOC_SIZE_DEFAULT_KIB * 1024,
            force_sync: true,
            fsync_warning_threshold: limits::FSYNC_WARNING_THRESHOLD_DEFAULT,
            jute_max_buffer_bytes: limits::JUTE_MAX_BUFFER_DEFAULT_BYTES,
            jute_max_buffer_extra_bytes: limits::JUTE_MAX_BUFFER_DEFAULT_BYTES,
            extended_types_enabled: false,
            container_check_interval: limits::CONTAINER_CHECK_INTERVAL_DEFAULT,
            container_max_per_minute: NonZeroU32::new(limits::CONTAINER_MAX_PER_MINUTE_DEFAULT)
                .expect("the default is not zero"),
            container_max_never_used_interval: None,
            super_digest: None,
            skip_acl: false,
            enforce_quota: false,
            read_only_mode_enabled: false,
            standalone_enabled: true,
            reconfig_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            quorum: None,
        }
    }

    /// Whether the four-letter word `word` (e.g. `"stat"`) may be answered.
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        self.four_letter_words.contains(word)
    }

    /// This server's id: from `myid` in a quorum, 0 standalone (as Apache reports it).
    pub fn server_id(&self) -> ServerId {
        self.quorum.as_ref().map_or(ServerId(0), |q| q.server_id)
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
const ELECTION_ALG_FAST: i64 = 3;

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
    "dynamicConfigFile",
];

/// Key prefixes of features that are accepted but not supported yet.
const UNSUPPORTED_PREFIXES: &[(&str, &str)] = &[
    ("admin.", "the AdminServer"),
    ("metricsProvider.", "metrics providers"),
    ("ssl.", "TLS"),
    ("authProvider.", "pluggable auth providers"),
    ("quorum.auth.", "quorum SASL authentication"),
    ("multiAddress.", "multiple addresses per server"),
    ("jvm.pause.", "the JVM pause monitor"),
    ("kerberos.", "Kerberos"),
    ("sasl.", "SASL"),
    ("enforce.auth.", "enforced client authentication"),
];

/// Keys of features that are accepted but not supported yet.
const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("sslQuorum", "TLS"),
    ("sslQuorumReloadCertFiles", "TLS"),
    ("portUnification", "TLS"),
    ("client.portUnification", "TLS"),
    ("quorum.cnxn.threads.size", "quorum SASL authentication"),
    ("observerMasterPort", "observer masters"),
    ("oraclePath", "the quorum oracle"),
    ("requireClientAuthScheme", "SASL"),
    ("sessionRequireClientSASLAuth", "SASL"),
    ("allowSaslFailedClients", "SASL"),
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
struct Settings {
    values: BTreeMap<String, Setting>,
    /// Every key the builder asked for, to check that [`SUPPORTED_KEYS`] stays in step.
    asked: BTreeSet<String>,
}

impl Settings {
    /// Merges, lowest precedence first: system properties, file entries, arguments.
    fn new(file: &[Property], system: &SystemProperties, arguments: &[(&str, &str)]) -> Settings {
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
        if number < min || number > max {
            let reason = if max >= i64::from(i32::MAX) {
                format!("must be at least {min}")
            } else {
                format!("must be between {min} and {max}")
            };
            return Err(invalid(key, &setting, reason));
        }
        Ok(Some(number))
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
fn build(
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
    if let Some(address) = secure_client_address {
        warn!("secureClientPort {address}: TLS is not supported yet; no secure port is opened");
    }
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
        skip_acl,
        enforce_quota,
        read_only_mode_enabled,
        standalone_enabled,
        reconfig_enabled,
        local_sessions_enabled,
        local_sessions_upgrading_enabled,
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

fn parse_port(text: &str) -> Result<u16, String> {
    match parse_port_allow_zero(text)? {
        0 => Err("port must be between 1 and 65535".to_string()),
        port => Ok(port),
    }
}

fn parse_port_allow_zero(text: &str) -> Result<u16, String> {
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

fn read_myid_file(path: &Path) -> Result<Option<String>, ConfigError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::ReadMyId { path: path.to_path_buf(), source }),
    }
}

/// Java's `File.getAbsolutePath`: joined to the working directory, not canonicalised.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn is_properties_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Splits one logical line into key and value, unescaping both.
fn split_entry(logical: &str, line: usize) -> Result<Property, ConfigError> {
    let chars: Vec<char> = logical.chars().collect();
    let mut key = String::new();
    let mut pos = 0;
    while pos < chars.len() {
        match chars[pos] {
            '\\' => pos = unescape(&chars, pos, &mut key, line)?,
            '=' | ':' => break,
            c if is_properties_space(c) => break,
            c => {
                key.push(c);
                pos += 1;
            }
        }
    }
    while pos < chars.len() && is_properties_space(chars[pos]) {
        pos += 1;
    }
    if pos < chars.len() && matches!(chars[pos], '=' | ':') {
        pos += 1;
    }
    let mut value = String::new();
    while pos < chars.len() {
        match chars[pos] {
            '\\' => pos = unescape(&chars, pos, &mut value, line)?,
            c => {
                value.push(c);
                pos += 1;
            }
        }
    }
    Ok(Property { key: key.trim().to_string(), value: value.trim().to_string(), line })
}

/// Decodes the escape starting at `chars[pos] == '\\'` into `out`; returns the next position.
fn unescape(
    chars: &[char],
    pos: usize,
    out: &mut String,
    line: usize,
) -> Result<usize, ConfigError> {
    let Some(&escaped) = chars.get(pos + 1) else {
        return Ok(pos + 1);
    };
    let simple = match escaped {
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        'f' => Some('\u{c}'),
        'u' => None,
        other => Some(other),
    };
    if let Some(c) = simple {
        out.push(c);
        return Ok(pos + 2);
    }
    let malformed = || ConfigError::Syntax { line, reason: "malformed \\uxxxx escape".to_string() };
    let unit_at = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    let unit = unit_at(pos + 2).ok_or_else(malformed)?;
    let mut next = pos + 6;
    let code = if (0xd800..0xdc00).contains(&unit) {
        // A high surrogate: Java strings are UTF-16, so a pair spells one character.
        let low = (chars.get(next) == Some(&'\\') && chars.get(next + 1) == Some(&'u'))
            .then(|| unit_at(next + 2))
            .flatten()
            .filter(|low| (0xdc00..0xe000).contains(low))
            .ok_or_else(malformed)?;
        next += 6;
        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
    } else {
        unit
    };
    out.push(char::from_u32(code).ok_or_else(malformed)?);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(entries: &[(&str, &str)]) -> SystemProperties {
        let mut p = SystemProperties::new();
        for (name, value) in entries {
            p.set(*name, *value);
        }
        p
    }

    /// Parses `text` with `system` properties and an in-memory myid file.
    fn parse_with(
        text: &str,
        system: &SystemProperties,
        myid: Option<&str>,
    ) -> Result<ServerConfig, ConfigError> {
        let settings = Settings::new(&parse_properties(text)?, system, &[]);
        build(settings, &mut |_| Ok(myid.map(str::to_string)))
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

    // --- properties syntax

    #[test]
    fn properties_accept_equals_colon_and_space_separators() {
        let entries = parse_properties("a=1\nb: 2\nc 3\n  d  =  4  \ne\n").unwrap();
        let pairs: Vec<(&str, &str)> =
            entries.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        assert_eq!(pairs, [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "")]);
        assert_eq!(entries[3].line, 4);
    }

    #[test]
    fn properties_skip_comments_and_blank_lines() {
        let text = "# comment\n! also a comment\n   # indented\n\n\t\nkey=value # not a comment\n";
        let entries = parse_properties(text).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].value, "value # not a comment");
        assert_eq!(entries[0].line, 6);
    }

    #[test]
    fn properties_continue_lines_ending_in_an_odd_backslash_count() {
        let text = "list=a,\\\n      b,\\\r\n  c\npath=C:\\\\\nnext=1\\";
        let entries = parse_properties(text).unwrap();
        assert_eq!(entries[0].value, "a,b,c");
        assert_eq!(entries[1].value, "C:\\");
        assert_eq!(entries[2].key, "next");
        assert_eq!(entries[2].value, "1");
    }

    #[test]
    fn properties_unescape_keys_and_values() {
        let text = "a\\=b=c\\:d\\te\nu=\\u0041\\u00e9\\ud83d\\ude00\nx\\ y=z";
        let entries = parse_properties(text).unwrap();
        assert_eq!((entries[0].key.as_str(), entries[0].value.as_str()), ("a=b", "c:d\te"));
        assert_eq!(entries[1].value, "Aé😀");
        assert_eq!((entries[2].key.as_str(), entries[2].value.as_str()), ("x y", "z"));
    }

    #[test]
    fn properties_reject_malformed_unicode_escapes() {
        for text in ["a=\\u12", "a=\\uzzzz", "\n\na=\\ud800x"] {
            let e = parse_properties(text).unwrap_err();
            assert!(matches!(e, ConfigError::Syntax { .. }), "{text:?}: {e}");
        }
        assert_eq!(
            parse_properties("\n\nk=\\u12").unwrap_err().to_string(),
            "line 3: malformed \\uxxxx escape"
        );
    }

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
    fn standalone_constructor_matches_parsed_defaults() {
        let parsed = ok("dataDir=/var/lib/zk\nclientPort=2181\n");
        let built = ServerConfig::standalone("/var/lib/zk", "0.0.0.0:2181".parse().unwrap());
        assert_eq!(parsed, built);
    }

    #[test]
    fn every_key_is_parsed() {
        let text = "dataDir=d\ndataLogDir=l\nclientPort=2181\nclientPortAddress=127.0.0.1\n\
            secureClientPort=2281\nsecureClientPortAddress=::1\nclientPortListenBacklog=50\n\
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
        assert_eq!(
            err(&minimal("tickTime=abc")),
            "invalid value \"abc\" for tickTime: not an integer"
        );
        assert_eq!(
            err(&minimal("tickTime=0")),
            "invalid value \"0\" for tickTime: must be at least 1"
        );
        assert!(err("dataDir=/d\nclientPort=70000").contains("out of range"));
        assert!(err(&minimal("maxClientCnxns=-1")).contains("maxClientCnxns"));
        assert!(err(&minimal("globalOutstandingLimit=0")).contains("globalOutstandingLimit"));
        assert!(err(&minimal("preAllocSize=-5")).contains("preAllocSize"));
        assert!(err(&minimal("jute.maxbuffer=0")).contains("jute.maxbuffer"));
        assert!(err(&minimal("minSessionTimeout=-2")).contains("minSessionTimeout"));
        assert!(err(&minimal("znode.container.checkIntervalMs=0")).contains("checkIntervalMs"));
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
        let c = ok(&minimal(
            "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
        ));
        assert_eq!(c.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert!(err(&minimal("DigestAuthenticationProvider.superDigest=nocolon"))
            .contains("superDigest"));
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
    fn jvm_flags_yield_only_d_definitions() {
        let flags = "-Xmx512m -XX:+UseG1GC -Dzookeeper.snapCount=1000 -Dlog4j.configuration=x \
                     -Dflag -D -Dzookeeper.4lw.commands.whitelist=* -Da=b=c";
        let p = SystemProperties::from_jvm_flags(flags.split_whitespace());
        assert_eq!(p.get("zookeeper.snapCount"), Some("1000"));
        assert_eq!(p.get("zookeeper.4lw.commands.whitelist"), Some("*"));
        assert_eq!(p.get("flag"), Some(""));
        assert_eq!(p.get("a"), Some("b=c"));
        assert_eq!(p.get("-Xmx512m"), None);
        assert_eq!(p.iter().count(), 5);
    }

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
        assert_eq!(
            e.to_string(),
            "invalid value \"many\" for -Dzookeeper.snapCount: not an integer"
        );
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

    // --- server.N

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
    fn quorum_needs_myid_limits_and_membership() {
        let none = SystemProperties::new();
        let e = parse_with(QUORUM, &none, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "myid file /var/lib/zk/myid is missing (needed with server.N lines)"
        );
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
        let text =
            "dataDir=/d\nclientPort=2181\ninitLimit=5\nsyncLimit=2\nextendedTypesEnabled=true\n\
                    server.255=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\n";
        let e = parse_with(text, &SystemProperties::new(), Some("255")).unwrap_err();
        assert!(e.to_string().contains("<= 254"), "{e}");
        assert!(parse_with(text, &SystemProperties::new(), Some("2")).is_ok());
    }

    #[test]
    fn server_keys_need_numeric_ids() {
        assert!(err(&minimal("server.x=10.0.0.1:2888:3888")).contains("must be a number"));
    }

    // --- conf

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
        let text = include_str!("../conf/zoo.cfg");
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
