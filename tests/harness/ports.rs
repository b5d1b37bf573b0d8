//! Loopback ports for servers that bind a port number chosen before they start (separate
//! processes, configs written ahead, restarts on the same port).
//!
//! The race this avoids: a port taken from the kernel with `bind(:0)` and released comes from
//! the ephemeral range (`net.ipv4.ip_local_port_range`, 32768-60999 by default), which the
//! kernel hands to every outgoing connection of every process, so it can be gone before the
//! server binds it. These ports come from below that range, where the kernel never assigns
//! one by itself. Each test process starts at its own offset (from its pid) and never hands a
//! port out twice; a candidate some other program holds (bound or listening) is skipped.

use std::net::TcpListener;
use std::sync::Mutex;

/// The lowest port handed out (above the well-known and registered ports tests might meet:
/// 2181, 2888, 3888, 8080, ...).
pub const FIRST: u16 = 10_000;

/// Where the scan continues; `None` until the first call.
static NEXT: Mutex<Option<(u32, u32)>> = Mutex::new(None);

/// The first port of the kernel's ephemeral range (32768 if it cannot be read).
pub fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .filter(|p: &u16| *p > FIRST + 1000)
        .unwrap_or(32_768)
}

/// `n` distinct ports, none handed out before by this process and each free when chosen.
pub fn take(n: usize) -> Vec<u16> {
    let end = ephemeral_start();
    let span = u32::from(end - FIRST);
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let (start, scanned) = next.get_or_insert_with(|| {
        // Processes running at the same time start far apart.
        let offset = std::process::id().wrapping_mul(7_919) % span;
        (offset, 0)
    });
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        assert!(*scanned < span, "all {span} test ports below {end} were handed out");
        let port = FIRST + ((*start + *scanned) % span) as u16;
        *scanned += 1;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    ports
}

/// One port, as [`take`].
pub fn one() -> u16 {
    take(1)[0]
}
