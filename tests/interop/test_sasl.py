"""kazoo's SASL DIGEST-MD5 tests (kazoo/tests/test_sasl.py, legacy and sasl_options forms)
against this suite's server, whose JAAS `Server` section is kazoo's harness's (users `super`
and `jaasuser`): a SASL-authenticated client owns a node with a `sasl` ACL, and a wrong
password gets AuthFailedError (the server answers AUTHFAILED and closes)."""

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl

import support

USER, PASSWORD = "jaasuser", "jaas_password"


def sasl_client(zk_server, **kwargs):
    return KazooClient(hosts=zk_server.client_hosts, timeout=5, **kwargs)


@pytest.mark.parametrize("form", ["sasl_options", "legacy"])
def test_connect_sasl_auth(zk_server, zk, base, form):
    if form == "legacy":
        client = sasl_client(zk_server, auth_data=[("sasl", f"{USER}:{PASSWORD}")])
    else:
        options = {"mechanism": "DIGEST-MD5", "username": USER, "password": PASSWORD}
        client = sasl_client(zk_server, sasl_options=options)
    client.start(timeout=support.WAIT_S)
    try:
        path = f"{base}/sasl-{form}"
        zk.ensure_path(base)
        client.create(path, b"mine", acl=(make_acl("sasl", credential=USER, all=True),))
        assert client.get(path)[0] == b"mine"
        with pytest.raises(NoAuthError):
            zk.get(path)
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize("form", ["sasl_options", "legacy"])
def test_invalid_sasl_auth(zk_server, zk, base, form):
    """The server answers AUTHFAILED and closes the connection. (kazoo 2.11 then
    reconnects without SASL instead of raising AuthFailedError from start(), against Apache
    3.8 as against rzk, and fails later calls with AuthFailedError; kazoo's own test expects
    the raise from start().) The client never reads a node only jaasuser may read."""
    zk.ensure_path(base)
    path = f"{base}/only-jaasuser-{form}"
    owner = sasl_client(
        zk_server, sasl_options={"mechanism": "DIGEST-MD5", "username": USER, "password": PASSWORD}
    )
    owner.start(timeout=support.WAIT_S)
    owner.create(path, b"x", acl=(make_acl("sasl", credential=USER, all=True),))
    owner.stop()
    owner.close()
    if form == "legacy":
        client = sasl_client(zk_server, auth_data=[("sasl", f"{USER}:badpassword")])
    else:
        options = {"mechanism": "DIGEST-MD5", "username": USER, "password": "wrong"}
        client = sasl_client(zk_server, sasl_options=options)
    try:
        try:
            client.start(timeout=support.WAIT_S)
        except AuthFailedError:
            return
        # Either way the client is not jaasuser: kazoo now fails its calls with
        # AuthFailedError, or the server refuses the node.
        with pytest.raises((AuthFailedError, NoAuthError)):
            client.get(path)
    finally:
        client.stop()
        client.close()
