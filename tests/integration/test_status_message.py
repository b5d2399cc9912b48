"""Status messages, Do Not Disturb, time zones and hidden last_seen
(issue 13; docs/protocol.md "Status messages and Do Not Disturb"), through
the real binary: HTTP, WebSocket frames, the database, restarts.

Waits come from the server's settings (flush, the expiry we set) plus a
generous slack; nothing asserts on how fast this machine is."""

import json
import os
import time

import pytest

from conftest import WSClient, now_ms, token_for, wait_until

SLACK = 5.0      # seconds, for a loaded CI machine
USERS = (("o1", "ann", "Ann"), ("o1", "bob", "Bob"), ("o2", "eve", "Eve"))


def seed(srv):
    srv.seed_users(*USERS)
    return srv.cli_ok("channel", "add", "--org", "o1", "--name", "general",
                      "--members", "ann,bob").stdout.strip().splitlines()[-1]


def put(srv, path, body, user="ann", org="o1"):
    return srv.http("PUT", path, token=token_for(org, user), json=body)


def put_ok(srv, path, body, user="ann", org="o1"):
    r = put(srv, path, body, user, org)
    assert r.status_code == 200, (path, body, r.status_code, r.text)
    return r.json()


def get(srv, path, user="bob", org="o1"):
    r = srv.http("GET", path, token=token_for(org, user))
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def member(srv, who, viewer="bob", org="o1"):
    return get(srv, "/api/users/" + who, viewer, org)


def every_view(srv, ch, who, viewer="bob"):
    """The member 'who' as each HTTP route shows it to viewer."""
    out = {"/api/users/{id}": member(srv, who, viewer)}
    out["/api/presence"] = [m for m in get(srv, "/api/presence", viewer)
                            ["members"] if m["user"] == who][0]
    g = get(srv, "/api/channels/" + ch, viewer)
    out["/api/channels/{id}"] = [m for m in g["members"]
                                 if m["user"] == who][0]
    return out


def settings_of(srv, user="ann"):
    return get(srv, "/api/me", user)["settings"]


@pytest.mark.settings(flush="300ms")
def test_message_everywhere_and_cleared(srv):
    ch = seed(srv)
    srv.start()
    bob = srv.ws("o1", "bob")
    ann = srv.ws("o1", "ann")
    bob.expect_presence("ann", "ONLINE", "connect")
    exp = now_ms() + 3600 * 1000
    me = put_ok(srv, "/api/status", {"message": {
        "text": "In a meeting \U0001F4C5 ünïcödé", "emoji": "\U0001F4C5",
        "expires": exp}})
    assert me["settings"]["message"] == {
        "text": "In a meeting \U0001F4C5 ünïcödé", "emoji": "\U0001F4C5",
        "expires": exp, "clear_status": False}
    ev = bob.expect("presence", lambda m: m["user"] == "ann")
    assert ev["reason"] == "message" and ev["status"] == "ONLINE", ev
    want = {"text": "In a meeting \U0001F4C5 ünïcödé", "emoji": "\U0001F4C5",
            "expires": exp}
    assert ev["message"] == want
    for where, m in every_view(srv, ch, "ann").items():
        assert m.get("message") == want, (where, m)
    # The same again announces nothing; a snapshot carries it.
    put_ok(srv, "/api/status", {"message": {
        "text": "In a meeting \U0001F4C5 ünïcödé", "emoji": "\U0001F4C5",
        "expires": exp}})
    bob.ping()
    assert not [m for m in bob.log if m.get("type") == "presence"
                and m["user"] == "ann" and m is not ev
                and m.get("reason") == "message"]
    late = srv.ws("o1", "bob", label="late")
    snap = [m for m in late.snapshot["members"] if m["user"] == "ann"][0]
    assert snap["message"] == want
    # Stored (the flush writes it) as the settings form.
    wait_until(lambda: srv.sql('SELECT data FROM user_extras WHERE org = ? '
                               'AND "user" = ?', ("o1", "ann")),
               3 + SLACK, what="extras row")
    row = srv.sql('SELECT data FROM user_extras WHERE "user" = ?', ("ann",))
    assert json.loads(row[0]["data"])["message"]["text"].startswith("In a")
    # Cleared: one event without the field, and the row goes.
    put_ok(srv, "/api/status", {"message": None})
    ev = bob.expect("presence", lambda m: m["user"] == "ann"
                    and m["reason"] == "message")
    assert "message" not in ev
    assert "message" not in member(srv, "ann")
    wait_until(lambda: not srv.sql('SELECT 1 FROM user_extras WHERE '
                                   '"user" = ?', ("ann",)),
               3 + SLACK, what="row deleted")
    ann.close()


