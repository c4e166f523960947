"""Reading explanations: Score helpers, reason codes, text rendering, charts, input coercion."""

from __future__ import annotations

import io
import math
import sys

import pytest
from credit_explainer import (
    DEFAULT_MAX_REASONS,
    DEFAULT_REASONS,
    CreditExplainerError,
    InconsistentExplanationError,
    InvalidApplicantError,
    MissingDependencyError,
    ReasonCodes,
    Score,
    ScoreResults,
)
from credit_explainer._inputs import records_and_labels, validate_one
from credit_schema import FEATURES, explanation_dict

# SHAP values in model feature order: the 90-days-late count raises the risk most.
SHAP = {
    "RevolvingUtilizationOfUnsecuredLines": 0.030,
    "age": 0.004,
    "NumberOfTime30-59DaysPastDueNotWorse": 0.020,
    "DebtRatio": -0.010,
    "MonthlyIncome": 0.006,
    "NumberOfOpenCreditLinesAndLoans": -0.002,
    "NumberOfTimes90DaysLate": 0.120,
    "NumberRealEstateLoansOrLines": -0.015,
    "NumberOfTime60-89DaysPastDueNotWorse": 0.009,
    "NumberOfDependents": 0.0,
}
VALUES = {
    "RevolvingUtilizationOfUnsecuredLines": 0.95,
    "age": 29,
    "NumberOfTime30-59DaysPastDueNotWorse": 2,
    "DebtRatio": 0.2,
    "MonthlyIncome": None,
    "NumberOfOpenCreditLinesAndLoans": 6,
    "NumberOfTimes90DaysLate": 3,
    "NumberRealEstateLoansOrLines": 1,
    "NumberOfTime60-89DaysPastDueNotWorse": 1,
    "NumberOfDependents": 0,
}
BASE = 0.066


def make_score(shap: dict[str, float] = SHAP, *, skew: float = 0.0) -> Score:
    values = [VALUES[f] for f in FEATURES]
    s = [shap[f] for f in FEATURES]
    e = explanation_dict(BASE + math.fsum(s) + skew, BASE, values, s)  # type: ignore[arg-type]
    return Score.model_validate({**e, "index": 0, "model_version": "abc123", "request_id": "r-1"})


def test_contributions_helpers() -> None:
    score = make_score()
    assert [c.feature for c in score.top(2)] == [
        "NumberOfTimes90DaysLate",
        "RevolvingUtilizationOfUnsecuredLines",
    ]
    ups = score.increasing_risk()
    downs = score.decreasing_risk()
    assert all(c.shap_value > 0 and c.direction == "up" for c in ups)
    assert all(c.shap_value < 0 and c.direction == "down" for c in downs)
    assert [c.feature for c in downs] == [
        "NumberRealEstateLoansOrLines",
        "DebtRatio",
        "NumberOfOpenCreditLinesAndLoans",
    ]
    assert len(ups) + len(downs) == 9  # NumberOfDependents contributes exactly 0
    assert list(score.shap_values) == list(FEATURES)
    assert score.inputs["MonthlyIncome"] is None and score.inputs["age"] == 29


def test_additivity_check() -> None:
    assert make_score().is_additive()
    assert make_score().check() is not None
    bad = make_score(skew=1e-7)
    assert not bad.is_additive()
    with pytest.raises(InconsistentExplanationError, match="differ"):
        bad.check()
    assert bad.is_additive(tolerance=1e-6)


def test_additivity_check_in_log_odds() -> None:
    # A boosted model's explanation adds up to the log-odds of its probability.
    values = [VALUES[f] for f in FEATURES]
    s = [SHAP[f] for f in FEATURES]
    margin = -2.0 + math.fsum(s)
    p = 1.0 / (1.0 + math.exp(-margin))
    e = explanation_dict(p, -2.0, values, s, space="log_odds")  # type: ignore[arg-type]
    score = Score.model_validate({**e, "index": 0, "model_version": "m", "request_id": "r"})
    assert score.space == "log_odds" and score.is_additive()
    as_probability = Score.model_validate(
        {**e, "space": "probability", "index": 0, "model_version": "m", "request_id": "r"}
    )
    assert not as_probability.is_additive()


