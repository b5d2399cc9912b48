"""docs/examples/nginx.conf in front of a real presenced: wss:// works,
pages and the API work, and the session cookie's Origin check still holds
with nginx passing the Host through."""
import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import time

import pytest
import requests
import websockets

from conftest import free_port, token_for, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "docs", "examples", "nginx.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx(server, tmp_path):
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (scripts/install-deps.sh --test)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    port = free_port()
    site = open(EXAMPLE).read()
    site = (site.replace("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % port)
                .replace("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % server.port)
                .replace("/etc/ssl/certs/presence.example.com.pem", str(cert))
                .replace("/etc/ssl/private/presence.example.com.key", str(key)))
    conf = tmp_path / "nginx.conf"
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
""" % {"d": tmp_path, "site": site})
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf),
                             "-g", "user root;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        try:
            return requests.get("https://127.0.0.1:%d/healthz" % port,
                                verify=False, timeout=1).status_code == 200
        except requests.RequestException:
            return False
    try:
        wait_until(up, 10, what="nginx up")
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.stderr.read().decode() +
                             (tmp_path / "error.log").read_text())
    yield port
    proc.send_signal(signal.SIGQUIT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_wss_through_nginx(server, nginx):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    async def go():
        url = "wss://127.0.0.1:%d/ws/presence/?token=%s" % (nginx, token_for("o1", "a"))
        async with websockets.connect(url, ssl=ctx) as a:
            hello = json.loads(await a.recv())
            assert hello["type"] == "hello" and hello["user"] == "a"
            assert json.loads(await a.recv())["type"] == "snapshot"
            url_b = "wss://127.0.0.1:%d/ws/presence/?token=%s" % (nginx, token_for("o1", "b"))
            async with websockets.connect(url_b, ssl=ctx) as b:
                await b.recv()
                await b.recv()
                await b.send(json.dumps({"type": "status", "status": "BUSY"}))
                while True:
                    m = json.loads(await asyncio.wait_for(a.recv(), 5))
                    if m["type"] == "presence" and m["user"] == "b" and m["status"] == "BUSY":
                        break
            await a.send(json.dumps({"type": "ping"}))
            while json.loads(await asyncio.wait_for(a.recv(), 5))["type"] != "pong":
                pass
    asyncio.run(go())


def test_api_through_nginx(server, nginx):
    r = requests.get("https://127.0.0.1:%d/api/presence" % nginx, verify=False,
                     headers={"Authorization": "Bearer " + token_for("o1", "a")})
    assert r.status_code == 200, r.text
    assert r.json()["org"] == "o1"
    r = requests.get("https://127.0.0.1:%d/nope" % nginx, verify=False)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
