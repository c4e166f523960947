"""credit_model.fast_input: the bulk check accepts exactly what validate_rows' fast check does.

Properties, over batches on both sides of the bulk threshold with every awkward
value (bools, numeric strings, integers past float range, NaN and infinities,
-0.0, whole and fractional floats for counts, nulls where they are and are not
allowed, missing, extra and snake_case keys):

* ``validated_array`` returns an array exactly when ``fast_rows`` passes the
  batch, and then the same float64 array as ``np.array(validate_rows(...))``,
  bit for bit (NaN where null, the sign of zero);
* ``input_fn`` gives the same array, or the same error, as the path it replaced
  (``to_records`` -> ``check_count`` -> ``validate_rows`` -> ``np.array``), for
  every JSON shape and for CSV.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLE_APPLICANTS
from credit_model import fast_input
from credit_model.handlers import input_fn
from credit_schema import (
    CONTENT_TYPE_CSV,
    CONTENT_TYPE_JSON,
    FEATURES,
    FIELD_SPECS,
    PayloadError,
    check_count,
    csv_records,
    csv_text,
    decode_json,
    fast_rows,
    to_records,
    validate_rows,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BULK = fast_input.BULK_MIN_RECORDS
SETTINGS = settings(
    max_examples=int(os.environ.get("CREDIT_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference_input(body: str | bytes, content_type: str, *, max_applicants: int) -> np.ndarray:
    """input_fn for JSON and CSV before the bulk check."""
    if content_type == CONTENT_TYPE_JSON:
        records = to_records(decode_json(body))
    else:
        records = csv_records(csv_text(body))
    check_count(len(records), max_applicants)
    return np.array(validate_rows(records), dtype=np.float64).reshape(-1, len(FEATURES))


def outcome(fn: Any, body: str | bytes, content_type: str, limit: int) -> tuple[Any, ...]:
    try:
        X = fn(body, content_type, max_applicants=limit)
    except PayloadError as exc:
        return ("error", type(exc).__name__, exc.status_code, exc.to_dict())
    # Bytes: bit for bit (the sign of zero, NaN where null), with dtype and shape.
    return ("rows", X.dtype.str, X.shape, X.tobytes())


# ---------------------------------------------------------------------------
# Strategies: valid values per field (from the schema's own specs), and awkward ones.


def valid_value(spec: Any) -> st.SearchStrategy[Any]:
    lo, hi = int(spec.lower), int(spec.upper)
    numbers: st.SearchStrategy[Any]
    if spec.integer:
        numbers = (
            st.integers(lo, hi)
            | st.integers(lo, hi).map(float)
            | st.just(-0.0 if lo == 0 else float(lo))
        )
    else:
        numbers = (
            st.floats(spec.lower, spec.upper)
            | st.integers(lo, hi)
            | st.sampled_from([spec.lower, spec.upper, -0.0, 5e-324])
        )
    return numbers | st.none() if spec.nullable else numbers


AWKWARD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 1_500),
    st.sampled_from([17, 18, 120, 121, 1_000, 1_001, 10**7 + 1, 10**9 + 1, 2**64, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 45.0, 45.5, 1e7 + 2, 1e9 + 1e3, -1e-300, math.nan, math.inf, -math.inf]),
    st.sampled_from(["45", "0.3", "", "null", "nan"]),
    st.lists(st.integers(), max_size=1),
    st.just({"a": 1}),
)

GOOD_RECORD = st.fixed_dictionaries({s.name: valid_value(s) for s in FIELD_SPECS})


@st.composite
def record(draw: st.DrawFn, bad: bool) -> Any:
    rec = draw(GOOD_RECORD)
    if not bad:
        return rec
    choice = draw(st.integers(0, 9))
    if choice <= 5:
        rec[draw(st.sampled_from(FEATURES))] = draw(AWKWARD)
    elif choice == 6:
        rec.pop(draw(st.sampled_from(FEATURES)))
    elif choice == 7:
        rec[draw(st.sampled_from(["Age", "extra", "revolving_utilization"]))] = 1
    elif choice == 8:  # a snake_case name: pydantic accepts it, the fast checks do not
        value = rec.pop("age")
        rec = {"age_": value, **rec} if draw(st.booleans()) else {**rec, "age": value}
    else:
        return draw(st.sampled_from([[1, 2], "x", None, 3, [rec[f] for f in FEATURES]]))
    return rec


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    n = draw(st.sampled_from([1, 2, BULK - 1, BULK, BULK + 1, 2 * BULK + 3]))
    n_bad = draw(st.sampled_from([0, 0, 1, 2]))
    out = [draw(record(bad=False)) for _ in range(n)]
    for _ in range(n_bad):
        out[draw(st.integers(0, n - 1))] = draw(record(bad=True))
    return out


# ---------------------------------------------------------------------------


@SETTINGS
@given(batches())
def test_bulk_check_passes_exactly_what_the_fast_check_passes(records: list[Any]) -> None:
    ours = fast_input.validated_array(records)
    rows = fast_rows(records)
    assert (ours is None) == (rows is None)
    if ours is not None:
        ref = np.array(validate_rows(records), dtype=np.float64)
        assert ours.dtype == np.float64 and ours.shape == (len(records), len(FEATURES))
        assert ours.tobytes() == ref.tobytes()


def _body(obj: Any, double: bool) -> bytes:
    text = json.dumps(obj)
    return (json.dumps(text) if double else text).encode()


SHAPES = [
    "records",
    "instances",
    "one",
    "index",
    "columns",
    "columns-ragged",
    "columns-reordered",
    "values",
    "instances-values",
    "split",
    "split-nested-index",
    "split-other-order",
]


@st.composite
def shapes(draw: st.DrawFn) -> Any:
    records = draw(batches())
    kind = draw(st.sampled_from(SHAPES))
    if kind == "records":
        return records
    if kind == "instances":
        return {"instances": records}
    if kind == "one":
        return records[0]
    if kind == "index":
        return {str(i): r for i, r in enumerate(records)}
    good = [r for r in records if isinstance(r, dict) and r.keys() == set(FEATURES)]
    values = [[r[f] for f in FEATURES] for r in good]
    if kind.startswith("columns"):
        columns = {f: {str(i): r[f] for i, r in enumerate(good)} for f in FEATURES}
        if good and kind == "columns-ragged":  # one label missing from one column
            del columns[draw(st.sampled_from(FEATURES))][
                draw(st.sampled_from(list(columns["age"])))
            ]
        if good and kind == "columns-reordered":  # same labels, another order: aligned by label
            name = draw(st.sampled_from(FEATURES))
            columns[name] = dict(reversed(columns[name].items()))
        return columns
    if kind == "values":
        return values
    if kind == "instances-values":
        return {"instances": values}
    index: Any = list(range(len(values)))
    if kind == "split-nested-index":
        index = [[[[[[[[[1]]]]]]]]] * len(values)
    names = list(FEATURES)
    if kind == "split-other-order":
        names.reverse()
        values = [v[::-1] for v in values]
    return {"columns": names, "index": index, "data": values}


@SETTINGS
@given(shapes(), st.booleans(), st.sampled_from([1, BULK, 50_000]))
def test_input_fn_gives_the_same_rows_or_error_as_before(
    obj: Any, double: bool, max_applicants: int
) -> None:
    body = _body(obj, double)
    assert outcome(input_fn, body, CONTENT_TYPE_JSON, max_applicants) == outcome(
        reference_input, body, CONTENT_TYPE_JSON, max_applicants
    )


@SETTINGS
@given(batches(), st.booleans())
def test_csv_gives_the_same_rows_or_error_as_before(records: list[Any], header: bool) -> None:
    good = [r for r in records if isinstance(r, dict) and r.keys() == set(FEATURES)]
    lines = [",".join(FEATURES)] if header else []
    lines += [",".join("" if r[f] is None else repr(r[f]) for f in FEATURES) for r in good]
    body = ("\n".join(lines) + "\n").encode()
    assert outcome(input_fn, body, CONTENT_TYPE_CSV, 50_000) == outcome(
        reference_input, body, CONTENT_TYPE_CSV, 50_000
    )


GOOD: dict[str, Any] = SAMPLE_APPLICANTS[-1]  # both nullable fields null


@pytest.mark.parametrize("n", [1, BULK - 1, BULK, 3 * BULK])
@pytest.mark.parametrize(
    ("field", "value", "passes"),
    [
        ("age", True, False),  # a bool is never a number here
        ("DebtRatio", False, False),
        ("age", "45", False),  # pydantic converts it: the general path
        ("age", 10**400, False),  # beyond float range
        ("MonthlyIncome", 2**64, False),
        ("DebtRatio", math.nan, False),
        ("MonthlyIncome", math.nan, False),  # NaN is not null, even where null is allowed
        ("DebtRatio", math.inf, False),
        ("DebtRatio", -math.inf, False),
        ("age", 45.5, False),
        ("NumberOfDependents", 2.5, False),
        ("age", None, False),  # not nullable
        ("age", 17, False),
        ("MonthlyIncome", 1e9 + 1, False),
        ("NumberOfDependents", -0.0, True),  # a count: 0.0
        ("DebtRatio", -0.0, True),  # a ratio: -0.0, as the per-record check
        ("age", 45.0, True),
        ("NumberOfDependents", 3, True),
        ("MonthlyIncome", 0, True),
    ],
)
def test_each_value_is_decided_as_the_per_record_check_does(
    n: int, field: str, value: Any, passes: bool
) -> None:
    records: list[Any] = [dict(GOOD, MonthlyIncome=None) for _ in range(n)]
    records[n // 2][field] = value
    ours = fast_input.validated_array(records)
    assert (ours is not None) == passes == (fast_rows(records) is not None)
    if ours is not None:
        ref = np.array(validate_rows(records), dtype=np.float64)
        assert ours.tobytes() == ref.tobytes()
        assert math.copysign(1.0, ours[n // 2, FEATURES.index(field)]) == (
            -1.0 if field == "DebtRatio" and value == 0 else 1.0
        )
    body = json.dumps(records).encode()
    assert outcome(input_fn, body, CONTENT_TYPE_JSON, 50_000) == outcome(
        reference_input, body, CONTENT_TYPE_JSON, 50_000
    )


@pytest.mark.parametrize("n", [1, 3 * BULK])
@pytest.mark.parametrize("change", ["missing", "extra", "snake_case", "value-list", "not-a-dict"])
def test_keys_and_record_types_go_to_the_general_path(n: int, change: str) -> None:
    records: list[Any] = [dict(GOOD) for _ in range(n)]
    if change == "missing":
        del records[-1]["age"]
    elif change == "extra":
        records[-1]["Age"] = 45
    elif change == "snake_case":
        records[-1]["revolving_utilization"] = records[-1].pop(FEATURES[0])
    elif change == "value-list":
        records[-1] = [GOOD[f] for f in FEATURES]
    else:
        records[-1] = "applicant"
    assert fast_input.validated_array(records) is None
    assert fast_input.records_array(records, max_records=50_000) is None
    body = json.dumps(records).encode()
    assert outcome(input_fn, body, CONTENT_TYPE_JSON, 50_000) == outcome(
        reference_input, body, CONTENT_TYPE_JSON, 50_000
    )


@pytest.mark.parametrize("orient", ["records", "columns", "split", "values"])
def test_pandas_json_takes_the_bulk_path(orient: str) -> None:
    from credit_model.synth import generate

    frame = generate(3 * BULK, seed=7)[list(FEATURES)]
    frame.loc[frame.index[::4], "MonthlyIncome"] = np.nan  # nulls, as pandas writes them
    obj = decode_json(json.dumps(frame.to_json(orient=orient)))
    ours = fast_input.records_array(obj, max_records=50_000)
    assert ours is not None
    expected = np.array(validate_rows(to_records(obj)), dtype=np.float64)
    assert ours.flags.c_contiguous
    assert ours.tobytes() == expected.tobytes()
    assert np.isnan(ours[::4, FEATURES.index("MonthlyIncome")]).all()


@pytest.mark.parametrize(
    "obj",
    [[], {}, {"instances": []}, {"instances": [GOOD], "x": 1}, "x", 3, None, [GOOD] * 3],
    ids=[
        "empty-list",
        "empty-object",
        "no-instances",
        "instances-and-more",
        "str",
        "int",
        "null",
        "too-many",
    ],
)
def test_records_array_leaves_everything_else_to_the_general_path(obj: Any) -> None:
    assert fast_input.records_array(obj, max_records=2) is None
    body = json.dumps(obj).encode()
    assert outcome(input_fn, body, CONTENT_TYPE_JSON, 2) == outcome(
        reference_input, body, CONTENT_TYPE_JSON, 2
    )


def _distinct_rows(n: int) -> list[list[int]]:
    # Whole numbers valid in every column and different in each: a value read from the
    # wrong column or row still passes every check, so only the numbers tell.
    return [[18 + (7 * i + 3 * j) % 90 for j in range(len(FEATURES))] for i in range(n)]


@pytest.mark.parametrize("n", [1, BULK, 3 * BULK])
@pytest.mark.parametrize(
    "variant",
    ["split-other-order", "columns-labels-reordered", "columns-ragged", "columns", "split"],
)
def test_columns_and_split_are_read_by_name_and_label(n: int, variant: str) -> None:
    rows = _distinct_rows(n)
    labels = [str(i) for i in range(n)]
    obj: dict[str, Any]
    if variant.startswith("split"):
        names = list(FEATURES)
        if variant == "split-other-order":
            names, rows = names[::-1], [row[::-1] for row in rows]
        obj = {"columns": names, "index": labels, "data": rows}
    else:
        obj = {
            f: dict(zip(labels, (r[j] for r in rows), strict=True)) for j, f in enumerate(FEATURES)
        }
        if variant == "columns-labels-reordered":
            obj["DebtRatio"] = dict(reversed(obj["DebtRatio"].items()))
        elif variant == "columns-ragged":
            del obj["age"][labels[-1]]
    body = json.dumps(obj).encode()
    ours = outcome(input_fn, body, CONTENT_TYPE_JSON, 50_000)
    assert ours == outcome(reference_input, body, CONTENT_TYPE_JSON, 50_000)
    if variant != "columns-ragged":
        X = input_fn(body, CONTENT_TYPE_JSON)
        assert X.tolist() == [[float(v) for v in row] for row in _distinct_rows(n)]


def reference_jsonlines(body: bytes, content_type: str, *, max_applicants: int) -> np.ndarray:
    """input_fn for JSON lines before the bulk check: to_records on every line."""
    records: list[Any] = []
    for line in body.decode("utf-8").splitlines():
        if line.strip():
            records.extend(to_records(decode_json(line)))
    check_count(len(records), max_applicants)
    return np.array(validate_rows(records), dtype=np.float64).reshape(-1, len(FEATURES))


LINE = st.one_of(
    record(bad=False),
    record(bad=False),
    record(bad=True),
    shapes(),
    st.sampled_from(
        [{"age": {"0": [[[[[[[[[1]]]]]]]]]}}, {f: [[[[[[[[1]]]]]]]] for f in FEATURES}]
    ),
)


@SETTINGS
@given(st.lists(LINE, min_size=1, max_size=2 * BULK), st.sampled_from([3, 50_000]))
def test_jsonlines_give_the_same_rows_or_error_as_before(lines: list[Any], limit: int) -> None:
    body = ("\n".join(json.dumps(line) for line in lines) + "\n\n").encode()
    ctype = "application/jsonlines"
    assert outcome(input_fn, body, ctype, limit) == outcome(reference_jsonlines, body, ctype, limit)
