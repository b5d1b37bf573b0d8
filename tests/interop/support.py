"""Helpers shared by the interop tests: bounded waits, a pausable TCP proxy, running a CLI
(zkCli or rzk-cli) once, and records for
opcodes kazoo has no API for (createContainer 19, createTTL 21, getEphemerals 103,
getAllChildrenNumber 104), sent on a kazoo session with `call`.

Nothing here waits without a deadline.
"""

import select
import socket
import struct
import subprocess
import threading
import time
from collections import namedtuple

from kazoo.protocol.serialization import (
    Connect,
    Create2,
    ReplyHeader,
    Watch,
    int_struct,
    read_string,
    write_string,
)

# Every single wait in the suite is bounded by this unless a test says otherwise.
WAIT_S = 10.0

# One CLI command (a JVM start included) may take this long.
CLI_TIMEOUT_S = 60
# What both CLIs print besides a command's own output.
CLI_NOISE = ("Connecting to ", "WATCHER::", "WatchedEvent ")


def run_cli(args):
    """Runs a CLI command line to its end (within CLI_TIMEOUT_S, no stdin); returns (exit
    status, output lines without the connection banner and watch events)."""
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL
    )
    output = (proc.stdout + proc.stderr).splitlines()
    return proc.returncode, [line for line in output if line and not line.startswith(CLI_NOISE)]


def wait_until(predicate, timeout=WAIT_S, what="condition", interval=0.05):
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def join_all(threads, timeout=WAIT_S):
    """Joins every thread against one shared deadline; fails if any is still running."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads still running after {timeout}s: {alive}"


class CreateContainer(namedtuple("CreateContainer", "path data acl flags")):
    """createContainer (opcode 19): a CreateRequest with flags 4, answered by Create2Response."""

    type = 19
    serialize = Create2.serialize
    deserialize = Create2.deserialize


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    """createTTL (opcode 21): CreateRequest fields plus `long ttl`; flags 5 (persistent) or 6
    (persistent sequential)."""

    type = 21

    def serialize(self):
        b = Create2(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(struct.pack("!q", self.ttl))
        return b

    deserialize = Create2.deserialize


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    """getEphemerals (opcode 103): the session's ephemeral paths starting with `prefix`."""

    type = 103

    def serialize(self):
        return bytearray(write_string(self.prefix))

    @classmethod
    def deserialize(cls, data, offset):
        count = int_struct.unpack_from(data, offset)[0]
        offset += int_struct.size
        paths = []
        for _ in range(count):
            path, offset = read_string(data, offset)
            paths.append(path)
        return paths


class GetAllChildrenNumber(namedtuple("GetAllChildrenNumber", "path")):
    """getAllChildrenNumber (opcode 104): number of descendants of `path`."""

    type = 104

    def serialize(self):
        return bytearray(write_string(self.path))

    @classmethod
    def deserialize(cls, data, offset):
        return int_struct.unpack_from(data, offset)[0]


def call(client, request, timeout=WAIT_S):
    """Sends a raw kazoo request record on `client`'s session; returns its decoded response
    or raises the kazoo exception for the reply's error code."""
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=timeout)


class SetWatches(namedtuple("SetWatches", "relative_zxid data exist child")):
    """setWatches (opcode 101, always xid -8): re-arm watches after a reconnect."""

    type = 101

    def serialize(self):
        b = bytearray(struct.pack("!q", self.relative_zxid))
        for paths in (self.data, self.exist, self.child):
            b.extend(int_struct.pack(len(paths)))
            for p in paths:
                b.extend(write_string(p))
        return b


class AddWatch(namedtuple("AddWatch", "path mode")):
    """addWatch (opcode 106): mode 0 persistent, 1 persistent recursive."""

    type = 106

    def serialize(self):
        return bytearray(write_string(self.path) + int_struct.pack(self.mode))


class RawSession:
    """A session on a plain socket, for checks that need to see frames in the order the
    server wrote them, or opcodes kazoo never sends. Requests are kazoo-style records. Pass
    `session_id`/`passwd` (from `connect_response`) and `last_zxid` to re-attach."""

    def __init__(self, port, timeout_ms=10_000, session_id=0, passwd=b"\x00" * 16, last_zxid=0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        connect = Connect(0, last_zxid, timeout_ms, session_id, passwd, False)
        self._send_frame(connect.serialize())
        self.connect_response, _ = Connect.deserialize(self.read_frame(), 0)
        self.xid = 0
        self.last_zxid = last_zxid

    def send(self, request, xid=None):
        """Sends `request` with `xid` (default: the next one); returns the xid used."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self._send_frame(struct.pack("!ii", xid, request.type) + request.serialize())
        return xid

    def read_reply(self):
        """Next frame as (ReplyHeader, body bytes); xid -1 is a watch notification."""
        frame = self.read_frame()
        header, offset = ReplyHeader.deserialize(frame, 0)
        self.last_zxid = max(self.last_zxid, header.zxid)
        return header, frame[offset:]

    def drop(self):
        """Closes the socket without closing the session."""
        self.sock.close()

    @staticmethod
    def decode_watch(body):
        """Watch notification body -> (type, state, path)."""
        return tuple(Watch.deserialize(body, 0)[0])

    def close(self):
        """closeSession, then drop the socket."""
        try:
            self.xid += 1
            self._send_frame(struct.pack("!ii", self.xid, -11))
            self.read_frame()
        finally:
            self.sock.close()

    def read_frame(self):
        length = struct.unpack("!i", self._read_exactly(4))[0]
        return self._read_exactly(length)

    def _send_frame(self, payload):
        self.sock.sendall(struct.pack("!i", len(payload)) + payload)

    def _read_exactly(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, f"connection closed after {len(buf)} of {n} bytes"
            buf += chunk
        return buf


class PausableProxy:
    """A loopback TCP proxy in front of the server. `cut()` drops every open connection and
    refuses new ones until `restore()`, which is how tests make a client lose its server
    without closing its session."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.hosts = f"127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs = []
        self._thread = threading.Thread(target=self._accept_loop, name="proxy", daemon=True)
        self._thread.start()

    def cut(self):
        self._open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close_quietly(a)
            _close_quietly(b)

    def restore(self):
        self._open.set()

    def close(self):
        self._stop.set()
        self.cut()
        self._thread.join(2.0)
        self.listener.close()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            if not self._open.is_set():
                _close_quietly(conn)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2.0)
            except OSError:
                _close_quietly(conn)
                continue
            with self._lock:
                self._pairs.append((conn, upstream))
            threading.Thread(
                target=self._pump, args=(conn, upstream), name="proxy-pump", daemon=True
            ).start()

    def _pump(self, a, b):
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set() and self._open.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.1)
                for s in readable:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    peers[s].sendall(chunk)
        except (OSError, ValueError):
            return
        finally:
            _close_quietly(a)
            _close_quietly(b)


def _close_quietly(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