def test_reasons_rank_the_factors_that_raised_the_risk_up_to_four() -> None:
    score = make_score()
    reasons = score.reasons()
    assert [r.feature for r in reasons] == [
        "NumberOfTimes90DaysLate",
        "RevolvingUtilizationOfUnsecuredLines",
        "NumberOfTime30-59DaysPastDueNotWorse",
        "NumberOfTime60-89DaysPastDueNotWorse",
    ]
    assert reasons[0].text == DEFAULT_REASONS["NumberOfTimes90DaysLate"].text
    assert all(r.shap_value > 0 for r in reasons)
    assert len(score.reasons(max_reasons=2)) == 2


def test_reasons_only_at_or_above_the_cutoff() -> None:
    score = make_score()  # probability ~0.228
    assert score.reasons(cutoff=0.5) == []
    assert len(score.reasons(cutoff=score.probability)) == 4
    with pytest.raises(ValueError):
        ReasonCodes(cutoff=1.5)


def test_reasons_can_be_overridden_and_merged() -> None:
    codes = ReasonCodes(
        {
            "NumberOfTimes90DaysLate": ("DLQ", "Delinquency on accounts"),
            "NumberOfTime30-59DaysPastDueNotWorse": ("DLQ", "Delinquency on accounts"),
            "RevolvingUtilizationOfUnsecuredLines": "Too much revolving debt",
        },
        max_reasons=3,
    )
    reasons = codes.for_score(make_score())
    # The two delinquency features share a code and count once.
    assert [(r.code, r.text) for r in reasons] == [
        ("DLQ", "Delinquency on accounts"),
        ("RevolvingUtilizationOfUnsecuredLines", "Too much revolving debt"),
        ("delinquency_60_89", DEFAULT_REASONS["NumberOfTime60-89DaysPastDueNotWorse"].text),
    ]
    with pytest.raises(ValueError, match="unknown features"):
        ReasonCodes({"Age": "typo"})


def test_missing_income_gets_its_own_reason() -> None:
    shap = {**SHAP, "MonthlyIncome": 0.5}
    reasons = make_score(shap).reasons(max_reasons=1)
    assert reasons[0].code == "income_unknown" and reasons[0].value is None


def test_text_rendering_lists_every_contribution_and_the_sum() -> None:
    score = make_score()
    text = score.to_text()
    lines = text.splitlines()
    assert lines[0].startswith("probability of serious delinquency within 2 years: 22.")
    body = lines[2:12]
    assert [line.split()[0] for line in body] == [c.feature for c in score.contributions]
    assert "missing" in text and "▲" in text and "▼" in text
    assert f"= {score.probability:.4f}" in lines[-1]
    short = score.to_text(max_features=3, ascii=True)
    assert "(7 more)" in short and "▲" not in short and "#" in short
    assert str(score) == text


def test_waterfall_and_bar_charts_are_written_as_png(tmp_path: pytest.TempPathFactory) -> None:
    pytest.importorskip("matplotlib")
    score = make_score()
    for kind in ("waterfall", "bar"):
        path = tmp_path / f"{kind}.png"  # type: ignore[operator]
        fig = score.plot(path, kind=kind, max_features=6)  # type: ignore[arg-type]
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[-1] == "Times 90+ days late = 3" and labels[0] == "4 other features"
        assert "serious delinquency within 2 years" in ax.get_xlabel()
        assert "serious delinquency within 2 years" in ax.get_title()
        assert "default" not in ax.get_title().lower()
    # The waterfall ends at the probability: the last bar's end is base + sum.
    fig = score.plot(kind="waterfall")
    bars = fig.axes[0].patches
    top = bars[-1]
    assert top.get_x() + top.get_width() == pytest.approx(score.probability, abs=1e-12)
    assert bars[0].get_x() == pytest.approx(BASE, abs=1e-12)
    # Both lines are labelled, at the base value and at the probability.
    notes = {t.get_text(): t.get_position()[0] for t in fig.axes[0].texts if "%" in t.get_text()}
    assert notes == {
        f"base value {BASE:.1%} (average applicant)": BASE,
        f"prediction {score.probability:.1%}": score.probability,
    }


