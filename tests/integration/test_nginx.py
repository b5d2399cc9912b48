"""docs/examples/nginx.conf in front of a real presenced: wss:// works,
pages and the API work, each client behind nginx has its own login limit
(trusted_proxies), and the session cookie is Secure over TLS."""
import asyncio
import json
import os
import shutil
import signal
import ssl
import socket
import subprocess
import time

import pytest
import requests
import websockets

from conftest import free_port, token_for, wait_until

# The example says: trust nginx's forwarded headers.
pytestmark = pytest.mark.settings(trusted_proxies="127.0.0.1")

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
    r = requests.get("https://127.0.0.1:%d/api/nope" % nginx, verify=False,
                     headers={"Authorization": "Bearer " + token_for("o1", "a")})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = requests.get("https://127.0.0.1:%d/nope" % nginx, verify=False)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")


def tls_login(port, source, email, password, origin=None):
    """A login over TLS to nginx from a chosen loopback source address:
    (status, Set-Cookie)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.socket()
    raw.settimeout(30)
    raw.bind((source, 0))
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw)
    body = json.dumps({"email": email, "password": password}).encode()
    head = ("POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Connection: close\r\n%s\r\n"
            % (port, len(body), "Origin: %s\r\n" % origin if origin else ""))
    s.sendall(head.encode() + body)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    cookie = [h.split(":", 1)[1] for h in head if h.lower().startswith("set-cookie:")]
    return int(head[0].split()[1]), cookie[0] if cookie else ""


def test_each_client_behind_nginx_has_its_own_login_limit(server, nginx):
    server.add_org("o9")
    server.add_user("o9", "ann", email="ann@o9.example")
    limit = int(server.settings["login_limit"])
    for i in range(limit):
        st, _ = tls_login(nginx, "127.0.0.2", "nobody%d@o9.example" % i, "bad")
        assert st == 401
    st, _ = tls_login(nginx, "127.0.0.2", "ann@o9.example", "pw-secret-123")
    assert st == 429, "the client that failed is locked"
    st, cookie = tls_login(nginx, "127.0.0.3", "ann@o9.example", "pw-secret-123",
                           origin="https://127.0.0.1:%d" % nginx)
    assert st == 200, "another client behind the same proxy is not"
    assert "; Secure" in cookie, cookie
    assert "127.0.0.3: login o9/ann" in server.log_text()
