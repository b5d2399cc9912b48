#!/usr/bin/python3
"""cluster.py - the Redis cluster's figures (issue 12, docs/cluster.md).

  cluster.py [--server BIN] [--out results-issue12.md] [--runs 3]
             [--only cost,fanout,memory,kill,resync] [--nice -10]

One run measures, on this machine, with Redis (Debian's redis-server, a
throwaway one on a free loopback port, tests/redisserver.py) and every
node on 127.0.0.1:

  cost    Redis commands and bytes per presence change, 1, 2 and 3 nodes:
          INFO stats / commandstats before and after N status changes
          (manual BUSY<->ONLINE, and auto AWAY<->ONLINE), divided by the
          events published (the organization's seq moved by as many),
          less the nodes' own background (beats) measured idle.
  fanout  bench/loadgen's fan-out (10 organizations of 1,000, 20 senders,
          closed loop; and paced at 50 changes/s) on one server without
          Redis, and on 1, 2 and 3 nodes: the same 10,000 connections,
          spread over the nodes by an LD_PRELOAD shim that rewrites
          loadgen's connect() (connection i goes to node (i + i/10) % k,
          so every organization has members on every node and so do the
          senders). Medians of --runs rounds, interleaved.
  memory  Redis used_memory before and after 10,000 users (100
          organizations of 100) are online across 3 nodes, and after they
          all went offline again.
  kill    kill -9 of a node holding 1,000 users: time to the first and the
          last OFFLINE at observers on the two other nodes, with node_ttl
          and grace 5 s / 5 s and 2 s / 1 s.
  resync  an organization of 10,000 online users on 3 nodes: a gap (the
          organization's seq raised by one in Redis, then a change, whose
          event every node sees one past the next) and the time from the
          change to the fresh snapshot at an observer of each node; with
          no other connection of the organization, and with its 10,000
          connections spread over the nodes. Also: what an event whose seq
          is far past the organization's does.

Every process is started here and stopped here; every wait is bounded and
the whole run ends by itself (--max-minutes). Standard library only; the
results go to --out and the same name with .json.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import run as R  # noqa: E402  (bench/run.py: processes, machine, loadgen)
from redisserver import RedisServer, Resp  # noqa: E402

log = R.log
SECRET = R.SECRET
FAN_CONNS, FAN_ORGS, FAN_SENDERS = 10000, 10, 20

# ---- spreading one loadgen over several nodes ----------------------------

# loadgen targets one port; this shim, preloaded into it, sends its n-th
# connect() to the port of node (n + n / ORGS) % k (loadgen connects its
# connections in order, connection i being the i-th call). With i % ORGS
# the organization, every organization gets members on every node (ORGS +
# 1 is prime to 2 and 3). What a load balancer does, in 30 lines.
SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int nports, orgs, ports[16];
static long n;
static void init(void)
{
    real_connect = dlsym(RTLD_NEXT, "connect");
    const char *p = getenv("BENCH_PORTS");
    orgs = getenv("BENCH_ORGS") ? atoi(getenv("BENCH_ORGS")) : 1;
    if (orgs < 1)
        orgs = 1;
    while (p && *p && nports < 16) {
        ports[nports++] = atoi(p);
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
}
int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (!real_connect)
        init();
    if (nports > 1 && sa && sa->sa_family == AF_INET &&
        len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        if (ntohs(in.sin_port) == ports[0]) {
            long i = n++;
            in.sin_port = htons((unsigned short)ports[(i + i / orgs) % nports]);
            return real_connect(fd, (struct sockaddr *)&in, sizeof in);
        }
    }
    return real_connect(fd, sa, len);
}
"""


def build_shim(tmp):
    src = os.path.join(tmp, "spread.c")
    so = os.path.join(tmp, "spread.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, src, "-ldl"],
                   check=True, timeout=60)
    return so


