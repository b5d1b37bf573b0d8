//! How quorum connections are secured ([`PeerSecurity`]: quorum TLS as `sslQuorum` and
//! `portUnification` ask, and quorum SASL), and quorum SASL itself (Apache's `QuorumAuth`,
//! `SaslQuorumAuthLearner`, `SaslQuorumAuthServer`):
//! the DIGEST-MD5 exchange that opens every election and Zab connection when
//! `quorum.auth.enableSasl` is on, in `QuorumAuthPacket`s (`long magic`, `int status`,
//! `buffer token`).
//!
//! The side that dials is the learner: with `quorum.auth.learnerRequireSasl` it sends the
//! first packet (right after the election handshake, or first thing on a Zab connection) and
//! fails unless the server ends with SUCCESS. The side that accepts is the server: it looks
//! at the first 8 bytes; the magic starts an exchange, anything else is a peer that does not
//! authenticate, refused with `quorum.auth.serverRequireSasl` and otherwise let in (those
//! bytes are handed back to be read as the connection's first message). A failed exchange
//! gets an ERROR packet, and the connection is closed when the server requires SASL (as
//! Apache, which otherwise keeps it open for the learner to close).
//!
//! As in Apache, a DIGEST-MD5 user proves knowledge of a shared password, not which server
//! it is: the sid a peer claims is checked by the election and Zab handshakes, not here.
//!
//! I/O: blocking reads and writes on the connection, each within the socket's timeout,
//! the whole exchange within `deadline`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use log::{info, warn};

use crate::config::QuorumSaslConfig;
use crate::sasl::{random_nonce, DigestMd5, DigestMd5Client, Step, QUORUM_SERVICE};
use crate::tls::duplex::PeerStream;
use crate::tls::PeerTls;

/// How the quorum's connections are secured, as every election and Zab shell needs it.
#[derive(Clone)]
pub struct PeerSecurity {
    /// Quorum TLS's stores, when `sslQuorum` or `portUnification` is on.
    pub tls: Option<Arc<PeerTls>>,
    /// `sslQuorum`: connections this server opens are TLS.
    pub dial_tls: bool,
    /// `portUnification`: accepted connections may be TLS or plain (the first byte says);
    /// without it they are TLS exactly when `sslQuorum` is on.
    pub unified: bool,
    /// `quorum.auth.enableSasl`: SASL on every connection.
    pub sasl: Option<Arc<QuorumSaslConfig>>,
    /// `quorum.cnxn.threads.size`: accepted connections in their TLS or SASL handshake at
    /// once, each in its own thread; more are closed.
    pub handshake_threads: usize,
}

impl Default for PeerSecurity {
    fn default() -> PeerSecurity {
        PeerSecurity {
            tls: None,
            dial_tls: false,
            unified: false,
            sasl: None,
            handshake_threads: 20,
        }
    }
}

impl PeerSecurity {
    /// Whether accepted connections need a thread of their own for a blocking handshake.
    pub fn blocking_handshake(&self) -> bool {
        self.tls.is_some() || self.sasl.is_some()
    }

    /// A connection this server dialled to `host`: TLS with `sslQuorum`, else plain. The
    /// socket's timeouts bound the handshake.
    pub fn dial(&self, tcp: TcpStream, host: &str) -> io::Result<PeerStream> {
        match &self.tls {
            Some(tls) if self.dial_tls => tls.dial(tcp, host),
            _ => Ok(PeerStream::plain(tcp)),
        }
    }

    /// A connection this server accepted: TLS with `sslQuorum`, or with `portUnification`
    /// whichever the peer's first byte starts (a TLS record is 0x16; an election handshake
    /// or a Zab packet starts with a small or negative number), as Apache's
    /// UnifiedServerSocket. The socket's timeouts bound the wait and the handshake.
    pub fn accept(&self, tcp: TcpStream) -> io::Result<PeerStream> {
        let Some(tls) = &self.tls else { return Ok(PeerStream::plain(tcp)) };
        if !self.unified {
            return if self.dial_tls { tls.accept(tcp) } else { Ok(PeerStream::plain(tcp)) };
        }
        let mut first = [0u8; 1];
        if tcp.peek(&mut first)? == 1 && first[0] == TLS_HANDSHAKE_RECORD {
            tls.accept(tcp)
        } else {
            Ok(PeerStream::plain(tcp))
        }
    }

