//! ZooKeeper's snapshot file, checked (uncompressed) mode (persistence-formats.md §4; `FileSnap`,
//! `SnapStream`, `SerializeUtils`, `DataTree.serialize`): a streaming [`SnapshotWriter`] and
//! [`SnapshotReader`] that know nothing of the `DataTree`; the caller walks its tree into the
//! writer and builds a tree from what the reader yields.
//!
//! ```text
//! snapshot  = FileHeader sessions acl-cache node* end seal1 [digest seal2 [last-zxid seal3]]
//! FileHeader = magic:int "ZKSN" (0x5a4b534e)  version:int 2  dbid:long -1
//! sessions  = count:int (sessionId:long timeout:int)*
//! acl-cache = count:int (aclRef:long vector<ACL>)*       aclRef -1 (OPEN_ACL_UNSAFE) not listed
//! node      = path:ustring data:buffer aclRef:long StatPersisted(60 bytes)
//!             pre-order, parents first, the root's path is ""
//! end       = ustring "/"
//! sealN     = checksum:long ustring "/"     checksum: Adler-32 of every byte before it
//! digest    = zxid:long digestVersion:int digest:long   (version < 2: digest as hex ustring)
//! last-zxid = lastProcessedZxid:long
//! ```
//!
//! Versions: ZooKeeper 3.8 writes through seal 2 and stops reading there; 3.9+ adds the
//! last-zxid section. The writer writes all three seals (3.8 ignores the extra bytes, and the
//! file still ends in `ustring "/"`, which is what its validity pre-check looks at); the reader
//! accepts a file ending after seal 1, seal 2 or seal 3. A file that ends inside a section is
//! damaged (ZooKeeper would quietly accept a missing tail there).
//!
//! Damage of any kind (bad magic, truncation, a seal mismatch, a node whose parent was not read)
//! is an error, so recovery can fall back to an older snapshot. Node data is only known to be
//! intact after [`SnapshotReader::finish`] has verified the seals: build into a fresh tree and
//! discard it on error.
//!
//! Not supported: compressed snapshots (`snapshot.<zxid>.gz` and `.snappy`); reading them would
//! need inflate / Snappy, which the allowed crates lack. Their names are not listed by
//! [`list_snapshots`], so recovery never picks them (a server configured with
//! `zookeeper.snapshot.compression.method` must be switched back to checked mode first).
//!
//! Runs on the snapshot thread (writing) and during recovery (reading); blocking file I/O.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::adler32::Adler32;
use super::digest::DIGEST_VERSION;
use super::epoch::sync_dir;
use super::{file_name, list_files, ReadMap, SNAPSHOT_PREFIX};
use crate::jute::data::{Acl, Id, StatPersisted};
use crate::jute::{DecodeError, Jute, Reader, Writer};

/// "ZKSN": the first four bytes of every snapshot.
pub const SNAP_MAGIC: i32 = 0x5a4b_534e;

/// The snapshot format version written.
pub const SNAP_VERSION: i32 = 2;

/// The dbid written in snapshot headers.
pub const SNAP_DBID: i64 = -1;

/// The ACL reference meaning `OPEN_ACL_UNSAFE`, never listed in the ACL cache.
pub const OPEN_ACL_REF: i64 = -1;

/// The string that ends the node list and follows each checksum.
const SEAL: &str = "/";

/// What ZooKeeper's validity pre-check wants at the end of a checked snapshot: `ustring "/"`.
const VALID_TAIL: [u8; 5] = [0, 0, 0, 1, b'/'];