@pytest.mark.settings(flush="300ms")
def test_message_expires_with_status(srv):
    seed(srv)
    srv.start()
    bob = srv.ws("o1", "bob")
    srv.ws("o1", "ann")
    bob.expect_presence("ann", "ONLINE", "connect")
    t = now_ms() + 1500
    me = put_ok(srv, "/api/status", {"status": "BUSY", "message": {
        "text": "Focus", "expires": t, "clear_status": True}})
    assert me["manual"] == "BUSY"
    ev = bob.expect_presence("ann", "BUSY", "manual")   # one event for both
    assert ev["message"]["text"] == "Focus"
    ev = bob.expect("presence", lambda m: m["user"] == "ann",
                    timeout=1.5 + SLACK)
    assert ev["reason"] == "expired" and ev["status"] == "ONLINE", ev
    assert "message" not in ev
    assert now_ms() >= t                 # never early
    assert get(srv, "/api/me", "ann")["manual"] is None


@pytest.mark.settings(flush="200ms")
def test_expiry_across_a_restart(srv):
    """A message that expires while the server is down is cleared, and
    stored cleared, as it starts; one that has not expired survives."""
    seed(srv)
    srv.start()
    put_ok(srv, "/api/status", {"status": "BUSY", "message": {
        "text": "Soon gone", "expires": now_ms() + 1500,
        "clear_status": True}}, user="ann")
    keep = now_ms() + 3600 * 1000
    put_ok(srv, "/api/status", {"message": {"text": "Still here",
                                            "expires": keep}}, user="bob")
    srv.stop()
    assert json.loads(srv.sql('SELECT data FROM user_extras WHERE '
                              '"user" = ?', ("ann",))[0]["data"])["message"]
    time.sleep(2.0)                      # past ann's expiry, server down
    srv.start()
    assert "message" not in member(srv, "ann")
    assert get(srv, "/api/me", "ann")["manual"] is None
    assert member(srv, "ann", "bob")["status"] in ("OFFLINE",)
    assert member(srv, "bob", "ann")["message"] == {
        "text": "Still here", "emoji": None, "expires": keep}
    wait_until(lambda: not srv.sql('SELECT 1 FROM user_extras WHERE '
                                   '"user" = ?', ("ann",)),
               2 + SLACK, what="expired row cleared")
    rows = srv.sql('SELECT manual FROM users WHERE id = ?', ("ann",))
    assert rows[0]["manual"] is None


BAD = [
    ({"message": {"text": "x" * 101}}, "invalid_message"),
    ({"message": {"text": "\u00e9" * 101}}, "invalid_message"),
    ({"message": {"text": "line\nbreak"}}, "invalid_message"),
    ({"message": {"text": "bell\u0007"}}, "invalid_message"),
    ({"message": {"text": "sep\u2028"}}, "invalid_message"),
    ({"message": {"text": 5}}, "invalid_message"),
    ({"message": {"text": "ok", "emoji": "e" * 17}}, "invalid_message"),
    ({"message": {"text": "ok", "expires": 1000}}, "invalid_expiry"),
    ({"message": {"text": "ok", "expires": "2020-01-01T00:00Z"}},
     "invalid_expiry"),
    ({"message": {"text": "ok", "expires": "tomorrow-ish"}},
     "invalid_expiry"),
    ({"message": {"text": "ok", "expires": "2030-01-01T00:00"}},
     "invalid_expiry"),
    ({"message": "hello"}, "bad_request"),
    ({"tz": "Mars/Olympus"}, "invalid_tz"),
    ({"tz": "../../etc/passwd"}, "invalid_tz"),
    ({"dnd": {"until": 1000}}, "invalid_dnd"),
    ({"dnd": {"schedule": [{"days": ["mon"], "start": "09:00",
                            "end": "12:00"},
                           {"days": ["mon", "tue"], "start": "11:00",
                            "end": "13:00"}]}}, "invalid_schedule"),
    ({"dnd": {"schedule": [{"days": [], "start": "09:00",
                            "end": "12:00"}]}}, "invalid_schedule"),
    ({"dnd": {"schedule": [{"days": ["mon"], "start": "09:00",
                            "end": "09:00"}]}}, "invalid_schedule"),
    ({"dnd": {"schedule": [{"days": ["mon"], "start": "9:00",
                            "end": "12:00"}]}}, "invalid_schedule"),
    ({"dnd": {"while_busy": "yes"}}, "bad_request"),
    ({"hide_last_seen": 1}, "bad_request"),
    ({"status": "BUSY", "message": {"text": "x" * 101}}, "invalid_message"),
    ({"nonsense": 1}, "bad_request"),
    ({}, "invalid_status"),
]


