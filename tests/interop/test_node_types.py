"""Ephemeral, sequential, container and TTL nodes.

kazoo has no API for containers or TTL nodes, so those tests send createContainer (19) and
createTTL (21) as raw records on a kazoo session (support.CreateContainer / CreateTTL).
"""

import re
import threading

import pytest
from kazoo.exceptions import BadArgumentsError, NoChildrenForEphemeralsError
from kazoo.protocol.states import EventType
from kazoo.security import OPEN_ACL_UNSAFE

from support import WAIT_S, CreateContainer, CreateTTL, call, wait_until

TTL_FLAGS = 5
TTL_SEQUENTIAL_FLAGS = 6


def test_ephemeral_is_owned_by_the_session(zk, base):
    path = zk.create(f"{base}/e", b"mine", ephemeral=True)
    stat = zk.exists(path)
    assert stat.ephemeralOwner == zk.client_id[0]
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(f"{path}/child")


def test_ephemeral_goes_away_when_its_session_closes(make_client, zk, base):
    owner = make_client()
    path = owner.create(f"{base}/e", ephemeral=True)
    deleted = threading.Event()

    def watch(event):
        if event.type == EventType.DELETED:
            deleted.set()

    assert zk.exists(path, watch=watch) is not None
    owner.stop()
    assert deleted.wait(WAIT_S), "no NodeDeleted after the owner closed its session"
    assert zk.exists(path) is None
    assert zk.get_children(base) == []


def test_ephemerals_are_gone_once_close_session_is_answered(make_client, zk, base):
    """closeSession is answered only after its txn deleted the ephemerals, so a read issued
    after kazoo's stop() returns cannot see them."""
    for round_ in range(5):
        owner = make_client()
        paths = [
            owner.create(f"{base}/r{round_}-e", ephemeral=True, sequence=True) for _ in range(3)
        ]
        owner.stop()
        assert [zk.exists(p) for p in paths] == [None, None, None]


def test_makepath_with_ephemeral_makes_persistent_parents(zk, base):
    zk.create(f"{base}/p/q/e", ephemeral=True, makepath=True)
    assert zk.exists(f"{base}/p/q").ephemeralOwner == 0
    assert zk.exists(f"{base}/p/q/e").ephemeralOwner == zk.client_id[0]


def test_sequential_names_use_the_parent_counter(zk, base):
    first = zk.create(f"{base}/s-", sequence=True)
    second = zk.create(f"{base}/s-", sequence=True)
    assert first == f"{base}/s-0000000000"
    assert second == f"{base}/s-0000000001"
    zk.create(f"{base}/plain")  # a plain create also advances the counter
    zk.delete(f"{base}/plain")  # deletes do not
    eph = zk.create(f"{base}/e-", ephemeral=True, sequence=True)
    assert eph == f"{base}/e-0000000003"
    assert zk.exists(eph).ephemeralOwner == zk.client_id[0]
    assert sorted(zk.get_children(base)) == ["e-0000000003", "s-0000000000", "s-0000000001"]


def test_sequential_suffix_formats_ten_digits(zk, base):
    names = [zk.create(f"{base}/n", sequence=True) for _ in range(12)]
    assert all(re.fullmatch(rf"{base}/n\d{{10}}", n) for n in names)
    assert names[-1] == f"{base}/n0000000011"


def test_container_has_no_visible_owner(zk, base):
    path, stat = call(zk, CreateContainer(f"{base}/c", b"box", OPEN_ACL_UNSAFE, 4))
    assert path == f"{base}/c"
    assert stat.ephemeralOwner == 0
    assert stat.version == 0
    assert zk.get(path) == (b"box", stat)
    zk.create(f"{path}/child", ephemeral=True)
    assert zk.get_children(path) == ["child"]


def test_ttl_node_create_and_stat(zk, base):
    path, stat = call(zk, CreateTTL(f"{base}/t", b"ttl", OPEN_ACL_UNSAFE, TTL_FLAGS, 60_000))
    assert path == f"{base}/t"
    assert stat.ephemeralOwner == 0
    assert zk.exists(path) == stat
    seq, _ = call(zk, CreateTTL(f"{base}/ts-", b"", OPEN_ACL_UNSAFE, TTL_SEQUENTIAL_FLAGS, 60_000))
    assert seq == f"{base}/ts-0000000001"
    zk.create(f"{path}/child")  # TTL nodes may have children


@pytest.mark.parametrize("ttl", [0, -5, 1 << 40])
def test_ttl_out_of_range_is_bad_arguments(zk, base, ttl):
    with pytest.raises(BadArgumentsError):
        call(zk, CreateTTL(f"{base}/t", b"", OPEN_ACL_UNSAFE, TTL_FLAGS, ttl))
    assert zk.exists(f"{base}/t") is None


def test_ttl_opcode_with_non_ttl_flags_is_bad_arguments(zk, base):
    with pytest.raises(BadArgumentsError):
        call(zk, CreateTTL(f"{base}/t", b"", OPEN_ACL_UNSAFE, 0, 1000))


def test_reaper_deletes_used_containers_and_expired_ttl_nodes(zk, zk_server, base):
    """One wait covers both reaper rules (rzk's interval is 60 s)."""
    used = f"{base}/used-container"
    call(zk, CreateContainer(used, b"", OPEN_ACL_UNSAFE, 4))
    zk.create(f"{used}/child")
    zk.delete(f"{used}/child")
    unused = f"{base}/unused-container"
    call(zk, CreateContainer(unused, b"", OPEN_ACL_UNSAFE, 4))
    short = f"{base}/short-ttl"
    call(zk, CreateTTL(short, b"", OPEN_ACL_UNSAFE, TTL_FLAGS, 100))
    parent = f"{base}/ttl-with-child"
    call(zk, CreateTTL(parent, b"", OPEN_ACL_UNSAFE, TTL_FLAGS, 100))
    zk.create(f"{parent}/child")
    long_lived = f"{base}/long-ttl"
    call(zk, CreateTTL(long_lived, b"", OPEN_ACL_UNSAFE, TTL_FLAGS, 3_600_000))

    wait_until(
        lambda: zk.exists(used) is None and zk.exists(short) is None,
        timeout=zk_server.reap_timeout_s,
        what="the used container and the expired TTL node to be reaped",
    )
    assert zk.exists(unused) is not None, "a container that never had a child must stay"
    assert zk.exists(parent) is not None, "a TTL node with children must stay"
    assert zk.exists(long_lived) is not None, "an unexpired TTL node must stay"
