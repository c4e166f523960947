"""The figures of the model validation report, computed from the served model's own explanations.

Everything here is plain data (what ``--json`` writes) except :class:`PlotData`,
the arrays the HTML plots are drawn from. Probabilities and SHAP values come from
``build_explainer(pipeline).explain(X)``: the same exact TreeSHAP as the answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from credit_schema import BUILTIN, ELDERLY_AGE, ApplicantSchema, principal_reasons
from credit_schema.decisions import DecisionBands
from credit_schema.reasons import min_contribution_in, registry_from_env, schema_registry

from .. import stability
from ..constraints import risk_features

#: Deciles: the groups of gains, lift and calibration (by rank of the score).
GROUPS: Final = 10
#: Regulation B check: an age contribution above this raises an elderly applicant's risk
#: (float rounding only; the constrained construction gives exactly <= 0).
REG_B_TOLERANCE: Final = 1e-12
#: Monotonicity check: a probability drop larger than this after one more late payment.
MONOTONIC_TOLERANCE: Final = 1e-12
#: Rows drawn (seeded) for the SHAP summary and dependence plots.
PLOT_SAMPLE: Final = 2_000
_CURVE_POINTS: Final = 400
AGE_BANDS: Final = (
    (0.0, 30.0, "under 30"),
    (30.0, 45.0, "30-44"),
    (45.0, float(ELDERLY_AGE), f"45-{ELDERLY_AGE - 1}"),
    (float(ELDERLY_AGE), math.inf, f"{ELDERLY_AGE} and over"),
)


def intended_use(schema: ApplicantSchema) -> str:
    return (
        f"Estimate the probability of {schema.target_label} ({schema.target}) for a "
        "consumer-credit applicant, with an exact per-feature explanation, to support (not "
        "replace) a credit decision and to draft adverse-action reasons."
    )


def limitations(schema: ApplicantSchema) -> list[str]:
    fairness = (
        "Fair-lending review beyond age (disparate impact on protected classes) needs data this "
        "model does not have."
        if not schema.prohibited
        else "Prohibited-basis attributes (" + ", ".join(schema.prohibited) + ") are never "
        "model inputs; a feature may still act as their proxy: review disparate impact."
    )
    return [
        f"Trained on the {schema.name} schema only ({len(schema.features)} features); "
        "probabilities are calibrated to the training population's default rate and drift "
        "with it (see Stability).",
        *_LIMITATIONS,
        fairness,
    ]


_LIMITATIONS: Final = (
    "Random-forest probabilities are averages of leaf frequencies: the extremes are compressed "
    "(see Calibration).",
    "SHAP values explain the model, not the world: a feature's contribution is not a causal "
    "effect.",
    "Age is a model input: Regulation B permits it in an empirically derived, statistically "
    "sound system only if an elderly applicant's age is never a negative factor (see the "
    "Regulation B check); review with counsel before use.",
)


@dataclass
class PlotData:
    """Arrays behind the HTML plots (not part of the JSON)."""

    roc: tuple[np.ndarray, np.ndarray]
    ks: tuple[np.ndarray, np.ndarray, np.ndarray]  # scores, CDF of non-defaults, of defaults
    X: np.ndarray  # a seeded sample of rows, raw values
    shap: np.ndarray  # their SHAP values


@dataclass
class Report:
    figures: dict[str, Any]  #: what ``--json`` writes
    plots: PlotData


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def ks_statistic(
    y: np.ndarray, p: np.ndarray
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """``(KS, score where reached, scores, CDF of non-defaults, CDF of defaults)``.

    KS = max over scores t of |F_non-default(t) - F_default(t)|, the two empirical
    distributions' CDFs at every distinct score (what a two-sample KS test measures).
    """
    order = np.argsort(p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # the last row of each distinct score
    bad = np.cumsum(ys)[last] / ys.sum()
    good = np.cumsum(1 - ys)[last] / (len(ys) - ys.sum())
    gap = np.abs(good - bad)
    i = int(np.argmax(gap))
    return float(gap[i]), float(ps[last][i]), ps[last], good, bad


def _groups(p: np.ndarray, descending: bool) -> np.ndarray:
    """Group 0..GROUPS-1 of each row by rank of ``p`` (ties broken by row order)."""
    order = np.argsort(-p if descending else p, kind="mergesort")
    group = np.empty(len(p), dtype=np.int64)
    group[order] = (np.arange(len(p)) * GROUPS) // len(p)
    return group


def gains_table(y: np.ndarray, p: np.ndarray) -> list[dict[str, Any]]:
    """Per score decile, riskiest first: defaults captured, cumulative gains and lift."""
    group = _groups(p, descending=True)
    overall = y.mean()
    rows: list[dict[str, Any]] = []
    captured = 0
    seen = 0
    for g in range(GROUPS):
        m = group == g
        if not m.any():
            continue
        captured += int(y[m].sum())
        seen += int(m.sum())
        rate = float(y[m].mean())
        rows.append(
            {
                "decile": g + 1,
                "count": int(m.sum()),
                "defaults": int(y[m].sum()),
                "default_rate": rate,
                "min_score": float(p[m].min()),
                "max_score": float(p[m].max()),
                "cumulative_gain": captured / y.sum(),
                "lift": rate / overall,
                "cumulative_lift": (captured / seen) / overall,
            }
        )
    return rows


def calibration_table(y: np.ndarray, p: np.ndarray) -> tuple[list[dict[str, Any]], float]:
    """Observed vs mean predicted default rate per predicted decile, and the ECE over them."""
    group = _groups(p, descending=False)
    rows = []
    ece = 0.0
    for g in range(GROUPS):
        m = group == g
        if not m.any():
            continue
        predicted, observed = float(p[m].mean()), float(y[m].mean())
        ece += m.sum() / len(p) * abs(observed - predicted)
        rows.append(
            {"decile": g + 1, "count": int(m.sum()), "predicted": predicted, "observed": observed}
        )
    return rows, float(ece)


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def _segment(
    name: str,
    m: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    bands: DecisionBands | None,
    decided: np.ndarray | None,
) -> dict[str, Any]:
    n = int(m.sum())
    out: dict[str, Any] = {
        "segment": name,
        "count": n,
        "share": n / len(y),
        "observed_default_rate": float(y[m].mean()) if n else None,
        "predicted_default_rate": float(p[m].mean()) if n else None,
        "auc": _auc(y[m], p[m]) if n else None,
    }
    if bands is not None and decided is not None:
        out["decisions"] = {
            label: float(np.mean(decided[m] == label)) if n else None for label in bands.labels
        }
    return out


def segments(
    X: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    bands: DecisionBands | None,
    decided: np.ndarray | None,
    schema: ApplicantSchema,
) -> list[dict[str, Any]]:
    """Per age band and per missing group of each nullable feature (``decided``: each row's
    decision label)."""
    groups = [("all applicants", np.ones(len(y), dtype=bool))]
    if schema.age_feature is not None:
        age = X[:, schema.features.index(schema.age_feature)]
        groups += [(f"age {label}", (age >= lo) & (age < hi)) for lo, hi, label in AGE_BANDS]
    for j, name in enumerate(schema.features):
        if name in schema.nullable:
            label = schema.labels[name]
            missing = np.isnan(X[:, j])
            groups += [(f"{label} reported", ~missing), (f"{label} missing", missing)]
    return [_segment(name, m, y, p, bands, decided) for name, m in groups]


def reason_frequencies(
    X: np.ndarray,
    shap: np.ndarray,
    rows: np.ndarray,
    basis: str,
    cutoff: float,
    schema: ApplicantSchema,
    probability: np.ndarray | None = None,
    space: str = "probability",
) -> dict[str, Any]:
    """How often each principal reason would appear on the notices of applicants ``rows``
    (the registry the model server uses: a lender's own, when configured; the threshold in the
    explanations' ``space``, from each applicant's ``probability``)."""
    registry = registry_from_env(base=schema_registry(schema))
    counts: dict[str, dict[str, Any]] = {}
    none = 0
    for i in rows:
        values = [None if math.isnan(v) else float(v) for v in X[i]]
        found = principal_reasons(
            zip(schema.features, values, shap[i].tolist(), strict=True),
            reasons=registry.reasons,
            reasons_when_missing=registry.reasons_when_missing,
            age_feature=registry.age_feature,
            min_contribution=min_contribution_in(
                space, 0.5 if probability is None else float(probability[i])
            ),
        )
        if not found:
            none += 1
        for rank, r in enumerate(found):
            entry = counts.setdefault(
                r.code, {"code": r.code, "text": r.text, "applicants": 0, "first": 0}
            )
            entry["applicants"] += 1
            entry["first"] += rank == 0
    n = len(rows)
    table = sorted(counts.values(), key=lambda e: (-e["applicants"], e["code"]))
    for e in table:
        e["share"] = e["applicants"] / n
    return {
        "basis": basis,
        "cutoff": cutoff,
        "applicants": n,
        "without_reason": none,
        "registry_version": registry.version,
        "reasons": table,
    }


def regulation_b(
    X: np.ndarray, shap: np.ndarray, metadata: dict[str, Any], schema: ApplicantSchema = BUILTIN
) -> dict[str, Any]:
    """Every applicant aged 62+: does age's SHAP contribution raise their risk?"""
    if schema.age_feature is None:
        return {
            "rule": "the schema names no age feature: nothing to check",
            "elderly_applicants": 0,
            "age_raises_risk": 0,
            "share": 0.0,
            "max_age_contribution": None,
            "tolerance": REG_B_TOLERANCE,
            "passed": True,
            "constrained_by_construction": False,
            "method": "not applicable",
        }
    age = schema.features.index(schema.age_feature)
    elderly = X[:, age] >= ELDERLY_AGE
    age_shap = shap[elderly, age]
    raised = int(np.sum(age_shap > REG_B_TOLERANCE))
    n = int(elderly.sum())
    constraint = metadata.get("constraints")
    return {
        "rule": f"age's SHAP contribution must not raise the risk of an applicant aged "
        f"{ELDERLY_AGE} or over",
        "elderly_applicants": n,
        "age_raises_risk": raised,
        "share": raised / n if n else 0.0,
        "max_age_contribution": float(age_shap.max()) if n else None,
        "tolerance": REG_B_TOLERANCE,
        "passed": raised == 0,
        "constrained_by_construction": bool(constraint and constraint.get("age_cap") is not None),
        "method": (
            "none recorded (model trained before constraints existed)"
            if constraint is None
            else "monotonic_cst -1 on age and age capped at "
            f"{constraint['age_cap']} in the training data"
            if constraint.get("age_cap") is not None
            else "none (train with --constraints elderly_age to pass by construction)"
        ),
    }


