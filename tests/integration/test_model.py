"""The stored model: what the CLI and the server keep in the database
(the SQLite file, or the PostgreSQL database: same tables and columns).

Tables organizations, users(org, id, email, name, pw_hash, status 0..3,
manual NULL|0..3, last_seen_ms), sessions(token_hash ...), channels,
channel_members, projects, project_members; no status history."""

import hashlib
import re
import time

from conftest import STATUS_CODES, now_ms, wait_until


def tables(srv):
    return srv.tables()


def rows_mentioning(srv, table, value):
    return [r for r in srv.sql("SELECT * FROM %s" % table)
            if value in [str(v) for v in r.values()]]


def db_bytes(srv):
    """The file with its WAL and journal; on PostgreSQL the database's
    files and the cluster's WAL."""
    return srv.stored_bytes()


def test_schema_tables_and_no_status_history(srv):
    srv.add_org("o1")
    t = tables(srv)
    for want in ("organizations", "users", "sessions", "channels",
                 "channel_members", "projects", "project_members"):
        assert want in t, "table %s missing; tables: %s" % (want, sorted(t))
    history = [n for n in t if re.search(r"hist|status_log|event|audit", n, re.I)]
    assert history == [], "a status-history table exists: %s" % history
    cols = srv.columns("users")
    for c in ("org", "id", "email", "name", "pw_hash", "status", "manual",
              "last_seen_ms"):
        assert c in cols, "users.%s missing; columns: %s" % (c, sorted(cols))
    assert "token_hash" in srv.columns("sessions")


def test_org_add_is_stored(srv):
    srv.add_org("acme", name="Acme Corp")
    rows = rows_mentioning(srv, "organizations", "acme")
    assert len(rows) == 1, srv.sql("SELECT * FROM organizations")
    assert "Acme Corp" in [str(v) for v in rows[0].values()]


def test_org_add_twice_fails(srv):
    srv.add_org("acme")
    p = srv.cli("org", "add", "acme")
    assert p.returncode != 0, "adding org acme twice succeeded"
    assert len(rows_mentioning(srv, "organizations", "acme")) == 1


def test_user_add_stores_argon2id_hash_offline_no_manual(srv):
    srv.add_org("o1")
    uid = srv.add_user("o1", "u1", name="Ann Smith", email="ann@o1.example",
                       password="correct horse battery")
    assert uid == "u1"
    u = srv.db_user("o1", "u1")
    assert u is not None, srv.sql("SELECT * FROM users")
    assert u["email"] == "ann@o1.example"
    assert u["name"] == "Ann Smith"
    assert u["pw_hash"].startswith("$argon2id$"), u["pw_hash"]
    assert u["status"] == STATUS_CODES["OFFLINE"]
    assert u["manual"] is None
    assert not u["last_seen_ms"], u["last_seen_ms"]
    assert b"correct horse battery" not in db_bytes(srv), \
        "the plaintext password is in the database file"


def test_user_add_generates_id_when_none_given(srv):
    srv.add_org("o1")
    p = srv.cli_ok("user", "add", "--org", "o1", "--email", "gen@o1.example",
                   "--name", "Gen", input="pw-secret-123\n")
    uid = p.stdout.strip()
    assert uid and " " not in uid and "\n" not in uid, repr(p.stdout)
    u = srv.db_user("o1", uid)
    assert u is not None and u["email"] == "gen@o1.example"


def test_user_add_same_email_twice_fails(srv):
    srv.add_org("o1")
    srv.add_org("o2")
    srv.add_user("o1", "u1", email="dup@example.com")
    p = srv.cli("user", "add", "--org", "o2", "--email", "DUP@example.com",
                "--name", "Other", "--id", "u2", input="pw-secret-123\n")
    assert p.returncode != 0, "a second user with the same email was created"
    assert srv.db_user("o2", "u2") is None


def test_user_add_unknown_org_fails(srv):
    p = srv.cli("user", "add", "--org", "nope", "--email", "x@example.com",
                "--name", "X", "--id", "x", input="pw-secret-123\n")
    assert p.returncode != 0
    assert p.stderr.strip()


