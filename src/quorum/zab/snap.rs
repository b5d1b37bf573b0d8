//! The SNAP stream: how a leader ships its whole database to a learner (quorum-protocol.md
//! §6.2; `LearnerHandler.syncFollower`, `ZKDatabase.serializeSnapshot`,
//! `Learner.syncWithLeader`).
//!
//! Right after the `SNAP` packet the leader writes, with no length prefix and no framing:
//!
//! ```text
//! snap-stream = sessions acl-cache node* end signature
//! sessions    = count:int (sessionId:long timeout:int)*
//! acl-cache   = count:int (aclRef:long vector<ACL>)*
//! node        = path:ustring data:buffer aclRef:long StatPersisted   ; pre-order, root is ""
//! end         = ustring "/"
//! signature   = ustring "BenWasHere"
//! ```
//!
//! That is a snapshot file's body between its FileHeader and its first seal
//! (persistence-formats.md §4.2): no header, no checksums, no digest section. The encoding is
//! the snapshot module's ([`crate::persistence::snapshot`]); this module only adds the tree
//! walk, the signature and the stream plumbing. Then the leader's next packet (NEWLEADER, or
//! PROPOSAL/COMMIT pairs queued during the sync) follows on the same stream.
//!
//! Blocking I/O on the caller's stream; runs on the learner connection's writer thread at the
//! leader (a fuzzy walk of the live tree, in chunks: the leader's own loop never waits for
//! it) and on the learner's reader thread. Reading never consumes a byte past the signature.

use std::fmt;
use std::io::{self, Read, Write};

use crate::jute::data::Acl;
use crate::jute::Writer;
use crate::persistence::snapshot::{self, SnapshotError, SnapshotReader, SnapshotSink};
use crate::server::role::DataTree;

/// The string that ends a SNAP stream [LearnerHandler: `oa.writeString("BenWasHere",
/// "signature")`].
pub const SNAP_SIGNATURE: &str = "BenWasHere";

/// The name SNAP stream errors carry where snapshot file errors carry a path.
const STREAM_NAME: &str = "<SNAP stream>";

/// Why a SNAP stream could not be read.
#[derive(Debug)]
pub enum SnapError {
    /// The body is damaged or truncated, or the stream failed.
    Body(SnapshotError),
    /// The body had no nodes, so no root.
    NoRoot,
    /// The string after the nodes is not "BenWasHere".
    BadSignature(String),
}

impl fmt::Display for SnapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapError::Body(e) => write!(f, "{e}"),
            SnapError::NoRoot => write!(f, "SNAP stream has no root node"),
            SnapError::BadSignature(s) => {
                write!(f, "SNAP stream signature is {s:?}, expected {SNAP_SIGNATURE:?}")
            }
        }
    }
}

impl std::error::Error for SnapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapError::Body(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SnapshotError> for SnapError {
    fn from(e: SnapshotError) -> Self {
        SnapError::Body(e)
    }
}

/// The SNAP stream's writer: the body of a snapshot file, framed as a SNAP stream. The server's
/// one tree walk (`crate::server::role::database::write_fuzzy`) feeds it, as it feeds snapshot
/// files; [`SnapStream::finish`] ends it with the end marker and the signature. Writes go
/// straight to `out` (the learner's socket, buffered), so memory stays bounded.
pub struct SnapStream<W: Write> {
    out: W,
    scratch: Vec<u8>,
    bytes: u64,
}

impl<W: Write> SnapStream<W> {
    /// A stream into `out`; the caller wrote the SNAP packet before.
    pub fn new(out: W) -> SnapStream<W> {
        SnapStream { out, scratch: Vec::with_capacity(4096), bytes: 0 }
    }

    /// Writes the end of the node list and the signature; returns the writer (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        snapshot::encode_end_of_nodes(&mut self.scratch);
        self.scratch.put_str(SNAP_SIGNATURE);
        self.out.write_all(&self.scratch)?;
        Ok(self.out)
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).map_err(|source| SnapshotError::Io {
            path: std::path::PathBuf::from(STREAM_NAME),
            source,
        })
    }

    fn write_scratch(&mut self) -> Result<(), SnapshotError> {
        let scratch = std::mem::take(&mut self.scratch);
        let result = self.write(&scratch);
        self.scratch = scratch;
        self.scratch.clear();
        result
    }
}

impl<W: Write> SnapshotSink for SnapStream<W> {
    fn sessions(&mut self, sessions: &[(i64, i32)]) -> Result<(), SnapshotError> {
        snapshot::encode_sessions(&mut self.scratch, sessions);
        self.write_scratch()
    }

    fn acl_cache(&mut self, acls: &[(i64, Vec<Acl>)]) -> Result<(), SnapshotError> {
        snapshot::encode_acl_cache(&mut self.scratch, acls);
        self.write_scratch()
    }

    fn encoded_nodes(&mut self, bytes: &[u8], _includes_root: bool) -> Result<(), SnapshotError> {
        self.write(bytes)
    }
}

