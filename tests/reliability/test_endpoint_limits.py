"""The metrics endpoint under connections that never ask, ask too slowly or ask too much; its port in use.

Real sockets against `autoscaler.runtime.http.serve`. Each case checks the action (the connection
is answered, refused or closed; the endpoint keeps serving), the reason the client is
given (the status line: 408, 431, 503) and that nothing is lost (/healthz and /metrics
still answer in full, and the handler threads stay bounded by `Limits.workers`). Waits
are generous hang guards, never timings.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge

from autoscaler.runtime.http import Limits, Probes, serve
from testing.k8s_emulator import wait_until
from testing.prometheus_server import free_port

from .world import target

CATEGORY = "Security"
pytestmark = [pytest.mark.reliability]

REPO = Path(__file__).resolve().parents[2]
GUARD = 30.0
"""Seconds any single wait may take before the case fails as hung (the limits here are 0.5-1 s)."""
FLOOD = 150


@pytest.fixture
def start():
    """`start(limits)`: the endpoint with a registry holding one gauge; the thread count before it started."""
    servers = []

    def run(limits: Limits):
        registry = CollectorRegistry()
        Gauge("prescaler_recommended_replicas", "doc", ["name"], registry=registry).labels("web").set(7)
        before = threading.active_count()
        server = serve(registry, Probes(lambda: True, lambda: True), "127.0.0.1", 0, limits)
        servers.append(server)
        return server, before

    yield run
    for server in servers:
        server.shutdown()


def get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=GUARD) as response:
        return response.status, response.read().decode()


def answer_of(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails on a hang)."""
    conn.settimeout(GUARD)
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data


def closed(conn: socket.socket) -> bool:
    """The server has closed `conn` (its answer, if any, read), without blocking."""
    if not select.select([conn], [], [], 0)[0]:
        return False
    try:
        while conn.recv(4096, socket.MSG_DONTWAIT):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        pass
    return True


def still_serving(port: int) -> None:
    assert get(port, "/healthz") == (200, "ok\n")
    status, body = get(port, "/metrics")
    assert status == 200 and 'prescaler_recommended_replicas{name="web"} 7.0' in body


def test_a_flood_of_idle_connections_costs_no_thread_and_healthz_answers(start):
    """150 connections that never send a byte, against a cap of 64 and a 60 s head timeout: /healthz and
    /metrics answer at once during the flood (a probe is never starved), the endpoint adds no thread beyond
    its loop and 4 handlers, at most 64 connections stay open and the 86+ oldest are closed with 503; on
    shutdown every remaining one is closed."""
    limits = Limits(max_connections=64, workers=4, request_timeout=60.0)
    server, before = start(limits)
    port = server.server_address[1]
    flood = [socket.create_connection(("127.0.0.1", port), timeout=GUARD) for _ in range(FLOOD)]
    try:
        still_serving(port)
        assert threading.active_count() - before <= 1 + limits.workers
        assert server.open_connections() <= limits.max_connections
        assert wait_until(lambda: sum(map(closed, flood)) >= FLOOD - limits.max_connections, timeout=GUARD)
        assert threading.active_count() - before <= 1 + limits.workers
        server.shutdown()
        assert wait_until(lambda: all(map(closed, flood)), timeout=GUARD), "shutdown left connections open"
    finally:
        for conn in flood:
            conn.close()


def _idle(conn: socket.socket) -> None:
    return None


def _half_open(conn: socket.socket) -> None:
    conn.shutdown(socket.SHUT_WR)


def _partial_head(conn: socket.socket) -> None:
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line that ends the head


SILENT = [pytest.param(_idle, b"HTTP/1.0 408 ", id="idle"),
          pytest.param(_partial_head, b"HTTP/1.0 408 ", id="partial-head"),
          pytest.param(_half_open, b"", id="half-open")]


@pytest.mark.parametrize(("behave", "answer"), SILENT)
def test_a_connection_that_never_completes_its_request_is_closed_at_the_deadline(start, behave, answer):
    """20 connections that send nothing, half a request or shut their side at once, with a 0.5 s head
    timeout: each is closed by the server (408 Request Timeout when it is still listening, nothing after a
    half-close), and the endpoint serves /healthz and /metrics in full meanwhile and afterwards."""
    server, _ = start(Limits(request_timeout=0.5))
    port = server.server_address[1]
    conns = [socket.create_connection(("127.0.0.1", port), timeout=GUARD) for _ in range(20)]
    try:
        for conn in conns:
            behave(conn)
        still_serving(port)
        for conn in conns:
            got = answer_of(conn)
            assert got.startswith(answer) if answer else got == b"", got[:80]
        still_serving(port)
        assert wait_until(lambda: server.open_connections() == 0, timeout=GUARD)
    finally:
        for conn in conns:
            conn.close()


def test_a_slow_drip_is_cut_off_by_a_total_deadline_not_a_per_read_one(start):
    """A client that sends its request one byte every 0.1 s — each read well within a per-read timeout —
    gets 408 once the 1 s deadline for the whole head passes, and the endpoint answers /healthz meanwhile."""
    server, _ = start(Limits(request_timeout=1.0))
    port = server.server_address[1]
    request = b"GET /metrics HTTP/1.1\r\n" + b"X-Padding: " + b"a" * 2000
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as conn:
        give_up = time.monotonic() + GUARD
        for byte in request:
            try:
                conn.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([conn], [], [], 0.1)[0] or time.monotonic() > give_up:
                break
        else:
            pytest.fail("the server never cut the drip off")
        assert answer_of(conn).startswith(b"HTTP/1.0 408 ")
    still_serving(port)


def test_an_oversized_request_head_is_refused(start):
    """A request whose headers exceed 8 KiB gets 431 and is closed, without reaching a handler; /healthz
    and /metrics still answer in full."""
    server, _ = start(Limits())
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X-Padding: " + b"a" * 16384 + b"\r\n\r\n")
        assert answer_of(conn).startswith(b"HTTP/1.0 431 ")
    still_serving(port)


def test_run_with_the_metrics_port_in_use_exits_1_with_a_message(tmp_path, emulator, kubeconfig):
    """Another process holds 127.0.0.1:PORT: `prescaler run` exits 1 (a runtime failure of the environment,
    not a config error) with one message naming the address, the port and metrics.bindAddress/metrics.port,
    no traceback, and sends nothing to the cluster: the endpoint is bound before the Lease or any cycle."""
    emulator.add_workload("shop", "web", 4)
    port = free_port()
    cfg = {"prometheus": {"url": "http://127.0.0.1:9", "retries": 0}, "dryRun": False,
           "leaderElection": {"enabled": False}, "metrics": {"port": port, "bindAddress": "127.0.0.1"},
           "targets": [target("web")]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with socket.create_server(("127.0.0.1", port)):
        done = subprocess.run([sys.executable, "-m", "autoscaler.cli", "run", "--config", str(path),
                               "--kubeconfig", kubeconfig], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "metrics.port" in done.stderr
    assert "Traceback" not in done.stderr
    assert emulator.requests == []
    assert emulator.replicas("shop", "web") == 4
