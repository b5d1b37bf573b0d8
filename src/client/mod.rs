//! ZooKeeper client library, shaped like Apache ZooKeeper's `ClientCnxn`/`ZooKeeper`.
//!
//! Owns the client side of a session. Threads:
//!
//! - the **caller's threads** build and encode requests ([`Client`] methods), validate paths
//!   and apply the chroot, then hand them to the send thread through a crossbeam channel and
//!   a `mio::Waker`;
//! - the **send thread** (`send`) owns the socket and drives the protocol core (`core`), a
//!   pure state machine with explicit time that owns the session, the outgoing and pending
//!   queues, the xids and the watch registry (`watches`);
//! - the **event thread** (`event`) runs watchers and async callbacks one at a time, in the
//!   order the send thread queued them, so a watch event is always seen before the result of
//!   a read that observes the change.
//!
//! Every operation has a blocking form (`get_data`) and a callback form (`get_data_async`).
//! Blocking calls made from a watcher or callback (i.e. on the event thread) are completed
//! directly by the send thread, so they do not deadlock. Errors are [`Error`]: the server's
//! [`ErrorCode`] or a client-side kind (connection loss, timeout, closed).
//!
//! ```no_run
//! use std::time::Duration;
//! use rzk::client::{Client, Watcher};
//! use rzk::jute::data::Acl;
//! use rzk::proto::CreateMode;
//!
//! let (tx, events) = crossbeam_channel::unbounded();
//! let zk = Client::connect("127.0.0.1:2181/app", Duration::from_secs(30), None)?;
//! zk.wait_connected(Duration::from_secs(10))?;
//! zk.create("/config", b"v1", &Acl::open_unsafe(), CreateMode::Persistent)?;
//! let (data, stat) = zk.get_data("/config", Watcher::channel(tx))?;
//! zk.set_data_async("/config", b"v2", stat.version, |r| println!("set: {r:?}"));
//! println!("{:?} then {}", data, events.recv()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod core;
mod event;
mod hosts;
mod ops;
mod request;
mod send;
mod watches;

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

pub use hosts::{validate_path, ArgumentError, Chroot, ConnectString};
pub use request::{Op, OpResult, ReadOp};
pub use watches::SET_WATCHES_BYTES_MAX;

use self::core::{CoreConfig, Packet};
pub use crate::config::client::{ClientSecurity, SaslLogin};
pub use crate::config::ClientTlsConfig;
use crate::jute::DecodeError;
use crate::proto::{ErrorCode, EventType, KeeperState, SessionId, Zxid};
use request::{Request, Response};
use send::{Command, SendThread};

/// What went wrong with an operation.
#[derive(Debug)]
pub enum Error {
    /// The server answered with this code (e.g. `NoNode`, `BadVersion`, `SessionExpired`).
    Server(ErrorCode),
    /// The server answered with a code this crate does not know.
    UnknownCode(i32),
    /// A `multi` failed: the code of the op that failed and every op's result.
    Multi {
        /// The first real failure.
        code: ErrorCode,
        /// One result per op (`Error(Ok)` for ops that would have succeeded).
        results: Vec<OpResult>,
    },
    /// The connection was lost before the reply came; the operation may have been applied.
    ConnectionLoss,
    /// No reply within the configured request timeout.
    Timeout,
    /// The client was closed.
    Closed,
    /// An argument (path, connect string, TTL) was rejected before anything was sent.
    BadArguments(ArgumentError),
    /// A reply could not be decoded.
    Decode(DecodeError),
    /// The client's threads or poller could not be created.
    Io(std::io::Error),
    /// The TLS settings cannot be used (a store that does not load, a bad protocol list).
    Config(String),
}

