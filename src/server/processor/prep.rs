//! Prep stage (ZooKeeper's `PrepRequestProcessor`): validates each request against the tree
//! plus the changes already prepared but not yet applied, checks ACLs, and turns writes into
//! txns with the next zxid (wire-protocol.md §11, data-model.md §3-§7).
//!
//! Runs on its own thread. The decision logic ([`Prep::prepare`]) takes the tree read-only and
//! does no I/O; a failed write still becomes a txn (`ErrorTxn`) that consumes its zxid, as in
//! ZooKeeper.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use log::debug;

use super::{Kind, Request};
use crate::fasthash::FastMap;
use crate::jute::data::{perms, Acl, StatPersisted};
use crate::jute::proto::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, MultiOp, MultiRequest,
    PathRequest, SetAclRequest, SetDataRequest,
};
use crate::jute::txn::{
    CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, DeleteTxn, SetAclTxn, SetDataTxn,
    SubTxn, Txn, TxnEntry, TxnHeader,
};
use crate::jute::{Jute, Reader};
use crate::proto::{path, CreateMode, ErrorCode, OpCode};
use crate::server::acl::{self, AuthInfo};
use crate::server::datatree::{parent_of, DataTree, NodeKind, MAX_TTL_MS, SPECIAL_PATHS};
use crate::server::{ServerMode, Shared};

/// What prep knows about a path: the tree's state plus prepared changes.
#[derive(Debug, Clone)]
struct Record {
    zxid: i64,
    /// `None` = deleted by a prepared change.
    node: Option<NodeState>,
}

#[derive(Debug, Clone)]
struct NodeState {
    stat: StatPersisted,
    child_count: i32,
    acl: Arc<Vec<Acl>>,
}

/// Prepared-but-unapplied changes, keyed by path (ZooKeeper's `outstandingChanges`).
///
/// A path's key is shared (`Arc`) between the map and the order queue, and a path already
/// outstanding (a busy parent) reuses its key: recording a change allocates at most once.
#[derive(Debug, Default)]
struct Outstanding {
    by_path: FastMap<Arc<str>, Record>,
    order: VecDeque<(i64, Arc<str>)>,
}

impl Outstanding {
    /// Forgets changes the tree already reflects.
    fn purge(&mut self, applied_zxid: i64) {
        while let Some((zxid, _)) = self.order.front() {
            if *zxid > applied_zxid {
                break;
            }
            let Some((zxid, path)) = self.order.pop_front() else { break };
            if self.by_path.get(&path).is_some_and(|r| r.zxid == zxid) {
                self.by_path.remove(&path);
            }
        }
    }

    fn insert(&mut self, path: String, rec: Record) {
        let key = match self.by_path.get_key_value(path.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        self.order.push_back((rec.zxid, key.clone()));
        self.by_path.insert(key, rec);
    }
}

/// The prep stage's state.
pub struct Prep {
    shared: Arc<Shared>,
    next_zxid: i64,
    outstanding: Outstanding,
    applied: Arc<AtomicI64>,
    /// Txns prepared for the current request that go before it (the deletes of a closeSession
    /// too large for one txn).
    before: Vec<Request>,
    /// Encoding scratch, to measure txns.
    scratch: Vec<u8>,
}

/// Validation context for one request: tree + outstanding + this request's own overlay.
struct View<'a> {
    tree: &'a DataTree,
    outstanding: &'a Outstanding,
    overlay: Overlay,
    zxid: i64,
}

/// This request's own changes in the order first made, one entry per path. A request touches
/// few paths (two for a create), so a short list is searched directly; a large multi gets an
/// index once the list grows past [`Overlay::SCAN`].
#[derive(Default)]
struct Overlay {
    entries: Vec<(String, Record)>,
    index: FastMap<String, usize>,
}

impl Overlay {
    /// Entries searched linearly before the index is used.
    const SCAN: usize = 16;

