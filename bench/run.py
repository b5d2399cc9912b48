#!/usr/bin/python3
"""run.py - runs bench/loadgen and bench/floor against presenced.

  run.py smoke [--server BIN]              a few seconds; exit 0 when sound
  run.py bench [--big] [--server BIN] [--out results.md] [--runs N]

Every server is started here, on 127.0.0.1 port 0 with a temp database and a
generated secret, and stopped here (SIGTERM, then SIGKILL); every child has
a timeout, so each run stops by itself. Standard library only.

The server runs with its per-client-address limits lifted (--conn-rate,
--msg-rate): the load generator plays thousands of people from four loopback
addresses, and those limits exist for single abusive clients, not for this.

Users exist before a measured run: each layout (users o<i%O>/u<i>) is
provisioned once by `loadgen provision` on a server with --grace 1h, which
leaves them stored as ONLINE. Each measured run starts a fresh server on a
copy of that database:
  - hold and storm with --restart-grace 1ms: everyone is OFFLINE again, so
    every connect is announced to the organization (a cold start);
  - fanout with --restart-grace 1h: reconnects announce nothing, so the
    setup does not cost N^2/2 connect events, and the measured window holds
    only the senders' changes.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOADGEN = os.path.join(HERE, "loadgen")
FLOOR = os.path.join(HERE, "floor")
SECRET = "bench-" + os.urandom(16).hex()  # 38 bytes
LIMITS_OFF = ["--msg-rate", "1000000", "--conn-rate", "1000000",
              "--status-rate", "1000000"]
NICE = 0  # --nice: priority of every process a run starts


def _renice():
    if NICE:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
        except OSError:
            pass  # not root: run at the normal priority


def log(*a):
    print(*a, flush=True)


# ---- processes -----------------------------------------------------------

class Proc:
    """A background process whose output goes to a file; waits for a line."""

    def __init__(self, argv, logpath, ready_re, timeout=20):
        self.argv = argv
        self.logpath = logpath
        self.f = open(logpath, "w")
        self.p = subprocess.Popen(argv, stdout=self.f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL,
                                  start_new_session=True,
                                  preexec_fn=_renice)
        self.pid = self.p.pid
        self.port = None
        end = time.time() + timeout
        rx = re.compile(ready_re)
        while time.time() < end:
            with open(logpath) as r:
                m = rx.search(r.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not start; log:\n%s" %
                           (argv[0], open(logpath).read()[-2000:]))

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL; returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.f.close()
        return self.p.returncode


LOOPS = []  # --loops: added to every presenced command line


def start_server(binary, db, extra, tmp, tag):
    argv = [binary, "serve", "--listen", "127.0.0.1:0", "--db", db,
            "--jwt-secret", SECRET] + LIMITS_OFF + LOOPS + extra
    return Proc(argv, os.path.join(tmp, "server-%s.log" % tag),
                r"listening on http://127\.0\.0\.1:(\d+)")


def start_floor(tmp, tag, max_seconds, extra=()):
    return Proc([FLOOR, "--port", "0", "--max-seconds", str(max_seconds)] +
                list(extra),
                os.path.join(tmp, "floor-%s.log" % tag),
                r"floor listening on 127\.0\.0\.1:(\d+)")


def loadgen(args, port, pid, timeout, quiet=False):
    """Runs loadgen; returns (exit code, its JSON line as a dict or None,
    the command line with the run's port, secret and pid as placeholders)."""
    argv = [LOADGEN] + args + ["--port", str(port), "--secret", SECRET]
    if pid:
        argv += ["--server-pid", str(pid)]
    shown = " ".join(["bench/loadgen"] + args +
                     ["--port", "$PORT", "--secret", "$SECRET"] +
                     (["--server-pid", "$PID"] if pid else []))
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout, preexec_fn=_renice)
    except subprocess.TimeoutExpired as e:
        log("  loadgen timed out after %d s" % timeout)
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, None, shown, out
    result = None
    for line in r.stdout.splitlines():
        if line.startswith('{"scenario":'):
            result = json.loads(line)
        elif not quiet:
            log(line)
    if r.stderr.strip():
        log(r.stderr.strip())
    return r.returncode, result, shown, r.stdout


