//! ZooKeeper's txn log (persistence-formats.md §3; `FileTxnLog`, `FilePadding`, `Util`): the
//! memory-mapped writer the sync stage appends to, the reader recovery replays, and
//! [`truncate`] for a follower's TRUNC.
//!
//! ```text
//! file    = FileHeader record* zero-fill
//! FileHeader = magic:int "ZKLG" (0x5a4b4c47)  version:int 2  dbid:long 0      -- 16 bytes
//! record  = checksum:long   Adler-32 of payload, unsigned 32-bit value in a long
//!           length:int      payload length, > 0
//!           payload         TxnHeader txn-record [TxnDigest]   (jute, see jute::txn)
//!           0x42            'B', end of record
//! ```
//!
//! Files are `<dir>/log.<zxid hex>`, named after the first txn they hold; `dir` is a
//! `version-2` directory. A reader stops a file at the first record whose length is 0 (the
//! zero fill), at end of file, at a truncated record or at a missing 'B', and moves on to the
//! next file; the file size says nothing about where the records end.
//!
//! Writing ([`TxnLogWriter`]): the sync stage is the only writer. Records are copied into a
//! shared memory map of a file preallocated in [`DEFAULT_PREALLOC_BYTES`] steps exactly as
//! ZooKeeper's `FilePadding` grows it (with real blocks from `posix_fallocate`, not sparse, and
//! remapped when it grows). [`TxnLogWriter::commit`] is the group commit: with `force_sync` it msyncs
//! the dirty range (an fdatasync of those pages) and returns how long that took. A clean close
//! leaves the zero tail in place, as ZooKeeper does.
//!
//! A full disk shows up when the log grows: the allocation fails with ENOSPC naming the file,
//! the sync stage returns the error and the server stops (ZooKeeper's critical sync thread
//! does the same); nothing in the failed batch was acknowledged. Because every mapped page
//! has a block, a store into the map never raises SIGBUS for lack of space. It still would if
//! another process truncated a mapped file: data directories must not be shared.
//!
//! Reading ([`read_log`]): damage is classified so recovery can tell a torn tail (crash in the
//! middle of a write: harmless, the txns were never acknowledged) from corruption (data that was
//! acknowledged is unreadable):
//!
//! - In the newest log file, a damaged record (truncated, missing 'B', bad length, bad checksum)
//!   after which no valid record follows is a torn tail: iteration ends and
//!   [`TxnIterator::torn_tail`] says where the valid prefix ends, for [`truncate_tail`].
//! - A bad checksum followed by a valid record, or anywhere in an older file, is a hard
//!   [`LogError::Corrupt`] naming the file and byte offset. (ZooKeeper fails on any bad
//!   checksum, even in the tail, and tolerates a truncated record or a missing 'B' in any file;
//!   older files get that tolerance here too, with a warning.)
//! - A record whose checksum matches but whose txn cannot be decoded is always a hard error,
//!   even at the tail: a torn write cannot produce a matching checksum, so these are bytes that
//!   were written on purpose (say, a txn type from a newer version) and must not be cut away.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::warn;
use memmap2::MmapMut;

use super::adler32::adler32;
use super::epoch::sync_dir;
use super::{file_name, list_files, log_files_from, ReadMap, LOG_PREFIX};
use crate::jute::txn::TxnEntry;
use crate::jute::{DecodeError, Writer};

/// "ZKLG": the first four bytes of every txn log.
pub const LOG_MAGIC: i32 = 0x5a4b_4c47;

/// The log format version written and expected.
pub const LOG_VERSION: i32 = 2;

/// The dbid written in log headers (always 0).
pub const LOG_DBID: i64 = 0;

/// Size of the FileHeader.
pub const HEADER_BYTES: u64 = 16;

/// Default preallocation step: `zookeeper.preAllocSize` default, 65,536 KiB.
pub const DEFAULT_PREALLOC_BYTES: u64 = 64 * 1024 * 1024;

/// The file is grown when the write position comes within this many bytes of its end
/// (`FilePadding.padFile`).
const PAD_MARGIN: u64 = 4096;

/// The byte after each payload.
const END_OF_RECORD: u8 = b'B';

/// checksum (8) + length (4) before the payload.
const RECORD_PREFIX: usize = 12;

