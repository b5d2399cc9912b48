"""presenced db copy: a SQLite database moved to PostgreSQL, every row.

The source is seeded through the CLI and a real server (passwords, a login
session, a manual status, last_seen); the target is a database of a
throwaway PostgreSQL cluster (tests/pgcluster.py) that these tests start
themselves, whichever backend the rest of the suite runs on.  Rows are
compared table by table, column by column, between Python's sqlite3 and
psycopg2.
"""

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import uuid

import pytest

from conftest import BIN, SANITIZER_MARKERS, Server

# In the order db copy prints them; the last two are schema version 2's.
TABLES = ["organizations", "users", "sessions", "channels", "channel_members",
          "projects", "project_members", "user_extras", "org_presets"]
PASSWORD = "pw-secret-123"
# The source is a SQLite file whatever the pass; the target a cluster of the
# module's own: the SQLite pass runs it all, the PostgreSQL pass adds nothing.
pytestmark = pytest.mark.sqlite_only(
    "copies a SQLite file into a PostgreSQL cluster of its own")
# Control characters and backslashes that COPY's text format must escape.
ODD_NAME = "Zo\u00eb \\N back\\slash\ttab\nnew\rline"
# A user's extras and an organization's presets: JSON, opaque to the store.
EXTRAS = ('{"message":{"text":"Back \\\\ at 3 \\t\\u2615","emoji":null,'
          '"expires":null,"clear_status":false},\n"dnd":{"until":null,'
          '"schedule":[],"while_busy":false},"tz":"Europe/Paris",'
          '"hide_last_seen":true}')
PRESETS = '[{"text":"Lunch","emoji":"\U0001f354","expires":"1h"}]\r\n'


@pytest.fixture
def cluster(own_pg):
    """The target's PostgreSQL cluster: the module's own (conftest)."""
    return own_pg


@pytest.fixture
def target(cluster):
    """A new empty database; its URI."""
    name = "copy_" + uuid.uuid4().hex[:12]
    cluster.create_db(name)
    yield name, cluster.uri(name)
    cluster.drop_db(name)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A seeded SQLite database (a Server, stopped) and the login cookie of
    ann's session in it."""
    s = Server(tmp_path_factory.mktemp("copy-src"))
    s.add_org("o1", "Org \u00fcne")
    s.add_org("o2", ODD_NAME)
    s.add_user("o1", "ann", name="Ann Lee")
    s.add_user("o1", "bob", name=ODD_NAME)
    s.add_user("o2", "cy", name="Cy", email="Cy.Mixed@O2.example")
    s.cli_ok("channel", "add", "--org", "o1", "--name", "general",
             "--members", "ann,bob")
    s.cli_ok("channel", "add", "--org", "o2", "--name", "empty")
    s.cli_ok("project", "add", "--org", "o1", "--name", "launch",
             "--members", "bob")
    s.start()
    try:
        _, cookie = s.login_ok("ann@o1.example")
        s.login_ok("cy.mixed@o2.example")
        # A manual status on bob (stored as manual and status).
        _, bob = s.login_ok("bob@o1.example")
        r = s.http("PUT", "/api/status", cookie=bob,
                   json={"status": "BUSY"},
                   headers={"X-Requested-With": "t"})
        assert r.status_code == 200, r.text
    finally:
        s.stop()
    # stop() flushed presence: last_seen and the manual status are stored.
    bob_row = s.db_user("o1", "bob")
    assert bob_row["manual"] == 3 and bob_row["last_seen_ms"] > 0, bob_row
    # A user's extras and an organization's presets (opaque JSON to the
    # store), with what COPY's text format must escape: a newline between
    # tokens, backslashes of JSON escapes.
    s.sql("INSERT INTO user_extras(org, user, data) VALUES (?, ?, ?)",
          ("o1", "bob", EXTRAS))
    s.sql("INSERT INTO org_presets(org, data) VALUES (?, ?)",
          ("o2", PRESETS))
    return s, cookie


def run(*args, timeout=120):
    p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout,
                       env={k: v for k, v in os.environ.items()
                            if not k.startswith("PRESENCED_")})
    for m in SANITIZER_MARKERS:
        assert m not in p.stderr, p.stderr
    return p


def errors(p):
    """stderr less the log lines (a schema created or migrated is logged at
    info): what the command itself said."""
    return [l for l in p.stderr.splitlines()
            if not re.match(r"\d{4}-\d\d-\d\dT\S+ [A-Z]+ ", l)]


