//! Replies and events on their way out: the outbox the pipeline fills, each connection's
//! output account and back-pressure (reads resume once output drains), and the writes
//! through the connection's transport.

use super::*;

impl Selector {
    pub(super) fn drain_outbox(&mut self) {
        let mut touched: Vec<usize> = Vec::new();
        let shared = self.shared.clone();
        let stats = &shared.stats;
        while let Ok(msg) = self.outbox.try_recv() {
            match msg {
                Outbound::Reply { conn, frame, close } => {
                    stats.outstanding.fetch_sub(1, Ordering::Relaxed);
                    let mono_ms = self.shared.now_ms();
                    let Some(key) = self.key_of(conn) else { continue };
                    let slot = &mut self.slots[key];
                    slot.outflow.arrived(frame.len());
                    let answered = slot.conn.reply(frame, close, Instant::now(), mono_ms);
                    self.large.finished(answered);
                    stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    touched.push(key);
                }
                Outbound::Event { conn, frame } => {
                    let Some(key) = self.key_of(conn) else { continue };
                    let slot = &mut self.slots[key];
                    slot.outflow.arrived(frame.len());
                    slot.conn.event(frame);
                    stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    touched.push(key);
                }
                Outbound::SessionCreated { conn, session, frame } => {
                    let Some(key) = self.key_of(conn) else { continue };
                    if self.slots[key].conn.established(session, frame) {
                        stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                        touched.push(key);
                        // Requests that arrived behind the ConnectRequest can run now.
                        self.resume_input(key);
                    }
                }
                Outbound::Revalidated { conn, session, valid } => {
                    let Some(key) = self.key_of(conn) else { continue };
                    let slot = &mut self.slots[key];
                    let (peer, timeout) = (slot.conn.peer(), slot.conn.timeout_ms());
                    if !slot.conn.revalidated(session, valid) {
                        continue;
                    }
                    stats.packets_sent.fetch_add(1, Ordering::Relaxed);
                    touched.push(key);
                    if valid {
                        info!(
                            "session 0x{session:x} re-established from {peer}, timeout {timeout}ms"
                        );
                        let now = self.shared.now_ms();
                        // The leader is the judge: a session whose createSession this server
                        // has not applied yet is known here from now on.
                        self.shared.with_sessions(|t| {
                            if !t.touch(session, timeout, now) {
                                t.add(session, timeout, now);
                            }
                        });
                        self.resume_input(key);
                    } else {
                        info!("invalid session 0x{session:x} for client {peer}, probably expired");
                        if self.by_session.get(&session) == Some(&conn) {
                            self.by_session.remove(&session);
                        }
                    }
                }
                Outbound::FourLetter { conn, text } => {
                    let Some(key) = self.key_of(conn) else { continue };
                    self.slots[key].conn.four_letter_answer(text.into_bytes());
                    touched.push(key);
                }
                Outbound::Overflowed { conn } => {
                    if let Some(key) = self.key_of(conn) {
                        touched.push(key);
                    }
                }
                Outbound::SessionExpired { session } => {
                    let Some(conn) = self.by_session.get(&session).copied() else { continue };
                    // A connection still waiting for its handshake's answer (a re-attach the
                    // leader is revalidating) gets that answer instead: the close may have
                    // been meant for the connection it replaced.
                    match self.key_of(conn) {
                        Some(key) if self.slots[key].conn.state() == State::AwaitSession => {}
                        Some(key) => self.close(key),
                        None => {}
                    }
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for key in touched {
            self.flush(key);
            let Some(slot) = self.slots.get(key) else { continue };
            if slot.conn.output_overflow() || slot.outflow.overflowed() {
                let c = &slot.conn;
                warn!(
                    "closing connection from {} (session 0x{:x}): {} bytes of replies and \
                     events unread (limit {})",
                    c.peer(),
                    c.session(),
                    slot.outflow.held().max(c.pending_out()),
                    limits::CNXN_OUTBOUND_CLOSE_BYTES
                );
                self.close(key);
            }
        }
    }

    /// Input buffered behind a handshake can be handled now; reads resume if they paused.
    pub(super) fn resume_input(&mut self, key: usize) {
        let paused = self.slots.get(key).is_some_and(|s| s.read_paused);
        if self.process(key) && paused {
            self.read(key);
        }
    }

    /// Writes what the connection has queued; closes it once done if it asked to be closed.
    pub(super) fn flush(&mut self, key: usize) {
        let Some(slot) = self.slots.get_mut(key) else { return };
        loop {
            let written = {
                let mut slices = Vec::with_capacity(WRITE_SLICES);
                slot.conn.output(&mut slices, WRITE_SLICES);
                if slices.is_empty() {
                    break;
                }
                slot.transport.write_vectored(&slices)
            };
            match written {
                Ok(0) => break,
                Ok(n) => slot.conn.sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("write error to {}: {e}", slot.conn.peer());
                    self.close(key);
                    return;
                }
            }
        }
        if slot.transport.pending_writes() > 0 {
            if let Err(e) = slot.transport.flush_pending() {
                if e.kind() != io::ErrorKind::WouldBlock {
                    debug!("write error to {}: {e}", slot.conn.peer());
                    self.close(key);
                    return;
                }
            }
        }
        slot.outflow.set_queued(slot.conn.pending_out());
        if slot.conn.done() && slot.transport.pending_writes() == 0 {
            self.close(key);
            return;
        }
        let want_write = slot.conn.pending_out() > 0 || slot.transport.pending_writes() > 0;
        if want_write != slot.writable_registered {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let source = slot.transport.source();
            if let Err(e) =
                self.poll.registry().reregister(source, Token(key + FIRST_CONNECTION), interest)
            {
                debug!("reregister failed for {}: {e}", slot.conn.peer());
            }
            slot.writable_registered = want_write;
        }
        let resume = limits::OUTBOUND_BUFFERED_MAX_BYTES / 2;
        if slot.read_paused && slot.conn.wants_read(resume, self.throttled) {
            self.read(key);
        }
    }
}
