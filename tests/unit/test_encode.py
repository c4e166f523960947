"""Large batches' JSON answer (written column-wise) equals the per-applicant one.

The reference is the per-row path: :func:`credit_schema.explanation_dict` (ranking by
``credit_schema.ranked``) and :func:`credit_schema.reasons.principal_reasons`, serialised
by pydantic-core, the code every answer under the bulk size goes through.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from credit_model.encode import explanation_text
from credit_model.handlers import BULK_MIN_RECORDS, Prediction, explanations, output_fn
from credit_schema import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSONLINES,
    ELDERLY_AGE,
    FEATURES,
    MIN_CONTRIBUTION,
    ModelResponse,
)
from credit_schema.decisions import DecisionBands
from credit_schema.reasons import DEFAULT_REGISTRY, ReasonText, Registry

AGE = FEATURES.index("age")
INCOME = FEATURES.index("MonthlyIncome")
DEPENDENTS = FEATURES.index("NumberOfDependents")


def batch(seed: int, n: int = 300, registry: Registry = DEFAULT_REGISTRY) -> Prediction:
    """Applicants with the edges the rules care about: ties in |SHAP|, contributions at the
    reason threshold, zeros, -0.0, missing values and ages either side of ELDERLY_AGE."""
    rng = np.random.default_rng(seed)
    shap = rng.normal(0.0, 0.01, (n, len(FEATURES)))
    shap[rng.random(shap.shape) < 0.1] = 0.0
    shap[rng.random(shap.shape) < 0.05] = -0.0
    shap[rng.random(shap.shape) < 0.1] = MIN_CONTRIBUTION
    ties = rng.random(n) < 0.2
    shap[ties, 3] = -shap[ties, 1]  # the same |SHAP|, opposite signs
    inputs = rng.uniform(0.0, 5.0, (n, len(FEATURES))).round(2)
    inputs[:, AGE] = rng.integers(ELDERLY_AGE - 3, ELDERLY_AGE + 3, n)
    inputs[rng.random(n) < 0.3, INCOME] = np.nan
    inputs[rng.random(n) < 0.1, DEPENDENTS] = np.nan
    inputs[:5, :] = 1e300  # floats whose text is in exponent form
    probability = rng.random(n)
    return Prediction(inputs, probability, 0.0671234, shap, "v-test", registry)


def per_row(prediction: Prediction) -> list[dict[str, object]]:
    return json.loads(json.dumps(explanations(prediction)))  # NaN values are null in the answer


LENDER = Registry(
    "lender-7",
    {**DEFAULT_REGISTRY.reasons, "DebtRatio": ReasonText("DR \"quoted\"", "Debt é ratio\n")},
    {},
)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("registry", [DEFAULT_REGISTRY, LENDER], ids=["default", "lender"])
def test_column_wise_json_equals_the_per_row_answer(seed: int, registry: Registry) -> None:
    prediction = batch(seed, registry=registry)
    body, kind = output_fn(prediction, CONTENT_TYPE_JSON)
    assert kind == CONTENT_TYPE_JSON
    answer = json.loads(body)
    assert answer["predictions"] == per_row(prediction)
    assert answer["model_version"] == "v-test"
    assert answer["reason_codes_version"] == registry.version
    ModelResponse.model_validate_json(body)
    assert any(p["reasons"] for p in answer["predictions"])  # the reasons were exercised
    assert any(not p["reasons"] for p in answer["predictions"])


def test_json_lines_carry_the_versions_on_every_line() -> None:
    prediction = batch(7)
    body, _ = output_fn(prediction, CONTENT_TYPE_JSONLINES)
    lines = [json.loads(line) for line in body.decode().splitlines()]
    versions = {"model_version": "v-test", "reason_codes_version": DEFAULT_REGISTRY.version}
    assert lines == [{**versions, **e} for e in per_row(prediction)]


def test_a_registry_sharing_a_code_between_features_takes_the_per_row_rule() -> None:
    shared = ReasonText("delinquency", "Past-due payments")
    registry = Registry(
        "shared-codes",
        {
            **DEFAULT_REGISTRY.reasons,
            "NumberOfTime30-59DaysPastDueNotWorse": shared,
            "NumberOfTimes90DaysLate": shared,
        },
        DEFAULT_REGISTRY.reasons_when_missing,
    )
    prediction = batch(3, registry=registry)
    assert explanation_text(
        prediction.probability, 0.0, prediction.inputs, prediction.shap_values, registry
    ) is None
    answer = json.loads(output_fn(prediction, CONTENT_TYPE_JSON)[0])
    assert answer["predictions"] == per_row(prediction)
    codes = [[r["code"] for r in p["reasons"]] for p in answer["predictions"]]
    assert all(len(c) == len(set(c)) for c in codes)


def test_batches_under_the_bulk_size_answer_the_same_shape() -> None:
    small = batch(4, n=BULK_MIN_RECORDS - 1)
    large = batch(4, n=BULK_MIN_RECORDS)
    for prediction in (small, large):
        answer = json.loads(output_fn(prediction, CONTENT_TYPE_JSON)[0])
        assert answer["predictions"] == per_row(prediction)


def test_decisions_by_the_caller_s_bands_are_the_per_row_ones() -> None:
    prediction = batch(5)
    prediction.bands = DecisionBands.parse("approve:0.25,review:0.5,refer:0.75,decline")
    prediction.probability[:3] = [0.25, 0.5, 0.75]  # on a bound: the next band
    for accept in (CONTENT_TYPE_JSON, CONTENT_TYPE_JSONLINES):
        body = output_fn(prediction, accept)[0].decode()
        answers = (
            json.loads(body)["predictions"]
            if accept == CONTENT_TYPE_JSON
            else [json.loads(line) for line in body.splitlines()]
        )
        expected = per_row(prediction)
        assert [a["decision"] for a in answers] == [e["decision"] for e in expected]
        assert [a["decision"] for a in answers][:3] == ["review", "refer", "decline"]
        assert {a["decision"] for a in answers} == {"approve", "review", "refer", "decline"}


@pytest.mark.parametrize("seed", range(3))
def test_log_odds_answers_take_the_reason_threshold_in_log_odds(seed: int) -> None:
    # A log-odds contribution counts when it moves this applicant's probability by
    # MIN_CONTRIBUTION to first order: shap >= MIN / (p (1 - p)), column-wise as per row.
    prediction = batch(seed)
    prediction.shap_values = prediction.shap_values * 40.0  # log-odds sized
    prediction.space = "log_odds"
    answer = json.loads(output_fn(prediction, CONTENT_TYPE_JSON)[0])
    assert answer["predictions"] == per_row(prediction)
    for p, e in zip(prediction.probability, answer["predictions"], strict=True):
        least = MIN_CONTRIBUTION / (p * (1 - p))
        assert e["space"] == "log_odds"
        assert all(r["shap_value"] >= least for r in e["reasons"])
        small = [c for c in e["contributions"] if 0 < c["shap_value"] < least]
        assert not {c["feature"] for c in small} & {r["feature"] for r in e["reasons"]}
    assert any(
        0 < c["shap_value"] < MIN_CONTRIBUTION / (p * (1 - p))
        and c["shap_value"] >= MIN_CONTRIBUTION
        for p, e in zip(prediction.probability, answer["predictions"], strict=True)
        for c in e["contributions"]
    )  # contributions the probability-space threshold would have given as reasons
