"""Bad input on the WebSocket and over HTTP: every bad client message gets an
error frame and the connection stays usable; other clients never notice
(docs/protocol.md "Client to server", "Liveness and close codes")."""

import json
import os
import socket
import struct
import time

import pytest
import requests

from conftest import RawWS, token_for, wait_until

# (frame sent, error code expected).  str is a text frame, bytes a binary one.
BAD_MESSAGES = [
    ("not json{", "bad_json"),
    ("", "bad_json"),
    ('{"type":"ping"', "bad_json"),
    ("[1,2,3]", "bad_message"),
    ('"a string"', "bad_message"),
    ("42", "bad_message"),
    ("null", "bad_message"),
    ('{"type":"status","status":"AWAY","auto":"yes"}', "bad_message"),
    (b"\x00\x01binary", "bad_message"),
    (b'{"type":"ping"}', "bad_message"),
    ('{"type":"dance"}', "unknown_type"),
    ('{"status":"AWAY"}', "unknown_type"),
    ('{"type":"status","status":"HAPPY"}', "invalid_status"),
    ('{"type":"status"}', "invalid_status"),
    ('{"type":"status","status":"BUSY","auto":true}', "invalid_status"),
]


def ids(case):
    frame, code = case
    return "%s-%s" % (code, (repr(frame))[:24])


@pytest.mark.parametrize("frame,code", BAD_MESSAGES, ids=[ids(c) for c in BAD_MESSAGES])
def test_bad_message_gets_error_and_connection_survives(shared_server, frame, code):
    server = shared_server
    org = "org-%d" % BAD_MESSAGES.index((frame, code))
    other = server.ws(org, "other")
    c = server.ws(org, "u1")
    other.expect_presence("u1", "ONLINE", "connect")
    if isinstance(frame, bytes):
        c.send_bytes(frame)
    else:
        c.send_text(frame)
    e = c.expect("error", strict=True)
    assert e["code"] == code, e
    assert isinstance(e.get("message"), str) and e["message"], e
    # The same connection still works, and its status did not change.
    c.ping()
    c.ping()
    other.assert_no_message(0.3)
    other.ping()
    c.set_manual("BUSY")
    other.expect_presence("u1", "BUSY", "manual")


def test_many_bad_messages_in_a_row(server):
    c = server.ws("o1", "u1")
    for frame, code in BAD_MESSAGES:
        if isinstance(frame, bytes):
            c.send_bytes(frame)
        else:
            c.send_text(frame)
    got = [c.expect("error", strict=True)["code"] for _ in BAD_MESSAGES]
    assert got == [code for _, code in BAD_MESSAGES]
    c.ping()


def test_invalid_utf8_text_closes_1007(server):
    # RFC 6455 8.1: a text message that is not UTF-8 fails the connection
    # with 1007 (docs/protocol.md "Liveness and close codes").
    raw = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "u1"))
    assert raw.status == 101
    assert raw.recv_json()["type"] == "hello"
    assert raw.recv_json()["type"] == "snapshot"
    raw.send_frame(0x1, b'{"type":"\xff\xfe"}')
    code, _, _ = raw.wait_close(3)
    assert code == 1007, code
    # Others are served all along.
    assert server.http("GET", "/healthz").status_code == 200
    raw.close()


def test_oversized_message_closes_with_1009(server):
    other = server.ws("o1", "other")
    c = server.ws("o1", "u1")
    other.expect_presence("u1", "ONLINE", "connect")
    c.send_text(json.dumps({"type": "ping", "pad": "x" * 70000}))
    code, _ = c.wait_closed(3)
    assert code == 1009, code
    other.ping()
    # Closing starts the grace, then OFFLINE as for any disconnect.
    other.expect_presence("u1", "OFFLINE", "grace_expired", timeout=4)


@pytest.mark.settings(max_msg="1k")
def test_max_msg_setting(server):
    c = server.ws("o1", "u1")
    assert c.hello["max_message"] == 1024
    c.send_text(json.dumps({"type": "ping", "pad": "x" * 900}))     # < 1 KiB
    c.expect("pong", strict=True)
    c.send_fragments(['{"type":"ping","pad":"', "x" * 600, "y" * 600, '"}'])
    code, _ = c.wait_closed(3)
    assert code == 1009, "fragments adding up past max_msg: close %r" % code


