//! Accepting client connections: the plain and secure listeners, `maxClientCnxns` per IP
//! and `maxCnxns` in total, the TLS handshake limit, and the transport each connection gets
//! (plain, TLS, or port unification's first-byte choice).

use super::*;

impl Selector {
    /// Accepts from the plain or the secure listener until it has no more.
    pub(super) fn accept(&mut self, secure: bool) {
        loop {
            let accepted = match (&self.secure, secure) {
                (Some(listener), true) => listener.accept(),
                (None, true) => return,
                (_, false) => self.listener.accept(),
            };
            let (mut stream, peer) = match accepted {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) or memory: back off and try again
                    // soon, logging once per interval, never spinning.
                    let now = Instant::now();
                    if self.accept_error_logged.is_none_or(|t| now - t >= ACCEPT_ERROR_LOG_EVERY) {
                        warn!("accept failed: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                        self.accept_error_logged = Some(now);
                    }
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            };
            let config = &self.shared.config;
            let ip = peer.ip();
            let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
            let per_ip_max = config.max_client_cnxns.map_or(usize::MAX, |n| n.get() as usize);
            if from_ip >= per_ip_max {
                warn!("Too many connections from {ip} - max is {per_ip_max}");
                self.shared.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let max = self.max_cnxns;
            if self.slots.len() >= max {
                warn!("too many connections: max is {max}, closing {peer}");
                self.shared.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if secure && self.handshake_limit_reached() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let entry = self.slots.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(key + FIRST_CONNECTION),
                Interest::READABLE,
            ) {
                warn!("cannot register connection from {peer}: {e}");
                continue;
            }
            let unified = !secure && config.client_port_unification;
            let transport: Box<dyn Transport> = match &mut self.tls {
                Some(tls) if secure || unified => {
                    match TlsStream::server(stream, tls.config(Instant::now())) {
                        Ok(t) if unified => Box::new(Unified::new(t)),
                        Ok(t) => {
                            count_connection(&self.shared.stats, ip, true);
                            Box::new(t)
                        }
                        Err(e) => {
                            warn!("TLS session for {peer} not started: {e}");
                            continue;
                        }
                    }
                }
                _ => {
                    count_connection(&self.shared.stats, ip, false);
                    Box::new(stream)
                }
            };
            self.generation = self.generation.wrapping_add(1);
            let id = ((self.generation as u64) << 32) | key as u64;
            let max_frame = config.jute_max_buffer_bytes;
            let conn = Connection::new(id, peer, max_frame, Instant::now(), wall_clock_ms());
            entry.insert(Slot {
                conn,
                outflow: Arc::new(Outflow::default()),
                transport,
                sasl: None,
                read_paused: false,
                writable_registered: false,
            });
            *self.per_ip.entry(ip).or_insert(0) += 1;
            debug!("accepted connection from {peer}");
        }
    }

    /// `netty.server.outstandingHandshake.limit`: whether a new TLS connection must be closed
    /// at once because that many handshakes are under way (counted, logged at debug).
    pub(super) fn handshake_limit_reached(&self) -> bool {
        let Some(limit) = self.shared.config.outstanding_handshake_limit else { return false };
        let stats = &self.shared.stats;
        let outstanding = stats.tls_handshakes_outstanding.load(Ordering::Relaxed).max(0) as usize;
        if outstanding < limit {
            return false;
        }
        stats.tls_handshake_exceeded.fetch_add(1, Ordering::Relaxed);
        debug!("TLS connection closed: {outstanding} handshakes under way (limit {limit})");
        true
    }
}

/// Counts a new connection: a TLS handshake under way, or a connection without mutual TLS
/// (`non_mtls_local_conn_count`/`non_mtls_remote_conn_count`).
pub(super) fn count_connection(
    stats: &crate::server::stats::ServerStats,
    ip: std::net::IpAddr,
    tls: bool,
) {
    if tls {
        stats.tls_handshakes_outstanding.fetch_add(1, Ordering::Relaxed);
    } else if ip.is_loopback() {
        stats.non_mtls_local.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.non_mtls_remote.fetch_add(1, Ordering::Relaxed);
    }
}

/// The most client connections when `maxCnxns` is not set: what the process's descriptor
/// limit leaves after a reserve for the txn log, snapshots, the quorum's sockets and the
/// listener, so that running out of descriptors refuses clients instead of failing a log roll.
pub(super) fn default_max_cnxns() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given and has no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return usize::MAX;
    }
    (lim.rlim_cur as usize).saturating_sub(limits::FD_RESERVE).max(1)
}
