"""Integration harness: run the built presenced binary and speak HTTP/WS to it.

Each test gets its own server on an ephemeral loopback port with a temp
SQLite file (h2o t/Util.pm spawn_h2o, Redis start_server), or, with
PRESENCED_TEST_BACKEND=postgresql, a fresh database of its own in one
throwaway PostgreSQL cluster per pytest process (tests/pgcluster.py);
Server.db is then that database's URI, used wherever the path was.
Tests that are about SQLite itself (its file, locks, WAL) are marked
@pytest.mark.sqlite_only("why") and skipped on PostgreSQL.  Helpers:

  Server          CLI runner, serve/stop/kill9/restart, HTTP helpers, tokens
  WSClient        a synchronous wrapper over websockets (asyncio API, 10.4)
                  driven by one background event-loop thread, so the library
                  answers the server's pings between test steps
  Drain           reads a WSClient continuously in the background, for a
                  client that must keep up while the test thread is busy
  RawWS           a raw-socket WebSocket client for frames that websockets
                  will not produce (never answering pings, unmasked frames,
                  invalid UTF-8)
  make_jwt        HS256 (or forged) tokens built in Python

Fixtures: srv (a Server, not started: seed data, then start()), server
(started), shared_server (one started server per module, for cheap cases
that each use their own organization id), own_pg (a PostgreSQL cluster
of the module's own, see clusterenv.py).  Server.seed_users() copies a
session template DB (on PostgreSQL: CREATE DATABASE ... TEMPLATE) instead
of re-running the argon2id-hashing CLI.  Server.sql() queries the database
on either backend (? placeholders, rows as dicts).  A
passing test's server is stopped without waiting; the session reaper checks
at the end that every server exited 0 within 5 s of SIGTERM with no
sanitizer report.  Settings: DEFAULT_SETTINGS, overridden per test with
@pytest.mark.settings(key=value).

The contract under test is docs/protocol.md.  Run with
  PRESENCED_BIN=/abs/build/presenced /usr/bin/python3 -m pytest -q \
      -p no:cacheprovider tests/integration
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests
import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("PRESENCED_BIN") or os.path.join(REPO, "build", "presenced")

# tests/pgcluster.py and tests/redisserver.py, for this file and the tests.
sys.path.insert(0, os.path.join(REPO, "tests"))
import pgcluster  # noqa: E402

# The database backend every Server of this run uses: "sqlite" (a file per
# test, the default) or "postgresql" (a database per test in one cluster
# per pytest process, see _pg_cluster).
BACKEND = os.environ.get("PRESENCED_TEST_BACKEND", "sqlite").strip().lower() or "sqlite"
if BACKEND in ("pg", "postgres"):
    BACKEND = "postgresql"
PG = BACKEND == "postgresql"

JWT_SECRET = "integration-test-secret-0123456789abcdef"  # 40 bytes
assert len(JWT_SECRET) == 40

# Timings every server starts with (tests override per case).  hello reports
# heartbeat/away_after/offline_after in seconds, so keep those whole.
DEFAULT_SETTINGS = {
    "grace": "1s",
    "heartbeat": "1s",
    "login_grace": "2s",
    "restart_grace": "2s",
    "away_after": "300s",
    "offline_after": "1800s",
    "stale_after": "30m",
    "sweep": "1m",
    "flush": "500ms",
    "login_limit": "10",
    "login_window": "5m",
    "log_level": "debug",
}

# Set only when the binary knows them (older builds refuse unknown keys).
# The suite opens many connections from 127.0.0.1 in quick succession
# (readiness polling, one handshake per case); the per-address rate limit
# is not what those tests are about (test_limits.py sets it when it is).
# Likewise the per-user status rate: many tests flip statuses quickly, and
# test_hardening2.py sets it where it is the subject.
OPTIONAL_SETTINGS = {"conn_rate": "100000", "status_rate": "100000"}
_known_optional = None


def known_optional_settings():
    """The OPTIONAL_SETTINGS the binary accepts (probed once: a setting it
    does not know makes any command exit 2 with "unknown setting")."""
    global _known_optional
    if _known_optional is None:
        _known_optional = {}
        for k, v in OPTIONAL_SETTINGS.items():
            env = {x: y for x, y in os.environ.items() if not x.startswith("PRESENCED_")}
            env["PRESENCED_JWT_SECRET"] = JWT_SECRET
            env["PRESENCED_" + k.upper()] = v
            d = tempfile.mkdtemp(prefix="presenced-probe-")
            try:
                p = subprocess.run([BIN, "token", "--org", "probe", "--user", "probe",
                                    "--db", os.path.join(d, "probe.db")],
                                   env=env, capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                continue
            finally:
                shutil.rmtree(d, ignore_errors=True)
            if "unknown setting" not in p.stderr:
                _known_optional[k] = v
    return _known_optional

_REAPER = []        # (Server, signalled_at) waiting to exit, see reap()
_TEMPLATES = {}     # seed key -> DB file (PostgreSQL: template database name)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")

STATUS_CODES = {"OFFLINE": 0, "AWAY": 1, "ONLINE": 2, "BUSY": 3}
REASONS = {"connect", "idle", "active", "manual", "login", "logout",
           "disconnect", "grace_expired", "stale", "restart"}


def now_ms():
    return int(time.time() * 1000)


# Under pytest-xdist (make test runs the integration tests in parallel),
# two workers asking the kernel for a free port at once may both be handed
# the same one before either server binds it.  So each worker takes ports
# from a range of its own, below the kernel's ephemeral range (32768+),
# checking that nobody listens there; alone, the kernel chooses.  It
# starts at a random place in its range, so that another test session
# running at the same time is unlikely to walk the same ports.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_next_port = None


def free_port(host="127.0.0.1"):
    global _next_port
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    if not _WORKER.startswith("gw"):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        return port
    lo = 12000 + 2500 * (int(_WORKER[2:]) % 8)
    if _next_port is None:
        _next_port = lo + random.randrange(2500)
    for _ in range(2500):
        port = _next_port
        _next_port = lo + (_next_port - lo + 1) % 2500
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in %d..%d" % (lo, lo + 2499))


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until truthy; returns its value or fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


# ---------------------------------------------------------------- JWT ----

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def make_jwt(claims, secret=JWT_SECRET, alg="HS256", header=None,
             signature=None):
    """Builds a compact JWT.  alg "HS256" signs with secret; anything else
    (e.g. "none") leaves the signature empty unless one is given."""
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    h = b64url(json.dumps(hdr, separators=(",", ":")))
    p = b64url(json.dumps(claims, separators=(",", ":")))
    signing_input = (h + "." + p).encode()
    if signature is None:
        if alg == "HS256":
            key = secret.encode() if isinstance(secret, str) else secret
            signature = b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
        else:
            signature = ""
    return h + "." + p + "." + signature


def token_for(org, user, name=None, ttl=3600, **extra):
    claims = {"sub": user, "org": org, "exp": int(time.time()) + ttl}
    if name is not None:
        claims["name"] = name
    claims.update(extra)
    return make_jwt(claims)


def jwt_claims(token):
    parts = token.split(".")
    assert len(parts) == 3, "not a compact JWT: %r" % token
    return json.loads(b64url_decode(parts[1]))


def jwt_verify_hs256(token, secret=JWT_SECRET):
    h, p, s = token.split(".")
    want = hmac.new(secret.encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    return hmac.compare_digest(want, b64url_decode(s))


# ------------------------------------------------------- event loop ----

class _Loop:
    """One asyncio loop in a daemon thread for every WSClient, so the
    websockets library keeps answering pings while the test thread sleeps."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="ws-loop",
                                       daemon=True)
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise


_LOOP = None


def loop():
    global _LOOP
    if _LOOP is None:
        _LOOP = _Loop()
    return _LOOP


class NoMessage(AssertionError):
    pass


class WSClient:
    """A synchronous WebSocket client of the presence endpoint.

    Presence events whose seq is not above the snapshot's are dropped (the
    snapshot already includes them, docs/protocol.md).  Every other frame is
    recorded in .log.  .view is the member map built from the snapshot and
    the events since; .seq_errors lists seq values that did not follow the
    previous one by exactly one."""

    def __init__(self, ws, label=""):
        self.ws = ws
        self.label = label
        self.log = []
        self.hello = None
        self.snapshot = None
        self.last_seq = None
        self.seq_errors = []
        self.view = {}

    # -- connection ------------------------------------------------------
    @classmethod
    def connect(cls, url, headers=None, origin=None, timeout=5.0, label="",
                read_initial=True, max_size=4 * 1024 * 1024):
        async def go():
            return await websockets.connect(
                url, extra_headers=headers or {}, origin=origin,
                compression=None, ping_interval=None, open_timeout=timeout,
                close_timeout=2, max_size=max_size)
        ws = loop().run(go(), timeout + 1)
        c = cls(ws, label=label)
        if read_initial:
            c.hello = c.expect("hello", timeout=timeout, strict=True)
            c.snapshot = c.expect("snapshot", timeout=timeout, strict=True)
            c.settle_self()
        return c

    def settle_self(self, timeout=2.0):
        """The snapshot may have been taken before this connection's own
        connect event (which then follows with a higher seq).  If the
        snapshot does not yet show the caller with hello's status, the next
        frame must be that event; it is consumed (kept in .own_event)."""
        self.own_event = None
        me = self.hello.get("user")
        if self.view.get(me, {}).get("status") == self.hello.get("status"):
            return
        self.own_event = self.expect_presence(me, self.hello.get("status"),
                                              timeout=timeout)

    def _process(self, msg):
        """Returns msg, or None if it is a presence event the snapshot
        already includes."""
        if not isinstance(msg, dict):
            return msg
        t = msg.get("type")
        if t == "snapshot":
            self.last_seq = msg.get("seq")
            self.view = {m.get("user"): dict(m) for m in msg.get("members", [])}
        elif t == "presence":
            seq = msg.get("seq")
            if self.snapshot is not None and isinstance(seq, int) \
                    and isinstance(self.snapshot.get("seq"), int) \
                    and seq <= self.snapshot["seq"]:
                return None
            if self.last_seq is not None and seq != self.last_seq + 1:
                self.seq_errors.append((self.last_seq, seq))
            if isinstance(seq, int):
                self.last_seq = seq
            m = self.view.setdefault(msg.get("user"), {})
            for k in ("user", "name", "status", "last_seen"):
                if k in msg:
                    m[k] = msg[k]
        return msg

    def recv_raw(self, timeout=3.0):
        """Next frame as received (str or bytes).  Raises NoMessage on
        timeout, websockets ConnectionClosed when the server closed."""
        async def go():
            return await asyncio.wait_for(self.ws.recv(), timeout)
        try:
            return loop().run(go(), timeout + 2)
        except asyncio.TimeoutError:
            raise NoMessage("%s: no frame within %.2fs" % (self.label, timeout))
        except TimeoutError:
            raise NoMessage("%s: no frame within %.2fs" % (self.label, timeout))

    def recv_json(self, timeout=3.0):
        """Next JSON frame (skipping presence events already in the
        snapshot)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoMessage("%s: no frame within %.2fs" % (self.label, timeout))
            raw = self.recv_raw(left)
            assert isinstance(raw, str), \
                "%s: server sent a binary frame %r" % (self.label, raw[:80])
            try:
                msg = json.loads(raw)
            except ValueError:
                raise AssertionError("%s: server sent non-JSON text %r"
                                     % (self.label, raw[:200]))
            assert isinstance(msg, dict), "%s: frame is not an object: %r" % (self.label, msg)
            msg = self._process(msg)
            if msg is None:
                continue
            self.log.append(msg)
            return msg

    def expect(self, type_, pred=None, timeout=3.0, strict=False):
        """Returns the first frame of type type_ satisfying pred.  strict:
        the very next frame must be it; otherwise other frames are skipped
        (they stay in .log)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self.recv_json(max(left, 0.001))
            except NoMessage:
                raise AssertionError(
                    "%s: no %s frame%s within %.1fs; skipped: %s"
                    % (self.label, type_, " matching" if pred else "", timeout,
                       json.dumps(skipped)[:1500]))
            if msg.get("type") == type_ and (pred is None or pred(msg)):
                return msg
            if strict:
                raise AssertionError("%s: expected a %s frame, got %s"
                                     % (self.label, type_, json.dumps(msg)))
            skipped.append(msg)

    def expect_presence(self, user, status, reason=None, timeout=3.0):
        """The next frame must be a presence event for user with status
        (and reason); its seq must follow the previous one by one."""
        try:
            msg = self.recv_json(timeout)
        except NoMessage:
            raise AssertionError(
                "%s: expected presence %s %s%s within %.1fs, got nothing"
                % (self.label, user, status,
                   " (%s)" % reason if reason else "", timeout))
        want = {"type": "presence", "user": user, "status": status}
        if reason is not None:
            want["reason"] = reason
        got = {k: msg.get(k) for k in want}
        assert got == want, "%s: expected %s, got %s" % (
            self.label, json.dumps(want), json.dumps(msg))
        assert not self.seq_errors, "%s: seq did not grow by one: %r" % (
            self.label, self.seq_errors)
        assert isinstance(msg.get("seq"), int), msg
        return msg

    def wait_presence(self, user, status, reason=None, timeout=3.0):
        """Skips frames until a presence event for user with status."""
        def pred(m):
            return m.get("user") == user and m.get("status") == status and \
                (reason is None or m.get("reason") == reason)
        return self.expect("presence", pred, timeout)

    def assert_no_message(self, duration):
        """Fails if any frame (other than already-included presence events)
        arrives within duration seconds."""
        try:
            msg = self.recv_json(duration)
        except NoMessage:
            return
        raise AssertionError("%s: expected no frame for %.1fs, got %s"
                             % (self.label, duration, json.dumps(msg)))

    # -- sending ----------------------------------------------------------
    def send_text(self, text):
        loop().run(self.ws.send(text), 5)

    def send_bytes(self, data):
        loop().run(self.ws.send(bytes(data)), 5)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_fragments(self, parts):
        async def go():
            await self.ws.send(iter(parts))
        loop().run(go(), 5)

    def set_auto(self, status):
        self.send_json({"type": "status", "status": status, "auto": True})

    def set_manual(self, status):
        self.send_json({"type": "status", "status": status})

    def ping(self, timeout=3.0):
        """Sends {"type":"ping"}; the next frame other than presence events
        (which are recorded in .log and .view) must be a pong."""
        self.send_json({"type": "ping"})
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.recv_json(max(deadline - time.monotonic(), 0.001))
            except NoMessage:
                raise AssertionError("%s: no pong within %.1fs" % (self.label, timeout))
            if msg.get("type") == "pong":
                return msg
            if msg.get("type") != "presence":
                raise AssertionError("%s: expected a pong frame, got %s"
                                     % (self.label, json.dumps(msg)))

    # -- closing -----------------------------------------------------------
    def close(self, code=1000):
        try:
            loop().run(self.ws.close(code), 5)
        except Exception:
            pass

    def wait_closed(self, timeout=5.0):
        """Waits until the server closed the connection, reading (and
        recording) frames meanwhile.  Returns (code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: connection still open after %.1fs"
                                     % (self.label, timeout))
            try:
                raw = self.recv_raw(left)
            except NoMessage:
                continue
            except websockets.exceptions.ConnectionClosed:
                break
            if isinstance(raw, str):
                try:
                    self.log.append(json.loads(raw))
                except ValueError:
                    self.log.append(raw)
        loop().run(self.ws.wait_closed(), 5)
        return self.ws.close_code, self.ws.close_reason

    @property
    def open(self):
        return self.ws.open


def connect_status(url, headers=None, origin=None, timeout=5.0):
    """Tries a WebSocket handshake; returns the HTTP status the server
    refused it with, or 101 (and closes) if it was accepted."""
    try:
        c = WSClient.connect(url, headers=headers, origin=origin,
                             timeout=timeout, read_initial=False)
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    c.close()
    return 101


class Drain:
    """Reads a WSClient's frames all the time, in a task of its own on the
    client loop, so that the client keeps up however long the test thread
    is busy elsewhere.  (A WSClient read only from the test thread stops
    reading past 32 unread messages, websockets' max_queue, and then
    answers no ping either: to the server, a slow consumer.)  Frames go
    through the client's own bookkeeping (.log, .view, .seq_errors).
    ping() sends {"type":"ping"} and waits for its pong; wait() waits for
    a condition on the client; stop() ends the task, after which the
    client is read as usual (and, unread, falls behind again)."""

    def __init__(self, client):
        self.client = client
        self.cond = threading.Condition()
        self.pongs = 0
        self.closed = None      # (code, reason) once the server closed
        self.error = None

        async def start():
            return asyncio.ensure_future(self._run())
        self.task = loop().run(start(), 5)

    async def _run(self):
        c = self.client
        try:
            async for raw in c.ws:
                msg = json.loads(raw) if isinstance(raw, str) else raw
                if isinstance(msg, dict):
                    msg = c._process(msg)
                with self.cond:
                    if msg is not None:
                        c.log.append(msg)
                    if isinstance(msg, dict) and msg.get("type") == "pong":
                        self.pongs += 1
                    self.cond.notify_all()
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:     # reported by ping() and stop()
            self.error = e
        with self.cond:
            if not c.ws.open:
                self.closed = (c.ws.close_code, c.ws.close_reason)
            self.cond.notify_all()

    def _check(self):
        assert self.error is None, "%s: reader failed: %r" % (
            self.client.label, self.error)
        assert self.closed is None, "%s: closed by the server %r" % (
            self.client.label, self.closed)

    def ping(self, timeout):
        with self.cond:
            want = self.pongs + 1
        self.client.send_json({"type": "ping"})
        with self.cond:
            self.cond.wait_for(lambda: self.pongs >= want or self.closed
                               or self.error, timeout)
            self._check()
            assert self.pongs >= want, "%s: no pong within %.1fs" % (
                self.client.label, timeout)

    def wait(self, pred, timeout, what="condition"):
        """Waits until pred(client) is true (checked as frames arrive)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: pred(self.client) or self.closed
                                    or self.error, timeout)
            self._check()
            assert ok, "%s: no %s within %.1fs" % (self.client.label, what,
                                                   timeout)

    def stop(self):
        async def cancel():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        loop().run(cancel(), 5)
        self._check()


