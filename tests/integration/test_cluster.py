"""The Redis cluster (docs/cluster.md, issue 12) through real processes:
several `presenced serve` nodes on one Redis (tests/redisserver.py) and one
PostgreSQL database (a throwaway cluster for the module, tests/
pgcluster.py), hundreds of WebSocket clients read all the time in the
background (conftest Drain), nodes killed and restarted, Redis stopped,
restarted empty and paused.

Every client's frames are checked against docs/protocol.md: after its
snapshot, presence events follow seq by exactly one (a later snapshot, as
after a resync, resets the client's view and seq); no event names a user of
another organization; the view it builds equals GET /api/presence on every
node and the truth the test computes from the changes it made.

Every wait comes from the server's settings (node_ttl, grace, the Redis
reconnect backoff of docs/cluster.md, at most 2 s) plus a generous SLACK,
never from how fast the machine is.  Like test_pg_faults.py, the module runs
once, in the SQLite pass: it brings its own Redis and PostgreSQL.
"""

import json
import random
import threading
import time
import uuid

import pytest

from clusterenv import NODE_TTL, ClusterEnv, Node, TClient, secs
from conftest import (DEFAULT_SETTINGS, Drain, WSClient, _check_bin,
                      free_port, token_for, wait_until)
from redisserver import Subscriber

pytestmark = pytest.mark.sqlite_only(
    "starts its own Redis and PostgreSQL; run once, in the SQLite pass")

PASSWORD = "pw-secret-123"
SLACK = 10.0            # seconds on top of any wait the settings give
RECONNECT = 2.0         # docs/cluster.md: Redis reconnect backoff caps at 2 s
CONNECT_TIMEOUT = 20.0  # one WebSocket handshake, on a loaded machine
RANK = {"OFFLINE": 0, "AWAY": 1, "ONLINE": 2}

# What every node of these tests runs with, over conftest's DEFAULT_SETTINGS.
# Hundreds of Python clients share one event loop here: a heartbeat of 1 s
# (closed after 2.5 silent) or the 1 MiB send queue would test the client's
# speed, not the cluster.
CLUSTER_SETTINGS = {
    "heartbeat": "5s",
    "max_out": "32m",
    "msg_rate": "100000",
    "max_conns_per_user": "1000",
}


# -------------------------------------------------------------- env ----

class Env(ClusterEnv):
    """A ClusterEnv whose nodes run CLUSTER_SETTINGS and the test's
    @pytest.mark.settings."""

    def __init__(self, request, tmp_path, pg):
        ClusterEnv.__init__(self, tmp_path, pg)
        self.request = request
        m = request.node.get_closest_marker("settings")
        self.settings = dict(CLUSTER_SETTINGS)
        if m:
            self.settings.update(m.kwargs)

    def s(self, key):
        """A setting of this test's nodes, in seconds."""
        if key == "node_ttl":
            return secs(self.settings.get("node_ttl", NODE_TTL))
        return secs(self.settings.get(key, DEFAULT_SETTINGS.get(key)))

    def node(self, node_id, redis, db=None, cluster="c1", settings=None,
             start=True, port=None):
        st = dict(self.settings)
        st.update(settings or {})
        n = Node(self.tmp / ("%s-%s-%d" % (cluster, node_id, len(self.nodes))),
                 node_id, redis, cluster, db=db, settings=st)
        if port is not None:
            n.port = port
        self.nodes.append(n)
        if start:
            n.start()
        return n


@pytest.fixture
def env(request, tmp_path, own_pg):
    _check_bin()
    e = Env(request, tmp_path, own_pg)
    yield e
    rep = getattr(request.node, "rep_call", None)
    e.finish(rep is not None and rep.failed)


# ---------------------------------------------------------- clients ----

class Track:
    """Follows one client's frames (its .log, filled by a Drain) the way a
    client of docs/protocol.md must: hello, snapshot, then presence events
    in seq order; a later snapshot replaces the view.  Records every
    departure from that.

    A node's first connection(s) to an organization it has not read yet
    get a first snapshot from what the node knows (the database), then
    at once a fresh one (docs/cluster.md, "What a client may see"): a
    second snapshot right behind the first, with no event between them,
    is counted as .read_snapshots, not as a resync."""

    def __init__(self, client, members=None):
        self.c = client
        self.members = members      # the org's user ids, if known
        self.pos = 0
        self.hello = None
        self.snapshots = []
        self.read_snapshots = 0
        self.view = None
        self.floor = None           # seq of the last snapshot
        self.last = None            # seq of the last frame applied
        self.events = []            # presence events applied
        self.seq_errors = []        # (last, seq, label)
        self.stale = 0              # events at or below the snapshot's seq
        self.foreign = []
        self.errors = []            # frames that have no place here

    def update(self):
        log = self.c.log
        n = len(log)
        for m in log[self.pos:n]:
            self._one(m)
        self.pos = n
        return self

    def _foreign(self, user, m):
        if self.members is not None and user not in self.members:
            self.foreign.append(m)

    def _one(self, m):
        if not isinstance(m, dict):
            self.errors.append(m)
            return
        t = m.get("type")
        if t == "hello":
            if self.hello is None and not self.snapshots:
                self.hello = m
            else:
                self.errors.append(m)
        elif t == "snapshot":
            if self.hello is None:
                self.errors.append(("snapshot before hello", m))
            if len(self.snapshots) == 1 and not self.events:
                self.read_snapshots += 1
            self.snapshots.append(m)
            self.view = {}
            for x in m.get("members", []):
                self._foreign(x.get("user"), x)
                self.view[x.get("user")] = {"status": x.get("status"),
                                            "last_seen": x.get("last_seen")}
            self.floor = self.last = m.get("seq")
        elif t == "presence":
            seq = m.get("seq")
            if self.view is None or not isinstance(seq, int):
                self.errors.append(m)
                return
            if seq <= self.floor:
                if self.last != self.floor:
                    self.seq_errors.append((self.last, seq, self.c.label))
                else:
                    self.stale += 1     # already in the snapshot
                return
            if seq != self.last + 1:
                self.seq_errors.append((self.last, seq, self.c.label))
            self.last = seq
            self._foreign(m.get("user"), m)
            self.view[m.get("user")] = {"status": m.get("status"),
                                        "last_seen": m.get("last_seen")}
            self.events.append(m)
        elif t == "pong":
            pass
        else:
            self.errors.append(m)

    @property
    def ready(self):
        return self.update().view is not None

    def status(self, user):
        return (self.view or {}).get(user, {}).get("status", "OFFLINE")

    def later_snapshots(self):
        """Snapshots after the first, the organization's first read by
        the node excepted: resyncs."""
        return max(len(self.snapshots) - 1 - self.read_snapshots, 0)

    def events_for(self, user, after=None):
        return [e for e in self.events if e.get("user") == user
                and (after is None or e["_rx"] > after)]


def frames_of(t, limit=40):
    """A client's frames in short, for failure messages: (seconds since
    its first frame, type, seq, user, status, reason)."""
    log = [m for m in t.c.log if isinstance(m, dict)]
    t0 = log[0]["_rx"] if log else 0
    out = []
    for m in log[:limit]:
        out.append((round(m["_rx"] - t0, 3), m.get("type"), m.get("seq"),
                    m.get("user"), m.get("status"), m.get("reason"))
                   if m.get("type") != "snapshot" else
                   (round(m["_rx"] - t0, 3), "snapshot", m.get("seq"),
                    {x["user"]: x["status"] for x in m.get("members", [])}))
    return out


def ws_path(auto=None):
    return "/ws/presence/" + ("?auto=%s" % auto if auto else "")


def open_client(node, token, label, auto=None, members=None, headers=None,
                origin=None):
    """A TClient on node, read by a Drain from the start; its Track."""
    url = node.ws_url(ws_path(auto), token)
    c = TClient.connect(url, label=label, read_initial=False,
                        timeout=CONNECT_TIMEOUT, headers=headers,
                        origin=origin)
    c.drain = Drain(c)
    c.node = node
    t = Track(c, members)
    c.track = t
    return t


def wait_clear(problems, timeout, what, interval=0.1):
    """Polls problems() until it returns nothing; fails after timeout
    showing what it returned last."""
    deadline = time.monotonic() + timeout
    while True:
        p = problems()
        if not p:
            return
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s; "
                                 "still: %r" % (timeout, what,
                                                p[:10] if isinstance(p, list)
                                                else p))
        time.sleep(interval)


def wait_ready(tracks, timeout=CONNECT_TIMEOUT):
    wait_clear(lambda: [t.c.label for t in tracks if not t.ready], timeout,
               "hello and snapshot on %d clients" % len(tracks),
               interval=0.05)


