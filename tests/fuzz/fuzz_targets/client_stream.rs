//! A client connection's byte stream as the server reads it: length-prefixed frames, the
//! first a `ConnectRequest`, then `RequestHeader` + body frames dispatched on their opcode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::jute::proto::{ConnectRequest, RequestHeader};
use rzk::jute::{Jute, Reader};
use rzk::limits::JUTE_MAX_BUFFER_DEFAULT_BYTES;
use rzk::proto::frame::{self, Frame};
use rzk::proto::OpCode;

fuzz_target!(|data: &[u8]| {
    if frame::four_letter_word(data).is_some() {
        return;
    }
    let mut rest = data;
    let mut first = true;
    while let Frame::Complete { len } = frame::parse(rest, JUTE_MAX_BUFFER_DEFAULT_BYTES) {
        let payload = &rest[4..4 + len];
        rest = &rest[4 + len..];
        if first {
            first = false;
            if rzk_fuzz::round_trip::<ConnectRequest>(payload).is_none() {
                return;
            }
            continue;
        }
        let mut r = Reader::new(payload);
        let Ok(header) = RequestHeader::decode(&mut r) else { return };
        if let Some(op) = OpCode::from_i32(header.op_type) {
            rzk_fuzz::server_request(op, r.rest());
        }
    }
});