@pytest.mark.parametrize("body,code", BAD, ids=[c + str(i) for i, (_, c)
                                                 in enumerate(BAD)])
def test_bad_input_http_and_ws(shared_server, body, code):
    """Each refused with its code over HTTP (400) and as a WebSocket error
    frame; nothing stored, nothing announced."""
    srv = shared_server
    org = "bad%d" % BAD.index((body, code))
    obs = srv.ws(org, "obs")          # a token provisions the user
    ws = srv.ws(org, "ann")
    obs.expect_presence("ann", "ONLINE", "connect")
    put_ok(srv, "/api/status", {"status": "AWAY", "message": {
        "text": "before"}}, org=org)
    obs.expect_presence("ann", "AWAY", "manual")
    before = get(srv, "/api/me", "ann", org)
    r = put(srv, "/api/status", body, org=org)
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"]["code"] == code, r.text
    ws.send_json(dict(body, type="update") if body else {"type": "update"})
    err = ws.expect("error")
    assert err["code"] == code, err
    after = get(srv, "/api/me", "ann", org)
    assert after["settings"] == before["settings"]
    assert after["manual"] == before["manual"] == "AWAY"
    obs.ping()
    assert [m.get("reason") for m in obs.log if m.get("type") == "presence"
            and m["user"] == "ann"] == ["connect", "manual"], obs.log


def test_dnd_badge_and_notify(srv):
    seed(srv)
    srv.start()
    bob = srv.ws("o1", "bob")
    srv.ws("o1", "ann")
    bob.expect_presence("ann", "ONLINE", "connect")
    assert get(srv, "/api/users/ann/notify") == {"notify": True}
    me = put_ok(srv, "/api/dnd", {"until": "1h"})
    until = me["settings"]["dnd"]["until"]
    assert abs(until - (now_ms() + 3600 * 1000)) < 60000
    ev = bob.expect("presence", lambda m: m["user"] == "ann")
    assert ev["reason"] == "dnd" and ev["dnd"] == {"until": until}, ev
    assert get(srv, "/api/users/ann/notify") == {
        "notify": False, "reason": "dnd", "until": until}
    assert member(srv, "ann")["dnd"] == {"until": until}
    # Another organization cannot ask.
    r = srv.http("GET", "/api/users/ann/notify", token=token_for("o2", "eve"))
    assert r.status_code == 404, r.text
    # While BUSY: no known end.
    put_ok(srv, "/api/dnd", {"until": None, "while_busy": True})
    bob.expect("presence", lambda m: m["user"] == "ann"
               and m["reason"] == "dnd" and "dnd" not in m)
    assert get(srv, "/api/users/ann/notify") == {"notify": True}
    put_ok(srv, "/api/status", {"status": "BUSY"})
    ev = bob.expect("presence", lambda m: m["user"] == "ann"
                    and m["reason"] == "manual")
    assert ev["dnd"] == {"until": None}
    assert get(srv, "/api/users/ann/notify") == {
        "notify": False, "reason": "dnd", "until": None}
    r = srv.http("PUT", "/api/dnd", token=token_for("o1", "ann"), data="null",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert settings_of(srv)["dnd"] == {"until": None, "schedule": [],
                                       "while_busy": False}


def test_dnd_schedule_stored_and_shown(srv):
    seed(srv)
    srv.start()
    sched = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "18:00",
              "end": "09:00"},
             {"days": ["sat", "sun"], "start": "00:00", "end": "24:00"}]
    me = put_ok(srv, "/api/profile", {"tz": "Europe/Paris"})
    assert me["settings"]["tz"] == "Europe/Paris"
    assert member(srv, "ann")["tz"] == "Europe/Paris"
    me = put_ok(srv, "/api/dnd", {"schedule": sched})
    assert me["settings"]["dnd"]["schedule"] == sched
    srv.restart()
    assert settings_of(srv)["dnd"]["schedule"] == sched
    assert settings_of(srv)["tz"] == "Europe/Paris"


