"""The controller's HTTP endpoint: /metrics, /healthz and /readyz for Kubernetes probes.

/healthz says the process is alive and its sync loop is not stuck; /readyz says the
config has loaded and the first sync has finished; /metrics is the injected
prometheus_client registry. Nothing else is served, so no config value (and no
credential) can leak through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Probes:
    """The answers the endpoint gives, as callables so they always reflect the live state."""

    def __init__(self, healthy: Callable[[], bool], ready: Callable[[], bool]) -> None:
        self.healthy, self.ready = healthy, ready


def serve(registry: CollectorRegistry, probes: Probes, address: str, port: int) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread; returns the server (call `shutdown()` to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = probes.healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"sync loop stalled\n")
            elif path == "/readyz":
                ok = probes.ready()
                self._send(200 if ok else 503, b"ok\n" if ok else b"not ready: config or first sync pending\n")
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes every few seconds: stay quiet
            return

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