def copy(src, uri, *extra):
    return run("db", "copy", "--from", src, "--to", uri, *extra)


def sqlite_rows(path, table):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        cur = con.execute('SELECT * FROM "%s"' % table)
        cols = [d[0] for d in cur.description]
        return cols, sorted(cur.fetchall())
    finally:
        con.close()


def pg_rows(cluster, dbname, table, cols):
    con = cluster.connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute('SELECT %s FROM "%s"' % (
                ", ".join('"%s"' % c for c in cols), table))
            rows = cur.fetchall()
    finally:
        con.close()
    return sorted(tuple(bytes(v) if isinstance(v, memoryview) else v
                        for v in r) for r in rows)


def assert_same(cluster, dbname, path):
    """Every row of every table, every column, equal; returns the counts."""
    counts = {}
    for t in TABLES:
        cols, want = sqlite_rows(path, t)
        got = pg_rows(cluster, dbname, t, cols)
        assert got == want, "table %s differs:\nsqlite %r\npg     %r" % (
            t, want, got)
        counts[t] = len(want)
    return counts


def printed_counts(out):
    lines = [l.split() for l in out.splitlines()]
    assert all(len(l) == 2 for l in lines), out
    return {l[0]: int(l[1]) for l in lines}


def pg_exec(cluster, dbname, sql, params=()):
    con = cluster.connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        con.close()


def dump(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()


# ------------------------------------------------------------ copying ----

def test_copy_every_row_and_counts(cluster, source, target):
    s, _ = source
    dbname, uri = target
    before = dump(s.db)
    p = copy(s.db, uri)
    assert p.returncode == 0, p.stderr
    assert cluster.password not in p.stdout + p.stderr
    counts = assert_same(cluster, dbname, s.db)
    assert counts["organizations"] == 2 and counts["users"] == 3
    assert counts["sessions"] == 3 and counts["channel_members"] == 2
    assert counts["user_extras"] == 1 and counts["org_presets"] == 1
    assert pg_exec(cluster, dbname, 'SELECT data FROM user_extras WHERE '
                   'org = %s AND "user" = %s', ("o1", "bob")) == [(EXTRAS,)]
    assert pg_exec(cluster, dbname, "SELECT data FROM org_presets WHERE "
                   "org = %s", ("o2",)) == [(PRESETS,)]
    printed = printed_counts(p.stdout)
    assert list(printed) == TABLES + ["total"], p.stdout
    assert printed == dict(counts, total=sum(counts.values()))
    # The source is only read.
    assert dump(s.db) == before
    # Session hashes are bytea of 32 bytes, ids as in SQLite.
    rows = pg_exec(cluster, dbname,
                   "SELECT id, length(token_hash) FROM sessions ORDER BY id")
    assert [r[1] for r in rows] == [32, 32, 32]
    assert [r[0] for r in rows] == [
        r["id"] for r in s.sql("SELECT id FROM sessions ORDER BY id")]
    # The next session id the target hands out is past the copied ones.
    nxt = pg_exec(cluster, dbname, "SELECT nextval(pg_get_serial_sequence("
                  "'sessions', 'id'))")[0][0]
    assert nxt == rows[-1][0] + 1


def test_second_copy_refuses_then_force_replaces(cluster, source, target):
    s, _ = source
    dbname, uri = target
    assert copy(s.db, uri).returncode == 0
    # Changes in the target that a refused copy must leave alone and a
    # forced one must undo.
    pg_exec(cluster, dbname, "INSERT INTO organizations(id, name, created_ms)"
            " VALUES ('extra', 'Extra', 1)")
    pg_exec(cluster, dbname, "UPDATE users SET name = 'changed' "
            "WHERE id = 'ann'")
    total = pg_exec(cluster, dbname, "SELECT " + " + ".join(
        "(SELECT count(*) FROM %s)" % t for t in TABLES))[0][0]
    snapshot = {t: pg_exec(cluster, dbname, "SELECT * FROM %s ORDER BY 1, 2"
                           % t) for t in TABLES}

    p = copy(s.db, uri)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert errors(p) == ["presenced: target database is not empty "
                         "(%d rows); use --force to replace them" % total]
    assert p.stdout == ""
    assert {t: pg_exec(cluster, dbname, "SELECT * FROM %s ORDER BY 1, 2" % t)
            for t in TABLES} == snapshot

    # Servers on the target notice a change by the backend's counter.
    changes = pg_exec(cluster, dbname, "SELECT n FROM presenced_changes")
    p = copy(s.db, uri, "--force")
    assert p.returncode == 0, p.stderr
    assert pg_exec(cluster, dbname, "SELECT n FROM presenced_changes") \
        > changes
    counts = assert_same(cluster, dbname, s.db)
    assert printed_counts(p.stdout) == dict(counts, total=sum(counts.values()))


def test_force_on_empty_target_and_flag_anywhere(cluster, source, target):
    """--force is a switch: it may come first and takes no value."""
    s, _ = source
    dbname, uri = target
    p = run("db", "copy", "--force", "--from", s.db, "--to", uri)
    assert p.returncode == 0, p.stderr
    assert_same(cluster, dbname, s.db)


def test_failed_copy_leaves_target_empty(cluster, tmp_path, target):
    """A row PostgreSQL refuses (a text with a NUL byte) rolls back the
    tables copied before it: all or nothing."""
    dbname, uri = target
    s = Server(tmp_path)
    s.add_org("o1")
    s.add_user("o1", "ann")
    con = sqlite3.connect(s.db)
    con.execute("UPDATE users SET name = CAST(? AS TEXT) WHERE id = 'ann'",
                ("bad\x00name",))
    con.commit()
    con.close()
    p = copy(s.db, uri)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert len(errors(p)) == 1, p.stderr
    assert "users" in errors(p)[0]
    for t in TABLES:
        assert pg_exec(cluster, dbname, "SELECT count(*) FROM %s" % t) \
            == [(0,)], t


def test_copy_from_schema_v1(cluster, tmp_path, target):
    """A file of schema version 1 (tests/fixtures/schema-v1.sqlite, from
    the presenced before issue 13) is migrated first, then copied whole:
    its rows, and the two tables of version 2, empty."""
    dbname, uri = target
    src = tmp_path / "v1.db"
    shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "..", "fixtures", "schema-v1.sqlite"), src)
    p = copy(src, uri)
    assert p.returncode == 0, p.stderr
    counts = assert_same(cluster, dbname, src)
    assert counts["users"] == 13 and counts["organizations"] == 2
    assert counts["user_extras"] == 0 and counts["org_presets"] == 0
    assert printed_counts(p.stdout) == dict(counts,
                                            total=sum(counts.values()))
    con = sqlite3.connect(src)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()


