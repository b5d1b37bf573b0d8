//! Read requests against the tree (the read half of ZooKeeper's `FinalRequestProcessor`):
//! what getData, exists, getChildren, getACL, multiRead and the other reads answer, with
//! their ACL checks and watch registrations, and the reply frame around an answer.
//!
//! Two callers: the apply stage, for reads that went through the pipeline, and the
//! selector, for a read it may answer on its own thread ([`answers_here`]; the conditions
//! are the selector's, see `cnxn::local`). The caller holds the tree's read lock for the
//! whole read, so the answer and any watch it registers see one state of the tree.

use crate::jute::data::{perms, ClientInfo};
use crate::jute::proto::{
    AddWatchRequest, ErrorResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, MultiOp, MultiRequest, MultiResponse, MultiResult, PathRequest,
    PathWatchRequest, ReplyHeader, StatResponse, StringListResponse, SyncResponse, WatchesRequest,
    WhoAmIResponse,
};
use crate::jute::{Jute, Writer};
use crate::proto::{AddWatchMode, ErrorCode, OpCode, WatcherType};
use crate::server::acl::{self, AuthInfo};
use crate::server::datatree::DataTree;
use crate::server::watch::{Table, STANDARD};
use crate::server::{ConnId, Shared};

use super::Request;

/// Whether a read of this kind may be answered by the selector itself: the reads that only
/// look at the tree and may register a one-time watch. Sync (it waits for the leader),
/// setWatches (it sends the events it missed) and the watch-table edits (addWatch,
/// removeWatches, checkWatches) always take the pipeline.
pub fn answers_here(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Ping
            | OpCode::Exists
            | OpCode::GetData
            | OpCode::GetChildren
            | OpCode::GetChildren2
            | OpCode::GetAcl
            | OpCode::GetAllChildrenNumber
            | OpCode::GetEphemerals
            | OpCode::WhoAmI
            | OpCode::MultiRead
    )
}

/// A reply frame: length, `ReplyHeader(xid, zxid, err)`, then the answer's body.
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: Option<&[u8]>) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + REPLY_HEADER_BYTES + body.map_or(0, <[u8]>::len));
    frame.extend_from_slice(&[0; 4]);
    ReplyHeader { xid, zxid, err: err.code() }.encode(&mut frame);
    if let Some(b) = body {
        frame.extend_from_slice(b);
    }
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

/// The watch registry, after noting the requesting connection's session and identities
/// (needed when its watches fire: delivery checks READ with the watcher's identities).
fn watches_for<'a>(
    shared: &'a Shared,
    req: &Request,
) -> std::sync::MutexGuard<'a, crate::server::watch::WatchManager> {
    let mut w = shared.lock_watches();
    if let Some(conn) = req.conn {
        w.note_conn(conn, req.session, &req.auth, req.outflow.as_ref());
    }
    w
}

/// Executes read `op` of `req` (from connection `conn`) against `tree`; the body of the
/// answer, or the error code it fails with. Not for setWatches (the apply stage's: it
/// sends events) nor sync's wait (only its answer is built here).
pub fn execute(
    shared: &Shared,
    tree: &DataTree,
    conn: ConnId,
    op: OpCode,
    req: &Request,
) -> Result<Option<Vec<u8>>, ErrorCode> {
    let skip = shared.config.skip_acl;
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
            if let Some(n) = tree.node(&r.path) {
                acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
            }
            if r.watch {
                watches_for(shared, req).add(Table::Data, &r.path, conn, STANDARD);
            }
            let stat = tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
            Ok(Some(StatResponse { stat }.to_bytes()))
        }
        OpCode::GetData => {
            let r = root_alias(PathWatchRequest::from_bytes(&req.body).map_err(m)?);
            let n = tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
            acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
            if r.watch {
                watches_for(shared, req).add(Table::Data, &r.path, conn, STANDARD);
            }
            fits(shared, data_reply_bytes(n.data.as_deref()))?;
            let stat = n.client_stat(tree.extended_types());
            // Encoded straight from the node: one copy of the data, not three.
            let mut body = Vec::with_capacity(data_reply_bytes(n.data.as_deref()));
            body.put_buffer(n.data.as_deref());
            stat.encode(&mut body);
            Ok(Some(body))
        }
        OpCode::GetChildren | OpCode::GetChildren2 => {
            let r = root_alias(PathWatchRequest::from_bytes(&req.body).map_err(m)?);
            let n = tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
            acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
            if r.watch {
                watches_for(shared, req).add(Table::Child, &r.path, conn, STANDARD);
            }
            fits(shared, STAT_BYTES + strings_bytes(n.children.iter().map(|c| c.len())))?;
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
            let n = tree.node(path).ok_or(ErrorCode::NoNode)?;
            acl::check(&tree.acl_of(n), perms::READ, auth, skip)?;
            let total = tree.all_children_number(path).unwrap_or(0) + extra;
            Ok(Some(GetAllChildrenNumberResponse { total_number: total }.to_bytes()))
        }
        OpCode::GetEphemerals => {
            let r = PathRequest::from_bytes(&req.body).map_err(m)?;
            let prefix = r.path.trim();
            let list: Vec<String> = tree
                .ephemerals_of(req.session)
                .into_iter()
                .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(prefix))
                .collect();
            fits(shared, strings_bytes(list.iter().map(String::len)))?;
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
            watches_for(shared, req).add_persistent(&r.path, conn, recursive);
            Ok(Some(ErrorResponse { err: 0 }.to_bytes()))
        }
        OpCode::CheckWatches | OpCode::RemoveWatches => {
            let r = WatchesRequest::from_bytes(&req.body).map_err(m)?;
            let kind = WatcherType::from_i32(r.watcher_type).ok_or(ErrorCode::MarshallingError)?;
            let remove = op == OpCode::RemoveWatches;
            if shared.lock_watches().check_or_remove(&r.path, conn, kind, remove) {
                Ok(None)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        OpCode::MultiRead => {
            let r = MultiRequest::from_bytes(&req.body).map_err(m)?;
            // A write op in a multiRead is a deserialization error for the whole request,
            // as in ZooKeeper's MultiOperationRecord (wire-protocol.md §7).
            if r.ops.iter().any(|o| !o.is_read()) {
                return Err(ErrorCode::MarshallingError);
            }
            let mut results = Vec::with_capacity(r.ops.len());
            // The answer's size is counted as it is built: one that would outgrow what a
            // client accepts is refused before it takes more memory.
            let mut bytes = 0;
            for op in &r.ops {
                let result = multi_read_one(tree, op, auth, skip);
                bytes += multi_result_bytes(&result);
                fits(shared, bytes)?;
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

/// Refuses an answer of `bytes` that no client would accept (`jute.maxbuffer`), before it
/// is built.
fn fits(shared: &Shared, bytes: usize) -> Result<(), ErrorCode> {
    if bytes + REPLY_HEADER_BYTES > shared.config.reply_bytes_max() {
        return Err(ErrorCode::MarshallingError);
    }
    Ok(())
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
