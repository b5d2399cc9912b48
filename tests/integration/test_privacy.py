"""Appear offline (Hardening II #9, docs/protocol.md "Presence rules").

A user whose manual status is OFFLINE must look, to every other member,
exactly like a user who is really offline, over every route and frame:
status OFFLINE, last_seen frozen at the moment it went invisible (also in
the database, so a restart reveals nothing), no connections, and no event
caused by its connects, disconnects or activity.  Only the user itself
(/api/me, hello) sees the truth.

The tests compare, field by field, what an observer sees of an invisible
user who is connected and active ("inv") with what it sees of a user who
is really offline ("off"): every field but the identity must be equal,
and last_seen must be the moment each went offline."""

import time

import pytest

from conftest import WSClient, token_for, wait_until

GRACE = 1.0          # the settings below
RESTART_GRACE = 2.0
SLACK = 2.0          # loaded CI machines

USERS = (("o1", "obs", "Observer"), ("o1", "inv", "Invisible"),
         ("o1", "off", "Offline"))


def seed(srv):
    srv.seed_users(*USERS)
    ch = srv.cli_ok("channel", "add", "--org", "o1", "--name", "general",
                    "--members", "obs,inv,off").stdout.strip().splitlines()[-1]
    pr = srv.cli_ok("project", "add", "--org", "o1", "--name", "launch",
                    "--members", "inv,off").stdout.strip().splitlines()[-1]
    return ch, pr


def subscriber(srv, org, user):
    c = WSClient.connect(srv.ws_url("/ws/presence/?subscribe=1",
                                    token_for(org, user)),
                         label="%s/%s sub" % (org, user), read_initial=False)
    c.hello = c.expect("hello", strict=True)
    c.snapshot = c.expect("snapshot", strict=True)
    return c


def get(srv, path, tok):
    r = srv.http("GET", path, token=tok)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def by_user(members):
    return {m["user"]: m for m in members}


def views(srv, ch, pr, tok):
    """Every member encoding an observer can read over HTTP: where -> the
    {user: member} it shows (inv and off, at least)."""
    out = {"/api/presence": by_user(get(srv, "/api/presence", tok)["members"])}
    out["/api/users/{id}"] = {u: get(srv, "/api/users/" + u, tok)
                              for u in ("inv", "off")}
    for kind, gid in (("channels", ch), ("projects", pr)):
        groups = get(srv, "/api/" + kind, tok)[kind]
        g = [x for x in groups if x["id"] == gid]
        assert len(g) == 1, groups
        out["/api/%s" % kind] = by_user(g[0]["members"])
        out["/api/%s/{id}" % kind] = by_user(
            get(srv, "/api/%s/%s" % (kind, gid), tok)["members"])
    return out


def assert_looks_offline(where, seen, t_inv, t_off):
    """seen[inv] must equal seen[off] in every field but user and name;
    last_seen must be when each went offline."""
    inv, off = seen["inv"], seen["off"]
    assert sorted(inv) == sorted(off), (where, inv, off)
    for k in inv:
        if k in ("user", "name"):
            continue
        if k == "last_seen":
            assert (inv[k], off[k]) == (t_inv, t_off), (where, k, inv, off)
        else:
            assert inv[k] == off[k], (where, k, inv, off)
    assert inv["status"] == "OFFLINE", (where, inv)
    if "connections" in inv:
        assert inv["connections"] == 0, (where, inv)


def assert_all_look_offline(srv, ch, pr, tok, t_inv, t_off, frames=()):
    for where, seen in views(srv, ch, pr, tok).items():
        assert_looks_offline(where, seen, t_inv, t_off)
    for where, members in frames:
        assert_looks_offline(where, by_user(members), t_inv, t_off)


def online_count(srv, tok):
    return sum(m["status"] != "OFFLINE"
               for m in get(srv, "/api/presence", tok)["members"])


# large_org=3: the subscriber below is in a "large" organization, so it
# gets events only for the users it follows, and the online count.
@pytest.mark.settings(grace="1s", restart_grace="2s", flush="300ms",
                      large_org=3)
