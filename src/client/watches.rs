//! Client-side watch registry [ZKWatchManager]: which application watchers wait on which
//! client path, and which of them an incoming event fires.
//!
//! Owned by the send thread only (registration on successful replies, materialising
//! notifications, local removal, setWatches after a reconnect). Pure bookkeeping, no I/O.
//! Paths are client paths (chroot already stripped); the chroot is prepended only when
//! building setWatches.
//!
//! Invariant: a one-shot (data, exist, child) watcher fires at most once per registration; a
//! persistent or persistent-recursive watcher stays until removed.

use std::collections::{BTreeMap, HashMap};

use super::{Chroot, Watcher};
use crate::jute::proto::{SetWatches, SetWatches2};
use crate::jute::Jute;
use crate::proto::{EventType, OpCode, WatcherType};

/// setWatches packs paths until their total length reaches this [ClientCnxn
/// SET_WATCHES_MAX_LENGTH], keeping each packet far below jute.maxbuffer.
pub const SET_WATCHES_BYTES_MAX: usize = 128 * 1024;

/// The table a registration goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchKind {
    /// getData, or exists on an existing node.
    Data,
    /// exists on a missing node.
    Exist,
    /// getChildren / getChildren2.
    Child,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

const KINDS: [WatchKind; 5] = [
    WatchKind::Data,
    WatchKind::Exist,
    WatchKind::Child,
    WatchKind::Persistent,
    WatchKind::PersistentRecursive,
];

/// Watchers per kind and client path.
#[derive(Default)]
pub struct WatchRegistry {
    tables: HashMap<WatchKind, BTreeMap<String, Vec<Watcher>>>,
}

/// One watcher taken out of the registry by a removal, with the event it gets.
pub struct Removed {
    /// The watcher to notify.
    pub watcher: Watcher,
    /// DataWatchRemoved, ChildWatchRemoved or PersistentWatchRemoved.
    pub event_type: EventType,
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> WatchRegistry {
        WatchRegistry::default()
    }

    /// Adds `watcher` on `path` (once per watcher identity).
    pub fn register(&mut self, kind: WatchKind, path: &str, watcher: Watcher) {
        let list = self.tables.entry(kind).or_default().entry(path.to_owned()).or_default();
        if !list.iter().any(|w| w.id() == watcher.id()) {
            list.push(watcher);
        }
    }

