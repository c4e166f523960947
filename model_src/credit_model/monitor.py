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
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from credit_schema import BUILTIN, ApplicantSchema
from credit_schema.reasons import min_contribution_in, schema_registry

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
    space: str = "probability",
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
        "reasons": _reason_shares(
            sample[high], shap_values[high], schema, probability[high], space
        ),
    }


def _range(values: FloatArray) -> list[float] | None:
    present = values[~np.isnan(values)]
    return [float(present.min()), float(present.max())] if present.size else None


def _reason_shares(
    X: FloatArray,
    shap_values: FloatArray,
    schema: ApplicantSchema,
    probability: FloatArray,
    space: str,
) -> dict[str, float]:
    """Per feature, the share of these applicants for whom it is a principal reason (the
    server's rule, in the explanations' ``space``)."""
    counts = dict.fromkeys(schema.features, 0)
    registry = schema_registry(schema)
    for x, phi, p in zip(X.tolist(), shap_values.tolist(), probability.tolist(), strict=True):
        values = [None if math.isnan(v) else v for v in x]
        triples = zip(schema.features, values, phi, strict=True)
        for r in registry.principal_reasons(
            triples, min_contribution=min_contribution_in(space, p)
        ):
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
    by_period: dict[str, Aggregates], thresholds: Thresholds | None = None
) -> list[dict[str, Any]]:
    """Per period (in order): applicants, each feature's PSI and the largest, the score's PSI and
    mean, from the applicants counted in that period's :class:`Aggregates`."""
    rows = []
    for period in sorted(by_period):
        r = report(by_period[period], thresholds)
        psi = {f["feature"]: f["psi"] for f in r["features"]}
        rows.append(
            {
                "period": period,
                "applicants": r["applicants"],
                "score_psi": r["score"]["psi"],
                "mean_score": r["score"]["mean"],
                "max_feature_psi": max(psi.values()),
                "feature_psi": psi,
            }
        )
    return rows


def range_bounds(low: float, high: float) -> tuple[float, float]:
    """[low, high] widened by :data:`RANGE_TOLERANCE`: a value beyond is outside the range."""
    return low - RANGE_TOLERANCE * abs(low), high + RANGE_TOLERANCE * abs(high)


def outside_range(values: FloatArray, low: float, high: float) -> npt.NDArray[np.bool_]:
    """Which ``values`` lie outside [low, high] by more than :data:`RANGE_TOLERANCE` (NaN: no)."""
    below, above = range_bounds(low, high)
    return (values < below) | (values > above)


def outside_range_sql(value: str, low: float, high: float) -> str:
    """:func:`outside_range` as an SQL condition over the DOUBLE column ``value`` (NULL: no)."""
    below, above = range_bounds(low, high)
    return f"({value} < {stability.float_sql(below)} OR {value} > {stability.float_sql(above)})"


def outside_sql(base: dict[str, Any], low_high: Sequence[float] | None, value: str) -> str:
    """:meth:`Aggregates.add`'s outside-the-range count in SQL, 1 or 0 for the feature's value
    (``value``: a DOUBLE, or a category's bin from :func:`stability.bin_sql`): a category
    training never saw (its bin, the last: ``(other)``), a number outside its range
    (:func:`outside_range_sql`)."""
    if "categories" in base:
        return f"CASE WHEN {value} = {len(base['categories'])} THEN 1 ELSE 0 END"
    if not low_high:
        return "0"
    return f"CASE WHEN {outside_range_sql(value, *low_high)} THEN 1 ELSE 0 END"


def high_risk_sql(probability: str, threshold: float) -> str:
    """:meth:`Aggregates.add`'s high-risk test in SQL: the probability at or above the
    baseline's threshold."""
    return f"{probability} >= {stability.float_sql(threshold)}"


