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
use crate::jute::data::{Acl, ClientInfo, Stat};
use crate::jute::proto::{
    AddWatchRequest, CreateRequest, CreateTtlRequest, DeleteRequest, PathRequest, PathWatchRequest,
    SetAclRequest, SetDataRequest, WatchesRequest,
};
use crate::jute::{DecodeError, Jute};
use crate::proto::{AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode};
use crate::proto::{SessionId, WatcherType, Zxid};
use request::{Request, Response, WatchRegistration, WatchRemoval};
use send::{Command, SendThread};
use watches::WatchKind;

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
            Error::BadArguments(_) => ErrorCode::BadArguments,
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
        }
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

/// A ZooKeeper client handle [ZooKeeper.java]. Dropping it closes the session.
pub struct Client {
    commands: Sender<Command>,
    waker: Arc<mio::Waker>,
    shared: Arc<Shared>,
    chroot: Arc<Chroot>,
    default_watcher: Watcher,
    event_thread: ThreadId,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

macro_rules! operation {
    ($(#[$doc:meta])* $name:ident, $async_name:ident, $build:ident
        ($($arg:ident : $ty:ty),*) -> $out:ty) => {
        $(#[$doc])*
        pub fn $name(&self, $($arg: $ty),*) -> Result<$out, Error> {
            let (req, conv) = self.$build($($arg),*)?;
            self.call(req, conv)
        }

        #[doc = concat!("Callback form of [`Client::", stringify!($name), "`]; `callback` runs ")]
        #[doc = "on the event thread, in the order replies arrive."]
        pub fn $async_name(
            &self,
            $($arg: $ty,)*
            callback: impl FnOnce(Result<$out, Error>) + Send + 'static,
        ) {
            match self.$build($($arg),*) {
                Ok((req, conv)) => self.call_async(req, conv, callback),
                Err(e) => callback(Err(e)),
            }
        }
    };
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
        let mut rng = hosts::Rng::from_entropy();
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
            seed: rng.next_u64(),
        };
        let event_handle = std::thread::Builder::new()
            .name("zk-event".into())
            .spawn(move || event::run(ev_rx))
            .map_err(Error::Io)?;
        let event_thread = event_handle.thread().id();
        let send = SendThread::new(poll, cmd_rx, ev_tx, shared.clone(), host_list, core_cfg);
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

    // ----- request builders: (request, reply conversion) -----

    fn build_create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: Option<Duration>,
        want_stat: bool,
    ) -> Built<(String, Option<Stat>)> {
        validate_path(path, mode.is_sequential())?;
        let bad = |why| Error::BadArguments(ArgumentError::BadPath(path.to_owned(), why));
        if mode.is_ttl() && ttl.is_none_or(|t| t.is_zero()) {
            return Err(bad("ttl modes need a positive ttl"));
        }
        if !mode.is_ttl() && ttl.is_some() {
            return Err(bad("ttl given for a mode without ttl"));
        }
        if acl.is_empty() {
            return Err(Error::Server(ErrorCode::InvalidAcl));
        }
        let (op, ttl_ms) = request::create_opcode(mode, ttl, want_stat);
        let server_path = self.chroot.to_server(path);
        let body = if op == OpCode::CreateTtl {
            CreateTtlRequest {
                path: server_path,
                data: Some(data.to_vec()),
                acl: acl.to_vec(),
                flags: mode.code(),
                ttl: ttl_ms,
            }
            .to_bytes()
        } else {
            CreateRequest {
                path: server_path,
                data: Some(data.to_vec()),
                acl: acl.to_vec(),
                flags: mode.code(),
            }
            .to_bytes()
        };
        let chroot = self.chroot.clone();
        let conv: Conv<(String, Option<Stat>)> = Box::new(move |r| match r? {
            Response::Path(p) => Ok((chroot.to_client(&p), None)),
            Response::PathStat(p, s) => Ok((chroot.to_client(&p), Some(s))),
            _ => Err(unexpected()),
        });
        Ok((Request::new(op, body), conv))
    }

    fn b_create(&self, path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Built<String> {
        let (req, conv) = self.build_create(path, data, acl, mode, None, false)?;
        Ok((req, Box::new(move |r| conv(r).map(|(p, _)| p))))
    }

    fn b_create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Built<(String, Stat)> {
        let (req, conv) = self.build_create(path, data, acl, mode, None, true)?;
        Ok((req, Box::new(move |r| conv(r).map(|(p, s)| (p, s.unwrap_or_default())))))
    }

    fn b_create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: Duration,
    ) -> Built<(String, Stat)> {
        let (req, conv) = self.build_create(path, data, acl, mode, Some(ttl), true)?;
        Ok((req, Box::new(move |r| conv(r).map(|(p, s)| (p, s.unwrap_or_default())))))
    }

    fn b_delete(&self, path: &str, version: i32) -> Built<()> {
        let body = DeleteRequest { path: self.server_path(path)?, version }.to_bytes();
        Ok((Request::new(OpCode::Delete, body), Box::new(|r| r.map(|_| ()))))
    }

    fn path_watch(
        &self,
        op: OpCode,
        path: &str,
        watch: Watch,
        kind: WatchKind,
    ) -> Result<Request, Error> {
        let server_path = self.server_path(path)?;
        let watcher = self.watcher_for(watch);
        let body = PathWatchRequest { path: server_path, watch: watcher.is_some() }.to_bytes();
        let mut req = Request::new(op, body);
        req.watch =
            watcher.map(|watcher| WatchRegistration { kind, path: path.to_owned(), watcher });
        Ok(req)
    }

    fn b_exists(&self, path: &str, watch: impl Into<Watch>) -> Built<Option<Stat>> {
        let req = self.path_watch(OpCode::Exists, path, watch.into(), WatchKind::Data)?;
        let conv: Conv<Option<Stat>> = Box::new(|r| match r {
            Ok(Response::Stat(s)) => Ok(Some(s)),
            Ok(_) => Err(unexpected()),
            Err(e) if e.code() == ErrorCode::NoNode && matches!(e, Error::Server(_)) => Ok(None),
            Err(e) => Err(e),
        });
        Ok((req, conv))
    }

    fn b_get_data(&self, path: &str, watch: impl Into<Watch>) -> Built<(Vec<u8>, Stat)> {
        let req = self.path_watch(OpCode::GetData, path, watch.into(), WatchKind::Data)?;
        Ok((
            req,
            Box::new(|r| match r? {
                Response::Data(d, s) => Ok((d, s)),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_set_data(&self, path: &str, data: &[u8], version: i32) -> Built<Stat> {
        let body =
            SetDataRequest { path: self.server_path(path)?, data: Some(data.to_vec()), version }
                .to_bytes();
        Ok((Request::new(OpCode::SetData, body), Box::new(stat_conv)))
    }

    fn b_get_acl(&self, path: &str) -> Built<(Vec<Acl>, Stat)> {
        let body = PathRequest { path: self.server_path(path)? }.to_bytes();
        Ok((
            Request::new(OpCode::GetAcl, body),
            Box::new(|r| match r? {
                Response::Acl(a, s) => Ok((a, s)),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Built<Stat> {
        if acl.is_empty() {
            return Err(Error::Server(ErrorCode::InvalidAcl));
        }
        let body =
            SetAclRequest { path: self.server_path(path)?, acl: acl.to_vec(), version }.to_bytes();
        Ok((Request::new(OpCode::SetAcl, body), Box::new(stat_conv)))
    }

    fn b_get_children(&self, path: &str, watch: impl Into<Watch>) -> Built<Vec<String>> {
        let req = self.path_watch(OpCode::GetChildren, path, watch.into(), WatchKind::Child)?;
        Ok((
            req,
            Box::new(|r| match r? {
                Response::Children(c) => Ok(c),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_get_children2(&self, path: &str, watch: impl Into<Watch>) -> Built<(Vec<String>, Stat)> {
        let req = self.path_watch(OpCode::GetChildren2, path, watch.into(), WatchKind::Child)?;
        Ok((
            req,
            Box::new(|r| match r? {
                Response::Children2(c, s) => Ok((c, s)),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_get_all_children_number(&self, path: &str) -> Built<i32> {
        let body = PathRequest { path: self.server_path(path)? }.to_bytes();
        Ok((
            Request::new(OpCode::GetAllChildrenNumber, body),
            Box::new(|r| match r? {
                Response::Count(n) => Ok(n),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_get_ephemerals(&self, prefix: &str) -> Built<Vec<String>> {
        let body = PathRequest { path: self.server_path(prefix)? }.to_bytes();
        let chroot = self.chroot.clone();
        Ok((
            Request::new(OpCode::GetEphemerals, body),
            Box::new(move |r| match r? {
                Response::Children(c) => Ok(c.iter().map(|p| chroot.to_client(p)).collect()),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_sync(&self, path: &str) -> Built<String> {
        let body = PathRequest { path: self.server_path(path)? }.to_bytes();
        let chroot = self.chroot.clone();
        Ok((
            Request::new(OpCode::Sync, body),
            Box::new(move |r| match r? {
                Response::Path(p) => Ok(chroot.to_client(&p)),
                _ => Err(unexpected()),
            }),
        ))
    }

    fn b_multi(&self, ops: &[Op]) -> Built<Vec<OpResult>> {
        let mut wire = Vec::with_capacity(ops.len());
        for op in ops {
            let sequential = matches!(op, Op::Create { mode, .. } if mode.is_sequential());
            validate_path(op.path(), sequential)?;
            wire.push(op.to_wire(&self.chroot));
        }
        let chroot = self.chroot.clone();
        let conv: Conv<Vec<OpResult>> = Box::new(move |r| match r? {
            Response::Multi(m) => {
                let results = request::convert_results(m.results, &chroot);
                match request::multi_failure(&results) {
                    Some(code) => Err(Error::Multi { code, results }),
                    None => Ok(results),
                }
            }
            _ => Err(unexpected()),
        });
        Ok((Request::new(OpCode::Multi, request::encode_multi(wire)), conv))
    }

    fn b_multi_read(&self, ops: &[ReadOp]) -> Built<Vec<OpResult>> {
        let mut wire = Vec::with_capacity(ops.len());
        for op in ops {
            validate_path(op.path(), false)?;
            wire.push(op.to_wire(&self.chroot));
        }
        let chroot = self.chroot.clone();
        let conv: Conv<Vec<OpResult>> = Box::new(move |r| match r? {
            Response::Multi(m) => Ok(request::convert_results(m.results, &chroot)),
            _ => Err(unexpected()),
        });
        Ok((Request::new(OpCode::MultiRead, request::encode_multi(wire)), conv))
    }

    fn b_add_watch(&self, path: &str, watch: impl Into<Watch>, mode: AddWatchMode) -> Built<()> {
        let server_path = self.server_path(path)?;
        let watcher = self.watcher_for(watch.into()).unwrap_or(self.default_watcher.clone());
        let body = AddWatchRequest { path: server_path, mode: mode.code() }.to_bytes();
        let mut req = Request::new(OpCode::AddWatch, body);
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        };
        req.watch = Some(WatchRegistration { kind, path: path.to_owned(), watcher });
        Ok((req, Box::new(|r| r.map(|_| ()))))
    }

    fn build_removal(
        &self,
        path: &str,
        watcher: Option<u64>,
        watcher_type: WatcherType,
        local: bool,
    ) -> Built<()> {
        let server_path = self.server_path(path)?;
        // A single watcher is checked (17) on the server, which keeps its registration for
        // the other local watchers; removing all of them removes (18) [ZooKeeper.java].
        let op = if watcher.is_some() { OpCode::CheckWatches } else { OpCode::RemoveWatches };
        let body = WatchesRequest { path: server_path, watcher_type: watcher_type.code() };
        let mut req = Request::new(op, body.to_bytes());
        req.removal = Some(WatchRemoval { path: path.to_owned(), watcher_type, watcher, local });
        Ok((req, Box::new(|r| r.map(|_| ()))))
    }

    fn b_remove_watches(
        &self,
        path: &str,
        watcher: &Watcher,
        watcher_type: WatcherType,
        local: bool,
    ) -> Built<()> {
        self.build_removal(path, Some(watcher.id()), watcher_type, local)
    }

    fn b_remove_all_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
        local: bool,
    ) -> Built<()> {
        self.build_removal(path, None, watcher_type, local)
    }

    fn b_who_am_i(&self) -> Built<Vec<ClientInfo>> {
        Ok((
            Request::new(OpCode::WhoAmI, Vec::new()),
            Box::new(|r| match r? {
                Response::WhoAmI(v) => Ok(v),
                _ => Err(unexpected()),
            }),
        ))
    }

    // ----- the public operations -----

    operation! {
        /// Creates a node; returns its (client) path, with the sequence suffix if any.
        /// Containers use createContainer; TTL modes need [`Client::create_ttl`].
        create, create_async, b_create
        (path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> String
    }

    operation! {
        /// Creates a node; returns its path and Stat (create2, or createContainer).
        create2, create2_async, b_create2
        (path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> (String, Stat)
    }

    operation! {
        /// Creates a TTL node (`PersistentWithTtl` / `PersistentSequentialWithTtl`) with
        /// createTTL; the server must run with `extendedTypesEnabled=true`.
        create_ttl, create_ttl_async, b_create_ttl
        (path: &str, data: &[u8], acl: &[Acl], mode: CreateMode, ttl: Duration)
            -> (String, Stat)
    }

    operation! {
        /// Deletes a node at `version` (-1 = any version).
        delete, delete_async, b_delete (path: &str, version: i32) -> ()
    }

    operation! {
        /// The node's Stat, or `None` if it does not exist; a watch is left either way.
        exists, exists_async, b_exists (path: &str, watch: impl Into<Watch>) -> Option<Stat>
    }

    operation! {
        /// The node's data and Stat; a watch is left only on success.
        get_data, get_data_async, b_get_data
        (path: &str, watch: impl Into<Watch>) -> (Vec<u8>, Stat)
    }

    operation! {
        /// Sets the data at `version` (-1 = any); returns the new Stat.
        set_data, set_data_async, b_set_data (path: &str, data: &[u8], version: i32) -> Stat
    }

    operation! {
        /// The node's ACL and Stat.
        get_acl, get_acl_async, b_get_acl (path: &str) -> (Vec<Acl>, Stat)
    }

    operation! {
        /// Sets the ACL at ACL `version` (-1 = any); returns the new Stat.
        set_acl, set_acl_async, b_set_acl (path: &str, acl: &[Acl], version: i32) -> Stat
    }

    operation! {
        /// The children's names (unsorted); a child watch is left only on success.
        get_children, get_children_async, b_get_children
        (path: &str, watch: impl Into<Watch>) -> Vec<String>
    }

    operation! {
        /// The children's names and the node's Stat.
        get_children2, get_children2_async, b_get_children2
        (path: &str, watch: impl Into<Watch>) -> (Vec<String>, Stat)
    }

    operation! {
        /// The number of descendants of `path` (not counting itself).
        get_all_children_number, get_all_children_number_async, b_get_all_children_number
        (path: &str) -> i32
    }

    operation! {
        /// This session's ephemeral nodes under `prefix`.
        get_ephemerals, get_ephemerals_async, b_get_ephemerals (prefix: &str) -> Vec<String>
    }

    operation! {
        /// Waits until the server has applied everything the leader committed before; returns
        /// the path.
        sync, sync_async, b_sync (path: &str) -> String
    }

    operation! {
        /// Applies `ops` atomically; on failure [`Error::Multi`] carries each op's result.
        multi, multi_async, b_multi (ops: &[Op]) -> Vec<OpResult>
    }

    operation! {
        /// Reads several nodes in one request; failures are per-op `OpResult::Error`s.
        multi_read, multi_read_async, b_multi_read (ops: &[ReadOp]) -> Vec<OpResult>
    }

    operation! {
        /// Adds a persistent (or persistent-recursive) watch; works on missing paths.
        add_watch, add_watch_async, b_add_watch
        (path: &str, watch: impl Into<Watch>, mode: AddWatchMode) -> ()
    }

    operation! {
        /// Removes one watcher's watches of `watcher_type` at `path` (checkWatches on the
        /// server unless `local`); raises the matching *WatchRemoved event. `NoWatcher` if
        /// the watcher has none there.
        remove_watches, remove_watches_async, b_remove_watches
        (path: &str, watcher: &Watcher, watcher_type: WatcherType, local: bool) -> ()
    }

    operation! {
        /// Removes every watch of `watcher_type` at `path` (removeWatches on the server
        /// unless `local`).
        remove_all_watches, remove_all_watches_async, b_remove_all_watches
        (path: &str, watcher_type: WatcherType, local: bool) -> ()
    }

    operation! {
        /// The identities the server associates with this connection.
        who_am_i, who_am_i_async, b_who_am_i () -> Vec<ClientInfo>
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

fn stat_conv(r: Result<Response, Error>) -> Result<Stat, Error> {
    match r? {
        Response::Stat(s) => Ok(s),
        _ => Err(unexpected()),
    }
}

fn unexpected() -> Error {
    Error::Decode(DecodeError::InvalidValue("reply does not match the request"))
}
