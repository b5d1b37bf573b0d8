//! The tree digest (persistence-formats.md §6; ZooKeeper's `DigestCalculator`, `AdHash`),
//! digest version 2.
//!
//! Owns the per-node hash and the additive tree hash (the CRC arithmetic is `crc32fast`'s,
//! hardware-accelerated where the CPU has it). Pure computation, no I/O; the tree calls
//! [`TreeDigest::add`] / [`TreeDigest::remove`] as nodes change and logs [`TreeDigest::value`]
//! after each txn (the `TxnDigest` trailer) and in snapshots.
//!
//! ```text
//! node digest = crc32( path bytes, with "/" written as ""
//!                    | data bytes (nothing for null data)
//!                    | czxid mzxid pzxid ctime mtime (long) version cversion aversion (int)
//!                      ephemeralOwner (long) )                     -- 60 bytes, big-endian
//!             = 0 for paths under "/zookeeper/" (quota and config nodes)
//! tree digest = wrapping 64-bit sum of the node digests
//! ```

use crate::jute::data::StatPersisted;

/// The digest version this module computes (`DigestCalculator.DIGEST_VERSION`).
pub const DIGEST_VERSION: i32 = 2;

/// Paths under this prefix are not part of the digest (`ZooDefs.ZOOKEEPER_NODE_SUBTREE`).
const ZOOKEEPER_SUBTREE: &str = "/zookeeper/";

/// The CRC-32 of `bytes` (IEEE, as zlib's `crc32` and `java.util.zip.CRC32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// The digest of one node, an unsigned 32-bit value in an `i64` as Java's `CRC32.getValue`.
/// `path` is the full path ("/" or "" for the root); `data` is `None` for null data.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> i64 {
    if path.starts_with(ZOOKEEPER_SUBTREE) {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut block = [0u8; 60];
    let longs = [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime];
    for (i, v) in longs.iter().enumerate() {
        block[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    for (i, v) in [stat.version, stat.cversion, stat.aversion].iter().enumerate() {
        block[40 + i * 4..44 + i * 4].copy_from_slice(&v.to_be_bytes());
    }
    block[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    if let Some(data) = data {
        crc.update(data);
    }
    crc.update(&block);
    i64::from(crc.finalize())
}

/// The additive tree digest (`AdHash`): the wrapping sum of every node's digest, so a change
/// is "remove the old node digest, add the new one".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDigest {
    hash: i64,
}

impl TreeDigest {
    /// The digest of an empty tree (0).
    pub fn new() -> TreeDigest {
        TreeDigest { hash: 0 }
    }

    /// Adds a node digest from [`node_digest`].
    pub fn add(&mut self, node_digest: i64) {
        self.hash = self.hash.wrapping_add(node_digest);
    }

    /// Removes a node digest added before.
    pub fn remove(&mut self, node_digest: i64) {
        self.hash = self.hash.wrapping_sub(node_digest);
    }

    /// The tree digest, as logged in `TxnDigest.treeDigest` and snapshots.
    pub fn value(&self) -> i64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(&[0u8; 60]), 68_323_592);
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"1234");
        crc.update(b"56789");
        assert_eq!(crc.finalize(), 0xcbf4_3926);
    }

    #[test]
    fn fresh_tree_digest_matches_captured_create_session_record() {
        let zero = StatPersisted::default();
        let config_stat = StatPersisted { aversion: -1, ..StatPersisted::default() };
        let mut tree = TreeDigest::new();
        tree.add(node_digest("/", Some(b""), &zero));
        tree.add(node_digest("/zookeeper", Some(b""), &zero));
        tree.add(node_digest("/zookeeper/quota", Some(b""), &zero));
        tree.add(node_digest("/zookeeper/config", Some(b""), &config_stat));
        // persistence-formats.md §3.6: TxnDigest of zxid 1 in a fresh 3.8.0 server.
        assert_eq!(tree.value(), 0x51c6_d660);
    }

    #[test]
    fn root_is_hashed_as_empty_path_and_null_data_adds_nothing() {
        let stat = StatPersisted { czxid: 5, mzxid: 6, pzxid: 7, ..StatPersisted::default() };
        assert_eq!(node_digest("/", None, &stat), node_digest("", Some(b""), &stat));
        assert_eq!(node_digest("/zookeeper/quota/x", Some(b"q"), &stat), 0);
        assert_ne!(node_digest("/a", Some(b"x"), &stat), node_digest("/a", Some(b"y"), &stat));
    }

    #[test]
    fn remove_undoes_add() {
        let mut tree = TreeDigest::new();
        let a = node_digest("/a", Some(b"x"), &StatPersisted::default());
        tree.add(a);
        tree.add(0xffff_ffff);
        tree.remove(a);
        tree.remove(0xffff_ffff);
        assert_eq!(tree.value(), 0);
    }
}