    fn position(&self, path: &str) -> Option<usize> {
        if self.entries.len() <= Self::SCAN {
            self.entries.iter().position(|(p, _)| p == path)
        } else {
            self.index.get(path).copied()
        }
    }

    fn get(&self, path: &str) -> Option<&Record> {
        self.position(path).map(|i| &self.entries[i].1)
    }

    fn set(&mut self, path: &str, rec: Record) {
        if let Some(i) = self.position(path) {
            self.entries[i].1 = rec;
            return;
        }
        self.entries.push((path.to_owned(), rec));
        if self.entries.len() > Self::SCAN {
            if self.index.is_empty() {
                for (i, (p, _)) in self.entries.iter().enumerate() {
                    self.index.insert(p.clone(), i);
                }
            } else {
                self.index.insert(path.to_owned(), self.entries.len() - 1);
            }
        }
    }
}

impl View<'_> {
    fn new<'a>(tree: &'a DataTree, outstanding: &'a Outstanding, zxid: i64) -> View<'a> {
        View { tree, outstanding, overlay: Overlay::default(), zxid }
    }

    fn get(&self, path: &str) -> Option<NodeState> {
        if let Some(r) = self.overlay.get(path) {
            return r.node.clone();
        }
        if let Some(r) = self.outstanding.by_path.get(path) {
            return r.node.clone();
        }
        let n = self.tree.node(path)?;
        Some(NodeState {
            stat: n.stat.clone(),
            child_count: n.children.len() as i32,
            acl: self.tree.acl_of(n),
        })
    }

    fn set(&mut self, path: &str, node: Option<NodeState>) {
        self.overlay.set(path, Record { zxid: self.zxid, node });
    }
}

/// A write request decoded from its body.
enum WriteOp {
    Create { op: OpCode, req: CreateTtlRequest },
    Delete(DeleteRequest),
    DeleteContainer(String),
    SetData(SetDataRequest),
    SetAcl(SetAclRequest),
    Check(CheckVersionRequest),
}

