//! `multi` / `multiRead`: the request the server decodes and the response the client decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::jute::proto::MultiResponse;

fuzz_target!(|data: &[u8]| {
    rzk_fuzz::multi_request(data);
    rzk_fuzz::round_trip::<MultiResponse>(data);
});
