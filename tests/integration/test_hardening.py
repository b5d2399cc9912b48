"""Hardening (issue 5): raw frames, reload, echo endpoint, descriptors,
crash durability, session fixation, isolation probing, injection."""
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import time

import pytest
import requests

from conftest import (BIN, JWT_SECRET, PG, Drain, NoMessage, RawWS,
                      slow_reader, token_for, wait_until)


def raw(server, org="o1", user="u1", path=None):
    r = RawWS(server.port, path or "/ws/presence/?token=" + token_for(org, user))
    assert r.status == 101, r.head
    if path is None:
        assert r.recv_json()["type"] == "hello"
        assert r.recv_json()["type"] == "snapshot"
    return r


# ---- WebSocket frames as raw bytes ----------------------------------------

def test_invalid_utf8_split_across_fragments_closes_1007(server):
    r = raw(server)
    # "é" is C3 A9; the first fragment ends inside it, the second breaks it.
    r.send_frame(0x1, b'{"type":"ping","x":"\xc3', fin=False)
    r.send_frame(0x0, b'\x28"}', fin=True)
    code, _, _ = r.wait_close(3)
    assert code == 1007, code


def frame_bytes(opcode, payload, fin=True):
    """One masked client frame as bytes (RawWS.send_frame, not sent)."""
    if isinstance(payload, str):
        payload = payload.encode()
    import struct
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def trickle(r, data, cuts, pause=0.03):
    """Sends data in pieces cut at the given offsets, pausing between them
    so that the server reads each piece on its own (the server keeps a
    connection's frame parser only while a message is incomplete)."""
    r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    last = 0
    for cut in list(cuts) + [len(data)]:
        r.sock.sendall(data[last:cut])
        last = cut
        time.sleep(pause)


def test_frames_split_anywhere_across_reads(server):
    r = raw(server)
    ping = frame_bytes(0x1, '{"type":"ping"}')
    # Byte by byte: header, mask key and payload each arrive alone.
    trickle(r, ping, range(1, len(ping)), pause=0.01)
    assert r.recv_json()["type"] == "pong"
    # A whole message, then one byte of the next header; then the rest.
    trickle(r, ping + ping, [len(ping) + 1])
    assert r.recv_json()["type"] == "pong"
    assert r.recv_json()["type"] == "pong"
    # A 16-bit length cut inside the length, then inside the mask key.
    big = frame_bytes(0x1, '{"type":"ping","pad":"%s"}' % ("x" * 300))
    trickle(r, big, [3, 6])
    assert r.recv_json()["type"] == "pong"
    # A fragmented message paused between fragments, a ping in between.
    frags = (frame_bytes(0x1, '{"type":', fin=False) +
             frame_bytes(0x9, b"mid") + frame_bytes(0x0, '"ping"}'))
    first = len(frame_bytes(0x1, '{"type":', fin=False))
    trickle(r, frags, [first, first + 9])
    got = [r.recv_frame(), r.recv_frame()]
    assert (0xA, b"mid") in got, got
    assert any(op == 0x1 and json.loads(p)["type"] == "pong" for op, p in got)


def test_invalid_utf8_split_across_paused_fragments_closes_1007(server):
    r = raw(server)
    data = (frame_bytes(0x1, b'{"type":"ping","x":"\xc3', fin=False) +
            frame_bytes(0x0, b'\x28"}'))
    trickle(r, data, [len(data) - 9])
    code, _, _ = r.wait_close(3)
    assert code == 1007, code