def test_copy_beside_a_running_server(cluster, tmp_path, target):
    """WAL readers do not wait for the server: the copy is a snapshot taken
    while it runs, and it includes a session made a moment before."""
    dbname, uri = target
    s = Server(tmp_path)
    s.add_org("o1")
    s.add_user("o1", "ann")
    s.start()
    try:
        s.login_ok("ann@o1.example")
        p = copy(s.db, uri)
        assert p.returncode == 0, p.stderr
        assert printed_counts(p.stdout)["sessions"] == 1
        assert s.running
    finally:
        s.stop()
    assert pg_exec(cluster, dbname, "SELECT count(*) FROM sessions") == [(1,)]


def test_many_rows(cluster, tmp_path, target):
    """A large database goes across whole (COPY, not a statement per row).
    The timeout only guards against a hang; nothing is timed."""
    dbname, uri = target
    s = Server(tmp_path)
    s.add_org("o1")
    n = 100000
    con = sqlite3.connect(s.db)
    con.executemany(
        "INSERT INTO users(org, id, email, name, pw_hash, status, manual,"
        " last_seen_ms, created_ms) VALUES ('o1', ?, ?, ?, ?, ?, ?, ?, ?)",
        (("u%06d" % i, "u%d@o1.example" % i if i % 3 else None,
          "User\t%d\\" % i, "$argon2id$v=19$x%d" % i, i % 4,
          None if i % 5 else i % 4, 1700000000000 + i, 1600000000000 + i)
         for i in range(n)))
    con.executemany(
        "INSERT INTO sessions(id, token_hash, org, user, created_ms,"
        " expires_ms) VALUES (?, ?, 'o1', ?, 1, 2)",
        ((i * 7 + 3, os.urandom(32), "u%06d" % i) for i in range(n)))
    con.commit()
    con.close()
    p = copy(s.db, uri)
    assert p.returncode == 0, p.stderr
    printed = printed_counts(p.stdout)
    assert printed["users"] == n and printed["sessions"] == n
    assert printed["total"] == 1 + 2 * n
    assert_same(cluster, dbname, s.db)


# ---------------------------------------------------------- bad input ----

