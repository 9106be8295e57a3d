"""Reports of a replay: a Markdown summary and two PNGs a user can read at a glance.

- `timeline.png`: demand with the forecast band and both policies' ready replicas
  (as served capacity) over the 2-day span around the trace's busiest minute;
- `frontier.png`: cost ratio against unserved fraction for both sweeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from autoscaler.sim.engine import Outcome
from autoscaler.sim.sweep import SweepResult

SPAN_MINUTES = 2 * 1440


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def comparable_pair(result: SweepResult) -> tuple[Outcome, Outcome]:
    """The predictive point and the reactive point whose costs are closest."""
    pairs = [(abs(p.cost_ratio - r.cost_ratio), p, r) for p in result.predictive for r in result.reactive]
    _, p, r = min(pairs, key=lambda x: x[0])
    return p, r


def _span(result: SweepResult) -> slice:
    demand = np.nan_to_num(result.scenario.demand.values[result.scenario.eval_start :])
    n = len(demand)
    if n <= SPAN_MINUTES:
        return slice(0, n)
    peak = int(np.argmax(demand))
    start = min(max(0, peak - SPAN_MINUTES // 2), n - SPAN_MINUTES)
    return slice(start, start + SPAN_MINUTES)


def plot_timeline(result: SweepResult, path: Path) -> None:
    """Demand, the forecast band and both policies' served capacity over a 2-day span."""
    scenario = result.scenario
    predictive, reactive = comparable_pair(result)
    span = _span(result)
    first = scenario.eval_start
    demand = scenario.demand.values[first:][span]
    hours = np.arange(len(demand)) / 60.0
    cap = scenario.capacity
    fig = Figure(figsize=(12, 4.5))
    ax = fig.subplots()
    ax.plot(hours, demand, color="black", lw=0.8, label="demand (req/s)")
    ax.fill_between(hours, predictive.forecast_median[span], predictive.forecast[span], color="tab:blue",
                    alpha=0.25, lw=0, label="forecast band (median to sizing quantile)")
    ax.step(hours, predictive.ready[span] * cap, where="post", color="tab:blue", lw=1.1,
            label=f"predictive ready capacity (u={predictive.target_utilization:g})")
    ax.step(hours, reactive.ready[span] * cap, where="post", color="tab:red", lw=1.1,
            label=f"reactive HPA ready capacity (u={reactive.target_utilization:g})")
    ax.set_xlabel(f"hours into the span (startup {result.startup_seconds:g}s)")
    ax.set_ylabel("requests per second")
    ax.set_title(f"{result.trace}: demand vs ready capacity")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_frontier(result: SweepResult, path: Path) -> None:
    """Cost ratio vs unserved fraction for the reactive and the predictive sweep."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for outcomes, color, label in ((result.reactive, "tab:red", "reactive (HPA)"),
                                   (result.predictive, "tab:blue", "predictive")):
        pts = sorted((o.cost_ratio, o.unserved_fraction, o.target_utilization) for o in outcomes)
        ax.plot([p[0] for p in pts], [p[1] + 1e-6 for p in pts], "o-", color=color, label=label)
        for c, u, util in pts:
            ax.annotate(f"{util:g}", (c, u + 1e-6), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("cost (replica-minutes / oracle)")
    ax.set_ylabel("unserved fraction of demand")
    ax.set_title(f"{result.trace}, startup {result.startup_seconds:g}s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table_rows(result: SweepResult) -> list[list[str]]:
    """One row per simulated policy point."""
    rows = []
    for name, outcomes in (("reactive", result.reactive), ("predictive", result.predictive)):
        for o in outcomes:
            rows.append([name, f"{o.target_utilization:g}", f"{o.unserved_fraction:.5f}",
                         f"{o.underprovisioned_minutes_fraction:.4f}", f"{o.cost_ratio:.3f}", str(o.scale_actions)])
    return rows


HEADER = ["policy", "u", "unserved", "under-provisioned min", "cost ratio", "scale actions"]


def markdown(result: SweepResult, images: dict[str, str]) -> str:
    """The Markdown summary of one sweep."""
    lines = [
        f"# Replay of `{result.trace}`",
        "",
        f"- start-up time: {result.startup_seconds:g} s; evaluated minutes: {result.scenario.ticks()}; "
        f"capacity per replica: {result.scenario.capacity:.4g} req/s",
        f"- oracle replica-minutes: {result.scenario.oracle(result.min_replicas):.0f}",
        f"- unserved ratio at matched cost (predictive / reactive): **{_fmt(result.unserved_ratio_at_matched_cost)}**",
        f"- cost ratio at matched unserved (predictive / reactive): **{_fmt(result.cost_ratio_at_matched_unserved)}**",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    lines.append("")
    for title, name in images.items():
        lines.append(f"![{title}]({name})")
    return "\n".join(lines) + "\n"


def write_report(result: SweepResult, directory: Path) -> Path:
    """Write summary.md, timeline.png and frontier.png into `directory`; returns the summary path."""
    directory.mkdir(parents=True, exist_ok=True)
    plot_timeline(result, directory / "timeline.png")
    plot_frontier(result, directory / "frontier.png")
    summary = directory / "summary.md"
    summary.write_text(markdown(result, {"demand and ready capacity": "timeline.png",
                                         "cost/unserved frontier": "frontier.png"}))
    return summary
