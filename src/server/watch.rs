//! Server-side watch registry (ZooKeeper's `WatchManager` pair): a data table and a child
//! table, each mapping a path to the connections watching it with their modes
//! (wire-protocol.md §9.3-§9.6).
//!
//! Owned by the apply stage (behind a mutex so the four-letter words can read it). Turning a
//! [`Trigger`](super::datatree::Trigger) into the set of connections to notify is pure.

use std::collections::{BTreeSet, HashMap};

use std::sync::Arc;

use super::acl::AuthInfo;
use super::ConnId;
use crate::fasthash::FastMap;
use crate::proto::{EventType, WatcherType};
use crate::server::processor::Outflow;

/// A standard (one-shot) watch.
pub const STANDARD: u8 = 1;
/// A persistent watch (`addWatch` mode 0): data and child tables.
pub const PERSISTENT: u8 = 2;
/// A persistent recursive watch (`addWatch` mode 1): data table only.
pub const RECURSIVE: u8 = 4;

/// Which table a registration goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// exists / getData watches, persistent and recursive registrations.
    Data,
    /// getChildren watches and persistent registrations.
    Child,
}

type PathTable = FastMap<String, FastMap<ConnId, u8>>;

/// The registry.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: PathTable,
    child: PathTable,
    by_conn: HashMap<ConnId, (BTreeSet<String>, BTreeSet<String>)>,
    recursive: usize,
    sessions: HashMap<ConnId, i64>,
    auths: HashMap<ConnId, Arc<AuthInfo>>,
    outflows: HashMap<ConnId, Arc<Outflow>>,
}

impl WatchManager {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records which session a connection serves (for the four-letter words).
    pub fn set_session(&mut self, conn: ConnId, session: i64) {
        self.sessions.insert(conn, session);
    }

    /// Remembers a connection's session and identities, used for the four-letter words and
    /// for the READ check when an event is delivered.
    pub fn note_conn(
        &mut self,
        conn: ConnId,
        session: i64,
        auth: &Arc<AuthInfo>,
        outflow: Option<&Arc<Outflow>>,
    ) {
        self.sessions.insert(conn, session);
        let same = self.auths.get(&conn).is_some_and(|a| Arc::ptr_eq(a, auth));
        if !same {
            self.auths.insert(conn, auth.clone());
        }
        if let Some(o) = outflow {
            self.outflows.entry(conn).or_insert_with(|| o.clone());
        }
    }

    /// The output account of a connection (events are admitted against it).
    pub fn outflow_of(&self, conn: ConnId) -> Option<&Arc<Outflow>> {
        self.outflows.get(&conn)
    }

    /// The identities of a connection (none known: no identities).
    pub fn auth_of(&self, conn: ConnId) -> Arc<AuthInfo> {
        self.auths.get(&conn).cloned().unwrap_or_default()
    }