/// Why a record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file ends in the middle of the FileHeader.
    ShortHeader,
    /// The file ends in the middle of the record.
    Truncated,
    /// The record length is negative.
    BadLength(i32),
    /// The byte after the payload is not 'B'.
    MissingMarker(u8),
    /// The stored checksum does not match the payload.
    BadChecksum {
        /// The checksum in the file.
        stored: i64,
        /// Adler-32 of the payload as read.
        computed: u32,
    },
    /// The payload is not a txn this server can decode.
    Undecodable(DecodeError),
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::ShortHeader => write!(f, "file ends inside the file header"),
            Damage::Truncated => write!(f, "file ends inside the record"),
            Damage::BadLength(n) => write!(f, "bad record length {n}"),
            Damage::MissingMarker(b) => write!(f, "end-of-record byte is 0x{b:02x}, not 'B'"),
            Damage::BadChecksum { stored, computed } => {
                write!(f, "checksum mismatch: stored 0x{stored:x}, computed 0x{computed:x}")
            }
            Damage::Undecodable(e) => write!(f, "undecodable txn: {e}"),
        }
    }
}

/// Why the txn log could not be written or read.
#[derive(Debug)]
pub enum LogError {
    /// A file operation failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file does not start with "ZKLG".
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes.
        magic: i32,
    },
    /// A record that is followed by valid data, or lies in an older file, is damaged.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
    },
    /// A payload is too large for the record's 32-bit length.
    RecordTooLarge(usize),
    /// [`truncate`] found no log file starting at or before the zxid.
    NoLogForZxid {
        /// The log directory.
        dir: PathBuf,
        /// The zxid asked for.
        zxid: i64,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { path, source } => write!(f, "txn log {}: {source}", path.display()),
            LogError::BadMagic { path, magic } => {
                write!(f, "txn log {}: bad magic 0x{magic:08x}, not ZKLG", path.display())
            }
            LogError::Corrupt { path, offset, damage } => {
                write!(f, "txn log {} is corrupt at offset {offset}: {damage}", path.display())
            }
            LogError::RecordTooLarge(n) => write!(f, "txn of {n} bytes is too large to log"),
            LogError::NoLogForZxid { dir, zxid } => {
                write!(f, "no txn log in {} starts at or before zxid 0x{zxid:x}", dir.display())
            }
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Io { source, .. } => Some(source),
            LogError::Corrupt { damage: Damage::Undecodable(e), .. } => Some(e),
            _ => None,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_path_buf(), source }
}

/// The size a log file must have before appending at `position`, given its current size and
/// the preallocation step (`FilePadding.calculateFileSizeWithPadding`): unchanged unless the
/// position is within 4 KiB of the end; then one step more, or, if the position is already
/// past the end, the next multiple of the step past the position. A step of 0 disables
/// preallocation.
pub fn padded_size(position: u64, current_size: u64, prealloc_bytes: u64) -> u64 {
    if prealloc_bytes == 0 || position + PAD_MARGIN < current_size {
        return current_size;
    }
    if position > current_size {
        let size = position + prealloc_bytes;
        size - size % prealloc_bytes
    } else {
        current_size + prealloc_bytes
    }
}

/// Appends txns to the log files of one directory, with group commit and rolling.
///
/// Owned by the sync stage; every method does blocking file I/O.
#[derive(Debug)]
pub struct TxnLogWriter {
    dir: PathBuf,
    prealloc_bytes: u64,
    current: Option<Segment>,
    /// Rolled files whose last records the next commit must still sync.
    retired: Vec<Segment>,
    last_zxid: Option<i64>,
    /// A log file was created since the last forced commit: its directory entry needs a sync.
    dir_dirty: bool,
}

/// One open, mapped log file.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    map: MmapMut,
    /// Length of the file (preallocated), equal to the map's length.
    size: u64,
    /// End of the last record written.
    position: u64,
    /// Bytes before this offset were forced to disk by a commit with `force_sync`; a commit
    /// without it schedules write-back only, so the next forced commit starts from here.
    synced: u64,
}

