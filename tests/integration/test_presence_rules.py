"""Presence rules (docs/protocol.md "Presence rules"): aggregation over a
user's connections, manual status, appear offline, the grace window and the
heartbeat timeout.  Servers run with grace 1s and heartbeat 1s."""

import time

import pytest

from conftest import RawWS, token_for, wait_until


def test_three_connections_aggregate_to_one_status(server):
    obs = server.ws("o1", "obs")
    a = server.ws("o1", "u1", label="u1/a")
    obs.expect_presence("u1", "ONLINE", "connect")
    b = server.ws("o1", "u1", label="u1/b")
    c = server.ws("o1", "u1", label="u1/c")
    obs.assert_no_message(0.3)

    # AWAY on two, ONLINE on one: still ONLINE, nothing announced.
    a.set_auto("AWAY")
    b.set_auto("AWAY")
    obs.assert_no_message(0.5)

    # All three AWAY: AWAY, announced once, to everyone incl. u1's own tabs.
    c.set_auto("AWAY")
    e = obs.expect_presence("u1", "AWAY", "idle")
    for x in (a, b, c):
        assert x.expect_presence("u1", "AWAY", "idle")["seq"] == e["seq"]
    obs.assert_no_message(0.5)

    # One tab active again: ONLINE (reason active).
    b.set_auto("ONLINE")
    obs.expect_presence("u1", "ONLINE", "active")
    b.set_auto("AWAY")
    obs.expect_presence("u1", "AWAY", "idle")

    # OFFLINE auto on two while the third is AWAY: still AWAY.
    a.set_auto("OFFLINE")
    b.set_auto("OFFLINE")
    obs.assert_no_message(0.5)
    # All three OFFLINE auto: OFFLINE, once.
    c.set_auto("OFFLINE")
    obs.expect_presence("u1", "OFFLINE", "idle")
    obs.assert_no_message(0.5)
    for x in (a, b, c):
        x.ping()
    body = server.presence(token_for("o1", "obs"))
    m = {m["user"]: m for m in body["members"]}["u1"]
    assert (m["status"], m["connections"]) == ("OFFLINE", 3), m


def test_closing_the_ruling_connection_announces_the_remaining_status(server):
    obs = server.ws("o1", "obs")
    a = server.ws("o1", "u1", label="u1/a")
    obs.expect_presence("u1", "ONLINE", "connect")
    b = server.ws("o1", "u1", label="u1/b")
    b.set_auto("AWAY")
    obs.assert_no_message(0.3)
    a.close()
    obs.expect_presence("u1", "AWAY", "disconnect")
    # The remaining connection keeps the user present past the grace.
    obs.assert_no_message(1.5)
    b.ping()


def test_new_connection_raises_status(server):
    obs = server.ws("o1", "obs")
    a = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    a.set_auto("AWAY")
    obs.expect_presence("u1", "AWAY", "idle")
    server.ws("o1", "u1")               # a new connection starts ONLINE
    obs.expect_presence("u1", "ONLINE", "connect")


def test_manual_busy_overrides_auto_and_persists_across_reconnect(server):
    obs = server.ws("o1", "obs")
    u = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    u.set_manual("BUSY")
    obs.expect_presence("u1", "BUSY", "manual")
    u.expect_presence("u1", "BUSY", "manual")
    u.set_auto("AWAY")
    u.set_auto("OFFLINE")
    u.set_auto("ONLINE")
    obs.assert_no_message(0.5)
    u.close()
    # Reconnect inside the grace: nothing announced, hello shows BUSY.
    u2 = server.ws("o1", "u1")
    assert (u2.hello["status"], u2.hello["manual"]) == ("BUSY", "BUSY"), u2.hello
    obs.assert_no_message(1.5)
    # Reconnect after the grace expired: OFFLINE, then BUSY again.
    u2.close()
    obs.expect_presence("u1", "OFFLINE", "grace_expired", timeout=4)
    u3 = server.ws("o1", "u1")
    assert (u3.hello["status"], u3.hello["manual"]) == ("BUSY", "BUSY"), u3.hello
    obs.expect_presence("u1", "BUSY", "connect")
    # A manual ONLINE clears it.
    u3.set_manual("ONLINE")
    obs.expect_presence("u1", "ONLINE", "manual")
    u3.set_auto("AWAY")
    obs.expect_presence("u1", "AWAY", "idle")
    u3.close()
    u4 = server.ws("o1", "u1")
    assert u4.hello["manual"] is None, u4.hello


def test_manual_busy_persists_across_server_restart(server):
    u = server.ws("o1", "u1")
    u.set_manual("BUSY")
    u.expect_presence("u1", "BUSY", "manual")
    u.close()
    server.stop()
    server.start()
    obs = server.ws("o1", "obs")
    u2 = server.ws("o1", "u1")
    assert (u2.hello["status"], u2.hello["manual"]) == ("BUSY", "BUSY"), u2.hello
    # obs sees BUSY in its snapshot (restored) or as an event right after.
    if obs.view["u1"]["status"] != "BUSY":
        obs.wait_presence("u1", "BUSY")
    assert obs.view["u1"]["status"] == "BUSY"
    r = server.http("GET", "/api/users/u1", token=token_for("o1", "obs"))
    assert r.status_code == 200 and r.json()["status"] == "BUSY", r.text


