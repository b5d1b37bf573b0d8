//! A learner connection's stream: `QuorumPacket`s back to back, read with the stream reader's
//! length budget (jute.maxbuffer + extrasize), each decoded into a core message and its body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::jute::Jute;
use rzk::limits::QUORUM_PACKET_MAX_BYTES_DEFAULT;
use rzk::quorum::zab::packet::{read_packet, QuorumPacket};

fuzz_target!(|data: &[u8]| {
    // The slice decoder must agree with the stream reader wherever both succeed.
    let from_slice = rzk_fuzz::round_trip::<QuorumPacket>(data);
    let mut input = data;
    let mut first = true;
    while let Ok(packet) = read_packet(&mut input, QUORUM_PACKET_MAX_BYTES_DEFAULT) {
        if first {
            first = false;
            if let Some(p) = &from_slice {
                assert_eq!(p, &packet, "slice and stream decoders disagree");
            }
        }
        assert_eq!(QuorumPacket::from_bytes(&packet.to_bytes()).as_ref(), Ok(&packet));
        rzk_fuzz::quorum_bodies(&packet);
    }
});
