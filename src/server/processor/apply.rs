//! Apply stage (ZooKeeper's `FinalRequestProcessor`): applies txns to the tree, executes
//! reads, fires watches and builds every reply (wire-protocol.md §5-§9).
//!
//! Runs on its own thread, the only writer of the tree. For each request it pushes the watch
//! events the request caused and then its reply to the connection thread, in that order, so a
//! client always sees an event before any reply that reflects the change. It wakes the
//! connection thread once per batch. No outbox send happens under the tree or watch
//! locks.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use log::{debug, info, warn};

use super::{read, Admit, Kind, Outbound, Request};
use crate::jute::data::perms;
use crate::jute::proto::{
    ConnectResponse, Create2Response, CreateResponse, MultiResponse, ReplyHeader, SetWatches,
    SetWatches2, StatResponse, WatcherEvent,
};
use crate::jute::txn::Txn;
use crate::jute::Jute;
use crate::proto::{xid, ErrorCode, EventType, KeeperState, OpCode};
use crate::server::acl;
use crate::server::datatree::{ApplyResult, Trigger};
use crate::server::session::password;
use crate::server::watch::{Table, PERSISTENT, RECURSIVE, STANDARD};
use crate::server::{ConnId, ServerMode, Shared};

/// The apply stage.
pub struct Apply {
    shared: Arc<Shared>,
    applied: Arc<AtomicI64>,
    out: Sender<Outbound>,
    waker: Arc<mio::Waker>,
}

impl Apply {
    /// An apply stage that publishes applied zxids to `applied` (read by prep).
    pub fn new(
        shared: Arc<Shared>,
        applied: Arc<AtomicI64>,
        out: Sender<Outbound>,
        waker: Arc<mio::Waker>,
    ) -> Apply {
        Apply { shared, applied, out, waker }
    }

    /// The thread body; ends when the input closes (the server stops).
    pub fn run(self, input: Receiver<Request>) -> Result<(), String> {
        while let Ok(first) = input.recv() {
            self.handle(first);
            for _ in 1..crate::limits::APPLY_BATCH_MAX {
                match input.try_recv() {
                    Ok(r) => self.handle(r),
                    Err(_) => break,
                }
            }
            self.wake()?;
        }
        debug!("apply stage: input closed, stopping");
        Ok(())
    }

    fn wake(&self) -> Result<(), String> {
        self.waker.wake().map_err(|e| format!("cannot wake the connection thread: {e}"))
    }

    /// Queues a message for the connection thread. The outbox is bounded: when it is full the
    /// connection thread is woken first (it drains the outbox on every round and never waits
    /// for this stage), then this stage waits for room.
    fn send(&self, msg: Outbound) {
        let msg = match self.out.try_send(msg) {
            Ok(()) => return,
            Err(crossbeam_channel::TrySendError::Full(msg)) => msg,
            // The connection thread is gone: the server is stopping; nothing to do.
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
        };
        if let Err(e) = self.wake() {
            warn!("apply stage: {e}");
        }
        let _ = self.out.send(msg);
    }

    /// Handles one request.
    pub fn handle(&self, req: Request) {
        fail::fail_point!("apply::handle");
        if req.kind == Kind::ConnectionClosed {
            if let Some(conn) = req.conn {
                self.shared.lock_watches().remove_conn(conn);
            }
            return;
        }
        if req.kind == Kind::Unimplemented {
            self.reply(&req, -1, ErrorCode::Unimplemented, None, true);
            return;
        }
        match &req.txn {
            Some(entry) => {
                let (result, triggers) = {
                    let mut tree = self.shared.write_tree();
                    let r = tree.apply(&entry.header, &entry.txn);
                    self.applied.store(entry.header.zxid, Ordering::Release);
                    r
                };
                self.fire(&triggers, entry.header.zxid);
                self.finish_write(&req, entry.header.zxid, &entry.txn, result);
            }
            None => self.read(&req),
        }
    }

    /// Sends the events for `triggers` to every watcher allowed to READ them. They are sent
    /// once the watch registry is released (the selector may wait for it: it answers reads
    /// itself, and only it makes room in the outbox).
    fn fire(&self, triggers: &[Trigger], zxid: i64) {
        if triggers.is_empty() {
            return;
        }
        let mut out = Vec::new();
        {
            let mut watches = self.shared.lock_watches();
            for t in triggers {
                let conns = watches.trigger(t.event, &t.path);
                for conn in conns {
                    let auth = watches.auth_of(conn);
                    if acl::check(&t.acl, perms::READ, &auth, self.shared.config.skip_acl).is_err()
                    {
                        continue;
                    }
                    let frame = event_frame(t.event, &t.path, zxid);
                    // A connection that stopped reading gets no more events: it is closed.
                    match watches.outflow_of(conn).map(|o| o.admit(frame.len())) {
                        None | Some(Admit::Yes) => out.push(Outbound::Event { conn, frame }),
                        Some(Admit::Overflowed) => out.push(Outbound::Overflowed { conn }),
                        Some(Admit::Refused) => {}
                    }
                }
            }
        }
        for msg in out {
            self.send(msg);
        }
    }

