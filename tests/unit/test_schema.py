"""The shared applicant schema and payload normaliser."""

from __future__ import annotations

import json

import pytest
from credit_schema import (
    FEATURES,
    Applicant,
    ApplicantValidationError,
    MalformedPayloadError,
    PayloadTooLargeError,
    explanation_dict,
    parse_csv_applicants,
    parse_json_applicants,
)

GOOD = {
    "RevolvingUtilizationOfUnsecuredLines": 0.3,
    "age": 45,
    "NumberOfTime30-59DaysPastDueNotWorse": 0,
    "DebtRatio": 0.35,
    "MonthlyIncome": None,
    "NumberOfOpenCreditLinesAndLoans": 8,
    "NumberOfTimes90DaysLate": 0,
    "NumberRealEstateLoansOrLines": 1,
    "NumberOfTime60-89DaysPastDueNotWorse": 0,
    "NumberOfDependents": 2.0,
}
OTHER = dict(GOOD, age=61, MonthlyIncome=8200.0, NumberOfDependents=None)


def rows(applicants: list[Applicant]) -> list[list[float | None]]:
    return [a.to_row() for a in applicants]


EXPECTED = [
    [0.3, 45.0, 0.0, 0.35, None, 8.0, 0.0, 1.0, 0.0, 2.0],
    [0.3, 61.0, 0.0, 0.35, 8200.0, 8.0, 0.0, 1.0, 0.0, None],
]


@pytest.mark.parametrize(
    "payload",
    [
        [GOOD, OTHER],
        json.dumps([GOOD, OTHER]),
        json.dumps(json.dumps([GOOD, OTHER])),  # the original blog's double encoding
        {"instances": [GOOD, OTHER]},
        {"instances": [list(GOOD.values()), list(OTHER.values())]},
        [list(GOOD.values()), list(OTHER.values())],
        {k: {"0": GOOD[k], "7": OTHER[k]} for k in FEATURES},  # pandas orient="columns"
        {"0": GOOD, "7": OTHER},  # pandas orient="index"
        {
            "columns": list(FEATURES),
            "index": [0, 7],
            "data": [list(GOOD.values()), list(OTHER.values())],
        },
    ],
)
def test_every_shape_gives_the_same_rows(payload: object) -> None:
    assert rows(parse_json_applicants(payload)) == EXPECTED


def test_one_object_is_one_applicant() -> None:
    assert rows(parse_json_applicants(json.dumps(GOOD))) == EXPECTED[:1]


def test_csv_with_and_without_header() -> None:
    def line(d: dict[str, object]) -> str:
        return ",".join("" if v is None else str(v) for v in d.values())

    kaggle = ",".join(['""', "SeriousDlqin2yrs", *FEATURES]) + "\n"
    kaggle += f"1,0,{line(GOOD)}\n2,1,{line(OTHER)}\n"
    assert rows(parse_csv_applicants(kaggle)) == EXPECTED
    assert rows(parse_csv_applicants(f"{line(GOOD)}\n{line(OTHER)}\n".encode())) == EXPECTED


def test_every_problem_is_named_by_applicant_and_field() -> None:
    misspelt = dict(GOOD)
    misspelt["Age"] = misspelt.pop("age")
    bad = [GOOD, misspelt, dict(GOOD, DebtRatio=-1, NumberOfDependents=1.5)]
    with pytest.raises(ApplicantValidationError) as info:
        parse_json_applicants(bad)
    err = info.value
    assert err.status_code == 422
    found = {(d.applicant, d.field, d.type) for d in err.details}
    # "Age" for "age" is one problem, not an unknown field plus a missing one.
    assert found == {
        (1, "Age", "extra_forbidden"),
        (2, "DebtRatio", "greater_than_equal"),
        (2, "NumberOfDependents", "int_from_float"),
    }
    assert [d.message for d in err.details if d.field == "Age"] == [
        "unknown field; did you mean 'age'?"
    ]
    body = err.to_dict(request_id="r-1")
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["request_id"] == "r-1"
    assert all(
        set(d) == {"applicant", "field", "message", "type"} for d in body["error"]["details"]
    )
    assert "1.5" not in json.dumps(body)  # error bodies never echo applicant values


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_with_the_field(text: str) -> None:
    body = json.dumps(GOOD).replace('"DebtRatio": 0.35', f'"DebtRatio": {text}')
    with pytest.raises(ApplicantValidationError) as info:
        parse_json_applicants(body)
    assert [(d.applicant, d.field) for d in info.value.details] == [(0, "DebtRatio")]


@pytest.mark.parametrize("value", [True, "forty", 17, 121, None])
def test_age_must_be_a_plausible_integer(value: object) -> None:
    with pytest.raises(ApplicantValidationError):
        parse_json_applicants(dict(GOOD, age=value))


@pytest.mark.parametrize(
    "body", [b"", b"{", b"\xff\xfe", b'"just a string"', b"42", b"[]", b'{"instances": 3}']
)
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_json_applicants(body)
    assert info.value.status_code == 400


def test_an_empty_object_lists_every_missing_field() -> None:
    with pytest.raises(ApplicantValidationError) as info:
        parse_json_applicants(b"{}")
    assert sorted(d.field for d in info.value.details) == sorted(FEATURES)


def test_deep_nesting_is_400_not_a_crash() -> None:
    with pytest.raises(MalformedPayloadError):
        parse_json_applicants("[" * 100_000 + "]" * 100_000)


def test_batch_limit_is_413() -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        parse_json_applicants([GOOD] * 3, max_applicants=2)
    assert info.value.status_code == 413


def test_explanation_ranks_by_absolute_impact_and_adds_up() -> None:
    shap = [0.01, -0.02, 0.0, 0.0, 0.0, 0.0, 0.005, 0.0, 0.0, 0.001]
    out = explanation_dict(0.066, 0.07, EXPECTED[0], shap)
    names = [c["feature"] for c in out["contributions"]]
    assert names[:4] == [
        "age",
        "RevolvingUtilizationOfUnsecuredLines",
        "NumberOfTimes90DaysLate",
        "NumberOfDependents",
    ]
    assert [c["direction"] for c in out["contributions"][:3]] == ["down", "up", "up"]
    assert out["base_value"] + sum(c["shap_value"] for c in out["contributions"]) == pytest.approx(
        0.066, abs=1e-12
    )