# ------------------------------------------------------------ model ----

class Person:
    def __init__(self, org, user, name=None):
        self.org = org
        self.user = user
        self.name = name or user
        self.token = token_for(org, user, name=self.name, ttl=6 * 3600)
        self.conns = []         # open Tracks (t.auto: that connection's auto)
        self.manual = None      # BUSY, AWAY, OFFLINE or None
        self.pending = None     # node index of an unconfirmed manual change

    def effective(self):
        if not self.conns:
            return "OFFLINE"
        if self.manual:
            return self.manual
        return max((t.auto for t in self.conns), key=RANK.get)


class World:
    """The people of some organizations, their connections over the nodes,
    and the truth: what every view must show once the windows (grace,
    login) are closed.

    Two manual changes of one person must reach Redis in the order they
    were made, or the truth is unknown: a manual change is confirmed
    (GET /api/me shows it on a node other than the one it was made on,
    which learned it through Redis) before the next manual change of that
    person, or before a new connection whose hello shows it."""

    def __init__(self, nodes, orgs):
        self.nodes = list(nodes)
        self.live = set(range(len(self.nodes)))
        self.people = {}
        self.orgs = {}
        for org, users in orgs.items():
            self.orgs[org] = list(users)
            for u in users:
                name = u[1] if isinstance(u, tuple) else None
                uid = u[0] if isinstance(u, tuple) else u
                self.people[(org, uid)] = Person(org, uid, name)
        self.members = {org: {p.user for p in self.people.values()
                              if p.org == org} for org in self.orgs}
        self.tracks = []        # every client ever opened
        self.closed_by_us = set()
        self.lock = threading.Lock()
        self.n_confirm = 0

    def person(self, org, user):
        return self.people[(org, user)]

    def org_people(self, org):
        return [p for p in self.people.values() if p.org == org]

    # -- connections -------------------------------------------------------
    def connect(self, p, ni, auto=None, wait=True):
        if p.pending is not None:
            self.confirm(p, also=ni)
        t = open_client(self.nodes[ni], p.token,
                        "%s/%s@%s#%d" % (p.org, p.user,
                                         self.nodes[ni].node_id,
                                         len(self.tracks)),
                        auto=auto, members=self.members[p.org])
        t.auto = auto or "ONLINE"
        t.person = p
        t.ni = ni
        t.want_manual = p.manual
        with self.lock:
            self.tracks.append(t)
            p.conns.append(t)
        if wait:
            wait_ready([t])
        return t

    def close(self, p, t):
        with self.lock:
            p.conns.remove(t)
            self.closed_by_us.add(id(t))
        t.c.close()

    def dropped(self, ni):
        """Node ni died: its connections are gone from the model."""
        self.live.discard(ni)
        with self.lock:
            for p in self.people.values():
                for t in [t for t in p.conns if t.ni == ni]:
                    p.conns.remove(t)
                    self.closed_by_us.add(id(t))

    # -- statuses ----------------------------------------------------------
    def set_auto(self, p, t, status):
        t.c.send_json({"type": "status", "status": status, "auto": True})
        t.auto = status

    def set_manual_ws(self, p, t, status):
        if p.pending is not None:
            self.confirm(p)
        t.c.send_json({"type": "status", "status": status})
        p.manual = None if status == "ONLINE" else status
        p.pending = t.ni

    def set_manual_put(self, p, ni, status):
        if p.pending is not None:
            self.confirm(p)
        r = self.nodes[ni].http("PUT", "/api/status", token=p.token,
                                json={"status": status}, timeout=30)
        assert r.status_code == 200, (self.nodes[ni].node_id, r.status_code,
                                      r.text)
        p.manual = None if status == "ONLINE" else status
        p.pending = ni

    def me(self, p, ni):
        r = self.nodes[ni].http("GET", "/api/me", token=p.token, timeout=30)
        assert r.status_code == 200, (self.nodes[ni].node_id, r.status_code,
                                      r.text)
        return r.json()

    def confirm(self, p, also=None, timeout=None):
        """Waits until p's last manual change is known through Redis: on a
        live node other than the one it was made on (and on node also)."""
        made = p.pending
        others = sorted(self.live - {made}) or [made]
        check = {others[self.n_confirm % len(others)]}
        if also is not None:
            check.add(also)
        self.n_confirm += 1
        for ni in check:
            wait_until(lambda: self.me(p, ni).get("manual") == p.manual,
                       timeout or SLACK * 2, interval=0.02,
                       what="%s/%s manual %s on %s (made on %s)" % (
                           p.org, p.user, p.manual,
                           self.nodes[ni].node_id, self.nodes[made].node_id))
        p.pending = None

    def confirm_all(self, timeout=None):
        for p in self.people.values():
            if p.pending is not None:
                self.confirm(p, timeout=timeout)

    # -- the truth and the views -------------------------------------------
    def truth(self, org):
        return {p.user: p.effective() for p in self.org_people(org)}

    def open_tracks(self):
        with self.lock:
            return [t for p in self.people.values() for t in p.conns]

    def mismatches(self, limit=8):
        truths = {org: self.truth(org) for org in self.orgs}
        out = []
        for t in self.open_tracks():
            t.update()
            if t.view is None:
                out.append((t.c.label, "no snapshot yet"))
                continue
            for u, want in truths[t.person.org].items():
                got = t.status(u)
                if got != want:
                    out.append((t.c.label, u, got, want))
                    if len(out) >= limit:
                        return out
                    break
        return out

    def converge(self, timeout, what="every view equal to the truth"):
        try:
            wait_clear(self.mismatches, timeout, "%s (mismatches: client, "
                       "user, shown, truth)" % what, interval=0.2)
        except AssertionError as e:
            who = set()
            for m in self.mismatches():
                t = [t for t in self.open_tracks() if t.c.label == m[0]]
                if len(m) == 4 and t:
                    who.add((t[0].person.org, m[1]))
            raise AssertionError("%s\n%s" % (e, self.describe(who)))

    def presence(self, ni, org):
        """GET /api/presence of org on node ni (as one of its members)."""
        p = self.org_people(org)[0]
        r = self.nodes[ni].http("GET", "/api/presence", token=p.token,
                                timeout=30)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def api_mismatches(self, nodes=None):
        out = []
        for ni in (sorted(self.live) if nodes is None else nodes):
            for org in self.orgs:
                truth = self.truth(org)
                body = self.presence(ni, org)
                got = {m["user"]: m["status"] for m in body["members"]}
                for u in set(got) - set(truth):
                    out.append((self.nodes[ni].node_id, org, u, "foreign",
                                got[u]))
                for u, want in truth.items():
                    if got.get(u, "OFFLINE") != want:
                        out.append((self.nodes[ni].node_id, org, u,
                                    got.get(u), want))
        return out

    def api_converge(self, timeout):
        try:
            wait_clear(self.api_mismatches, timeout, "GET /api/presence on "
                       "every node equal to the truth (node, org, user, "
                       "shown, truth)", interval=0.3)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.describe(
                {(m[1], m[2]) for m in self.api_mismatches()})))

    def describe(self, who, limit=5):
        """What the test knows of some (org, user): the model, each live
        node's member and /api/me, each client's view, Redis' record and
        contributions (docs/cluster.md keys), for failure messages."""
        out = []
        for org, u in sorted(who)[:limit]:
            p = self.people.get((org, u))
            if p is None:
                out.append("%s/%s: not a person of the test" % (org, u))
                continue
            out.append("%s/%s: truth %s, manual %s, connections %s" % (
                org, u, p.effective(), p.manual,
                [(t.c.label, t.auto) for t in p.conns]))
            for ni in sorted(self.live):
                try:
                    m = [x for x in self.presence(ni, org)["members"]
                         if x["user"] == u]
                    out.append("  %s member %s; /api/me %s" % (
                        self.nodes[ni].node_id, m, self.me(p, ni)))
                except Exception as e:
                    out.append("  %s: %r" % (self.nodes[ni].node_id, e))
            views = {}
            for t in self.open_tracks():
                if t.person.org == org:
                    views.setdefault(t.status(u), []).append(t.c.label)
            out.append("  client views: %s" % {k: v[:4] for k, v in
                                                views.items()})
            r = getattr(self, "redis", None)
            if r is not None:
                k = "presenced:%s:" % self.nodes[0].cluster
                try:
                    out.append("  redis u:%s %r; c: %r" % (
                        org, r.hgetall(k + "u:" + org).get(u),
                        r.hgetall(k + "c:" + org + "\0" + u)))
                except Exception as e:
                    out.append("  redis: %r" % e)
        return "\n".join(out)

    # -- the checks of every client ----------------------------------------
    def check_clients(self, later_snapshots_allowed):
        """Seq order, no foreign user, no stray frame, no server close on
        a client the test did not close; returns the number of later
        snapshots (resyncs) seen."""
        seq_errors, foreign, errors, closed, snaps = [], [], [], [], 0
        for t in self.tracks:
            t.update()
            seq_errors += t.seq_errors
            foreign += [(t.c.label, m.get("user")) for m in t.foreign]
            errors += [(t.c.label, m) for m in t.errors]
            snaps += t.later_snapshots()
            d = t.c.drain
            if d.error is not None:
                errors.append((t.c.label, "reader failed: %r" % d.error))
            if id(t) not in self.closed_by_us and d.closed is not None:
                closed.append((t.c.label, d.closed))
        assert not seq_errors, "%d seq errors (last, got, client): %s" % (
            len(seq_errors), seq_errors[:20])
        assert not foreign, "users of another org: %s" % foreign[:20]
        assert not errors, "unexpected frames: %s" % [
            (l, json.dumps(m)[:300] if isinstance(m, dict) else repr(m)[:300])
            for l, m in errors[:10]]
        assert not closed, "closed by the server: %s" % closed[:20]
        if not later_snapshots_allowed:
            assert snaps == 0, "%d snapshots after the first (resyncs) in a " \
                "steady cluster: %s" % (snaps, [
                    (t.c.label, frames_of(t)) for t in self.tracks
                    if t.later_snapshots()][:6])
        return snaps

    def check_hellos(self):
        bad = []
        for t in self.tracks:
            t.update()
            if t.hello is None:
                bad.append((t.c.label, "no hello"))
                continue
            if t.hello.get("user") != t.person.user or \
                    t.hello.get("org") != t.person.org:
                bad.append((t.c.label, t.hello))
            elif t.hello.get("manual") != t.want_manual:
                bad.append((t.c.label, "manual", t.hello.get("manual"),
                            t.want_manual))
        assert not bad, "hello frames: %s" % bad[:10]

    def check_api_everywhere(self):
        """After convergence: every live node's /api/presence of each org
        equals the truth, the nodes agree on its seq and on everyone's
        last_seen (but the caller's own), every open client of the org is
        at that seq, and no node shows a last_seen below what its own
        clients were told (it may be above: a manual change while offline
        moves last_seen without an event)."""
        for org in self.orgs:
            seqs = {}
            for ni in sorted(self.live):
                body = self.presence(ni, org)
                assert body.get("org") == org, body.get("org")
                seqs[self.nodes[ni].node_id] = body.get("seq")
                got = {m["user"]: m for m in body["members"]}
                truth = self.truth(org)
                assert set(got) <= set(truth), set(got) - set(truth)
                bad = [(u, got.get(u, {}).get("status"), s)
                       for u, s in truth.items()
                       if got.get(u, {}).get("status", "OFFLINE") != s]
                assert not bad, "%s /api/presence %s (user, shown, truth): " \
                    "%s" % (self.nodes[ni].node_id, org, bad[:10])
                for t in self.open_tracks():
                    if t.person.org != org or t.ni != ni:
                        continue
                    for u, v in t.view.items():
                        a = got.get(u, {}).get("last_seen")
                        if v["last_seen"] is not None and a is not None:
                            assert a >= v["last_seen"], (
                                "%s: %s last_seen %s on the API, %s in the "
                                "client's view" % (t.c.label, u, a,
                                                   v["last_seen"]))
            assert len(set(seqs.values())) == 1, \
                "nodes disagree on the seq of %s: %s" % (org, seqs)

            seq = list(seqs.values())[0]
            behind = [(t.c.label, t.last) for t in self.open_tracks()
                      if t.person.org == org and t.last != seq]
            assert not behind, "clients not at %s seq %s: %s" % (
                org, seq, behind[:10])

    def check_last_seen_agree(self):
        """Every live node's /api/presence shows everyone (the caller's own
        entry aside) with the same last_seen: that of the user's record in
        Redis as of its last change (docs/cluster.md)."""
        apart = []
        for org in self.orgs:
            caller = self.org_people(org)[0].user
            seen = {}
            for ni in sorted(self.live):
                for m in self.presence(ni, org)["members"]:
                    if m["user"] != caller:
                        seen.setdefault(m["user"], {})[
                            self.nodes[ni].node_id] = m.get("last_seen")
            apart += [(org, u, v) for u, v in sorted(seen.items())
                      if len(set(v.values())) > 1]
        assert not apart, "nodes disagree on last_seen (org, user, " \
            "{node: last_seen}): %s" % apart[:10]

    def quiet(self, duration):
        """No frame reaches any open client for duration seconds."""
        tracks = self.open_tracks()
        marks = [len(t.c.log) for t in tracks]
        time.sleep(duration)
        late = [(t.c.label, json.dumps(t.c.log[m])[:200])
                for t, m in zip(tracks, marks) if len(t.c.log) > m]
        assert not late, "frames after the views settled: %s" % late[:10]