def test_unmasked_client_frame_is_protocol_error(server):
    raw = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "u1"))
    assert raw.status == 101
    raw.send_frame(0x1, '{"type":"ping"}', mask=False)
    code, _, _ = raw.wait_close(3)
    assert code == 1002, code
    raw.close()


def test_reserved_bits_and_bad_opcode_are_protocol_errors(server):
    for kw in ({"opcode": 0x1, "rsv": 0x4}, {"opcode": 0x3}):
        raw = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "u1"))
        assert raw.status == 101
        opcode = kw.pop("opcode")
        raw.send_frame(opcode, '{"type":"ping"}', **kw)
        code, _, _ = raw.wait_close(3)
        assert code == 1002, (opcode, kw, code)
        raw.close()
    assert requests.get(server.url("/healthz"), timeout=5).status_code == 200


def test_garbage_http_request_does_not_hurt_the_server(server):
    obs = server.ws("o1", "obs")
    for junk in (b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
                 b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 200000 + b"\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            s.sendall(junk)
            s.settimeout(3)
            try:
                resp = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                resp = b""
        except (BrokenPipeError, ConnectionResetError):
            resp = b""
        finally:
            s.close()
        if resp:
            assert resp.startswith(b"HTTP/1.1 4") or resp.startswith(b"HTTP/1.0 4"), resp[:100]
    assert requests.get(server.url("/healthz"), timeout=5).status_code == 200
    obs.ping()


def test_client_disappearing_mid_frame(server):
    obs = server.ws("o1", "obs")
    raw = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "u1"))
    assert raw.status == 101
    obs.expect_presence("u1", "ONLINE", "connect")
    # Header announcing 1000 bytes, then only 10, then the socket closes.
    raw.sock.sendall(struct.pack("!BBH", 0x81, 0x80 | 126, 1000) + b"\x00" * 4 + b"x" * 10)
    raw.sock.close()
    obs.expect_presence("u1", "OFFLINE", "grace_expired", timeout=4)
    obs.ping()


# ---- log lines cannot be forged ----------------------------------------------

# What an attacker would like a second log line to say.
FORGED = "2030-01-01T00:00:00.000Z INFO 10.0.0.1: login o1/admin"


def _forged_lines(server):
    """Log lines that start with the forged text (emails are lowercased)."""
    return [l for l in server.log_text().splitlines()
            if l.lower().startswith(FORGED[:24].lower())]


def test_login_email_cannot_forge_a_log_line(server):
    # The email of a failed login is logged; a newline in it must not
    # start a line of its own (docs/security.md "Injection").
    r = server.login("x@y.example\n" + FORGED, "wrong-password")
    assert r.status_code in (400, 401), (r.status_code, r.text)
    r = server.login("a@b.example\r\n\x1b[2K" + FORGED, "wrong-password")
    assert r.status_code in (400, 401), (r.status_code, r.text)
    # log_msg writes its line before the answer goes out.
    text = server.log_text()
    assert not _forged_lines(server), text
    assert ("failed login for x@y.example\\n" + FORGED).lower() in text, \
        text[-3000:]
    assert ("failed login for a@b.example\\r\\n\\x1b[2k" + FORGED).lower() \
        in text, text[-3000:]


def test_token_claims_cannot_forge_a_log_line(server):
    # Ids from a token's claims are logged when the user is provisioned and
    # on every presence change (debug): escaped the same way.
    user = "mallory\n" + FORGED
    c = server.ws("o1", user, name="M\nX")
    c.ping()
    c.close()
    wait_until(lambda: "provisioned user o1/mallory\\n" in server.log_text(),
               5, what="provisioning logged")
    text = server.log_text()
    assert not _forged_lines(server), text
    assert "o1/mallory\\n" + FORGED in text, text[-3000:]


