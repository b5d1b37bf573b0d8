//! Client helpers for ensemble tests (rzk's own client): connecting while an ensemble may be
//! between leaders, reading through one peer after a sync, retrying a create until a leader
//! takes it, and listing a subtree with its data.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ensemble::Ensemble;
use rzk::client::{Client, ClientConfig, Error};
use rzk::jute::data::Acl;
use rzk::proto::{CreateMode, ErrorCode};

/// How a test's clients wait: `patience` for a session while there may be no leader,
/// `request_timeout` per request.
#[derive(Debug, Clone, Copy)]
pub struct Clients {
    /// How long to keep trying to connect (an election may be running).
    pub patience: Duration,
    /// Request timeout of every client.
    pub request_timeout: Duration,
}

impl Clients {
    /// A client configuration for `connect_string` (15 s sessions).
    pub fn config(&self, connect_string: &str) -> ClientConfig {
        ClientConfig::new(connect_string, Duration::from_secs(15))
            .request_timeout(self.request_timeout)
    }

    /// A connected client from `cfg` (bounded retries: a server may be between leaders).
    pub fn connect(&self, cfg: ClientConfig) -> Client {
        let deadline = Instant::now() + self.patience;
        loop {
            let c = cfg.clone().connect().expect("client");
            match c.wait_connected(Duration::from_secs(5)) {
                Ok(()) => return c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect to {}: {e}; retrying", cfg.connect_string);
                    let _ = c.close();
                }
                Err(e) => panic!("cannot connect to {}: {e}", cfg.connect_string),
            }
        }
    }

    /// A client of peer `id` only.
    pub fn client_of(&self, ens: &Ensemble, id: u32) -> Client {
        self.connect(self.config(&ens.client_addr(id).to_string()))
    }

    /// A client of peer `id` only, caught up with the leader (sync).
    pub fn synced(&self, ens: &Ensemble, id: u32) -> Client {
        let c = self.client_of(ens, id);
        c.sync("/").unwrap_or_else(|e| panic!("sync through peer {id}: {e}"));
        c
    }

    /// Writes `path` (its own name as data) through `writer`, reads it back through every
    /// peer in `readers`.
    pub fn replicates(&self, ens: &Ensemble, writer: u32, readers: &[u32], path: &str) {
        let c = self.client_of(ens, writer);
        c.create(path, path.as_bytes(), &open(), CreateMode::Persistent).unwrap();
        for &id in readers {
            assert_eq!(
                self.read_through(ens, id, path).as_deref(),
                Some(path.as_bytes()),
                "peer {id}"
            );
        }
    }

    /// Kills `leader` (SIGKILL), waits for another, writes `path` through it, restarts the
    /// old leader and checks that it serves and caught up. Returns the new leader.
    pub fn fail_over(&self, ens: &mut Ensemble, leader: u32, path: &str) -> u32 {
        ens.kill9(leader);
        let next = ens.wait_for_leader(self.patience);
        assert_ne!(next, leader, "the killed leader still leads");
        let alive: Vec<u32> = ens.ids().into_iter().filter(|&i| i != leader).collect();
        self.replicates(ens, next, &alive, path);
        ens.restart(leader);
        ens.wait_all_serving(self.patience);
        let back = self.read_through(ens, leader, path);
        assert_eq!(back.as_deref(), Some(path.as_bytes()), "the old leader caught up");
        next
    }

    /// `path`'s data through peer `id` after a sync; `None` when it does not exist.
    pub fn read_through(&self, ens: &Ensemble, id: u32, path: &str) -> Option<Vec<u8>> {
        let c = self.synced(ens, id);
        match c.get_data(path, false) {
            Ok((d, _)) => Some(d),
            Err(Error::Server(ErrorCode::NoNode)) => None,
            Err(e) => panic!("get {path} through peer {id}: {e}"),
        }
    }

    /// Creates `path` through `connect_string`, retrying (fresh clients) while the ensemble
    /// has no leader; NodeExists after a lost reply counts as done.
    pub fn create_until_ok(&self, connect_string: &str, path: &str, data: &[u8]) {
        let deadline = Instant::now() + self.patience;
        loop {
            let c = self.connect(self.config(connect_string));
            match c.create(path, data, &open(), CreateMode::Persistent) {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("create {path} through {connect_string}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("create {path} through {connect_string}: {e}"),
            }
        }
    }
}

/// OPEN_ACL_UNSAFE.
pub fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Every child of `parent` with its data, through `c` (the reads pipelined).
pub fn subtree(c: &Client, parent: &str) -> BTreeMap<String, Vec<u8>> {
    let names = c.get_children(parent, false).unwrap_or_else(|e| panic!("ls {parent}: {e}"));
    let (tx, rx) = crossbeam_channel::unbounded();
    for n in &names {
        let (tx, n2) = (tx.clone(), n.clone());
        let path = format!("{}/{n}", parent.trim_end_matches('/'));
        c.get_data_async(&path, false, move |r| drop(tx.send((n2, r))));
    }
    let mut out = BTreeMap::new();
    for _ in &names {
        let (n, r) = rx.recv_timeout(Duration::from_secs(30)).expect("pipelined getData");
        let d = r.unwrap_or_else(|e| panic!("get {parent}/{n}: {e}")).0;
        out.insert(n, d);
    }
    out
}
