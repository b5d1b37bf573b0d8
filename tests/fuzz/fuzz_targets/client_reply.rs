//! What the client library decodes from a server: the `ConnectResponse`, and replies (header,
//! then a notification, an error or the response record of the op it sent). The first byte
//! picks the op the client is waiting on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rzk_fuzz::connect_response(data);
    let Some((selector, payload)) = data.split_first() else { return };
    rzk_fuzz::client_reply(rzk_fuzz::opcode(*selector), payload);
});
