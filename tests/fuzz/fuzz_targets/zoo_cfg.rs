//! zoo.cfg text: the Java-properties reader, then each `server.N` value through the server
//! spec parser, and `-D` flags as SERVER_JVMFLAGS passes them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk::config::{parse_properties, ServerSpec, SystemProperties};
use rzk::proto::ServerId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(properties) = parse_properties(text) {
        for p in properties {
            if let Some(id) = p.key.strip_prefix("server.").and_then(|n| n.parse::<u64>().ok()) {
                let _ = ServerSpec::parse(ServerId(id), &p.value);
            }
        }
    }
    let _ = SystemProperties::from_jvm_flags(text.split_whitespace());
});
