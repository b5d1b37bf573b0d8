//! The transport seam under a client connection: how bytes get to and from the peer. The
//! selector reads and writes only through [`Transport`]; the connection core never sees it.
//! Plain TCP is [`mio::net::TcpStream`] itself; [`TlsStream`] (crate::tls) is rustls over the same
//! non-blocking stream and registers the same source, so the selector, the core and the
//! pipeline stay as they are.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls_pki_types::CertificateDer;

pub use crate::tls::stream::TlsStream;

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

impl Transport for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TlsStream::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TlsStream::write_vectored(self, &[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        TlsStream::write_vectored(self, bufs)
    }

    fn pending_writes(&self) -> usize {
        usize::from(self.wants_write())
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        self.send_records()
    }

    fn source(&mut self) -> &mut TcpStream {
        self.socket()
    }

    fn shutdown(&mut self) {
        TlsStream::shutdown(self)
    }

    fn handshaking(&self) -> bool {
        TlsStream::handshaking(self)
    }

    fn take_handshake_done(&mut self) -> Option<Vec<CertificateDer<'static>>> {
        TlsStream::take_handshake_done(self)
    }
}