impl TxnLogWriter {
    /// A writer for `dir` (a `version-2` directory, created if missing) that grows files in
    /// `prealloc_bytes` steps ([`DEFAULT_PREALLOC_BYTES`] unless configured). No file is created
    /// until the first append.
    pub fn new(dir: &Path, prealloc_bytes: u64) -> Result<TxnLogWriter, LogError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        Ok(TxnLogWriter {
            dir: dir.to_path_buf(),
            prealloc_bytes,
            current: None,
            retired: Vec::new(),
            last_zxid: None,
            dir_dirty: false,
        })
    }

    /// Appends one txn. It is durable only after the next [`commit`](Self::commit).
    pub fn append(&mut self, entry: &TxnEntry) -> Result<(), LogError> {
        let mut payload = Vec::with_capacity(128);
        entry.encode(&mut payload);
        self.append_raw(entry.header.zxid, &payload)
    }

    /// Appends an already serialized payload (TxnHeader + txn [+ TxnDigest]) whose zxid is
    /// `zxid`. Starts a new file named after `zxid` if none is open (first append, or after a
    /// [`roll`](Self::roll)).
    pub fn append_raw(&mut self, zxid: i64, payload: &[u8]) -> Result<(), LogError> {
        let length = i32::try_from(payload.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or(LogError::RecordTooLarge(payload.len()))?;
        if let Some(last) = self.last_zxid {
            if zxid <= last {
                warn!("txn log: appending zxid 0x{zxid:x} after zxid 0x{last:x}");
            }
        }
        if self.current.is_none() {
            self.current = Some(self.create_segment(zxid)?);
        }
        let segment = self.current.as_mut().expect("a segment was just opened");
        let record_bytes = RECORD_PREFIX as u64 + payload.len() as u64 + 1;
        segment.reserve(record_bytes, self.prealloc_bytes)?;

        let checksum = adler32(payload);
        let start = segment.position as usize;
        let payload_start = start + RECORD_PREFIX;
        let end = payload_start + payload.len();
        let record = &mut segment.map[start..=end];
        record[..8].copy_from_slice(&i64::from(checksum).to_be_bytes());
        record[8..12].copy_from_slice(&length.to_be_bytes());
        record[RECORD_PREFIX..RECORD_PREFIX + payload.len()].copy_from_slice(payload);
        record[RECORD_PREFIX + payload.len()] = END_OF_RECORD;
        // The pair of the reader's check: what is in the map is what was checksummed.
        debug_assert_eq!(adler32(&segment.map[payload_start..end]), checksum);
        segment.position += record_bytes;
        self.last_zxid = Some(zxid);
        Ok(())
    }

    /// Group commit: makes every record appended so far reach the OS and, with `force_sync`,
    /// the disk (msync of the dirty range, i.e. fdatasync of those pages; plus an fsync of the
    /// directory after a new file was created). Returns how long the sync took (zero without
    /// `force_sync`) so the caller can warn past `fsync.warningthresholdms`.
    ///
    /// A forced commit covers everything since the last forced commit in the current file;
    /// files rolled away are released by the next commit of either kind (as ZooKeeper's
    /// `streamsToFlush`), so with `zookeeper.forceSync=no` nothing is ever forced.
    ///
    /// An error is fatal to the caller (as in ZooKeeper's sync thread): after a failed sync the
    /// kernel may have dropped the dirty pages, so retrying cannot prove the records durable.
    pub fn commit(&mut self, force_sync: bool) -> Result<Duration, LogError> {
        let started = Instant::now();
        for mut segment in self.retired.drain(..) {
            segment.flush(force_sync)?;
        }
        if let Some(segment) = self.current.as_mut() {
            segment.flush(force_sync)?;
        }
        if force_sync && self.dir_dirty {
            sync_dir(&self.dir).map_err(io_error(&self.dir))?;
            self.dir_dirty = false;
        }
        Ok(if force_sync { started.elapsed() } else { Duration::ZERO })
    }

    /// Ends the current file; the next append starts `log.<its zxid>`. The closed file's
    /// records are still synced by the next commit.
    pub fn roll(&mut self) -> Result<(), LogError> {
        if let Some(segment) = self.current.take() {
            self.retired.push(segment);
        }
        Ok(())
    }

    /// Flushes (without forcing to disk) and closes every file, leaving the preallocated zero
    /// tail in place as ZooKeeper does.
    pub fn close(mut self) -> Result<(), LogError> {
        self.roll()?;
        self.commit(false)?;
        Ok(())
    }

    /// The file being appended to, if any.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|s| s.path.as_path())
    }

    /// Bytes of header and records in the current file (not counting the zero fill), for
    /// `zookeeper.txnLogSizeLimitInKb`.
    pub fn current_log_bytes(&self) -> u64 {
        self.current.as_ref().map_or(0, |s| s.position)
    }

    /// The zxid of the last appended txn.
    pub fn last_zxid(&self) -> Option<i64> {
        self.last_zxid
    }

    fn create_segment(&mut self, zxid: i64) -> Result<Segment, LogError> {
        let path = self.dir.join(file_name(LOG_PREFIX, zxid));
        if fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false) {
            // ZooKeeper overwrites it too: it can only be a log whose records were all
            // truncated away (a torn tail or a TRUNC), since zxids only grow.
            warn!("txn log {} exists; overwriting it", path.display());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let size = padded_size(HEADER_BYTES, HEADER_BYTES, self.prealloc_bytes).max(HEADER_BYTES);
        allocate(&file, 0, size).map_err(io_error(&path))?;
        let mut map = map_file(&file, &path)?;
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        header.put_i32(LOG_MAGIC);
        header.put_i32(LOG_VERSION);
        header.put_i64(LOG_DBID);
        map[..HEADER_BYTES as usize].copy_from_slice(&header);
        self.dir_dirty = true;
        Ok(Segment { path, file, map, size, position: HEADER_BYTES, synced: 0 })
    }
}