def node_of(i, k, orgs):
    return (i + i // orgs) % k


# ---- a small WebSocket client (docs/protocol.md) -------------------------

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(org, user):
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64url(json.dumps({"sub": user, "org": org,
                           "exp": int(time.time()) + 4 * 3600}).encode())
    s = hmac.new(SECRET.encode(), (h + "." + p).encode(),
                 hashlib.sha256).digest()
    return h + "." + p + "." + b64url(s)


class WS:
    """One presence connection, read by a thread of its own. .events:
    (monotonic time, kind, data): ("hello", status), ("snapshot", (seq,
    {user: status})), ("presence", (user, status, seq)). .online is the
    view (user -> status) from the last snapshot and the events after."""

    def __init__(self, port, org, user, timeout=20):
        self.org, self.user = org, user
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws/presence/?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (jwt(org, user), port, key))
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed during the upgrade")
            buf += d
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode())
        self.sock.settimeout(None)
        self.cond = threading.Condition()
        self.events = []
        self.view = {}
        self.online_n = 0
        self.seq = 0
        self.closed = False
        self.wlock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _frame(self, op, payload):
        n = len(payload)
        hdr = bytes([0x80 | op])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.wlock:
            self.sock.sendall(hdr + mask + body)

    def send(self, obj):
        self._frame(1, json.dumps(obj).encode())

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(1 << 20)
            if not d:
                raise ConnectionError("closed")
            self.buf += d

    def _read(self):
        msg = b""
        try:
            while True:
                self._need(2)
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126:
                    self._need(4)
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127:
                    self._need(10)
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                self._need(off + n)
                payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
                op = b0 & 0x0F
                if op == 9:
                    self._frame(10, payload)
                elif op == 8:
                    break
                elif op in (0, 1):
                    msg += payload
                    if b0 & 0x80:
                        self._text(msg)
                        msg = b""
        except (OSError, ConnectionError, ValueError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _text(self, raw):
        t = time.monotonic()
        if len(raw) > 65536 and raw.startswith(b'{"type":"snapshot"'):
            m = {"type": "bigsnapshot",
                 "seq": int(re.match(rb'{"type":"snapshot","seq":(\d+)',
                                     raw).group(1)),
                 "members": raw.count(b'"user":'),
                 "online": raw.count(b'"status":"ONLINE"')}
        else:
            m = json.loads(raw)
        ty = m.get("type")
        with self.cond:
            if ty == "hello":
                self.events.append((t, "hello", m.get("status")))
            elif ty == "snapshot":
                self.view = {x["user"]: x["status"] for x in m["members"]}
                self.seq = m["seq"]
                self.events.append((t, "snapshot", (m["seq"], len(self.view))))
            elif ty == "bigsnapshot":
                # counted, not parsed: json.loads of 750 KB holds the GIL
                # for tens of ms, which would delay the other readers' clocks
                self.view = {}
                self.online_n = m["online"]
                self.seq = m["seq"]
                self.events.append((t, "snapshot", (m["seq"], m["members"])))
            elif ty == "presence":
                if m["seq"] > self.seq:
                    self.seq = m["seq"]
                    self.view[m["user"]] = m["status"]
                    self.events.append((t, "presence", (m["user"],
                                                        m["status"],
                                                        m["seq"])))
            self.cond.notify_all()

    def wait(self, pred, timeout):
        """Waits until pred(self) holds (called under the lock)."""
        end = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                left = end - time.monotonic()
                if left <= 0 or self.closed:
                    return pred(self)
                self.cond.wait(min(left, 0.5))
            return True

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.t.join(5)


def connect_all(specs):
    """[(port, org, user)] -> [WS], each with its snapshot."""
    out = [WS(p, o, u) for p, o, u in specs]
    for c in out:
        if not c.wait(lambda s: any(e[1] == "snapshot" for e in s.events),
                      20):
            raise RuntimeError("no snapshot for %s/%s" % (c.org, c.user))
    return out


# ---- Redis ----------------------------------------------------------------

def info(redis):
    """INFO all, as {field: value} (numbers where they are)."""
    txt = redis.cmd("INFO", "all")
    out = {}
    for line in txt.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        if k.startswith("cmdstat_"):
            out[k] = int(re.search(r"calls=(\d+)", v).group(1))
            continue
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def delta(a, b, keys=None):
    keys = keys or [k for k in b if isinstance(b[k], int)]
    return {k: b.get(k, 0) - a.get(k, 0) for k in keys
            if isinstance(b.get(k, 0), int)}


COUNTED = ("total_commands_processed", "total_net_input_bytes",
           "total_net_output_bytes")


# ---- nodes ---------------------------------------------------------------

class Cluster:
    """k nodes n1..nk of cluster `name` on one Redis, each with a SQLite
    file of its own (a copy of `template`, or a new one)."""

    def __init__(self, args, tmp, redis, name, k, template=None, extra=(),
                 ttl="5s", online=None):
        self.name, self.nodes, self.redis = name, [], redis
        self.prefix = "presenced:%s:" % name
        if online:      # (users, orgs, spread_orgs): prepopulate()
            prepopulate(redis, self.prefix, online[0], online[1], k,
                        online[2])
        for j in range(1, k + 1):
            tag = "%s-n%d" % (name, j)
            db = os.path.join(tmp, tag + ".db")
            if template:
                R.copy_db(template, tmp, tag)
                db = os.path.join(tmp, "run-%s.db" % tag)
            argv = ["--redis", redis.uri, "--cluster", name, "--node-id",
                    "n%d" % j, "--node-ttl", ttl] + list(extra)
            try:
                self.nodes.append(R.start_server(args.server, db, argv, tmp,
                                                 tag))
            except Exception:
                self.stop()
                raise
        for n in self.nodes:
            if not wait_log(n, r"connected to redis", 20):
                self.stop()
                raise RuntimeError("node %s never reached redis:\n%s" %
                                   (n.logpath, open(n.logpath).read()[-2000:]))

    @property
    def ports(self):
        return [n.port for n in self.nodes]

    def stop(self):
        codes = []
        for n in self.nodes:
            codes.append(n.stop())
        return codes

    def seq(self, org):
        return int(self.redis.cmd("GET", self.prefix + "seq:" + org) or 0)


def wait_log(proc, pattern, timeout, count=1):
    rx = re.compile(pattern)
    end = time.time() + timeout
    while time.time() < end:
        with open(proc.logpath, errors="replace") as f:
            if len(rx.findall(f.read())) >= count:
                return True
        if proc.p.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def count_log(proc, pattern):
    with open(proc.logpath, errors="replace") as f:
        return len(re.findall(pattern, f.read()))


def wait_for(pred, timeout, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def sqlite_db(server, tmp, name, users, orgs, status):
    """A SQLite file with users o<i%orgs>/u<i>, stored with `status` (2:
    ONLINE, restored at start within --restart-grace; 0: OFFLINE)."""
    db = os.path.join(tmp, "%s.db" % name)
    subprocess.run([server, "org", "add", "o0", "--db", db], check=True,
                   timeout=60, stdout=subprocess.DEVNULL)
    now = int(time.time() * 1000)
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO organizations(id, name, created_ms) VALUES(?,?,?)",
            (("o%d" % k, "o%d" % k, now) for k in range(1, orgs)))
        con.executemany(
            "INSERT INTO users(org, id, email, name, pw_hash, status, manual,"
            " last_seen_ms, created_ms) VALUES(?,?,NULL,?,NULL,?,NULL,?,?)",
            (("o%d" % (i % orgs), "u%d" % i, "u%d" % i, status, now, now)
             for i in range(users)))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


def prepopulate(redis, prefix, users, orgs, k, spread_orgs):
    """Writes into Redis what k nodes n1..nk that held users o<i%orgs>/u<i>
    ONLINE would leave there (user i on node node_of(i, k, spread_orgs)):
    each node claims its contributions at start as restore windows
    (--restart-grace), so the users are ONLINE before anyone connects and
    a connect changes no status (the cluster's form of run.py's users
    stored ONLINE: no N^2/2 connect events before the measured window)."""
    now = int(time.time() * 1000)
    cmds = []
    for i in range(users):
        org, user = "o%d" % (i % orgs), "u%d" % i
        node = "n%d" % (node_of(i, k, spread_orgs) + 1)
        m = org + "\0" + user
        cmds.append(("HSET", prefix + "c:" + m, node, "2|1|%d" % now))
        cmds.append(("SADD", prefix + "nc:" + node, m))
        cmds.append(("HSET", prefix + "u:" + org, user,
                     "2|-1|%d|1|%s" % (now, user)))
    for o in range(orgs):
        cmds.append(("SADD", prefix + "orgs", "o%d" % o))
    c = Resp(redis.port, redis.password, timeout=30)
    try:
        for j in range(0, len(cmds), 5000):
            part = cmds[j:j + 5000]
            c.sock.sendall(b"".join(_encode(x) for x in part))
            for _ in part:
                c.read_reply()
    finally:
        c.close()


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def stat_fields():
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) + int(v[12])
    except (OSError, IndexError, ValueError):
        return None


