//! The hash maps and sets the server keys by znode paths, session ids and watch targets.
//!
//! They use `foldhash` (the hasher hashbrown itself defaults to): several times cheaper per
//! lookup than std's SipHash on the request path, fast on long strings (znode names up to
//! `jute.maxbuffer`), and with a per-process random seed, so a client cannot precompute paths
//! that collide in every rzk. Not cryptographic: the keys come from authenticated clients of a
//! coordination service, and colliding keys would only make a map slower, never wrong.

use std::collections::{HashMap, HashSet};

/// The map type of the server's in-memory indexes.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// The set type of the server's in-memory indexes.
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn maps_work_and_similar_names_spread_over_buckets() {
        let mut m: FastMap<String, u32> = FastMap::default();
        for i in 0..1000 {
            m.insert(format!("/node/{i}"), i);
        }
        assert_eq!(m.get("/node/777"), Some(&777));
        // Sequential names (as sequential znodes are) land in different low bits, which is
        // what hashbrown picks buckets with.
        let state = foldhash::fast::RandomState::default();
        let low: FastSet<u64> =
            (0..1000).map(|i| state.hash_one(format!("c-{i:010}")) & 0x3ff).collect();
        assert!(low.len() > 500, "only {} distinct bucket indexes", low.len());
    }
}