/// Why a snapshot could not be written or read.
#[derive(Debug)]
pub enum SnapshotError {
    /// A file operation failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file does not start with "ZKSN".
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes.
        magic: i32,
    },
    /// The file ends inside a section.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the missing bytes should have been.
        offset: u64,
    },
    /// A field holds something the format does not allow.
    Malformed {
        /// The file.
        path: PathBuf,
        /// Offset of the field.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A jute record (StatPersisted) could not be decoded.
    Decode {
        /// The file.
        path: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// The cause.
        source: DecodeError,
    },
    /// A seal's checksum does not match the bytes before it.
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Offset of the stored checksum.
        offset: u64,
        /// The checksum in the file.
        stored: i64,
        /// Adler-32 of the bytes as read.
        computed: u32,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io { path, source } => {
                write!(f, "snapshot {}: {source}", path.display())
            }
            SnapshotError::BadMagic { path, magic } => {
                write!(f, "snapshot {}: bad magic 0x{magic:08x}, not ZKSN", path.display())
            }
            SnapshotError::Truncated { path, offset } => {
                write!(f, "snapshot {} is truncated at offset {offset}", path.display())
            }
            SnapshotError::Malformed { path, offset, what } => {
                write!(f, "snapshot {} is damaged at offset {offset}: {what}", path.display())
            }
            SnapshotError::Decode { path, offset, source } => {
                write!(f, "snapshot {} is damaged at offset {offset}: {source}", path.display())
            }
            SnapshotError::ChecksumMismatch { path, offset, stored, computed } => write!(
                f,
                "snapshot {} is damaged: checksum at offset {offset} is 0x{stored:x}, \
                 the bytes before it sum to 0x{computed:x}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io { source, .. } => Some(source),
            SnapshotError::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The digest section: the tree digest after applying `zxid` (`ZxidDigest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    /// The txn the digest belongs to; 0 means "none" and ZooKeeper ignores the section.
    pub zxid: i64,
    /// Digest version (2).
    pub version: i32,
    /// The tree digest.
    pub digest: i64,
}

/// One znode as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Full path; the root is returned as "/" (it is stored as "").
    pub path: String,
    /// Data; `None` is null data.
    pub data: Option<Vec<u8>>,
    /// Key into the ACL cache, or [`OPEN_ACL_REF`].
    pub acl_ref: i64,
    /// Stored stat.
    pub stat: StatPersisted,
}

/// What follows the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotTrailer {
    /// The digest section, if the file has one.
    pub digest: Option<ZxidDigest>,
    /// The last-zxid section (3.9+), if the file has one.
    pub last_processed_zxid: Option<i64>,
}

/// A whole snapshot in memory (tests, `rzk-tool`); recovery should stream instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Sessions and their timeouts (ms).
    pub sessions: Vec<(i64, i32)>,
    /// The ACL cache.
    pub acl_cache: Vec<(i64, Vec<Acl>)>,
    /// Nodes in file order.
    pub nodes: Vec<SnapshotNode>,
    /// Digest and last zxid.
    pub trailer: SnapshotTrailer,
}

/// Where the writer is in the grammar; each part must come in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Sessions,
    AclCache,
    Root,
    Nodes,
    /// The reader has seen the end marker.
    Done,
}

/// Writes one snapshot to `<path>.tmp`, renamed to `path` by [`finish`](Self::finish) after an
/// fsync. Dropped without `finish`, it removes the temporary file.
///
/// Call [`sessions`](Self::sessions), then [`acl_cache`](Self::acl_cache), then
/// [`node`](Self::node) for the root and every other node in pre-order, then `finish`.
#[derive(Debug)]
pub struct SnapshotWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    sum: Adler32,
    stage: Stage,
    scratch: Vec<u8>,
    /// Node bytes written since the last data sync.
    unsynced: usize,
}

/// Where a snapshot body goes: a snapshot file ([`SnapshotWriter`]) or a SNAP stream to a
/// learner. One tree walk (the server's fuzzy snapshot) feeds both.
pub trait SnapshotSink {
    /// The session table: (session id, timeout ms).
    fn sessions(&mut self, sessions: &[(i64, i32)]) -> Result<(), SnapshotError>;
    /// The ACL cache: (reference, ACL list), references >= 1.
    fn acl_cache(&mut self, acls: &[(i64, Vec<Acl>)]) -> Result<(), SnapshotError>;
    /// Node records encoded with [`encode_node`], root first, parents before children.
    fn encoded_nodes(&mut self, bytes: &[u8], includes_root: bool) -> Result<(), SnapshotError>;
}

impl SnapshotSink for SnapshotWriter {
    fn sessions(&mut self, sessions: &[(i64, i32)]) -> Result<(), SnapshotError> {
        SnapshotWriter::sessions(self, sessions)
    }

    fn acl_cache(&mut self, acls: &[(i64, Vec<Acl>)]) -> Result<(), SnapshotError> {
        SnapshotWriter::acl_cache(self, acls)
    }

    fn encoded_nodes(&mut self, bytes: &[u8], includes_root: bool) -> Result<(), SnapshotError> {
        SnapshotWriter::encoded_nodes(self, bytes, includes_root)
    }
}

impl SnapshotWriter {
    /// Starts `path` (its temporary file) and writes the FileHeader.
    pub fn new(path: &Path) -> Result<SnapshotWriter, SnapshotError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        let mut writer = SnapshotWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(64 * 1024, file)),
            sum: Adler32::new(),
            stage: Stage::Sessions,
            scratch: Vec::with_capacity(256),
            unsynced: 0,
        };
        writer.scratch.put_i32(SNAP_MAGIC);
        writer.scratch.put_i32(SNAP_VERSION);
        writer.scratch.put_i64(SNAP_DBID);
        writer.emit()?;
        Ok(writer)
    }

    /// Starts `<dir>/snapshot.<zxid hex>`.
    pub fn create(dir: &Path, zxid: i64) -> Result<SnapshotWriter, SnapshotError> {
        SnapshotWriter::new(&dir.join(file_name(SNAPSHOT_PREFIX, zxid)))
    }

    /// Writes the session table: (session id, timeout ms).
    pub fn sessions(&mut self, sessions: &[(i64, i32)]) -> Result<(), SnapshotError> {
        self.advance(Stage::Sessions, Stage::AclCache);
        encode_sessions(&mut self.scratch, sessions);
        self.emit()
    }

    /// Writes the ACL cache: (reference, ACL list), references >= 1.
    pub fn acl_cache(&mut self, acls: &[(i64, Vec<Acl>)]) -> Result<(), SnapshotError> {
        self.advance(Stage::AclCache, Stage::Root);
        assert!(acls.iter().all(|(r, _)| *r != OPEN_ACL_REF), "the ACL cache never lists -1");
        encode_acl_cache(&mut self.scratch, acls);
        self.emit()
    }

    /// Writes one node; the first must be the root ("/" or ""), then parents before children.
    pub fn node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl_ref: i64,
        stat: &StatPersisted,
    ) -> Result<(), SnapshotError> {
        let is_root = path.is_empty() || path == "/";
        if self.stage == Stage::Root {
            assert!(is_root, "the first snapshot node must be the root, not {path}");
            self.stage = Stage::Nodes;
        } else {
            assert!(self.stage == Stage::Nodes, "nodes come after sessions and the ACL cache");
            assert!(!is_root && path.starts_with('/'), "bad snapshot node path {path:?}");
        }
        encode_node(&mut self.scratch, path, data, acl_ref, stat);
        self.emit_if_large()
    }

    /// Writes node records already encoded with [`encode_node`] (root first, parents before
    /// children), so a caller can encode under its own lock and write afterwards.
    pub fn encoded_nodes(
        &mut self,
        bytes: &[u8],
        includes_root: bool,
    ) -> Result<(), SnapshotError> {
        if self.stage == Stage::Root {
            assert!(includes_root, "the first snapshot node must be the root");
            self.stage = Stage::Nodes;
        }
        assert!(self.stage == Stage::Nodes, "nodes come after sessions and the ACL cache");
        self.emit()?;
        self.sum.update(bytes);
        let out = self.out.as_mut().expect("the writer is open until finish");
        out.write_all(bytes).map_err(io_error(&self.tmp))?;
        // Synced a few MiB at a time: one fsync of a large snapshot at the end would make the
        // txn log's syncs (same disk, same journal) wait behind all of it.
        self.unsynced += bytes.len();
        if self.unsynced >= SYNC_CHUNK_BYTES {
            self.unsynced = 0;
            out.flush().map_err(io_error(&self.tmp))?;
            out.get_ref().sync_data().map_err(io_error(&self.tmp))?;
        }
        Ok(())
    }

    /// Writes the end marker and the three seals with the digest section (`digest` =
    /// (zxid, tree digest) of the last applied txn; written as (0, 2, 0) when unknown, which
    /// ZooKeeper ignores) and the last-zxid section, fsyncs, and renames the file into place.
    /// Returns the final path.
    pub fn finish(
        mut self,
        digest: Option<(i64, i64)>,
        last_zxid: i64,
    ) -> Result<PathBuf, SnapshotError> {
        assert!(self.stage == Stage::Nodes, "a snapshot needs at least the root node");
        encode_end_of_nodes(&mut self.scratch);
        self.seal()?;
        let (zxid, digest) = digest.unwrap_or((0, 0));
        self.scratch.put_i64(zxid);
        self.scratch.put_i32(DIGEST_VERSION);
        self.scratch.put_i64(digest);
        self.seal()?;
        self.scratch.put_i64(last_zxid);
        self.seal()?;
        let out = self.out.take().expect("the writer is open until finish");
        let file = out
            .into_inner()
            .map_err(|e| SnapshotError::Io { path: self.tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io_error(&self.tmp))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(io_error(&self.path))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir).map_err(io_error(dir))?;
        }
        Ok(self.path.clone())
    }

    fn advance(&mut self, expected: Stage, next: Stage) {
        let stage = self.stage;
        assert!(stage == expected, "snapshot part {expected:?} written at stage {stage:?}");
        self.stage = next;
    }

    /// Writes the pending bytes, then the checksum of everything so far and `ustring "/"`.
    fn seal(&mut self) -> Result<(), SnapshotError> {
        self.emit()?;
        let checksum = i64::from(self.sum.value());
        self.scratch.put_i64(checksum);
        self.scratch.put_str(SEAL);
        self.emit()
    }

    fn emit_if_large(&mut self) -> Result<(), SnapshotError> {
        if self.scratch.len() >= 32 * 1024 {
            self.emit()?;
        }
        Ok(())
    }

    fn emit(&mut self) -> Result<(), SnapshotError> {
        self.sum.update(&self.scratch);
        let out = self.out.as_mut().expect("the writer is open until finish");
        out.write_all(&self.scratch).map_err(io_error(&self.tmp))?;
        self.scratch.clear();
        Ok(())
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Abandoned (an error or a panic): the partial file must not look like a snapshot.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Reads one snapshot part by part, checking the structure as it goes and the seals at the end.
///
/// Call [`sessions`](Self::sessions), [`acl_cache`](Self::acl_cache),
/// [`next_node`](Self::next_node) until `None`, then [`finish`](Self::finish).
///
/// The same reader parses the body of a SNAP stream from a leader
/// ([`from_stream`](Self::from_stream), crate-internal): sessions, ACL cache and nodes read on
/// demand from a `Read`, with no header and no seals; `'a` is the borrow of that stream.
#[derive(Debug)]
pub struct SnapshotReader<'a> {
    input: Input<'a>,
    /// The path from the root (stored as "") to the last node read: in pre-order a node's
    /// parent is on it, so a node whose parent is missing ("Invalid Datatree") is rejected.
    ancestors: Vec<String>,
    stage: Stage,
}

impl SnapshotReader<'static> {
    /// Opens `path` and checks its FileHeader.
    pub fn open(path: &Path) -> Result<SnapshotReader<'static>, SnapshotError> {
        let file = File::open(path).map_err(io_error(path))?;
        let map = ReadMap::open(&file).map_err(io_error(path))?;
        SnapshotReader::from_map(path, map)
    }

    /// A reader of a whole snapshot file already in memory (FileHeader first, seals at the
    /// end); `path` only names it in errors. Same checks as [`open`](Self::open); for tools
    /// and fuzzing.
    pub fn from_bytes(
        path: &Path,
        bytes: Vec<u8>,
    ) -> Result<SnapshotReader<'static>, SnapshotError> {
        SnapshotReader::from_map(path, ReadMap::Owned(bytes))
    }

    fn from_map(path: &Path, map: ReadMap) -> Result<SnapshotReader<'static>, SnapshotError> {
        let len = map.bytes().len() as u64;
        let source = Source::Map(map);
        let mut input = Input {
            path: path.to_path_buf(),
            source,
            sum: Adler32::new(),
            summed: 0,
            offset: 0,
            len,
        };
        let magic = input.i32()?;
        if magic != SNAP_MAGIC {
            return Err(SnapshotError::BadMagic { path: path.to_path_buf(), magic });
        }
        let _version = input.i32()?;
        let _dbid = input.i64()?;
        Ok(SnapshotReader { input, ancestors: Vec::new(), stage: Stage::Sessions })
    }
}

