//! The server's sans-IO connection core (`server::cnxn::conn::Connection`), driven the way
//! the selector drives it: input arrives in chunks of arbitrary size (only while the core
//! wants to read), and the selector's side (handshake outcomes, sessions established or
//! refused, replies, how much of the output the socket took) is chosen by the input too.
//! Asserts no panic and that buffered input stays within one frame and one chunk.
//!
//! Input: a sequence of (control byte, chunk of `control % 64` bytes). Control bits: 0x40
//! establish an awaited session, 0x80 answer each request at once, 0x01/0x02 make resumed /
//! revalidated sessions valid, 0x04 server-wide throttling.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rzk::proto::{ErrorCode, OpCode};
use rzk::server::cnxn::conn::{Connection, Event, Handshake, HandshakeFacts};
use rzk::server::ServerMode;

const MAX_FRAME: usize = 4096;
const CHUNK_MAX: usize = 63;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
    let mut c = Connection::new(1, peer, MAX_FRAME, t0, 0);
    let facts = HandshakeFacts {
        mode: ServerMode::Standalone,
        last_zxid: 0x100,
        timeouts_ms: (4_000, 40_000),
    };
    let mut rest = data;
    let mut step = 0u64;
    while let Some((&ctl, tail)) = rest.split_first() {
        let n = (ctl as usize % 64).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        step += 1;
        let now = t0 + Duration::from_millis(step);
        if c.wants_read(1 << 20, ctl & 0x04 != 0) {
            c.receive(chunk, now);
        }
        for _ in 0..10_000 {
            let Some(event) = c.poll_event() else { break };
            match event {
                Event::Connect(req) => match c.handshake(&req, &facts) {
                    Handshake::NewSession { .. } => {
                        c.await_session(0x1234);
                        if ctl & 0x40 != 0 {
                            let _ = c.established(0x1234, vec![0; 36]);
                        }
                    }
                    Handshake::Resume { session, .. } => c.resumed(session, ctl & 0x01 != 0),
                    Handshake::AskLeader { session, .. } => {
                        c.await_session(session);
                        let _ = c.revalidated(session, ctl & 0x02 != 0);
                    }
                    Handshake::Invalid { .. } | Handshake::Refuse(_) => {}
                },
                Event::Request { header, body } => {
                    let op = OpCode::from_i32(header.op_type);
                    c.submitted(header.xid, op, body.len() + 8, now);
                    if ctl & 0x80 != 0 {
                        let _ = c.reply(vec![0; 16], false, now, step);
                    }
                }
                Event::Auth { xid, .. } => c.auth_answer(xid, ErrorCode::Ok),
                Event::FourLetter { .. } => c.four_letter_answer(b"imok\n".to_vec()),
                Event::Close(_) => break,
            }
        }
        assert!(
            c.input_bytes() <= 4 + MAX_FRAME + CHUNK_MAX,
            "{} bytes of input buffered",
            c.input_bytes()
        );
        let out = c.pending_out();
        c.sent(out.min(usize::from(ctl) * 7));
        let _ = c.summary(0, now);
        let _ = c.idle(now, Duration::from_secs(10), false);
        let _ = c.incoming_frame_len();
    }
});
