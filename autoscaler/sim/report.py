"""Reports of a replay: a Markdown summary and two PNGs a user can read at a glance.

- `timeline.png`: demand with the forecast band and both policies' ready replicas
  (as served capacity) over the 2-day span around the trace's busiest minute;
- `frontier.png`: cost ratio against unserved fraction for every contender's sweep (the
  oracle, a single point, at cost 1.0).

The Markdown summary has every simulated point with its SPEC RG elasticity metrics, and
the table of peers: each peer's matched ratios against `hpa`, and Prescaler's against it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from autoscaler.sim.contenders import HPA, ORACLE, PRESCALER
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


MATCHED_UTILIZATION = 0.7
"""The hpa point the benchmark's elasticity table is matched on: Prescaler's default target utilization."""


def matched_points(result: SweepResult) -> dict[str, Outcome]:
    """Each contender's point whose cost is closest to hpa's at `MATCHED_UTILIZATION` (or hpa's middle point)."""
    hpa = sorted(result.reactive, key=lambda o: o.cost_ratio)
    anchor = next((o for o in hpa if o.target_utilization == MATCHED_UTILIZATION), hpa[len(hpa) // 2])
    return {name: min(outcomes, key=lambda o: abs(o.cost_ratio - anchor.cost_ratio))
            for name, outcomes in result.runs.items()}


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


COLORS = {HPA: "tab:red", PRESCALER: "tab:blue", "crane-dsp": "tab:green", "phpa-holt-winters": "tab:purple",
          "aws-style": "tab:orange", "reference-lgbm": "tab:brown", ORACLE: "black"}
LABELS = {HPA: "hpa (reactive)", PRESCALER: "prescaler (predictive)", ORACLE: "oracle (cost 1, none unserved)"}
FLOOR = 1e-6
"""Added to unserved fractions on the log axis, so a point that served everything is still drawn."""


def plot_frontier(result: SweepResult, path: Path) -> None:
    """Cost ratio vs unserved fraction for every contender's sweep."""
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    for name, outcomes in result.runs.items():
        pts = sorted((o.cost_ratio, o.unserved_fraction, o.target_utilization) for o in outcomes)
        label = LABELS.get(name, name)
        style = "*" if name == ORACLE else "o-"
        ax.plot([p[0] for p in pts], [p[1] + FLOOR for p in pts], style, color=COLORS.get(name), label=label,
                markersize=10 if name == ORACLE else 5)
        if name in (HPA, PRESCALER):
            for c, u, util in pts:
                ax.annotate(f"{util:g}", (c, u + FLOOR), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("cost (replica-minutes / oracle)")
    ax.set_ylabel("unserved fraction of demand")
    ax.set_title(f"{result.trace}, startup {result.startup_seconds:g}s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


ELASTICITY = (("theta_u", "θU %"), ("theta_o", "θO %"), ("tau_u", "τU %"), ("tau_o", "τO %"),
              ("instability", "instability %"), ("jitter", "jitter /min"))


def table_rows(result: SweepResult, *, elasticity: bool = False) -> list[list[str]]:
    """One row per simulated point of every contender (`HEADER`), with `ELASTICITY_HEADER` when asked."""
    rows = []
    for name, outcomes in result.runs.items():
        for o in outcomes:
            row = [name, f"{o.target_utilization:g}", f"{o.risk:g}" if o.predictive else "—", f"{o.unserved_fraction:.5f}",
                   f"{o.underprovisioned_minutes_fraction:.4f}", f"{o.cost_ratio:.3f}", str(o.scale_actions)]
            if elasticity:
                metrics = o.elasticity.to_json()
                row += [f"{metrics[key]:.3g}" for key, _ in ELASTICITY]
            rows.append(row)
    return rows


HEADER = ["policy", "u", "risk", "unserved", "under-provisioned min", "cost ratio", "scale actions"]
ELASTICITY_HEADER = [title for _, title in ELASTICITY]

PEER_HEADER = ["peer", "unserved vs hpa", "cost vs hpa", "prescaler unserved vs peer", "prescaler cost vs peer",
               "scale actions (mean)"]
PEER_CAPTION = ("unserved: the unserved ratio at matched cost; cost: the cost ratio at matched unserved. "
                "Below 1 favours the policy named first; n/a: no point of one frontier lies in the other's range.")


def peer_rows(result: SweepResult) -> list[list[str]]:
    """One row per peer: its ratios against hpa, Prescaler's against it, its mean scale actions."""
    rows = []
    for name in result.peers:
        theirs, ours = result.ratios(name, HPA), result.ratios(PRESCALER, name)
        actions = [o.scale_actions for o in result.runs[name]]
        rows.append([name, _fmt(theirs["unserved_ratio_at_matched_cost"]),
                     _fmt(theirs["cost_ratio_at_matched_unserved"]), _fmt(ours["unserved_ratio_at_matched_cost"]),
                     _fmt(ours["cost_ratio_at_matched_unserved"]), f"{sum(actions) / len(actions):.0f}"])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


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
        "## Peers",
        "",
        PEER_CAPTION,
        "",
        *_table(PEER_HEADER, peer_rows(result)),
        "",
        "## Every simulated point",
        "",
        "The elasticity metrics are the SPEC Research Group's (θ accuracy and τ timeshare of under- and "
        "over-provisioning, instability, jitter), computed from ready replicas against ceil(demand / capacity).",
        "",
        *_table(HEADER + ELASTICITY_HEADER, table_rows(result, elasticity=True)),
        "",
    ]
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
