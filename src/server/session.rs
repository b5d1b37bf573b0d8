//! Session tracker core (ZooKeeper's `SessionTrackerImpl` + `ExpiryQueue`): session ids,
//! passwords, timeouts and tick-rounded expiry buckets (data-model.md §9).
//!
//! Pure: time is always an argument (`now_ms`, milliseconds on the caller's monotonic clock),
//! there is no thread or clock here. The server shares one tracker behind a mutex between the
//! connection thread (create, touch), the prep stage (closing checks) and the expiry thread.

use std::collections::{BTreeMap, BTreeSet};

use crate::fasthash::FastMap;

use crate::proto::ErrorCode;

/// One tracked session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Timeout stored with the session (negotiated at creation), ms.
    pub timeout_ms: i32,
    /// Bucket (ms) at which it expires unless touched.
    pub expire_at_ms: u64,
    /// Being closed: further requests get SESSIONEXPIRED.
    pub closing: bool,
    /// The quorum member whose client connection holds the session (leader only).
    pub owner: Option<u64>,
}

/// The tracker.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    tick_ms: u64,
    sessions: FastMap<i64, Session>,
    buckets: BTreeMap<u64, BTreeSet<i64>>,
    next_id: i64,
    /// A learner's touch table: sessions touched since the last ping to the leader.
    touched: Option<FastMap<i64, i32>>,
}

/// The first session id of a server: `((time_ms << 24) >>> 8) | (server_id << 56)`.
pub fn initial_session_id(server_id: u8, time_ms: u64) -> i64 {
    let next = (((time_ms as i64) << 24) as u64 >> 8) as i64;
    let id = next | ((server_id as i64) << 56);
    if id == i64::MIN {
        id + 1
    } else {
        id
    }
}

/// The 16-byte password of a session: `java.util.Random(id ^ 0xB3415C00).nextBytes(16)`.
pub fn password(session_id: i64) -> [u8; 16] {
    const MULT: i64 = 0x5DEECE66D;
    const MASK: i64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ 0xB341_5C00) ^ MULT) & MASK;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULT).wrapping_add(0xB)) & MASK;
        let r = (seed >> 16) as i32;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (r >> (8 * i)) as u8;
        }
    }
    out
}

impl SessionTracker {
    /// A tracker for `server_id` whose first id is derived from `wall_ms`.
    pub fn new(tick_ms: u64, server_id: u8, wall_ms: u64) -> SessionTracker {
        SessionTracker {
            tick_ms: tick_ms.max(1),
            sessions: FastMap::default(),
            buckets: BTreeMap::new(),
            next_id: initial_session_id(server_id, wall_ms),
            touched: None,
        }
    }

    /// Starts recording touches (a learner reports them to the leader with each ping).
    pub fn record_touches(&mut self) {
        self.touched.get_or_insert_with(FastMap::default);
    }

    /// The sessions touched since the last call, with their timeouts.
    pub fn take_touched(&mut self) -> Vec<(i64, i32)> {
        match &mut self.touched {
            Some(t) => t.drain().collect(),
            None => Vec::new(),
        }
    }

    fn bucket(&self, now_ms: u64, timeout_ms: i32) -> u64 {
        let t = now_ms + timeout_ms.max(0) as u64;
        (t / self.tick_ms + 1) * self.tick_ms
    }