def test_half_frames_of_two_connections_do_not_mix(server):
    a, b = raw(server, user="u1"), raw(server, user="u2")
    assert a.recv_json()["user"] == "u2"     # b's arrival
    pa = frame_bytes(0x1, '{"type":"ping","from":"a"}')
    pb = frame_bytes(0x1, '{"type":"ping","from":"b"}')
    for s in (a, b):
        s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a.sock.sendall(pa[:9])          # a's message half read
    time.sleep(0.05)
    b.sock.sendall(pb)              # b's whole message meanwhile
    assert b.recv_json()["type"] == "pong"
    time.sleep(0.05)
    a.sock.sendall(pa[9:])
    assert a.recv_json()["type"] == "pong"
    # And a's stream is still in step: one more message is understood.
    a.sock.sendall(frame_bytes(0x1, '{"type":"status","status":"BUSY"}'))
    while True:
        m = a.recv_json()
        if m["type"] == "presence" and m["user"] == "u1":
            assert m["status"] == "BUSY"
            break


def test_whole_invalid_utf8_text_closes_1007(server):
    r = raw(server)
    r.send_frame(0x1, b'{"type":"ping","x":"\xff"}')
    code, _, _ = r.wait_close(3)
    assert code == 1007, code


def test_valid_utf8_split_across_fragments_is_fine(server):
    r = raw(server)
    r.send_frame(0x1, b'{"type":"ping","x":"\xc3', fin=False)
    r.send_frame(0x0, b'\xa9"}', fin=True)
    assert r.recv_json()["type"] == "pong"


def test_fragmented_control_frame_closes_1002(server):
    r = raw(server)
    r.send_frame(0x9, b"abc", fin=False)
    code, _, _ = r.wait_close(3)
    assert code == 1002, code


def test_oversized_control_frame_closes_1002(server):
    r = raw(server)
    r.send_frame(0x9, b"x" * 126)
    code, _, _ = r.wait_close(3)
    assert code == 1002, code


def test_ping_gets_pong_with_same_payload(server):
    r = raw(server)
    r.send_frame(0x9, b"hello-123")
    while True:
        op, payload = r.recv_frame(3)
        if op == 0xA:
            break
    assert payload == b"hello-123"


def test_continuation_without_start_closes_1002(server):
    r = raw(server)
    r.send_frame(0x0, b"abc", fin=True)
    code, _, _ = r.wait_close(3)
    assert code == 1002, code


# ---- echo endpoint ------------------------------------------------------------

def test_echo_endpoint_is_off_by_default(server):
    r = RawWS(server.port, "/ws/echo")
    assert r.status == 404


@pytest.mark.settings(echo_endpoint=1)
def test_echo_endpoint_echoes_text_binary_and_fragments(server):
    r = raw(server, path="/ws/echo")
    r.send_frame(0x1, "héllo")
    assert r.recv_frame() == (0x1, "héllo".encode())
    r.send_frame(0x2, b"\x00\x01\xff")
    assert r.recv_frame() == (0x2, b"\x00\x01\xff")
    r.send_frame(0x1, "ab", fin=False)
    r.send_frame(0x9, b"mid")            # control frames may interleave
    r.send_frame(0x0, "cd", fin=True)
    got = [r.recv_frame(), r.recv_frame()]
    assert (0xA, b"mid") in got and (0x1, b"abcd") in got, got
    r.send_frame(0x8, b"\x03\xe8")
    code, _, _ = r.wait_close(3)
    assert code == 1000


# ---- configuration reload -------------------------------------------------------

