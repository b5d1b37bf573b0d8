//! Apply stage (ZooKeeper's `FinalRequestProcessor`): applies txns to the tree, executes
//! reads, fires watches and builds every reply (wire-protocol.md §5-§9).
//!
//! Runs on its own thread, the only writer of the tree. For each request it pushes the watch
//! events the request caused and then its reply to the connection thread, in that order, so a
//! client always sees an event before any reply that reflects the change. It wakes the
//! connection thread once per batch.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use log::{debug, info, warn};

use super::{Admit, Kind, Outbound, Request};
use crate::jute::data::{perms, ClientInfo};
use crate::jute::proto::{
    AddWatchRequest, ConnectResponse, Create2Response, CreateResponse, ErrorResponse,
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, MultiOp, MultiRequest,
    MultiResponse, MultiResult, PathRequest, PathWatchRequest, ReplyHeader, SetWatches,
    SetWatches2, StatResponse, StringListResponse, SyncResponse, WatcherEvent, WatchesRequest,
    WhoAmIResponse,
};
use crate::jute::txn::Txn;
use crate::jute::{Jute, Writer};
use crate::proto::{xid, AddWatchMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType};
use crate::server::acl::{self, AuthInfo};
use crate::server::datatree::{ApplyResult, DataTree, Trigger};
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

    /// Sends the events for `triggers` to every watcher allowed to READ them.
    fn fire(&self, triggers: &[Trigger], zxid: i64) {
        if triggers.is_empty() {
            return;
        }
        let mut watches = self.shared.lock_watches();
        for t in triggers {
            let conns = watches.trigger(t.event, &t.path);
            for conn in conns {
                let auth = watches.auth_of(conn);
                if acl::check(&t.acl, perms::READ, &auth, self.shared.config.skip_acl).is_err() {
                    continue;
                }
                let frame = event_frame(t.event, &t.path, zxid);
                // A connection that stopped reading gets no more events: it is closed.
                match watches.outflow_of(conn).map(|o| o.admit(frame.len())) {
                    None | Some(Admit::Yes) => self.send(Outbound::Event { conn, frame }),
                    Some(Admit::Overflowed) => self.send(Outbound::Overflowed { conn }),
                    Some(Admit::Refused) => {}
                }
            }
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
        let header = ReplyHeader { xid: req.xid, zxid, err: err.code() };
        let mut frame = Vec::with_capacity(frame_bytes);
        frame.extend_from_slice(&[0; 4]);
        header.encode(&mut frame);
        if let Some(b) = body {
            frame.extend_from_slice(&b);
        }
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
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
            Some(op) => self.execute_read(conn, op, req),
            None => Err(ErrorCode::Unimplemented),
        };
        match result {
            Ok(body) => self.reply(req, zxid, ErrorCode::Ok, body, false),
            Err(e) => self.reply(req, zxid, e, None, false),
        }
    }

    /// The watch registry, after noting the requesting connection's session and identities
    /// (needed when its watches fire: delivery checks READ with the watcher's identities).
    fn watches_for(
        &self,
        req: &Request,
    ) -> std::sync::MutexGuard<'_, crate::server::watch::WatchManager> {
        let mut w = self.shared.lock_watches();
        if let Some(conn) = req.conn {
            w.note_conn(conn, req.session, &req.auth, req.outflow.as_ref());
        }
        w
    }

    fn execute_read(
        &self,
        conn: ConnId,
        op: OpCode,
        req: &Request,
    ) -> Result<Option<Vec<u8>>, ErrorCode> {
        let skip = self.shared.config.skip_acl;
        let auth: &AuthInfo = &req.auth;
        let m = |_| ErrorCode::MarshallingError;
        match op {
            OpCode::Ping => Ok(None),
            OpCode::Sync => {
                let r = PathRequest::from_bytes(&req.body).map_err(m)?;
                Ok(Some(SyncResponse { path: r.path }.to_bytes()))
            }
            OpCode::Exists => {
                let r = root_alias(PathWatchRequest::from_bytes(&req.body).map_err(m)?);
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let tree = self.shared.read_tree();
                if let Some(n) = tree.node(&r.path) {
                    acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
                }
                if r.watch {
                    self.watches_for(req).add(Table::Data, &r.path, conn, STANDARD);
                }
                let stat = tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
                Ok(Some(StatResponse { stat }.to_bytes()))
            }
            OpCode::GetData => {
                let r = root_alias(PathWatchRequest::from_bytes(&req.body).map_err(m)?);
                let tree = self.shared.read_tree();
                let n = tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
                if r.watch {
                    self.watches_for(req).add(Table::Data, &r.path, conn, STANDARD);
                }
                self.fits(data_reply_bytes(n.data.as_deref()))?;
                let stat = n.client_stat(tree.extended_types());
                // Encoded straight from the node: one copy of the data, not three.
                let mut body = Vec::with_capacity(data_reply_bytes(n.data.as_deref()));
                body.put_buffer(n.data.as_deref());
                stat.encode(&mut body);
                Ok(Some(body))
            }
            OpCode::GetChildren | OpCode::GetChildren2 => {
                let r = root_alias(PathWatchRequest::from_bytes(&req.body).map_err(m)?);
                let tree = self.shared.read_tree();
                let n = tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
                if r.watch {
                    self.watches_for(req).add(Table::Child, &r.path, conn, STANDARD);
                }
                self.fits(STAT_BYTES + strings_bytes(n.children.iter().map(|c| c.len())))?;
                let children: Vec<String> = n.children.iter().map(|c| c.to_string()).collect();
                if op == OpCode::GetChildren {
                    Ok(Some(StringListResponse { list: children }.to_bytes()))
                } else {
                    let stat = n.client_stat(tree.extended_types());
                    Ok(Some(GetChildren2Response { children, stat }.to_bytes()))
                }
            }
            OpCode::GetAcl => {
                let mut r = PathRequest::from_bytes(&req.body).map_err(m)?;
                if r.path.is_empty() {
                    r.path = "/".to_owned();
                }
                let tree = self.shared.read_tree();
                let n = tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                let list = tree.acl_of(n);
                let admin = acl::can_read_acl(&list, auth, skip)?;
                let list = if admin { list.to_vec() } else { acl::redact(&list) };
                let stat = n.client_stat(tree.extended_types());
                Ok(Some(GetAclResponse { acl: list, stat }.to_bytes()))
            }
            OpCode::GetAllChildrenNumber => {
                let r = PathRequest::from_bytes(&req.body).map_err(m)?;
                // ZooKeeper counts the paths starting with `path + "/"`; for "" (the root's
                // other name) that includes "/" itself.
                let (path, extra) = if r.path.is_empty() { ("/", 1) } else { (r.path.as_str(), 0) };
                let tree = self.shared.read_tree();
                let n = tree.node(path).ok_or(ErrorCode::NoNode)?;
                acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
                let total = tree.all_children_number(path).unwrap_or(0) + extra;
                Ok(Some(GetAllChildrenNumberResponse { total_number: total }.to_bytes()))
            }
            OpCode::GetEphemerals => {
                let r = PathRequest::from_bytes(&req.body).map_err(m)?;
                let tree = self.shared.read_tree();
                let prefix = r.path.trim();
                let list: Vec<String> = tree
                    .ephemerals_of(req.session)
                    .into_iter()
                    .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(prefix))
                    .collect();
                self.fits(strings_bytes(list.iter().map(String::len)))?;
                Ok(Some(StringListResponse { list }.to_bytes()))
            }
            OpCode::WhoAmI => {
                let client_info = auth
                    .ids
                    .iter()
                    .map(|id| ClientInfo { auth_scheme: id.scheme.clone(), user: acl::user_of(id) })
                    .collect();
                Ok(Some(WhoAmIResponse { client_info }.to_bytes()))
            }
            OpCode::AddWatch => {
                let r = AddWatchRequest::from_bytes(&req.body).map_err(m)?;
                let mode = AddWatchMode::from_i32(r.mode).ok_or(ErrorCode::MarshallingError)?;
                let recursive = mode == AddWatchMode::PersistentRecursive;
                self.watches_for(req).add_persistent(&r.path, conn, recursive);
                Ok(Some(ErrorResponse { err: 0 }.to_bytes()))
            }
            OpCode::CheckWatches | OpCode::RemoveWatches => {
                let r = WatchesRequest::from_bytes(&req.body).map_err(m)?;
                let kind =
                    WatcherType::from_i32(r.watcher_type).ok_or(ErrorCode::MarshallingError)?;
                let remove = op == OpCode::RemoveWatches;
                if self.shared.lock_watches().check_or_remove(&r.path, conn, kind, remove) {
                    Ok(None)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            OpCode::SetWatches | OpCode::SetWatches2 => {
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
                self.set_watches(conn, req, &sw);
                Ok(None)
            }
            OpCode::MultiRead => {
                let r = MultiRequest::from_bytes(&req.body).map_err(m)?;
                // A write op in a multiRead is a deserialization error for the whole request,
                // as in ZooKeeper's MultiOperationRecord (wire-protocol.md §7).
                if r.ops.iter().any(|o| !o.is_read()) {
                    return Err(ErrorCode::MarshallingError);
                }
                let tree = self.shared.read_tree();
                let mut results = Vec::with_capacity(r.ops.len());
                // The answer's size is counted as it is built: one that would outgrow what a
                // client accepts is refused before it takes more memory.
                let mut bytes = 0;
                for op in &r.ops {
                    let result = multi_read_one(&tree, op, auth, skip);
                    bytes += multi_result_bytes(&result);
                    self.fits(bytes)?;
                    results.push(result);
                }
                Ok(Some(MultiResponse { results }.to_bytes()))
            }
            // Without a JAAS Server section Apache answers every token with a null challenge
            // (err 0); so does rzk (with one, the selector runs the exchange and this stage
            // never sees SASL requests).
            OpCode::Sasl => Ok(Some(crate::jute::proto::SaslToken { token: None }.to_bytes())),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    /// Re-arms watches after a reconnect, firing what was missed (§9.5). A missed event about
    /// a node that exists is sent only if the connection may READ it, as live events are.
    fn set_watches(&self, conn: ConnId, req: &Request, sw: &SetWatches2) {
        let rel = sw.relative_zxid;
        let tree = self.shared.read_tree();
        let skip = self.shared.config.skip_acl;
        let readable = |n: &crate::server::datatree::Node| {
            acl::check(&tree.acl_of(n), perms::READ, &req.auth, skip).is_ok()
        };
        let mut w = self.watches_for(req);
        for p in &sw.data_watches {
            match tree.node(p) {
                None => self.send_missed(conn, EventType::NodeDeleted, p),
                Some(n) if n.stat.mzxid > rel => {
                    if readable(n) {
                        self.send_missed(conn, EventType::NodeDataChanged, p)
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
                        self.send_missed(conn, EventType::NodeCreated, p)
                    }
                }
            }
        }
        for p in &sw.child_watches {
            match tree.node(p) {
                None => self.send_missed(conn, EventType::NodeDeleted, p),
                Some(n) if n.stat.pzxid > rel => {
                    if readable(n) {
                        self.send_missed(conn, EventType::NodeChildrenChanged, p)
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

    /// Refuses an answer of `bytes` that no client would accept (`jute.maxbuffer`), before it
    /// is built.
    fn fits(&self, bytes: usize) -> Result<(), ErrorCode> {
        if bytes + REPLY_HEADER_BYTES > self.shared.config.reply_bytes_max() {
            return Err(ErrorCode::MarshallingError);
        }
        Ok(())
    }

    fn send_missed(&self, conn: ConnId, event: EventType, path: &str) {
        self.send(Outbound::Event { conn, frame: event_frame(event, path, -1) });
    }
}

fn multi_read_one(tree: &DataTree, op: &MultiOp, auth: &AuthInfo, skip: bool) -> MultiResult {
    let path = op.path();
    let Some(n) = tree.node(path) else {
        return MultiResult::Error(ErrorCode::NoNode.code());
    };
    if let Err(e) = acl::check(&tree.acl_of(n), perms::READ, auth, skip) {
        return MultiResult::Error(e.code());
    }
    match op {
        MultiOp::GetData(_) => {
            MultiResult::GetData(n.data.clone(), n.client_stat(tree.extended_types()))
        }
        MultiOp::GetChildren(_) => {
            MultiResult::GetChildren(n.children.iter().map(|c| c.to_string()).collect())
        }
        _ => MultiResult::Error(ErrorCode::MarshallingError.code()),
    }
}

/// A ReplyHeader's encoded size.
const REPLY_HEADER_BYTES: usize = 16;

/// A Stat's encoded size.
const STAT_BYTES: usize = 68;

/// Encoded size of a getData answer's body.
fn data_reply_bytes(data: Option<&[u8]>) -> usize {
    4 + data.map_or(0, <[u8]>::len) + STAT_BYTES
}

/// Encoded size of a vector of strings with these lengths.
fn strings_bytes(lens: impl Iterator<Item = usize>) -> usize {
    4 + lens.map(|l| 4 + l).sum::<usize>()
}

/// Encoded size of one multiRead result (its MultiHeader included).
fn multi_result_bytes(r: &MultiResult) -> usize {
    const HEADER: usize = 4 + 1 + 4;
    HEADER
        + match r {
            MultiResult::GetData(data, _) => data_reply_bytes(data.as_deref()),
            MultiResult::GetChildren(children) => strings_bytes(children.iter().map(String::len)),
            _ => 4,
        }
}

/// ZooKeeper keeps the root under both "" and "/", so reads of "" answer for the root.
fn root_alias(mut r: PathWatchRequest) -> PathWatchRequest {
    if r.path.is_empty() {
        r.path = "/".to_owned();
    }
    r
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