# ---- the machine ---------------------------------------------------------

def cpu_sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


def busy_cores(a, b):
    total, idle = b[0] - a[0], b[1] - a[1]
    return (os.cpu_count() or 1) * (1 - idle / total) if total else 0.0


def wait_quiet(limit_s, threshold=0.25):
    """Waits (at most limit_s) for a second in which the machine uses under
    threshold cores; returns the last second's busy cores."""
    end = time.time() + limit_s
    while True:
        a = cpu_sample()
        time.sleep(1)
        b = cpu_sample()
        busy = busy_cores(a, b)
        if busy < threshold or time.time() >= end:
            return busy


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    nofile = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True,
                            text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return {
        "presenced": rev or "?",
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": os.uname().release,
        "memory_gib": round(mem_kb / 1048576, 1),
        "nofile_hard": nofile,
        "os": open("/etc/debian_version").read().strip()
        if os.path.exists("/etc/debian_version") else "?",
    }


# ---- provisioning --------------------------------------------------------

def provision(server_bin, tmp, name, conns, orgs):
    """Creates users o<i%orgs>/u<i> in a new database, stored ONLINE."""
    db = os.path.join(tmp, "%s.db" % name)
    srv = start_server(server_bin, db, ["--grace", "1h"], tmp, "prov-" + name)
    try:
        rc, res, _, _ = loadgen(["provision", "--conns", str(conns), "--orgs",
                                 str(orgs), "--batch", "500", "--json-only"],
                                srv.port, 0, 600, quiet=True)
    finally:
        code = srv.stop()
    if rc != 0 or code != 0:
        raise RuntimeError("provisioning %s failed (loadgen %d, server %d): %s"
                           % (name, rc, code, res))
    log("  provisioned %s: %d users in %d organizations (%.1f s)" %
        (name, conns, orgs, res["connect_s"]))
    return db


def copy_db(template, tmp, tag):
    db = os.path.join(tmp, "run-%s.db" % tag)
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(template + sfx):
            shutil.copyfile(template + sfx, db + sfx)
        elif os.path.exists(db + sfx):
            os.unlink(db + sfx)
    return db


# ---- smoke ---------------------------------------------------------------

def smoke(args):
    """A few seconds: every scenario once, small, against a fresh server, and
    fanout against the floor. Fails on any loss, error or unclean stop."""
    t0 = time.time()
    for b in (LOADGEN, FLOOR, args.server):
        if not os.access(b, os.X_OK):
            sys.exit("smoke: %s is not built" % b)
    tmp = tempfile.mkdtemp(prefix="presenced-bench-smoke-")
    ok = True
    srv = flo = None
    try:
        srv = start_server(args.server, os.path.join(tmp, "smoke.db"), [],
                           tmp, "smoke")
        common = ["--source-addrs", "2", "--setup-timeout", "20",
                  "--json-only"]
        runs = [
            ["fanout", "--conns", "200", "--orgs", "4", "--senders", "8",
             "--seconds", "1.5", "--event-timeout", "5"],
            ["fanout", "--conns", "200", "--orgs", "4", "--senders", "4",
             "--rate", "50", "--flip", "auto", "--seconds", "1",
             "--event-timeout", "5"],
            ["hold", "--conns", "200", "--orgs", "2", "--idle-seconds", "0.5",
             "--app-ping", "0.5"],
            ["storm", "--conns", "200", "--orgs", "20"],
        ]
        for r in runs:
            rc, res, shown, out = loadgen(r + common, srv.port, srv.pid, 40,
                                          quiet=True)
            good = rc == 0 and res is not None and \
                res.get("connected") == 200 and res.get("lost", 0) == 0
            log("smoke: %-6s rc=%d %s" % (r[0], rc, json.dumps(res)))
            ok = ok and good
        code = srv.stop()
        srv = None
        if code != 0:
            log("smoke: server exited with %d" % code)
            ok = False
        flo = start_floor(tmp, "smoke", 30)
        rc, res, _, _ = loadgen(["fanout", "--conns", "200", "--orgs", "4",
                                 "--senders", "8", "--seconds", "1"] + common,
                                flo.port, flo.pid, 30, quiet=True)
        log("smoke: floor  rc=%d %s" % (rc, json.dumps(res)))
        ok = ok and rc == 0 and res is not None and res["lost"] == 0
    except Exception as e:  # a server that does not start, a timeout
        log("smoke: %s" % e)
        ok = False
    finally:
        if srv:
            srv.stop()
        if flo:
            flo.stop()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("smoke: logs kept in %s" % tmp)
    log("smoke: %s in %.1f s" % ("ok" if ok else "FAILED", time.time() - t0))
    return 0 if ok else 1


