"""kazoo against a 3-peer rzk ensemble (ZK_TARGET=rzk-ensemble only): clients on different
peers, sessions moving between peers, SESSIONMOVED, and what the four-letter words say about
the roles."""

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import SessionMovedError


@pytest.fixture
def peers(zk_server):
    if zk_server.target != "rzk-ensemble":
        pytest.skip("ensemble-only test (ZK_TARGET=rzk-ensemble)")
    return zk_server.servers


def hosts_of(peer):
    return f"127.0.0.1:{peer.port}"


def test_one_leader_and_the_ensemble_in_conf(peers):
    modes = []
    for peer in peers:
        srvr = peer.four_letter("srvr")
        modes.append(next(l for l in srvr.splitlines() if l.startswith("Mode: "))[6:])
        conf = peer.four_letter("conf")
        assert "membership: " in conf
        assert conf.count("server.") == 3
    assert sorted(modes) == ["follower", "follower", "leader"]
    leader = peers[modes.index("leader")]
    mntr = dict(l.split("\t", 1) for l in leader.four_letter("mntr").splitlines() if "\t" in l)
    assert mntr["zk_server_state"] == "leader"
    assert mntr["zk_synced_followers"] == "2"


def test_writes_through_each_peer_are_seen_through_every_peer(make_client, base, peers):
    clients = [make_client(hosts=hosts_of(p)) for p in peers]
    for i, c in enumerate(clients):
        c.create(f"{base}/from-{i}", str(i).encode())
    for c in clients:
        c.sync(base)
        assert sorted(c.get_children(base)) == ["from-0", "from-1", "from-2"]
        assert [c.get(f"{base}/from-{i}")[0] for i in range(3)] == [b"0", b"1", b"2"]


def test_a_session_moved_to_another_peer_keeps_its_ephemerals(make_client, base, peers):
    first = make_client(hosts=hosts_of(peers[0]))
    first.create(f"{base}/mine", b"e", ephemeral=True)
    owner = first.client_id[0]
    moved = make_client(hosts=hosts_of(peers[1]), client_id=first.client_id)
    assert moved.client_id[0] == owner
    moved.sync(base)
    assert moved.exists(f"{base}/mine").ephemeralOwner == owner
    # The old connection's writes now fail with SESSIONMOVED (the leader knows the new owner).
    with pytest.raises(SessionMovedError):
        first.create(f"{base}/late", b"")
    moved.create(f"{base}/ok", b"")
    watcher = make_client(hosts=hosts_of(peers[2]))
    watcher.sync(base)
    assert watcher.exists(f"{base}/late") is None
    assert watcher.exists(f"{base}/ok") is not None
    moved.stop()
    moved.close()
    watcher.sync(base)
    assert watcher.exists(f"{base}/mine") is None


def test_watch_on_one_peer_fires_for_a_write_through_another(make_client, base, peers):
    import threading

    fired = threading.Event()
    reader = make_client(hosts=hosts_of(peers[0]))
    writer = make_client(hosts=hosts_of(peers[2]))
    writer.create(f"{base}/w", b"0")
    reader.sync(base)
    reader.get(f"{base}/w", watch=lambda event: fired.set())
    writer.set(f"{base}/w", b"1")
    assert fired.wait(10)
    assert reader.get(f"{base}/w")[0] == b"1"


def test_client_with_every_peer_reconnects_elsewhere_on_close(make_client, base, peers, zk_server):
    client = KazooClient(hosts=zk_server.hosts, timeout=5.0)
    client.start(timeout=10)
    try:
        client.create(f"{base}/any", b"x")
        assert client.get(f"{base}/any")[0] == b"x"
    finally:
        client.stop()
        client.close()