def monotonicity(
    pipeline: Any, X: np.ndarray, metadata: dict[str, Any], schema: ApplicantSchema = BUILTIN
) -> dict[str, Any]:
    """One unit more of each feature with a declared direction of risk: the risk must not move
    against it (one more late payment never lowers the risk)."""
    recorded = (metadata.get("constraints") or {}).get("monotonic", {})
    # Both sides from the same predict_proba: a drop is the model's, never rounding's.
    p = pipeline.predict_proba(X)[:, 1]
    out = []
    for name, sign in risk_features(schema).items():
        j = schema.features.index(name)
        more = X.copy()
        more[:, j] += 1
        drop = sign * (p - pipeline.predict_proba(more)[:, 1])
        violations = int(np.sum(drop > MONOTONIC_TOLERANCE))
        out.append(
            {
                "feature": name,
                "violations": violations,
                "share": violations / len(p),
                "largest_drop": max(float(drop.max()), 0.0),
                "direction": "increasing" if sign > 0 else "decreasing",
                "constrained": recorded.get(name) == sign,
            }
        )
    return {
        "check": "each applicant with one unit more of each feature with a declared direction "
        "of risk",
        "tolerance": MONOTONIC_TOLERANCE,
        "features": out,
        "passed": all(f["violations"] == 0 for f in out),
    }


