"""Model monitoring: the applicants scored since training, against the training baseline.

Training records (``metadata.json`` -> ``baseline``, see :func:`attribution_baseline`) each
feature's bins (by kind, see :mod:`.stability`), missing share and range, the score's bins, each feature's mean |SHAP| and
how often each feature is a principal reason among high-risk applicants. :func:`monitor` puts the
same figures for captured decisions beside them:

* per feature, the population stability index over the training bins (missing its own bin), the
  missing rate and the share of applicants outside the training range (beyond
  :data:`~.drift.RANGE_TOLERANCE`; for a category feature: in a category training never saw);
* the score's PSI;
* attribution drift: NDCG of today's ranking of features by mean |SHAP| scored with the training
  importances, as SageMaker Clarify's model monitor computes it (1.0: same order);
* how often each feature is a principal reason among applicants at or above the training
  score's high-risk quantile, now and at training.

Pure computation over arrays (numpy only): the CLI reads the capture and turns it into arrays.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from credit_schema import BUILTIN, ApplicantSchema
from credit_schema.reasons import schema_registry

from . import stability
from .drift import RANGE_TOLERANCE, Thresholds

FloatArray = npt.NDArray[np.float64]

#: Bump when the baseline gains a figure :func:`monitor` needs. 2: bins by kind (value and
#: category bins), the high-risk threshold from the whole training score.
BASELINE_VERSION: Final = 2
#: Training rows explained for the attribution and reason baselines (a seeded sample).
ATTRIBUTION_SAMPLE: Final = 5_000
#: Applicants at or above this quantile of the training score count as high-risk.
HIGH_RISK_QUANTILE: Final = 0.9
_NEEDED: Final = ("version", "attribution", "high_risk_threshold", "reasons")


class BaselineError(ValueError):
    """A model directory whose metadata cannot be monitored against (the message says why)."""


def attribution_baseline(
    X: FloatArray,
    sample: FloatArray,
    probability: FloatArray,
    shap_values: FloatArray,
    schema: ApplicantSchema = BUILTIN,
    *,
    training_score: FloatArray,
) -> dict[str, Any]:
    """What monitoring adds to the training baseline: ranges of the training rows ``X`` (none for
    a category feature), the high-risk threshold (a quantile of ``training_score``, every training
    row's probability), and attributions and reasons of the explained rows ``sample``
    (``probability``: theirs)."""
    threshold = float(np.quantile(training_score, HIGH_RISK_QUANTILE))
    high = probability >= threshold
    return {
        "version": BASELINE_VERSION,
        "range": {
            f: None if f in schema.categorical else _range(X[:, j])
            for j, f in enumerate(schema.features)
        },
        "attribution": dict(
            zip(schema.features, np.abs(shap_values).mean(axis=0).tolist(), strict=True)
        ),
        "high_risk_threshold": threshold,
        "reasons": _reason_shares(sample[high], shap_values[high], schema),
    }


def _range(values: FloatArray) -> list[float] | None:
    present = values[~np.isnan(values)]
    return [float(present.min()), float(present.max())] if present.size else None


def _reason_shares(
    X: FloatArray, shap_values: FloatArray, schema: ApplicantSchema
) -> dict[str, float]:
    """Per feature, the share of these applicants for whom it is a principal reason."""
    counts = dict.fromkeys(schema.features, 0)
    registry = schema_registry(schema)
    for x, phi in zip(X.tolist(), shap_values.tolist(), strict=True):
        values = [None if math.isnan(v) else v for v in x]
        for r in registry.principal_reasons(zip(schema.features, values, phi, strict=True)):
            counts[str(r["feature"])] += 1
    return {f: c / len(X) if len(X) else 0.0 for f, c in counts.items()}


def check_baseline(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata's baseline, or :class:`BaselineError` naming what is missing."""
    base = metadata.get("baseline") or {}
    monitoring = base.get("monitoring") or {}
    missing = [k for k in ("features", "score") if k not in base]
    missing += [f"monitoring.{k}" for k in _NEEDED if k not in monitoring]
    if missing:
        raise BaselineError(f"no monitoring baseline (missing: {', '.join(missing)})")
    if monitoring["version"] > BASELINE_VERSION:
        raise BaselineError(f"baseline version {monitoring['version']} is newer than this tool's")
    return dict(base)


def ndcg(baseline: dict[str, float], current: dict[str, float]) -> float:
    """Clarify's attribution drift: DCG of the current order, weighted by the baseline's
    attributions, over the DCG of the baseline's own order."""
    weights = sorted(baseline.values(), reverse=True)
    now = sorted(current, key=lambda f: -current[f])
    dcg = sum(baseline[f] / math.log2(i + 2) for i, f in enumerate(now))
    ideal = sum(w / math.log2(i + 2) for i, w in enumerate(weights))
    return dcg / ideal if ideal > 0 else 1.0


def _names(metadata: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """The model's features, in the order of ``X``'s columns."""
    return [str(f) for f in metadata.get("features", base["features"])]


def trend(
    metadata: dict[str, Any], X: FloatArray, probability: FloatArray, periods: list[str]
) -> list[dict[str, Any]]:
    """Per period (in order): applicants, each feature's PSI and the largest, the score's PSI and
    mean, against the training baseline."""
    base = check_baseline(metadata)
    keys = np.asarray(periods)
    rows = []
    for period in sorted(set(periods)):
        m = keys == period
        psi = {
            name: stability.psi(base["features"][name], X[m, j])
            for j, name in enumerate(_names(metadata, base))
        }
        rows.append(
            {
                "period": period,
                "applicants": int(m.sum()),
                "score_psi": stability.psi(base["score"], probability[m]),
                "mean_score": float(probability[m].mean()),
                "max_feature_psi": max(psi.values()),
                "feature_psi": psi,
            }
        )
    return rows


def outside_range(values: FloatArray, low: float, high: float) -> npt.NDArray[np.bool_]:
    """Which ``values`` lie outside [low, high] by more than :data:`RANGE_TOLERANCE` (NaN: no)."""
    return (values < low - RANGE_TOLERANCE * abs(low)) | (
        values > high + RANGE_TOLERANCE * abs(high)
    )


def _ranks(values: dict[str, float]) -> dict[str, int]:
    return {f: i + 1 for i, f in enumerate(sorted(values, key=lambda f: -values[f]))}


def _level(psi: float, t: Thresholds) -> str:
    return "act" if psi >= t.psi_act else "watch" if psi >= t.psi_watch else "ok"


def monitor(
    metadata: dict[str, Any],
    X: FloatArray,
    probability: FloatArray,
    shap_values: FloatArray,
    reason_features: list[list[str]],
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """The monitoring report (JSON-able) of these applicants against ``metadata``'s baseline.

    ``X`` holds the applicants' inputs (NaN: missing; a category as its code) in the model's
    feature order, ``reason_features`` the features of the principal reasons each was given.
    """
    t = thresholds or Thresholds()
    base = check_baseline(metadata)
    extra = base["monitoring"]
    names = _names(metadata, base)
    alerts: list[dict[str, Any]] = []
    features = []
    for j, name in enumerate(names):
        b = base["features"][name]
        column = X[:, j]
        psi = stability.psi(b, column)
        current, missing = stability.shares(b, column)
        if "categories" in b:
            lo, hi, outside = math.nan, math.nan, current[-1]  # categories never seen
        else:
            lo, hi = extra["range"][name] or [math.nan, math.nan]
            outside = float(np.mean(outside_range(column, lo, hi)))
        level = _level(psi, t)
        features.append(
            {
                "feature": name,
                "psi": psi,
                "level": level,
                "missing_rate": missing,
                "baseline_missing_rate": b["missing_share"],
                "out_of_range_share": outside,
                "baseline_range": [lo, hi],
                "binning": b.get("binning", "quantile"),
                "edges": b.get("edges"),
                "bins": stability.bin_labels(b),
                "baseline_shares": b["shares"],
                "current_shares": current,
            }
        )
        if level != "ok":
            alerts.append(_alert("feature_psi", name, psi, t, level))
        if outside >= t.out_of_range_watch:
            alerts.append(_alert("out_of_range", name, outside, t, "watch"))

    score_psi = stability.psi(base["score"], probability)
    score_level = _level(score_psi, t)
    if score_level != "ok":
        alerts.append(_alert("score_psi", None, score_psi, t, score_level))

    now = dict(zip(names, np.abs(shap_values).mean(axis=0).tolist(), strict=True))
    then = {f: float(extra["attribution"][f]) for f in names}
    drift = ndcg(then, now)
    drift_level = "watch" if drift < t.ndcg_watch else "ok"
    if drift_level != "ok":
        alerts.append(_alert("attribution_ndcg", None, drift, t, "watch"))
    then_rank, now_rank = _ranks(then), _ranks(now)

    threshold = float(extra["high_risk_threshold"])
    high = [r for p, r in zip(probability.tolist(), reason_features, strict=True) if p >= threshold]
    return {
        "baseline_version": extra["version"],
        "applicants": len(X),
        "thresholds": asdict(t),
        "features": features,
        "score": {
            "psi": score_psi,
            "level": score_level,
            "mean": float(np.mean(probability)),
            "edges": base["score"]["edges"],
            "bins": stability.bin_labels(base["score"]),
            "baseline_shares": base["score"]["shares"],
            "current_shares": stability.shares(base["score"], probability)[0],
        },
        "attribution": {
            "ndcg": drift,
            "level": drift_level,
            "features": [
                {
                    "feature": f,
                    "baseline_mean_abs_shap": then[f],
                    "mean_abs_shap": now[f],
                    "baseline_rank": then_rank[f],
                    "rank": now_rank[f],
                }
                for f in names
            ],
        },
        "reasons": {
            "high_risk_threshold": threshold,
            "high_risk_applicants": len(high),
            "features": [
                {
                    "feature": f,
                    "baseline_share": float(extra["reasons"][f]),
                    "share": sum(f in r for r in high) / len(high) if high else 0.0,
                }
                for f in names
            ],
        },
        "alerts": alerts,
        "status": status(alerts),
    }


def status(alerts: list[dict[str, Any]]) -> str:
    """The report's status: its most severe alert's level, ``ok`` without alerts."""
    levels = [a["level"] for a in alerts]
    return "act" if "act" in levels else "watch" if levels else "ok"


def auc(y: npt.NDArray[np.int64], p: FloatArray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (average ranks for ties); None with one class."""
    positives = int(y.sum())
    if not 0 < positives < len(y):
        return None
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # ranks 1..n, ties sharing their average
    ranks = (first + (counts + 1) / 2)[inverse]
    u = ranks[y == 1].sum() - positives * (positives + 1) / 2
    return float(u / (positives * (len(y) - positives)))


def binomial_p(defaults: int, n: int, rate: float) -> float:
    """Exact two-sided binomial p of ``defaults`` among ``n`` at ``rate``."""
    from scipy.stats import binomtest

    return float(binomtest(defaults, n, min(max(rate, 0.0), 1.0)).pvalue)


def outcome_figures(
    probability: FloatArray,
    outcome: npt.NDArray[np.int64],
    periods: list[str],
    *,
    reference_auc: float | None,
    thresholds: Thresholds | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Realised performance by period of decision, and its alerts: AUC, KS, default rate against
    the mean predicted, the exact binomial p of that gap, Brier score."""
    from .report.metrics import ks_statistic

    t = thresholds or Thresholds()
    rows, alerts = [], []
    for period in sorted(set(periods)):
        m = np.array([x == period for x in periods])
        y, p = outcome[m], probability[m]
        realised = auc(y, p)
        defaults = int(y.sum())
        p_value = binomial_p(defaults, len(y), float(p.mean()))
        rows.append(
            {
                "period": period,
                "applicants": len(y),
                "defaults": defaults,
                "default_rate": defaults / len(y),
                "mean_predicted": float(p.mean()),
                "binomial_p": p_value,
                "brier": float(np.mean((p - y) ** 2)),
                "auc": realised,
                "ks": ks_statistic(y, p)[0] if realised is not None else None,
            }
        )
        if realised is not None and reference_auc is not None:
            if realised < reference_auc - t.auc_drop_watch:
                alerts.append(_alert("realised_auc", None, realised, t, "watch", period))
        if p_value < t.calibration_p_watch:
            alerts.append(_alert("calibration", None, p_value, t, "watch", period))
    return {"reference_auc": reference_auc, "joined": len(outcome), "periods": rows}, alerts


def calibration_map(score: FloatArray, outcome: npt.NDArray[np.int64]) -> dict[str, list[float]]:
    """Isotonic regression of the outcome on the model's score over reference rows (training's
    held-out split): the calibrator of confidence-based performance estimation (CBPE)."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, outcome)
    return {"score": fitted.X_thresholds_.tolist(), "probability": fitted.y_thresholds_.tolist()}


#: Two-sided 95% normal quantile: the estimates' intervals.
_Z95: Final = 1.959963984540054


def _auc_standard_error(auc: float, positives: float, negatives: float) -> float:
    """Hanley and McNeil's standard error of an AUC on this many positives and negatives."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
    variance += (negatives - 1) * (q2 - auc * auc)
    return math.sqrt(max(variance, 0.0) / (positives * negatives))


def estimated_auc(score: FloatArray, expected: FloatArray) -> float:
    """CBPE's ROC AUC: the ROC curve of expected true and false positives (each row counts
    ``expected`` default and ``1 - expected`` non-default) over the distinct scores."""
    order = np.argsort(-score, kind="mergesort")
    s, e = score[order], expected[order]
    last = np.r_[s[1:] != s[:-1], True]
    tp, fp = np.cumsum(e)[last], np.cumsum(1 - e)[last]
    tpr, fpr = np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def estimated_figures(
    probability: FloatArray, periods: list[str], calibration: dict[str, list[float]]
) -> dict[str, Any]:
    """Performance before outcomes, by period: the default rate and AUC expected from the
    calibrated scores (CBPE), each with a 95% interval of its sampling error."""
    expected = np.interp(probability, calibration["score"], calibration["probability"])
    rows = []
    for period in sorted(set(periods)):
        m = np.array([x == period for x in periods])
        e, n = expected[m], int(m.sum())
        rate = float(e.mean())
        half = _Z95 * math.sqrt(rate * (1 - rate) / n)
        row: dict[str, Any] = {
            "period": period,
            "applicants": n,
            "default_rate": rate,
            "default_rate_interval": [max(rate - half, 0.0), min(rate + half, 1.0)],
            "auc": None,
            "auc_interval": None,
        }
        positives = float(e.sum())
        if 0 < positives < n:
            auc_value = estimated_auc(probability[m], e)
            half = _Z95 * _auc_standard_error(auc_value, positives, n - positives)
            row["auc"] = auc_value
            row["auc_interval"] = [max(auc_value - half, 0.0), min(auc_value + half, 1.0)]
        rows.append(row)
    return {"method": "CBPE (isotonic calibration on training's held-out split)", "periods": rows}


_FIGURES: Final = {
    "feature_psi": ("PSI", "psi_watch", "psi_act"),
    "score_psi": ("score PSI", "psi_watch", "psi_act"),
    "out_of_range": ("share outside the training range", "out_of_range_watch", None),
    "attribution_ndcg": ("attribution NDCG", "ndcg_watch", None),
    "realised_auc": ("realised AUC", "auc_drop_watch", None),
    "calibration": ("binomial p of defaults against predicted", "calibration_p_watch", None),
}
#: Alerts of figures that are bad when low.
_LOW: Final = frozenset({"attribution_ndcg", "realised_auc", "calibration"})


def _alert(
    kind: str,
    feature: str | None,
    figure: float,
    t: Thresholds,
    level: str,
    period: str | None = None,
) -> dict[str, Any]:
    label, watch, act = _FIGURES[kind]
    threshold = getattr(t, act if level == "act" and act else watch)
    side = "below" if kind in _LOW else "at or above"
    subject = "".join(f"{s}: " for s in (period, feature) if s)
    line = f"{subject}{label} {figure:.4f} {side} {level} threshold {threshold:g}"
    if kind == "realised_auc":
        line = f"{subject}{label} {figure:.4f} more than {threshold:g} below training's"
    alert = {
        "kind": kind,
        "feature": feature,
        "figure": figure,
        "threshold": threshold,
        "level": level,
        "message": line,
    }
    return alert | ({"period": period} if period else {})