class CpuSampler:
    """Samples the CPU ticks of some processes every 0.1 s in a thread."""

    def __init__(self, pids):
        self.pids = dict(pids)  # name -> pid
        self.samples = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.is_set():
            self.samples.append((time.monotonic(),
                                 {k: proc_ticks(p)
                                  for k, p in self.pids.items()},
                                 stat_fields()))
            self.stop_ev.wait(0.1)

    def stop(self):
        self.stop_ev.set()
        self.t.join(2)

    def usage(self, t0, t1):
        """% of a core per process over [t0, t1], and the machine's busy
        cores."""
        s = [x for x in self.samples if t0 <= x[0] <= t1]
        if len(s) < 2:
            return {}
        a, b = s[0], s[-1]
        dt = b[0] - a[0]
        hz = os.sysconf("SC_CLK_TCK")
        out = {k: round((b[1][k] - a[1][k]) / hz / dt * 100, 1)
               for k in self.pids if a[1].get(k) is not None and
               b[1].get(k) is not None}
        tot = sum(b[2]) - sum(a[2])
        ncpu = os.cpu_count() or 1
        if tot > 0:
            names = ("user", "nice", "system", "idle", "iowait", "irq",
                     "softirq", "steal")
            for j, nm in enumerate(names):
                if nm in ("user", "nice", "system", "softirq"):
                    out["machine_%s_cores" % nm] = round(
                        (b[2][j] - a[2][j]) / tot * ncpu, 2)
            idle = (b[2][3] + b[2][4]) - (a[2][3] + a[2][4])
            out["machine_busy_cores"] = round((1 - idle / tot) * ncpu, 2)
        return out


# ---- 1: Redis commands and bytes per change -------------------------------

def fig_cost(args, tmp, redis, results, commands):
    n_changes = args.cost_changes
    for k in (1, 2, 3):
        redis.flushall()
        name = "cost%d" % k
        cl = Cluster(args, tmp, redis, name, k)
        clients = []
        try:
            specs = []
            for j, port in enumerate(cl.ports):
                specs.append((port, "o0", "s%d" % j))       # sender
                specs.append((port, "o0", "w%d" % j))       # watcher
            clients = connect_all(specs)
            senders = clients[0::2]
            everyone = len(specs)
            # Everyone online, everywhere, and quiet.
            for c in clients:
                c.wait(lambda s: sum(1 for v in s.view.values()
                                     if v != "OFFLINE") == everyone, 10)
            time.sleep(1.0)
            # The nodes' own traffic (beats every 250 ms) while idle.
            i0 = info(redis)
            t0 = time.monotonic()
            time.sleep(args.cost_idle)
            i1 = info(redis)
            idle = delta(i0, i1)
            idle_s = time.monotonic() - t0
            for kind in ("manual", "auto"):
                if kind == "manual":
                    flips = ({"type": "status", "status": "BUSY"},
                             {"type": "status", "status": "ONLINE"})
                    want = ("BUSY", "ONLINE")
                else:
                    flips = ({"type": "status", "status": "AWAY",
                              "auto": True},
                             {"type": "status", "status": "ONLINE",
                              "auto": True})
                    want = ("AWAY", "ONLINE")
                seq0 = cl.seq("o0")
                a = info(redis)
                t0 = time.monotonic()
                lost = 0
                for i in range(n_changes):
                    s = senders[i % len(senders)]
                    f = (i // len(senders)) % 2
                    s.send(flips[f])
                    st = want[f]
                    # closed loop: the change reached every client
                    ok = all(c.wait(lambda x, u=s.user, st=st:
                                    x.view.get(u) == st, 5)
                             for c in clients)
                    lost += not ok
                t1 = time.monotonic()
                b = info(redis)
                events = cl.seq("o0") - seq0
                d = delta(a, b)
                dur = t1 - t0
                per = {}
                for key in set(d) | set(idle):
                    if not (key in COUNTED or key.startswith("cmdstat_")):
                        continue
                    bg = idle.get(key, 0) / idle_s * dur
                    v = (d.get(key, 0) - bg) / events if events else 0
                    if abs(v) >= 0.005:
                        per[key] = round(v, 2)
                res = {"nodes": k, "flip": kind, "changes": n_changes,
                       "events": events, "seconds": round(dur, 3),
                       "not_seen": lost, "per_event": per,
                       "raw_delta": {x: d[x] for x in d
                                     if x in COUNTED or
                                     x.startswith("cmdstat_")},
                       "idle_per_s": {x: round(idle[x] / idle_s, 1)
                                      for x in idle if x in COUNTED or
                                      x.startswith("cmdstat_")},
                       "subscribers": k}
                log("  cost %d node(s), %s: %d events in %.2f s: %s" %
                    (k, kind, events, dur, json.dumps(per)))
                results["cost"].append(res)
        finally:
            for c in clients:
                c.close()
            cl.stop()
    commands["cost"] = (
        "presenced serve --listen 127.0.0.1:0 --db NODE.db --jwt-secret "
        "$SECRET %s --redis redis://127.0.0.1:$RP --cluster costK "
        "--node-id nJ --node-ttl 5s   (J = 1..K, K = 1, 2, 3)\n"
        "then one sender and one watcher (Python WebSocket clients) per node "
        "in organization o0; %d changes, round robin over the senders, each "
        "sent once the last reached every client" % (
            " ".join(R.LIMITS_OFF + R.LOOPS), n_changes))


# ---- 2: fan-out -----------------------------------------------------------

def run_loadgen(args, lg_args, ports, shim, pids, timeout, label):
    """Runs loadgen with its connections spread over ports; returns (rc,
    JSON, per-process CPU over the sending window)."""
    argv = [R.LOADGEN] + lg_args + ["--port", str(ports[0]), "--secret",
                                    SECRET]
    env = dict(os.environ)
    if len(ports) > 1:
        env["LD_PRELOAD"] = shim
        env["BENCH_PORTS"] = ",".join(str(p) for p in ports)
        env["BENCH_ORGS"] = str(args.layout_orgs)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, preexec_fn=R._renice)
    pids = dict(pids)
    pids["loadgen"] = p.pid
    samp = CpuSampler(pids)
    t_conn = None
    out = []
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    try:
        for line in p.stdout:
            out.append(line)
            if t_conn is None and line.startswith("  CPU while connecting"):
                t_conn = time.monotonic()
        p.wait()
    finally:
        killer.cancel()
        samp.stop()
    err = p.stderr.read()
    res = None
    for line in out:
        if line.startswith('{"scenario":'):
            res = json.loads(line)
    cpu = {}
    if t_conn and res:
        # The sending window starts once the organizations are quiet
        # (about a second after the connect summary) and lasts --seconds.
        secs = float(lg_args[lg_args.index("--seconds") + 1])
        cpu = samp.usage(t_conn + 1.5, t_conn + 1.0 + secs)
    if res is None:
        log("  %s: no result (rc %s): %s %s" % (label, p.returncode,
                                                 "".join(out[-5:]), err))
    elif err.strip():
        log("  %s stderr: %s" % (label, err.strip()[:500]))
    return p.returncode, res, cpu