impl<'a> SnapshotReader<'a> {
    /// A reader of a SNAP stream body (quorum-protocol.md §6.2): positioned at the session
    /// count, with no FileHeader before it and no seals after the nodes. Bytes are pulled from
    /// `read` as needed and never past the end marker, so the caller can go on reading packets
    /// from the same stream after [`finish_stream`](Self::finish_stream). Every string and
    /// buffer length is checked against `max_len` (jute.maxbuffer) before anything is read
    /// into memory, and vector counts only bound loops, never allocations. Errors name `name`
    /// where a file reader names its path.
    pub(crate) fn from_stream(
        name: &str,
        read: &'a mut (dyn Read + Send),
        max_len: usize,
    ) -> SnapshotReader<'a> {
        let source = Source::Stream { read, scratch: Vec::new() };
        let input = Input {
            path: PathBuf::from(name),
            source,
            sum: Adler32::new(),
            summed: 0,
            offset: 0,
            len: max_len as u64,
        };
        SnapshotReader { input, ancestors: Vec::new(), stage: Stage::Sessions }
    }

    /// Ends a SNAP stream: reads the nodes not read yet and the end marker, then the one
    /// `ustring` that follows it (the leader's signature, "BenWasHere"), which it returns.
    pub(crate) fn finish_stream(mut self) -> Result<String, SnapshotError> {
        assert!(self.input.is_stream(), "finish_stream is for SNAP streams; files have seals");
        while self.next_node()?.is_some() {}
        self.input.string()
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.input.path
    }

    /// Reads the session table.
    pub fn sessions(&mut self) -> Result<Vec<(i64, i32)>, SnapshotError> {
        assert!(self.stage == Stage::Sessions, "sessions come first");
        self.stage = Stage::AclCache;
        let count = self.input.count(12)?;
        let mut sessions = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            sessions.push((self.input.i64()?, self.input.i32()?));
        }
        Ok(sessions)
    }

    /// Reads the ACL cache.
    pub fn acl_cache(&mut self) -> Result<Vec<(i64, Vec<Acl>)>, SnapshotError> {
        assert!(self.stage == Stage::AclCache, "the ACL cache comes after the sessions");
        self.stage = Stage::Nodes;
        let count = self.input.count(12)?;
        let mut cache = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            let acl_ref = self.input.i64()?;
            let n = self.input.count(12)?;
            let mut list = Vec::with_capacity(n.min(PREALLOCATE_MAX));
            for _ in 0..n {
                let perms = self.input.i32()?;
                let scheme = self.input.string()?;
                let id = self.input.string()?;
                list.push(Acl { perms, id: Id { scheme, id } });
            }
            cache.push((acl_ref, list));
        }
        Ok(cache)
    }

    /// The next node, or `None` after the end marker.
    pub fn next_node(&mut self) -> Result<Option<SnapshotNode>, SnapshotError> {
        assert!(self.stage >= Stage::Nodes, "nodes come after the ACL cache");
        if self.stage > Stage::Nodes {
            return Ok(None);
        }
        let offset = self.input.offset;
        let path = self.input.string()?;
        if path == SEAL {
            self.stage = Stage::Done;
            return Ok(None);
        }
        if !path.is_empty() {
            let parent = path.rfind('/').map_or("", |i| &path[..i]);
            while self.ancestors.last().is_some_and(|a| a != parent) {
                self.ancestors.pop();
            }
            if self.ancestors.is_empty() {
                return Err(self.input.malformed(
                    offset,
                    format!("node {path:?} comes before its parent (invalid data tree)"),
                ));
            }
        }
        let data = self.input.buffer()?;
        let acl_ref = self.input.i64()?;
        let stat_offset = self.input.offset;
        let mut stat_bytes = [0u8; 60];
        self.input.bytes(&mut stat_bytes)?;
        let stat = StatPersisted::decode(&mut Reader::new(&stat_bytes)).map_err(|source| {
            SnapshotError::Decode { path: self.input.path.clone(), offset: stat_offset, source }
        })?;
        let shown = if path.is_empty() { "/".to_owned() } else { path.clone() };
        self.ancestors.push(path);
        Ok(Some(SnapshotNode { path: shown, data, acl_ref, stat }))
    }

    /// Reads the seals and the optional digest and last-zxid sections, verifying every
    /// checksum. Nodes not read yet are read (and checked) first.
    pub fn finish(mut self) -> Result<SnapshotTrailer, SnapshotError> {
        while self.next_node()?.is_some() {}
        self.check_seal()?;
        let mut trailer = SnapshotTrailer { digest: None, last_processed_zxid: None };
        if self.input.at_end() {
            return Ok(trailer);
        }
        let zxid = self.input.i64()?;
        let version = self.input.i32()?;
        let digest = if version < 2 {
            let offset = self.input.offset;
            let hex = self.input.string()?;
            i64::from_str_radix(&hex, 16).map_err(|_| {
                self.input.malformed(offset, format!("digest {hex:?} is not hexadecimal"))
            })?
        } else {
            self.input.i64()?
        };
        trailer.digest = Some(ZxidDigest { zxid, version, digest });
        self.check_seal()?;
        if self.input.at_end() {
            return Ok(trailer);
        }
        trailer.last_processed_zxid = Some(self.input.i64()?);
        self.check_seal()?;
        // Later versions may append more sections; like ZooKeeper, ignore them.
        Ok(trailer)
    }

    fn check_seal(&mut self) -> Result<(), SnapshotError> {
        let computed = self.input.checksum();
        let offset = self.input.offset;
        let stored = self.input.i64()?;
        if stored != i64::from(computed) {
            let path = self.input.path.clone();
            return Err(SnapshotError::ChecksumMismatch { path, offset, stored, computed });
        }
        let marker_offset = self.input.offset;
        let marker = self.input.string()?;
        if marker != SEAL {
            return Err(self.input.malformed(marker_offset, format!("seal is {marker:?}")));
        }
        Ok(())
    }
}