impl Segment {
    /// Grows the file (and remaps it) so that `record_bytes` fit at the current position.
    fn reserve(&mut self, record_bytes: u64, prealloc_bytes: u64) -> Result<(), LogError> {
        let mut size = padded_size(self.position, self.size, prealloc_bytes);
        let needed = self.position + record_bytes;
        if size < needed {
            // A record larger than the margin: ZooKeeper's stream would write past the end and
            // pad at the next append; a map needs the room first, so pad from the record's end.
            size = padded_size(needed, size, prealloc_bytes).max(needed);
        }
        if size != self.size {
            allocate(&self.file, self.size, size).map_err(io_error(&self.path))?;
            // Dirty pages of the old map stay in the page cache; a later msync of the file
            // range through the new map writes them (msync syncs the file range).
            self.map = map_file(&self.file, &self.path)?;
            self.size = size;
        }
        Ok(())
    }

    fn flush(&mut self, force_sync: bool) -> Result<(), LogError> {
        let from = self.synced as usize;
        let len = (self.position - self.synced) as usize;
        if len == 0 {
            return Ok(());
        }
        if !force_sync {
            return self.map.flush_async_range(from, len).map_err(io_error(&self.path));
        }
        self.map.flush_range(from, len).map_err(io_error(&self.path))?;
        self.synced = self.position;
        Ok(())
    }
}

/// Grows `file` from `from` to `to` bytes with real blocks (`posix_fallocate`, which glibc
/// emulates by writing where the file system cannot allocate), so a full disk is an ENOSPC
/// here, naming the file, and never a SIGBUS on a store into a sparse page of the map. On
/// failure the file is cut back to `from`: no sparse tail is left to be mapped.
fn allocate(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if to <= from {
        return file.set_len(to);
    }
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(from), libc::off_t::try_from(to - from))
    else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    // SAFETY: posix_fallocate only reads the descriptor, which `file` keeps open.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::from_raw_os_error(rc);
    let _ = file.set_len(from);
    Err(err)
}

fn map_file(file: &File, path: &Path) -> Result<MmapMut, LogError> {
    // SAFETY: the file was created by this writer in a data directory it owns (module doc); no
    // one else writes or truncates it while mapped, and all access is within the map's length.
    unsafe { MmapMut::map_mut(file) }.map_err(io_error(path))
}

/// A txn read from a log, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedTxn {
    /// The decoded txn.
    pub entry: TxnEntry,
    /// Byte offset of its record in its file.
    pub offset: u64,
}

/// Where the valid prefix of the newest log file ends, when its tail is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The newest log file.
    pub path: PathBuf,
    /// Bytes that hold the header and every valid record; cut the file here.
    pub valid_len: u64,
    /// What was found at `valid_len`.
    pub damage: Damage,
}

/// Every txn with zxid >= `from_zxid` in the log files of `dir` (a `version-2` directory), in
/// file and record order. Files are chosen as `FileTxnLog.getLogFiles`: the newest file starting
/// at or before `from_zxid`, and all later ones.
pub fn read_log(dir: &Path, from_zxid: i64) -> Result<TxnIterator, LogError> {
    let all = list_files(dir, LOG_PREFIX).map_err(io_error(dir))?;
    let files = log_files_from(&all, from_zxid).into_iter().map(|(_, p)| p).collect();
    Ok(TxnIterator::over_files(files, from_zxid))
}