# ---------------------------------------------------------- raw WS ----

def slow_reader(port, path):
    """A socket that asks for a WebSocket at path and then never reads.
    Its small receive buffer, set before connecting, keeps the kernel from
    soaking up megabytes on the server's behalf, so the server's own queue
    for it fills. The 101 answer is left unread."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % path).encode())
    return s


class RawWS:
    """A WebSocket client over a plain socket: nothing is automatic (no
    pong, no close reply)."""

    def __init__(self, port, path, headers=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path,
                 "Host: 127.0.0.1:%d" % port,
                 "Upgrade: websocket",
                 "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key,
                 "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n", timeout)
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.status = int(status_line.split()[1])
        self.head = head.decode("latin-1")
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            assert want in self.head, "bad Sec-WebSocket-Accept in %r" % self.head

    def _read_until(self, marker, timeout):
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoMessage("raw: timeout waiting for %r" % marker)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise NoMessage("raw: timeout waiting for %r" % marker)
            if not data:
                raise ConnectionError("raw: connection closed")
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_n(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoMessage("raw: timeout")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise NoMessage("raw: timeout")
            if not data:
                raise ConnectionError("raw: connection closed")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            hdr += key
        self.sock.sendall(hdr + payload)

    def send_text(self, text):
        self.send_frame(0x1, text)

    def recv_frame(self, timeout=3.0):
        """(opcode, payload) of the next frame; raises NoMessage on timeout,
        ConnectionError on EOF."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._read_n(2, deadline)
        opcode = b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_n(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_n(8, deadline))[0]
        key = self._read_n(4, deadline) if b1 & 0x80 else None
        payload = self._read_n(n, deadline)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return opcode, payload

    def recv_json(self, timeout=3.0):
        """Next text frame as JSON, skipping control frames."""
        deadline = time.monotonic() + timeout
        while True:
            op, payload = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            if op == 0x1:
                return json.loads(payload)
            if op == 0x8:
                raise AssertionError("raw: closed %r while waiting for text" % payload)

    def wait_close(self, timeout=5.0):
        """Reads until a close frame; returns (code, reason, pings_seen)."""
        deadline = time.monotonic() + timeout
        pings = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("raw: no close frame within %.1fs" % timeout)
            try:
                op, payload = self.recv_frame(left)
            except NoMessage:
                raise AssertionError("raw: no close frame within %.1fs" % timeout)
            except (ConnectionError, OSError) as e:
                raise AssertionError("raw: connection dropped without a close "
                                     "frame (%s)" % e)
            if op == 0x9:
                pings += 1
            elif op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:].decode("utf-8", "replace"), pings

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------- database ----