def fig_fanout(args, tmp, redis, shim, results, commands):
    db = sqlite_db(args.server, tmp, "fan", FAN_CONNS, FAN_ORGS, 2)
    closed = ["fanout", "--conns", str(FAN_CONNS), "--orgs", str(FAN_ORGS),
              "--senders", str(FAN_SENDERS), "--seconds",
              str(args.fan_seconds), "--source-addrs", "4"]
    paced = closed[:5] + ["--senders", "100", "--rate", str(args.fan_rate),
                          "--seconds", str(args.fan_seconds),
                          "--source-addrs", "4"]
    configs = [c for c in ["single", "c1", "c2", "c3"]
               if c in args.fan_configs.split(",")]
    for rnd in range(args.runs):
        r = rnd % len(configs)
        order = configs[r:] + configs[:r]
        log(" fanout round %d of %d: %s" % (rnd + 1, args.runs,
                                             ", ".join(order)))
        for cfg in order:
            for scen, lg in (("closed", closed), ("paced", paced)):
                key = "fanout_%s_%s" % (scen, cfg)
                pre = R.wait_quiet(args.quiet_wait)
                redis.flushall()
                tag = "%s-%d" % (key, rnd)
                cl = None
                srv = None
                try:
                    if cfg == "single":
                        copy = R.copy_db(db, tmp, tag)
                        srv = R.start_server(args.server, copy,
                                             ["--restart-grace", "1h"], tmp,
                                             tag)
                        ports, procs = [srv.port], {"node1": srv.pid}
                    else:
                        k = int(cfg[1])
                        cl = Cluster(args, tmp, redis, tag.replace("_", "-"),
                                     k, template=db,
                                     extra=["--restart-grace", "1h"],
                                     online=(FAN_CONNS, FAN_ORGS, FAN_ORGS))
                        ports = cl.ports
                        procs = {"node%d" % (j + 1): n.pid
                                 for j, n in enumerate(cl.nodes)}
                        procs["redis"] = redis.proc.pid
                        time.sleep(1.0)   # claims and first resyncs
                    rc, res, cpu = run_loadgen(args, lg, ports, shim, procs,
                                               120 + args.fan_seconds, key)
                finally:
                    code = srv.stop() if srv else 0
                    codes = cl.stop() if cl else []
                if res is not None:
                    res["rc"] = rc
                    res["cpu_window"] = cpu
                    res["busy_before_cores"] = round(pre, 2)
                    res["nodes"] = 0 if cfg == "single" else int(cfg[1])
                    res["server_exit"] = [code] + codes
                results.setdefault(key, []).append(res)
                if res:
                    log("  %s: %s deliveries/s, p50 %.1f ms, p99 %.1f ms, "
                        "last p99 %.1f ms, lost %s, rc %d; cpu %s" % (
                            key, R.fmt(res["deliveries_per_s"], 0),
                            res["p50_ms"], res["p99_ms"], res["last_p99_ms"],
                            res["lost"], rc, json.dumps(cpu)))
    commands["fanout"] = (
        "users o<i%%10>/u<i> (10,000) stored ONLINE in a SQLite file, a copy "
        "per node; each node:\n"
        "presenced serve --listen 127.0.0.1:0 --db COPY.db --jwt-secret "
        "$SECRET %s --restart-grace 1h [--redis redis://127.0.0.1:$RP "
        "--cluster NAME --node-id nJ --node-ttl 5s]\n"
        "LD_PRELOAD=spread.so BENCH_PORTS=$P1,$P2,$P3 BENCH_ORGS=10 "
        "bench/loadgen %s --port $P1 --secret $SECRET\n"
        "LD_PRELOAD=spread.so BENCH_PORTS=... BENCH_ORGS=10 bench/loadgen %s "
        "--port $P1 --secret $SECRET" % (
            " ".join(R.LIMITS_OFF + R.LOOPS), " ".join(closed),
            " ".join(paced)))


# ---- 3: Redis memory per online user --------------------------------------

