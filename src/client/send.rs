//! The send thread [ClientCnxn.SendThread]: the I/O shell around [`ClientCore`].
//!
//! One thread, one mio `Poll` with two tokens: the socket and a `Waker` that other threads
//! ring after queueing a [`Command`]. The loop is short: run the core's timers, carry out its
//! [`Action`]s (connect to the next address, disconnect, hand items to the event thread,
//! probe for a read-write server, publish state), write its output, sleep in `poll` until
//! the core's next deadline, feed it socket bytes and commands. No protocol logic lives here.
//!
//! Never blocks except in `poll`, name resolution when connecting, and the short `isro` probe
//! while on a read-only server; never runs application code except completions of blocking
//! calls made from the event thread.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::core::{Action, ClientCore, CoreConfig, Packet};
use super::event::EventItem;
use super::hosts::HostList;
use super::Shared;
use crate::tls::stream::TlsStream;

/// Token of the waker.
pub(crate) const WAKER: Token = Token(0);
const SOCKET: Token = Token(1);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// What other threads ask of the send thread.
pub(crate) enum Command {
    /// Queue a request.
    Submit(Packet),
    /// Remember an auth pair and send it now (and after every reconnect).
    AddAuth { scheme: String, auth: Vec<u8> },
    /// Close the session; `done` is dropped once the client is closed.
    Close { done: Sender<()> },
}

/// The connection's byte stream: plain TCP, or TLS over it (`zookeeper.client.secure`).
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.socket(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write_vectored(&[io::IoSlice::new(buf)]),
        }
    }

    /// Sends TLS records still buffered (handshake messages, encrypted output).
    fn send_records(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(t) => match t.send_records() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                other => other,
            },
        }
    }
}

struct Socket {
    stream: Stream,
    addr: SocketAddr,
    connected: bool,
    wbuf: Vec<u8>,
    wpos: usize,
}

/// The send thread's state: the core plus the I/O it cannot do itself.
pub(crate) struct SendThread {
    core: ClientCore,
    poll: Poll,
    commands: Receiver<Command>,
    events: Sender<EventItem>,
    shared: Arc<Shared>,
    hosts: HostList,
    /// Addresses of `host` still to try.
    addrs: VecDeque<SocketAddr>,
    host: String,
    preferred: Option<(String, SocketAddr)>,
    /// TLS for every connection, when the client is secure.
    tls: Option<Arc<rustls::ClientConfig>>,
    socket: Option<Socket>,
    close_waiters: Vec<Sender<()>>,
    /// Read buffer, reused across reads.
    chunk: Vec<u8>,
}

