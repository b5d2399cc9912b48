#!/usr/bin/python3
"""redisserver.py - a throwaway redis-server for tests, and a tiny RESP client.

As a module:

    r = RedisServer(port=None, password=None)   # port None: a free one
    r.start()                # temp dir, redis-server on 127.0.0.1:PORT, PING
    r.uri                    # redis://[:PW@]127.0.0.1:PORT
    r.cmd("HGETALL", key)    # one command on a fresh connection (RESP2)
    r.keys("*"), r.flushall(), r.publish(ch, msg)
    r.pause(); r.resume()    # SIGSTOP / SIGCONT (connections stay open)
    r.stop()                 # SIGTERM, wait (a paused server is resumed first)
    r.kill9()                # SIGKILL
    r.restart()              # stop if running, start again: same port, empty
    r.destroy()              # stop if running, remove the dir

    c = Resp(port, password) # a connection of one's own: c.call(...),
    c.psubscribe("p*"); c.next_message(timeout)   # pub/sub, then c.close()

The server never writes to disk (--save '' --appendonly no), so every
start, restart included, begins empty.  Every RedisServer is destroyed at
interpreter exit too (atexit), whatever happened to the test.

Debian's /usr/bin/redis-server (package redis-server); no Python Redis
package is needed.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref

REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
START_TIMEOUT = 20.0    # seconds for redis-server to answer PING
STOP_TIMEOUT = 10.0     # seconds for it to exit after SIGTERM

_LIVE = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _destroy_all():
    with _LIVE_LOCK:
        live = list(_LIVE)
    for r in live:
        try:
            r.destroy()
        except Exception:
            pass


atexit.register(_destroy_all)


class RedisError(Exception):
    """An error reply (-ERR ...)."""


class RedisDown(OSError):
    pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Resp:
    """One RESP2 connection.  Replies: simple strings and bulk strings as
    str (bulk strings that are not UTF-8 as bytes), integers as int, nil as
    None, arrays as lists; an error reply raises RedisError (returned, not
    raised, inside an array)."""

    def __init__(self, port, password=None, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        if password is not None:
            self.call("AUTH", password)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading -----------------------------------------------------------
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no reply from redis")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise RedisDown("redis closed the connection")
        self.buf += data

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill(deadline)

    def _exact(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    @staticmethod
    def _text(b):
        try:
            return b.decode()
        except UnicodeDecodeError:
            return b

    def _reply(self, deadline, top=True):
        line = self._line(deadline)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return self._text(rest)
        if kind == b"-":
            err = RedisError(rest.decode(errors="replace"))
            if top:
                raise err
            return err
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._text(self._exact(n, deadline))
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply(deadline, top=False) for _ in range(n)]
        raise RedisError("unexpected reply %r" % line[:80])

    def read_reply(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        return self._reply(time.monotonic() + t)

    # -- commands ----------------------------------------------------------
    def send(self, *args):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(_encode(args))

    def call(self, *args, timeout=None):
        self.send(*args)
        return self.read_reply(timeout)

    # -- pub/sub -----------------------------------------------------------
    def psubscribe(self, *patterns):
        self.send("PSUBSCRIBE", *patterns)
        for _ in patterns:
            r = self.read_reply()
            assert isinstance(r, list) and r[0] == "psubscribe", r

    def subscribe(self, *channels):
        self.send("SUBSCRIBE", *channels)
        for _ in channels:
            r = self.read_reply()
            assert isinstance(r, list) and r[0] == "subscribe", r

    def next_message(self, timeout):
        """(channel, payload) of the next published message, or None on
        timeout (the connection stays usable)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = self._reply(deadline)
            except socket.timeout:
                return None
            if isinstance(r, list) and r and r[0] == "pmessage":
                return r[2], r[3]
            if isinstance(r, list) and r and r[0] == "message":
                return r[1], r[2]


class Subscriber:
    """A PSUBSCRIBE connection read in a thread of its own: .messages is
    every (time.monotonic(), channel, payload) seen until stop()."""

    def __init__(self, redis, *patterns):
        self.conn = Resp(redis.port, redis.password)
        self.conn.psubscribe(*patterns)
        self.messages = []
        self._stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="redis-sub")
        self.thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                m = self.conn.next_message(0.2)
                if m is not None:
                    self.messages.append((time.monotonic(),) + tuple(m))
        except Exception as e:      # reported by stop()
            if not self._stop.is_set():
                self.error = e

    def stop(self):
        self._stop.set()
        self.thread.join(5)
        self.conn.close()
        return self.messages


