"""The report's verdicts: calibration tests, bootstrap intervals, a benchmark, disparate impact.

Each check returns plain data with a ``passed`` flag where it gives a verdict; :func:`verdicts`
gathers them so that ``report --strict`` and the page say which failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from ..drift import CALIBRATION_ALPHA
from .metrics import GROUPS, _groups, ks_statistic

#: Significance level of the calibration tests.
ALPHA: Final = CALIBRATION_ALPHA
#: The four-fifths rule: a group's approval rate under this share of the most favoured group's.
ADVERSE_IMPACT_RATIO: Final = 0.8
#: Bootstrap resamples (seeded) and the confidence of the intervals.
BOOTSTRAP_RESAMPLES: Final = 1000
CONFIDENCE: Final = 0.95
#: Mean contributions shown per prohibited-basis attribute: the features whose means differ most.
CONTRIBUTIONS_SHOWN: Final = 5
MISSING_GROUP: Final = "(missing)"


def calibration_test(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Hosmer-Lemeshow over the predicted deciles (GROUPS - 2 degrees of freedom) and an exact
    two-sided binomial test of each decile's defaults against its mean predicted rate.

    Passes when the Hosmer-Lemeshow p-value and every decile's p-value (Bonferroni: against
    ALPHA / deciles) are at least the significance level.
    """
    from scipy.stats import binomtest, chi2

    group = _groups(p, descending=False)
    statistic = 0.0
    rows = []
    for g in range(GROUPS):
        m = group == g
        n = int(m.sum())
        if not n:
            continue
        observed, expected = int(y[m].sum()), float(p[m].sum())
        if 0 < expected < n:
            statistic += (observed - expected) ** 2 / (expected * (1 - expected / n))
        rate = min(max(expected / n, 0.0), 1.0)
        rows.append(
            {
                "decile": g + 1,
                "count": n,
                "defaults": observed,
                "expected_defaults": expected,
                "p_value": float(binomtest(observed, n, rate).pvalue),
            }
        )
    df = len(rows) - 2
    hl_p = float(chi2.sf(statistic, df))
    level = ALPHA / len(rows)
    for r in rows:
        r["flagged"] = r["p_value"] < level
    return {
        "hosmer_lemeshow": {"statistic": statistic, "df": df, "p_value": hl_p},
        "alpha": ALPHA,
        "decile_alpha": level,
        "deciles": rows,
        "passed": hl_p >= ALPHA and not any(r["flagged"] for r in rows),
    }


def _discrimination(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)), ks_statistic(y, p)[0]


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Percentile bootstrap intervals of AUC, Gini and KS (rows drawn with replacement).

    A resample is a count per row; AUC and KS are then sums over the distinct scores, sorted
    once (AUC: ties count half, as roc_auc_score; KS: the largest gap of the two CDFs).
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    order = np.argsort(p, kind="mergesort")
    ps, ys = p[order], y[order].astype(np.float64)
    group = np.cumsum(np.r_[True, ps[1:] != ps[:-1]]) - 1  # distinct score of each sorted row
    groups = int(group[-1]) + 1
    auc, ks = [], []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)[order]
        bad = np.bincount(group, counts * ys, groups)
        good = np.bincount(group, counts * (1 - ys), groups)
        n_bad, n_good = bad.sum(), good.sum()
        if n_bad == 0 or n_good == 0:  # a resample needs both classes
            continue
        below = np.cumsum(good) - good
        auc.append(float(np.sum(bad * (below + good / 2)) / (n_bad * n_good)))
        ks.append(float(np.max(np.abs(np.cumsum(good) / n_good - np.cumsum(bad) / n_bad))))
    tails = [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]
    low, high = np.quantile(auc, tails).tolist()
    return {
        "method": "percentile bootstrap",
        "resamples": len(auc),
        "confidence": CONFIDENCE,
        "auc": [low, high],
        "gini": [2 * low - 1, 2 * high - 1],
        "ks": np.quantile(ks, tails).tolist(),
    }


