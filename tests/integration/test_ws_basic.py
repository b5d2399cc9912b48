"""WebSocket basics: routing, the upgrade, hello, snapshot, ping, fan-out,
seq numbering (docs/protocol.md "WebSocket")."""

import base64
import os

import pytest
import requests

from conftest import connect_status, now_ms, token_for


def test_trailing_slash_endpoint_upgrades(shared_server):
    server = shared_server
    c = server.ws("trailing_slash_endpoint_upgrades", "u1", path="/ws/presence/")
    assert c.hello["type"] == "hello" and c.hello["user"] == "u1"


def test_endpoint_without_trailing_slash_upgrades(shared_server):
    server = shared_server
    c = server.ws("endpoint_without_trailing_slash_upgrades", "u1", path="/ws/presence")
    assert c.hello["type"] == "hello" and c.hello["user"] == "u1"
    assert c.snapshot["type"] == "snapshot"


@pytest.mark.parametrize("path", ["/ws/other", "/ws/presence/extra", "/ws/"])
def test_other_ws_paths_are_404(shared_server, path):
    server = shared_server
    tok = token_for("other_ws_paths_are_404", "u1")
    assert connect_status(server.ws_url(path, tok)) == 404


def test_plain_get_without_upgrade_is_400(shared_server):
    server = shared_server
    tok = token_for("plain_get_without_upgrade_is_400", "u1")
    r = requests.get(server.url("/ws/presence/?token=" + tok), timeout=5)
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "bad_upgrade"


def test_upgrade_with_bad_key_is_400(shared_server):
    server = shared_server
    tok = token_for("upgrade_with_bad_key_is_400", "u1")
    r = requests.get(server.url("/ws/presence/?token=" + tok), timeout=5, headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"short").decode()})
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "bad_upgrade"