impl Error {
    /// The ZooKeeper code closest to this error (client kinds map to ConnectionLoss,
    /// OperationTimeout / RequestTimeout, SessionExpired for closed, BadArguments,
    /// MarshallingError).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Server(c) | Error::Multi { code: c, .. } => *c,
            Error::UnknownCode(_) => ErrorCode::SystemError,
            Error::ConnectionLoss | Error::Io(_) => ErrorCode::ConnectionLoss,
            Error::Timeout => ErrorCode::RequestTimeout,
            Error::Closed => ErrorCode::SessionExpired,
            Error::BadArguments(_) | Error::Config(_) => ErrorCode::BadArguments,
            Error::Decode(_) => ErrorCode::MarshallingError,
        }
    }

    fn from_code(code: i32) -> Error {
        match ErrorCode::from_i32(code) {
            Some(c) => Error::Server(c),
            None => Error::UnknownCode(code),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server(c) => write!(f, "{c}"),
            Error::UnknownCode(c) => write!(f, "unknown error code {c}"),
            Error::Multi { code, .. } => write!(f, "multi failed: {code}"),
            Error::ConnectionLoss => write!(f, "connection loss"),
            Error::Timeout => write!(f, "request timed out"),
            Error::Closed => write!(f, "client closed"),
            Error::BadArguments(e) => write!(f, "{e}"),
            Error::Decode(e) => write!(f, "bad reply: {e}"),
            Error::Io(e) => write!(f, "client i/o: {e}"),
            Error::Config(e) => write!(f, "client configuration: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::BadArguments(e) => Some(e),
            Error::Decode(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ArgumentError> for Error {
    fn from(e: ArgumentError) -> Error {
        Error::BadArguments(e)
    }
}

/// Client states [ZooKeeper.States].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Looking for a server (initially and after a connection loss).
    Connecting,
    /// Session established with a read-write server.
    Connected,
    /// Session established with a read-only server.
    ConnectedReadOnly,
    /// Closed by the application, or gave up before any session existed.
    Closed,
    /// The server reported the session expired.
    Expired,
    /// The server rejected our credentials.
    AuthFailed,
}

impl State {
    /// Whether the client can still be used.
    pub fn is_alive(self) -> bool {
        matches!(self, State::Connecting | State::Connected | State::ConnectedReadOnly)
    }
    /// Whether a session is established on a live connection.
    pub fn is_connected(self) -> bool {
        matches!(self, State::Connected | State::ConnectedReadOnly)
    }
}

/// A watch or state event [WatchedEvent].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened (`None` for state events).
    pub event_type: EventType,
    /// The connection state.
    pub state: KeeperState,
    /// The client path (chroot stripped); `None` for state events.
    pub path: Option<String>,
    /// The zxid of the txn that fired the watch (-1 when unknown, always on 3.8 servers).
    pub zxid: i64,
}

impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{:?} type:{:?} path:{}",
            self.state,
            self.event_type,
            self.path.as_deref().unwrap_or("null")
        )
    }
}

static NEXT_WATCHER_ID: AtomicU64 = AtomicU64::new(1);

/// An application watcher: a closure or a channel. Clones are the same watcher (same
/// identity), so registering a clone twice on one path delivers one event.
#[derive(Clone)]
pub struct Watcher {
    id: u64,
    sink: Arc<dyn Fn(WatchedEvent) + Send + Sync>,
}

impl Watcher {
    /// A watcher calling `f` on the event thread.
    pub fn new(f: impl Fn(WatchedEvent) + Send + Sync + 'static) -> Watcher {
        Watcher { id: NEXT_WATCHER_ID.fetch_add(1, Ordering::Relaxed), sink: Arc::new(f) }
    }

    /// A watcher sending every event into `tx` (events for a dropped receiver are discarded).
    pub fn channel(tx: Sender<WatchedEvent>) -> Watcher {
        Watcher::new(move |e| {
            let _ = tx.send(e);
        })
    }

    /// The watcher's identity.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, e: WatchedEvent) {
        (self.sink)(e)
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Watcher({})", self.id)
    }
}

impl From<Sender<WatchedEvent>> for Watcher {
    fn from(tx: Sender<WatchedEvent>) -> Watcher {
        Watcher::channel(tx)
    }
}