def fig_memory(args, tmp, redis, shim, results, commands):
    n, orgs = args.mem_users, args.mem_orgs
    for k in (1, 3):
        redis.flushall()
        name = "mem%d" % k
        cl = Cluster(args, tmp, redis, name, k)
        p = None
        try:
            time.sleep(1.0)
            m0 = info(redis)
            keys0 = redis.cmd("DBSIZE")
            argv = [R.LOADGEN, "hold", "--conns", str(n), "--orgs", str(orgs),
                    "--idle-seconds", "30", "--source-addrs", "4",
                    "--port", str(cl.ports[0]), "--secret", SECRET]
            env = dict(os.environ, LD_PRELOAD=shim,
                       BENCH_PORTS=",".join(str(x) for x in cl.ports),
                       BENCH_ORGS=str(orgs))
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                 env=env, preexec_fn=R._renice)
            got = False
            for line in p.stdout:
                if "right after connecting" in line:   # after it settled
                    got = True
                    break
            online = sum(int(redis.cmd("SCARD", cl.prefix + "nc:n%d" % j)
                             or 0) for j in range(1, k + 1))
            time.sleep(1.0)
            m1 = info(redis)
            keys1 = redis.cmd("DBSIZE")
            # A sample of what one user costs, key by key.
            sample = {
                "u_org_hash": redis.cmd("MEMORY", "USAGE",
                                        cl.prefix + "u:o0"),
                "c_user_hash": redis.cmd("MEMORY", "USAGE",
                                         cl.prefix + "c:o0\0u0"),
                "nc_node_set": redis.cmd("MEMORY", "USAGE",
                                         cl.prefix + "nc:n1"),
                "u_org_encoding": redis.cmd("OBJECT", "ENCODING",
                                            cl.prefix + "u:o0"),
                "nc_encoding": redis.cmd("OBJECT", "ENCODING",
                                         cl.prefix + "nc:n1"),
            }
            p.send_signal(signal.SIGTERM)    # its connections close
            p.wait(20)
            p = None
            # grace (5 s), then OFFLINE for all: what stays is the record.
            wait_for(lambda: sum(int(redis.cmd("SCARD", cl.prefix +
                                               "nc:n%d" % j) or 0)
                                 for j in range(1, k + 1)) == 0, 20)
            time.sleep(0.5)
            m2 = info(redis)
            keys2 = redis.cmd("DBSIZE")
            res = {"nodes": k, "users": n, "orgs": orgs, "online": online,
                   "settled": got,
                   "used_memory_before": m0["used_memory"],
                   "used_memory_online": m1["used_memory"],
                   "used_memory_offline": m2["used_memory"],
                   "bytes_per_online_user": round(
                       (m1["used_memory"] - m0["used_memory"]) / n, 1),
                   "bytes_per_offline_user": round(
                       (m2["used_memory"] - m0["used_memory"]) / n, 1),
                   "keys": [keys0, keys1, keys2], "sample": sample}
            log("  memory, %d node(s): %s" % (k, json.dumps(res)))
            results["memory"].append(res)
        finally:
            if p:
                p.kill()
                p.wait()
            cl.stop()
    commands["memory"] = (
        "K nodes (K = 1, 3) with new SQLite files, then\n"
        "LD_PRELOAD=spread.so BENCH_PORTS=... BENCH_ORGS=%d bench/loadgen "
        "hold --conns %d --orgs %d --idle-seconds 30 --source-addrs 4 "
        "--port $P1 --secret $SECRET\nINFO memory before, once it settled, "
        "and after it closed and every user went OFFLINE" % (orgs, n, orgs))


# ---- 4: kill -9 to the last OFFLINE ---------------------------------------

def fig_kill(args, tmp, redis, results, commands):
    n = args.kill_users
    orgs = 10
    for ttl, grace in (("5s", "5s"), ("2s", "1s")):
        for rnd in range(args.runs):
            redis.flushall()
            name = "kill-%s-%s-%d" % (ttl, grace, rnd)
            cl = Cluster(args, tmp, redis, name, 3, ttl=ttl,
                         extra=["--grace", grace])
            obs = []
            lg = None
            try:
                lg = subprocess.Popen(
                    [R.LOADGEN, "hold", "--conns", str(n), "--orgs",
                     str(orgs), "--idle-seconds", "120", "--source-addrs",
                     "4", "--port", str(cl.ports[0]), "--secret", SECRET],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    preexec_fn=R._renice)
                obs = connect_all([(port, "o%d" % o, "obs%d" % j)
                                   for j, port in enumerate(cl.ports[1:])
                                   for o in range(orgs)])
                victims = {"u%d" % i for i in range(n)}
                per_org = n // orgs

                def all_online(s):
                    return sum(1 for u, v in s.view.items()
                               if u in victims and v == "ONLINE") == per_org
                ok = all(c.wait(all_online, 30) for c in obs)
                if not ok:
                    raise RuntimeError("kill: the users never came online")
                time.sleep(1.0)
                n_before = [len(c.events) for c in obs]
                t_kill = time.monotonic()
                cl.nodes[0].p.kill()

                def all_offline(s):
                    return sum(1 for u, v in s.view.items()
                               if u in victims and v == "OFFLINE") == per_org
                limit = R_secs(ttl) + R_secs(grace) + 15
                done = all(c.wait(all_offline, limit -
                                  (time.monotonic() - t_kill)) for c in obs)
                offs = []
                for c, b in zip(obs, n_before):
                    with c.cond:
                        offs += [e[0] - t_kill for e in c.events[b:]
                                 if e[1] == "presence" and e[2][0] in victims
                                 and e[2][1] == "OFFLINE"]
                lg.kill()
                lg.wait()
                lg = None
                res = {"node_ttl": ttl, "grace": grace, "users": n,
                       "observers": len(obs), "all_offline": done,
                       "offline_events": len(offs),
                       "expected_events": n * (len(cl.nodes) - 1),
                       "first_s": round(min(offs), 3) if offs else None,
                       "last_s": round(max(offs), 3) if offs else None,
                       "bound_s": R_secs(ttl) + R_secs(grace) + 0.25}
                log("  kill, ttl %s grace %s: %s" % (ttl, grace,
                                                     json.dumps(res)))
                results["kill"].append(res)
            finally:
                if lg:
                    lg.kill()
                    lg.wait()
                for c in obs:
                    c.close()
                cl.stop()
    commands["kill"] = (
        "3 nodes with --node-ttl T --grace G (5s/5s, 2s/1s); "
        "bench/loadgen hold --conns %d --orgs 10 --idle-seconds 120 "
        "--source-addrs 4 --port $P1 --secret $SECRET (all on node 1); "
        "one observer per organization on nodes 2 and 3; kill -9 node 1" % n)


def R_secs(v):
    v = str(v)
    if v.endswith("ms"):
        return int(v[:-2]) / 1000.0
    return float(v.rstrip("s"))


# ---- 5: resync of an organization of 10,000 -------------------------------

