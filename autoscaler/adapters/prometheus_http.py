"""The HTTP session under the Prometheus adapter: one deadline per request, answers of bounded size.

requests' `timeout` bounds each socket operation, not the request: a server that drips a
byte at a time keeps a 5 s timeout alive for as long as it likes (56 s in a hostile
test), and an answer is read into memory whatever its size (a 67 MB answer took
`recommend` to 463 MB). The controller waits on Prometheus every cycle, so this session
bounds both:

- **Deadline.** `timeout` is a total deadline per request: connect, TLS handshake,
  request, headers and body. A watchdog thread shuts the request's socket down when the
  deadline passes, wherever the request is blocked, and the request fails with
  `requests.Timeout` (retried by the adapter like any timeout). Opening a connection is
  bounded by the same time (the connect timeout), and a socket that connects after the
  deadline is cut at once.
- **Size.** The body is streamed and reading stops once it passes `MAX_ANSWER_BYTES`
  (counted after decompression, so a compressed bomb is caught too); a Content-Length
  above the cap is refused before anything is read. The request fails with
  `AnswerTooLarge`. An error answer (4xx/5xx) keeps only its first `ERROR_BODY_BYTES`.

It also gives prometheus-api-client what it needs from a session: the query parameters
of a POST go in the form body, not the URL (a batched query for hundreds of targets is
tens of kilobytes, past the URL limits of common proxies), and a non-2xx answer raises
`HTTPStatusError` carrying the status, so 4xx and 5xx can be told apart.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""The largest answer read (16 MiB, decompressed).

The largest answers the adapter asks for are small (bench/results/prometheus_answers.md):
a batched instant query returns two series per target of about 140 bytes each (2,000
targets: 0.57 MB), and a range query chunk one series of at most 11,000 points of about
34 bytes each (0.37 MB). The cap is about 30 times the first and 45 times the second, so
a working query never meets it; an answer past it selects far more than one rate per
target (or comes from a server gone wrong) and is refused rather than parsed: a 67 MB
answer parsed whole took a process from 54 to 690 MB; refused, it costs at most the cap."""
ERROR_BODY_BYTES = 64 * 1024
"""How much of an error answer (4xx/5xx, or a 2xx saying `"status": "error"`) is read for its explanation."""
_CHUNK_BYTES = 64 * 1024