def reasons_sql(
    applicants: str, keys: str, feature: str, probability: str, threshold: float
) -> str:
    """:meth:`Aggregates.add`'s reasons count in SQL: over ``applicants`` (a row per reason
    given, the applicant named by ``keys``), each feature counted once per high-risk applicant
    (DISTINCT, as ``set(reasons)``), by ``keys``' first column (the period) and the feature."""
    period = keys.split(",")[0].strip()
    return (
        f"SELECT {period}, feature, count(*) AS n FROM (\n"  # noqa: S608 (names, float_sql)
        f"  SELECT DISTINCT {keys}, {feature} AS feature FROM {applicants}\n"
        f"  WHERE {high_risk_sql(probability, threshold)}\n"
        f") AS once GROUP BY {period}, feature"
    )


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
        self.bins = [np.zeros(len(base["features"][f]["shares"]), np.int64) for f in self.names]
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
            column, b = X[:, j], self.base["features"][name]
            counts, missing = stability.count_bins(b, column)
            self.bins[j] += counts
            self.missing[j] += missing
            if "categories" in b:  # outside the range: a category training never saw (outside_sql)
                self.outside[j] += int(counts[-1])
            else:
                low, high = self.extra["range"][name] or [math.nan, math.nan]
                self.outside[j] += int(np.count_nonzero(outside_range(column, low, high)))
        counts, missing = stability.count_bins(self.base["score"], probability)
        self.score_bins += counts
        self.score_missing += missing
        self.score_sum += float(probability.sum())
        self.abs_shap_sum += np.abs(shap_values).sum(axis=0)
        for p, reasons in zip(probability.tolist(), reason_features, strict=True):
            if p >= self._threshold:  # high_risk_sql
                self.high_risk += 1
                for f in set(reasons):  # once per applicant: reasons_sql
                    if f in self._column:
                        self.reasons[self._column[f]] += 1

    def merge(self, other: Aggregates) -> None:
        """Add ``other``'s counts (of the same baseline) to these: every count this class
        holds, a public attribute that is a number, an array, or a list of arrays."""
        for name, mine in vars(self).items():
            if name.startswith("_") or name in ("base", "extra", "names"):
                continue
            theirs = vars(other)[name]
            if isinstance(mine, list):
                for counts, more in zip(mine, theirs, strict=True):
                    counts += more
            else:
                setattr(self, name, mine + theirs)


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
        lo, hi = extra["range"][name] or [math.nan, math.nan]  # None for a category
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
                "baseline_range": [lo, hi],
                "binning": b.get("binning", "quantile"),
                "edges": b.get("edges"),
                "bins": stability.bin_labels(b),
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
            "bins": stability.bin_labels(base["score"]),
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


def _by_period(
    periods: Any, labels: Sequence[str] | None
) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    """Each period's label and rows, in order: ``periods`` holds each row's period, as text or
    as an index into ``labels`` (compact over many rows)."""
    keys = np.asarray(periods)
    return [
        (labels[int(key)] if labels is not None else str(key), keys == key)
        for key in np.unique(keys)
    ]