def test_channel_and_project_with_members(srv):
    srv.seed_users(("o1", "u1"), ("o1", "u2"), ("o1", "u3"))
    cid = srv.cli_ok("channel", "add", "--org", "o1", "--name", "general",
                     "--members", "u1,u2").stdout.strip()
    pid = srv.cli_ok("project", "add", "--org", "o1", "--name", "Apollo",
                     "--members", "u1,u2,u3").stdout.strip()
    assert cid and pid and cid != pid
    ch = rows_mentioning(srv, "channels", cid)
    assert len(ch) == 1 and "general" in [str(v) for v in ch[0].values()], \
        srv.sql("SELECT * FROM channels")
    pr = rows_mentioning(srv, "projects", pid)
    assert len(pr) == 1 and "Apollo" in [str(v) for v in pr[0].values()], \
        srv.sql("SELECT * FROM projects")
    cm = rows_mentioning(srv, "channel_members", cid)
    assert sorted(v for r in cm for v in r.values() if v in ("u1", "u2", "u3")) \
        == ["u1", "u2"], srv.sql("SELECT * FROM channel_members")
    pm = rows_mentioning(srv, "project_members", pid)
    assert sorted(v for r in pm for v in r.values() if v in ("u1", "u2", "u3")) \
        == ["u1", "u2", "u3"], srv.sql("SELECT * FROM project_members")


def test_channel_with_member_of_other_org_is_refused(srv):
    srv.add_org("o1")
    srv.add_org("o2")
    srv.add_user("o1", "u1")
    srv.add_user("o2", "x1")
    p = srv.cli("channel", "add", "--org", "o1", "--name", "mixed",
                "--members", "u1,x1")
    assert p.returncode != 0, "a channel got a member of another organization"
    assert srv.sql("SELECT * FROM channels") == []
    assert srv.sql("SELECT * FROM channel_members") == []


def test_only_a_hash_of_the_session_token_is_stored(srv):
    srv.seed_users(("o1", "u1"))
    srv.start()
    body, cookie = srv.login_ok("u1@o1.example", "pw-secret-123")
    rows = wait_until(lambda: srv.sql("SELECT * FROM sessions"), 3,
                      what="a sessions row")
    assert len(rows) == 1, rows
    digest = hashlib.sha256(cookie.encode()).digest()
    stored = rows[0]["token_hash"]
    assert stored in (digest, digest.hex(), digest.hex().upper()), \
        "sessions.token_hash %r is not SHA-256(cookie)" % (stored,)
    raw = db_bytes(srv)
    assert cookie.encode() not in raw, "the session token itself is stored"
    # Nothing in any table holds the token or the issued JWT in clear.
    for t in tables(srv):
        for r in srv.sql("SELECT * FROM %s" % t):
            for v in r.values():
                assert not (isinstance(v, str) and (cookie in v or body["token"] in v)), \
                    "table %s stores the session token/JWT: %r" % (t, r)


def test_token_provisioned_user_and_org_are_stored(server):
    c = server.ws("neworg", "nu1", name="New One")
    c.close()
    u = wait_until(lambda: server.db_user("neworg", "nu1"), 3,
                   what="users row for neworg/nu1")
    assert u["name"] == "New One"
    assert rows_mentioning(server, "organizations", "neworg")


def test_periodic_flush_writes_last_seen_while_running(srv):
    srv.settings["flush"] = "300ms"
    srv.seed_users(("o1", "u1"))
    srv.start()
    before = now_ms()
    c = srv.ws("o1", "u1")
    u = wait_until(lambda: (lambda r: r if r and (r["last_seen_ms"] or 0) >= before - 1000
                            and r["status"] == STATUS_CODES["ONLINE"] else None)(
        srv.db_user("o1", "u1")), 4, what="flushed ONLINE + last_seen")
    assert u["last_seen_ms"] <= now_ms() + 1000
    c.set_manual("BUSY")
    c.expect_presence("u1", "BUSY", "manual")
    wait_until(lambda: srv.db_user("o1", "u1")["manual"] == STATUS_CODES["BUSY"], 4,
               what="manual BUSY flushed")
    c.set_manual("ONLINE")
    c.expect_presence("u1", "ONLINE", "manual")
    wait_until(lambda: srv.db_user("o1", "u1")["manual"] is None, 4,
               what="manual cleared (NULL) in the DB")


def test_sigterm_flushes_last_seen(srv):
    # With a one-hour flush interval only the shutdown flush can write it.
    srv.settings["flush"] = "1h"
    srv.seed_users(("o1", "u1"))
    srv.start()
    t0 = now_ms()
    c = srv.ws("o1", "u1")
    c.ping()
    c.close()
    time.sleep(0.2)
    srv.stop()
    u = srv.db_user("o1", "u1")
    assert u["last_seen_ms"] and u["last_seen_ms"] >= t0 - 1000, \
        "last_seen_ms not flushed on SIGTERM: %r" % u
    assert u["last_seen_ms"] <= now_ms() + 1000
