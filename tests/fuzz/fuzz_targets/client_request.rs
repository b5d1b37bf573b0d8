//! One request body for each opcode: the first byte picks the opcode (every one is reached
//! equally), the rest is the body the server decodes for it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else { return };
    rzk_fuzz::server_request(rzk_fuzz::opcode(*selector), body);
});
