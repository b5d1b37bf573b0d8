"""Fixtures for the kazoo interop suite.

One server per test session, on a free loopback port with a temp data dir:

* rzk (default): `target/debug/rzk-server zoo.cfg` with the same generated zoo.cfg as Apache's
  (binary from `RZK_SERVER_BIN`, relative paths taken from the repo root). It is never built
  here.
* Apache ZooKeeper 3.8 (`ZK_TARGET=apache` or `--zk-target=apache`): QuorumPeerMain from the
  Debian jars with a generated standalone zoo.cfg, extended types and all four-letter words on.

The server is ready when `ruok` answers `imok` and `srvr` reports a mode (Apache answers ruok
before its ZooKeeperServer is running, and drops sessions until it is); it is killed at the end
of the session. Tests get a unique base path (`base`) and clients from `make_client`, which
stops and closes every client it made when the test ends. Tests marked `rzk_bug` are strict
xfails against rzk only. Set KEEP_SERVER_DIR=1 to keep the server's data dir and log.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import tls_material

REPO_ROOT = Path(__file__).resolve().parents[2]
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# Small tick so session timeouts (min 2 ticks, max 20 ticks) make expiry tests fast.
TICK_MS = 500
STARTUP_TIMEOUT_S = 30.0
# Apache runs its container/TTL reaper every second here. rzk's short command line has no
# setting for it, so rzk keeps ZooKeeper's default interval of 60 s.
APACHE_REAP_INTERVAL_MS = 1000


def pytest_addoption(parser):
    parser.addoption(
        "--zk-target",
        choices=("rzk", "apache"),
        default=os.environ.get("ZK_TARGET", "rzk"),
        help="server under test: rzk (default), apache, or rzk-ensemble (3 rzk peers; env "
        "ZK_TARGET)",
    )


def pytest_report_header(config):
    return f"zk target: {config.getoption('--zk-target')}"


class Server:
    """A server process started for the test session."""

    def __init__(self, target, port, data_dir, proc, log_path, reap_interval_ms):
        self.target = target
        self.port = port
        self.hosts = f"127.0.0.1:{port}"
        self.client_hosts = self.hosts
        self.data_dir = data_dir
        self.secure_hosts = f"localhost:{secure_port_for(port)}"
        # The plain port by name, for TLS clients of client.portUnification.
        self.unified_hosts = f"localhost:{port}"
        self.tls_dir = Path(data_dir).parent
        self.proc = proc
        self.log_path = log_path
        # Longest wait for a container/TTL node to be reaped once it qualifies.
        self.reap_timeout_s = reap_interval_ms / 1000 * 2 + 5

    def four_letter(self, word, timeout=5.0):
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")

    def log_tail(self, lines=40):
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def free_port():
    """A free port whose successor is free too (the secure client port takes port + 1)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as t:
                t.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def java_classpath(binding):
    """zookeeper.jar (its manifest lists the Debian dependency jars) plus an slf4j binding and
    Netty's codec and handler jars, which the manifest leaves out but the Netty connection
    factory (TLS) needs."""
    netty = [Path("/usr/share/java") / f"netty-{part}.jar" for part in ("codec", "handler", "resolver")]
    jars = [ZOOKEEPER_JAR, Path("/usr/share/java") / binding, *netty]
    return ":".join(str(j) for j in jars if j.exists())


def store_lines(tls, stores):
    """The ssl.keyStore/trustStore lines: kazoo's harness's JKS stores, or the same key and CA
    as PEM files."""
    if stores == "pem":
        return (
            f"ssl.keyStore.location={tls['keystore_pem']}\n"
            "ssl.keyStore.type=PEM\n"
            f"ssl.trustStore.location={tls['ca_cert']}\n"
            "ssl.trustStore.type=PEM\n"
        )
    return (
        f"ssl.keyStore.location={tls['keystore']}\n"
        f"ssl.keyStore.password={tls_material.PASSWORD}\n"
        f"ssl.trustStore.location={tls['truststore']}\n"
        f"ssl.trustStore.password={tls_material.PASSWORD}\n"
    )


