//! The first bytes of a client connection: a four-letter word, or a frame holding the
//! `ConnectRequest` (with or without the trailing `readOnly` flag).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::jute::proto::ConnectRequest;
use rzk::limits::JUTE_MAX_BUFFER_DEFAULT_BYTES;
use rzk::proto::frame::{self, Frame};

fuzz_target!(|data: &[u8]| {
    let _ = frame::four_letter_word(data);
    if let Frame::Complete { len } = frame::parse(data, JUTE_MAX_BUFFER_DEFAULT_BYTES) {
        rzk_fuzz::round_trip::<ConnectRequest>(&data[4..4 + len]);
    }
    // The payload alone, so the fuzzer need not find a matching length prefix.
    rzk_fuzz::round_trip::<ConnectRequest>(data);
});