def test_sighup_reloads_the_config_file(srv, tmp_path):
    conf = tmp_path / "presenced.conf"
    conf.write_text("msg_rate = 100\n")
    srv.start(args=("--config", str(conf)))
    c = srv.ws("o1", "u1")
    for _ in range(10):
        c.send_json({"type": "ping"})
    for _ in range(10):
        assert c.recv_json()["type"] == "pong"
    conf.write_text("msg_rate = 3\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in srv.log_text(), 3,
               what="reload log line")
    time.sleep(1.1)   # a fresh one-second window
    for _ in range(5):
        c.send_json({"type": "ping"})
    got = [c.recv_json()["type"] for _ in range(4)]
    assert got == ["pong", "pong", "pong", "error"], got
    # A bad file is refused and the running configuration kept.
    conf.write_text("msg_rate = lots\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "not reloaded" in srv.log_text(), 3, what="refusal")
    assert srv.http("GET", "/healthz").status_code == 200


# ---- descriptors ------------------------------------------------------------------

# The heartbeat is long enough that a loaded machine's stalls (of the
# server, or of this test's client thread) never pass for dead clients
# (2.5 heartbeats of silence); every wait derives from it.
OOD_HEARTBEAT = 10  # seconds


@pytest.mark.settings(heartbeat="%ds" % OOD_HEARTBEAT)
def test_out_of_descriptors_keeps_live_connections(srv):
    hb = OOD_HEARTBEAT
    # Start the server with a small descriptor limit of its own.
    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    env = srv.env(extra={"PRESENCED_CONN_RATE": "1000000"})
    log = open(os.path.join(srv.dir, "emfile.log"), "w")
    srv.logs.append(log.name)   # printed by the fixture if the test fails
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % srv.port],
                            env=env, stderr=log, stdout=log, preexec_fn=lower)
    try:
        wait_until(lambda: _healthy(srv), 3 * hb, what="server up")
        # The live ones have an organization of their own: the flood's
        # connect events would otherwise pile up unread in them (a WSClient
        # not read past 32 messages stops answering pings).
        live = [srv.ws("live", "u%d" % i, timeout=hb) for i in range(5)]
        extra, refused = [], 0
        for i in range(60):          # far past the limit
            try:
                # Refused ones fail at once (libuv accepts and drops them);
                # the wait is for handshakes on a slow machine.
                extra.append(RawWS(srv.port, "/ws/presence/?token=" +
                                   token_for("o1", "x%d" % i), timeout=hb / 2))
            except (socket.timeout, NoMessage):
                pass                 # slow, not refused
            except OSError:          # ConnectionError: dropped by the server
                refused += 1
        # The live ones still work while the server is out of descriptors.
        for c in live:
            c.ping(timeout=hb)
        # Some were refused by the server: the limit was really reached.
        assert refused > 0 and len(extra) < 60, (refused, len(extra))
        for r in extra:
            r.close()
        # Descriptors come back, and new connections are accepted again.
        wait_until(lambda: _healthy(srv), 3 * hb, what="accepting again")
        late = srv.ws("o1", "late", timeout=hb)
        late.ping(timeout=hb)
        for c in live:
            c.ping(timeout=hb)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(3 * hb)
        except subprocess.TimeoutExpired:
            proc.kill()     # a wedged server must not outlive the test
            proc.wait()
        log.close()
    text = open(os.path.join(srv.dir, "emfile.log")).read()
    assert proc.returncode == 0, \
        "exit %d (-9: still running %ds after SIGTERM)" % (proc.returncode,
                                                          3 * hb)
    assert "heartbeat timeout" not in text and "answered nothing" not in text, text
    assert "ERROR: AddressSanitizer" not in text


