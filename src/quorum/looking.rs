//! What the client port does while the peer is LOOKING.
//!
//! Without `readonlymode.enabled`, a not-serving server (ZooKeeper's factory with no
//! ZooKeeperServer attached): four-letter words answer "This ZooKeeper instance is not
//! currently serving requests" and client connections are closed.
//!
//! With it, after `max(2 s, tickTime)` of LOOKING a read-only server starts (ZooKeeper's
//! `ReadOnlyZooKeeperServer`): over the database as recovered from disk it serves clients that
//! connected with `canBeReadOnly`; writes and sync() answer NOTREADONLY
//! (`ReadOnlyRequestProcessor`); sessions created here are local to this server and never
//! logged. When the election ends the read-only server stops and closes its connections; the
//! clients then find the read-write servers.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use log::info;

use super::peer::{PeerCtx, Threads};
use crate::jute::txn::{Txn, TxnEntry, TxnHeader};
use crate::proto::{ErrorCode, OpCode};
use crate::server::database;
use crate::server::datatree::DataTree;
use crate::server::processor::{Kind, Request};
use crate::server::{ServerMode, Shared};

/// Starts the not-serving client port.
pub fn start_not_serving(ctx: &PeerCtx) -> Result<Threads, String> {
    let mut settings = ctx.settings.clone();
    settings.mode = ServerMode::NotServing;
    let tree = DataTree::empty(settings.extended_types);
    let shared = Arc::new(Shared::new(settings, tree, ctx.tracker(&[])));
    let mut t = Threads::new(shared, true).map_err(|e| format!("client port: {e}"))?;
    t.start_selector()?;
    Ok(t)
}

/// Starts a read-only server over the database on disk.
pub fn start_read_only(ctx: &PeerCtx) -> Result<Threads, String> {
    let s = &ctx.settings;
    let rec = database::recover(&s.data_dir, &s.data_log_dir, s.extended_types)
        .map_err(|e| format!("read-only mode: {e}"))?;
    let mut settings = ctx.settings.clone();
    settings.mode = ServerMode::ReadOnly;
    let last = rec.tree.last_processed_zxid;
    let shared = Arc::new(Shared::new(settings, rec.tree, ctx.tracker(&rec.sessions)));
    let mut t = Threads::new(shared.clone(), true).map_err(|e| format!("client port: {e}"))?;
    let rx = t.take_prep_rx();
    let apply_in = t.start_apply(Arc::new(AtomicI64::new(last)))?;
    t.spawn("read-only", move || read_only_stage(&shared, &rx, &apply_in))?;
    t.start_selector()?;
    info!("read-only server started at zxid 0x{last:x}");
    Ok(t)
}

/// The read-only server's only stage before apply.
fn read_only_stage(shared: &Shared, input: &Receiver<Request>, apply: &Sender<Request>) {
    for mut req in input.iter() {
        let op = OpCode::from_i32(req.op);
        match (&req.kind, op) {
            (Kind::NewSession { timeout_ms, .. }, _) => {
                let txn = Txn::CreateSession { timeout_ms: *timeout_ms };
                local_txn(shared, &mut req, OpCode::CreateSession, txn);
            }
            (Kind::Client, Some(OpCode::CloseSession)) | (Kind::Expire, _) => {
                // A local session: forgotten here, nothing is deleted or logged.
                local_txn(shared, &mut req, OpCode::CloseSession, Txn::CloseSession(Some(vec![])));
            }
            (Kind::Client, Some(o)) if o.is_write() || o == OpCode::Sync => {
                req.err = ErrorCode::NotReadOnly;
            }
            (Kind::Internal, _) => continue,
            _ => {}
        }
        if apply.send(req).is_err() {
            return;
        }
    }
}

/// Attaches a txn that is applied but never logged, at the tree's current zxid (which it
/// leaves unchanged).
fn local_txn(shared: &Shared, req: &mut Request, op: OpCode, txn: Txn) {
    let zxid = shared.read_tree().last_processed_zxid;
    req.op = op.code();
    let header = TxnHeader {
        client_id: req.session,
        cxid: req.xid,
        zxid,
        time: req.wall_ms,
        txn_type: op.code(),
    };
    req.txn = Some(TxnEntry { header, txn, digest: None });
}
