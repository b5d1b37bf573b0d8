//! The election channel: one TCP connection per peer, the handshake and the "larger sid keeps
//! the connection" rule, and a send worker and a receive worker per connection
//! (quorum-protocol.md §2; ZooKeeper's `QuorumCnxManager`).
//!
//! Threads: the listener (one mio loop reading every incoming handshake without blocking, each
//! within `cnx_timeout` of its accept, at most `limits::ELECTION_HANDSHAKES_MAX` at once; with
//! quorum TLS or SASL each accepted connection's handshake runs in a thread of its own
//! instead, at most `quorum.cnxn.threads.size` at once, as Apache's pool), a connector thread
//! per outgoing attempt, and per live connection a sender and a receiver. They share the peer
//! table behind one mutex, never held across I/O. Blocking sockets, as Apache's; the election
//! port carries a handful of peers.
//!
//! Security (see [`super::auth`]): with `sslQuorum` every connection is TLS from its first
//! byte; with quorum SASL the dialler authenticates right after its handshake and the
//! acceptor checks it before the tie-break, as `initiateConnection`/`handleConnection` do.
//!
//! Not yet: observers without an id (`OBSERVER_ID`, given fresh negative ids by Apache)
//! and multi-address reachability checks.
//!
//! Invariants:
//! - between two servers, only a connection opened by the larger sid is kept (§2.2): an
//!   initiator with the smaller sid closes after its handshake; an acceptor facing a smaller
//!   sid closes and connects back itself;
//! - each peer has a send queue of capacity one: a new message replaces an unsent one, since
//!   only the latest vote matters; a fresh connection with an empty queue resends the last
//!   message sent to that peer (§2.3);
//! - a message to myself never touches the network;
//! - frames are `int length` + payload with `0 < length <= 524288`; anything else, a bad
//!   handshake, or any I/O error closes that connection only.
//!
//! No protocol logic: bytes in, bytes out. The election thread decodes with
//! [`super::wire::Notification::decode`].

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};

use crate::config::HostPort;
use crate::limits::{self, ELECTION_INITIAL_ADDRESS_MAX_BYTES, ELECTION_MESSAGE_MAX_BYTES};
use crate::proto::ServerId;
use crate::quorum::auth::PeerSecurity;
use crate::quorum::wire::{decode_initial, encode_initial, InitialMessage};
use crate::tls::duplex::PeerStream;

/// How often idle workers look at the shutdown flag and their connection's generation.
const WORKER_POLL: Duration = Duration::from_millis(100);
/// How long the listener stops accepting after an accept error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often the listener logs a rejected connection at warn at most (the rest at debug).
const COMPLAINT_EVERY: Duration = Duration::from_secs(10);

/// A message received from a peer: its sid and the frame payload.
pub type Received = (ServerId, Vec<u8>);

/// The election connection manager of one server.
#[derive(Clone)]
pub struct CnxManager {
    shared: Arc<Shared>,
}

struct Shared {
    my_id: ServerId,
    my_addresses: Vec<HostPort>,
    peers: BTreeMap<ServerId, HostPort>,
    cnx_timeout: Duration,
    table: Mutex<BTreeMap<ServerId, Slot>>,
    received: Sender<Received>,
    generation: AtomicU64,
    halted: AtomicBool,
    /// Quorum TLS and SASL.
    security: PeerSecurity,
    /// TLS or SASL handshakes of accepted connections under way (each in its own thread).
    handshakes: AtomicUsize,
}

/// One peer: its queue of one and the connection currently in use, if any.
struct Slot {
    queue_tx: Sender<Vec<u8>>,
    queue_rx: Receiver<Vec<u8>>,
    last_sent: Option<Vec<u8>>,
    connection: Option<(u64, PeerStream)>,
    connecting: bool,
}

impl CnxManager {
    /// A manager for server `my_id`, announcing `my_addresses` in its handshakes, knowing the
    /// election address of every other voter and observer in `peers`. Returns the manager
    /// and the receiving end of every message from peers (and from myself).
    pub fn new(
        my_id: ServerId,
        my_addresses: Vec<HostPort>,
        peers: BTreeMap<ServerId, HostPort>,
        cnx_timeout: Duration,
        security: PeerSecurity,
    ) -> (CnxManager, Receiver<Received>) {
        let (received, receiver) = unbounded();
        let shared = Shared {
            my_id,
            my_addresses,
            peers,
            cnx_timeout,
            table: Mutex::new(BTreeMap::new()),
            received,
            generation: AtomicU64::new(0),
            halted: AtomicBool::new(false),
            security,
            handshakes: AtomicUsize::new(0),
        };
        (CnxManager { shared: Arc::new(shared) }, receiver)
    }