# ---- the standard set ----------------------------------------------------

def med(runs, key):
    vals = [r[key] for r in runs if r and isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else float("nan")


def bench(args):
    big = args.big
    n_runs = args.runs
    hold_idle = args.hold_idle or (90 if big else 30)
    fan_secs = args.fan_seconds or (30 if big else 10)
    p99_secs = args.fan_seconds or (60 if big else 20)
    senders = args.senders
    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix="presenced-bench-")
    log("bench: temp dir %s, %d runs each%s" %
        (tmp, n_runs, ", big" if big else ""))
    m = machine()
    log("bench: %s" % m)

    layouts = {
        "hold": (19500, 20),
        "storm": (19500, 1950),
        "fan10": (10000, 10),
        "fan1": (10000, 1),
    }
    if args.only:
        wanted = set(args.only.split(","))
        need = {"hold": "hold", "storm": "storm", "fanout10": "fan10",
                "fanout1": "fan1"}
        layouts = {k: v for k, v in layouts.items()
                   if any(need[w] == k for w in wanted)}
    else:
        wanted = {"hold", "fanout10", "fanout1", "storm"}
    log("bench: provisioning users")
    dbs = {}
    for name, (n, o) in layouts.items():
        dbs[name] = provision(args.server, tmp, name, n, o)

    results = {"hold": [], "fanout10": [], "floor10": [], "fanout1": [],
               "floor1": [], "storm": [], "floor_storm": [], "fanout10_1": [],
               "floor_hold": []}
    commands = {}
    other_load = []

    loops = int(LOOPS[1]) if LOOPS else 1

    def measured(key, layout, srv_extra, lg_args, timeout, delay=0.0):
        tag = "%s-%d" % (key, len(results[key]))
        pre = wait_quiet(args.quiet_wait)
        db = copy_db(dbs[layout], tmp, tag)
        srv = start_server(args.server, db, srv_extra, tmp, tag)
        try:
            if delay:
                time.sleep(delay)
            a = cpu_sample()
            rc, res, shown, _ = loadgen(lg_args, srv.port, srv.pid, timeout)
            b = cpu_sample()
        finally:
            code = srv.stop()
        if res is not None:
            res["machine_busy_cores"] = round(busy_cores(a, b), 2)
            res["busy_before_cores"] = round(pre, 2)
            res["rc"] = rc
        commands[key] = ("build/presenced serve --listen "
                         "127.0.0.1:0 --db COPY.db --jwt-secret $SECRET " +
                         " ".join(LIMITS_OFF + srv_extra) + "\n" + shown)
        results[key].append(res)
        if code != 0:
            log("  server exited with %d (log %s)" % (code, srv.logpath))
        return res

    def floor_run(key, lg_args, timeout, extra=()):
        pre = wait_quiet(args.quiet_wait)
        flo = start_floor(tmp, "%s-%d" % (key, len(results[key])),
                          timeout + 30, extra)
        try:
            a = cpu_sample()
            rc, res, shown, _ = loadgen(lg_args, flo.port, flo.pid, timeout)
            b = cpu_sample()
        finally:
            flo.stop()
        if res is not None:
            res["machine_busy_cores"] = round(busy_cores(a, b), 2)
            res["busy_before_cores"] = round(pre, 2)
            res["rc"] = rc
        commands[key] = ("bench/floor --port 0 %s\n" % " ".join(extra) +
                         shown)
        results[key].append(res)
        return res

    fan10 = ["fanout", "--conns", "10000", "--orgs", "10", "--senders",
             str(senders), "--seconds", str(fan_secs), "--source-addrs", "4"]
    fan1 = ["fanout", "--conns", "10000", "--orgs", "1", "--senders", "100",
            "--rate", "10", "--seconds", str(p99_secs), "--source-addrs", "4"]
    hold = ["hold", "--conns", "19500", "--orgs", "20", "--idle-warmup", "20",
            "--idle-seconds", str(hold_idle), "--source-addrs", "4", "--max-pending", "1000"]
    storm = ["storm", "--conns", "19500", "--orgs", "1950",
             "--source-addrs", "4"]

    for i in range(n_runs):
        log("bench: round %d of %d" % (i + 1, n_runs))
        if "fanout10" in wanted:
            log(" fanout 10 x 1,000, the floor:")
            floor_run("floor10", fan10, 120 + fan_secs)
            log(" fanout 10 x 1,000, presenced, %d loops:" % loops)
            measured("fanout10", "fan10", ["--restart-grace", "1h"], fan10,
                     240 + fan_secs)
            if loops != 1:
                log(" fanout 10 x 1,000, presenced, 1 loop:")
                measured("fanout10_1", "fan10",
                         ["--restart-grace", "1h", "--loops", "1"], fan10,
                         240 + fan_secs)
        if "fanout1" in wanted:
            log(" fanout 1 x 10,000 at 10 changes/s, the floor:")
            floor_run("floor1", fan1, 120 + p99_secs)
            log(" fanout 1 x 10,000 at 10 changes/s, presenced:")
            measured("fanout1", "fan1", ["--restart-grace", "1h"], fan1,
                     300 + p99_secs)
        if "storm" in wanted:
            log(" storm 19,500, the floor:")
            floor_run("floor_storm", storm, 120)
            log(" storm 19,500, presenced:")
            measured("storm", "storm", ["--restart-grace", "1ms"], storm, 120,
                     delay=0.5)
        if "hold" in wanted:
            log(" hold 19,500, the floor (30 s pings):")
            floor_run("floor_hold", hold, 320 + hold_idle,
                      ("--heartbeat", "30"))
            log(" hold 19,500:")
            measured("hold", "hold", ["--restart-grace", "1ms"], hold,
                     320 + hold_idle, delay=0.5)

    elapsed = time.time() - t_start
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"machine": m, "results": results, "commands": commands,
                   "elapsed": elapsed, "big": big, "runs": n_runs,
                   "senders": senders, "nice": NICE}, f, indent=1)
    write_results(args, m, results, commands, elapsed, big)
    ok = all(r and r.get("rc") == 0 for k in results for r in results[k])
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        log("bench: some runs failed; logs kept in %s" % tmp)
    log("bench: done in %.0f s; wrote %s" % (elapsed, args.out))
    return 0 if ok else 1


