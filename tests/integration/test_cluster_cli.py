"""`presenced cluster status` against a real redis-server of its own.

The keys are written by hand, as docs/cluster.md lays them out (hash
`presenced:<cluster>:nodes`, node id -> `last_beat_ms|connections|
started_ms|listen`, and `presenced:<cluster>:alive:<node>`), so that what
is checked is the command alone: the table and the JSON, alive and dead
nodes, two clusters in one Redis, the sources of its settings, and the
exit status of each failure, none of which may show the password."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from conftest import BIN, SANITIZER_MARKERS, free_port
from redisserver import RedisError, Resp

# Redis runs beside the server whatever the backend: the PostgreSQL pass
# would only repeat these.
pytestmark = pytest.mark.sqlite_only(
    "starts its own redis-server and uses no database; run once")

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HEAD = ["NODE", "STATE", "CONNECTIONS", "LAST_BEAT", "STARTED", "LISTEN"]
PASSWORD = "hunter2-p@ss/w:rd%"      # needs every escape of a URI
STARTED_MS = 1700000000123          # 2023-11-14T22:13:20Z
STARTED_ISO = "2023-11-14T22:13:20Z"


class RedisServer:
    """redis-server on a free loopback port and a Unix socket, nothing
    saved; killed by stop().  (Not tests/redisserver.py's, which has no
    Unix socket and whose uri takes no database or password; its Resp is
    the client.)"""

    def __init__(self, password=None):
        if not os.path.exists(REDIS_SERVER):
            pytest.fail("redis-server is not installed "
                        "(scripts/install-deps.sh --test)")
        # Short: a Unix socket path holds 107 bytes at most.
        self.dir = tempfile.mkdtemp(prefix="presenced-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.password = password
        for _ in range(5):      # another test may take the port first
            self.port = free_port()
            argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", self.dir,
                    "--unixsocket", self.sock, "--unixsocketperm", "700",
                    "--logfile", os.path.join(self.dir, "redis.log")]
            if password:
                argv += ["--requirepass", password]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            if self._ready():
                return
            self.proc.kill()
            self.proc.wait()
        self.stop()
        pytest.fail("redis-server did not start")

    def _ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with self.client() as c:
                    c.call("PING")
                return True
            except (OSError, RedisError):
                time.sleep(0.05)
        return False

    def client(self):
        return Resp(self.port, self.password)

    def uri(self, db=None, password=None):
        pw = self.password if password is None else password
        auth = ":%s@" % urllib.parse.quote(pw, safe="") if pw else ""
        return "redis://%s127.0.0.1:%d%s" % (auth, self.port,
                                             "" if db is None else "/%d" % db)

    def stop(self):
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis():
    s = RedisServer()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def redis_pw():
    s = RedisServer(password=PASSWORD)
    yield s
    s.stop()


@pytest.fixture
def r(redis):
    c = redis.client()
    yield c
    c.close()


_names = iter(range(1000000))


@pytest.fixture
def name(request):
    """A cluster name no other test of this Redis uses."""
    return "t%d-%s" % (next(_names), re.sub(r"[^A-Za-z0-9]", "", request.node.name)[:40])


def status(*args, env=None, timeout=30):
    """presenced cluster status ARGS, with no PRESENCED_* but those of env."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    e.update(env or {})
    argv = [BIN, "cluster", "status"] + [str(a) for a in args]
    p = subprocess.run(argv, env=e, capture_output=True, text=True,
                       timeout=timeout, cwd=tempfile.gettempdir())
    for m in SANITIZER_MARKERS:
        assert m not in p.stderr, "sanitizer report from %r:\n%s" % (argv, p.stderr)
    return p


def ok(p):
    assert p.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        p.returncode, p.stdout, p.stderr)
    return p.stdout