impl Prep {
    /// A prep stage whose first zxid follows `last_zxid`; `applied` is published by apply.
    pub fn new(shared: Arc<Shared>, last_zxid: i64, applied: Arc<AtomicI64>) -> Prep {
        Prep {
            shared,
            next_zxid: last_zxid + 1,
            outstanding: Outstanding::default(),
            applied,
            before: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The owner of a request's session when it is this server's or a learner's.
    fn owner_of(&self, req: &Request) -> u64 {
        req.origin.map_or(self.shared.config.server_id().0, |o| o.sid)
    }

    /// The thread body: prepare every request and pass it on. Ends when the input closes (the
    /// server stops) or the next stage is gone.
    pub fn run(mut self, input: Receiver<Request>, output: Sender<Request>) -> Result<(), String> {
        for req in input {
            let req = self.prepare(req);
            for r in self.before.drain(..).chain(std::iter::once(req)) {
                if output.send(r).is_err() {
                    debug!("prep stage: the next stage is gone, stopping");
                    return Ok(());
                }
            }
        }
        debug!("prep stage: input closed, stopping");
        Ok(())
    }

    /// Prepares one request: attaches a txn to writes, an error code to failed reads.
    pub fn prepare(&mut self, mut req: Request) -> Request {
        fail::fail_point!("prep::prepare");
        self.outstanding.purge(self.applied.load(Ordering::Acquire));
        let op = OpCode::from_i32(req.op);
        match (&req.kind, op) {
            (Kind::ConnectionClosed | Kind::Unimplemented, _) => req,
            (Kind::Reattach { .. }, _) => {
                if self.shared.mode == ServerMode::Leader {
                    let owner = self.owner_of(&req);
                    self.shared.with_sessions(|s| s.set_owner(req.session, owner));
                }
                req
            }
            (Kind::Revalidate { timeout_ms }, _) => {
                // Learner.validateSession at the leader: a live session is touched and now
                // owned by the learner the client re-attached to.
                let (session, timeout, owner) = (req.session, *timeout_ms, self.owner_of(&req));
                let now = self.shared.now_ms();
                let live = self.shared.with_sessions(|s| {
                    let live = s.touch(session, timeout, now);
                    if live {
                        s.set_owner(session, owner);
                    }
                    live
                });
                if !live {
                    req.err = ErrorCode::SessionExpired;
                }
                req
            }
            (Kind::NewSession { timeout_ms, .. }, _) => {
                if self.shared.mode == ServerMode::Leader {
                    let owner = self.owner_of(&req);
                    self.shared.with_sessions(|s| s.set_owner(req.session, owner));
                }
                let txn = Txn::CreateSession { timeout_ms: *timeout_ms };
                req.op = OpCode::CreateSession.code();
                self.attach(&mut req, txn);
                req
            }
            (Kind::Expire, _) | (Kind::Client, Some(OpCode::CloseSession)) => {
                req.op = OpCode::CloseSession.code();
                self.close_session(&mut req);
                req
            }
            (_, Some(op)) if op.is_write() => {
                let txn = match self.prepare_write(&req, op) {
                    Ok(txn) => txn,
                    Err(code) => Txn::Error(code.code()),
                };
                self.attach(&mut req, txn);
                req
            }
            _ => {
                if req.kind == Kind::Client {
                    if let Err(e) = self.shared.sessions_check(req.session) {
                        req.err = e;
                    }
                }
                req
            }
        }
    }

    fn attach(&mut self, req: &mut Request, txn: Txn) {
        let zxid = self.next_zxid;
        self.next_zxid += 1;
        let txn_type = match txn {
            Txn::Error(_) => OpCode::Error.code(),
            _ => req.op,
        };
        let header =
            TxnHeader { client_id: req.session, cxid: req.xid, zxid, time: req.wall_ms, txn_type };
        req.txn = Some(Arc::new(TxnEntry { header, txn, digest: None }));
    }

    fn close_session(&mut self, req: &mut Request) {
        let session = req.session;
        let shared = self.shared.clone();
        shared.with_sessions(|s| s.set_closing(session));
        let tree = shared.read_tree();
        let mut paths: std::collections::BTreeSet<String> =
            tree.ephemerals_of(session).into_iter().collect();
        // Include prepared creates of this session's ephemerals, drop prepared deletes.
        for (p, r) in &self.outstanding.by_path {
            match &r.node {
                Some(n) if n.stat.ephemeral_owner == session => {
                    paths.insert(p.to_string());
                }
                None => {
                    paths.remove(&**p);
                }
                _ => {}
            }
        }
        let mut paths: Vec<String> = paths.into_iter().collect();
        let mut gone: Vec<String> = Vec::new();
        // ZOOKEEPER-4306: a closeSession listing every ephemeral can outgrow what learners
        // accept (a few huge names suffice). The session still closes: the ephemerals beyond
        // one txn's worth go first, in multis of deletes of their own.
        let budget = self.shared.config.txn_bytes_max() / 2;
        while paths_bytes(&paths) > budget {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            while let Some(p) = paths.last() {
                let len = p.len() + 16;
                if !chunk.is_empty() && bytes + len > budget {
                    break;
                }
                bytes += len;
                chunk.extend(paths.pop());
            }
            gone.extend(chunk.iter().cloned());
            let deletes = chunk
                .into_iter()
                .map(|path| SubTxn {
                    op: OpCode::Delete.code(),
                    txn: Txn::Delete(DeleteTxn { path }),
                })
                .collect();
            let op = OpCode::Multi.code();
            let mut part = Request::new(None, 0, 0, op, Kind::Internal);
            part.wall_ms = req.wall_ms;
            self.attach(&mut part, Txn::Multi(deletes));
            self.before.push(part);
        }
        let zxid = self.next_zxid;
        // Only the parents go through the view (ephemerals have no children, so no deleted
        // path is another's parent); the deleted paths are recorded directly, each hashed
        // once on its way into the outstanding changes (names can be ~1 MB each).
        let mut view = View::new(&tree, &self.outstanding, zxid);
        for p in paths.iter().chain(&gone) {
            if let Some(parent) = parent_of(p) {
                if let Some(mut ps) = view.get(parent) {
                    ps.child_count -= 1;
                    ps.stat.pzxid = zxid;
                    view.set(parent, Some(ps));
                }
            }
        }
        let mut changes = take_overlay(view);
        drop(tree);
        changes.extend(paths.iter().chain(&gone).map(|p| (p.clone(), Record { zxid, node: None })));
        self.commit_overlay(changes);
        let split = self.before.len();
        if split > 0 {
            log::info!(
                "session 0x{session:x}: closing with {split} extra txns of ephemeral deletes"
            );
        }
        self.attach(req, Txn::CloseSession(Some(paths)));
    }

    fn commit_overlay(&mut self, changes: Vec<(String, Record)>) {
        for (p, r) in changes {
            self.outstanding.insert(p, r);
        }
    }

    fn prepare_write(&mut self, req: &Request, op: OpCode) -> Result<Txn, ErrorCode> {
        if req.kind == Kind::Client {
            self.shared.sessions_check(req.session)?;
            if self.shared.mode == ServerMode::Leader {
                let owner = self.owner_of(req);
                self.shared.with_sessions(|s| s.check_owner(req.session, owner))?;
            }
        }
        if path::null_path_body(op, &req.body) {
            return Err(ErrorCode::MarshallingError);
        }
        if op == OpCode::Reconfig {
            return Err(if self.shared.config.reconfig_enabled {
                ErrorCode::Unimplemented
            } else {
                ErrorCode::ReconfigDisabled
            });
        }
        let tree = self.shared.read_tree();
        let mut view = View::new(&tree, &self.outstanding, self.next_zxid);
        let result = if op == OpCode::Multi {
            let multi =
                MultiRequest::from_bytes(&req.body).map_err(|_| ErrorCode::MarshallingError);
            match multi {
                Ok(m) if m.ops.iter().any(|o| o.is_read()) => Err(ErrorCode::MarshallingError),
                Ok(m) => Ok(self.prepare_multi(&mut view, req, m)),
                Err(e) => Err(e),
            }
        } else {
            decode_write(op, &req.body).and_then(|w| self.prepare_op(&mut view, req, w))
        };
        let changes = match &result {
            Ok(Txn::Multi(subs)) if subs.iter().any(|s| matches!(s.txn, Txn::Error(_))) => {
                Vec::new()
            }
            Ok(_) => take_overlay(view),
            Err(_) => Vec::new(),
        };
        drop(tree);
        let result = result.and_then(|txn| self.within_txn_limit(txn, req));
        if result.is_ok() {
            self.commit_overlay(changes);
        }
        result
    }

    /// Refuses a txn larger than learners accept (MARSHALLINGERROR): the `auth` ACL expands
    /// once per identity, so a request within `jute.maxbuffer` can make a much larger txn.
    fn within_txn_limit(&mut self, txn: Txn, req: &Request) -> Result<Txn, ErrorCode> {
        self.scratch.clear();
        txn.encode(&mut self.scratch);
        let bytes = self.scratch.len() + TXN_HEADER_BYTES;
        let max = self.shared.config.txn_bytes_max();
        if self.scratch.capacity() > 4 * max {
            self.scratch = Vec::new();
        }
        if bytes > max {
            log::warn!(
                "refusing a txn of {bytes} bytes from session 0x{:x} (op {}): learners accept \
                 {max}",
                req.session,
                req.op
            );
            return Err(ErrorCode::MarshallingError);
        }
        Ok(txn)
    }

    fn prepare_multi(&self, view: &mut View<'_>, req: &Request, m: MultiRequest) -> Txn {
        let mut subs = Vec::with_capacity(m.ops.len());
        let mut failed = false;
        for op in m.ops {
            if failed {
                subs.push(SubTxn {
                    op: -1,
                    txn: Txn::Error(ErrorCode::RuntimeInconsistency.code()),
                });
                continue;
            }
            let code = op.op_code();
            let w = match op {
                MultiOp::Create { op, req } => WriteOp::Create { op, req },
                MultiOp::Delete(r) => WriteOp::Delete(r),
                MultiOp::SetData(r) => WriteOp::SetData(r),
                MultiOp::Check(r) => WriteOp::Check(r),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => {
                    failed = true;
                    subs.push(SubTxn {
                        op: -1,
                        txn: Txn::Error(ErrorCode::MarshallingError.code()),
                    });
                    continue;
                }
            };
            match self.prepare_op(view, req, w) {
                Ok(txn) => subs.push(SubTxn { op: code.code(), txn }),
                Err(e) => {
                    failed = true;
                    subs.push(SubTxn { op: -1, txn: Txn::Error(e.code()) });
                }
            }
        }
        Txn::Multi(subs)
    }

    fn prepare_op(&self, view: &mut View<'_>, req: &Request, w: WriteOp) -> Result<Txn, ErrorCode> {
        match w {
            WriteOp::Create { op, req: c } => self.prepare_create(view, req, op, c),
            WriteOp::Delete(d) => self.prepare_delete(view, &req.auth, &d.path, d.version, false),
            WriteOp::DeleteContainer(p) => self.prepare_delete(view, &req.auth, &p, -1, true),
            WriteOp::SetData(s) => {
                check_path(&s.path)?;
                let mut n = view.get(&s.path).ok_or(ErrorCode::NoNode)?;
                self.check_acl(&n.acl, perms::WRITE, &req.auth)?;
                let version = next_version(n.stat.version, s.version)?;
                n.stat.version = version;
                n.stat.mzxid = view.zxid;
                view.set(&s.path, Some(n));
                Ok(Txn::SetData(SetDataTxn { path: s.path, data: s.data, version }))
            }
            WriteOp::SetAcl(s) => {
                check_path(&s.path)?;
                let acl = acl::fixup(&s.acl, &req.auth)?;
                let mut n = view.get(&s.path).ok_or(ErrorCode::NoNode)?;
                self.check_acl(&n.acl, perms::ADMIN, &req.auth)?;
                let version = next_version(n.stat.aversion, s.version)?;
                n.stat.aversion = version;
                n.acl = Arc::new(acl.clone());
                view.set(&s.path, Some(n));
                Ok(Txn::SetAcl(SetAclTxn { path: s.path, acl, version }))
            }
            WriteOp::Check(c) => {
                check_path(&c.path)?;
                let n = view.get(&c.path).ok_or(ErrorCode::NoNode)?;
                self.check_acl(&n.acl, perms::READ, &req.auth)?;
                if c.version != -1 && c.version != n.stat.version {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(Txn::Check(CheckVersionTxn { path: c.path, version: n.stat.version }))
            }
        }
    }

    fn check_acl(&self, acl: &[Acl], perm: i32, auth: &AuthInfo) -> Result<(), ErrorCode> {
        acl::check(acl, perm, auth, self.shared.config.skip_acl)
    }

    fn prepare_create(
        &self,
        view: &mut View<'_>,
        req: &Request,
        op: OpCode,
        c: CreateTtlRequest,
    ) -> Result<Txn, ErrorCode> {
        let mode = CreateMode::from_i32(c.flags).ok_or(ErrorCode::BadArguments)?;
        // As in ZooKeeper, the flags drive validation (TTL, sequence, ephemeral) and the opcode
        // decides the txn: createContainer always makes a container, createTTL a TTL node, and
        // create/create2 with container flags a plain persistent node (data-model.md §2).
        if mode.is_ttl() && !self.shared.config.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            if c.ttl <= 0 || c.ttl > MAX_TTL_MS {
                return Err(ErrorCode::BadArguments);
            }
        } else if c.ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        let last_slash = c.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if c.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fixup(&c.acl, &req.auth)?;
        let parent_path = if last_slash == 0 { "/" } else { &c.path[..last_slash] };
        let mut parent = view.get(parent_path).ok_or(ErrorCode::NoNode)?;
        self.check_acl(&parent.acl, perms::CREATE, &req.auth)?;
        let path = if mode.is_sequential() {
            format!("{}{}", c.path, sequence_suffix(parent.stat.cversion))
        } else {
            c.path.clone()
        };
        check_path(&path)?;
        if view.get(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(
            NodeKind::from_owner(
                parent.stat.ephemeral_owner,
                self.shared.config.extended_types_enabled
            ),
            NodeKind::Ephemeral(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let parent_cversion = parent.stat.cversion + 1;
        parent.stat.cversion = parent_cversion;
        parent.stat.pzxid = view.zxid;
        parent.child_count += 1;
        let parent_acl = parent.acl.clone();
        view.set(parent_path, Some(parent));
        let owner = match op {
            OpCode::CreateContainer => NodeKind::Container.owner(),
            OpCode::CreateTtl => NodeKind::Ttl(c.ttl).owner(),
            _ if mode.is_ephemeral() => req.session,
            _ => NodeKind::Persistent.owner(),
        };
        let stat = StatPersisted {
            czxid: view.zxid,
            mzxid: view.zxid,
            pzxid: view.zxid,
            ephemeral_owner: owner,
            ..StatPersisted::default()
        };
        // Children usually carry their parent's ACL: share its list instead of copying it.
        let node_acl = if *parent_acl == acl { parent_acl } else { Arc::new(acl.clone()) };
        view.set(&path, Some(NodeState { stat, child_count: 0, acl: node_acl }));
        Ok(match op {
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn {
                path,
                data: c.data,
                acl,
                parent_cversion,
            }),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn {
                path,
                data: c.data,
                acl,
                parent_cversion,
                ttl: c.ttl,
            }),
            _ => Txn::Create(CreateTxn {
                path,
                data: c.data,
                acl,
                ephemeral: mode.is_ephemeral(),
                parent_cversion,
            }),
        })
    }

    fn prepare_delete(
        &self,
        view: &mut View<'_>,
        auth: &AuthInfo,
        path: &str,
        version: i32,
        container: bool,
    ) -> Result<Txn, ErrorCode> {
        let last_slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') || SPECIAL_PATHS.contains(&path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 { "/" } else { &path[..last_slash] };
        let mut parent = view.get(parent_path).ok_or(ErrorCode::NoNode)?;
        if !container {
            self.check_acl(&parent.acl, perms::DELETE, auth)?;
        }
        let node = view.get(path).ok_or(ErrorCode::NoNode)?;
        if version != -1 && version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        // The reaper's deleteContainer deletes only what it is for: a container, or a TTL
        // node. A node re-created at the path meanwhile (say persistent) is left alone;
        // Apache refuses only ephemerals, with the same code.
        let kind = NodeKind::from_owner(
            node.stat.ephemeral_owner,
            self.shared.config.extended_types_enabled,
        );
        if container && !matches!(kind, NodeKind::Container | NodeKind::Ttl(_)) {
            return Err(ErrorCode::BadVersion);
        }
        parent.child_count -= 1;
        parent.stat.pzxid = view.zxid;
        view.set(parent_path, Some(parent));
        view.set(path, None);
        Ok(Txn::Delete(DeleteTxn { path: path.to_owned() }))
    }
}

/// A TxnHeader's encoded size: clientId, cxid, zxid, time, type.
const TXN_HEADER_BYTES: usize = 8 + 4 + 8 + 8 + 4;

/// About what listing `paths` in a closeSession txn costs in bytes.
fn paths_bytes(paths: &[String]) -> usize {
    paths.iter().map(|p| p.len() + 16).sum()
}

fn take_overlay(view: View<'_>) -> Vec<(String, Record)> {
    view.overlay.entries
}

fn decode_write(op: OpCode, body: &[u8]) -> Result<WriteOp, ErrorCode> {
    let m = |_| ErrorCode::MarshallingError;
    Ok(match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
            let c = CreateRequest::from_bytes(body).map_err(m)?;
            WriteOp::Create {
                op,
                req: CreateTtlRequest {
                    path: c.path,
                    data: c.data,
                    acl: c.acl,
                    flags: c.flags,
                    ttl: -1,
                },
            }
        }
        OpCode::CreateTtl => {
            WriteOp::Create { op, req: CreateTtlRequest::from_bytes(body).map_err(m)? }
        }
        OpCode::Delete => WriteOp::Delete(DeleteRequest::from_bytes(body).map_err(m)?),
        OpCode::DeleteContainer => {
            let mut r = Reader::new(body);
            let raw = r.read_buffer().map_err(m)?.unwrap_or_default();
            WriteOp::DeleteContainer(
                String::from_utf8(raw).map_err(|_| ErrorCode::MarshallingError)?,
            )
        }
        OpCode::SetData => WriteOp::SetData(SetDataRequest::from_bytes(body).map_err(m)?),
        OpCode::SetAcl => WriteOp::SetAcl(SetAclRequest::from_bytes(body).map_err(m)?),
        OpCode::Check => WriteOp::Check(CheckVersionRequest::from_bytes(body).map_err(m)?),
        _ => return Err(ErrorCode::MarshallingError),
    })
}

/// Path syntax check for writes.
fn check_path(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// The `%010d` sequence suffix of a parent's stored cversion.
pub fn sequence_suffix(cversion: i32) -> String {
    if cversion < 0 {
        format!("-{:09}", (cversion as i64).unsigned_abs())
    } else {
        format!("{cversion:010}")
    }
}

/// ZooKeeper's checkAndIncVersion: -1 matches anything; the next value skips -1.
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

/// Builds the body of an internal deleteContainer request.
pub fn delete_container_body(path: &str) -> Vec<u8> {
    let mut v = Vec::new();
    Some(path.as_bytes().to_vec()).encode(&mut v);
    v
}

/// Wraps a PathRequest body, for internal callers and tests.
pub fn path_body(path: &str) -> Vec<u8> {
    PathRequest { path: path.to_owned() }.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_suffix_is_c_style() {
        assert_eq!(sequence_suffix(0), "0000000000");
        assert_eq!(sequence_suffix(42), "0000000042");
        assert_eq!(sequence_suffix(-5), "-000000005");
    }

    #[test]
    fn overlay_finds_every_path_before_and_after_the_index() {
        let rec = |zxid| Record { zxid, node: None };
        let mut o = Overlay::default();
        for i in 0..40 {
            o.set(&format!("/p{i}"), rec(i));
            o.set(&format!("/p{}", i / 2), rec(100 + i));
        }
        assert_eq!(o.entries.len(), 40);
        for i in 0..40i64 {
            let want = if i < 20 { 100 + 2 * i + 1 } else { i };
            assert_eq!(o.get(&format!("/p{i}")).map(|r| r.zxid), Some(want), "/p{i}");
        }
        assert!(o.get("/p40").is_none());
        let order: Vec<&str> = o.entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(order[..3], ["/p0", "/p1", "/p2"]);
    }

    #[test]
    fn versions_skip_minus_one() {
        assert_eq!(next_version(3, -1), Ok(4));
        assert_eq!(next_version(3, 3), Ok(4));
        assert_eq!(next_version(3, 2), Err(ErrorCode::BadVersion));
        assert_eq!(next_version(-2, -1), Ok(0));
        assert_eq!(next_version(i32::MAX, -1), Ok(i32::MIN));
    }
}
