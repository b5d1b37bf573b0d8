//! rustls over a non-blocking mio TCP stream, for either end: the server's secure client
//! port (through its connection `Transport` seam) and the client library's send thread.
//! Reads decrypt what the socket holds, writes encrypt into records the socket takes as it
//! can; handshake messages are answered as they arrive.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use rustls_pki_types::CertificateDer;

/// TLS records buffered for the socket at most before [`TlsStream::write_vectored`] takes no
/// more plaintext: the caller's own output limit stays the one that counts.
const TLS_SEND_BUFFER_BYTES: usize = 256 * 1024;

/// A TLS session over a non-blocking stream.
pub struct TlsStream {
    stream: TcpStream,
    tls: Connection,
    handshake_reported: bool,
}

impl TlsStream {
    /// A server-side TLS session on an accepted stream.
    pub fn server(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream::wrap(stream, tls.into()))
    }

    /// A client-side TLS session to `name` (checked against the server's certificate
    /// unless the configuration's verifier says otherwise) on a connecting stream.
    pub fn client(
        stream: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsStream> {
        let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsStream::wrap(stream, tls.into()))
    }

    fn wrap(stream: TcpStream, mut tls: Connection) -> TlsStream {
        tls.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
        TlsStream { stream, tls, handshake_reported: false }
    }

    /// Sends buffered records until the socket takes no more.
    pub fn send_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn send_records_now(&mut self) -> io::Result<()> {
        match self.send_records() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Reads decrypted bytes (`Ok(0)`: the peer closed; `WouldBlock`: nothing yet).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // No plaintext buffered: take records from the socket.
            match self.tls.read_tls(&mut self.stream) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Send the alert rustls queued, then fail the connection.
                let _ = self.send_records();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages to answer go out at once.
            self.send_records_now()?;
        }
    }

    /// Encrypts what fits of `bufs` and sends what the socket takes (`WouldBlock` when
    /// nothing fits until records drain).
    pub fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.send_records_now()?;
        let n = self.tls.writer().write_vectored(bufs)?;
        self.send_records_now()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Whether encrypted records wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// The socket.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends close_notify and shuts the socket down.
    pub fn shutdown(&mut self) {
        self.tls.send_close_notify();
        let _ = self.send_records();
        let _ = TcpStream::shutdown(&self.stream, std::net::Shutdown::Both);
    }

    /// Whether the handshake is still under way.
    pub fn handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Once, right after the handshake completed: the peer's certificate chain (empty when
    /// it sent none).
    pub fn take_handshake_done(&mut self) -> Option<Vec<CertificateDer<'static>>> {
        if self.handshake_reported || self.tls.is_handshaking() {
            return None;
        }
        self.handshake_reported = true;
        let chain = self.tls.peer_certificates().unwrap_or_default();
        Some(chain.iter().map(|c| c.clone().into_owned()).collect())
    }
}
