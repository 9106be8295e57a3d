"""A scripted HTTP stand-in for Prometheus on 127.0.0.1, for answers a healthy server never gives.

The adapter's behaviour is proven against the real server; this stub only produces what
the real one cannot be made to produce on demand (5xx, 429, slow answers, answers dripped
a byte at a time or too large to read) and records exactly what the adapter sent (paths,
headers, form bodies).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@dataclass
class Reply:
    status: int = 200
    body: dict = field(default_factory=lambda: EMPTY_VECTOR)
    delay: float = 0.0
    raw: Callable[[], Iterable[bytes]] | None = None
    """The whole answer (status line, headers, body), written piece by piece as it yields them, then the
    connection is closed; `status` and `body` are ignored. See `dripped`, `endless` and `gzip_bomb`."""


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
        self.hung_up = 0
        """Raw answers the client stopped reading before their end."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                stub.received.append(Received(self.path, dict(self.headers), form))
                reply = stub.replies[min(len(stub.received), len(stub.replies)) - 1]
                time.sleep(reply.delay)
                if reply.raw is not None:
                    self.close_connection = True
                    try:
                        for piece in reply.raw():
                            self.wfile.write(piece)
                    except OSError:  # the client hung up: what a capped or timed-out reader does
                        stub.hung_up += 1
                    return
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


def head(status: int = 200, **headers: str) -> bytes:
    """A status line and headers, as a raw answer starts."""
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", "Connection: close",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def dripped(body: dict, every: float, *, headers_too: bool = False) -> Callable[[], Iterator[bytes]]:
    """A valid answer sent one byte every `every` seconds (the headers at once, unless `headers_too`)."""
    payload = json.dumps(body).encode()

    def pieces() -> Iterator[bytes]:
        start = head(**{"Content_Length": str(len(payload))})
        if not headers_too:
            yield start
        for byte in (start if headers_too else b"") + payload:
            time.sleep(every)
            yield bytes([byte])

    return pieces


def endless(content_length: int | None = None) -> Callable[[], Iterator[bytes]]:
    """An answer that never ends: a JSON vector that goes on forever (declaring `content_length` if given)."""
    headers = {} if content_length is None else {"Content_Length": str(content_length)}
    series = json.dumps({"metric": {"namespace": "shop", "deployment": "web"}, "value": [0, "1"]}).encode()

    def pieces() -> Iterator[bytes]:
        yield head(**headers) + b'{"status": "success", "data": {"resultType": "vector", "result": ['
        chunk = b",".join([series] * 1000) + b","
        while True:
            yield chunk

    return pieces


def gzip_bomb(size: int) -> Callable[[], Iterator[bytes]]:
    """A small gzip-compressed answer that decompresses to more than `size` bytes of (valid) JSON."""
    padding = b" " * size
    payload = gzip.compress(b'{"status": "success", "data": {"resultType": "vector", "result": []' + padding + b"}}")

    def pieces() -> Iterator[bytes]:
        yield head(Content_Encoding="gzip", Content_Length=str(len(payload))) + payload

    return pieces
