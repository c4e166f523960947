"""The principal-reason rule (credit_schema.reasons) and the SDK's ReasonCodes built on it."""

from __future__ import annotations

import math

import credit_explainer
import pytest
from credit_explainer import DEFAULT_REASONS, ReasonCodes, Score
from credit_schema import (
    ELDERLY_AGE,
    FEATURES,
    MIN_CONTRIBUTION,
    REASONS,
    REASONS_WHEN_MISSING,
    explanation_dict,
    principal_reasons,
)


def triples(shap: dict[str, float], values: dict[str, float | None] | None = None) -> list:
    values = values or {}
    return [(f, values.get(f, 1.0), shap.get(f, 0.0)) for f in FEATURES]


def score_of(shap: dict[str, float], age: float = 40) -> Score:
    vals = [age if f == "age" else 1.0 for f in FEATURES]
    s = [shap.get(f, 0.0) for f in FEATURES]
    e = explanation_dict(0.07 + math.fsum(s), 0.07, vals, s)  # type: ignore[arg-type]
    return Score.model_validate({**e, "index": 0, "model_version": "v", "request_id": "r"})


def test_only_contributions_that_raise_the_risk_by_the_minimum_are_reasons() -> None:
    shap = {"DebtRatio": 0.05, "age": MIN_CONTRIBUTION, "MonthlyIncome": MIN_CONTRIBUTION / 2}
    shap["NumberOfDependents"] = -0.2
    got = principal_reasons(triples(shap))
    assert [r.feature for r in got] == ["DebtRatio", "age"]
    assert got[0].code == REASONS["DebtRatio"].code and got[0].shap_value == 0.05


def test_sdk_gives_no_reason_for_a_contribution_of_five_hundred_thousandths() -> None:
    # Issue 16 item 14: score.reasons() with no cut-off used to return this one.
    score = score_of({"DebtRatio": 0.00005, "NumberOfDependents": -0.01})
    assert score.reasons() == []
    assert [r.feature for r in score.reasons(reason_codes=ReasonCodes(min_contribution=0))] == [
        "DebtRatio"
    ]
    with pytest.raises(ValueError, match="min_contribution"):
        ReasonCodes(min_contribution=-1)


@pytest.mark.parametrize("age", [ELDERLY_AGE, 62.0, 75, 103])
def test_age_is_never_a_reason_for_an_applicant_aged_62_or_over(age: float) -> None:
    shap = {"age": 0.3, "DebtRatio": 0.01}
    assert [r.feature for r in principal_reasons(triples(shap, {"age": age}))] == ["DebtRatio"]
    assert [r.feature for r in score_of(shap, age=age).reasons()] == ["DebtRatio"]


def test_age_can_be_a_reason_below_62() -> None:
    shap = {"age": 0.3, "DebtRatio": 0.01}
    assert [r.feature for r in principal_reasons(triples(shap, {"age": 61.9}))] == [
        "age",
        "DebtRatio",
    ]


def test_at_most_four_one_per_code_missing_values_get_their_own_text() -> None:
    shap = {f: 0.01 * (i + 1) for i, f in enumerate(FEATURES)}
    got = principal_reasons(triples(shap, {"MonthlyIncome": None, "NumberOfDependents": math.nan}))
    assert [r.feature for r in got] == list(reversed(FEATURES))[:4]
    assert got[0].code == REASONS_WHEN_MISSING["NumberOfDependents"].code
    same = {f: REASONS["NumberOfTimes90DaysLate"] for f in FEATURES}
    assert len(principal_reasons(triples(shap), reasons=same)) == 1
    assert len(principal_reasons(triples(shap), max_reasons=2)) == 2


def test_the_sdk_derives_its_registry_from_the_schema() -> None:
    assert DEFAULT_REASONS is REASONS
    assert credit_explainer.DEFAULT_REASONS_WHEN_MISSING is REASONS_WHEN_MISSING
    assert credit_explainer.ReasonText is REASONS["age"].__class__
