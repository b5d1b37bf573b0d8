//! Container and TTL reaper (ZooKeeper's `ContainerManager`, data-model.md §6-§7).
//!
//! Runs on its own thread. Every `znode.container.checkIntervalMs` it picks the candidates
//! (pure function [`candidates`]) and submits ordinary `deleteContainer` requests with session
//! 0 into the pipeline, at most `znode.container.maxPerMinute` per minute. A candidate that
//! gained a child meanwhile gets NOTEMPTY in prep and is left alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use log::{debug, info};

use super::datatree::{DataTree, NodeKind};
use super::processor::prep::delete_container_body;
use super::processor::{wall_clock_ms, Kind, Request};
use super::Shared;
use crate::proto::OpCode;

/// Paths to delete now: empty containers that once had a child (or were never used for longer
/// than `max_never_used_ms`, when non-zero) and empty TTL nodes not modified for their TTL.
pub fn candidates(tree: &DataTree, now_wall_ms: i64, max_never_used_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    for p in tree.containers() {
        let Some(n) = tree.node(p) else { continue };
        if !n.children.is_empty() {
            continue;
        }
        let used = n.stat.cversion > 0;
        let stale = max_never_used_ms > 0 && now_wall_ms - n.stat.mtime > max_never_used_ms;
        if used || stale {
            out.push(p.clone());
        }
    }
    for p in tree.ttl_nodes() {
        let Some(n) = tree.node(p) else { continue };
        if !n.children.is_empty() {
            continue;
        }
        if let NodeKind::Ttl(ttl) = NodeKind::from_owner(n.stat.ephemeral_owner, true) {
            if now_wall_ms - n.stat.mtime > ttl {
                out.push(p.clone());
            }
        }
    }
    out
}

/// The reaper thread; ends when the server stops.
pub fn run(shared: &Shared, prep: &Sender<Request>, stop: &AtomicBool) -> Result<(), String> {
    let config = &shared.config;
    let interval = config.container_check_interval.max(Duration::from_millis(10));
    let per_minute = u64::from(config.container_max_per_minute.get());
    let spacing = Duration::from_millis(60_000 / per_minute);
    let never_used =
        config.container_max_never_used_interval.unwrap_or_default().as_millis() as i64;
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(100)));
            continue;
        }
        next = Instant::now() + interval;
        let paths = candidates(&shared.read_tree(), wall_clock_ms(), never_used);
        if !paths.is_empty() {
            debug!("container reaper: {} candidates", paths.len());
        }
        for p in paths {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            info!("reaping container or ttl node {p}");
            let mut req = Request::new(None, 0, 0, OpCode::DeleteContainer.code(), Kind::Internal);
            req.body = delete_container_body(&p);
            if prep.send(req).is_err() {
                return Ok(());
            }
            if spacing > Duration::ZERO {
                std::thread::sleep(spacing.min(Duration::from_millis(100)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::data::Acl;
    use crate::jute::txn::{
        CreateContainerTxn, CreateTtlTxn, CreateTxn, DeleteTxn, Txn, TxnHeader,
    };

    fn h(zxid: i64, ty: i32, time: i64) -> TxnHeader {
        TxnHeader { client_id: 1, cxid: 0, zxid, time, txn_type: ty }
    }

    #[test]
    fn used_empty_containers_and_expired_ttls_are_candidates() {
        let mut t = DataTree::new(true);
        let c = |p: &str| {
            Txn::CreateContainer(CreateContainerTxn {
                path: p.into(),
                data: None,
                acl: Acl::open_unsafe(),
                parent_cversion: -1,
            })
        };
        let _ = t.apply(&h(1, 19, 0), &c("/never"));
        let _ = t.apply(&h(2, 19, 0), &c("/used"));
        let child = Txn::Create(CreateTxn {
            path: "/used/x".into(),
            data: None,
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: -1,
        });
        let _ = t.apply(&h(3, 1, 0), &child);
        assert!(candidates(&t, 10, 0).is_empty());
        let _ = t.apply(&h(4, 2, 0), &Txn::Delete(DeleteTxn { path: "/used/x".into() }));
        assert_eq!(candidates(&t, 10, 0), vec!["/used".to_string()]);
        assert_eq!(candidates(&t, 10, 5).len(), 2);
        let ttl = Txn::CreateTtl(CreateTtlTxn {
            path: "/ttl".into(),
            data: None,
            acl: Acl::open_unsafe(),
            parent_cversion: -1,
            ttl: 100,
        });
        let _ = t.apply(&h(5, 21, 1000), &ttl);
        assert!(!candidates(&t, 1100, 0).contains(&"/ttl".to_string()));
        assert!(candidates(&t, 1101, 0).contains(&"/ttl".to_string()));
    }
}