def _healthy(srv):
    try:
        return requests.get(srv.base + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


# ---- crash durability ---------------------------------------------------------------

@pytest.mark.settings(flush="100ms", restart_grace="1s", msg_rate=1000000)
def test_kill9_under_load_keeps_database_whole(srv):
    srv.add_org("o1")
    for i in range(20):
        srv.add_user("o1", "u%d" % i)
    srv.cli_ok("channel", "add", "--org", "o1", "--name", "all",
               "--members", ",".join("u%d" % i for i in range(20)))
    srv.start()
    clients = [srv.ws("o1", "u%d" % i) for i in range(20)]
    deadline = time.time() + 1.5
    i = 0
    while time.time() < deadline:      # status churn and writes in flight
        clients[i % 20].set_manual("BUSY" if i % 2 else "ONLINE")
        i += 1
    srv.kill9()
    if not PG:      # PostgreSQL's own crash recovery is not under test
        db = sqlite3.connect(srv.db)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    assert srv.sql("SELECT count(*) AS n FROM users")[0]["n"] == 20
    assert srv.sql("SELECT count(*) AS n FROM channel_members")[0]["n"] == 20
    srv.restart()
    back = srv.ws("o1", "u0")
    # Everyone else goes OFFLINE (reason restart) once the window closes.
    gone = set()
    deadline = time.time() + 6
    while time.time() < deadline and len(gone) < 19:
        m = back.recv_json(timeout=max(deadline - time.time(), 0.1))
        if m["type"] == "presence" and m["status"] == "OFFLINE":
            assert m["reason"] == "restart", m
            gone.add(m["user"])
    assert gone == {"u%d" % i for i in range(1, 20)}, gone
    me = [m for m in srv.presence(token_for("o1", "u0"))["members"] if m["user"] == "u0"]
    assert me[0]["status"] in ("ONLINE", "BUSY")


# ---- auth ---------------------------------------------------------------------------

def test_session_fixation_login_issues_a_new_session(server):
    server.add_org("o1")
    server.add_user("o1", "ann", email="ann@x.example")
    planted = "A" * 43
    r = requests.post(server.base + "/api/login",
                      json={"email": "ann@x.example", "password": "pw-secret-123"},
                      cookies={"presenced_session": planted})
    assert r.status_code == 200, r.text
    new = r.cookies.get("presenced_session")
    assert new and new != planted
    # The planted value never became a session.
    assert server.http("GET", "/api/me", cookie=planted).status_code == 401
    assert server.http("GET", "/api/me", cookie=new).status_code == 200
    # Two logins: two different sessions.
    r2 = requests.post(server.base + "/api/login",
                       json={"email": "ann@x.example", "password": "pw-secret-123"})
    assert r2.cookies.get("presenced_session") not in (None, new)


def test_replayed_logout_session_is_refused(server):
    server.add_org("o1")
    server.add_user("o1", "ann", email="ann@x.example")
    r = requests.post(server.base + "/api/login",
                      json={"email": "ann@x.example", "password": "pw-secret-123"})
    cookie = r.cookies.get("presenced_session")
    out = server.http("POST", "/api/logout", cookie=cookie,
                      headers={"X-Requested-With": "t"})
    assert out.status_code == 200
    for method, path in (("GET", "/api/me"), ("POST", "/api/logout")):
        again = server.http(method, path, cookie=cookie,
                            headers={"X-Requested-With": "t"})
        assert again.status_code == 401, (path, again.status_code)


# ---- isolation ----------------------------------------------------------------------

def test_second_org_learns_nothing_from_any_route_or_message(server):
    server.add_org("o1")
    server.add_user("o1", "secret-user", name="Top Secret")
    server.cli_ok("channel", "add", "--org", "o1", "--name", "hidden",
                  "--members", "secret-user")
    a = server.ws("o1", "secret-user")
    spy_tok = token_for("o2", "spy")
    spy = server.ws_token(spy_tok, label="spy")
    chans = server.http("GET", "/api/channels", token=token_for("o1", "secret-user")).json()
    cid = chans["channels"][0]["id"]
    probes = [("GET", "/api/presence"), ("GET", "/api/me"),
              ("GET", "/api/users/secret-user"), ("GET", "/api/channels"),
              ("GET", "/api/channels/" + cid), ("GET", "/api/projects"),
              ("GET", "/api/projects/p_000000000000"),
              ("GET", "/api/users/nobody-at-all")]
    for method, path in probes:
        r = server.http(method, path, token=spy_tok)
        assert "secret" not in r.text.lower() and "hidden" not in r.text, (path, r.text)
        if "secret-user" in path or cid in path or "p_0" in path or "nobody" in path:
            # Same answer for "exists elsewhere" and "exists nowhere".
            assert r.status_code == 404, (path, r.status_code)
            assert r.json() == server.http(method, "/api/users/nobody-at-all",
                                           token=spy_tok).json() or "channel" in path \
                or "project" in path
    # Every message type from the spy: nothing about o1 comes back.
    spy.send_json({"type": "subscribe", "users": ["secret-user"]})
    part = spy.expect("snapshot", strict=True)
    assert part["members"] == []
    spy.send_json({"type": "status", "status": "BUSY"})
    spy.send_json({"type": "ping"})
    a.set_manual("AWAY")
    deadline = time.time() + 1.5
    while time.time() < deadline:
        try:
            m = spy.recv_json(timeout=0.3)
        except Exception:
            continue
        assert "secret" not in json.dumps(m), m


# ---- injection ------------------------------------------------------------------------

def test_tricky_names_round_trip(server):
    names = ["Robert'); DROP TABLE users;--", 'quote " and \\ backslash',
             "tab\there\x01ctrl", "emoji 🎉👩‍💻", "é" * 100]   # 200 bytes
    assert len(names[-1].encode()) == 200
    server.add_org("o1")
    for i, name in enumerate(names):
        server.add_user("o1", "n%d" % i, name=name)
    members = {m["user"]: m["name"] for m in
               server.presence(token_for("o1", "n0"))["members"]}
    for i, name in enumerate(names):
        assert members["n%d" % i] == name, (i, members["n%d" % i])
    c = server.ws("o1", "n3")
    assert c.hello["name"] == names[3]
    assert server.sql("SELECT count(*) AS n FROM users")[0]["n"] >= len(names)


# ---- database trouble -------------------------------------------------------------

@pytest.mark.settings(flush="200ms")
def test_locked_database_presence_goes_on_then_catches_up(server):
    a = server.ws("o1", "a")
    b = server.ws("o1", "b")
    # Another process takes the write lock and keeps it for 2 s.
    locker = server.hold_write_lock()
    try:
        t = time.time()
        b.set_manual("BUSY")                    # its write waits for the lock...
        m = a.wait_presence("b", "BUSY")        # ...but presence goes on
        assert m["reason"] == "manual"
        a.ping()
        assert time.time() - t < 1.5, "the loop stalled on the lock"
        time.sleep(0.6)                         # flushes wait too
    finally:
        locker.rollback()
        locker.close()
    assert "store:" in server.log_text() or "could not" in server.log_text()
    # The store thread's retry lands it (the row of b, made from its
    # token on the store thread too, may itself wait for the lock).
    wait_until(lambda: (server.db_user("o1", "b") or {}).get("status") == 3, 5,
               what="BUSY stored after the lock went away")
    assert server.http("GET", "/healthz").status_code == 200


# ---- many slow consumers ---------------------------------------------------------

def _masked_text(text):
    data = text.encode()
    key = os.urandom(4)
    assert len(data) < 126
    return (bytes([0x81, 0x80 | len(data)]) + key +
            bytes(b ^ key[i % 4] for i, b in enumerate(data)))


def _dropped(server):
    return server.log_text().count("output queue over")


# large_org=1: the slow ones follow only "flip", so joining does not already
# fill their queues with each other's connect events. The heartbeat is far
# longer than the test, so that only their queues, never the heartbeat,
# close the slow ones, however slow the machine; so is the grace: 1,000
# OFFLINE events at once would be a burst over max_out for everyone (the
# cap counts what one loop turn queues, before any of it is written).
SLOW_HEARTBEAT = 600  # seconds


def _events(c, prefix, status):
    return sum(1 for m in c.log if m.get("type") == "presence" and
               m.get("status") == status and
               str(m.get("user")).startswith(prefix))


@pytest.mark.settings(max_out="64k", msg_rate=1000000,
                      heartbeat="%ds" % SLOW_HEARTBEAT,
                      grace="%ds" % SLOW_HEARTBEAT, conn_rate=1000000,
                      large_org=1)
def test_thousand_slow_consumers_are_dropped_memory_bounded(server):
    # A generous wait for any one answer; nothing here measures speed.
    wait = 30.0
    flipper = server.ws("o1", "flip", name="F" * 180)
    good = server.ws("o1", "good")
    # The healthy ones read everything as it comes, each in a task of its
    # own, whatever the test thread is doing: they keep up for real.
    fd, gd = Drain(flipper), Drain(good)
    slow = []
    try:
        for i in range(1000):
            s = slow_reader(server.port, "/ws/presence/?subscribe=1&token=" +
                            token_for("o1", "slow%d" % i))
            s.sendall(_masked_text('{"type":"subscribe","users":["flip"]}'))
            slow.append(s)
            if i % 50 == 49:
                # A few at a time: a loaded server that takes hundreds of
                # handshakes in one turn would queue their connect events
                # to the healthy ones past max_out in one go.
                gd.wait(lambda c: _events(c, "slow", "ONLINE") >= i + 1,
                        wait, "the slow ones' connect events")
        fd.wait(lambda c: _events(c, "slow", "ONLINE") >= 1000, wait,
                "the slow ones' connect events")
        gd.ping(wait)
        fd.ping(wait)
        sent = 0
        for i in range(6000):
            flipper.send_json({"type": "status",
                               "status": "BUSY" if i % 2 == 0 else "ONLINE"})
            sent += 1
            if i % 20 == 19:
                # flip's pong: the server has taken every flip so far;
                # good's pong after it: good has every event of them.
                fd.ping(wait)
                gd.ping(wait)
                if i % 500 == 499 and _dropped(server) >= 1000:
                    break
        wait_until(lambda: _dropped(server) >= 1000, wait,
                   what="1,000 slow consumers dropped")
        rss = int([l for l in open("/proc/%d/status" % server.proc.pid)
                   if l.startswith("VmRSS")][0].split()[1])
        fd.ping(wait)
        gd.ping(wait)
        # Exactly the slow ones: neither healthy client was taken for one.
        assert _dropped(server) == 1000, _dropped(server)
    finally:
        fd.stop()
        gd.stop()
        for s in slow:
            s.close()
    # 1,000 queues capped at 64 KiB each: bounded, whatever they are sent.
    assert rss < 300 * 1024, "server RSS %d KiB" % rss
    # The healthy one was served all along: every flip reached it, in
    # order, while the slow ones piled up.
    flips = [m for m in good.log
             if m.get("type") == "presence" and m.get("user") == "flip"]
    assert len(flips) == sent, (len(flips), sent)
    assert not good.seq_errors, good.seq_errors[:10]
    good.ping(timeout=wait)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs of our own, so the database can run out of room or
    turn read-only under a running server."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): %s" % r.stderr)
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.mark.sqlite_only("the database file on a tmpfs that fills up, "
                         "then turns read-only")
