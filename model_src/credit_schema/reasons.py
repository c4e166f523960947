"""Principal reasons for adverse action: the one rule, shared by the SDK and the model report.

US lenders must tell an applicant they turn down (ECOA / Regulation B, FCRA for
scores) the specific *principal* reasons for the action; the official staff
commentary says more than four reasons is unlikely to be helpful.

The rule (:func:`principal_reasons`): the features whose SHAP contribution
*raised* the probability of serious delinquency by at least
:data:`MIN_CONTRIBUTION`, largest first, mapped to :data:`REASONS` (or
:data:`REASONS_WHEN_MISSING` when the value was missing), one reason per code,
at most :data:`MAX_REASONS`. Age is never a reason for an applicant aged
:data:`ELDERLY_AGE` or over: Regulation B (12 CFR 1002.6(b)(2)) forbids an
empirically derived system from assigning a negative factor to an elderly
applicant's age.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from .applicant import FEATURES
from .text import text_problem

#: Changes whenever a code, a text or the rule changes (printed in reports beside the reasons).
REGISTRY_VERSION: Final = "2026-12-03.1"

#: Regulation B's commentary: no more than four principal reasons.
MAX_REASONS: Final = 4

#: A contribution must raise the probability by at least this much (half a percentage point)
#: to be a principal reason: smaller ones are noise, not reasons.
MIN_CONTRIBUTION: Final = 0.005

#: Regulation B's "elderly applicant": aged 62 or over.
ELDERLY_AGE: Final = 62
AGE_FEATURE: Final = "age"


class ReasonText(NamedTuple):
    """A reason's stable machine code and the sentence shown to the applicant."""

    code: str
    text: str


#: Feature -> reason when the feature raised the risk.
REASONS: Final[Mapping[str, ReasonText]] = {
    "RevolvingUtilizationOfUnsecuredLines": ReasonText(
        "revolving_utilization", "Proportion of balances to credit limits is too high"
    ),
    "age": ReasonText("age", "Applicant's age, as weighed by the scoring model"),
    "NumberOfTime30-59DaysPastDueNotWorse": ReasonText(
        "delinquency_30_59", "Payments 30-59 days past due in the last two years"
    ),
    "DebtRatio": ReasonText("debt_ratio", "Debt obligations are too high relative to income"),
    "MonthlyIncome": ReasonText("income", "Income insufficient for the credit requested"),
    "NumberOfOpenCreditLinesAndLoans": ReasonText(
        "open_accounts", "Number of open credit lines and loans"
    ),
    "NumberOfTimes90DaysLate": ReasonText(
        "delinquency_90", "Serious delinquency: payments 90 days or more past due"
    ),
    "NumberRealEstateLoansOrLines": ReasonText(
        "real_estate_loans", "Number of real estate loans or lines of credit"
    ),
    "NumberOfTime60-89DaysPastDueNotWorse": ReasonText(
        "delinquency_60_89", "Payments 60-89 days past due in the last two years"
    ),
    "NumberOfDependents": ReasonText("dependents", "Number of dependents"),
}

#: Feature -> reason when the feature was missing (null) and the imputed value raised the risk.
REASONS_WHEN_MISSING: Final[Mapping[str, ReasonText]] = {
    "MonthlyIncome": ReasonText("income_unknown", "Income not provided or not verified"),
    "NumberOfDependents": ReasonText("dependents_unknown", "Number of dependents not provided"),
}

assert set(REASONS) == set(FEATURES), "a reason for every feature"


class PrincipalReason(NamedTuple):
    """One principal reason: its code and text, and the contribution behind it."""

    code: str
    text: str
    feature: str
    value: float | None
    shap_value: float


def is_missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_elderly(age: float | None) -> bool:
    """Whether Regulation B's protection of elderly applicants applies to this age."""
    return not is_missing(age) and float(age) >= ELDERLY_AGE  # type: ignore[arg-type]


