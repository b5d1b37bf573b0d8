//! The learner connection's packets (quorum-protocol.md §5; ZooKeeper's `QuorumPacket` in
//! zookeeper.jute, `Leader.java` for the types, `LearnerHandler` / `Learner` for the bodies).
//!
//! After the TCP connect (and optional quorum SASL, not supported) both sides write jute
//! `QuorumPacket` records back to back, **with no length prefix**:
//!
//! ```text
//! QuorumPacket = type:int zxid:long data:buffer authinfo:vector<Id>
//! buffer       = len:int bytes            ; len -1 = null
//! vector<Id>   = count:int Id*            ; count -1 = null
//! Id           = scheme:ustring id:ustring
//! ```
//!
//! `data` and `authinfo` are null unless the type says otherwise. Bodies carried in `data`
//! (all big-endian, raw, not jute records):
//!
//! ```text
//! LearnerInfo  (FOLLOWERINFO, OBSERVERINFO) = serverid:long protocolVersion:int configVersion:long
//!              ; leaders also accept the first 8 or 12 bytes alone
//! REQUEST      = sessionId:long cxid:int type:int body      ; body: the client's request record
//! PING         (learner -> leader) = (sessionId:long timeout:int)*   ; sessions touched
//! REVALIDATE   (learner -> leader) = sessionId:long timeout:int
//! REVALIDATE   (leader -> learner) = sessionId:long valid:boolean
//! LEADERINFO   = protocolVersion:int                        ; 0x10000
//! ACKEPOCH     = currentEpoch:int                           ; -1: epoch already accepted
//! NEWLEADER    = the leader's last-seen config text (UTF-8)
//! COMMITANDACTIVATE = designatedLeaderSid:long
//! INFORMANDACTIVATE = designatedLeaderSid:long txn
//! PROPOSAL, INFORM  = txn: TxnHeader txn-record [TxnDigest] as in the txn log
//! ```
//!
//! A SNAP packet is followed on the stream by the snapshot body (see [`super::snap`]).
//!
//! Encoding and decoding are pure functions over byte slices; [`read_packet`] and
//! [`write_packet`] are the blocking stream forms for the connection threads. Hostile input
//! yields an error, never a panic or an allocation larger than the configured bound.

use std::fmt;
use std::io::{self, Read, Write};

use crate::jute::data::Id;
use crate::jute::{DecodeError, DecodeResult, Jute, Reader, Writer};

/// The Zab protocol version a 3.4+ leader announces in LEADERINFO and a learner in
/// LearnerInfo [`Leader`/`Learner`: 0x10000].
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// The protocol version `LearnerHandler` assumes for a LearnerInfo of only 8 bytes (pre-1.0
/// learners, which get no LEADERINFO / ACKEPOCH exchange).
pub const PROTOCOL_VERSION_PRE_1_0: i32 = 0x1;

/// Packet types [Leader.java], with ZooKeeper's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// 1: a learner forwards a client request.
    Request = 1,
    /// 2: the leader proposes a txn to followers.
    Proposal = 2,
    /// 3: a follower acknowledges a proposal (or NEWLEADER / UPTODATE).
    Ack = 3,
    /// 4: the leader commits a txn.
    Commit = 4,
    /// 5: liveness, both ways; the learner's reply lists touched sessions.
    Ping = 5,
    /// 6: session re-attach on a learner, and the leader's answer.
    Revalidate = 6,
    /// 7: answer to a forwarded `sync()`.
    Sync = 7,
    /// 8: a committed txn for an observer.
    Inform = 8,
    /// 9: COMMIT of a reconfig, naming the designated leader.
    CommitAndActivate = 9,
    /// 10: the leader asks the learner to acknowledge the synced state of the new epoch.
    NewLeader = 10,
    /// 11: a follower registers (LearnerInfo).
    FollowerInfo = 11,
    /// 12: sync done, start serving.
    UpToDate = 12,
    /// 13: sync by sending the missing txns.
    Diff = 13,
    /// 14: the learner must truncate its log to the zxid.
    Trunc = 14,
    /// 15: sync by sending a whole snapshot (it follows on the stream).
    Snap = 15,
    /// 16: an observer registers (LearnerInfo).
    ObserverInfo = 16,
    /// 17: the leader announces the new epoch.
    LeaderInfo = 17,
    /// 18: the learner accepts the new epoch.
    AckEpoch = 18,
    /// 19: INFORM of a reconfig, naming the designated leader.
    InformAndActivate = 19,
}

