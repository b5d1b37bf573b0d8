"""multi (kazoo's `client.transaction()`): all ops apply, or none do."""

import threading

from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType

from support import WAIT_S


def test_committed_transaction_applies_every_op_in_one_zxid(zk, base):
    zk.create(f"{base}/old", b"old")
    zk.create(f"{base}/gone")
    t = zk.transaction()
    t.check(f"{base}/old", 0)
    t.create(f"{base}/new1", b"1")
    t.create(f"{base}/new2", b"2")
    t.set_data(f"{base}/old", b"updated", version=0)
    t.delete(f"{base}/gone", version=0)
    results = t.commit()
    assert results[0] is True
    assert results[1] == f"{base}/new1"
    assert results[2] == f"{base}/new2"
    assert results[3].version == 1
    assert results[4] is True
    _, s1 = zk.get(f"{base}/new1")
    data, s_old = zk.get(f"{base}/old")
    assert data == b"updated"
    assert s1.czxid == zk.exists(f"{base}/new2").czxid == s_old.mzxid == results[3].mzxid
    assert sorted(zk.get_children(base)) == ["new1", "new2", "old"]


def test_failed_check_rolls_back_everything(zk, base):
    zk.create(f"{base}/old", b"old")
    t = zk.transaction()
    t.create(f"{base}/new", b"x")
    t.set_data(f"{base}/old", b"changed")
    t.check(f"{base}/old", 7)
    t.create(f"{base}/after")
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], RolledBackError)
    assert isinstance(results[2], BadVersionError)
    # Ops after the failing one are never tried: ZooKeeper reports RUNTIMEINCONSISTENCY (-2).
    assert isinstance(results[3], RuntimeInconsistency)
    assert zk.exists(f"{base}/new") is None
    assert zk.exists(f"{base}/after") is None
    data, stat = zk.get(f"{base}/old")
    assert (data, stat.version) == (b"old", 0)


def test_each_failure_reports_its_own_error(zk, base):
    zk.create(f"{base}/exists")
    zk.create(f"{base}/full/child", makepath=True)
    for op, expected in [
        (lambda t: t.create(f"{base}/exists"), NodeExistsError),
        (lambda t: t.delete(f"{base}/missing"), NoNodeError),
        (lambda t: t.delete(f"{base}/full"), NotEmptyError),
        (lambda t: t.check(f"{base}/missing", 0), NoNodeError),
    ]:
        t = zk.transaction()
        t.create(f"{base}/first")
        op(t)
        results = t.commit()
        assert isinstance(results[0], RolledBackError), results
        assert isinstance(results[1], expected), results
        assert zk.exists(f"{base}/first") is None


def test_later_ops_see_earlier_ops_of_the_same_transaction(zk, base):
    t = zk.transaction()
    t.create(f"{base}/p")
    t.create(f"{base}/p/c", b"child")
    t.set_data(f"{base}/p/c", b"edited", version=0)
    t.check(f"{base}/p/c", 1)
    t.delete(f"{base}/p/c")
    t.create(f"{base}/p/s-", sequence=True)
    results = t.commit()
    assert results[-1] == f"{base}/p/s-0000000001"
    assert zk.get_children(f"{base}/p") == ["s-0000000001"]


def test_transaction_fires_watches_once_committed(zk, make_client, base):
    watcher = make_client()
    zk.create(f"{base}/w", b"before")
    fired = threading.Event()
    events = []

    def on_change(event):
        events.append(event)
        fired.set()

    watcher.get(f"{base}/w", watch=on_change)
    t = zk.transaction()
    t.set_data(f"{base}/w", b"after")
    t.create(f"{base}/other")
    assert all(not isinstance(r, Exception) for r in t.commit())
    assert fired.wait(WAIT_S)
    assert [(e.type, e.path) for e in events] == [(EventType.CHANGED, f"{base}/w")]


def test_rolled_back_transaction_fires_no_watch(zk, make_client, base):
    watcher = make_client()
    zk.create(f"{base}/w", b"before")
    fired = threading.Event()
    watcher.get(f"{base}/w", watch=lambda e: fired.set())
    t = zk.transaction()
    t.set_data(f"{base}/w", b"after")
    t.check(f"{base}/w", 99)
    assert isinstance(t.commit()[1], BadVersionError)
    # A later real change proves the watch was still armed.
    zk.set(f"{base}/w", b"real")
    assert fired.wait(WAIT_S)
    assert watcher.get(f"{base}/w")[0] == b"real"


def test_empty_and_check_only_transactions(zk, base):
    assert zk.transaction().commit() == []
    t = zk.transaction()
    t.check(base, 0)
    assert t.commit() == [True]