    /// The server's side of SASL on an accepted connection (nothing without quorum SASL):
    /// the stream to go on with, replaying what was read of an unauthenticated peer's
    /// first message.
    pub fn admit(
        &self,
        mut stream: PeerStream,
        peer: &str,
        deadline: Instant,
    ) -> Result<PeerStream, String> {
        let Some(sasl) = &self.sasl else { return Ok(stream) };
        match authenticate_server(sasl, &mut stream, peer, deadline)? {
            Admitted::Unauthenticated(first) => Ok(stream.with_replay(first)),
            Admitted::User(_) | Admitted::Failed => Ok(stream),
        }
    }

    /// The learner's side of SASL on a connection this server dialled (nothing without
    /// quorum SASL or `learnerRequireSasl`).
    pub fn login(
        &self,
        stream: &mut PeerStream,
        peer: &str,
        deadline: Instant,
    ) -> Result<(), String> {
        match &self.sasl {
            None => Ok(()),
            Some(sasl) => authenticate_learner(sasl, stream, peer, deadline),
        }
    }
}

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER` (`-0xa0dbcafecafe1234L`, a positive long on the
/// wire: Java's hex literal is negative before the minus).
pub const MAGIC: i64 = (0xa0db_cafe_cafe_1234_u64 as i64).wrapping_neg();
/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// Challenges a server sends before giving up (SaslQuorumAuthServer's `MAX_RETRIES`).
const SERVER_ROUNDS_MAX: usize = 5;
/// Packets a learner reads before giving up on a server that never finishes.
const LEARNER_ROUNDS_MAX: usize = 8;
/// The largest token accepted (DIGEST-MD5's are a few hundred bytes).
const TOKEN_MAX: usize = 64 * 1024;

/// `QuorumAuth.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The exchange goes on.
    InProgress,
    /// The server accepted the learner.
    Success,
    /// The server refused it.
    Error,
}

impl Status {
    fn code(self) -> i32 {
        match self {
            Status::InProgress => 0,
            Status::Success => 1,
            Status::Error => -1,
        }
    }

    fn from_code(code: i32) -> Status {
        match code {
            0 => Status::InProgress,
            1 => Status::Success,
            // Apache maps unknown codes to ERROR too.
            _ => Status::Error,
        }
    }
}

/// One `QuorumAuthPacket` as bytes.
pub fn encode(status: Status, token: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + token.map_or(0, <[u8]>::len));
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&status.code().to_be_bytes());
    match token {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(t) => {
            out.extend_from_slice(&(t.len() as i32).to_be_bytes());
            out.extend_from_slice(t);
        }
    }
    out
}

/// Reads the rest of a packet whose magic has been read: its status and token (a null
/// token reads as empty).
fn read_body(r: &mut impl Read) -> io::Result<(Status, Vec<u8>)> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let status = Status::from_code(i32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    let len = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if len < -1 || len as i64 > TOKEN_MAX as i64 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("token of {len} bytes")));
    }
    let mut token = vec![0u8; len.max(0) as usize];
    r.read_exact(&mut token)?;
    Ok((status, token))
}

/// Reads a whole packet; anything but the magic first is an error.
fn read_packet(r: &mut impl Read) -> io::Result<(Status, Vec<u8>)> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if i64::from_be_bytes(magic) != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a quorum auth packet"));
    }
    read_body(r)
}

fn past(deadline: Instant) -> Result<(), String> {
    if Instant::now() >= deadline {
        return Err("quorum SASL: no answer in time".into());
    }
    Ok(())
}

