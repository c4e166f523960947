"""A missing cell (empty, NA, NaN, null, None) reads the same in the SDK, the CLI and the API.

``score_many(list(csv.DictReader(f)))`` hands the SDK the cells as text; ``credit-explainer
score f`` parses them with the API's CSV code. Both must accept and refuse the same rows.
"""

from __future__ import annotations

import csv
import io

import pytest
from credit_explainer._inputs import validate_applicants
from credit_schema import FEATURES, NULLABLE_FEATURES, csv_records, validate_records

ROW = {name: "1" for name in FEATURES} | {"age": "45"}
MISSING = ["", "NA", "NaN", " nan ", "null", "None"]


def _csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(FEATURES))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@pytest.mark.parametrize("cell", MISSING)
@pytest.mark.parametrize("name", sorted(NULLABLE_FEATURES))
def test_a_missing_cell_of_a_nullable_feature_is_null_in_the_sdk_as_in_the_cli(
    name: str, cell: str
) -> None:
    text = _csv([ROW | {name: cell}])
    by_cli = validate_records(csv_records(text))
    by_sdk, problems = validate_applicants(list(csv.DictReader(io.StringIO(text))))
    assert problems == {}
    assert by_sdk == by_cli
    assert by_cli[0].to_features()[name] is None


@pytest.mark.parametrize("cell", ["", "NA", "NaN"])
@pytest.mark.parametrize("name", [f for f in FEATURES if f not in NULLABLE_FEATURES])
def test_a_missing_cell_elsewhere_is_refused_in_words_that_hold(name: str, cell: str) -> None:
    text = _csv([ROW | {name: cell}])
    _, by_sdk = validate_applicants(list(csv.DictReader(io.StringIO(text))))
    _, by_cli = validate_applicants(csv_records(text))
    [detail] = by_sdk[0]
    assert [(d.field, d.message) for d in by_cli[0]] == [(detail.field, detail.message)]
    assert detail.field == name
    # The field at fault is not among those the message says may be empty.
    may = detail.message.partition("only ")[2]
    assert may and name not in may.split() and all(n in may for n in NULLABLE_FEATURES)
