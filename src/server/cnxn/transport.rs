//! The transport seam under a client connection: how bytes get to and from the peer. The
//! selector reads and writes only through [`Transport`]; the connection core never sees it.
//! Plain TCP is [`mio::net::TcpStream`] itself; [`TlsStream`] is rustls over the same
//! non-blocking stream and registers the same source, so the selector, the core and the
//! pipeline stay as they are.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::CertificateDer;

/// TLS records buffered for the socket at most before [`Transport::write`] takes no more
/// plaintext: the connection's own output limit stays the one that counts.
const TLS_SEND_BUFFER_BYTES: usize = 256 * 1024;

/// A non-blocking byte stream to one client, registered with the selector's `Poll`.
pub trait Transport: Send {
    /// Reads what is available (`Ok(0)` is end of stream; `WouldBlock` means nothing now).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what fits (`WouldBlock` means the peer's window is full).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Writes what fits of several buffers in order, in one call where the transport can.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.write(b),
            None => Ok(0),
        }
    }
    /// Bytes the transport itself still has to send (TLS records), beyond what the core
    /// queued: the selector keeps write interest while this is non-zero.
    fn pending_writes(&self) -> usize {
        0
    }
    /// Sends what [`Transport::pending_writes`] holds.
    fn flush_pending(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The registered socket.
    fn source(&mut self) -> &mut TcpStream;
    /// Shuts both directions down (the peer sees the close).
    fn shutdown(&mut self) {
        let _ = TcpStream::shutdown(self.source(), std::net::Shutdown::Both);
    }
    /// Whether a TLS handshake is still under way (plain TCP: never).
    fn handshaking(&self) -> bool {
        false
    }
    /// Once, right after a TLS handshake completed: the client's certificate chain (empty
    /// when it sent none). Plain TCP: never.
    fn take_handshake_done(&mut self) -> Option<Vec<CertificateDer<'static>>> {
        None
    }
}

impl Transport for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(self, bufs)
    }

    fn source(&mut self) -> &mut TcpStream {
        self
    }
}

/// rustls over a non-blocking TCP stream: reads decrypt what the socket holds, writes
/// encrypt into records the socket takes as it can.
pub struct TlsStream {
    stream: TcpStream,
    tls: ServerConnection,
    handshake_reported: bool,
}

impl TlsStream {
    /// A server-side TLS session on an accepted stream.
    pub fn new(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
        Ok(TlsStream { stream, tls, handshake_reported: false })
    }

    /// Sends buffered records until the socket takes no more.
    fn send_records(&mut self) -> io::Result<()> {
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
}

impl Transport for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.send_records_now()?;
        let n = self.tls.writer().write_vectored(bufs)?;
        self.send_records_now()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn pending_writes(&self) -> usize {
        usize::from(self.tls.wants_write())
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        self.send_records()
    }

    fn source(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn shutdown(&mut self) {
        self.tls.send_close_notify();
        let _ = self.send_records();
        let _ = TcpStream::shutdown(&self.stream, std::net::Shutdown::Both);
    }

    fn handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    fn take_handshake_done(&mut self) -> Option<Vec<CertificateDer<'static>>> {
        if self.handshake_reported || self.tls.is_handshaking() {
            return None;
        }
        self.handshake_reported = true;
        let chain = self.tls.peer_certificates().unwrap_or_default();
        Some(chain.iter().map(|c| c.clone().into_owned()).collect())
    }
}