impl PacketType {
    /// Every type, in numeric order.
    pub const ALL: [PacketType; 19] = [
        PacketType::Request,
        PacketType::Proposal,
        PacketType::Ack,
        PacketType::Commit,
        PacketType::Ping,
        PacketType::Revalidate,
        PacketType::Sync,
        PacketType::Inform,
        PacketType::CommitAndActivate,
        PacketType::NewLeader,
        PacketType::FollowerInfo,
        PacketType::UpToDate,
        PacketType::Diff,
        PacketType::Trunc,
        PacketType::Snap,
        PacketType::ObserverInfo,
        PacketType::LeaderInfo,
        PacketType::AckEpoch,
        PacketType::InformAndActivate,
    ];

    /// The wire number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The type with wire number `code`, if there is one.
    pub fn from_code(code: i32) -> Option<PacketType> {
        let index = usize::try_from(code).ok()?.checked_sub(1)?;
        PacketType::ALL.get(index).copied()
    }

    /// The name ZooKeeper logs (`Leader.getPacketType`).
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Request => "REQUEST",
            PacketType::Proposal => "PROPOSAL",
            PacketType::Ack => "ACK",
            PacketType::Commit => "COMMIT",
            PacketType::Ping => "PING",
            PacketType::Revalidate => "REVALIDATE",
            PacketType::Sync => "SYNC",
            PacketType::Inform => "INFORM",
            PacketType::CommitAndActivate => "COMMITANDACTIVATE",
            PacketType::NewLeader => "NEWLEADER",
            PacketType::FollowerInfo => "FOLLOWERINFO",
            PacketType::UpToDate => "UPTODATE",
            PacketType::Diff => "DIFF",
            PacketType::Trunc => "TRUNC",
            PacketType::Snap => "SNAP",
            PacketType::ObserverInfo => "OBSERVERINFO",
            PacketType::LeaderInfo => "LEADERINFO",
            PacketType::AckEpoch => "ACKEPOCH",
            PacketType::InformAndActivate => "INFORMANDACTIVATE",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One packet on a learner connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumPacket {
    /// The packet type's wire number (see [`PacketType`]); unknown numbers are kept as read.
    pub typ: i32,
    /// Meaning depends on the type (quorum-protocol.md §5.1).
    pub zxid: i64,
    /// The body; `None` is the null buffer.
    pub data: Option<Vec<u8>>,
    /// Identities of the client (REQUEST), echoed in PING; `None` is the null vector.
    pub authinfo: Option<Vec<Id>>,
}

impl QuorumPacket {
    /// A packet of a known type with no authinfo.
    pub fn new(typ: PacketType, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket { typ: typ.code(), zxid, data, authinfo: None }
    }

    /// The type, if the number is one of 1..=19.
    pub fn packet_type(&self) -> Option<PacketType> {
        PacketType::from_code(self.typ)
    }

    /// The body, or no bytes for a null buffer.
    pub fn data(&self) -> &[u8] {
        self.data.as_deref().unwrap_or_default()
    }
}

impl fmt::Display for QuorumPacket {
    /// `TYPE zxid 0x…` plus the body size, for logs (never the body itself).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.packet_type() {
            Some(t) => write!(f, "{t}")?,
            None => write!(f, "UNKNOWN({})", self.typ)?,
        }
        write!(f, " zxid 0x{:x}", self.zxid)?;
        if let Some(d) = &self.data {
            write!(f, " data {} bytes", d.len())?;
        }
        Ok(())
    }
}

impl Jute for QuorumPacket {
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(self.typ);
        w.put_i64(self.zxid);
        w.put_buffer(self.data.as_deref());
        match &self.authinfo {
            None => w.put_i32(-1),
            Some(ids) => ids.encode(w),
        }
    }

    /// Decodes from a slice (lengths are bounded by the slice; see [`read_packet`] for
    /// streams).
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let typ = r.read_i32()?;
        let zxid = r.read_i64()?;
        let data = r.read_buffer()?;
        let authinfo = match r.read_count()? {
            None => None,
            Some(n) => {
                let mut ids = Vec::with_capacity(n.min(16));
                for _ in 0..n {
                    ids.push(Id::decode(r)?);
                }
                Some(ids)
            }
        };
        Ok(QuorumPacket { typ, zxid, data, authinfo })
    }
}

