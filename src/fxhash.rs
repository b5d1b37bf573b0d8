//! A fast, non-cryptographic hasher for in-memory maps keyed by paths and ids (the "Fx" hash
//! used by rustc and Firefox), written here because the design card has no hashing crate.
//!
//! Not DoS-resistant: the keys it hashes (znode paths, session ids) come from authenticated
//! clients of a coordination service, and a server full of colliding paths would still be
//! correct, only slower. std's SipHash costs several times more per lookup on the request path.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The hasher state.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // One multiply leaves the low bits depending only on the low input bytes, and
        // hashbrown picks buckets with the low bits: paths like "c-000123" share their first
        // bytes and would pile into a few buckets. A murmur3-style fold spreads every bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// `HashSet` with [`FxHasher`].
pub type FxHashSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_hashes_differ() {
        let mut m: FxHashMap<String, u32> = FxHashMap::default();
        for i in 0..1000 {
            m.insert(format!("/node/{i}"), i);
        }
        assert_eq!(m.get("/node/777"), Some(&777));
        let h = |s: &str| {
            let mut x = FxHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_ne!(h("/a"), h("/b"));
        assert_ne!(h("/abcdefgh1"), h("/abcdefgh2"));
        // Names that differ only in their last bytes still land in different low bits.
        let low: std::collections::HashSet<u64> =
            (0..1000).map(|i| h(&format!("c-{i:06}")) & 0x3ff).collect();
        assert!(low.len() > 500, "only {} distinct bucket indexes", low.len());
    }
}
