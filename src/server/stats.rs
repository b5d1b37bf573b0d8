//! Server-wide counters for the four-letter words (`srvr`, `stat`, `mntr`), updated lock-free
//! by the connection thread and the apply stage.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Counters since start or the last `srst`.
#[derive(Debug)]
pub struct ServerStats {
    /// Packets received from clients.
    pub packets_received: AtomicU64,
    /// Packets sent to clients.
    pub packets_sent: AtomicU64,
    /// Requests submitted and not yet answered.
    pub outstanding: AtomicI64,
    latency_count: AtomicU64,
    latency_total_ms: AtomicU64,
    latency_min_ms: AtomicU64,
    latency_max_ms: AtomicU64,
    /// Size of the last response (-1 before the first).
    pub last_response_size: AtomicI64,
    /// Smallest response size.
    pub min_response_size: AtomicI64,
    /// Largest response size.
    pub max_response_size: AtomicI64,
    /// Rejected connections (limits).
    pub connections_rejected: AtomicU64,
    /// Failed auth attempts.
    pub auth_failed: AtomicU64,
    /// TLS handshakes started and not yet finished (`outstanding_tls_handshake`).
    pub tls_handshakes_outstanding: AtomicI64,
    /// TLS handshakes that failed (`unsuccessful_handshake`).
    pub tls_handshakes_failed: AtomicU64,
    /// TLS connections closed at accept because `netty.server.outstandingHandshake.limit`
    /// handshakes were under way (Apache's `tls_handshake_exceeded`).
    pub tls_handshake_exceeded: AtomicU64,
    /// Plain (not TLS) connections from other hosts (`non_mtls_remote_conn_count`).
    pub non_mtls_remote: AtomicU64,
    /// Plain connections from loopback (`non_mtls_local_conn_count`).
    pub non_mtls_local: AtomicU64,
    /// Connections closed for a request over the large-request budget.
    pub large_requests_rejected: AtomicU64,
    /// The connection throttle's drop probability, as `f64` bits.
    pub connection_drop_probability_bits: AtomicU64,
    /// Bytes received.
    pub bytes_received: AtomicU64,
    /// fsync time total (ms) and count.
    pub fsync_total_ms: AtomicU64,
    /// Number of fsyncs.
    pub fsync_count: AtomicU64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_ms: AtomicU64::new(0),
            latency_min_ms: AtomicU64::new(u64::MAX),
            latency_max_ms: AtomicU64::new(0),
            last_response_size: AtomicI64::new(-1),
            min_response_size: AtomicI64::new(-1),
            max_response_size: AtomicI64::new(-1),
            connections_rejected: AtomicU64::new(0),
            auth_failed: AtomicU64::new(0),
            tls_handshakes_outstanding: AtomicI64::new(0),
            tls_handshakes_failed: AtomicU64::new(0),
            tls_handshake_exceeded: AtomicU64::new(0),
            non_mtls_remote: AtomicU64::new(0),
            non_mtls_local: AtomicU64::new(0),
            large_requests_rejected: AtomicU64::new(0),
            connection_drop_probability_bits: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            fsync_total_ms: AtomicU64::new(0),
            fsync_count: AtomicU64::new(0),
        }
    }
}

impl ServerStats {
    /// Records one request's latency.
    pub fn record_latency(&self, ms: u64) {
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_total_ms.fetch_add(ms, Relaxed);
        self.latency_min_ms.fetch_min(ms, Relaxed);
        self.latency_max_ms.fetch_max(ms, Relaxed);
    }

    /// Records a response size.
    pub fn record_response_size(&self, bytes: usize) {
        let b = bytes as i64;
        self.last_response_size.store(b, Relaxed);
        let min = self.min_response_size.load(Relaxed);
        if min < 0 || b < min {
            self.min_response_size.store(b, Relaxed);
        }
        self.max_response_size.fetch_max(b, Relaxed);
    }

    /// (min, avg, max) latency in ms; zeros when nothing was measured.
    pub fn latency(&self) -> (u64, f64, u64) {
        let n = self.latency_count.load(Relaxed);
        if n == 0 {
            return (0, 0.0, 0);
        }
        let avg = self.latency_total_ms.load(Relaxed) as f64 / n as f64;
        (self.latency_min_ms.load(Relaxed), avg, self.latency_max_ms.load(Relaxed))
    }

    /// `srst`: resets latency and packet counters.
    pub fn reset(&self) {
        self.packets_received.store(0, Relaxed);
        self.packets_sent.store(0, Relaxed);
        self.latency_count.store(0, Relaxed);
        self.latency_total_ms.store(0, Relaxed);
        self.latency_min_ms.store(u64::MAX, Relaxed);
        self.latency_max_ms.store(0, Relaxed);
        self.last_response_size.store(-1, Relaxed);
        self.min_response_size.store(-1, Relaxed);
        self.max_response_size.store(-1, Relaxed);
        self.non_mtls_remote.store(0, Relaxed);
        self.non_mtls_local.store(0, Relaxed);
    }
}

/// Formats a double like Java's `Double.toString` after rounding half-up to 4 places, as
/// ZooKeeper prints average latencies (`0.0`, `3.0909`).
pub fn java_double(v: f64) -> String {
    let rounded = (v * 10_000.0).round() / 10_000.0;
    let mut s = format!("{rounded:.4}");
    while s.ends_with('0') && !s.ends_with(".0") {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_and_formatting() {
        let s = ServerStats::default();
        assert_eq!(s.latency(), (0, 0.0, 0));
        s.record_latency(1);
        s.record_latency(4);
        let (min, avg, max) = s.latency();
        assert_eq!((min, max), (1, 4));
        assert_eq!(java_double(avg), "2.5");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(34.0 / 11.0), "3.0909");
        assert_eq!(java_double(3.0), "3.0");
        s.reset();
        assert_eq!(s.latency(), (0, 0.0, 0));
    }
}
