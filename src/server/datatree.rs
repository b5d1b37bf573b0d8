//! The in-memory znode tree (ZooKeeper's `DataTree`): nodes, the reference-counted ACL cache,
//! ephemeral/container/TTL indexes, and the deterministic application of txns.
//!
//! Owned by the apply stage, which is the only writer; the prep stage and the four-letter
//! words read it through the server's `RwLock`. Applying a txn never fails as a whole: a txn
//! that does not fit the tree (possible when replaying a log over a fuzzy snapshot) yields an
//! error result and leaves the tree as ZooKeeper would (data-model.md §3.2).
//!
//! Memory: a node's full path is stored once, as the key of `nodes`; parents keep only the
//! child *names*. ACL lists are shared through [`AclCache`] (one copy per distinct list).
//!
//! No I/O, no clocks: txn times come from the txn header.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::fasthash::{FastMap, FastSet};

use crate::jute::data::{Acl, Stat, StatPersisted};
use crate::jute::proto::MultiResult;
use crate::jute::txn::{SubTxn, Txn, TxnHeader};
use crate::proto::{ErrorCode, EventType, OpCode};

/// `ephemeralOwner` of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of an extended-type (TTL) `ephemeralOwner`.
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
/// The largest TTL (40 bits of milliseconds).
pub const MAX_TTL_MS: i64 = 0xff_ffff_ffff;

/// The special nodes that always exist and cannot be deleted.
pub const SPECIAL_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// What a stored `ephemeralOwner` means (data-model.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Persistent.
    Persistent,
    /// Ephemeral, owned by that session.
    Ephemeral(i64),
    /// Container.
    Container,
    /// TTL node with that TTL in ms.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes a stored owner value.
    pub fn from_owner(owner: i64, extended_types: bool) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if extended_types && (owner & EXTENDED_MASK) == EXTENDED_MASK {
            NodeKind::Ttl(owner & MAX_TTL_MS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    /// The stored owner value.
    pub fn owner(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(s) => s,
            NodeKind::Container => CONTAINER_OWNER,
            NodeKind::Ttl(ttl) => EXTENDED_MASK | (ttl & MAX_TTL_MS),
        }
    }
}

/// One znode.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Data; `None` is null data (distinct from empty).
    pub data: Option<Vec<u8>>,
    /// Reference into the ACL cache (-1 = OPEN_ACL_UNSAFE).
    pub acl: i64,
    /// Stored stat.
    pub stat: StatPersisted,
    /// Child names (not full paths).
    /// Child names, shared (`Arc`) so that a snapshot can list a huge directory under the
    /// read lock without allocating a string per child.
    pub children: FastSet<Arc<str>>,
}

impl Node {
    /// Data length as Stat reports it.
    pub fn data_len(&self) -> i32 {
        self.data.as_ref().map_or(0, |d| d.len() as i32)
    }

    /// The client-visible Stat (data-model.md §3, §3.1, §2.1).
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match NodeKind::from_owner(s.ephemeral_owner, extended_types) {
            NodeKind::Ephemeral(owner) => owner,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner,
            data_length: self.data_len(),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// Reference-counted ACL lists, keyed by a `long` as in ZooKeeper snapshots.
#[derive(Debug, Clone)]
pub struct AclCache {
    /// Lists are shared (`Arc`) so that readers and the prep stage never copy them.
    by_ref: FastMap<i64, (Arc<Vec<Acl>>, u64)>,
    by_acl: FastMap<Vec<Acl>, i64>,
    next_ref: i64,
    open: Arc<Vec<Acl>>,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache {
            by_ref: FastMap::default(),
            by_acl: FastMap::default(),
            next_ref: 0,
            open: Arc::new(Acl::open_unsafe()),
        }
    }
}

impl AclCache {
    /// Interns a list, adding one reference; OPEN_ACL_UNSAFE is always -1.
    pub fn add(&mut self, acl: &[Acl]) -> i64 {
        if is_open_acl(acl) {
            return -1;
        }
        if let Some(&r) = self.by_acl.get(acl) {
            if let Some(e) = self.by_ref.get_mut(&r) {
                e.1 += 1;
            }
            return r;
        }
        let r = self.fresh_ref();
        self.by_acl.insert(acl.to_vec(), r);
        self.by_ref.insert(r, (Arc::new(acl.to_vec()), 1));
        r
    }

