"""The store never stalls a loop (issue 10 item 2).

Another process holds SQLite's write lock (BEGIN EXCLUSIVE) on the
server's database for at least 5 s (on PostgreSQL: every table locked IN
EXCLUSIVE MODE, so that every write waits). Meanwhile every loop keeps answering:
pings, manual statuses (one, then eight at once) announced to the others,
/healthz, and a cookie WebSocket connect (its session looked up in
memory). A login and a
PUT /api/status issued during the hold complete (2xx) once the lock is
released, and no manual status is lost: the rows are in the database after
the release and survive a restart."""
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import (DEFAULT_SETTINGS, PG, STATUS_CODES, Drain, WSClient,
                      token_for)

LOOPS = 4
HOLD = 5.0          # seconds the lock is held, at least
ANSWER = 1.0        # what must answer during the hold, within this

# A separate process: python's sqlite3 module, as the sqlite3 shell would
# do it. It prints "locked" once it holds the write lock and commits when
# told to on stdin (or when stdin closes).
HOLDER = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("COMMIT")
con.close()
print("released", flush=True)
"""

# The same on PostgreSQL: writes wait for the lock, reads go on.
HOLDER_PG = r"""
import psycopg2, sys
con = psycopg2.connect(sys.argv[1], connect_timeout=10)
cur = con.cursor()
cur.execute("SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema()")
names = ", ".join('"%s"' % r[0] for r in cur.fetchall())
cur.execute("LOCK TABLE %s IN EXCLUSIVE MODE" % names)
print("locked", flush=True)
sys.stdin.readline()
con.commit()
con.close()
print("released", flush=True)
"""


def seconds(d):
    """A duration setting ("500ms", "2s", "1m") in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", d)
    assert m, d
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def loops_of(server):
    return requests.get(server.url("/healthz"), timeout=5).json()["loops"]


