//! A whole txn log file (FileHeader, checksummed records, zero fill) read as the newest file,
//! the way recovery reads it, with every txn replayed into a tree.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use rzk::persistence::txnlog::TxnIterator;
use rzk::server::datatree::DataTree;

fuzz_target!(|data: &[u8]| {
    let mut records = TxnIterator::from_bytes(PathBuf::from("log.1"), data.to_vec(), 0);
    let mut tree = DataTree::new(false);
    for logged in records.by_ref() {
        let Ok(logged) = logged else { break };
        assert!((logged.offset as usize) < data.len());
        let _ = tree.apply(&logged.entry.header, &logged.entry.txn);
    }
    if let Some(tail) = records.torn_tail() {
        assert!(tail.valid_len as usize <= data.len());
    }
});
