//! The read-only server's first stage (ZooKeeper's `ReadOnlyRequestProcessor` in front of a
//! `ReadOnlyZooKeeperServer`): a peer cut off from its quorum answers reads from the database
//! as recovered from disk; writes and sync() get NOTREADONLY; sessions created here are local
//! to this server and never logged.
//!
//! Runs on its own thread in front of apply. No I/O.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use log::debug;

use super::{Kind, Request};
use crate::jute::txn::{Txn, TxnEntry, TxnHeader};
use crate::proto::{ErrorCode, OpCode};
use crate::server::Shared;

/// The thread body: marks each request and passes it to apply.
pub fn run(
    shared: &Shared,
    input: Receiver<Request>,
    apply: Sender<Request>,
) -> Result<(), String> {
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
            break;
        }
    }
    debug!("read-only stage: stopping");
    Ok(())
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
    req.txn = Some(Arc::new(TxnEntry { header, txn, digest: None }));
}
