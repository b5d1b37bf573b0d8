"""kazoo's TreeCache watching a subtree through creates, updates and deletes made by another
client. The cache is built only from getData/getChildren with watches, so it checks that
the server's watch events are complete and correctly typed."""

import queue

from kazoo.recipe.cache import TreeCache, TreeEvent

from support import WAIT_S, wait_until

NAMES = {
    TreeEvent.NODE_ADDED: "ADDED",
    TreeEvent.NODE_UPDATED: "UPDATED",
    TreeEvent.NODE_REMOVED: "REMOVED",
    TreeEvent.CONNECTION_SUSPENDED: "SUSPENDED",
    TreeEvent.CONNECTION_RECONNECTED: "RECONNECTED",
    TreeEvent.CONNECTION_LOST: "LOST",
    TreeEvent.INITIALIZED: "INITIALIZED",
}


class Events:
    def __init__(self, cache):
        self.q = queue.Queue()
        cache.listen(self.q.put)

    def expect(self, kind, path=None):
        """Returns the next event's data; fails unless it is `kind` (at `path`, if given)."""
        try:
            event = self.q.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no tree event within {WAIT_S}s: expected {kind}") from None
        got = NAMES[event.event_type]
        got_path = event.event_data.path if event.event_data else None
        assert (got, got_path if path else None) == (kind, path), f"got {got} {got_path}"
        return event.event_data

    def drain_paths(self, kind, count):
        """Paths of the next `count` events, all of which must be `kind` (order not fixed)."""
        return sorted(self.expect(kind).path for _ in range(count))


def test_tree_cache_follows_a_subtree(zk, make_client, base):
    writer = make_client()
    root = f"{base}/tree"
    writer.create(f"{root}/a/a1", b"a1", makepath=True)
    writer.create(f"{root}/b", b"b")

    cache = TreeCache(zk, root)
    events = Events(cache)
    cache.start()
    try:
        initial = events.drain_paths("ADDED", 4)
        assert initial == sorted([root, f"{root}/a", f"{root}/a/a1", f"{root}/b"])
        events.expect("INITIALIZED")
        assert sorted(cache.get_children(root)) == ["a", "b"]
        assert cache.get_data(f"{root}/a/a1").data == b"a1"

        writer.create(f"{root}/c", b"new")
        assert events.expect("ADDED", f"{root}/c").data == b"new"
        writer.create(f"{root}/a/a2/deep", b"deep", makepath=True)
        assert events.expect("ADDED", f"{root}/a/a2").data == b""
        assert events.expect("ADDED", f"{root}/a/a2/deep").data == b"deep"

        writer.set(f"{root}/b", b"b2")
        updated = events.expect("UPDATED", f"{root}/b")
        assert (updated.data, updated.stat.version) == (b"b2", 1)
        writer.set(root, b"root data")
        assert events.expect("UPDATED", root).data == b"root data"

        writer.delete(f"{root}/c")
        assert events.expect("REMOVED", f"{root}/c").data == b"new"
        writer.delete(f"{root}/a", recursive=True)
        removed = events.drain_paths("REMOVED", 4)
        subtree = [f"{root}/a", f"{root}/a/a1", f"{root}/a/a2", f"{root}/a/a2/deep"]
        assert removed == sorted(subtree)
        assert sorted(cache.get_children(root)) == ["b"]
        assert cache.get_data(f"{root}/a") is None

        eph_owner = make_client()
        eph_owner.create(f"{root}/b/eph", b"e", ephemeral=True)
        events.expect("ADDED", f"{root}/b/eph")
        eph_owner.stop()
        events.expect("REMOVED", f"{root}/b/eph")
        wait_until(lambda: cache.get_children(f"{root}/b") == frozenset(), what="empty b")
    finally:
        cache.close()


def test_tree_cache_sees_the_root_go_and_come_back(zk, make_client, base):
    writer = make_client()
    root = f"{base}/later"
    cache = TreeCache(zk, root)
    events = Events(cache)
    cache.start()  # creates the root (ensure_path)
    try:
        events.expect("ADDED", root)
        events.expect("INITIALIZED")
        writer.delete(root)
        events.expect("REMOVED", root)
        assert cache.get_data(root) is None
        writer.create(root, b"again")
        assert events.expect("ADDED", root).data == b"again"
    finally:
        cache.close()