# PostgreSQL: one cluster per pytest process (each xdist worker its own),
# started by the session fixture _pg_cluster; every Server gets a fresh
# database in it.  A database is dropped once its server has exited.
_CLUSTER = None
_DB_SEQ = 0
_PG_DROP = []       # Servers whose database goes once their process exited


def is_pg_uri(db):
    return db.startswith(("postgresql://", "postgres://"))


def pg_new_db(prefix="t", template=None):
    """Creates a fresh database in the session's cluster; returns its name."""
    global _DB_SEQ
    assert _CLUSTER is not None, "no PostgreSQL cluster (session fixture)"
    _DB_SEQ += 1
    name = "%s%d" % (prefix, _DB_SEQ)
    _CLUSTER.create_db(name, template=template)
    return name


def pg_drop_db(name):
    if _CLUSTER is not None:
        _CLUSTER.drop_db(name)


def _pg_drop_finished():
    """Drops the databases of servers that have exited (a passing test's
    server is reaped only at the end: its database need not wait)."""
    for s in list(_PG_DROP):
        if s.proc is None or s.proc.poll() is not None:
            _PG_DROP.remove(s)
            s.drop_db()


def new_db(tmpdir, name):
    """A new, empty database for a CLI or server run of a test's own: a
    file in tmpdir (SQLite) or a fresh database (PostgreSQL, its URI)."""
    if PG:
        return _CLUSTER.uri(pg_new_db("x"))
    return os.path.join(str(tmpdir), name + ".db")


