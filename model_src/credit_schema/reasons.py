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
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple

from .applicant import BUILTIN
from .schema import ApplicantSchema
from .text import text_problem

#: Changes whenever a code, a text or the rule changes (printed in reports beside the reasons).
REGISTRY_VERSION: Final = BUILTIN.schema.reason_codes_version

#: Regulation B's commentary: no more than four principal reasons.
MAX_REASONS: Final = 4

#: A contribution must raise the probability by at least this much (half a percentage point)
#: to be a principal reason: smaller ones are noise, not reasons.
MIN_CONTRIBUTION: Final = 0.005

#: Regulation B's "elderly applicant": aged 62 or over.
ELDERLY_AGE: Final = 62
#: The built-in schema's age feature (a schema marks its own with ``age: true``).
AGE_FEATURE: Final = BUILTIN.age_feature


class ReasonText(NamedTuple):
    """A reason's stable machine code and the sentence shown to the applicant."""

    code: str
    text: str


def registry_texts(schema: ApplicantSchema) -> tuple[dict[str, ReasonText], dict[str, ReasonText]]:
    """A schema's reasons: feature -> reason, and feature -> reason when the value was missing."""
    features = schema.schema.features
    reasons = {f.name: ReasonText(f.reason.code, f.reason.text) for f in features}
    missing = {
        f.name: ReasonText(f.reason_when_missing.code, f.reason_when_missing.text)
        for f in features
        if f.reason_when_missing is not None
    }
    return reasons, missing


#: The built-in schema's reasons (feature -> reason when the feature raised the risk, and when
#: it was missing), from its schema file.
REASONS, REASONS_WHEN_MISSING = registry_texts(BUILTIN)


class PrincipalReason(NamedTuple):
    """One principal reason: its code and text, and the contribution behind it."""

    code: str
    text: str
    feature: str
    value: float | str | None
    shap_value: float


def is_missing(value: float | str | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_elderly(age: float | str | None) -> bool:
    """Whether Regulation B's protection of elderly applicants applies to this age."""
    return not is_missing(age) and float(age) >= ELDERLY_AGE  # type: ignore[arg-type]


def min_contribution_in(space: str, probability: float) -> float:
    """:data:`MIN_CONTRIBUTION` in an explanation's space: in log-odds, the change that moves
    this applicant's probability by it to first order (``MIN / (p (1 - p))``)."""
    if space != "log_odds":
        return MIN_CONTRIBUTION
    slope = probability * (1.0 - probability)
    return MIN_CONTRIBUTION / slope if slope > 0.0 else float("inf")


def principal_reasons(
    contributions: Iterable[tuple[str, float | str | None, float]],
    *,
    reasons: Mapping[str, ReasonText] = REASONS,
    reasons_when_missing: Mapping[str, ReasonText] = REASONS_WHEN_MISSING,
    max_reasons: int = MAX_REASONS,
    min_contribution: float = MIN_CONTRIBUTION,
    age_feature: str | None = AGE_FEATURE,
) -> list[PrincipalReason]:
    """Up to ``max_reasons`` principal reasons from ``(feature, value, shap_value)`` triples."""
    # Filter first (most contributions are not reasons); age's own value decides its exclusion.
    ranked = sorted(
        (
            (f, v, s)
            for f, v, s in contributions
            if s >= min_contribution and s > 0 and not (f == age_feature and is_elderly(v))
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
    #: The schema's age feature: never a reason for an elderly applicant.
    age_feature: str | None = AGE_FEATURE

    def principal_reasons(
        self,
        contributions: Iterable[tuple[str, float | str | None, float]],
        *,
        min_contribution: float = MIN_CONTRIBUTION,
    ) -> list[dict[str, object]]:
        """:func:`principal_reasons` as the wire's ``{"code", "text", "feature", "shap_value"}``
        (``min_contribution`` in the explanation's space: :func:`min_contribution_in`)."""
        return [
            {"code": r.code, "text": r.text, "feature": r.feature, "shap_value": r.shap_value}
            for r in principal_reasons(
                contributions,
                reasons=self.reasons,
                reasons_when_missing=self.reasons_when_missing,
                age_feature=self.age_feature,
                min_contribution=min_contribution,
            )
        ]


def schema_registry(schema: ApplicantSchema) -> Registry:
    """The registry a schema states: its reason codes, its version, its age feature."""
    reasons, missing = registry_texts(schema)
    return Registry(schema.schema.reason_codes_version, reasons, missing, schema.age_feature)


DEFAULT_REGISTRY: Final = schema_registry(BUILTIN)


def _texts(path: str, section: str, given: object, features: Sequence[str]) -> dict[str, ReasonText]:
    if not isinstance(given, dict):
        raise ReasonCodesError(f"{path}: {section!r} must be an object of feature -> reason")
    out: dict[str, ReasonText] = {}
    for feature, entry in given.items():
        if feature not in features:
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


def load_registry(path: str, base: Registry = DEFAULT_REGISTRY) -> Registry:
    """A lender's override: ``{"version": ..., "reasons": {feature: {"code", "text"} | text},
    "reasons_when_missing": {...}}``; features left out keep ``base``'s (the schema's) texts."""
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
    features = list(base.reasons)
    reasons = {**base.reasons, **_texts(path, "reasons", data.get("reasons", {}), features)}
    missing = {
        **base.reasons_when_missing,
        **_texts(path, "reasons_when_missing", data.get("reasons_when_missing", {}), features),
    }
    return Registry(version.strip(), reasons, missing, base.age_feature)


def registry_from_env(
    environ: Mapping[str, str] | None = None, base: Registry = DEFAULT_REGISTRY
) -> Registry:
    """The registry named by :data:`REASON_CODES_ENV` over ``base``, or ``base`` when unset."""
    import os

    path = (environ if environ is not None else os.environ).get(REASON_CODES_ENV, "").strip()
    return load_registry(path, base) if path else base
