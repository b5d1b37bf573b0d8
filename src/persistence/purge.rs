//! Deleting old snapshots and txn logs (persistence-formats.md §5.3; `PurgeTxnLog`,
//! `DatadirCleanupManager`).
//!
//! Keep the newest N valid snapshots (N >= 3) and every txn log needed to replay from the oldest
//! of them: the newest log starting at or before its zxid, and all later logs. Delete every
//! other `log.*` and every `snapshot.*` older than that snapshot. As in ZooKeeper, a name counts
//! if it is `<prefix>.<hex>` optionally followed by more dot-separated parts, so stale
//! `snapshot.<zxid>.tmp` files and old compressed snapshots go too; other names are left alone.
//!
//! [`files_to_purge`] is the pure decision; [`purge`] lists the directories and deletes. Runs on
//! the purge timer thread or in `rzk-tool purge`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use log::info;

use super::snapshot::find_n_most_recent_snapshots;
use super::{log_files_from, version_dir, LOG_PREFIX, SNAPSHOT_PREFIX};

/// The fewest snapshots a purge may keep (`PurgeTxnLog` refuses fewer).
pub const MIN_RETAIN_COUNT: usize = crate::limits::SNAP_RETAIN_COUNT_MIN as usize;

/// Why a purge failed.
#[derive(Debug)]
pub enum PurgeError {
    /// Fewer than [`MIN_RETAIN_COUNT`] snapshots were to be kept.
    RetainTooSmall(usize),
    /// Listing a directory or deleting a file failed.
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl fmt::Display for PurgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PurgeError::RetainTooSmall(n) => {
                write!(f, "must retain at least {MIN_RETAIN_COUNT} snapshots, not {n}")
            }
            PurgeError::Io { path, source } => write!(f, "purge {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for PurgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PurgeError::Io { source, .. } => Some(source),
            PurgeError::RetainTooSmall(_) => None,
        }
    }
}

/// Which files to delete. `logs` and `snapshots` are every log and snapshot file with its name
/// zxid (any order); `valid_snapshots` are the zxids of the newest valid snapshots, newest
/// first (at least `retain` of them if there are that many). Nothing is deleted when there is
/// no valid snapshot.
pub fn files_to_purge<T: Clone + Ord>(
    logs: &[(i64, T)],
    snapshots: &[(i64, T)],
    valid_snapshots: &[i64],
    retain: usize,
) -> Vec<T> {
    let kept = &valid_snapshots[..retain.min(valid_snapshots.len())];
    let Some(&oldest_kept) = kept.last() else { return Vec::new() };
    let mut sorted_logs = logs.to_vec();
    sorted_logs.sort();
    let needed_logs = log_files_from(&sorted_logs, oldest_kept);
    let mut doomed: Vec<T> = sorted_logs
        .into_iter()
        .filter(|log| !needed_logs.contains(log) && log.0 < oldest_kept)
        .map(|(_, f)| f)
        .collect();
    doomed.extend(snapshots.iter().filter(|(z, _)| *z < oldest_kept).map(|(_, f)| f.clone()));
    doomed
}

/// Purges `<data_log_dir>/version-2` and `<snap_dir>/version-2` (the same directory when
/// logs are kept with snapshots), keeping the newest `retain` valid snapshots. Returns the
/// deleted files.
pub fn purge(
    data_log_dir: &Path,
    snap_dir: &Path,
    retain: usize,
) -> Result<Vec<PathBuf>, PurgeError> {
    if retain < MIN_RETAIN_COUNT {
        return Err(PurgeError::RetainTooSmall(retain));
    }
    let log_dir = version_dir(data_log_dir);
    let snap_dir = version_dir(snap_dir);
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PurgeError::Io { path, source }
    };
    let valid: Vec<i64> = find_n_most_recent_snapshots(&snap_dir, retain)
        .map_err(io_error(&snap_dir))?
        .into_iter()
        .map(|(zxid, _)| zxid)
        .collect();
    let logs = purgeable_files(&log_dir, LOG_PREFIX).map_err(io_error(&log_dir))?;
    let snapshots = purgeable_files(&snap_dir, SNAPSHOT_PREFIX).map_err(io_error(&snap_dir))?;
    let doomed = files_to_purge(&logs, &snapshots, &valid, retain);
    for path in &doomed {
        info!("purge: removing {}", path.display());
        fs::remove_file(path).map_err(io_error(path))?;
    }
    Ok(doomed)
}