/// How much of a large snapshot is written between data syncs.
const SYNC_CHUNK_BYTES: usize = 4 << 20;

/// Elements preallocated for a vector before reading it: a count read from a stream is not
/// bounded by a file size, so it may only bound a loop, not an allocation.
const PREALLOCATE_MAX: usize = 4096;

/// Appends the session table: count, then (session id, timeout ms) pairs.
pub fn encode_sessions(out: &mut Vec<u8>, sessions: &[(i64, i32)]) {
    out.put_i32(len_i32(sessions.len()));
    for (id, timeout) in sessions {
        out.put_i64(*id);
        out.put_i32(*timeout);
    }
}

/// Appends the ACL cache: count, then (reference, vector<ACL>) pairs.
pub fn encode_acl_cache(out: &mut Vec<u8>, acls: &[(i64, Vec<Acl>)]) {
    out.put_i32(len_i32(acls.len()));
    for (acl_ref, list) in acls {
        out.put_i64(*acl_ref);
        list.encode(out);
    }
}

/// Appends the end-of-nodes marker, `ustring "/"`.
pub fn encode_end_of_nodes(out: &mut Vec<u8>) {
    out.put_str(SEAL);
}

/// Appends one node record (path, data, aclRef, StatPersisted); the root is stored as "".
pub fn encode_node(
    out: &mut Vec<u8>,
    path: &str,
    data: Option<&[u8]>,
    acl_ref: i64,
    stat: &StatPersisted,
) {
    out.put_str(if path == "/" { "" } else { path });
    out.put_buffer(data);
    out.put_i64(acl_ref);
    stat.encode(out);
}