def fig_resync(args, tmp, redis, shim, results, commands):
    n = args.resync_users
    db = sqlite_db(args.server, tmp, "resync", n, 1, 2)
    redis.flushall()
    cl = Cluster(args, tmp, redis, "resync", 3, template=db,
                 extra=["--restart-grace", "1h"], online=(n, 1, 1))
    obs = []
    lg = None
    try:
        obs = connect_all([(port, "o0", "w%d" % j)
                           for j, port in enumerate(cl.ports)])
        sender = connect_all([(cl.ports[0], "o0", "g")])[0]
        for c in obs:
            if not c.wait(lambda s: s.online_n >= n, 20):
                raise RuntimeError("resync: the %d users are not ONLINE" % n)
        time.sleep(0.5)
        pids = {"node%d" % (j + 1): x.pid for j, x in enumerate(cl.nodes)}
        pids["redis"] = redis.proc.pid

        flips = []

        def gap_round(variant, i, lg_pid=None):
            p = dict(pids)
            if lg_pid:
                p["loadgen"] = lg_pid
            work = [k for k in p if k != "redis"]
            snaps0 = [sum(1 for e in c.events if e[1] == "snapshot")
                      for c in obs]
            logs0 = [count_log(x, r"resyncing") for x in cl.nodes]
            samp = CpuSampler(p)
            time.sleep(0.3)
            seq = cl.seq("o0")
            redis.cmd("INCR", cl.prefix + "seq:o0")       # seq+1 is lost
            # a change of the sender's status: BUSY, ONLINE, BUSY, ...
            # over every round of both variants
            flips.append(1)
            st = "BUSY" if len(flips) % 2 == 1 else "ONLINE"
            t0 = time.monotonic()
            sender.send({"type": "status", "status": st})  # gets seq+2
            got = []
            for c, s0 in zip(obs, snaps0):
                c.wait(lambda s, s0=s0: sum(1 for e in s.events
                                            if e[1] == "snapshot") > s0, 60)
                with c.cond:
                    sn = [e for e in c.events if e[1] == "snapshot"][s0:]
                got.append((round(sn[0][0] - t0, 3), sn[0][2][0],
                            sn[0][2][1]) if sn else None)
            # Until the nodes (and loadgen) have written (and read) every
            # snapshot: the first 0.5 s in which together they used at most
            # 2 ticks (heartbeats and beats go on).
            busy_s = None
            end = time.monotonic() + 60
            while time.monotonic() < end and busy_s is None:
                time.sleep(0.1)
                smp = list(samp.samples)
                for x in range(len(smp)):
                    if smp[x][0] < t0:
                        continue
                    y = x
                    while y < len(smp) and smp[y][0] - smp[x][0] < 0.5:
                        y += 1
                    if y >= len(smp):
                        break
                    used = sum(smp[y][1][k] - smp[x][1][k] for k in work)
                    if used <= 2:
                        busy_s = round(smp[x][0] - t0, 2)
                        break
            samp.stop()
            cpu = samp.usage(t0, t0 + busy_s) if busy_s else {}
            extra_snaps = [sum(1 for e in c.events if e[1] == "snapshot") - s0
                           for c, s0 in zip(obs, snaps0)]
            logs = [count_log(x, r"resyncing") - l0
                    for x, l0 in zip(cl.nodes, logs0)]
            res = {"variant": variant, "users": n, "seq_before": seq,
                   "snapshot_s": [g[0] if g else None for g in got],
                   "snapshot_seq": [g[1] if g else None for g in got],
                   "snapshot_members": [g[2] if g else None for g in got],
                   "busy_s": busy_s, "cpu_busy": cpu,
                   "snapshots_seen": extra_snaps,
                   "resync_log_lines": logs}
            log("  resync %s: %s" % (variant, json.dumps(res)))
            results["resync"].append(res)

        for i in range(args.runs):
            gap_round("observers only", i)
        # The organization's 10,000 connections, spread over the nodes.
        env = dict(os.environ, LD_PRELOAD=shim,
                   BENCH_PORTS=",".join(str(x) for x in cl.ports),
                   BENCH_ORGS="1")
        lg = subprocess.Popen(
            [R.LOADGEN, "hold", "--conns", str(n), "--orgs", "1",
             "--idle-seconds", "300", "--source-addrs", "4", "--port",
             str(cl.ports[0]), "--secret", SECRET],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=env, preexec_fn=R._renice)
        for line in lg.stdout:
            if "right after connecting" in line:
                break
        time.sleep(1.0)
        for i in range(args.runs):
            gap_round("10,000 connections over 3 nodes", i, lg.pid)
        lg.send_signal(signal.SIGTERM)
        lg.wait(30)
        lg = None
        if args.far_seq:
            far_seq(cl, redis, obs, results)
    finally:
        if lg:
            lg.kill()
            lg.wait()
        for c in obs:
            c.close()
        codes = cl.stop()
        results["resync_exit"] = codes
    commands["resync"] = (
        "users o0/u<i> (%d) stored ONLINE in a SQLite file, a copy per node; "
        "3 nodes with --restart-grace 1h; an observer w<J> on each node and "
        "a sender g on node 1 (Python WebSocket clients);\n"
        "redis-cli INCR presenced:resync:seq:o0, then g sends a status "
        "change (its event is seq+2 at every node)\n"
        "then LD_PRELOAD=spread.so BENCH_PORTS=... BENCH_ORGS=1 bench/loadgen "
        "hold --conns %d --orgs 1 --idle-seconds 300 --source-addrs 4 "
        "--port $P1 --secret $SECRET, and the same again" % (n, n))


def far_seq(cl, redis, obs, results):
    """PUBLISH of an event whose seq is far past the organization's."""
    snaps0 = [sum(1 for e in c.events if e[1] == "snapshot") for c in obs]
    logs0 = [count_log(x, r"resyncing") for x in cl.nodes]
    seq = cl.seq("o0")
    recv = redis.publish(cl.prefix + "e:o0",
                         "E 999999999 2 -1 1 0 x 1 1\nab{}")
    time.sleep(3.0)
    snaps = [sum(1 for e in c.events if e[1] == "snapshot") - s0
             for c, s0 in zip(obs, snaps0)]
    logs = [count_log(x, r"resyncing") - l0
            for x, l0 in zip(cl.nodes, logs0)]
    time.sleep(1.0)
    snaps2 = [sum(1 for e in c.events if e[1] == "snapshot") - s0
              for c, s0 in zip(obs, snaps0)]
    res = {"published_to": recv, "seq": seq, "snapshots_3s": snaps,
           "snapshots_4s": snaps2, "resync_log_lines_3s": logs}
    log("  far seq: %s" % json.dumps(res))
    results["far_seq"] = res


