"""kazoo's recipes, each driven by several clients: Lock, Election, Counter, Barrier,
DoubleBarrier, Queue, LockingQueue, Party, Semaphore and the read/write lock.

Recipe calls that cannot take a timeout (Election.run, DoubleBarrier.enter/leave, Counter
updates) run in daemon threads joined against a deadline."""

import threading

import pytest
from kazoo.exceptions import LockTimeout

from support import WAIT_S, join_all, wait_until


def spawn(target, *args, name=None):
    t = threading.Thread(target=target, args=args, name=name, daemon=True)
    t.start()
    return t


def test_lock_is_exclusive_between_two_clients(make_client, base):
    a, b = make_client(), make_client()
    lock_a = a.Lock(f"{base}/lock", "client-a")
    lock_b = b.Lock(f"{base}/lock", "client-b")
    assert lock_a.acquire(timeout=WAIT_S)
    assert not lock_b.acquire(blocking=False)
    with pytest.raises(LockTimeout):
        lock_b.acquire(timeout=0.5)

    got_it = threading.Event()
    waiter = spawn(lambda: lock_b.acquire(timeout=WAIT_S) and got_it.set(), name="waiter")
    wait_until(lambda: len(lock_a.contenders()) == 2, what="b to queue behind a")
    assert lock_a.contenders() == ["client-a", "client-b"]
    assert not got_it.is_set()
    lock_a.release()
    join_all([waiter])
    assert got_it.is_set()
    assert lock_b.is_acquired
    lock_b.release()
    assert a.get_children(f"{base}/lock") == []


def test_lock_passes_on_when_the_holder_session_closes(make_client, base):
    a, b = make_client(), make_client()
    assert a.Lock(f"{base}/lock").acquire(timeout=WAIT_S)
    lock_b = b.Lock(f"{base}/lock")
    got_it = threading.Event()
    waiter = spawn(lambda: lock_b.acquire(timeout=WAIT_S) and got_it.set(), name="waiter")
    wait_until(lambda: len(b.get_children(f"{base}/lock")) == 2, what="b to queue")
    a.stop()  # closing the session deletes a's ephemeral lock node
    join_all([waiter])
    assert got_it.is_set()


def test_lock_counts_mutual_exclusion_under_contention(make_client, base):
    clients = [make_client() for _ in range(3)]
    inside = []
    overlap = []
    guard = threading.Lock()

    def work(client, ident):
        lock = client.Lock(f"{base}/lock", ident)
        for _ in range(5):
            assert lock.acquire(timeout=WAIT_S)
            with guard:
                inside.append(ident)
                if len(inside) > 1:
                    overlap.append(list(inside))
            with guard:
                inside.remove(ident)
            lock.release()

    threads = [spawn(work, c, f"w{i}") for i, c in enumerate(clients)]
    join_all(threads, timeout=30)
    assert overlap == []


def test_election_elects_one_leader_at_a_time(make_client, base):
    clients = [make_client() for _ in range(3)]
    leaders = []
    release = {}
    elected = threading.Condition()

    def lead(ident):
        with elected:
            leaders.append(ident)
            elected.notify_all()
        release[ident].wait(WAIT_S)

    elections = [c.Election(f"{base}/election", f"node{i}") for i, c in enumerate(clients)]
    for i in range(3):
        release[f"node{i}"] = threading.Event()
    threads = [spawn(e.run, lead, f"node{i}") for i, e in enumerate(elections)]

    for round_ in range(3):
        with elected:
            assert elected.wait_for(lambda: len(leaders) == round_ + 1, WAIT_S), leaders
        leader = leaders[-1]
        contenders = wait_until(
            lambda: [c for c in [elections[0].contenders()] if len(c) == 3 - round_],
            what=f"{3 - round_} contenders",
        )[0]
        assert contenders[0] == leader
        release[leader].set()
    join_all(threads)
    assert sorted(leaders) == ["node0", "node1", "node2"]


def test_election_cancel_withdraws_a_contender(make_client, base):
    a, b = make_client(), make_client()
    release = threading.Event()
    won = []
    ea = a.Election(f"{base}/e", "a")
    eb = b.Election(f"{base}/e", "b")
    ta = spawn(ea.run, lambda: (won.append("a"), release.wait(WAIT_S)))
    wait_until(lambda: won == ["a"], what="a to win")
    tb = spawn(eb.run, lambda: won.append("b"))
    wait_until(lambda: eb.contenders() == ["a", "b"], what="b to contend")
    eb.cancel()
    join_all([tb])
    release.set()
    join_all([ta])
    assert won == ["a"]


def test_counter_is_consistent_across_concurrent_clients(make_client, base):
    clients = [make_client() for _ in range(3)]

    def bump(client):
        counter = client.Counter(f"{base}/counter")
        for _ in range(20):
            counter += 1

    join_all([spawn(bump, c) for c in clients], timeout=30)
    counter = clients[0].Counter(f"{base}/counter")
    assert counter.value == 60
    counter -= 10
    assert counter.value == 50
    assert counter.pre_value == 60 and counter.post_value == 50
    floats = clients[1].Counter(f"{base}/float", default=0.5)
    floats += 1.25
    assert floats.value == 1.75