def benchmark_pipeline(categorical: Sequence[int] = ()) -> Any:
    """The benchmark: a logistic regression on log(1 + value) of each numeric feature, medians
    for missing values plus missing indicators, standardised, and one indicator per category of
    each ``categorical`` column (missing its own); unpenalised, as a scorecard is fitted."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = make_pipeline(
        FunctionTransformer(_signed_log),
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
    )
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=-1.0),
        OneHotEncoder(handle_unknown="ignore", drop="first", sparse_output=False),
    )
    columns = ColumnTransformer([("categories", categories, list(categorical))], remainder=numeric)
    return make_pipeline(columns, LogisticRegression(C=np.inf, max_iter=5000))


def _signed_log(X: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.sign(X) * np.log1p(np.abs(X))  # heavy tails tamed, NaN kept
    return out


def _figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss

    auc, ks = _discrimination(y, p)
    return {"auc": auc, "gini": 2 * auc - 1, "ks": ks, "brier": float(brier_score_loss(y, p))}


def benchmark(
    train: tuple[np.ndarray, np.ndarray] | None,
    X: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    categorical: Sequence[int] = (),
) -> dict[str, Any]:
    """The model's figures beside the benchmark's, fitted on the model's training rows
    (``categorical``: the columns holding category codes)."""
    if train is None:
        return {
            "available": False,
            "why": "the rows the model was trained on are not known here: give the training "
            "data as --data with --holdout (or use the synthetic default)",
        }
    pipeline = benchmark_pipeline(categorical).fit(*train)
    return {
        "available": True,
        "benchmark": "logistic regression on log(1 + value), median imputation with missing "
        "indicators, standardised, categories one-hot, unpenalised",
        "train_rows": len(train[1]),
        "model": _figures(y, p),
        "logistic_regression": _figures(y, pipeline.predict_proba(X)[:, 1]),
    }


def _group_labels(values: Sequence[Any]) -> list[str]:
    out = []
    for v in values:
        missing = v is None or (isinstance(v, float) and np.isnan(v))
        out.append(MISSING_GROUP if missing else str(v))
    return out


def disparate_impact(
    attributes: Mapping[str, Sequence[Any]],
    approved: np.ndarray,
    shap: np.ndarray,
    features: Sequence[str],
    basis: str,
) -> dict[str, Any]:
    """Per prohibited-basis attribute: each group's approval rate, its adverse impact ratio against
    the most favoured group (flagged under the four-fifths rule) and its mean contributions."""
    sections = []
    for name, values in attributes.items():
        labels = np.array(_group_labels(values), dtype=object)
        groups = []
        for g in sorted(set(labels.tolist())):
            m = labels == g
            groups.append(
                {
                    "group": g,
                    "count": int(m.sum()),
                    "approval_rate": float(approved[m].mean()),
                    "mean_contributions": dict(
                        zip(features, shap[m].mean(axis=0).tolist(), strict=True)
                    ),
                }
            )
        best = max(g["approval_rate"] for g in groups)
        for g in groups:
            g["adverse_impact_ratio"] = g["approval_rate"] / best if best > 0 else None
            ratio = g["adverse_impact_ratio"]
            g["flagged"] = ratio is not None and ratio < ADVERSE_IMPACT_RATIO
        spread = {
            f: max(g["mean_contributions"][f] for g in groups)
            - min(g["mean_contributions"][f] for g in groups)
            for f in features
        }
        sections.append(
            {
                "attribute": name,
                "most_favoured": max(groups, key=lambda g: g["approval_rate"])["group"],
                "groups": groups,
                "widest_contribution_gaps": sorted(features, key=lambda f: -spread[f])[
                    :CONTRIBUTIONS_SHOWN
                ],
                "passed": not any(g["flagged"] for g in groups),
            }
        )
    return {
        "approval": basis,
        "threshold_ratio": ADVERSE_IMPACT_RATIO,
        "attributes": sections,
        "passed": all(s["passed"] for s in sections),
    }


def verdicts(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every check that gives a verdict, in the page's order: what ``--strict`` exits 1 on."""
    checks = [
        ("Regulation B, elderly applicants", figures["regulation_b"]["passed"]),
        ("past-due monotonicity", figures["monotonicity"]["passed"]),
        (
            "calibration (Hosmer-Lemeshow, binomial per decile)",
            figures["calibration_test"]["passed"],
        ),
    ]
    fairness = figures.get("disparate_impact")
    if fairness and fairness["attributes"]:
        checks += [
            (f"disparate impact: {s['attribute']} (four-fifths rule)", s["passed"])
            for s in fairness["attributes"]
        ]
    return [{"check": name, "passed": bool(ok)} for name, ok in checks]
