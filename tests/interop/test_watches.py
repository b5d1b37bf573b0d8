"""One-shot data/child watches (get/exists/get_children with watch=) and kazoo's DataWatch and
ChildrenWatch, which re-arm them."""

import queue
import threading

from kazoo.protocol.serialization import Exists, GetChildren, GetData
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl

from support import WAIT_S, AddWatch, RawSession, SetWatches, wait_until

# WatchedEvent types on the wire.
CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4


def next_event(events, what):
    try:
        return events.get(timeout=WAIT_S)
    except queue.Empty:
        raise AssertionError(f"no watch event within {WAIT_S}s: expected {what}") from None


def assert_no_event(events, wait_s=0.3):
    try:
        event = events.get(timeout=wait_s)
    except queue.Empty:
        return
    raise AssertionError(f"unexpected watch event {event}")


def test_get_watch_fires_once_on_change(zk, make_client, base):
    writer = make_client()
    path = f"{base}/a"
    zk.create(path, b"0")
    events = queue.Queue()
    zk.get(path, watch=events.put)
    writer.set(path, b"1")
    event = next_event(events, "CHANGED")
    assert (event.type, event.path) == (EventType.CHANGED, path)
    writer.set(path, b"2")  # the watch was one-shot
    assert_no_event(events)
    assert zk.get(path)[0] == b"2"


def test_exists_watch_on_missing_node_fires_created(zk, make_client, base):
    writer = make_client()
    path = f"{base}/later"
    events = queue.Queue()
    assert zk.exists(path, watch=events.put) is None
    writer.create(path)
    event = next_event(events, "CREATED")
    assert (event.type, event.path) == (EventType.CREATED, path)


def test_delete_fires_data_watch_and_parent_child_watch(zk, make_client, base):
    writer = make_client()
    path = f"{base}/doomed"
    zk.create(path)
    data_events, child_events = queue.Queue(), queue.Queue()
    zk.get(path, watch=data_events.put)
    zk.get_children(base, watch=child_events.put)
    writer.delete(path)
    event = next_event(data_events, "DELETED")
    assert (event.type, event.path) == (EventType.DELETED, path)
    event = next_event(child_events, "CHILD")
    assert (event.type, event.path) == (EventType.CHILD, base)


def test_child_watch_ignores_data_changes_of_children(zk, make_client, base):
    writer = make_client()
    zk.create(f"{base}/c")
    events = queue.Queue()
    zk.get_children(base, watch=events.put)
    writer.set(f"{base}/c", b"x")
    writer.set(base, b"parent data")
    assert_no_event(events)
    writer.create(f"{base}/d")
    event = next_event(events, "CHILD")
    assert (event.type, event.path) == (EventType.CHILD, base)


def test_watches_fire_for_every_session_that_set_them(make_client, base):
    writer = make_client()
    path = f"{base}/shared"
    writer.create(path)
    queues = []
    for _ in range(3):
        client = make_client()
        q = queue.Queue()
        client.get(path, watch=q.put)
        queues.append(q)
    writer.set(path, b"x")
    for q in queues:
        assert next_event(q, "CHANGED").type == EventType.CHANGED


def test_data_watch_follows_a_node_through_its_life(zk, make_client, base):
    writer = make_client()
    path = f"{base}/life"
    seen = queue.Queue()

    @zk.DataWatch(path)
    def watcher(data, stat):
        seen.put((data, stat.version if stat else None))

    assert next_event(seen, "initial call") == (None, None)
    writer.create(path, b"born")
    assert next_event(seen, "create") == (b"born", 0)
    writer.set(path, b"grown")
    assert next_event(seen, "set") == (b"grown", 1)
    writer.delete(path)
    assert next_event(seen, "delete") == (None, None)


def test_children_watch_tracks_membership(zk, make_client, base):
    writer = make_client()
    lists = queue.Queue()
    zk.ChildrenWatch(base)(lambda children: lists.put(sorted(children)))
    assert next_event(lists, "initial list") == []
    writer.create(f"{base}/a")
    assert next_event(lists, "after create a") == ["a"]
    writer.create(f"{base}/b", ephemeral=True)
    assert next_event(lists, "after create b") == ["a", "b"]
    writer.delete(f"{base}/a")
    assert next_event(lists, "after delete a") == ["b"]
    writer.stop()  # closing the session deletes the ephemeral b
    assert next_event(lists, "after session close") == []


def test_many_changes_are_all_observed_in_order(zk, make_client, base):
    """DataWatch may coalesce changes, but versions it reports must only grow and end at
    the last write."""
    writer = make_client()
    path = f"{base}/counter"
    writer.create(path, b"0")
    versions = []
    done = threading.Event()

    @zk.DataWatch(path)
    def watcher(data, stat):
        versions.append(stat.version)
        if stat.version == 50:
            done.set()

    for i in range(1, 51):
        writer.set(path, str(i).encode())
    assert done.wait(WAIT_S), f"last version seen: {versions[-1:]}"
    assert versions == sorted(versions)
    wait_until(lambda: zk.get(path)[0] == b"50", what="final data")


def test_child_watch_on_a_deleted_node_fires_deleted(zk, make_client, base):
    writer = make_client()
    path = f"{base}/parent"
    zk.create(path)
    events = queue.Queue()
    zk.get_children(path, watch=events.put)
    writer.delete(path)
    event = next_event(events, "DELETED")
    assert (event.type, event.path) == (EventType.DELETED, path)


