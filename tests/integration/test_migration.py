"""Schema version 1 -> 2 (issue 13): stored statuses from before the change
load unchanged.

The fixtures (tests/fixtures/README.md) were written by the presenced of
the commit before schema version 2: a SQLite file, and the same rows in
PostgreSQL as a plain SQL dump of that binary's own `db copy`.  Each test
copies its fixture into a database of its own, starts this binary on it
and checks that the schema is now version 2 with the two new tables
(user_extras, org_presets) and nothing of version 1 changed: every row, in
particular every user's status, manual status and last_seen; that the API
shows them (a manual BUSY after login, an appear-offline user OFFLINE with
last_seen frozen); and that a second start migrates nothing.

The settings keep the server from changing stored statuses on its own
while the rows are compared: no stale sweep, a restore window longer than
the test.
"""

import os
import shutil
import sqlite3
import time
import uuid

import pytest

from conftest import REPO

FIXTURES = os.path.join(REPO, "tests", "fixtures")
SQLITE_FIXTURE = os.path.join(FIXTURES, "schema-v1.sqlite")
PG_FIXTURE = os.path.join(FIXTURES, "schema-v1-pg.sql")
V1_TABLES = ["organizations", "users", "sessions", "channels",
             "channel_members", "projects", "project_members"]
NEW_TABLES = {"user_extras", "org_presets"}
NAMES = {0: "OFFLINE", 1: "AWAY", 2: "ONLINE", 3: "BUSY"}
MIGRATED = "store: database schema migrated to version"
SETTINGS = dict(stale_after="3650d", sweep="1h", restart_grace="1h")

# Each test picks its backend itself (a SQLite file, or a cluster of the
# module's own): the SQLite pass runs them all, the PostgreSQL pass adds
# nothing.
pytestmark = pytest.mark.sqlite_only(
    "migrates fixtures of its own: a SQLite file and a PostgreSQL cluster")


# ------------------------------------------------------------ helpers ----

def now_ms():
    return int(time.time() * 1000)


def rows_sorted(rows):
    # repr: a NULL beside an integer must not stop the sort.
    return sorted(rows, key=repr)


