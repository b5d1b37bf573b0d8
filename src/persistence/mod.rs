//! On-disk formats shared with Apache ZooKeeper: txn logs, snapshots, the tree digest, epoch
//! files and purging (persistence-formats.md).
//!
//! This module owns the bytes on disk and nothing else: it knows no `DataTree`, no sessions
//! table and no threads. Callers hand it records (`TxnEntry`, node parts) and get records back.
//! The sync stage is the only writer of txn logs; snapshots are written by the snapshot thread;
//! recovery reads both before the server starts.
//!
//! Directory layout (§1): every file lives in `<dir>/version-2/` ([`VERSION_DIR`]); txn logs are
//! named `log.<zxid>` and snapshots `snapshot.<zxid>`, where `<zxid>` is lowercase hex without
//! leading zeros or `0x` (Java's `Long.toHexString`).
//!
//! - [`adler32`]: the checksum of log records and snapshot seals.
//! - [`txnlog`]: the txn log writer (memory-mapped, preallocated) and reader.
//! - [`snapshot`]: streaming snapshot writer and reader.
//! - [`digest`]: the per-node CRC-32 tree digest.
//! - [`purge`]: which old logs and snapshots may be deleted.
//! - [`epoch`]: `currentEpoch` / `acceptedEpoch`.

pub mod adler32;
pub mod digest;
pub mod epoch;
pub mod purge;
pub mod snapshot;
pub mod txnlog;

use std::path::{Path, PathBuf};

/// Name of the versioned subdirectory holding logs and snapshots ("version-" + 2).
pub const VERSION_DIR: &str = "version-2";

/// Prefix of txn log file names.
pub const LOG_PREFIX: &str = "log";

/// Prefix of snapshot file names.
pub const SNAPSHOT_PREFIX: &str = "snapshot";

/// A data file's bytes for the readers: the file mapped read-only, or bytes already in memory
/// (the readers' `from_bytes` entry points, for tools and the fuzz targets). An empty file,
/// which cannot be mapped, reads as no bytes.
#[derive(Debug)]
pub(crate) enum ReadMap {
    /// A mapped file.
    Mapped(memmap2::Mmap),
    /// Bytes handed over by the caller.
    Owned(Vec<u8>),
}

impl ReadMap {
    /// Maps all of `file`.
    pub(crate) fn open(file: &std::fs::File) -> std::io::Result<ReadMap> {
        if file.metadata()?.len() == 0 {
            return Ok(ReadMap::Owned(Vec::new()));
        }
        // SAFETY: rzk never shrinks a file it reads: txn logs only grow (the writer stores
        // within the preallocated length) and snapshots are written to a temporary file and
        // renamed into place, so no mapped page disappears while it is read.
        Ok(ReadMap::Mapped(unsafe { memmap2::Mmap::map(file)? }))
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            ReadMap::Mapped(map) => map,
            ReadMap::Owned(bytes) => bytes,
        }
    }
}

/// `<base>/version-2`: where a dataDir or dataLogDir keeps its files.
pub fn version_dir(base: &Path) -> PathBuf {
    base.join(VERSION_DIR)
}

/// `<prefix>.<zxid hex>`, e.g. `log.1`, `snapshot.100000002`.
pub fn file_name(prefix: &str, zxid: i64) -> String {
    format!("{prefix}.{zxid:x}")
}

/// The zxid in a name of exactly the form `<prefix>.<hex>` (hex in any case); `None` for
/// anything else, including `.tmp` files and compressed snapshots (`snapshot.<hex>.gz`).
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?.strip_prefix('.')?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

/// Files `<prefix>.<hex>` in `dir` with their zxids, sorted by zxid ascending. Names that do
/// not parse are ignored, as ZooKeeper's `Util.getZxidFromName` does.
pub fn list_files(dir: &Path, prefix: &str) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(zxid) = zxid_from_name(name, prefix) {
            out.push((zxid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The txn log files needed to read every txn from `zxid` on, given all log files sorted by
/// zxid ascending: the newest file starting at or before `zxid` (it may contain `zxid`) and all
/// later ones. `FileTxnLog.getLogFiles` (§5.2).
pub fn log_files_from<T: Clone>(sorted_logs: &[(i64, T)], zxid: i64) -> Vec<(i64, T)> {
    let start = sorted_logs.iter().map(|(z, _)| *z).filter(|z| *z <= zxid).max().unwrap_or(0);
    sorted_logs.iter().filter(|(z, _)| *z >= start).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_hex_without_padding() {
        assert_eq!(file_name(LOG_PREFIX, 1), "log.1");
        assert_eq!(file_name(SNAPSHOT_PREFIX, 0x1_0000_0002), "snapshot.100000002");
        assert_eq!(zxid_from_name("log.1A", LOG_PREFIX), Some(0x1a));
        assert_eq!(zxid_from_name("snapshot.0", SNAPSHOT_PREFIX), Some(0));
        assert_eq!(zxid_from_name("snapshot.5.tmp", SNAPSHOT_PREFIX), None);
        assert_eq!(zxid_from_name("snapshot.5.gz", SNAPSHOT_PREFIX), None);
        assert_eq!(zxid_from_name("snapshot.xyz", SNAPSHOT_PREFIX), None);
        assert_eq!(zxid_from_name("logs.5", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("log.", LOG_PREFIX), None);
    }

    #[test]
    fn log_files_from_keeps_the_file_that_may_hold_the_zxid() {
        let logs = vec![(1, 'a'), (0x12, 'b'), (0x30, 'c')];
        assert_eq!(log_files_from(&logs, 0x11), vec![(1, 'a'), (0x12, 'b'), (0x30, 'c')]);
        assert_eq!(log_files_from(&logs, 0x12), vec![(0x12, 'b'), (0x30, 'c')]);
        assert_eq!(log_files_from(&logs, 0x2f), vec![(0x12, 'b'), (0x30, 'c')]);
        assert_eq!(log_files_from(&logs, 0x40), vec![(0x30, 'c')]);
        assert_eq!(log_files_from(&logs, 0), vec![(1, 'a'), (0x12, 'b'), (0x30, 'c')]);
    }
}