    /// Adds a registration.
    pub fn add(&mut self, table: Table, path: &str, conn: ConnId, mode: u8) {
        let t = match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        };
        let modes = t.entry(path.to_owned()).or_default().entry(conn).or_insert(0);
        if mode == RECURSIVE && *modes & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *modes |= mode;
        let entry = self.by_conn.entry(conn).or_default();
        match table {
            Table::Data => entry.0.insert(path.to_owned()),
            Table::Child => entry.1.insert(path.to_owned()),
        };
    }

    /// `addWatch`: persistent goes to both tables, recursive to the data table.
    pub fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        if recursive {
            self.add(Table::Data, path, conn, RECURSIVE);
        } else {
            self.add(Table::Data, path, conn, PERSISTENT);
            self.add(Table::Child, path, conn, PERSISTENT);
        }
    }

    fn clear_modes(&mut self, table: Table, path: &str, conn: ConnId, mask: u8) -> bool {
        let t = match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        };
        let Some(conns) = t.get_mut(path) else { return false };
        let Some(modes) = conns.get_mut(&conn) else { return false };
        let hit = *modes & mask;
        if hit == 0 {
            return false;
        }
        if hit & RECURSIVE != 0 {
            self.recursive = self.recursive.saturating_sub(1);
        }
        *modes &= !mask;
        if *modes == 0 {
            conns.remove(&conn);
            if conns.is_empty() {
                t.remove(path);
            }
            if let Some(e) = self.by_conn.get_mut(&conn) {
                match table {
                    Table::Data => e.0.remove(path),
                    Table::Child => e.1.remove(path),
                };
            }
        }
        true
    }

    fn has(&self, table: Table, path: &str, conn: ConnId, mask: u8) -> bool {
        let t = match table {
            Table::Data => &self.data,
            Table::Child => &self.child,
        };
        t.get(path).and_then(|c| c.get(&conn)).is_some_and(|m| m & mask != 0)
    }

    /// `checkWatches` (remove = false) / `removeWatches` (remove = true); false = NOWATCHER.
    pub fn check_or_remove(
        &mut self,
        path: &str,
        conn: ConnId,
        kind: WatcherType,
        remove: bool,
    ) -> bool {
        let plan: &[(Table, u8)] = match kind {
            WatcherType::Children => &[(Table::Child, STANDARD)],
            WatcherType::Data => &[(Table::Data, STANDARD)],
            WatcherType::Any => &[(Table::Data, 0xff), (Table::Child, 0xff)],
            WatcherType::Persistent => &[(Table::Data, PERSISTENT), (Table::Child, PERSISTENT)],
            WatcherType::PersistentRecursive => &[(Table::Data, RECURSIVE)],
        };
        let mut found = false;
        for &(table, mask) in plan {
            if remove {
                found |= self.clear_modes(table, path, conn, mask);
            } else {
                found |= self.has(table, path, conn, mask);
            }
        }
        found
    }

    /// Drops every registration of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        self.sessions.remove(&conn);
        self.auths.remove(&conn);
        self.outflows.remove(&conn);
        let Some((data, child)) = self.by_conn.remove(&conn) else { return };
        for p in data {
            if let Some(c) = self.data.get_mut(&p) {
                if let Some(m) = c.remove(&conn) {
                    if m & RECURSIVE != 0 {
                        self.recursive = self.recursive.saturating_sub(1);
                    }
                }
                if c.is_empty() {
                    self.data.remove(&p);
                }
            }
        }
        for p in child {
            if let Some(c) = self.child.get_mut(&p) {
                c.remove(&conn);
                if c.is_empty() {
                    self.child.remove(&p);
                }
            }
        }
    }

    /// Fires a trigger: returns the connections to notify (each once), removing standard
    /// watches that fired (§9.4).
    pub fn trigger(&mut self, event: EventType, path: &str) -> Vec<ConnId> {
        let mut out: Vec<ConnId> = Vec::new();
        let tables: &[Table] = match event {
            EventType::NodeCreated | EventType::NodeDataChanged => &[Table::Data],
            EventType::NodeDeleted => &[Table::Data, Table::Child],
            EventType::NodeChildrenChanged => &[Table::Child],
            _ => &[],
        };
        for &table in tables {
            let t = match table {
                Table::Data => &self.data,
                Table::Child => &self.child,
            };
            let Some(conns) = t.get(path) else { continue };
            let mut fired_standard = Vec::new();
            for (&conn, &modes) in conns {
                // A recursive-only registration at `path` is handled with the ancestors below.
                if modes & (STANDARD | PERSISTENT) == 0 {
                    continue;
                }
                if !out.contains(&conn) {
                    out.push(conn);
                }
                if modes & STANDARD != 0 {
                    fired_standard.push(conn);
                }
            }
            for conn in fired_standard {
                self.clear_modes(table, path, conn, STANDARD);
            }
        }
        if self.recursive > 0 && event != EventType::NodeChildrenChanged {
            let mut p = path;
            loop {
                if let Some(conns) = self.data.get(p) {
                    for (&conn, &modes) in conns {
                        if modes & RECURSIVE != 0 && !out.contains(&conn) {
                            out.push(conn);
                        }
                    }
                }
                match super::datatree::parent_of(p) {
                    Some(parent) => p = parent,
                    None => break,
                }
            }
        }
        out
    }

    /// Number of (connection, path) pairs in both tables (mntr's zk_watch_count).
    pub fn watch_count(&self) -> usize {
        self.data.values().map(|c| c.len()).sum::<usize>()
            + self.child.values().map(|c| c.len()).sum::<usize>()
    }

    /// `wchs` text (data table only).
    pub fn summary(&self) -> String {
        let conns: BTreeSet<ConnId> = self.data.values().flat_map(|c| c.keys().copied()).collect();
        let total: usize = self.data.values().map(|c| c.len()).sum();
        format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            conns.len(),
            self.data.len(),
            total
        )
    }

    /// The paths with data watches, copied: `wchc` and `wchp` walk them in chunks outside
    /// the lock (apply must be able to fire watches meanwhile).
    pub fn data_paths(&self) -> Vec<String> {
        self.data.keys().cloned().collect()
    }

    /// For those of `paths` still watched, the sessions watching them (data table).
    pub fn sessions_watching(&self, paths: &[String]) -> Vec<(String, BTreeSet<i64>)> {
        paths
            .iter()
            .filter_map(|p| {
                let conns = self.data.get(p)?;
                let sids = conns.keys().map(|c| self.sessions.get(c).copied().unwrap_or(0));
                Some((p.clone(), sids.collect()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_watches_fire_once() {
        let mut w = WatchManager::new();
        w.add(Table::Data, "/a", 1, STANDARD);
        assert_eq!(w.trigger(EventType::NodeDataChanged, "/a"), vec![1]);
        assert!(w.trigger(EventType::NodeDataChanged, "/a").is_empty());
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn delete_fires_both_tables_once_per_connection() {
        let mut w = WatchManager::new();
        w.add(Table::Data, "/a/c", 1, STANDARD);
        w.add(Table::Child, "/a/c", 1, STANDARD);
        w.add(Table::Child, "/a/c", 2, STANDARD);
        w.add(Table::Child, "/a", 1, STANDARD);
        let mut got = w.trigger(EventType::NodeDeleted, "/a/c");
        got.sort();
        assert_eq!(got, vec![1, 2]);
        assert_eq!(w.trigger(EventType::NodeChildrenChanged, "/a"), vec![1]);
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut w = WatchManager::new();
        w.add_persistent("/p", 1, false);
        w.add_persistent("/r", 2, true);
        assert_eq!(w.trigger(EventType::NodeDataChanged, "/p"), vec![1]);
        assert_eq!(w.trigger(EventType::NodeChildrenChanged, "/p"), vec![1]);
        assert_eq!(w.trigger(EventType::NodeDataChanged, "/p"), vec![1]);
        assert_eq!(w.trigger(EventType::NodeCreated, "/r/x/y"), vec![2]);
        assert_eq!(w.trigger(EventType::NodeCreated, "/r"), vec![2]);
        assert!(w.trigger(EventType::NodeChildrenChanged, "/r").is_empty());
        assert!(w.trigger(EventType::NodeCreated, "/rr").is_empty());
        assert!(w.check_or_remove("/r", 2, WatcherType::PersistentRecursive, false));
        assert!(w.check_or_remove("/r", 2, WatcherType::PersistentRecursive, true));
        assert!(w.trigger(EventType::NodeCreated, "/r/x").is_empty());
        assert!(!w.check_or_remove("/p", 1, WatcherType::Data, true));
        assert!(w.check_or_remove("/p", 1, WatcherType::Any, true));
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn connection_close_drops_everything_and_dumps() {
        let mut w = WatchManager::new();
        w.set_session(7, 0x100);
        w.add(Table::Data, "/a", 7, STANDARD);
        w.add(Table::Data, "/zz", 7, STANDARD);
        assert_eq!(w.summary(), "1 connections watching 2 paths\nTotal watches:2\n");
        let mut paths = w.data_paths();
        paths.sort();
        let sids = BTreeSet::from([0x100]);
        assert_eq!(
            w.sessions_watching(&paths),
            vec![("/a".to_owned(), sids.clone()), ("/zz".to_owned(), sids)]
        );
        w.remove_conn(7);
        assert_eq!(w.summary(), "0 connections watching 0 paths\nTotal watches:0\n");
        assert!(w.data_paths().is_empty() && w.sessions_watching(&paths).is_empty());
    }
}
