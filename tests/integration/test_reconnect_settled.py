"""Idle people do not flap on reconnect (Hardening II #18).

A page states its idle detector's state when it connects, with
`?auto=ONLINE|AWAY|OFFLINE` on the upgrade request (docs/protocol.md); the
connection opens with it, so the server announces only the settled result:
nothing at all when the person's effective status does not change across a
dropped socket, a heartbeat timeout or a server restart.  Before, every
reconnect of an idle person showed `ONLINE (connect)` then `AWAY/OFFLINE
(idle)` to the whole organization.

Waits come from the settings below plus SLACK for loaded machines."""

import base64
import os
import time

import pytest
import requests

from conftest import RawWS, loop, token_for, wait_until

GRACE = 4.0           # long enough to reconnect inside it on a slow machine
RESTART_GRACE = 4.0
HEARTBEAT = 1.0
SLACK = 2.0


def ws_path(auto=None):
    return "/ws/presence/" + ("?auto=" + auto if auto is not None else "")


def person(srv, org, user, auto=None, label=None):
    return srv.ws(org, user, path=ws_path(auto),
                  label=label or "%s/%s auto=%s" % (org, user, auto))


def drop(c):
    """Cuts the TCP connection with no close frame: a network drop, as the
    server sees it."""
    async def go():
        c.ws.transport.abort()
    loop().run(go(), 5)


def member(srv, org, user, observer="obs"):
    body = srv.presence(token_for(org, observer))
    m = {x["user"]: x for x in body["members"]}[user]
    return m, body["seq"]


def wait_connections(srv, org, user, n, timeout):
    return wait_until(lambda: member(srv, org, user)[0]["connections"] == n,
                      timeout, what="%s/%s with %d connections" % (org, user, n))


def assert_quiet_until(obs, deadline):
    """No frame at all for obs until time.monotonic() reaches deadline."""
    obs.assert_no_message(max(deadline - time.monotonic(), 0.5))


@pytest.mark.parametrize("idle", ["AWAY", "OFFLINE"])
@pytest.mark.settings(grace="4s", heartbeat="1s")
def test_idle_reconnect_after_dropped_socket_announces_nothing(srv, idle):
    srv.start()
    obs = srv.ws("o1", "obs")
    p = person(srv, "o1", "p")
    obs.expect_presence("p", "ONLINE", "connect")
    p.set_auto(idle)
    obs.expect_presence("p", idle, "idle")
    _, seq = member(srv, "o1", "p")

    drop(p)
    t_drop = time.monotonic()
    wait_connections(srv, "o1", "p", 0, GRACE / 2)
    dropped, _ = member(srv, "o1", "p")
    back = person(srv, "o1", "p", auto=idle)
    # Nothing, not even once the grace the drop opened would have ended.
    assert_quiet_until(obs, t_drop + GRACE + SLACK)
    assert back.hello["status"] == idle, back.hello
    back.assert_no_message(0.1)
    m, seq_after = member(srv, "o1", "p")
    assert seq_after == seq == obs.last_seq, (seq, seq_after, obs.last_seq)
    assert (m["status"], m["connections"]) == (idle, 1), m
    # Connecting idle is no activity: last_seen is that of the drop.
    assert m["last_seen"] == dropped["last_seen"], (m, dropped)
    # The page becoming active is announced as usual.
    back.set_auto("ONLINE")
    ev = obs.expect_presence("p", "ONLINE", "active")
    assert ev["last_seen"] > m["last_seen"], (ev, m)


@pytest.mark.settings(grace="4s", heartbeat="1s")
def test_idle_reconnect_after_heartbeat_timeout_announces_nothing(srv):
    srv.start()
    obs = srv.ws("o1", "obs")
    # A page that stops answering pings (a silent network drop).
    raw = RawWS(srv.port, "/ws/presence/?token=" + token_for("o1", "p"))
    assert raw.status == 101
    obs.expect_presence("p", "ONLINE", "connect")
    raw.send_text('{"type":"status","status":"AWAY","auto":true}')
    obs.expect_presence("p", "AWAY", "idle")
    _, seq = member(srv, "o1", "p")
    code, _, _ = raw.wait_close(2.5 * HEARTBEAT + SLACK + 2)
    assert code == 1001
    t_gone = time.monotonic()
    raw.close()
    wait_connections(srv, "o1", "p", 0, GRACE / 2)
    back = person(srv, "o1", "p", auto="AWAY")
    assert_quiet_until(obs, t_gone + GRACE + SLACK)
    assert back.hello["status"] == "AWAY"
    m, seq_after = member(srv, "o1", "p")
    assert (seq_after, m["status"], m["connections"]) == (seq, "AWAY", 1), m


