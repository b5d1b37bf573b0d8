//! Election-channel bytes: the connection handshake and the notification message
//! (quorum-protocol.md §2.1, §3; ZooKeeper's `QuorumCnxManager.InitialMessage`,
//! `FastLeaderElection.buildMsg` and `Messenger.WorkerReceiver`).
//!
//! Pure functions over byte slices; the connection workers own the sockets. All integers are
//! big-endian. Framing (`int length` + payload, `0 < length <= 524288`) is the connection's
//! business; a payload handed to [`Notification::decode`] is one whole frame.
//!
//! # Handshake (first bytes on a connection, sent by the connecting side)
//!
//! ```text
//! initial  = version sid addrlen address      ; version is V1 (-65536) or V2 (-65535)
//!          | sid                              ; legacy: a first long >= 0 is the sid itself
//! version  = long
//! sid      = long                             ; Long.MAX_VALUE: an observer without an id
//! addrlen  = int                              ; 0 < addrlen <= 2048
//! address  = addrlen bytes UTF-8: hostport *( "|" hostport )   ; "|" lists only with V2
//! hostport = host ":" port | "[" ipv6 "]" ":" port
//! ```
//!
//! Wildcard addresses (`0.0.0.0`, `::`) in the list are dropped; a list with nothing left, a
//! bad version, length, UTF-8, host or port is an error and the connection is closed.
//!
//! # Notification (one frame payload)
//!
//! ```text
//! offset  type  field
//!  0      int   state of the sender: 0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING
//!  4      long  proposed leader sid
//! 12      long  proposed leader's last logged zxid
//! 20      long  election epoch (the sender's logical clock)
//! 28      long  peer epoch (the proposed leader's current epoch)
//! 36      int   version: 2 (3.5+; 1 = 3.4.6 without config)
//! 40      int   config length n (version >= 2 only)
//! 44      n     the sender's quorum config text (`server.N=...` lines, `version=<hex>`)
//! ```
//!
//! Older senders: exactly 28 bytes (no peer epoch: it is the epoch half of the zxid) and
//! exactly 40 bytes (peer epoch, then an int that is 0 before 3.4.6 and version 1 from 3.4.6
//! to 3.4.x; Apache reads neither, so both decode as version 0). A longer frame with version
//! 1 carries no config. Receivers drop frames shorter than 28 bytes,
//! unknown states, a version field cut short, and a config length below 0 or past the end.
//! Bytes after the last field are ignored, as Apache ignores them.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};

use crate::config::HostPort;
use crate::limits::ELECTION_INITIAL_ADDRESS_MAX_BYTES;
use crate::proto::{ServerId, Zxid};
use crate::quorum::vote::{ServerState, Vote};

/// Handshake protocol version 1: a single election address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;

/// Handshake protocol version 2: a `|`-separated address list (multi-address enabled).
pub const PROTOCOL_VERSION_V2: i64 = -65535;

/// The sid an observer without an id announces; the acceptor gives it a fresh negative id
/// [QuorumCnxManager.OBSERVER_ID].
pub const OBSERVER_ID: ServerId = ServerId(i64::MAX as u64);

/// The notification format version this server writes [FastLeaderElection
/// Notification.CURRENTVERSION].
pub const NOTIFICATION_VERSION: i32 = 2;

/// Size of the oldest notification form (no peer epoch).
pub const NOTIFICATION_MIN_BYTES: usize = 28;

/// Size of the pre-3.4.6 notification form (peer epoch, no version).
const NOTIFICATION_NO_VERSION_BYTES: usize = 40;

/// Why an election-channel message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// A notification shorter than the oldest form (28 bytes).
    TooShort(usize),
    /// A notification whose state is not 0..=3.
    UnknownState(i32),
    /// A notification that ends inside its version or config length field.
    Truncated,
    /// A config length below 0 or past the end of the notification.
    BadConfigLength(i32),
    /// A handshake whose first long is negative but neither V1 nor V2.
    UnknownProtocolVersion(i64),
    /// A handshake address length outside `1..=2048`.
    BadAddressLength(i32),
    /// A handshake address that is not UTF-8 or not `host:port`.
    BadAddress(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort(n) => write!(f, "notification of {n} bytes is too short"),
            WireError::UnknownState(s) => write!(f, "notification with unknown state {s}"),
            WireError::Truncated => write!(f, "notification ends inside a field"),
            WireError::BadConfigLength(n) => write!(f, "notification config length {n}"),
            WireError::UnknownProtocolVersion(v) => {
                write!(f, "unrecognized protocol version {v}")
            }
            WireError::BadAddressLength(n) => write!(f, "initial message address length {n}"),
            WireError::BadAddress(a) => write!(f, "badly formed address {a:?}"),
        }
    }
}