    /// Drops one reference.
    pub fn release(&mut self, r: i64) {
        if r == -1 {
            return;
        }
        let gone = match self.by_ref.get_mut(&r) {
            Some(e) => {
                e.1 = e.1.saturating_sub(1);
                e.1 == 0
            }
            None => false,
        };
        if gone {
            if let Some((acl, _)) = self.by_ref.remove(&r) {
                self.by_acl.remove(acl.as_slice());
            }
        }
    }

    /// The list behind a reference (OPEN_ACL_UNSAFE for -1 or an unknown ref).
    pub fn get(&self, r: i64) -> Arc<Vec<Acl>> {
        match self.by_ref.get(&r) {
            Some((acl, _)) => acl.clone(),
            None => self.open.clone(),
        }
    }

    /// Loads an entry from a snapshot (reference counts start at 0 and grow as nodes load).
    /// An entry for -1 is ignored: -1 always means OPEN_ACL_UNSAFE, as in ZooKeeper's
    /// `convertLong`, so a damaged or hostile snapshot cannot redefine it (nor make the next
    /// snapshot list it).
    pub fn insert_loaded(&mut self, r: i64, acl: Vec<Acl>) {
        if r == -1 {
            return;
        }
        self.by_acl.insert(acl.clone(), r);
        self.by_ref.insert(r, (Arc::new(acl), 0));
        if r >= self.next_ref {
            // Wraps after i64::MAX, as ZooKeeper's incrementIndex does; `fresh_ref` skips
            // whatever is taken.
            self.next_ref = r.wrapping_add(1);
        }
    }

    /// The next unused reference. References grow from the largest one loaded; only a
    /// snapshot that used the extremes makes the loop skip anything.
    fn fresh_ref(&mut self) -> i64 {
        while self.next_ref == -1 || self.by_ref.contains_key(&self.next_ref) {
            self.next_ref = self.next_ref.wrapping_add(1);
        }
        let r = self.next_ref;
        self.next_ref = r.wrapping_add(1);
        r
    }

    /// Adds a reference to a loaded entry.
    pub fn add_ref(&mut self, r: i64) {
        if let Some(e) = self.by_ref.get_mut(&r) {
            e.1 += 1;
        }
    }

    /// Entries in reference order, for snapshots.
    pub fn entries(&self) -> Vec<(i64, Vec<Acl>)> {
        let sorted: BTreeMap<i64, &Arc<Vec<Acl>>> =
            self.by_ref.iter().map(|(r, (a, _))| (*r, a)).collect();
        sorted.into_iter().map(|(r, a)| (r, a.to_vec())).collect()
    }

    /// Number of distinct lists.
    pub fn len(&self) -> usize {
        self.by_ref.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }
}

/// Whether a list is exactly OPEN_ACL_UNSAFE.
pub fn is_open_acl(acl: &[Acl]) -> bool {
    match acl {
        [a] => {
            a.perms == crate::jute::data::perms::ALL
                && a.id.scheme == "world"
                && a.id.id == "anyone"
        }
        _ => false,
    }
}

/// The outcome of applying one txn (or one sub-txn of a multi).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResult {
    /// Ok, or why the txn did nothing.
    pub err: ErrorCode,
    /// Created path (create variants).
    pub path: String,
    /// Stat after the change (create, setData, setACL).
    pub stat: Option<Stat>,
    /// Per-op results of a multi.
    pub multi: Vec<MultiResult>,
}

impl ApplyResult {
    fn ok() -> Self {
        ApplyResult { err: ErrorCode::Ok, path: String::new(), stat: None, multi: Vec::new() }
    }
    fn error(err: ErrorCode) -> Self {
        ApplyResult { err, ..ApplyResult::ok() }
    }
}

