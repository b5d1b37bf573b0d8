//! The SNAP stream a leader sends after a SNAP packet: sessions, ACL cache, nodes and the
//! signature, built into a fresh tree as a learner does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::limits::QUORUM_PACKET_MAX_BYTES_DEFAULT;
use rzk::quorum::zab::snap::read_snap;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    if let Ok(state) = read_snap(&mut input, 0x1_0000_0000, false, QUORUM_PACKET_MAX_BYTES_DEFAULT)
    {
        // A tree that loaded can be walked and written again.
        let mut out = Vec::new();
        rzk::quorum::zab::snap::write_snap(&mut out, &state.tree, &state.sessions)
            .expect("writing to memory");
    }
});