def test_appear_offline_looks_exactly_like_offline(srv):
    ch, pr = seed(srv)
    srv.start()
    tok = token_for("o1", "obs")
    obs = srv.ws("o1", "obs")

    # off: seen, then really gone (grace expired).
    srv.ws("o1", "off").close()
    obs.expect_presence("off", "ONLINE", "connect")
    t_off = obs.expect_presence("off", "OFFLINE", "grace_expired",
                                timeout=GRACE + SLACK + 3)["last_seen"]

    # inv: connects, then appears offline.
    inv1 = srv.ws("o1", "inv")
    obs.expect_presence("inv", "ONLINE", "connect")
    inv1.set_manual("OFFLINE")
    t_inv = obs.expect_presence("inv", "OFFLINE", "manual")["last_seen"]
    assert isinstance(t_inv, int) and isinstance(t_off, int)

    # A subscriber following both, in a large organization.
    sub = subscriber(srv, "o1", "sub")
    obs.expect_presence("sub", "ONLINE", "connect")
    sub.send_json({"type": "subscribe", "users": ["inv", "off"]})
    part = sub.expect("snapshot", strict=True)
    assert part["online"] == online_count(srv, tok), part

    # Everything a connected, active person does, with time passing.
    inv2 = []
    cookie = []
    steps = [
        lambda: inv2.append(srv.ws("o1", "inv")),
        lambda: inv1.set_auto("AWAY"),
        lambda: inv1.set_auto("ONLINE"),
        lambda: inv2[0].set_auto("ONLINE"),
        lambda: inv1.ping(),
        lambda: cookie.append(srv.login_ok("inv@o1.example")[1]),
        lambda: srv.ws("o1", "inv").close(),        # a disconnect
        lambda: srv.http("PUT", "/api/status", token=token_for("o1", "inv"),
                         json={"status": "OFFLINE"}),
        lambda: srv.http("POST", "/api/logout", cookie=cookie[0],
                         headers={"X-Requested-With": "test"}),
        lambda: inv1.set_manual("OFFLINE"),
        lambda: inv1.set_auto("ONLINE"),
    ]
    for step in steps:
        time.sleep(0.02)
        step()
    # No event, not even when the closed connection's grace runs out.
    obs.assert_no_message(GRACE + SLACK)
    sub.assert_no_message(0.2)

    # Field by field over every route and frame.
    obs2 = srv.ws("o1", "obs")
    sub.send_json({"type": "subscribe", "users": ["inv", "off"]})
    part = sub.expect("snapshot", pred=lambda m: m.get("partial"))
    assert_all_look_offline(srv, ch, pr, tok, t_inv, t_off, frames=(
        ("snapshot", obs2.snapshot["members"]),
        ("partial snapshot", part["members"]),
    ))
    assert part["online"] == online_count(srv, tok), part
    # The snapshot frame is cached per organization: a second one too.
    obs3 = srv.ws("o1", "obs")
    assert_looks_offline("cached snapshot", by_user(obs3.snapshot["members"]),
                         t_inv, t_off)

    # The user itself sees the truth.
    me = get(srv, "/api/me", token_for("o1", "inv"))
    assert (me["status"], me["manual"], me["connections"]) == \
        ("OFFLINE", "OFFLINE", 2), me
    assert (inv1.hello["status"], inv1.hello["manual"]) == ("ONLINE", None)
    assert (inv2[0].hello["status"], inv2[0].hello["manual"]) == \
        ("OFFLINE", "OFFLINE")

    # Its last connections close: still nothing, past the grace.
    inv1.close()
    inv2[0].close()
    sub.close()
    obs.expect_presence("sub", "OFFLINE", "grace_expired",
                        timeout=GRACE + SLACK + 3)
    obs.assert_no_message(GRACE + SLACK)
    assert_all_look_offline(srv, ch, pr, tok, t_inv, t_off)

    # The database keeps the frozen moment; a restart reveals nothing.
    srv.stop()
    row = srv.db_user("o1", "inv")
    assert (row["status"], row["manual"], row["last_seen_ms"]) == \
        (0, 0, t_inv), row
    srv.start()
    t_start = time.monotonic()
    obs = srv.ws("o1", "obs")
    back = srv.ws("o1", "inv")
    back.set_auto("ONLINE")
    assert (back.hello["status"], back.hello["manual"]) == \
        ("OFFLINE", "OFFLINE")
    obs.assert_no_message(max(RESTART_GRACE + SLACK
                              - (time.monotonic() - t_start), 0.5))
    assert_all_look_offline(srv, ch, pr, tok, t_inv, t_off, frames=(
        ("snapshot after restart", obs.snapshot["members"]),
        ("snapshot after restart, reconnected",
         srv.ws("o1", "obs").snapshot["members"]),
    ))


@pytest.mark.settings(grace="1s", flush="300ms")
def test_coming_back_moves_last_seen_to_that_moment(srv):
    srv.seed_users(*USERS)
    srv.start()
    obs = srv.ws("o1", "obs")
    inv = srv.ws("o1", "inv")
    obs.expect_presence("inv", "ONLINE", "connect")
    inv.set_manual("OFFLINE")
    t_inv = obs.expect_presence("inv", "OFFLINE", "manual")["last_seen"]
    time.sleep(0.3)
    inv.set_auto("ONLINE")
    inv.ping()
    # Nothing changed for others while invisible ...
    m = by_user(srv.presence(token_for("o1", "obs"))["members"])["inv"]
    assert (m["last_seen"], m["connections"]) == (t_inv, 0), m
    # ... and coming back is a fresh sign of life.
    inv.set_manual("ONLINE")
    ev = obs.expect_presence("inv", "ONLINE", "manual")
    assert ev["last_seen"] >= t_inv + 250, (ev, t_inv)
    m = by_user(srv.presence(token_for("o1", "obs"))["members"])["inv"]
    assert (m["status"], m["last_seen"], m["connections"]) == \
        ("ONLINE", ev["last_seen"], 1), m
    wait_until(lambda: (srv.db_user("o1", "inv") or {}).get("last_seen_ms")
               == ev["last_seen"], 5, what="the new last_seen flushed")
