"""Ablation benchmark: which lever of the decision rule buys service, and which only costs.

Each variant is the predictive policy with some `forecast:` settings switched on or off,
replayed through the production Reconciler (the simulator of `prescaler simulate`) on
every trace, swept over target utilizations (and, for the risk sweep, quantiles), and
compared with the reactive HPA frontier at matched cost and at matched unserved demand.

    python bench/ablation_bench.py --traces ../shared/traces --startup-seconds 180 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from autoscaler.config.schema import Config
from autoscaler.sim.engine import Outcome, Scenario, sim_config, simulate
from autoscaler.sim.frontier import cost_ratio_at_matched_unserved, unserved_ratio_at_matched_cost
from autoscaler.sim.replay import observed_rates
from autoscaler.sim.shared_forecasts import SharedForecasts
from autoscaler.sim.sweep import UTILIZATIONS
from forecasting.traces import read_trace_csv

RESULTS = Path(__file__).resolve().parent / "results"

Q_SWEEP = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995)
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "sizeAtCapacity": {"sizeAtCapacity": True},
    "predictiveScaleDown": {"scaleDown": "predictive"},
    "both": {"sizeAtCapacity": True, "scaleDown": "predictive"},
    "both-u1-qsweep": {"sizeAtCapacity": True, "scaleDown": "predictive", "_grid": [(1.0, q) for q in Q_SWEEP]},
    "both-q98": {"sizeAtCapacity": True, "scaleDown": "predictive", "_grid": [(u, 0.98) for u in UTILIZATIONS]},
    "psd-u09-qsweep": {"scaleDown": "predictive", "_grid": [(0.9, q) for q in Q_SWEEP]},
    "stab-u09-qsweep": {"_grid": [(0.9, q) for q in Q_SWEEP]},
}
"""Variant name → `forecast:` overrides of the predictive policy (the baseline is today's default); `_grid`
gives its own (u, q) sweep instead of u × --quantiles."""


def _config(scenario: Scenario, u: float, startup: float, forecast: dict[str, Any] | None, q: float) -> Config:
    config = sim_config(scenario, target_utilization=u, startup_seconds=startup, predictive=forecast is not None,
                        quantile=q, num_threads=1)
    if not forecast:
        return config
    target = config.targets[0]
    settings = target.forecast.model_copy(update={_snake(k): v for k, v in forecast.items()})
    return config.model_copy(update={"targets": [target.model_copy(update={"forecast": settings})]})


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _point(o: Outcome) -> dict[str, float]:
    return {"u": o.target_utilization, "cost_ratio": o.cost_ratio, "unserved_fraction": o.unserved_fraction,
            "scale_actions": o.scale_actions}


def run_trace(trace: str, startup: float, variants: Sequence[str], quantiles: Sequence[float]) -> dict[str, Any]:
    scenario = Scenario.from_trace(read_trace_csv(trace), 40.0)
    shared = SharedForecasts(observed_rates(scenario.demand))
    started = time.perf_counter()
    reactive = [simulate(scenario, _config(scenario, u, startup, None, 0.9)) for u in UTILIZATIONS]
    hpa = [(o.cost_ratio, o.unserved_fraction) for o in reactive]
    out: dict[str, Any] = {"trace": Path(trace).name, "startup_seconds": startup,
                           "hpa": [_point(o) for o in reactive], "variants": {}}
    for name in variants:
        points = []
        overrides = {k: v for k, v in VARIANTS[name].items() if not k.startswith("_")}
        grid = VARIANTS[name].get("_grid") or [(u, q) for q in quantiles for u in UTILIZATIONS]
        for u, q in grid:
            o = simulate(scenario, _config(scenario, u, startup, overrides, q), forecaster_factory=shared)
            points.append({**_point(o), "q": q})
        pts = [(p["cost_ratio"], p["unserved_fraction"]) for p in points]
        out["variants"][name] = {
            "points": points,
            "unserved_ratio_at_matched_cost": unserved_ratio_at_matched_cost(pts, hpa),
            "cost_ratio_at_matched_unserved": cost_ratio_at_matched_unserved(pts, hpa),
            "scale_actions_mean": sum(p["scale_actions"] for p in points) / len(points),
        }
    out["hpa_scale_actions_mean"] = sum(o.scale_actions for o in reactive) / len(reactive)
    out["wall_seconds"] = time.perf_counter() - started
    out["fits"] = shared.fit_count
    return out


def geomean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return math.exp(sum(math.log(v) for v in kept) / len(kept)) if kept else None


def fmt(v: float | None) -> str:
    return "null" if v is None else f"{v:.3f}"


def render(rows: list[dict[str, Any]], variants: Sequence[str], command: str, quantiles: Sequence[float]) -> str:
    lines = ["# Ablation: each lever of the decision rule against reactive HPA", "",
             f"Command: `{command}`  ", f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
             f"{platform.python_version()}; LightGBM num_threads=1.", "",
             f"Each variant sweeps u ∈ {{{', '.join(f'{u:g}' for u in UTILIZATIONS)}}} × q ∈ "
             f"{{{', '.join(f'{q:g}' for q in quantiles)}}}; ratios are against the HPA frontier (u sweep).", "",
             "| variant | overrides | geomean unserved @ matched cost | geomean cost @ matched unserved | traces > 1 |",
             "|---|---|---|---|---|"]
    for name in variants:
        u = [r["variants"][name]["unserved_ratio_at_matched_cost"] for r in rows]
        c = [r["variants"][name]["cost_ratio_at_matched_unserved"] for r in rows]
        worse = sum(1 for a, b in zip(u, c, strict=True) if (a or 0) > 1 or (b or 0) > 1)
        shown = {k: v for k, v in VARIANTS[name].items() if not k.startswith("_")}
        lines.append(f"| {name} | `{json.dumps(shown)}` | {fmt(geomean(u))} | {fmt(geomean(c))} | {worse} |")
    lines += ["", "## Per trace", "", "| trace | variant | unserved @ cost | cost @ unserved | scale actions (HPA) |",
              "|---|---|---|---|---|"]
    for r in rows:
        for name in variants:
            v = r["variants"][name]
            lines.append(f"| {r['trace']} | {name} | {fmt(v['unserved_ratio_at_matched_cost'])} | "
                         f"{fmt(v['cost_ratio_at_matched_unserved'])} | {v['scale_actions_mean']:.0f} "
                         f"({r['hpa_scale_actions_mean']:.0f}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, required=True)
    parser.add_argument("--startup-seconds", type=float, default=180.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quantiles", default="0.9")
    parser.add_argument("--only", default="")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = args.variants.split(",")
    quantiles = [float(q) for q in args.quantiles.split(",")]
    traces = sorted(p for p in args.traces.glob("*.csv") if not args.only or p.name in args.only.split(","))
    command = (f"python bench/ablation_bench.py --traces {args.traces} --startup-seconds {args.startup_seconds:g} "
               f"--variants {args.variants} --quantiles {args.quantiles}")
    rows: list[dict[str, Any]] = []
    args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_trace, str(t), args.startup_seconds, variants, quantiles) for t in traces]
        for future in as_completed(futures):
            rows.append(future.result())
            rows.sort(key=lambda r: r["trace"])
            print(f"{rows[-1]['trace']}: {rows[-1]['wall_seconds']:.0f}s", flush=True)
            (args.out / "ablation.json").write_text(json.dumps(rows, indent=1))
            (args.out / "ablation.md").write_text(render(rows, variants, command, quantiles))


if __name__ == "__main__":
    main()
