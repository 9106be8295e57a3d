"""Small stand-ins the fault cases need beyond `testing/prometheus_stub.py` and the emulator.

- `answer`: a well-formed batched Prometheus answer for the stub (rates and freshness).
- `RawServer`: an HTTP server that answers every request with fixed bytes; the stub
  JSON-encodes its replies, so it cannot send a body that is not JSON at all.
- `ScriptedForecaster`: a forecaster that answers a level (NaN, huge) or fails, as told.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from autoscaler.config.promql import OBSERVED_PART, PART_LABEL, RATE_PART


def answer(now: float, rates: dict[str, float], age: float = 30.0) -> dict:
    """The batched answer Prometheus gives for `rates` (target key → rate), newest samples `age` s old."""
    result = []
    for key, rate in rates.items():
        namespace, name = key.split("/", 1)
        labels = {"namespace": namespace, "deployment": name}
        result += [{"metric": labels | {PART_LABEL: RATE_PART}, "value": [now, repr(rate)]},
                   {"metric": labels | {PART_LABEL: OBSERVED_PART}, "value": [now, repr(now - age)]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class RawServer:
    """Answers every request with `status` and `body` as given, on 127.0.0.1."""

    def __init__(self, body: bytes, status: int = 200, content_type: str = "application/json") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RawServer:
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class ScriptedForecaster:
    """Fits instantly; predicts `level` at every horizon and quantile, or fails as scripted.

    `level` may be NaN or absurdly large; `predict_error` is raised by predict,
    `fit_error` by fit; `gate_open` is the quality gate the service sees, and `best_baseline` the
    baseline its report says the model was scored against best.
    """

    def __init__(self, level: float = 0.0, *, gate_open: bool = True, fit_error: Exception | None = None,
                 predict_error: Exception | None = None, best_baseline: str | None = None) -> None:
        self.level = level
        self.gate_open_ = gate_open
        self.gate_report_ = {"open": gate_open, "reason": "scripted", "best_baseline": best_baseline}
        self.fit_error = fit_error
        self.predict_error = predict_error

    def fit(self, history) -> ScriptedForecaster:
        if self.fit_error is not None:
            raise self.fit_error
        return self

    def predict(self, history, now, horizons, quantiles) -> np.ndarray:
        if self.predict_error is not None:
            raise self.predict_error
        return np.full((len(horizons), len(quantiles)), self.level)