def test_watch_is_not_delivered_without_read_permission(zk, make_client, base):
    """ZooKeeper 3.8 checks READ on the node when it delivers a data watch event."""
    owner = make_client(auth_data=[("digest", "olga:pw")])
    path = f"{base}/guarded"
    owner.create(path, b"x")
    events, authed_events = queue.Queue(), queue.Queue()
    zk.get(path, watch=events.put)
    owner.set_acls(path, [make_digest_acl("olga", "pw", all=True)])
    owner.get(path, watch=authed_events.put)
    owner.set(path, b"y")
    assert next_event(authed_events, "CHANGED for the authorised session").type == "CHANGED"
    assert_no_event(events, wait_s=1.0)


def test_notification_precedes_any_reply_showing_the_change(zk_server, make_client, base):
    """A client sees a watch event before any response that reflects the change (ZooKeeper's
    ordering guarantee), so on the wire the notification comes first. The writer uses the raw
    session's server, so in an ensemble the change is applied there before `set` returns."""
    zk = make_client(hosts=f"127.0.0.1:{zk_server.port}")
    path = f"{base}/ordered"
    zk.create(path, b"0")
    session = RawSession(zk_server.port)
    try:
        for round_ in range(1, 21):
            xid = session.send(GetData(path, True))
            header, _ = session.read_reply()
            assert (header.xid, header.err) == (xid, 0)
            zk.set(path, str(round_).encode())
            read_xid = session.send(GetData(path, None))
            header, body = session.read_reply()
            assert header.xid == -1, f"round {round_}: reply {header} before the notification"
            event_type, _, event_path = session.decode_watch(body)
            assert (event_type, event_path) == (3, path)  # NodeDataChanged
            header, body = session.read_reply()
            assert header.xid == read_xid
            assert GetData.deserialize(body, 0)[0] == str(round_).encode()
    finally:
        session.close()


def read_notifications(session, count):
    """The next `count` frames, which must all be notifications, as (type, path) pairs."""
    events = []
    for _ in range(count):
        header, body = session.read_reply()
        assert header.xid == -1, f"expected a notification, got reply {header}"
        event_type, _, path = session.decode_watch(body)
        events.append((event_type, path))
    return events


def test_set_watches_after_reconnect_reports_missed_changes(zk_server, zk, base):
    """What the Java client does after a reconnect: re-attach with the session id and
    password, then SetWatches with the last zxid it saw; changes since then fire at once."""
    for name in ("data", "parent", "quiet"):
        zk.create(f"{base}/{name}")
    first = RawSession(zk_server.port)
    for request in (
        GetData(f"{base}/data", True),
        Exists(f"{base}/later", True),
        GetChildren(f"{base}/parent", True),
        GetData(f"{base}/quiet", True),
    ):
        xid = first.send(request)
        header, _ = first.read_reply()
        assert header.xid == xid
    first.drop()

    zk.set(f"{base}/data", b"changed")
    zk.create(f"{base}/later")
    zk.create(f"{base}/parent/kid")

    response = first.connect_response
    second = RawSession(
        zk_server.port,
        session_id=response.session_id,
        passwd=response.passwd,
        last_zxid=first.last_zxid,
    )
    try:
        assert second.connect_response.session_id == response.session_id
        assert second.connect_response.time_out > 0
        data = [f"{base}/data", f"{base}/quiet"]
        second.send(SetWatches(first.last_zxid, data, [f"{base}/later"], [f"{base}/parent"]), -8)
        events = read_notifications(second, 3)
        assert sorted(events) == sorted(
            [(CREATED, f"{base}/later"), (CHANGED, f"{base}/data"), (CHILD, f"{base}/parent")]
        )
        header, _ = second.read_reply()
        assert (header.xid, header.err) == (-8, 0)
        zk.set(f"{base}/quiet", b"now")  # the unchanged node's watch was re-armed
        assert read_notifications(second, 1) == [(CHANGED, f"{base}/quiet")]
    finally:
        second.close()


def test_persistent_watches_fire_repeatedly(zk_server, zk, base):
    zk.create(f"{base}/p")
    session = RawSession(zk_server.port)
    try:
        for path, mode in ((f"{base}/p", 0), (base, 1)):
            xid = session.send(AddWatch(path, mode))
            header, body = session.read_reply()
            assert (header.xid, header.err, body) == (xid, 0, b"\x00\x00\x00\x00")
        zk.set(f"{base}/p", b"1")
        # The persistent watch on p and the recursive one on base both match.
        assert read_notifications(session, 1) == [(CHANGED, f"{base}/p")]
        zk.set(f"{base}/p", b"2")
        assert read_notifications(session, 1) == [(CHANGED, f"{base}/p")]
        zk.create(f"{base}/p/c")  # p's persistent watch: CHILD; base's recursive: CREATED
        assert sorted(read_notifications(session, 2)) == [
            (CREATED, f"{base}/p/c"),
            (CHILD, f"{base}/p"),
        ]
        zk.create(f"{base}/other/deep", makepath=True)  # recursive only, no CHILD events
        assert read_notifications(session, 2) == [
            (CREATED, f"{base}/other"),
            (CREATED, f"{base}/other/deep"),
        ]
        zk.delete(f"{base}/p/c")
        assert sorted(read_notifications(session, 2)) == [
            (DELETED, f"{base}/p/c"),
            (CHILD, f"{base}/p"),
        ]
    finally:
        session.close()
