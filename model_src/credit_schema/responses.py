"""Response shapes: the model server's and the scoring API's, defined once.

* :class:`ModelResponse` is what the model container answers for
  ``application/json`` (one :class:`Explanation` per applicant, request order).
* :class:`ScoreResponse` is what ``POST /score`` answers: the same explanations
  plus the applicant index, a decision band when thresholds are configured, the
  model version and the request id.
* :class:`LegacyResponse` is the original blog's shape
  (``prediction``, ``shap_base``, ``shap_values`` as feature -> list), served
  for ``CONTENT_TYPE_LEGACY_JSON`` so clients written for it keep working.

Contributions are ranked by absolute SHAP value, largest first (ties keep model
feature order); ``base_value + sum(shap_value)`` equals ``probability`` when ``space`` is
``probability``, its log-odds ``log(p / (1 - p))`` when ``space`` is ``log_odds``
(:func:`additivity_target`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from .applicant import FEATURES as _BUILTIN_FEATURES

#: The most ``|base_value + sum(shap_value) - probability|`` may be in any answer: a larger
#: gap means a broken explanation, which is never sent.
ADDITIVITY_TOLERANCE: Final = 1e-9

Direction = Literal["up", "down", "none"]
#: Where an explanation's SHAP values add up: the probability, or its log-odds (the margin
#: of a gradient-boosted model, where path-dependent TreeSHAP is exact).
Space = Literal["probability", "log_odds"]
SPACES: Final[tuple[str, ...]] = get_args(Space)


def additivity_target(probability: float, space: str) -> float:
    """What ``base_value + sum(shap_value)`` equals in ``space``: the probability or its
    log-odds (infinite at 0 and 1, so such an explanation never passes the check)."""
    if space == "probability":
        return probability
    if not 0.0 < probability < 1.0:
        return math.copysign(math.inf, probability - 0.5)
    return math.log(probability) - math.log1p(-probability)


class Contribution(BaseModel):
    """One feature's part in one applicant's score."""

    model_config = ConfigDict(frozen=True)

    feature: str = Field(description="Wire name of the feature.")
    value: float | str | None = Field(
        description="The applicant's input value (a category's text; null when missing)."
    )
    shap_value: float = Field(description="SHAP contribution to the probability.")
    direction: Direction = Field(
        description="'up' when the feature raises the risk, 'down' when it lowers it."
    )


class Reason(BaseModel):
    """One principal reason the model server gave (:func:`credit_schema.reasons.principal_reasons`)."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Stable reason code from the reason-code registry.")
    text: str = Field(description="The sentence shown to the applicant.")
    feature: str = Field(description="Wire name of the feature behind the reason.")
    shap_value: float = Field(description="The contribution behind it (raises the risk).")


class Points(BaseModel):
    """An answer's scorecard points (:mod:`credit_schema.points`)."""

    model_config = ConfigDict(frozen=True)

    score: int = Field(description="The applicant's score (higher: lower risk).")
    base: int = Field(description="The points of the average applicant's log-odds.")
    features: dict[str, int] = Field(description="Each feature's points (wire names).")


class Explanation(BaseModel):
    """One applicant's probability of serious delinquency with its exact SHAP explanation."""

    # ``reasons`` on the wire; the attribute has another name so the SDK's ``Score.reasons()``
    # method can read it.
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    probability: float = Field(ge=0.0, le=1.0, description="Probability of the risk label (the schema's target).")
    base_value: float = Field(description="Expected model output over the training data.")
    space: Space = Field(
        default="probability",
        description="Where base_value + the SHAP values add up: the probability or its "
        "log-odds.",
    )
    contributions: list[Contribution] = Field(
        description="One per feature, ranked by absolute SHAP value, largest first."
    )
    principal_reasons: list[Reason] | None = Field(
        default=None,
        alias="reasons",
        description="Up to four principal reasons, decided by the model server (null: none sent).",
    )
    decision: str | None = Field(
        default=None, description="Decision band, when the API has thresholds configured."
    )
    # Left out of dumps at its default, as the answers leave it out: records read back as sent.
    reference: Literal["training", "cutoff"] = Field(
        default="training",
        exclude_if=lambda v: v == "training",
        description="What base_value is the expected output of: the training background, or "
        "the training applicants scored just inside the approval cutoff (reasons then say why "
        "the applicant is not among them).",
    )
    points: Points | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Scorecard points (models trained with --points): the score, the base's "
        "points and each feature's, integers that sum exactly to the score.",
    )
    ids: dict[str, str] | None = Field(
        default=None,
        # Absent from the wire without ids (no key), as before schemas had id columns.
        exclude_if=lambda ids: ids is None,
        description="The applicant's id columns as sent (the schema's id_columns; absent: none).",
    )


