//! The quorum epoch files `currentEpoch` and `acceptedEpoch` in `<dataDir>/version-2`
//! (persistence-formats.md §7; ZooKeeper's `QuorumPeer.writeLongToFile`,
//! `AtomicFileWritingIdiom`).
//!
//! Format: the epoch as decimal ASCII, no newline (a trailing newline or spaces are accepted on
//! read). Writes are atomic: `<name>.tmp` is written, fsynced and renamed over `<name>`, then
//! the directory is fsynced, so a crash leaves either the old or the new value.
//!
//! Runs on the quorum peer thread; blocking file I/O only.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the epoch this server acknowledged as current (after NEWLEADER).
pub const CURRENT_EPOCH: &str = "currentEpoch";

/// File name of the epoch this server accepted (after LEADERINFO).
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";

/// Why an epoch file could not be read or written.
#[derive(Debug)]
pub enum EpochError {
    /// Reading, writing, syncing or renaming the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file does not hold a decimal number.
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it holds (at most 64 bytes).
        content: String,
    },
}

impl fmt::Display for EpochError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpochError::Io { path, source } => {
                write!(f, "epoch file {}: {source}", path.display())
            }
            EpochError::Malformed { path, content } => {
                write!(f, "epoch file {} does not hold a number: {content:?}", path.display())
            }
        }
    }
}

impl std::error::Error for EpochError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpochError::Io { source, .. } => Some(source),
            EpochError::Malformed { .. } => None,
        }
    }
}

/// Reads the epoch in `dir/name`; `Ok(None)` if the file does not exist (the caller then
/// creates it from the last zxid's epoch, §7).
pub fn read_epoch(dir: &Path, name: &str) -> Result<Option<u64>, EpochError> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EpochError::Io { path, source }),
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.trim().parse::<u64>() {
        Ok(epoch) => Ok(Some(epoch)),
        Err(_) => {
            let content: String = text.chars().take(64).collect();
            Err(EpochError::Malformed { path, content })
        }
    }
}

/// Writes `epoch` to `dir/name` atomically (tmp file, fsync, rename, directory fsync).
pub fn write_epoch(dir: &Path, name: &str, epoch: u64) -> Result<(), EpochError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EpochError::Io { path, source }
    };
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(epoch.to_string().as_bytes()).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir).map_err(io_err(dir))
}

/// Makes a rename or file creation in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_round_trips_as_decimal_text_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_epoch(dir.path(), CURRENT_EPOCH).unwrap(), None);
        write_epoch(dir.path(), CURRENT_EPOCH, 7).unwrap();
        write_epoch(dir.path(), CURRENT_EPOCH, 12).unwrap();
        assert_eq!(fs::read(dir.path().join(CURRENT_EPOCH)).unwrap(), b"12");
        assert_eq!(read_epoch(dir.path(), CURRENT_EPOCH).unwrap(), Some(12));
        assert!(!dir.path().join("currentEpoch.tmp").exists());
    }

    #[test]
    fn trailing_newline_is_accepted_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ACCEPTED_EPOCH), "3\n").unwrap();
        assert_eq!(read_epoch(dir.path(), ACCEPTED_EPOCH).unwrap(), Some(3));
        fs::write(dir.path().join(ACCEPTED_EPOCH), "three").unwrap();
        let err = read_epoch(dir.path(), ACCEPTED_EPOCH).unwrap_err();
        assert!(matches!(err, EpochError::Malformed { .. }));
        assert!(err.to_string().contains("acceptedEpoch"), "{err}");
    }
}
