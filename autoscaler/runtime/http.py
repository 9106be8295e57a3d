"""The controller's HTTP endpoint: /metrics, /status, and /healthz and /readyz for Kubernetes probes.

/healthz says the process is alive and its sync loop is not stuck; /readyz says the
config has loaded and the first sync has finished; /metrics is the injected
prometheus_client registry; /status (JSON, `autoscaler.loop.status`) is what the
controller knows about each target, for `prescaler status` and `prescaler explain`
(`/status?target=NAMESPACE/NAME` for one). Nothing else is served, and /status holds
no config value beyond target identities and numbers (and no credential).

The kubelet restarts the pod when /healthz stops answering, so whoever else connects
must not be able to starve it. Connections are bounded (`Limits`):

- No thread per connection. One thread accepts connections and reads each request's
  head (request line and headers: nothing served here has a body) without blocking;
  only a complete head goes to one of `workers` handler threads. An idle, half-open or
  slow-drip connection costs a socket, never a thread.
- Each connection has `request_timeout` seconds from accept to a complete head, then
  it is answered 408 and closed; the handler's socket has the same timeout on every
  write of the answer.
- At most `max_connections` are open at once. One more closes the oldest connection
  still waiting for its head (a probe sends its head at once, so it is never the
  oldest); when every open one is being answered, the newcomer gets 503 at once.
- A head over `max_head_bytes` gets 431.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
"""Longest the accept loop sleeps: how soon `shutdown` and an expired connection are noticed."""
DRAIN_BYTES = 65536
"""Most a refused connection's unread bytes read away before closing it."""


class Probes:
    """The answers the endpoint gives, as callables so they always reflect the live state."""

    def __init__(self, healthy: Callable[[], bool], ready: Callable[[], bool]) -> None:
        self.healthy, self.ready = healthy, ready


@dataclass(frozen=True)
class Limits:
    """What one client, or many, may take from the endpoint."""

    max_connections: int = 64
    """Connections open at once (waiting for their head or being answered)."""
    workers: int = 4
    """Threads answering complete requests."""
    request_timeout: float = 5.0
    """Seconds from accept to a complete request head; also the socket timeout of each write."""
    max_head_bytes: int = 8192
    """Largest request head (request line and headers)."""


class ListenError(RuntimeError):
    """The endpoint cannot listen on the configured address and port (in use, or not this host's)."""


class _BufferedRequestHandler(BaseHTTPRequestHandler):
    """A handler that reads the head the accept loop already read, and writes to the socket."""

    def setup(self) -> None:
        self.connection, head = self.request
        self.rfile = io.BytesIO(head)
        self.wfile = self.connection.makefile("wb")

    def log_message(self, format: str, *args: object) -> None:  # probes every few seconds: stay quiet
        return


@dataclass
class _Pending:
    """A connection waiting for its request head."""

    peer: tuple
    deadline: float
    head: bytes = b""