def test_other_websocket_version_is_426(shared_server):
    server = shared_server
    tok = token_for("other_websocket_version_is_426", "u1")
    r = requests.get(server.url("/ws/presence/?token=" + tok), timeout=5, headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "8",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    assert r.status_code == 426, (r.status_code, r.text)
    assert r.headers.get("Sec-WebSocket-Version") == "13"


def test_hello_fields(shared_server):
    server = shared_server
    c = server.ws("hello_fields", "u1", name="Ann")
    h = c.hello
    assert h == {"type": "hello", "user": "u1", "org": "hello_fields", "name": "Ann",
                 "heartbeat": 1, "away_after": 300, "offline_after": 1800,
                 "status": "ONLINE", "manual": None, "max_message": 65536}, h


def test_hello_name_defaults_to_id(shared_server):
    server = shared_server
    c = server.ws("hello_name_defaults_to_id", "u7")
    assert c.hello["name"] == "u7"


@pytest.mark.settings(heartbeat="2s", away_after="45s", offline_after="10m",
                      max_msg="32k")
def test_hello_reports_configuration(server):
    h = server.ws("o1", "u1").hello
    assert (h["heartbeat"], h["away_after"], h["offline_after"], h["max_message"]) \
        == (2, 45, 600, 32768), h


def test_snapshot_lists_every_member_including_never_seen(srv):
    srv.seed_users(("o1", "u1", "Ann"), ("o1", "u2", "Bob"), ("o1", "u3", "Cy"),
                   ("o2", "x1", "Xena"))
    srv.start()
    t0 = now_ms()
    a = srv.ws("o1", "u1", name="Ann")
    s = a.snapshot
    assert s["type"] == "snapshot" and isinstance(s["seq"], int) and s["seq"] >= 0
    members = {m["user"]: m for m in s["members"]}
    assert set(members) == {"u1", "u2", "u3"}, s
    for uid, name in (("u2", "Bob"), ("u3", "Cy")):
        assert members[uid] == {"user": uid, "name": name, "status": "OFFLINE",
                                "last_seen": None}, members[uid]
    for m in s["members"]:
        assert set(m) >= {"user", "name", "status", "last_seen"}, m
    # The caller itself ends up ONLINE (in the snapshot or right after it).
    if a.view["u1"].get("status") != "ONLINE":
        a.expect_presence("u1", "ONLINE", "connect")
    assert a.view["u1"]["status"] == "ONLINE"
    # A second member connecting later sees u1 ONLINE with a last_seen.
    b = srv.ws("o1", "u2", name="Bob")
    m1 = {m["user"]: m for m in b.snapshot["members"]}["u1"]
    assert m1["status"] == "ONLINE"
    assert isinstance(m1["last_seen"], int) and m1["last_seen"] >= t0 - 1000, m1


def test_ping_pong(shared_server):
    server = shared_server
    c = server.ws("ping_pong", "u1")
    for _ in range(3):
        assert c.ping() == {"type": "pong"}


def test_connect_and_status_changes_reach_every_connection_of_the_org(server):
    a = server.ws("o1", "a")
    b = server.ws("o1", "b")
    a.expect_presence("b", "ONLINE", "connect")
    c1 = server.ws("o1", "c")
    a.expect_presence("c", "ONLINE", "connect")
    b.expect_presence("c", "ONLINE", "connect")
    c2 = server.ws("o1", "c")          # second tab: no change, no event
    a.assert_no_message(0.3)
    b.set_manual("BUSY")
    evs = [x.expect_presence("b", "BUSY", "manual") for x in (a, b, c1, c2)]
    assert len({e["seq"] for e in evs}) == 1, evs
    assert all(e["last_seen"] == evs[0]["last_seen"] for e in evs)
    assert isinstance(evs[0]["last_seen"], int) and evs[0]["last_seen"] > 0
    assert evs[0]["name"] == "b"
    for x in (a, b, c1, c2):
        x.assert_no_message(0.3)


def test_seq_grows_by_one_per_event(server):
    obs = server.ws("o1", "obs")
    base = obs.snapshot["seq"]
    u = server.ws("o1", "u1")
    e1 = obs.expect_presence("u1", "ONLINE", "connect")
    u.set_manual("BUSY")
    e2 = obs.expect_presence("u1", "BUSY", "manual")
    u.set_manual("AWAY")
    e3 = obs.expect_presence("u1", "AWAY", "manual")
    u.set_manual("ONLINE")
    e4 = obs.expect_presence("u1", "ONLINE", "manual")
    assert [e["seq"] for e in (e1, e2, e3, e4)] == [base + 1, base + 2, base + 3, base + 4]
    # A new connection's snapshot carries the latest seq.
    late = server.ws("o1", "late")
    assert late.snapshot["seq"] in (base + 4, base + 5), late.snapshot
    obs.expect_presence("late", "ONLINE", "connect")
    assert obs.last_seq == base + 5
    r = server.http("GET", "/api/presence", token=token_for("o1", "obs"))
    assert r.json()["seq"] == base + 5


def test_same_status_twice_announces_nothing(server):
    obs = server.ws("o1", "obs")
    u = server.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    u.set_manual("BUSY")
    obs.expect_presence("u1", "BUSY", "manual")
    u.set_manual("BUSY")
    u.set_auto("ONLINE")
    obs.assert_no_message(0.5)
    u.ping()


def test_token_name_change_updates_member(shared_server):
    server = shared_server
    a = server.ws("token_name_change_updates_member", "u1", name="Ann")
    a.close()
    b = server.ws("token_name_change_updates_member", "u1", name="Annie")
    assert b.hello["name"] == "Annie"
    m = {m["user"]: m for m in b.snapshot["members"]}["u1"]
    assert m["name"] == "Annie"


def test_unknown_user_and_org_are_created_from_a_valid_token(shared_server):
    server = shared_server
    c = server.ws("fresh-org", "fresh-user", name="Fresh Person")
    assert c.hello["org"] == "fresh-org" and c.hello["name"] == "Fresh Person"
    body = server.presence(token_for("fresh-org", "other"))
    assert body["org"] == "fresh-org"
    m = {m["user"]: m for m in body["members"]}
    assert "fresh-user" in m, body
    assert m["fresh-user"]["name"] == "Fresh Person"
    assert m["fresh-user"]["status"] == "ONLINE"
    assert m["fresh-user"]["connections"] == 1


def test_fragmented_message_is_reassembled(shared_server):
    server = shared_server
    c = server.ws("fragmented_message_is_reassembled", "u1")
    c.send_fragments(['{"ty', 'pe":"pi', 'ng"}'])
    assert c.expect("pong", strict=True) == {"type": "pong"}


def test_extra_fields_are_ignored(shared_server):
    server = shared_server
    c = server.ws("extra_fields_are_ignored", "u1")
    c.send_json({"type": "ping", "extra": {"nested": [1, 2, 3]}})
    c.expect("pong", strict=True)


def test_client_close_is_answered(shared_server):
    server = shared_server
    c = server.ws("client_close_is_answered", "u1")
    c.close(1000)
    assert c.ws.close_code == 1000
