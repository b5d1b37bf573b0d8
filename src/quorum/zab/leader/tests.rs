//! Unit tests of the Zab leader core.
use std::sync::Arc;

use super::*;

fn payload(z: i64) -> Payload {
    Arc::from(format!("txn {z:x}").into_bytes())
}

fn txns(epoch: i64, counters: std::ops::RangeInclusive<i64>) -> Vec<(i64, Payload)> {
    counters.map(|c| (make_zxid(epoch, c), payload(make_zxid(epoch, c)))).collect()
}

/// A leader of sids 1..=3 whose log ends at (1, 20) with (1, 11..=20) in memory, and a
/// follower (sid 2, last zxid `peer`) that has acked the new epoch: the core's actions.
fn leader_with_follower(peer: i64) -> (Leader, Vec<Action>) {
    let now = Instant::now();
    let qv = QuorumMaj::new([1, 2, 3].map(ServerId), [], 0, "version=0".into());
    let cfg = LeaderConfig {
        my_sid: ServerId(1),
        qv,
        tick: Duration::from_millis(100),
        init_limit: 10,
        sync_limit: 5,
        commit_log_count: 10,
    };
    let mut l = Leader::new(cfg, 1, 1, make_zxid(1, 20), txns(1, 11..=20), now);
    l.connected(7);
    l.handle_msg(7, Msg::LearnerInfo { sid: ServerId(2), accepted_epoch: 1, observer: false }, now);
    l.handle_msg(7, Msg::AckEpoch { current_epoch: 1, last_zxid: peer }, now);
    let acts = std::iter::from_fn(|| l.poll_action()).collect();
    (l, acts)
}

#[test]
fn forged_learner_info_is_refused() {
    let now = Instant::now();
    let (mut l, _) = leader_with_follower(make_zxid(1, 20));
    // A second connection claiming sid 2, which is connected.
    l.connected(8);
    l.handle_msg(8, Msg::LearnerInfo { sid: ServerId(2), accepted_epoch: 1, observer: false }, now);
    let acts: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Close(8, why) if why.contains("already connected"))),
        "{acts:?}"
    );
    // An accepted epoch at the 32-bit limit would make the next epoch wrap.
    for epoch in [MAX_EPOCH, -1, i64::MAX] {
        l.connected(9);
        l.handle_msg(
            9,
            Msg::LearnerInfo { sid: ServerId(3), accepted_epoch: epoch, observer: false },
            now,
        );
        let acts: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
        assert!(
            acts.iter().any(|a| matches!(a, Action::Close(9, why) if why.contains("out of range"))),
            "{epoch}: {acts:?}"
        );
    }
    // After two silent ticks the old connection of sid 2 is taken for dead: a new one
    // replaces it.
    let half = Duration::from_millis(50);
    let mut t = now;
    for _ in 0..5 {
        t += half;
        l.handle_timeout(t);
    }
    let _: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
    l.connected(11);
    l.handle_msg(11, Msg::LearnerInfo { sid: ServerId(2), accepted_epoch: 1, observer: false }, t);
    let acts: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
    assert!(
        acts.iter().any(|a| matches!(a, Action::Close(7, why) if why.contains("replaced"))),
        "{acts:?}"
    );
    assert!(!acts.iter().any(|a| matches!(a, Action::Close(11, _))), "{acts:?}");
    // The real sid 3 still joins.
    l.connected(10);
    l.handle_msg(
        10,
        Msg::LearnerInfo { sid: ServerId(3), accepted_epoch: 1, observer: false },
        now,
    );
    let acts: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
    assert!(!acts.iter().any(|a| matches!(a, Action::Close(10, _))), "{acts:?}");
}

fn sent(acts: &[Action]) -> Vec<Msg> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send(7, m) if !matches!(m, Msg::LeaderInfo { .. } | Msg::Ping { .. }) => {
                Some(m.clone())
            }
            _ => None,
        })
        .collect()
}

fn diff_of(acts: &[Action]) -> Vec<i64> {
    let msgs = sent(acts);
    assert_eq!(msgs.first(), Some(&Msg::Diff { zxid: make_zxid(1, 20) }), "{msgs:?}");
    assert!(matches!(msgs.last(), Some(Msg::NewLeader { .. })), "{msgs:?}");
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Proposal { zxid, payload: p } => {
                assert_eq!(p, &payload(*zxid));
                Some(*zxid)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_learner_inside_the_committed_log_gets_a_diff_without_reading_the_log() {
    let (_, acts) = leader_with_follower(make_zxid(1, 15));
    assert!(!acts.iter().any(|a| matches!(a, Action::ReadLog { .. })));
    assert_eq!(diff_of(&acts), (16..=20).map(|c| make_zxid(1, c)).collect::<Vec<_>>());
}

#[test]
fn a_learner_behind_the_committed_log_is_synced_from_the_txn_log() {
    let peer = make_zxid(1, 3);
    let (mut l, acts) = leader_with_follower(peer);
    let read = Action::ReadLog { h: 7, from: peer, to: make_zxid(1, 11) };
    assert_eq!(acts.last(), Some(&read));
    l.log_read(7, Some(txns(1, 3..=11)));
    let acts: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
    assert_eq!(diff_of(&acts), (4..=20).map(|c| make_zxid(1, c)).collect::<Vec<_>>());
    // A second answer for the same learner is ignored.
    l.log_read(7, Some(txns(1, 3..=11)));
    assert_eq!(l.poll_action(), None);
}

#[test]
fn a_log_that_cannot_sync_the_learner_means_a_snap() {
    let peer = make_zxid(1, 3);
    let mut gap = txns(1, 3..=5);
    gap.extend(txns(1, 7..=11));
    let mut new_epoch_gap = txns(1, 3..=5);
    new_epoch_gap.extend(txns(2, 2..=2));
    let cases = [
        ("no answer", None),
        ("empty", Some(vec![])),
        ("starts after the learner", Some(txns(1, 4..=11))),
        ("stops short of the committed log", Some(txns(1, 3..=10))),
        ("a gap", Some(gap)),
        ("a new epoch not starting at 1", Some(new_epoch_gap)),
    ];
    for (what, answer) in cases {
        let (mut l, _) = leader_with_follower(peer);
        l.log_read(7, answer);
        let acts: Vec<Action> = std::iter::from_fn(|| l.poll_action()).collect();
        assert_eq!(acts, vec![Action::SendSnap(7)], "{what}");
    }
}

#[test]
fn log_sync_crosses_epochs() {
    let mut t = txns(1, 3..=4);
    t.extend(txns(2, 1..=3));
    assert!(log_covers(&t, make_zxid(1, 3), make_zxid(2, 3)));
    assert!(!log_covers(&t, make_zxid(1, 2), make_zxid(2, 3)));
}
