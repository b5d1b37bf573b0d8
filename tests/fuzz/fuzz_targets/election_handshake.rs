//! The election channel's first message (protocol version, sid, address list) and the
//! length-prefixed frames that follow it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::limits::ELECTION_INITIAL_ADDRESS_MAX_BYTES;
use rzk::quorum::cnxmanager::read_frame;
use rzk::quorum::wire::{decode_initial, Notification};

fuzz_target!(|data: &[u8]| {
    let used = match decode_initial(data) {
        Ok(Some((message, used))) => {
            assert!(used <= data.len());
            for address in &message.addresses {
                assert!(!address.to_string().is_empty());
            }
            used
        }
        // Waiting for more bytes must never mean buffering more than one maximal handshake.
        Ok(None) => {
            assert!(data.len() < 20 + ELECTION_INITIAL_ADDRESS_MAX_BYTES);
            return;
        }
        Err(_) => return,
    };
    let mut rest = &data[used..];
    while let Ok(frame) = read_frame(&mut rest) {
        let _ = Notification::decode(&frame);
    }
});
