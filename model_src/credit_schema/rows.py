"""Validated rows of floats, fast: the model server's hot path.

:func:`validate_rows` accepts exactly what :func:`~credit_schema.validate_records`
accepts and returns what ``[a.to_row() for a in validate_records(records)]``
returns, with the same errors, but does not build an :class:`Applicant` per
record: a plain check, derived from the :class:`Applicant` model's own field
constraints, passes the common case (wire names, numbers within range, whole
numbers for counts, null where allowed) in about a microsecond per record. Any record
it does not pass as is (a snake_case name, ``"45"`` as a string, ``45.5`` for a
count, a bool, a value out of range, a missing or unknown field...) sends the
whole batch through the pydantic model, which converts what it accepts and
reports every problem with the applicant index and field, as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Final, NamedTuple, get_args, get_origin

from annotated_types import Ge, Le
from pydantic.fields import FieldInfo

from .applicant import ALIAS_BY_FIELD, FEATURES, Applicant
from .payload import (
    DEFAULT_MAX_APPLICANTS,
    check_count,
    csv_records,
    csv_text,
    decode_json,
    to_records,
    validate_records,
)

Row = list[float | None]


class FieldSpec(NamedTuple):
    """What the fast check accepts for one field, derived from :class:`Applicant`."""

    name: str  # wire name
    integer: bool  # a count: ints, and floats with no fractional part, as pydantic
    lower: float
    upper: float
    nullable: bool


def _constraints(annotation: Any, metadata: Sequence[Any]) -> tuple[type, float, float, bool]:
    """(base type, ge, le, nullable) of one field, from its annotation and metadata."""
    base: type | None = None
    lower = upper = math.nan
    nullable = False
    todo: list[Any] = [annotation, *metadata]
    while todo:
        item = todo.pop()
        if item is type(None):
            nullable = True
        elif item in (int, float):
            base = item
        elif isinstance(item, Ge):
            lower = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, Le):
            upper = float(item.le)  # type: ignore[arg-type]
        elif isinstance(item, FieldInfo):
            todo.extend(item.metadata)
        elif get_origin(item) is Annotated or get_args(item):
            todo.extend(get_args(item))
    if base is None or math.isnan(lower) or math.isnan(upper):
        raise TypeError(f"cannot derive a fast check from {annotation!r} {metadata!r}")
    return base, lower, upper, nullable


def _specs() -> tuple[FieldSpec, ...]:
    specs = []
    for field, info in Applicant.model_fields.items():
        base, lower, upper, nullable = _constraints(info.annotation, info.metadata)
        specs.append(FieldSpec(ALIAS_BY_FIELD[field], base is int, lower, upper, nullable))
    assert tuple(s.name for s in specs) == FEATURES
    return tuple(specs)


#: One :class:`FieldSpec` per feature, in model order: the single place the fast checks
#: (this module's and the model server's vectorised one) take ranges and kinds from.
FIELD_SPECS: Final = _specs()
_N: Final = len(FEATURES)


def fast_row(record: Any) -> Row | None:
    """The record as a row if it passes as is, else None (pydantic decides)."""
    # Exactly the wire names: as many keys, and each one found (a KeyError otherwise). No
    # comparison of key sets first: for a lone request it is a few microseconds more.
    if type(record) is not dict or len(record) != _N:
        return None
    row: Row = []
    try:
        for name, integer, lower, upper, nullable in FIELD_SPECS:
            value = record[name]
            kind = type(value)
            if kind is float:
                # NaN fails both comparisons; +-inf fail one of them.
                if not lower <= value <= upper:
                    return None
                if integer:
                    # pydantic takes 2.0 for a count (pandas writes counts with NaN as floats).
                    if not value.is_integer():
                        return None
                    value += 0.0  # -0.0 -> 0.0, as int(-0.0)
                row.append(value)
            elif kind is int:
                if not lower <= value <= upper:
                    return None
                row.append(float(value))
            elif value is None and nullable:
                row.append(None)
            else:
                return None
    except KeyError:  # another key in place of a wire name
        return None
    return row


def fast_rows(records: Sequence[Any]) -> list[Row] | None:
    """The rows if every record passes the fast check as is, else None (nothing raised)."""
    rows: list[Row] = []
    for record in records:
        row = fast_row(record)
        if row is None:
            return None
        rows.append(row)
    return rows


def validate_rows(records: Sequence[Any]) -> list[Row]:
    """Validate normalised records into rows of floats in model order (None where missing).

    Same acceptance, values and :class:`ApplicantValidationError` as
    :func:`validate_records` followed by :meth:`Applicant.to_row`.
    """
    rows = fast_rows(records)
    if rows is None:
        return [applicant.to_row() for applicant in validate_records(records)]
    return rows


def parse_json_rows(
    body: str | bytes | Any, *, max_applicants: int = DEFAULT_MAX_APPLICANTS
) -> list[Row]:
    """:func:`~credit_schema.parse_json_applicants`, returning rows (see :func:`validate_rows`)."""
    obj = decode_json(body) if isinstance(body, str | bytes | bytearray) else body
    records = to_records(obj)
    check_count(len(records), max_applicants)
    return validate_rows(records)


def parse_csv_rows(body: str | bytes, *, max_applicants: int = DEFAULT_MAX_APPLICANTS) -> list[Row]:
    """:func:`~credit_schema.parse_csv_applicants`, returning rows (see :func:`validate_rows`)."""
    records = csv_records(csv_text(body))
    check_count(len(records), max_applicants)
    return validate_rows(records)