impl SendThread {
    pub(crate) fn new(
        poll: Poll,
        commands: Receiver<Command>,
        events: Sender<EventItem>,
        shared: Arc<Shared>,
        hosts: HostList,
        cfg: CoreConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> SendThread {
        SendThread {
            core: ClientCore::new(cfg, Instant::now()),
            poll,
            commands,
            events,
            shared,
            hosts,
            addrs: VecDeque::new(),
            host: String::new(),
            preferred: None,
            tls,
            socket: None,
            close_waiters: Vec::new(),
            chunk: vec![0; READ_CHUNK],
        }
    }

    /// The thread body: runs until the client is closed, expired or fails authentication.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(16);
        while !self.core.is_finished() {
            let now = Instant::now();
            self.core.handle_timeout(now);
            self.step();
            if self.core.is_finished() {
                break;
            }
            let wait = self.core.poll_timeout(now).saturating_duration_since(Instant::now());
            let wait = wait.max(Duration::from_millis(1));
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("client: poll failed: {e}");
                    self.core.close(Instant::now());
                    self.core.connection_lost("poll failed", Instant::now());
                    self.step();
                    break;
                }
            }
            if events.iter().any(|ev| ev.token() == SOCKET) {
                self.service_socket();
            }
            self.drain_commands();
            self.step();
        }
        // Anything submitted after the end fails with the final error.
        while let Ok(cmd) = self.commands.try_recv() {
            if let Command::Submit(p) = cmd {
                self.core.submit(p, Instant::now());
            }
        }
        self.step();
        self.close_waiters.clear();
        let _ = self.events.send(EventItem::Stop);
    }

    /// Carries out the core's actions and writes its output, until it has nothing more.
    fn step(&mut self) {
        loop {
            while let Some(action) = self.core.poll_action() {
                self.act(action);
            }
            if !self.flush() {
                break;
            }
        }
        if self.core.is_finished() {
            self.close_waiters.clear();
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Connect => self.connect(),
            Action::Disconnect => {
                if let Some(mut s) = self.socket.take() {
                    let _ = self.poll.registry().deregister(s.stream.tcp());
                }
            }
            Action::Deliver(item) => {
                let _ = self.events.send(item);
            }
            Action::RunHere(f, result) => f(result),
            Action::ProbeReadWrite => self.probe_read_write_server(),
            Action::Publish => {
                let core = &self.core;
                self.shared.update(|s| {
                    s.state = core.state();
                    s.session_id = core.session_id();
                    s.passwd = core.passwd().to_vec();
                    s.negotiated = core.negotiated();
                });
            }
        }
    }

    fn connect(&mut self) {
        let now = Instant::now();
        let addr = match self.preferred.take() {
            Some((host, a)) => {
                self.host = host;
                self.addrs.clear();
                Some(a)
            }
            None => {
                if self.addrs.is_empty() {
                    let (host, addrs) = self.hosts.next_host_addrs();
                    self.host = host;
                    self.addrs = addrs.into();
                }
                self.addrs.pop_front()
            }
        };
        let Some(addr) = addr else {
            self.core.connection_lost("no address for the host", now);
            return;
        };
        log::debug!("client: connecting to {addr}");
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                self.core.connection_lost(&format!("connect to {addr} failed: {e}"), now);
                return;
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, SOCKET, interest) {
            self.core.connection_lost(&format!("cannot register socket: {e}"), now);
            return;
        }
        let stream = match &self.tls {
            None => Stream::Plain(stream),
            Some(config) => {
                let tls = crate::tls::server_name(&self.host)
                    .and_then(|name| {
                        TlsStream::client(stream, config.clone(), name).map_err(|e| e.to_string())
                    })
                    .map(Box::new);
                match tls {
                    Ok(t) => Stream::Tls(t),
                    Err(e) => {
                        self.core.connection_lost(&format!("TLS to {addr}: {e}"), now);
                        return;
                    }
                }
            }
        };
        self.socket = Some(Socket { stream, addr, connected: false, wbuf: Vec::new(), wpos: 0 });
    }

    fn service_socket(&mut self) {
        let Some(s) = self.socket.as_mut() else { return };
        if !s.connected {
            let failed = match s.stream.tcp().take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                Ok(None) => match s.stream.tcp().peer_addr() {
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Some(e),
                },
            };
            if let Some(e) = failed {
                let msg = format!("connect to {} failed: {e}", s.addr);
                self.core.connection_lost(&msg, Instant::now());
                return;
            }
            s.connected = true;
            let _ = s.stream.tcp().set_nodelay(true);
            log::info!("client: socket connected to {}", s.addr);
            self.core.tcp_connected(Instant::now());
            self.step();
        }
        loop {
            let Some(s) = self.socket.as_mut() else { return };
            match s.stream.read(&mut self.chunk) {
                Ok(0) => {
                    self.core.connection_lost("server closed the connection", Instant::now());
                    return;
                }
                Ok(n) => {
                    self.core.handle_input(&self.chunk[..n], Instant::now());
                    let zxid = self.core.last_zxid();
                    self.shared.last_zxid.store(zxid, Ordering::Relaxed);
                    self.step();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = if e.kind() == io::ErrorKind::InvalidData { "TLS" } else { "read" };
                    let msg = format!("{what} failed with {}: {e}", s.addr);
                    self.core.connection_lost(&msg, Instant::now());
                    return;
                }
            }
        }
    }

    /// Writes what the core produced; returns whether the core has new actions (after a
    /// write error).
    fn flush(&mut self) -> bool {
        let Some(s) = self.socket.as_mut() else {
            let mut discard = Vec::new();
            self.core.take_output(&mut discard);
            return false;
        };
        if !s.connected {
            return false;
        }
        self.core.take_output(&mut s.wbuf);
        let mut failed = None;
        if let Err(e) = s.stream.send_records() {
            failed = Some(format!("write failed: {e}"));
        }
        while failed.is_none() && s.wpos < s.wbuf.len() {
            match s.stream.write(&s.wbuf[s.wpos..]) {
                Ok(0) => {
                    failed = Some("write returned 0".to_owned());
                    break;
                }
                Ok(n) => s.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failed = Some(format!("write failed: {e}"));
                    break;
                }
            }
        }
        if s.wpos == s.wbuf.len() {
            s.wbuf.clear();
            s.wpos = 0;
        } else if s.wpos > 1 << 20 {
            s.wbuf.drain(..s.wpos);
            s.wpos = 0;
        }
        match failed {
            Some(reason) => {
                self.core.connection_lost(&reason, Instant::now());
                true
            }
            None => false,
        }
    }

    fn drain_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            let now = Instant::now();
            match cmd {
                Command::Submit(p) => self.core.submit(p, now),
                Command::AddAuth { scheme, auth } => self.core.add_auth(scheme, auth, now),
                Command::Close { done } => {
                    self.close_waiters.push(done);
                    self.core.close(now);
                }
            }
        }
    }

    /// While on a read-only server, asks another host whether it is read-write ("isro"
    /// four-letter word) and switches to it if so [ClientCnxn.pingRwServer].
    fn probe_read_write_server(&mut self) {
        let current = self.socket.as_ref().map(|s| s.addr);
        let (host, addrs) = self.hosts.next_host_addrs();
        let Some(addr) = addrs.into_iter().next() else { return };
        if Some(addr) == current {
            return;
        }
        if probe_isro(addr).as_deref() == Some("rw") {
            log::info!("client: read-write server found at {addr}");
            self.preferred = Some((host, addr));
            self.core.found_read_write_server(Instant::now());
        }
    }
}

fn probe_isro(addr: SocketAddr) -> Option<String> {
    let timeout = Duration::from_secs(1);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"isro").ok()?;
    let mut out = String::new();
    s.take(16).read_to_string(&mut out).ok()?;
    Some(out.trim().to_owned())
}