def _sysctl(name):
    try:
        with open("/proc/sys/" + name) as f:
            return f.read().strip()
    except OSError:
        return "?"


def fmt(v, nd=1):
    if isinstance(v, float) and v != v:
        return "n/a"
    if isinstance(v, float):
        return ("{:,.%df}" % nd).format(v)
    return "{:,}".format(v)


def write_results(args, m, R, commands, elapsed, big):
    L = []
    w = L.append
    w("# presenced benchmark results")
    w("")
    w("Written by `make -C bench %s` (bench/run.py) in %.0f s. Medians of %d "
      "runs each; every run's JSON line is in the .json file next to this one." %
      ("bench-big" if big else "bench", elapsed, args.runs))
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    w("| CPU | %s, %d cores (`nproc`) |" % (m["cpu"], m["nproc"]))
    w("| memory | %s GiB |" % m["memory_gib"])
    w("| kernel | Linux %s, Debian %s |" % (m["kernel"], m["os"]))
    w("| descriptors | %s per process (hard limit) |" % m["nofile_hard"])
    w("| network | loopback only; load generator and server share the cores |")
    w("| presenced | `%s` (`git describe --always --dirty`) |" %
      m.get("presenced", "?"))
    w("| listen queue | net.core.somaxconn %s, tcp_max_syn_backlog %s |" % (
        _sysctl("net/core/somaxconn"), _sysctl("net/ipv4/tcp_max_syn_backlog")))
    w("")
    w("The server runs %s event loops (`--loops`, one per core here), and "
      "fanout 10 x 1,000 also with one. The load generator is one "
      "thread. `busy` columns are the whole machine's CPU use during a run, "
      "in cores (2.0 = both cores saturated); anything above server + "
      "loadgen is other work on the machine. Server, floor and loadgen ran "
      "at nice %d. The server's per-client-address limits are lifted "
      "(`%s`): loadgen plays thousands of people from 4 loopback "
      "addresses." % (LOOPS[1], NICE, " ".join(LIMITS_OFF)))
    w("")

    H, F10, FL, F1, S = (R["hold"], R["fanout10"], R["floor10"], R["fanout1"],
                         R["storm"])
    F10_1, FH = R.get("fanout10_1", []), R.get("floor_hold", [])
    FL1, FS = R.get("floor1", []), R.get("floor_storm", [])
    w("## Figures")
    w("")
    if H:
        w("### hold: 19,500 idle connections, 20 organizations of 975")
        w("")
        w("| | connect time (s) | RSS before (MiB) | RSS right after "
          "connecting (MiB) | RSS held (MiB) | bytes/conn held | bytes/conn "
          "right after connecting | kernel bytes/socket | idle CPU (% of a "
          "core) | extrapolated to 1,000,000 (% of a core) | busy |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, X in (("floor", FH), ("presenced", H)):
            if not X:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, fmt(med(X, "connect_s"), 2),
                fmt(med(X, "rss_before") / 1048576),
                fmt(med(X, "rss_after") / 1048576),
                fmt(med(X, "rss_after_idle") / 1048576),
                fmt(med(X, "bytes_per_conn"), 0),
                fmt(med(X, "bytes_per_conn_after_connect"), 0),
                fmt(med(X, "kernel_bytes_per_socket"), 0),
                fmt(med(X, "idle_cpu_pct"), 3),
                fmt(med(X, "idle_cpu_pct_at_1m"), 1),
                fmt(med(X, "machine_busy_cores"), 2)))
        w("")
        w("Connect time is from the first connect to the last snapshot, with "
          "every connect announced to its organization (users stored OFFLINE). "
          "Bytes/conn held is (RSS after the idle window - RSS before) / "
          "connections, the users being loaded before: what holding the "
          "connections costs once the connect burst's transient buffers "
          "(75 KB snapshots and events queued to thousands of sockets) are "
          "freed and given back (presenced trims the allocator after a burst, "
          "once a second is quiet). Right after connecting shows that peak. "
          "Kernel bytes/socket is the Slab growth over 2 x connections (both "
          "ends are on this machine). Idle CPU is the server's utime+stime "
          "over the idle window (after 20 s of warm-up, so that the store "
          "write and trim after the burst are done), 30 s heartbeats: one "
          "ping out and one pong in per connection. The floor sends the same "
          "2-byte ping with one send() per connection every 30 s and reads "
          "the pongs, nothing else.")
        w("")
        bpc, kps = med(H, "bytes_per_conn"), med(H, "kernel_bytes_per_socket")
        w("Extrapolated to 1,000,000 idle connections at these per-connection "
          "costs: %s GiB of server user space + %s GiB of kernel socket "
          "memory (server side) = %s GiB, and %s %% of a core for heartbeats."
          % (fmt(bpc * 1e6 / 2**30, 1), fmt(kps * 1e6 / 2**30, 1),
             fmt((bpc + kps) * 1e6 / 2**30, 1),
             fmt(med(H, "idle_cpu_pct_at_1m"), 0)))
        w("")
    if F10:
        w("### fanout: 10 organizations of 1,000, %d senders, closed loop" %
          args.senders)
        w("")
        w("| | deliveries/s | % of floor | p50 (ms) | p99 (ms) | p99.9 (ms) | "
          "max (ms) | lost | server CPU | loadgen CPU | busy |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        def ratio_of(X):
            r = [a["deliveries_per_s"] / b["deliveries_per_s"] * 100
                 for a, b in zip(X, FL) if a and b and b["deliveries_per_s"]]
            return statistics.median(r) if r else float("nan")
        rows = [("floor", FL, 100.0),
                ("presenced, %s loops" % LOOPS[1], F10, ratio_of(F10))]
        if F10_1:
            rows.append(("presenced, 1 loop", F10_1, ratio_of(F10_1)))
        for name, X, ratio in rows:
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s %% | %s %% | %s |" % (
                name, fmt(med(X, "deliveries_per_s"), 0), fmt(ratio, 0),
                fmt(med(X, "p50_ms"), 2), fmt(med(X, "p99_ms"), 2),
                fmt(med(X, "p999_ms"), 2), fmt(med(X, "max_ms"), 2),
                fmt(med(X, "lost"), 0), fmt(med(X, "server_cpu_pct"), 0),
                fmt(med(X, "loadgen_cpu_pct"), 0),
                fmt(med(X, "machine_busy_cores"), 2)))
        w("")
        w("Per round: " + "; ".join(
            "floor %s, presenced %s: %s %%" % (fmt(b["deliveries_per_s"], 0),
                                 fmt(a["deliveries_per_s"], 0),
                                 fmt(a["deliveries_per_s"] /
                                     b["deliveries_per_s"] * 100, 0))
            for a, b in zip(F10, FL) if a and b and b["deliveries_per_s"]))
        if F10_1:
            w("")
            w("One loop, per round: " + "; ".join(
                "%s: %s %%" % (fmt(a["deliveries_per_s"], 0),
                               fmt(a["deliveries_per_s"] /
                                   b["deliveries_per_s"] * 100, 0))
                for a, b in zip(F10_1, FL) if a and b and b["deliveries_per_s"]))
        w("")
        w("%% of floor is the median of the per-round ratios (floor and "
          "presenced measured back to back in each round, same loadgen "
          "command). Latency is per delivery, from the sender's send to each "
          "receipt; with %d changes in flight it is mostly queueing (Little's "
          "law). Lost counts every (event, member) pair that did not arrive." %
          args.senders)
        w("")
    if F1:
        w("### fanout: 1 organization of 10,000 at 10 changes/s")
        w("")
        w("| | change to last receipt p50 (ms) | p99 (ms) | max (ms) | "
          "delivery p50 (ms) | delivery p99 (ms) | deliveries/s | lost | "
          "server CPU | loadgen CPU | busy |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, X in (("floor", FL1), ("presenced", F1)):
            if not X:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s %% | %s %% | %s |" % (
                name, fmt(med(X, "last_p50_ms"), 2),
                fmt(med(X, "last_p99_ms"), 2), fmt(med(X, "last_max_ms"), 2),
                fmt(med(X, "p50_ms"), 2), fmt(med(X, "p99_ms"), 2),
                fmt(med(X, "deliveries_per_s"), 0), fmt(med(X, "lost"), 0),
                fmt(med(X, "server_cpu_pct"), 0),
                fmt(med(X, "loadgen_cpu_pct"), 0),
                fmt(med(X, "machine_busy_cores"), 2)))
        w("")
        w("Each change goes to 10,000 sockets: one writev each on the "
          "server's side and one read each on loadgen's, so the last receipt "
          "comes after the whole organization has been written and read; the "
          "floor shows what that costs on this machine by itself.")
        w("")
    if S:
        w("### storm: 19,500 clients at once, 1,950 organizations of 10")
        w("")
        w("| | upgrades/s | first connect to last snapshot (s) | connect->"
          "snapshot p50 (ms) | p99 (ms) | failed | listen overflows | "
          "server CPU | loadgen CPU | busy |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for name, X in (("floor", FS), ("presenced", S)):
            if not X:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s %% | %s %% | %s |" % (
                name, fmt(med(X, "upgrades_per_s"), 0),
                fmt(med(X, "last_snapshot_s"), 3),
                fmt(med(X, "conn_p50_ms"), 1), fmt(med(X, "conn_p99_ms"), 1),
                fmt(med(X, "failed"), 0), fmt(med(X, "listen_overflows"), 0),
                fmt(med(X, "connect_server_cpu_pct"), 0),
                fmt(med(X, "connect_loadgen_cpu_pct"), 0),
                fmt(med(X, "machine_busy_cores"), 2)))
        w("")
        w("Listen overflows are SYNs the kernel dropped because the "
          "server's accept queue was full (min(backlog, somaxconn)); those "
          "clients retry after 1 s, then 3 s, which is what stretches the "
          "time to the last snapshot.")
        w("")
        w("The floor answers the upgrade without checking the token and "
          "sends an empty snapshot; presenced verifies the JWT, looks the "
          "user up, announces the connect to the organization and sends "
          "the 10-member snapshot.")
        w("")
    w("## Commands")
    w("")
    w("`make -C bench bench` runs `bench/run.py bench --nice -10` (and "
      "`bench-big` adds `--big`: 90 s idle, 30 s and 60 s fanout windows). "
      "Users are created once per layout, O organizations of N/O users "
      "(o<i%O>/u<i>), on a server that keeps them ONLINE, stopped with "
      "SIGTERM:")
    w("")
    w("```")
    w("build/presenced serve --listen 127.0.0.1:0 --db LAYOUT.db --jwt-secret "
      "$SECRET %s --grace 1h" % " ".join(LIMITS_OFF))
    w("bench/loadgen provision --conns N --orgs O --batch 500 --port $PORT "
      "--secret $SECRET")
    w("```")
    w("")
    w("Each measured run then starts a fresh server on a copy of that "
      "database (`--restart-grace 1ms`: everyone OFFLINE, every connect "
      "announced; `--restart-grace 1h`: reconnects announce nothing, so the "
      "fanout setup costs no N^2/2 connect events), or the floor, and runs:")
    w("")
    for k in ("floor10", "fanout10", "fanout10_1", "floor1", "fanout1",
              "floor_storm", "storm", "floor_hold", "hold"):
        if k in commands:
            w("%s:" % k)
            w("")
            w("```")
            w(commands[k].replace("bench/../build/", "build/"))
            w("```")
            w("")
    w("## Every run")
    w("")
    w("```")
    for k in ("floor_hold", "hold", "floor10", "fanout10", "fanout10_1",
              "floor1", "fanout1", "floor_storm", "storm"):
        for r in R.get(k, []):
            w(json.dumps(r))
    w("```")
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")