def seed_password_users(node, people):
    """Password users (email id@org.example) for logins, via the CLI on
    the shared database."""
    orgs = []
    for p in people:
        if p.org not in orgs:
            node.add_org(p.org)
            orgs.append(p.org)
        node.add_user(p.org, p.user, name=p.name)


def email(p):
    return "%s@%s.example" % (p.user, p.org)


class Logins(threading.Thread):
    """Logs the given people in and out on random nodes, concurrently with
    the test thread: a login opens a login window, a logout closes it;
    neither changes what the views show once the windows are closed, since
    these users' WebSocket connections use plain JWTs."""

    def __init__(self, world, people, rounds, rnd, nodes=None):
        threading.Thread.__init__(self, daemon=True, name="logins")
        self.world = world
        self.people = people
        self.rounds = rounds
        self.rnd = rnd
        self.nodes = nodes
        self.results = []       # (what, node, status)
        self.error = None

    def run(self):
        try:
            for i in range(self.rounds):
                p = self.people[i % len(self.people)]
                live = sorted(self.nodes or self.world.live)
                a, b = self.rnd.choice(live), self.rnd.choice(live)
                na, nb = self.world.nodes[a], self.world.nodes[b]
                r = na.http("POST", "/api/login", json={
                    "email": email(p), "password": PASSWORD}, timeout=60)
                t = time.monotonic()
                self.results.append(("login", na.node_id, r.status_code))
                cookie = r.cookies.get("presenced_session")
                if r.status_code != 200 or not cookie:
                    continue
                r = nb.http("POST", "/api/logout", cookie=cookie,
                            headers={"X-Requested-With": "fetch"}, timeout=60)
                self.results.append((
                    "logout", nb.node_id, r.status_code,
                    "login on %s, %.1f ms before" % (
                        na.node_id, (time.monotonic() - t) * 1000)))
        except Exception as e:
            self.error = e

    def check(self):
        self.join(120)
        assert not self.is_alive(), "logins still running"
        assert self.error is None, "login thread: %r" % self.error
        bad = [x for x in self.results if x[2] != 200]
        assert not bad, "logins/logouts not answered 200: %s" % bad[:10]
        assert len(self.results) == 2 * self.rounds, self.results


def churn_step(world, rnd, people, nodes, statuses_manual, statuses_auto,
               block=True):
    """One random change to one of people; returns its kind."""
    p = rnd.choice(people)
    live = sorted(nodes)
    if not p.conns:
        world.connect(p, rnd.choice(live), wait=False)
        return "connect"
    t = rnd.choice(p.conns)
    if not block and p.pending is not None:
        world.set_auto(p, t, rnd.choice(statuses_auto))
        return "auto"
    x = rnd.random()
    if x < 0.45:
        world.set_auto(p, t, rnd.choice(statuses_auto))
        return "auto"
    if x < 0.70:
        world.set_manual_ws(p, t, rnd.choice(statuses_manual))
        return "ws_manual"
    world.set_manual_put(p, rnd.choice(live), rnd.choice(statuses_manual))
    return "put_manual"


# ============================================================ tests ====

# --------------------------------------- a. three nodes, one presence ----