/// Why a packet read from a stream was rejected (carried as the source of an
/// [`io::ErrorKind::InvalidData`] error by [`read_packet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// A `data` length below -1 or above the bound.
    BadDataLength(i32),
    /// An `authinfo` count below -1 or more than the bound allows.
    BadAuthCount(i32),
    /// An `authinfo` string length below -1 or past the bytes left for authinfo.
    BadStringLength(i32),
    /// An `authinfo` string that is not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::BadDataLength(n) => write!(f, "quorum packet data length {n}"),
            PacketError::BadAuthCount(n) => write!(f, "quorum packet authinfo count {n}"),
            PacketError::BadStringLength(n) => {
                write!(f, "quorum packet authinfo string length {n}")
            }
            PacketError::InvalidUtf8 => write!(f, "quorum packet authinfo string is not utf-8"),
        }
    }
}

impl std::error::Error for PacketError {}

impl From<PacketError> for io::Error {
    fn from(e: PacketError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Reads one packet from a blocking stream. `max_len` bounds the `data` buffer and, in total,
/// the `authinfo` strings (Apache: jute.maxbuffer + extrasize,
/// [`QUORUM_PACKET_MAX_BYTES_DEFAULT`](crate::limits::QUORUM_PACKET_MAX_BYTES_DEFAULT)); a
/// length outside the bounds is an `InvalidData` error whose source is a [`PacketError`], and
/// nothing larger than the bound is allocated. The end of the stream, anywhere, is
/// `UnexpectedEof`.
pub fn read_packet(input: &mut impl Read, max_len: usize) -> io::Result<QuorumPacket> {
    let mut head = [0u8; 12];
    input.read_exact(&mut head)?;
    let mut r = Reader::new(&head);
    let typ = r.read_i32().map_err(invalid)?;
    let zxid = r.read_i64().map_err(invalid)?;
    let len = read_i32(input)?;
    let data = match len {
        -1 => None,
        n if n < 0 || n as usize > max_len => return Err(PacketError::BadDataLength(n).into()),
        n => Some(read_bytes(input, n as usize)?),
    };
    let count = read_i32(input)?;
    // Each Id takes at least 8 bytes (two string lengths) out of the same budget.
    let authinfo = match count {
        -1 => None,
        n if n < 0 || n as usize > max_len / 8 => {
            return Err(PacketError::BadAuthCount(n).into());
        }
        n => {
            let mut budget = max_len - n as usize * 8;
            let mut ids = Vec::with_capacity((n as usize).min(16));
            for _ in 0..n {
                let scheme = read_string(input, &mut budget)?;
                let id = read_string(input, &mut budget)?;
                ids.push(Id { scheme, id });
            }
            Some(ids)
        }
    };
    Ok(QuorumPacket { typ, zxid, data, authinfo })
}

/// Writes one packet (no length prefix). Flushing is the caller's business.
pub fn write_packet(out: &mut impl Write, packet: &QuorumPacket) -> io::Result<()> {
    out.write_all(&packet.to_bytes())
}

/// The FOLLOWERINFO / OBSERVERINFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    /// The learner's sid.
    pub serverid: i64,
    /// [`PROTOCOL_VERSION`] for every 3.4+ learner.
    pub protocol_version: i32,
    /// Version of the learner's quorum config (0 when the learner sent none).
    pub config_version: i64,
}

impl LearnerInfo {
    /// The 20-byte form every 3.5+ learner sends.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        out.put_i64(self.serverid);
        out.put_i32(self.protocol_version);
        out.put_i64(self.config_version);
        out
    }

    /// Decodes the 20-byte form, or the older 8-byte (sid only: protocol version
    /// [`PROTOCOL_VERSION_PRE_1_0`]) and 12-byte (no config version) forms, as
    /// `LearnerHandler.run` does. Shorter data is an error; bytes past 20 are ignored.
    pub fn decode(data: &[u8]) -> DecodeResult<LearnerInfo> {
        let mut r = Reader::new(data);
        let serverid = r.read_i64()?;
        let protocol_version =
            if r.remaining() >= 4 { r.read_i32()? } else { PROTOCOL_VERSION_PRE_1_0 };
        let config_version = if r.remaining() >= 8 { r.read_i64()? } else { 0 };
        Ok(LearnerInfo { serverid, protocol_version, config_version })
    }
}

