"""Ablation benchmark: which lever of the decision rule buys service, and which only costs.

Each variant is the predictive policy with some levers switched on or off, written as the
config overrides a user would write (validated like any config), replayed through the
production Reconciler (the simulator of `prescaler simulate`) on every trace, swept over
its points, and compared with the reactive HPA frontier at matched cost and at matched
unserved demand. `prescaler` is what ships (and what the policy benchmark runs);
`peak3-u` is the same forecast swept over u with HPA's scale-down window, and every other
arm switches one lever of `peak3-u`, except `gateReactive` and `features0`, which switch one of `prescaler`.

    python bench/ablation_bench.py --traces ../shared/traces --startup-seconds 180 --jobs 2

Each trace's row records the commit it ran at; `--render --merge other/ablation.json` writes
one table from runs made apart (e.g. the long traces on another day), naming each run.
`--render --add-variants arm/ablation.json` adds the arms of a run of the same traces to
their rows (an arm measured later, at its own commit): only where that run replayed the
same hpa frontier, point for point, so every arm is judged against the same reference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance import (  # the sibling module (on sys.path)
    NOT_RECORDED,
    merged_runs,
    provenance,
    source_commit,
)

from autoscaler.sim.contenders import (
    BY_NAME,
    HPA,
    PRESCALER,
    RISK_UTILIZATION,
    RISKS,
    Contender,
    SweepPoint,
    utilization_sweep,
)
from autoscaler.sim.engine import Outcome, Scenario
from autoscaler.sim.replay import observed_rates
from autoscaler.sim.shared_forecasts import SharedForecasts, prescaler_model
from autoscaler.sim.sweep import SweepSettings, frontier_ratios, sweep_contender
from forecasting.traces import read_trace_csv

RESULTS = Path(__file__).resolve().parent / "results"
PEAK_U: dict[str, Any] = {"forecast": {"scaleDown": "stabilized", "peakMinutes": 3}}
"""The base of the one-lever arms: the 0.9 quantile of the peak of 3 minutes, HPA's scale-down window, swept over
u as every peer is (written out in full, so no arm depends on what the defaults are)."""


def _forecast(**settings: Any) -> dict[str, Any]:
    return {"forecast": {**PEAK_U["forecast"], **settings}}


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: the overrides of the predictive policy, and what it is swept over."""

    lever: str
    """What it changes against `peak3-u`, in words."""
    overrides: dict[str, Any]
    points: tuple[SweepPoint, ...] = utilization_sweep()


RISK_SWEEP = tuple(SweepPoint(RISK_UTILIZATION, r) for r in RISKS)
VARIANTS: dict[str, Variant] = {
    "prescaler": Variant(f"shipped: peak of 3, predictive scale-down, risk swept at u={RISK_UTILIZATION:g}",
                         dict(BY_NAME[PRESCALER].overrides), BY_NAME[PRESCALER].points),
    "peak3-u": Variant("the 0.9 quantile of the peak of 3 minutes, HPA's scale-down window, swept over u", PEAK_U),
    "peak1": Variant("each minute forecast alone (peakMinutes 1): v0.1's rule", _forecast(peakMinutes=1)),
    "riskSweep": Variant(f"headroom from the quantile: risk swept at u={RISK_UTILIZATION:g} instead of u", PEAK_U,
                         RISK_SWEEP),
    "predictiveScaleDown": Variant("scale down on the forecast until a removed pod could be back",
                                   _forecast(scaleDown="predictive")),
    "sizeAtCapacity": Variant("headroom once: the quantile sized at full capacity, not at u",
                              _forecast(sizeAtCapacity=True)),
    "gateReactive": Variant("a closed quality gate scales reactively (v0.1), not on the baseline that beat the model",
                            {"forecast": {"onGateClosed": "reactive"}}, BY_NAME[PRESCALER].points),
    "features0": Variant("without the burst features (recent maxima and spreads) and weekly seasonality",
                         {"forecast": {"model": {"excludeFeatures": ["burst", "weekSeason"]}}},
                         BY_NAME[PRESCALER].points),
    "tolerance0": Variant("no 10% tolerance band", {**PEAK_U, "tolerance": 0.0}),
    "upTolerance0": Variant("no tolerance band on scale-up only",
                            {**PEAK_U, "behavior": {"scaleUp": {"tolerance": 0.0}}}),
}
"""Variant name → its lever, overrides and sweep (the risk of a u-swept point is the replay's 0.1)."""


def _point(o: Outcome) -> dict[str, float | None]:
    return {"u": o.target_utilization, "risk": o.risk if o.predictive else None, "cost_ratio": o.cost_ratio,
            "unserved_fraction": o.unserved_fraction, "scale_actions": o.scale_actions}


