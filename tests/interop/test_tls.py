"""kazoo over TLS (its own test_client's SSL test, against this suite's server): the secure
client port with kazoo's harness stores (JKS, v1 certificates), a client certificate whose
subject `CN=client` is the connection's x509 identity, and a client without a certificate
refused (ssl.clientAuth defaults to need); with client.portUnification, kazoo over TLS and
plain kazoo on the same (plain) port; and the same TLS client against a server whose stores are
PEM files (ssl.keyStore.type=PEM, ssl.trustStore.type=PEM) instead of JKS."""

import shutil
import ssl
import tempfile
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

import conftest
import support


def tls_client(zk_server, with_cert=True, hosts=None):
    paths = {
        "ca": zk_server.tls_dir / "ca-cert.pem",
        "keyfile": zk_server.tls_dir / "client-key.pem",
        "certfile": zk_server.tls_dir / "client-cert.pem",
    }
    kwargs = {"ca": str(paths["ca"])}
    if with_cert:
        kwargs.update(keyfile=str(paths["keyfile"]), certfile=str(paths["certfile"]))
    hosts = hosts or zk_server.secure_hosts
    return KazooClient(hosts=hosts, use_ssl=True, verify_certs=True, **kwargs)


def test_connect_ssl(zk_server, zk, base):
    client = tls_client(zk_server)
    client.start(timeout=support.WAIT_S)
    try:
        path = f"{base}/tls"
        client.create(path, b"over tls", makepath=True)
        data, stat = client.get(path)
        assert data == b"over tls"
        # The same node through the plain port.
        assert zk.get(path)[0] == b"over tls"
    finally:
        client.stop()
        client.close()


def test_client_certificate_subject_is_an_x509_identity(zk_server, zk, base):
    client = tls_client(zk_server)
    client.start(timeout=support.WAIT_S)
    try:
        path = f"{base}/x509-only"
        acl = make_acl("x509", "CN=client", all=True)
        client.create(path, b"mine", acl=[acl], makepath=True)
        assert client.get(path)[0] == b"mine"
        with pytest.raises(NoAuthError):
            zk.get(path)
    finally:
        client.stop()
        client.close()


def test_client_without_certificate_is_refused(zk_server):
    client = tls_client(zk_server, with_cert=False)
    try:
        with pytest.raises(Exception):
            client.start(timeout=3)
    finally:
        client.stop()
        client.close()


def test_port_unification_serves_tls_and_plain_on_one_port(zk_server, zk, base):
    client = tls_client(zk_server, hosts=zk_server.unified_hosts)
    client.start(timeout=support.WAIT_S)
    try:
        path = f"{base}/unified"
        acl = make_acl("x509", "CN=client", all=True)
        client.create(path, b"tls on the plain port", acl=[acl], makepath=True)
        assert client.get(path)[0] == b"tls on the plain port"
        # The plain client on that port has no certificate, hence no x509 identity.
        with pytest.raises(NoAuthError):
            zk.get(path)
        assert "unified" in zk.get_children(base)
    finally:
        client.stop()
        client.close()


@pytest.fixture(scope="module")
def pem_server(zk_target):
    """A second server (or ensemble) of the target under test, with PEM key and trust stores."""
    work_dir = tempfile.mkdtemp(prefix=f"interop-pem-{zk_target}-")
    if zk_target == "rzk-ensemble":
        server = conftest.start_ensemble(work_dir, stores="pem")
    else:
        server = conftest.start_server(zk_target, work_dir, stores="pem")
    yield server
    server.stop()
    shutil.rmtree(work_dir, ignore_errors=True)


def test_connect_ssl_with_pem_stores(pem_server):
    client = tls_client(pem_server)
    client.start(timeout=support.WAIT_S)
    try:
        path = f"/interop/pem-{uuid.uuid4().hex[:8]}"
        acl = make_acl("x509", "CN=client", all=True)
        client.create(path, b"pem stores", acl=[acl], makepath=True)
        assert client.get(path)[0] == b"pem stores"
    finally:
        client.stop()
        client.close()