def sqlite_tables(path, tables):
    """{table: (columns, sorted rows)} of a SQLite file, read-only."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        out = {}
        for t in tables:
            cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % t)]
            q = 'SELECT %s FROM "%s"' % (", ".join('"%s"' % c for c in cols),
                                         t)
            out[t] = (cols, rows_sorted(con.execute(q).fetchall()))
        return out
    finally:
        con.close()


def server_tables(s, want):
    """The same tables of the server's database (either backend, through
    Server.sql), with want's columns in want's order."""
    out = {}
    for t, (cols, _) in want.items():
        rows = s.sql('SELECT %s FROM "%s"' % (
            ", ".join('"%s"' % c for c in cols), t))
        out[t] = (cols, rows_sorted(tuple(r[c] for c in cols) for r in rows))
    return out


def users_of(tables):
    cols, rows = tables["users"]
    return {(r[cols.index("org")], r[cols.index("id")]): dict(zip(cols, r))
            for r in rows}


def assert_v1_rows_unchanged(s, before):
    """Every version 1 row as the fixture held it.  Sessions that expired
    since the fixture was made may have been purged; no other row may
    differ."""
    after = server_tables(s, before)
    for t in before:
        if t != "sessions":
            assert after[t] == before[t], "table %s changed:\n%r\n%r" % (
                t, before[t][1], after[t][1])
    cols, rows = before["sessions"]
    exp = cols.index("expires_ms")
    got = set(after["sessions"][1])
    assert got <= set(rows), got
    assert {r for r in rows if r[exp] > now_ms() + 60000} <= got, got


class Backend:
    """What differs between the two: where the version is, how the tables
    and the schema are listed."""

    def __init__(self, pg):
        self.pg = pg

    def version(self, s):
        if self.pg:
            return s.sql("SELECT version FROM presenced_schema")[0]["version"]
        return s.sql("PRAGMA user_version")[0]["user_version"]

    def tables(self, s):
        if self.pg:
            return {r["name"] for r in s.sql(
                "SELECT table_name AS name FROM information_schema.tables "
                "WHERE table_schema = current_schema()")}
        return {r["name"] for r in s.sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, s, table):
        if self.pg:
            return {r["name"] for r in s.sql(
                "SELECT column_name AS name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (table,))}
        return {r["name"] for r in s.sql('PRAGMA table_info("%s")' % table)}

    def schema(self, s):
        """The schema as data, to compare one start with the next."""
        if self.pg:
            return rows_sorted(
                (r["table_name"], r["column_name"], r["data_type"])
                for r in s.sql(
                    "SELECT table_name, column_name, data_type FROM "
                    "information_schema.columns "
                    "WHERE table_schema = current_schema()")) + \
                sorted(r["tgname"] for r in s.sql(
                    "SELECT tgname::text AS tgname FROM pg_trigger "
                    "WHERE NOT tgisinternal"))
        return rows_sorted((r["type"], r["name"], r["sql"]) for r in s.sql(
            "SELECT type, name, sql FROM sqlite_master"))


def check_started(s, before, b):
    """Right after the first start on the fixture."""
    log = s.log_text()
    assert MIGRATED + " 2" in log, log[-4000:]
    assert MIGRATED + " 1" not in log, log[-4000:]
    assert b.version(s) == 2
    assert NEW_TABLES <= b.tables(s)
    assert b.columns(s, "user_extras") == {"org", "user", "data"}
    assert b.columns(s, "org_presets") == {"org", "data"}
    # Empty: nothing is made up for the users of before.
    for t in NEW_TABLES:
        assert s.sql('SELECT count(*) AS n FROM "%s"' % t)[0]["n"] == 0
    assert_v1_rows_unchanged(s, before)


def check_api(s, before):
    """The stored statuses, as the API shows them."""
    users = users_of(before)
    ann = users[("demo", "ann")]
    bob = users[("demo", "bob")]
    assert (ann["status"], ann["manual"]) == (3, 3), ann
    assert (bob["manual"], bob["last_seen_ms"] > 0) == (0, True), bob

    _, cookie = s.login_ok("ann@demo.example", "demo")
    me = s.http("GET", "/api/me", cookie=cookie)
    assert me.status_code == 200, me.text
    assert me.json()["user"] == "ann"
    assert me.json()["status"] == "BUSY" and me.json()["manual"] == "BUSY", \
        me.json()
    r = s.http("GET", "/api/presence", cookie=cookie)
    assert r.status_code == 200, r.text
    members = {m["user"]: m for m in r.json()["members"]}
    assert set(members) == {u for (o, u) in users if o == "demo"}
    for (org, uid), u in users.items():
        if org != "demo" or uid == "ann":
            continue
        m = members[uid]
        # Inside the restore window the stored status shows; appearing
        # offline is OFFLINE with last_seen as it was frozen.
        assert m["status"] == NAMES[u["status"]], (uid, m, u)
        if u["last_seen_ms"]:
            assert m["last_seen"] == u["last_seen_ms"], (uid, m, u)
    assert members["chloe"]["status"] == "ONLINE"
    assert members["bob"]["status"] == "OFFLINE"

    # Another organization's manual AWAY came through too.
    _, zc = s.login_ok("zoe@acme.example", "pw-secret-123")
    me = s.http("GET", "/api/me", cookie=zc)
    assert me.json()["status"] == "AWAY" and me.json()["manual"] == "AWAY", \
        me.json()


def check_second_start(s, b):
    """A second start: the version is current, nothing migrates."""
    schema = b.schema(s)
    s.start()
    try:
        with open(s.logs[-1], errors="replace") as f:
            log = f.read()
        assert MIGRATED not in log, log[-4000:]
        assert b.version(s) == 2
        assert b.schema(s) == schema
        # ann's manual BUSY survived the first run's shutdown.
        ann = s.db_user("demo", "ann")
        assert (ann["status"], ann["manual"]) == (3, 3), ann
    finally:
        s.stop()


# -------------------------------------------------------------- SQLite ----

@pytest.mark.settings(**SETTINGS)
def test_sqlite_v1_fixture_migrates_unchanged(srv):
    b = Backend(pg=False)
    fixture = sqlite_tables(SQLITE_FIXTURE, V1_TABLES)
    shutil.copyfile(SQLITE_FIXTURE, srv.db)
    assert b.version(srv) == 1
    assert not NEW_TABLES & b.tables(srv)
    before = sqlite_tables(srv.db, V1_TABLES)
    assert before == fixture

    srv.start()
    try:
        check_started(srv, before, b)
        check_api(srv, before)
    finally:
        srv.stop()
    check_second_start(srv, b)
    # The fixture itself is only ever copied.
    assert sqlite_tables(SQLITE_FIXTURE, V1_TABLES) == fixture


# ---------------------------------------------------------- PostgreSQL ----

def pg_load_fixture(cluster):
    """A new database holding the version 1 dump; its name and URI."""
    name = "v1_" + uuid.uuid4().hex[:12]
    cluster.create_db(name)
    with open(PG_FIXTURE) as f:
        script = f.read()
    con = cluster.connect(name)
    try:
        with con.cursor() as cur:
            cur.execute(script)
    finally:
        con.close()
    return name, cluster.uri(name)


@pytest.mark.settings(**SETTINGS)
def test_postgresql_v1_fixture_migrates_unchanged(srv, own_pg):
    b = Backend(pg=True)
    name, uri = pg_load_fixture(own_pg)
    try:
        srv.db = uri
        assert b.version(srv) == 1
        assert not NEW_TABLES & b.tables(srv)
        # The dump holds what the SQLite fixture holds (it is that
        # binary's db copy of it).
        want = sqlite_tables(SQLITE_FIXTURE, V1_TABLES)
        before = server_tables(srv, want)
        assert before == want
        changes = srv.sql("SELECT n FROM presenced_changes")[0]["n"]

        srv.start()
        try:
            # The migration itself moves no change counter.
            assert srv.sql("SELECT n FROM presenced_changes")[0]["n"] \
                == changes
            check_started(srv, before, b)
            check_api(srv, before)
            assert srv.sql("SELECT count(*) AS n FROM pg_trigger "
                           "WHERE tgname = 'org_presets_changes'")[0]["n"] \
                == 1
        finally:
            srv.stop()
        check_second_start(srv, b)
    finally:
        own_pg.drop_db(name)