    fn finish_write(&self, req: &Request, zxid: i64, txn: &Txn, result: ApplyResult) {
        match &req.kind {
            Kind::NewSession { timeout_ms, read_only_flag } => {
                self.shared.with_sessions(|s| {
                    if s.get(req.session).is_none() {
                        s.add(req.session, *timeout_ms, self.shared.now_ms());
                    }
                });
                info!("session 0x{:x} established, timeout {timeout_ms}ms", req.session);
                if let Some(conn) = req.conn {
                    let resp = ConnectResponse {
                        protocol_version: 0,
                        time_out: *timeout_ms,
                        session_id: req.session,
                        passwd: password(req.session).to_vec(),
                        read_only: read_only_flag
                            .then_some(self.shared.mode == ServerMode::ReadOnly),
                    };
                    let mut frame = Vec::new();
                    crate::proto::frame::write(&mut frame, &resp.to_bytes());
                    self.send(Outbound::SessionCreated { conn, session: req.session, frame });
                }
                return;
            }
            Kind::Expire => {
                self.shared.with_sessions(|s| s.remove(req.session));
                info!("session 0x{:x} expired", req.session);
                self.send(Outbound::SessionExpired { session: req.session });
                return;
            }
            _ => {}
        }
        if let Txn::CreateSession { timeout_ms } = txn {
            // A session created through another quorum member: track it (learners answer
            // re-attaching clients from this; a future leader expires it).
            let now = self.shared.now_ms();
            self.shared.with_sessions(|s| {
                if s.get(req.session).is_none() {
                    s.add(req.session, *timeout_ms, now);
                }
            });
            return;
        }
        if matches!(txn, Txn::CloseSession(_)) {
            self.shared.with_sessions(|s| s.remove(req.session));
            if req.conn.is_none() {
                // Committed through the quorum leader (expiry, or the client closed it through
                // another server): a connection still holding it here is closed.
                info!("session 0x{:x} closed", req.session);
                self.send(Outbound::SessionExpired { session: req.session });
                return;
            }
            info!("session 0x{:x} closed by client", req.session);
            self.reply(req, zxid, ErrorCode::Ok, None, true);
            return;
        }
        if req.conn.is_none() {
            return;
        }
        let op = OpCode::from_i32(req.op);
        if op == Some(OpCode::Multi) {
            let body = match txn {
                Txn::Multi(_) => MultiResponse { results: result.multi }.to_bytes(),
                // The whole multi failed before its ops were looked at (e.g. undecodable).
                _ => {
                    return self.reply(req, zxid, result.err, None, false);
                }
            };
            return self.reply(req, zxid, ErrorCode::Ok, Some(body), false);
        }
        if result.err != ErrorCode::Ok {
            return self.reply(req, zxid, result.err, None, false);
        }
        let stat = result.stat.unwrap_or_default();
        let body = match op {
            Some(OpCode::Create) => Some(CreateResponse { path: result.path }.to_bytes()),
            Some(OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
                Some(Create2Response { path: result.path, stat }.to_bytes())
            }
            Some(OpCode::SetData | OpCode::SetAcl) => Some(StatResponse { stat }.to_bytes()),
            _ => None,
        };
        self.reply(req, zxid, ErrorCode::Ok, body, false);
    }

    fn reply(&self, req: &Request, zxid: i64, err: ErrorCode, body: Option<Vec<u8>>, close: bool) {
        let Some(conn) = req.conn else { return };
        let frame_bytes = 4 + 16 + body.as_ref().map_or(0, Vec::len);
        match req.outflow.as_ref().map(|o| o.admit(frame_bytes)) {
            None | Some(Admit::Yes) => {}
            Some(over) => {
                if over == Admit::Overflowed {
                    self.send(Outbound::Overflowed { conn });
                }
                // Over its output limit: the connection is being closed; its remaining
                // answers are empty (they still count out of the outstanding requests).
                return self.send(Outbound::Reply { conn, frame: Vec::new(), close: true });
            }
        }
        let frame = read::reply_frame(req.xid, zxid, err, body.as_deref());
        let stats = &self.shared.stats;
        stats.record_latency(req.received.elapsed().as_millis() as u64);
        stats.record_response_size(frame.len() - 4);
        self.send(Outbound::Reply { conn, frame, close });
    }