def test_hide_last_seen(srv):
    seed(srv)
    srv.start()
    srv.ws("o1", "ann").close()
    wait_until(lambda: member(srv, "ann")["last_seen"] is not None, 5,
               what="last_seen")
    bob = srv.ws("o1", "bob")
    put_ok(srv, "/api/profile", {"hide_last_seen": True})
    ev = bob.expect("presence", lambda m: m["user"] == "ann"
                    and m["reason"] == "profile")
    assert ev["last_seen"] is None and ev["last_seen_hidden"] is True
    assert member(srv, "ann")["last_seen"] is None
    assert member(srv, "ann")["last_seen_hidden"] is True
    assert "last_seen_hidden" not in member(srv, "bob", "ann")
    assert [m for m in get(srv, "/api/presence")["members"]
            if m["user"] == "ann"][0]["last_seen"] is None
    late = srv.ws("o1", "bob", label="late")
    assert [m for m in late.snapshot["members"]
            if m["user"] == "ann"][0]["last_seen"] is None
    me = get(srv, "/api/me", "ann")
    assert me["last_seen"] is not None and me["settings"]["hide_last_seen"]


def test_isolation_between_organizations(srv):
    """Nothing of o1's new fields reaches o2: not in frames, not in the
    API."""
    seed(srv)
    srv.start()
    eve = srv.ws("o2", "eve")
    put_ok(srv, "/api/status", {"message": {"text": "secret plans"}})
    put_ok(srv, "/api/dnd", {"until": "1h"})
    put_ok(srv, "/api/profile", {"tz": "Asia/Tokyo", "hide_last_seen": True})
    # o2's own change goes through, after o1's: eve has seen all there was.
    put_ok(srv, "/api/status", {"message": {"text": "mine"}}, "eve", "o2")
    eve.expect("presence", lambda m: m["user"] == "eve")
    text = json.dumps(eve.log)
    assert "secret" not in text and "Asia/Tokyo" not in text, text
    assert "ann" not in text, text
    r = srv.http("GET", "/api/users/ann", token=token_for("o2", "eve"))
    assert r.status_code == 404
    body = json.dumps(get(srv, "/api/presence", "eve", "o2"))
    assert "secret" not in body and "ann" not in body


def test_ws_update(srv):
    seed(srv)
    srv.start()
    bob = srv.ws("o1", "bob")
    ann = srv.ws("o1", "ann")
    bob.expect_presence("ann", "ONLINE", "connect")
    ann.send_json({"type": "update", "status": "BUSY",
                   "message": {"text": "Commuting", "expires": "30m"}})
    ev = bob.expect_presence("ann", "BUSY", "manual")
    assert ev["message"]["text"] == "Commuting"
    assert abs(ev["message"]["expires"] - (now_ms() + 1800 * 1000)) < 60000


