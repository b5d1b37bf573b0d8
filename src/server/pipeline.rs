//! The one place where a server's request pipeline is built (ZooKeeper's
//! `setupRequestProcessors`, one per server kind): the client port's selector, the stages of
//! the role, and the background tasks, joined by bounded channels with one policy everywhere.
//!
//! ```text
//! Standalone  cnxn -> prep -> sync -> apply -> cnxn                 (+ session expiry, reaper)
//! Leader      cnxn -> prep -> [role] ...  [role] -> sync -> [role]   (+ session expiry, reaper)
//!                             [role] -> apply -> cnxn
//! Learner     cnxn -> [role];  [role] -> sync -> [role];  [role] -> apply -> cnxn
//! ReadOnly    cnxn -> read-only -> apply -> cnxn
//! NotServing  cnxn only (four-letter words say so, sessions are refused)
//! ```
//!
//! `[role]` is the role's own thread (the quorum leader or learner shell), which drives the
//! [`Taps`]: it reads what the first stage produced, feeds the sync stage and reads what it
//! made durable, and feeds apply. The role shells live in the quorum package; this module knows
//! nothing of them.
//!
//! Back-pressure, the same for every role: every stage queue is bounded by
//! [`limits::STAGE_QUEUE`]. The selector never blocks: it offers requests with `try_send`
//! and stops reading clients while a request waits (see `cnxn`). Stages block on a full next
//! queue, which is safe because nothing downstream ever waits for something upstream: apply
//! wakes the selector before it waits for room in the outbox, and the role threads follow
//! the rules in their own modules (never wait on the sync stage's input while its output is
//! theirs to drain).
//!
//! Every thread is critical ([`critical`]): a panic or an I/O error it cannot recover from is
//! reported on the server's fatal channel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use log::info;

use super::cnxn::Selector;
use super::critical::{self, FatalTx};
use super::database::LogSink;
use super::processor::{self, Kind, Outbound, Request};
use super::{fourlw, reaper, Shared};
use crate::limits;

/// Which stages a server kind runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stages {
    /// prep -> sync -> apply.
    Standalone,
    /// prep -> role; role -> sync -> role; role -> apply. Runs session expiry and the reaper.
    Leader,
    /// role (the clients' requests); role -> sync -> role (proposals); role -> apply.
    Learner,
    /// read-only -> apply.
    ReadOnly,
    /// No stage: the client port answers as a server that is not running.
    NotServing,
}

/// What to build.
pub struct PipelineSpec {
    /// The stages.
    pub stages: Stages,
    /// The txn log the sync stage writes (standalone, leader; a learner unless it keeps txns
    /// in memory only).
    pub sink: Option<LogSink>,
    /// Whether the client port is bound.
    pub serve_clients: bool,
    /// Prep's first zxid follows this one (standalone and leader).
    pub last_zxid: i64,
    /// The last zxid applied to the tree: apply publishes it, prep purges its outstanding
    /// changes by it, the role reads it.
    pub applied: Arc<AtomicI64>,
}

/// The channel ends a role's own thread drives (absent ones belong to no one in this role).
#[derive(Default)]
pub struct Taps {
    /// What the first stage produced: prep's output (leader) or the clients' requests
    /// (learner).
    pub first_out: Option<Receiver<Request>>,
    /// Into the sync stage (leader, learner).
    pub sync_in: Option<Sender<Request>>,
    /// Out of the sync stage: durable (leader, learner).
    pub sync_out: Option<Receiver<Request>>,
    /// Into apply (leader, learner).
    pub apply_in: Option<Sender<Request>>,
}

