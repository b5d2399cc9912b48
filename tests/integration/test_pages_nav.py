"""Pages a new user stumbles on (issue 13, part 4): the HTML 404 page for
unknown pages (JSON 404 kept for /api, /ws, /static and for other methods),
the /projects page, and the members directory GET /api/members (paging,
search with the browser's folding, bad input, organization scoping, an
organization of 10,000).  docs/protocol.md "Unknown pages", "The members
directory"."""
import http.client
import json
import time
import uuid
from urllib.parse import quote

import pytest

from conftest import token_for, wait_until

PW = "pw-secret-123"

# A login shows ONLINE for login_grace without a socket: long enough here
# that the signed-in caller's own count never runs out during a test.
pytestmark = pytest.mark.settings(login_grace="120s")

# o1: the demo's kind of names, some not ASCII; o2: an outsider whose name
# matches searches of o1, to show it never comes back to o1.
O1 = [("ann", "Ann Lee"), ("bob", "Bob Martin"), ("chloe", "Chloé Dubois"),
      ("ines", "Inês Costa"), ("olaf", "ÓLAF Ångström"), ("zed", "zed"),
      ("ann2", "Ann Lee"), ("sig", "ΣΩΚΡΑΤΗΣ")]


def fold(s):
    """The directory's folding (src/api/directory.c, app.js fold()): each
    code point to its lowercase where that is one code point."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def order(members):
    return sorted(members, key=lambda m: (fold(m[1]).encode(), m[1].encode(),
                                          m[0].encode()))


@pytest.fixture
def orgs(srv):
    """o1 (O1, ann@o1.example signs in), o2 with an outsider; started;
    returns (server, ann's cookie)."""
    def build(s):
        s.add_org("o1")
        for uid, name in O1:
            s.add_user("o1", uid, name=name, email="%s@o1.example" % uid, password=PW)
        s.add_org("o2")
        s.add_user("o2", "olga", name="Ann Lee Outsider", email="olga@o2.example",
                   password=PW)
    srv.seed("pages-nav-orgs", build)
    srv.start()
    _, cookie = srv.login_ok("ann@o1.example", PW)
    return srv, cookie


def error(r):
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        (r.status_code, r.headers, r.text[:200])
    return r.status_code, r.json()["error"]["code"], r.json()["error"]["message"]


def raw_error(s, path, cookie):
    """GET path as written (requests re-encodes a bad escape): (status,
    code, message)."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    try:
        c.request("GET", path, headers={"Cookie": "presenced_session=" + cookie})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.getheader("Content-Type").startswith("application/json")
        return r.status, body["error"]["code"], body["error"]["message"]
    finally:
        c.close()


def is_html_404(r):
    assert r.status_code == 404, (r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert "Location" not in r.headers
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "Page not found" in r.text and "/static/pages/notfound.js" in r.text
    assert 'id="app-header"' in r.text      # the header goes there
    return True


# ---- the 404 page ------------------------------------------------------------

def test_unknown_pages_get_the_html_404_page(orgs):
    s, cookie = orgs
    for p in ("/nope", "/members/x", "/channels/a/b", "/projects/a/b", "/login/",
              "/projects/", "/404.html", "/apix", "/wsx", "/staticx", "/nope?x=1",
              "/%00", "/users"):
        # Signed in (the page's script adds the navigation) or not (no
        # redirect to sign in: that would only lead back here).
        assert is_html_404(s.http("GET", p, cookie=cookie)), p
        assert is_html_404(s.http("GET", p)), p
        assert is_html_404(s.http("GET", p, token=token_for("o1", "ann"))), p


def test_api_ws_static_and_other_methods_keep_json_404(orgs):
    s, cookie = orgs
    tok = token_for("o1", "ann")
    for p in ("/api", "/ws", "/static", "/static/"):
        assert error(s.http("GET", p, token=tok)) == (404, "not_found", "no such page"), p
        assert error(s.http("GET", p, cookie=cookie)) == (404, "not_found", "no such page"), p
    assert error(s.http("GET", "/api/nope", token=tok)) == \
        (404, "not_found", "no such endpoint")
    assert error(s.http("GET", "/api/nope", cookie=cookie)) == \
        (404, "not_found", "no such endpoint")
    assert error(s.http("GET", "/api/nope"))[:2] == (401, "unauthorized")
    for p in ("/ws/", "/ws/nope"):
        assert error(s.http("GET", p)) == (404, "not_found", "no such endpoint"), p
    assert error(s.http("GET", "/static/nope.js")) == (404, "not_found", "no such file")
    # Methods other than GET keep today's answer, HEAD included.
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        assert error(s.http(m, "/nope", cookie=cookie)) == \
            (404, "not_found", "no such page"), m
    r = s.http("HEAD", "/nope", cookie=cookie)
    assert r.status_code == 404 and r.content == b""
    assert r.headers["Content-Type"].startswith("application/json"), r.headers


# ---- /projects --------------------------------------------------------------

def test_projects_page(orgs):
    s, cookie = orgs
    r = s.http("GET", "/projects", cookie=cookie)
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "/static/pages/projects.js" in r.text and "<title>Projects" in r.text
    assert s.http("GET", "/projects", cookie=cookie,
                  headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    # Without a session: to sign in, and back.
    r = s.http("GET", "/projects")
    assert (r.status_code, r.headers["Location"]) == (302, "/login?next=/projects")
    assert error(s.http("POST", "/projects", cookie=cookie)) == \
        (405, "method_not_allowed", "use GET")
    # The page's script and the API it reads.
    assert s.http("GET", "/static/pages/projects.js").status_code == 200
    assert s.http("GET", "/api/projects", cookie=cookie).json() == {"projects": []}


# ---- the members directory: a small organization ----------------------------

def directory(s, query="", cookie=None, token=None):
    r = s.http("GET", "/api/members" + query, cookie=cookie, token=token)
    assert r.status_code == 200, (query, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_directory_lists_the_callers_organization_by_name(orgs):
    s, cookie = orgs
    d = directory(s, cookie=cookie)
    assert d["org"] == "o1" and isinstance(d["seq"], int)
    assert (d["total"], d["offset"], d["limit"]) == (len(O1), 0, 50)
    assert [m["user"] for m in d["members"]] == [u for u, _ in order(O1)]
    assert d["online"] == 1                  # ann, signed in
    # Member objects as /api/presence gives them.
    full = {m["user"]: m for m in s.presence(token_for("o1", "bob"))["members"]}
    for m in d["members"]:
        assert m == full[m["user"]], m
    assert "olga" not in {m["user"] for m in d["members"]}
    # By bearer token too; HEAD has no body.
    assert directory(s, token=token_for("o1", "bob"))["total"] == len(O1)
    r = s.http("HEAD", "/api/members", cookie=cookie)
    assert r.status_code == 200 and r.content == b""


def test_directory_pages(orgs):
    s, cookie = orgs
    want = [u for u, _ in order(O1)]
    got = []
    for off in range(0, len(O1) + 3, 3):
        d = directory(s, "?offset=%d&limit=3" % off, cookie)
        assert (d["offset"], d["limit"], d["total"]) == (off, 3, len(O1))
        got += [m["user"] for m in d["members"]]
    assert got == want
    assert directory(s, "?offset=1000000", cookie)["members"] == []
    d = directory(s, "?limit=0", cookie)
    assert d["members"] == [] and d["total"] == len(O1)
    assert len(directory(s, "?limit=100", cookie)["members"]) == len(O1)


@pytest.mark.parametrize("q, users", [
    ("ann", ["ann", "ann2"]),            # a substring, any case
    ("ANN LEE", ["ann", "ann2"]),
    ("lee", ["ann", "ann2"]),
    ("n l", ["ann", "ann2"]),            # spaces are part of it
    ("CHLOÉ", ["chloe"]),                # non-ASCII folds too
    ("chloe", []),                       # ... but é is not e
    ("inÊs", ["ines"]),
    ("ólaf ångström", ["olaf"]),
    ("σωκρατησ", ["sig"]),               # Σ folds to σ everywhere
    ("Ωκ", ["sig"]),
    ("Outsider", []),                    # another organization's name
    ("zz", []),
    ("", [u for u, _ in order(O1)]),
])
def test_directory_search(orgs, q, users):
    s, cookie = orgs
    d = directory(s, "?q=" + quote(q), cookie)
    assert [m["user"] for m in d["members"]] == users, d
    assert d["total"] == len(users)
    # The same rule, as the page's filter applies it.
    assert [u for u, n in order(O1) if fold(q) in fold(n)] == users


# Lowercase names, found by their uppercase: runs of the table with a
# stride of 1 and 2, a titlecase digraph, scripts far from Latin, an
# astral plane; and İ, whose lowercase is two code points: it folds to
# itself.
FOLDS = [("u0166", "ŧ", "Ŧ"), ("u01c4", "ǆ", "ǅ"), ("u01c5", "ǆ", "Ǆ"),
         ("cyr", "жук", "ЖУК"), ("arm", "ա", "Ա"), ("geo", "ⴀ", "Ⴀ"),
         ("chr", "ꭰ", "Ꭰ"), ("des", "𐐨", "𐐀"), ("fw", "ａｂ", "ＡＢ"),
         ("tr", "İstanbul", "İST"), ("en", "istanbul", "IST")]


def test_directory_folding_beyond_latin(shared_server):
    s = shared_server
    for uid, name, _ in FOLDS:      # provisioned by their tokens
        assert s.http("GET", "/api/me", token=token_for("o_fold", uid, name=name)) \
            .status_code == 200
    tok = token_for("o_fold", FOLDS[0][0], name=FOLDS[0][1])
    for uid, name, q in FOLDS:
        d = directory(s, "?limit=100&q=" + quote(q), token=tok)
        want = sorted(u for u, n, _ in FOLDS if fold(q) in fold(n))
        assert sorted(m["user"] for m in d["members"]) == want, (q, d["members"])
        assert uid in want
    assert [m["user"] for m in directory(s, "?q=" + quote("İ"), token=tok)["members"]] == ["tr"]
    assert [m["user"] for m in directory(s, "?q=i", token=tok)["members"]] == ["en"]


def test_directory_plus_is_a_space(orgs):
    s, cookie = orgs
    assert [m["user"] for m in directory(s, "?q=ann+lee", cookie)["members"]] == \
        ["ann", "ann2"]


@pytest.mark.parametrize("query, message", [
    ("?offset=-1", "offset must be a whole number from 0 to 1000000"),
    ("?offset=1000001", "offset must be a whole number from 0 to 1000000"),
    ("?offset=99999999999999999999", "offset must be a whole number from 0 to 1000000"),
    ("?offset=abc", "offset must be a whole number from 0 to 1000000"),
    ("?offset=", "offset must be a whole number from 0 to 1000000"),
    ("?offset=1e3", "offset must be a whole number from 0 to 1000000"),
    ("?offset=+5", "offset must be a whole number from 0 to 1000000"),
    ("?limit=101", "limit must be a whole number from 0 to 100"),
    ("?limit=-5", "limit must be a whole number from 0 to 100"),
    ("?limit=", "limit must be a whole number from 0 to 100"),
    ("?limit=10.5", "limit must be a whole number from 0 to 100"),
    ("?q=" + "a" * 201, "q is longer than 200 bytes"),
    ("?q=" + "%C3%A9" * 101, "q is longer than 200 bytes"),
    ("?q=%FF", "q is not valid UTF-8"),
    ("?q=%C3", "q is not valid UTF-8"),
    ("?q=%ED%A0%80", "q is not valid UTF-8"),       # a surrogate
    ("?q=%C0%AF", "q is not valid UTF-8"),          # overlong
    ("?q=%zz", "q is not valid percent-encoding (or holds a NUL byte)"),
    ("?q=a%00b", "q is not valid percent-encoding (or holds a NUL byte)"),
])
def test_directory_bad_input(orgs, query, message):
    s, cookie = orgs
    assert raw_error(s, "/api/members" + query, cookie) == (400, "bad_request", message)


def test_directory_edges_that_are_fine(orgs):
    s, cookie = orgs
    assert directory(s, "?q=" + "a" * 200, cookie)["total"] == 0
    assert directory(s, "?limit=100&offset=0000", cookie)["offset"] == 0
    assert directory(s, "?other=1&q=bob", cookie)["total"] == 1


def test_directory_needs_credentials(orgs):
    s, _ = orgs
    assert error(s.http("GET", "/api/members"))[:2] == (401, "unauthorized")
    assert error(s.http("GET", "/api/members", cookie="x" * 43))[:2] == \
        (401, "unauthorized")
    assert error(s.http("POST", "/api/members", token=token_for("o1", "ann"))) == \
        (405, "method_not_allowed", "use GET")


def test_directory_is_scoped_to_the_callers_organization(orgs):
    s, cookie = orgs
    _, olga = s.login_ok("olga@o2.example", PW)
    d = directory(s, "?q=ann", olga)
    assert d["org"] == "o2" and d["total"] == 1
    assert [m["user"] for m in d["members"]] == ["olga"]
    d = directory(s, cookie=olga)
    assert [m["user"] for m in d["members"]] == ["olga"]
    assert d["online"] == 1
    # A token for an organization of its own sees only itself.
    d = directory(s, token=token_for("o3", "solo", name="Ann Solo"))
    assert (d["org"], [m["user"] for m in d["members"]]) == ("o3", ["solo"])
    # And o1 sees none of them.
    names = {m["name"] for m in directory(s, "?limit=100", cookie)["members"]}
    assert "Ann Lee Outsider" not in names and "Ann Solo" not in names


def test_directory_counts_online_as_members_see_it(orgs):
    s, cookie = orgs
    bob = s.ws("o1", "bob")
    chloe = s.ws("o1", "chloe")
    d = directory(s, cookie=cookie)
    assert d["online"] == 3
    assert directory(s, "?q=chlo", cookie)["online"] == 1
    # Appearing offline: counted and shown as offline, no connection.
    chloe.set_manual("OFFLINE")
    chloe.ping()
    wait_until(lambda: directory(s, cookie=cookie)["online"] == 2, 5,
               what="chloe counted offline")
    d = directory(s, "?q=chlo", cookie)
    m = d["members"][0]
    assert d["online"] == 0
    assert (m["status"], m["connections"]) == ("OFFLINE", 0), m
    bob.close()
    chloe.close()


def test_directory_finds_members_the_cli_added(orgs):
    s, cookie = orgs
    assert directory(s, "?q=newcomer", cookie)["total"] == 0
    s.add_user("o1", "nina", name="Nina Newcomer", email="nina@o1.example")
    d = directory(s, "?q=newcomer", cookie)
    assert [m["user"] for m in d["members"]] == ["nina"]


# ---- an organization of 10,000 -------------------------------------------------

BIG = 10000


@pytest.fixture
def big(srv):
    """o1 as above plus "big": 10,000 members straight into the database
    (as test_hardening2.py's bulk_users), names "Person NNNNN <hex>" in a
    shuffled order of ids; and o2's outsider with a name big's searches
    hit. Returns (server, the members as (id, name), a token of big)."""
    def build(s):
        s.add_org("o2")
        s.add_user("o2", "olga", name="Person 00042 outsider", email="olga@o2.example",
                   password=PW)
    srv.seed("pages-nav-big", build)
    now = int(time.time() * 1000)
    srv.sql("INSERT INTO organizations(id, name, created_ms) VALUES(?,?,?)",
            ("big", "Big", now))
    members = []
    for i in range(BIG):
        uid = str(uuid.uuid4())
        members.append((uid, "Person %05d %s" % ((i * 7919) % BIG, uid[:4])))
    srv.sql_many("INSERT INTO users(org, id, name, created_ms) VALUES(?,?,?,?)",
                 [("big", u, n, now) for u, n in members])
    srv.start()
    return srv, members, token_for("big", members[0][0])


def test_big_directory_pages_through_everyone(big):
    s, members, tok = big
    want = [u for u, _ in order(members)]
    got = []
    t0 = time.monotonic()
    for off in range(0, BIG, 100):
        d = directory(s, "?offset=%d&limit=100" % off, token=tok)
        assert d["total"] == BIG and d["org"] == "big"
        assert len(d["members"]) == 100
        got += [m["user"] for m in d["members"]]
    took = time.monotonic() - t0
    assert got == want
    assert directory(s, "?offset=%d&limit=100" % BIG, token=tok)["members"] == []
    # A page is small, whatever the size of the organization.
    r = s.http("GET", "/api/members?limit=100", token=tok)
    assert len(r.content) < 20000, len(r.content)
    print("100 pages of 100 in %.2fs" % took)


def test_big_directory_search_is_on_the_server(big):
    s, members, tok = big
    uid, name = next(m for m in members if m[1].startswith("Person 04242 "))
    for q in (name, name.upper(), "person 04242", "ERSON 0424"):
        d = directory(s, "?q=" + q.replace(" ", "+"), token=tok)
        users = [m["user"] for m in d["members"]]
        assert uid in users, (q, d)
        assert d["total"] == len([1 for _, n in members if fold(q) in fold(n)])
    d = directory(s, "?q=person+0424&limit=5&offset=5", token=tok)
    hits = [u for u, n in order(members) if "person 0424" in fold(n)]
    assert d["total"] == len(hits) == 10
    assert [m["user"] for m in d["members"]] == hits[5:10]
    # o2's outsider is never among big's, nor big's among o2's.
    d = directory(s, "?q=person+00042", token=tok)
    assert "olga" not in [m["user"] for m in d["members"]] and d["total"] == 1
    d = directory(s, "?q=person", token=token_for("o2", "olga"))
    assert [m["user"] for m in d["members"]] == ["olga"]


def test_big_directory_online_count(big):
    s, members, tok = big
    assert directory(s, "?limit=0", token=tok)["online"] == 0
    a = s.ws("big", members[1][0], label="a", timeout=30)
    b = s.ws("big", members[2][0], label="b", timeout=30)
    assert directory(s, "?limit=0", token=tok)["online"] == 2
    d = directory(s, "?q=" + members[1][1].replace(" ", "+"), token=tok)
    assert d["online"] == 1 and d["members"][0]["status"] == "ONLINE"
    a.close()
    b.close()