def principal_reasons(
    contributions: Iterable[tuple[str, float | None, float]],
    *,
    reasons: Mapping[str, ReasonText] = REASONS,
    reasons_when_missing: Mapping[str, ReasonText] = REASONS_WHEN_MISSING,
    max_reasons: int = MAX_REASONS,
    min_contribution: float = MIN_CONTRIBUTION,
) -> list[PrincipalReason]:
    """Up to ``max_reasons`` principal reasons from ``(feature, value, shap_value)`` triples."""
    # Filter first (most contributions are not reasons); age's own value decides its exclusion.
    ranked = sorted(
        (
            (f, v, s)
            for f, v, s in contributions
            if s >= min_contribution and s > 0 and not (f == AGE_FEATURE and is_elderly(v))
        ),
        key=lambda c: -c[2],
    )
    out: list[PrincipalReason] = []
    seen: set[str] = set()
    for feature, value, shap_value in ranked:
        missing = is_missing(value)
        text = (missing and reasons_when_missing.get(feature)) or reasons[feature]
        if text.code in seen:
            continue
        seen.add(text.code)
        out.append(PrincipalReason(text.code, text.text, feature, value, shap_value))
        if len(out) == max_reasons:
            break
    return out


# -- the lender's registry ------------------------------------------------------------------

#: Names a JSON file that overrides the registry on the model server (read once, at start).
REASON_CODES_ENV: Final = "CREDIT_EXPLAINER_REASON_CODES"


class ReasonCodesError(ValueError):
    """A reason-code override file that cannot be used (the message names the file and the fault)."""


class Registry(NamedTuple):
    """A versioned reason-code registry: feature -> reason, and feature -> reason when missing."""

    version: str
    reasons: Mapping[str, ReasonText]
    reasons_when_missing: Mapping[str, ReasonText]

    def principal_reasons(
        self, contributions: Iterable[tuple[str, float | None, float]]
    ) -> list[dict[str, object]]:
        """:func:`principal_reasons` as the wire's ``{"code", "text", "feature", "shap_value"}``."""
        return [
            {"code": r.code, "text": r.text, "feature": r.feature, "shap_value": r.shap_value}
            for r in principal_reasons(
                contributions, reasons=self.reasons, reasons_when_missing=self.reasons_when_missing
            )
        ]


DEFAULT_REGISTRY: Final = Registry(REGISTRY_VERSION, REASONS, REASONS_WHEN_MISSING)


def _texts(path: str, section: str, given: object) -> dict[str, ReasonText]:
    if not isinstance(given, dict):
        raise ReasonCodesError(f"{path}: {section!r} must be an object of feature -> reason")
    out: dict[str, ReasonText] = {}
    for feature, entry in given.items():
        if feature not in FEATURES:
            raise ReasonCodesError(f"{path}: {section}.{feature}: not a model feature")
        if isinstance(entry, str):
            entry = {"code": feature, "text": entry}
        code = entry.get("code") if isinstance(entry, dict) else None
        text = entry.get("text") if isinstance(entry, dict) else None
        if not (isinstance(code, str) and code and isinstance(text, str) and text):
            raise ReasonCodesError(
                f'{path}: {section}.{feature}: want a text or {{"code": ..., "text": ...}}'
            )
        for name, given_text in (("code", code), ("text", text)):
            problem = text_problem(given_text)
            if problem:
                raise ReasonCodesError(f"{path}: {section}.{feature}: the {name} {problem}")
        out[feature] = ReasonText(code, text)
    return out


def load_registry(path: str) -> Registry:
    """A lender's override: ``{"version": ..., "reasons": {feature: {"code", "text"} | text},
    "reasons_when_missing": {...}}``; features left out keep the defaults."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ReasonCodesError(f"{path}: cannot read the reason codes ({exc.strerror})") from None
    except ValueError as exc:
        raise ReasonCodesError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ReasonCodesError(f"{path}: want a JSON object with 'version' and 'reasons'")
    unknown = set(data) - {"version", "reasons", "reasons_when_missing"}
    if unknown:
        raise ReasonCodesError(f"{path}: unknown keys {sorted(unknown)}")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise ReasonCodesError(f"{path}: 'version' must be a non-empty string")
    reasons = {**REASONS, **_texts(path, "reasons", data.get("reasons", {}))}
    missing = {
        **REASONS_WHEN_MISSING,
        **_texts(path, "reasons_when_missing", data.get("reasons_when_missing", {})),
    }
    return Registry(version.strip(), reasons, missing)


def registry_from_env(environ: Mapping[str, str] | None = None) -> Registry:
    """The registry named by :data:`REASON_CODES_ENV`, or :data:`DEFAULT_REGISTRY` when unset."""
    import os

    path = (environ if environ is not None else os.environ).get(REASON_CODES_ENV, "").strip()
    return load_registry(path) if path else DEFAULT_REGISTRY