def run_trace(trace: str, startup: float, variants: Sequence[str]) -> dict[str, Any]:
    """Every variant of one trace through the policy benchmark's own sweep (`sweep_contender`), as a contender
    of its own: the variant's overrides and points, Prescaler's model, one `SharedForecasts` for all of them."""
    scenario = Scenario.from_trace(read_trace_csv(trace), 40.0)
    shared = SharedForecasts(observed_rates(scenario.demand))
    settings = SweepSettings(startup_seconds=startup, num_threads=1)
    started = time.perf_counter()
    reactive = sweep_contender(scenario, BY_NAME[HPA], settings)
    out: dict[str, Any] = {"trace": Path(trace).name, "startup_seconds": startup,
                           "hpa": [_point(o) for o in reactive], "variants": {}}
    for name in variants:
        variant = VARIANTS[name]
        contender = Contender(name, variant.lever, variant.overrides, prescaler_model, variant.points)
        outcomes = sweep_contender(scenario, contender, settings, shared=shared)
        out["variants"][name] = {
            "points": [_point(o) for o in outcomes],
            **frontier_ratios(outcomes, reactive),
            "scale_actions_mean": sum(o.scale_actions for o in outcomes) / len(outcomes),
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


def summary_rows(rows: list[dict[str, Any]], variants: Sequence[str]) -> list[str]:
    """The ablation table: one row per variant, geometric means over the traces (also in policy.md)."""
    lines = ["| variant | lever | overrides | points | geomean unserved @ matched cost "
             "| geomean cost @ matched unserved | traces > 1 (either) | scale actions / hpa (geomean) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in variants:
        variant = VARIANTS[name]
        u = [r["variants"][name]["unserved_ratio_at_matched_cost"] for r in rows]
        c = [r["variants"][name]["cost_ratio_at_matched_unserved"] for r in rows]
        worse = sum(1 for a, b in zip(u, c, strict=True) if (a or 0) > 1 or (b or 0) > 1)
        actions = geomean([r["variants"][name]["scale_actions_mean"] / max(r["hpa_scale_actions_mean"], 1e-9)
                           for r in rows])
        swept = ("risk " + ", ".join(f"{p.risk:g}" for p in variant.points) + f" at u={variant.points[0].utilization:g}"
                 if variant.points[0].risk is not None else "u " + ", ".join(f"{p.utilization:g}" for p in variant.points))
        lines.append(f"| {name} | {variant.lever} | `{json.dumps(variant.overrides)}` | {swept} | {fmt(geomean(u))} "
                     f"| {fmt(geomean(c))} | {worse} of {len(rows)} | {fmt(actions)} |")
    return lines


def render(rows: list[dict[str, Any]], variants: Sequence[str], commands: Sequence[str]) -> str:
    lines = ["# Ablation: each lever of the decision rule against reactive HPA", "",
             "Command: " + "; ".join(f"`{c}`" for c in commands) + "  ",
             f"Runs by commit: {provenance(rows, lambda r: r['trace'])}.  ",
             *([f"Arms added from later runs (same hpa frontier, point for point): {added}.  "]
               if (added := added_arms(rows)) else []),
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
             f"{platform.python_version()}; LightGBM num_threads=1. Traces: {len(rows)}.", "",
             "Ratios are each variant's frontier against the HPA frontier (u sweep), below 1 favours the variant.", "",
             *summary_rows(rows, variants),
             "", "## Per trace", "", "| trace | variant | unserved @ cost | cost @ unserved | scale actions (HPA) |",
             "|---|---|---|---|---|"]
    for r in rows:
        for name in variants:
            v = r["variants"][name]
            lines.append(f"| {r['trace']} | {name} | {fmt(v['unserved_ratio_at_matched_cost'])} | "
                         f"{fmt(v['cost_ratio_at_matched_unserved'])} | {v['scale_actions_mean']:.0f} "
                         f"({r['hpa_scale_actions_mean']:.0f}) |")
    return "\n".join(lines) + "\n"


def variants_in(rows: list[dict[str, Any]]) -> list[str]:
    """The variants every row ran, in `VARIANTS` order (rows merged from runs may differ)."""
    return [v for v in VARIANTS if all(v in r["variants"] for r in rows)]


def merged_rows(paths: Sequence[Path], replace: bool = False) -> list[dict[str, Any]]:
    """The rows of several runs' ablation.json, one per trace, all at one start-up time (see `merged_runs`)."""
    rows = merged_runs(paths, lambda r: r["trace"], replace=replace)
    startups = {r["startup_seconds"] for r in rows}
    if len(startups) > 1:
        raise ValueError(f"--merge: the runs have different start-up times ({', '.join(f'{s:g}' for s in startups)} s)")
    return sorted(rows, key=lambda r: r["trace"])


def with_variants(rows: list[dict[str, Any]], paths: Sequence[Path], replace: bool = False) -> list[dict[str, Any]]:
    """`rows` with the arms of the runs in `paths` added to the row of their trace, each arm recording the commit it
    ran at. Raises ValueError for a trace or start-up `rows` lacks, an hpa frontier that is not the row's own point
    for point (another replay), or an arm the row has already (unless `replace`)."""
    by_key = {(r["trace"], r["startup_seconds"]): r for r in rows}
    for path in paths:
        for added in json.loads(path.read_text()):
            key = (added["trace"], added["startup_seconds"])
            row = by_key.get(key)
            if row is None:
                raise ValueError(f"--add-variants: {key[0]} at {key[1]:g} s ({path}) is in none of the merged runs")
            if added["hpa"] != row["hpa"]:
                raise ValueError(f"--add-variants: {key[0]} ({path}): its hpa frontier is not the merged run's, "
                                 "so its arms are not comparable")
            for name, arm in added["variants"].items():
                if name in row["variants"] and not replace:
                    raise ValueError(f"--add-variants: {key[0]} already has arm {name} ({path} is one); "
                                     "--replace keeps the later")
                row["variants"][name] = {**arm, "commit": added.get("commit", NOT_RECORDED)}
    return rows


def added_arms(rows: Sequence[dict[str, Any]]) -> str:
    """`<arm> at <commit> (<n> traces); …` for the arms added from other runs, or "" when there are none."""
    found: dict[tuple[str, str], int] = {}
    for r in rows:
        for name, arm in r["variants"].items():
            if "commit" in arm:
                found[(name, arm["commit"])] = found.get((name, arm["commit"]), 0) + 1
    return "; ".join(f"{name} at {commit} ({n} traces)" for (name, commit), n in found.items())


def run_commands(rows: Sequence[dict[str, Any]], traces: Path, out: Path) -> list[str]:
    """The command lines that measured `rows`: one per (start-up, arms run together), each with its traces."""
    runs: dict[tuple[float, str], list[str]] = {}
    for r in rows:
        together: dict[str, list[str]] = {}
        for name, arm in r["variants"].items():
            together.setdefault(arm.get("commit", ""), []).append(name)
        for names in together.values():
            runs.setdefault((r["startup_seconds"], ",".join(names)), []).append(r["trace"])
    return [command_of(traces, startup, names, ",".join(ts), out) for (startup, names), ts in runs.items()]


def command_of(traces: Path, startup: float, variants: str, only: str, out: Path = RESULTS) -> str:
    """The command line of a run (its `--out` named, from the repository when inside it, unless it is bench/results)."""
    command = (f"python bench/ablation_bench.py --traces {traces} --startup-seconds {startup:g} --variants {variants}"
               + (f" --only {only}" if only else ""))
    where, repo = out.resolve(), RESULTS.parents[1]
    if where == RESULTS:
        return command
    return f"{command} --out {where.relative_to(repo) if where.is_relative_to(repo) else out}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, required=True)
    parser.add_argument("--startup-seconds", type=float, default=180.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--only", default="")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true",
                        help="only rewrite ablation.md from --out's ablation.json and the --merge files, "
                        "and write their rows back together into ablation.json")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], metavar="JSON",
                        help="with --render: ablation.json files of other runs to include")
    parser.add_argument("--add-variants", type=Path, nargs="*", default=[], metavar="JSON",
                        help="with --render: ablation.json files whose arms join the rows of the same traces "
                        "(only where their hpa frontier is the rows' own)")
    parser.add_argument("--replace", action="store_true",
                        help="with --merge: a trace in two runs keeps the later file's row (else exit 2); "
                        "with --add-variants: an arm in two runs keeps the later one")
    args = parser.parse_args()
    if args.render:
        try:
            merged = with_variants(merged_rows([args.out / "ablation.json", *args.merge], args.replace),
                                   args.add_variants, args.replace)
        except (OSError, ValueError, KeyError) as exc:
            print(f"ablation_bench: {exc}", file=sys.stderr)
            sys.exit(2)
        commands = run_commands(merged, args.traces, args.out)
        (args.out / "ablation.json").write_text(json.dumps(merged, indent=1))
        (args.out / "ablation.md").write_text(render(merged, variants_in(merged), commands))
        print(f"rewrote {args.out / 'ablation.md'} from {len(merged)} traces")
        return
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    traces = sorted(p for p in args.traces.glob("*.csv") if not args.only or p.name in args.only.split(","))
    command = command_of(args.traces, args.startup_seconds, args.variants, args.only, args.out)
    commit = source_commit()
    rows: list[dict[str, Any]] = []
    args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_trace, str(t), args.startup_seconds, variants) for t in traces]
        for future in as_completed(futures):
            row = {**future.result(), "commit": commit}
            rows.append(row)
            rows.sort(key=lambda r: r["trace"])
            print(f"{row['trace']}: {row['wall_seconds']:.0f}s", flush=True)
            (args.out / "ablation.json").write_text(json.dumps(rows, indent=1))
            (args.out / "ablation.md").write_text(render(rows, variants, [command]))


if __name__ == "__main__":
    main()
