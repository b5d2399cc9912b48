"""Starting `serve`: one server per address and per database, every start-up
failure exits 1 at once with its reason, and CLI commands find the running
server wherever it listens (IPv4 or IPv6) and never write behind it."""

import socket
import sqlite3
import subprocess

import pytest

from conftest import (BIN, SANITIZER_MARKERS, Server, free_port, missing_db,
                      new_db, now_ms, token_for)

# A failed start must end at once; this only bounds a hang (a loaded CI
# machine may take a few seconds to start the binary at all).
FAIL_WITHIN = 20


def serve_fails(srv, *args):
    """Runs `presenced serve ARGS` (the server's environment) and expects
    exit 1 with the reason as the last line; returns that line."""
    argv = [BIN, "serve"] + [str(a) for a in args]
    try:
        p = subprocess.run(argv, env=srv.env(), capture_output=True,
                           text=True, timeout=FAIL_WITHIN)
    except subprocess.TimeoutExpired as e:
        err = e.stderr or b""
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        pytest.fail("%s was still running after %d s:\n%s"
                    % (" ".join(argv[1:]), FAIL_WITHIN, err))
    for m in SANITIZER_MARKERS:
        assert m not in p.stderr, p.stderr
    assert p.returncode == 1, "%s exited %d:\n%s" % (" ".join(argv[1:]),
                                                    p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert lines and " ERROR " in lines[-1], \
        "no reason as the last line of stderr:\n%s" % p.stderr
    return lines[-1]


# ---- one server per address -----------------------------------------------

@pytest.mark.parametrize("loops", [1, 4])
def test_second_serve_on_the_same_address_is_refused(srv, tmp_path, loops):
    """With several loops the listeners share their address (SO_REUSEPORT):
    a second server must not join them and take half of the clients."""
    srv.start(args=["--loops", str(loops)])
    other = new_db(tmp_path, "other")
    line = serve_fails(srv, "--listen", "127.0.0.1:%d" % srv.port,
                       "--db", other, "--loops", loops)
    assert "127.0.0.1:%d" % srv.port in line and "in use" in line, line
    # Every connection still reaches the first server.
    for _ in range(8):
        assert srv.http("GET", "/healthz").status_code == 200
    assert srv.running


# ---- one server per database ----------------------------------------------

# A PostgreSQL database is shared by design (the nodes of a cluster, issue
# 12); the one-server lock is the SQLite file's. See README "Running in
# production".
ONE_SERVER_PER_FILE = pytest.mark.sqlite_only(
    "one server per SQLite file: a PostgreSQL database is shared by nodes")


@ONE_SERVER_PER_FILE
@pytest.mark.settings(restart_grace="60s", stale_after="10h", sweep="1h")
def test_second_serve_on_the_same_database_is_refused(srv):
    """A second server on the database would take over the registration
    cleanup-stale uses, and drop it when it stops."""
    srv.seed_users(("o1", "s1"), ("o1", "obs"))
    srv.sql("UPDATE users SET status=2, last_seen_ms=? WHERE id='s1'",
            (now_ms() - 2 * 3600_000,))
    srv.start()
    reg = srv.sql("SELECT pid, listen FROM server")
    assert reg == [{"pid": srv.proc.pid, "listen": "127.0.0.1:%d" % srv.port}]
    line = serve_fails(srv, "--listen", "127.0.0.1:%d" % free_port(),
                       "--db", srv.db)
    assert "already served" in line and str(srv.proc.pid) in line, line
    assert srv.sql("SELECT pid, listen FROM server") == reg
    # cleanup-stale still hands the sweep to the live server: announced.
    obs = srv.ws("o1", "obs")
    assert obs.view["s1"]["status"] == "ONLINE", obs.snapshot
    p = srv.cli_ok("cleanup-stale", "--older-than", "1s")
    assert p.stdout.strip() == "Reset 1 stale statuses to OFFLINE", p.stdout
    obs.expect_presence("s1", "OFFLINE", "stale")


def test_serve_starts_again_after_the_first_stops_or_dies(srv):
    """The lock goes with its process, however it ends."""
    srv.start()
    srv.kill9()
    srv.start()
    srv.stop()
    srv.start()
    assert srv.sql("SELECT pid FROM server") == [{"pid": srv.proc.pid}]


# ---- every start-up failure: exit 1 at once, the reason in one line ------

def corrupt_users_table(srv):
    """A database that opens but whose users cannot be read."""
    srv.seed_users(("o1", "u1"))
    con = sqlite3.connect(srv.db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = con.execute("SELECT rootpage FROM sqlite_master "
                       "WHERE name='users'").fetchone()[0]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    with open(srv.db, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xff" * size)


def not_a_database(srv):
    with open(srv.db, "wb") as f:
        f.write(b"this is not an SQLite database\n" * 200)


SQLITE_FILE = pytest.mark.sqlite_only("writes the SQLite file itself")

START_FAILURES = [
    # (id, args past --db, setup, words of the reason[, marks])
    ("bad address", ["--listen", "localhost:{port}"], None,
     ["bad listen address"]),
    ("address not on this host", ["--listen", "192.0.2.1:{port}"], None,
     ["cannot listen on 192.0.2.1", "not available"]),
    # A file in a directory that does not exist; on PostgreSQL a database
    # the cluster does not have.
    ("database missing", ["--db", "{missing_db}"],
     None, ["cannot open database"]),
    ("not a database", [], not_a_database, ["cannot open database"],
     SQLITE_FILE),
    ("users unreadable", [], corrupt_users_table, ["cannot load users"],
     SQLITE_FILE),
]


@pytest.mark.parametrize("loops", [1, 4])
@pytest.mark.parametrize("case", [pytest.param(c[:4], id=c[0], marks=c[4:])
                                  for c in START_FAILURES])
def test_start_failure_exits_1_at_once_with_the_reason(srv, case, loops):
    _, extra, setup, words = case
    if setup:
        setup(srv)
    fill = {"port": free_port(), "dir": srv.dir,
            "missing_db": missing_db(srv.dir)}
    args = ["--listen", "127.0.0.1:%d" % srv.port, "--db", srv.db,
            "--loops", loops] + [a.format(**fill) for a in extra]
    line = serve_fails(srv, *args)
    for w in words:
        assert w in line, line


def test_refused_start_leaves_the_running_server_alone(srv):
    """Both at once (same address, same database), with several loops:
    refused, and the first server goes on and stops cleanly."""
    srv.start(args=["--loops", "2"])
    c = srv.ws("o1", "u1")
    serve_fails(srv, "--listen", "127.0.0.1:%d" % srv.port, "--db", srv.db,
                "--loops", 2)
    c.ping()
    assert srv.http("GET", "/healthz").status_code == 200
    srv.stop()


# ---- cleanup-stale finds the running server --------------------------------

def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port6():
    return free_port("::1")


class V6Server(Server):
    """A Server listening on [::1] (started with start_v6())."""

    @property
    def base(self):
        return "http://[::1]:%d" % self.port

    origin = base

    def ws_url(self, path="/ws/presence/", token=None):
        u = "ws://[::1]:%d%s" % (self.port, path)
        if token:
            u += ("&" if "?" in path else "?") + "token=" + token
        return u

    def start_v6(self, args=()):
        # The later --listen wins over the harness's IPv4 one.
        return self.start(args=["--listen", "[::1]:%d" % self.port] +
                          list(args))


@pytest.fixture
def srv6(srv):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    srv.__class__ = V6Server    # the srv fixture still tears it down
    srv.port = free_port6()
    return srv


@pytest.mark.parametrize("loops", [1, 2])
@pytest.mark.settings(restart_grace="60s", stale_after="10h", sweep="1h")
def test_cleanup_stale_hands_the_sweep_to_a_server_on_ipv6(srv6, loops):
    srv = srv6
    srv.seed_users(("o1", "s1"), ("o1", "obs"))
    srv.sql("UPDATE users SET status=2, last_seen_ms=? WHERE id='s1'",
            (now_ms() - 2 * 3600_000,))
    srv.start_v6(args=["--loops", str(loops)])
    assert srv.sql("SELECT listen FROM server")[0]["listen"] == \
        "[::1]:%d" % srv.port
    obs = srv.ws("o1", "obs")
    assert obs.view["s1"]["status"] == "ONLINE", obs.snapshot
    p = srv.cli_ok("cleanup-stale", "--older-than", "1s")
    assert p.stdout.strip() == "Reset 1 stale statuses to OFFLINE", p.stdout
    # Announced: the server did the sweep, and its memory agrees.
    obs.expect_presence("s1", "OFFLINE", "stale")
    st = {m["user"]: m["status"]
          for m in srv.presence(token_for("o1", "obs"))["members"]}
    assert st["s1"] == "OFFLINE", st


@ONE_SERVER_PER_FILE
@pytest.mark.settings(restart_grace="60s", stale_after="10h", sweep="1h")
def test_cleanup_stale_never_writes_behind_a_live_server(srv):
    """A server that cannot be reached (here: its registration is gone)
    is still running: cleanup-stale refuses rather than change the
    database behind it."""
    srv.seed_users(("o1", "s1"))
    srv.sql("UPDATE users SET status=2, last_seen_ms=? WHERE id='s1'",
            (now_ms() - 2 * 3600_000,))
    srv.start()
    srv.sql("DELETE FROM server")
    p = srv.cli("cleanup-stale", "--older-than", "1s")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "nothing was changed" in err, err
    assert str(srv.proc.pid) in err, err
    assert srv.db_user("o1", "s1")["status"] == 2
    # Once it is gone, the database is the one to change.
    srv.stop()
    p = srv.cli_ok("cleanup-stale", "--older-than", "1s")
    assert p.stdout.strip() == "Reset 1 stale statuses to OFFLINE", p.stdout
