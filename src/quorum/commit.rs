//! The commit-ordering core (ZooKeeper's `CommitProcessor`), shared by the leader and the
//! learners: which local request may go to the apply stage, and when.
//!
//! Rules (quorum-protocol.md §7; ZooKeeper's CommitProcessor and `Learner.validateSession`):
//!
//! - A write (or a sync) waits for its commit: on the leader, until the committed zxid reaches
//!   its own ([`Wait::Zxid`]); on a learner, until the leader's COMMIT of the txn with its
//!   (session, cxid) arrives ([`Wait::Txn`]), or the leader's SYNC ([`Wait::LeaderSync`]).
//!   Writes and syncs leave in the order they entered, which is the order the leader commits
//!   them (a learner forwards in order over one FIFO connection); a COMMIT that names a local
//!   write which is not the oldest one pending breaks that and is an error.
//! - A local sync on the leader waits for every txn proposed before it ([`Wait::Barrier`]).
//! - A read waits only behind its own session's outstanding writes and syncs, never behind
//!   other sessions' (so a read never overtakes its session's earlier write, and sees it).
//! - On a learner, a commit that is not a local write (another server's client, or the
//!   leader's own) goes to apply at once, in commit order, so every server applies the same
//!   sequence.
//! - A client re-attaching through a learner waits for the leader's REVALIDATE answer.
//!
//! Pure: no I/O, no clock, no threads. The shells (`leading`, `learning`) feed it and drain
//! [`CommitQueue::poll_released`] into the apply stage in order; the Zab simulation drives it
//! too. Generic over the request `R` and the committed txn `T` so that the simulation can use
//! its own types.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// What a request waits for before it may be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Nothing beyond its own session's earlier writes (reads, connection closes).
    Nothing,
    /// Leader: the commit of this zxid.
    Zxid(i64),
    /// Leader: every request before it (a local sync).
    Barrier,
    /// Learner: the leader's COMMIT of the txn of this session and cxid.
    Txn {
        /// Session id.
        session: i64,
        /// The client's xid (0 for createSession).
        cxid: i32,
    },
    /// Learner: the leader's SYNC answering a forwarded sync().
    LeaderSync,
}

/// What leaves the queue for the apply stage, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Released<R, T> {
    /// A local request, ready.
    Request(R),
    /// A local write with the txn its commit carried (learner).
    Committed(R, T),
    /// A committed txn that is no local request's (learner).
    Remote(T),
}

/// A broken ordering rule: the shell ends the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderError(pub String);

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OrderError {}

/// The queue (one per role instance).
#[derive(Debug)]
pub struct CommitQueue<R, T> {
    /// Writes and syncs in the order they entered, with their session.
    pending: VecDeque<(i64, Wait, R)>,
    /// (session, cxid) of every pending [`Wait::Txn`].
    pending_txns: HashSet<(i64, i32)>,
    /// Per session with something pending: `None` marks one of its pending writes (in
    /// order), `Some` a later request held behind it.
    held: HashMap<i64, VecDeque<Option<R>>>,
    /// Leader: every zxid up to this one is committed.
    committed: i64,
    /// Re-attaching clients by session, waiting for the leader's answer.
    revalidating: HashMap<i64, Vec<R>>,
    out: VecDeque<Released<R, T>>,
}

impl<R, T> Default for CommitQueue<R, T> {
    fn default() -> Self {
        CommitQueue {
            pending: VecDeque::new(),
            pending_txns: HashSet::new(),
            held: HashMap::new(),
            committed: i64::MIN,
            revalidating: HashMap::new(),
            out: VecDeque::new(),
        }
    }
}

