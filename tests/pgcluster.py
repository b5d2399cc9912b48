#!/usr/bin/python3
"""pgcluster.py - a throwaway PostgreSQL cluster for tests.

As a module:

    c = Cluster()            # fast=True: fsync and friends off
    c.start()                # temp dir, initdb, pg_ctl start on a free port
    c.create_db("t")
    uri = c.uri("t")         # postgresql://postgres:PW@127.0.0.1:PORT/t
    c.stop(); c.start()      # restart on the same dir and port
    c.kill()                 # SIGKILL the postmaster (fault tests)
    c.destroy()              # stop if running, remove the dir

As a CLI:

    /usr/bin/python3 tests/pgcluster.py run [--db NAME] -- CMD ARGS...

starts a cluster, creates database NAME (default presenced_test), runs CMD
with PRESENCED_TEST_PG=<uri> in its environment, destroys the cluster (also
on Ctrl-C or error) and exits with CMD's status. PRESENCED_TEST_PG_CTL names
a script: '$PRESENCED_TEST_PG_CTL stop' / 'start' restart the cluster.

PostgreSQL refuses to run as root: as root the directory is given to the
'postgres' user and initdb/pg_ctl run through 'runuser -u postgres --'.
"""

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 60  # seconds for any one initdb / pg_ctl / psql step


def _bindir():
    dirs = glob.glob("/usr/lib/postgresql/*/bin")

    def ver(d):
        try:
            return int(d.split("/")[-2].split(".")[0])
        except ValueError:
            return -1

    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "initdb"))]
    if not dirs:
        raise RuntimeError("no PostgreSQL found under /usr/lib/postgresql")
    return max(dirs, key=ver)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not running.
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def _exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class ClusterError(RuntimeError):
    pass