def write_zoo_cfg(port, data_dir, work_dir, tls=None, stores="jks"):
    """The same standalone zoo.cfg for both servers: TTL nodes, every four-letter word, a 1 s
    container reaper (Apache also gets the reaper interval as a -D property), and a secure
    client port on port + 1 with JKS stores as kazoo's harness configures it (Apache needs
    the Netty connection factory for TLS; rzk accepts the key and keeps its selector), and
    client.portUnification so the plain port serves TLS clients too."""
    cfg = Path(work_dir) / "zoo.cfg"
    tls = tls or tls_material.generate(work_dir)
    cfg.write_text(
        f"tickTime={TICK_MS}\n"
        f"dataDir={data_dir}\n"
        f"clientPort={port}\n"
        "clientPortAddress=127.0.0.1\n"
        "extendedTypesEnabled=true\n"
        "4lw.commands.whitelist=*\n"
        "admin.enableServer=false\n"
        f"znode.container.checkIntervalMs={APACHE_REAP_INTERVAL_MS}\n"
        f"secureClientPort={secure_port_for(port)}\n"
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
        # The plain port takes TLS clients too (Apache: Netty's DualModeSslHandler).
        "client.portUnification=true\n"
        f"{store_lines(tls, stores)}"
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
    )
    (Path(work_dir) / "jaas.conf").write_text(JAAS_SERVER)
    return cfg


# kazoo's harness's JAAS Server section (ZOOKEEPER_JAAS_AUTH=digest).
JAAS_SERVER = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
"""


def jaas_flag(work_dir):
    return f"-Djava.security.auth.login.config={Path(work_dir) / 'jaas.conf'}"


def secure_port_for(port):
    """The secure client port paired with a client port (free_port hands out pairs)."""
    return port + 1


def rzk_command(port, data_dir, work_dir, stores="jks"):
    binary = Path(os.environ.get("RZK_SERVER_BIN", "target/debug/rzk-server"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not binary.exists():
        pytest.exit(f"{binary} not found; run `cargo build --bins` first", returncode=4)
    cfg = write_zoo_cfg(port, data_dir, work_dir, stores=stores)
    return [str(binary), jaas_flag(work_dir), str(cfg)], APACHE_REAP_INTERVAL_MS


def apache_command(port, data_dir, work_dir, stores="jks"):
    java = shutil.which("java")
    if java is None or not ZOOKEEPER_JAR.exists():
        pytest.exit("ZK_TARGET=apache needs java and /usr/share/java/zookeeper.jar", returncode=4)
    cfg = write_zoo_cfg(port, data_dir, work_dir, stores=stores)
    return [
        java,
        f"-Dznode.container.checkIntervalMs={APACHE_REAP_INTERVAL_MS}",
        jaas_flag(work_dir),
        "-cp",
        java_classpath("slf4j-simple.jar"),
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        str(cfg),
    ], APACHE_REAP_INTERVAL_MS


class Ensemble(Server):
    """Three rzk quorum peers on loopback; clients get all three hosts. `port` (used for
    four-letter words) is the first peer's."""

    def __init__(self, servers):
        first = servers[0]
        super().__init__(
            "rzk-ensemble", first.port, first.data_dir, first.proc, first.log_path, 0
        )
        self.reap_timeout_s = first.reap_timeout_s
        self.servers = servers
        self.procs = [s.proc for s in servers]
        self.hosts = ",".join(f"127.0.0.1:{s.port}" for s in servers)
        self.secure_hosts = ",".join(s.secure_hosts for s in servers)
        self.unified_hosts = ",".join(s.unified_hosts for s in servers)

    def log_tail(self, lines=40):
        return "\n".join(f"--- peer {i + 1}:\n{s.log_tail(lines)}" for i, s in enumerate(self.servers))

    def stop(self):
        for s in self.servers:
            s.stop()