/// Reads a whole snapshot into memory.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, SnapshotError> {
    let mut reader = SnapshotReader::open(path)?;
    let sessions = reader.sessions()?;
    let acl_cache = reader.acl_cache()?;
    let mut nodes = Vec::new();
    while let Some(node) = reader.next_node()? {
        nodes.push(node);
    }
    let trailer = reader.finish()?;
    Ok(Snapshot { sessions, acl_cache, nodes, trailer })
}

/// ZooKeeper's cheap validity pre-check for checked snapshots (`SnapStream.isValidSnapshot`):
/// at least 10 bytes, ending in `ustring "/"`. It only weeds out files cut short by a crash;
/// the seals are checked when reading.
pub fn looks_complete(path: &Path) -> io::Result<bool> {
    Ok(tail_bytes(path)?.is_some_and(|tail| tail == VALID_TAIL))
}

/// Every `snapshot.<hex>` in `dir` (a `version-2` directory), newest zxid first. Unparseable
/// names, `.tmp` files and compressed snapshots are ignored.
pub fn list_snapshots(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut snapshots = list_files(dir, SNAPSHOT_PREFIX)?;
    snapshots.reverse();
    Ok(snapshots)
}

/// Up to `n` newest snapshots that pass [`looks_complete`], newest first
/// (`FileSnap.findNValidSnapshots`), for recovery (which tries them in order) and purging.
pub fn find_n_most_recent_snapshots(dir: &Path, n: usize) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for (zxid, path) in list_snapshots(dir)? {
        if found.len() == n {
            break;
        }
        if looks_complete(&path)? {
            found.push((zxid, path));
        }
    }
    Ok(found)
}