# ---- profile -------------------------------------------------------------

def profile(args):
    """perf record of the server (or the floor) during fanout 10 x 1,000;
    prints perf report's top entries."""
    if not shutil.which("perf"):
        sys.exit("profile: perf is not installed (linux-perf)")
    tmp = tempfile.mkdtemp(prefix="presenced-bench-profile-")
    secs = args.fan_seconds or 10
    lg = ["fanout", "--conns", "10000", "--orgs", "10", "--senders",
          str(args.senders), "--seconds", str(secs + 4), "--source-addrs", "4"]
    if args.floor:
        target = start_floor(tmp, "profile", secs + 200)
    else:
        db = provision(args.server, tmp, "fan10", 10000, 10)
        target = start_server(args.server, db, ["--restart-grace", "1h"], tmp,
                              "profile")
    data = os.path.join(tmp, "perf.data")
    try:
        argv = [LOADGEN] + lg + ["--port", str(target.port), "--secret",
                                 SECRET, "--server-pid", str(target.pid)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                             preexec_fn=_renice)
        # The sending window opens about a second after the connect
        # summary (the organizations settle first).
        out = []
        for line in p.stdout:
            out.append(line)
            if line.startswith("  CPU while connecting"):
                break
        time.sleep(args.profile_delay)
        subprocess.run(["perf", "record", "-F", "999", "-g", "-o", data, "-p",
                        str(target.pid), "--", "sleep", str(secs)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=secs + 60)
        rest, _ = p.communicate(timeout=300)
        log(("".join(out) + rest).strip())
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio",
                              "--no-children", "--percent-limit", "0.7",
                              "-g", "none", "--sort", "dso,symbol"],
                             capture_output=True, text=True, timeout=300)
        log("\n".join(l for l in rep.stdout.splitlines()
                      if l and not l.startswith("#"))[:6000])
    finally:
        target.stop()
    log("profile: perf data in %s" % data)
    return 0