class ModelResponse(BaseModel):
    """The model container's ``application/json`` answer."""

    model_version: str
    reason_codes_version: str | None = Field(
        default=None, description="Version of the reason-code registry behind ``reasons``."
    )
    predictions: list[Explanation]


class ScoredApplicant(Explanation):
    index: int = Field(ge=0, description="Position of the applicant in the request.")


class ScoreResponse(BaseModel):
    """``POST /score``'s answer."""

    request_id: str
    model_version: str
    reason_codes_version: str | None = Field(
        default=None, description="Version of the reason-code registry behind ``reasons``."
    )
    results: list[ScoredApplicant]


class GatewayErrorBody(BaseModel):
    """API Gateway's own error body, sent before the function runs.

    ``{"message": "Forbidden"}`` (403, missing or wrong API key), ``{"message":
    "Missing Authentication Token"}`` (403, no such route), ``{"message": "Too Many
    Requests"}`` (429, usage plan throttling), ``{"message": "Request Too Long"}`` (413).
    """

    message: str


class HealthResponse(BaseModel):
    """``GET /health``'s answer when the model endpoint is serving."""

    status: Literal["ok"]
    endpoint: str = Field(description="The SageMaker endpoint the API invokes.")
    detail: str
    check: str = Field(description="How it was checked: describe-endpoint or ping.")


class LegacyResponse(BaseModel):
    """The original blog's response shape."""

    prediction: list[float]
    shap_base: float
    shap_values: dict[str, list[float]]


def direction_of(shap_value: float) -> Direction:
    return "up" if shap_value > 0 else "down" if shap_value < 0 else "none"


def ranked(shap_values: Sequence[float]) -> list[int]:
    """Feature indices by ``|shap_value|``, largest first, ties in model feature order."""
    magnitude = [-abs(v) for v in shap_values]
    return sorted(range(len(magnitude)), key=magnitude.__getitem__)


def explanation_dict(
    probability: float,
    base_value: float,
    values: Sequence[float | str | None],
    shap_values: Sequence[float],
    features: Sequence[str] = _BUILTIN_FEATURES,
    *,
    space: str = "probability",
) -> dict[str, Any]:
    """One :class:`Explanation` as a plain dict, contributions :func:`ranked`.

    ``values`` and ``shap_values`` are in model feature order (None: missing).
    """
    return {
        "probability": probability,
        "base_value": base_value,
        "space": space,
        "contributions": [
            {
                "feature": features[i],
                "value": values[i],
                "shap_value": shap_values[i],
                "direction": direction_of(shap_values[i]),
            }
            for i in ranked(shap_values)
        ],
    }


def legacy_dict(
    probabilities: Sequence[float],
    base_value: float,
    shap_rows: Sequence[Sequence[float]],
    features: Sequence[str] = _BUILTIN_FEATURES,
) -> dict[str, Any]:
    """The original blog's shape from per-applicant rows in model feature order."""
    return {
        "prediction": [float(p) for p in probabilities],
        "shap_base": float(base_value),
        "shap_values": {
            name: [float(row[j]) for row in shap_rows] for j, name in enumerate(features)
        },
    }