    /// Accepts election connections on `listener` in a new thread until [`CnxManager::halt`]:
    /// one mio loop reads every incoming handshake without blocking, each within
    /// `cnx_timeout` of its accept (however slowly its bytes arrive), at most
    /// [`limits::ELECTION_HANDSHAKES_MAX`] at a time; accept errors (EMFILE) back off.
    pub fn listen(&self, listener: TcpListener) -> io::Result<thread::JoinHandle<()>> {
        listener.set_nonblocking(true)?;
        let listener = mio::net::TcpListener::from_std(listener);
        let shared = Arc::clone(&self.shared);
        thread::Builder::new().name(format!("election-listener-{}", shared.my_id)).spawn(
            move || {
                if let Err(e) = Shared::listen_loop(&shared, listener) {
                    log::error!("election listener failed: {e}");
                }
            },
        )
    }

    /// Queues `message` for `to`, replacing an unsent one, and connects if needed. A message to
    /// myself goes straight to the receive channel.
    pub fn send(&self, to: ServerId, message: Vec<u8>) {
        let shared = &self.shared;
        if to == shared.my_id {
            let _ = shared.received.send((to, message));
            return;
        }
        let mut table = shared.lock();
        let slot = table.entry(to).or_insert_with(Slot::new);
        if let Err(full) = slot.queue_tx.try_send(message) {
            // The queue holds one unsent message: the newer one replaces it.
            let _older = slot.queue_rx.try_recv();
            let _ = slot.queue_tx.try_send(full.into_inner());
            debug!("sid {to}: unsent message replaced by a newer one");
        }
        drop(table);
        Shared::connect_if_needed(&self.shared, to);
    }

    /// Whether a connection to `sid` is up.
    pub fn is_connected(&self, sid: ServerId) -> bool {
        self.shared.lock().get(&sid).is_some_and(|s| s.connection.is_some())
    }

