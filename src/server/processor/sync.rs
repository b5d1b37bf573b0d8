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
use log::{debug, warn};

use super::Request;
use crate::jute::txn::TxnEntry;

/// Where txns go to become durable.
pub trait TxnSink: Send {
    /// Appends one txn (not yet durable).
    fn append(&mut self, entry: &TxnEntry) -> std::io::Result<()>;
    /// Makes everything appended durable.
    fn commit(&mut self) -> std::io::Result<()>;
}

impl<T: TxnSink + ?Sized> TxnSink for Box<T> {
    fn append(&mut self, entry: &TxnEntry) -> std::io::Result<()> {
        (**self).append(entry)
    }

    fn commit(&mut self) -> std::io::Result<()> {
        (**self).commit()
    }
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
    /// durable would break the contract, so the stage stops passing requests on and returns
    /// the error, which ends the server (see [`crate::server::critical`]).
    pub fn run(mut self, input: Receiver<Request>, output: Sender<Request>) -> Result<(), String> {
        let mut batch: Vec<Request> = Vec::with_capacity(crate::limits::SYNC_BATCH_MAX);
        while let Ok(first) = input.recv() {
            batch.push(first);
            while batch.len() < crate::limits::SYNC_BATCH_MAX {
                match input.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.write_batch(&batch)?;
            for r in batch.drain(..) {
                if output.send(r).is_err() {
                    debug!("sync stage: the next stage is gone, stopping");
                    return Ok(());
                }
            }
        }
        debug!("sync stage: input closed, stopping");
        Ok(())
    }

    fn commit_sink(&mut self) -> std::io::Result<()> {
        fail::fail_point!("sync::commit", |_| Err(std::io::Error::other("injected fault")));
        self.sink.commit()
    }

    /// Appends the batch's txns and makes them durable.
    fn write_batch(&mut self, batch: &[Request]) -> Result<(), String> {
        let mut wrote = false;
        for entry in batch.iter().filter_map(|r| r.txn.as_ref()) {
            self.sink.append(entry).map_err(|e| {
                format!("cannot append zxid 0x{:x} to the txn log: {e}", entry.header.zxid)
            })?;
            wrote = true;
        }
        if !wrote {
            return Ok(());
        }
        let start = Instant::now();
        self.commit_sink().map_err(|e| format!("cannot commit the txn log: {e}"))?;
        let took = start.elapsed();
        if took > self.warn_threshold {
            warn!(
                "fsync-ing the write ahead log took {}ms which will adversely effect operation \
                 latency",
                took.as_millis()
            );
        }
        Ok(())
    }
}
