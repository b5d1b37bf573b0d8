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
    /// Once, on a port-unification connection whose first byte arrived: whether it is TLS.
    /// Other transports: never.
    fn take_detected(&mut self) -> Option<bool> {
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

/// The first byte of every TLS connection: a handshake record (content type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A connection on a port with `client.portUnification`: plain TCP or TLS, decided by the
/// client's first byte (a TLS ClientHello record starts with 0x16; a ZooKeeper frame's length
/// starts with 0x00 and a four-letter word with a letter), as Apache's DualModeSslHandler
/// decides. The TLS session is made at accept and used only if the client starts one.
pub struct Unified {
    tls: TlsStream,
    mode: Mode,
    /// The decision, once, for the selector's counters.
    detected: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sniffing,
    Plain,
    Tls,
}

impl Unified {
    /// A connection whose first byte is not here yet.
    pub fn new(tls: TlsStream) -> Unified {
        Unified { tls, mode: Mode::Sniffing, detected: None }
    }

    /// Looks at the first byte without taking it; stays undecided until there is one.
    fn sniff(&mut self) -> io::Result<()> {
        if self.mode != Mode::Sniffing {
            return Ok(());
        }
        let mut first = [0u8; 1];
        if self.tls.socket().peek(&mut first)? == 0 {
            // End of stream before anything: a plain read reports it.
            return Ok(());
        }
        let tls = first[0] == TLS_HANDSHAKE_RECORD;
        self.mode = if tls { Mode::Tls } else { Mode::Plain };
        self.detected = Some(tls);
        Ok(())
    }

    /// Once, after the first byte arrived: whether the client speaks TLS.
    pub fn take_detected(&mut self) -> Option<bool> {
        self.detected.take()
    }
}

impl Transport for Unified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sniff()?;
        match self.mode {
            Mode::Tls => TlsStream::read(&mut self.tls, buf),
            Mode::Plain | Mode::Sniffing => Read::read(self.tls.socket(), buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self.mode {
            Mode::Tls => TlsStream::write_vectored(&mut self.tls, bufs),
            Mode::Plain | Mode::Sniffing => Write::write_vectored(self.tls.socket(), bufs),
        }
    }

    fn pending_writes(&self) -> usize {
        match self.mode {
            Mode::Tls => usize::from(self.tls.wants_write()),
            Mode::Plain | Mode::Sniffing => 0,
        }
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        match self.mode {
            Mode::Tls => self.tls.send_records(),
            Mode::Plain | Mode::Sniffing => Ok(()),
        }
    }

    fn source(&mut self) -> &mut TcpStream {
        self.tls.socket()
    }

    fn shutdown(&mut self) {
        match self.mode {
            Mode::Tls => TlsStream::shutdown(&mut self.tls),
            Mode::Plain | Mode::Sniffing => {
                let _ = TcpStream::shutdown(self.tls.socket(), std::net::Shutdown::Both);
            }
        }
    }

    fn handshaking(&self) -> bool {
        self.mode == Mode::Tls && self.tls.handshaking()
    }

    fn take_handshake_done(&mut self) -> Option<Vec<CertificateDer<'static>>> {
        match self.mode {
            Mode::Tls => self.tls.take_handshake_done(),
            Mode::Plain | Mode::Sniffing => None,
        }
    }

    fn take_detected(&mut self) -> Option<bool> {
        Unified::take_detected(self)
    }
}