# ---- the report -----------------------------------------------------------

def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else float("nan")


def write_md(path, d):
    def fmt(v, nd=1):
        return "n/a" if v is None else R.fmt(v, nd)
    res = d["results"]
    L = []
    w = L.append
    w("# presenced cluster over Redis (issue 12): results")
    w("")
    w("`%s` (bench/cluster.py), %s runs where a median is given, %.0f s in "
      "all. Machine: %s. Redis: %s." % (
          d["argv"], d["runs"], d["elapsed"], json.dumps(d["machine"]),
          d["redis_version"]))
    w("")
    w("Every process of a run shares the machine's %d cores: Redis, every "
      "node (each with %s event loops), loadgen or the Python clients." % (
          d["machine"]["nproc"], R.LOOPS[1]))
    w("")
    if res.get("cost"):
        w("## Redis commands and bytes per presence change")
        w("")
        w("| nodes | change | events | commands/event | EVALSHA/event | "
          "PUBLISH/event | bytes in/event | bytes out/event | not seen |")
        w("|---|---|---|---|---|---|---|---|---|")
        for r in res["cost"]:
            p = r["per_event"]
            w("| %d | %s | %d | %s | %s | %s | %s | %s | %d |" % (
                r["nodes"], r["flip"], r["events"],
                fmt(p.get("total_commands_processed", 0), 2),
                fmt(p.get("cmdstat_evalsha", 0), 2),
                fmt(p.get("cmdstat_publish", 0), 2),
                fmt(p.get("total_net_input_bytes", 0), 0),
                fmt(p.get("total_net_output_bytes", 0), 0),
                r["not_seen"]))
        w("")
        w("Per event, every counter (commandstats counts the commands a "
          "script runs too):")
        w("")
        w("```")
        for r in res["cost"]:
            w("%d node(s), %s: %s" % (r["nodes"], r["flip"],
                                     json.dumps(r["per_event"],
                                                sort_keys=True)))
        w("```")
        w("")
        w("Background while idle, per second (beats): " + "; ".join(
            "%d node(s): %s" % (r["nodes"], json.dumps(
                {k: v for k, v in r["idle_per_s"].items()
                 if k in COUNTED or k == "cmdstat_evalsha"}, sort_keys=True))
            for r in res["cost"] if r["flip"] == "manual"))
        w("")
    fan = [k for k in res if k.startswith("fanout_")]
    if fan:
        for scen, title in (("closed", "closed loop, %d senders" %
                             FAN_SENDERS),
                            ("paced", "paced, %s changes/s from 100 senders"
                             % fmt(d["fan_rate"], 0))):
            w("## Fan-out: 10,000 connections, 10 organizations of 1,000, "
              "%s" % title)
            w("")
            w("| | deliveries/s | delivery p50 (ms) | p99 (ms) | change to "
              "last receipt p50 (ms) | p99 (ms) | lost | CPU % of a core: "
              "nodes / redis / loadgen | busy cores | runs (deliveries/s) |")
            w("|---|---|---|---|---|---|---|---|---|---|")
            for cfg, label in (("single", "one server, no Redis"),
                               ("c1", "1 node + Redis"),
                               ("c2", "2 nodes + Redis"),
                               ("c3", "3 nodes + Redis")):
                X = [r for r in res.get("fanout_%s_%s" % (scen, cfg), [])
                     if r]
                if not X:
                    continue

                def m(key):
                    return med([r.get(key) for r in X])

                def mc(key):
                    return med([r["cpu_window"].get(key) for r in X
                                if r.get("cpu_window")])
                nodes_cpu = "+".join(fmt(mc("node%d" % j), 0)
                                     for j in range(1, 4)
                                     if any("node%d" % j in r["cpu_window"]
                                            for r in X))
                w("| %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s "
                  "| %s |" % (
                      label, fmt(m("deliveries_per_s"), 0),
                      fmt(m("p50_ms"), 1), fmt(m("p99_ms"), 1),
                      fmt(m("last_p50_ms"), 1), fmt(m("last_p99_ms"), 1),
                      fmt(m("lost"), 0), nodes_cpu,
                      fmt(mc("redis"), 0) if cfg != "single" else "-",
                      fmt(mc("loadgen"), 0), fmt(mc("machine_busy_cores"), 2),
                      ", ".join(fmt(r["deliveries_per_s"], 0) for r in X)))
            w("")
    if res.get("memory"):
        w("## Redis memory per online user")
        w("")
        w("| nodes | users (orgs) | used_memory before | online | bytes per "
          "online user | after all went OFFLINE | bytes per offline user | "
          "keys (before, online, offline) |")
        w("|---|---|---|---|---|---|---|---|")
        for r in res["memory"]:
            w("| %d | %s (%d) | %s | %s | %s | %s | %s | %s |" % (
                r["nodes"], fmt(r["users"], 0), r["orgs"],
                fmt(r["used_memory_before"], 0),
                fmt(r["used_memory_online"], 0),
                fmt(r["bytes_per_online_user"], 0),
                fmt(r["used_memory_offline"], 0),
                fmt(r["bytes_per_offline_user"], 0),
                ", ".join(str(x) for x in r["keys"])))
        w("")
        w("Sample keys (MEMORY USAGE, bytes): " + "; ".join(
            "%d node(s): %s" % (r["nodes"], json.dumps(r["sample"]))
            for r in res["memory"]))
        w("")
    if res.get("kill"):
        w("## kill -9 of a node to the last OFFLINE at the other nodes")
        w("")
        w("| node_ttl / grace | users on the killed node | first OFFLINE (s) "
          "| last OFFLINE (s), median | runs (last) | bound node_ttl + grace "
          "+ 0.25 s | OFFLINE events seen / expected |")
        w("|---|---|---|---|---|---|---|")
        for ttl, grace in (("5s", "5s"), ("2s", "1s")):
            X = [r for r in res["kill"] if r["node_ttl"] == ttl and
                 r["grace"] == grace]
            if not X:
                continue
            w("| %s / %s | %d | %s | %s | %s | %s | %s |" % (
                ttl, grace, X[0]["users"], fmt(med([r["first_s"] for r in X]),
                                               2),
                fmt(med([r["last_s"] for r in X]), 2),
                ", ".join(fmt(r["last_s"], 2) for r in X),
                fmt(X[0]["bound_s"], 2),
                ", ".join("%d/%d" % (r["offline_events"],
                                     r["expected_events"]) for r in X)))
        w("")
    if res.get("resync"):
        w("## Resync of an organization of 10,000")
        w("")
        w("| organization's connections | change to fresh snapshot at node "
          "1 / 2 / 3 (s), median | runs | nodes and loadgen busy until (s) | snapshot "
          "members |")
        w("|---|---|---|---|---|")
        for v in ("observers only", "10,000 connections over 3 nodes"):
            X = [r for r in res["resync"] if r["variant"] == v]
            if not X:
                continue
            per = [fmt(med([r["snapshot_s"][j] for r in X]), 3)
                   for j in range(3)]
            w("| %s | %s | %s | %s | %s |" % (
                v, " / ".join(per),
                "; ".join("/".join(fmt(x, 3) for x in r["snapshot_s"])
                          for r in X),
                fmt(med([r["busy_s"] for r in X]), 2),
                X[0]["snapshot_members"][0]))
        w("")
    if res.get("far_seq"):
        w("## An event far past the organization's seq")
        w("")
        w("```")
        w(json.dumps(res["far_seq"]))
        w("```")
        w("")
    w("## Commands")
    w("")
    w("Redis: `redis-server --port $RP --bind 127.0.0.1 --save '' "
      "--appendonly no` (tests/redisserver.py), FLUSHALL between runs; "
      "spread.so is the LD_PRELOAD shim in bench/cluster.py (SHIM_C).")
    w("")
    for k, v in d["commands"].items():
        w("%s:" % k)
        w("")
        w("```")
        w(v)
        w("```")
        w("")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(ROOT, "build",
                                                     "presenced"))
    ap.add_argument("--out", default=os.path.join(HERE,
                                                  "results-issue12.md"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="cost,fanout,memory,kill,resync")
    ap.add_argument("--cost-changes", type=int, default=600)
    ap.add_argument("--cost-idle", type=float, default=3.0)
    ap.add_argument("--fan-seconds", type=float, default=8)
    ap.add_argument("--fan-rate", type=float, default=50)
    ap.add_argument("--fan-configs", default="single,c1,c2,c3")
    ap.add_argument("--mem-users", type=int, default=10000)
    ap.add_argument("--mem-orgs", type=int, default=100)
    ap.add_argument("--kill-users", type=int, default=1000)
    ap.add_argument("--resync-users", type=int, default=10000)
    ap.add_argument("--no-far-seq", dest="far_seq", action="store_false")
    ap.add_argument("--quiet-wait", type=float, default=5)
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=25)
    ap.add_argument("--report", metavar="JSON",
                    help="only rewrite --out from a results .json")
    args = ap.parse_args()
    if args.report:
        R.LOOPS[:] = ["--loops", str(os.cpu_count() or 1)]
        with open(args.report) as f:
            write_md(args.out, json.load(f))
        return 0
    args.layout_orgs = FAN_ORGS
    args.server = os.path.abspath(args.server)
    R.NICE = args.nice
    R._renice()     # this process too: its threads read the observers
    R.LOOPS[:] = ["--loops", str(os.cpu_count() or 1)]
    wanted = [w for w in args.only.split(",") if w]
    for b in (R.LOADGEN, args.server):
        if not os.access(b, os.X_OK):
            sys.exit("cluster: %s is not built (make -C bench)" % b)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    def on_alarm(signum, frame):
        raise TimeoutError("--max-minutes reached")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.max_minutes * 60))
    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix="presenced-bench-cluster-")
    log("cluster: temp dir %s" % tmp)
    m = R.machine()
    log("cluster: %s" % m)
    redis = RedisServer(port=None)
    rv = "?"
    results = {"cost": [], "memory": [], "kill": [], "resync": []}
    commands = {}
    ok = False
    try:
        redis.start()
        if args.nice:
            try:
                os.setpriority(os.PRIO_PROCESS, redis.proc.pid, args.nice)
            except OSError:
                pass
        rv = redis.cmd("INFO", "server")
        rv = re.search(r"redis_version:(\S+)", rv).group(1)
        shim = build_shim(tmp)
        if "fanout" in wanted:
            log("cluster: fan-out")
            fig_fanout(args, tmp, redis, shim, results, commands)
        if "cost" in wanted:
            log("cluster: commands and bytes per change")
            fig_cost(args, tmp, redis, results, commands)
        if "memory" in wanted:
            log("cluster: memory per online user")
            fig_memory(args, tmp, redis, shim, results, commands)
        if "kill" in wanted:
            log("cluster: kill -9 to the last OFFLINE")
            fig_kill(args, tmp, redis, results, commands)
        if "resync" in wanted:
            log("cluster: resync of an organization of %d" %
                args.resync_users)
            fig_resync(args, tmp, redis, shim, results, commands)
        ok = True
    finally:
        redis.destroy()
        elapsed = time.time() - t_start
        d = {"argv": " ".join(["bench/cluster.py"] + sys.argv[1:]),
             "machine": m, "runs": args.runs, "elapsed": elapsed,
             "redis_version": rv,
             "fan_rate": args.fan_rate, "results": results,
             "commands": commands, "complete": ok}
        jpath = os.path.splitext(args.out)[0] + ".json"
        with open(jpath, "w") as f:
            json.dump(d, f, indent=1)
        write_md(args.out, d)
        log("cluster: %s in %.0f s; %s and %s" % (
            "done" if ok else "STOPPED", elapsed, args.out, jpath))
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("cluster: logs kept in %s" % tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
