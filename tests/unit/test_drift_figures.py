"""credit_model.monitor's figures against independent computations on hand-made data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from credit_model import monitor, stability
from credit_model.drift import Thresholds
from credit_schema import FEATURES

N = len(FEATURES)


def test_ndcg_is_clarify_s_attribution_drift() -> None:
    base = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert monitor.ndcg(base, {"a": 9.0, "b": 5.0, "c": 0.1}) == pytest.approx(1.0)
    # Order c, b, a scored with the baseline's importances, over the baseline's own order.
    dcg = 1 / math.log2(2) + 2 / math.log2(3) + 3 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert monitor.ndcg(base, {"a": 1.0, "b": 2.0, "c": 3.0}) == pytest.approx(dcg / ideal)


def metadata(rng: np.random.Generator) -> tuple[dict[str, Any], np.ndarray]:
    X = rng.normal(50, 10, size=(4000, N))
    X[rng.random(X.shape) < 0.05] = np.nan
    p = rng.random(4000)
    phi = rng.normal(0, 1, size=(4000, N)) * np.arange(1, N + 1)  # feature j: weight j + 1
    meta = {
        "baseline": {
            "features": {f: stability.baseline(X[:, j]) for j, f in enumerate(FEATURES)},
            "score": stability.baseline(p),
            "monitoring": monitor.attribution_baseline(X, X, p, phi),
        }
    }
    return meta, X


def test_monitor_figures_on_a_hand_made_sample() -> None:
    rng = np.random.default_rng(1)
    meta, train = metadata(rng)
    X = rng.normal(50, 10, size=(1000, N))
    X[rng.random(X.shape) < 0.05] = np.nan  # as often missing as at training
    X[:, 0] = np.where(np.arange(1000) < 300, np.nan, rng.normal(50, 10, 1000))
    X[:30, 1] = 1e6  # 3% above the training maximum
    X[:, 2] += 10  # one standard deviation up
    p = rng.random(1000)
    phi = rng.normal(0, 1, size=(1000, N)) * np.arange(N, 0, -1)  # importances reversed
    reasons = [[FEATURES[0]] if i % 4 == 0 else [] for i in range(1000)]
    report = monitor.monitor(meta, X, p, phi, reasons)
    by = {f["feature"]: f for f in report["features"]}
    assert by[FEATURES[0]]["missing_rate"] == pytest.approx(0.3)
    assert by[FEATURES[1]]["out_of_range_share"] == pytest.approx(0.03)
    assert by[FEATURES[1]]["baseline_range"] == [np.nanmin(train[:, 1]), np.nanmax(train[:, 1])]
    # PSI by its formula over the training deciles, missing its own bin.
    edges = np.nanquantile(train[:, 2], np.arange(1, 10) / 10)
    now = np.bincount(np.searchsorted(edges, X[~np.isnan(X[:, 2]), 2]), minlength=10) / 1000
    then = np.bincount(np.searchsorted(edges, train[~np.isnan(train[:, 2]), 2]), minlength=10)
    then = np.append(then / 4000, np.isnan(train[:, 2]).mean())
    now = np.append(now, np.isnan(X[:, 2]).mean())
    floor = np.maximum(now, 1e-4), np.maximum(then, 1e-4)
    assert by[FEATURES[2]]["psi"] == pytest.approx(
        np.sum((floor[0] - floor[1]) * np.log(floor[0] / floor[1]))
    )
    assert by[FEATURES[2]]["level"] == "act" and by[FEATURES[3]]["level"] == "ok"
    assert report["attribution"]["ndcg"] < 0.9
    ranks = {
        a["feature"]: (a["baseline_rank"], a["rank"]) for a in report["attribution"]["features"]
    }
    assert ranks[FEATURES[0]] == (N, 1) and ranks[FEATURES[-1]] == (1, N)
    high = p >= report["reasons"]["high_risk_threshold"]
    shares = {r["feature"]: r["share"] for r in report["reasons"]["features"]}
    assert shares[FEATURES[0]] == pytest.approx(np.mean(np.arange(1000)[high] % 4 == 0))
    kinds = {(a["kind"], a["feature"]) for a in report["alerts"]}
    assert kinds == {
        ("feature_psi", FEATURES[0]),  # the missing bin moved
        ("out_of_range", FEATURES[1]),
        ("feature_psi", FEATURES[2]),
        ("attribution_ndcg", None),
    }
    assert report["status"] == "act"
    quiet = Thresholds(psi_watch=10, psi_act=20, out_of_range_watch=0.5, ndcg_watch=0.0)
    assert monitor.monitor(meta, X, p, phi, reasons, quiet)["alerts"] == []


def test_a_model_trained_before_monitoring_is_named() -> None:
    meta, _ = metadata(np.random.default_rng(2))
    del meta["baseline"]["monitoring"]
    with pytest.raises(
        monitor.BaselineError, match=r"missing: monitoring.version, monitoring.attribution"
    ):
        monitor.check_baseline(meta)
    with pytest.raises(monitor.BaselineError, match=r"missing: features, score"):
        monitor.check_baseline({})


def test_counting_in_chunks_gives_the_report_of_the_whole() -> None:
    """monitor --records counts applicants chunk by chunk (flat memory): same figures."""
    rng = np.random.default_rng(3)
    meta, _ = metadata(rng)
    X = rng.normal(55, 12, size=(1000, N))
    X[rng.random(X.shape) < 0.1] = np.nan
    p = rng.random(1000)
    phi = rng.normal(0, 1, size=(1000, N))
    reasons = [[FEATURES[i % N], FEATURES[(i + 3) % N]] if i % 3 else [] for i in range(1000)]
    whole = monitor.monitor(meta, X, p, phi, reasons)
    totals = monitor.Aggregates(meta)
    for start in range(0, 1000, 137):
        end = start + 137
        totals.add(X[start:end], p[start:end], phi[start:end], reasons[start:end])
    chunked = monitor.report(totals)
    assert chunked["applicants"] == 1000
    assert _same(chunked, whole)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)
