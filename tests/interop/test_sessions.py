"""Sessions: negotiation, connection state listener, reconnect within the timeout (session kept;
kazoo's DataWatch re-reads), expiry (ephemerals deleted, others see NodeDeleted).

Clients that must lose their server go through support.PausableProxy: `cut()` drops the TCP
connection without closing the session, as a network failure would.
"""

import queue
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, KazooState

from conftest import TICK_MS
from support import WAIT_S, PausableProxy, RawSession, wait_until

MIN_TIMEOUT_MS = 2 * TICK_MS
MAX_TIMEOUT_MS = 20 * TICK_MS


@pytest.fixture
def proxy(zk_server):
    p = PausableProxy(zk_server.port)
    yield p
    p.close()


class StateLog:
    """Connection state listener that records every transition."""

    def __init__(self):
        self.states = []
        self.changed = threading.Condition()

    def __call__(self, state):
        with self.changed:
            self.states.append(state)
            self.changed.notify_all()

    def wait_for(self, state, after=0, timeout=WAIT_S):
        with self.changed:
            ok = self.changed.wait_for(lambda: state in self.states[after:], timeout)
        assert ok, f"no {state} within {timeout}s; states so far: {self.states}"


@pytest.mark.parametrize(
    "requested_s, negotiated_ms",
    [(0.2, MIN_TIMEOUT_MS), (3.0, 3000), (100.0, MAX_TIMEOUT_MS)],
)
def test_session_timeout_is_clamped(zk_server, requested_s, negotiated_ms):
    # kazoo keeps only the requested timeout, so read the ConnectResponse off a raw socket.
    session = RawSession(zk_server.port, int(requested_s * 1000))
    try:
        assert session.connect_response.time_out == negotiated_ms
    finally:
        session.close()


def test_listener_sees_connected_and_lost_on_stop(make_client):
    log = StateLog()
    client = make_client(start=False)
    client.add_listener(log)
    client.start(timeout=WAIT_S)
    log.wait_for(KazooState.CONNECTED)
    assert client.connected
    client.stop()
    log.wait_for(KazooState.LOST)
    assert log.states == [KazooState.CONNECTED, KazooState.LOST]


def test_short_outage_keeps_session_and_ephemerals(make_client, proxy, base):
    log = StateLog()
    client = make_client(hosts=proxy.hosts, timeout=4.0, start=False)
    client.add_listener(log)
    client.start(timeout=WAIT_S)
    session_id = client.client_id[0]
    writer = make_client()
    eph = client.create(f"{base}/eph", ephemeral=True)
    writer.create(f"{base}/watched", b"before")
    seen = queue.Queue()
    client.DataWatch(f"{base}/watched")(lambda data, stat: seen.put(data))
    assert seen.get(timeout=WAIT_S) == b"before"

    proxy.cut()
    log.wait_for(KazooState.SUSPENDED)
    writer.set(f"{base}/watched", b"during outage")
    proxy.restore()
    log.wait_for(KazooState.CONNECTED, after=1)

    assert client.client_id[0] == session_id
    assert KazooState.LOST not in log.states
    assert writer.exists(eph).ephemeralOwner == session_id
    # kazoo drops plain watches on SUSPENDED (it never sends SetWatches); DataWatch re-reads
    # once reconnected and must see the change made during the outage.
    wait_until(lambda: not seen.empty() and seen.get() == b"during outage", what="re-read")


def test_expired_session_deletes_ephemerals(make_client, proxy, base):
    log = StateLog()
    client = make_client(hosts=proxy.hosts, timeout=MIN_TIMEOUT_MS / 1000, start=False)
    client.add_listener(log)
    client.start(timeout=WAIT_S)
    old_session = client.client_id[0]
    eph = client.create(f"{base}/eph", b"gone soon", ephemeral=True)
    seq = client.create(f"{base}/seq-", ephemeral=True, sequence=True)

    observer = make_client()
    deleted = threading.Event()
    assert observer.exists(eph, watch=lambda e: e.type == EventType.DELETED and deleted.set())

    proxy.cut()
    assert deleted.wait(WAIT_S), "the other client saw no NodeDeleted after expiry"
    assert observer.exists(eph) is None
    assert observer.exists(seq) is None
    assert observer.get_children(base) == []

    proxy.restore()
    log.wait_for(KazooState.LOST)  # kazoo learns of the expiry when it reconnects
    log.wait_for(KazooState.CONNECTED, after=log.states.index(KazooState.LOST))
    assert client.client_id[0] != old_session
    assert client.exists(eph) is None


def test_session_closed_from_another_connection_expires_the_first(make_client, zk, zk_server, base):
    """kazoo's own expiry idiom: attach a second client to the same session and close it."""
    log = StateLog()
    victim = make_client(start=False)
    victim.add_listener(log)
    victim.start(timeout=WAIT_S)
    eph = victim.create(f"{base}/eph", ephemeral=True)
    deleted = threading.Event()
    zk.exists(eph, watch=lambda e: e.type == EventType.DELETED and deleted.set())

    victim_id = victim.client_id
    twin = KazooClient(hosts=zk_server.hosts, client_id=victim_id, timeout=5.0)
    twin.start(timeout=WAIT_S)
    assert twin.client_id == victim_id
    twin.stop()
    twin.close()

    assert deleted.wait(WAIT_S)
    log.wait_for(KazooState.LOST)
    wait_until(lambda: victim.connected, what="victim to reconnect with a new session")
    assert victim.client_id[0] != victim_id[0]


def test_wrong_password_gets_a_new_session(make_client, zk):
    session_id, _ = zk.client_id
    impostor = make_client(client_id=(session_id, b"\x00" * 16))
    assert impostor.client_id[0] != session_id
    assert zk.get_children("/")  # the real owner is unaffected
    assert zk.client_id[0] == session_id


def test_four_letter_words(zk_server, zk):
    assert zk.command(b"ruok") == "imok"
    assert zk.command(b"isro").strip() == "rw"
    srvr = zk_server.four_letter("srvr")
    modes = ("leader", "follower") if zk_server.target == "rzk-ensemble" else ("standalone",)
    assert any(f"Mode: {m}" in srvr for m in modes), srvr
    assert "Zookeeper version:" in srvr
    mntr = dict(
        line.split("\t", 1) for line in zk_server.four_letter("mntr").splitlines() if "\t" in line
    )
    assert mntr["zk_server_state"] in modes
    assert int(mntr["zk_znode_count"]) >= 4
