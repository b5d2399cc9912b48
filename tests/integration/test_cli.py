"""The command line: usage errors, settings sources, token, demo,
cleanup-stale without a server."""

import subprocess
import time

import pytest

from conftest import (BIN, JWT_SECRET, db_query, free_port, jwt_claims,
                      jwt_verify_hs256, new_db, now_ms)


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
    flag_db = new_db(tmp_path, "flag")
    srv.cli_ok("org", "add", "viaflag", "--db", flag_db, env=env, db=False)
    assert srv_orgs(flag_db) == ["viaflag"]

    env_db = new_db(tmp_path, "env")
    srv.cli_ok("org", "add", "viaenv", env=srv.env(extra={"PRESENCED_DB": env_db}), db=False)
    assert srv_orgs(env_db) == ["viaenv"]

    cfg_db = new_db(tmp_path, "cfg")
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
    rows = db_query(path, "SELECT * FROM organizations")
    ids = []
    for r in rows:
        for v in r.values():
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


# ------------------------------------------------ user add: exactly as given --

def user_add(srv, password, email="new@o1.example", name="New", env=None):
    """`user add` in o1 with password as raw bytes on stdin."""
    argv = [BIN, "user", "add", "--org", "o1", "--email", email,
            "--name", name, "--db", srv.db]
    p = subprocess.run(argv, input=password, capture_output=True,
                       env=env or srv.env(), timeout=30)
    out, err = p.stdout.decode(), p.stderr.decode(errors="replace")
    srv.cli_runs.append((argv, p.returncode, out, err))
    return p.returncode, out, err


def assert_refused(srv, rc, err, words, email="new@o1.example"):
    assert rc == 2, "exited %d (want 2): %s" % (rc, err)
    err = err.strip()
    assert len(err.splitlines()) == 1, "reason is not one line:\n%s" % err
    for w in words:
        assert w in err, err
    assert not srv.sql("SELECT id FROM users WHERE email=?", (email,))


BAD_PASSWORDS = [
    ("1024 bytes", b"a" * 1024 + b"\n", ["longer than 1023 bytes"]),
    ("far too long", b"a" * 100000, ["longer than 1023 bytes"]),
    ("NUL inside", b"pw-secret\x00-123\n", ["NUL"]),
    ("CR inside", b"pw-secret\r-123\n", ["carriage return"]),
    ("CRLF line end", b"pw-secret-123\r\n", ["carriage return"]),
    ("two lines", b"pw-secret-123\nmore\n", ["more than one line"]),
    ("two newlines", b"pw-secret-123\n\n", ["more than one line"]),
    ("nothing", b"", ["password is required"]),
    ("empty line", b"\n", ["password is required"]),
    ("7 characters", b"seven77\n", ["shorter than 8", "min_password"]),
    ("not UTF-8", b"pw-secret-\xff\xfe\n", ["UTF-8"]),
]


@pytest.mark.parametrize("case", BAD_PASSWORDS, ids=[c[0] for c in BAD_PASSWORDS])
def test_user_add_refuses_a_password_it_cannot_store_exactly(srv, case):
    _, pw, words = case
    srv.seed_users(("o1", "u1"))
    rc, _, err = user_add(srv, pw)
    assert_refused(srv, rc, err, words)


BAD_FIELDS = [
    ("", "New", ["email is empty"]),
    ("new.o1.example", "New", ["not an address"]),
    ("new@", "New", ["not an address"]),
    ("@o1.example", "New", ["not an address"]),
    ("new user@o1.example", "New", ["space"]),
    ("new@o1.example", "", ["name is empty"]),
    ("new@o1.example", "   ", ["name is empty"]),
    ("new@o1.example", "n" * 201, ["name is longer than 200 bytes"]),
]


@pytest.mark.parametrize("case", BAD_FIELDS,
                         ids=["%r %r" % (c[0], c[1][:8]) for c in BAD_FIELDS])
def test_user_add_refuses_empty_name_and_email_that_is_no_address(srv, case):
    email, name, words = case
    srv.seed_users(("o1", "u1"))
    rc, _, err = user_add(srv, b"pw-secret-123\n", email=email, name=name)
    assert_refused(srv, rc, err, words, email=email)


