//! Blocking TLS for quorum connections (`sslQuorum`): a [`PeerStream`] is plain TCP or rustls
//! over it, and clones into the reader and writer halves that the election and Zab threads
//! own, as `TcpStream::try_clone` does for plain sockets.
//!
//! The halves share one rustls session. Lock order: the socket's write lock, then the
//! session. A reader never holds the session while it waits on the socket, and a writer
//! never holds it while the socket takes bytes, so a full send buffer cannot stall the
//! reader (two peers writing to each other at once still both make progress). Records are
//! taken out of the session and written under the write lock, so they reach the socket in
//! the order the session produced them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use rustls_pki_types::CertificateDer;

/// Socket bytes read per call.
const READ_CHUNK: usize = 16 * 1024;

struct Session {
    tls: Connection,
    /// Bytes read from the socket that the session has not taken yet.
    unread: Vec<u8>,
}

struct Shared {
    session: Mutex<Session>,
    /// The socket, for writing; held while records go out.
    writer: Mutex<TcpStream>,
}

/// A quorum connection: plain TCP or TLS.
pub struct PeerStream {
    tcp: TcpStream,
    tls: Option<Arc<Shared>>,
    /// Bytes read ahead (by a handshake that peeked) that this handle reads first.
    replay: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl PeerStream {
    /// Plain TCP.
    pub fn plain(tcp: TcpStream) -> PeerStream {
        PeerStream { tcp, tls: None, replay: Vec::new() }
    }

    /// TLS as the side that dialled: the handshake runs now, within the socket's timeouts.
    pub fn client(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<PeerStream> {
        let tls = ClientConnection::new(config, name).map_err(tls_error)?;
        PeerStream::handshake(tcp, tls.into())
    }

    /// TLS as the side that accepted: the handshake runs now, within the socket's timeouts.
    pub fn server(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<PeerStream> {
        let tls = ServerConnection::new(config).map_err(tls_error)?;
        PeerStream::handshake(tcp, tls.into())
    }

    fn handshake(mut tcp: TcpStream, mut tls: Connection) -> io::Result<PeerStream> {
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        while tls.wants_write() {
            tls.write_tls(&mut tcp)?;
        }
        // Writes are encrypted and sent at once: no limit on what one write may buffer.
        tls.set_buffer_limit(None);
        let writer = Mutex::new(tcp.try_clone()?);
        let session = Mutex::new(Session { tls, unread: Vec::new() });
        let tls = Some(Arc::new(Shared { session, writer }));
        Ok(PeerStream { tcp, tls, replay: Vec::new() })
    }

    /// Another handle on the same connection (and TLS session); bytes to replay stay with
    /// this handle.
    pub fn try_clone(&self) -> io::Result<PeerStream> {
        Ok(PeerStream { tcp: self.tcp.try_clone()?, tls: self.tls.clone(), replay: Vec::new() })
    }

    /// This handle, reading `bytes` (already read from the connection) before the rest.
    pub fn with_replay(mut self, mut bytes: Vec<u8>) -> PeerStream {
        bytes.append(&mut self.replay);
        self.replay = bytes;
        self
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The peer's certificate chain (TLS only).
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        let shared = self.tls.as_ref()?;
        let session = lock(&shared.session);
        let chain = session.tls.peer_certificates()?;
        Some(chain.iter().map(|c| c.clone().into_owned()).collect())
    }

    /// Shuts the socket down (both halves see it).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp.shutdown(how)
    }

    /// As `TcpStream::set_read_timeout`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(t)
    }

    /// As `TcpStream::set_write_timeout`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(t)
    }

    /// As `TcpStream::set_nodelay`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp.set_nodelay(on)
    }

    /// As `TcpStream::peer_addr`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }

    /// The socket under the stream.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Takes the session's pending records and writes them, in order.
    fn send_records(shared: &Shared, plaintext: Option<&[u8]>) -> io::Result<()> {
        let mut socket = lock(&shared.writer);
        let mut records = Vec::new();
        {
            let mut session = lock(&shared.session);
            if let Some(data) = plaintext {
                session.tls.writer().write_all(data)?;
            }
            while session.tls.wants_write() {
                session.tls.write_tls(&mut records)?;
            }
        }
        socket.write_all(&records)
    }
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.replay.is_empty() {
            let n = buf.len().min(self.replay.len());
            buf[..n].copy_from_slice(&self.replay[..n]);
            self.replay.drain(..n);
            return Ok(n);
        }
        let Some(shared) = self.tls.clone() else { return self.tcp.read(buf) };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let reply = {
                let mut session = lock(&shared.session);
                match session.tls.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                // Feed what was read before; the session may take only part of it.
                if !session.unread.is_empty() {
                    let Session { tls, unread } = &mut *session;
                    let mut rest: &[u8] = unread;
                    let taken = tls.read_tls(&mut rest)?;
                    unread.drain(..taken);
                    tls.process_new_packets().map_err(tls_error)?;
                    Some(tls.wants_write())
                } else {
                    None
                }
            };
            match reply {
                Some(true) => PeerStream::send_records(&shared, None)?,
                Some(false) => {}
                None => {
                    let mut chunk = [0u8; READ_CHUNK];
                    let n = self.tcp.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(0);
                    }
                    lock(&shared.session).unread.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.tls {
            None => self.tcp.write(buf),
            Some(shared) => {
                PeerStream::send_records(shared, Some(buf))?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Both halves of each end in their own threads, both sides writing at once far more
    /// than the socket buffers hold: everything arrives, in order.
    #[test]
    fn halves_stream_both_ways_at_once() {
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ca.cert.der().clone();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(
            rustls_pki_types::PrivatePkcs8KeyDer::from(ca.key_pair.serialize_der()),
        );
        let server_cfg = Arc::new(
            ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key)
                .unwrap(),
        );
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_cfg =
            Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const BYTES: usize = 8 << 20;
        let pump = |s: PeerStream| {
            let mut w = s.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let data: Vec<u8> = (0..BYTES).map(|i| (i % 251) as u8).collect();
                for chunk in data.chunks(100_000) {
                    w.write_all(chunk).unwrap();
                }
            });
            let mut r = s;
            let mut got = vec![0u8; BYTES];
            r.read_exact(&mut got).unwrap();
            assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
            writer.join().unwrap();
        };
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            pump(PeerStream::server(tcp, server_cfg).unwrap());
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = PeerStream::client(tcp, client_cfg, name).unwrap();
        assert!(client.is_tls());
        pump(client);
        server.join().unwrap();
    }
}
