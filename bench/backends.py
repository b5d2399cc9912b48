#!/usr/bin/python3
"""backends.py - PostgreSQL beside SQLite (issue 11), same machine, same runs.

  backends.py [--runs 3] [--only login,flush,storm] [--server BIN]
              [--out results-issue11.md] [--nice N]

Three figures, each on both backends, medians of --runs runs, run
interleaved (round 1 SQLite then PostgreSQL, round 2 PostgreSQL then
SQLite, ...) so that both meet the machine in the same state:

  login   POST /api/login by --login-conc clients at once (keep-alive, each
          sends its next login when the last is answered) for
          --login-seconds after a 2 s warm-up: logins answered 200 per
          second. --login-users users with passwords (one argon2id hash
          from `presenced user add`, the same string stored for all).
  logindb the database part of a login alone (bench/storebench login):
          the user read by email, then the session written and the
          user's sessions trimmed in one transaction, 2,000 times in a
          row on one connection; the password check (argon2id, most of a
          login's time) is left out.
  flush   one store_presence_write() of 100,000 rows (bench/storebench):
          the database work of a flush of 100,000 dirty users, on a store
          opened as the server opens it.
  storm   19,500 WebSocket connects at once, each with its own login
          session's cookie (sessions inserted with known tokens, hashed
          as the server hashes them: SHA-256), 1,950 organizations of 10:
          first connect to last snapshot, as bench/run.py's storm. Also
          the server's start (users and sessions loaded) to listening.

Databases are built once as SQLite files (Python's sqlite3 on the schema
`presenced org add` creates) and copied into PostgreSQL with `presenced db
copy`; every run gets a fresh copy (a file copy, or CREATE DATABASE ...
TEMPLATE). PostgreSQL is a throwaway cluster (tests/pgcluster.py) with its
realistic settings (fast=False: fsync and synchronous_commit on), destroyed
at the end, also on error or SIGTERM. Every child has a timeout and the
whole run an alarm (--max-minutes). Standard library, plus psycopg2 for
the cluster's housekeeping.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import sqlite3
import statistics
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
import pgcluster  # noqa: E402

STOREBENCH = os.path.join(HERE, "storebench")
PASSWORD = "bench-password-11"
BACKENDS = ("sqlite", "postgresql")
LOGIN_OFF = ["--login-limit", "1000000", "--login-queue", "100000"]
log = R.log


# ---- databases -----------------------------------------------------------

def sqlite_template(server, tmp, name, users, orgs, pw_hash=None,
                    sessions=False):
    """A SQLite file with users o<i%orgs>/u<i> (i < users), all OFFLINE;
    with pw_hash, emails u<i>@bench.example and that hash; with sessions,
    one live session each, whose tokens (line i: user i's) go to
    NAME.cookies. Returns the file's path."""
    db = os.path.join(tmp, "%s.db" % name)
    # The schema as the server makes it: the CLI creates the file.
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
            " last_seen_ms, created_ms) VALUES(?,?,?,?,?,0,NULL,0,?)",
            (("o%d" % (i % orgs), "u%d" % i,
              "u%d@bench.example" % i if pw_hash else None, "u%d" % i,
              pw_hash, now) for i in range(users)))
        if sessions:
            toks = [base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=")
                    .decode() for _ in range(users)]
            exp = now + 30 * 86400 * 1000
            con.executemany(
                "INSERT INTO sessions(token_hash, org, user, created_ms,"
                " expires_ms) VALUES(?,?,?,?,?)",
                ((hashlib.sha256(t.encode()).digest(), "o%d" % (i % orgs),
                  "u%d" % i, now, exp) for i, t in enumerate(toks)))
            with open(os.path.join(tmp, "%s.cookies" % name), "w") as f:
                f.write("\n".join(toks) + "\n")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