    /// Whether nothing is registered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(|t| t.is_empty())
    }

    /// Paths with a watch of `kind`, sorted.
    pub fn paths(&self, kind: WatchKind) -> Vec<String> {
        self.tables.get(&kind).map(|t| t.keys().cloned().collect()).unwrap_or_default()
    }

    fn take(&mut self, kind: WatchKind, path: &str, out: &mut Vec<Watcher>) {
        if let Some(list) = self.tables.get_mut(&kind).and_then(|t| t.remove(path)) {
            out.extend(list);
        }
    }

    fn copy(&self, kind: WatchKind, path: &str, out: &mut Vec<Watcher>) {
        if let Some(list) = self.tables.get(&kind).and_then(|t| t.get(path)) {
            out.extend(list.iter().cloned());
        }
    }

    /// The watchers a node event on `path` fires; one-shot ones are removed. Each watcher
    /// appears once.
    pub fn materialize(&mut self, event_type: EventType, path: &str) -> Vec<Watcher> {
        let mut out = Vec::new();
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.take(WatchKind::Data, path, &mut out);
                self.take(WatchKind::Exist, path, &mut out);
                self.persistent(path, true, &mut out);
            }
            EventType::NodeChildrenChanged => {
                self.take(WatchKind::Child, path, &mut out);
                // Recursive watches never see child events (ZOOKEEPER-1416).
                self.persistent(path, false, &mut out);
            }
            EventType::NodeDeleted => {
                self.take(WatchKind::Data, path, &mut out);
                self.take(WatchKind::Exist, path, &mut out);
                self.take(WatchKind::Child, path, &mut out);
                self.persistent(path, true, &mut out);
            }
            _ => {}
        }
        dedup(out)
    }

    fn persistent(&self, path: &str, recursive: bool, out: &mut Vec<Watcher>) {
        self.copy(WatchKind::Persistent, path, out);
        if recursive {
            for p in ancestors_and_self(path) {
                self.copy(WatchKind::PersistentRecursive, p, out);
            }
        }
    }

    /// Every registered watcher (state events go to all of them), once each.
    pub fn all(&self) -> Vec<Watcher> {
        let mut out = Vec::new();
        for kind in KINDS {
            if let Some(t) = self.tables.get(&kind) {
                for list in t.values() {
                    out.extend(list.iter().cloned());
                }
            }
        }
        dedup(out)
    }

    /// Whether a removal of `watcher_type` on `path` (only `watcher` if given) would find
    /// anything.
    pub fn contains(&self, path: &str, watcher_type: WatcherType, watcher: Option<u64>) -> bool {
        kinds_for(watcher_type).iter().any(|k| {
            self.tables
                .get(k)
                .and_then(|t| t.get(path))
                .is_some_and(|l| l.iter().any(|w| watcher.is_none_or(|id| w.id() == id)))
        })
    }

    /// Removes the watches of `watcher_type` on `path` (only `watcher` if given) and returns
    /// whom to tell, with the local event type for each.
    pub fn remove(
        &mut self,
        path: &str,
        watcher_type: WatcherType,
        watcher: Option<u64>,
    ) -> Vec<Removed> {
        let mut out: Vec<Removed> = Vec::new();
        for kind in kinds_for(watcher_type) {
            let Some(table) = self.tables.get_mut(kind) else { continue };
            let Some(list) = table.get_mut(path) else { continue };
            let event_type = match kind {
                WatchKind::Data | WatchKind::Exist => EventType::DataWatchRemoved,
                WatchKind::Child => EventType::ChildWatchRemoved,
                WatchKind::Persistent | WatchKind::PersistentRecursive => {
                    EventType::PersistentWatchRemoved
                }
            };
            let mut kept = Vec::new();
            for w in list.drain(..) {
                if watcher.is_none_or(|id| w.id() == id) {
                    if !out.iter().any(|r| r.watcher.id() == w.id() && r.event_type == event_type) {
                        out.push(Removed { watcher: w, event_type });
                    }
                } else {
                    kept.push(w);
                }
            }
            if kept.is_empty() {
                table.remove(path);
            } else {
                *list = kept;
            }
        }
        out
    }

    /// Drops everything (session gone).
    pub fn clear(&mut self) {
        self.tables.clear();
    }

    /// setWatches / setWatches2 bodies re-arming every watch relative to `zxid`, as
    /// `(opcode, body)`; batches hold at most [`SET_WATCHES_BYTES_MAX`] bytes of paths (a
    /// single longer path gets a batch of its own).
    pub fn set_watches(&self, chroot: &Chroot, zxid: i64) -> Vec<(OpCode, Vec<u8>)> {
        let lists: Vec<Vec<String>> = KINDS
            .iter()
            .map(|k| self.paths(*k).iter().map(|p| chroot.to_server(p)).collect())
            .collect();
        let mut batches = Vec::new();
        let mut cur: [Vec<String>; 5] = Default::default();
        let mut cur_bytes = 0usize;
        for (i, list) in lists.into_iter().enumerate() {
            for path in list {
                if cur_bytes > 0 && cur_bytes + path.len() > SET_WATCHES_BYTES_MAX {
                    batches.push(encode_set_watches(std::mem::take(&mut cur), zxid));
                    cur_bytes = 0;
                }
                cur_bytes += path.len();
                cur[i].push(path);
            }
        }
        if cur_bytes > 0 || cur.iter().any(|l| !l.is_empty()) {
            batches.push(encode_set_watches(cur, zxid));
        }
        batches
    }
}

fn encode_set_watches(lists: [Vec<String>; 5], zxid: i64) -> (OpCode, Vec<u8>) {
    let [data, exist, child, persistent, recursive] = lists;
    if persistent.is_empty() && recursive.is_empty() {
        let r = SetWatches {
            relative_zxid: zxid,
            data_watches: data,
            exist_watches: exist,
            child_watches: child,
        };
        (OpCode::SetWatches, r.to_bytes())
    } else {
        let r = SetWatches2 {
            relative_zxid: zxid,
            data_watches: data,
            exist_watches: exist,
            child_watches: child,
            persistent_watches: persistent,
            persistent_recursive_watches: recursive,
        };
        (OpCode::SetWatches2, r.to_bytes())
    }
}

fn kinds_for(t: WatcherType) -> &'static [WatchKind] {
    match t {
        WatcherType::Children => &[WatchKind::Child],
        WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
        WatcherType::Any => &KINDS,
        WatcherType::Persistent => &[WatchKind::Persistent],
        WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
    }
}

fn dedup(list: Vec<Watcher>) -> Vec<Watcher> {
    let mut out: Vec<Watcher> = Vec::with_capacity(list.len());
    for w in list {
        if !out.iter().any(|o| o.id() == w.id()) {
            out.push(w);
        }
    }
    out
}

