"""Event loop per core (issue 4): connections spread over several loops
still see one organization, in order; logout, reload and stop reach every
loop. These run with four loops on two cores, so that loops really
interleave; make test also runs the whole suite with TEST_LOOPS=4."""
import signal
import time

import pytest
import requests

from conftest import WSClient, token_for, wait_until


def loops_of(server):
    return requests.get(server.url("/healthz"), timeout=5).json()["loops"]


@pytest.mark.settings(loops="4", msg_rate="1000", grace="10s", heartbeat="30s")
def test_events_reach_every_loop_once_and_in_order(server):
    # The kernel picks a loop's listener per connection by hashing its
    # addresses: 24 connections land on more than one loop.
    clients = [server.ws("o1", "u%d" % i) for i in range(24)]
    per_loop = loops_of(server)
    assert len(per_loop) == 4, per_loop
    assert sum(per_loop) == 24, per_loop
    assert sum(1 for n in per_loop if n) >= 2, \
        "24 connections all on one loop: %r" % per_loop
    # Everyone sees the others' connects; drain them.
    for i, c in enumerate(clients):
        for j in range(i + 1, len(clients)):
            c.wait_presence("u%d" % j, "ONLINE")
    # Two senders on (most likely) different loops flip fast, interleaved.
    a, b = clients[0], clients[1]
    flips = 30
    for k in range(flips):
        st = "AWAY" if k % 2 == 0 else "ONLINE"
        a.set_auto(st)
        b.set_auto(st)
    want = {u: ["AWAY" if k % 2 == 0 else "ONLINE" for k in range(flips)]
            for u in ("u0", "u1")}
    for c in clients:
        got = {"u0": [], "u1": []}
        while len(got["u0"]) < flips or len(got["u1"]) < flips:
            m = c.expect("presence", timeout=5)
            assert m["user"] in got, (c.label, m)
            got[m["user"]].append(m["status"])
        # In order, each exactly once: seq grew by one at every event.
        assert got == want, (c.label, got)
        assert not c.seq_errors, (c.label, c.seq_errors)
        c.assert_no_message(0.2)


@pytest.mark.settings(loops="4")
def test_logout_closes_the_session_on_every_loop(server):
    server.add_org("o1")
    server.add_user("o1", "ann", email="ann@o1.example", password="pw-secret-123")
    obs = server.ws("o1", "obs")
    r = server.login("ann@o1.example", "pw-secret-123")
    assert r.status_code == 200, r.text
    tok = r.json()["token"]
    conns = [server.ws_token(tok, label="s%d" % i) for i in range(12)]
    assert sum(1 for n in loops_of(server) if n) >= 2
    obs.wait_presence("ann", "ONLINE")
    r = server.http("POST", "/api/logout", token=tok)
    assert r.status_code == 200, r.text
    for c in conns:
        assert c.wait_closed(3) == (1008, "logged out"), c.label
    obs.wait_presence("ann", "OFFLINE", "logout")
    wait_until(lambda: sum(loops_of(server)) == 1, 3, what="only obs left")


@pytest.mark.settings(loops="4")
def test_reload_reaches_every_loop(srv, tmp_path):
    conf = tmp_path / "presenced.conf"
    conf.write_text("loops = 4\nmsg_rate = 100\n")
    srv.start(args=("--config", str(conf)))
    clients = [srv.ws("o1", "u%d" % i) for i in range(12)]
    assert sum(1 for n in loops_of(srv) if n) >= 2
    conf.write_text("loops = 4\nmsg_rate = 2\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in srv.log_text(), 3,
               what="reload log line")
    time.sleep(1.1)   # a fresh one-second window
    for c in clients:
        for _ in range(3):
            c.send_json({"type": "ping"})
    for c in clients:
        got = []
        while len(got) < 3:
            m = c.recv_json()
            if m["type"] != "presence":
                got.append(m["type"])
        assert got == ["pong", "pong", "error"], (c.label, got)


@pytest.mark.settings(loops="4")
def test_stop_closes_every_loop_with_1001(srv):
    srv.start()
    clients = [srv.ws("o1", "u%d" % i) for i in range(12)]
    assert sum(1 for n in loops_of(srv) if n) >= 2
    srv.proc.send_signal(signal.SIGTERM)
    for c in clients:
        code, _ = c.wait_closed(3)
        assert code == 1001, (c.label, code)
    assert srv.proc.wait(5) == 0
    # Shutdown is not a status change: stored statuses stay for the
    # restore window of the next start.
    rows = srv.sql("SELECT status FROM users WHERE org = 'o1'")
    assert len(rows) == 12 and all(r["status"] != 0 for r in rows), rows
