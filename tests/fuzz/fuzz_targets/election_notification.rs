//! An election notification (one frame payload on the election port), in all of its forms,
//! and the config text it carries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::quorum::wire::{Format, Notification, NOTIFICATION_VERSION};

fuzz_target!(|data: &[u8]| {
    let Ok(n) = Notification::decode(data) else { return };
    let _ = n.config_version();
    let _ = n.vote();
    if n.version >= 2 {
        // The current form re-encodes to the bytes it was read from (minus ignored trailing
        // bytes), except that it always says version 2.
        let again = n.encode_as(Format::Version2);
        assert_eq!(&data[..36], &again[..36]);
        assert_eq!(&data[40..again.len()], &again[40..]);
        let current = Notification { version: NOTIFICATION_VERSION, ..n };
        assert_eq!(Notification::decode(&again), Ok(current));
    }
});