/// Writes the SNAP stream body of a tree and sessions that are not a running server's (tools,
/// tests, fuzzing): the same walk and framing as the leader's.
pub fn write_snap(
    out: &mut impl Write,
    tree: &DataTree,
    sessions: &[(i64, i32)],
) -> io::Result<()> {
    let config = crate::config::ServerConfig::standalone("/", ([127, 0, 0, 1], 0).into());
    let tracker = crate::server::role::session_tracker(&config, sessions);
    let mode = crate::server::role::ServerMode::Leader;
    let shared =
        crate::server::role::Shared::new(std::sync::Arc::new(config), mode, tree.clone(), tracker);
    let mut stream = SnapStream::new(out);
    crate::server::role::write_fuzzy(&shared, &mut stream).map_err(io::Error::other)?;
    stream.finish().map(|_| ())
}

/// What a SNAP stream carried.
#[derive(Debug)]
pub struct SnapState {
    /// The tree, with `last_processed_zxid` set to the SNAP packet's zxid.
    pub tree: DataTree,
    /// Sessions and their timeouts (ms), in stream order.
    pub sessions: Vec<(i64, i32)>,
}

/// Reads a SNAP stream body (after the SNAP packet whose zxid is `zxid`) into a fresh tree and
/// checks the signature. `max_len` bounds each string and buffer (jute.maxbuffer). Wrap a
/// socket in a `BufReader` and keep reading packets from that same reader afterwards: nothing
/// past the signature is consumed by this function, but a `BufReader` may have buffered it.
pub fn read_snap(
    input: &mut (dyn Read + Send),
    zxid: i64,
    extended_types: bool,
    max_len: usize,
) -> Result<SnapState, SnapError> {
    let mut reader = SnapshotReader::from_stream(STREAM_NAME, input, max_len);
    let sessions = reader.sessions()?;
    let mut tree = DataTree::empty(extended_types);
    for (acl_ref, acl) in reader.acl_cache()? {
        tree.acl_cache_mut().insert_loaded(acl_ref, acl);
    }
    let mut have_root = false;
    while let Some(node) = reader.next_node()? {
        // The reader rejects any node before the root and any node before its parent.
        have_root = true;
        tree.insert_loaded(node.path, node.data, node.acl_ref, node.stat);
    }
    let signature = reader.finish_stream()?;
    if signature != SNAP_SIGNATURE {
        return Err(SnapError::BadSignature(signature));
    }
    if !have_root {
        return Err(SnapError::NoRoot);
    }
    tree.last_processed_zxid = zxid;
    Ok(SnapState { tree, sessions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::data::{Acl, StatPersisted};
    use crate::jute::txn::Txn;
    use crate::jute::txn::{CreateTxn, TxnHeader};
    use crate::limits::QUORUM_PACKET_MAX_BYTES_DEFAULT as MAX;
    use crate::server::role::{database, ServerMode, Shared};

    fn shared_over(tree: DataTree, sessions: &[(i64, i32)]) -> Shared {
        let config = crate::config::ServerConfig::standalone("/nonexistent", ([0; 4], 0).into());
        let tracker = crate::server::role::session_tracker(&config, sessions);
        Shared::new(std::sync::Arc::new(config), ServerMode::Leader, tree, tracker)
    }

    fn sample_tree() -> DataTree {
        let mut tree = DataTree::new(false);
        let creates = [
            ("/a", Some(b"hello".to_vec()), Acl::read_unsafe(), false),
            ("/a/b", None, Acl::open_unsafe(), false),
            ("/e", Some(vec![]), vec![Acl::new(31, "digest", "u:hash")], true),
        ];
        for (i, (path, data, acl, ephemeral)) in creates.into_iter().enumerate() {
            let zxid = i as i64 + 1;
            let hdr = TxnHeader { client_id: 0x55, cxid: 1, zxid, time: 1000, txn_type: 1 };
            let txn = Txn::Create(CreateTxn {
                path: path.into(),
                data,
                acl,
                ephemeral,
                parent_cversion: -1,
            });
            let _ = tree.apply(&hdr, &txn);
        }
        tree
    }

    type NodeView = (String, Option<Vec<u8>>, Vec<Acl>, StatPersisted);

    fn nodes_of(tree: &DataTree) -> Vec<NodeView> {
        let mut paths = tree.paths_preorder();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let n = tree.node(&p).unwrap();
                (p, n.data.clone(), tree.acl_of(n).to_vec(), n.stat.clone())
            })
            .collect()
    }

    #[test]
    fn tree_and_sessions_round_trip_and_the_stream_stops_at_the_signature() {
        let tree = sample_tree();
        let sessions = vec![(0x55, 30_000), (0x0300_0000_0000_0001, 4000)];
        let mut stream = Vec::new();
        write_snap(&mut stream, &tree, &sessions).unwrap();
        assert!(stream.ends_with(b"\x00\x00\x00\x0aBenWasHere"));
        stream.extend_from_slice(b"next packet");
        let mut input = &stream[..];
        let got = read_snap(&mut input, 0x1_0000_0003, false, MAX).unwrap();
        assert_eq!(input, b"next packet");
        assert_eq!(got.sessions, sessions);
        assert_eq!(got.tree.last_processed_zxid, 0x1_0000_0003);
        assert_eq!(nodes_of(&got.tree), nodes_of(&tree));
        assert_eq!(got.tree.ephemerals_of(0x55), vec!["/e".to_owned()]);
        assert_eq!(
            got.tree.node("/").unwrap().children.len(),
            tree.node("/").unwrap().children.len()
        );
    }

    #[test]
    fn body_is_a_snapshot_file_between_header_and_first_seal() {
        let tree = sample_tree();
        let sessions = vec![(7, 5000)];
        let dir = tempfile::tempdir().unwrap();
        let mut w = snapshot::SnapshotWriter::create(dir.path(), 3).unwrap();
        database::write_fuzzy(&shared_over(tree.clone(), &sessions), &mut w).unwrap();
        let file = std::fs::read(w.finish(None, 3).unwrap()).unwrap();
        let mut stream = Vec::new();
        write_snap(&mut stream, &tree, &sessions).unwrap();
        let body = &stream[..stream.len() - 14];
        assert_eq!(&file[16..16 + body.len()], body);
        // The first seal follows: checksum (8 bytes) and "/".
        assert_eq!(&file[16 + body.len() + 8..16 + body.len() + 13], b"\x00\x00\x00\x01/");
    }

    fn read(bytes: &[u8]) -> Result<SnapState, SnapError> {
        read_snap(&mut &bytes[..], 0, false, MAX)
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut stream = Vec::new();
        write_snap(&mut stream, &sample_tree(), &[(1, 2)]).unwrap();
        for cut in 0..stream.len() {
            match read(&stream[..cut]) {
                Err(SnapError::Body(SnapshotError::Truncated { .. })) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        assert!(read(&stream).is_ok());
    }

    #[test]
    fn bad_signature_is_an_error() {
        let mut stream = Vec::new();
        write_snap(&mut stream, &DataTree::new(false), &[]).unwrap();
        let at = stream.len() - 10;
        stream[at] = b'b';
        match read(&stream) {
            Err(SnapError::BadSignature(s)) => assert_eq!(s, "benWasHere"),
            other => panic!("{other:?}"),
        }
        let mut short = stream[..stream.len() - 14].to_vec();
        short.put_str("/");
        assert!(matches!(read(&short), Err(SnapError::BadSignature(s)) if s == "/"));
    }

    #[test]
    fn bad_lengths_and_orphans_are_errors() {
        let stat = StatPersisted::default();
        // A session count no stream can back: reading runs out, nothing huge is allocated.
        let mut b = Vec::new();
        b.put_i32(i32::MAX);
        assert!(matches!(read(&b), Err(SnapError::Body(SnapshotError::Truncated { .. }))));
        let mut b = Vec::new();
        b.put_i32(-2);
        assert!(matches!(read(&b), Err(SnapError::Body(SnapshotError::Malformed { .. }))));
        // An ACL list count that is absurd, then a string longer than max_len.
        let mut b = Vec::new();
        b.put_i32(0);
        b.put_i32(1);
        b.put_i64(1);
        b.put_i32(i32::MAX);
        assert!(matches!(read(&b), Err(SnapError::Body(SnapshotError::Truncated { .. }))));
        let mut b = Vec::new();
        b.put_i32(0);
        b.put_i32(0);
        b.put_i32(MAX as i32 + 1);
        assert!(matches!(read(&b), Err(SnapError::Body(SnapshotError::Malformed { .. }))));
        // Node data with a negative length.
        let mut b = Vec::new();
        b.put_i32(0);
        b.put_i32(0);
        b.put_str("");
        b.put_i32(-3);
        assert!(matches!(read(&b), Err(SnapError::Body(SnapshotError::Malformed { .. }))));
        // A node before its parent, and a first node that is not the root.
        for paths in [&["", "/x/y"][..], &["/x"][..]] {
            let mut b = Vec::new();
            b.put_i32(0);
            b.put_i32(0);
            for p in paths {
                snapshot::encode_node(&mut b, p, None, -1, &stat);
            }
            snapshot::encode_end_of_nodes(&mut b);
            b.put_str(SNAP_SIGNATURE);
            let err = read(&b).unwrap_err();
            assert!(err.to_string().contains("before its parent"), "{err}");
            assert!(err.to_string().contains("<SNAP stream>"), "{err}");
        }
        // No nodes at all.
        let mut b = Vec::new();
        b.put_i32(0);
        b.put_i32(0);
        snapshot::encode_end_of_nodes(&mut b);
        b.put_str(SNAP_SIGNATURE);
        assert!(matches!(read(&b), Err(SnapError::NoRoot)));
    }

    #[test]
    fn io_errors_are_reported_as_such() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let err = read_snap(&mut Broken, 0, false, MAX).unwrap_err();
        assert!(matches!(err, SnapError::Body(SnapshotError::Io { .. })), "{err}");
    }
}
