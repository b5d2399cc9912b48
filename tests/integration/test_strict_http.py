"""Strict HTTP/1.1 parsing (RFC 9112): where the RFC says a server must
reject, presenced answers 400 with a JSON error and closes, whatever the
lenient parser library would let through (docs/protocol.md "HTTP API")."""
import json
import socket
import time

import pytest

from conftest import token_for


def exchange(port, data, timeout=5.0):
    """Sends data and reads one response.  Returns (status, headers (lower-
    case names), body bytes, closed): closed is True when the response said
    "Connection: close" and the server then hung up."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        s.sendall(data)

        def more():
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            d = s.recv(65536)
            if not d:
                raise EOFError
            return d

        while b"\r\n\r\n" not in buf:
            buf += more()
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            buf += more()
        body, rest = buf[:n], buf[n:]
        assert not rest, "bytes after the response: %r" % rest[:100]
        closed = False
        if headers.get("connection") == "close":
            try:
                s.settimeout(max(deadline - time.monotonic(), 0.001))
                closed = s.recv(1) == b""
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
        return status, headers, body, closed
    finally:
        s.close()


def assert_refused(server, request, why=None):
    status, headers, body, closed = exchange(server.port, request)
    assert status == 400, (request, status, body)
    err = json.loads(body)["error"]
    assert err["code"] == "bad_request", err
    assert isinstance(err["message"], str) and err["message"], err
    if why:
        assert why in err["message"], err
    assert headers.get("connection") == "close", headers
    assert closed, "connection left open after a 400 for %r" % request
    # The server is none the worse.
    assert exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_well_formed_requests_still_served(shared_server):
    for req in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nhost: x\r\nX-A: b\r\nX-Empty:\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost:\r\n\r\n",      # empty is allowed
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-t0k~!#$%&'*+.^_`|: v\r\n\r\n",
                b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n",
                b"GET /healthz HTTP/1.0\r\n\r\n"):         # 1.0 may omit Host
        status, _, body, _ = exchange(shared_server.port, req)
        assert status == 200, (req, status, body)


@pytest.mark.parametrize("request_", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A  : b\r\n\r\n",
], ids=["space-before-colon", "host-space-before-colon", "two-spaces"])
def test_whitespace_before_colon_is_refused(shared_server, request_):
    # RFC 9112 5.1: "A server MUST reject, with a response status code of
    # 400 (Bad Request), any received request message that contains
    # whitespace between a header field name and colon."
    assert_refused(shared_server, request_, "header name")


@pytest.mark.parametrize("request_", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9: b\r\n\r\n",
], ids=["space", "tab", "parens", "empty", "non-ascii"])
def test_header_names_must_be_tokens(shared_server, request_):
    assert_refused(shared_server, request_)


@pytest.mark.parametrize("request_", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: b\r\nhost: b\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n",
], ids=["same", "different", "http10"])
def test_duplicate_host_is_refused(shared_server, request_):
    # RFC 9112 3.2: 400 to "any HTTP/1.1 request message that lacks a Host
    # header field and to any request message that contains more than one
    # Host header field line".
    assert_refused(shared_server, request_, "Host")


def test_missing_host_on_http11_is_refused(shared_server):
    assert_refused(shared_server, b"GET /healthz HTTP/1.1\r\n\r\n", "Host")
    assert_refused(shared_server,
                   b"GET /healthz HTTP/1.1\r\nX-Host: x\r\n\r\n", "Host")


def test_duplicate_host_on_websocket_upgrade_is_refused(shared_server):
    path = "/ws/presence/?token=" + token_for("strict", "u1")
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % path).encode()
    assert_refused(shared_server, req, "Host")


@pytest.mark.parametrize("request_", [
    b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /healthz\r\n\r\n",                       # HTTP/0.9 request form
], ids=["2.0", "1.2", "0.9", "9.9", "no-version"])
def test_versions_other_than_10_and_11_are_refused(shared_server, request_):
    assert_refused(shared_server, request_, "version")


def test_bad_request_after_a_good_one_on_the_same_connection(shared_server):
    # Pipelined: the first is served, the second refused, then the close.
    s = socket.create_connection(("127.0.0.1", shared_server.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
        out = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                break
            out += d
    finally:
        s.close()
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    assert out.count(b"HTTP/1.1 400 ") == 1, out