impl<R, T> CommitQueue<R, T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// A local request of `session` enters.
    pub fn submit(&mut self, session: i64, wait: Wait, req: R) {
        if wait == Wait::Nothing {
            match self.held.get_mut(&session) {
                Some(q) => q.push_back(Some(req)),
                None => self.out.push_back(Released::Request(req)),
            }
            return;
        }
        if let Wait::Txn { session, cxid } = wait {
            self.pending_txns.insert((session, cxid));
        }
        self.held.entry(session).or_default().push_back(None);
        self.pending.push_back((session, wait, req));
        self.release_ready();
    }

    /// Leader: every txn up to `zxid` is committed.
    pub fn commit_through(&mut self, zxid: i64) {
        self.committed = self.committed.max(zxid);
        self.release_ready();
    }

    /// Learner: the leader committed the txn of (`session`, `cxid`). Errors when it is a local
    /// write that is not the oldest pending one.
    pub fn commit(&mut self, session: i64, cxid: i32, txn: T) -> Result<(), OrderError> {
        let key = (session, cxid);
        let head = match self.pending.front() {
            Some((_, Wait::Txn { session: s, cxid: c }, _)) => Some((*s, *c)),
            _ => None,
        };
        if head == Some(key) {
            if let Some((session, _, req)) = self.pending.pop_front() {
                self.pending_txns.remove(&key);
                self.out.push_back(Released::Committed(req, txn));
                self.release_session(session);
                self.release_ready();
            }
            return Ok(());
        }
        if self.pending_txns.contains(&key) {
            return Err(OrderError(format!(
                "COMMIT of session 0x{session:x} cxid {cxid} overtakes an older local request \
                 ({})",
                self.describe_head()
            )));
        }
        self.out.push_back(Released::Remote(txn));
        Ok(())
    }

    /// Learner: the leader's SYNC for the oldest forwarded sync().
    pub fn sync_done(&mut self) -> Result<(), OrderError> {
        match self.pending.front() {
            Some((_, Wait::LeaderSync, _)) => {
                if let Some((session, _, req)) = self.pending.pop_front() {
                    self.out.push_back(Released::Request(req));
                    self.release_session(session);
                    self.release_ready();
                }
                Ok(())
            }
            _ => Err(OrderError(format!(
                "SYNC from the leader without a pending sync ({})",
                self.describe_head()
            ))),
        }
    }

    /// Learner: a client re-attaching `session` here waits for the leader's answer.
    pub fn revalidate(&mut self, session: i64, req: R) {
        self.revalidating.entry(session).or_default().push(req);
    }

    /// Learner: the leader answered for `session`; the connections that waited.
    pub fn revalidated(&mut self, session: i64) -> Vec<R> {
        self.revalidating.remove(&session).unwrap_or_default()
    }

    /// The next request or txn for the apply stage.
    #[must_use]
    pub fn poll_released(&mut self) -> Option<Released<R, T>> {
        self.out.pop_front()
    }

    /// Writes and syncs waiting for their commit.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Leader: releases pending heads whose zxid is committed, and barriers at the head.
    fn release_ready(&mut self) {
        loop {
            let ready = match self.pending.front() {
                Some((_, Wait::Zxid(z), _)) => *z <= self.committed,
                Some((_, Wait::Barrier, _)) => true,
                _ => false,
            };
            if !ready {
                return;
            }
            if let Some((session, _, req)) = self.pending.pop_front() {
                self.out.push_back(Released::Request(req));
                self.release_session(session);
            }
        }
    }

    /// The oldest pending request of `session` left: send on what was held behind it, up to
    /// its next pending one.
    fn release_session(&mut self, session: i64) {
        let Some(q) = self.held.get_mut(&session) else { return };
        debug_assert!(matches!(q.front(), Some(None)), "the released request was pending");
        q.pop_front();
        while let Some(Some(_)) = q.front() {
            if let Some(Some(req)) = q.pop_front() {
                self.out.push_back(Released::Request(req));
            }
        }
        if q.is_empty() {
            self.held.remove(&session);
        }
    }

    fn describe_head(&self) -> String {
        match self.pending.front() {
            Some((session, wait, _)) => {
                format!("oldest pending: {wait:?} of session 0x{session:x}")
            }
            None => "nothing pending".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Q = CommitQueue<&'static str, &'static str>;

    fn drain(q: &mut Q) -> Vec<Released<&'static str, &'static str>> {
        std::iter::from_fn(|| q.poll_released()).collect()
    }

    use Released::{Committed, Remote, Request as Req};

    #[test]
    fn reads_wait_only_behind_their_own_sessions_writes() {
        let mut q = Q::new();
        q.submit(1, Wait::Txn { session: 1, cxid: 1 }, "w1");
        q.submit(1, Wait::Nothing, "r1 after w1");
        q.submit(2, Wait::Nothing, "r2");
        assert_eq!(drain(&mut q), vec![Req("r2")]);
        q.commit(1, 1, "t1").unwrap();
        assert_eq!(drain(&mut q), vec![Committed("w1", "t1"), Req("r1 after w1")]);
    }

    #[test]
    fn a_read_between_two_writes_leaves_after_the_first() {
        let mut q = Q::new();
        q.submit(1, Wait::Txn { session: 1, cxid: 1 }, "w1");
        q.submit(1, Wait::Nothing, "r");
        q.submit(1, Wait::Txn { session: 1, cxid: 2 }, "w2");
        q.submit(1, Wait::Nothing, "r'");
        q.commit(1, 1, "t1").unwrap();
        assert_eq!(drain(&mut q), vec![Committed("w1", "t1"), Req("r")]);
        q.commit(1, 2, "t2").unwrap();
        assert_eq!(drain(&mut q), vec![Committed("w2", "t2"), Req("r'")]);
    }

    #[test]
    fn remote_commits_pass_through_in_commit_order() {
        let mut q = Q::new();
        q.submit(1, Wait::Txn { session: 1, cxid: 7 }, "w");
        q.commit(9, 3, "other").unwrap();
        q.commit(1, 7, "mine").unwrap();
        assert_eq!(drain(&mut q), vec![Remote("other"), Committed("w", "mine")]);
    }

    #[test]
    fn a_commit_overtaking_an_older_local_write_is_an_error() {
        let mut q = Q::new();
        q.submit(1, Wait::Txn { session: 1, cxid: 1 }, "w1");
        q.submit(2, Wait::Txn { session: 2, cxid: 1 }, "w2");
        let e = q.commit(2, 1, "t2").unwrap_err();
        assert!(e.0.contains("session 0x2 cxid 1"), "{e}");
    }

    #[test]
    fn leader_sync_and_syncs_in_order() {
        let mut q = Q::new();
        q.submit(1, Wait::LeaderSync, "sync");
        q.submit(1, Wait::Nothing, "read after sync");
        q.submit(2, Wait::Txn { session: 2, cxid: 4 }, "w");
        assert!(drain(&mut q).is_empty());
        q.sync_done().unwrap();
        assert_eq!(drain(&mut q), vec![Req("sync"), Req("read after sync")]);
        assert!(q.sync_done().is_err());
    }

    #[test]
    fn leader_releases_by_committed_zxid_and_barriers() {
        let mut q = Q::new();
        q.submit(1, Wait::Zxid(10), "w10");
        q.submit(2, Wait::Zxid(11), "w11");
        q.submit(3, Wait::Barrier, "sync");
        q.submit(2, Wait::Nothing, "r2");
        q.submit(4, Wait::Nothing, "r4");
        assert_eq!(drain(&mut q), vec![Req("r4")]);
        q.commit_through(10);
        assert_eq!(drain(&mut q), vec![Req("w10")]);
        q.commit_through(11);
        assert_eq!(drain(&mut q), vec![Req("w11"), Req("r2"), Req("sync")]);
        // A commit that came before its request entered releases it at once.
        q.commit_through(12);
        q.submit(5, Wait::Zxid(12), "w12");
        assert_eq!(drain(&mut q), vec![Req("w12")]);
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn revalidations_wait_per_session() {
        let mut q = Q::new();
        q.revalidate(5, "c1");
        q.revalidate(5, "c2");
        q.revalidate(6, "c3");
        assert_eq!(q.revalidated(5), vec!["c1", "c2"]);
        assert!(q.revalidated(5).is_empty());
        assert_eq!(q.revalidated(6), vec!["c3"]);
    }
}