@pytest.mark.parametrize("idle", ["AWAY", "OFFLINE"])
@pytest.mark.settings(restart_grace="4s", flush="300ms")
def test_idle_reconnect_across_restart_announces_nothing(srv, idle):
    srv.start()
    p = person(srv, "o1", "p")
    obs = srv.ws("o1", "obs")
    p.set_auto(idle)
    obs.expect_presence("p", idle, "idle")
    srv.stop()                       # SIGTERM: close 1001, rows written
    for c in (p, obs):
        assert c.wait_closed(2)[0] == 1001

    srv.start()
    t_start = time.monotonic()
    obs = srv.ws("o1", "obs")        # back inside its restore window
    assert obs.view["p"]["status"] == idle, obs.snapshot
    back = person(srv, "o1", "p", auto=idle)
    # Nothing, also when the restore windows close.
    assert_quiet_until(obs, t_start + RESTART_GRACE + SLACK)
    assert back.hello["status"] == idle, back.hello
    m, seq = member(srv, "o1", "p")
    assert seq == obs.snapshot["seq"], (seq, obs.snapshot)
    assert (m["status"], m["connections"]) == (idle, 1), m


@pytest.mark.settings(grace="1s")
def test_idle_reconnect_after_grace_announces_the_real_change_once(srv):
    srv.start()
    obs = srv.ws("o1", "obs")
    p = person(srv, "o1", "p")
    obs.expect_presence("p", "ONLINE", "connect")
    p.set_auto("AWAY")
    obs.expect_presence("p", "AWAY", "idle")
    drop(p)
    obs.expect_presence("p", "OFFLINE", "grace_expired", timeout=1 + SLACK + 3)
    person(srv, "o1", "p", auto="AWAY")
    obs.expect_presence("p", "AWAY", "connect")
    obs.assert_no_message(1 + SLACK)     # and never ONLINE


def test_no_auto_still_connects_online(server):
    obs = server.ws("o1", "obs")
    for auto in (None, "ONLINE"):
        p = person(server, "o1", "p" + str(auto), auto=auto)
        assert p.hello["status"] == "ONLINE"
        ev = obs.expect_presence(p.hello["user"], "ONLINE", "connect")
        assert isinstance(ev["last_seen"], int)     # activity


def test_first_connect_idle_is_no_activity(server):
    obs = server.ws("o1", "obs")
    p = person(server, "o1", "never", auto="AWAY")
    ev = obs.expect_presence("never", "AWAY", "connect")
    assert ev["last_seen"] is None, ev
    assert p.hello["status"] == "AWAY"
    person(server, "o1", "gone", auto="OFFLINE")
    obs.assert_no_message(0.5)
    m, _ = member(server, "o1", "gone")
    assert (m["status"], m["last_seen"], m["connections"]) == \
        ("OFFLINE", None, 1), m


@pytest.mark.parametrize("value", [
    "away", "Away", "BUSY", "", "IDLE", "ONLINE%20", "%00", "A" * 200,
    "AWAY%", "%E2%9C%93", "OFFLINEX", "0",
])
def test_invalid_auto_is_400_before_the_upgrade(shared_server, value):
    srv = shared_server
    url = srv.url(ws_path(value) + "&token=" + token_for("bad-auto", "p"))
    r = requests.get(url, timeout=5, headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13"})
    assert r.status_code == 400, (value, r.status_code, r.text)
    assert r.json()["error"]["code"] == "bad_request", r.text
    # Nothing was connected; the server goes on.
    p = person(srv, "bad-auto", "ok", auto="AWAY")
    assert p.hello["status"] == "AWAY"
    # Refused before authentication: the token's user was not even made.
    body = srv.presence(token_for("bad-auto", "ok"))
    assert "p" not in [m["user"] for m in body["members"]], body