def test_manual_status_set_via_api_while_disconnected_is_kept(server):
    tok = token_for("o1", "u1")
    server.ws("o1", "u1").close()
    wait_until(lambda: server.http("GET", "/api/users/u1", token=tok).json()
               .get("status") == "OFFLINE", 4, what="u1 OFFLINE after the grace")
    r = server.http("PUT", "/api/status", token=tok, json={"status": "BUSY"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "OFFLINE", r.json()   # no connection
    u = server.ws("o1", "u1")
    assert (u.hello["status"], u.hello["manual"]) == ("BUSY", "BUSY"), u.hello


def test_appear_offline_user_still_receives_events(server):
    obs = server.ws("o1", "obs")
    u = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    u.set_manual("OFFLINE")
    obs.expect_presence("u1", "OFFLINE", "manual")
    u.expect_presence("u1", "OFFLINE", "manual")
    # Activity does not reveal the user.
    u.set_auto("ONLINE")
    obs.assert_no_message(0.4)
    # The hidden user keeps receiving everyone's events.
    obs.set_manual("BUSY")
    u.expect_presence("obs", "BUSY", "manual")
    obs.expect_presence("obs", "BUSY", "manual")
    other = server.ws("o1", "u2")
    u.expect_presence("u2", "ONLINE", "connect")
    # Everyone else sees OFFLINE.
    assert {m["user"]: m for m in other.snapshot["members"]}["u1"]["status"] == "OFFLINE"
    body = server.presence(token_for("o1", "u2"))
    assert {m["user"]: m for m in body["members"]}["u1"]["status"] == "OFFLINE"
    u2 = server.ws("o1", "u1")
    assert (u2.hello["status"], u2.hello["manual"]) == ("OFFLINE", "OFFLINE")
    u.ping()


def test_reconnect_inside_grace_announces_nothing(server):
    obs = server.ws("o1", "obs")
    u = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    for _ in range(3):                  # page navigations
        u.close()
        time.sleep(0.2)
        u = server.ws("o1", "u1")
    obs.assert_no_message(1.5)          # longer than the 1s grace
    u.ping()


def test_grace_expiry_announces_offline_once(server):
    obs = server.ws("o1", "obs")
    u = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    u.close()
    t0 = time.monotonic()
    obs.assert_no_message(0.5)          # still inside the 1s grace
    e = obs.expect_presence("u1", "OFFLINE", "grace_expired", timeout=4)
    assert time.monotonic() - t0 >= 0.5
    assert isinstance(e["last_seen"], int) and e["last_seen"] > 0
    obs.assert_no_message(1.5)
    body = server.presence(token_for("o1", "obs"))
    m = {m["user"]: m for m in body["members"]}["u1"]
    assert (m["status"], m["connections"]) == ("OFFLINE", 0), m


@pytest.mark.settings(grace="0s")
def test_zero_grace_goes_offline_at_disconnect(server):
    obs = server.ws("o1", "obs")
    u = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    u.close()
    obs.expect_presence("u1", "OFFLINE", "disconnect", timeout=2)


def test_heartbeat_timeout_closes_silent_client(server):
    obs = server.ws("o1", "obs")
    silent = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "silent"))
    assert silent.status == 101, silent.head
    assert silent.recv_json()["type"] == "hello"
    assert silent.recv_json()["type"] == "snapshot"
    # A raw client that sends an application ping every 0.5 s but never
    # answers WebSocket pings: any frame counts as life.
    chatty = RawWS(server.port, "/ws/presence/?token=" + token_for("o1", "chatty"))
    assert chatty.status == 101
    obs.expect_presence("silent", "ONLINE", "connect")
    obs.expect_presence("chatty", "ONLINE", "connect")
    t0 = time.monotonic()

    import threading
    stop = threading.Event()
    chatty_errors = []

    def keep_talking():
        try:
            while not stop.is_set():
                chatty.send_text('{"type":"ping"}')
                stop.wait(0.5)
        except OSError as e:
            chatty_errors.append(e)
    th = threading.Thread(target=keep_talking, daemon=True)
    th.start()
    try:
        code, reason, pings = silent.wait_close(timeout=6)
        elapsed = time.monotonic() - t0
        assert code == 1001, (code, reason)
        assert "heartbeat" in reason, reason
        assert pings >= 1, "the server sent no WebSocket ping before closing"
        assert elapsed >= 1.5, "closed after %.2fs, before 2.5 heartbeats" % elapsed
        # Closing starts the grace; then OFFLINE.
        obs.expect_presence("silent", "OFFLINE", "grace_expired", timeout=4)
        # The talking raw client and the websockets client (which answers
        # pings) are still connected.
        obs.ping()
        assert not chatty_errors, chatty_errors
    finally:
        stop.set()
        th.join(2)
    # chatty got pongs for its pings and no close frame.
    seen_close = False
    while True:
        try:
            op, _ = chatty.recv_frame(0.3)
        except Exception:
            break
        if op == 0x8:
            seen_close = True
    assert not seen_close, "a client sending text frames was closed"
    silent.close()
    chatty.close()
