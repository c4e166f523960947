"""The JSON answer of a large batch, written column-wise instead of one dict per applicant.

Same meaning as :func:`credit_model.handlers.explanations` serialised by
pydantic-core (a test holds the two equal on random batches): contributions in the
order of :func:`credit_schema.ranked`, reasons by
:func:`credit_schema.reasons.principal_reasons`, both restated here over arrays.
Every float is written by pydantic-core (shortest round trip, as ``json.dumps``).
Built for batch transform and bulk scoring, where building 2,000 x 14 dicts cost
more than the explanation itself (``docs/performance.md``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from credit_schema import FEATURES
from credit_schema.decisions import DecisionBands
from credit_schema.reasons import (
    ELDERLY_AGE,
    MAX_REASONS,
    ReasonText,
    Registry,
    min_contribution_in,
)
from pydantic_core import to_json

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

#: By sign + 1, then the same followed by a comma (every contribution but the last).
_DIRECTIONS: Final = np.array(
    [f',"direction":"{d}"}}{comma}' for comma in ("", ",") for d in ("down", "none", "up")],
    dtype=object,
)


class _Layout(NamedTuple):
    n: int
    last: npt.NDArray[np.bool_]
    contribution: ObjectArray
    #: Pieces of one applicant's object: head, 5 per contribution, the reasons' opening,
    #: 3 per reason, end.
    width: int


@cache
def _layout(features: tuple[str, ...]) -> _Layout:
    n = len(features)
    return _Layout(
        n,
        np.arange(n) == n - 1,
        np.array([f'{{"feature":{json.dumps(f)},"value":' for f in features], dtype=object),
        2 + 5 * n + 1 + 3 * MAX_REASONS + 1,
    )


def _texts(values: FloatArray) -> ObjectArray:
    """Each float's JSON text (NaN: ``null``), same shape, from one pydantic-core call."""
    out = np.empty(values.shape, dtype=object)
    text = to_json(values.ravel().tolist(), inf_nan_mode="null").decode()
    out.ravel()[:] = text[1:-1].split(",")
    return out


def _reason_heads(registry: Registry, features: Sequence[str]) -> ObjectArray | None:
    """Per feature (then per feature when missing) the reason object up to its shap_value;
    None when two features share a code (the rule then drops duplicates, which this does not)."""

    def head(feature: str, reason: ReasonText) -> str:
        code, text, name = (json.dumps(s) for s in (reason.code, reason.text, feature))
        return f'{{"code":{code},"text":{text},"feature":{name},"shap_value":'

    present = [(f, registry.reasons[f]) for f in features]
    missing = [(f, registry.reasons_when_missing.get(f) or registry.reasons[f]) for f in features]
    owners: dict[str, str] = {}
    for feature, reason in present + missing:
        if owners.setdefault(reason.code, feature) != feature:
            return None
    heads = [head(feature, reason) for feature, reason in present + missing]
    return np.array(heads, dtype=object)


def explanation_text(
    probability: FloatArray,
    base_value: float,
    inputs: FloatArray,
    shap_values: FloatArray,
    registry: Registry,
    bands: DecisionBands | None = None,
    *,
    space: str = "probability",
    prefix: str = "",
    separator: str = ",",
    features: Sequence[str] = FEATURES,
) -> str | None:
    """One JSON object per applicant (an :class:`credit_schema.Explanation` with reasons), each
    opening with ``prefix`` (other members), joined by ``separator``; None when ``registry``
    needs the per-row rule."""
    heads = _reason_heads(registry, features)
    if heads is None:
        return None
    _N, _LAST, _CONTRIBUTION, _WIDTH = _layout(tuple(features))
    n = len(shap_values)
    missing = np.isnan(inputs)
    shap_text, value_text = _texts(shap_values), _texts(inputs)
    order = np.argsort(-np.abs(shap_values), axis=1, kind="stable")  # credit_schema.ranked

    least = np.fromiter(  # each row's threshold in its space: the rule's one copy
        (min_contribution_in(space, p) for p in probability.tolist()), np.float64, n
    )
    candidate = (shap_values >= least[:, None]) & (shap_values > 0)
    if registry.age_feature is not None and registry.age_feature in features:
        age = list(features).index(registry.age_feature)  # never an elderly applicant's age
        candidate[:, age] &= ~(inputs[:, age] >= ELDERLY_AGE)
    reason_order = np.argsort(np.where(candidate, -shap_values, np.inf), axis=1, kind="stable")
    reason_order = reason_order[:, :MAX_REASONS]
    given = np.take_along_axis(candidate, reason_order, 1)

    pieces = np.empty((n, _WIDTH), dtype=object)  # every cell is set below
    pieces[:, 0] = "{" + prefix + '"probability":'
    pieces[:, 1] = _texts(probability) + (
        f',"base_value":{base_value!r},"space":{json.dumps(space)},"contributions":['
    )
    contribution = pieces[:, 2 : 2 + 5 * _N].reshape(n, _N, 5)
    contribution[:, :, 0] = _CONTRIBUTION[order]
    contribution[:, :, 1] = np.take_along_axis(value_text, order, 1)
    contribution[:, :, 2] = ',"shap_value":'
    contribution[:, :, 3] = np.take_along_axis(shap_text, order, 1)
    sign = np.sign(np.take_along_axis(shap_values, order, 1)).astype(np.intp)
    contribution[:, :, 4] = _DIRECTIONS[sign + 1 + 3 * ~_LAST]
    pieces[:, 2 + 5 * _N] = '],"reasons":['
    reason = pieces[:, 3 + 5 * _N : -1].reshape(n, MAX_REASONS, 3)
    kind = reason_order + _N * np.take_along_axis(missing, reason_order, 1)
    reason[:, :, 0] = np.where(given, heads[kind], "")
    reason[:, 1:, 0] = np.where(given[:, 1:], "," + reason[:, 1:, 0], "")
    reason[:, :, 1] = np.where(given, np.take_along_axis(shap_text, reason_order, 1), "")
    reason[:, :, 2] = np.where(given, "}", "")
    end = np.full(n, "]", dtype=object)
    if bands is not None:  # DecisionBands.decide: the first band whose bound is above
        labels = np.array([f',"decision":{json.dumps(label)}' for label in bands.labels], object)
        end += labels[np.searchsorted(bands.bounds, probability, side="right")]
    pieces[:, -1] = end + ("}" + separator)
    pieces[-1, -1] = end[-1] + "}"
    return "".join(pieces.ravel().tolist())
