"""Prometheus answer sizes: what working queries return, and what an oversized answer costs.

The adapter refuses answers past `MAX_ANSWER_BYTES` (16 MiB). This measures the two
sides of that choice, and writes bench/results/prometheus_answers.md:

- Sizes of the largest answers the adapter asks for, in Prometheus's compact JSON: the
  batched instant answer for N targets (a rate and a freshness series per target) and one
  range-query chunk (11,000 points of one series).
- The cost of one oversized answer (67 MB, the size of the hostile test's): in a fresh
  worker process each, its peak RSS and wall time (a) with the production adapter, which
  stops reading at the cap, and (b) read and parsed whole the way the client did before
  the cap (`requests` + `.json()`), for comparison.

    python bench/prometheus_answer_bench.py --targets 2000 --oversized-mb 67
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from autoscaler.adapters.prometheus import MAX_POINTS_PER_REQUEST, PrometheusMetrics
from autoscaler.adapters.prometheus_http import MAX_ANSWER_BYTES
from autoscaler.config.promql import OBSERVED_PART, PART_LABEL, RATE_PART
from autoscaler.config.schema import PrometheusSettings, Target
from testing.prometheus_stub import Reply, StubPrometheus, head

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def compact(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def batched_answer(targets: int, now: float = 1_700_000_000.123) -> bytes:
    """The batched instant answer for `targets` targets, with realistic names and values."""
    result = []
    for i in range(targets):
        labels = {"namespace": f"team-{i % 40:02d}-prod", "deployment": f"service-{i:04d}-api"}
        result += [{"metric": labels | {PART_LABEL: RATE_PART}, "value": [now, "1234.5678901234567"]},
                   {"metric": labels | {PART_LABEL: OBSERVED_PART}, "value": [now, "1699999985.123"]}]
    return compact({"status": "success", "data": {"resultType": "vector", "result": result}})


def range_chunk(points: int = MAX_POINTS_PER_REQUEST, start: int = 1_700_000_000) -> bytes:
    values = [[start + 60 * i, "1234.5678901234567"] for i in range(points)]
    return compact({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}})


def oversized(size: int) -> bytes:
    series = b',{"metric":{"namespace":"shop","deployment":"web","pod":"web-0"},"value":[1700000000,"1"]}'
    count = size // len(series) + 1
    return b'{"status":"success","data":{"resultType":"vector","result":[' + (series * count)[1:] + b"]}}"


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike `ru_maxrss`, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(mode: str, url: str) -> None:
    """One measurement in this fresh process: prints peak RSS (MB) and seconds as JSON."""
    import requests

    before = peak_rss_mb()
    started = time.perf_counter()
    if mode == "capped":
        target = Target.model_validate({"name": "web", "namespace": "shop", "capacityPerReplica": 1, "maxReplicas": 10})
        sample = PrometheusMetrics(PrometheusSettings(url=url, retries=0)).current_rates([target], time.time())
        outcome = sample[target.key].error
    else:
        outcome = f"{len(requests.post(url + '/api/v1/query', data={'query': 'x'}, timeout=60).json()['data']['result']):,} series parsed"
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(json.dumps({"before_mb": before, "peak_mb": peak, "seconds": seconds, "outcome": outcome}))


def measure(mode: str, url: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", mode, url], capture_output=True, text=True,
                          check=True, cwd=REPO)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--oversized-mb", type=float, default=67.0)
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    batched, chunk = batched_answer(args.targets), range_chunk()
    body = oversized(int(args.oversized_mb * 1e6))
    declared, undeclared = head(Content_Length=str(len(body))) + body, head() + body
    runs = {}
    for name, mode, raw in [("declared", "capped", declared), ("streamed", "capped", undeclared),
                            ("whole", "whole", declared)]:
        with StubPrometheus(Reply(raw=functools.partial(list, [raw]))) as stub:
            runs[name] = measure(mode, stub.url)
    lines = [
        "# Prometheus answer sizes and the 16 MiB cap",
        "",
        f"Command: `python bench/prometheus_answer_bench.py --targets {args.targets} --oversized-mb {args.oversized_mb:g}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; the stub of `testing/prometheus_stub.py` on "
        "127.0.0.1.",
        "",
        "## Largest answers of working queries (compact JSON, as Prometheus writes it)",
        "",
        "| answer | bytes | per series or point | share of the cap |",
        "|---|---:|---:|---:|",
        f"| batched instant query, {args.targets:,} targets ({2 * args.targets:,} series) | {len(batched):,} | "
        f"{len(batched) / (2 * args.targets):.0f} B per series | {len(batched) / MAX_ANSWER_BYTES:.1%} |",
        f"| range query chunk, {MAX_POINTS_PER_REQUEST:,} points of one series | {len(chunk):,} | "
        f"{len(chunk) / MAX_POINTS_PER_REQUEST:.0f} B per point | {len(chunk) / MAX_ANSWER_BYTES:.1%} |",
        "",
        f"## One oversized answer of {len(body):,} bytes, a fresh worker process each",
        "",
        "| reader | peak RSS | RSS before | wall time | outcome |",
        "|---|---:|---:|---:|---|",
        *(f"| {what} | {run['peak_mb']:.0f} MB | {run['before_mb']:.0f} MB | {run['seconds'] * 1000:.0f} ms | "
          f"{run['outcome'].split(': ', 1)[-1] if run['outcome'].startswith('Prometheus') else run['outcome']} |"
          for what, run in [
              ("production adapter, Content-Length declared", runs["declared"]),
              ("production adapter, no Content-Length (streamed until the cap)", runs["streamed"]),
              ("read and parsed whole (`requests` + `.json()`, as before the cap)", runs["whole"]),
          ]),
        "",
        "RSS is the worker's peak (`VmHWM`); \"before\" is that peak after its imports, before the request.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "prometheus_answers.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
