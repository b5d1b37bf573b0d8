//! The purge task (ZooKeeper's `DatadirCleanupManager`): every `autopurge.purgeInterval`
//! hours, keep the newest `autopurge.snapRetainCount` snapshots and the txn logs they need
//! (the file work is [`crate::persistence::purge`]). Runs once at start, like ZooKeeper's
//! timer, on its own thread for the life of the process; off when the interval is unset.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use log::{info, warn};

use super::critical::{self, FatalTx};
use crate::config::ServerConfig;
use crate::persistence::purge;

/// The running purge task.
pub struct PurgeTask {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl PurgeTask {
    /// Starts the task if `config` has a purge interval.
    pub fn start(config: &ServerConfig, fatal: &FatalTx) -> std::io::Result<Option<PurgeTask>> {
        let Some(interval) = config.purge_interval.filter(|i| !i.is_zero()) else {
            return Ok(None);
        };
        let retain = (config.snap_retain_count as usize).max(purge::MIN_RETAIN_COUNT);
        let (data_dir, log_dir) = (config.data_dir.clone(), config.data_log_dir.clone());
        info!("purge task: keeping {retain} snapshots, every {}h", interval.as_secs() / 3600);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = critical::spawn("purge", fatal, move || {
            run(&data_dir, &log_dir, retain, interval, &flag);
            Ok(())
        })?;
        Ok(Some(PurgeTask { stop, handle }))
    }

    /// Stops the task and joins it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.handle.join();
    }
}

fn run(data_dir: &Path, log_dir: &Path, retain: usize, interval: Duration, stop: &AtomicBool) {
    loop {
        match purge::purge(log_dir, data_dir, retain) {
            Ok(removed) if !removed.is_empty() => {
                info!("purge task removed {} old files", removed.len())
            }
            Ok(_) => {}
            // Like DatadirCleanupManager: a failed purge is logged and tried again next time.
            Err(e) => warn!("purge task failed: {e}"),
        }
        let mut waited = Duration::ZERO;
        while waited < interval {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let step = Duration::from_millis(200).min(interval - waited);
            std::thread::sleep(step);
            waited += step;
        }
    }
}
