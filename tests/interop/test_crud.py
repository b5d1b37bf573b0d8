"""Create/read/update/delete with versions, and the Stat fields each operation changes."""

import time

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.security import OPEN_ACL_UNSAFE


def test_create_returns_path_and_fresh_stat(zk, base):
    before_ms = int(time.time() * 1000)
    assert zk.create(f"{base}/a", b"hello") == f"{base}/a"
    data, stat = zk.get(f"{base}/a")
    assert data == b"hello"
    assert stat.version == 0
    assert stat.cversion == 0
    assert stat.aversion == 0
    assert stat.ephemeralOwner == 0
    assert stat.dataLength == 5
    assert stat.numChildren == 0
    assert stat.czxid == stat.mzxid == stat.pzxid
    assert stat.ctime == stat.mtime
    assert before_ms - 5000 <= stat.ctime <= int(time.time() * 1000) + 5000


def test_create2_returns_the_same_stat_as_exists(zk, base):
    path, stat = zk.create(f"{base}/a", b"xyz", include_data=True)
    assert path == f"{base}/a"
    assert zk.exists(path) == stat
    assert zk.get(path)[1] == stat


def test_empty_and_large_data_round_trip(zk, base):
    zk.create(f"{base}/empty")
    data, stat = zk.get(f"{base}/empty")
    assert data == b""
    assert stat.dataLength == 0
    big = bytes(range(256)) * 2048  # 512 KiB, below jute.maxbuffer
    zk.create(f"{base}/big", big)
    data, stat = zk.get(f"{base}/big")
    assert data == big
    assert stat.dataLength == len(big)


def test_unicode_path_and_data(zk, base):
    path = f"{base}/zürich-東京"
    zk.create(path, "grüße".encode())
    assert zk.get(path)[0] == "grüße".encode()
    assert "zürich-東京" in zk.get_children(base)


def test_set_data_checks_and_bumps_version(zk, base):
    path = f"{base}/a"
    _, created = zk.create(path, b"v0", include_data=True)
    stat = zk.set(path, b"v1", version=0)
    assert stat.version == 1
    assert stat.czxid == created.czxid
    assert stat.mzxid > created.mzxid
    assert stat.pzxid == created.pzxid
    assert stat.mtime >= created.mtime
    assert stat.ctime == created.ctime
    assert stat.dataLength == 2
    with pytest.raises(BadVersionError):
        zk.set(path, b"stale", version=0)
    assert zk.get(path)[0] == b"v1"
    assert zk.set(path, b"any", version=-1).version == 2
    assert zk.get(path) == (b"any", zk.exists(path))


def test_delete_checks_version(zk, base):
    path = f"{base}/a"
    zk.create(path)
    zk.set(path, b"x")
    with pytest.raises(BadVersionError):
        zk.delete(path, version=0)
    zk.delete(path, version=1)
    assert zk.exists(path) is None
    with pytest.raises(NoNodeError):
        zk.delete(path)


def test_error_codes_for_bad_creates_reads_and_deletes(zk, base):
    zk.create(f"{base}/a")
    with pytest.raises(NodeExistsError):
        zk.create(f"{base}/a")
    with pytest.raises(NoNodeError):
        zk.create(f"{base}/missing/child")
    with pytest.raises(NoNodeError):
        zk.get(f"{base}/missing")
    with pytest.raises(NoNodeError):
        zk.get_children(f"{base}/missing")
    with pytest.raises(NoNodeError):
        zk.set(f"{base}/missing", b"x")
    zk.create(f"{base}/a/child")
    with pytest.raises(NotEmptyError):
        zk.delete(f"{base}/a")
    assert zk.exists(f"{base}/missing") is None


def test_makepath_creates_missing_parents(zk, base):
    zk.create(f"{base}/x/y/z", b"leaf", makepath=True)
    assert zk.get(f"{base}/x/y/z")[0] == b"leaf"
    assert zk.get(f"{base}/x")[0] == b""
    assert zk.get_children(f"{base}/x") == ["y"]


def test_recursive_delete(zk, base):
    for p in ("t/a/1", "t/a/2", "t/b"):
        zk.create(f"{base}/{p}", makepath=True)
    zk.delete(f"{base}/t", recursive=True)
    assert zk.exists(f"{base}/t") is None
    assert zk.get_children(base) == []


def test_parent_stat_tracks_children(zk, base):
    parent = f"{base}/p"
    _, p0 = zk.create(parent, include_data=True)
    _, c1 = zk.create(f"{parent}/c1", include_data=True)
    zk.create(f"{parent}/c2")
    p2 = zk.exists(parent)
    assert p2.numChildren == 2
    assert p2.cversion == 2
    assert p2.pzxid > c1.czxid
    assert p2.mzxid == p0.mzxid  # children do not change the parent's data
    assert p2.version == 0
    zk.set(f"{parent}/c1", b"data")
    assert zk.exists(parent).pzxid == p2.pzxid  # setData on a child is not a child change
    zk.delete(f"{parent}/c1")
    p3 = zk.exists(parent)
    assert p3.numChildren == 1
    assert p3.cversion == 3  # client view: creations + deletions
    assert p3.pzxid > p2.pzxid
    assert sorted(zk.get_children(parent)) == ["c2"]


def test_get_children_with_stat(zk, base):
    for name in ("b", "a", "c"):
        zk.create(f"{base}/{name}")
    children, stat = zk.get_children(base, include_data=True)
    assert sorted(children) == ["a", "b", "c"]
    assert stat == zk.exists(base)
    assert stat.numChildren == 3


def test_zxids_increase_with_every_write(zk, base):
    zxids = []
    for i in range(5):
        _, stat = zk.create(f"{base}/n{i}", include_data=True)
        zxids.append(stat.czxid)
        zxids.append(zk.set(f"{base}/n{i}", b"x").mzxid)
    assert zxids == sorted(zxids)
    assert len(set(zxids)) == len(zxids)


def test_reads_see_own_writes_after_sync(zk, make_client, base):
    other = make_client()
    zk.create(f"{base}/a", b"one")
    assert other.sync(f"{base}/a") == f"{base}/a"
    assert other.get(f"{base}/a")[0] == b"one"


def test_root_and_special_nodes(zk):
    assert "zookeeper" in zk.get_children("/")
    assert zk.exists("/zookeeper") is not None
    assert zk.exists("/zookeeper/quota") is not None
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")
    with pytest.raises(BadArgumentsError):
        zk.delete("/")


def test_default_acl_and_set_acls_version(zk, base):
    path = f"{base}/a"
    zk.create(path)
    acls, stat = zk.get_acls(path)
    assert list(acls) == list(OPEN_ACL_UNSAFE)
    assert stat.aversion == 0
    stat = zk.set_acls(path, OPEN_ACL_UNSAFE, version=0)
    assert stat.aversion == 1
    assert stat.version == 0
    with pytest.raises(BadVersionError):
        zk.set_acls(path, OPEN_ACL_UNSAFE, version=0)
