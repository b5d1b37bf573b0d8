"""Less travelled corners a client library relies on: pipelining, chroot, path validation,
getACL visibility, special nodes, multi-identity auth, oversized requests."""

import threading

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    ConnectionLoss,
    InvalidACLError,
    NoAuthError,
    NoNodeError,
    NodeExistsError,
)
from kazoo.protocol.serialization import Create2, Exists, GetData
from kazoo.security import (
    ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

from support import WAIT_S, GetAllChildrenNumber, GetEphemerals, call, wait_until


def test_pipelined_requests_are_answered_in_order(zk, base):
    """kazoo matches replies to requests by xid and fails on any reordering."""
    creates = [zk.create_async(f"{base}/n{i:04}", str(i).encode()) for i in range(300)]
    dup = zk.create_async(f"{base}/n0000")
    gets = [zk.get_async(f"{base}/n{i:04}") for i in range(0, 300, 7)]
    paths = [r.get(timeout=WAIT_S) for r in creates]
    assert paths == [f"{base}/n{i:04}" for i in range(300)]
    with pytest.raises(NodeExistsError):
        dup.get(timeout=WAIT_S)
    assert [r.get(timeout=WAIT_S)[0] for r in gets] == [str(i).encode() for i in range(0, 300, 7)]
    assert len(zk.get_children(base)) == 300


def test_many_children_and_large_listing(zk, base):
    t = zk.transaction()
    for i in range(500):
        t.create(f"{base}/child-with-a-rather-long-name-{i:05}")
    assert all(isinstance(r, str) for r in t.commit())
    children, stat = zk.get_children(base, include_data=True)
    assert len(children) == 500 == stat.numChildren
    assert stat.cversion == 500


def test_chroot_client_sees_relative_paths(make_client, zk_server, zk, base):
    rooted = make_client(hosts=f"{zk_server.hosts}{base}")
    assert rooted.create("/inside", b"x") == "/inside"
    assert zk.get(f"{base}/inside")[0] == b"x"
    events = []
    fired = threading.Event()
    rooted.get_children("/", watch=lambda e: (events.append(e), fired.set()))
    zk.create(f"{base}/second")
    assert fired.wait(WAIT_S)
    assert events[0].path == "/"
    assert sorted(rooted.get_children("/")) == ["inside", "second"]


# Sent as raw Create2 records: kazoo itself normalises "//" and a trailing "/" away.
@pytest.mark.parametrize(
    "suffix, error",
    [
        ("/d//x", NoNodeError),  # the parent "<base>/d/" does not exist
        ("/d/x/", NoNodeError),
        ("/d/./x", NoNodeError),
        ("/d/../x", NoNodeError),
        ("/d/.", BadArgumentsError),
        ("/d/\u0001", BadArgumentsError),
        ("/d/\u007f", BadArgumentsError),
        ("/d/\u0085", BadArgumentsError),
        ("/d/\uf000", BadArgumentsError),
        ("/d/\ufff0", BadArgumentsError),
    ],
    ids=["double-slash", "trailing-slash", "dot", "dotdot", "dot-last", "c0", "del", "c1",
         "private-use", "specials"],
)
def test_invalid_create_paths_get_zookeepers_error_codes(zk, base, suffix, error):
    zk.create(f"{base}/d")
    with pytest.raises(error):
        call(zk, Create2(f"{base}{suffix}", b"", OPEN_ACL_UNSAFE, 0))
    with pytest.raises(InvalidACLError):  # the ACL is checked before the path
        call(zk, Create2(f"{base}{suffix}", b"", [], 0))
    assert zk.get_children(f"{base}/d") == []


def test_relative_path_is_bad_arguments(zk):
    with pytest.raises(BadArgumentsError):
        call(zk, Create2("relative", b"", OPEN_ACL_UNSAFE, 0))


def test_reads_do_not_validate_paths_except_exists_nul(zk, base):
    zk.create(f"{base}/d")
    with pytest.raises(BadArgumentsError):
        call(zk, Exists(f"{base}/d/x\u0000y", None))
    with pytest.raises(NoNodeError):
        call(zk, GetData(f"{base}/d/x\u0000y", None))
    assert call(zk, Exists(f"{base}//d", None)) is None
    with pytest.raises(NoNodeError):
        call(zk, GetData("no-slash", None))


def test_sequential_create_may_end_with_slash(zk, base):
    zk.create(f"{base}/dir")
    path, _ = call(zk, Create2(f"{base}/dir/", b"", OPEN_ACL_UNSAFE, 2))
    assert path == f"{base}/dir/0000000000"


def test_get_acls_needs_read_or_admin(make_client, zk, base):
    zk.add_auth("digest", "frank:pw")
    private = f"{base}/private"
    zk.create(private, acl=[make_digest_acl("frank", "pw", all=True)])
    anonymous = make_client()
    anonymous.sync(base)  # it may be on another server of an ensemble
    with pytest.raises(NoAuthError):
        anonymous.get_acls(private)
    readable = f"{base}/readable"
    zk.create(readable, acl=[make_digest_acl("frank", "pw", all=True)] + list(READ_ACL_UNSAFE))
    anonymous.sync(base)
    acls, _ = anonymous.get_acls(readable)
    ids = sorted((a.id.scheme, a.id.id, a.perms) for a in acls)
    # Without ADMIN the digest hash is masked.
    assert ids == [("digest", "frank:x", Permissions.ALL), ("world", "anyone", Permissions.READ)]
    acls, _ = zk.get_acls(readable)
    assert ("digest", make_digest_acl_credential("frank", "pw")) in {
        (a.id.scheme, a.id.id) for a in acls
    }


def test_any_of_several_identities_grants_access(make_client, zk, base):
    path = f"{base}/two-keys"
    zk.add_auth("digest", "gina:pw")
    zk.create(
        path,
        b"x",
        acl=[make_digest_acl("gina", "pw", all=True), make_digest_acl("hank", "pw", read=True)],
    )
    other = make_client()
    other.add_auth("digest", "nobody:pw")
    other.add_auth("digest", "hank:pw")
    assert other.get(path)[0] == b"x"
    with pytest.raises(NoAuthError):
        other.set(path, b"y")


def test_digest_password_may_contain_colons(make_client, zk, base):
    path = f"{base}/colon"
    zk.create(path, b"x", acl=[make_digest_acl("ivy", "pa:ss", all=True)])
    other = make_client(auth_data=[("digest", "ivy:pa:ss")])
    assert other.get(path)[0] == b"x"


def test_world_acl_must_name_anyone(zk, base):
    with pytest.raises(InvalidACLError):
        zk.create(f"{base}/x", acl=[ACL(Permissions.ALL, Id("world", "someone"))])
    zk.create(f"{base}/y", acl=[make_acl("world", "anyone", read=True, write=True)])


def test_special_nodes(zk):
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]
    assert zk.get("/zookeeper/config")[0] == b""
    acls, acl_stat = zk.get_acls("/zookeeper/config")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
        (Permissions.READ, "world", "anyone")
    ]
    assert acl_stat.aversion == -1
    with pytest.raises(NoAuthError):
        zk.set("/zookeeper/config", b"x")
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper/config")