/// `/a/b` -> `/a/b`, `/a`, `/`.
fn ancestors_and_self(path: &str) -> Vec<&str> {
    let mut out = vec![path];
    let mut p = path;
    while p != "/" {
        p = match p.rfind('/') {
            Some(0) => "/",
            Some(i) => &p[..i],
            None => break,
        };
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Reader;

    fn w() -> Watcher {
        Watcher::new(|_| {})
    }

    fn ids(v: &[Watcher]) -> Vec<u64> {
        let mut v: Vec<u64> = v.iter().map(|w| w.id()).collect();
        v.sort();
        v
    }

    #[test]
    fn one_shot_watches_fire_once_and_persistent_ones_stay() {
        let mut r = WatchRegistry::new();
        let (a, b, p, rec) = (w(), w(), w(), w());
        r.register(WatchKind::Data, "/x", a.clone());
        r.register(WatchKind::Data, "/x", a.clone());
        r.register(WatchKind::Exist, "/x", b.clone());
        r.register(WatchKind::Persistent, "/x", p.clone());
        r.register(WatchKind::PersistentRecursive, "/", rec.clone());
        let fired = r.materialize(EventType::NodeDataChanged, "/x");
        assert_eq!(ids(&fired), ids(&[a.clone(), b.clone(), p.clone(), rec.clone()]));
        let again = r.materialize(EventType::NodeDataChanged, "/x");
        assert_eq!(ids(&again), ids(&[p.clone(), rec.clone()]));
    }

    #[test]
    fn child_events_skip_recursive_watchers_and_delete_fires_all_tables() {
        let mut r = WatchRegistry::new();
        let (c, d, rec) = (w(), w(), w());
        r.register(WatchKind::Child, "/x", c.clone());
        r.register(WatchKind::Data, "/x", d.clone());
        r.register(WatchKind::PersistentRecursive, "/x", rec.clone());
        assert_eq!(
            ids(&r.materialize(EventType::NodeChildrenChanged, "/x")),
            ids(std::slice::from_ref(&c))
        );
        r.register(WatchKind::Child, "/x", c.clone());
        let fired = r.materialize(EventType::NodeDeleted, "/x");
        assert_eq!(ids(&fired), ids(&[c, d, rec.clone()]));
        assert_eq!(ids(&r.materialize(EventType::NodeCreated, "/x/y/z")), ids(&[rec]));
    }

    #[test]
    fn removal_reports_local_events_and_respects_watcher_identity() {
        let mut r = WatchRegistry::new();
        let (a, b) = (w(), w());
        r.register(WatchKind::Data, "/x", a.clone());
        r.register(WatchKind::Data, "/x", b.clone());
        r.register(WatchKind::Child, "/x", a.clone());
        assert!(r.contains("/x", WatcherType::Children, Some(a.id())));
        assert!(!r.contains("/x", WatcherType::Children, Some(b.id())));
        let removed = r.remove("/x", WatcherType::Data, Some(a.id()));
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].event_type, EventType::DataWatchRemoved);
        assert!(r.contains("/x", WatcherType::Data, None));
        let removed = r.remove("/x", WatcherType::Any, None);
        let mut types: Vec<i32> = removed.iter().map(|r| r.event_type.code()).collect();
        types.sort();
        assert_eq!(types, vec![5, 6]);
        assert!(r.is_empty());
        assert!(!r.contains("/x", WatcherType::Any, None));
    }

    #[test]
    fn set_watches_batches_stay_under_128_kib_and_pick_the_record() {
        let mut r = WatchRegistry::new();
        let watcher = w();
        // 3000 paths of 100 bytes: 300,000 bytes -> 3 batches.
        for i in 0..3000 {
            r.register(WatchKind::Data, &format!("/{:099}", i), watcher.clone());
        }
        let batches = r.set_watches(&Chroot::default(), 42);
        assert_eq!(batches.len(), 3);
        let mut total = 0;
        for (op, body) in &batches {
            assert_eq!(*op, OpCode::SetWatches);
            let sw = SetWatches::decode(&mut Reader::new(body)).unwrap();
            assert_eq!(sw.relative_zxid, 42);
            let bytes: usize = sw.data_watches.iter().map(|p| p.len()).sum();
            assert!(bytes <= SET_WATCHES_BYTES_MAX);
            total += sw.data_watches.len();
        }
        assert_eq!(total, 3000);
        r.register(WatchKind::PersistentRecursive, "/p", watcher);
        let chroot = Chroot::new(Some("/app".into()));
        let batches = r.set_watches(&chroot, 1);
        let (op, body) = batches.last().unwrap();
        assert_eq!(*op, OpCode::SetWatches2);
        let sw = SetWatches2::decode(&mut Reader::new(body)).unwrap();
        assert_eq!(sw.persistent_recursive_watches, vec!["/app/p".to_owned()]);
        assert!(WatchRegistry::new().set_watches(&chroot, 1).is_empty());
    }

    #[test]
    fn ancestors_walk_up_to_root() {
        assert_eq!(ancestors_and_self("/a/b"), vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors_and_self("/"), vec!["/"]);
    }
}