# ---- close frames (RFC 6455 5.5.1, 7.1.5, 7.4) -----------------------------------

def _masked(opcode, payload):
    """One masked, final client frame as bytes."""
    assert len(payload) < 126
    key = os.urandom(4)
    return (struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + key +
            bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


def _close_answer(server, payload, cuts=()):
    """Sends a close frame with payload (cut into separate writes at the
    given offsets of the whole frame, with a pause so that the server reads
    each piece on its own) and returns the server's close (code, reason)."""
    raw = RawWS(server.port, "/ws/echo")
    assert raw.status == 101, raw.head
    raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = _masked(0x8, payload)
    last = 0
    for cut in list(cuts) + [len(data)]:
        raw.sock.sendall(data[last:cut])
        last = cut
        if cut != len(data):
            time.sleep(0.1)
    code, reason, _ = raw.wait_close(5)
    raw.close()
    return code, reason


@pytest.mark.settings(echo_endpoint=1)
def test_valid_close_payloads_are_echoed(server):
    assert _close_answer(server, b"") == (None, "")
    assert _close_answer(server, struct.pack("!H", 1000)) == (1000, "")
    for code in (1000, 1001, 1003, 1011, 3000, 4999):
        assert _close_answer(server, struct.pack("!H", code) + b"bye") == \
            (code, "bye"), code
    reason = "au revoir \u00e9t\u00e9 \u2713".encode()
    assert _close_answer(server, struct.pack("!H", 1000) + reason) == \
        (1000, reason.decode())


@pytest.mark.settings(echo_endpoint=1)
def test_close_with_one_byte_payload_gets_1002(server):
    # RFC 6455 5.5.1: a close body, if any, starts with a 2-byte code; one
    # byte is no close at all. 7.4.1: 1002 protocol error.
    assert _close_answer(server, b"\x03")[0] == 1002
    assert _close_answer(server, b"\xe8", cuts=(2, 6))[0] == 1002
    # The same on the presence endpoint.
    raw = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "u1"))
    assert raw.status == 101
    assert raw.recv_json()["type"] == "hello"
    raw.sock.sendall(_masked(0x8, b"\x03"))
    code, _, _ = raw.wait_close(5)
    assert code == 1002, code
    raw.close()


@pytest.mark.settings(echo_endpoint=1)
def test_close_with_invalid_code_gets_1002(server):
    # 7.4.1: 1004-1006 and 1015 are never sent; 7.4.2: below 1000 and from
    # 5000 up are not codes; 1016-2999 are for the IETF, not assigned.
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
        got = _close_answer(server, struct.pack("!H", code) + b"x")[0]
        assert got == 1002, (code, got)


@pytest.mark.settings(echo_endpoint=1)
def test_close_with_invalid_utf8_reason_gets_1007(server):
    # 5.5.1: the reason is UTF-8; 8.1: invalid UTF-8 fails the connection
    # with 1007.
    for reason in (b"\xff", b"ok\xc3\x28", b"\xed\xa0\x80", b"cut\xe2\x82"):
        got = _close_answer(server, struct.pack("!H", 1000) + reason)[0]
        assert got == 1007, (reason, got)


@pytest.mark.settings(echo_endpoint=1)
def test_close_reason_checked_across_reads(server):
    # The reason arriving in a read of its own (header, mask key and code
    # in the first): every byte of it is checked, invalid UTF-8 at its
    # start included.
    frame_head = 2 + 4 + 2
    for reason in (b"\xff\xfe", b"\xff\xfeabc", b"\xc0\xaf"):
        got = _close_answer(server, struct.pack("!H", 1000) + reason,
                            cuts=(frame_head,))[0]
        assert got == 1007, (reason, got)
    # A valid reason in a read of its own is still valid. (Cut inside the
    # payload, wslay can take valid UTF-8 for invalid: see ws.c.)
    reason = "\u00e9\u00e9\u2713".encode()
    for cut in (2, frame_head - 2):
        got = _close_answer(server, struct.pack("!H", 1000) + reason,
                            cuts=(cut,))
        assert got == (1000, reason.decode()), (cut, got)
