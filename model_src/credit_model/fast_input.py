"""Request rows as one float64 array, checked in bulk: ``input_fn``'s hot path.

:func:`validated_array` returns what ``np.array(validate_rows(records))`` returns
(``[n, 10]`` float64, NaN where null) when every record passes
:func:`credit_schema.validate_rows`' fast check as is, and None otherwise: the
caller then takes the general path, which converts what pydantic accepts and
reports every problem with the applicant and field at fault. Nothing here
raises or words an error.

For batches the checks run once per batch instead of once per value: C-level
passes over the records (types, key sets, values in model order), one
``np.array`` conversion, then ranges, whole numbers for counts and nulls checked
per column by numpy. Every bound and kind comes from
:data:`credit_schema.FIELD_SPECS` (the :class:`~credit_schema.Applicant`
model's own constraints). Small batches use the per-record check: there each
numpy call costs about as much as checking a whole record.

:func:`records_array` also skips :func:`credit_schema.to_records` for the shapes
nearly every request has (a list of applicant objects as pandas
``orient="records"`` writes it, ``{"instances": [...]}``, one applicant object;
for batches also lists of values in model order and pandas ``orient="split"``
and ``orient="columns"``, read by name and row label): when every value passes,
``to_records`` would have built the same records (not empty, nested 3 levels at
most, nothing left for it to refuse).
:func:`is_plain_record` does the same for one JSON line of ``application/jsonlines``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, Final

import numpy as np
from credit_schema import FEATURES, FIELD_SPECS, fast_row

#: Below this many records the per-record check is faster than numpy's fixed costs.
BULK_MIN_RECORDS: Final = 12

_N: Final = len(FEATURES)
_WIRE_NAMES: Final = frozenset(FEATURES)
_VALUES: Final = itemgetter(*FEATURES)
_FEATURE_LIST: Final = list(FEATURES)
_SPLIT_KEYS: Final = frozenset({"columns", "index", "data"})
_NONE: Final = type(None)
_LABEL_TYPES: Final = frozenset({str, int, float, bool, _NONE})
_VALUE_TYPES: Final = frozenset({int, float, _NONE})  # exact types: bool and str are refused
_LOWER: Final = np.array([s.lower for s in FIELD_SPECS], dtype=np.float64)
_UPPER: Final = np.array([s.upper for s in FIELD_SPECS], dtype=np.float64)
_COUNTS: Final = np.flatnonzero([s.integer for s in FIELD_SPECS])
_NULLABLE: Final = tuple(i for i, s in enumerate(FIELD_SPECS) if s.nullable)
# Added to every row: x + 0.0 turns -0.0 into 0.0 (a count, as int(-0.0)); x + -0.0 is x
# for every x, so -0.0 stays -0.0 for ratios, as the per-record check keeps it.
_SIGNS: Final = np.array([0.0 if s.integer else -0.0 for s in FIELD_SPECS], dtype=np.float64)


def _checked(flat: list[Any], n: int, *, by_column: bool = False) -> np.ndarray | None:
    """``[n, 10]`` from n rows of values (or 10 columns of n), if every value passes."""
    kinds = set(map(type, flat))
    if not kinds <= _VALUE_TYPES:
        return None
    try:
        X = np.array(flat, dtype=np.float64)  # None -> NaN
    except OverflowError:  # an integer beyond float range
        return None
    X = X.reshape(_N, n).T if by_column else X.reshape(n, _N)
    X += _SIGNS
    if _NONE in kinds:
        # Every NaN must be a null in a nullable column: as many NaNs as those nulls (a JSON
        # NaN, or a null in another column, is one NaN more).
        if by_column:
            nulls = sum(flat[i * n : (i + 1) * n].count(None) for i in _NULLABLE)
        else:
            nulls = sum(flat[i::_N].count(None) for i in _NULLABLE)
        if int(np.isnan(X).sum()) != nulls:
            return None
        in_range = ~((X < _LOWER) | (X > _UPPER))  # nulls pass here
    else:
        in_range = (X >= _LOWER) & (X <= _UPPER)  # NaN fails here; +-inf too
    if not in_range.all():
        return None
    counts = X[:, _COUNTS]
    if ((counts - np.floor(counts)) > 0).any():  # NaN (null) compares False
        return None
    return np.ascontiguousarray(X)


def _bulk(records: Sequence[Any]) -> np.ndarray | None:
    # Every record a dict of 10 keys holding the 10 features: exactly the wire names.
    if set(map(type, records)) != {dict} or set(map(len, records)) != {_N}:
        return None
    try:
        flat = list(chain.from_iterable(map(_VALUES, records)))
    except KeyError:
        return None
    return _checked(flat, len(records))


def validated_array(records: Sequence[Any]) -> np.ndarray | None:
    """``np.array(validate_rows(records))`` if every record passes the fast check, else None."""
    if len(records) >= BULK_MIN_RECORDS:
        return _bulk(records)
    # credit_schema.fast_rows, with no call of its own (a lone request's caches are cold).
    rows = list(map(fast_row, records))
    if not rows or None in rows:
        return None
    return np.array(rows, dtype=np.float64)


def _value_rows(rows: list[Any]) -> np.ndarray | None:
    # Lists of the 10 values in model order: to_records makes each one a record with the
    # wire names; nothing else in the batch (a record would be left as it is).
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {_N}:
        return None
    return _checked(list(chain.from_iterable(rows)), len(rows))


def _columns(obj: dict[str, Any], max_records: int) -> np.ndarray | None:
    # pandas orient="columns": to_records makes one record per row label; when every
    # column has the same labels in the same order, row i holds each column's i-th value.
    columns = [obj[name] for name in FEATURES]
    if set(map(type, columns)) != {dict}:
        return None
    labels = list(columns[0])
    if not BULK_MIN_RECORDS <= len(labels) <= max_records:
        return None
    if any(list(column) != labels for column in columns[1:]):
        return None
    flat = list(chain.from_iterable(column.values() for column in columns))
    return _checked(flat, len(labels), by_column=True)


def is_plain_record(obj: Any) -> bool:
    """One applicant object, wire names only, numbers and nulls: ``to_records(obj) == [obj]``.

    (Its values are still to be checked: :func:`validated_array`.)
    """
    return (
        type(obj) is dict
        and obj.keys() == _WIRE_NAMES
        and set(map(type, obj.values())) <= _VALUE_TYPES
    )


def _flat_labels(index: Any) -> bool:
    # Row labels are not read, but to_records would refuse them nested too deeply.
    return index is None or (type(index) is list and set(map(type, index)) <= _LABEL_TYPES)


def records_array(obj: Any, *, max_records: int) -> np.ndarray | None:
    """``np.array(validate_rows(to_records(obj)))`` for records that pass as is, else None.

    Records: a list of applicant objects, ``{"instances": [...]}`` of them, one
    applicant object. From :data:`BULK_MIN_RECORDS` records on, also lists of
    values in model order (bare, in ``{"instances": [...]}`` or in pandas
    ``orient="split"`` with the features in model order) and pandas
    ``orient="columns"``. None too when there are no records or more than
    ``max_records`` (the general path refuses those).
    """
    if type(obj) is list:
        rows = obj
    elif type(obj) is dict:
        if len(obj) == 1 and type(obj.get("instances")) is list:
            rows = obj["instances"]
        elif obj.keys() == _WIRE_NAMES:
            if all(type(v) is dict for v in obj.values()):
                return _columns(obj, max_records)
            rows = [obj]  # one applicant (its values are checked to be numbers or null)
        elif (
            obj.keys() <= _SPLIT_KEYS
            and type(obj.get("columns")) is list
            and obj["columns"] == _FEATURE_LIST
            and type(obj.get("data")) is list
            and _flat_labels(obj.get("index"))
        ):
            rows = obj["data"]
        else:
            return None
    else:
        return None
    if not 0 < len(rows) <= max_records:
        return None
    if type(rows[0]) is list:
        return _value_rows(rows) if len(rows) >= BULK_MIN_RECORDS else None
    return validated_array(rows)
