//! Critical threads (ZooKeeper's `ZooKeeperCriticalThread`): every thread of a running server
//! is critical. A thread that panics or meets an error it cannot recover from (an I/O error on
//! the txn log, say) reports a [`Fatal`] on the server's fatal channel and ends; whoever owns
//! the server (the `rzk-server` binary, or a test embedding a server) receives it and takes the
//! whole server down, so that health checks never pass while requests are not served.
//!
//! The binary installs a panic hook as well, which logs the panic with the thread's name and
//! exits at once; in-process embeddings get the same outcome through `catch_unwind` here.
//!
//! No I/O beyond spawning threads; no process exit (the binary is the only place that exits).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use log::error;

/// Why a critical thread ended the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// The thread's name.
    pub thread: String,
    /// What went wrong.
    pub error: String,
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "severe unrecoverable error, from thread {}: {}", self.thread, self.error)
    }
}

impl std::error::Error for Fatal {}

/// Where critical threads report; cloned into every thread of one server (or peer).
#[derive(Debug, Clone)]
pub struct FatalTx(Sender<Fatal>);

impl FatalTx {
    /// A channel for one server: the sender for its threads, the receiver for its owner.
    pub fn channel() -> (FatalTx, Receiver<Fatal>) {
        // Not a stage queue: at most one message per thread is ever sent.
        let (tx, rx) = crossbeam_channel::unbounded();
        (FatalTx(tx), rx)
    }

    /// Reports a fatal error of `thread` (logged here, once).
    pub fn report(&self, thread: &str, error: impl Into<String>) {
        let fatal = Fatal { thread: thread.to_owned(), error: error.into() };
        // ZooKeeperCriticalThread's words, so operators grep both servers alike.
        error!("Severe unrecoverable error, from thread {}: {}", fatal.thread, fatal.error);
        // The owner may already be gone (the server is stopping): nothing left to tell.
        let _ = self.0.send(fatal);
    }
}

/// Spawns a named critical thread. `body` returning `Err` or panicking reports a [`Fatal`];
/// returning `Ok` is a normal end (the server is stopping).
pub fn spawn(
    name: &str,
    fatal: &FatalTx,
    body: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let fatal = fatal.clone();
    let thread = name.to_owned();
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fatal.report(&thread, e),
            Err(panic) => fatal.report(&thread, format!("panicked: {}", panic_message(&*panic))),
        }
    })
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_panics_are_reported_normal_ends_are_not() {
        let (tx, rx) = FatalTx::channel();
        spawn("ok", &tx, || Ok(())).unwrap().join().unwrap();
        spawn("err", &tx, || Err("disk on fire".into())).unwrap().join().unwrap();
        spawn("boom", &tx, || panic!("invariant broken")).unwrap().join().unwrap();
        let got: Vec<Fatal> = rx.try_iter().collect();
        assert_eq!(
            got,
            vec![
                Fatal { thread: "err".into(), error: "disk on fire".into() },
                Fatal { thread: "boom".into(), error: "panicked: invariant broken".into() },
            ]
        );
        assert_eq!(got[0].to_string(), "severe unrecoverable error, from thread err: disk on fire");
    }
}
