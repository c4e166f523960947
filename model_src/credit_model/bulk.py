"""Large batches checked in bulk, by the schema's own rules (:attr:`ApplicantSchema.rules`).

Records that pass as they are (exactly the wire names; ints, floats and nulls only; in
range; whole numbers for counts; null only where allowed) become rows in a few numpy
operations instead of one pydantic model each. Anything else returns None and the batch
goes through pydantic, which converts what it accepts and words every error, so the
answer is the same either way (a property test compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any, Final, NamedTuple

import numpy as np
from credit_schema import BUILTIN, ApplicantSchema

from .forest import FloatArray

_PLAIN: Final = frozenset({int, float, type(None)})  # exact types: bool and str go to pydantic


class _Rules(NamedTuple):
    n: int
    values: Any
    lower: FloatArray
    upper: FloatArray
    counts: Any
    nullable: tuple[int, ...]


@cache
def _rules(schema: ApplicantSchema) -> _Rules:
    rules = schema.rules
    return _Rules(
        len(rules),
        itemgetter(*schema.features) if len(rules) > 1 else lambda r: (r[schema.features[0]],),
        np.array([r.lower for r in rules]),
        np.array([r.upper for r in rules]),
        np.array([r.integer for r in rules]),
        tuple(i for i, r in enumerate(rules) if r.nullable),
    )


def plain_rows(records: Sequence[Any], schema: ApplicantSchema = BUILTIN) -> FloatArray | None:
    """Rows ``[n, features]`` (NaN where null) if every record passes as it is, else None.

    A schema with categories never passes here: their texts go through pydantic."""
    if schema.categorical:
        return None
    _N, _VALUES, _LOWER, _UPPER, _COUNTS, _NULLABLE = _rules(schema)
    if set(map(type, records)) != {dict} or set(map(len, records)) != {_N}:
        return None
    try:
        flat = list(chain.from_iterable(map(_VALUES, records)))
    except KeyError:  # another key in a wire name's place
        return None
    kinds = set(map(type, flat))
    if not kinds <= _PLAIN:
        return None
    try:
        X = np.array(flat, dtype=np.float64).reshape(len(records), _N)  # None -> NaN
    except OverflowError:  # an integer beyond float range
        return None
    # Every NaN must be a null in a nullable column (a JSON NaN is one NaN more).
    nulls = sum(flat[i::_N].count(None) for i in _NULLABLE) if type(None) in kinds else 0
    missing = np.isnan(X)
    if int(missing.sum()) != nulls:
        return None
    if ((X < _LOWER) | (X > _UPPER)).any():  # NaN compares False: nulls pass
        return None
    counts = np.where(missing, 0.0, X)[:, _COUNTS]
    if (counts != np.floor(counts)).any():
        return None
    X[:, _COUNTS] += 0.0  # -0.0 -> 0.0 for counts, as int(-0.0)
    return X
