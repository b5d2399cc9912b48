"""libuv calls that fail: a loop, thread, timer or signal handle that cannot
start fails the start-up with its reason in one line and exit 1, and frees
only what was set up; a connection whose handle cannot be made or read is
closed at once and the server goes on.

The failures are injected: uvfail.c, preloaded, makes one chosen libuv call
of the binary fail (see its header)."""

import os
import re
import shutil
import socket
import subprocess

import pytest
import requests

from conftest import BIN, wait_until
from test_startup import serve_fails

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler to build uvfail.c")
    out = str(tmp_path_factory.mktemp("uvfail") / "uvfail.so")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", out,
                    os.path.join(HERE, "uvfail.c"), "-ldl"], check=True)
    # A sanitizer runtime must come first in the list of libraries.
    ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    first = re.findall(r"=>\s*(\S*lib[at]san\.so[.\d]*)", ldd)
    return " ".join(first + [out])


def failing(srv, shim, call, nth=1, file=None):
    srv.extra_env["LD_PRELOAD"] = shim
    srv.extra_env["UVFAIL_CALL"] = call
    srv.extra_env["UVFAIL_NTH"] = str(nth)
    if file:
        srv.extra_env["UVFAIL_FILE"] = file


# ---- start-up ---------------------------------------------------------------

START_FAILURES = [
    # (libuv call, which call, loops, words of the reason)
    ("uv_loop_init", 1, 1, "cannot make an event loop"),
    ("uv_loop_init", 3, 4, "cannot make an event loop"),
    ("uv_async_init", 2, 2, "cannot make a loop's wake-up handle"),
    ("uv_tcp_init", 2, 2, "cannot listen on"),
    ("uv_tcp_getsockname", 1, 1, "cannot tell the address"),
    # Each loop's own timer (net/) starts first, then the store timers,
    # then the server's timers of each loop.
    ("uv_timer_start", 1, 1, "cannot start a loop's timer"),
    ("uv_timer_start", 2, 1, "cannot start the flush timer"),
    ("uv_timer_start", 6, 2, "cannot start a loop's heartbeat timer"),
    ("uv_prepare_start", 1, 1, "cannot start a loop's flusher"),
    ("uv_signal_init", 2, 1, "cannot watch signals"),
    # The store's thread is the first (one: --db-pool 1 below, which
    # SQLite always has), then the loops' threads.
    ("uv_thread_create", 1, 4, "cannot start the store thread"),
    ("uv_thread_create", 2, 4, "cannot start the thread of loop 1"),
    # Two loop threads run by then: they are stopped and waited for.
    ("uv_thread_create", 4, 4, "cannot start the thread of loop 3"),
]


@pytest.mark.parametrize("case", START_FAILURES,
                         ids=["%s-%d-loops%d" % c[:3] for c in START_FAILURES])
def test_start_failure_of_a_libuv_call_exits_1_with_the_reason(srv, shim,
                                                               case):
    call, nth, loops, words = case
    failing(srv, shim, call, nth)
    line = serve_fails(srv, "--listen", "127.0.0.1:%d" % srv.port,
                       "--db", srv.db, "--loops", loops, "--db-pool", 1)
    assert words in line, line
    # Nothing is left registered, and the next start works.
    assert srv.sql("SELECT pid FROM server") == []
    srv.extra_env.clear()
    srv.start(args=["--loops", str(loops)])
    srv.ws("o1", "u1").ping()


# ---- connections ------------------------------------------------------------

@pytest.mark.settings(header_timeout="60s")
def test_connection_that_cannot_read_is_closed_at_once(srv, shim, tmp_path):
    """Before, a failed uv_read_start left the connection waiting for a
    request it could never read, until header_timeout answered 408."""
    trigger = str(tmp_path / "fail-now")
    failing(srv, shim, "uv_read_start", file=trigger)
    srv.start()
    open(trigger, "w").close()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass
    try:
        got = s.recv(4096)
    except OSError:
        got = b""  # reset: closed as well
    s.close()
    assert got == b"", got
    assert "cannot read" in srv.log_text()
    # The next connections are served.
    assert srv.http("GET", "/healthz").status_code == 200
    srv.ws("o1", "u1").ping()


def test_connection_without_a_handle_pauses_the_listener(srv, shim,
                                                         tmp_path):
    """A peer that gets no handle stays in the listener, and libuv takes no
    other until it is accepted: the listener is closed for a moment, as
    when out of descriptors, and reopened."""
    trigger = str(tmp_path / "fail-now")
    failing(srv, shim, "uv_tcp_init", file=trigger)
    srv.start(args=["--loops", "1"])
    open(trigger, "w").close()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = s.recv(4096)
    except OSError:
        got = b""
    s.close()
    assert got == b"", got

    def served():
        try:
            return requests.get(srv.base + "/healthz",
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False
    wait_until(served, 15, what="the listener to reopen")
    assert "accepting new connections again" in srv.log_text()
    srv.ws("o1", "u1").ping()
