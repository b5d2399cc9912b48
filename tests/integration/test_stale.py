"""Stale cleanup while a server runs (docs/protocol.md "Stale cleanup"):
the periodic sweep, and `presenced cleanup-stale` handing the sweep to the
running server so the change is announced."""

import time

import pytest

from conftest import STATUS_CODES, now_ms, token_for, wait_until


@pytest.mark.settings(restart_grace="60s", stale_after="10h", sweep="1h")
def test_cleanup_stale_with_server_up_is_announced(srv):
    srv.seed_users(("o1", "s1"), ("o1", "c1"), ("o1", "obs"))
    srv.sql("UPDATE users SET status=2, last_seen_ms=? WHERE org='o1' AND id='s1'",
            (now_ms() - 2 * 3600_000,))
    srv.start()
    obs = srv.ws("o1", "obs")
    # s1 is restored (stored ONLINE, restart window of 60 s).
    assert obs.view["s1"]["status"] == "ONLINE", obs.snapshot
    c1 = srv.ws("o1", "c1")
    obs.expect_presence("c1", "ONLINE", "connect")
    time.sleep(1.5)         # c1 and obs: connected, last_seen > 1 s old
    p = srv.cli_ok("cleanup-stale", "--older-than", "1s")
    assert p.stdout.strip() == "Reset 1 stale statuses to OFFLINE", repr(p.stdout)
    obs.expect_presence("s1", "OFFLINE", "stale")
    c1.expect_presence("s1", "OFFLINE", "stale")
    obs.assert_no_message(0.5)
    body = srv.presence(token_for("o1", "obs"))
    st = {m["user"]: m["status"] for m in body["members"]}
    assert st == {"s1": "OFFLINE", "c1": "ONLINE", "obs": "ONLINE"}, st
    wait_until(lambda: (srv.db_user("o1", "s1") or {}).get("status") == STATUS_CODES["OFFLINE"], 4,
               what="s1 OFFLINE in the DB")
    assert srv.db_user("o1", "c1")["status"] == STATUS_CODES["ONLINE"]
    # Again: nothing left to reset, nothing announced.
    p = srv.cli_ok("cleanup-stale", "--older-than", "1s")
    assert p.stdout.strip() == "Reset 0 stale statuses to OFFLINE", repr(p.stdout)
    obs.assert_no_message(0.3)


@pytest.mark.settings(sweep="300ms", stale_after="1s", login_grace="60s")
def test_periodic_sweep_resets_stale_users(srv):
    srv.seed_users(("o1", "s1"))
    srv.start()
    obs = srv.ws("o1", "obs")
    idle = srv.ws("o1", "idle")         # connected, never active again
    obs.expect_presence("idle", "ONLINE", "connect")
    srv.login_ok("s1@o1.example")       # ONLINE, no connection
    obs.expect_presence("s1", "ONLINE", "login")
    t0 = time.monotonic()
    obs.expect_presence("s1", "OFFLINE", "stale", timeout=4)
    assert time.monotonic() - t0 >= 0.5, "reset before stale_after"
    obs.assert_no_message(1.0)          # connected users are never stale
    idle.ping()
    st = {m["user"]: m["status"] for m in srv.presence(token_for("o1", "obs"))["members"]}
    assert (st["obs"], st["idle"], st["s1"]) == ("ONLINE", "ONLINE", "OFFLINE"), st


@pytest.mark.settings(sweep="300ms", stale_after="1s", grace="30s")
def test_sweep_resets_user_in_long_grace(srv):
    srv.start()
    obs = srv.ws("o1", "obs")
    u = srv.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    u.close()
    # The 30 s grace would keep u1 ONLINE; stale_after 1 s ends it sooner.
    obs.expect_presence("u1", "OFFLINE", "stale", timeout=4)