/// A REQUEST body: a client request forwarded by a learner (`Request` serialized by
/// `Learner.request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestData {
    /// The client's session.
    pub session_id: i64,
    /// The client's xid.
    pub cxid: i32,
    /// The opcode.
    pub op: i32,
    /// The request record that followed the client's RequestHeader, raw.
    pub body: Vec<u8>,
}

impl RequestData {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.body.len());
        out.put_i64(self.session_id);
        out.put_i32(self.cxid);
        out.put_i32(self.op);
        out.extend_from_slice(&self.body);
        out
    }

    /// Decodes a body of at least 16 bytes; the rest is the request record.
    pub fn decode(data: &[u8]) -> DecodeResult<RequestData> {
        let mut r = Reader::new(data);
        let session_id = r.read_i64()?;
        let cxid = r.read_i32()?;
        let op = r.read_i32()?;
        Ok(RequestData { session_id, cxid, op, body: r.rest().to_vec() })
    }
}

/// A learner's PING body: the sessions touched since its last ping, as (session id,
/// timeout ms) pairs.
pub fn encode_ping_sessions(touched: &[(i64, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 * touched.len());
    for (session, timeout) in touched {
        out.put_i64(*session);
        out.put_i32(*timeout);
    }
    out
}

/// Decodes a learner's PING body. A body that is not a whole number of 12-byte pairs is an
/// error (Apache's leader reads pairs while bytes remain and fails on a partial one).
pub fn decode_ping_sessions(data: &[u8]) -> DecodeResult<Vec<(i64, i32)>> {
    if !data.len().is_multiple_of(12) {
        return Err(DecodeError::UnexpectedEof);
    }
    let mut r = Reader::new(data);
    let mut out = Vec::with_capacity(data.len() / 12);
    while r.remaining() > 0 {
        out.push((r.read_i64()?, r.read_i32()?));
    }
    Ok(out)
}

/// A learner's REVALIDATE body: re-attach `session_id` with `timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateRequest {
    /// The session.
    pub session_id: i64,
    /// Its timeout in ms.
    pub timeout_ms: i32,
}

impl RevalidateRequest {
    /// Encodes the 12-byte body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        out.put_i64(self.session_id);
        out.put_i32(self.timeout_ms);
        out
    }

    /// Decodes the body (trailing bytes ignored).
    pub fn decode(data: &[u8]) -> DecodeResult<RevalidateRequest> {
        let mut r = Reader::new(data);
        Ok(RevalidateRequest { session_id: r.read_i64()?, timeout_ms: r.read_i32()? })
    }
}

/// The leader's REVALIDATE answer: whether the session is still valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateReply {
    /// The session.
    pub session_id: i64,
    /// Whether it exists and is not closing.
    pub valid: bool,
}

impl RevalidateReply {
    /// Encodes the 9-byte body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9);
        out.put_i64(self.session_id);
        out.put_bool(self.valid);
        out
    }

    /// Decodes the body (any non-zero byte is true, as `DataInputStream.readBoolean`).
    pub fn decode(data: &[u8]) -> DecodeResult<RevalidateReply> {
        let mut r = Reader::new(data);
        Ok(RevalidateReply { session_id: r.read_i64()?, valid: r.read_bool()? })
    }
}

/// A 4-byte int body: ACKEPOCH's current epoch (-1 when the epoch was already accepted) and
/// LEADERINFO's protocol version.
pub fn encode_int_data(value: i32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// Decodes a 4-byte int body (trailing bytes ignored, as `ByteBuffer.getInt` does).
pub fn decode_int_data(data: &[u8]) -> DecodeResult<i32> {
    Reader::new(data).read_i32()
}

/// Decodes the long that COMMITANDACTIVATE and INFORMANDACTIVATE start with (the designated
/// leader's sid); for INFORMANDACTIVATE the txn follows at byte 8.
pub fn decode_designated_leader(data: &[u8]) -> DecodeResult<i64> {
    Reader::new(data).read_i64()
}

fn invalid(e: DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn read_i32(input: &mut impl Read) -> io::Result<i32> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b)?;
    Ok(i32::from_be_bytes(b))
}