/// Whether a read leaves a watch: none, the client's default watcher, or a given one.
#[derive(Debug, Clone, Default)]
pub enum Watch {
    /// No watch.
    #[default]
    No,
    /// The default watcher given at construction (`watch = true` in Java).
    Default,
    /// This watcher.
    With(Watcher),
}

impl From<bool> for Watch {
    fn from(b: bool) -> Watch {
        if b {
            Watch::Default
        } else {
            Watch::No
        }
    }
}

impl From<Watcher> for Watch {
    fn from(w: Watcher) -> Watch {
        Watch::With(w)
    }
}

impl From<&Watcher> for Watch {
    fn from(w: &Watcher) -> Watch {
        Watch::With(w.clone())
    }
}

/// How to connect: hosts, timeout, default watcher and options.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host1:port1,host2:port2/chroot`.
    pub connect_string: String,
    /// Requested session timeout (the server clamps it).
    pub session_timeout: Duration,
    /// Receives state events and events of `watch = true` reads.
    pub watcher: Option<Watcher>,
    /// Accept read-only servers (sends `readOnly = true`).
    pub can_be_read_only: bool,
    /// Re-attach to this session (id and password) instead of creating one.
    pub session: Option<(SessionId, Vec<u8>)>,
    /// Fail a request with [`Error::Timeout`] (and drop the connection) when no reply comes
    /// within this long; `None` waits as long as the connection lives.
    pub request_timeout: Option<Duration>,
    /// Connect with TLS (`zookeeper.client.secure`); the ports in the connect string are
    /// then the servers' `secureClientPort`s.
    pub tls: Option<ClientTlsConfig>,
    /// Authenticate every connection with SASL DIGEST-MD5 before other requests; the
    /// default watcher sees `SaslAuthenticated` or, on failure, `AuthFailed` (the end).
    pub sasl: Option<SaslLogin>,
}

impl ClientConfig {
    /// Defaults: no watcher, read-write only, new session, no request timeout.
    pub fn new(connect_string: &str, session_timeout: Duration) -> ClientConfig {
        ClientConfig {
            connect_string: connect_string.to_owned(),
            session_timeout,
            watcher: None,
            can_be_read_only: false,
            session: None,
            request_timeout: None,
            tls: None,
            sasl: None,
        }
    }

    /// Uses TLS with these settings.
    pub fn tls(mut self, tls: ClientTlsConfig) -> ClientConfig {
        self.tls = Some(tls);
        self
    }

    /// Authenticates with SASL DIGEST-MD5 as `user`.
    pub fn sasl(mut self, user: &str, password: &str) -> ClientConfig {
        self.sasl = Some(SaslLogin { user: user.to_owned(), password: password.to_owned() });
        self
    }

    /// Takes TLS and SASL from a client configuration (see
    /// [`crate::config::client::client_security`]).
    pub fn security(mut self, security: ClientSecurity) -> ClientConfig {
        self.tls = security.tls;
        self.sasl = security.sasl;
        self
    }

    /// Sets the default watcher.
    pub fn watcher(mut self, w: Watcher) -> ClientConfig {
        self.watcher = Some(w);
        self
    }

    /// Allows read-only servers.
    pub fn can_be_read_only(mut self, yes: bool) -> ClientConfig {
        self.can_be_read_only = yes;
        self
    }

    /// Re-attaches to an existing session.
    pub fn session(mut self, id: SessionId, passwd: Vec<u8>) -> ClientConfig {
        self.session = Some((id, passwd));
        self
    }

    /// Sets the request timeout.
    pub fn request_timeout(mut self, t: Duration) -> ClientConfig {
        self.request_timeout = Some(t);
        self
    }

    /// Starts the client (returns at once; the session is established in the background).
    pub fn connect(self) -> Result<Client, Error> {
        Client::start(self)
    }
}

pub(crate) struct SharedState {
    state: State,
    session_id: i64,
    passwd: Vec<u8>,
    negotiated: Duration,
}

