//! One txn record payload (TxnHeader, the body its type selects, an optional digest), as the
//! txn log reader and a learner's PROPOSAL handling decode it, then applied to a fresh tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::server::datatree::DataTree;

fuzz_target!(|data: &[u8]| {
    if let Some(entry) = rzk_fuzz::txn_entry(data) {
        let mut tree = DataTree::new(false);
        let _ = tree.apply(&entry.header, &entry.txn);
    }
});
