"""docs/examples/nginx-cluster.conf in front of a real presenced cluster:
three nodes on one Redis (tests/redisserver.py) and one PostgreSQL
database (tests/pgcluster.py), the example rendered with the test's ports
(as test_nginx.py renders nginx.conf) and run by the real nginx.

Through nginx: wss:// clients land on every node (each node's /healthz
counts them); a login answers a Secure cookie that opens a WebSocket on
whichever node; every client sees every status change, its own included,
exactly once and in seq order, the same frame for the same seq. Then one
node is killed (SIGKILL): nginx closes exactly the clients it held; those
that reconnect go through nginx to the survivors (nginx tries the dead node
first, least_conn, and goes on to the next) and get a snapshot that is the
organization as of its seq; the others see the dead node's users go
OFFLINE only if they did not come back.

Every wait comes from the nodes' settings (node_ttl 2 s, grace 1 s) plus a
generous SLACK, never from how fast the machine is.  Like test_cluster.py,
the module runs once, in the SQLite pass: it brings its own Redis and
PostgreSQL.
"""
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time

import pytest
import requests
import websockets

from clusterenv import ClusterEnv, Node, TClient
from conftest import (Drain, _check_bin, free_port, loop, token_for,
                      wait_until)

pytestmark = [
    pytest.mark.sqlite_only(
        "starts its own Redis and PostgreSQL; run once, in the SQLite pass"),
    # nginx has a self-signed certificate of the test's own.
    pytest.mark.filterwarnings(
        "ignore::urllib3.exceptions.InsecureRequestWarning"),
]

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "docs", "examples",
                       "nginx-cluster.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NODE_TTL = 2.0          # seconds
GRACE = 1.0
BEAT = 0.25             # docs/cluster.md: the reaper runs every 250 ms
SLACK = 10.0            # on top of any wait the settings give
CONNECT_TIMEOUT = 20.0  # one TLS + WebSocket handshake, on a loaded machine
PASSWORD = "pw-secret-123"
ORG = "ng"

