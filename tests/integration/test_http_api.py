"""The HTTP API (docs/protocol.md "HTTP API"): login, logout, me, presence,
users, status, CSRF, errors."""

import time

import pytest
import requests

from conftest import (WSClient, connect_status, jwt_claims, make_jwt,
                      now_ms, token_for)

PW = "pw-secret-123"


@pytest.fixture
def two_users(srv):
    """o1 with u1 (ann@o1.example) and u2 (bob@o1.example), server up."""
    def build(s):
        s.add_org("o1")
        s.add_user("o1", "u1", name="Ann", email="ann@o1.example", password=PW)
        s.add_user("o1", "u2", name="Bob", email="bob@o1.example", password=PW)
    srv.seed("http-two-users", build)
    srv.start()
    return srv


def set_cookie_header(r):
    return r.headers.get("Set-Cookie", "")


def test_healthz(shared_server):
    server = shared_server
    r = requests.get(server.url("/healthz"), timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    # WebSocket connections per event loop: at least one loop, none yet
    # (the module's server is shared, but nothing holds a socket here).
    assert isinstance(body["loops"], list) and len(body["loops"]) >= 1
    assert all(isinstance(n, int) and n >= 0 for n in body["loops"])


def test_login_answer_and_cookie_flags(two_users):
    s = two_users
    t0 = now_ms()
    r = s.login("ann@o1.example", PW)
    assert r.status_code == 200, r.text
    body = r.json()
    u = body["user"]
    assert (u["user"], u["org"], u["email"], u["name"]) == \
        ("u1", "o1", "ann@o1.example", "Ann"), body
    assert u["status"] == "ONLINE"
    assert isinstance(body["expires"], int) and body["expires"] > t0 + 60_000
    c = jwt_claims(body["token"])
    assert (c["sub"], c["org"]) == ("u1", "o1"), c
    assert c["exp"] > time.time()
    sc = set_cookie_header(r)
    low = sc.lower()
    assert "presenced_session=" in sc, sc
    assert "httponly" in low, sc
    assert "samesite=lax" in low, sc
    assert "path=/" in low, sc


def test_login_email_is_case_insensitive(two_users):
    r = two_users.login("ANN@O1.example", PW)
    assert r.status_code == 200, r.text
    assert jwt_claims(r.json()["token"])["sub"] == "u1"


def test_login_announces_online_and_token_works_on_ws(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    body, cookie = s.login_ok("ann@o1.example")
    e = obs.expect_presence("u1", "ONLINE", "login")
    assert e["name"] == "Ann" and isinstance(e["last_seen"], int)
    c = s.ws_token(body["token"])
    assert (c.hello["user"], c.hello["org"]) == ("u1", "o1")
    # Already ONLINE from the login: connecting announces nothing.
    obs.assert_no_message(0.4)
    r = s.http("GET", "/api/me", cookie=cookie)
    assert r.status_code == 200
    me = r.json()
    assert (me["user"], me["name"], me["status"], me["connections"]) == \
        ("u1", "Ann", "ONLINE", 1), me


def test_login_without_connection_goes_offline_after_login_grace(two_users):
    s = two_users                       # login_grace 2s
    obs = s.ws("o1", "u2")
    s.login_ok("ann@o1.example")
    obs.expect_presence("u1", "ONLINE", "login")
    t0 = time.monotonic()
    obs.assert_no_message(1.2)
    obs.expect_presence("u1", "OFFLINE", "grace_expired", timeout=4)
    assert time.monotonic() - t0 >= 1.2
    obs.assert_no_message(0.5)


def test_login_then_connect_inside_login_grace_stays_online(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    body, _ = s.login_ok("ann@o1.example")
    obs.expect_presence("u1", "ONLINE", "login")
    time.sleep(0.5)
    c = s.ws_token(body["token"])
    obs.assert_no_message(2.5)          # past the 2s login grace
    c.ping()


def test_login_keeps_manual_status(two_users):
    s = two_users
    u = s.ws("o1", "u1")
    u.set_manual("BUSY")
    u.expect_presence("u1", "BUSY", "manual")
    u.close()
    obs = s.ws("o1", "u2")
    obs.wait_presence("u1", "OFFLINE", "grace_expired", timeout=4)
    s.login_ok("ann@o1.example")
    obs.expect_presence("u1", "BUSY", "login")


def test_wrong_password_is_401(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    r = s.login("ann@o1.example", "wrong")
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_credentials"
    assert "presenced_session" not in set_cookie_header(r)
    r = s.login("nobody@o1.example", PW)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_credentials"
    obs.assert_no_message(0.3)


@pytest.mark.settings(login_limit="3", login_window="1m")
def test_login_rate_limited_after_limit_failures(two_users):
    s = two_users
    for i in range(3):
        r = s.login("ann@o1.example", "wrong-%d" % i)
        assert r.status_code == 401, (i, r.status_code, r.text)
    r = s.login("ann@o1.example", "wrong-again")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.isdigit() and int(ra) > 0, r.headers
    # Even the right password is refused inside the window.
    r = s.login("ann@o1.example", PW)
    assert r.status_code == 429, r.text


def test_logout_closes_session_connections_and_goes_offline(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    body, cookie = s.login_ok("ann@o1.example")
    obs.expect_presence("u1", "ONLINE", "login")
    jwt_conn = s.ws_token(body["token"], label="jwt-conn")
    cookie_conn = WSClient.connect(s.ws_url(), headers={"Cookie": "presenced_session=" + cookie},
                                   origin=s.origin, label="cookie-conn")
    obs.assert_no_message(0.3)
    r = s.http("POST", "/api/logout", cookie=cookie, headers={"Origin": s.origin})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True}
    sc = set_cookie_header(r)
    assert "presenced_session=" in sc, "logout does not clear the cookie: %r" % sc
    for c in (jwt_conn, cookie_conn):
        code, reason = c.wait_closed(3)
        assert (code, reason) == (1008, "logged out"), (c.label, code, reason)
    # OFFLINE at once (no grace), announced once.
    obs.expect_presence("u1", "OFFLINE", "logout", timeout=0.9)
    obs.assert_no_message(1.5)
    # The session is gone: cookie and its JWT refused.
    r = s.http("GET", "/api/me", cookie=cookie)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert connect_status(s.ws_url(token=body["token"])) == 401
    assert connect_status(s.ws_url(), headers={"Cookie": "presenced_session=" + cookie},
                          origin=s.origin) == 401
    r = s.http("GET", "/api/me", token=body["token"])
    assert r.status_code == 401


def test_logout_keeps_user_online_with_another_connection(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    body, cookie = s.login_ok("ann@o1.example")
    obs.expect_presence("u1", "ONLINE", "login")
    session_conn = s.ws_token(body["token"])
    other = s.ws("o1", "u1")            # plain JWT, not from the session
    r = s.http("POST", "/api/logout", cookie=cookie, headers={"X-Requested-With": "fetch"})
    assert r.status_code == 200, r.text
    assert session_conn.wait_closed(3)[0] == 1008
    obs.assert_no_message(1.5)
    other.ping()


def test_logout_with_bearer_jwt_ends_its_session(two_users):
    s = two_users
    body, cookie = s.login_ok("ann@o1.example")
    r = s.http("POST", "/api/logout", token=body["token"])
    assert r.status_code == 200, r.text
    assert s.http("GET", "/api/me", cookie=cookie).status_code == 401
    assert connect_status(s.ws_url(token=body["token"])) == 401


def test_api_needs_authentication(shared_server):
    server = shared_server
    for method, path in (("GET", "/api/me"), ("GET", "/api/presence"),
                         ("GET", "/api/users/u1"), ("PUT", "/api/status"),
                         ("POST", "/api/logout")):
        r = server.http(method, path, json={"status": "BUSY"} if method == "PUT" else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized", r.text
    r = server.http("GET", "/api/presence", token=make_bad())
    assert r.status_code == 401


def make_bad():
    return make_jwt({"sub": "u1", "org": "o1", "exp": int(time.time()) + 60},
                    alg="none")


def test_presence_lists_members_with_connections(two_users):
    s = two_users
    s.ws("o1", "u1")
    a2 = s.ws("o1", "u1")
    body = s.presence(token_for("o1", "u2"))
    assert body["org"] == "o1"
    assert isinstance(body["seq"], int)
    m = {x["user"]: x for x in body["members"]}
    assert set(m) == {"u1", "u2"}, body
    assert m["u1"]["status"] == "ONLINE" and m["u1"]["connections"] == 2
    assert m["u1"]["name"] == "Ann" and isinstance(m["u1"]["last_seen"], int)
    assert m["u2"] == {"user": "u2", "name": "Bob", "status": "OFFLINE",
                       "last_seen": None, "connections": 0}, m["u2"]
    assert body["seq"] == a2.last_seq


def test_get_user(two_users):
    s = two_users
    s.ws("o1", "u1")
    r = s.http("GET", "/api/users/u1", token=token_for("o1", "u2"))
    assert r.status_code == 200
    j = r.json()
    assert (j["user"], j["name"], j["status"], j["connections"]) == ("u1", "Ann", "ONLINE", 1)


def test_put_status_announces_and_answers_member(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    u = s.ws("o1", "u1")
    obs.expect_presence("u1", "ONLINE", "connect")
    tok = token_for("o1", "u1")
    r = s.http("PUT", "/api/status", token=tok, json={"status": "BUSY"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert (j["user"], j["status"], j["connections"]) == ("u1", "BUSY", 1), j
    obs.expect_presence("u1", "BUSY", "manual")
    u.expect_presence("u1", "BUSY", "manual")
    # Same status again: nothing.
    r = s.http("PUT", "/api/status", token=tok, json={"status": "BUSY"})
    assert r.status_code == 200
    obs.assert_no_message(0.4)
    r = s.http("PUT", "/api/status", token=tok, json={"status": "ONLINE"})
    assert r.json()["status"] == "ONLINE"
    obs.expect_presence("u1", "ONLINE", "manual")


@pytest.mark.parametrize("body", [{"status": "HAPPY"}, {}, {"status": 3}])
def test_put_status_invalid(two_users, body):
    s = two_users
    obs = s.ws("o1", "u2")
    r = s.http("PUT", "/api/status", token=token_for("o1", "u2"), json=body)
    assert r.status_code == 400, (body, r.status_code, r.text)
    assert r.json()["error"]["code"] in ("bad_request", "invalid_status"), r.text
    obs.assert_no_message(0.3)


def test_cookie_put_status_csrf(two_users):
    s = two_users
    obs = s.ws("o1", "u2")
    _, cookie = s.login_ok("ann@o1.example")
    obs.expect_presence("u1", "ONLINE", "login")
    r = s.http("PUT", "/api/status", cookie=cookie, json={"status": "BUSY"},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "csrf"
    r = s.http("PUT", "/api/status", cookie=cookie, json={"status": "BUSY"})
    assert r.status_code == 403, "no Origin and no X-Requested-With: %s" % r.text
    assert r.json()["error"]["code"] == "csrf"
    obs.assert_no_message(0.3)
    r = s.http("PUT", "/api/status", cookie=cookie, json={"status": "BUSY"},
               headers={"Origin": s.origin})
    assert r.status_code == 200, r.text
    obs.expect_presence("u1", "BUSY", "manual")
    r = s.http("PUT", "/api/status", cookie=cookie, json={"status": "AWAY"},
               headers={"X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 200, r.text
    obs.expect_presence("u1", "AWAY", "manual")
    # GET with a cookie from anywhere is fine (no state change).
    r = s.http("GET", "/api/me", cookie=cookie, headers={"Origin": "http://evil.example"})
    assert r.status_code == 200


def test_cookie_logout_csrf(two_users):
    s = two_users
    _, cookie = s.login_ok("ann@o1.example")
    r = s.http("POST", "/api/logout", cookie=cookie, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", r.text
    assert s.http("GET", "/api/me", cookie=cookie).status_code == 200


def test_bearer_put_status_ignores_origin(two_users):
    s = two_users
    r = s.http("PUT", "/api/status", token=token_for("o1", "u1"), json={"status": "BUSY"},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path,method,data", [
    ("/api/login", "POST", "{not json"),
    ("/api/login", "POST", "[1,2]"),
    ("/api/status", "PUT", "{\"status\":"),
])
def test_bad_json_body_is_400(two_users, path, method, data):
    s = two_users
    r = s.http(method, path, data=data, token=token_for("o1", "u1") if path != "/api/login" else None,
               headers={"Content-Type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "bad_request", err
    assert isinstance(err.get("message"), str)


def test_unknown_route_is_404_json(shared_server):
    server = shared_server
    for path in ("/api/nope", "/api/presence/extra", "/api/users/u1/extra"):
        r = server.http("GET", path, token=token_for("unknown_route_is_404_json", "u1"))
        assert r.status_code == 404, (path, r.status_code)
        assert r.json()["error"]["code"] == "not_found", (path, r.text)


def test_wrong_method_is_405(shared_server):
    server = shared_server
    tok = token_for("wrong_method_is_405", "u1")
    for method, path in (("DELETE", "/api/presence"), ("GET", "/api/login"),
                         ("POST", "/api/status")):
        r = server.http(method, path, token=tok)
        assert r.status_code == 405, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_error_responses_are_json(shared_server):
    server = shared_server
    r = server.http("GET", "/api/presence")
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    j = r.json()
    assert set(j) == {"error"} and set(j["error"]) >= {"code", "message"}, j