@pytest.mark.parametrize("excess", [0, 1, 1025])
def test_request_size_limit_is_jute_maxbuffer(zk, base, excess):
    """A request frame of exactly jute.maxbuffer (1,048,575) bytes is accepted; one byte more
    and the server drops the connection (kazoo: ConnectionLoss), the session survives."""
    path = f"{base}/big"
    # Create frame: xid, type, path, data, one world:anyone ACL, flags = 47 + path + data.
    size = 1_048_575 - 47 - len(path.encode()) + excess
    if excess == 0:
        zk.create(path, b"x" * size)
        assert zk.exists(path).dataLength == size
        assert len(zk.get(path)[0]) == size
        return
    session_id = zk.client_id[0]
    with pytest.raises(ConnectionLoss):
        zk.create(path, b"x" * size)
    wait_until(lambda: zk.connected, what="kazoo to reconnect")
    assert zk.client_id[0] == session_id
    assert zk.retry(zk.exists, path) is None


def test_server_version_via_envi(zk):
    version = zk.server_version()
    assert isinstance(version, tuple) and len(version) >= 3
    assert version >= (3, 5, 0)


def test_get_ephemerals_lists_the_sessions_own_by_prefix(make_client, zk, base):
    zk.create(f"{base}/t/a/e2", ephemeral=True, makepath=True)
    zk.create(f"{base}/t/e1", ephemeral=True)
    zk.create(f"{base}/tx", ephemeral=True)
    make_client().create(f"{base}/t/other", ephemeral=True)  # another session's
    expected = sorted([f"{base}/t/a/e2", f"{base}/t/e1", f"{base}/tx"])
    assert sorted(call(zk, GetEphemerals(f"{base}/t"))) == expected  # a string prefix
    assert sorted(call(zk, GetEphemerals(f"{base}/t/"))) == expected[:2]
    assert call(zk, GetEphemerals(f"{base}/t/a")) == [f"{base}/t/a/e2"]
    assert call(zk, GetEphemerals(f"{base}/none")) == []
    assert sorted(call(zk, GetEphemerals("/"))) == expected


def test_get_all_children_number_counts_descendants(zk, base):
    zk.create(f"{base}/t/a/b", makepath=True)
    zk.create(f"{base}/t/c")
    assert call(zk, GetAllChildrenNumber(f"{base}/t")) == 3
    assert call(zk, GetAllChildrenNumber(f"{base}/t/c")) == 0
    with pytest.raises(NoNodeError):
        call(zk, GetAllChildrenNumber(f"{base}/missing"))