class RedisServer:
    def __init__(self, port=None, password=None, binary=REDIS_SERVER):
        self.binary = binary
        self.port = port
        self.password = password
        self.dir = None
        self.proc = None
        self.paused = False
        self.starts = 0
        self.logfile = None
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def uri(self):
        auth = ":%s@" % self.password if self.password is not None else ""
        return "redis://%s127.0.0.1:%d" % (auth, self.port)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, n=60):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except (OSError, TypeError):
            return "(no log)"

    # -- life cycle --------------------------------------------------------
    def start(self):
        """Starts redis-server (again, on the same port and dir, after
        stop() or kill9()) and waits until it answers PING."""
        if self.running:
            return self
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="redisserver-")
            self.logfile = os.path.join(self.dir, "redis.log")
        fixed = self.port is not None
        for attempt in range(1 if fixed else 5):
            if not fixed:
                self.port = _free_port()
            if self._start_once():
                return self
            if fixed or "Address already in use" not in self.log_text(10):
                break
            self.port = None
        raise RuntimeError("redis-server did not start on port %s:\n%s"
                           % (self.port, self.log_text()))

    def _start_once(self):
        self.starts += 1
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", self.logfile,
                "--databases", "16"]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        with open(self.logfile, "ab") as log:
            log.write(b"==== start %d ====\n" % self.starts)
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir)
        self.paused = False
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                with Resp(self.port, self.password, timeout=1.0) as c:
                    if c.call("PING") == "PONG":
                        return True
            except (OSError, RedisError):
                pass
            time.sleep(0.02)
        self.kill9()
        raise RuntimeError("redis-server on port %d did not answer PING within "
                           "%.0fs:\n%s" % (self.port, START_TIMEOUT,
                                           self.log_text()))

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait (SIGKILL past the timeout).  A paused server is
        resumed first, or it could not act on the signal."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.paused = False

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.paused = False

    def pause(self):
        assert self.running, "redis-server not running"
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self):
        """Stops (if running) and starts again on the same port: empty."""
        self.stop()
        return self.start()

    def destroy(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                if self.paused:
                    self.resume()
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()

    # -- commands ----------------------------------------------------------
    def connect(self, timeout=5.0):
        return Resp(self.port, self.password, timeout=timeout)

    def cmd(self, *args, timeout=5.0):
        with self.connect(timeout) as c:
            return c.call(*args, timeout=timeout)

    def ping(self, timeout=1.0):
        try:
            return self.cmd("PING", timeout=timeout) == "PONG"
        except (OSError, RedisError):
            return False

    def keys(self, pattern="*"):
        return sorted(self.cmd("KEYS", pattern))

    def hgetall(self, key):
        r = self.cmd("HGETALL", key)
        return dict(zip(r[0::2], r[1::2]))

    def flushall(self):
        return self.cmd("FLUSHALL")

    def publish(self, channel, message):
        return self.cmd("PUBLISH", channel, message)


if __name__ == "__main__":
    # Self-check: python3 tests/redisserver.py
    with RedisServer(password="s3cret") as r:
        assert r.cmd("SET", "k", "v") == "OK"
        assert r.keys() == ["k"]
        assert r.hgetall("nope") == {}
        r.cmd("HSET", "h", "a", "1", "b", "2")
        assert r.hgetall("h") == {"a": "1", "b": "2"}
        sub = Subscriber(r, "e:*")
        assert r.publish("e:x", "hi\nthere") == 1
        time.sleep(0.3)
        assert [m[1:] for m in sub.stop()] == [("e:x", "hi\nthere")]
        r.pause()
        try:
            with Resp(r.port, r.password, timeout=0.5) as c:
                c.call("PING")
            raise AssertionError("a paused redis answered")
        except (socket.timeout, OSError):
            pass
        r.resume()
        assert r.ping()
        port = r.port
        r.restart()
        assert r.port == port and r.keys() == []
        r.kill9()
        assert not r.ping()
        r.start()
        assert r.keys() == []
        try:
            Resp(r.port).call("GET", "k")
            raise AssertionError("no password asked")
        except RedisError as e:
            assert "NOAUTH" in str(e), e
        d = r.dir
    assert not os.path.exists(d)
    print("redisserver: ok")