def test_pandas_rows_and_frames_nan_becomes_null() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([VALUES, {**VALUES, "NumberOfDependents": float("nan")}], index=["a", "b"])
    assert frame["MonthlyIncome"].isna().all()
    one = validate_one(frame.iloc[1])
    assert one.monthly_income is None and one.dependents is None and one.age == 29
    records, labels = records_and_labels(frame)
    assert labels == ["a", "b"] and records[0]["MonthlyIncome"] is None
    with pytest.raises(InvalidApplicantError) as info:
        validate_one({**VALUES, "age": float("nan")})
    assert info.value.errors[0].field == "age"
    with pytest.raises(TypeError, match="score\\(\\)"):
        records_and_labels(VALUES)


def test_results_to_dataframe_keeps_the_input_index() -> None:
    pd = pytest.importorskip("pandas")
    score = make_score()
    results = ScoreResults([score, score.model_copy(update={"index": 1})], labels=["x", "y"])
    frame = results.to_dataframe(reason_codes=ReasonCodes(max_reasons=2))
    assert list(frame.index) == ["x", "y"]
    assert frame.loc["x", "probability"] == score.probability
    assert frame.loc["y", "shap_NumberOfTimes90DaysLate"] == 0.12
    assert frame.loc["x", "reason_codes"] == "delinquency_90;revolving_utilization"
    assert pd.isna(frame.loc["x", "error"])


@pytest.mark.parametrize("library", ["pandas", "matplotlib.figure"])
def test_a_missing_extra_is_a_credit_explainer_error(
    library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # import fails as if absent
    score = make_score()
    with pytest.raises(CreditExplainerError, match="needs") as info:
        if library == "pandas":
            ScoreResults([score]).to_dataframe()
        else:
            score.plot()
    assert isinstance(info.value, ImportError)  # older `except ImportError` still catch it
    assert isinstance(info.value, MissingDependencyError)


def test_to_dataframe_has_the_reason_columns_the_cli_writes() -> None:
    pytest.importorskip("pandas")
    from credit_explainer.scoring_cli import Sink

    score = make_score()
    frame = ScoreResults([score]).to_dataframe()
    reasons = score.reasons()
    assert reasons  # the 90-days-late count raises the risk
    wanted = [r.text for r in reasons] + [""] * (DEFAULT_MAX_REASONS - len(reasons))
    assert [frame.loc[0, f"reason_{i + 1}"] for i in range(DEFAULT_MAX_REASONS)] == wanted
    assert frame.loc[0, "reason_codes"] == ";".join(r.code for r in reasons)
    cli = Sink(io.StringIO(), "csv", with_id=False, max_reasons=DEFAULT_MAX_REASONS).columns()
    assert [c for c in frame.columns if c.startswith("reason")] == [
        c for c in cli if c.startswith("reason")
    ]


def test_text_rendering_keeps_its_columns_with_long_category_texts() -> None:
    from conftest import LENDER_SCHEMA
    from credit_schema import compile_schema, parse_schema

    schema = compile_schema(parse_schema(LENDER_SCHEMA))
    long = "with family, or in a flat shared with others"
    e = explanation_dict(0.4, 0.2, [long, 3.0], [0.15, 0.05], schema.features)
    score = Score.model_validate({**e, "index": 0, "model_version": "m", "request_id": "r"})
    score._schema = schema
    lines = score.to_text().splitlines()
    assert lines[0].startswith("probability of default: 40.00%")
    rows = lines[2:4]
    assert [r.split()[0] for r in rows] == ["housing", "late_payments"]
    assert "with family, or in a fl…" in rows[0] and long not in rows[0]
    assert rows[0].index("+0.1500") == rows[1].index("+0.0500")  # the SHAP column lines up
    assert "..." in score.to_text(ascii=True)