    /// Closes every connection and stops the threads.
    pub fn halt(&self) {
        self.shared.halted.store(true, Ordering::Relaxed);
        for slot in self.shared.lock().values_mut() {
            if let Some((_, stream)) = slot.connection.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Slot {
    fn new() -> Slot {
        let (queue_tx, queue_rx) = bounded(1);
        Slot { queue_tx, queue_rx, last_sent: None, connection: None, connecting: false }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<ServerId, Slot>> {
        self.table.lock().expect("no thread panics while holding the peer table")
    }

    fn connect_if_needed(shared: &Arc<Shared>, to: ServerId) {
        let Some(address) = shared.peers.get(&to).cloned() else {
            warn!("sid {to} is not in the configuration: message dropped");
            return;
        };
        Shared::connect_to(shared, to, address);
    }

    fn connect_to(shared: &Arc<Shared>, to: ServerId, address: HostPort) {
        {
            let mut table = shared.lock();
            let slot = table.entry(to).or_insert_with(Slot::new);
            if slot.connection.is_some() || slot.connecting || shared.halted.load(Ordering::Relaxed)
            {
                return;
            }
            slot.connecting = true;
        }
        let shared = Arc::clone(shared);
        thread::spawn(move || {
            let result = Shared::initiate(&shared, to, &address);
            if let Some(slot) = shared.lock().get_mut(&to) {
                slot.connecting = false;
            }
            if let Err(e) = result {
                debug!("sid {to}: cannot connect to {address}: {e}");
            }
        });
    }

    /// Connects, sends the handshake, and keeps the socket only if my sid is the larger.
    fn initiate(shared: &Arc<Shared>, to: ServerId, address: &HostPort) -> io::Result<()> {
        let target = resolve(address)?;
        let tcp = TcpStream::connect_timeout(&target, shared.cnx_timeout)?;
        tcp.set_nodelay(true)?;
        let mut stream = if shared.security.dial_tls {
            tcp.set_read_timeout(Some(shared.cnx_timeout))?;
            tcp.set_write_timeout(Some(shared.cnx_timeout))?;
            let stream = shared.security.dial(tcp, &address.host).map_err(|e| {
                warn!("sid {to}: quorum TLS handshake with {target} failed: {e}");
                e
            })?;
            stream.set_write_timeout(None)?;
            stream
        } else {
            PeerStream::plain(tcp)
        };
        stream.write_all(&encode_initial(shared.my_id, &shared.my_addresses))?;
        if shared.security.sasl.is_some() {
            stream.set_read_timeout(Some(shared.cnx_timeout))?;
            let deadline = Instant::now() + shared.cnx_timeout;
            let peer = format!("sid {to} at {target}");
            shared.security.login(&mut stream, &peer, deadline).map_err(|e| {
                warn!("election connection to {peer} closed: {e}");
                io::Error::new(io::ErrorKind::PermissionDenied, e)
            })?;
        }
        if to > shared.my_id {
            // The larger sid keeps the connection; it will connect to me.
            debug!("sid {to} is larger: closing my connection, it connects back");
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Shared::start_workers(shared, to, stream)
    }

    /// The election listener's loop (see [`CnxManager::listen`]).
    fn listen_loop(shared: &Arc<Shared>, mut listener: mio::net::TcpListener) -> io::Result<()> {
        const LISTENER: mio::Token = mio::Token(usize::MAX);
        let mut poll = mio::Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, mio::Interest::READABLE)?;
        let mut events = mio::Events::with_capacity(256);
        let mut pending: slab::Slab<Handshaking> = slab::Slab::new();
        let mut accept_paused_until: Option<Instant> = None;
        let mut last_complaint: Option<Instant> = None;
        let mut complain = |what: String| {
            let now = Instant::now();
            if last_complaint.is_none_or(|t| now - t >= COMPLAINT_EVERY) {
                warn!("{what}");
                last_complaint = Some(now);
            } else {
                debug!("{what}");
            }
        };
        while !shared.halted.load(Ordering::Relaxed) {
            let now = Instant::now();
            let next = pending.iter().map(|(_, h)| h.deadline).chain(accept_paused_until).min();
            let wait = next.map_or(WORKER_POLL, |t| t.saturating_duration_since(now));
            if let Err(e) = poll.poll(&mut events, Some(wait.min(WORKER_POLL))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let mut accept_now = events.iter().any(|e| e.token() == LISTENER);
            if accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                accept_paused_until = None;
                accept_now = true;
            }
            for key in events.iter().map(|e| e.token().0).filter(|&t| t != LISTENER.0) {
                let Some(h) = pending.get_mut(key) else { continue };
                match h.read() {
                    Ok(None) => {}
                    Ok(Some(message)) => {
                        let mut h = pending.remove(key);
                        let _ = poll.registry().deregister(&mut h.stream);
                        let from = h.from;
                        match into_blocking(h.stream) {
                            Ok(stream) => Shared::handshake_done(
                                shared,
                                PeerStream::plain(stream),
                                from,
                                message,
                            ),
                            Err(e) => warn!("election connection from {from}: {e}"),
                        }
                    }
                    Err(e) => {
                        let mut h = pending.remove(key);
                        let _ = poll.registry().deregister(&mut h.stream);
                        complain(format!("election connection from {} rejected: {e}", h.from));
                    }
                }
            }
            let now = Instant::now();
            let late: Vec<usize> =
                pending.iter().filter(|(_, h)| h.deadline <= now).map(|(k, _)| k).collect();
            for key in late {
                let mut h = pending.remove(key);
                let _ = poll.registry().deregister(&mut h.stream);
                complain(format!(
                    "election connection from {} rejected: no handshake within {:?}",
                    h.from, shared.cnx_timeout
                ));
            }
            while accept_now && accept_paused_until.is_none() {
                match listener.accept() {
                    Ok((stream, from)) if shared.security.blocking_handshake() => {
                        Shared::accept_blocking(shared, stream, from, &mut complain);
                    }
                    Ok((mut stream, from)) => {
                        if pending.len() >= limits::ELECTION_HANDSHAKES_MAX {
                            complain(format!(
                                "election connection from {from} refused: {} handshakes pending",
                                pending.len()
                            ));
                            continue;
                        }
                        let entry = pending.vacant_entry();
                        let token = mio::Token(entry.key());
                        poll.registry().register(&mut stream, token, mio::Interest::READABLE)?;
                        let deadline = Instant::now() + shared.cnx_timeout;
                        entry.insert(Handshaking { stream, from, buf: Vec::new(), deadline });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        complain(format!("election listener accept failed: {e}; backing off"));
                        accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    }
                }
            }
        }
        Ok(())
    }

    /// With quorum TLS or SASL: the TLS handshake, the election handshake and the SASL
    /// exchange of an accepted connection run in their own thread, within `cnx_timeout`, at
    /// most `quorum.cnxn.threads.size` at a time.
    fn accept_blocking(
        shared: &Arc<Shared>,
        stream: mio::net::TcpStream,
        from: SocketAddr,
        complain: &mut impl FnMut(String),
    ) {
        let limit = shared.security.handshake_threads;
        let busy = shared.handshakes.fetch_add(1, Ordering::SeqCst);
        if busy >= limit {
            shared.handshakes.fetch_sub(1, Ordering::SeqCst);
            complain(format!("election connection from {from} refused: {busy} handshakes pending"));
            return;
        }
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new().name("election-handshake".into()).spawn({
            let shared = Arc::clone(&shared);
            move || {
                let outcome = Shared::secure_handshake(&shared, stream, from);
                shared.handshakes.fetch_sub(1, Ordering::SeqCst);
                match outcome {
                    Ok((stream, message)) => Shared::handshake_done(&shared, stream, from, message),
                    Err(e) => warn!("election connection from {from} rejected: {e}"),
                }
            }
        });
        if let Err(e) = spawned {
            shared.handshakes.fetch_sub(1, Ordering::SeqCst);
            complain(format!(
                "election connection from {from}: cannot start a handshake thread: {e}"
            ));
        }
    }

    /// TLS (if on), the election handshake, then SASL (if on), all within `cnx_timeout`.
    fn secure_handshake(
        shared: &Shared,
        stream: mio::net::TcpStream,
        from: SocketAddr,
    ) -> Result<(PeerStream, InitialMessage), String> {
        let deadline = Instant::now() + shared.cnx_timeout;
        let timeouts = |tcp: &TcpStream| {
            tcp.set_read_timeout(Some(shared.cnx_timeout))?;
            tcp.set_write_timeout(Some(shared.cnx_timeout))
        };
        let tcp = into_blocking(stream).map_err(|e| e.to_string())?;
        timeouts(&tcp).map_err(|e| e.to_string())?;
        let mut stream =
            shared.security.accept(tcp).map_err(|e| format!("TLS handshake failed: {e}"))?;
        let message = read_initial(&mut stream, deadline)?;
        let peer = format!("sid {} at {from}", message.sid);
        let stream = shared.security.admit(stream, &peer, deadline)?;
        stream.set_write_timeout(None).map_err(|e| e.to_string())?;
        Ok((stream, message))
    }

    /// A handshake arrived on an accepted connection: apply the tie-break.
    fn handshake_done(
        shared: &Arc<Shared>,
        stream: PeerStream,
        from: SocketAddr,
        message: InitialMessage,
    ) {
        let remote = message.sid;
        if remote != shared.my_id && !shared.peers.contains_key(&remote) {
            // Not a server.N of this ensemble: nothing to vote with, nowhere to connect.
            let _ = stream.shutdown(Shutdown::Both);
            warn!("election connection from {from} claims sid {remote}, which is not configured: closed");
        } else if remote < shared.my_id {
            // Close and connect back: the larger sid's connection is the one kept. Only to
            // the configured address: never to one a handshake names.
            let _ = stream.shutdown(Shutdown::Both);
            if let Some(address) = shared.peers.get(&remote).cloned() {
                if message.addresses.first().is_some_and(|a| *a != address) {
                    debug!("sid {remote} from {from} names {:?}; connecting back to its configured {address:?}", message.addresses);
                }
                Shared::connect_to(shared, remote, address);
            }
        } else if remote == shared.my_id {
            warn!("election connection from {from} claims my own sid {remote}: ignored");
        } else if let Err(e) = Shared::start_workers(shared, remote, stream) {
            warn!("sid {remote}: cannot start election workers: {e}");
        }
    }

    /// Makes `stream` the connection to `sid` (closing any previous one) and starts its
    /// sender and receiver.
    fn start_workers(shared: &Arc<Shared>, sid: ServerId, stream: PeerStream) -> io::Result<()> {
        if shared.halted.load(Ordering::Relaxed) {
            // A connect or handshake that finished after halt: no new workers.
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        stream.set_read_timeout(None)?;
        let generation = shared.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let (queue, resend) = {
            let mut table = shared.lock();
            let slot = table.entry(sid).or_insert_with(Slot::new);
            if let Some((_, old)) = slot.connection.replace((generation, stream.try_clone()?)) {
                let _ = old.shutdown(Shutdown::Both);
            }
            let resend = if slot.queue_rx.is_empty() { slot.last_sent.clone() } else { None };
            (slot.queue_rx.clone(), resend)
        };
        info!("sid {sid}: election connection up");
        let writer = stream.try_clone()?;
        let sender_shared = Arc::clone(shared);
        thread::spawn(move || {
            let result = sender_shared.send_loop(sid, generation, writer, queue, resend);
            sender_shared.closed(sid, generation, result);
        });
        let receiver_shared = Arc::clone(shared);
        thread::spawn(move || {
            let result = receiver_shared.receive_loop(sid, stream);
            receiver_shared.closed(sid, generation, result);
        });
        Ok(())
    }

    fn send_loop(
        &self,
        sid: ServerId,
        generation: u64,
        mut stream: PeerStream,
        queue: Receiver<Vec<u8>>,
        resend: Option<Vec<u8>>,
    ) -> io::Result<()> {
        if let Some(message) = resend {
            stream.write_all(&frame(&message))?;
        }
        loop {
            if self.halted.load(Ordering::Relaxed) || !self.is_current(sid, generation) {
                return Ok(());
            }
            match queue.recv_timeout(WORKER_POLL) {
                Ok(message) => {
                    stream.write_all(&frame(&message))?;
                    if let Some(slot) = self.lock().get_mut(&sid) {
                        slot.last_sent = Some(message);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn receive_loop(&self, sid: ServerId, mut stream: PeerStream) -> io::Result<()> {
        loop {
            let message = read_frame(&mut stream)?;
            if self.received.send((sid, message)).is_err() {
                return Ok(());
            }
        }
    }

    fn is_current(&self, sid: ServerId, generation: u64) -> bool {
        self.lock().get(&sid).and_then(|s| s.connection.as_ref()).is_some_and(|c| c.0 == generation)
    }

    /// A worker ended: drop the connection if it is still the current one.
    fn closed(&self, sid: ServerId, generation: u64, result: io::Result<()>) {
        let mut table = self.lock();
        if let Some(slot) = table.get_mut(&sid) {
            if slot.connection.as_ref().is_some_and(|c| c.0 == generation) {
                if let Some((_, stream)) = slot.connection.take() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                match result {
                    Err(e) if !self.halted.load(Ordering::Relaxed) => {
                        warn!("sid {sid}: election connection lost: {e}")
                    }
                    _ => debug!("sid {sid}: election connection closed"),
                }
            }
        }
    }
}

/// An accepted election connection whose handshake is being read.
struct Handshaking {
    stream: mio::net::TcpStream,
    from: SocketAddr,
    buf: Vec<u8>,
    deadline: Instant,
}

impl Handshaking {
    /// Reads what is available of the handshake, never past its end (the first frame may
    /// follow in the same segment): `Some` once it is whole.
    fn read(&mut self) -> Result<Option<InitialMessage>, String> {
        loop {
            if let Some((message, _)) = decode_initial(&self.buf).map_err(|e| e.to_string())? {
                return Ok(Some(message));
            }
            let have = self.buf.len();
            let want = initial_bytes_wanted(&self.buf)?;
            self.buf.resize(want, 0);
            match self.stream.read(&mut self.buf[have..]) {
                Ok(0) => return Err("closed during the handshake".into()),
                Ok(n) => self.buf.truncate(have + n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.buf.truncate(have);
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(have),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// How many bytes of an incomplete handshake to have before decoding again: the fixed
/// head first (protocol version and sid, then the address's length), then the address (the
/// decoder has checked the length against its limit already).
fn initial_bytes_wanted(buf: &[u8]) -> Result<usize, String> {
    let want = if buf.len() < 8 {
        8
    } else if buf.len() < 20 {
        20
    } else {
        let len = i32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]);
        20 + len.max(0) as usize
    };
    if want <= buf.len() || want > 20 + ELECTION_INITIAL_ADDRESS_MAX_BYTES {
        return Err(format!("bad handshake of {} bytes", buf.len()));
    }
    Ok(want)
}

/// Reads an election handshake from a blocking stream, never past its end, giving up at
/// `deadline` (however slowly its bytes arrive).
fn read_initial(stream: &mut PeerStream, deadline: Instant) -> Result<InitialMessage, String> {
    let mut buf = Vec::new();
    loop {
        if let Some((message, _)) = decode_initial(&buf).map_err(|e| e.to_string())? {
            return Ok(message);
        }
        let have = buf.len();
        let want = initial_bytes_wanted(&buf)?;
        if Instant::now() >= deadline {
            return Err("no handshake within the connect timeout".into());
        }
        buf.resize(want, 0);
        match stream.read(&mut buf[have..]) {
            Ok(0) => return Err("closed during the handshake".into()),
            Ok(n) => buf.truncate(have + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(have),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A non-blocking mio stream as a blocking std one (for the connection's workers).
fn into_blocking(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
    let stream = TcpStream::from(std::os::fd::OwnedFd::from(stream));
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `int length` + payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame; a length outside `1..=524288` is an error (the connection is closed).
pub fn read_frame(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if len <= 0 || len as usize > ELECTION_MESSAGE_MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("election message length {len}"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    Ok(payload)
}

fn resolve(address: &HostPort) -> io::Result<SocketAddr> {
    (address.host.as_str(), address.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {address}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_lengths_fail() {
        let mut bytes = frame(b"vote");
        assert_eq!(&bytes[..4], &[0, 0, 0, 4]);
        bytes.extend_from_slice(&frame(b"next"));
        let mut reader = &bytes[..];
        assert_eq!(read_frame(&mut reader).unwrap(), b"vote");
        assert_eq!(read_frame(&mut reader).unwrap(), b"next");
        for len in [0i32, -1, 524_289] {
            let mut reader = &len.to_be_bytes()[..];
            assert_eq!(read_frame(&mut reader).unwrap_err().kind(), io::ErrorKind::InvalidData);
        }
        let mut short = &[0u8, 0, 0, 9, 1][..];
        assert!(read_frame(&mut short).is_err());
    }

    fn manager(id: u64, peers: &[(u64, u16)]) -> (CnxManager, Receiver<Received>, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let me = HostPort { host: "127.0.0.1".into(), port: listener.local_addr().unwrap().port() };
        let peers = peers
            .iter()
            .map(|&(sid, port)| (ServerId(sid), HostPort { host: "127.0.0.1".into(), port }))
            .collect();
        let (m, rx) = CnxManager::new(
            ServerId(id),
            vec![me],
            peers,
            Duration::from_secs(5),
            Default::default(),
        );
        (m, rx, listener)
    }

    #[test]
    fn messages_flow_both_ways_over_the_larger_sids_connection() {
        // 1 has no usable address for 2 (port 0): only 2 can open the connection.
        let (m1, rx1, l1) = manager(1, &[(2, 0)]);
        let (m2, rx2, l2) = manager(2, &[(1, l1.local_addr().unwrap().port())]);
        let _t1 = m1.listen(l1).unwrap();
        let _t2 = m2.listen(l2).unwrap();
        // 2 is the larger sid: its connection survives and carries both directions.
        m2.send(ServerId(1), b"from two".to_vec());
        let got = rx1.recv_timeout(Duration::from_secs(10)).expect("delivered to 1");
        assert_eq!(got, (ServerId(2), b"from two".to_vec()));
        m1.send(ServerId(2), b"from one".to_vec());
        let got = rx2.recv_timeout(Duration::from_secs(10)).expect("delivered to 2");
        assert_eq!(got, (ServerId(1), b"from one".to_vec()));
        // To myself: no network.
        m1.send(ServerId(1), b"self".to_vec());
        assert_eq!(rx1.recv_timeout(Duration::from_secs(1)).unwrap().1, b"self".to_vec());
        m1.halt();
        m2.halt();
    }

    #[test]
    fn smaller_sid_connecting_first_is_answered_by_a_connection_back() {
        let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
        let (m2, rx2, l2) = manager(2, &[(1, l1.local_addr().unwrap().port())]);
        let port2 = l2.local_addr().unwrap().port();
        let (m1, rx1, _) = manager(1, &[(2, port2)]);
        let _t1 = m1.listen(l1).unwrap();
        let _t2 = m2.listen(l2).unwrap();
        // 1 connects to 2 and closes; 2 connects back to 1's configured address.
        m1.send(ServerId(2), b"hello".to_vec());
        let got = rx2.recv_timeout(Duration::from_secs(10)).expect("delivered");
        assert_eq!(got, (ServerId(1), b"hello".to_vec()));
        m2.send(ServerId(1), b"back".to_vec());
        assert_eq!(rx1.recv_timeout(Duration::from_secs(10)).unwrap().1, b"back".to_vec());
        m1.halt();
        m2.halt();
    }

    #[test]
    fn handshakes_never_choose_where_to_connect_back() {
        // Sid 1 is configured at `configured`; a handshake claiming sid 1 names `named`, and
        // one claiming sid 5 (not configured) names `named` too: only `configured` is dialled.
        let configured = TcpListener::bind("127.0.0.1:0").unwrap();
        let named = TcpListener::bind("127.0.0.1:0").unwrap();
        named.set_nonblocking(true).unwrap();
        let (m2, _rx2, l2) = manager(2, &[(1, configured.local_addr().unwrap().port())]);
        let address = l2.local_addr().unwrap();
        let _t2 = m2.listen(l2).unwrap();
        let elsewhere =
            HostPort { host: "127.0.0.1".into(), port: named.local_addr().unwrap().port() };
        for sid in [1, 5] {
            let mut s = TcpStream::connect(address).unwrap();
            s.write_all(&encode_initial(ServerId(sid), std::slice::from_ref(&elsewhere))).unwrap();
        }
        configured.set_nonblocking(false).unwrap();
        let (back, _) = configured.accept().expect("2 connects back to sid 1's configured address");
        drop(back);
        std::thread::sleep(Duration::from_millis(500));
        assert!(named.accept().is_err(), "no connection to an address a handshake named");
        m2.halt();
    }

    #[test]
    fn bad_handshake_closes_only_that_connection() {
        let (m2, _rx2, l2) = manager(2, &[]);
        let address = l2.local_addr().unwrap();
        let _t2 = m2.listen(l2).unwrap();
        let mut bad = TcpStream::connect(address).unwrap();
        bad.write_all(&(-3i64).to_be_bytes()).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(bad.read(&mut buf).unwrap_or(0), 0, "closed by the acceptor");
        m2.halt();
    }

    #[test]
    fn stuck_and_trickling_handshakes_do_not_block_peers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let me = HostPort { host: "127.0.0.1".into(), port: address.port() };
        let l3 = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer3 = HostPort { host: "127.0.0.1".into(), port: l3.local_addr().unwrap().port() };
        let (m2, rx2, _) = {
            let peers = BTreeMap::from([(ServerId(3), peer3)]);
            let (m, rx) = CnxManager::new(
                ServerId(2),
                vec![me],
                peers,
                Duration::from_millis(800),
                Default::default(),
            );
            (m, rx, ())
        };
        let _t2 = m2.listen(listener).unwrap();
        // A trickling connection is closed at the deadline, however regular its bytes.
        let mut slow = TcpStream::connect(address).unwrap();
        slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let started = std::time::Instant::now();
        let mut closed = false;
        let head = encode_initial(ServerId(3), &[HostPort { host: "127.0.0.1".into(), port: 1 }]);
        for b in head.iter().cycle().take(60) {
            if slow.write_all(&[*b]).is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 1];
            if matches!(slow.read(&mut buf), Ok(0)) {
                closed = true;
                break;
            }
        }
        assert!(closed, "a trickling handshake must be closed");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(5), "{took:?}");
        // More stuck connections than handshakes may wait: the rest are refused at once.
        let stuck: Vec<TcpStream> = (0..limits::ELECTION_HANDSHAKES_MAX + 20)
            .filter_map(|_| {
                let mut s = TcpStream::connect(address).ok()?;
                s.write_all(&[0]).ok()?;
                Some(s)
            })
            .collect();
        drop(stuck);
        // Once the stuck ones are gone (closed or timed out), a real peer gets through.
        let (m3, _rx3, _) = manager(3, &[(2, address.port())]);
        let _t3 = m3.listen(l3).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            m3.send(ServerId(2), b"vote".to_vec());
            if let Ok(got) = rx2.recv_timeout(Duration::from_millis(500)) {
                assert_eq!(got, (ServerId(3), b"vote".to_vec()));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "peer never got through");
        }
        m2.halt();
        m3.halt();
    }
}
