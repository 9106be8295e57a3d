"""A real Prometheus for tests and benchmarks: counters from traces, backfill, a local server.

The Prometheus adapter is proven against the real server, not a mock. The pieces are
here, outside any one suite, so reliability tests and `bench/prometheus_bench.py` reuse
them:

- `counter_samples`: per-minute request counts as the samples of a counter scraped every
  60 s, 30 s off the minute grid. A `rate(...[2m])` evaluated at a minute boundary then
  holds exactly the two samples around one minute, so it equals that minute's count / 60
  (with Prometheus 2's closed and Prometheus 3's half-open range windows alike). The
  counter starts at a large base, as a long-running service's does, so `rate()` never
  limits its extrapolation at a zero crossing.
- `write_openmetrics`, `backfill` (`promtool tsdb create-blocks-from openmetrics`) and
  `PrometheusServer` (a free 127.0.0.1 port, waits for /-/ready, stops on exit; no scrape
  jobs unless given `scrape_configs`, e.g. the one the ServiceMonitor stands for).
- `trace_file`: a real trace from ../shared/traces next to the repository clone, or the
  bundled slice in data/traces when the shared set is absent (read-only either way).

A missing binary raises `PrometheusMissing` with install instructions; suites turn it into
a failure, never a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests
import yaml
from urllib3.exceptions import InsecureRequestWarning

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO / ".." / "shared" / "traces"
BUNDLED_TRACES = REPO / "data" / "traces"
COUNTER_BASE = 1_000_000_000.0
SAMPLE_OFFSET = 30.0
INSTALL_HINT = (
    "the real-server tests need the `prometheus` and `promtool` binaries (Prometheus 2.x). "
    "Install them with `sudo apt-get install -y --no-install-recommends prometheus` "
    "(Debian/Ubuntu; `make prometheus` does this when run as root), or put the binaries "
    "from https://prometheus.io/download/ on PATH."
)


class PrometheusMissing(RuntimeError):
    """`prometheus` or `promtool` is not installed."""


def binaries() -> tuple[str, str]:
    """Paths of `prometheus` and `promtool`, or `PrometheusMissing` saying how to install them."""
    server, tool = shutil.which("prometheus"), shutil.which("promtool")
    if server is None or tool is None:
        missing = " and ".join(n for n, p in (("prometheus", server), ("promtool", tool)) if p is None)
        raise PrometheusMissing(f"{missing} not found on PATH: {INSTALL_HINT}")
    return server, tool


def trace_file(shared_name: str, bundled_name: str) -> Path:
    """`shared_name` from ../shared/traces when present, else `bundled_name` from data/traces."""
    shared = SHARED_TRACES / shared_name
    return shared if shared.is_file() else BUNDLED_TRACES / bundled_name


@dataclass(frozen=True)
class CounterSeries:
    """The samples of one counter series: labels, timestamps (epoch s) and values (NaN allowed)."""

    labels: dict[str, str]
    times: np.ndarray
    values: np.ndarray


def counter_samples(labels: dict[str, str], start: float, counts: np.ndarray) -> CounterSeries:
    """A counter whose increase over minute k (starting at `start` + 60 k) is `counts[k]`.

    One sample 30 s before `start`, then one 30 s into every minute: the sample at
    `start` + 60 k + 30 holds the total through minute k.
    """
    counts = np.asarray(counts, dtype=np.float64)
    times = start - SAMPLE_OFFSET + 60.0 * np.arange(len(counts) + 1)
    values = COUNTER_BASE + np.concatenate([[0.0], np.cumsum(counts)])
    return CounterSeries(dict(labels), times, values)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return "NaN" if np.isnan(value) else repr(float(value))


def write_openmetrics(path: Path, metric: str, series: Iterable[CounterSeries]) -> None:
    """Write counter series as one OpenMetrics family (`<metric>_total` samples)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(f"# TYPE {metric} counter\n")
        for s in series:
            head = f"{metric}_total{{" + ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels.items()) + "} "
            out.writelines(f"{head}{_number(v)} {t:.3f}\n" for t, v in zip(s.times, s.values, strict=True))
        out.write("# EOF\n")


def backfill(openmetrics: Path, data_dir: Path, max_block: str = "24h") -> None:
    """Turn an OpenMetrics file into TSDB blocks in `data_dir` with promtool."""
    _, tool = binaries()
    command = [tool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", f"--max-block-duration={max_block}"]
    done = subprocess.run([*command, str(openmetrics), str(data_dir)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill of {openmetrics} failed ({done.returncode}): {done.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """`prometheus` serving `data_dir` on a free 127.0.0.1 port, with no scrape jobs but `scrape_configs`.

    `route_prefix` serves the API under a path, set up as Prometheus behind a reverse proxy
    is (`--web.route-prefix` and a `--web.external-url` ending in that path; any path outside
    the prefix answers 404), the way Mimir and Cortex serve it under `/prometheus`;
    `tls` = (certificate file, key file) serves HTTPS; `scrape_configs` are Prometheus
    `scrape_configs` entries, written into its config as they are.
    """

    def __init__(
        self, data_dir: Path, retention: str = "30d", route_prefix: str = "", tls: tuple[Path, Path] | None = None,
        scrape_configs: list[dict[str, Any]] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.retention = retention
        self.route_prefix = route_prefix
        self.tls = tls
        self.scrape_configs = scrape_configs or []
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        """Start and wait for /-/ready; a port taken in the meantime is retried with another."""
        server, _ = binaries()
        config = self.data_dir.parent / f"{self.data_dir.name}.yml"
        settings: dict[str, Any] = {"global": {"scrape_interval": "1m"}}
        if self.scrape_configs:
            settings["scrape_configs"] = self.scrape_configs
        config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
        flags = [f"--web.route-prefix={self.route_prefix}"] if self.route_prefix else []
        if self.tls:
            web = self.data_dir.parent / f"{self.data_dir.name}-web.yml"
            web.write_text(f"tls_server_config:\n  cert_file: {self.tls[0]}\n  key_file: {self.tls[1]}\n")
            flags.append(f"--web.config.file={web}")
        for _ in range(3):
            port = free_port()
            self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}{self.route_prefix}"
            external = [f"--web.external-url={self.url}"] if self.route_prefix else []
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    [
                        server,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.data_dir}",
                        f"--storage.tsdb.retention.time={self.retention}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                        *flags,
                        *external,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout):
                return self
            if "address already in use" not in self.log_path.read_text(errors="replace"):
                break
        self.stop()
        raise RuntimeError(f"prometheus did not become ready; log {self.log_path}:\n{self._log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                    if requests.get(f"{self.url}/-/ready", timeout=1, verify=False).status_code == 200:
                        return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