def report(args):
    """Rewrites the markdown from a results .json (run.py bench writes both)."""
    global NICE
    with open(args.json) as f:
        d = json.load(f)
    args.runs, args.senders, NICE = d["runs"], d["senders"], d["nice"]
    write_results(args, d["machine"], d["results"], d["commands"],
                  d["elapsed"], d["big"])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["smoke", "bench", "profile", "report"])
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"),
                    help="report: the results file to render")
    ap.add_argument("--server", default=os.path.join(ROOT, "build",
                                                     "presenced"))
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--senders", type=int, default=20)
    ap.add_argument("--only", default="",
                    help="comma list of hold,fanout10,fanout1,storm")
    ap.add_argument("--quiet-wait", type=float, default=20,
                    help="seconds to wait for an idle machine before a run")
    ap.add_argument("--hold-idle", type=float, default=0,
                    help="hold: idle window in seconds (30; big: 90)")
    ap.add_argument("--fan-seconds", type=float, default=0,
                    help="fanout: sending window in seconds (10 and 20; "
                         "big: 30 and 60)")
    ap.add_argument("--floor", action="store_true",
                    help="profile: profile the floor instead of presenced")
    ap.add_argument("--profile-delay", type=float, default=2,
                    help="profile: seconds from the end of the connect "
                         "phase to recording")
    ap.add_argument("--loops", type=int, default=0,
                    help="event loops of presenced (0: one per core); "
                         "fanout 10 x 1,000 also runs with one")
    ap.add_argument("--nice", type=int, default=0,
                    help="run server, floor and loadgen at this nice value "
                         "(negative needs root), against other work on a "
                         "shared machine")
    args = ap.parse_args()
    global NICE
    NICE = args.nice
    LOOPS[:] = ["--loops", str(args.loops or os.cpu_count() or 1)]
    args.server = os.path.abspath(args.server)
    if args.what == "smoke":
        return smoke(args)
    if args.what == "profile":
        return profile(args)
    if args.what == "report":
        return report(args)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
