//! Sync stage (ZooKeeper's `SyncRequestProcessor`): the only stage that writes disk.
//!
//! Group commit: it takes every request already queued, appends their txns to the txn log,
//! commits once (fsync unless `forceSync=no`), and only then hands the whole batch to the
//! apply stage, so no reply leaves before its txn is durable. Requests without a txn (reads)
//! travel in the same batches to keep each session's order.
//!
//! Runs on its own thread; the log itself sits behind the [`TxnSink`] trait.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, error, warn};

use super::Request;
use crate::jute::txn::TxnEntry;

/// Most requests gathered into one commit.
const MAX_BATCH: usize = 1000;

/// Where txns go to become durable.
pub trait TxnSink: Send {
    /// Appends one txn (not yet durable).
    fn append(&mut self, entry: &TxnEntry) -> std::io::Result<()>;
    /// Makes everything appended durable.
    fn commit(&mut self) -> std::io::Result<()>;
}

/// The sync stage.
pub struct Sync<S: TxnSink> {
    sink: S,
    warn_threshold: Duration,
}

impl<S: TxnSink> Sync<S> {
    /// A sync stage over `sink`; commits slower than `warn_threshold` log a warning.
    pub fn new(sink: S, warn_threshold: Duration) -> Self {
        Sync { sink, warn_threshold }
    }

    /// The thread body. An I/O error on the log is fatal: acknowledging writes that are not
    /// durable would break the contract, so the stage stops and the server goes down.
    pub fn run(mut self, input: Receiver<Request>, output: Sender<Request>) {
        let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = input.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match input.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let mut wrote = false;
            for r in &batch {
                if let Some(entry) = &r.txn {
                    if let Err(e) = self.sink.append(entry) {
                        error!("sync stage: cannot append zxid 0x{:x}: {e}", entry.header.zxid);
                        std::process::exit(3);
                    }
                    wrote = true;
                }
            }
            if wrote {
                let start = Instant::now();
                if let Err(e) = self.sink.commit() {
                    error!("sync stage: commit failed: {e}");
                    std::process::exit(3);
                }
                let took = start.elapsed();
                if took > self.warn_threshold {
                    warn!(
                        "fsync-ing the write ahead log took {}ms which will adversely effect \
                         operation latency",
                        took.as_millis()
                    );
                }
            }
            for r in batch.drain(..) {
                if output.send(r).is_err() {
                    error!("sync stage: apply stage is gone, stopping");
                    return;
                }
            }
        }
        debug!("sync stage: input closed, stopping");
    }
}
