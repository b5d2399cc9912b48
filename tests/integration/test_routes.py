"""The route table (src/api/api.c): which answer comes first when several
apply (404, 401, 405, the admin key, the page redirect, CSRF), where each
route takes its credential from, the named path segments, and the pages
with their assets.  Each case names the exact status and error code."""

import pytest

from conftest import token_for

PW = "pw-secret-123"


@pytest.fixture
def ann(srv):
    """o1 with u1 (ann@o1.example) and u2 (bob), a channel of both; the
    server up; returns (server, session cookie, channel id)."""
    def build(s):
        s.add_org("o1")
        s.add_user("o1", "u1", name="Ann", email="ann@o1.example", password=PW)
        s.add_user("o1", "u2", name="Bob", email="bob@o1.example", password=PW)
    srv.seed("routes-ann", build)
    ch = srv.cli_ok("channel", "add", "--org", "o1", "--name", "general",
                    "--members", "u1,u2").stdout.strip().splitlines()[-1]
    srv.start()
    _, cookie = srv.login_ok("ann@o1.example", PW)
    return srv, cookie, ch


def error(r):
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        (r.status_code, r.headers)
    return r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]


def test_unmatched_paths_are_404_by_area(shared_server):
    s = shared_server
    tok = token_for("routes_404", "u1")
    # Outside the API: no such page, whatever the credential; as JSON but
    # for a GET outside /api, /ws and /static, which is the HTML 404 page
    # (test_pages_nav.py).
    for m, p in (("POST", "/nothing"), ("HEAD", "/nothing"), ("GET", "/static/"),
                 ("GET", "/api")):
        r = s.http(m, p, token=tok)
        if m == "HEAD":
            assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
        else:
            assert error(r) == (404, "not_found", "no such page"), (m, p)
    for p in ("/nothing", "/members/x", "/channels/a/b"):
        r = s.http("GET", p, token=tok)
        assert (r.status_code, r.headers["Content-Type"]) == \
            (404, "text/html; charset=utf-8"), p
    # Under /ws/: no such endpoint (/ws/echo is not mounted by default).
    for p in ("/ws/", "/ws/nope", "/ws/echo", "/ws/presence/x"):
        assert error(s.http("GET", p)) == (404, "not_found", "no such endpoint"), p
    assert error(s.http("GET", "/static/nope.js")) == (404, "not_found", "no such file")


def test_api_authenticates_before_405_and_404(shared_server):
    s = shared_server
    # Without credentials every /api/ path is 401, known or not, right
    # method or not: the API's shape is not shown.
    for m, p in (("GET", "/api/"), ("GET", "/api/nope"), ("DELETE", "/api/nope"),
                 ("GET", "/api/logout"), ("POST", "/api/me"), ("GET", "/api/status"),
                 ("HEAD", "/api/me")):
        r = s.http(m, p)
        assert r.status_code == 401, (m, p, r.status_code)
        if m != "HEAD":
            assert error(r) == (401, "unauthorized", "missing credentials"), (m, p)
    # With them: 405 naming the method, 404 for what does not exist, and
    # everything else under /api/ is read-only.
    tok = token_for("routes_405", "u1")
    for m, p, want in (("GET", "/api/logout", (405, "method_not_allowed", "use POST")),
                       ("POST", "/api/status", (405, "method_not_allowed", "use PUT")),
                       ("POST", "/api/me", (405, "method_not_allowed", "use GET")),
                       ("DELETE", "/api/nope", (405, "method_not_allowed", "use GET")),
                       ("PUT", "/api/channels/a/b", (405, "method_not_allowed", "use GET")),
                       ("GET", "/api/", (404, "not_found", "no such endpoint")),
                       ("GET", "/api/me/", (404, "not_found", "no such endpoint")),
                       ("GET", "/api/channels/a/b", (404, "not_found", "no such endpoint"))):
        assert error(s.http(m, p, token=tok)) == want, (m, p)
    r = s.http("HEAD", "/api/me", token=tok)
    assert r.status_code == 200 and r.content == b"", r.status_code


def test_open_routes_check_the_method_first(shared_server):
    s = shared_server
    assert error(s.http("GET", "/api/login")) == (405, "method_not_allowed", "use POST")
    assert error(s.http("GET", "/api/admin/cleanup-stale")) == \
        (405, "method_not_allowed", "use POST")
    assert error(s.http("POST", "/api/admin/cleanup-stale")) == \
        (401, "unauthorized", "admin key required")
    assert error(s.http("POST", "/api/admin/cleanup-stale",
                        headers={"Authorization": "Admin " + "0" * 64})) == \
        (401, "unauthorized", "admin key required")
    # Health answers any method.
    for m in ("GET", "POST", "DELETE"):
        assert s.http(m, "/healthz").status_code == 200, m


