"""Apache's Java CLI (org.apache.zookeeper.ZooKeeperMain, what zkCli.sh runs) against the server
under test: create/get/ls/stat/set/delete, output checked and compared with kazoo's view.

Skipped when java or the Debian zookeeper jar is missing, except in CI (CI=true), where that fails.
"""

import os
import re
import shutil

import pytest
from kazoo.exceptions import NoAuthError

import support
from conftest import ZOOKEEPER_JAR, java_classpath

JAVA = shutil.which("java")
# Outside CI a machine without Java skips these; in CI (CI=true) they run and fail.
pytestmark = pytest.mark.skipif(
    (JAVA is None or not ZOOKEEPER_JAR.exists()) and os.environ.get("CI") != "true",
    reason="java or zookeeper.jar missing",
)


def cli(zk_server, *command, jvm=(), hosts=None):
    """Runs one CLI command (extra JVM flags in `jvm`, another connect string in `hosts`);
    returns (exit status, output without the connection banner)."""
    return support.run_cli(
        [
            JAVA,
            "-XX:TieredStopAtLevel=1",  # faster start-up for a short-lived JVM
            "-XX:+UseSerialGC",
            *jvm,
            "-cp",
            java_classpath("slf4j-nop.jar"),
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            hosts or zk_server.hosts,
            *command,
        ]
    )


def stat_fields(lines):
    return dict(line.split(" = ", 1) for line in lines if " = " in line)


def test_cli_create_get_ls_stat_set_delete(zk_server, zk, base):
    path = f"{base}/cli"
    assert cli(zk_server, "create", path, "hello") == (0, [f"Created {path}"])
    assert zk.get(path)[0] == b"hello"

    assert cli(zk_server, "get", path) == (0, ["hello"])

    zk.create(f"{path}/kid")
    assert cli(zk_server, "ls", path) == (0, ["[kid]"])

    rc, lines = cli(zk_server, "stat", path)
    assert rc == 0
    fields = stat_fields(lines)
    stat = zk.exists(path)
    assert fields["cZxid"] == hex(stat.czxid)
    assert fields["mZxid"] == hex(stat.mzxid)
    assert fields["pZxid"] == hex(stat.pzxid)
    assert fields["dataVersion"] == "0"
    assert fields["aclVersion"] == "0"
    assert fields["cversion"] == "1"
    assert fields["ephemeralOwner"] == "0x0"
    assert fields["dataLength"] == "5"
    assert fields["numChildren"] == "1"
    assert re.fullmatch(r"\w{3} \w{3} +\d+ [\d:]{8} \w+ \d{4}", fields["ctime"])

    assert cli(zk_server, "set", path, "world") == (0, [])
    rc, lines = cli(zk_server, "get", "-s", path)
    assert rc == 0
    assert lines[0] == "world"
    assert stat_fields(lines[1:])["dataVersion"] == "1"

    rc, lines = cli(zk_server, "delete", path)
    assert rc != 0  # not empty
    assert any("not empty" in line.lower() for line in lines), lines
    assert cli(zk_server, "delete", f"{path}/kid") == (0, [])
    assert cli(zk_server, "delete", path) == (0, [])
    assert zk.exists(path) is None
    assert cli(zk_server, "get", path) == (1, [f"Node does not exist: {path}"])


def test_cli_ephemeral_sequential_and_acl(zk_server, zk, base):
    rc, lines = cli(zk_server, "create", "-s", f"{base}/seq-", "x")
    assert (rc, lines) == (0, [f"Created {base}/seq-0000000000"])

    # The CLI exits without closing its session, so the ephemeral outlives it until expiry.
    assert cli(zk_server, "create", "-e", f"{base}/eph", "x") == (0, [f"Created {base}/eph"])
    owner = zk.exists(f"{base}/eph").ephemeralOwner
    assert owner not in (0, zk.client_id[0])

    zk.create(f"{base}/locked", b"x")
    assert cli(zk_server, "setAcl", f"{base}/locked", "world:anyone:r") == (0, [])
    assert cli(zk_server, "getAcl", f"{base}/locked") == (0, ["'world,'anyone", ": r"])
    rc, lines = cli(zk_server, "set", f"{base}/locked", "y")
    assert rc != 0
    assert any("Insufficient permission" in line for line in lines), lines


def java_flags_tls(zk_server):
    tls = zk_server.tls_dir
    return [
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        f"-Dzookeeper.ssl.keyStore.location={tls / 'client-keystore.jks'}",
        "-Dzookeeper.ssl.keyStore.password=apassword",
        f"-Dzookeeper.ssl.trustStore.location={tls / 'truststore.jks'}",
        "-Dzookeeper.ssl.trustStore.password=apassword",
    ]


def test_cli_over_tls_with_a_client_certificate(zk_server, zk, base, tmp_path):
    """zkCli with Netty and `zookeeper.client.secure=true` on the secure port (JKS stores);
    the certificate's subject is the connection's x509 identity."""
    zk.ensure_path(base)
    path = f"{base}/cli-tls"
    flags = java_flags_tls(zk_server)
    hosts = zk_server.secure_hosts
    assert cli(zk_server, "create", path, "tls", "x509:CN=client:cdrwa", jvm=flags, hosts=hosts) == (
        0,
        [f"Created {path}"],
    )
    assert cli(zk_server, "get", path, jvm=flags, hosts=hosts) == (0, ["tls"])
    with pytest.raises(NoAuthError):
        zk.get(path)


def test_cli_with_sasl_digest(zk_server, zk, base, tmp_path):
    """zkCli with a JAAS Client section (DigestLoginModule): SASL DIGEST-MD5 as jaasuser."""
    jaas = tmp_path / "client-jaas.conf"
    jaas.write_text(
        'Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n'
        '  username="jaasuser"\n  password="jaas_password";\n};\n'
    )
    flags = [f"-Djava.security.auth.login.config={jaas}"]
    zk.ensure_path(base)
    path = f"{base}/cli-sasl"
    status, lines = cli(zk_server, "create", path, "sasl", "sasl:jaasuser:cdrwa", jvm=flags)
    assert (status, lines[-1:]) == (0, [f"Created {path}"]), lines
    status, lines = cli(zk_server, "get", path, jvm=flags)
    assert (status, lines[-1:]) == (0, ["sasl"]), lines
    with pytest.raises(NoAuthError):
        zk.get(path)