def password_hash(server, tmp):
    """One argon2id string from `presenced user add` (as stored for a user
    added by the CLI), to be stored for every bench user."""
    db = os.path.join(tmp, "hash.db")
    subprocess.run([server, "org", "add", "o0", "--db", db], check=True,
                   timeout=60, stdout=subprocess.DEVNULL)
    subprocess.run([server, "user", "add", "--db", db, "--org", "o0",
                    "--email", "x@bench.example", "--name", "x"],
                   input=PASSWORD + "\n", text=True, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    h = con.execute("SELECT pw_hash FROM users").fetchone()[0]
    con.close()
    return h


def pg_template(server, cluster, sqlite_db, name):
    """Copies the file into a new PostgreSQL database NAME (to be used as a
    template) and analyzes it, as autovacuum would soon after a copy."""
    cluster.create_db(name)
    subprocess.run([server, "db", "copy", "--from", sqlite_db, "--to",
                    cluster.uri(name)], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    conn = cluster.connect(name)
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    return name


class Fresh:
    """A fresh database for one run: a copy of the SQLite file, or a
    PostgreSQL database made from the template; dropped afterwards."""

    def __init__(self, backend, tpl, tmp, cluster, tag):
        self.backend, self.cluster = backend, cluster
        if backend == "sqlite":
            self.db = R.copy_db(tpl[backend], tmp, tag)
            self.name = None
        else:
            self.name = "run_" + tag.replace("-", "_")
            cluster.create_db(self.name, template=tpl[backend])
            self.db = cluster.uri(self.name)

    def drop(self):
        if self.name:
            self.cluster.drop_db(self.name)
        else:
            for sfx in ("", "-wal", "-shm", ".lock"):
                try:
                    os.unlink(self.db + sfx)
                except OSError:
                    pass


def shown_db(backend):
    return "COPY.db" if backend == "sqlite" else \
        "postgresql://postgres:$PW@127.0.0.1:$PGPORT/COPY"


# ---- the login load ------------------------------------------------------

def login_load(port, users, conc, warmup, seconds):
    """conc threads, each a keep-alive client sending POST /api/login for
    user (thread + k * conc) % users as soon as the last one is answered.
    Counts answers that arrive inside [warmup, warmup + seconds)."""
    t0 = time.monotonic()
    w0, w1 = t0 + warmup, t0 + warmup + seconds
    lock = threading.Lock()
    codes, lat, errors = {}, [], []

    def worker(i):
        c = None
        k = 0
        while time.monotonic() < w1:
            u = (i + k * conc) % users
            k += 1
            body = json.dumps({"email": "u%d@bench.example" % u,
                               "password": PASSWORD})
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", port,
                                                   timeout=30)
                s = time.monotonic()
                c.request("POST", "/api/login", body,
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                e = time.monotonic()
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = None
            except (OSError, http.client.HTTPException) as ex:
                with lock:
                    errors.append(repr(ex))
                if c:
                    c.close()
                c = None
                time.sleep(0.05)
                continue
            if w0 <= e < w1:
                with lock:
                    codes[r.status] = codes.get(r.status, 0) + 1
                    if r.status == 200:
                        lat.append(e - s)
        if c:
            c.close()

    th = [threading.Thread(target=worker, args=(i,), daemon=True)
          for i in range(conc)]
    for t in th:
        t.start()
    for t in th:
        t.join(warmup + seconds + 60)
    lat.sort()
    ok = codes.get(200, 0)

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else 0

    return {"scenario": "login", "logins_per_s": ok / seconds, "ok": ok,
            "codes": {str(k): v for k, v in codes.items()},
            "errors": len(errors), "first_error": errors[0] if errors else "",
            "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "concurrency": conc, "seconds": seconds}


# ---- one measured run ----------------------------------------------------

def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        fl = st[st.rindex(")") + 2:].split()
        return int(fl[11]) + int(fl[12])
    except (OSError, ValueError, IndexError):
        return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(ROOT, "build",
                                                     "presenced"))
    ap.add_argument("--out", default=os.path.join(HERE,
                                                  "results-issue11.md"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="login,logindb,flush,storm")
    ap.add_argument("--login-db-logins", type=int, default=2000)
    ap.add_argument("--login-users", type=int, default=200)
    ap.add_argument("--login-conc", type=int, default=8)
    ap.add_argument("--login-seconds", type=float, default=15)
    ap.add_argument("--flush-rows", type=int, default=100000)
    ap.add_argument("--storm-conns", type=int, default=19500)
    ap.add_argument("--quiet-wait", type=float, default=30)
    ap.add_argument("--nice", type=int, default=0,
                    help="nice value of every process a run starts, "
                         "PostgreSQL's included (negative needs root)")
    ap.add_argument("--max-minutes", type=float, default=40,
                    help="the whole run ends (clusters destroyed) past this")
    args = ap.parse_args()
    args.server = os.path.abspath(args.server)
    R.NICE = args.nice
    R.LOOPS[:] = ["--loops", str(os.cpu_count() or 1)]
    wanted = [w for w in args.only.split(",") if w]
    for b in (R.LOADGEN, STOREBENCH, args.server):
        if not os.access(b, os.X_OK):
            sys.exit("backends: %s is not built (make -C bench)" % b)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    def on_alarm(signum, frame):
        raise TimeoutError("--max-minutes reached")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.max_minutes * 60))

    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix="presenced-bench-backends-")
    log("backends: temp dir %s, %d runs each" % (tmp, args.runs))
    m = R.machine()
    cluster = pgcluster.Cluster(fast=False)
    results = {"%s_%s" % (w, b): [] for w in wanted for b in BACKENDS}
    commands = {}
    ok = False
    try:
        cluster.start()
        if args.nice:
            # The database's work must run at the server's priority:
            # backends fork from the postmaster and inherit its nice.
            pm = cluster._pgpid
            for pid in [pm] + pgcluster._children(pm):
                try:
                    os.setpriority(os.PRIO_PROCESS, pid, args.nice)
                except OSError:
                    pass
        pgver = subprocess.run(
            [os.path.join(cluster.bindir, "postgres"), "--version"],
            capture_output=True, text=True, timeout=10).stdout.strip()
        m["postgresql"] = pgver
        m["pg_settings"] = "fsync=on, synchronous_commit=on, " \
            "full_page_writes=on, shared_buffers=128MB (defaults), " \
            "max_connections=300"
        log("backends: %s; %s" % (m, pgver))

        tpl = {}
        if "login" in wanted or "logindb" in wanted:
            h = password_hash(args.server, tmp)
            db = sqlite_template(args.server, tmp, "login", args.login_users,
                                 max(1, args.login_users // 10), pw_hash=h)
            tpl["login"] = tpl["logindb"] = {
                "sqlite": db,
                "postgresql": pg_template(args.server, cluster, db,
                                          "tpl_login")}
        if "flush" in wanted:
            db = sqlite_template(args.server, tmp, "flush", args.flush_rows,
                                 100)
            tpl["flush"] = {"sqlite": db, "postgresql":
                            pg_template(args.server, cluster, db,
                                        "tpl_flush")}
        if "storm" in wanted:
            n = args.storm_conns
            db = sqlite_template(args.server, tmp, "storm", n, n // 10,
                                 sessions=True)
            tpl["storm"] = {"sqlite": db, "postgresql":
                            pg_template(args.server, cluster, db,
                                        "tpl_storm")}
        log("backends: databases built in %.0f s" % (time.time() - t_start))

        def server_cmd(backend, extra):
            return ("build/presenced serve --listen 127.0.0.1:0 --db %s "
                    "--jwt-secret $SECRET %s" % (
                        shown_db(backend),
                        " ".join(R.LIMITS_OFF + R.LOOPS + extra)))

        def measured(what, backend, rnd):
            tag = "%s-%s-%d" % (what, backend[:2], rnd)
            pre = R.wait_quiet(args.quiet_wait)
            la = loadavg()
            fresh = Fresh(backend, tpl[what], tmp, cluster, tag)
            res, rc = None, 1
            try:
                if what in ("flush", "logindb"):
                    if what == "flush":
                        argv = [STOREBENCH, "flush", "--db", fresh.db,
                                "--rows", str(args.flush_rows), "--orgs",
                                "100"]
                    else:
                        argv = [STOREBENCH, "login", "--db", fresh.db,
                                "--rows", str(args.login_users), "--logins",
                                str(args.login_db_logins)]
                    commands[what + "_" + backend] = " ".join(
                        ["bench/storebench"] + argv[1:3] +
                        [shown_db(backend)] + argv[4:])
                    a = R.cpu_sample()
                    p = subprocess.run(argv, capture_output=True, text=True,
                                       timeout=600, preexec_fn=R._renice)
                    b = R.cpu_sample()
                    rc = p.returncode
                    for line in p.stdout.splitlines():
                        if line.startswith('{"scenario":'):
                            res = json.loads(line)
                        else:
                            log("  " + line)
                    if p.stderr.strip():
                        log(p.stderr.strip())
                else:
                    extra = LOGIN_OFF if what == "login" else \
                        ["--restart-grace", "1ms"]
                    t0 = time.monotonic()
                    srv = R.start_server(args.server, fresh.db, extra, tmp,
                                         tag)
                    start_s = time.monotonic() - t0
                    code = None
                    try:
                        time.sleep(0.5)
                        c0 = cpu_ticks(srv.pid)
                        a = R.cpu_sample()
                        if what == "login":
                            res = login_load(srv.port, args.login_users,
                                             args.login_conc, 2,
                                             args.login_seconds)
                            rc = 0 if res["ok"] and not res["errors"] \
                                else 1
                            shown = ("%d keep-alive clients POST /api/login "
                                     "{email u<i>@bench.example, password}"
                                     " for 2 + %g s (bench/backends.py "
                                     "login_load)" % (args.login_conc,
                                                      args.login_seconds))
                        else:
                            rc, res, shown, _ = R.loadgen(
                                ["storm", "--conns", str(args.storm_conns),
                                 "--orgs", str(args.storm_conns // 10),
                                 "--source-addrs", "4", "--cookies",
                                 os.path.join(tmp, "storm.cookies")],
                                srv.port, srv.pid, 180)
                            shown = shown.replace(tmp + "/", "TMP/")
                        b = R.cpu_sample()
                        c1 = cpu_ticks(srv.pid)
                    finally:
                        code = srv.stop()
                    if code != 0:
                        log("  server exited with %d (log %s)" %
                            (code, srv.logpath))
                        rc = rc or 1
                    commands["%s_%s" % (what, backend)] = \
                        server_cmd(backend, extra) + "\n" + shown
                    if res is not None:
                        res["start_s"] = round(start_s, 3)
                        if what == "login":
                            res["server_cpu_pct"] = round(
                                (c1 - c0) / os.sysconf("SC_CLK_TCK") /
                                (args.login_seconds + 2) * 100, 1)
            finally:
                fresh.drop()
            if res is not None:
                res["backend"] = backend
                res["round"] = rnd
                res["rc"] = rc
                res["busy_before_cores"] = round(pre, 2)
                res["loadavg_before"] = la
                res["machine_busy_cores"] = round(R.busy_cores(a, b), 2)
            log("  %s %s round %d: %s" % (what, backend, rnd + 1,
                                          json.dumps(res)))
            results["%s_%s" % (what, backend)].append(res)

        for rnd in range(args.runs):
            order = BACKENDS if rnd % 2 == 0 else BACKENDS[::-1]
            log("backends: round %d of %d (%s first)" %
                (rnd + 1, args.runs, order[0]))
            for what in wanted:
                for backend in order:
                    measured(what, backend, rnd)
        ok = all(r and r.get("rc") == 0 for k in results
                 for r in results[k])
    finally:
        signal.alarm(0)
        cluster.destroy()
    elapsed = time.time() - t_start
    cmdline = "bench/backends.py " + " ".join(
        a.replace(ROOT + "/", "") for a in sys.argv[1:])
    data = {"machine": m, "results": results, "commands": commands,
            "elapsed": elapsed, "runs": args.runs, "nice": args.nice,
            "cmdline": cmdline, "args": vars(args)}
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    write_md(args.out, data)
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        log("backends: some runs failed; logs kept in %s" % tmp)
    log("backends: done in %.0f s; wrote %s" % (elapsed, args.out))
    return 0 if ok else 1


# ---- the report ----------------------------------------------------------

def med(runs, key):
    vals = [r[key] for r in runs if r and isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else float("nan")


def vals(runs, key, nd):
    return ", ".join(R.fmt(float(r[key]), nd) for r in runs
                     if r and isinstance(r.get(key), (int, float)))


def write_md(path, d):
    res, m, a = d["results"], d["machine"], d["args"]
    L = []
    w = L.append
    w("# PostgreSQL beside SQLite (issue 11)")
    w("")
    w("Written by `%s` in %.0f s. Medians of %d runs per backend, run "
      "interleaved (round 1 SQLite then PostgreSQL, round 2 the other way "
      "round, ...); every run's JSON is in the .json file next to this "
      "one." % (d["cmdline"], d["elapsed"], d["runs"]))
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    w("| CPU | %s, %d cores (`nproc`), shared with other work |" %
      (m["cpu"], m["nproc"]))
    w("| memory | %s GiB |" % m["memory_gib"])
    w("| kernel | Linux %s, Debian %s |" % (m["kernel"], m["os"]))
    w("| presenced | `%s` |" % m.get("presenced", "?"))
    w("| PostgreSQL | %s, a local cluster over TCP loopback (%s) |" %
      (m.get("postgresql", "?"), m.get("pg_settings", "")))
    w("| SQLite | the server's file, WAL (as `presenced serve` opens it) |")
    w("")
    rows = []

    def row(label, key, field, nd, better):
        S, P = res.get(key + "_sqlite", []), res.get(key + "_postgresql", [])
        if not S and not P:
            return
        ms, mp = med(S, field), med(P, field)
        ratio = mp / ms if ms and ms == ms and mp == mp else float("nan")
        # Each round's two runs were back to back: their ratio is
        # less exposed to the machine's drift than the medians'.
        bys = {r["round"]: r[field] for r in S if r and r.get(field)}
        pr = [r[field] / bys[r["round"]] for r in P
              if r and r.get(field) is not None and r["round"] in bys]
        rows.append("| %s | %s (%s) | %s (%s) | %s | %s (%s) | %s |" % (
            label, R.fmt(ms, nd), vals(S, field, nd), R.fmt(mp, nd),
            vals(P, field, nd), R.fmt(ratio, 2),
            R.fmt(statistics.median(pr), 2) if pr else "n/a",
            ", ".join(R.fmt(x, 2) for x in pr), better))

    row("logins/s (%d at a time, %g s)" % (a["login_conc"],
                                          a["login_seconds"]),
        "login", "logins_per_s", 1, "higher")
    row("login p50 latency (ms)", "login", "p50_ms", 0, "lower")
    row("a login's database work alone: logins/s on one connection",
        "logindb", "logins_per_s", 0, "higher")
    row("a login's database work alone: p50 (ms)", "logindb", "p50_ms", 2,
        "lower")
    row("flush of %s dirty users: ms" % R.fmt(a["flush_rows"]), "flush",
        "flush_ms", 0, "lower")
    row("flush: rows/s", "flush", "rows_per_s", 0, "higher")
    row("storm of %s cookie connections: first connect to last "
        "snapshot (s)" % R.fmt(a["storm_conns"]), "storm",
        "last_snapshot_s", 3, "lower")
    row("storm: upgrades/s", "storm", "upgrades_per_s", 0, "higher")
    row("server start with %s users and sessions to listening (s)" %
        R.fmt(a["storm_conns"]), "storm", "start_s", 2, "lower")
    w("## Figures")
    w("")
    w("| figure | SQLite median (runs) | PostgreSQL median (runs) | "
      "PostgreSQL / SQLite, of the medians | PostgreSQL / SQLite, median of "
      "the rounds (each round) | better |")
    w("|---|---|---|---|---|---|")
    L.extend(rows)
    w("")
    busy = [r["busy_before_cores"] for k in res for r in res[k] if r]
    la = [r["loadavg_before"] for k in res for r in res[k] if r]
    if busy:
        w("Machine before each run: %s to %s cores busy (the script waits "
          "up to %g s for a second under 0.25), load average %s to %s." % (
              R.fmt(min(busy), 2), R.fmt(max(busy), 2), a["quiet_wait"],
              R.fmt(min(la), 2), R.fmt(max(la), 2)))
        w("")
    w("## Commands")
    w("")
    for k in sorted(d["commands"]):
        w("%s:" % k)
        w("")
        w("```")
        w(d["commands"][k])
        w("```")
        w("")
    w("## Every run")
    w("")
    w("```")
    for k in sorted(res):
        for r in res[k]:
            w(json.dumps(r))
    w("```")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
