"""credit_schema.validate_rows: the fast path accepts and rejects exactly what pydantic does."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from credit_schema import (
    FEATURES,
    ApplicantValidationError,
    PayloadError,
    fast_row,
    parse_csv_applicants,
    parse_csv_rows,
    parse_json_applicants,
    parse_json_rows,
    validate_records,
    validate_rows,
)
from hypothesis import given, settings
from hypothesis import strategies as st

GOOD: dict[str, Any] = {
    "RevolvingUtilizationOfUnsecuredLines": 0.3,
    "age": 45,
    "NumberOfTime30-59DaysPastDueNotWorse": 0,
    "DebtRatio": 0.35,
    "MonthlyIncome": 5400.0,
    "NumberOfOpenCreditLinesAndLoans": 8,
    "NumberOfTimes90DaysLate": 0,
    "NumberRealEstateLoansOrLines": 1,
    "NumberOfTime60-89DaysPastDueNotWorse": 0,
    "NumberOfDependents": None,
}

# Values around every bound and of every JSON type, plus the awkward ones.
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 1_500),
    st.sampled_from([17, 18, 120, 121, 1_000, 1_001, 10**7, 10**7 + 1, 10**9, 10**9 + 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 45.0, 45.5, 1e7, 1e7 + 2, 1e9, 1e9 + 1e3, -1e-300, 1e999]),
    st.text(max_size=4),
    st.sampled_from(["45", "0.3", "", "null"]),
    st.lists(st.integers(), max_size=1),
)


def reference(records: list[Any]) -> list[list[float | None]] | str:
    try:
        return [a.to_row() for a in validate_records(records)]
    except ApplicantValidationError as exc:
        return json.dumps(exc.to_dict(), sort_keys=True)


def fast(records: list[Any]) -> list[list[float | None]] | str:
    try:
        return validate_rows(records)
    except ApplicantValidationError as exc:
        return json.dumps(exc.to_dict(), sort_keys=True)


def same(a: Any, b: Any) -> bool:
    # NaN never comes out (refused); compare reprs so that -0.0 and 0.0 differ.
    return repr(a) == repr(b)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(FEATURES), max_size=3, unique=True)):
        record[name] = draw(VALUES)
    if draw(st.integers(0, 9)) == 0:
        record.pop(draw(st.sampled_from(FEATURES)))
    if draw(st.integers(0, 9)) == 0:
        record[draw(st.sampled_from(["Age", "age ", "extra", "revolving_utilization"]))] = 1
    return record


@settings(max_examples=400, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4))
def test_same_rows_and_errors_as_pydantic(batch: list[dict[str, Any]]) -> None:
    assert same(fast(batch), reference(batch))


@settings(max_examples=200, deadline=None)
@given(records())
def test_fast_check_passes_only_what_pydantic_accepts_unchanged(record: dict[str, Any]) -> None:
    row = fast_row(record)
    if row is not None:
        assert repr(row) == repr(reference([record])[0])


def test_common_records_take_the_fast_path() -> None:
    assert fast_row(GOOD) == [0.3, 45.0, 0.0, 0.35, 5400.0, 8.0, 0.0, 1.0, 0.0, None]
    assert fast_row(dict(GOOD, DebtRatio=0)) is not None  # an int for a ratio
    assert fast_row(dict(GOOD, age=45.0)) is not None  # pandas' float counts
    assert fast_row(dict(GOOD, age=45.5)) is None  # pydantic decides (and refuses)
    assert fast_row(dict(GOOD, age="45")) is None  # pydantic decides (and accepts)
    assert fast_row(dict(GOOD, age=True)) is None
    assert fast_row(dict(GOOD, DebtRatio=math.inf)) is None
    others = {k: v for k, v in GOOD.items() if k != "DebtRatio"}
    assert fast_row({**others, "debt_ratio": 0.35}) is None  # a field name, not the wire name
    assert fast_row({**GOOD, "extra": 1}) is None
    assert fast_row(others) is None


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(GOOD),
        json.dumps([GOOD, dict(GOOD, age=30, MonthlyIncome=None)]),
        json.dumps(json.dumps({"instances": [GOOD]})),
        json.dumps(
            [
                dict(GOOD, age=45.0),
                {
                    "revolving_utilization": 0.1,
                    **{
                        k: v for k, v in GOOD.items() if k != "RevolvingUtilizationOfUnsecuredLines"
                    },
                },
            ]
        ),
    ],
    ids=["one", "list", "double-encoded-instances", "slow-path"],
)
def test_parse_json_rows_matches_parse_json_applicants(body: str) -> None:
    assert parse_json_rows(body) == [a.to_row() for a in parse_json_applicants(body)]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps([GOOD, dict(GOOD, age=12)]),
        json.dumps([GOOD] * 3),
        "not json",
    ],
    ids=["invalid", "too-many", "malformed"],
)
def test_parse_json_rows_errors_match(body: str) -> None:
    with pytest.raises(PayloadError) as ours:
        parse_json_rows(body, max_applicants=2)
    with pytest.raises(PayloadError) as theirs:
        parse_json_applicants(body, max_applicants=2)
    assert type(ours.value) is type(theirs.value)
    assert ours.value.to_dict() == theirs.value.to_dict()


def test_parse_csv_rows_matches_parse_csv_applicants() -> None:
    header = ",".join(FEATURES)
    body = f"{header}\n0.3,45,0,0.35,,8,0,1,0,2\n0.1,30,1,0.2,4000,3,0,0,0,\n"
    assert parse_csv_rows(body.encode()) == [a.to_row() for a in parse_csv_applicants(body)]
    with pytest.raises(PayloadError) as exc:
        parse_csv_rows(b"\xff")
    assert exc.value.status_code == 400