def one_line_error(p, code):
    assert p.returncode == code, "exit %d (want %d)\nstdout: %s\nstderr: %s" % (
        p.returncode, code, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err and len(err.splitlines()) == 1, "want one line, got %r" % p.stderr
    return err


def no_password(p, *secrets):
    for s in secrets:
        for form in {s, urllib.parse.quote(s, safe="")}:
            assert form not in p.stdout and form not in p.stderr, \
                "the password shows:\nstdout: %s\nstderr: %s" % (p.stdout, p.stderr)


def redis_ms(r):
    sec, usec = r.call("TIME")[:2]
    return int(sec) * 1000 + int(usec) // 1000


def add_node(r, cluster, node, beat_ms, conns, listen, alive_ms=None,
             started_ms=STARTED_MS):
    r.call("HSET", "presenced:%s:nodes" % cluster, node,
           "%d|%d|%d|%s" % (beat_ms, conns, started_ms, listen))
    if alive_ms is not None:
        key = "presenced:%s:alive:%s" % (cluster, node)
        if alive_ms > 0:
            r.call("SET", key, "1", "PX", alive_ms)
        else:
            r.call("SET", key, "1")          # no expiry: alive all the same


def table(out):
    """The rows of the table as lists of cells; checks the header and that
    every cell starts under its header."""
    lines = out.rstrip("\n").split("\n")
    head = lines[0]
    assert re.split(r"\s{2,}", head.strip()) == HEAD, head
    at = [head.index(h) for h in HEAD]
    rows = []
    for line in lines[1:]:
        for k in range(1, len(HEAD)):
            assert line[at[k] - 2:at[k]] == "  " and line[at[k]] != " ", \
                "column %s not aligned:\n%s" % (HEAD[k], out)
        rows.append(re.split(r"\s{2,}", line.strip()))
        assert len(rows[-1]) == len(HEAD), line
    return rows


def three_nodes(r, cluster):
    now = redis_ms(r)
    add_node(r, cluster, "web-2:8080", now - 400, 7, "10.0.0.2:8080", alive_ms=60000)
    add_node(r, cluster, "web-1:8080", now - 12300, 0, "10.0.0.1:8080")
    add_node(r, cluster, "api.3:9000", now - 1000, 1234, "[::1]:9000", alive_ms=0)
    return now


def test_table_alive_and_dead_sorted_by_id(redis, r, name):
    t0 = time.monotonic()
    three_nodes(r, name)
    rows = table(ok(status("--redis", redis.uri(), "--cluster", name)))
    slack = time.monotonic() - t0 + 0.1
    assert [row[0] for row in rows] == ["api.3:9000", "web-1:8080", "web-2:8080"]
    assert [row[1] for row in rows] == ["alive", "dead", "alive"]
    assert [row[2] for row in rows] == ["1234", "0", "7"]
    assert [row[4] for row in rows] == [STARTED_ISO] * 3
    assert [row[5] for row in rows] == ["[::1]:9000", "10.0.0.1:8080", "10.0.0.2:8080"]
    for row, ago in zip(rows, (1.0, 12.3, 0.4)):
        m = re.fullmatch(r"(\d+\.\d)s ago", row[3])
        assert m, row
        assert ago <= float(m.group(1)) <= ago + slack, (row, slack)


def test_a_node_whose_liveness_key_expires_is_dead(redis, r, name):
    add_node(r, name, "n1", redis_ms(r), 3, "h:1", alive_ms=300)
    assert table(ok(status("--redis", redis.uri(), "--cluster", name)))[0][1] == "alive"
    time.sleep(0.5)
    assert table(ok(status("--redis", redis.uri(), "--cluster", name)))[0][1] == "dead"


def test_json(redis, r, name):
    now = three_nodes(r, name)
    out = ok(status("--redis", redis.uri(), "--cluster", name, "--json"))
    assert len(out.strip().splitlines()) == 1, out
    doc = json.loads(out)
    assert doc == {"cluster": name, "nodes": [
        {"id": "api.3:9000", "state": "alive", "connections": 1234,
         "last_beat_ms": now - 1000, "started_ms": STARTED_MS, "listen": "[::1]:9000"},
        {"id": "web-1:8080", "state": "dead", "connections": 0,
         "last_beat_ms": now - 12300, "started_ms": STARTED_MS, "listen": "10.0.0.1:8080"},
        {"id": "web-2:8080", "state": "alive", "connections": 7,
         "last_beat_ms": now - 400, "started_ms": STARTED_MS, "listen": "10.0.0.2:8080"},
    ]}
    assert list(doc) == ["cluster", "nodes"]
    assert list(doc["nodes"][0]) == ["id", "state", "connections", "last_beat_ms",
                                     "started_ms", "listen"]


def test_a_value_not_of_the_documented_form_is_shown_unknown(redis, r, name):
    r.call("HSET", "presenced:%s:nodes" % name, "odd", "not|a|beat")
    rows = table(ok(status("--redis", redis.uri(), "--cluster", name)))
    assert rows == [["odd", "dead", "-", "-", "-", "-"]]
    doc = json.loads(ok(status("--redis", redis.uri(), "--cluster", name, "--json")))
    assert doc["nodes"] == [{"id": "odd", "state": "dead", "connections": None,
                             "last_beat_ms": None, "started_ms": None,
                             "listen": None}]


def test_two_clusters_in_one_redis_do_not_see_each_other(redis, r, name):
    a, b = name + "-a", name + "-a.b"
    now = redis_ms(r)
    add_node(r, a, "n1:8080", now - 100, 1, "10.1.0.1:8080", alive_ms=60000)
    add_node(r, a, "n2:8080", now - 100, 2, "10.1.0.2:8080", alive_ms=60000)
    # The same node id in the other cluster: dead there, with its own count.
    add_node(r, b, "n1:8080", now - 50000, 9, "10.2.0.1:8080")
    rows = table(ok(status("--redis", redis.uri(), "--cluster", a)))
    assert [(x[0], x[1], x[2]) for x in rows] == [("n1:8080", "alive", "1"),
                                                  ("n2:8080", "alive", "2")]
    rows = table(ok(status("--redis", redis.uri(), "--cluster", b)))
    assert [(x[0], x[1], x[2], x[5]) for x in rows] == [
        ("n1:8080", "dead", "9", "10.2.0.1:8080")]
    doc = json.loads(ok(status("--redis", redis.uri(), "--cluster", b, "--json")))
    assert doc["cluster"] == b and [n["id"] for n in doc["nodes"]] == ["n1:8080"]


def test_no_nodes(redis, name):
    p = status("--redis", redis.uri(), "--cluster", name)
    assert ok(p) == "no nodes in cluster %s\n" % name
    assert p.stderr == ""
    doc = json.loads(ok(status("--redis", redis.uri(), "--cluster", name, "--json")))
    assert doc == {"cluster": name, "nodes": []}


def test_default_cluster_name_is_presenced(redis, r):
    r.call("DEL", "presenced:presenced:nodes")
    add_node(r, "presenced", "default-node", redis_ms(r), 5, "h:8080", alive_ms=60000)
    try:
        rows = table(ok(status("--redis", redis.uri())))
        assert [x[0] for x in rows] == ["default-node"]
    finally:
        r.call("DEL", "presenced:presenced:nodes")


def test_settings_from_environment_file_and_flags(redis, r, name, tmp_path):
    add_node(r, name, "n1", redis_ms(r), 1, "h:1", alive_ms=60000)
    env = {"PRESENCED_REDIS": redis.uri(), "PRESENCED_CLUSTER": name}
    assert table(ok(status(env=env)))[0][0] == "n1"
    conf = tmp_path / "presenced.conf"
    conf.write_text("redis = %s\ncluster = %s\n" % (redis.uri(), name))
    assert table(ok(status("--config", conf)))[0][0] == "n1"
    assert table(ok(status(env={"PRESENCED_CONFIG": str(conf)})))[0][0] == "n1"
    # Flags over the environment over the file.
    dead = "redis://127.0.0.1:%d" % free_port()
    assert table(ok(status("--redis", redis.uri(), "--cluster", name,
                           env={"PRESENCED_REDIS": dead,
                                "PRESENCED_CLUSTER": "other"})))[0][0] == "n1"
    conf.write_text("redis = %s\ncluster = other\n" % dead)
    assert table(ok(status("--config", conf, env=env)))[0][0] == "n1"
    # A bad setting anywhere is a usage error.
    one_line_error(status(env={"PRESENCED_REDIS": "redis://h:0"}), 2)
    one_line_error(status(env={**env, "PRESENCED_CLUSTER": "a:b"}), 2)


def test_database_and_unix_socket(redis, r, name):
    r.call("SELECT", 3)
    try:
        add_node(r, name, "in-db-3", redis_ms(r), 1, "h:1", alive_ms=60000)
    finally:
        r.call("SELECT", 0)
    rows = table(ok(status("--redis", redis.uri(db=3), "--cluster", name)))
    assert [(x[0], x[1]) for x in rows] == [("in-db-3", "alive")]
    assert ok(status("--redis", redis.uri(db=0), "--cluster", name)) == \
        "no nodes in cluster %s\n" % name
    rows = table(ok(status("--redis", "unix://%s?db=3" % redis.sock, "--cluster", name)))
    assert [(x[0], x[1]) for x in rows] == [("in-db-3", "alive")]
    assert "no nodes" in ok(status("--redis", "unix://" + redis.sock, "--cluster", name))


def test_usage_errors_exit_2(redis):
    err = one_line_error(status(), 2)
    assert "redis" in err.lower()
    for args in (["--redis", "redis://:%s@127.0.0.1:0" % PASSWORD],
                 ["--redis", "mysql://:%s@127.0.0.1" % PASSWORD],
                 ["--redis", "redis://%s@127.0.0.1" % urllib.parse.quote(PASSWORD, safe="")],
                 ["--redis", "redis://127.0.0.1:%s" % urllib.parse.quote(PASSWORD, safe="")],
                 ["--redis", "unix://relative/redis.sock"],
                 ["--redis", redis.uri(), "--cluster", "a:b"],
                 ["--redis", redis.uri(), "--cluster", ""],
                 ["--redis", redis.uri(), "--bogus", "1"]):
        p = status(*args)
        one_line_error(p, 2)
        no_password(p, PASSWORD)
    for argv in (["cluster"], ["cluster", "frob"], ["cluster", "status", "extra"]):
        p = subprocess.run([BIN] + argv + ["--redis", redis.uri()], capture_output=True,
                           text=True, timeout=30)
        one_line_error(p, 2)


def test_unreachable_redis_exits_1(redis):
    port = free_port()
    err = one_line_error(status("--redis", "redis://:%s@127.0.0.1:%d" % (
        urllib.parse.quote(PASSWORD, safe=""), port)), 1)
    assert "redis://***@127.0.0.1:%d/0" % port in err, err
    assert PASSWORD not in err
    err = one_line_error(status("--redis", "unix://%s/none.sock" % redis.dir), 1)
    assert "none.sock" in err


def test_a_redis_that_never_answers_times_out(name):
    # Connections are accepted (the kernel's backlog) but never answered.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        t0 = time.monotonic()
        err = one_line_error(status("--redis", "redis://127.0.0.1:%d" % s.getsockname()[1],
                                    "--cluster", name), 1)
        took = time.monotonic() - t0
        assert 1.5 < took < 10, (took, err)
    finally:
        s.close()


def test_password_required(redis_pw, name):
    c = redis_pw.client()
    try:
        add_node(c, name, "n1", redis_ms(c), 4, "h:1", alive_ms=60000)
    finally:
        c.close()
    # The right password, percent-encoded in the URI; and as user default.
    rows = table(ok(status("--redis", redis_pw.uri(), "--cluster", name)))
    assert [(x[0], x[1], x[2]) for x in rows] == [("n1", "alive", "4")]
    uri = "redis://default:%s@127.0.0.1:%d/0" % (
        urllib.parse.quote(PASSWORD, safe=""), redis_pw.port)
    assert table(ok(status("--redis", uri, "--cluster", name)))[0][0] == "n1"
    # A wrong one, or none: exit 1, one line, no password in it.
    for wrong in ("wrong-" + PASSWORD, PASSWORD[:-1]):
        p = status("--redis", redis_pw.uri(password=wrong), "--cluster", name)
        err = one_line_error(p, 1)
        assert "***@127.0.0.1:%d" % redis_pw.port in err, err
        no_password(p, wrong, PASSWORD)
        p = status("--redis", "redis://nobody:%s@127.0.0.1:%d" % (
            urllib.parse.quote(wrong, safe=""), redis_pw.port), "--cluster", name)
        one_line_error(p, 1)
        no_password(p, wrong, PASSWORD)
    p = status("--redis", "redis://127.0.0.1:%d" % redis_pw.port, "--cluster", name)
    one_line_error(p, 1)
    no_password(p, PASSWORD)
    p = status(env={"PRESENCED_REDIS": redis_pw.uri(password="wrong-" + PASSWORD),
                    "PRESENCED_CLUSTER": name})
    one_line_error(p, 1)
    no_password(p, "wrong-" + PASSWORD, PASSWORD)