/// The learner's side, on a connection this server dialled to `peer` (for the log):
/// nothing at all unless `learnerRequireSasl`, else the exchange, which must end in SUCCESS.
pub fn authenticate_learner(
    sasl: &QuorumSaslConfig,
    stream: &mut (impl Read + Write),
    peer: &str,
    deadline: Instant,
) -> Result<(), String> {
    if !sasl.learner_require {
        return Ok(());
    }
    let cnonce = random_nonce();
    let mut client = DigestMd5Client::for_service(
        QUORUM_SERVICE,
        &sasl.learner_user,
        &sasl.learner_password,
        cnonce,
    );
    let io_err = |e: io::Error| format!("quorum SASL with {peer}: {e}");
    stream.write_all(&encode(Status::InProgress, Some(&client.initial()))).map_err(io_err)?;
    stream.flush().map_err(io_err)?;
    for _ in 0..LEARNER_ROUNDS_MAX {
        past(deadline)?;
        let (status, token) = read_packet(stream).map_err(io_err)?;
        match status {
            Status::Error => {
                return Err(format!("quorum SASL: authentication failed against {peer}"))
            }
            Status::Success => {
                let reply =
                    client.step(&token).map_err(|e| format!("quorum SASL with {peer}: {e}"))?;
                if reply.is_some() || !client.is_complete() {
                    return Err(format!("quorum SASL with {peer}: protocol error after SUCCESS"));
                }
                info!("quorum SASL: authenticated to {peer} as {}", sasl.learner_user);
                return Ok(());
            }
            Status::InProgress => {
                let reply =
                    client.step(&token).map_err(|e| format!("quorum SASL with {peer}: {e}"))?;
                let Some(reply) = reply else {
                    return Err(format!("quorum SASL with {peer}: complete without SUCCESS"));
                };
                stream.write_all(&encode(Status::InProgress, Some(&reply))).map_err(io_err)?;
                stream.flush().map_err(io_err)?;
            }
        }
    }
    Err(format!("quorum SASL with {peer}: no outcome after {LEARNER_ROUNDS_MAX} packets"))
}

/// What the server's side decided about an accepted connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    /// The peer authenticated as this user.
    User(String),
    /// The peer did not try (let in without `serverRequireSasl`); these first bytes of its
    /// first message were read and must be read again.
    Unauthenticated(Vec<u8>),
    /// Its exchange failed, and SASL is not required: let in (Apache keeps such a
    /// connection; the learner, which saw ERROR, closes it).
    Failed,
}

/// The server's side, on a connection accepted from `peer` (for the log).
pub fn authenticate_server(
    sasl: &QuorumSaslConfig,
    stream: &mut (impl Read + Write),
    peer: &str,
    deadline: Instant,
) -> Result<Admitted, String> {
    let mut first = [0u8; 8];
    stream.read_exact(&mut first).map_err(|e| format!("quorum SASL: {peer}: {e}"))?;
    if i64::from_be_bytes(first) != MAGIC {
        if sasl.server_require {
            return Err(format!(
                "quorum SASL: {peer} is not trying to authenticate and authentication is required"
            ));
        }
        return Ok(Admitted::Unauthenticated(first.to_vec()));
    }
    match serve(sasl, stream, deadline) {
        Ok(user) => {
            info!("quorum SASL: learner {peer} authenticated as {user}");
            Ok(Admitted::User(user))
        }
        Err(why) => {
            // Tell the learner; it may be gone already.
            let _ = stream.write_all(&encode(Status::Error, Some(&[])));
            let _ = stream.flush();
            if sasl.server_require {
                Err(format!("quorum SASL: learner {peer} refused: {why}"))
            } else {
                warn!("quorum SASL: learner {peer} failed to authenticate ({why}); let in, as quorum.auth.serverRequireSasl is false");
                Ok(Admitted::Failed)
            }
        }
    }
}