def test_credentials_per_route(ann):
    s, cookie, _ = ann
    tok = token_for("o1", "u1")
    # ?token= is for WebSocket upgrades only: the API ignores it.
    assert error(s.http("GET", "/api/me?token=" + tok)) == \
        (401, "unauthorized", "missing credentials")
    # A bearer header is the credential even when it is bad: the cookie is
    # not tried behind it.
    r = s.http("GET", "/api/me", cookie=cookie, headers={"Authorization": "Bearer x.y.z"})
    assert error(r)[:2] == (401, "unauthorized")
    r = s.http("GET", "/api/me", cookie=cookie, headers={"Authorization": "Basic eA=="})
    assert r.status_code == 200 and r.json()["user"] == "u1", r.text
    # Pages read the session cookie only: a bearer token is no session.
    r = s.http("GET", "/channels", token=tok)
    assert (r.status_code, r.headers["Location"]) == (302, "/login?next=/channels")
    assert s.http("GET", "/channels", cookie=cookie).status_code == 200
    # An unknown session cookie on the API.
    assert error(s.http("GET", "/api/me", cookie="x" * 43)) == \
        (401, "unauthorized", "session expired or logged out")


def test_csrf_only_for_cookie_changes(ann):
    s, cookie, _ = ann
    evil = {"Origin": "http://evil.example"}
    # Reads by cookie need no Origin; changes do (or X-Requested-With).
    assert s.http("GET", "/api/me", cookie=cookie, headers=evil).status_code == 200
    r = s.http("PUT", "/api/status", cookie=cookie, headers=evil, json={"status": "BUSY"})
    assert error(r)[:2] == (403, "csrf")
    r = s.http("PUT", "/api/status", cookie=cookie, json={"status": "BUSY"})
    assert error(r)[:2] == (403, "csrf")
    r = s.http("PUT", "/api/status", cookie=cookie, headers={"X-Requested-With": "x"},
               json={"status": "BUSY"})
    assert r.status_code == 200 and r.json()["status"] == "BUSY", r.text
    # CSRF is checked before the body is read.
    r = s.http("PUT", "/api/status", cookie=cookie, headers=evil, data="nope")
    assert error(r)[:2] == (403, "csrf")
    # A token is never ambient: no check.
    r = s.http("PUT", "/api/status", token=token_for("o1", "u1"), headers=evil,
               json={"status": "AWAY"})
    assert r.status_code == 200, r.text


def test_named_segments(ann):
    s, _, ch = ann
    tok = token_for("o1", "u1")
    # /api/users/ takes the rest of the path: user ids may hold a '/'.
    s.http("GET", "/api/me", token=token_for("o1", "a/b"))   # provisions a/b
    for p in ("/api/users/a/b", "/api/users/a%2Fb"):
        r = s.http("GET", p, token=tok)
        assert r.status_code == 200 and r.json()["user"] == "a/b", (p, r.text)
    assert s.http("GET", "/api/users/u%32", token=tok).json()["user"] == "u2"
    for p in ("/api/users/%00", "/api/users/" + "x" * 129):
        assert error(s.http("GET", p, token=tok)) == (404, "not_found", "no such user"), p
    r = s.http("GET", "/api/channels/" + ch, token=tok)
    assert r.status_code == 200, r.text
    assert [m["user"] for m in r.json()["members"]] == ["u1", "u2"], r.text
    assert error(s.http("GET", "/api/channels/%00", token=tok)) == \
        (404, "not_found", "no such channel or project")
    assert error(s.http("GET", "/api/channels/nope", token=tok)) == \
        (404, "not_found", "no such channel")
    assert error(s.http("GET", "/api/projects/" + ch, token=tok)) == \
        (404, "not_found", "no such project")


def test_pages(ann):
    s, cookie, ch = ann
    for p in ("/", "/channels", "/members", "/channels/" + ch, "/users/u2",
              "/projects/p1"):
        r = s.http("GET", p, cookie=cookie)
        assert r.status_code == 200, (p, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html"), p
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        r2 = s.http("GET", p, cookie=cookie, headers={"If-None-Match": r.headers["ETag"]})
        assert r2.status_code == 304, p
        # Without a session: to the login page, and back after.
        r = s.http("GET", p)
        want = "/login" if p == "/" else "/login?next=" + p
        assert (r.status_code, r.headers["Location"]) == (302, want), p
        # The method is checked before the session.
        assert error(s.http("POST", p)) == (405, "method_not_allowed", "use GET"), p
    # next= keeps the query, percent-encoded (a '%' too).
    r = s.http("GET", "/channels?a=b~&x=%2F")
    assert r.headers["Location"] == "/login?next=/channels%3Fa%3Db~%26x%3D%252F"
    r = s.http("GET", "/login")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert s.http("HEAD", "/login").content == b""
    # Assets: any method, no session needed.
    r = s.http("GET", "/static/presence.js")
    assert r.status_code == 200, r.status_code
    assert s.http("POST", "/static/presence.js").status_code == 200
