"""Presence subscriptions (docs/protocol.md "Subscriptions")."""
import pytest

from conftest import token_for


def subscriber(server, org, user):
    """A ?subscribe=1 connection: hello, then a partial snapshot with no
    members (so the usual wait for the caller's own entry does not apply)."""
    c = server.ws_token(token_for(org, user), path="/ws/presence/?subscribe=1",
                        label="sub", read_initial=False)
    c.hello = c.expect("hello", strict=True)
    c.snapshot = c.expect("snapshot", strict=True)
    return c


@pytest.mark.settings(large_org=3)
def test_subscriber_gets_exactly_its_users(server):
    # Five members: over large_org, so subscribers get only their users.
    others = {u: server.ws("o1", u, label=u) for u in ("a", "b", "c", "d")}
    sub = subscriber(server, "o1", "s")
    snap = sub.snapshot
    assert snap.get("partial") is True
    assert snap["members"] == []
    assert snap["online"] == 5            # a, b, c, d and s itself
    sub.send_json({"type": "subscribe", "users": ["a", "b", "nobody"]})
    part = sub.expect("snapshot", strict=True)
    assert part["partial"] is True
    assert sorted(m["user"] for m in part["members"]) == ["a", "b"]
    assert {m["status"] for m in part["members"]} == {"ONLINE"}

    # Events of c and d never reach the subscriber; a's and b's do. The
    # next frame but online counts (sent when the count moves, which a
    # loaded machine's heartbeats may make it do) must be a's.
    def next_presence():
        while True:
            m = sub.recv_json(timeout=3)
            if m["type"] != "online":
                assert m["type"] == "presence", m
                return m
    others["c"].set_manual("BUSY")
    others["d"].set_manual("AWAY")
    others["a"].set_manual("BUSY")
    m = next_presence()
    assert (m["user"], m["status"]) == ("a", "BUSY")
    others["b"].set_auto("AWAY")
    m = next_presence()
    assert (m["user"], m["status"]) == ("b", "AWAY")

    # Unsubscribed: b's changes stop; the online count still comes.
    sub.send_json({"type": "unsubscribe", "users": ["b"]})
    sub.ping()
    others["b"].set_auto("ONLINE")
    others["d"].close()          # d leaves: online count drops (grace 1 s)
    got = []
    while True:
        m = sub.recv_json(timeout=4)
        got.append(m)
        if m["type"] == "online" and m["online"] == 4:
            break
    assert [g for g in got if g["type"] == "presence"] == [], got


def test_small_org_subscriber_still_gets_everything(server):
    # Under large_org (default 1000) org-wide fan-out continues: the
    # client filters; nothing is lost.
    a = server.ws("o1", "a")
    sub = subscriber(server, "o1", "s")
    sub.send_json({"type": "subscribe", "users": ["zzz"]})
    sub.expect("snapshot", strict=True)
    a.set_manual("BUSY")
    m = sub.expect("presence", strict=True)
    assert (m["user"], m["status"]) == ("a", "BUSY")


@pytest.mark.settings(large_org=1)
def test_subscribe_is_org_scoped_and_validated(server):
    server.ws("o2", "stranger")
    sub = subscriber(server, "o1", "s")
    sub.send_json({"type": "subscribe", "users": ["stranger"]})
    part = sub.expect("snapshot", strict=True)
    assert part["members"] == []          # not found: nothing revealed
    for bad in ({"type": "subscribe"}, {"type": "subscribe", "users": []},
                {"type": "subscribe", "users": "a"},
                {"type": "subscribe", "users": [1]},
                {"type": "subscribe", "users": ["x"] * 1001}):
        sub.send_json(bad)
        e = sub.expect("error", strict=True)
        assert e["code"] == "bad_message", (bad, e)
    sub.ping()