@pytest.mark.settings(flush="200ms")
def test_disk_full_and_read_only_database(srv, small_disk):
    srv.db = str(small_disk / "presenced.db")
    srv.start()
    a = srv.ws("o1", "a")
    b = srv.ws("o1", "b")
    time.sleep(0.5)                       # first rows written
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", "of=%s" % filler, "bs=64k"],
                   capture_output=True)   # until the disk is full
    b.set_manual("BUSY")
    assert a.wait_presence("b", "BUSY")["reason"] == "manual"
    a.set_auto("AWAY")
    assert b.wait_presence("a", "AWAY")["reason"] == "idle"
    time.sleep(0.6)                       # flushes fail meanwhile
    assert srv.http("GET", "/healthz").status_code == 200
    os.unlink(filler)
    wait_until(lambda: (srv.db_user("o1", "b") or {}).get("status") == 3, 5,
               what="BUSY written once there is room again")

    # Read-only: a mount cannot turn read-only under open files (tmpfs says
    # busy), so the server is started on a read-only database. SQLite cannot
    # even keep its WAL there: the server says so and exits, not crashes.
    srv.stop()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        srv.start(wait=False)
        rc = srv.proc.wait(10)
        assert rc == 1, rc
        log = srv.log_text()
        assert "cannot open database" in log, log[-2000:]
        assert "AddressSanitizer" not in log
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    db = sqlite3.connect(srv.db)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 2
    db.close()