class Cluster:
    def __init__(self, fast=True):
        self.fast = fast
        self.bindir = _bindir()
        self.dir = None
        self.datadir = None
        self.logfile = None
        self.port = None
        self.password = secrets.token_hex(16)
        self._asroot = os.geteuid() == 0
        self._pgpid = None

    # -- helpers ------------------------------------------------------------

    def _cmd(self, prog, *args):
        argv = [os.path.join(self.bindir, prog)] + list(args)
        if self._asroot:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _log_tail(self, n=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except (OSError, TypeError):
            return "(no log)"

    def _run(self, prog, *args, check=True):
        try:
            p = subprocess.run(self._cmd(prog, *args), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=TIMEOUT,
                               cwd=self.dir)
        except subprocess.TimeoutExpired as e:
            raise ClusterError("%s timed out after %ss\n--- log ---\n%s" %
                               (prog, TIMEOUT, self._log_tail())) from e
        if check and p.returncode != 0:
            raise ClusterError("%s %s failed (%d): %s\n--- log ---\n%s" %
                               (prog, " ".join(args[:2]), p.returncode,
                                p.stdout.decode(errors="replace").strip(),
                                self._log_tail()))
        return p

    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError, TypeError):
            return None

    @property
    def running(self):
        # The server may have been restarted from outside (ctl_script()):
        # postmaster.pid names the current postmaster.
        pid = self._postmaster_pid() if self.datadir else None
        if pid is not None and _alive(pid):
            self._pgpid = pid
        return self._pgpid is not None and _alive(self._pgpid)

    # -- life cycle ---------------------------------------------------------

    def _init(self):
        self.dir = tempfile.mkdtemp(prefix="pgcluster-")
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self._asroot:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run("initdb", "-D", self.datadir, "-U", "postgres",
                  "-E", "UTF8", "--locale=C", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--pwfile=" + pwfile,
                  *(["--no-sync"] if self.fast else []))
        os.unlink(pwfile)

    def _start_opts(self):
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s "
                "-c max_connections=300" % (self.port, self.dir))
        if self.fast:
            opts += (" -c fsync=off -c synchronous_commit=off"
                     " -c full_page_writes=off")
        return opts

    def _pg_ctl_start(self):
        opts = self._start_opts()
        return self._run("pg_ctl", "start", "-w", "-t", str(TIMEOUT),
                         "-D", self.datadir, "-l", self.logfile,
                         "-o", opts, check=False)

    def start(self):
        """Creates the cluster on first use, then starts the server (again,
        on the same dir and port, after stop() or kill())."""
        if self.running:
            return self
        if self.dir is None:
            try:
                self._init()
            except BaseException:
                self.destroy()
                raise
        fixed = self.port is not None
        tries = 1 if fixed else 5
        for i in range(tries):
            if not fixed:
                self.port = _free_port()
            p = self._pg_ctl_start()
            if p.returncode == 0:
                self._pgpid = self._postmaster_pid()
                return self
            # pg_ctl can fail because another process took the port
            # between _free_port() and the bind: try another one.
            if not fixed and "already in use" in self._log_tail(10):
                continue
            break
        out = p.stdout.decode(errors="replace").strip()
        raise ClusterError("pg_ctl start failed (%d): %s\n--- log ---\n%s" %
                           (p.returncode, out, self._log_tail()))

    def ctl_script(self):
        """Writes DIR/pg_ctl.sh: 'pg_ctl.sh stop' and 'pg_ctl.sh start'
        stop and start this cluster (same dir and port) from another
        process, for restart tests; returns its path."""
        import shlex
        path = os.path.join(self.dir, "pg_ctl.sh")
        pg_ctl = " ".join(shlex.quote(a) for a in self._cmd("pg_ctl"))
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "case \"$1\" in\n"
                    "start) exec %s start -w -t %d -D %s -l %s -o %s"
                    " >/dev/null ;;\n"
                    "stop) exec %s stop -w -t %d -m fast -D %s"
                    " >/dev/null ;;\n"
                    "*) echo 'usage: pg_ctl.sh start|stop' >&2; exit 2 ;;\n"
                    "esac\n" %
                    (pg_ctl, TIMEOUT, shlex.quote(self.datadir),
                     shlex.quote(self.logfile),
                     shlex.quote(self._start_opts()), pg_ctl, TIMEOUT,
                     shlex.quote(self.datadir)))
        os.chmod(path, 0o755)
        return path

    def stop(self, mode="fast"):
        if self.dir is None or not self.running:
            return
        self._run("pg_ctl", "stop", "-w", "-t", str(TIMEOUT), "-m", mode,
                  "-D", self.datadir, check=False)
        self._reap()

    def _reap(self, deadline=10.0):
        """Waits for the postmaster and its children to be gone; SIGKILLs
        what is left after the deadline."""
        pid = self._pgpid
        if pid is None:
            return
        kids = _children(pid)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not _alive(pid) and not any(_alive(k) for k in kids):
                break
            time.sleep(0.05)
        for k in [pid] + kids:
            if _alive(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # A killed postmaster stays a zombie until init reaps it, and a
        # new postmaster takes a zombie's pid in postmaster.pid for a live
        # server: wait for it to be gone altogether.
        end = time.monotonic() + deadline
        while time.monotonic() < end and _exists(pid):
            time.sleep(0.02)
        self._pgpid = None

    def kill(self):
        """SIGKILLs the postmaster (a crash), and then its backends, so that
        start() can run again on the same directory."""
        pid = self._pgpid
        if pid is None or not _alive(pid):
            self._pgpid = None
            return
        kids = _children(pid)
        os.kill(pid, signal.SIGKILL)
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap(deadline=5.0)

    def destroy(self):
        try:
            if self.running:
                try:
                    self.stop(mode="immediate")
                except ClusterError:
                    pass
                if self.running:
                    self.kill()
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()

    # -- databases ----------------------------------------------------------

    def uri(self, dbname="postgres", password=None):
        pw = self.password if password is None else password
        return "postgresql://postgres:%s@127.0.0.1:%d/%s" % (pw, self.port,
                                                             dbname)

    def connect(self, dbname="postgres"):
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.port,
                                user="postgres", password=self.password,
                                dbname=dbname, connect_timeout=10)
        conn.autocommit = True
        return conn

    def _sql(self, stmt):
        conn = self.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute(stmt)
        finally:
            conn.close()

    @staticmethod
    def _ident(name):
        return '"' + name.replace('"', '""') + '"'

    def create_db(self, name, template=None):
        stmt = "CREATE DATABASE " + self._ident(name)
        if template:
            stmt += " TEMPLATE " + self._ident(template)
        self._sql(stmt)

    def drop_db(self, name):
        self._sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" %
                  self._ident(name))


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="pgcluster.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run CMD against a throwaway cluster")
    run.add_argument("--db", default="presenced_test")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.argv
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        ap.error("run: missing CMD after --")

    c = Cluster()
    child = None

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        c.start()
        c.create_db(args.db)
        env = dict(os.environ, PRESENCED_TEST_PG=c.uri(args.db),
                   PRESENCED_TEST_PG_CTL=c.ctl_script())
        child = subprocess.Popen(cmd, env=env)
        return child.wait()
    except KeyboardInterrupt:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 130
    except (ClusterError, OSError) as e:
        print("pgcluster: %s" % e, file=sys.stderr)
        return 1
    finally:
        c.destroy()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