/// Reads exactly `n` bytes; `n` has been checked against the caller's bound.
fn read_bytes(input: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    input.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads a ustring whose bytes come out of `budget` (null reads as empty, as Java's `Id`
/// fields are never null in practice).
fn read_string(input: &mut impl Read, budget: &mut usize) -> io::Result<String> {
    let n = read_i32(input)?;
    if n == -1 {
        return Ok(String::new());
    }
    if n < 0 || n as usize > *budget {
        return Err(PacketError::BadStringLength(n).into());
    }
    *budget -= n as usize;
    String::from_utf8(read_bytes(input, n as usize)?).map_err(|_| PacketError::InvalidUtf8.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::QUORUM_PACKET_MAX_BYTES_DEFAULT as MAX;

    fn sample() -> QuorumPacket {
        QuorumPacket {
            typ: PacketType::Request.code(),
            zxid: -1,
            data: Some(vec![1, 2, 3]),
            authinfo: Some(vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:x")]),
        }
    }

    #[test]
    fn type_numbers_and_names_follow_leader_java() {
        for (i, t) in PacketType::ALL.iter().enumerate() {
            assert_eq!(t.code(), i as i32 + 1);
            assert_eq!(PacketType::from_code(t.code()), Some(*t));
        }
        assert_eq!(PacketType::from_code(0), None);
        assert_eq!(PacketType::from_code(20), None);
        assert_eq!(PacketType::from_code(-1), None);
        assert_eq!(PacketType::Snap.code(), 15);
        assert_eq!(PacketType::UpToDate.to_string(), "UPTODATE");
        assert_eq!(PacketType::InformAndActivate.name(), "INFORMANDACTIVATE");
    }

    #[test]
    fn ack_packet_has_the_captured_layout() {
        // ACK of NEWLEADER for epoch 1: type 3, zxid 0x100000000, null data, null authinfo.
        let p = QuorumPacket::new(PacketType::Ack, 0x1_0000_0000, None);
        let bytes = p.to_bytes();
        let expected: &[u8] =
            &[0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(bytes, expected);
        assert_eq!(QuorumPacket::from_bytes(&bytes).unwrap(), p);
        assert_eq!(read_packet(&mut &bytes[..], MAX).unwrap(), p);
        assert_eq!(p.to_string(), "ACK zxid 0x100000000");
    }

    #[test]
    fn packets_round_trip_back_to_back_on_a_stream() {
        let packets = vec![
            sample(),
            QuorumPacket::new(PacketType::Ping, 5, Some(vec![])),
            QuorumPacket { typ: 99, zxid: i64::MIN, data: None, authinfo: Some(vec![]) },
        ];
        let mut stream = Vec::new();
        for p in &packets {
            write_packet(&mut stream, p).unwrap();
        }
        let mut input = &stream[..];
        for p in &packets {
            assert_eq!(&read_packet(&mut input, MAX).unwrap(), p);
        }
        assert!(input.is_empty());
        let eof = read_packet(&mut input, MAX).unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(packets[2].packet_type(), None);
    }

    fn invalid_data(bytes: &[u8], max: usize) -> PacketError {
        let err = read_packet(&mut &bytes[..], max).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        err.into_inner().unwrap().downcast::<PacketError>().map(|e| *e).unwrap()
    }

    fn head(len: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(2);
        b.put_i64(7);
        b.put_i32(len);
        b
    }

    #[test]
    fn absurd_lengths_are_errors_before_allocation() {
        assert_eq!(invalid_data(&head(i32::MAX), MAX), PacketError::BadDataLength(i32::MAX));
        assert_eq!(invalid_data(&head(-2), MAX), PacketError::BadDataLength(-2));
        assert_eq!(invalid_data(&head(11), 10), PacketError::BadDataLength(11));
        let mut b = head(-1);
        b.put_i32(i32::MAX);
        assert_eq!(invalid_data(&b, MAX), PacketError::BadAuthCount(i32::MAX));
        let mut b = head(-1);
        b.put_i32(-7);
        assert_eq!(invalid_data(&b, MAX), PacketError::BadAuthCount(-7));
        let mut b = head(-1);
        b.put_i32(1);
        b.put_i32(i32::MAX);
        assert_eq!(invalid_data(&b, MAX), PacketError::BadStringLength(i32::MAX));
        // Two Ids in a 24-byte budget: 16 for the lengths leaves 8 for the strings.
        let mut b = head(-1);
        b.put_i32(2);
        b.put_str("abcd");
        b.put_str("efgh");
        b.put_str("x");
        assert_eq!(invalid_data(&b, 24), PacketError::BadStringLength(1));
        let mut b = head(-1);
        b.put_i32(1);
        b.put_buffer(Some(&[0xff]));
        b.put_str("");
        assert_eq!(invalid_data(&b, MAX), PacketError::InvalidUtf8);
        // Slice decoding bounds lengths by the slice.
        assert_eq!(QuorumPacket::from_bytes(&head(5)), Err(DecodeError::BadLength(5)));
    }

    #[test]
    fn every_truncation_is_an_eof_error() {
        let bytes = sample().to_bytes();
        for cut in 0..bytes.len() {
            let err = read_packet(&mut &bytes[..cut], MAX).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
            assert!(QuorumPacket::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn learner_info_accepts_the_short_forms() {
        let info =
            LearnerInfo { serverid: 3, protocol_version: PROTOCOL_VERSION, config_version: 0 };
        let bytes = info.encode();
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 0]);
        assert_eq!(LearnerInfo::decode(&bytes).unwrap(), info);
        let short = LearnerInfo::decode(&bytes[..12]).unwrap();
        assert_eq!(short, LearnerInfo { config_version: 0, ..info });
        let sid_only = LearnerInfo::decode(&bytes[..8]).unwrap();
        assert_eq!(sid_only.protocol_version, PROTOCOL_VERSION_PRE_1_0);
        assert_eq!(sid_only.serverid, 3);
        // 13..19 bytes: the partial config version is ignored, as LearnerHandler does.
        assert_eq!(LearnerInfo::decode(&bytes[..15]).unwrap(), short);
        assert_eq!(LearnerInfo::decode(&bytes[..7]), Err(DecodeError::UnexpectedEof));
    }

    #[test]
    fn bodies_round_trip_and_reject_short_input() {
        let req = RequestData { session_id: 0x0300_0000_0000_0001, cxid: 4, op: 5, body: vec![9] };
        let bytes = req.encode();
        assert_eq!(bytes.len(), 17);
        assert_eq!(RequestData::decode(&bytes).unwrap(), req);
        assert!(RequestData::decode(&bytes[..15]).is_err());
        let empty = RequestData::decode(&bytes[..16]).unwrap();
        assert!(empty.body.is_empty());

        let touched = vec![(1, 4000), (-5, 30_000)];
        let bytes = encode_ping_sessions(&touched);
        assert_eq!(decode_ping_sessions(&bytes).unwrap(), touched);
        assert_eq!(decode_ping_sessions(&[]).unwrap(), vec![]);
        assert!(decode_ping_sessions(&bytes[..13]).is_err());

        let rv = RevalidateRequest { session_id: 77, timeout_ms: 6000 };
        assert_eq!(RevalidateRequest::decode(&rv.encode()).unwrap(), rv);
        assert!(RevalidateRequest::decode(&rv.encode()[..11]).is_err());
        let reply = RevalidateReply { session_id: 77, valid: true };
        let bytes = reply.encode();
        assert_eq!(bytes.len(), 9);
        assert_eq!(RevalidateReply::decode(&bytes).unwrap(), reply);
        assert!(RevalidateReply::decode(&bytes[..8]).is_err());

        assert_eq!(encode_int_data(-1), vec![0xff; 4]);
        assert_eq!(decode_int_data(&encode_int_data(PROTOCOL_VERSION)).unwrap(), 0x10000);
        assert!(decode_int_data(&[0, 0, 1]).is_err());
        assert_eq!(decode_designated_leader(&[0, 0, 0, 0, 0, 0, 0, 2, 0xaa]).unwrap(), 2);
        assert!(decode_designated_leader(&[0; 7]).is_err());
    }
}