/// The exchange after the magic: challenges until the learner's response checks out.
fn serve(
    sasl: &QuorumSaslConfig,
    stream: &mut (impl Read + Write),
    deadline: Instant,
) -> Result<String, String> {
    let (_, mut token) = read_body(stream).map_err(|e| e.to_string())?;
    let mut server = DigestMd5::for_service(QUORUM_SERVICE, random_nonce());
    for _ in 0..SERVER_ROUNDS_MAX {
        match server.step(&token, &sasl.users).map_err(|e| e.to_string())? {
            Step::Complete { token, user } => {
                stream
                    .write_all(&encode(Status::Success, Some(&token)))
                    .map_err(|e| e.to_string())?;
                stream.flush().map_err(|e| e.to_string())?;
                return Ok(user);
            }
            Step::Challenge(challenge) => {
                stream
                    .write_all(&encode(Status::InProgress, Some(&challenge)))
                    .map_err(|e| e.to_string())?;
                stream.flush().map_err(|e| e.to_string())?;
                past(deadline)?;
                token = read_packet(stream).map_err(|e| e.to_string())?.1;
            }
        }
    }
    Err(format!("no outcome after {SERVER_ROUNDS_MAX} rounds"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn config(user: &str, password: &str, server_require: bool) -> QuorumSaslConfig {
        QuorumSaslConfig {
            learner_require: true,
            server_require,
            learner_user: user.into(),
            learner_password: password.into(),
            users: BTreeMap::from([("test".to_string(), "secret".to_string())]),
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        (a, b)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// Runs a learner with `learner` against a server with `server`; returns both outcomes.
    fn exchange(
        learner: QuorumSaslConfig,
        server: QuorumSaslConfig,
    ) -> (Result<(), String>, Result<Admitted, String>) {
        let (mut a, mut b) = pair();
        let t = std::thread::spawn(move || {
            let r = authenticate_learner(&learner, &mut a, "server", soon());
            drop(a);
            r
        });
        let s = authenticate_server(&server, &mut b, "learner", soon());
        drop(b);
        (t.join().unwrap(), s)
    }

    #[test]
    fn magic_and_packet_layout_match_apache() {
        // -0xa0dbcafecafe1234L in Java.
        assert_eq!(MAGIC.to_be_bytes(), [0x5f, 0x24, 0x35, 0x01, 0x35, 0x01, 0xed, 0xcc]);
        let p = encode(Status::Error, None);
        assert_eq!(&p[8..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let p = encode(Status::Success, Some(b"ab"));
        assert_eq!(&p[8..], &[0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(read_packet(&mut &p[..]).unwrap(), (Status::Success, b"ab".to_vec()));
        let huge = [&MAGIC.to_be_bytes()[..], &[0, 0, 0, 0, 0x7f, 0, 0, 0]].concat();
        assert!(read_packet(&mut &huge[..]).is_err());
    }

    #[test]
    fn right_password_succeeds_wrong_one_fails_on_both_sides() {
        let (l, s) = exchange(config("test", "secret", true), config("x", "y", true));
        assert_eq!(l, Ok(()));
        assert_eq!(s, Ok(Admitted::User("test".into())));

        let (l, s) = exchange(config("test", "wrong", true), config("x", "y", true));
        assert!(l.unwrap_err().contains("authentication failed"));
        assert!(s.unwrap_err().contains("refused"));

        // Not required by the server: the failure is the learner's to act on.
        let (l, s) = exchange(config("nobody", "secret", true), config("x", "y", false));
        assert!(l.is_err());
        assert_eq!(s, Ok(Admitted::Failed));
    }

    #[test]
    fn a_peer_that_does_not_authenticate_is_refused_or_replayed() {
        let (mut a, mut b) = pair();
        a.write_all(&[0, 0, 0, 11, 1, 2, 3, 4, 5]).unwrap();
        let lenient = config("x", "y", false);
        let got = authenticate_server(&lenient, &mut b, "learner", soon()).unwrap();
        assert_eq!(got, Admitted::Unauthenticated(vec![0, 0, 0, 11, 1, 2, 3, 4]));

        let (mut a, mut b) = pair();
        a.write_all(&[0, 0, 0, 11, 1, 2, 3, 4]).unwrap();
        let strict = config("x", "y", true);
        assert!(authenticate_server(&strict, &mut b, "learner", soon()).is_err());

        // A learner that does not require SASL sends nothing.
        let (mut a, _b) = pair();
        let mut off = config("x", "y", false);
        off.learner_require = false;
        assert_eq!(authenticate_learner(&off, &mut a, "server", soon()), Ok(()));
    }

    #[test]
    fn a_server_that_never_finishes_is_given_up_on() {
        let (mut a, mut b) = pair();
        let t = std::thread::spawn(move || {
            // Read the learner's packets and answer each with a fresh challenge-shaped token.
            let mut n = 0;
            while read_packet(&mut b).is_ok() && n < 20 {
                let token = format!("realm=\"r\",nonce=\"n{n}\",qop=\"auth\"");
                if b.write_all(&encode(Status::InProgress, Some(token.as_bytes()))).is_err() {
                    break;
                }
                n += 1;
            }
        });
        assert!(authenticate_learner(&config("test", "secret", true), &mut a, "s", soon()).is_err());
        drop(a);
        t.join().unwrap();
    }
}