@pytest.mark.parametrize("args", [
    ["db", "copy", "--to", "postgresql://u@127.0.0.1/x"],
    ["db", "copy", "--from", "x.db"],
    ["db", "copy", "--from", "x.db", "--to", "postgresql://u@h/x", "extra"],
    ["db", "--from", "x.db", "--to", "postgresql://u@h/x"],
    ["db", "move", "--from", "x.db", "--to", "postgresql://u@h/x"],
    ["db", "copy", "--from", "x.db", "--to", "postgresql://u@h/x",
     "--bogus", "1"],
])
def test_usage_errors(args):
    p = run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert "usage" in p.stderr or "unknown option" in p.stderr, p.stderr


def test_unknown_scheme_is_a_usage_error(source):
    s, _ = source
    p = copy(s.db, "mysql://root:Sekr1tPass@127.0.0.1/presenced")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "unknown database scheme" in p.stderr
    assert "Sekr1tPass" not in p.stdout + p.stderr


def test_sqlite_target_is_refused(source, tmp_path):
    s, _ = source
    dest = tmp_path / "other.db"
    p = copy(s.db, dest)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert len(errors(p)) == 1, p.stderr
    assert "PostgreSQL" in p.stderr and "postgresql://" in p.stderr
    assert not dest.exists()
    p = copy("postgresql://u@127.0.0.1/x", "postgresql://u@127.0.0.1/y")
    assert p.returncode == 2 and "SQLite" in p.stderr, p.stderr


def test_missing_source_file(cluster, tmp_path, target):
    dbname, uri = target
    missing = tmp_path / "nope.db"
    p = copy(missing, uri)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert errors(p) == ["presenced: %s: no such file" % missing]
    assert not missing.exists()
    assert cluster.password not in p.stdout + p.stderr


def _assert_one_line_no_secret(p, secret):
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert len(errors(p)) == 1, p.stderr
    assert secret not in p.stdout + p.stderr


def test_wrong_password(cluster, source, target):
    s, _ = source
    dbname, _ = target
    bad = "Wr0ngPassw0rdXYZ"
    p = copy(s.db, cluster.uri(dbname, password=bad))
    _assert_one_line_no_secret(p, bad)
    assert "password" in p.stderr or "authentication" in p.stderr, p.stderr


def test_unreachable_host(cluster, source):
    s, _ = source
    # A port nobody listens on (the kernel's choice, released).
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    uri = "postgresql://postgres:%s@127.0.0.1:%d/x?connect_timeout=5" % (
        cluster.password, port)
    p = copy(s.db, uri)
    _assert_one_line_no_secret(p, cluster.password)


def test_missing_database(cluster, source):
    s, _ = source
    p = copy(s.db, cluster.uri("no_such_db_" + uuid.uuid4().hex[:8]))
    _assert_one_line_no_secret(p, cluster.password)
    assert "no_such_db_" in p.stderr


def test_help_says_snapshot():
    p = run("db", "--help")
    assert p.returncode == 0
    assert "db copy --from" in p.stdout and "snapshot" in p.stdout
    assert "db copy" in run("--help").stdout


# ------------------------------------------------- serving the copy ----

def test_served_from_postgresql_old_password_and_cookie(cluster, source,
                                                        target, tmp_path):
    """After the copy a server on PostgreSQL knows the users by their old
    passwords and the sessions by their old cookies; a new login gets a new
    session id past the copied ones."""
    s, cookie = source
    dbname, uri = target
    assert copy(s.db, uri).returncode == 0
    top = pg_exec(cluster, dbname, "SELECT max(id) FROM sessions")[0][0]
    pg = Server(tmp_path)
    pg.db = uri
    pg.start()
    try:
        r = pg.http("GET", "/api/me", cookie=cookie)
        assert r.status_code == 200, r.text
        assert r.json()["user"] == "ann"
        me, _ = pg.login_ok("bob@o1.example", PASSWORD)
        assert me["user"]["user"] == "bob"
        assert pg.login("bob@o1.example", "not-the-password").status_code \
            == 401
        ids = [r[0] for r in pg_exec(cluster, dbname,
                                     "SELECT id FROM sessions ORDER BY id")]
        assert len(ids) == 4 and ids[-1] > top
        # bob's manual status came across.
        r = pg.http("GET", "/api/me", cookie=pg.login_ok(
            "bob@o1.example", PASSWORD)[1])
        assert r.json()["manual"] == "BUSY", r.text
    finally:
        pg.stop()
