"""Wire-level behaviour seen through a raw socket (support.RawSession): pings, unknown
opcodes, whoAmI, session re-attachment rules and the no-time-travel check."""

import struct
from collections import namedtuple

import pytest
from kazoo.protocol.serialization import Auth, Create2, GetData
from kazoo.security import OPEN_ACL_UNSAFE

from support import RawSession

UNIMPLEMENTED = -6
MARSHALLING_ERROR = -5
NULL_STRING = struct.pack("!i", -1)  # a ustring of length -1; kazoo sends "" this way
EMPTY_STRING = struct.pack("!i", 0)


class Raw(namedtuple("Raw", "type payload")):
    """Any opcode with a hand-made body."""

    def serialize(self):
        return bytearray(self.payload)


def assert_closed_by_server(session):
    """The server closed the connection: the next read sees EOF or a reset (not a timeout)."""
    with pytest.raises((AssertionError, ConnectionResetError)) as error:
        session.read_frame()
    assert "timed out" not in str(error.value)


def test_ping_reply_carries_the_last_zxid(zk_server, zk, base):
    zxid = zk.exists(base).czxid
    session = RawSession(zk_server.port)
    try:
        session.send(Raw(11, b""), xid=-2)
        header, body = session.read_reply()
        assert (header.xid, header.err, body) == (-2, 0, b"")
        assert header.zxid >= zxid
    finally:
        session.close()


def test_session_ids_carry_server_id_one_in_the_top_byte(zk_server, make_client):
    ids = [make_client().client_id[0] for _ in range(2)]
    # In an ensemble each server puts its own id there.
    allowed = {1, 2, 3} if zk_server.target == "rzk-ensemble" else {1}
    assert all(i >> 56 in allowed for i in ids), [hex(i) for i in ids]
    assert ids[0] != ids[1]


def test_unknown_opcode_gets_unimplemented_then_the_connection_closes(zk_server):
    session = RawSession(zk_server.port)
    try:
        xid = session.send(Raw(999, b""))
        header, body = session.read_reply()
        assert (header.xid, header.zxid, header.err, body) == (xid, -1, UNIMPLEMENTED, b"")
        assert_closed_by_server(session)
    finally:
        session.sock.close()


def test_who_am_i_lists_ip_and_digest_identities(zk_server):
    session = RawSession(zk_server.port)
    try:
        session.send(Raw(107, b""))
        header, body = session.read_reply()
        assert header.err == 0
        assert decode_client_info(body) == [("ip", "127.0.0.1")]
        for user in ("walt", "walt", "xena"):
            session.send(Auth(0, "digest", f"{user}:pw"), xid=-4)
            header, body = session.read_reply()
            assert (header.xid, header.zxid, header.err, body) == (-4, 0, 0, b"")
        session.send(Raw(107, b""))
        _, body = session.read_reply()
        # The identities form a set; their order is unspecified.
        assert sorted(decode_client_info(body)) == [
            ("digest", "walt"),
            ("digest", "xena"),
            ("ip", "127.0.0.1"),
        ]
    finally:
        session.close()


def decode_client_info(body):
    """WhoAmIResponse: vector<ClientInfo{ustring authScheme; ustring user}>."""
    count, offset = struct.unpack_from("!i", body)[0], 4
    out = []
    for _ in range(count):
        pair = []
        for _ in range(2):
            length = struct.unpack_from("!i", body, offset)[0]
            pair.append(body[offset + 4 : offset + 4 + length].decode())
            offset += 4 + length
        out.append(tuple(pair))
    return out


def test_reattach_to_a_closed_session_is_refused_with_timeout_zero(zk_server):
    first = RawSession(zk_server.port)
    session_id, passwd = first.connect_response.session_id, first.connect_response.passwd
    first.close()
    again = RawSession(zk_server.port, session_id=session_id, passwd=passwd)
    try:
        assert again.connect_response.time_out == 0
        assert_closed_by_server(again)
    finally:
        again.sock.close()


def test_reattach_keeps_the_session_and_closes_the_old_connection(zk_server, base, zk):
    zk.create(f"{base}/n", b"v")
    first = RawSession(zk_server.port)
    response = first.connect_response
    second = RawSession(zk_server.port, session_id=response.session_id, passwd=response.passwd)
    try:
        assert second.connect_response.session_id == response.session_id
        assert second.connect_response.passwd == response.passwd
        assert second.connect_response.time_out == response.time_out
        xid = second.send(GetData(f"{base}/n", None))
        header, body = second.read_reply()
        assert (header.xid, header.err) == (xid, 0)
        assert GetData.deserialize(body, 0)[0] == b"v"
        assert_closed_by_server(first)
    finally:
        first.sock.close()
        second.close()


def test_client_that_saw_a_newer_zxid_is_refused(zk_server):
    """No time travel: a client whose last zxid is ahead of the server gets no session."""
    with pytest.raises((AssertionError, ConnectionResetError)) as error:
        RawSession(zk_server.port, last_zxid=1 << 40)
    assert "connection closed" in str(error.value) or isinstance(error.value, ConnectionResetError)


def test_empty_path_reads_resolve_to_the_root(zk_server):
    session = RawSession(zk_server.port)
    try:
        replies = {}
        reads = {
            "getData": (4, b"\x00"),
            "exists": (3, b"\x00"),
            "getChildren": (8, b"\x00"),
            "getChildren2": (12, b"\x00"),
            "getACL": (6, b""),
            "getAllChildrenNumber": (104, b""),
        }
        for name, (opcode, watch) in reads.items():
            for path_bytes in (EMPTY_STRING, struct.pack("!i", 1) + b"/"):
                xid = session.send(Raw(opcode, path_bytes + watch))
                header, body = session.read_reply()
                assert header.xid == xid
                replies[name, len(path_bytes)] = (header.err, body)
        for name in reads:
            err, body = replies[name, 4]
            assert err == 0, f"{name}(\"\") answered err {err}"
            if name != "getAllChildrenNumber":  # prefix count: "" also matches "/" itself
                assert body == replies[name, 5][1], f"{name}(\"\") differs from {name}(\"/\")"
    finally:
        session.close()


def test_null_path_is_a_marshalling_error(zk_server):
    create = Create2("/x", b"", OPEN_ACL_UNSAFE, 0).serialize()[len(b"\x00\x00\x00\x02/x") :]
    requests = {
        "create2": Raw(15, NULL_STRING + create),
        "getData": Raw(4, NULL_STRING + b"\x00"),
        "exists": Raw(3, NULL_STRING + b"\x00"),
        "delete": Raw(2, NULL_STRING + struct.pack("!i", -1)),
    }
    session = RawSession(zk_server.port)
    try:
        errors = {}
        for name, request in requests.items():
            xid = session.send(request)
            header, _ = session.read_reply()
            assert header.xid == xid
            errors[name] = header.err
        assert errors == dict.fromkeys(requests, MARSHALLING_ERROR)
    finally:
        session.close()
