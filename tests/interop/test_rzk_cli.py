"""rzk's own client (rzk-cli on the rzk client library) with TLS and SASL, against the server
under test and against Apache ZooKeeper 3.8 configured the same way (kazoo's harness: JKS
stores with X.509 v1 certificates, a JAAS Server section with DIGEST-MD5 users)."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from kazoo.exceptions import NoAuthError

import support
from conftest import REPO_ROOT, ZOOKEEPER_JAR, start_server

JAAS_CLIENT = (
    "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
    '  username="jaasuser"\n  password="jaas_password";\n};\n'
)


def rzk_cli(hosts, *command, config=None, flags=()):
    binary = Path(os.environ.get("RZK_CLI_BIN", "target/debug/rzk-cli"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    args = [str(binary), "-server", hosts, "-timeout", "10000", *flags]
    if config is not None:
        args += ["-client-configuration", str(config)]
    return support.run_cli(args + list(command))


@pytest.fixture(scope="module")
def apache():
    if shutil.which("java") is None or not ZOOKEEPER_JAR.exists():
        pytest.fail("java and the Debian zookeeper jar are needed for the Apache oracle")
    work_dir = tempfile.mkdtemp(prefix="interop-apache-oracle-")
    server = start_server("apache", work_dir)
    yield server
    server.stop()
    shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(params=["under-test", "apache"])
def server(request, zk_server):
    return zk_server if request.param == "under-test" else request.getfixturevalue("apache")


def tls_properties(server, path):
    tls = server.tls_dir
    path.write_text(
        "zookeeper.client.secure=true\n"
        f"zookeeper.ssl.keyStore.location={tls / 'client-keystore.jks'}\n"
        "zookeeper.ssl.keyStore.password=apassword\n"
        f"zookeeper.ssl.trustStore.location={tls / 'truststore.jks'}\n"
        "zookeeper.ssl.trustStore.password=apassword\n"
    )
    return path


def test_rzk_cli_over_tls(server, tmp_path, request):
    """TLS with a client certificate (JKS stores; v1 certificates, hostname checked against
    the CN): the subject is the x509 identity, and a plain client cannot read the node."""
    config = tls_properties(server, tmp_path / "client.properties")
    path = f"/rzk-cli-tls-{request.node.callspec.id}-{os.getpid()}"
    hosts = server.secure_hosts
    assert rzk_cli(hosts, "create", path, "tls", "x509:CN=client:cdrwa", config=config) == (
        0,
        [f"Created {path}"],
    )
    assert rzk_cli(hosts, "get", path, config=config) == (0, ["tls"])
    status, lines = rzk_cli(server.hosts, "get", path)
    assert status == 1 and any("Insufficient permission" in l for l in lines), lines


def test_rzk_cli_with_sasl_digest(server, tmp_path, request):
    """A JAAS Client section, given as zkCli gets it (-Djava.security.auth.login.config)."""
    jaas = tmp_path / "client-jaas.conf"
    jaas.write_text(JAAS_CLIENT)
    flags = [f"-Djava.security.auth.login.config={jaas}"]
    path = f"/rzk-cli-sasl-{request.node.callspec.id}-{os.getpid()}"
    hosts = server.hosts
    assert rzk_cli(hosts, "create", path, "s", "sasl:jaasuser:cdrwa", flags=flags) == (
        0,
        [f"Created {path}"],
    )
    assert rzk_cli(hosts, "get", path, flags=flags) == (0, ["s"])
    status, lines = rzk_cli(hosts, "whoami", flags=flags)
    assert status == 0 and any("sasl" in l and "jaasuser" in l for l in lines), lines
    status, lines = rzk_cli(hosts, "get", path)
    assert status == 1 and any("Insufficient permission" in l for l in lines), lines


def test_rzk_cli_sasl_wrong_password_is_auth_failed(server, tmp_path):
    jaas = tmp_path / "client-jaas.conf"
    jaas.write_text(JAAS_CLIENT.replace("jaas_password", "wrong"))
    status, lines = rzk_cli(
        server.hosts, "ls", "/", flags=[f"-Djava.security.auth.login.config={jaas}"]
    )
    assert status == 1, lines


def test_rzk_cli_tls_and_sasl_together(server, tmp_path, request):
    config = tls_properties(server, tmp_path / "client.properties")
    jaas = tmp_path / "client-jaas.conf"
    jaas.write_text(JAAS_CLIENT)
    with open(config, "a") as f:
        f.write(f"java.security.auth.login.config={jaas}\n")
    status, lines = rzk_cli(server.secure_hosts, "whoami", config=config)
    assert status == 0, lines
    text = "\n".join(lines)
    assert "x509" in text and "CN=client" in text and "jaasuser" in text, lines
