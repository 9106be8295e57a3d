"""A scripted HTTP stand-in for Prometheus on 127.0.0.1, for answers a healthy server never gives.

The adapter's behaviour is proven against the real server; this stub only produces what
the real one cannot be made to produce on demand (5xx, 429, slow answers) and records
exactly what the adapter sent (paths, headers, form bodies).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@dataclass
class Reply:
    status: int = 200
    body: dict = field(default_factory=lambda: EMPTY_VECTOR)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


class StubPrometheus:
    """Answers each request with the next scripted `Reply` (the last one repeats)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [Reply()]
        self.received: list[Received] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                stub.received.append(Received(self.path, dict(self.headers), form))
                reply = stub.replies[min(len(stub.received), len(stub.replies)) - 1]
                time.sleep(reply.delay)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> StubPrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def error(status: int, error_type: str, message: str) -> Reply:
    return Reply(status, {"status": "error", "errorType": error_type, "error": message})