def test_barrier_blocks_until_removed(make_client, base):
    a, b = make_client(), make_client()
    barrier = a.Barrier(f"{base}/barrier")
    barrier.create()
    assert barrier.wait(timeout=0.3) is False
    passed = []
    waiter = spawn(lambda: passed.append(barrier.wait(timeout=WAIT_S)))
    b.Barrier(f"{base}/barrier").remove()
    join_all([waiter])
    assert passed == [True]


def test_double_barrier_enters_and_leaves_together(make_client, base):
    n = 3
    clients = [make_client() for _ in range(n)]
    entered = []
    left = []
    guard = threading.Lock()
    proceed = threading.Event()

    def member(client, i):
        barrier = client.DoubleBarrier(f"{base}/double", n, identifier=f"m{i}")
        barrier.enter()
        with guard:
            entered.append(i)
        proceed.wait(WAIT_S)
        barrier.leave()
        with guard:
            left.append(i)

    threads = [spawn(member, clients[i], i) for i in range(n - 1)]
    wait_until(
        lambda: clients[0].exists(f"{base}/double")
        and len(clients[0].get_children(f"{base}/double")) >= n - 1,
        what="the first members to register",
    )
    assert entered == [], "nobody may enter before all members arrive"
    threads.append(spawn(member, clients[-1], n - 1))
    wait_until(lambda: len(entered) == n, what="all members to enter")
    assert left == []
    proceed.set()
    join_all(threads)
    assert sorted(left) == list(range(n))


def test_queue_is_fifo_within_priority(make_client, base):
    producer, consumer = make_client(), make_client()
    q = producer.Queue(f"{base}/queue")
    for item in (b"one", b"two", b"three"):
        q.put(item)
    q.put(b"urgent", priority=10)
    q.put(b"later", priority=200)
    assert len(q) == 5
    c = consumer.Queue(f"{base}/queue")
    got = [c.get() for _ in range(5)]
    assert got == [b"urgent", b"one", b"two", b"three", b"later"]
    assert c.get() is None
    assert len(c) == 0


def test_locking_queue_hands_each_item_to_one_consumer(make_client, base):
    producer, c1, c2 = make_client(), make_client(), make_client()
    producer.LockingQueue(f"{base}/lq").put_all([b"a", b"b"])
    q1 = c1.LockingQueue(f"{base}/lq")
    q2 = c2.LockingQueue(f"{base}/lq")
    assert q1.get(timeout=WAIT_S) == b"a"
    assert q1.holds_lock()
    assert q2.get(timeout=WAIT_S) == b"b"  # a is locked by c1, so c2 gets the next
    assert q2.release()  # give b back without consuming it
    assert q1.consume()
    assert len(q1) == 1
    assert q1.get(timeout=WAIT_S) == b"b"
    assert q1.consume()
    assert len(q1) == 0
    assert q2.get(timeout=0.3) is None


def test_locking_queue_item_returns_when_the_consumer_dies(make_client, base):
    producer, c1, c2 = make_client(), make_client(), make_client()
    producer.LockingQueue(f"{base}/lq").put(b"job")
    assert c1.LockingQueue(f"{base}/lq").get(timeout=WAIT_S) == b"job"
    q2 = c2.LockingQueue(f"{base}/lq")
    assert q2.get(timeout=0.3) is None
    c1.stop()  # its ephemeral lock on the item goes with the session
    assert q2.get(timeout=WAIT_S) == b"job"
    assert q2.consume()


@pytest.mark.parametrize("kind", ["Party", "ShallowParty"])
def test_party_membership(make_client, base, kind):
    clients = [make_client() for _ in range(3)]
    parties = [getattr(c, kind)(f"{base}/party", f"member{i}") for i, c in enumerate(clients)]
    for p in parties:
        p.join()
    assert len(parties[0]) == 3
    assert sorted(parties[0]) == ["member0", "member1", "member2"]
    parties[1].leave()
    assert sorted(parties[2]) == ["member0", "member2"]
    clients[2].stop()  # members are ephemeral
    wait_until(lambda: sorted(parties[0]) == ["member0"], what="member2 to drop out")


def test_semaphore_admits_at_most_max_leases(make_client, base):
    clients = [make_client() for _ in range(3)]
    sems = [c.Semaphore(f"{base}/sem", f"h{i}", max_leases=2) for i, c in enumerate(clients)]
    assert sems[0].acquire(timeout=WAIT_S)
    assert sems[1].acquire(timeout=WAIT_S)
    assert not sems[2].acquire(blocking=False)
    assert sorted(sems[2].lease_holders()) == ["h0", "h1"]
    sems[0].release()
    assert sems[2].acquire(timeout=WAIT_S)
    sems[1].release()
    sems[2].release()


def test_read_write_lock(make_client, base):
    a, b, c = make_client(), make_client(), make_client()
    r1 = a.ReadLock(f"{base}/rw")
    r2 = b.ReadLock(f"{base}/rw")
    w = c.WriteLock(f"{base}/rw")
    assert r1.acquire(timeout=WAIT_S)
    assert r2.acquire(timeout=WAIT_S)  # readers share
    assert not w.acquire(blocking=False)
    r1.release()
    r2.release()
    assert w.acquire(timeout=WAIT_S)
    assert not a.ReadLock(f"{base}/rw").acquire(blocking=False)
    w.release()
