//! What the client port does while the peer is LOOKING.
//!
//! Without `readonlymode.enabled`, a not-serving server (ZooKeeper's factory with no
//! ZooKeeperServer attached): four-letter words answer "This ZooKeeper instance is not
//! currently serving requests" and client connections are closed.
//!
//! With it, after `max(2 s, tickTime)` of LOOKING a read-only server starts (ZooKeeper's
//! `ReadOnlyZooKeeperServer`) over the database as recovered from disk; its pipeline is
//! [`Stages::ReadOnly`]. When the election ends the read-only server stops and closes its
//! connections; the clients then find the read-write servers.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use log::info;

use super::peer::PeerCtx;
use crate::server::role::database;
use crate::server::role::DataTree;
use crate::server::role::{Pipeline, PipelineSpec, Stages};
use crate::server::role::{ServerMode, Shared};

/// Starts the not-serving client port.
pub fn start_not_serving(ctx: &PeerCtx) -> Result<Pipeline, String> {
    let tree = DataTree::empty(ctx.config.extended_types_enabled);
    let shared =
        Arc::new(Shared::new(ctx.config.clone(), ServerMode::NotServing, tree, ctx.tracker(&[])));
    let spec = PipelineSpec {
        stages: Stages::NotServing,
        sink: None,
        serve_clients: true,
        last_zxid: 0,
        applied: Arc::new(AtomicI64::new(0)),
    };
    Pipeline::start(shared, spec, &ctx.fatal).map_err(|e| format!("client port: {e}"))
}

/// Starts a read-only server over the database on disk.
pub fn start_read_only(ctx: &PeerCtx) -> Result<Pipeline, String> {
    let c = &ctx.config;
    let rec = database::recover(&c.data_dir, &c.data_log_dir, c.extended_types_enabled)
        .map_err(|e| format!("read-only mode: {e}"))?;
    let last = rec.tree.last_processed_zxid;
    let tracker = ctx.tracker(&rec.sessions);
    let shared = Arc::new(Shared::new(c.clone(), ServerMode::ReadOnly, rec.tree, tracker));
    let spec = PipelineSpec {
        stages: Stages::ReadOnly,
        sink: None,
        serve_clients: true,
        last_zxid: last,
        applied: Arc::new(AtomicI64::new(last)),
    };
    let p = Pipeline::start(shared, spec, &ctx.fatal).map_err(|e| format!("client port: {e}"))?;
    info!("read-only server started at zxid 0x{last:x}");
    Ok(p)
}
