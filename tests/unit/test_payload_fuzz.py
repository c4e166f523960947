"""Property-based fuzzing of the payload normaliser (``credit_schema.payload``).

Two properties, for every input hypothesis can think of:

* every accepted shape (records, value lists, pandas columns/index/split,
  ``{"instances": ...}``, double-encoded, CSV with and without a header, the
  Kaggle file layout) gives back exactly the applicants that were encoded;
* anything else is a :class:`PayloadError` with a 4xx status and a message that
  never repeats an applicant's value: never another exception.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pandas as pd
import pytest
from credit_schema import (
    FEATURES,
    MAX_JSON_DEPTH,
    MAX_STRING_CHARS,
    TARGET,
    Applicant,
    ApplicantValidationError,
    MalformedPayloadError,
    PayloadError,
    PayloadTooLargeError,
    check_body_size,
    parse_csv_applicants,
    parse_json_applicants,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# CI-sized: the whole module runs in a few seconds. A long run: CREDIT_FUZZ_EXAMPLES=5000.
settings.register_profile(
    "credit-fuzz",
    max_examples=int(os.environ.get("CREDIT_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("credit-fuzz")

count = st.integers(0, 1_000)
ratio = st.floats(0.0, 10_000_000.0, allow_nan=False, allow_infinity=False)

APPLICANT = st.fixed_dictionaries(
    {
        "RevolvingUtilizationOfUnsecuredLines": ratio,
        "age": st.integers(18, 120),
        "NumberOfTime30-59DaysPastDueNotWorse": count,
        "DebtRatio": ratio,
        "MonthlyIncome": st.none() | st.floats(0.0, 1e9, allow_nan=False) | st.integers(0, 10**9),
        "NumberOfOpenCreditLinesAndLoans": count,
        "NumberOfTimes90DaysLate": count,
        "NumberRealEstateLoansOrLines": count,
        "NumberOfTime60-89DaysPastDueNotWorse": count,
        "NumberOfDependents": st.none() | count,
    }
)
BATCH = st.lists(APPLICANT, min_size=1, max_size=8)


def expected_rows(batch: list[dict[str, Any]]) -> list[list[float | None]]:
    return [[None if a[f] is None else float(a[f]) for f in FEATURES] for a in batch]


def rows(applicants: list[Applicant]) -> list[list[float | None]]:
    return [a.to_row() for a in applicants]


def _cell(v: Any) -> str:
    return "" if v is None else repr(v)


def encodings(batch: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    """Every accepted wire shape of one batch: name -> (content kind, body)."""
    labels = [str(i * 3 + 1) for i in range(len(batch))]  # non-contiguous row labels
    values = [[a[f] for f in FEATURES] for a in batch]
    records = json.dumps(batch)
    header = ",".join(FEATURES)
    lines = [",".join(_cell(v) for v in row) for row in values]
    kaggle = ",".join(['""', TARGET, *FEATURES])
    out: dict[str, tuple[str, Any]] = {
        "records": ("json", records),
        "records-bytes": ("json", records.encode()),
        "records-parsed": ("json", batch),
        "value-lists": ("json", json.dumps(values)),
        "columns": (
            "json",
            json.dumps(
                {f: dict(zip(labels, (a[f] for a in batch), strict=True)) for f in FEATURES}
            ),
        ),
        "index": ("json", json.dumps(dict(zip(labels, batch, strict=True)))),
        "split": (
            "json",
            json.dumps({"columns": list(FEATURES), "index": labels, "data": values}),
        ),
        "instances-records": ("json", json.dumps({"instances": batch})),
        "instances-values": ("json", json.dumps({"instances": values})),
        "double-encoded": ("json", json.dumps(records)),
        "triple-encoded": ("json", json.dumps(json.dumps(records))),
        "csv-header": ("csv", "\n".join([header, *lines]) + "\n"),
        "csv-no-header": ("csv", "\r\n".join(lines)),
        "csv-kaggle": (
            "csv",
            "\n".join([kaggle, *(f"{i + 1},0,{line}" for i, line in enumerate(lines))]).encode(),
        ),
    }
    if len(batch) == 1:
        out["one-object"] = ("json", json.dumps(batch[0]))
    return out


def parse(kind: str, body: Any) -> list[Applicant]:
    return parse_csv_applicants(body) if kind == "csv" else parse_json_applicants(body)


@given(BATCH)
def test_every_accepted_shape_round_trips_exactly(batch: list[dict[str, Any]]) -> None:
    want = expected_rows(batch)
    for name, (kind, body) in encodings(batch).items():
        assert rows(parse(kind, body)) == want, name


@settings(max_examples=40)
@given(BATCH)
def test_pandas_own_json_and_csv_round_trip(batch: list[dict[str, Any]]) -> None:
    # What callers really send: pandas' writers (the original blog used to_json(orient="records")).
    df = pd.DataFrame(batch, columns=list(FEATURES), index=[i * 2 for i in range(len(batch))])
    want = expected_rows(batch)
    for orient in ("records", "columns", "index", "split", "values"):
        got = rows(parse_json_applicants(df.to_json(orient=orient, double_precision=15)))
        for g, w in zip(got, want, strict=True):
            assert [x is None for x in g] == [x is None for x in w], orient
            assert [x for x in g if x is not None] == pytest.approx(
                [x for x in w if x is not None], rel=1e-14
            ), orient
    got = rows(parse_json_applicants(json.dumps(df.to_json(orient="records", double_precision=15))))
    assert len(got) == len(batch)
    for csv_text in (df.to_csv(), df.to_csv(index=False), df.to_csv(index=False, header=False)):
        assert rows(parse_csv_applicants(csv_text)) == want


SENTINEL = "zq-secret-7731"  # a value that must never come back in an error


def check_refusal(exc: PayloadError, *, sent: str = SENTINEL) -> None:
    assert 400 <= exc.status_code < 500
    assert exc.message
    body = json.dumps(exc.to_dict(request_id="r"))
    assert sent not in body
    assert len(body) < 200_000  # never an echo of a large body


def must_be_handled(kind: str, body: Any) -> list[Applicant] | None:
    try:
        applicants = parse(kind, body)
    except PayloadError as exc:
        check_refusal(exc)
        return None
    return applicants


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([SENTINEL, "45", "NaN", "1e999", "", " "])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from([*FEATURES, "instances", "columns", "data", "index", "Age", "0"])
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@given(json_values)
def test_any_json_value_is_applicants_or_a_4xx(obj: Any) -> None:
    must_be_handled("json", obj)
    try:
        text = json.dumps(obj)
    except ValueError:
        return
    must_be_handled("json", text)
    must_be_handled("json", json.dumps(text))


@given(st.binary(max_size=300))
def test_any_bytes_are_applicants_or_a_4xx(body: bytes) -> None:
    must_be_handled("json", body)
    must_be_handled("csv", body)


@given(st.text(max_size=300))
def test_any_text_is_applicants_or_a_4xx(body: str) -> None:
    must_be_handled("json", body)
    must_be_handled("csv", body)


@given(BATCH, st.data())
def test_mutated_applicants_are_refused_with_applicant_and_field(
    batch: list[dict[str, Any]], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(batch) - 1), label="applicant")
    field = data.draw(st.sampled_from(FEATURES), label="field")
    bad = data.draw(
        st.sampled_from(
            [SENTINEL, True, -1, 10**12, [1], {"x": 1}, "1e999", float("nan"), float("inf")]
        )
        | st.just("DROP"),
        label="bad value",
    )
    mutated = [dict(a) for a in batch]
    if bad == "DROP":
        del mutated[i][field]
    else:
        mutated[i][field] = bad
    for kind, body in (("json", mutated), ("json", json.dumps(mutated, allow_nan=True))):
        with pytest.raises(ApplicantValidationError) as info:
            parse(kind, body)
        check_refusal(info.value)
        assert (i, field) in {(d.applicant, d.field) for d in info.value.details}


@given(BATCH, st.text(min_size=1, max_size=30).filter(lambda k: k not in FEATURES))
def test_unknown_fields_are_refused_never_ignored(batch: list[dict[str, Any]], key: str) -> None:
    from credit_schema import FIELD_BY_ALIAS

    if key in FIELD_BY_ALIAS.values():
        return  # the snake_case attribute names are accepted aliases
    mutated = [dict(a) for a in batch]
    mutated[-1][key] = 1
    with pytest.raises(ApplicantValidationError) as info:
        parse_json_applicants(mutated)
    assert (len(batch) - 1, key, "extra_forbidden") in {
        (d.applicant, d.field, d.type) for d in info.value.details
    }


# Limits: each refused before the work it protects, with its status.


def test_body_size_limit_is_413() -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        check_body_size(60 * 1024 * 1024, 6 * 1024 * 1024)
    assert info.value.status_code == 413


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 50, 900, 200_000])
def test_nesting_past_the_limit_is_400(depth: int) -> None:
    with pytest.raises(MalformedPayloadError, match="nested too deeply"):
        parse_json_applicants("[" * depth + "]" * depth)
    with pytest.raises(MalformedPayloadError, match="nested too deeply"):
        parse_json_applicants('{"a":' * depth + "1" + "}" * depth)


@pytest.mark.parametrize("text", ["NaN", "-Infinity", "1e999", "-1e999", "9" * 5_000])
@pytest.mark.parametrize("field", ["DebtRatio", "age", "MonthlyIncome"])
def test_numbers_too_big_or_not_finite_are_422_with_the_field(text: str, field: str) -> None:
    body = json.dumps([{f: 1 for f in FEATURES}]).replace(f'"{field}": 1', f'"{field}": {text}')
    body = body.replace('"age": 1', '"age": 40')
    with pytest.raises(ApplicantValidationError) as info:
        parse_json_applicants(body)
    assert [(d.applicant, d.field) for d in info.value.details] == [(0, field)]


@pytest.mark.parametrize("n", [MAX_STRING_CHARS + 1, 1_000_000])
def test_long_strings_are_422_before_parsing(n: int) -> None:
    record = dict.fromkeys(FEATURES, 1) | {"age": 40, "DebtRatio": "1" * n}
    with pytest.raises(ApplicantValidationError) as info:
        parse_json_applicants(json.dumps([record, record]))
    assert [(d.applicant, d.field, d.type) for d in info.value.details] == [
        (0, "DebtRatio", "string_too_long"),
        (1, "DebtRatio", "string_too_long"),
    ]
    assert "1" * 100 not in json.dumps(info.value.to_dict())


def test_batch_limit_is_checked_before_validation() -> None:
    # 10,000 invalid applicants: 413 for the count, not 10,000 validation problems.
    with pytest.raises(PayloadTooLargeError):
        parse_json_applicants([{"bad": 1}] * 10_000, max_applicants=100)


def test_split_with_unhashable_columns_is_400() -> None:
    with pytest.raises(MalformedPayloadError):
        parse_json_applicants({"columns": [[1]], "data": [[1]]})


def test_rows_survive_float_round_trip() -> None:
    # repr() round-trips every float exactly; the normaliser must not re-round.
    x = math.nextafter(0.3, 1.0)
    (a,) = parse_json_applicants([dict.fromkeys(FEATURES, 0) | {"age": 30, "DebtRatio": x}])
    assert a.to_row()[3] == x


def test_the_json_schema_states_every_range_in_standard_keywords() -> None:
    # OpenAPI clients and schemathesis read minimum/maximum; pydantic's "ge"/"le" mean nothing.
    props = Applicant.model_json_schema(by_alias=True)["properties"]
    for name in FEATURES:
        schema = props[name]
        options = schema.get("anyOf", [schema])
        numeric = [o for o in options if o.get("type") in ("integer", "number")]
        assert len(numeric) == 1, name
        assert {"minimum", "maximum"} <= numeric[0].keys(), (name, numeric[0])
        assert not {"ge", "le"} & numeric[0].keys(), name
    assert (props["age"]["minimum"], props["age"]["maximum"]) == (18, 120)