/// Iterates the records of log files; see [`read_log`] and the module doc for damage rules.
#[derive(Debug)]
pub struct TxnIterator {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<OpenLog>,
    from_zxid: i64,
    torn_tail: Option<TornTail>,
    failed: bool,
    /// The bytes of the only file, when they were handed over instead of read from disk.
    in_memory: Option<ReadMap>,
}

#[derive(Debug)]
struct OpenLog {
    path: PathBuf,
    bytes: ReadMap,
    offset: usize,
    is_last: bool,
}

impl TxnIterator {
    /// Iterates the given files in order (the last one is treated as the newest: its damaged
    /// tail is reported, not an error), yielding txns with zxid >= `from_zxid`.
    pub fn over_files(files: Vec<PathBuf>, from_zxid: i64) -> TxnIterator {
        TxnIterator {
            files,
            next_file: 0,
            current: None,
            from_zxid,
            torn_tail: None,
            failed: false,
            in_memory: None,
        }
    }

    /// Iterates the records of one log file already in memory, read as the newest file (a
    /// damaged tail is reported by [`torn_tail`](Self::torn_tail), not an error); `path` only
    /// names it in errors. Same checks as reading the file from disk; for tools and fuzzing.
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>, from_zxid: i64) -> TxnIterator {
        let mut it = TxnIterator::over_files(vec![path], from_zxid);
        it.in_memory = Some(ReadMap::Owned(bytes));
        it
    }

    /// After iteration: where the newest file's valid prefix ends, if its tail was damaged.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The file being read.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    fn open_next(&mut self) -> Result<bool, LogError> {
        let Some(path) = self.files.get(self.next_file).cloned() else { return Ok(false) };
        self.next_file += 1;
        let is_last = self.next_file == self.files.len();
        let bytes = match self.in_memory.take() {
            Some(bytes) => bytes,
            None => {
                let file = File::open(&path).map_err(io_error(&path))?;
                ReadMap::open(&file).map_err(io_error(&path))?
            }
        };
        let buf = bytes.bytes();
        if buf.len() < HEADER_BYTES as usize {
            if is_last {
                warn!("txn log {}: torn tail at offset 0: {}", path.display(), Damage::ShortHeader);
                self.torn_tail = Some(TornTail { path, valid_len: 0, damage: Damage::ShortHeader });
                return Ok(false);
            }
            return Err(LogError::Corrupt { path, offset: 0, damage: Damage::ShortHeader });
        }
        let magic = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if magic != LOG_MAGIC {
            return Err(LogError::BadMagic { path, magic });
        }
        self.current = Some(OpenLog { path, bytes, offset: HEADER_BYTES as usize, is_last });
        Ok(true)
    }

    fn next_txn(&mut self) -> Result<Option<LoggedTxn>, LogError> {
        loop {
            if self.current.is_none() && !self.open_next()? {
                return Ok(None);
            }
            let log = self.current.as_mut().expect("a log file is open");
            let buf = log.bytes.bytes();
            let offset = log.offset;
            let damage = match scan_record(buf, offset) {
                Scan::End => {
                    self.current = None;
                    continue;
                }
                Scan::Record { payload, next } => match TxnEntry::decode(payload) {
                    Ok(entry) => {
                        log.offset = next;
                        if entry.header.zxid < self.from_zxid {
                            continue;
                        }
                        return Ok(Some(LoggedTxn { entry, offset: offset as u64 }));
                    }
                    Err(e) => Damage::Undecodable(e),
                },
                Scan::Damaged(damage) => damage,
            };
            let path = log.path.clone();
            if matches!(damage, Damage::Undecodable(_)) {
                return Err(LogError::Corrupt { path, offset: offset as u64, damage });
            }
            let tolerated = matches!(damage, Damage::Truncated | Damage::MissingMarker(_));
            if log.is_last && !valid_record_follows(buf, offset) {
                warn!("txn log {}: torn tail at offset {offset}: {damage}", path.display());
                self.torn_tail = Some(TornTail { path, valid_len: offset as u64, damage });
                self.current = None;
                return Ok(None);
            }
            if !log.is_last && tolerated {
                warn!("txn log {}: stopping at offset {offset}: {damage}", path.display());
                self.current = None;
                continue;
            }
            return Err(LogError::Corrupt { path, offset: offset as u64, damage });
        }
    }
}

impl Iterator for TxnIterator {
    type Item = Result<LoggedTxn, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_txn() {
            Ok(Some(txn)) => Some(Ok(txn)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                self.current = None;
                Some(Err(e))
            }
        }
    }
}