    /// Allocates an id for a new session and tracks it.
    pub fn create(&mut self, timeout_ms: i32, now_ms: u64) -> i64 {
        let mut id = self.next_id;
        while self.sessions.contains_key(&id) || id == 0 {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        self.add(id, timeout_ms, now_ms);
        id
    }

    /// Tracks a session with a known id (recovery, createSession txn); a fresh full timeout.
    pub fn add(&mut self, id: i64, timeout_ms: i32, now_ms: u64) {
        let expire_at_ms = self.bucket(now_ms, timeout_ms);
        let owner = self.sessions.get(&id).and_then(|s| s.owner);
        if let Some(old) =
            self.sessions.insert(id, Session { timeout_ms, expire_at_ms, closing: false, owner })
        {
            self.unbucket(id, old.expire_at_ms);
        }
        self.buckets.entry(expire_at_ms).or_default().insert(id);
    }

    fn unbucket(&mut self, id: i64, at: u64) {
        if let Some(b) = self.buckets.get_mut(&at) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&at);
            }
        }
    }

    /// Extends a live session by `timeout_ms`; false if unknown or closing.
    pub fn touch(&mut self, id: i64, timeout_ms: i32, now_ms: u64) -> bool {
        let bucket = self.bucket(now_ms, timeout_ms);
        let Some(s) = self.sessions.get_mut(&id) else { return false };
        if s.closing {
            return false;
        }
        if let Some(t) = &mut self.touched {
            t.insert(id, timeout_ms);
        }
        let old = s.expire_at_ms;
        if bucket <= old {
            return true;
        }
        s.expire_at_ms = bucket;
        self.unbucket(id, old);
        self.buckets.entry(bucket).or_default().insert(id);
        true
    }

    /// Records which quorum member holds the session's connection (the leader's
    /// `setOwner`, on createSession and re-attach).
    pub fn set_owner(&mut self, id: i64, owner: u64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.owner = Some(owner);
        }
    }

    /// SESSIONMOVED when the session is known to be held by another member than `owner`.
    pub fn check_owner(&self, id: i64, owner: u64) -> Result<(), ErrorCode> {
        match self.sessions.get(&id).and_then(|s| s.owner) {
            Some(o) if o != owner => Err(ErrorCode::SessionMoved),
            _ => Ok(()),
        }
    }

    /// Marks a session closing (closeSession submitted).
    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    /// Forgets a session (its closeSession txn was applied).
    pub fn remove(&mut self, id: i64) {
        if let Some(s) = self.sessions.remove(&id) {
            self.unbucket(id, s.expire_at_ms);
        }
    }

    /// A session, if tracked.
    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// The prep stage's check: unknown or closing sessions get SESSIONEXPIRED.
    pub fn check(&self, id: i64) -> Result<(), ErrorCode> {
        match self.sessions.get(&id) {
            Some(s) if !s.closing => Ok(()),
            _ => Err(ErrorCode::SessionExpired),
        }
    }

    /// Sessions due at `now_ms`: marked closing and returned (the caller submits their
    /// closeSession). Expiry happens between `timeout` and `timeout + tick` after the last touch.
    pub fn expire(&mut self, now_ms: u64) -> Vec<i64> {
        let due: Vec<u64> = self.buckets.range(..=now_ms).map(|(k, _)| *k).collect();
        let mut out = Vec::new();
        for k in due {
            if let Some(ids) = self.buckets.remove(&k) {
                for id in ids {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        if !s.closing {
                            s.closing = true;
                            out.push(id);
                        }
                    }
                }
            }
        }
        out
    }

    /// When the next bucket is due.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// Every session with its timeout, sorted by id (for snapshots).
    pub fn sessions_with_timeouts(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> =
            self.sessions.iter().map(|(k, s)| (*k, s.timeout_ms)).collect();
        v.sort_unstable();
        v
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Buckets in time order with their sessions (for `dump`).
    pub fn buckets(&self) -> Vec<(u64, Vec<i64>)> {
        self.buckets.iter().map(|(k, v)| (*k, v.iter().copied().collect())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_java_random() {
        let hex: String =
            password(0x0100_000b_ac35_0002).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "dbc5dad6bae819f95d5fd3502ca0d9be");
    }

    #[test]
    fn ids_carry_server_id_and_increase() {
        let mut t = SessionTracker::new(2000, 1, 0x0a47bc);
        let a = t.create(4000, 0);
        let b = t.create(4000, 0);
        assert_eq!(a >> 56, 1);
        assert_eq!(b, a + 1);
        assert_eq!(a & 0xffff, 0);
    }

    #[test]
    fn expiry_is_tick_rounded() {
        let mut t = SessionTracker::new(2000, 1, 1);
        let id = t.create(4000, 100);
        // bucket = (4100/2000 + 1) * 2000 = 6000
        assert_eq!(t.next_expiry_ms(), Some(6000));
        assert!(t.expire(5999).is_empty());
        assert!(t.touch(id, 4000, 3000)); // moves to (7000/2000+1)*2000 = 8000
        assert!(t.expire(6000).is_empty());
        assert_eq!(t.expire(8000), vec![id]);
        assert_eq!(t.check(id), Err(ErrorCode::SessionExpired));
        assert!(!t.touch(id, 4000, 8000));
        t.remove(id);
        assert!(t.is_empty());
        assert_eq!(t.next_expiry_ms(), None);
    }

    #[test]
    fn closing_sessions_are_not_expired_twice() {
        let mut t = SessionTracker::new(1000, 1, 1);
        let id = t.create(2000, 0);
        t.set_closing(id);
        assert!(t.expire(10_000).is_empty());
        assert_eq!(t.check(12345), Err(ErrorCode::SessionExpired));
    }
}
