//! A whole snapshot file (FileHeader, sessions, ACL cache, nodes, seals, digest), loaded into
//! a tree the way recovery loads it (`database::load_snapshot`), seals checked at the end.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rzk::persistence::snapshot::SnapshotReader;
use rzk::server::datatree::DataTree;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = SnapshotReader::from_bytes(Path::new("snapshot.1"), data.to_vec()) else {
        return;
    };
    let mut tree = DataTree::empty(false);
    if reader.sessions().is_err() {
        return;
    }
    let Ok(acl_cache) = reader.acl_cache() else { return };
    for (acl_ref, acl) in acl_cache {
        tree.acl_cache_mut().insert_loaded(acl_ref, acl);
    }
    loop {
        match reader.next_node() {
            Ok(Some(node)) => tree.insert_loaded(node.path, node.data, node.acl_ref, node.stat),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let _ = reader.finish();
});