@pytest.mark.settings(grace="1s", login_grace="2s", flush="500ms")
def test_three_nodes_one_presence(env):
    t_test = time.monotonic()
    redis = env.redis()
    db = env.db()
    orgs = {"o%d" % i: ["o%d-u%03d" % (i, j) for j in range(100)]
            for i in (1, 2, 3)}
    names = ["n1", "n2", "n3"]
    # Two password users per organization, for logins, made before any
    # node starts (the CLI creates the schema).
    seeder = env.node("seed", redis, db=db, start=False)
    world = World([], orgs)
    world.redis = redis
    pw_people = [world.person(o, orgs[o][j]) for o in orgs for j in (0, 1)]
    seed_password_users(seeder, pw_people)
    nodes = [env.node(n, redis, db=db) for n in names]
    world.nodes = nodes
    world.live = {0, 1, 2}
    for n in nodes:
        n.wait_state("ok", RECONNECT + SLACK)
    grace, login_grace = env.s("grace"), env.s("login_grace")
    settle = grace + login_grace + env.s("node_ttl") + SLACK * 2

    # 300 clients, one connection each, round-robin over the nodes.
    people = list(world.people.values())
    for i, p in enumerate(people):
        world.connect(p, i % 3, wait=False)
    wait_ready(world.tracks, CONNECT_TIMEOUT * 3)
    world.converge(settle, "all 300 ONLINE everywhere")
    t_ready = time.monotonic()

    # 3,000 random changes, and logins/logouts alongside: a thread per
    # organization (their people are apart, so each person's changes are
    # still made one after the other).
    logins = Logins(world, pw_people, 24, random.Random(5))
    logins.start()
    kinds = {}
    errors = []
    manual_st = ["BUSY", "AWAY", "OFFLINE", "ONLINE"]
    auto_st = ["ONLINE", "AWAY", "OFFLINE"]

    def changes(org, n, seed):
        rnd = random.Random(seed)
        ps = world.org_people(org)
        try:
            for i in range(n):
                p = rnd.choice(ps)
                x = rnd.random()
                if not p.conns:
                    k = "connect"
                    world.connect(p, rnd.randrange(3),
                                  auto=rnd.choice([None, None, None, "AWAY",
                                                   "OFFLINE"]), wait=False)
                elif x < 0.30:
                    k = "auto"
                    world.set_auto(p, p.conns[0], rnd.choice(auto_st))
                elif x < 0.52:
                    k = "ws_manual"
                    world.set_manual_ws(p, p.conns[0], rnd.choice(manual_st))
                elif x < 0.67:
                    k = "put_manual"
                    world.set_manual_put(p, rnd.randrange(3),
                                         rnd.choice(manual_st))
                elif x < 0.82:
                    k = "reconnect"
                    world.close(p, p.conns[0])
                    world.connect(p, rnd.randrange(3),
                                  auto=rnd.choice([None, None, None, "AWAY"]),
                                  wait=False)
                elif x < 0.86:
                    k = "disconnect"
                    world.close(p, p.conns[0])
                else:
                    k = "put_manual"     # someone who may have no connection
                    world.set_manual_put(rnd.choice(ps), rnd.randrange(3),
                                         rnd.choice(manual_st))
                with world.lock:
                    kinds[k] = kinds.get(k, 0) + 1
        except Exception as e:      # reported by the test thread
            errors.append((org, i, e))

    threads = [threading.Thread(target=changes, args=(org, 1000, 100 + n),
                                daemon=True)
               for n, org in enumerate(sorted(orgs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    assert not any(th.is_alive() for th in threads), "changes still running"
    assert not errors, "changes failed: %r" % errors
    t_ops = time.monotonic()
    logins.join(120)
    world.confirm_all()
    wait_ready(world.open_tracks(), CONNECT_TIMEOUT * 3)

    # Quiet: every view, and every node's /api/presence, shows the truth.
    world.converge(settle)
    world.api_converge(SLACK)
    world.quiet(grace + 0.5)
    world.check_clients(later_snapshots_allowed=False)
    world.check_hellos()
    world.check_api_everywhere()
    n_events = sum(len(t.events) for t in world.tracks)
    truth = {o: world.truth(o) for o in orgs}
    summary = {s: sum(1 for o in truth for v in truth[o].values() if v == s)
               for s in ("ONLINE", "AWAY", "BUSY", "OFFLINE")}
    reads = sum(t.read_snapshots for t in world.tracks)
    print("\n[a] %d clients opened, changes %s, %d logins, %d events "
          "received (%d second snapshots of a node's first read of an org); "
          "truth %s; connect %.1fs, changes %.1fs, settle %.1fs"
          % (len(world.tracks), kinds, logins.rounds, n_events, reads,
             summary, t_ready - t_test, t_ops - t_ready,
             time.monotonic() - t_ops))
    world.check_last_seen_agree()
    logins.check()


# ---------------------------------------- b. kill -9 a node under load ----

@pytest.mark.settings(grace="1s", login_grace="2s", flush="500ms")
def test_kill9_node_under_load(env):
    rnd = random.Random(21)
    redis = env.redis()
    db = env.db()
    orgs = {"k%d" % i: ["k%d-u%02d" % (i, j) for j in range(30)]
            for i in (1, 2, 3)}
    nodes = [env.node(n, redis, db=db) for n in ("n1", "n2", "n3")]
    for n in nodes:
        n.wait_state("ok", RECONNECT + SLACK)
    world = World(nodes, orgs)
    world.redis = redis
    node_ttl, grace = env.s("node_ttl"), env.s("grace")
    settle = node_ttl + grace + env.s("login_grace") + SLACK * 2
    people = list(world.people.values())
    for i, p in enumerate(people):
        world.connect(p, i % 3, wait=False)
    # A second connection for 4 users of each org: two on the doomed n3
    # with a second one on n1, two elsewhere with a second one on n3.
    dual = []
    for org in orgs:
        ps = world.org_people(org)
        on3 = [p for p in ps if p.conns[0].ni == 2][:2]
        off3 = [p for p in ps if p.conns[0].ni != 2][:2]
        for p in on3:
            world.connect(p, 0, wait=False)
        for p in off3:
            world.connect(p, 2, wait=False)
        dual += on3 + off3
    wait_ready(world.tracks, CONNECT_TIMEOUT * 2)
    world.converge(settle, "all ONLINE everywhere")
    doomed = [p for p in people if all(t.ni == 2 for t in p.conns)]
    keep = [p for p in people if p not in doomed]
    churners = [p for p in keep if p not in dual]

    # Churn on the users of the live nodes (never an OFFLINE status: any
    # OFFLINE for a user with a live connection is then a false one).
    stop = threading.Event()
    counter = [0]
    errors = []

    def churn():
        try:
            while not stop.is_set() and counter[0] < 2000:
                churn_step(world, rnd, churners, {0, 1},
                           ["BUSY", "AWAY", "ONLINE"], ["ONLINE", "AWAY"])
                counter[0] += 1
                time.sleep(0.005)
        except Exception as e:
            errors.append(e)

    world.live = {0, 1}     # the churn asks only the nodes that stay up
    th = threading.Thread(target=churn, daemon=True)
    th.start()
    wait_until(lambda: counter[0] >= 150 or errors, 60, what="churn going")
    victims = nodes[2]
    observers = [t for t in world.open_tracks() if t.ni != 2]
    t_kill = time.monotonic()
    victims.kill9()
    world.dropped(2)

    deadline = node_ttl + grace + SLACK

    def not_offline():
        missing = []
        for t in observers:
            t.update()
            for p in doomed:
                if p.org == t.person.org and t.status(p.user) != "OFFLINE":
                    missing.append((t.c.label, p.user))
        return missing

    try:
        wait_clear(not_offline, deadline, "OFFLINE on the survivors' clients "
                   "for the users of the killed node (client, user)",
                   interval=0.05)
    finally:
        stop.set()
        th.join(60)
    assert not errors, "churn: %r" % errors
    offs = [(t.c.label, e) for t in observers
            for p in doomed if p.org == t.person.org
            for e in t.events_for(p.user, after=t_kill)
            if e["status"] == "OFFLINE"]
    assert offs, "the OFFLINE came in no event (a snapshot?)"
    lat = [e["_rx"] - t_kill for _, e in offs]
    print("\n[b] kill -9 of n3: %d users went OFFLINE on %d observers; "
          "first after %.2fs, last after %.2fs (node_ttl %.1fs + grace "
          "%.1fs); %d churn changes"
          % (len(doomed), len(observers), min(lat), max(lat), node_ttl,
             grace, counter[0]))
    assert min(lat) >= grace - 0.05, \
        "an OFFLINE %.2fs after the kill, inside grace" % min(lat)
    reasons = {e.get("reason") for _, e in offs}

    # Never an OFFLINE for anyone with a live connection, whatever node.
    false_off = [(t.c.label, e["user"], e.get("reason"))
                 for t in world.tracks for e in t.events
                 if e["status"] == "OFFLINE"
                 and world.person(t.person.org, e["user"]) in keep]
    assert not false_off, "OFFLINE for users with a live connection: %s" \
        % false_off[:10]
    world.confirm_all()
    world.converge(settle)
    world.api_converge(SLACK)
    world.quiet(grace + 0.5)
    world.check_clients(later_snapshots_allowed=False)
    world.check_api_everywhere()
    assert reasons == {"disconnect"}, \
        "reasons of the reaper's OFFLINE events: %s (docs/cluster.md: " \
        "disconnect)" % reasons

    # presenced cluster status: n1 and n2 alive with their connections.
    p = nodes[0].cli("cluster", "status", "--redis", redis.uri, "--cluster",
                     "c1", "--json", db=False)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    st = json.loads(p.stdout)
    assert st.get("cluster") == "c1", st
    by_id = {n["id"]: n for n in st["nodes"]}
    for ni in (0, 1):
        want = len([t for t in world.open_tracks() if t.ni == ni])
        n = by_id.get(nodes[ni].node_id)
        assert n and n.get("state") == "alive", st
        assert n.get("connections") == want, (n, want)
    assert by_id.get("n3", {}).get("state", "dead") == "dead", st
    world.check_last_seen_agree()


# ---------------------------------------- c. Redis restarted empty ----

@pytest.mark.settings(grace="1s", flush="300ms")
def test_redis_restart_empty(env):
    redis = env.redis()
    db = env.db()
    orgs = {"r1": ["r1-u%02d" % j for j in range(12)],
            "r2": ["r2-u%02d" % j for j in range(6)]}
    nodes = [env.node(n, redis, db=db) for n in ("n1", "n2", "n3")]
    for n in nodes:
        n.wait_state("ok", RECONNECT + SLACK)
    world = World(nodes, orgs)
    world.redis = redis
    grace = env.s("grace")
    settle = grace + env.s("node_ttl") + env.s("login_grace") + SLACK * 2
    for i, p in enumerate(world.people.values()):
        world.connect(p, i % 3, wait=False)
    wait_ready(world.tracks)
    # Manual statuses before the outage, over both routes.
    r1 = world.org_people("r1")
    world.set_manual_ws(r1[0], r1[0].conns[0], "BUSY")
    world.set_manual_ws(r1[1], r1[1].conns[0], "OFFLINE")
    world.set_manual_put(r1[2], 1, "AWAY")
    world.set_auto(r1[3], r1[3].conns[0], "AWAY")
    world.set_manual_put(world.org_people("r2")[0], 2, "BUSY")
    world.confirm_all()
    world.converge(settle, "the statuses before the outage")

    t_stop = time.monotonic()
    redis.stop()
    for n in nodes:
        n.wait_state("degraded", SLACK)
    # Each node keeps serving its own clients: a change by a client of
    # node n reaches the other clients of n (same organization).
    for ni in range(3):
        mine = [p for p in r1 if p.conns[0].ni == ni]
        actor, watchers = mine[-1], [q.conns[0] for q in mine[:-1]]
        mark = time.monotonic()
        world.set_manual_ws(actor, actor.conns[0], "BUSY")
        for w in watchers:
            wait_until(lambda: any(e["status"] == "BUSY" for e in
                                   w.update().events_for(actor.user, mark)),
                       SLACK, what="%s sees %s BUSY during the outage"
                       % (w.c.label, actor.user))
    # A user of n1 leaves during the outage: n1's other clients see it
    # go OFFLINE after grace.
    leaver = [p for p in r1 if p.conns[0].ni == 0][1]
    lt = leaver.conns[0]
    mark = time.monotonic()
    world.close(leaver, lt)
    w = [p.conns[0] for p in r1 if p.conns and p.conns[0].ni == 0][0]
    wait_until(lambda: any(e["status"] == "OFFLINE" for e in
                           w.update().events_for(leaver.user, mark)),
               grace + SLACK, what="%s sees %s OFFLINE during the outage"
               % (w.c.label, leaver.user))
    left = 10.0 - (time.monotonic() - t_stop)
    if left > 0:
        time.sleep(left)
    for n in nodes:
        assert n.cluster_state() == "degraded", (n.node_id, n.healthz())
    marks = {id(t): len(t.c.log) for t in world.open_tracks()}

    t_back = time.monotonic()
    redis.start()                    # same port, empty
    for n in nodes:
        n.wait_state("ok", RECONNECT + SLACK)
    t_ok = time.monotonic() - t_back

    # Every client gets a fresh snapshot after Redis returned.
    def fresh(t):
        return any(isinstance(m, dict) and m.get("type") == "snapshot"
                   for m in t.c.log[marks[id(t)]:])
    wait_until(lambda: all(fresh(t) for t in world.open_tracks()),
               RECONNECT + SLACK, what="a fresh snapshot on every client")
    world.confirm_all()
    world.converge(settle, "views after Redis came back empty")
    world.api_converge(SLACK)
    world.check_clients(later_snapshots_allowed=True)
    world.check_api_everywhere()
    # The manual statuses live on in the repopulated Redis: a new
    # connection elsewhere says so in its hello.
    for p, ni in ((r1[0], 2), (r1[1], 0), (r1[2], 0)):
        t = world.connect(p, ni)
        assert (t.hello.get("manual"), t.hello.get("status")) == \
            (p.manual, p.effective()), (p.user, t.hello)
    keys = redis.keys("*")
    assert keys and all(k.startswith("presenced:c1:") for k in keys), keys
    print("\n[c] Redis down 10s: every node ok %.2fs after it returned"
          % t_ok)
    world.check_last_seen_agree()


# ----------------------------------------------- d. Redis paused ----

PAUSE = 5.0


@pytest.mark.settings(grace="1s", flush="300ms")
@pytest.mark.parametrize("node_ttl", ["2s", "8s"])
def test_redis_paused(env, node_ttl):
    """SIGSTOP for 5 s.  node_ttl 2s: past node_ttl + grace, the nodes
    find Redis down, and may reap each other, then resync (snapshots,
    transient OFFLINEs allowed); node_ttl 8s: shorter than node_ttl, the
    pause only delays events (docs/cluster.md "Redis pauses"): no resync,
    no OFFLINE for anyone still connected."""
    env.settings["node_ttl"] = node_ttl
    short = PAUSE < secs(node_ttl)
    rnd = random.Random(4)
    redis = env.redis()
    db = env.db()
    orgs = {"p1": ["p1-u%02d" % j for j in range(12)]}
    nodes = [env.node(n, redis, db=db) for n in ("n1", "n2", "n3")]
    for n in nodes:
        n.wait_state("ok", RECONNECT + SLACK)
    world = World(nodes, orgs)
    world.redis = redis
    grace, node_ttl = env.s("grace"), env.s("node_ttl")
    settle = grace + node_ttl + env.s("restart_grace") + SLACK * 3
    people = list(world.people.values())
    for i, p in enumerate(people):
        world.connect(p, i % 3, wait=False)
    wait_ready(world.tracks)
    world.converge(settle, "all ONLINE")
    manual_st = ["BUSY", "AWAY", "OFFLINE", "ONLINE"]
    auto_st = ["ONLINE", "AWAY", "OFFLINE"]
    for _ in range(20):
        churn_step(world, rnd, people, {0, 1, 2}, manual_st, auto_st)
    redis.pause()
    t_pause = time.monotonic()
    try:
        kinds = {}
        while time.monotonic() - t_pause < PAUSE:
            k = churn_step(world, rnd, people, {0, 1, 2}, manual_st,
                           auto_st, block=False)
            kinds[k] = kinds.get(k, 0) + 1
            time.sleep(0.1)
        # Two leave and one of them comes back elsewhere, while Redis is
        # stopped.
        for p in people[:2]:
            world.close(p, p.conns[0])
        world.connect(people[1], 2, wait=False)
        left = PAUSE - (time.monotonic() - t_pause)
        if left > 0:
            time.sleep(left)
    finally:
        redis.resume()
    t_resume = time.monotonic()
    world.confirm_all(timeout=settle)
    wait_ready(world.open_tracks(), CONNECT_TIMEOUT + SLACK)
    world.converge(settle, "views after the pause")
    world.api_converge(SLACK)
    world.quiet(grace + 0.5)
    snaps = world.check_clients(later_snapshots_allowed=not short)
    world.check_api_everywhere()
    # OFFLINE for someone who kept a connection, that no change asked for
    # (an auto or manual OFFLINE is reason idle or manual).
    flaps = [(t.c.label, e["user"], e.get("reason"),
              round(e["_rx"] - t_resume, 2)) for t in world.tracks
             for e in t.events
             if e["status"] == "OFFLINE" and e["_rx"] > t_pause
             and e.get("reason") not in ("manual", "idle")
             and world.person("p1", e["user"]) not in people[:2]]
    print("\n[d] Redis paused %.0fs, node_ttl %.0fs, under churn %s: %d "
          "resync snapshots, %d OFFLINE flaps%s"
          % (PAUSE, node_ttl, kinds, snaps, len(flaps),
             "" if short else " (allowed past node_ttl + grace)"))
    if short:
        assert not flaps, "OFFLINE for users who kept their connection " \
            "(client, user, reason, seconds after SIGCONT): %s" % flaps[:10]
    world.check_last_seen_agree()


# ---------------------------- e. a node restarted with the same id ----

@pytest.mark.settings(grace="2s", node_ttl="5s", restart_grace="6s",
                      flush="300ms")
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_node_restart_same_id_no_flap(env, how):
    redis = env.redis()
    db = env.db()
    orgs = {"e1": ["v1", "v2", "v3", "gone", "w1", "w2", "w3"]}
    n1 = env.node("n1", redis, db=db)
    n2 = env.node("n2", redis, db=db)
    for n in (n1, n2):
        n.wait_state("ok", RECONNECT + SLACK)
    world = World([n1, n2], orgs)
    world.redis = redis
    node_ttl, grace, rgrace = (env.s("node_ttl"), env.s("grace"),
                               env.s("restart_grace"))
    settle = node_ttl + grace + rgrace + SLACK * 2
    victims = [world.person("e1", u) for u in ("v1", "v2", "v3")]
    gone = world.person("e1", "gone")
    watchers = [world.person("e1", u) for u in ("w1", "w2", "w3")]
    for p in victims + [gone]:
        world.connect(p, 0, wait=False)
    for p in watchers:
        world.connect(p, 1, wait=False)
    wait_ready(world.tracks)
    world.converge(settle, "all ONLINE")
    obs = [p.conns[0] for p in watchers]

    window = node_ttl + grace
    t_down = time.monotonic()
    if how == "sigterm":
        n1.stop(timeout=10)
    else:
        n1.kill9()
    world.dropped(0)
    n1.start()
    t_started = time.monotonic()
    world.live.add(0)
    n1.wait_state("ok", RECONNECT + SLACK)
    for p in victims:
        world.connect(p, 0, wait=False)
    wait_ready(world.open_tracks())
    t_back = time.monotonic() - t_down
    assert t_back < window, \
        "the restart and reconnect took %.1fs, past node_ttl + grace " \
        "(%.1fs): raise node_ttl for this machine" % (t_back, window)
    # Past every window that could drop the victims: the dead node's
    # liveness, grace, and the restore window of the restarted node.
    until = max(t_down + window + 0.25, t_started + rgrace) + 1.5
    time.sleep(max(until - time.monotonic(), 0))
    world.converge(settle, "the victims ONLINE, gone OFFLINE")
    flaps = [(t.c.label, e["user"], e["status"], e.get("reason"))
             for t in obs for e in t.update().events
             if e["user"] in ("v1", "v2", "v3") and e["_rx"] > t_down]
    assert not flaps, "observers on n2 saw the reconnected users change " \
        "(%s; back %.1fs after the stop): %s" % (how, t_back, flaps)
    g = [e for e in obs[0].events_for("gone", t_down)]
    assert [e["status"] for e in g] == ["OFFLINE"], g
    world.api_converge(SLACK)
    world.check_clients(later_snapshots_allowed=False)
    world.check_api_everywhere()
    print("\n[e] %s: back %.2fs after the stop (window %.1fs); gone OFFLINE "
          "after %.2fs (%s)" % (how, t_back, window, g[0]["_rx"] - t_down,
                                g[0].get("reason")))
    world.check_last_seen_agree()


# --------------------------------------------- f. tabs on two nodes ----

@pytest.mark.settings(grace="1s", flush="300ms")
def test_tabs_on_two_nodes(env):
    redis = env.redis()
    db = env.db()
    a, b, c = [env.node(n, redis, db=db) for n in ("a", "b", "c")]
    for n in (a, b, c):
        n.wait_state("ok", RECONNECT + SLACK)
    world = World([a, b, c], {"t1": ["ann", "obs_a", "obs_b", "obs_c"]})
    world.redis = redis
    grace = env.s("grace")
    ann = world.person("t1", "ann")
    oa = world.connect(world.person("t1", "obs_a"), 0)
    ob = world.connect(world.person("t1", "obs_b"), 1)
    oc = world.connect(world.person("t1", "obs_c"), 2)
    obs = [oa, ob, oc]
    world.converge(SLACK)

    def seen(t, status, after):
        return [e for e in t.update().events_for("ann", after)
                if e["status"] == status]

    def wait_all(status, after, timeout):
        wait_until(lambda: all(seen(t, status, after) for t in obs), timeout,
                   what="ann %s on every observer" % status)

    # "Nothing happened", known rather than waited for: a node's
    # contribution to ann in Redis (docs/cluster.md: K c:<org>\0<user>,
    # node -> auto|nconns|last_seen) changes in the same script that
    # publishes the event it causes, if any, and every client gets t1's
    # events in seq order.  So once Redis shows the change, an event of
    # obs_a made after that reaches each observer behind any event of ann.
    ckey = "presenced:%s:c:t1\0ann" % a.cluster
    marker = world.person("t1", "obs_a")

    def contributions():
        return redis.hgetall(ckey)

    def wait_contributions(pred, timeout, what):
        try:
            wait_until(lambda: pred(contributions()), timeout, what=what)
        except AssertionError as e:
            raise AssertionError("%s; ann's contributions: %r"
                                 % (e, contributions()))

    def barrier():
        """Every event of t1 published before now has reached every
        observer: obs_a goes AWAY and back, each seen by all of them."""
        for status in ("AWAY", "ONLINE"):
            m = time.monotonic()
            world.set_auto(marker, oa, status)
            wait_until(lambda: all(
                any(e["status"] == status
                    for e in t.update().events_for("obs_a", m))
                for t in obs), SLACK,
                what="obs_a %s on every observer" % status)

    # A tab on a and one on b; closing a's announces nothing.
    mark = time.monotonic()
    ta = world.connect(ann, 0)
    tb = world.connect(ann, 1)
    wait_all("ONLINE", mark, SLACK)
    wait_contributions(lambda c: set(c) == {"a", "b"}, SLACK,
                       "both tabs' nodes contributing")
    mark = time.monotonic()
    world.close(ann, ta)
    # a's grace window ends: its contribution goes.
    wait_contributions(lambda c: set(c) == {"b"}, grace + SLACK,
                       "a's contribution gone after grace")
    barrier()
    assert all(not t.update().events_for("ann", mark) for t in obs), \
        [t.events_for("ann", mark) for t in obs]
    assert world.presence(2, "t1") and not world.api_mismatches()
    # Closing b's too: OFFLINE, after grace.
    mark = time.monotonic()
    world.close(ann, tb)
    wait_all("OFFLINE", mark, grace + SLACK)
    for t in obs:
        e = seen(t, "OFFLINE", mark)
        assert len(e) == 1 and e[0]["_rx"] - mark >= grace * 0.9, e
        assert len(t.events_for("ann", mark)) == 1, t.events_for("ann", mark)

    # AWAY (auto) on a, ONLINE on b: ONLINE; both AWAY: AWAY.
    mark = time.monotonic()
    ta = world.connect(ann, 0)
    tb = world.connect(ann, 1)
    wait_all("ONLINE", mark, SLACK)

    def ann_conns(ni):
        for m in world.presence(ni, "t1")["members"]:
            if m["user"] == "ann":
                return m.get("connections")
        return None
    # Both tabs counted in Redis (every node's view says 2) before one
    # goes idle: each node's contribution reaches Redis on its own, and
    # an idle report from a that came first would rightly show AWAY.
    wait_until(lambda: all(ann_conns(ni) == 2 for ni in range(3)), SLACK,
               what="ann's two tabs counted on every node")
    mark = time.monotonic()
    world.set_auto(ann, ta, "AWAY")
    for t in (ta, tb):
        t.c.drain.ping(SLACK)
    # a's contribution says AWAY (1), b's still ONLINE (2).
    wait_contributions(lambda c: {n: v.split("|")[0] for n, v in c.items()}
                       == {"a": "1", "b": "2"}, SLACK, "a's AWAY in Redis")
    barrier()
    assert all(not t.update().events_for("ann", mark) for t in obs)
    assert not world.api_mismatches()
    world.set_auto(ann, tb, "AWAY")
    wait_all("AWAY", mark, SLACK)
    mark = time.monotonic()
    world.set_auto(ann, ta, "ONLINE")
    wait_all("ONLINE", mark, SLACK)

    # A manual BUSY set on a is seen by b's clients, and a new connection
    # to b says so in its hello.
    mark = time.monotonic()
    world.set_manual_ws(ann, ta, "BUSY")
    wait_until(lambda: all(seen(t, "BUSY", mark) for t in (ob, tb, oa, oc)),
               SLACK, what="ann BUSY on b's clients")
    world.confirm(ann, also=1)
    t3 = world.connect(ann, 1)
    assert (t3.hello["status"], t3.hello["manual"]) == ("BUSY", "BUSY"), \
        t3.hello
    world.converge(SLACK)
    world.api_converge(SLACK)
    world.check_clients(later_snapshots_allowed=False)
    world.check_api_everywhere()
    world.check_last_seen_agree()


# ------------------------------ g. logout closes sessions on other nodes ----

@pytest.mark.settings(grace="20s", flush="300ms")
def test_logout_closes_sessions_on_other_nodes(env):
    """grace is 20 s here: an OFFLINE within SLACK of the logout can only
    be the logout's, never a grace window closing."""
    redis = env.redis()
    db = env.db()
    ports = [free_port() for _ in range(3)]
    origins = ",".join("http://127.0.0.1:%d" % p for p in ports)
    world = World([], {"g1": [("ann", "Ann"), ("bob", "Bob"), "obs"]})
    world.redis = redis
    seeder = env.node("seed", redis, db=db, start=False)
    seed_password_users(seeder, [world.person("g1", "ann"),
                                 world.person("g1", "bob")])
    nodes = [env.node(n, redis, db=db, port=pt,
                      settings={"allowed_origins": origins})
             for n, pt in zip(("a", "b", "c"), ports)]
    a, b, c = nodes
    world.nodes = nodes
    world.live = {0, 1, 2}
    for n in nodes:
        n.wait_state("ok", RECONNECT + SLACK)
    obs = world.connect(world.person("g1", "obs"), 2)

    # ann: logged in on a; her cookie on b, her session's JWT on c.  A
    # browser behind a balancer without sticky sessions may send its very
    # next request to any node: the cookie must work there as soon as the
    # login is answered (checked at the end, so the rest runs either way).
    mark = time.monotonic()
    body, cookie = a.login_ok("ann@g1.example", PASSWORD)
    at_once = [(n.node_id, n.http("GET", "/api/me", cookie=cookie).status_code)
               for n in (b, c)]
    wait_until(lambda: [e for e in obs.update().events_for("ann", mark)
                        if e["status"] == "ONLINE"], SLACK,
               what="ann ONLINE (login) on c")
    for n in (b, c):
        wait_until(lambda: n.http("GET", "/api/me", cookie=cookie)
                   .status_code == 200, SLACK,
                   what="ann's cookie accepted on %s" % n.node_id)
    hdr = {"Cookie": "presenced_session=" + cookie}
    on_b = open_client(b, None, "ann-cookie@b", headers=hdr, origin=b.origin)
    on_c = open_client(c, body["token"], "ann-session-jwt@c")
    wait_ready([on_b, on_c])
    assert on_b.hello["user"] == "ann" and on_c.hello["user"] == "ann"

    # bob: logged in on a, cookie on b, and a plain JWT connection on c.
    body_b, cookie_b = a.login_ok("bob@g1.example", PASSWORD)
    wait_until(lambda: b.http("GET", "/api/me", cookie=cookie_b)
               .status_code == 200, SLACK, what="bob's cookie accepted on b")
    bob_b = open_client(b, None, "bob-cookie@b",
                        headers={"Cookie": "presenced_session=" + cookie_b},
                        origin=b.origin)
    bob_c = open_client(c, world.person("g1", "bob").token, "bob-jwt@c")
    wait_ready([bob_b, bob_c])

    time.sleep(0.5)
    mark = time.monotonic()
    r = a.http("POST", "/api/logout", cookie=cookie,
               headers={"Origin": a.origin})
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    for t in (on_b, on_c):
        t.c.drain.cond.acquire()
        ok = t.c.drain.cond.wait_for(lambda: t.c.drain.closed is not None,
                                     SLACK)
        t.c.drain.cond.release()
        assert ok, "%s still open %.0fs after the logout on a" % (
            t.c.label, SLACK)
        assert t.c.drain.closed == (1008, "logged out"), (t.c.label,
                                                           t.c.drain.closed)
    wait_until(lambda: [e for e in obs.update().events_for("ann", mark)
                        if e["status"] == "OFFLINE"], SLACK,
               what="ann OFFLINE on c after the logout on a")
    e = [e for e in obs.events_for("ann", mark)]
    assert [(x["status"], x.get("reason")) for x in e] == \
        [("OFFLINE", "logout")], e
    # The session is over on every node.
    for n in nodes:
        r = n.http("GET", "/api/me", cookie=cookie)
        assert r.status_code == 401, (n.node_id, r.status_code, r.text)

    # bob's logout closes his cookie's socket on b; his JWT one on c keeps
    # him ONLINE, with one connection.
    mark = time.monotonic()
    r = a.http("POST", "/api/logout", cookie=cookie_b,
               headers={"X-Requested-With": "fetch"})
    assert r.status_code == 200, r.text
    d = bob_b.c.drain
    with d.cond:
        d.cond.wait_for(lambda: d.closed is not None, SLACK)
    assert d.closed == (1008, "logged out"), d.closed
    assert bob_c.c.drain.closed is None
    time.sleep(1.0)
    assert not obs.update().events_for("bob", mark), obs.events_for("bob",
                                                                   mark)
    u = c.http("GET", "/api/users/bob",
               token=world.person("g1", "obs").token).json()
    assert u["status"] == "ONLINE", u
    # bob's own view counts the connections of the node it asks at once.
    me = c.http("GET", "/api/me", token=world.person("g1", "bob").token)
    assert me.status_code == 200 and me.json()["status"] == "ONLINE", me.text
    assert me.json()["connections"] >= 1, me.text
    assert not obs.seq_errors and not obs.foreign and not obs.errors, (
        obs.seq_errors, obs.foreign, obs.errors)
    assert at_once == [("b", 200), ("c", 200)], \
        "GET /api/me with the cookie of a login on a, right after its " \
        "answer: %s" % at_once


# ------------------------- h. isolation between orgs and clusters ----

@pytest.mark.settings(grace="1s", flush="300ms")
def test_isolation_between_orgs_and_clusters(env):
    redis = env.redis()
    sub = Subscriber(redis, "*")
    try:
        db = env.db()
        # alpha: two nodes on PostgreSQL; beta: the same node ids, a SQLite
        # file per node (a JWT-only deployment).  The same org and user ids.
        alpha = [env.node(n, redis, db=db, cluster="alpha")
                 for n in ("n1", "n2")]
        beta = [env.node(n, redis, cluster="beta") for n in ("n1", "n2")]
        for n in alpha + beta:
            n.wait_state("ok", RECONNECT + SLACK)
        users = ["u1", "u2", "u3"]
        wa = World(alpha, {"o1": [(u, "Alpha " + u) for u in users],
                           "o2": [(u, "Alpha2 " + u) for u in users]})
        wb = World(beta, {"o1": [(u, "Beta " + u) for u in users]})
        wa.redis = wb.redis = redis
        for w in (wa, wb):
            for org in w.orgs:
                for i, p in enumerate(w.org_people(org)):
                    w.connect(p, i % 2, wait=False)
            wait_ready(w.tracks)
            w.converge(SLACK)

        def frames_since(w, marks):
            return [(t.c.label, m) for t in w.open_tracks()
                    for m in t.c.log[marks[id(t)]:]]

        def marks_of(*ws):
            return {id(t): len(t.c.log) for w in ws for t in w.open_tracks()}

        # Changes in alpha/o1: seen by alpha/o1 on both nodes only.
        for w, org, quiet_worlds in ((wa, "o1", (wb,)), (wb, "o1", (wa,)),
                                     (wa, "o2", (wb,))):
            m = marks_of(wa, wb)
            ps = w.org_people(org)
            w.set_manual_ws(ps[0], ps[0].conns[0], "BUSY")
            w.set_auto(ps[1], ps[1].conns[0], "AWAY")
            w.close(ps[2], ps[2].conns[0])
            w.converge(SLACK * 2)
            w.confirm_all()
            time.sleep(1.0)     # anything that would cross has had time
            for qw in quiet_worlds:
                leaked = frames_since(qw, m)
                assert not leaked, "%s/%s changes reached %s: %s" % (
                    w.nodes[0].cluster, org, qw.nodes[0].cluster, leaked[:5])
            for t in w.open_tracks():
                if t.person.org != org:
                    leaked = t.c.log[m[id(t)]:]
                    assert not leaked, "%s/%s changes reached %s: %s" % (
                        w.nodes[0].cluster, org, t.c.label, leaked[:5])
            # Undo, so the next round starts from all ONLINE.
            w.set_manual_ws(ps[0], ps[0].conns[0], "ONLINE")
            w.set_auto(ps[1], ps[1].conns[0], "ONLINE")
            w.connect(ps[2], 1)
            w.confirm_all()
            w.converge(SLACK * 2)
        for w, prefix in ((wa, "Alpha"), (wb, "Beta")):
            w.check_clients(later_snapshots_allowed=False)
            w.check_api_everywhere()
            w.check_last_seen_agree()
            names = {e.get("name") for t in w.tracks for e in t.events}
            want = {prefix + " ", prefix + "2 "}
            assert all(any(n.startswith(x) for x in want) for n in names), \
                (w.nodes[0].cluster, names)
        keys = redis.keys("*")
        assert keys, "no key in Redis"
        bad = [k for k in keys if not (k.startswith("presenced:alpha:")
                                       or k.startswith("presenced:beta:"))]
        assert not bad, "keys outside presenced:<cluster>:: %s" % bad
        assert any(k.startswith("presenced:alpha:") for k in keys), keys
        assert any(k.startswith("presenced:beta:") for k in keys), keys
    finally:
        msgs = sub.stop()
    assert sub.error is None, sub.error
    chans = {m[1] for m in msgs}
    assert chans, "nothing published"
    bad = [ch for ch in chans if not (ch.startswith("presenced:alpha:")
                                      or ch.startswith("presenced:beta:"))]
    assert not bad, "channels outside presenced:<cluster>:: %s" % bad


# ------------------------------ i. snapshot on connect, cluster-wide ----

@pytest.mark.settings(grace="1s", flush="300ms")
def test_snapshot_on_connect_cluster_wide(env):
    secret = "redis-pw-" + uuid.uuid4().hex[:8]
    redis = env.redis(password=secret)
    db = env.db()
    a, b, c = [env.node(n, redis, db=db) for n in ("a", "b", "c")]
    for n in (a, b, c):
        n.wait_state("ok", RECONNECT + SLACK)
    users = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "obs"]
    world = World([a, b, c], {"s1": users})
    world.redis = redis
    P = {u: world.person("s1", u) for u in users}
    obs = world.connect(P["obs"], 0)
    for u, ni in (("u1", 0), ("u2", 1), ("u3", 0), ("u4", 1), ("u5", 1),
                  ("u6", 0), ("u7", 1)):
        world.connect(P[u], ni, wait=False)
    wait_ready(world.tracks)
    world.set_manual_ws(P["u3"], P["u3"].conns[0], "BUSY")
    world.set_auto(P["u4"], P["u4"].conns[0], "AWAY")
    world.set_manual_put(P["u5"], 2, "AWAY")
    world.set_manual_ws(P["u6"], P["u6"].conns[0], "OFFLINE")
    world.close(P["u7"], P["u7"].conns[0])
    world.confirm_all()
    world.converge(env.s("grace") + SLACK)
    last = obs.update().last
    truth = world.truth("s1")

    def check_snapshot(t, first):
        """The client's snapshot shows everyone as they are: its first one
        (first), or the one a node reading the organization for the first
        time sends right after its first (from the database)."""
        def not_yet():
            t.update()
            return [] if t.snapshots and t.snapshots[-1]["seq"] == last \
                else [s["seq"] for s in t.snapshots] or ["none"]
        wait_clear(not_yet, SLACK, "%s: a snapshot at seq %s" % (t.c.label,
                                                                 last))
        if first:
            assert len(t.snapshots) == 1, frames_of(t)
        snap = t.snapshots[-1]
        assert not t.events, frames_of(t)
        got = {m["user"]: m["status"] for m in snap["members"]}
        assert {u: got.get(u, "OFFLINE") for u in truth} == truth, \
            (t.c.label, got, truth)
        frozen = obs.view["u6"]["last_seen"]
        m6 = [m for m in snap["members"] if m["user"] == "u6"][0]
        assert m6["last_seen"] == frozen, (m6, frozen)

    # A new client on c (running all along, no client of s1 so far), then
    # on d, started now: it reads every organization from Redis before
    # its first snapshot (docs/cluster.md, "Add a node").
    t_c = world.connect(world.person("s1", "u1"), 2)
    check_snapshot(t_c, first=False)
    d = env.node("d", redis, db=db)
    d.wait_state("ok", RECONNECT + SLACK)
    world.nodes.append(d)
    world.live.add(3)
    t_d = world.connect(world.person("s1", "u2"), 3)
    check_snapshot(t_d, first=True)
    world.converge(SLACK)
    world.api_converge(SLACK)
    world.check_clients(later_snapshots_allowed=False)
    world.check_api_everywhere()
    for n in (a, b, c, d):
        assert secret not in n.log_text(), "%s logged the Redis password" \
            % n.node_id
    world.check_last_seen_agree()


# ------------------------ j. subscriptions of a large organization ----

@pytest.mark.settings(grace="1s", flush="300ms", large_org="5")
def test_subscriptions_across_nodes(env):
    """docs/protocol.md "Subscriptions" on a cluster: in an organization of
    large_org members or more, a subscriber on node b gets the events of
    the users it follows wherever they are connected, none of the others',
    and the online count."""
    redis = env.redis()
    db = env.db()
    a, b = [env.node(n, redis, db=db) for n in ("a", "b")]
    for n in (a, b):
        n.wait_state("ok", RECONNECT + SLACK)
    org = "big"
    users = ["u%d" % i for i in range(6)]          # 6 >= large_org
    # Every member known before the subscriber reads the organization.
    for u in users:
        t = open_client(a, token_for(org, u), "%s@a" % u)
        wait_ready([t])
        t.c.close()
    sub = open_client(b, token_for(org, "watcher"), "watcher@b",
                      members=set(users + ["watcher"]))
    sub.c.send_json({"type": "subscribe", "users": ["u1"]})
    wait_until(lambda: any(m.get("type") == "snapshot" and m.get("partial")
                           for m in sub.c.log), SLACK,
               what="the partial snapshot of the subscription")
    u1 = open_client(a, token_for(org, "u1"), "u1@a")
    u2 = open_client(a, token_for(org, "u2"), "u2@a")
    wait_ready([u1, u2])
    u1.c.send_json({"type": "status", "status": "BUSY"})
    u2.c.send_json({"type": "status", "status": "BUSY"})

    def events(user):
        return [m for m in sub.c.log if m.get("type") == "presence"
                and m.get("user") == user]
    wait_until(lambda: [e for e in events("u1") if e["status"] == "BUSY"],
               SLACK, what="u1's BUSY on the subscriber on b")
    wait_until(lambda: [m for m in sub.c.log if m.get("type") == "online"],
               SLACK, what="an online count on the subscriber on b")
    # u2's events went out before u1's BUSY had reached b, or with it: by
    # now any that were sent have arrived.
    u2.c.send_json({"type": "status", "status": "AWAY"})
    u1.c.send_json({"type": "status", "status": "AWAY"})
    wait_until(lambda: [e for e in events("u1") if e["status"] == "AWAY"],
               SLACK, what="u1's AWAY on the subscriber on b")
    assert not events("u2"), events("u2")


@pytest.mark.settings(grace="1s", flush="300ms")
def test_status_message_not_supported_in_cluster(env):
    """docs/cluster.md: status messages, DND and the profile are refused by
    a node of a cluster (501 / an error frame), nothing changed; a plain
    status still works."""
    redis = env.redis()
    n1 = env.node("n1", redis, db=env.db())
    n1.wait_state("ok", RECONNECT + SLACK)
    tok = token_for("o1", "u1")
    c = WSClient.connect(n1.ws_url("/ws/presence/", tok), label="u1",
                         timeout=CONNECT_TIMEOUT, read_initial=False)
    c.expect("hello", strict=True)
    for path, body in (("/api/status", {"message": {"text": "hi"}}),
                       ("/api/dnd", {"until": "1h"}),
                       ("/api/profile", {"tz": "Europe/Paris"})):
        r = n1.http("PUT", path, token=tok, json=body)
        assert r.status_code == 501, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "not_supported"
    c.send_json({"type": "update", "message": {"text": "hi"}})
    assert c.expect("error")["code"] == "not_supported"
    me = n1.http("GET", "/api/me", token=tok).json()
    assert me["settings"]["message"] is None and me["settings"]["tz"] is None
    r = n1.http("PUT", "/api/status", token=tok, json={"status": "BUSY"})
    assert r.status_code == 200, r.text
    c.close()