class HTTPStatusError(Exception):
    """Prometheus answered with an HTTP error status; `detail` is its own explanation, `path` the URL path asked."""

    def __init__(self, status: int, detail: str, path: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.path = path


class AnswerError(Exception):
    """A 2xx answer whose JSON says `"status": "error"` (a proxy or an incompatible API)."""


class AnswerTooLarge(Exception):
    """The answer is larger than `MAX_ANSWER_BYTES`; it was not read past the cap."""

    def __init__(self, declared: int | None) -> None:
        cap = f"the cap of {MAX_ANSWER_BYTES:,} bytes ({MAX_ANSWER_BYTES >> 20} MiB)"
        super().__init__(f"the answer declares {declared:,} bytes, over {cap}; not read" if declared is not None
                         else f"the answer is larger than {cap}; reading stopped there")


# --- the deadline ----------------------------------------------------------------------

_current = threading.local()
"""The deadline of the request running on this thread, for the connections it uses."""


class _Deadline:
    """Shuts down the sockets of one request once `seconds` have passed since it started."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        threading.Thread(target=self._watch, name="prometheus-deadline", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        _current.deadline = None
        self._done.set()

    def attach(self, sock: socket.socket) -> None:
        """Watch `sock` (held here: http.client drops its connection's reference once a `Connection: close`
        answer starts); a socket that connects after the deadline is cut at once."""
        with self._lock:
            if all(s is not sock for s in self._sockets):
                self._sockets.append(sock)
            if self.expired:
                _cut(sock)

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _cut(sock)


def _cut(sock: socket.socket) -> None:
    """Shut `sock` down: a read or write blocked on it returns at once."""
    with contextlib.suppress(OSError):  # already shut down or closed
        sock.shutdown(socket.SHUT_RDWR)


def _attach_to_deadline(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.attach(sock)


class _Watched:
    """Hands the connection's socket to its thread's request deadline once connected, and before each request."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _attach_to_deadline(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_to_deadline(self.sock)  # a kept-alive connection: connect() is not called again
        super().request(*args, **kwargs)  # type: ignore[misc]


class DeadlineHTTPConnection(_Watched, HTTPConnection):
    pass


class DeadlineHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """An HTTPAdapter whose connections (direct or through an HTTP proxy) obey the request deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are classes of their own: per-read timeout only
            manager.pool_classes_by_scheme = _POOLS
        return manager


# --- the session -----------------------------------------------------------------------


class PrometheusSession(requests.Session):
    """A session whose requests have a total deadline (`timeout`) and a bounded answer (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self._adapter = _Adapter(max_retries=0)  # the adapter retries with its own backoff
        self.mount("http://", self._adapter)
        self.mount("https://", self._adapter)

    def get_adapter(self, url: str) -> requests.adapters.BaseAdapter:
        """Every http(s) request goes through the deadline adapter, whatever adapter the client mounted."""
        if url.lower().startswith(("http://", "https://")):
            return self._adapter
        return super().get_adapter(url)

    def request(  # type: ignore[override]  # requests' many keyword parameters arrive through **kwargs
        self, method: str | bytes, url: str | bytes, params: Any = None, data: Any = None, **kwargs: Any
    ) -> requests.Response:
        verb = method.decode("ascii") if isinstance(method, bytes) else method
        if verb.upper() == "POST" and data is None:
            params, data = None, params
        seconds = kwargs.pop("timeout")
        kwargs.pop("stream", None)
        with _Deadline(seconds) as deadline:
            try:
                response = super().request(method, url, params=params, data=data, timeout=seconds, stream=True,
                                           **kwargs)
                failed = response.status_code >= 400
                body = _read(response, ERROR_BODY_BYTES if failed else MAX_ANSWER_BYTES, truncate=failed)
            except requests.RequestException:
                if deadline.expired:
                    raise _timed_out(seconds) from None
                raise
        if deadline.expired:  # cut while reading: what was read may be a truncated answer
            raise _timed_out(seconds)
        response._content = body  # the body read here, under the deadline and the cap, is the response's content
        if failed:
            raise HTTPStatusError(response.status_code, _detail(response), urlsplit(response.url).path)
        if len(body) <= ERROR_BODY_BYTES:
            _raise_error_status(body)
        return response


def _timed_out(seconds: float) -> requests.Timeout:
    return requests.Timeout(f"no complete answer within the {seconds:g}s deadline")


def _read(response: requests.Response, limit: int, *, truncate: bool) -> bytes:
    """The decompressed body, read until its end or `limit` bytes (then `AnswerTooLarge`, or cut when `truncate`)."""
    try:
        declared = response.headers.get("Content-Length", "")
        if not truncate and declared.isdigit() and int(declared) > limit:
            raise AnswerTooLarge(int(declared))
        chunks, size = [], 0
        for chunk in response.iter_content(_CHUNK_BYTES):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                if truncate:
                    break
                raise AnswerTooLarge(None)
        return b"".join(chunks)[:limit]
    except BaseException:
        response.close()
        raise
    finally:
        if truncate:
            response.close()


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body['errorType']}: {body['error']}"
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:300] or str(response.reason)


def _raise_error_status(body: bytes) -> None:
    try:
        answer = json.loads(body)
    except ValueError:
        return  # not JSON: the client says so when it parses it
    if isinstance(answer, dict) and answer.get("status") == "error":
        raise AnswerError(f"{answer.get('errorType', 'error')}: {str(answer.get('error', ''))[:300]}")
