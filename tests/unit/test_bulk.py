"""credit_model.bulk: the bulk check accepts only what pydantic accepts, with the same rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLE_APPLICANTS
from credit_model.bulk import plain_rows
from credit_schema import FEATURES, ApplicantValidationError, validate_records
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

ODD_VALUES = st.sampled_from(
    [
        None, True, False, "45", "", 2.0, 2.5, -0.0, -1, 0, 17, 18, 120, 121, 1000, 1001,
        1e7, 1e7 + 1, 1e9, 1e9 + 1, math.nan, math.inf, -math.inf, 10**30, 0.1, [], {},
    ]
)  # fmt: skip


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    records: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        record = dict(draw(st.sampled_from(SAMPLE_APPLICANTS)))
        for name in draw(st.lists(st.sampled_from(FEATURES), max_size=3)):
            record[name] = draw(ODD_VALUES | st.floats(allow_nan=True) | st.integers())
        change = draw(st.sampled_from(["none", "none", "drop", "extra", "rename"]))
        if change == "drop":
            record.pop(draw(st.sampled_from(FEATURES)))
        elif change == "extra":
            record["extra"] = 1
        elif change == "rename":
            record["Age"] = record.pop("age")
        records.append(record)
    return records


def pydantic_rows(records: list[Any]) -> np.ndarray | None:
    try:
        rows = [a.to_row() for a in validate_records(records)]
    except ApplicantValidationError:
        return None
    return np.array(rows, dtype=np.float64)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
@example([{**SAMPLE_APPLICANTS[0], "age": 45.0, "NumberOfDependents": -0.0}])
@example([{**SAMPLE_APPLICANTS[0], "MonthlyIncome": math.nan}])
@example([{**SAMPLE_APPLICANTS[0], "DebtRatio": None}])
def test_bulk_rows_are_pydantics_rows_or_none(records: list[Any]) -> None:
    bulk = plain_rows(records)
    reference = pydantic_rows(records)
    if reference is None:
        assert bulk is None  # refused: pydantic words the errors
    elif bulk is not None:
        np.testing.assert_array_equal(bulk, reference)
        assert (np.signbit(bulk) == np.signbit(reference)).all()  # -0.0 as pydantic makes it


def test_plain_records_take_the_bulk_path() -> None:
    rows = plain_rows([dict(a) for a in SAMPLE_APPLICANTS] * 30)
    assert rows is not None and rows.shape == (90, len(FEATURES))
    assert np.isnan(rows[2, FEATURES.index("MonthlyIncome")])


@pytest.mark.parametrize("value", [True, "45", math.nan, 45.5, None])
def test_what_pydantic_must_word_is_left_to_it(value: Any) -> None:
    assert plain_rows([{**SAMPLE_APPLICANTS[0], "age": value}]) is None