def missing_db(tmpdir):
    """A database that cannot be opened: a file in a directory that does
    not exist (SQLite), a database the cluster does not have (PG)."""
    if PG:
        return _CLUSTER.uri("no_such_database")
    return os.path.join(str(tmpdir), "missing", "presenced.db")


def _pg_query(con, query, params, many=False):
    # The tests write SQLite's ? placeholders; psycopg2 wants %s (and a
    # literal % doubled once there are parameters).
    if params or many:
        query = query.replace("%", "%%").replace("?", "%s")
    cur = con.cursor()
    if many:
        import psycopg2.extras      # executemany, 100 rows a round trip
        psycopg2.extras.execute_batch(cur, query, params, page_size=500)
    else:
        cur.execute(query, tuple(params) if params else None)
    if cur.description is None:
        return []
    names = [d[0] for d in cur.description]
    return [{k: (bytes(v) if isinstance(v, memoryview) else v)
             for k, v in zip(names, r)} for r in cur.fetchall()]


def db_query(db, query, params=(), many=False):
    """Runs one statement (many: executemany over params) on db, a SQLite
    file or a PostgreSQL URI, commits, and returns the rows as dicts."""
    if is_pg_uri(db):
        import psycopg2
        con = psycopg2.connect(db, connect_timeout=10)
        try:
            rows = _pg_query(con, query, params, many)
            con.commit()
            return rows
        finally:
            con.close()
    con = sqlite3.connect(db, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        if many:
            cur = con.executemany(query, params)
        else:
            cur = con.execute(query, params)
        rows = [dict(r) for r in cur.fetchall()]
        con.commit()
        return rows
    finally:
        con.close()


# ----------------------------------------------------------- server ----

class Server:
    """One presenced instance: temp dir, DB, port, settings, process."""

    def __init__(self, tmpdir, settings=None):
        self.dir = str(tmpdir)
        self.pg_name = None
        if PG:
            _pg_drop_finished()
            self.pg_name = pg_new_db()
            self.db = _CLUSTER.uri(self.pg_name)
        else:
            self.db = os.path.join(self.dir, "presenced.db")
        self.port = free_port()
        self.settings = dict(DEFAULT_SETTINGS)
        self.settings.update(known_optional_settings())
        self.settings.update(settings or {})
        self.proc = None
        self.logs = []          # every serve log file, in order
        self.cli_runs = []      # (argv, rc, stdout, stderr) for failure reports
        self.extra_env = {}
        self.starts = 0

    # -- environment ---------------------------------------------------------
    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def origin(self):
        return "http://127.0.0.1:%d" % self.port

    def env(self, settings=True, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
        env["PRESENCED_JWT_SECRET"] = JWT_SECRET
        env["PRESENCED_DB"] = self.db
        # make test runs the suite with one loop per core, and again under
        # the sanitizers with TEST_LOOPS=4 (more threads than cores).
        if os.environ.get("TEST_LOOPS"):
            env["PRESENCED_LOOPS"] = os.environ["TEST_LOOPS"]
        if settings:
            for k, v in self.settings.items():
                if v is not None:
                    env["PRESENCED_" + k.upper()] = str(v)
        env.update(self.extra_env)
        if extra:
            for k, v in extra.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
        return env

    # -- CLI -------------------------------------------------------------------
    def cli(self, *args, input=None, env=None, db=True, timeout=30):
        """Runs presenced ARGS [--db DB]; returns the CompletedProcess."""
        argv = [BIN] + [str(a) for a in args]
        if db:
            argv += ["--db", self.db]
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           env=env if env is not None else self.env(),
                           timeout=timeout)
        self.cli_runs.append((argv, p.returncode, p.stdout, p.stderr))
        for m in SANITIZER_MARKERS:
            assert m not in p.stderr, "sanitizer report from %r:\n%s" % (argv, p.stderr)
        return p

    def cli_ok(self, *args, **kw):
        p = self.cli(*args, **kw)
        assert p.returncode == 0, "%r exited %d\nstdout: %s\nstderr: %s" % (
            args, p.returncode, p.stdout, p.stderr)
        return p

    def add_org(self, org, name=None):
        args = ["org", "add", org]
        if name:
            args += ["--name", name]
        return self.cli_ok(*args)

    def add_user(self, org, user=None, name=None, email=None, password="pw-secret-123"):
        args = ["user", "add", "--org", org,
                "--email", email or "%s@%s.example" % (user or "user", org),
                "--name", name or user or "User"]
        if user:
            args += ["--id", user]
        p = self.cli_ok(*args, input=password + "\n")
        out = p.stdout.strip()
        assert out, "user add printed no id"
        if user:
            assert out.splitlines()[-1].strip() == user, \
                "user add --id %s printed %r" % (user, out)
        return out.splitlines()[-1].strip()

    def seed_users(self, *users):
        """Creates organizations and users (org, id[, name]) with the CLI
        (email id@org.example, the default password), through a session
        template of the same list."""
        def build(s):
            orgs = []
            for u in users:
                if u[0] not in orgs:
                    s.add_org(u[0])
                    orgs.append(u[0])
                s.add_user(u[0], u[1], name=u[2] if len(u) > 2 else None)
        self.seed("users:" + repr(users), build)

    # -- process -------------------------------------------------------------
    def start(self, wait=True, args=(), env_extra=None):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log_path = os.path.join(self.dir, "serve-%d.log" % self.starts)
        self.logs.append(log_path)
        self.log_file = open(log_path, "wb")
        argv = [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--db", self.db] + list(args)
        self.proc = subprocess.Popen(argv, stdout=self.log_file,
                                     stderr=subprocess.STDOUT,
                                     env=self.env(extra=env_extra))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("presenced serve exited %d before ready:\n%s"
                                     % (rc, self.log_text()))
            try:
                r = requests.get(self.base + "/healthz", timeout=1)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("presenced not ready after %.0fs:\n%s"
                                     % (timeout, self.log_text()))
            time.sleep(0.03)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0, check=True):
        """SIGTERM; asserts exit within timeout (and status 0 if check)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("presenced did not exit within %.0fs of SIGTERM"
                                     % timeout)
        self.log_file.close()
        rc = self.proc.returncode
        if check:
            assert rc == 0, "presenced exited %d after SIGTERM:\n%s" % (rc, self.log_text()[-4000:])
            self.check_sanitizers()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log_file.close()

    def restart(self, **kw):
        if self.running:
            self.stop()
        return self.start(**kw)

    def log_text(self):
        out = []
        for p in self.logs:
            try:
                with open(p, "rb") as f:
                    out.append("==> %s <==\n%s" % (os.path.basename(p),
                                                   f.read().decode("utf-8", "replace")))
            except OSError:
                pass
        return "\n".join(out)

    def check_sanitizers(self):
        text = self.log_text()
        for m in SANITIZER_MARKERS:
            assert m not in text, "sanitizer report in server log:\n%s" % text[-6000:]

    def teardown(self, wait=True):
        """Always leaves no process behind.  A server still running gets
        SIGTERM and must exit 0 within 5 s (ASan/LSan make it exit non-zero
        on a leak).  wait=False hands the wait to the session reaper (the
        server needs ~200 ms to stop), which checks the same at the end."""
        if self.pg_name is not None:
            _PG_DROP.append(self)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if not wait:
                _REAPER.append((self, time.monotonic()))
                return
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log_file.close()
                raise AssertionError("presenced did not exit within 5s of SIGTERM")
            self.log_file.close()
            rc = self.proc.returncode
            assert rc == 0, "presenced exited %d after SIGTERM at teardown" % rc
        self.log_file.close()

    def reap(self, signalled_at):
        """For the reaper: returns an error string or None."""
        try:
            self.proc.wait(max(5 - (time.monotonic() - signalled_at), 0.01))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.log_file.close()
            return "did not exit within 5s of SIGTERM"
        self.log_file.close()
        if self.proc.returncode != 0:
            return "exited %d after SIGTERM:\n%s" % (self.proc.returncode,
                                                     self.log_text()[-4000:])
        try:
            self.check_sanitizers()
        except AssertionError as e:
            return str(e)
        return None

    # -- templates -------------------------------------------------------------
    def seed(self, key, build):
        """Fills the (not yet created) DB: build(self) runs CLI commands the
        first time a key is seen in this session; later calls copy that DB
        file (argon2id hashing makes `user add` cost ~0.3 s)."""
        if PG:
            return self._seed_pg(key, build)
        assert not os.path.exists(self.db)
        path = _TEMPLATES.get(key)
        if path is None:
            build(self)
            path = os.path.join(self.dir, "template-%s.db" % key)
            con = sqlite3.connect(self.db)
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.execute("VACUUM INTO ?", (path,))
            finally:
                con.close()
            _TEMPLATES[key] = path
        else:
            shutil.copyfile(path, self.db)

    def _seed_pg(self, key, build):
        """seed() on PostgreSQL: the template is a database of its own,
        made from this one once build() filled it (CREATE DATABASE ...
        TEMPLATE copies it; nothing may be connected to either), and
        later servers' databases are made from it."""
        assert self.proc is None, "seed() after the server started"
        tpl = _TEMPLATES.get(key)
        if tpl is None:
            build(self)
            tpl = pg_new_db("tpl", template=self.pg_name)
            _TEMPLATES[key] = tpl
        else:
            pg_drop_db(self.pg_name)
            self.pg_name = pg_new_db(template=tpl)
            self.db = _CLUSTER.uri(self.pg_name)

    def drop_db(self):
        """PostgreSQL: drops this server's database (its process has
        exited)."""
        if self.pg_name is not None:
            try:
                pg_drop_db(self.pg_name)
            finally:
                self.pg_name = None

    # -- HTTP ----------------------------------------------------------------
    def url(self, path):
        return self.base + path

    def http(self, method, path, token=None, cookie=None, headers=None, **kw):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if cookie:
            h["Cookie"] = "presenced_session=" + cookie
        kw.setdefault("timeout", 5)
        return requests.request(method, self.url(path), headers=h,
                                allow_redirects=False, **kw)

    def login(self, email, password="pw-secret-123"):
        r = self.http("POST", "/api/login", json={"email": email, "password": password})
        return r

    def login_ok(self, email, password="pw-secret-123"):
        r = self.login(email, password)
        assert r.status_code == 200, (r.status_code, r.text)
        cookie = r.cookies.get("presenced_session")
        assert cookie, "no presenced_session cookie: %r" % r.headers.get("Set-Cookie")
        return r.json(), cookie

    def presence(self, token):
        r = self.http("GET", "/api/presence", token=token)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    # -- WebSocket -------------------------------------------------------------
    def ws_url(self, path="/ws/presence/", token=None):
        u = "ws://127.0.0.1:%d%s" % (self.port, path)
        if token:
            u += ("&" if "?" in path else "?") + "token=" + token
        return u

    def ws(self, org, user, name=None, path="/ws/presence/", label=None, **kw):
        """Connects as org/user with a fresh token; hello and snapshot are
        read (c.hello, c.snapshot)."""
        tok = token_for(org, user, name=name)
        return WSClient.connect(self.ws_url(path, tok), label=label or "%s/%s" % (org, user), **kw)

    def ws_token(self, token, path="/ws/presence/", label="ws", **kw):
        return WSClient.connect(self.ws_url(path, token), label=label, **kw)

    # -- database --------------------------------------------------------------
    def sql(self, query, params=()):
        """One statement on the server's database, either backend: ?
        placeholders; rows as dicts (BLOB/BYTEA as bytes).  Quote the
        column "user" (a keyword in PostgreSQL; SQLite accepts it)."""
        return db_query(self.db, query, params)

    def sql_many(self, query, rows):
        """executemany: the statement once per row of parameters."""
        return db_query(self.db, query, rows, many=True)

    def tables(self):
        """The names of the database's tables."""
        if PG:
            q = ("SELECT table_name AS name FROM information_schema.tables "
                 "WHERE table_schema = current_schema()")
        else:
            q = "SELECT name FROM sqlite_master WHERE type='table'"
        return {r["name"] for r in self.sql(q)}

    def columns(self, table):
        """The names of a table's columns."""
        if PG:
            return {r["name"] for r in self.sql(
                "SELECT column_name AS name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (table,))}
        return {r["name"] for r in self.sql("PRAGMA table_info(%s)" % table)}

    def stored_bytes(self):
        """Everything the database keeps on disk, as one byte string: the
        file with its WAL and journal (SQLite); the database's directory
        and the cluster's WAL, after a checkpoint (PostgreSQL)."""
        paths = []
        if PG:
            oid = self.sql("SELECT oid FROM pg_database "
                           "WHERE datname = current_database()")[0]["oid"]
            self.sql("CHECKPOINT")
            for sub in (os.path.join("base", str(oid)), "pg_wal"):
                top = os.path.join(_CLUSTER.datadir, sub)
                for d, _, files in os.walk(top):
                    paths += [os.path.join(d, f) for f in sorted(files)]
        else:
            paths = [self.db + suffix for suffix in ("", "-wal", "-journal")]
        data = []
        for p in paths:
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    data.append(f.read())
        return b"".join(data)

    def hold_write_lock(self):
        """Takes the database's write lock from a connection of the test's
        own and returns it (rollback() and close() release the lock): BEGIN
        EXCLUSIVE (SQLite); every table locked IN EXCLUSIVE MODE
        (PostgreSQL: reads go on, every write waits)."""
        if PG:
            import psycopg2
            names = sorted(self.tables())
            con = psycopg2.connect(self.db, connect_timeout=10)
            con.cursor().execute("LOCK TABLE %s IN EXCLUSIVE MODE" % ", ".join(
                '"%s"' % n for n in names))
            return con
        con = sqlite3.connect(self.db, timeout=1)
        con.execute("BEGIN EXCLUSIVE")
        return con

    def db_user(self, org, user):
        rows = self.sql("SELECT * FROM users WHERE org=? AND id=?", (org, user))
        return rows[0] if rows else None


# ---------------------------------------------------------- fixtures ----

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _check_bin():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.fail("presenced binary not found at %s (set PRESENCED_BIN)" % BIN,
                    pytrace=False)


def _settings_of(request):
    m = request.node.get_closest_marker("settings")
    return dict(m.kwargs) if m else {}


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "settings(**kw): server settings for this test")
    if BACKEND not in ("sqlite", "postgresql"):
        raise pytest.UsageError("PRESENCED_TEST_BACKEND=%r: want sqlite or "
                                "postgresql" % BACKEND)


def pytest_report_header(config):
    if PG:
        return "presenced backend: postgresql (a throwaway cluster per " \
               "pytest process, a database per server)"
    return "presenced backend: sqlite (a file per server)"


def pytest_runtest_setup(item):
    m = item.get_closest_marker("sqlite_only")
    if m is not None and PG:
        why = m.args[0] if m.args else m.kwargs.get("reason", "")
        pytest.skip("SQLite only: %s" % why)


@pytest.fixture
def srv(request, tmp_path):
    """A Server, not started yet (create data with the CLI, then start())."""
    _check_bin()
    s = Server(tmp_path, _settings_of(request))
    yield s
    err = None
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    try:
        # A passing test does not wait the ~200 ms the server takes to stop:
        # the session reaper checks the exit status and log at the end.
        s.teardown(wait=failed)
    except AssertionError as e:
        err = e
    if failed or err is not None:
        sys.stderr.write("\n---- presenced log (%s) ----\n%s\n" % (request.node.name,
                                                                    s.log_text()[-20000:]))
        for argv, rc, out, errout in s.cli_runs[-10:]:
            sys.stderr.write("---- cli %s -> %d\nstdout: %s\nstderr: %s\n"
                             % (" ".join(argv[1:]), rc, out, errout))
    if err is not None:
        raise err
    if s.proc is not None and not failed and not s.running:
        s.check_sanitizers()
    s.test_name = request.node.nodeid


@pytest.fixture(scope="session", autouse=True)
def _pg_cluster():
    """PRESENCED_TEST_BACKEND=postgresql: one throwaway cluster for this
    pytest process (each xdist worker has its own), in a temp directory,
    on a free loopback port, fsync off; stopped and removed at the end."""
    global _CLUSTER
    if not PG:
        yield None
        return
    c = pgcluster.Cluster(fast=True)
    try:
        c.start()
        _CLUSTER = c
        yield c
    finally:
        _CLUSTER = None
        c.destroy()


@pytest.fixture(scope="module")
def own_pg():
    """A throwaway PostgreSQL cluster of the module's own, whichever backend
    the run uses (never _pg_cluster's): for tests that stop or kill it, or
    that share one database between several servers (clusterenv.py has
    the helpers).  Removed after the module's last test."""
    c = pgcluster.Cluster(fast=True)
    c.start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="session", autouse=True)
def _reaper(_pg_cluster):
    """Waits for every server stopped without waiting; fails the session
    (at the last test's teardown) naming each test whose server did not
    exit 0 within 5 s of SIGTERM or wrote a sanitizer report.  (Before
    the cluster goes: a server must not see its database vanish.)"""
    yield
    errors = []
    for s, t in _REAPER:
        e = s.reap(t)
        if e:
            errors.append("%s: presenced %s" % (getattr(s, "test_name", "?"), e))
    _REAPER.clear()
    _pg_drop_finished()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def server(srv):
    """A started Server."""
    srv.start()
    return srv


@pytest.fixture(scope="module")
def _module_server(tmp_path_factory):
    _check_bin()
    s = Server(tmp_path_factory.mktemp("shared"))
    s.start()
    yield s
    s.teardown()
    s.check_sanitizers()


@pytest.fixture
def shared_server(request, _module_server):
    """One started Server for every test of a module (cheap parametrized
    cases).  Tests must use their own organization ids.  The log is printed
    when the test fails."""
    s = _module_server
    assert s.running, "the shared server died:\n%s" % s.log_text()[-6000:]
    yield s
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n---- shared presenced log ----\n%s\n" % s.log_text()[-12000:])
    assert s.running, "presenced died during %s:\n%s" % (request.node.name,
                                                         s.log_text()[-6000:])
