"""CSV cells: skipping int() for text it refuses anyway changes no value."""

from __future__ import annotations

from typing import Any

from credit_schema.payload import _csv_cell
from hypothesis import example, given, settings
from hypothesis import strategies as st


def reference(cell: str) -> Any:
    """The cell conversion before the shortcut: int(), then float(), else the text."""
    text = cell.strip()
    if text.lower() in {"", "na", "nan", "null", "none"}:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


NUMBERS = st.from_regex(
    r"\s?[+-]?[0-9_]{0,6}(\.[0-9_]{0,4})?([eE][+-]?[0-9]{0,3})?\s?", fullmatch=True
)
CELLS = st.one_of(
    NUMBERS,
    st.text(st.sampled_from("0123456789+-_.eE \tinfatyINFATY\u0661\u0662\u00a0"), max_size=8),
    st.text(max_size=6),
    st.floats().map(repr),
    st.integers().map(str),
)


@settings(max_examples=1_000, deadline=None)
@given(CELLS)
@example("1e3")
@example("1E3")
@example(" 1_000 ")
@example("\u0661\u0662")  # Arabic-Indic digits: int() reads them
@example("+5")
@example("-0")
@example("-0.0")
@example("Infinity")
@example("1e999")
def test_cells_convert_as_before(cell: str) -> None:
    ours, theirs = _csv_cell(cell), reference(cell)
    assert type(ours) is type(theirs)
    assert repr(ours) == repr(theirs)  # the sign of zero, nan


def test_a_category_named_like_a_missing_value_keeps_its_text() -> None:
    from credit_schema import compile_schema, csv_records, parse_schema

    reason = {"code": "C1", "text": "Checking account"}
    schema = compile_schema(
        parse_schema(
            {
                "name": "cats",
                "target": {"name": "y"},
                "features": [
                    {"name": "checking", "kind": "category", "categories": ["none", "low"],
                     "nullable": True, "description": "Checking", "reason": reason},
                    {"name": "n", "kind": "number", "nullable": True, "description": "N",
                     "reason": {"code": "N1", "text": "N"}},
                ],
            }
        )
    )
    with_header = csv_records("checking,n\nnone,none\n,1\nlow,\n", schema)
    assert with_header == [
        {"checking": "none", "n": None},
        {"checking": None, "n": 1},
        {"checking": "low", "n": None},
    ]
    assert csv_records(" none ,2.5\n", schema) == [{"checking": "none", "n": 2.5}]