    fn read(&self, req: &Request) {
        let Some(conn) = req.conn else { return };
        if req.outflow.as_ref().is_some_and(|o| o.overflowed()) {
            // Nothing more is built for a connection being closed for not reading.
            return self.send(Outbound::Reply { conn, frame: Vec::new(), close: true });
        }
        let zxid = self.shared.read_tree().last_processed_zxid;
        if req.err != ErrorCode::Ok {
            return self.reply(req, zxid, req.err, None, false);
        }
        let result = match OpCode::from_i32(req.op) {
            Some(op) if crate::proto::path::null_path_body(op, &req.body) => {
                Err(ErrorCode::MarshallingError)
            }
            Some(op @ (OpCode::SetWatches | OpCode::SetWatches2)) => {
                self.set_watches(conn, op, req).map(|()| None)
            }
            Some(op) => read::execute(&self.shared, &self.shared.read_tree(), conn, op, req),
            None => Err(ErrorCode::Unimplemented),
        };
        match result {
            Ok(body) => self.reply(req, zxid, ErrorCode::Ok, body, false),
            Err(e) => self.reply(req, zxid, e, None, false),
        }
    }

    /// Re-arms watches after a reconnect, firing what was missed (§9.5). A missed event about
    /// a node that exists is sent only if the connection may READ it, as live events are.
    fn set_watches(&self, conn: ConnId, op: OpCode, req: &Request) -> Result<(), ErrorCode> {
        let m = |_| ErrorCode::MarshallingError;
        let sw = if op == OpCode::SetWatches {
            let s = SetWatches::from_bytes(&req.body).map_err(m)?;
            SetWatches2 {
                relative_zxid: s.relative_zxid,
                data_watches: s.data_watches,
                exist_watches: s.exist_watches,
                child_watches: s.child_watches,
                ..SetWatches2::default()
            }
        } else {
            SetWatches2::from_bytes(&req.body).map_err(m)?
        };
        let rel = sw.relative_zxid;
        // The missed events are sent once both locks are released: the selector may wait for
        // the watch registry (it answers reads itself) and only it makes room in the outbox.
        let mut missed = Vec::new();
        {
            let tree = self.shared.read_tree();
            let skip = self.shared.config.skip_acl;
            let readable = |n: &crate::server::datatree::Node| {
                acl::check(&tree.acl_of(n), perms::READ, &req.auth, skip).is_ok()
            };
            let mut w = self.shared.lock_watches();
            w.note_conn(conn, req.session, &req.auth, req.outflow.as_ref());
            for p in &sw.data_watches {
                match tree.node(p) {
                    None => missed.push((EventType::NodeDeleted, p)),
                    Some(n) if n.stat.mzxid > rel => {
                        if readable(n) {
                            missed.push((EventType::NodeDataChanged, p))
                        }
                    }
                    Some(_) => w.add(Table::Data, p, conn, STANDARD),
                }
            }
            for p in &sw.exist_watches {
                match tree.node(p) {
                    None => w.add(Table::Data, p, conn, STANDARD),
                    Some(n) => {
                        if readable(n) {
                            missed.push((EventType::NodeCreated, p))
                        }
                    }
                }
            }
            for p in &sw.child_watches {
                match tree.node(p) {
                    None => missed.push((EventType::NodeDeleted, p)),
                    Some(n) if n.stat.pzxid > rel => {
                        if readable(n) {
                            missed.push((EventType::NodeChildrenChanged, p))
                        }
                    }
                    Some(_) => w.add(Table::Child, p, conn, STANDARD),
                }
            }
            for p in &sw.persistent_watches {
                w.add(Table::Data, p, conn, PERSISTENT);
                w.add(Table::Child, p, conn, PERSISTENT);
            }
            for p in &sw.persistent_recursive_watches {
                w.add(Table::Data, p, conn, RECURSIVE);
            }
        }
        for (event, path) in missed {
            self.send_missed(conn, event, path);
        }
        Ok(())
    }

    fn send_missed(&self, conn: ConnId, event: EventType, path: &str) {
        self.send(Outbound::Event { conn, frame: event_frame(event, path, -1) });
    }
}

/// A notification frame: `ReplyHeader(-1, zxid, 0) + WatcherEvent`.
pub fn event_frame(event: EventType, path: &str, zxid: i64) -> Vec<u8> {
    let mut payload = ReplyHeader { xid: xid::NOTIFICATION, zxid, err: 0 }.to_bytes();
    WatcherEvent {
        event_type: event.code(),
        state: KeeperState::SyncConnected.code(),
        path: path.to_owned(),
    }
    .encode(&mut payload);
    let mut frame = Vec::with_capacity(payload.len() + 4);
    crate::proto::frame::write(&mut frame, &payload);
    frame
}
