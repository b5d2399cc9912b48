#!/usr/bin/env python3
"""Soak: churn 10,000 WebSocket connections against a real presenced for a
set time and report its RSS over time; it must stay flat.

    make soak                      (SOAK_SECONDS=300 by default)
    soak.py --bin build/presenced --seconds 300 --conns 10000

Each round opens --conns connections (from several 127.0.0.x source
addresses so ephemeral ports last), has each send a status change and a
ping, then closes them all. After a warm-up round the server's RSS is the
baseline; the run fails if the last rounds' RSS grew more than --max-growth
(default 10 %) above it. Loopback only; bounded in time.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

import websockets

SECRET = "soak-secret-0123456789abcdef0123456789"


def jwt(org, user):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "org": org,
                           "exp": int(time.time()) + 86400}).encode())
    sig = hmac.new(SECRET.encode(), (head + "." + body).encode(),
                   hashlib.sha256).digest()
    return head + "." + body + "." + b64(sig)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


async def one(port, tok, src, sem):
    async with sem:
        try:
            async with websockets.connect(
                    "ws://127.0.0.1:%d/ws/presence/?token=%s" % (port, tok),
                    local_addr=(src, 0), open_timeout=20, max_size=None,
                    ping_interval=None) as ws:
                await ws.recv()            # hello
                await ws.recv()            # snapshot
                await ws.send('{"type":"status","status":"AWAY","auto":true}')
                await ws.send('{"type":"ping"}')
                while json.loads(await ws.recv())["type"] != "pong":
                    pass
            return True
        except Exception:
            return False


async def round_(port, tokens, sources):
    sem = asyncio.Semaphore(2000)
    res = await asyncio.gather(*(one(port, t, sources[i % len(sources)], sem)
                                 for i, t in enumerate(tokens)))
    return sum(res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/presenced")
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--orgs", type=int, default=20)
    ap.add_argument("--max-growth", type=float, default=0.10)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="soak-")
    port = free_port()
    env = dict(os.environ, PRESENCED_JWT_SECRET=SECRET,
               PRESENCED_DB=os.path.join(tmp, "soak.db"),
               PRESENCED_CONN_RATE="1000000", PRESENCED_MSG_RATE="1000",
               PRESENCED_GRACE="1s", PRESENCED_LOG_LEVEL="warn")
    log = open(os.path.join(tmp, "server.log"), "w")
    srv = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:%d" % port],
                           env=env, stderr=log, stdout=log)
    time.sleep(0.5)
    tokens = [jwt("o%d" % (i % a.orgs), "u%d" % i) for i in range(a.conns)]
    sources = ["127.0.0.%d" % i for i in range(2, 22)]
    samples = []
    deadline = time.time() + a.seconds
    rnd = 0
    try:
        while time.time() < deadline or rnd < 3:
            t = time.time()
            ok = asyncio.run(round_(port, tokens, sources))
            time.sleep(1.5)            # grace expiries, queues drained
            rss = rss_kib(srv.pid)
            samples.append(rss)
            print("round %3d  %5d/%d connections ok  %.1fs  server RSS %d KiB"
                  % (rnd, ok, a.conns, time.time() - t, rss), flush=True)
            if ok < a.conns * 0.99:
                print("FAIL: too many failed connections", file=sys.stderr)
                return 1
            rnd += 1
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
        log.close()
    base = samples[1]                  # after a warm-up round
    last = max(samples[-2:])
    growth = (last - base) / base
    print(json.dumps({"scenario": "soak", "conns": a.conns, "rounds": rnd,
                      "rss_kib": samples, "growth": round(growth, 4)}))
    if growth > a.max_growth:
        print("FAIL: RSS grew %.1f%% (%d -> %d KiB)" % (growth * 100, base, last),
              file=sys.stderr)
        return 1
    print("RSS flat: %+.1f%% from round 1 to the end" % (growth * 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
