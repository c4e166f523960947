"""Model monitoring: the applicants scored since training, against the training baseline.

Training records (``metadata.json`` -> ``baseline``, see :func:`attribution_baseline`) each
feature's decile bins, missing share and range, the score's bins, each feature's mean |SHAP| and
how often each feature is a principal reason among high-risk applicants. :func:`monitor` puts the
same figures for captured decisions beside them:

* per feature, the population stability index over the training bins (missing its own bin), the
  missing rate and the share of applicants outside the training range;
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
from .drift import Thresholds

FloatArray = npt.NDArray[np.float64]

#: Bump when the baseline gains a figure :func:`monitor` needs.
BASELINE_VERSION: Final = 1
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
) -> dict[str, Any]:
    """What monitoring adds to the training baseline: ranges of the training rows ``X``, and
    attributions and reasons of the explained rows ``sample``."""
    threshold = float(np.quantile(probability, HIGH_RISK_QUANTILE))
    high = probability >= threshold
    return {
        "version": BASELINE_VERSION,
        "range": {f: _range(X[:, j]) for j, f in enumerate(schema.features)},
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


def _ranks(values: dict[str, float]) -> dict[str, int]:
    return {f: i + 1 for i, f in enumerate(sorted(values, key=lambda f: -values[f]))}


def _level(psi: float, t: Thresholds) -> str:
    return "act" if psi >= t.psi_act else "watch" if psi >= t.psi_watch else "ok"


class Aggregates:
    """What :func:`report` needs of the applicants, summed chunk by chunk (:meth:`add`): bin
    counts, missing and out-of-range counts, sums of |SHAP| and of the score, reasons among the
    high-risk. Memory does not grow with the number of applicants."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        base = check_baseline(metadata)
        self.base, self.extra = base, base["monitoring"]
        self.names = [str(f) for f in metadata.get("features", base["features"])]
        k = len(self.names)
        self.n = 0
        self.bins = [np.zeros(len(base["features"][f]["edges"]) + 1, np.int64) for f in self.names]
        self.missing = np.zeros(k, np.int64)
        self.outside = np.zeros(k, np.int64)
        self.score_bins = np.zeros(len(base["score"]["edges"]) + 1, np.int64)
        self.score_missing = 0
        self.score_sum = 0.0
        self.abs_shap_sum = np.zeros(k)
        self.high_risk = 0
        self.reasons = np.zeros(k, np.int64)
        self._threshold = float(self.extra["high_risk_threshold"])
        self._column = {f: j for j, f in enumerate(self.names)}

    def add(
        self,
        X: FloatArray,
        probability: FloatArray,
        shap_values: FloatArray,
        reason_features: list[list[str]],
    ) -> None:
        """Count these applicants in (``X``: inputs in the model's feature order, NaN missing)."""
        self.n += len(X)
        for j, name in enumerate(self.names):
            column = X[:, j]
            counts, missing = stability.bin_counts(column, self.base["features"][name]["edges"])
            self.bins[j] += counts
            self.missing[j] += missing
            low, high = self.extra["range"][name] or [math.nan, math.nan]
            self.outside[j] += int(np.count_nonzero((column < low) | (column > high)))
        counts, missing = stability.bin_counts(probability, self.base["score"]["edges"])
        self.score_bins += counts
        self.score_missing += missing
        self.score_sum += float(probability.sum())
        self.abs_shap_sum += np.abs(shap_values).sum(axis=0)
        for p, reasons in zip(probability.tolist(), reason_features, strict=True):
            if p >= self._threshold:
                self.high_risk += 1
                for f in set(reasons):
                    if f in self._column:
                        self.reasons[self._column[f]] += 1


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
    totals = Aggregates(metadata)
    totals.add(X, probability, shap_values, reason_features)
    return report(totals, thresholds)


def report(totals: Aggregates, thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The monitoring report (JSON-able) of the applicants counted in ``totals``."""
    t = thresholds or Thresholds()
    base, extra, names, n = totals.base, totals.extra, totals.names, totals.n
    alerts: list[dict[str, Any]] = []
    features = []
    for j, name in enumerate(names):
        b = base["features"][name]
        shares, missing = stability.shares_of(totals.bins[j], int(totals.missing[j]), n)
        psi = stability.psi_of_shares(b, shares, missing)
        low, high = extra["range"][name] or [math.nan, math.nan]
        outside = float(totals.outside[j] / n) if n else math.nan
        level = _level(psi, t)
        features.append(
            {
                "feature": name,
                "psi": psi,
                "level": level,
                "missing_rate": float(totals.missing[j] / n) if n else math.nan,
                "baseline_missing_rate": b["missing_share"],
                "out_of_range_share": outside,
                "baseline_range": [low, high],
                "edges": b["edges"],
                "baseline_shares": b["shares"],
                "current_shares": shares,
            }
        )
        if level != "ok":
            alerts.append(_alert("feature_psi", name, psi, t, level))
        if outside >= t.out_of_range_watch:
            alerts.append(_alert("out_of_range", name, outside, t, "watch"))

    score_shares, score_missing = stability.shares_of(totals.score_bins, totals.score_missing, n)
    score_psi = stability.psi_of_shares(base["score"], score_shares, score_missing)
    score_level = _level(score_psi, t)
    if score_level != "ok":
        alerts.append(_alert("score_psi", None, score_psi, t, score_level))

    mean_abs = (totals.abs_shap_sum / n).tolist() if n else [math.nan] * len(names)
    now = dict(zip(names, mean_abs, strict=True))
    then = {f: float(extra["attribution"][f]) for f in names}
    drift = ndcg(then, now)
    drift_level = "watch" if drift < t.ndcg_watch else "ok"
    if drift_level != "ok":
        alerts.append(_alert("attribution_ndcg", None, drift, t, "watch"))
    then_rank, now_rank = _ranks(then), _ranks(now)

    high = totals.high_risk
    levels = [a["level"] for a in alerts]
    return {
        "baseline_version": extra["version"],
        "applicants": n,
        "thresholds": asdict(t),
        "features": features,
        "score": {
            "psi": score_psi,
            "level": score_level,
            "mean": totals.score_sum / n if n else math.nan,
            "edges": base["score"]["edges"],
            "baseline_shares": base["score"]["shares"],
            "current_shares": score_shares,
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
            "high_risk_threshold": float(extra["high_risk_threshold"]),
            "high_risk_applicants": high,
            "features": [
                {
                    "feature": f,
                    "baseline_share": float(extra["reasons"][f]),
                    "share": float(totals.reasons[j] / high) if high else 0.0,
                }
                for j, f in enumerate(names)
            ],
        },
        "alerts": alerts,
        "status": "act" if "act" in levels else "watch" if levels else "ok",
    }


_FIGURES: Final = {
    "feature_psi": ("PSI", "psi_watch", "psi_act"),
    "score_psi": ("score PSI", "psi_watch", "psi_act"),
    "out_of_range": ("share outside the training range", "out_of_range_watch", None),
    "attribution_ndcg": ("attribution NDCG", "ndcg_watch", None),
}


def _alert(
    kind: str, feature: str | None, figure: float, t: Thresholds, level: str
) -> dict[str, Any]:
    label, watch, act = _FIGURES[kind]
    threshold = getattr(t, act if level == "act" and act else watch)
    side = "below" if kind == "attribution_ndcg" else "at or above"
    subject = f"{feature}: " if feature else ""
    return {
        "kind": kind,
        "feature": feature,
        "figure": figure,
        "threshold": threshold,
        "level": level,
        "message": f"{subject}{label} {figure:.4f} {side} {level} threshold {threshold:g}",
    }