class Call(threading.Thread):
    """An HTTP request in the background: .r (response) or .err, .at
    (monotonic time it returned)."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.r, self.err, self.at = fn, None, None, None

    def run(self):
        try:
            self.r = self.fn()
        except Exception as e:      # reported by the test
            self.err = e
        self.at = time.monotonic()


@pytest.mark.settings(loops=str(LOOPS), heartbeat="30s", grace="10s")
def test_held_write_lock_stalls_no_loop_and_loses_nothing(srv):
    srv.seed_users(("o1", "ann"), ("o1", "bob"), ("o1", "cy"))
    srv.start()
    flush = seconds(srv.settings.get("flush") or DEFAULT_SETTINGS["flush"])
    _, ann_cookie = srv.login_ok("ann@o1.example")

    # Connections until every loop has some (the kernel spreads them by
    # address hash): 16 at least.
    clients = []
    while len(clients) < 16 or not all(loops_of(srv)):
        assert len(clients) < 64, "64 connections, a loop still empty: %r" \
            % loops_of(srv)
        clients.append(srv.ws("o1", "u%d" % len(clients)))
    per_loop = loops_of(srv)
    assert len(per_loop) == LOOPS and all(per_loop), per_loop
    drains = [Drain(c) for c in clients]
    n = len(clients)
    for d in drains:
        d.wait(lambda c: all(c.view.get("u%d" % i, {}).get("status") == "ONLINE"
                             for i in range(n)), 10, "everyone ONLINE")

    holder = subprocess.Popen([sys.executable, "-c", HOLDER_PG if PG else HOLDER,
                               srv.db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()

        # Issued during the hold; they may wait for it.
        wait = HOLD + 10 + 4 * flush
        login = Call(lambda: srv.http("POST", "/api/login", timeout=wait,
                                      json={"email": "bob@o1.example",
                                            "password": "pw-secret-123"}))
        put = Call(lambda: srv.http("PUT", "/api/status", timeout=wait,
                                    token=token_for("o1", "cy"),
                                    json={"status": "AWAY"}))
        login.start()
        put.start()

        # Every loop answers within a second, all through the hold.
        rounds = 0
        while True:
            for d in drains:
                d.ping(ANSWER)
            t = time.monotonic()
            r = requests.get(srv.url("/healthz"), timeout=ANSWER)
            assert r.status_code == 200, r.text
            assert time.monotonic() - t < ANSWER
            if rounds == 0:
                # A manual status reaches everyone within a second.
                clients[0].set_manual("BUSY")
                for d in drains:
                    d.wait(lambda c: c.view.get("u0", {}).get("status") == "BUSY",
                           ANSWER, "u0 BUSY")
                # A cookie connect needs no database read.
                t = time.monotonic()
                ann = WSClient.connect(
                    srv.ws_url(), headers={"Cookie": "presenced_session=" + ann_cookie},
                    origin=srv.origin, timeout=ANSWER, label="ann-cookie")
                assert time.monotonic() - t < ANSWER
                assert ann.hello["user"] == "ann"
                ann_drain = Drain(ann)
            elif rounds == 1:
                # Eight at once, on several loops: none may hold up the
                # others, nor the pings below, while it waits to be stored.
                for c in clients[1:9]:
                    c.set_manual("AWAY")
                for d in drains:
                    d.wait(lambda c: all(c.view.get("u%d" % i, {}).get("status")
                                         == "AWAY" for i in range(1, 9)),
                           ANSWER, "u1..u8 AWAY")
            rounds += 1
            if time.monotonic() - locked_at >= HOLD:
                break
            time.sleep(0.2)
        assert holder.poll() is None, "the lock holder died"
        early = [name for name, c in (("login", login), ("PUT /api/status", put))
                 if c.at is not None]
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        holder.wait(10)
        released_at = time.monotonic()

    # Both complete, 2xx, once the lock is gone.
    for name, c in (("login", login), ("PUT /api/status", put)):
        c.join(wait)
        assert not c.is_alive(), "%s did not return" % name
        assert c.err is None, "%s failed: %r" % (name, c.err)
        assert 200 <= c.r.status_code < 300, "%s -> %d %s (answered %s the release)" % (
            name, c.r.status_code, c.r.text,
            "before" if c.at < released_at else "after")
    bob_cookie = login.r.cookies.get("presenced_session")
    assert bob_cookie
    print("answered during the hold:", early)

    # Nothing lost: the manual statuses and bob's session are stored.
    def stored():
        manual = {r["id"]: r["manual"] for r in
                  srv.sql("SELECT id, manual FROM users WHERE org = 'o1'")}
        bob = srv.sql("SELECT count(*) AS n FROM sessions WHERE org = 'o1'"
                      """ AND "user" = 'bob'""")[0]["n"]
        return ([manual["u%d" % i] for i in range(9)], manual["cy"], bob)
    want = ([STATUS_CODES["BUSY"]] + [STATUS_CODES["AWAY"]] * 8,
            STATUS_CODES["AWAY"], 1)
    deadline = time.monotonic() + flush + 10
    while stored() != want and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored() == want, \
        "(u0..u8 manual, cy manual, bob's sessions) in the database: %r, want %r" \
        % (stored(), want)
    # bob's new session works.
    bob = WSClient.connect(srv.ws_url(),
                           headers={"Cookie": "presenced_session=" + bob_cookie},
                           origin=srv.origin, label="bob-cookie")
    assert bob.hello["user"] == "bob"
    bob.close()

    for d in drains + [ann_drain]:
        d.stop()
    for c in clients + [ann]:
        c.close()

    # And after a restart.
    srv.stop()
    assert stored() == want
    srv.start()
    u0 = srv.ws("o1", "u0")
    assert (u0.hello["status"], u0.hello["manual"]) == ("BUSY", "BUSY")
    cy = srv.ws("o1", "cy")
    assert (cy.hello["status"], cy.hello["manual"]) == ("AWAY", "AWAY")
    bob = WSClient.connect(srv.ws_url(),
                           headers={"Cookie": "presenced_session=" + bob_cookie},
                           origin=srv.origin, label="bob-cookie")
    assert bob.hello["user"] == "bob"