fn tail_bytes(path: &Path) -> io::Result<Option<[u8; 5]>> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < 10 {
        return Ok(None);
    }
    file.seek(SeekFrom::End(-5))?;
    let mut tail = [0u8; 5];
    file.read_exact(&mut tail)?;
    Ok(Some(tail))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).expect("fewer than 2^31 sessions, ACL lists and ACLs")
}

/// A checksummed, position-tracking byte source. Every length is checked against the bytes
/// left in the file (a stream: against its `max_len`) before anything is allocated.
#[derive(Debug)]
struct Input<'a> {
    path: PathBuf,
    source: Source<'a>,
    sum: Adler32,
    /// Bytes before this offset are already in `sum` (files only).
    summed: usize,
    offset: u64,
    /// File: its length. Stream: the largest string or buffer accepted.
    len: u64,
}

/// Where an [`Input`]'s bytes come from.
enum Source<'a> {
    /// The whole file, mapped: parsing is slicing, and the checksum runs over long ranges.
    Map(ReadMap),
    /// A SNAP stream: each field is read into `scratch` on demand.
    Stream { read: &'a mut (dyn Read + Send), scratch: Vec<u8> },
}

impl fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Map(map) => map.fmt(f),
            Source::Stream { .. } => f.write_str("Stream"),
        }
    }
}