/// A running pipeline: the selector, the stages and the tasks of one role.
pub struct Pipeline {
    shared: Arc<Shared>,
    input: Sender<Request>,
    /// The role's channel ends.
    pub taps: Taps,
    local_addr: Option<SocketAddr>,
    out_tx: Sender<Outbound>,
    waker: Arc<mio::Waker>,
    /// Keeps the waker's registry alive when no selector runs.
    _poll: Option<mio::Poll>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Builds and starts everything `spec` asks for over `shared`; threads report fatal errors
    /// on `fatal`.
    pub fn start(
        shared: Arc<Shared>,
        spec: PipelineSpec,
        fatal: &FatalTx,
    ) -> std::io::Result<Pipeline> {
        let (input, input_rx) = bounded::<Request>(limits::STAGE_QUEUE);
        let (out_tx, out_rx) = bounded::<Outbound>(limits::STAGE_QUEUE);
        let (words_tx, words_rx) = bounded::<fourlw::Job>(limits::FOUR_LETTER_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let (selector, waker, poll) = if spec.serve_clients {
            let selector = bind_retrying(&shared, &input, out_rx, &words_tx, &stop)?;
            let waker = selector.waker();
            (Some(selector), waker, None)
        } else {
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(1))?);
            (None, waker, Some(poll))
        };
        let local_addr = selector.as_ref().map(Selector::local_addr);
        let mut p = Pipeline {
            shared: shared.clone(),
            input,
            taps: Taps::default(),
            local_addr,
            out_tx,
            waker,
            _poll: poll,
            stop,
            handles: Vec::new(),
        };
        let applied = spec.applied.clone();
        match spec.stages {
            Stages::Standalone => {
                let (sync_in, sync_rx) = bounded(limits::STAGE_QUEUE);
                p.start_prep(input_rx, sync_in, spec.last_zxid, &applied, fatal)?;
                let apply_in = p.start_apply(applied, fatal)?;
                p.start_sync(spec.sink, sync_rx, apply_in, fatal)?;
                p.start_tasks(fatal)?;
            }
            Stages::Leader => {
                let (prep_out, first_out) = bounded(limits::STAGE_QUEUE);
                p.start_prep(input_rx, prep_out, spec.last_zxid, &applied, fatal)?;
                p.taps.first_out = Some(first_out);
                p.tap_sync(spec.sink, fatal)?;
                p.taps.apply_in = Some(p.start_apply(applied, fatal)?);
                p.start_tasks(fatal)?;
            }
            Stages::Learner => {
                p.taps.first_out = Some(input_rx);
                p.tap_sync(spec.sink, fatal)?;
                p.taps.apply_in = Some(p.start_apply(applied, fatal)?);
            }
            Stages::ReadOnly => {
                let apply_in = p.start_apply(applied, fatal)?;
                let shared = shared.clone();
                p.spawn("read-only", fatal, move || {
                    processor::readonly::run(&shared, input_rx, apply_in)
                })?;
            }
            Stages::NotServing => drop(input_rx),
        }
        if let Some(selector) = selector {
            let (s, out, waker) = (shared.clone(), p.out_tx.clone(), p.waker.clone());
            p.spawn("four-letter-words", fatal, move || fourlw::serve(&s, words_rx, &out, &waker))?;
            info!("serving clients on {} ({})", selector.local_addr(), shared.mode.as_str());
            p.spawn("cnxn", fatal, move || selector.run())?;
        }
        Ok(p)
    }

    /// Into the first stage: the selector's requests, forwarded ones, internal ones.
    pub fn input(&self) -> &Sender<Request> {
        &self.input
    }

    /// The bound client address, when the client port is served.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Hands a message to the connection thread and wakes it (the role's own answers, such as
    /// a REVALIDATE reply).
    pub fn notify(&self, msg: Outbound) {
        let _ = self.out_tx.send(msg);
        let _ = self.waker.wake();
    }

    /// Stops every thread (the selector closes its connections) and joins them.
    pub fn stop(self) {
        let Pipeline { shared, input, taps, out_tx, waker, stop, handles, .. } = self;
        stop.store(true, Ordering::SeqCst);
        shared.running.store(false, Ordering::SeqCst);
        drop((input, taps, out_tx));
        let _ = waker.wake();
        for h in handles {
            let _ = h.join();
        }
    }

    fn spawn(
        &mut self,
        name: &str,
        fatal: &FatalTx,
        body: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> std::io::Result<()> {
        self.handles.push(critical::spawn(name, fatal, body)?);
        Ok(())
    }

    fn start_prep(
        &mut self,
        input: Receiver<Request>,
        output: Sender<Request>,
        last_zxid: i64,
        applied: &Arc<AtomicI64>,
        fatal: &FatalTx,
    ) -> std::io::Result<()> {
        let prep = processor::prep::Prep::new(self.shared.clone(), last_zxid, applied.clone());
        self.spawn("prep", fatal, move || prep.run(input, output))
    }

    fn start_sync(
        &mut self,
        sink: Option<LogSink>,
        input: Receiver<Request>,
        output: Sender<Request>,
        fatal: &FatalTx,
    ) -> std::io::Result<()> {
        let Some(sink) = sink else {
            return Err(std::io::Error::other("this role's sync stage needs a txn log"));
        };
        let warn = self.shared.config.fsync_warning_threshold;
        let sync = processor::sync::Sync::new(sink, warn);
        self.spawn("sync", fatal, move || sync.run(input, output))
    }

    /// A sync stage whose both ends are the role's.
    fn tap_sync(&mut self, sink: Option<LogSink>, fatal: &FatalTx) -> std::io::Result<()> {
        let Some(sink) = sink else { return Ok(()) };
        let (sync_in, sync_rx) = bounded(limits::STAGE_QUEUE);
        let (sync_tx, sync_out) = bounded(limits::STAGE_QUEUE);
        self.start_sync(Some(sink), sync_rx, sync_tx, fatal)?;
        self.taps.sync_in = Some(sync_in);
        self.taps.sync_out = Some(sync_out);
        Ok(())
    }

    fn start_apply(
        &mut self,
        applied: Arc<AtomicI64>,
        fatal: &FatalTx,
    ) -> std::io::Result<Sender<Request>> {
        let (tx, rx) = bounded::<Request>(limits::STAGE_QUEUE);
        let apply = processor::apply::Apply::new(
            self.shared.clone(),
            applied,
            self.out_tx.clone(),
            self.waker.clone(),
        );
        self.spawn("apply", fatal, move || apply.run(rx))?;
        Ok(tx)
    }

    /// Session expiry and the container reaper (standalone and leader: the servers that decide
    /// about sessions and containers).
    fn start_tasks(&mut self, fatal: &FatalTx) -> std::io::Result<()> {
        let (s, p, st) = (self.shared.clone(), self.input.clone(), self.stop.clone());
        self.spawn("session-expiry", fatal, move || expiry_loop(&s, &p, &st))?;
        let (s, p, st) = (self.shared.clone(), self.input.clone(), self.stop.clone());
        self.spawn("container-reaper", fatal, move || reaper::run(&s, &p, &st))
    }
}