impl std::error::Error for WireError {}

/// One election notification, in any of the forms a 3.8 peer accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The sender's state.
    pub state: ServerState,
    /// The proposed leader.
    pub leader: ServerId,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The sender's logical clock (or, from a settled peer, the round of its vote).
    pub election_epoch: i64,
    /// The proposed leader's current epoch.
    pub peer_epoch: i64,
    /// Format version: 0 for the 28- and 40-byte forms, else the version field.
    pub version: i32,
    /// The sender's config text; present only when `version >= 2`.
    pub config: Option<Vec<u8>>,
}

/// The shapes a notification can have on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 28 bytes: state, leader, zxid, election epoch.
    Bytes28,
    /// 40 bytes: adds the peer epoch.
    Bytes40,
    /// 40 bytes, the last int being version 1 (3.4.6 to 3.4.x). Receivers cannot tell it
    /// from [`Format::Bytes40`] by its size and, like Apache's, read it as version 0.
    Version1,
    /// 44 + n bytes: version 2 and the config; what this server sends.
    Version2,
}

impl Notification {
    /// A current-version notification carrying `vote` (whose `state` is the sender's state)
    /// and the sender's config text.
    pub fn from_vote(vote: &Vote, config: &[u8]) -> Notification {
        Notification {
            state: vote.state,
            leader: vote.leader,
            zxid: vote.zxid,
            election_epoch: vote.election_epoch,
            peer_epoch: vote.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: Some(config.to_vec()),
        }
    }

    /// The vote this notification carries (its `state` is the sender's state).
    pub fn vote(&self) -> Vote {
        Vote {
            leader: self.leader,
            zxid: self.zxid,
            election_epoch: self.election_epoch,
            peer_epoch: self.peer_epoch,
            state: self.state,
        }
    }

    /// The current form (version 2, 44 + n bytes), as every 3.5+ server sends.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(Format::Version2)
    }

    /// One of the older forms (for talking to, or testing against, older peers). The
    /// `version` field is not consulted: the format decides.
    pub fn encode_as(&self, format: Format) -> Vec<u8> {
        let config = self.config.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(44 + config.len());
        out.extend_from_slice(&self.state.code().to_be_bytes());
        out.extend_from_slice(&(self.leader.0 as i64).to_be_bytes());
        out.extend_from_slice(&self.zxid.0.to_be_bytes());
        out.extend_from_slice(&self.election_epoch.to_be_bytes());
        if format == Format::Bytes28 {
            return out;
        }
        out.extend_from_slice(&self.peer_epoch.to_be_bytes());
        match format {
            Format::Bytes28 => {}
            // Pre-3.4.6 senders filled a 40-byte buffer and left its last int zero.
            Format::Bytes40 => out.extend_from_slice(&[0; 4]),
            Format::Version1 => out.extend_from_slice(&1i32.to_be_bytes()),
            Format::Version2 => {
                out.extend_from_slice(&NOTIFICATION_VERSION.to_be_bytes());
                out.extend_from_slice(&(config.len() as i32).to_be_bytes());
                out.extend_from_slice(config);
            }
        }
        out
    }

    /// Decodes one frame payload in any accepted form.
    pub fn decode(buf: &[u8]) -> Result<Notification, WireError> {
        if buf.len() < NOTIFICATION_MIN_BYTES {
            return Err(WireError::TooShort(buf.len()));
        }
        let state_code = BigEndian::read_i32(&buf[0..4]);
        let state = ServerState::from_i32(state_code).ok_or(WireError::UnknownState(state_code))?;
        let leader = ServerId(BigEndian::read_i64(&buf[4..12]) as u64);
        let zxid = Zxid(BigEndian::read_i64(&buf[12..20]));
        let election_epoch = BigEndian::read_i64(&buf[20..28]);
        let mut n = Notification {
            state,
            leader,
            zxid,
            election_epoch,
            // The 28-byte form predates the peer epoch; Apache derives it from the zxid.
            peer_epoch: zxid.epoch() as i64,
            version: 0,
            config: None,
        };
        if buf.len() == NOTIFICATION_MIN_BYTES {
            return Ok(n);
        }
        if buf.len() < 36 {
            return Err(WireError::Truncated);
        }
        n.peer_epoch = BigEndian::read_i64(&buf[28..36]);
        if buf.len() == NOTIFICATION_NO_VERSION_BYTES {
            return Ok(n);
        }
        if buf.len() < 40 {
            return Err(WireError::Truncated);
        }
        n.version = BigEndian::read_i32(&buf[36..40]);
        if n.version > 1 {
            if buf.len() < 44 {
                return Err(WireError::Truncated);
            }
            let len = BigEndian::read_i32(&buf[40..44]);
            if len < 0 || len as usize > buf.len() - 44 {
                return Err(WireError::BadConfigLength(len));
            }
            n.config = Some(buf[44..44 + len as usize].to_vec());
        }
        Ok(n)
    }

    /// The `version=<hex>` of the carried config, if there is a config and it has one that
    /// parses (Apache logs and ignores a config it cannot parse).
    pub fn config_version(&self) -> Option<i64> {
        config_version(self.config.as_deref()?)
    }
}

