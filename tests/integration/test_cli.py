"""The command line: usage errors, settings sources, token, demo,
cleanup-stale without a server."""

import subprocess
import time

import pytest

from conftest import (BIN, JWT_SECRET, free_port, jwt_claims, jwt_verify_hs256,
                      now_ms)


def assert_usage_error(p, argv):
    assert p.returncode == 2, "%r exited %d (want 2)\nstdout: %s\nstderr: %s" % (
        argv, p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err, "%r: no reason on stderr" % (argv,)
    assert len(err.splitlines()) == 1, "%r: reason is not one line:\n%s" % (argv, err)


USAGE_ERRORS = [
    ("frobnicate",),
    ("org",),
    ("org", "add"),
    ("org", "add", "o1", "--bogus-flag", "x"),
    ("user", "add", "--org", "o1", "--name", "X"),
    ("user", "add", "--email", "x@example.com", "--name", "X"),
    ("channel", "add", "--name", "general"),
    ("project", "add", "--org", "o1"),
    ("token", "--org", "o1"),
    ("token", "--user", "u1"),
    ("token", "--org", "o1", "--user", "u1", "--ttl"),
    ("token", "--org", "o1", "--user", "u1", "--ttl", "soon"),
    ("cleanup-stale", "--older-than", "nope"),
    ("serve", "--grace", "banana"),
    ("serve", "--listen"),
    ("serve", "--no-such-setting", "1"),
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=[" ".join(a) for a in USAGE_ERRORS])
def test_usage_errors_exit_2_with_one_line(srv, argv):
    p = srv.cli(*argv, db=False, input="pw\n", timeout=10)
    assert_usage_error(p, argv)


def test_version(srv):
    p = srv.cli("--version", db=False)
    assert p.returncode == 0, p.stderr
    out = p.stdout.strip()
    assert out and len(out.splitlines()) == 1, repr(p.stdout)
    assert any(ch.isdigit() for ch in out), out


@pytest.mark.parametrize("arg", ["help", "--help"])
def test_help(srv, arg):
    p = srv.cli(arg, db=False)
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    for word in ("serve", "org", "user", "token", "cleanup-stale", "demo"):
        assert word in text, "%s missing from help:\n%s" % (word, text)


def run_serve(srv, secret, timeout=5):
    env = srv.env(extra={"PRESENCED_JWT_SECRET": secret})
    argv = [BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--db", srv.db]
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("presenced serve with jwt secret %r kept running" % (secret,))


@pytest.mark.parametrize("secret", ["short", "x" * 31, None])
def test_serve_refuses_short_or_missing_jwt_secret(srv, secret):
    p = run_serve(srv, secret)
    assert p.returncode != 0
    err = p.stderr.strip().lower()
    assert err, "no reason given"
    assert "secret" in err or "jwt" in err, p.stderr


def test_serve_accepts_32_byte_secret(srv):
    srv.extra_env["PRESENCED_JWT_SECRET"] = "y" * 32
    srv.start()
    assert srv.running


def test_token_command(srv):
    srv.seed_users(("o1", "u1", "Ann"))
    t0 = int(time.time())
    p = srv.cli_ok("token", "--org", "o1", "--user", "u1", "--ttl", "1h", "--name", "Ann")
    tok = p.stdout.strip()
    assert len(tok.split(".")) == 3, repr(p.stdout)
    assert jwt_verify_hs256(tok, JWT_SECRET), "token not signed with the jwt secret"
    c = jwt_claims(tok)
    assert (c["sub"], c["org"], c["name"]) == ("u1", "o1", "Ann"), c
    assert t0 + 3600 - 5 <= c["exp"] <= int(time.time()) + 3600 + 5, c
    p = srv.cli_ok("token", "--org", "o1", "--user", "u1", "--ttl", "90s")
    c = jwt_claims(p.stdout.strip())
    assert t0 + 85 <= c["exp"] <= int(time.time()) + 95, c


def test_channel_and_project_print_ids(srv):
    srv.seed_users(("o1", "u1"))
    a = srv.cli_ok("channel", "add", "--org", "o1", "--name", "one").stdout.strip()
    b = srv.cli_ok("channel", "add", "--org", "o1", "--name", "two", "--members", "u1").stdout.strip()
    c = srv.cli_ok("project", "add", "--org", "o1", "--name", "p").stdout.strip()
    assert len({a, b, c}) == 3 and all(x and "\n" not in x for x in (a, b, c))


def test_db_flag_and_env_and_config_file(srv, tmp_path):
    env = srv.env(extra={"PRESENCED_DB": None})
    flag_db = str(tmp_path / "flag.db")
    srv.cli_ok("org", "add", "viaflag", "--db", flag_db, env=env, db=False)
    assert srv_orgs(flag_db) == ["viaflag"]

    env_db = str(tmp_path / "env.db")
    srv.cli_ok("org", "add", "viaenv", env=srv.env(extra={"PRESENCED_DB": env_db}), db=False)
    assert srv_orgs(env_db) == ["viaenv"]

    cfg_db = str(tmp_path / "cfg.db")
    cfg = tmp_path / "presenced.conf"
    cfg.write_text("# test config\n\ndb = %s\n" % cfg_db)
    srv.cli_ok("org", "add", "viacfg", "--config", str(cfg), env=env, db=False)
    assert srv_orgs(cfg_db) == ["viacfg"]

    # The flag wins over the environment, the environment over the file.
    srv.cli_ok("org", "add", "flagwins", "--db", flag_db,
               env=srv.env(extra={"PRESENCED_DB": env_db}), db=False)
    assert "flagwins" in srv_orgs(flag_db) and "flagwins" not in srv_orgs(env_db)
    srv.cli_ok("org", "add", "envwins", "--config", str(cfg),
               env=srv.env(extra={"PRESENCED_DB": env_db}), db=False)
    assert "envwins" in srv_orgs(env_db) and "envwins" not in srv_orgs(cfg_db)


def srv_orgs(path):
    import sqlite3
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT * FROM organizations").fetchall()
    finally:
        con.close()
    ids = []
    for r in rows:
        for v in r:
            if isinstance(v, str) and v.startswith(("via", "flag", "env")):
                ids.append(v)
                break
    return sorted(ids)


def test_config_file_bad_line_is_an_error(srv, tmp_path):
    cfg = tmp_path / "bad.conf"
    cfg.write_text("grace = 1s\nthis is not a setting line\n")
    p = srv.cli("org", "add", "x", "--config", str(cfg), db=True)
    assert p.returncode != 0
    assert p.stderr.strip()


def test_demo_seeds_once_with_if_empty(srv):
    p = srv.cli_ok("demo", "--if-empty", timeout=60)
    assert p.stdout.strip() or p.stderr.strip(), "demo printed no sign-in help"
    users = srv.sql("SELECT * FROM users WHERE org='demo'")
    assert 6 <= len(users) <= 30, len(users)
    assert all(u["pw_hash"].startswith("$argon2id$") for u in users if u["pw_hash"])
    assert any(u["email"] for u in users)
    p = srv.cli_ok("demo", "--if-empty", timeout=60)
    assert len(srv.sql("SELECT * FROM users WHERE org='demo'")) == len(users)


@pytest.mark.settings(login_limit="1000")
def test_demo_users_can_sign_in(srv):
    p = srv.cli_ok("demo", "--if-empty", timeout=60)
    out = p.stdout + p.stderr
    users = srv.sql("SELECT * FROM users WHERE org='demo' AND email IS NOT NULL AND email != ''")
    assert users
    emails = [u["email"] for u in users if u["email"] in out]
    assert emails, "demo output names no demo email:\n%s" % out
    srv.start()
    # The password is whatever the output tells: try the word after
    # "password" first, then the other words of the output.
    words = out.replace(",", " ").replace(":", " ").replace("'", " ") \
        .replace('"', " ").replace("=", " ").split()
    first = [words[i + 1] for i, w in enumerate(words[:-1])
             if w.lower().startswith("password")]
    rest = [w for w in dict.fromkeys(words) if "@" not in w and len(w) >= 3]
    ok = False
    for w in (first + rest)[:80]:
        r = srv.login(emails[0], w)
        if r.status_code == 200:
            ok = True
            break
        if r.status_code == 429:
            break
    assert ok, "no word of the demo output signs %s in:\n%s" % (emails[0], out)


# ------------------------------------------------ cleanup-stale, offline --

def set_presence(srv, org, user, status, last_seen_ms, manual=None):
    srv.sql("UPDATE users SET status=?, last_seen_ms=?, manual=? WHERE org=? AND id=?",
            (status, last_seen_ms, manual, org, user))


def test_cleanup_stale_without_server(srv):
    srv.seed_users(("o1", "stale"), ("o1", "fresh"), ("o1", "off"), ("o1", "busy"))
    now = now_ms()
    set_presence(srv, "o1", "stale", 2, now - 2 * 3600_000)
    set_presence(srv, "o1", "fresh", 1, now - 60_000)
    set_presence(srv, "o1", "off", 0, now - 5 * 3600_000)
    set_presence(srv, "o1", "busy", 3, now - 3 * 3600_000, manual=3)
    p = srv.cli_ok("cleanup-stale", "--older-than", "30m")
    assert p.stdout.strip() == "Reset 2 stale statuses to OFFLINE", repr(p.stdout)
    st = {r["id"]: r for r in srv.sql("SELECT * FROM users WHERE org='o1'")}
    assert st["stale"]["status"] == 0
    assert st["busy"]["status"] == 0
    assert st["busy"]["manual"] == 3, "the stored manual status was lost"
    assert st["fresh"]["status"] == 1
    assert st["off"]["status"] == 0
    p = srv.cli_ok("cleanup-stale", "--older-than", "30m")
    assert p.stdout.strip() == "Reset 0 stale statuses to OFFLINE", repr(p.stdout)


def test_cleanup_stale_single_and_default_older_than(srv):
    srv.seed_users(("o1", "u1"), ("o1", "u2"))
    now = now_ms()
    set_presence(srv, "o1", "u1", 2, now - 31 * 60_000)     # past the default 30m
    set_presence(srv, "o1", "u2", 2, now - 29 * 60_000)
    p = srv.cli_ok("cleanup-stale", env=srv.env(settings=False))
    assert p.stdout.strip() == "Reset 1 stale statuses to OFFLINE", repr(p.stdout)
    assert srv.db_user("o1", "u1")["status"] == 0
    assert srv.db_user("o1", "u2")["status"] == 2