def stability_figures(
    X: np.ndarray, p: np.ndarray, metadata: dict[str, Any], schema: ApplicantSchema
) -> dict[str, Any]:
    base = metadata.get("baseline")
    if not base:
        return {
            "available": False,
            "why": "the model directory has no training baseline "
            "(trained before baselines were recorded): retrain to get PSI",
        }

    def one(b: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
        value = stability.psi(b, values)
        return {"psi": value, "reading": stability.reading(value)}

    return {
        "available": True,
        "bins": "training bins by kind (a bin per frequent value for counts, deciles for numbers), "
        "missing as its own bin",
        "score": one(base["score"], p),
        "features": {
            name: one(base["features"][name], X[:, j]) for j, name in enumerate(schema.features)
        },
    }


def points_table(
    meta: dict[str, Any], explainer: Any, shap: np.ndarray, schema: ApplicantSchema
) -> dict[str, Any] | None:
    """``train --points``: each feature's points over the rows (mean, range) and the scores'
    quantiles, from the same rounding every answer carries (None without points)."""
    from credit_schema.points import Scorecard

    if not meta.get("points") or explainer.space != "log_odds":
        return None
    card = Scorecard.parse(str(meta["points"]))
    answers = [card.points(explainer.base_value, row, schema.features) for row in shap.tolist()]
    scores = np.array([a["score"] for a in answers], dtype=np.float64)
    by_feature = {
        name: np.array([a["features"][name] for a in answers], dtype=np.float64)
        for name in schema.features
    }
    return {
        "scorecard": card.text(),
        "factor": card.factor,
        "offset": card.offset,
        "score_quantiles": {f"p{q}": float(np.percentile(scores, q)) for q in (1, 25, 50, 75, 99)},
        "mean_score": float(scores.mean()),
        "mean_base_points": float(np.mean([a["base"] for a in answers])),
        "features": [
            {
                "feature": name,
                "mean_points": float(v.mean()),
                "min_points": int(v.min()),
                "max_points": int(v.max()),
            }
            for name, v in by_feature.items()
        ],
    }


def compute(
    artifacts: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    data_description: dict[str, Any],
    bands: DecisionBands | None = None,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    attributes: Mapping[str, Sequence[Any]] | None = None,
) -> Report:
    """Every figure of the report for labelled rows ``X``, ``y`` (raw inputs in model order).

    ``train``: the rows the model was fitted on (for the benchmark); ``attributes``: the rows'
    prohibited-basis attributes (for the disparate-impact section), never model inputs.
    """
    from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

    from ..explain import build_explainer
    from . import checks

    if len(y) == 0 or not 0 < int(y.sum()) < len(y):
        raise ValueError("the report needs labelled rows of both classes (defaults and not)")
    meta = artifacts.metadata
    schema: ApplicantSchema = artifacts.schema
    explainer = build_explainer(artifacts.pipeline)
    p, shap, gap = explainer.explain_checked(X)  # gap in the explainer's space
    auc = float(roc_auc_score(y, p))
    ks, ks_score, ks_x, ks_good, ks_bad = ks_statistic(y, p)
    calibration, ece = calibration_table(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    importance = np.abs(shap).mean(axis=0)
    if bands is not None:
        decided = np.array([bands.decide(v) for v in p.tolist()])
        declined = np.flatnonzero(decided == bands.labels[-1])
        cutoff, basis = bands.bounds[-1], f"decision band {bands.labels[-1]!r}"
        approved = decided == bands.labels[0]
        approval = f"decision band {bands.labels[0]!r}"
    else:
        decided = None
        cutoff = float(np.quantile(p, 1 - 1 / GROUPS))
        declined = np.flatnonzero(p >= cutoff)
        basis = "top score decile (no thresholds given)"
        approved = p < cutoff
        approval = f"below the top score decile ({cutoff:.4f}; no thresholds given)"

    figures: dict[str, Any] = {
        "model": {
            "model_version": meta["model_version"],
            "model_sha256": meta["model_sha256"],
            "created_at": meta.get("created_at"),
            "schema": schema.name,
            "features": list(schema.features),
            "labels": dict(schema.labels),
            "age_feature": schema.age_feature,
            "categories": {name: list(codes) for name, codes in schema.codes.items()},
        },
        "data": {
            **data_description,
            "rows": len(y),
            "defaults": int(y.sum()),
            "default_rate": float(y.mean()),
            "missing_shares": {
                name: float(np.isnan(X[:, j]).mean())
                for j, name in enumerate(schema.features)
                if name in schema.nullable
            },
        },
        "thresholds": None
        if bands is None
        else {"labels": list(bands.labels), "bounds": list(bands.bounds)},
        "discrimination": {
            "auc": auc,
            "gini": 2 * auc - 1,
            "ks": ks,
            "ks_score": ks_score,
            "intervals": checks.bootstrap_intervals(y, p),
            "gains": gains_table(y, p),
        },
        "benchmark": checks.benchmark(
            train, X, y, p, [j for j, f in enumerate(schema.features) if f in schema.categorical]
        ),
        "calibration": {
            "brier": float(brier_score_loss(y, p)),
            "ece": ece,
            "mean_predicted": float(p.mean()),
            "observed": float(y.mean()),
            "deciles": calibration,
        },
        "calibration_test": checks.calibration_test(y, p),
        "explanations": {
            "base_value": float(explainer.base_value),
            "explainer": type(explainer).__name__,
            "importance": [
                {
                    "feature": schema.features[j],
                    "mean_abs_shap": float(importance[j]),
                    "mean_shap": float(shap[:, j].mean()),
                }
                for j in np.argsort(-importance, kind="mergesort")
            ],
            "max_additivity_gap": float(gap),
            "space": explainer.space,
        },
        "points": points_table(meta, explainer, shap, schema),
        "stability": stability_figures(X, p, meta, schema),
        "segments": segments(X, y, p, bands, decided, schema),
        "reasons": reason_frequencies(
            X, shap, declined, basis, cutoff, schema, probability=p, space=explainer.space
        ),
        "regulation_b": regulation_b(X, shap, meta, schema),
        "monotonicity": monotonicity(artifacts.pipeline, X, meta, schema),
        "disparate_impact": checks.disparate_impact(
            attributes or {}, approved, shap, schema.features, approval
        ),
        "model_card": model_card(artifacts),
    }
    figures["verdicts"] = checks.verdicts(figures)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(y), size=min(PLOT_SAMPLE, len(y)), replace=False))
    step = max(1, len(fpr) // _CURVE_POINTS)
    kstep = max(1, len(ks_x) // _CURVE_POINTS)
    plots = PlotData(
        roc=(fpr[::step], tpr[::step]),
        ks=(ks_x[::kstep], ks_good[::kstep], ks_bad[::kstep]),
        X=X[sample],
        shap=shap[sample],
    )
    return Report(figures=_clean(figures), plots=plots)


def model_card(artifacts: Any) -> dict[str, Any]:
    import json

    from ..artifacts import MANIFEST_FILE, METRICS_FILE

    meta = artifacts.metadata
    directory = artifacts.model_dir
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    metrics_path = directory / METRICS_FILE
    training = dict(meta.get("training_data", {}))
    feature_summary = training.pop("features", {})
    return {
        "feature_summary": feature_summary,
        "intended_use": intended_use(artifacts.schema),
        "limitations": limitations(artifacts.schema),
        "model_version": meta["model_version"],
        "training_data": training,
        "training_metrics": json.loads(metrics_path.read_text())
        if metrics_path.is_file()
        else None,
        "hyperparameters": meta.get("hyperparameters", {}),
        "constraints": meta.get("constraints"),
        "library_versions": meta.get("library_versions", {}),
        "manifest": manifest.get("files", {}),
    }


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return _num(obj)
    return obj