/// Binds the client port; the previous role's listener may take a moment to go.
fn bind_retrying(
    shared: &Arc<Shared>,
    input: &Sender<Request>,
    out_rx: Receiver<Outbound>,
    words: &Sender<fourlw::Job>,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Selector> {
    let mut tries = 0;
    loop {
        let (i, o, w, s) = (input.clone(), out_rx.clone(), words.clone(), stop.clone());
        match Selector::bind(shared.clone(), i, o, w, s) {
            Ok(s) => return Ok(s),
            Err(e) if tries < 50 && e.kind() == std::io::ErrorKind::AddrInUse => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The session-expiry thread: sleeps to the next bucket, expires due sessions, submits their
/// closeSession requests.
fn expiry_loop(shared: &Shared, input: &Sender<Request>, stop: &AtomicBool) -> Result<(), String> {
    let tick = shared.config.tick_time;
    while !stop.load(Ordering::SeqCst) {
        let now = shared.now_ms();
        let expired = shared.with_sessions(|s| s.expire(now));
        for session in expired {
            info!("expiring session 0x{session:x}");
            let op = crate::proto::OpCode::CloseSession.code();
            let req = Request::new(None, session, 0, op, Kind::Expire);
            if input.send(req).is_err() {
                // The pipeline is stopping.
                return Ok(());
            }
        }
        let next = shared.with_sessions(|s| s.next_expiry_ms());
        let now = shared.now_ms();
        let wait = match next {
            Some(at) if at > now => Duration::from_millis(at - now),
            Some(_) => Duration::from_millis(1),
            None => tick,
        };
        std::thread::sleep(wait.min(Duration::from_millis(100)));
    }
    Ok(())
}
