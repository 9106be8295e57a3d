"""The /status document and route: every stage of the last decision, one key casing, no config values or secrets."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from status_world import (
    LONG,
    PROMETHEUS_URL,
    SECRET,
    T0,
    config,
    serve_status,
    sharded,
    status_source,
    synced,
    web_shard,
)

from autoscaler.loop.status import MAX_MESSAGE, status_document

CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def keys(value, path=""):
    """Every mapping key in `value`, with its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", k
            yield from keys(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from keys(v, f"{path}[{i}]")


def test_one_target_carries_the_read_the_band_every_stage_the_model_and_the_score():
    document = status_document(synced(), {"identity": "p-0"})
    web = document["targets"][0]
    assert (web["namespace"], web["name"], web["kind"], web["mode"]) == ("shop", "web", "Deployment", "replicas")
    assert (web["currentReplicas"], web["readyReplicas"], web["observed"]["rate"]) == (3, 3, 50.0)
    band = web["forecast"]
    assert band["rate"] == pytest.approx(60.0) and band["quantile"] == 0.9
    # the bin a pod written now serves (120-180 s) sizes; the two before it hold a predictive scale-down
    assert [(h["horizonMinutes"], h["use"]) for h in band["horizons"]] == [
        (1, "holdScaleDown"), (2, "holdScaleDown"), (3, "size")]
    assert all(h["median"] == pytest.approx(50) and h["sizing"] == pytest.approx(60) for h in band["horizons"])
    assert web["recommendedReplicas"] == 6 and web["decision"]["replicas"] == 6
    assert [s["stage"] for s in web["decision"]["stages"]] == ["proposal", "stabilization", "ratePolicies", "clamp"]
    assert web["decision"]["stages"][0] == {"stage": "proposal", "replicas": 6, "reason": "Forecast"}
    assert web["actuation"]["rules"] == [{"rule": "dryRun", "replicas": 3, "reason": "DryRun"}]
    assert (web["action"], web["actuation"]["wanted"], web["actuation"]["applied"]) == ("DryRun", 6, 3)
    model = web["model"]
    assert model["gateOpen"] is True and model["report"]["modelPinball"] == 0.04 and model["historyHours"] >= 3
    score = web["scorecard"]
    assert score["windowSeconds"] == 300 and score["summary"].startswith("Over the last 7 days (5 minutes scored)")
    assert set(score["runs"]) == {"actual", "prescaler"}


def test_every_key_is_camel_case():
    document = status_document(synced(missing="no series"), {"identity": "p-0"})
    bad = [path for path, key in keys(document) if not CAMEL.fullmatch(key)]
    assert bad == []


def test_no_config_value_beyond_identity_and_numbers_and_no_secret():
    """A missing rate's reason names the Prometheus URL (with its password) and the rendered query, as the adapter
    writes it: /status shows neither, nor the template, nor anything over MAX_MESSAGE characters."""
    cfg = config()
    long = cfg.targets[1]
    rendered = long.query.replace("{namespace}", "shop").replace("{name}", LONG)
    reason = (f"Prometheus at {PROMETHEUS_URL} gave no answer to query {rendered!r}: ConnectionError; "
              f"also tried 'sum(rate(x{{a=\"b\"}}[5m]))' " + "x" * 1000)
    text = json.dumps(status_document(synced(missing=reason, cfg=cfg), {"identity": "p-0"}))
    for value in (SECRET, "prom.internal.example", rendered, long.query, "rate(x{", "http_requests_total"):
        assert value not in text, value
    entry = status_document(synced(missing=reason, cfg=cfg), {})["targets"][1]
    why = entry["observed"]["missingReason"]
    assert why.startswith("Prometheus at <prometheus> gave no answer to query <query>: ConnectionError")
    assert len(why) == MAX_MESSAGE and why.endswith("…")
    assert entry["reason"] == "MetricsMissing" and entry["decision"]["stages"][0]["reason"] == "MetricsMissing"


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            assert answer.headers["Content-Type"] == "application/json"
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


ROUTES = [
    ("every-target", "/status", 200, ["shop/web", f"shop/{LONG}"]),
    ("one-target", "/status?target=shop%2Fweb", 200, ["shop/web"]),
    ("unmanaged-target", "/status?target=shop%2Fnope", 404, None),
]


@pytest.mark.parametrize(("path", "code", "targets"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES])
def test_the_status_route(path, code, targets):
    server = serve_status(synced(2))
    try:
        status, body = get(server.server_address[1], path)
    finally:
        server.shutdown()
    assert status == code
    if targets is None:
        assert body == {"error": "shop/nope is not a target of this controller"}
    else:
        assert [f"{t['namespace']}/{t['name']}" for t in body["targets"]] == targets
        assert body["instance"]["identity"] == "prescaler-0" and body["syncedAt"] == T0 + 60


def test_a_status_document_that_cannot_be_built_is_a_500_not_a_dead_endpoint():
    from autoscaler.runtime.http import Probes, serve

    def broken(target):
        raise RuntimeError("boom")

    server = serve(synced(1).telemetry.registry, Probes(lambda: True, lambda: True), "127.0.0.1", 0, status=broken)
    try:
        assert get(server.server_address[1], "/status")[0] == 500
        assert get(server.server_address[1], "/status")[0] == 500  # and it still answers
    finally:
        server.shutdown()


def test_before_the_first_sync_every_target_is_listed_unsynced():
    rec = synced(0)
    body = json.loads(status_source(rec)(None))
    assert [t["synced"] for t in body["targets"]] == [False, False] and body["syncedAt"] is None


def test_a_shard_answers_for_its_own_targets_and_says_which_it_owns():
    shard, _ = web_shard()
    first = status_document(sharded(1, dryRun=False), {"identity": "prescaler-1"})
    assert [t["name"] for t in first["targets"]] == ["web"]  # the long target is another shard's
    web = first["targets"][0]
    assert web["ownership"] == "acquiring" and web["action"] == "Standby"  # a new owner's first sync observes
    assert web["actuation"]["rules"] == [{"rule": "shard", "replicas": 3, "reason": "NotShardOwner"}]
    assert status_document(sharded(2, dryRun=False), {})["targets"][0]["action"] == "Scaled"
    document = status_document(sharded(2), {"identity": "prescaler-1"})
    assert document["shard"] == {
        "index": shard.index, "total": shard.total, "indexFrom": "POD_NAME prescaler-1",
        "totalFrom": "sharding.totalShards", "claim": f"{shard.index}/{shard.total}",
        "counts": {"owned": 1, "acquiring": 0, "contended": 0, "standby": 0}, "owned": ["shop/web"],
        "contendedBy": {}, "problem": None}
    assert document["targets"][0]["ownership"] == "owned"
    assert status_document(synced(1), {})["shard"] is None and status_document(synced(1), {})["targets"][0][
        "ownership"] is None


def test_a_target_another_shard_claims_too_is_contended_and_names_the_claim():
    document = status_document(sharded(3, contended=True), {"identity": "prescaler-1"})
    assert document["targets"][0]["ownership"] == "contended" and document["shard"]["owned"] == []
    (claim,) = document["shard"]["contendedBy"].values()
    assert claim["lease"] == "prescaler-shard-7" and claim["holder"] == "prescaler-7"