def outcome_figures(
    probability: FloatArray,
    outcome: npt.NDArray[np.int64],
    periods: Any,
    *,
    reference_auc: float | None,
    thresholds: Thresholds | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Realised performance by period of decision (see :func:`_by_period`), and its alerts: AUC,
    KS, default rate against the mean predicted, the exact binomial p of that gap, Brier score."""
    from .report.metrics import ks_statistic

    t = thresholds or Thresholds()
    rows, alerts = [], []
    for period, m in _by_period(periods, labels):
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
    order = np.argsort(score, kind="stable")[::-1]  # descending; ties stay together
    return _auc_sorted(score[order], expected[order])


def _auc_sorted(s: FloatArray, e: FloatArray) -> float:
    """:func:`estimated_auc` of scores ``s`` sorted in descending order and their ``expected``
    (summed in place: ``e`` is consumed), with a few arrays of one value a distinct score: monitor
    runs it over every score of a store."""
    ends = np.flatnonzero(s[1:] != s[:-1])  # the last row of each distinct score, but the last
    tp = np.cumsum(e, out=e)
    total_tp, total_fp = float(tp[-1]), len(s) - float(tp[-1])
    tp = np.append(tp[ends], total_tp)
    fp = np.append(ends + 1.0, float(len(s))) - tp  # rows so far less expected defaults
    del ends
    # the trapezoids under (fp, tp) from (0, 0), over the products of the totals
    area = float(fp[0] * tp[0]) + float(np.dot(np.diff(fp), tp[1:] + tp[:-1]))
    return area / 2 / (total_tp * total_fp)


def _estimated_row(period: str, n: int, rate: float, positives: float, auc: Any) -> dict[str, Any]:
    """One period's CBPE figures: the expected default ``rate`` of ``n`` scores and the AUC
    (``auc()``, asked only with both classes expected), each with its 95% interval."""
    half = _Z95 * math.sqrt(rate * (1 - rate) / n)
    row: dict[str, Any] = {
        "period": period,
        "applicants": n,
        "default_rate": rate,
        "default_rate_interval": [max(rate - half, 0.0), min(rate + half, 1.0)],
        "auc": None,
        "auc_interval": None,
    }
    if 0 < positives < n:
        auc_value = float(auc())
        half = _Z95 * _auc_standard_error(auc_value, positives, n - positives)
        row["auc"] = auc_value
        row["auc_interval"] = [max(auc_value - half, 0.0), min(auc_value + half, 1.0)]
    return row


_CBPE: Final = "CBPE (isotonic calibration on training's held-out split)"


def estimated_figures(
    probability: FloatArray,
    periods: Any,
    calibration: dict[str, list[float]],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Performance before outcomes, by period (see :func:`_by_period`): the default rate and AUC
    expected from the calibrated scores (CBPE), each with a 95% interval of its sampling error."""
    rows = []
    for period, m in _by_period(periods, labels):
        s = probability[m]
        s.sort()
        s = s[::-1]  # descending, so the expected ROC needs no other copy
        e = np.interp(s, calibration["score"], calibration["probability"])
        auc = lambda s=s, e=e: _auc_sorted(s, e)  # noqa: E731 (asked only with both classes)
        rows.append(_estimated_row(period, len(s), float(e.mean()), float(e.sum()), auc))
    return {"method": _CBPE, "periods": rows}


#: Scores are counted in cells of this width (1/2**18) by an engine: the estimated AUC treats
#: the scores sharing a cell as tied, and says by how much that can move it.
SCORE_CELLS: Final = 2**18


def calibration_lines(calibration: dict[str, list[float]]) -> list[tuple[float, float, float]]:
    """``np.interp`` over the calibration's knots as one line per bin of the knots (the bins of
    :func:`stability.bin_sql` with the knots as edges): ``(x0, y0, slope)``, e = y0 + slope *
    (s - x0); flat below the first knot and above the last, as ``np.interp`` clips."""
    xs, ys = calibration["score"], calibration["probability"]
    lines = [(xs[0], ys[0], 0.0)]
    for k in range(1, len(xs)):
        dx = xs[k] - xs[k - 1]
        lines.append((xs[k - 1], ys[k - 1], (ys[k] - ys[k - 1]) / dx if dx > 0 else 0.0))
    lines.append((xs[-1], ys[-1], 0.0))
    return lines


def estimated_of_groups(
    periods: Iterable[tuple[str, Iterable[tuple[int, int, float, float]]]],
    calibration: dict[str, list[float]],
) -> dict[str, Any]:
    """:func:`estimated_figures` from an engine's aggregates: per period, its groups of scores in
    descending order, each ``(segment, count, sum, sum of squares)`` of the scores sharing a cell
    of :data:`SCORE_CELLS` and a segment of :func:`calibration_lines`. The default rate is
    exact (the calibration is linear within a segment); the AUC treats a group as one tied
    score, and ``auc_error_bound`` is how far that can move it: half the expected defaults times
    non-defaults between different scores of a group, over all of them."""
    lines = calibration_lines(calibration)
    rows = []
    for period, groups in periods:
        n = 0
        tp = fp = area = ties = 0.0
        for segment, count, total, squares in groups:
            x0, y0, slope = lines[segment]
            shifted = total - count * x0  # sum of (s - x0)
            e = count * y0 + slope * shifted
            e2 = count * y0 * y0 + 2 * y0 * slope * shifted
            e2 += slope * slope * (squares - 2 * x0 * total + count * x0 * x0)
            tp_new, fp_new = tp + e, fp + (count - e)
            area += (fp_new - fp) * (tp_new + tp)
            ties += max(e * (count - e) - (e - e2), 0.0)
            tp, fp, n = tp_new, fp_new, n + count
        if not n:
            continue
        row = _estimated_row(period, n, tp / n, tp, lambda a=area, t=tp, f=fp: a / 2 / (t * f))
        row["auc_error_bound"] = 0.5 * ties / (tp * fp) if row["auc"] is not None else None
        rows.append(row)
    return {"method": _CBPE, "cells": SCORE_CELLS, "periods": rows}


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