@pytest.mark.settings(login_limit="1000")
def test_user_add_stores_the_password_exactly_as_given(srv):
    """What the user types is what logs in: nothing cut, nothing trimmed."""
    srv.seed_users(("o1", "u1"))
    cases = {
        "max@o1.example": (b"a" * 1023, "a" * 1023),            # no newline
        "spaces@o1.example": (b"  spaced  pass  \n", "  spaced  pass  "),
        "utf8@o1.example": ("pässwörd-ü 🎉\n".encode(), "pässwörd-ü 🎉"),
        "tab@o1.example": (b"tab\there-123", "tab\there-123"),
    }
    for email, (raw, _) in cases.items():
        rc, out, err = user_add(srv, raw, email=email)
        assert rc == 0, (email, rc, err)
        assert out.strip(), "user add printed no id"
    srv.start()
    for email, (_, typed) in cases.items():
        assert srv.login(email, typed).status_code == 200, email
    assert srv.login("max@o1.example", "a" * 1022).status_code == 401
    assert srv.login("spaces@o1.example", "spaced  pass").status_code == 401


def test_min_password_setting(srv):
    srv.seed_users(("o1", "u1"))
    # Characters, not bytes: 8 two-byte characters are enough, 4 are not.
    rc, _, err = user_add(srv, "éééé\n".encode())
    assert_refused(srv, rc, err, ["shorter than 8"])
    rc, _, err = user_add(srv, "éééééééé\n".encode(), email="e@o1.example")
    assert rc == 0, err
    env = srv.env(extra={"PRESENCED_MIN_PASSWORD": "20"})
    rc, _, err = user_add(srv, b"pw-secret-123\n", env=env)
    assert_refused(srv, rc, err, ["shorter than 20"])
    env = srv.env(extra={"PRESENCED_MIN_PASSWORD": "4"})
    rc, _, err = user_add(srv, b"demo\n", env=env, email="d@o1.example")
    assert rc == 0, err
    p = srv.cli("org", "add", "x", env=srv.env(extra={"PRESENCED_MIN_PASSWORD": "0"}))
    assert p.returncode == 2 and "min_password" in p.stderr.lower(), p.stderr
    p = srv.cli("serve", "--help", db=False)
    assert "--min-password" in p.stdout, p.stdout


class Pty:
    """`user add` with its stdin on a pseudo-terminal; .text is everything
    the command wrote to that terminal."""

    def __init__(self, srv, email):
        import os
        self.os = os
        self.master, slave = os.openpty()
        argv = [BIN, "user", "add", "--org", "o1", "--email", email,
                "--name", "Tty", "--db", srv.db]
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=srv.env())
        os.close(slave)
        self.text = b""

    def read_until(self, word, timeout=15):
        import select
        deadline = time.monotonic() + timeout
        while word not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, "no %r on the terminal; got %r" % (word, self.text)
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = self.os.read(self.master, 1024)
                except OSError:       # the command closed the terminal
                    chunk = b""
                assert chunk, "terminal closed before %r; got %r" % (word, self.text)
                self.text += chunk

    def type(self, line):
        self.os.write(self.master, line)

    def finish(self):
        out, err = self.proc.communicate(timeout=30)
        self.os.close(self.master)
        return self.proc.returncode, out.decode(), err.decode()


def test_user_add_prompts_without_echo_at_a_terminal(srv):
    srv.seed_users(("o1", "u1"))
    t = Pty(srv, "tty@o1.example")
    t.read_until(b"Password for tty@o1.example: ")
    t.type(b"typed secret 42\n")
    t.read_until(b"Repeat the password: ")
    t.type(b"typed secret 42\n")
    rc, out, err = t.finish()
    assert rc == 0, (rc, out, err)
    assert out.strip(), "user add printed no id"
    assert b"typed secret" not in t.text, "the password was echoed: %r" % t.text
    srv.start()
    assert srv.login("tty@o1.example", "typed secret 42").status_code == 200


def test_user_add_at_a_terminal_refuses_two_different_passwords(srv):
    srv.seed_users(("o1", "u1"))
    t = Pty(srv, "tty@o1.example")
    t.read_until(b"Password for")
    t.type(b"typed secret 42\n")
    t.read_until(b"Repeat the password: ")
    t.type(b"typed secret 43\n")
    rc, _, err = t.finish()
    assert_refused(srv, rc, err, ["differ"], email="tty@o1.example")
    # And a password refused at once is not asked for twice.
    t = Pty(srv, "tty@o1.example")
    t.read_until(b"Password for")
    t.type(b"short\n")
    rc, _, err = t.finish()
    assert_refused(srv, rc, err, ["shorter than 8"], email="tty@o1.example")
    assert b"Repeat" not in t.text
