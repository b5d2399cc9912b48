#!/usr/bin/env python3
"""gen_corpus.py - writes the seed corpora of tests/fuzz/corpus/<target>/.

Seeds are small real inputs: the protocol messages of docs/protocol.md,
tokens signed with the harness secret (fuzz.h FUZZ_JWT_SECRET), HTTP API and
upgrade requests, masked client WebSocket frames, configuration files. Each
target's input layout (the leading flag and seed bytes) is described at the
top of its fuzz_<target>.c. Run from anywhere: `make -C tests/fuzz corpus`.
The output is deterministic, so re-running it changes nothing."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

SECRET = b"fuzz-secret-0123456789abcdef0123456789abcdef"  # fuzz.h
NOW = 1764355200  # FUZZ_NOW_MS / 1000
SESSION = "fuzzsessiontoken0123456789abcdefghijklmnopq"
ADMIN = "00112233445566778899aabbccddeeff" * 2
FUTURE = NOW + 3600


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, header=None, secret=SECRET):
    h = header or {"alg": "HS256", "typ": "JWT"}
    head = b64url(json.dumps(h, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":"),
                             ensure_ascii=False).encode())
    signing = (head + "." + body).encode()
    sig = b64url(hmac.new(secret, signing, hashlib.sha256).digest())
    return head + "." + body + "." + sig


U1 = jwt({"sub": "u1", "org": "o1", "name": "Ann", "exp": FUTURE})
U2 = jwt({"sub": "u2", "org": "o1", "exp": FUTURE})
U3 = jwt({"sub": "u3", "org": "o2", "exp": FUTURE})
NEW = jwt({"sub": "newbie", "org": "o3", "name": "N\u00e9w \U0001F600",
           "exp": FUTURE})
SID = jwt({"sub": "u1", "org": "o1", "exp": FUTURE, "sid": 1})


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_msg: client messages (and server ones, as hostile text) --------

def corpus_msg():
    msgs = {
        "ping": '{"type":"ping"}',
        "status-away-auto": '{"type":"status","status":"AWAY","auto":true}',
        "status-busy": '{"type":"status","status":"BUSY"}',
        "status-online": '{"type":"status","status":"ONLINE","auto":false}',
        "status-offline": '{"type":"status","status":"OFFLINE"}',
        "busy-auto": '{"type":"status","status":"BUSY","auto":true}',
        "status-lower": '{"type":"status","status":"away"}',
        "auto-string": '{"type":"status","status":"AWAY","auto":"yes"}',
        "no-status": '{"type":"status"}',
        "subscribe": '{"type":"subscribe","users":["u1","u2"]}',
        "unsubscribe": '{"type":"unsubscribe","users":["u2"]}',
        "subscribe-empty": '{"type":"subscribe","users":[]}',
        "subscribe-bad": '{"type":"subscribe","users":["",1,null]}',
        "subscribe-escape":
        '{"type":"subscribe","users":["a\\u0000b","\\ud83d\\ude00"]}',
        "unknown-type": '{"type":"hello"}',
        "type-number": '{"type":1}',
        "array-root": '[{"type":"ping"}]',
        "string-root": '"ping"',
        "number-root": "1e999999",
        "duplicate": '{"type":"status","status":"AWAY","status":"BUSY"}',
        "nested": '{"type":"ping","x":' + "[" * 3000 + "]" * 3000 + "}",
        "huge-number": '{"type":"ping","n":123456789012345678901234567890}',
        "nul": '{"type":"ping","s":"a\\u0000b"}',
        "bad-utf8": b'{"type":"ping","s":"\xc3\x28\xed\xa0\x80\xf4\x90"}',
        "truncated": '{"type":"status","status":"AW',
        "empty": "",
        "hello": '{"type":"hello","user":"u1","org":"o1","name":"Ann",'
        '"heartbeat":30,"away_after":300,"offline_after":1800,'
        '"status":"ONLINE","manual":null,"max_message":65536}',
        "presence": '{"type":"presence","user":"u1","name":"Ann",'
        '"status":"AWAY","last_seen":1764355200999,"seq":42,"reason":"idle"}',
        "names": "Ann \"Q\" \\ \x01\x1f\x7f \u00e9 \U0001F680 \xff",
    }
    for name, m in msgs.items():
        write("msg", name, m)


# ---- fuzz_jwt: tokens, and NUL-separated claims to sign ------------------

def corpus_jwt():
    toks = {
        "valid": U1,
        "valid-noname": U2,
        "valid-sid": SID,
        "valid-unicode": NEW,
        "valid-nbf": jwt({"sub": "u1", "org": "o1", "exp": FUTURE,
                          "nbf": NOW - 10, "iat": NOW - 10}),
        "expired": jwt({"sub": "u1", "org": "o1", "exp": NOW}),
        "not-yet": jwt({"sub": "u1", "org": "o1", "exp": FUTURE,
                        "nbf": NOW + 60}),
        "no-sub": jwt({"org": "o1", "exp": FUTURE}),
        "sub-number": jwt({"sub": 1, "org": "o1", "exp": FUTURE}),
        "exp-string": jwt({"sub": "u1", "org": "o1", "exp": str(FUTURE)}),
        "exp-float": jwt({"sub": "u1", "org": "o1", "exp": 1.5e10}),
        "sid-negative": jwt({"sub": "u1", "org": "o1", "exp": FUTURE,
                             "sid": -1}),
        "long-sub": jwt({"sub": "u" * 129, "org": "o1", "exp": FUTURE}),
        "alg-none": jwt({"sub": "u1", "org": "o1", "exp": FUTURE},
                        {"alg": "none"}).rsplit(".", 1)[0] + ".",
        "alg-hs512": jwt({"sub": "u1", "org": "o1", "exp": FUTURE},
                         {"alg": "HS512"}),
        "alg-lower": jwt({"sub": "u1", "org": "o1", "exp": FUTURE},
                         {"alg": "hs256"}),
        "crit": jwt({"sub": "u1", "org": "o1", "exp": FUTURE},
                    {"alg": "HS256", "crit": ["exp"]}),
        "dup-alg": b64url(b'{"alg":"HS256","alg":"none"}') + "." +
        U1.split(".")[1] + "." + U1.split(".")[2],
        "wrong-secret": jwt({"sub": "u1", "org": "o1", "exp": FUTURE},
                            secret=b"another secret"),
        "padded": U1 + "=",
        "two-parts": ".".join(U1.split(".")[:2]),
        "four-parts": U1 + ".x",
        "header-array": b64url(b"[1]") + ".e30.AAAA",
    }
    for name, t in toks.items():
        write("jwt", name, t)
    # sub NUL org NUL name NUL exp nbf sid (little-endian int64)
    claims = {
        "sign-valid": (b"u1", b"o1", b"Ann", FUTURE, 0, 0),
        "sign-sid": (b"u1", b"o1", b"", FUTURE, NOW - 5, 7),
        "sign-expired": (b"u1", b"o1", b"", NOW, 0, 0),
        "sign-nbf": (b"u1", b"o1", b"", FUTURE, NOW + 5, 0),
        "sign-empty-sub": (b"", b"o1", b"x", FUTURE, 0, 0),
        "sign-neg-sid": (b"u1", b"o1", b"", FUTURE, 0, -3),
        "sign-escapes": (b"\"\\\x01\t", "é🚀".encode(), b"\x7f",
                         FUTURE, 0, 0),
        "sign-bad-utf8": (b"\xff", b"o1", b"", FUTURE, 0, 0),
        "sign-long": (b"s" * 128, b"o" * 128, b"n" * 200, 2**62, -2**62, 1),
    }
    for name, (sub, org, nm, exp, nbf, sid) in claims.items():
        write("jwt", name, sub + b"\0" + org + b"\0" + nm + b"\0" +
              struct.pack("<qqq", exp, nbf, sid))


# ---- fuzz_cookie: size byte, then NUL-separated fields -------------------

def corpus_cookie():
    # cookie header, name, Origin, allowed_origins, Host, query, query name,
    # path id
    cases = {
        "browser": (64, "presenced_session=" + SESSION + "; theme=dark",
                    "presenced_session", "http://localhost:8080", "",
                    "localhost:8080", "token=" + U1 + "&subscribe=1",
                    "token", "u1"),
        "quoted": (100, 'a=1;presenced_session="abc def" ; b', "",
                   "https://app.example.com",
                   "https://app.example.com, http://other.example",
                   "localhost", "older_than_ms=60000", "older_than_ms",
                   "c_general"),
        "star": (10, "x=1;;=;presenced_session=", "x", "null", "*",
                 "localhost", "token=a%2Bb+c%zz", "token", "u%20one"),
        "null-listed": (3, " presenced_session = v ", "presenced_session",
                        "null", "null", "", "t=1&token=&token=x", "token",
                        "%E2%82%AC"),
        "host-mismatch": (128, "xpresenced_session=1; presenced_sessionx=2",
                          "presenced_session", "http://evil.example",
                          "", "localhost:8080", "&&=&token", "", "%00"),
        "tabs": (40, "\tpresenced_session\t=\t\"\"\t", "presenced_session",
                 "http://localhost", " , ,", "localhost",
                 "token=%41%42%43", "token", "a+b/c"),
        "many-pairs": (50, "; ".join("c%d=%d" % (i, i) for i in range(30)) +
                       "; presenced_session=last", "presenced_session",
                       "http://127.0.0.1:8080", "http://127.0.0.1:8080",
                       "127.0.0.1:8080", "a=1&b=2&token=" + U2, "token",
                       "p_launch"),
        "long-value": (20, "presenced_session=" + "v" * 300, "",
                       "https://localhost:8080", "", "localhost:8080",
                       "token=" + "%41" * 200, "token", "u" * 130),
        "ipv6-host": (128, "presenced_session=%20", "presenced_session",
                      "http://[::1]:8080", "", "[::1]:8080",
                      "older_than_ms=-1", "older_than_ms", "%2e%2e%2f"),
        "origin-prefix": (128, "presenced_session", "presenced_session",
                          "http://localhost:8080.evil.example", "",
                          "localhost:8080", "token", "token", "+"),
        "list-spaces": (128, "=x; presenced_session=y", "presenced_session",
                        "http://b.example",
                        " http://a.example ,\thttp://b.example ",
                        "", "x=%F0%9F%9A%80", "x", "%f0%9f%9a%80"),
        "empty": (0, "", "", "", "", "", "", "", ""),
    }
    for name, (n, *fields) in cases.items():
        write("cookie", name, bytes([n]) + "\0".join(fields).encode())


# ---- fuzz_config: configuration files ------------------------------------

def corpus_config():
    files = {
        "full": """# presenced configuration