/// The `version=<hex>` line of a config text.
pub fn config_version(config: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(config).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() != "version" {
            return None;
        }
        u64::from_str_radix(value.trim(), 16).ok().map(|v| v as i64)
    })
}

/// The first message on an election connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    /// [`PROTOCOL_VERSION_V1`], [`PROTOCOL_VERSION_V2`], or `None` for the legacy form.
    pub protocol_version: Option<i64>,
    /// The connecting server's id ([`OBSERVER_ID`] for an observer without one).
    pub sid: ServerId,
    /// Its election addresses, wildcards removed (empty for the legacy form).
    pub addresses: Vec<HostPort>,
}

/// The handshake a connecting server sends: V1 with one address, V2 with several.
pub fn encode_initial(sid: ServerId, addresses: &[HostPort]) -> Vec<u8> {
    let version = if addresses.len() > 1 { PROTOCOL_VERSION_V2 } else { PROTOCOL_VERSION_V1 };
    let text: Vec<String> = addresses.iter().map(HostPort::to_string).collect();
    let text = text.join("|");
    assert!(
        !text.is_empty() && text.len() <= ELECTION_INITIAL_ADDRESS_MAX_BYTES,
        "election addresses come from validated config"
    );
    let mut out = Vec::with_capacity(20 + text.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(sid.0 as i64).to_be_bytes());
    out.extend_from_slice(&(text.len() as i32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Decodes a handshake from the start of `buf`: `Ok(None)` if more bytes are needed, else the
/// message and how many bytes it used. Lengths are checked before waiting for the body, so a
/// hostile length never makes the caller buffer more than 2048 bytes.
pub fn decode_initial(buf: &[u8]) -> Result<Option<(InitialMessage, usize)>, WireError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let first = BigEndian::read_i64(&buf[0..8]);
    if first >= 0 {
        let legacy = InitialMessage {
            protocol_version: None,
            sid: ServerId(first as u64),
            addresses: Vec::new(),
        };
        return Ok(Some((legacy, 8)));
    }
    if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
        return Err(WireError::UnknownProtocolVersion(first));
    }
    if buf.len() < 20 {
        return Ok(None);
    }
    let sid = ServerId(BigEndian::read_i64(&buf[8..16]) as u64);
    let len = BigEndian::read_i32(&buf[16..20]);
    if len <= 0 || len as usize > ELECTION_INITIAL_ADDRESS_MAX_BYTES {
        return Err(WireError::BadAddressLength(len));
    }
    let end = 20 + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let text = std::str::from_utf8(&buf[20..end])
        .map_err(|_| WireError::BadAddress(String::from_utf8_lossy(&buf[20..end]).into()))?;
    let mut addresses = Vec::new();
    for part in text.split('|') {
        let address = parse_host_port(part).ok_or_else(|| WireError::BadAddress(part.into()))?;
        if !is_wildcard(&address.host) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Err(WireError::BadAddress(text.into()));
    }
    Ok(Some((InitialMessage { protocol_version: Some(first), sid, addresses }, end)))
}

/// `host:port` or `[ipv6]:port`.
fn parse_host_port(text: &str) -> Option<HostPort> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:")?;
            (host, port)
        }
        None => {
            let (host, port) = text.rsplit_once(':')?;
            if host.contains(':') {
                return None;
            }
            (host, port)
        }
    };
    if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(HostPort { host: host.to_string(), port: port.parse().ok()? })
}