def start_ensemble(work_dir, size=3, stores="jks"):
    """`size` rzk peers with server.N lines and myid files; waits until each reports a mode."""
    binary = Path(os.environ.get("RZK_SERVER_BIN", "target/debug/rzk-server"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
    lines = "".join(
        f"server.{i + 1}=127.0.0.1:{q}:{e}\n" for i, (_, q, e) in enumerate(ports)
    )
    servers = []
    # One CA and one server certificate for the whole ensemble, so a client trusting it can
    # connect to any peer.
    tls = tls_material.generate(work_dir)
    for i, (client, _, _) in enumerate(ports):
        peer_dir = Path(work_dir) / f"peer-{i + 1}"
        data_dir = peer_dir / "data"
        data_dir.mkdir(parents=True)
        (data_dir / "myid").write_text(f"{i + 1}\n")
        cfg = write_zoo_cfg(client, data_dir, peer_dir, tls, stores)
        with open(cfg, "a") as f:
            f.write("initLimit=10\nsyncLimit=5\n" + lines)
        log_path = peer_dir / "server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(binary), jaas_flag(peer_dir), str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        servers.append(Server("rzk", client, data_dir, proc, log_path, APACHE_REAP_INTERVAL_MS))
    ensemble = Ensemble(servers)
    ensemble.tls_dir = Path(work_dir)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S * 2
    pending = list(servers)
    while pending and time.monotonic() < deadline:
        for s in list(pending):
            try:
                srvr = s.four_letter("srvr", timeout=1.0)
                if "Mode: leader" in srvr or "Mode: follower" in srvr:
                    pending.remove(s)
            except OSError:
                pass
        time.sleep(0.1)
    if pending:
        tail = ensemble.log_tail()
        ensemble.stop()
        raise RuntimeError(f"rzk ensemble did not form; logs:\n{tail}")
    return ensemble


def start_server(target, work_dir, stores="jks"):
    """Starts the server and waits for `ruok`; retries on a fresh port if it dies early
    (another process may have taken the port between probe and bind)."""
    command_for = rzk_command if target == "rzk" else apache_command
    last_log = ""
    for attempt in range(3):
        port = free_port()
        data_dir = Path(work_dir) / f"data-{attempt}"
        data_dir.mkdir()
        command, reap_interval_ms = command_for(port, data_dir, work_dir, stores)
        log_path = Path(work_dir) / f"server-{attempt}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = Server(target, port, data_dir, proc, log_path, reap_interval_ms)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.four_letter("ruok", timeout=1.0) == "imok":
                    if "Mode: " in server.four_letter("srvr", timeout=1.0):
                        return server
            except OSError:
                pass
            time.sleep(0.1)
        last_log = server.log_tail()
        server.stop()
    raise RuntimeError(f"{target} server did not answer ruok; last log:\n{last_log}")


@pytest.fixture(scope="session")
def zk_target(pytestconfig):
    return pytestconfig.getoption("--zk-target")


@pytest.fixture(scope="session")
def zk_server(zk_target):
    work_dir = tempfile.mkdtemp(prefix=f"interop-{zk_target}-")
    if zk_target == "rzk-ensemble":
        server = start_ensemble(work_dir)
    else:
        server = start_server(zk_target, work_dir)
    yield server
    server.stop()
    if os.environ.get("KEEP_SERVER_DIR"):
        print(f"\nserver dir kept: {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture
def make_client(zk_server):
    """Factory for started KazooClients; every one is stopped and closed after the test."""
    clients = []

    def make(hosts=None, start=True, **kwargs):
        kwargs.setdefault("timeout", 5.0)
        # On an ensemble every client uses the first peer (a follower unless it won the
        # election), the one raw-protocol helpers and four-letter words talk to: the tests
        # compare what different clients see right after a write, which ZooKeeper only
        # promises for clients of the same server (cross-server behaviour is covered by
        # tests/ensemble*.rs).
        client = KazooClient(hosts=hosts or zk_server.client_hosts, **kwargs)
        clients.append(client)
        if start:
            client.start(timeout=10)
        return client

    yield make
    for client in clients:
        try:
            client.stop()
            client.close()
        except Exception:  # noqa: BLE001 - teardown of an already broken client
            pass


@pytest.fixture
def zk(make_client, zk_server):
    return make_client()


@pytest.fixture
def base(zk, request):
    """A fresh persistent path unique to this test."""
    name = request.node.name.replace("[", "-").replace("]", "")
    path = f"/interop/{name}-{uuid.uuid4().hex[:8]}"
    zk.ensure_path(path)
    return path


@pytest.fixture(autouse=True)
def server_alive(zk_server):
    """Fails the test (with the server's log tail) if the server process died during it."""
    yield
    for proc in getattr(zk_server, "procs", [zk_server.proc]):
        if proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode}; log tail:\n{zk_server.log_tail()}"
            )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "rzk_bug(reason): confirmed rzk divergence from ZooKeeper 3.8; strict xfail on rzk only",
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked rzk_bug must fail against rzk (strict xfail) and pass against Apache, so
    a fixed bug shows up as XPASS and turns the run red until the marker is removed."""
    if config.getoption("--zk-target") == "apache":
        return
    for item in items:
        marker = item.get_closest_marker("rzk_bug")
        if marker is not None:
            item.add_marker(pytest.mark.xfail(reason=marker.args[0], strict=True))