/// A watch trigger produced by applying a txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The event type.
    pub event: EventType,
    /// The path the event is about.
    pub path: String,
    /// The ACL a watcher needs READ on to receive it (the node's, or the parent's for
    /// NodeChildrenChanged), taken when the event happened.
    pub acl: Arc<Vec<Acl>>,
}

/// The znode tree.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Boxed so that growing the map moves pointers, not whole nodes (a rehash of a million
    /// inline nodes would hold the apply stage for tens of milliseconds).
    nodes: FastMap<String, Box<Node>>,
    acls: AclCache,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    extended_types: bool,
    /// Zxid of the last txn applied.
    pub last_processed_zxid: i64,
    data_size: u64,
}

/// The parent path of `path` ("/" for top-level nodes); `None` for "/".
pub fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a path.
pub fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

impl DataTree {
    /// A fresh tree with `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new(extended_types: bool) -> DataTree {
        let mut t = DataTree::empty(extended_types);
        for p in SPECIAL_PATHS {
            t.insert_raw(p.to_owned(), Node { acl: -1, ..Node::default() });
        }
        let config_acl = t.acls.add(&Acl::read_unsafe());
        if let Some(n) = t.nodes.get_mut("/zookeeper/config") {
            n.acl = config_acl;
            n.stat.aversion = -1;
            n.data = Some(Vec::new());
        }
        for p in ["/", "/zookeeper", "/zookeeper/quota"] {
            if let Some(n) = t.nodes.get_mut(p) {
                n.data = Some(Vec::new());
            }
        }
        t
    }

    /// A tree with no nodes at all (snapshot loading fills it).
    pub fn empty(extended_types: bool) -> DataTree {
        DataTree {
            nodes: FastMap::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            extended_types,
            last_processed_zxid: 0,
            data_size: 0,
        }
    }

    /// Whether TTL owner values are decoded as TTLs.
    pub fn extended_types(&self) -> bool {
        self.extended_types
    }

    /// Makes room for `additional` more nodes (recovery knows roughly how many are coming).
    pub fn reserve(&mut self, additional: usize) {
        self.nodes.reserve(additional);
    }

    /// Inserts a node as loaded from a snapshot: links it to its parent and indexes it. The
    /// ACL reference must already be in the cache.
    pub fn insert_loaded(
        &mut self,
        path: String,
        data: Option<Vec<u8>>,
        acl: i64,
        stat: StatPersisted,
    ) {
        self.acls.add_ref(acl);
        self.insert_raw(path, Node { data, acl, stat, children: FastSet::default() });
    }

    fn insert_raw(&mut self, path: String, node: Node) {
        if let Some(parent) = parent_of(&path) {
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.insert(name_of(&path).into());
            }
        }
        self.insert_linked(path, node);
    }

    /// Inserts a node whose parent already lists it, with the indexes and size accounting.
    fn insert_linked(&mut self, path: String, node: Node) {
        self.data_size += (path.len() + node.data_len() as usize) as u64;
        match NodeKind::from_owner(node.stat.ephemeral_owner, self.extended_types) {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(path.clone());
            }
            NodeKind::Container => {
                self.containers.insert(path.clone());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
        }
        self.nodes.insert(path, Box::new(node));
    }

    /// The ACL cache (for snapshots).
    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }

    /// Mutable ACL cache (for snapshot loading).
    pub fn acl_cache_mut(&mut self) -> &mut AclCache {
        &mut self.acls
    }

    /// A node by path.
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// The ACL list of a node (shared, not copied).
    pub fn acl_of(&self, node: &Node) -> Arc<Vec<Acl>> {
        self.acls.get(node.acl)
    }

    /// The client Stat of a node.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(|n| n.client_stat(self.extended_types))
    }

    /// Number of znodes, including the special ones.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Sum over nodes of path length + data length (mntr's zk_approximate_data_size).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// Number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Ephemeral paths of a session, sorted.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals.get(&session).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every session owning ephemerals, in order (for `dump`).
    pub fn ephemeral_sessions(&self) -> Vec<i64> {
        let mut ids: Vec<i64> =
            self.ephemerals.iter().filter(|(_, s)| !s.is_empty()).map(|(k, _)| *k).collect();
        ids.sort_unstable();
        ids
    }

    /// Container paths (for the reaper).
    pub fn containers(&self) -> impl Iterator<Item = &String> {
        self.containers.iter()
    }

    /// TTL node paths (for the reaper).
    pub fn ttl_nodes(&self) -> impl Iterator<Item = &String> {
        self.ttls.iter()
    }

    /// Number of descendants of `path` (getAllChildrenNumber).
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        let node = self.nodes.get(path)?;
        let mut count = 0i32;
        let mut stack: Vec<String> = Vec::new();
        let base = if path == "/" { String::new() } else { path.to_owned() };
        for c in &node.children {
            stack.push(format!("{base}/{c}"));
        }
        while let Some(p) = stack.pop() {
            count += 1;
            if let Some(n) = self.nodes.get(&p) {
                for c in &n.children {
                    stack.push(format!("{p}/{c}"));
                }
            }
        }
        Some(count)
    }

    /// Paths in pre-order (parents before children), for snapshots and digests.
    pub fn paths_preorder(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                let base = if p == "/" { "" } else { p.as_str() };
                for c in n.children.iter() {
                    let mut child = String::with_capacity(base.len() + 1 + c.len());
                    child.push_str(base);
                    child.push('/');
                    child.push_str(c);
                    stack.push(child);
                }
            }
            out.push(p);
        }
        out
    }

    /// Applies one logged txn, returning its result and the watch triggers it causes.
    pub fn apply(&mut self, hdr: &TxnHeader, txn: &Txn) -> (ApplyResult, Vec<Trigger>) {
        let mut triggers = Vec::new();
        let result = self.apply_one(hdr, txn, &mut triggers);
        if hdr.zxid > self.last_processed_zxid {
            self.last_processed_zxid = hdr.zxid;
        }
        (result, triggers)
    }

    fn apply_one(&mut self, hdr: &TxnHeader, txn: &Txn, trig: &mut Vec<Trigger>) -> ApplyResult {
        let (zxid, time) = (hdr.zxid, hdr.time);
        match txn {
            Txn::Create(t) => {
                let owner = if t.ephemeral { hdr.client_id } else { 0 };
                let data = t.data.clone();
                self.create(&t.path, data, &t.acl, owner, t.parent_cversion, zxid, time, trig)
            }
            Txn::CreateTtl(t) => {
                let owner = NodeKind::Ttl(t.ttl).owner();
                let data = t.data.clone();
                self.create(&t.path, data, &t.acl, owner, t.parent_cversion, zxid, time, trig)
            }
            Txn::CreateContainer(t) => {
                let data = t.data.clone();
                let cv = t.parent_cversion;
                self.create(&t.path, data, &t.acl, CONTAINER_OWNER, cv, zxid, time, trig)
            }
            Txn::Delete(t) => self.delete(&t.path, zxid, trig),
            Txn::SetData(t) => self.set_data(&t.path, t.data.clone(), t.version, zxid, time, trig),
            Txn::SetAcl(t) => self.set_acl(&t.path, &t.acl, t.version),
            Txn::Check(_) => ApplyResult::ok(),
            Txn::CreateSession { .. } => ApplyResult::ok(),
            Txn::CloseSession(paths) => {
                let paths = match paths {
                    Some(p) => p.clone(),
                    None => self.ephemerals_of(hdr.client_id),
                };
                for p in paths {
                    self.delete(&p, zxid, trig);
                }
                self.ephemerals.remove(&hdr.client_id);
                ApplyResult::ok()
            }
            Txn::Error(code) => {
                ApplyResult::error(ErrorCode::from_i32(*code).unwrap_or(ErrorCode::SystemError))
            }
            Txn::Multi(subs) => self.apply_multi(hdr, subs, trig),
        }
    }

    fn apply_multi(
        &mut self,
        hdr: &TxnHeader,
        subs: &[SubTxn],
        trig: &mut Vec<Trigger>,
    ) -> ApplyResult {
        let failed = subs.iter().any(|s| matches!(s.txn, Txn::Error(_)));
        let mut res = ApplyResult::ok();
        if failed {
            // All-or-nothing: an error sub-txn means nothing is applied (wire-protocol.md §7).
            for s in subs {
                let code = match s.txn {
                    Txn::Error(e) => e,
                    _ => 0,
                };
                res.multi.push(MultiResult::Error(code));
            }
            return res;
        }
        for s in subs {
            let r = self.apply_one(hdr, &s.txn, trig);
            let item = if r.err != ErrorCode::Ok {
                // Only possible on replay over a fuzzy snapshot; report like ZooKeeper.
                MultiResult::Error(r.err.code())
            } else {
                // The result type follows the logged type, as ZooKeeper's does: a create2 op in
                // a multi is answered as a create (path, no stat), a container or TTL create
                // with a stat, on the server that took the request and on any that replays it.
                match OpCode::from_i32(s.logged_type()) {
                    Some(OpCode::Create) => MultiResult::Create(r.path.clone()),
                    Some(OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
                        MultiResult::Create2(r.path.clone(), r.stat.clone().unwrap_or_default())
                    }
                    Some(OpCode::Delete | OpCode::DeleteContainer) => MultiResult::Delete,
                    Some(OpCode::SetData) => {
                        MultiResult::SetData(r.stat.clone().unwrap_or_default())
                    }
                    Some(OpCode::Check) => MultiResult::Check,
                    _ => MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
                }
            };
            res.multi.push(item);
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        trig: &mut Vec<Trigger>,
    ) -> ApplyResult {
        let Some(parent_path) = parent_of(path) else {
            return ApplyResult::error(ErrorCode::NodeExists);
        };
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return ApplyResult::error(ErrorCode::NoNode);
        };
        let cversion =
            if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        // The parent update applies even when the node exists (replay over a fuzzy snapshot).
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl;
        // The parent's child set says whether the node exists; inserting the name there is
        // both the check and the link (one probe, no lookup of the new path).
        if !parent.children.insert(name_of(path).into()) {
            return ApplyResult::error(ErrorCode::NodeExists);
        }
        let acl_ref = self.acls.add(acl);
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let node = Node { data, acl: acl_ref, stat, children: FastSet::default() };
        let client_stat = node.client_stat(self.extended_types);
        self.insert_linked(path.to_owned(), node);
        trig.push(Trigger {
            event: EventType::NodeCreated,
            path: path.to_owned(),
            acl: self.acls.get(acl_ref),
        });
        trig.push(Trigger {
            event: EventType::NodeChildrenChanged,
            path: parent_path.to_owned(),
            acl: self.acls.get(parent_acl),
        });
        let mut r = ApplyResult::ok();
        r.path = path.to_owned();
        r.stat = Some(client_stat);
        r
    }

    fn delete(&mut self, path: &str, zxid: i64, trig: &mut Vec<Trigger>) -> ApplyResult {
        let Some(parent_path) = parent_of(path) else {
            return ApplyResult::error(ErrorCode::BadArguments);
        };
        let Some(node) = self.nodes.remove(path) else {
            return ApplyResult::error(ErrorCode::NoNode);
        };
        self.data_size =
            self.data_size.saturating_sub((path.len() + node.data_len() as usize) as u64);
        let node_acl = self.acls.get(node.acl);
        self.acls.release(node.acl);
        match NodeKind::from_owner(node.stat.ephemeral_owner, self.extended_types) {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
        }
        let mut parent_acl = -1;
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(name_of(path));
            if zxid > parent.stat.pzxid {
                parent.stat.pzxid = zxid;
            }
            parent_acl = parent.acl;
        }
        trig.push(Trigger { event: EventType::NodeDeleted, path: path.to_owned(), acl: node_acl });
        trig.push(Trigger {
            event: EventType::NodeChildrenChanged,
            path: parent_path.to_owned(),
            acl: self.acls.get(parent_acl),
        });
        ApplyResult::ok()
    }

    fn set_data(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        version: i32,
        zxid: i64,
        time: i64,
        trig: &mut Vec<Trigger>,
    ) -> ApplyResult {
        let Some(node) = self.nodes.get_mut(path) else {
            return ApplyResult::error(ErrorCode::NoNode);
        };
        let old = node.data_len() as u64;
        node.data = data;
        node.stat.version = version;
        node.stat.mzxid = zxid;
        node.stat.mtime = time;
        let new = node.data_len() as u64;
        let acl = node.acl;
        self.data_size = (self.data_size + new).saturating_sub(old);
        trig.push(Trigger {
            event: EventType::NodeDataChanged,
            path: path.to_owned(),
            acl: self.acls.get(acl),
        });
        let mut r = ApplyResult::ok();
        r.stat = self.stat(path);
        r
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> ApplyResult {
        let new_ref = self.acls.add(acl);
        let Some(node) = self.nodes.get_mut(path) else {
            self.acls.release(new_ref);
            return ApplyResult::error(ErrorCode::NoNode);
        };
        let old_ref = std::mem::replace(&mut node.acl, new_ref);
        node.stat.aversion = version;
        self.acls.release(old_ref);
        let mut r = ApplyResult::ok();
        r.stat = self.stat(path);
        r
    }

    /// Deletes ephemerals whose owner is not a live session (after recovery), without a txn.
    pub fn remove_orphan_ephemerals(&mut self, live: &HashSet<i64>) -> usize {
        let dead: Vec<i64> =
            self.ephemerals.keys().filter(|s| !live.contains(s)).copied().collect();
        let mut n = 0;
        for s in dead {
            for p in self.ephemerals_of(s) {
                let mut ignored = Vec::new();
                let zxid = self.nodes.get(&p).map_or(0, |node| node.stat.czxid);
                // Deleting without a txn must not move the parent's pzxid forward.
                let parent_pzxid =
                    parent_of(&p).and_then(|pp| self.nodes.get(pp)).map(|n| n.stat.pzxid);
                self.delete(&p, zxid.min(parent_pzxid.unwrap_or(0)), &mut ignored);
                n += 1;
            }
            self.ephemerals.remove(&s);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::txn::{CreateContainerTxn, CreateTxn, DeleteTxn, SetAclTxn, SetDataTxn};

    /// Found by the `snapshot` fuzz target: a snapshot whose ACL cache uses reference
    /// i64::MAX overflowed the next reference (a panic in debug builds); one listing -1 would
    /// have redefined OPEN_ACL_UNSAFE.
    #[test]
    fn loaded_acl_references_at_the_extremes_stay_distinct() {
        let crash: Vec<u8> = [
            "5a4b534e00000002ffffffffffffffff0000000000000004000100000a00",
            "0000000000000000000000000600ffffffff7fffffffffffffffffffffff",
            "ffffffffffffffffffffffff",
        ]
        .concat()
        .as_bytes()
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect();
        let path = std::path::Path::new("crash");
        let mut reader =
            crate::persistence::snapshot::SnapshotReader::from_bytes(path, crash).unwrap();
        reader.sessions().unwrap();
        let loaded = reader.acl_cache().unwrap();
        assert!(loaded.iter().any(|(r, _)| *r == i64::MAX), "{loaded:?}");
        let mut cache = AclCache::default();
        for (r, acl) in loaded {
            cache.insert_loaded(r, acl);
        }
        let mut refs: Vec<i64> = cache.entries().iter().map(|(r, _)| *r).collect();
        let fresh = cache.add(&[Acl::new(1, "digest", "u:x")]);
        assert!(fresh != -1 && !refs.contains(&fresh), "{fresh} in {refs:?}");
        refs.push(fresh);
        let again = cache.add(&[Acl::new(2, "digest", "u:x")]);
        assert!(again != -1 && !refs.contains(&again), "{again} in {refs:?}");

        let mut cache = AclCache::default();
        cache.insert_loaded(-1, Acl::read_unsafe());
        assert_eq!(*cache.get(-1), Acl::open_unsafe());
        assert!(cache.is_empty());
    }

    fn hdr(zxid: i64, ty: OpCode) -> TxnHeader {
        TxnHeader { client_id: 0x42, cxid: 1, zxid, time: 1000 + zxid, txn_type: ty.code() }
    }

    fn create(path: &str, ephemeral: bool, parent_cversion: i32) -> Txn {
        Txn::Create(CreateTxn {
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral,
            parent_cversion,
        })
    }

    #[test]
    fn fresh_tree_matches_captured_stats() {
        let t = DataTree::new(false);
        let root = t.stat("/").unwrap();
        assert_eq!((root.num_children, root.cversion), (1, -1));
        let zk = t.stat("/zookeeper").unwrap();
        assert_eq!((zk.num_children, zk.cversion), (2, -2));
        let cfg = t.node("/zookeeper/config").unwrap();
        assert_eq!(*t.acl_of(cfg), Acl::read_unsafe());
        assert_eq!(t.stat("/zookeeper/config").unwrap().aversion, -1);
        assert_eq!(t.node_count(), 4);
    }

    #[test]
    fn create_updates_parent_and_fires_watches() {
        let mut t = DataTree::new(false);
        let (r, trig) = t.apply(&hdr(1, OpCode::Create), &create("/a", false, 1));
        assert_eq!(r.err, ErrorCode::Ok);
        assert_eq!(r.path, "/a");
        let s = r.stat.unwrap();
        assert_eq!((s.czxid, s.mzxid, s.pzxid, s.ctime, s.version), (1, 1, 1, 1001, 0));
        assert_eq!(t.stat("/").unwrap().cversion, 0);
        assert_eq!(t.stat("/").unwrap().pzxid, 1);
        let got: Vec<(EventType, &str)> = trig.iter().map(|t| (t.event, t.path.as_str())).collect();
        assert_eq!(
            got,
            vec![(EventType::NodeCreated, "/a"), (EventType::NodeChildrenChanged, "/")]
        );
        assert_eq!(t.last_processed_zxid, 1);
    }

    #[test]
    fn replayed_create_of_existing_node_still_bumps_parent() {
        let mut t = DataTree::new(false);
        let _ = t.apply(&hdr(1, OpCode::Create), &create("/a", false, 1));
        let (r, _) = t.apply(&hdr(2, OpCode::Create), &create("/a", false, 2));
        assert_eq!(r.err, ErrorCode::NodeExists);
        assert_eq!(t.node("/").unwrap().stat.cversion, 2);
        assert_eq!(t.node("/").unwrap().stat.pzxid, 2);
    }

    #[test]
    fn delete_set_data_set_acl() {
        let mut t = DataTree::new(false);
        let _ = t.apply(&hdr(1, OpCode::Create), &create("/a", false, 1));
        let set = Txn::SetData(SetDataTxn { path: "/a".into(), data: None, version: 1 });
        let (r, trig) = t.apply(&hdr(2, OpCode::SetData), &set);
        let s = r.stat.unwrap();
        assert_eq!((s.version, s.mzxid, s.data_length), (1, 2, 0));
        assert_eq!(trig[0].event, EventType::NodeDataChanged);
        let acl = Txn::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::read_unsafe(), version: 1 });
        let (r, trig) = t.apply(&hdr(3, OpCode::SetAcl), &acl);
        assert_eq!(r.stat.unwrap().aversion, 1);
        assert!(trig.is_empty());
        assert_eq!(t.acl_cache().len(), 1);
        let del = Txn::Delete(DeleteTxn { path: "/a".into() });
        let (r, trig) = t.apply(&hdr(4, OpCode::Delete), &del);
        assert_eq!(r.err, ErrorCode::Ok);
        assert_eq!(trig.len(), 2);
        assert!(t.node("/a").is_none());
        // Delete does not change the stored cversion, so the client view goes back to -1.
        assert_eq!(t.stat("/").unwrap().cversion, 1);
        assert_eq!(t.stat("/").unwrap().pzxid, 4);
        assert_eq!(t.acl_cache().len(), 1, "/zookeeper/config still holds READ_ACL_UNSAFE");
    }

    #[test]
    fn close_session_deletes_its_ephemerals() {
        let mut t = DataTree::new(false);
        let _ = t.apply(&hdr(1, OpCode::Create), &create("/e", true, 1));
        assert_eq!(t.ephemerals_of(0x42), vec!["/e".to_string()]);
        assert_eq!(t.stat("/e").unwrap().ephemeral_owner, 0x42);
        let close = Txn::CloseSession(Some(vec!["/e".into()]));
        let (_, trig) = t.apply(&hdr(2, OpCode::CloseSession), &close);
        assert!(t.node("/e").is_none());
        assert_eq!((trig[0].event, trig[0].path.as_str()), (EventType::NodeDeleted, "/e"));
        assert_eq!(t.ephemeral_count(), 0);
    }

    #[test]
    fn failed_multi_applies_nothing() {
        let mut t = DataTree::new(false);
        let multi = Txn::Multi(vec![
            SubTxn { op: 1, txn: create("/m", false, 1) },
            SubTxn { op: -1, txn: Txn::Error(-110) },
        ]);
        let (r, trig) = t.apply(&hdr(1, OpCode::Multi), &multi);
        assert!(t.node("/m").is_none());
        assert!(trig.is_empty());
        assert_eq!(r.multi, vec![MultiResult::Error(0), MultiResult::Error(-110)]);
    }

    #[test]
    fn multi_results_follow_the_logged_type() {
        let mut t = DataTree::new(false);
        let container = Txn::CreateContainer(CreateContainerTxn {
            path: "/c".into(),
            data: None,
            acl: Acl::open_unsafe(),
            parent_cversion: 2,
        });
        let multi = Txn::Multi(vec![
            SubTxn { op: OpCode::Create2.code(), txn: create("/m", false, 1) },
            SubTxn { op: OpCode::CreateContainer.code(), txn: container },
        ]);
        let (r, _) = t.apply(&hdr(1, OpCode::Multi), &multi);
        assert_eq!(r.multi[0], MultiResult::Create("/m".into()));
        assert!(matches!(&r.multi[1], MultiResult::Create2(p, s) if p == "/c" && s.czxid == 1));
    }

    #[test]
    fn node_kinds_and_client_owner() {
        assert_eq!(NodeKind::from_owner(CONTAINER_OWNER, false), NodeKind::Container);
        let ttl = NodeKind::Ttl(500).owner();
        assert_eq!(NodeKind::from_owner(ttl, true), NodeKind::Ttl(500));
        assert_eq!(NodeKind::from_owner(ttl, false), NodeKind::Ephemeral(ttl));
        let mut t = DataTree::new(true);
        let c = Txn::CreateTtl(crate::jute::txn::CreateTtlTxn {
            path: "/t".into(),
            data: None,
            acl: Acl::open_unsafe(),
            parent_cversion: 1,
            ttl: 500,
        });
        let _ = t.apply(&hdr(1, OpCode::CreateTtl), &c);
        assert_eq!(t.stat("/t").unwrap().ephemeral_owner, 0);
        assert_eq!(t.ttl_nodes().count(), 1);
    }

    #[test]
    fn counting_and_preorder() {
        let mut t = DataTree::new(false);
        let _ = t.apply(&hdr(1, OpCode::Create), &create("/a", false, -1));
        let _ = t.apply(&hdr(2, OpCode::Create), &create("/a/b", false, -1));
        assert_eq!(t.all_children_number("/"), Some(5));
        assert_eq!(t.all_children_number("/a"), Some(1));
        let order = t.paths_preorder();
        assert_eq!(order[0], "/");
        let a = order.iter().position(|p| p == "/a").unwrap();
        let ab = order.iter().position(|p| p == "/a/b").unwrap();
        assert!(a < ab);
        assert_eq!(order.len(), 6);
    }
}
