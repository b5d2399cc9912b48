"""Starting `serve`: every start-up failure exits 1 at once with its
reason."""

import sqlite3
import subprocess

import pytest

from conftest import BIN, SANITIZER_MARKERS, free_port

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


START_FAILURES = [
    # (id, args past --db, setup, words of the reason)
    ("bad address", ["--listen", "localhost:{port}"], None,
     ["bad listen address"]),
    ("address not on this host", ["--listen", "192.0.2.1:{port}"], None,
     ["cannot listen on 192.0.2.1", "not available"]),
    ("database directory missing", ["--db", "{dir}/missing/presenced.db"],
     None, ["cannot open database"]),
    ("not a database", [], not_a_database, ["cannot open database"]),
    ("users unreadable", [], corrupt_users_table, ["cannot load users"]),
]


@pytest.mark.parametrize("loops", [1, 4])
@pytest.mark.parametrize("case", START_FAILURES,
                         ids=[c[0] for c in START_FAILURES])
def test_start_failure_exits_1_at_once_with_the_reason(srv, case, loops):
    _, extra, setup, words = case
    if setup:
        setup(srv)
    fill = {"port": free_port(), "dir": srv.dir}
    args = ["--listen", "127.0.0.1:%d" % srv.port, "--db", srv.db,
            "--loops", loops] + [a.format(**fill) for a in extra]
    line = serve_fails(srv, *args)
    for w in words:
        assert w in line, line