/// Files named `<prefix>.<hex>[.more]` with their zxid (`Util.getZxidFromName` on the second
/// dot-separated part).
fn purgeable_files(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let mut parts = name.split('.');
        if parts.next() != Some(prefix) {
            continue;
        }
        let Some(hex) = parts.next() else { continue };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if let Ok(zxid) = i64::from_str_radix(hex, 16) {
            out.push((zxid, entry.path()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::data::StatPersisted;
    use crate::persistence::snapshot::{SnapshotWriter, OPEN_ACL_REF};

    #[test]
    fn keeps_newest_snapshots_and_the_logs_that_replay_them() {
        let logs = vec![(1, "log.1"), (0x50, "log.50"), (0x90, "log.90"), (0x120, "log.120")];
        let snaps = vec![
            (0, "snapshot.0"),
            (0x40, "snapshot.40"),
            (0x60, "snapshot.60"),
            (0x100, "snapshot.100"),
            (0x130, "snapshot.130"),
        ];
        let valid = [0x130, 0x100, 0x60, 0x40, 0];
        let mut doomed = files_to_purge(&logs, &snaps, &valid, 3);
        doomed.sort();
        // Oldest kept snapshot 0x60: log.50 may hold 0x61.. so it stays.
        assert_eq!(doomed, vec!["log.1", "snapshot.0", "snapshot.40"]);
        // A log starting exactly at the oldest kept zxid is enough by itself.
        let logs = vec![(1, "log.1"), (0x60, "log.60")];
        let mut doomed = files_to_purge(&logs, &snaps, &valid, 3);
        doomed.sort();
        assert_eq!(doomed, vec!["log.1", "snapshot.0", "snapshot.40"]);
    }

    #[test]
    fn keeps_everything_with_few_or_no_valid_snapshots() {
        let logs = vec![(1, "log.1"), (0x50, "log.50")];
        let snaps = vec![(0, "snapshot.0"), (0x40, "snapshot.40")];
        assert!(files_to_purge(&logs, &snaps, &[0x40, 0], 3).is_empty());
        assert!(files_to_purge(&logs, &snaps, &[], 3).is_empty());
        // An invalid (incomplete) newer snapshot does not count as retained.
        let snaps = vec![(0, "snapshot.0"), (0x40, "snapshot.40"), (0x90, "snapshot.90")];
        assert!(files_to_purge(&logs, &snaps, &[0x40, 0], 3).is_empty());
    }

    fn snapshot(dir: &Path, zxid: i64) {
        let mut w = SnapshotWriter::create(dir, zxid).unwrap();
        w.sessions(&[]).unwrap();
        w.acl_cache(&[]).unwrap();
        w.node("/", None, OPEN_ACL_REF, &StatPersisted::default()).unwrap();
        w.finish(None, zxid).unwrap();
    }

    #[test]
    fn purge_deletes_old_files_in_separate_directories() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let snap_dir = version_dir(data.path());
        let log_dir = version_dir(logs.path());
        fs::create_dir_all(&snap_dir).unwrap();
        fs::create_dir_all(&log_dir).unwrap();
        for zxid in [0, 0x10, 0x20, 0x30, 0x40] {
            snapshot(&snap_dir, zxid);
        }
        for name in ["log.1", "log.15", "log.25", "log.35", "log.zz", "notes"] {
            fs::write(log_dir.join(name), b"").unwrap();
        }
        fs::write(snap_dir.join("snapshot.18.tmp"), b"").unwrap();
        fs::write(snap_dir.join("currentEpoch"), b"1").unwrap();
        assert!(matches!(purge(logs.path(), data.path(), 2), Err(PurgeError::RetainTooSmall(2))));
        let mut deleted: Vec<String> = purge(logs.path(), data.path(), 3)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        deleted.sort();
        assert_eq!(deleted, ["log.1", "snapshot.0", "snapshot.10", "snapshot.18.tmp"]);
        let mut left: Vec<String> = fs::read_dir(&log_dir)
            .unwrap()
            .chain(fs::read_dir(&snap_dir).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "currentEpoch",
                "log.15",
                "log.25",
                "log.35",
                "log.zz",
                "notes",
                "snapshot.20",
                "snapshot.30",
                "snapshot.40"
            ]
        );
    }
}
