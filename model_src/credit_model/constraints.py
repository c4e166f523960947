"""Shape constraints ``train`` can put on the forest, so that checks pass by construction.

* ``past_due``: the three past-due counts may only raise the risk (scikit-learn's
  ``monotonic_cst`` = +1), so more late payments never lower the predicted risk.
* ``elderly_age``: Regulation B forbids assigning a negative factor to the age of an
  applicant aged 62 or over. Age is constrained to lower the risk (``monotonic_cst``
  = -1) *and* capped at 62 in the training data. With the constraint every leaf under
  an age split's older side is at most every leaf under its younger side; with the
  cap every age threshold lies below 62, so every applicant aged 62+ takes the older
  side at every age split (the same path as 62, at serving too, without any input
  preparation). Then each of path-dependent TreeSHAP's marginal terms for age is
  <= 0, so age's SHAP value never raises an elderly applicant's risk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
from credit_schema import ELDERLY_AGE, FEATURES

PAST_DUE_FEATURES: Final = (
    "NumberOfTime30-59DaysPastDueNotWorse",
    "NumberOfTimes90DaysLate",
    "NumberOfTime60-89DaysPastDueNotWorse",
)
#: Constraint name -> feature -> direction (+1: may only raise the risk, -1: only lower it).
CONSTRAINTS: Final[dict[str, dict[str, int]]] = {
    "past_due": dict.fromkeys(PAST_DUE_FEATURES, 1),
    "elderly_age": {"age": -1},
}
NONE: Final = "none"
ALL: Final = "all"
_AGE = FEATURES.index("age")


def parse(text: str | None) -> str:
    """``none``, ``all`` or a comma-separated list of :data:`CONSTRAINTS` -> canonical text."""
    names = {n.strip().replace("-", "_") for n in (text or NONE).split(",") if n.strip()}
    if names <= {NONE}:
        return NONE
    if ALL in names:
        names = (names - {ALL}) | set(CONSTRAINTS)
    unknown = names - set(CONSTRAINTS)
    if unknown:
        raise ValueError(
            f"unknown constraint(s) {', '.join(sorted(unknown))}: choose from "
            f"{', '.join(CONSTRAINTS)}, {ALL} or {NONE}"
        )
    return ",".join(n for n in CONSTRAINTS if n in names)


def names(spec: str) -> list[str]:
    return [] if parse(spec) == NONE else parse(spec).split(",")


def directions_of(spec: str) -> dict[str, int]:
    """Feature -> direction of risk (+1 may only raise it, -1 only lower it) that ``spec``
    constrains (to be read from the schema's declared directions)."""
    directions: dict[str, int] = {}
    for name in names(spec):
        directions.update(CONSTRAINTS[name])
    return directions


def monotonic_cst(
    spec: str,
    directions: Mapping[str, int] | None = None,
    features: Sequence[str] = FEATURES,
) -> list[int] | None:
    """Each family's monotonic constraints (scikit-learn's ``monotonic_cst``, XGBoost's and
    LightGBM's ``monotone_constraints``): one entry per column of ``features``, from
    ``directions`` (default: :func:`directions_of` ``spec``), or None when nothing is
    constrained."""
    if parse(spec) == NONE:
        return None
    chosen = directions_of(spec) if directions is None else dict(directions)
    return [chosen.get(f, 0) for f in features] if any(chosen.values()) else None


def age_cap(spec: str) -> int | None:
    return ELDERLY_AGE if "elderly_age" in names(spec) else None


def prepare_training(X: np.ndarray, spec: str) -> np.ndarray:
    """The training matrix the forest is fitted on: age capped when ``elderly_age`` is on."""
    cap = age_cap(spec)
    if cap is None:
        return X
    X = X.copy()
    X[:, _AGE] = np.fmin(X[:, _AGE], cap)  # fmin keeps NaN for the imputer
    return X


def describe(spec: str) -> dict[str, Any]:
    """What goes into metadata.json: the constraints, the directions and the age cap."""
    cst = monotonic_cst(spec)
    return {
        "names": names(spec),
        "monotonic": {f: d for f, d in zip(FEATURES, cst or [], strict=False) if d},
        "age_cap": age_cap(spec),
    }
