"""Restarts (docs/protocol.md "restore" window): kill -9 leaves no zombie
ONLINE users, SIGTERM closes connections with 1001 and flushes."""

import time

import pytest

from conftest import STATUS_CODES, now_ms, token_for, wait_until


def wait_db_status(srv, org, user, status, timeout=4):
    return wait_until(
        lambda: (srv.db_user(org, user) or {}).get("status") == STATUS_CODES[status],
        timeout, what="%s/%s %s in the DB" % (org, user, status))


@pytest.mark.settings(restart_grace="2s", flush="300ms")
def test_kill9_then_restart_no_zombie(srv):
    srv.start()
    srv.ws("o1", "u1")
    srv.ws("o1", "u2")
    wait_db_status(srv, "o1", "u1", "ONLINE")
    wait_db_status(srv, "o1", "u2", "ONLINE")
    srv.kill9()
    srv.start()
    t_start = time.monotonic()
    u2b = srv.ws("o1", "u2")            # u2 comes back inside the window
    obs = srv.ws("o1", "obs")
    # Restored: u1 still shows ONLINE while its window is open.
    assert obs.view["u1"]["status"] == "ONLINE", obs.snapshot
    assert obs.view["u2"]["status"] == "ONLINE", obs.snapshot
    obs.expect_presence("u1", "OFFLINE", "restart", timeout=5)
    assert time.monotonic() - t_start >= 0.5
    # Exactly that one event: u2 stays ONLINE.
    obs.assert_no_message(1.5)
    u2b.ping()
    st = {m["user"]: m for m in srv.presence(token_for("o1", "obs"))["members"]}
    assert (st["u1"]["status"], st["u2"]["status"]) == ("OFFLINE", "ONLINE"), st
    assert st["u2"]["connections"] == 1
    wait_db_status(srv, "o1", "u1", "OFFLINE")


@pytest.mark.settings(restart_grace="1s", flush="300ms")
def test_kill9_restart_nobody_returns(srv):
    srv.start()
    u = srv.ws("o1", "u1")
    u.set_manual("BUSY")
    u.expect_presence("u1", "BUSY", "manual")
    wait_until(lambda: (srv.db_user("o1", "u1") or {}).get("status") == 3, 4,
               what="BUSY flushed")
    srv.kill9()
    srv.start()
    wait_db_status(srv, "o1", "u1", "OFFLINE", timeout=5)
    st = {m["user"]: m for m in srv.presence(token_for("o1", "x"))["members"]}
    assert st["u1"]["status"] == "OFFLINE"
    # The manual status survives the crash.
    assert srv.db_user("o1", "u1")["manual"] == 3
    c = srv.ws("o1", "u1")
    assert (c.hello["status"], c.hello["manual"]) == ("BUSY", "BUSY")


@pytest.mark.settings(restart_grace="1s", flush="300ms")
def test_cleanup_stale_after_kill9_runs_without_server(srv):
    srv.start()
    srv.ws("o1", "u1")
    wait_db_status(srv, "o1", "u1", "ONLINE")
    srv.kill9()
    srv.sql("UPDATE users SET last_seen_ms=? WHERE org='o1' AND id='u1'",
            (now_ms() - 2 * 3600_000,))
    p = srv.cli_ok("cleanup-stale", "--older-than", "30m", timeout=20)
    assert p.stdout.strip() == "Reset 1 stale statuses to OFFLINE", (p.stdout, p.stderr)
    assert srv.db_user("o1", "u1")["status"] == 0


def test_sigterm_closes_connections_with_1001(server):
    a = server.ws("o1", "u1")
    b = server.ws("o1", "u2")
    server.stop()
    for c in (a, b):
        code, _ = c.wait_closed(2)
        assert code == 1001, code


@pytest.mark.settings(flush="1h")
def test_sigterm_flushes_status_and_last_seen(srv):
    srv.seed_users(("o1", "u1"))
    srv.start()
    t0 = now_ms()
    u = srv.ws("o1", "u1")
    u.set_manual("AWAY")
    u.expect_presence("u1", "AWAY", "manual")
    srv.stop()
    row = srv.db_user("o1", "u1")
    assert row["manual"] == STATUS_CODES["AWAY"], row
    assert row["last_seen_ms"] and row["last_seen_ms"] >= t0 - 1000, row


def test_restart_on_same_db_keeps_members(srv):
    srv.seed_users(("o1", "u1", "Ann"))
    srv.start()
    srv.ws("o1", "u2", name="Token Bob").close()
    srv.stop()
    srv.start()
    c = srv.ws("o1", "obs")
    m = {x["user"]: x for x in c.snapshot["members"]}
    assert m["u1"]["name"] == "Ann" and m["u2"]["name"] == "Token Bob", m
    assert isinstance(m["u2"]["last_seen"], int) and m["u2"]["last_seen"] > 0
