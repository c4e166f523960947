"""Shape constraints ``train`` can put on the forest, from the directions of risk in the schema.

* ``risk``: every feature the schema gives an expected direction of risk (``increasing`` or
  ``decreasing``, the age feature apart) is constrained to it (scikit-learn's ``monotonic_cst``
  = +1 or -1): in the built-in schema, more late payments never lower the predicted risk.
  ``past_due``, its name before schemas, still works.
* ``elderly_age``: Regulation B forbids assigning a negative factor to the age of an
  applicant aged 62 or over. The schema's age feature is constrained to lower the risk
  (``monotonic_cst`` = -1) *and* capped at 62 in the training data. With the constraint every
  leaf under an age split's older side is at most every leaf under its younger side; with the
  cap every age threshold lies below 62, so every applicant aged 62+ takes the older
  side at every age split (the same path as 62, at serving too, without any input
  preparation). Then each of path-dependent TreeSHAP's marginal terms for age is
  <= 0, so age's SHAP value never raises an elderly applicant's risk.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from credit_schema import BUILTIN, ELDERLY_AGE, ApplicantSchema, Risk

RISK: Final = "risk"
ELDERLY: Final = "elderly_age"
#: Every constraint, in canonical order.
CONSTRAINTS: Final = (RISK, ELDERLY)
_ALIASES: Final = {"past_due": RISK}
NONE: Final = "none"
ALL: Final = "all"
_SIGN: Final = {Risk.INCREASING: 1, Risk.DECREASING: -1}


def parse(text: str | None) -> str:
    """``none``, ``all`` or a comma-separated list of :data:`CONSTRAINTS` -> canonical text."""
    names = {_ALIASES.get(n, n) for n in parse_names(text)}
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


def check_named(text: str | None, schema: ApplicantSchema = BUILTIN) -> None:
    """A constraint named on its own (not through ``all``) must apply to ``schema``, else
    ValueError: ``elderly_age`` needs an age feature, ``risk`` a declared direction."""
    named = {_ALIASES.get(n, n) for n in parse_names(text)}
    if ELDERLY in named and schema.age_feature is None:
        raise ValueError(
            f"constraint {ELDERLY}: schema {schema.name} has no age feature (age: true); "
            f"use --constraints {RISK}, {ALL} or {NONE}"
        )
    if RISK in named and not risk_features(schema):
        raise ValueError(
            f"constraint {RISK}: schema {schema.name} declares no direction of risk "
            "(risk: increasing or decreasing) on any feature"
        )


def parse_names(text: str | None) -> set[str]:
    """The names in a ``--constraints`` value as written (lower case, ``_`` for ``-``)."""
    return {n.strip().replace("-", "_") for n in (text or NONE).split(",") if n.strip()}


def names(spec: str) -> list[str]:
    return [] if parse(spec) == NONE else parse(spec).split(",")


def risk_features(schema: ApplicantSchema = BUILTIN) -> dict[str, int]:
    """Feature -> declared direction of risk (+1, -1), the age feature apart."""
    return {
        f.name: _SIGN[f.risk] for f in schema.schema.features if f.risk in _SIGN and not f.age
    }


def monotonic_cst(spec: str, schema: ApplicantSchema = BUILTIN) -> list[int] | None:
    """scikit-learn's ``monotonic_cst`` (one entry per feature in model order), or None."""
    directions: dict[str, int] = {}
    chosen = names(spec)
    if RISK in chosen:
        directions.update(risk_features(schema))
    if ELDERLY in chosen and schema.age_feature is not None:
        directions[schema.age_feature] = -1
    return [directions.get(f, 0) for f in schema.features] if directions else None


def age_cap(spec: str, schema: ApplicantSchema = BUILTIN) -> int | None:
    return ELDERLY_AGE if ELDERLY in names(spec) and schema.age_feature is not None else None


def prepare_training(X: np.ndarray, spec: str, schema: ApplicantSchema = BUILTIN) -> np.ndarray:
    """The training matrix the forest is fitted on: age capped when ``elderly_age`` is on."""
    cap = age_cap(spec, schema)
    if cap is None or schema.age_feature is None:
        return X
    X = X.copy()
    j = schema.features.index(schema.age_feature)
    X[:, j] = np.fmin(X[:, j], cap)  # fmin keeps NaN for the imputer
    return X


def describe(spec: str, schema: ApplicantSchema = BUILTIN) -> dict[str, Any]:
    """What goes into metadata.json: the constraints, the directions and the age cap."""
    cst = monotonic_cst(spec, schema)
    return {
        "names": names(spec),
        "monotonic": {f: d for f, d in zip(schema.features, cst or [], strict=False) if d},
        "age_cap": age_cap(spec, schema),
    }
