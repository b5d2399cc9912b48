"""WebSocket authentication (docs/protocol.md "Authentication"): token in
the query, bearer header or session cookie; every bad token is 401 before
the upgrade."""

import time

import pytest
import requests
import base64
import os

from conftest import WSClient, connect_status, make_jwt, token_for


def claims(**kw):
    c = {"sub": "u1", "org": "o1", "exp": int(time.time()) + 3600}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


BAD_TOKENS = {
    "wrong_secret": lambda: make_jwt(claims(), secret="another-secret-of-forty-bytes-0123456789"),
    "alg_none": lambda: make_jwt(claims(), alg="none"),
    "alg_none_with_sig": lambda: make_jwt(claims(), header={"alg": "none", "typ": "JWT"},
                                          signature=make_jwt(claims()).split(".")[2]),
    "alg_hs512": lambda: make_jwt(claims(), header={"alg": "HS512", "typ": "JWT"},
                                  signature=make_jwt(claims()).split(".")[2]),
    "alg_missing": lambda: make_jwt(claims(), header={"typ": "JWT"},
                                    signature=make_jwt(claims()).split(".")[2]),
    "expired": lambda: make_jwt(claims(exp=int(time.time()) - 10)),
    "not_yet_valid": lambda: make_jwt(claims(nbf=int(time.time()) + 600)),
    "missing_sub": lambda: make_jwt(claims(sub=None)),
    "missing_org": lambda: make_jwt(claims(org=None)),
    "missing_exp": lambda: make_jwt(claims(exp=None)),
    "sub_not_string": lambda: make_jwt(claims(sub=42)),
    "exp_not_number": lambda: make_jwt(claims(exp="tomorrow")),
    "tampered_payload": lambda: (lambda t: t.split(".")[0] + "." +
                                 make_jwt(claims(sub="admin")).split(".")[1] + "." +
                                 t.split(".")[2])(make_jwt(claims())),
    "garbage": lambda: "not-a-jwt",
    "two_parts": lambda: ".".join(make_jwt(claims()).split(".")[:2]),
    "empty": lambda: "",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_token_is_401_before_upgrade(shared_server, kind):
    server = shared_server
    tok = BAD_TOKENS[kind]()
    url = "ws://127.0.0.1:%d/ws/presence/?token=%s" % (server.port, tok)
    assert connect_status(url) == 401
    # The same token as a bearer header.
    assert connect_status(server.ws_url(), headers={"Authorization": "Bearer " + tok}) == 401


def test_no_credentials_is_401(shared_server):
    server = shared_server
    assert connect_status(server.ws_url()) == 401


def test_401_has_json_error_body(shared_server):
    server = shared_server
    tok = make_jwt(claims(), alg="none")
    r = requests.get(server.url("/ws/presence/?token=" + tok), timeout=5, headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    assert r.status_code == 401, r.status_code
    assert r.json()["error"]["code"] == "unauthorized", r.text
    # No user was created from the forged token.
    body = server.presence(token_for("401_has_json_error_body", "viewer"))
    assert "u1" not in {m["user"] for m in body["members"]}, body


def test_bearer_header_authenticates(shared_server):
    server = shared_server
    tok = token_for("bearer_header_authenticates", "u1", name="Ann")
    c = WSClient.connect(server.ws_url(), headers={"Authorization": "Bearer " + tok})
    assert c.hello["user"] == "u1" and c.hello["name"] == "Ann"


def test_query_token_wins_over_header(shared_server):
    server = shared_server
    good = token_for("query_token_wins_over_header", "u1")
    bad = make_jwt(claims(), alg="none")
    assert connect_status(server.ws_url(token=bad),
                          headers={"Authorization": "Bearer " + good}) == 401
    c = WSClient.connect(server.ws_url(token=good),
                         headers={"Authorization": "Bearer " + bad})
    assert c.hello["user"] == "u1"


def test_query_token_wins_over_cookie(srv):
    srv.seed_users(("o1", "u1"))
    srv.start()
    _, cookie = srv.login_ok("u1@o1.example")
    c = WSClient.connect(srv.ws_url(token=token_for("o1", "u2")),
                         headers={"Cookie": "presenced_session=" + cookie},
                         origin="http://evil.example")
    # The query token decided: user u2, and no origin check (not a cookie).
    assert c.hello["user"] == "u2"


def test_token_signed_by_cli_works(shared_server):
    server = shared_server
    p = server.cli_ok("token", "--org", "token_signed_by_cli_works", "--user", "u1", "--name", "Ann")
    tok = p.stdout.strip()
    c = server.ws_token(tok)
    assert (c.hello["user"], c.hello["org"], c.hello["name"]) == ("u1", "token_signed_by_cli_works", "Ann")


def test_nbf_in_the_past_is_accepted(shared_server):
    server = shared_server
    tok = make_jwt(claims(nbf=int(time.time()) - 60, name="Ann"))
    c = server.ws_token(tok)
    assert c.hello["user"] == "u1"


def test_cookie_websocket_with_foreign_origin_is_403(srv):
    srv.seed_users(("o1", "u1"))
    srv.start()
    _, cookie = srv.login_ok("u1@o1.example")
    hdr = {"Cookie": "presenced_session=" + cookie}
    assert connect_status(srv.ws_url(), headers=hdr, origin="http://evil.example") == 403
    assert connect_status(srv.ws_url(), headers=hdr,
                          origin="http://127.0.0.1:%d.evil.example" % srv.port) == 403
    assert connect_status(srv.ws_url(), headers=hdr, origin="null") == 403
    assert connect_status(srv.ws_url(), headers=hdr) == 403      # no Origin
    c = WSClient.connect(srv.ws_url(), headers=hdr, origin=srv.origin)
    assert c.hello["user"] == "u1" and c.hello["org"] == "o1"


def test_cookie_websocket_403_body(srv):
    srv.seed_users(("o1", "u1"))
    srv.start()
    _, cookie = srv.login_ok("u1@o1.example")
    r = requests.get(srv.url("/ws/presence/"), timeout=5, headers={
        "Cookie": "presenced_session=" + cookie, "Origin": "http://evil.example",
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden_origin"


@pytest.mark.settings(allowed_origins="https://app.example.com,https://other.example.com")
def test_allowed_origins_setting(srv):
    srv.seed_users(("o1", "u1"))
    srv.start()
    _, cookie = srv.login_ok("u1@o1.example")
    hdr = {"Cookie": "presenced_session=" + cookie}
    assert connect_status(srv.ws_url(), headers=hdr, origin="https://app.example.com") == 101
    assert connect_status(srv.ws_url(), headers=hdr, origin="https://other.example.com") == 101
    assert connect_status(srv.ws_url(), headers=hdr, origin="https://evil.example.com") == 403


def test_unknown_session_cookie_is_401(shared_server):
    server = shared_server
    assert connect_status(server.ws_url(), headers={
        "Cookie": "presenced_session=" + "A" * 43}, origin=server.origin) == 401