class Endpoint:
    """The listening socket, the loop that accepts and reads request heads, and the handler threads."""

    def __init__(self, handler: type[_BufferedRequestHandler], address: str, port: int, limits: Limits) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            self.socket = socket.create_server((address, port), family=family, backlog=limits.max_connections)
        except OSError as exc:
            raise ListenError(
                f"metrics endpoint: cannot listen on {address}:{port}: {exc.strerror or exc} "
                "(config: metrics.bindAddress, metrics.port)"
            ) from None
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self.handler, self.limits = handler, limits
        self._pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="http")
        self._waiting: dict[socket.socket, _Pending] = {}
        """Only the loop thread touches it; insertion order is age."""
        self._answering = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="http", daemon=True)

    def start(self) -> Endpoint:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting, close every waiting connection; a request being answered finishes on its own."""
        self._stop.set()
        self._thread.join(timeout=10 * POLL_SECONDS)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.socket.close()

    def open_connections(self) -> int:
        with self._lock:
            return len(self._waiting) + self._answering

    # --- the accept loop -------------------------------------------------------------

    def _loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=self._sleep()):
                    if key.fileobj is self.socket:
                        self._accept(selector)
                    elif isinstance(key.fileobj, socket.socket):
                        self._read(selector, key.fileobj)
                self._expire(selector)
            for conn in list(self._waiting):
                self._forget(selector, conn)
                _close(conn)

    def _sleep(self) -> float:
        if not self._waiting:
            return POLL_SECONDS
        soonest = next(iter(self._waiting.values())).deadline  # the oldest expires first
        return min(POLL_SECONDS, max(0.0, soonest - time.monotonic()))

    def _accept(self, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                conn, peer = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again on the next round
                log.warning("metrics endpoint cannot accept a connection", extra={"error": str(exc)})
                return
            conn.setblocking(False)
            if not self._make_room(selector):
                _refuse(conn, 503, "Service Unavailable")
                continue
            with self._lock:
                self._waiting[conn] = _Pending(peer, time.monotonic() + self.limits.request_timeout)
            selector.register(conn, selectors.EVENT_READ)

    def _make_room(self, selector: selectors.BaseSelector) -> bool:
        if self.open_connections() < self.limits.max_connections:
            return True
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        self._forget(selector, oldest)
        _refuse(oldest, 503, "Service Unavailable")
        return True

    def _read(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        pending = self._waiting[conn]
        try:
            chunk = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away before asking anything
            self._forget(selector, conn)
            _close(conn)
            return
        pending.head += chunk
        if len(pending.head) > self.limits.max_head_bytes:
            self._forget(selector, conn)
            _refuse(conn, 431, "Request Header Fields Too Large")
        elif b"\r\n\r\n" in pending.head or b"\n\n" in pending.head:
            self._forget(selector, conn)
            with self._lock:
                self._answering += 1
            self._pool.submit(self._answer, conn, pending)

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for conn in [c for c, p in self._waiting.items() if p.deadline <= now]:
            self._forget(selector, conn)
            _refuse(conn, 408, "Request Timeout")

    def _forget(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        selector.unregister(conn)
        with self._lock:
            del self._waiting[conn]

    # --- a handler thread ------------------------------------------------------------

    def _answer(self, conn: socket.socket, pending: _Pending) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(self.limits.request_timeout)
            # the handler's `setup` unpacks (conn, head); it needs nothing of BaseServer's
            self.handler(cast(Any, (conn, pending.head)), pending.peer, cast(Any, self))
        except OSError:
            pass  # the client went away or stopped reading: nothing to answer
        except Exception:
            log.exception("metrics endpoint: handler failed")
        finally:
            _close(conn)
            with self._lock:
                self._answering -= 1


def _refuse(conn: socket.socket, status: int, reason: str) -> None:
    """Answer `status` without waiting (best effort on a non-blocking socket), then close.

    What the client already sent is read away first (up to `DRAIN_BYTES`): closing a socket with
    unread data resets the connection, and the client would lose the answer."""
    body = f"{reason}\n".encode()
    head = (f"HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with contextlib.suppress(OSError):
        drained = 0
        while drained < DRAIN_BYTES and (chunk := conn.recv(4096)):
            drained += len(chunk)
    with contextlib.suppress(OSError):
        conn.send(head + body)
    _close(conn)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
    conn.close()


StatusSource = Callable[[str | None], bytes | None]
"""/status: the JSON document for every target (None) or for one `NAMESPACE/NAME`; None when that target is not managed."""
JSON = "application/json"


def serve(registry: CollectorRegistry, probes: Probes, address: str, port: int,
          limits: Limits | None = None, status: StatusSource | None = None) -> Endpoint:
    """Start the endpoint in a daemon thread; returns it (call `shutdown()` to stop).

    Raises `ListenError` when the address and port cannot be listened on.
    """

    class Handler(_BufferedRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path, _, query = self.path.partition("?")
            if path == "/status" and status is not None:
                self._status(parse_qs(query).get("target", [None])[-1])
            elif path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = probes.healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"sync loop stalled\n")
            elif path == "/readyz":
                ok = probes.ready()
                self._send(200 if ok else 503, b"ok\n" if ok else b"not ready: config or first sync pending\n")
            else:
                self._send(404, b"not found\n")

        def _status(self, target: str | None) -> None:
            assert status is not None
            try:
                body = status(target)
            except Exception:
                log.exception("status endpoint: building the document failed")
                self._send(500, b'{"error": "the status document could not be built; see the controller log"}\n', JSON)
                return
            if body is None:
                self._send(404, json.dumps({"error": f"{target} is not a target of this controller"}).encode(), JSON)
            else:
                self._send(200, body, JSON)

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Endpoint(Handler, address, port, limits or Limits()).start()