def test_presets(srv):
    seed(srv)
    srv.start()
    p = get(srv, "/api/status/presets")
    assert p["org"] == "o1"
    assert [x["text"] for x in p["presets"]] == [
        "In a meeting", "Commuting", "Out sick", "On vacation",
        "Working remotely"]
    key = srv.sql("SELECT admin_key FROM server")[0]["admin_key"]
    adm = {"Authorization": "Admin " + key}
    mine = [{"text": "Deep work", "emoji": "\U0001F9E0", "expires": "4h"}]
    r = srv.http("PUT", "/api/admin/presets?org=o1", headers=adm, json=mine)
    assert r.status_code == 200, r.text
    assert get(srv, "/api/status/presets")["presets"] == mine
    assert get(srv, "/api/status/presets", "eve", "o2")["presets"][0][
        "text"] == "In a meeting"                       # o2 untouched
    for bad in ([{"text": ""}], [{"text": "x", "expires": "2h"}],
                [{"text": "x", "color": "red"}], {"presets": 3},
                [{"text": "x"}] * 21, [{"text": "a\u0007b"}]):
        r = srv.http("PUT", "/api/admin/presets?org=o1", headers=adm,
                     json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_presets"
    r = srv.http("PUT", "/api/admin/presets?org=o1", json=mine,
                 token=token_for("o1", "ann"))
    assert r.status_code == 401
    r = srv.http("PUT", "/api/admin/presets?org=nope", headers=adm, json=mine)
    assert r.status_code == 404
    # The CLI, on the database the server runs on: seen at once.
    f = os.path.join(srv.dir, "p.json")
    with open(f, "w") as fh:
        fh.write(json.dumps([{"text": "From the CLI"}]))
    srv.cli_ok("presets", "set", "--org", "o1", "--file", str(f))
    assert get(srv, "/api/status/presets")["presets"] == [
        {"text": "From the CLI"}]
    out = srv.cli_ok("presets", "show", "--org", "o1").stdout
    assert "From the CLI" in out
    with open(f, "w") as fh:
        fh.write('[{"text": "x", "expires": "fortnight"}]')
    assert srv.cli("presets", "set", "--org", "o1", "--file",
                   str(f)).returncode == 2
    srv.cli_ok("presets", "reset", "--org", "o1")
    assert get(srv, "/api/status/presets")["presets"][0]["text"] == \
        "In a meeting"
    assert srv.cli("presets", "show", "--org", "nope").returncode == 1


def test_schedule_turns_dnd_on_at_the_minute(srv):
    """A weekly entry starting at the next whole minute (UTC) is announced
    when that minute comes, not before, with until = its end."""
    seed(srv)
    srv.start()
    bob = srv.ws("o1", "bob")
    now = now_ms()
    start = (now // 60000 + 1) * 60000
    if start - now < 5000:              # too close to set it up in time
        start += 60000
    t = time.gmtime(start / 1000)
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    hhmm = "%02d:%02d" % (t.tm_hour, t.tm_min)
    end_min = t.tm_hour * 60 + t.tm_min + 1
    end = "%02d:%02d" % (end_min // 60, end_min % 60)   # 23:59 -> 24:00
    put_ok(srv, "/api/profile", {"tz": "UTC"})
    bob.expect("presence", lambda m: m["user"] == "ann"
               and m["reason"] == "profile")
    put_ok(srv, "/api/dnd", {"schedule": [{"days": [days[t.tm_wday]],
                                           "start": hhmm, "end": end}]})
    assert "dnd" not in member(srv, "ann")
    assert get(srv, "/api/users/ann/notify") == {"notify": True}
    ev = bob.expect("presence", lambda m: m["user"] == "ann"
                    and m["reason"] == "dnd" and "dnd" in m,
                    timeout=(start - now) / 1000 + SLACK)
    assert now_ms() >= start, "announced before its minute"
    assert ev["dnd"] == {"until": start + 60000}, ev
    assert get(srv, "/api/users/ann/notify") == {
        "notify": False, "reason": "dnd", "until": start + 60000}


def test_bad_input_dnd_and_profile_routes(srv):
    """The two narrower routes refuse what is not theirs, nothing stored."""
    seed(srv)
    srv.start()
    before = settings_of(srv)
    for path, body, code in (
            ("/api/dnd", {"until": 1000}, "invalid_dnd"),
            ("/api/dnd", {"schedule": "weekdays"}, "invalid_schedule"),
            ("/api/dnd", {"color": "red"}, "bad_request"),
            ("/api/profile", {"message": {"text": "x"}}, "bad_request"),
            ("/api/profile", {"tz": "Mars/Olympus"}, "invalid_tz"),
            ("/api/profile", [], "bad_request")):
        r = put(srv, path, body)
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        assert r.json()["error"]["code"] == code, (path, body, r.text)
    assert settings_of(srv) == before