/// Cuts the newest log file to its valid prefix (after [`TxnIterator::torn_tail`] reported
/// one). A file without a complete header holds nothing and is removed.
pub fn truncate_tail(tail: &TornTail) -> Result<(), LogError> {
    warn!(
        "txn log {}: truncating to {} bytes ({} at that offset)",
        tail.path.display(),
        tail.valid_len,
        tail.damage
    );
    if tail.valid_len < HEADER_BYTES {
        return fs::remove_file(&tail.path).map_err(io_error(&tail.path));
    }
    let file = OpenOptions::new().write(true).open(&tail.path).map_err(io_error(&tail.path))?;
    file.set_len(tail.valid_len).map_err(io_error(&tail.path))?;
    file.sync_all().map_err(io_error(&tail.path))
}

/// Removes every txn after `zxid` from the logs in `dir` (`FileTxnLog.truncate`, a follower's
/// TRUNC): the file that may hold `zxid` (the newest starting at or before it) is cut right
/// after the last record with a zxid <= `zxid`, and every later file is deleted. Like
/// ZooKeeper, the cut file loses its zero fill; the next append starts a new file. No writer
/// may have the directory open.
pub fn truncate(dir: &Path, zxid: i64) -> Result<(), LogError> {
    let all = list_files(dir, LOG_PREFIX).map_err(io_error(dir))?;
    let Some(index) = all.iter().rposition(|(start, _)| *start <= zxid) else {
        return Err(LogError::NoLogForZxid { dir: dir.to_path_buf(), zxid });
    };
    let path = &all[index].1;
    let mut cut = HEADER_BYTES;
    let mut records = TxnIterator::over_files(vec![path.clone()], i64::MIN);
    while let Some(txn) = records.next() {
        if txn?.entry.header.zxid > zxid {
            break;
        }
        cut = records.current.as_ref().map_or(cut, |c| c.offset as u64);
    }
    drop(records);
    let file = OpenOptions::new().write(true).open(path).map_err(io_error(path))?;
    file.set_len(cut).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    for (_, later) in &all[index + 1..] {
        fs::remove_file(later).map_err(io_error(later))?;
    }
    sync_dir(dir).map_err(io_error(dir))
}

/// What is at an offset of a log file.
enum Scan<'a> {
    /// A record with a matching checksum and its end marker.
    Record { payload: &'a [u8], next: usize },
    /// End of the records: end of file or a zero length.
    End,
    /// A record that cannot be used.
    Damaged(Damage),
}

fn scan_record(buf: &[u8], offset: usize) -> Scan<'_> {
    let rest = &buf[offset.min(buf.len())..];
    if rest.is_empty() {
        return Scan::End;
    }
    if rest.len() < RECORD_PREFIX {
        // The zero fill can end a file that was cut short of a record's prefix.
        if rest.iter().all(|b| *b == 0) {
            return Scan::End;
        }
        return Scan::Damaged(Damage::Truncated);
    }
    let stored = i64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if length == 0 {
        return Scan::End;
    }
    if length < 0 {
        return Scan::Damaged(Damage::BadLength(length));
    }
    let length = length as usize;
    if rest.len() - RECORD_PREFIX <= length {
        return Scan::Damaged(Damage::Truncated);
    }
    let payload = &rest[RECORD_PREFIX..RECORD_PREFIX + length];
    let marker = rest[RECORD_PREFIX + length];
    if marker != END_OF_RECORD {
        return Scan::Damaged(Damage::MissingMarker(marker));
    }
    let computed = adler32(payload);
    if stored != i64::from(computed) {
        return Scan::Damaged(Damage::BadChecksum { stored, computed });
    }
    Scan::Record { payload, next: offset + RECORD_PREFIX + length + 1 }
}

/// Whether a valid, decodable record starts right after the damaged record at `offset`, as far
/// as its length field says where that is.
fn valid_record_follows(buf: &[u8], offset: usize) -> bool {
    let Some(rest) = buf.get(offset..) else { return false };
    if rest.len() < RECORD_PREFIX {
        return false;
    }
    let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if length <= 0 {
        return false;
    }
    let next = offset + RECORD_PREFIX + length as usize + 1;
    if next >= buf.len() {
        return false;
    }
    match scan_record(buf, next) {
        Scan::Record { payload, .. } => TxnEntry::decode(payload).is_ok(),
        Scan::End | Scan::Damaged(_) => false,
    }
}

#[cfg(test)]
mod tests;
