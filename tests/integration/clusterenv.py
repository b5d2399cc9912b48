"""What the tests that bring their own PostgreSQL (conftest's own_pg
fixture) and Redis share: test_cluster.py, test_nginx_cluster.py and
test_pg_faults.py.

  secs(v)                 a duration setting ("300ms", "2s") in seconds
  own_db(pg, prefix)      a fresh database in the module's own cluster; its
                          name (drop_own_db(pg, name) drops it, whatever
                          state the cluster was left in)
  use_db(server, db)      a conftest Server on such a database instead of
                          the one it was made with
  Node                    a Server started as a node of a Redis cluster
  ClusterEnv              one test's Redis servers, databases and nodes,
                          torn down together, their logs printed if it
                          failed
  TClient                 a WSClient whose frames carry their arrival time
"""

import os
import sys
import time
import uuid

import requests

from conftest import Server, WSClient, free_port, pg_drop_db, wait_until
from redisserver import RedisServer

NODE_TTL = "2s"         # a node's --node-ttl unless its settings say


def secs(v):
    """A duration setting ("300ms", "2s") in seconds."""
    v = str(v)
    if v.endswith("ms"):
        return int(v[:-2]) / 1000.0
    if v.endswith("s"):
        return float(v[:-1])
    if v.endswith("m"):
        return float(v[:-1]) * 60
    return float(v)


# --------------------------------------------------------- databases ----

def own_db(pg, prefix):
    """Creates a database no other test uses in pg (a pgcluster.Cluster,
    the own_pg fixture); returns its name."""
    name = prefix + uuid.uuid4().hex[:12]
    pg.create_db(name)
    return name


def drop_own_db(pg, name):
    """Drops it at the end of a test; a failure there (a cluster a fault
    test left broken) is not the test's."""
    try:
        pg.drop_db(name)
    except Exception:
        pass


def use_db(server, db):
    """Points a conftest Server (not started) at db, a database of the
    module's own cluster shared or made for it.  With PRESENCED_TEST_BACKEND
    =postgresql the Server came with a database in the per-process
    cluster: not this module's, so it is dropped.  db None keeps the
    Server's own (its SQLite file)."""
    if server.pg_name is not None:
        pg_drop_db(server.pg_name)
        server.pg_name = None
    if db is not None:
        server.db = db


# ------------------------------------------------------------ nodes ----

class Node(Server):
    """A cluster node: a conftest Server started with --redis, --cluster,
    --node-id and --node-ttl (settings["node_ttl"], else NODE_TTL; the
    other settings through the environment, as for every Server), on db
    (use_db) if given."""

    def __init__(self, tmpdir, node_id, redis, cluster, db=None,
                 settings=None):
        os.makedirs(str(tmpdir), exist_ok=True)
        settings = dict(settings or {})
        self.node_ttl = settings.pop("node_ttl", NODE_TTL)
        Server.__init__(self, tmpdir, settings)
        use_db(self, db)
        self.node_id = node_id
        self.redis = redis
        self.cluster = cluster

    def start(self, wait=True, args=(), env_extra=None):
        a = ["--redis", self.redis.uri, "--cluster", self.cluster,
             "--node-id", self.node_id, "--node-ttl", self.node_ttl]
        return Server.start(self, wait=wait, args=a + list(args),
                            env_extra=env_extra)

    def healthz(self):
        try:
            r = requests.get(self.url("/healthz"), timeout=3)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def cluster_state(self):
        """/healthz "cluster": {"node":..,"state":..} (or a bare state)."""
        h = self.healthz()
        c = (h or {}).get("cluster")
        if isinstance(c, dict):
            return c.get("state")
        return c

    def wait_state(self, state, timeout):
        return wait_until(lambda: self.cluster_state() == state, timeout,
                          interval=0.05,
                          what="%s /healthz cluster state %s (healthz %r)"
                          % (self.node_id, state, self.healthz()))


class ClusterEnv:
    """Everything one test starts: its Redis servers, databases (in pg,
    the module's own cluster) and nodes (appended to .nodes by the test);
    finish() tears them down, in that order reversed."""

    def __init__(self, tmp, pg):
        self.tmp = tmp
        self.pg = pg
        self.redises = []
        self.dbs = []
        self.nodes = []

    def redis(self, password=None):
        r = RedisServer(port=free_port(), password=password)
        self.redises.append(r)
        r.start()
        return r

    def db(self, prefix="c_"):
        name = own_db(self.pg, prefix)
        self.dbs.append(name)
        return self.pg.uri(name)

    def finish(self, failed, logs=()):
        """Stops every node (each must exit cleanly, without a sanitizer
        report), then Redis, then drops the databases.  If the test failed,
        or a node did not exit cleanly, every node's log, then logs (more
        (title, text) pairs), then Redis' are printed."""
        errors = []
        for r in self.redises:        # a paused Redis would hold a node
            if r.paused:
                r.resume()
        for n in self.nodes:
            try:
                n.teardown(wait=True)
            except AssertionError as e:
                errors.append("%s: %s" % (n.node_id, e))
                failed = True
        if failed:
            for n in self.nodes:
                sys.stderr.write("\n---- %s/%s log ----\n%s\n"
                                 % (n.cluster, n.node_id,
                                    n.log_text()[-8000:]))
            for title, text in logs:
                sys.stderr.write("\n---- %s ----\n%s\n" % (title, text))
            for r in self.redises:
                sys.stderr.write("\n---- redis log ----\n%s\n" % r.log_text())
        else:
            for n in self.nodes:
                try:
                    n.check_sanitizers()
                except AssertionError as e:
                    errors.append("%s: %s" % (n.node_id, e))
        for r in self.redises:
            r.destroy()
        for name in self.dbs:
            drop_own_db(self.pg, name)
        if errors:
            raise AssertionError("\n".join(errors))


# ---------------------------------------------------------- clients ----

class TClient(WSClient):
    """A WSClient whose frames carry the time they arrived (_rx)."""

    def _process(self, msg):
        if isinstance(msg, dict):
            msg["_rx"] = time.monotonic()
        return WSClient._process(self, msg)