impl Input<'_> {
    fn is_stream(&self) -> bool {
        matches!(self.source, Source::Stream { .. })
    }

    fn at_end(&self) -> bool {
        !self.is_stream() && self.offset >= self.len
    }

    /// File: the bytes left. Stream: the largest length accepted for one field.
    fn remaining(&self) -> u64 {
        match self.source {
            Source::Map(_) => self.len.saturating_sub(self.offset),
            Source::Stream { .. } => self.len,
        }
    }

    fn malformed(&self, offset: u64, what: String) -> SnapshotError {
        SnapshotError::Malformed { path: self.path.clone(), offset, what }
    }

    /// Adler-32 of every byte consumed so far.
    fn checksum(&mut self) -> u32 {
        let end = self.offset as usize;
        let Source::Map(map) = &self.source else {
            panic!("a SNAP stream has no seals to check");
        };
        let bytes = map.bytes();
        self.sum.update(&bytes[self.summed..end]);
        self.summed = end;
        self.sum.value()
    }

    fn take(&mut self, n: usize) -> Result<&[u8], SnapshotError> {
        if (n as u64) > self.remaining() {
            return Err(SnapshotError::Truncated { path: self.path.clone(), offset: self.offset });
        }
        let start = self.offset as usize;
        self.offset += n as u64;
        match &mut self.source {
            Source::Map(map) => Ok(&map.bytes()[start..start + n]),
            Source::Stream { read, scratch } => {
                scratch.clear();
                scratch.resize(n, 0);
                read.read_exact(scratch).map_err(|source| {
                    if source.kind() == io::ErrorKind::UnexpectedEof {
                        SnapshotError::Truncated { path: self.path.clone(), offset: start as u64 }
                    } else {
                        SnapshotError::Io { path: self.path.clone(), source }
                    }
                })?;
                Ok(scratch)
            }
        }
    }

    fn bytes(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        let n = buf.len();
        buf.copy_from_slice(self.take(n)?);
        Ok(())
    }

    fn i32(&mut self) -> Result<i32, SnapshotError> {
        let mut b = [0u8; 4];
        self.bytes(&mut b)?;
        Ok(i32::from_be_bytes(b))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        let mut b = [0u8; 8];
        self.bytes(&mut b)?;
        Ok(i64::from_be_bytes(b))
    }

    /// A length prefix: `None` for -1; at most the bytes left.
    fn length(&mut self) -> Result<Option<usize>, SnapshotError> {
        let offset = self.offset;
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as u64 > self.remaining() {
            return Err(self.malformed(offset, format!("bad length {n}")));
        }
        Ok(Some(n as usize))
    }

    /// A vector count whose elements take at least `min_element_bytes` each.
    fn count(&mut self, min_element_bytes: u64) -> Result<usize, SnapshotError> {
        let offset = self.offset;
        let n = self.i32()?;
        if n == -1 {
            return Ok(0);
        }
        // Negative first: `n as u64` of a negative count would overflow the product.
        if n < 0 || (!self.is_stream() && n as u64 * min_element_bytes > self.remaining()) {
            return Err(self.malformed(offset, format!("bad count {n}")));
        }
        Ok(n as usize)
    }

    fn buffer(&mut self) -> Result<Option<Vec<u8>>, SnapshotError> {
        match self.length()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    fn string(&mut self) -> Result<String, SnapshotError> {
        let offset = self.offset;
        let bytes = self.buffer()?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| SnapshotError::Decode {
            path: self.path.clone(),
            offset,
            source: DecodeError::InvalidUtf8,
        })
    }
}

#[cfg(test)]
mod tests;