listen = 127.0.0.1:8080
db = /var/lib/presenced/presenced.db
jwt_secret = "  a secret with # and spaces kept  "
allowed_origins = https://app.example.com, http://localhost:8080
log_level = warn
grace = 250ms
heartbeat = 30s
away_after = 5m
offline_after = 1h
stale_after = 2d
session_ttl = 30d
max_msg = 64k
max_body = 1m
max_out = 1m
login_limit = 10
login_window = 5m
header_timeout = 10s
max_conns_per_user = 32
conn_rate = 50
msg_rate = 20
demo = off
""",
        "crlf-bom": "\ufeffgrace = 5s\r\nheartbeat=1m\r\n\r\n# done\r\n",
        "ipv6": "listen = [::1]:0\nmax-msg = 1k\n",
        "bad-line": "grace = 5s\nthis line has no equals\n",
        "unknown-key": "graec = 5s\n",
        "bad-duration": "grace = -5s\n",
        "overflow": "grace = 99999999999999999999d\n",
        "too-small": "max_msg = 1\n",
        "unclosed-quote": 'db = "x\n',
        "empty-key": " = 1\n",
        "nul": b"grace = 5s\0\nheartbeat = 1s\n",
        "long-value": "allowed_origins = " + "x" * 2000 + "\n",
        "bool": "demo = YES\n",
        "env-style":
        "PRESENCED_GRACE=5s\nPRESENCED_CONFIG=/x\nPRESENCED_NOPE=1\n",
        "numbers": "250ms\nx\n",
    }
    for name, text in files.items():
        write("config", name, text)


# ---- fuzz_http: flags byte, chunker seed byte, then the client's bytes ----

def req(method, path, headers=(), body=None, version="1.1"):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: localhost:8080"]
    lines += list(headers)
    if body is not None:
        lines.append("Content-Length: %d" % len(body.encode()))
    return "\r\n".join(lines) + "\r\n\r\n" + (body or "")


def upgrade(path="/ws/presence/", extra=()):
    return req("GET", path, ("Upgrade: websocket",
                             "Connection: keep-alive, Upgrade",
                             "Sec-WebSocket-Version: 13",
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
               + tuple(extra))


BEARER = "Authorization: Bearer " + U1
COOKIE = "Cookie: presenced_session=" + SESSION
ORIGIN = "Origin: http://localhost:8080"


def frame(op, payload, fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0):
    """A client frame (masked unless mask is None)."""
    if isinstance(payload, str):
        payload = payload.encode()
    b = bytes([(0x80 if fin else 0) | rsv << 4 | op])
    m = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        b += bytes([m | n])
    elif n < 65536:
        b += bytes([m | 126]) + struct.pack(">H", n)
    else:
        b += bytes([m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return b + payload
    return b + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def corpus_http():
    reqs = {
        "healthz": req("GET", "/healthz"),
        "healthz-head": req("HEAD", "/healthz"),
        "index": req("GET", "/"),
        "index-cookie": req("GET", "/channels/c_general", (COOKIE,)),
        "login-page": req("GET", "/login"),
        "static": req("GET", "/static/app.js"),
        "static-missing": req("GET", "/static/nope.css"),
        "login": req("POST", "/api/login",
                     ("Content-Type: application/json",),
                     '{"email":"ann@example.com","password":"hunter2"}'),
        "login-bad": req("POST", "/api/login", (), '{"email":1}'),
        "login-get": req("GET", "/api/login"),
        "me-bearer": req("GET", "/api/me", (BEARER,)),
        "me-cookie": req("GET", "/api/me", (COOKIE,)),
        "me-sid": req("GET", "/api/me", ("Authorization: Bearer " + SID,)),
        "me-none": req("GET", "/api/me"),
        "me-new-user": req("GET", "/api/me",
                           ("Authorization: bearer  " + NEW,)),
        "presence": req("GET", "/api/presence", (BEARER,)),
        "channels": req("GET", "/api/channels", (BEARER,)),
        "channel": req("GET", "/api/channels/c_general", (BEARER,)),
        "project": req("GET", "/api/projects/p_launch", (COOKIE,)),
        "projects-other-org": req("GET", "/api/projects",
                                  ("Authorization: Bearer " + U3,)),
        "user": req("GET", "/api/users/u2", (BEARER,)),
        "user-encoded": req("GET", "/api/users/u%32?x=1", (BEARER,)),
        "user-bad-escape": req("GET", "/api/users/%zz", (BEARER,)),
        "status-bearer": req("PUT", "/api/status", (BEARER,),
                             '{"status":"BUSY"}'),
        "status-cookie": req("PUT", "/api/status", (COOKIE, ORIGIN),
                             '{"status":"AWAY"}'),
        "status-csrf": req("PUT", "/api/status",
                           (COOKIE, "Origin: http://evil.example"),
                           '{"status":"OFFLINE"}'),
        "status-xrw": req("PUT", "/api/status",
                          (COOKIE, "X-Requested-With: fetch"),
                          '{"status":"ONLINE"}'),
        "logout": req("POST", "/api/logout", (COOKIE, ORIGIN)),
        "logout-sid": req("POST", "/api/logout",
                          ("Authorization: Bearer " + SID,)),
        "cleanup": req("POST", "/api/admin/cleanup-stale?older_than_ms=0",
                       ("Authorization: Admin " + ADMIN,)),
        "cleanup-bad": req("POST", "/api/admin/cleanup-stale",
                           ("Authorization: Admin nope",)),
        "ws-token": upgrade("/ws/presence/?token=" + U1),
        "ws-subscribe": upgrade("/ws/presence?subscribe=1&token=" + U2),
        "ws-bearer": upgrade(extra=(BEARER,)),
        "ws-cookie": upgrade(extra=(COOKIE, ORIGIN)),
        "ws-cookie-foreign": upgrade(extra=(COOKIE,
                                            "Origin: http://evil.example")),
        "ws-no-auth": upgrade(),
        "ws-other-path": upgrade("/ws/echo", (BEARER,)),
        "ws-version": req("GET", "/ws/presence/",
                          ("Upgrade: websocket", "Connection: Upgrade",
                           "Sec-WebSocket-Version: 8",
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")),
        "ws-bad-key": req("GET", "/ws/presence/?token=" + U1,
                          ("Upgrade: websocket", "Connection: Upgrade",
                           "Sec-WebSocket-Version: 13",
                           "Sec-WebSocket-Key: short")),
        "ws-post": req("POST", "/ws/presence/?token=" + U1,
                       ("Upgrade: websocket", "Connection: Upgrade"), ""),
        "chunked": "PUT /api/status HTTP/1.1\r\nHost: x\r\n" + BEARER +
        "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sta\r\n"
        "c\r\ntus\":\"AWAY\"}\r\n0\r\n\r\n",
        "http10": req("GET", "/healthz", version="1.0"),
        "keepalive-10": req("GET", "/healthz", ("Connection: keep-alive",),
                            version="1.0"),
        "pipelined": req("GET", "/healthz") + req("GET", "/api/me", (BEARER,))
        + req("GET", "/nope") + req("DELETE", "/api/me", (BEARER,)),
        "duplicate-headers": req("GET", "/api/me",
                                 (BEARER, "Authorization: Bearer x",
                                  COOKIE, COOKIE)),
        "body-too-big": "POST /api/login HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 99999999\r\n\r\n{",
        "bad-method": "BREW / HTTP/1.1\r\n\r\n",
        "bad-version": "GET / HTTP/9.9\r\n\r\n",
        "absolute-url": req("GET", "http://localhost:8080/api/me?x#y",
                            (BEARER,)),
        "connect": "CONNECT localhost:8080 HTTP/1.1\r\n\r\n",
        "big-header": req("GET", "/healthz", ("X-Big: " + "a" * 17000,)),
        "many-headers": req("GET", "/healthz",
                            tuple("X-H%d: v" % i for i in range(300))),
    }
    for name, r in reqs.items():
        # Whole at once, and split byte by byte (seed 0x10: max read 1).
        write("http", name, b"\x00\x00" + r.encode())
    write("http", "healthz-bytewise", b"\x00\x10" + reqs["healthz"].encode())
    write("http", "login-split", b"\x00\x13" + reqs["login"].encode())
    write("http", "pipelined-split", b"\x00\x25" + reqs["pipelined"].encode())
    write("http", "ws-token-split", b"\x00\x1b" + reqs["ws-token"].encode())
    write("http", "status-cookie-origins", b"\x02\x00" +
          reqs["status-cookie"].encode())
    write("http", "ws-cookie-star", b"\x01\x00" + reqs["ws-cookie"].encode())
    write("http", "slowloris", b"\x0c\x11" + b"GET /healthz HTTP/1.1\r\nX: ")
    write("http", "shutdown-hangup", b"\x30\x00" + reqs["ws-bearer"].encode())
    frames = (frame(1, '{"type":"ping"}') +
              frame(1, '{"type":"status","status":"AWAY","auto":true}') +
              frame(8, struct.pack(">H", 1000)))
    write("http", "ws-frames-behind", b"\x00\x00" +
          reqs["ws-token"].encode() + frames)
    write("http", "ws-frames-behind-split", b"\x00\x14" +
          reqs["ws-bearer"].encode() + frames)
    # Flag 0x40: /ws/echo is mounted.
    write("http", "ws-echo", b"\x40\x00" + upgrade("/ws/echo").encode() +
          frame(1, "echo me") + frame(9, "p") + frame(8, b"\x03\xe8"))
    write("http", "ws-echo-off", b"\x00\x00" + upgrade("/ws/echo").encode())


# ---- fuzz_ws: flags, chunker seed, event index, then client frames -------

def corpus_ws():
    f = frame
    long_text = '{"type":"ping","pad":"' + "x" * 2000 + '"}'
    cases = {
        "ping-msg": f(1, '{"type":"ping"}'),
        "statuses": f(1, '{"type":"status","status":"AWAY","auto":true}') +
        f(1, '{"type":"status","status":"BUSY"}') +
        f(1, '{"type":"status","status":"ONLINE"}'),
        "subscribe": f(1, '{"type":"subscribe","users":["u2","u3","zz"]}') +
        f(1, '{"type":"unsubscribe","users":["u2"]}'),
        "bad-messages": f(1, "not json") + f(1, "[]") +
        f(1, '{"type":"nope"}') + f(2, b"\x00\x01") +
        f(1, '{"type":"status","status":"BUSY","auto":true}'),
        "fragmented": f(1, '{"type":', fin=False) + f(9, "mid") +
        f(0, '"ping"}', fin=True),
        "fragments-many": f(1, "{", fin=False) +
        b"".join(f(0, " ", fin=False) for _ in range(20)) + f(0, "}"),
        "control": f(9, "hello") + f(10, "unsolicited pong") +
        f(8, struct.pack(">H", 1000) + b"bye"),
        "close-bad-code": f(8, struct.pack(">H", 999)),
        "close-1byte": f(8, b"\x03"),
        "close-bad-utf8": f(8, struct.pack(">H", 1000) + b"\xff"),
        "unmasked": f(1, '{"type":"ping"}', mask=None),
        "rsv": f(1, '{"type":"ping"}', rsv=4),
        "opcode-3": f(3, "x"),
        "opcode-11": f(11, "x"),
        "ping-fragmented": f(9, "a", fin=False) + f(0, "b"),
        "ping-126": f(9, "p" * 126),
        "continuation-first": f(0, "x"),
        "text-in-text": f(1, "{", fin=False) + f(1, "}"),
        "bad-utf8": f(1, b'{"type":"ping","s":"\xc3"}'),
        "utf8-split": f(1, b'{"type":"ping","s":"\xc3', fin=False) +
        f(0, b'\xa9"}'),
        "emoji-split": f(1, b'{"s":"\xf0\x9f', fin=False) +
        f(0, b'\x9a\x80","type":"ping"}'),
        "long": f(1, long_text),
        "len16": f(1, '{"type":"ping","p":"' + "y" * 300 + '"}'),
        "len64-huge": bytes([0x81, 0xff]) + struct.pack(">Q", 2**63 - 1) +
        b"\x00" * 8,
        "len64-small": bytes([0x81, 0xff]) + struct.pack(">Q", 5) +
        b"\x01\x02\x03\x04" + b"hello",
        "zero-text": f(1, ""),
        "binary": f(2, b"\x00" * 10),
        "many-pings": b"".join(f(1, '{"type":"ping"}') for _ in range(40)),
    }
    # flags: see fuzz_ws.c. 0x80: frames ride behind the upgrade request;
    # 0x04: u2 listens; 0x08|0x10: cookie session logs out; 0x20: 1 s
    # between reads; 0x40: shutdown; low bits: max_msg.
    prefixes = {
        "": b"\x00\x00\x00",
        "-bytewise": b"\x80\x10\x00",
        "-peer": b"\x04\x00\x00",
        "-logout": b"\x18\x13\x01",
        "-slow": b"\x20\x14\x00",
        "-shutdown": b"\xc4\x00\x00",
        "-small": b"\x01\x00\x00",
    }
    for name, data in cases.items():
        write("ws", name, prefixes[""] + data)
    for suffix, pre in prefixes.items():
        if suffix:
            write("ws", "statuses" + suffix, pre + cases["statuses"])
    # Third byte 0x80: the client is on /ws/echo.
    for name in ("control", "fragmented", "utf8-split", "bad-utf8", "long",
                 "binary", "rsv", "close-bad-code"):
        write("ws", "echo-" + name, b"\x00\x00\x80" + cases[name])
    write("ws", "echo-nonjson", b"\x00\x00\x80" + f(1, "plain text \u00e9") +
          f(2, b"\xff\x00") + f(1, ""))
    write("ws", "long-small", b"\x01\x00\x00" + cases["long"])
    write("ws", "fragmented-bytewise", b"\x00\x10\x00" + cases["fragmented"])
    write("ws", "many-pings-slow", b"\x24\x00\x00" + cases["many-pings"])


# ---- fuzz_extra: status messages, DND, profile patches, schedules -------

def corpus_extra():
    cases = {
        'bad': b'{"message":{"text":"a\\u2028b","expires":"1970-01-01T00:00Z"}}',
        'clear': b'{"hide_last_seen":true,"tz":null,"message":null,"dnd":null}',
        'dnd': b'{"dnd":{"until":"2026-03-24T09:00+01:00","while_busy":true,"schedule":[{"days":["mon","tue","wed","thu","fri"],"start":"18:00","end":"09:00"},{"days":["sat","sun"],"start":"00:00","end":"24:00"}]}}',
        'message': b'{"message":{"text":"In a meeting","emoji":"\xf0\x9f\x93\x85","expires":"30m","clear_status":true}}',
        'sched': b'[{"days":["sun"],"start":"23:00","end":"01:00"}]',
        'sched-overlap': b'[{"days":["mon"],"start":"09:00","end":"12:00"},{"days":["mon"],"start":"11:00","end":"13:00"}]',
        'today': b'{"tz":"America/New_York","message":{"text":"x","expires":"today"}}',
    }
    for name, data in cases.items():
        write("extra", name, data)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    corpus_msg()
    corpus_jwt()
    corpus_cookie()
    corpus_config()
    corpus_http()
    corpus_ws()
    corpus_extra()
    for t in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, t))
        size = sum(os.path.getsize(os.path.join(OUT, t, f)) for f in files)
        print("corpus/%s: %d files, %d bytes" % (t, len(files), size))


if __name__ == "__main__":
    main()