# Over conftest's DEFAULT_SETTINGS.  The example says: trust nginx's
# forwarded headers.  A 5 s heartbeat: Python clients on one event loop,
# not the server, would be under test with 1 s (closed after 2.5 silent).
SETTINGS = {
    "trusted_proxies": "127.0.0.1",
    "grace": "%gs" % GRACE,
    "heartbeat": "5s",
    "login_grace": "2s",
    "restart_grace": "2s",
    "flush": "300ms",
}

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def render(example, listen, ports, cert, key):
    """The example with the test's addresses, as test_nginx.py does it;
    fails if the example no longer has what it replaces."""
    site = open(example).read()
    assert site.count("listen 443 ssl;") == 1, "listen line changed"
    site = site.replace("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % listen)
    for i, p in enumerate(ports):
        addr = "127.0.0.1:%d" % (8081 + i)
        assert site.count("server %s " % addr) == 1, \
            "no 'server %s' line in the upstream" % addr
        site = site.replace(addr, "127.0.0.1:%d" % p)
    up = re.search(r"^upstream presenced \{(.*?)^\}", site, re.M | re.S)
    assert up, "no upstream presenced block"
    servers = re.findall(r"^\s*server\s+([0-9.:]+)", up.group(1), re.M)
    assert servers == ["127.0.0.1:%d" % p for p in ports], servers
    for path, to in (("/etc/ssl/certs/presence.example.com.pem", cert),
                     ("/etc/ssl/private/presence.example.com.key", key)):
        assert path in site, path
        site = site.replace(path, str(to))
    return site


class Stack(ClusterEnv):
    """Redis, the database, three nodes and nginx; the clients opened
    through nginx and the node each one landed on."""

    def __init__(self, tmp, pg):
        ClusterEnv.__init__(self, tmp, pg)
        self.nginx = None
        self.nginx_dir = None
        self.port = None
        self.tracks = []
        self.live = set()
        self.counts = {}

    def start(self):
        redis = self.redis()
        db = self.db("n_")
        # The nodes of the example: one cluster, node_ttl NODE_TTL.
        settings = dict(SETTINGS, node_ttl="%gs" % NODE_TTL)
        self.nodes = [Node(self.tmp / n, n, redis, "nginx", db=db,
                           settings=settings)
                      for n in ("web-1", "web-2", "web-3")]
        # A password user for the login path, before any node starts
        # (the CLI creates the schema).
        self.nodes[0].add_org(ORG)
        self.nodes[0].add_user(ORG, "ann", name="Ann", email="ann@ng.example",
                               password=PASSWORD)
        for n in self.nodes:
            n.start()
        self.live = {0, 1, 2}
        for i, n in enumerate(self.nodes):
            wait_until(lambda: (n.healthz() or {}).get("cluster") ==
                       {"node": n.node_id, "state": "ok"}, SLACK,
                       what="%s /healthz cluster ok (%r)" % (n.node_id,
                                                            n.healthz()))
        self.counts = self.node_counts()
        assert self.counts == {0: 0, 1: 0, 2: 0}, self.counts
        self.start_nginx()

    def start_nginx(self):
        if not os.path.exists(NGINX):
            pytest.fail("nginx is not installed (scripts/install-deps.sh "
                        "--test)")
        d = self.tmp / "nginx"
        d.mkdir()
        cert, key = d / "cert.pem", d / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "1", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        self.port = free_port()
        site = render(EXAMPLE, self.port, [n.port for n in self.nodes],
                      cert, key)
        self.fail_timeout = float(re.search(r"fail_timeout=(\d+)s",
                                            site).group(1))
        conf = d / "nginx.conf"
        conf.write_text("""
daemon off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 256; }
http {
    access_log %(d)s/access.log;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    %(site)s
}
""" % {"d": d, "site": site})
        self.nginx_dir = d
        self.nginx = subprocess.Popen([NGINX, "-p", str(d), "-c", str(conf),
                                       "-g", "user root;"],
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)

        def up():
            try:
                return requests.get(self.https("/healthz"), verify=False,
                                    timeout=1).status_code == 200
            except requests.RequestException:
                return False
        try:
            wait_until(up, SLACK, what="nginx up")
        except AssertionError:
            self.nginx.kill()
            raise AssertionError(self.nginx.stderr.read().decode() +
                                 self.nginx_log())

    def nginx_log(self):
        if self.nginx_dir is None:
            return ""
        try:
            return (self.nginx_dir / "error.log").read_text()
        except OSError:
            return ""

    def https(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    @property
    def origin(self):
        return "https://127.0.0.1:%d" % self.port

    def finish(self, failed):
        if self.nginx is not None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(5)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for t in self.tracks:
            t.c.close()
        ClusterEnv.finish(self, failed,
                          [("nginx error.log", self.nginx_log()[-8000:])])

    # -- where the clients are ---------------------------------------------
    def node_counts(self):
        """WebSocket connections per live node (the sum of its /healthz
        loops), checking that each says it is in the cluster, ok."""
        out = {}
        for i in sorted(self.live):
            n = self.nodes[i]
            h = n.healthz()
            assert h is not None, "%s: no /healthz" % n.node_id
            assert h.get("cluster") == {"node": n.node_id, "state": "ok"}, h
            out[i] = sum(h["loops"])
        return out

    def place(self, t):
        """The node t's connection went to: the one whose count grew."""
        want = sum(self.counts.values()) + 1
        now = wait_until(lambda: (lambda c: c if sum(c.values()) == want
                                  else None)(self.node_counts()), SLACK,
                         what="%d connections over the nodes" % want)
        grew = [i for i in now if now[i] != self.counts.get(i, 0)]
        assert len(grew) == 1 and now[grew[0]] == self.counts[grew[0]] + 1, \
            (self.counts, now)
        self.counts = now
        t.ni = grew[0]
        return t.ni

    def open(self, label, token=None, cookie=None, origin=None):
        """A wss:// client through nginx, read by a Drain from the start,
        placed on its node once it has its snapshot."""
        path = "/ws/presence/" + ("?token=" + token if token else "")
        headers = {"Cookie": "presenced_session=" + cookie} if cookie else {}

        async def go():
            return await websockets.connect(
                "wss://127.0.0.1:%d%s" % (self.port, path), ssl=CTX,
                extra_headers=headers, origin=origin, compression=None,
                ping_interval=None, open_timeout=CONNECT_TIMEOUT,
                close_timeout=2, max_size=4 * 1024 * 1024)
        c = TClient(loop().run(go(), CONNECT_TIMEOUT + 1), label=label)
        c.drain = Drain(c)
        t = Track(c)
        self.tracks.append(t)
        wait_until(lambda: t.ready, CONNECT_TIMEOUT,
                   what="hello and snapshot on %s" % label)
        return t


@pytest.fixture
def stack(request, tmp_path, own_pg):
    _check_bin()
    s = Stack(tmp_path, own_pg)
    try:
        s.start()
        yield s
    finally:
        rep = getattr(request.node, "rep_call", None)
        s.finish(rep is None or rep.failed)


# ---------------------------------------------------------- clients ----

class Track:
    """One client's frames as docs/protocol.md has them: hello, snapshot,
    then presence events each one seq past the last."""

    def __init__(self, client):
        self.c = client
        self.ni = None
        self.pos = 0
        self.hello = None
        self.snapshots = []
        self.view = None
        self.last = None
        self.events = []
        self.seq_errors = []
        self.errors = []

    def update(self):
        log = self.c.log
        n = len(log)
        for m in log[self.pos:n]:
            self._one(m)
        self.pos = n
        return self

    def _one(self, m):
        t = m.get("type") if isinstance(m, dict) else None
        if t == "hello" and self.hello is None and not self.snapshots:
            self.hello = m
        elif t == "snapshot" and self.hello is not None:
            self.snapshots.append(m)
            self.view = {x["user"]: x["status"] for x in m["members"]}
            self.last = m["seq"]
        elif t == "presence" and self.view is not None:
            seq = m.get("seq")
            if seq <= self.snapshots[-1]["seq"] and \
                    self.last == self.snapshots[-1]["seq"]:
                return          # already in the snapshot
            if seq != self.last + 1:
                self.seq_errors.append((self.c.label, self.last, seq))
            self.last = seq
            self.view[m["user"]] = m["status"]
            self.events.append(m)
        elif t != "pong":
            self.errors.append((self.c.label, m))

    @property
    def ready(self):
        return self.update().view is not None

    def status(self, user):
        return (self.view or {}).get(user, "OFFLINE")

    def events_after(self, seq):
        return [e for e in self.update().events if e["seq"] > seq]

    @property
    def closed(self):
        return self.c.drain.closed


def state_at(ref, seq):
    """The organization as of seq, from a client that was there all along
    (its first snapshot, then its events up to seq)."""
    snap = ref.snapshots[0]
    assert snap["seq"] <= seq, (ref.c.label, snap["seq"], seq)
    st = {m["user"]: m["status"] for m in snap["members"]}
    for e in ref.update().events:
        if e["seq"] <= seq:
            st[e["user"]] = e["status"]
    return st


def check_tracks(tracks):
    """Seq order, no stray frame; and one frame per seq: every client that
    got seq N, on whichever node, got the same frame (docs/cluster.md: it
    is built once and sent unchanged)."""
    by_seq, bad = {}, []
    for t in tracks:
        t.update()
        assert not t.seq_errors, "seq errors (client, last, got): %s" % \
            t.seq_errors[:10]
        assert not t.errors, "unexpected frames: %s" % [
            (l, json.dumps(m)[:200]) for l, m in t.errors[:10]]
        assert len(t.snapshots) == 1, (t.c.label, "later snapshots",
                                       len(t.snapshots))
        for e in t.events:
            k = json.dumps({x: v for x, v in e.items() if x != "_rx"},
                           sort_keys=True)
            if by_seq.setdefault(e["seq"], k) != k:
                bad.append((t.c.label, e["seq"], k, by_seq[e["seq"]]))
    assert not bad, "two clients got different events for one seq: %s" % \
        bad[:10]


def frames(t, limit=30):
    out = []
    for m in t.c.log[:limit]:
        if not isinstance(m, dict):
            continue
        if m.get("type") == "snapshot":
            out.append(("snapshot", m["seq"],
                        {x["user"]: x["status"] for x in m["members"]}))
        else:
            out.append((m.get("type"), m.get("seq"), m.get("user"),
                        m.get("status"), m.get("reason")))
    return out


# ------------------------------------------------------------ test ----

def test_cluster_behind_nginx(stack):
    users = ["u%02d" % i for i in range(12)]
    tokens = {u: token_for(ORG, u, name="User " + u) for u in users}
    clients = {}
    for u in users:
        t = stack.open(u, token=tokens[u])
        assert t.hello["user"] == u and t.hello["org"] == ORG, t.hello
        stack.place(t)
        clients[u] = t
    where = {u: t.ni for u, t in clients.items()}
    assert set(where.values()) == {0, 1, 2}, \
        "least_conn put every client on %s" % where

    # The login path: a login through nginx (on some node) answers a
    # Secure cookie; that cookie opens a WebSocket on whichever node, and
    # is a session on every node.
    r = requests.post(stack.https("/api/login"), verify=False, timeout=30,
                      json={"email": "ann@ng.example", "password": PASSWORD},
                      headers={"Origin": stack.origin})
    assert r.status_code == 200, (r.status_code, r.text)
    assert "; Secure" in r.headers.get("Set-Cookie", ""), r.headers
    cookie = r.cookies.get("presenced_session")
    assert cookie, r.headers
    ann = []
    for i in range(3):
        t = stack.open("ann#%d" % i, cookie=cookie, origin=stack.origin)
        assert (t.hello["user"], t.hello["org"]) == ("ann", ORG), t.hello
        stack.place(t)
        ann.append(t)
    assert len({t.ni for t in ann}) >= 2, \
        "ann's cookie connections all on one node: %s" % [t.ni for t in ann]
    for n in stack.nodes:
        r = n.http("GET", "/api/me", cookie=cookie)
        assert r.status_code == 200 and r.json().get("user") == "ann", \
            (n.node_id, r.status_code, r.text)
    everyone = users + ["ann"]
    tracks = list(clients.values()) + ann
    wait_until(lambda: all(t.update().status(u) == "ONLINE"
                           for t in tracks for u in everyone), SLACK,
               what="everyone ONLINE on every client")
    # The login window closes (login_grace) behind ann's connections, and
    # no event is left in flight.
    time.sleep(2.0 + GRACE)
    s0 = clients[users[0]].update().last
    assert all(t.update().last == s0 for t in tracks), \
        [(t.c.label, t.last) for t in tracks]

    # Status changes in rounds: everyone sees each, exactly once.
    rounds = ["BUSY", "AWAY", "ONLINE"]
    for st in rounds:
        for u in users:
            clients[u].c.send_json({"type": "status", "status": st})
        wait_until(lambda: all(t.update().status(u) == st
                               for t in tracks for u in users), SLACK,
                   what="every client showing everyone %s" % st)
    time.sleep(GRACE)
    for t in tracks:
        got = {}
        for e in t.events_after(s0):
            got.setdefault(e["user"], []).append(e["status"])
        want = {u: rounds for u in users}
        assert got == want, "%s (on %s) saw %s" % (
            t.c.label, stack.nodes[t.ni].node_id,
            {u: v for u, v in got.items() if v != rounds})
    check_tracks(tracks)
    s1 = tracks[0].last
    assert s1 == s0 + len(rounds) * len(users), (s0, s1)
    assert all(t.last == s1 for t in tracks)

    # Kill the node with the most clients; some of its users come back
    # through nginx, the others do not.
    vi = max((0, 1, 2), key=lambda i: sum(1 for u in users if where[u] == i))
    victim = stack.nodes[vi]
    on_victim = [u for u in users if where[u] == vi]
    assert len(on_victim) >= 2, where
    returners = on_victim[:len(on_victim) // 2]
    leavers = on_victim[len(on_victim) // 2:]
    ann_victim = [t for t in ann if t.ni == vi]
    observers = [t for t in tracks if t.ni != vi]
    ref = observers[0]
    refused_before = stack.nginx_log().count("(111: Connection refused)")

    t_kill = time.monotonic()
    victim.kill9()
    stack.live.discard(vi)
    doomed = [clients[u] for u in on_victim] + ann_victim
    wait_until(lambda: all(t.closed for t in doomed), SLACK,
               what="nginx closing the clients of the killed %s"
               % victim.node_id)
    time.sleep(0.5)
    still = [t.c.label for t in observers if t.closed]
    assert not still, "clients of the survivors closed: %s" % still

    # Back through nginx, with the same token or cookie.
    stack.counts = {i: c for i, c in stack.counts.items() if i != vi}
    back = {}
    for u in returners:
        t = stack.open(u + "'", token=tokens[u])
        assert t.hello["user"] == u and t.hello["status"] == "ONLINE", \
            t.hello
        back[u] = t
        assert stack.place(t) != vi
    for i in range(len(ann_victim)):
        t = stack.open("ann'%d" % i, cookie=cookie, origin=stack.origin)
        assert t.hello["user"] == "ann" and t.hello["status"] == "ONLINE", \
            t.hello
        back["ann'%d" % i] = t
        assert stack.place(t) != vi
    t_back = time.monotonic() - t_kill
    refused = stack.nginx_log().count("(111: Connection refused)")
    assert refused > refused_before, \
        "nginx did not try the dead node first (least_conn), or logged " \
        "it otherwise:\n%s" % stack.nginx_log()[-3000:]

    # Each snapshot is the organization as of its seq.
    for label, t in back.items():
        snap = t.snapshots[0]
        want = state_at(ref, snap["seq"]) if snap["seq"] <= ref.last \
            else None
        if want is None:    # the reference is behind: wait for it
            wait_until(lambda: ref.update().last >= snap["seq"], SLACK,
                       what="the reference at seq %d" % snap["seq"])
            want = state_at(ref, snap["seq"])
        got = {m["user"]: m["status"] for m in snap["members"]}
        allu = set(got) | set(want)
        assert {u: got.get(u, "OFFLINE") for u in allu} == \
            {u: want.get(u, "OFFLINE") for u in allu}, \
            (label, snap["seq"], got, want)
        assert snap["seq"] >= s1, (label, snap["seq"], s1)

    # The leavers go OFFLINE (reason disconnect) on every client, after
    # node_ttl + grace; the returners never do -- if they were back well
    # within the window.  (On a machine so slow that they were not, a
    # returner may go OFFLINE and ONLINE again: that is right too.)
    window = NODE_TTL + GRACE - BEAT
    in_time = t_back < window - 1.0
    survivors = observers + list(back.values())
    wait_until(lambda: all(t.update().status(u) == "OFFLINE"
                           for t in survivors for u in leavers),
               NODE_TTL + GRACE + BEAT + SLACK,
               what="the leavers %s OFFLINE on every client" % leavers)
    time.sleep(GRACE + 1.0)     # anything else would have come by now
    first_off = None
    for t in survivors:
        got = {}
        for e in t.events_after(s1):
            got.setdefault(e["user"], []).append((e["status"],
                                                   e.get("reason")))
            if e["status"] == "OFFLINE" and e["user"] in leavers:
                first_off = min(first_off or e["_rx"], e["_rx"])
        want = {u: [("OFFLINE", "disconnect")] for u in leavers}
        if t in back.values():      # it may have the OFFLINEs in its snapshot
            snap = {m["user"]: m["status"] for m in t.snapshots[0]["members"]}
            want = {u: v for u, v in want.items()
                    if snap.get(u, "OFFLINE") != "OFFLINE"}
        if not in_time:
            got = {u: v for u, v in got.items()
                   if u in leavers or [x[0] for x in v] != ["OFFLINE",
                                                           "ONLINE"]}
        assert got == want, "%s (on %s) saw %s after the kill, not %s " \
            "(returners back %.2fs after the kill)\n%s" % (
                t.c.label, stack.nodes[t.ni].node_id, got, want, t_back,
                frames(t))
    assert first_off - t_kill >= GRACE - 0.05, \
        "an OFFLINE %.2fs after the kill, inside grace" % (first_off - t_kill)
    check_tracks(survivors)
    s2 = ref.last
    assert all(t.last == s2 for t in survivors), \
        [(t.c.label, t.last) for t in survivors]

    # The truth on every survivor, directly and through nginx, at that seq.
    truth = {u: "OFFLINE" if u in leavers else "ONLINE" for u in everyone}
    for t in survivors:
        assert {u: t.status(u) for u in everyone} == truth, \
            (t.c.label, t.view)
    hdr = {"Authorization": "Bearer " + tokens[users[0]]}
    answers = [requests.get(stack.https("/api/presence"), headers=hdr,
                            verify=False, timeout=30) for _ in range(4)]
    answers += [stack.nodes[i].http("GET", "/api/presence", headers=hdr,
                                    timeout=30) for i in sorted(stack.live)]
    for r in answers:
        assert r.status_code == 200, (r.status_code, r.text)
        body = r.json()
        got = {m["user"]: m["status"] for m in body["members"]}
        assert body["seq"] == s2 and \
            {u: got.get(u, "OFFLINE") for u in everyone} == truth, body
    t_last = time.monotonic()   # the last request through nginx
    assert stack.node_counts() == {
        i: sum(1 for t in survivors if t.ni == i) for i in stack.live}

    # A login after fail_timeout (nginx counts it in whole seconds), when
    # least_conn sends it to the dead node first again: nginx goes on to
    # a live one (nothing reached the dead node, so even a POST goes on).
    time.sleep(max(0.0, t_last + stack.fail_timeout + 1.5 - time.monotonic()))
    refused_before = stack.nginx_log().count("(111: Connection refused)")
    r = requests.post(stack.https("/api/login"), verify=False, timeout=30,
                      json={"email": "ann@ng.example", "password": PASSWORD},
                      headers={"Origin": stack.origin})
    assert r.status_code == 200, (r.status_code, r.text)
    assert stack.nginx_log().count("(111: Connection refused)") > \
        refused_before, stack.nginx_log()[-3000:]
    t = stack.open("ann-again", cookie=r.cookies.get("presenced_session"),
                   origin=stack.origin)
    assert t.hello["user"] == "ann" and stack.place(t) != vi
    print("\n[nginx cluster] clients per node %s; %s killed: %d closed, "
          "%d back after %.2fs, leavers OFFLINE after %.2fs"
          % ({stack.nodes[i].node_id: sum(1 for u in users if where[u] == i)
              for i in range(3)}, victim.node_id, len(doomed), len(back),
             t_back, first_off - t_kill))
