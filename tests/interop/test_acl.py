"""ACLs with digest, auth, ip and world schemes."""

import pytest
from kazoo.exceptions import AuthFailedError, InvalidACLError, NoAuthError
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


def test_digest_acl_needs_matching_auth(make_client, zk, base):
    path = f"{base}/secret"
    zk.add_auth("digest", "alice:pw")
    zk.create(path, b"s3cret", acl=[make_digest_acl("alice", "pw", all=True)])
    acls, _ = zk.get_acls(path)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
        (Permissions.ALL, "digest", make_digest_acl_credential("alice", "pw"))
    ]
    assert zk.get(path)[0] == b"s3cret"

    anonymous = make_client()
    with pytest.raises(NoAuthError):
        anonymous.get(path)
    with pytest.raises(NoAuthError):
        anonymous.set(path, b"x")
    with pytest.raises(NoAuthError):
        anonymous.create(f"{path}/child")

    wrong = make_client()
    wrong.add_auth("digest", "alice:wrong")  # digest auth itself always succeeds
    with pytest.raises(NoAuthError):
        wrong.get(path)

    right = make_client(auth_data=[("digest", "alice:pw")])
    assert right.get(path)[0] == b"s3cret"
    right.set(path, b"new")
    assert zk.get(path)[0] == b"new"


def test_permissions_are_checked_one_by_one(make_client, zk, base):
    path = f"{base}/p"
    zk.add_auth("digest", "owner:pw")
    acl = [make_digest_acl("owner", "pw", all=True)] + list(READ_ACL_UNSAFE)
    zk.create(path, b"public", acl=acl)
    other = make_client()
    assert other.get(path)[0] == b"public"
    assert other.get_children(path) == []
    with pytest.raises(NoAuthError):
        other.set(path, b"x")
    with pytest.raises(NoAuthError):
        other.create(f"{path}/c")
    zk.create(f"{path}/c")
    with pytest.raises(NoAuthError):
        other.delete(f"{path}/c")  # DELETE is checked on the parent
    with pytest.raises(NoAuthError):
        other.set_acls(path, OPEN_ACL_UNSAFE)


def test_create_only_acl_allows_create_but_not_read(make_client, zk, base):
    path = f"{base}/dropbox"
    zk.create(path, b"hidden", acl=[make_acl("world", "anyone", create=True)])
    other = make_client()
    other.create(f"{path}/letter", b"hi")
    with pytest.raises(NoAuthError):
        other.get(path)
    with pytest.raises(NoAuthError):
        other.get_children(path)


def test_auth_scheme_expands_to_the_session_identities(make_client, zk, base):
    path = f"{base}/mine"
    with pytest.raises(InvalidACLError):
        zk.create(path, acl=[ACL(Permissions.ALL, Id("auth", ""))])
    zk.add_auth("digest", "bob:pw")
    zk.create(path, acl=[ACL(Permissions.ALL, Id("auth", ""))])
    acls, _ = zk.get_acls(path)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
        (Permissions.ALL, "digest", make_digest_acl_credential("bob", "pw"))
    ]
    with pytest.raises(NoAuthError):
        make_client().get(path)


def test_ip_acl_matches_loopback(make_client, zk, base):
    path = f"{base}/local"
    zk.create(path, b"lo", acl=[make_acl("ip", "127.0.0.1", all=True)])
    assert make_client().get(path)[0] == b"lo"
    other = f"{base}/elsewhere"
    zk.create(other, b"far", acl=[make_acl("ip", "10.1.2.3", all=True)])
    with pytest.raises(NoAuthError):
        zk.get(other)
    zk.create(f"{base}/net", acl=[make_acl("ip", "127.0.0.0/8", read=True)])
    assert zk.get(f"{base}/net")[0] == b""


@pytest.mark.parametrize(
    "acl",
    [
        ACL(Permissions.ALL, Id("digest", "no-colon")),
        ACL(Permissions.ALL, Id("nosuchscheme", "x")),
        ACL(Permissions.ALL, Id("ip", "not-an-ip")),
    ],
    ids=["digest-without-colon", "unknown-scheme", "bad-ip"],
)
def test_invalid_acls_are_rejected(zk, base, acl):
    with pytest.raises(InvalidACLError):
        zk.create(f"{base}/x", acl=[acl])
    assert zk.exists(f"{base}/x") is None


def test_set_acls_locks_out_the_world(make_client, zk, base):
    path = f"{base}/door"
    zk.create(path, b"open")
    other = make_client()
    assert other.get(path)[0] == b"open"
    zk.set_acls(path, [make_digest_acl("carol", "pw", all=True)], version=0)
    other.sync(path)  # `other` may be on another server of an ensemble
    with pytest.raises(NoAuthError):
        other.get(path)
    other.add_auth("digest", "carol:pw")
    assert other.get(path)[0] == b"open"
    assert other.get_acls(path)[1].aversion == 1


@pytest.mark.rzk_bug(
    "exists on a node whose ACL denies READ answers NOAUTH (-102); ZooKeeper 3.8 checks no "
    "permission for exists and returns the Stat"
)
def test_exists_needs_no_permission(make_client, zk, base):
    path = f"{base}/private"
    zk.create(path, b"x", acl=[make_digest_acl("dave", "pw", all=True)])
    anonymous = make_client()
    stat = anonymous.exists(path)
    assert stat is not None
    assert stat.dataLength == 1


def test_unknown_auth_scheme_fails_the_session(make_client):
    client = make_client()
    with pytest.raises(AuthFailedError):
        client.add_auth("nosuchscheme", "whatever")