/// State the send thread publishes for the application threads.
pub(crate) struct Shared {
    inner: Mutex<SharedState>,
    changed: Condvar,
    /// The last zxid seen in a reply, updated by the send thread on every reply.
    last_zxid: AtomicI64,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut SharedState)) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
        self.changed.notify_all();
    }

    fn read<T>(&self, f: impl FnOnce(&SharedState) -> T) -> T {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&g)
    }
}

type Conv<T> = Box<dyn FnOnce(Result<Response, Error>) -> Result<T, Error> + Send>;

/// A request and the conversion of its reply.
type Built<T> = Result<(Request, Conv<T>), Error>;

fn sid(id: i64) -> SessionId {
    SessionId(id)
}

/// A ZooKeeper client handle [ZooKeeper.java]. Dropping it closes the session. It is `Send`
/// and `Sync`: share it between threads with an `Arc` (not from inside its own watchers, or
/// the cycle keeps it alive).
pub struct Client {
    commands: Sender<Command>,
    waker: Arc<mio::Waker>,
    shared: Arc<Shared>,
    chroot: Arc<Chroot>,
    default_watcher: Watcher,
    event_thread: ThreadId,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Client {
    /// Connects with the defaults of [`ClientConfig::new`] and an optional default watcher.
    pub fn connect(
        connect_string: &str,
        session_timeout: Duration,
        watcher: Option<Watcher>,
    ) -> Result<Client, Error> {
        let mut cfg = ClientConfig::new(connect_string, session_timeout);
        cfg.watcher = watcher;
        cfg.connect()
    }

    fn start(cfg: ClientConfig) -> Result<Client, Error> {
        let cs = ConnectString::parse(&cfg.connect_string)?;
        let tls = match &cfg.tls {
            Some(t) => Some(Arc::new(crate::tls::client_config(t).map_err(Error::Config)?)),
            None => None,
        };
        let mut rng = fastrand::Rng::new();
        let host_list = hosts::HostList::new(cs.hosts, &mut rng);
        let chroot = Chroot::new(cs.chroot);
        let poll = mio::Poll::new().map_err(Error::Io)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), send::WAKER).map_err(Error::Io)?);
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let default_watcher = cfg.watcher.clone().unwrap_or_else(|| Watcher::new(|_| {}));
        let (session_id, passwd) = match &cfg.session {
            Some((id, pw)) => (id.0, pw.clone()),
            None => (0, Vec::new()),
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(SharedState {
                state: State::Connecting,
                session_id,
                passwd: passwd.clone(),
                negotiated: cfg.session_timeout,
            }),
            changed: Condvar::new(),
            last_zxid: AtomicI64::new(0),
        });
        let core_cfg = CoreConfig {
            chroot: chroot.clone(),
            timeout: cfg.session_timeout,
            can_be_read_only: cfg.can_be_read_only,
            default_watcher: default_watcher.clone(),
            session_id,
            passwd,
            request_timeout: cfg.request_timeout,
            host_count: host_list.len(),
            seed: rng.u64(..),
            sasl: cfg.sasl.clone(),
        };
        let event_handle = std::thread::Builder::new()
            .name("zk-event".into())
            .spawn(move || event::run(ev_rx))
            .map_err(Error::Io)?;
        let event_thread = event_handle.thread().id();
        let send = SendThread::new(poll, cmd_rx, ev_tx, shared.clone(), host_list, core_cfg, tls);
        let send_handle = std::thread::Builder::new()
            .name("zk-send".into())
            .spawn(move || send.run())
            .map_err(Error::Io)?;
        Ok(Client {
            commands: cmd_tx,
            waker,
            shared,
            chroot: Arc::new(chroot),
            default_watcher,
            event_thread,
            threads: Mutex::new(vec![send_handle, event_handle]),
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.read(|s| s.state)
    }

    /// The session id (0 before the first connection).
    pub fn session_id(&self) -> SessionId {
        SessionId(self.shared.read(|s| s.session_id))
    }

    /// The session password (to re-attach with [`ClientConfig::session`]).
    pub fn session_password(&self) -> Vec<u8> {
        self.shared.read(|s| s.passwd.clone())
    }

    /// The negotiated session timeout (the requested one before connecting).
    pub fn session_timeout(&self) -> Duration {
        self.shared.read(|s| s.negotiated)
    }

    /// The last zxid seen in a reply (what a reconnect sends as `lastZxidSeen`).
    pub fn last_zxid(&self) -> Zxid {
        Zxid(self.shared.last_zxid.load(Ordering::Relaxed))
    }

    /// The chroot of this client, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.prefix()
    }

    /// Waits until `pred(state)` holds or `timeout` passes; returns the last state seen.
    pub fn wait_for_state(&self, pred: impl Fn(State) -> bool, timeout: Duration) -> State {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            if pred(g.state) || now >= deadline {
                return g.state;
            }
            g = match self.shared.changed.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Waits until connected; the error says why not (closed, expired, timeout).
    pub fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        let s = self.wait_for_state(|s| s.is_connected() || !s.is_alive(), timeout);
        match s {
            State::Connected | State::ConnectedReadOnly => Ok(()),
            State::Connecting => Err(Error::Timeout),
            _ => Err(self.final_error()),
        }
    }

    fn final_error(&self) -> Error {
        match self.state() {
            State::Expired => Error::Server(ErrorCode::SessionExpired),
            State::AuthFailed => Error::Server(ErrorCode::AuthFailed),
            _ => Error::Closed,
        }
    }

    fn on_event_thread(&self) -> bool {
        std::thread::current().id() == self.event_thread
    }

    fn submit(&self, packet: Packet) {
        if let Err(crossbeam_channel::SendError(cmd)) = self.commands.send(Command::Submit(packet))
        {
            if let Command::Submit(p) = cmd {
                (p.completion)(Err(self.final_error()));
            }
            return;
        }
        if let Err(e) = self.waker.wake() {
            log::warn!("client: cannot wake the send thread: {e}");
        }
    }

    fn call<T: Send + 'static>(&self, req: Request, conv: Conv<T>) -> Result<T, Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let completion = Box::new(move |r| {
            let _ = tx.send(conv(r));
        });
        self.submit(Packet { req, completion, direct: self.on_event_thread() });
        rx.recv().unwrap_or_else(|_| Err(self.final_error()))
    }

    fn call_async<T: Send + 'static>(
        &self,
        req: Request,
        conv: Conv<T>,
        callback: impl FnOnce(Result<T, Error>) + Send + 'static,
    ) {
        let completion = Box::new(move |r| callback(conv(r)));
        self.submit(Packet { req, completion, direct: false });
    }

    fn watcher_for(&self, watch: Watch) -> Option<Watcher> {
        match watch {
            Watch::No => None,
            Watch::Default => Some(self.default_watcher.clone()),
            Watch::With(w) => Some(w),
        }
    }

    fn server_path(&self, path: &str) -> Result<String, Error> {
        validate_path(path, false)?;
        Ok(self.chroot.to_server(path))
    }

    /// Adds authentication (`digest`, `user:password`); sent now and after every reconnect.
    /// A rejection ends the client with state [`State::AuthFailed`].
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) {
        let cmd = Command::AddAuth { scheme: scheme.to_owned(), auth: auth.to_vec() };
        if self.commands.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Closes the session (closeSession, then state Closed). Idempotent.
    pub fn close(&self) -> Result<(), Error> {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        if self.commands.send(Command::Close { done: tx }).is_ok() {
            let _ = self.waker.wake();
            // Returns when the send thread drops `tx`, i.e. the session is closed.
            let _ = rx.recv();
        }
        if self.on_event_thread() {
            return Ok(());
        }
        let threads: Vec<JoinHandle<()>> = match self.threads.lock() {
            Ok(mut g) => g.drain(..).collect(),
            Err(e) => e.into_inner().drain(..).collect(),
        };
        for t in threads {
            if t.join().is_err() {
                log::error!("client: a client thread panicked");
            }
        }
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client(session {}, {:?})", self.session_id(), self.state())
    }
}