fn is_wildcard(host: &str) -> bool {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_unspecified(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config text of the captured 3.8 notification (quorum-protocol.md §3).
    const CAPTURED_CONFIG: &str = "server.1=127.0.0.1:22881:23881:participant\n\
                                   server.2=127.0.0.1:22882:23882:participant\n\
                                   server.3=127.0.0.1:22883:23883:participant\n\
                                   version=0";

    fn captured() -> Notification {
        Notification {
            state: ServerState::Looking,
            leader: ServerId(2),
            zxid: Zxid(0),
            election_epoch: 1,
            peer_epoch: 0,
            version: 2,
            config: Some(CAPTURED_CONFIG.as_bytes().to_vec()),
        }
    }

    #[test]
    fn current_form_matches_the_captured_notification() {
        let bytes = captured().encode();
        assert_eq!(bytes.len(), 182, "captured size");
        let mut expected = vec![0, 0, 0, 0]; // LOOKING
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]); // leader 2
        expected.extend_from_slice(&[0; 8]); // zxid 0
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]); // election epoch 1
        expected.extend_from_slice(&[0; 8]); // peer epoch 0
        expected.extend_from_slice(&[0, 0, 0, 2]); // version 2
        expected.extend_from_slice(&[0, 0, 0, 138]); // config length
        expected.extend_from_slice(CAPTURED_CONFIG.as_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(Notification::decode(&bytes), Ok(captured()));
        assert_eq!(captured().config_version(), Some(0));
    }

    #[test]
    fn older_forms_decode() {
        let mut n = captured();
        n.zxid = Zxid::new(5, 9);
        n.peer_epoch = 4;
        n.state = ServerState::Following;

        let b28 = n.encode_as(Format::Bytes28);
        assert_eq!(b28.len(), 28);
        let d = Notification::decode(&b28).expect("28-byte form");
        assert_eq!((d.peer_epoch, d.version, d.config), (5, 0, None), "epoch from the zxid");
        assert_eq!((d.state, d.leader, d.zxid, d.election_epoch), (n.state, n.leader, n.zxid, 1));

        let b40 = n.encode_as(Format::Bytes40);
        assert_eq!(b40.len(), 40);
        let d = Notification::decode(&b40).expect("40-byte form");
        assert_eq!((d.peer_epoch, d.version, d.config), (4, 0, None));

        assert_eq!(&b40[36..], &[0, 0, 0, 0]);

        let v1 = n.encode_as(Format::Version1);
        assert_eq!(v1.len(), 40);
        assert_eq!(&v1[36..], &[0, 0, 0, 1]);
        let d = Notification::decode(&v1).expect("version 1");
        assert_eq!((d.peer_epoch, d.version, d.config), (4, 0, None), "40 bytes: not read");

        // A longer frame with version 1: read, and no config follows.
        let mut longer = v1.clone();
        longer.extend_from_slice(&[9, 9, 9, 9]);
        let d = Notification::decode(&longer).expect("version 1, 44 bytes");
        assert_eq!((d.peer_epoch, d.version, d.config), (4, 1, None));
    }

    #[test]
    fn bad_notifications_are_rejected() {
        let good = captured().encode();
        assert_eq!(Notification::decode(&good[..27]), Err(WireError::TooShort(27)));
        assert_eq!(Notification::decode(&good[..30]), Err(WireError::Truncated));
        assert_eq!(Notification::decode(&good[..38]), Err(WireError::Truncated));
        assert_eq!(Notification::decode(&good[..42]), Err(WireError::Truncated), "no length");
        assert_eq!(Notification::decode(&good[..44]), Err(WireError::BadConfigLength(138)));
        let mut bad_state = good.clone();
        bad_state[3] = 4;
        assert_eq!(Notification::decode(&bad_state), Err(WireError::UnknownState(4)));
        let mut negative = good.clone();
        negative[40..44].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(Notification::decode(&negative), Err(WireError::BadConfigLength(-1)));
        let mut empty = good[..44].to_vec();
        empty[40..44].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(Notification::decode(&empty).expect("empty config").config, Some(vec![]));
    }

    #[test]
    fn config_version_is_hex() {
        assert_eq!(config_version(b"server.1=a:1:2\nversion=1a"), Some(0x1a));
        assert_eq!(config_version(b"server.1=a:1:2"), None);
        assert_eq!(config_version(b"version=zz"), None);
    }

    #[test]
    fn handshake_matches_the_captured_bytes() {
        let address = HostPort { host: "127.0.0.1".into(), port: 23881 };
        let bytes = encode_initial(ServerId(1), std::slice::from_ref(&address));
        let mut expected = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0];
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0, 0, 0, 0x0f]);
        expected.extend_from_slice(b"127.0.0.1:23881");
        assert_eq!(bytes, expected);
        let (message, used) = decode_initial(&bytes).expect("valid").expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(message.protocol_version, Some(PROTOCOL_VERSION_V1));
        assert_eq!(message.sid, ServerId(1));
        assert_eq!(message.addresses, vec![address]);
        for cut in 0..bytes.len() {
            assert_eq!(decode_initial(&bytes[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn handshake_v2_lists_addresses_and_drops_wildcards() {
        let addresses = [
            HostPort { host: "10.0.0.1".into(), port: 3888 },
            HostPort { host: "::1".into(), port: 3889 },
        ];
        let bytes = encode_initial(ServerId(7), &addresses);
        assert_eq!(&bytes[..8], &PROTOCOL_VERSION_V2.to_be_bytes());
        assert!(bytes.ends_with(b"10.0.0.1:3888|[0:0:0:0:0:0:0:1]:3889"));
        let (message, _) = decode_initial(&bytes).expect("valid").expect("complete");
        assert_eq!(message.addresses[0], addresses[0]);
        assert_eq!(message.addresses[1].port, 3889);

        let mut with_wildcard = PROTOCOL_VERSION_V2.to_be_bytes().to_vec();
        with_wildcard.extend_from_slice(&7i64.to_be_bytes());
        let text = b"0.0.0.0:3888|host-b:3888";
        with_wildcard.extend_from_slice(&(text.len() as i32).to_be_bytes());
        with_wildcard.extend_from_slice(text);
        let (message, _) = decode_initial(&with_wildcard).expect("valid").expect("complete");
        assert_eq!(message.addresses, vec![HostPort { host: "host-b".into(), port: 3888 }]);
    }

    #[test]
    fn legacy_handshake_is_a_bare_sid() {
        let bytes = 5i64.to_be_bytes();
        let (message, used) = decode_initial(&bytes).expect("valid").expect("complete");
        assert_eq!((message.protocol_version, message.sid, used), (None, ServerId(5), 8));
        let observer = i64::MAX.to_be_bytes();
        assert_eq!(decode_initial(&observer).unwrap().unwrap().0.sid, OBSERVER_ID);
    }

    #[test]
    fn bad_handshakes_are_rejected() {
        let head = |version: i64, len: i32| {
            let mut b = version.to_be_bytes().to_vec();
            b.extend_from_slice(&1i64.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b
        };
        assert_eq!(
            decode_initial(&(-3i64).to_be_bytes()),
            Err(WireError::UnknownProtocolVersion(-3))
        );
        assert_eq!(decode_initial(&head(-65536, 0)), Err(WireError::BadAddressLength(0)));
        assert_eq!(decode_initial(&head(-65536, -1)), Err(WireError::BadAddressLength(-1)));
        assert_eq!(decode_initial(&head(-65536, 2049)), Err(WireError::BadAddressLength(2049)));
        assert_eq!(decode_initial(&head(-65536, 2048)), Ok(None), "2048 is allowed; wait");
        for text in ["noport", "host:", "host:99999", ":3888", "[::1]3888", "a:b:3888", "h:-1"] {
            let mut b = head(-65536, text.len() as i32);
            b.extend_from_slice(text.as_bytes());
            assert!(
                matches!(decode_initial(&b), Err(WireError::BadAddress(_))),
                "{text} must be rejected"
            );
        }
        let mut bad_utf8 = head(-65536, 2);
        bad_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(decode_initial(&bad_utf8), Err(WireError::BadAddress(_))));
        let mut only_wildcard = head(-65536, 9);
        only_wildcard.extend_from_slice(b"[::]:3888");
        assert!(matches!(decode_initial(&only_wildcard), Err(WireError::BadAddress(_))));
    }
}
