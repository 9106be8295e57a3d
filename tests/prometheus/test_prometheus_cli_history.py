"""`prescaler history` against the real server: the backfilled series comes back as a trace CSV."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import numpy as np
import pytest

from autoscaler.cli import main
from forecasting.traces import read_trace_csv

pytestmark = pytest.mark.prometheus

WEB_PODS = 'rate(http_requests_total{namespace="shop", deployment="web"}[2m])'


def rows(path) -> list[tuple[float, str]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["timestamp", "value"]
        return [(datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp(), v) for t, v in reader]


def test_history_writes_the_backfilled_series_as_counts_per_step(dataset, tmp_path, capsys):
    out = tmp_path / "web.csv"
    code = main(["history", "--prometheus", dataset.url, "--query", f"sum({WEB_PODS})", "--days", "10",
                 "--step", "60s", "--output", str(out)])
    assert code == 0, capsys.readouterr().err

    written = rows(out)
    times = np.array([t for t, _ in written])
    assert len(written) == 14_400 and (np.diff(times) == 60).all()
    minute = ((times - dataset.start) // 60).astype(int)
    inside = (minute >= 0) & (minute < len(dataset.counts))
    assert inside.sum() > 14_000, "the window ends now, a few minutes after the data"
    values = np.array([float(v) if v else np.nan for _, v in written])
    np.testing.assert_allclose(values[inside], dataset.counts[minute[inside]], rtol=1e-6)
    assert all(v == "" for (_, v), keep in zip(written, inside, strict=True) if not keep), "gaps are left empty"

    series = read_trace_csv(out)
    assert series.start == times[0]
    np.testing.assert_allclose(series.values[inside], dataset.counts[minute[inside]], rtol=1e-6)


def test_several_series_are_listed_unless_summed(dataset, tmp_path, capsys):
    out = tmp_path / "pods.csv"
    code = main(["history", "--prometheus", dataset.url, "--query", WEB_PODS, "--days", "1", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "returned 2 series" in err and 'pod="web-0"' in err and 'pod="web-1"' in err and "--sum" in err

    assert main(["history", "--prometheus", dataset.url, "--query", WEB_PODS, "--days", "1", "--sum",
                 "--output", str(out)]) == 0
    values = np.array([float(v) for _, v in rows(out) if v])
    np.testing.assert_allclose(values, dataset.counts[-len(values):], rtol=1e-6)


def test_history_exit_codes_for_bad_promql_no_data_and_no_server(dataset, capsys):
    assert main(["history", "--prometheus", dataset.url, "--query", "rate(http_requests_total)", "--days", "1"]) == 2
    assert "HTTP 400" in capsys.readouterr().err
    assert main(["history", "--prometheus", dataset.url, "--query", 'sum(nothing{a="b"})', "--days", "1"]) == 1
    assert "matched no series" in capsys.readouterr().err
    assert main(["history", "--prometheus", "http://127.0.0.1:9", "--query", "up", "--days", "1", "--retries", "0"]) == 1
    assert "after 1 attempt(s)" in capsys.readouterr().err
