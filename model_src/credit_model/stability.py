"""Population stability: baseline bins recorded at training, PSI against new data.

A variable's bins depend on its kind (:data:`Kind`):

* ``number``: quantile bins, the training deciles; a value that alone holds at least a decile's
  share (a spike, such as a zero-inflated ratio's zero) gets a bin of its own and the other values
  share the remaining bins by quantile, so a spike never swallows the rest of the distribution;
* ``integer``: one bin per value that holds at least :data:`MIN_VALUE_SHARE` of the training rows
  (at most :data:`MAX_VALUE_BINS` of them) and a tail bin above the last, so that more late
  payments among the few who had one are seen; an integer with more frequent values than that
  (an age), or whose frequent values leave more than a decile's share to the others, is binned
  as a number;
* ``category``: one bin per category, and one for categories training never saw.

Numeric bins are right-closed, ``(-inf, e0], (e0, e1], ..., (e_last, inf)``; missing values are
a bin of their own for every kind. PSI = sum((actual - expected) * ln(actual / expected)) over
the bins, each share floored at :data:`SHARE_FLOOR` so an empty bin gives a large but finite
term.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from credit_schema import ApplicantSchema
from credit_schema.text import sql_literal

from .drift import PSI_BANDS

#: A feature's kind, as the schema states it (its categories alongside for ``category``).
Kind = Literal["number", "integer", "category"]
BASELINE_QUANTILES: Final = tuple(i / 10 for i in range(1, 10))
_DECILE: Final = 1 / (len(BASELINE_QUANTILES) + 1)
SHARE_FLOOR: Final = 1e-4
#: An integer value gets its own bin when at least this share of training rows hold it.
MIN_VALUE_SHARE: Final = 0.005
#: More frequent values than this and an integer is binned by quantile: every bin adds about
#: 1/n to the PSI of a sample of n drawn like the training data, so bins must stay few.
MAX_VALUE_BINS: Final = 12
#: Label of the bin of categories training never saw.
OTHER: Final = "(other)"


@dataclass(frozen=True)
class Binning:
    """How a feature is binned: its kind, and a category feature's categories (the values it
    takes, in order) with their names."""

    kind: Kind = "number"
    categories: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()


def binnings(schema: ApplicantSchema) -> dict[str, Binning]:
    """Each feature's binning from its kind in ``schema`` (a category by its codes, as the model
    reads it, named by its categories)."""
    out: dict[str, Binning] = {}
    for name in schema.features:
        codes = schema.codes.get(name)
        if codes is not None:
            out[name] = Binning("category", tuple(float(c) for c in codes.values()), tuple(codes))
        else:
            out[name] = Binning("integer" if name in schema.integers else "number")
    return out


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def category_counts(values: Any, categories: Sequence[Any]) -> tuple[np.ndarray, int]:
    """How many ``values`` hold each category and :data:`OTHER` (last), and how many are missing
    (counts add up over chunks of the values)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":  # codes, as the model reads
        found = [int(np.count_nonzero(values == c)) for c in categories]
        missing = int(np.isnan(values).sum())
        return np.array([*found, len(values) - missing - sum(found)], np.int64), missing
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1, np.int64)
    missing = 0
    for v in values:
        if is_missing(v):
            missing += 1
        else:
            counts[index.get(v, len(categories))] += 1
    return counts, missing


def count_bins(base: dict[str, Any], values: Any) -> tuple[np.ndarray, int]:
    """How many ``values`` fall in each of ``base``'s bins (whatever their kind), and how many
    are missing."""
    if "categories" in base:
        return category_counts(values, base["categories"])
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    found = np.bincount(
        np.searchsorted(np.asarray(base["edges"], dtype=np.float64), present, side="left"),
        minlength=len(base["edges"]) + 1,
    )
    return found, int(values.size - present.size)


def float_sql(value: float) -> str:
    """``value`` as an SQL DOUBLE literal, exactly (with an exponent: a plain decimal is a
    DECIMAL in DuckDB and Trino alike)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    text = repr(float(value))
    return text if "e" in text else f"{text}e0"


def bin_sql(base: dict[str, Any], value: str, codes: dict[str, int] | None = None) -> str:
    """:func:`count_bins`' rule as an SQL expression over the column ``value``, for an engine
    to count (``GROUP BY``): the index of the bin it falls in, -1 when it is missing (NULL).
    A number (DOUBLE) falls in the first bin whose edge is at or above it (right-closed, as
    ``searchsorted(side="left")``), past the last edge in the last bin; a category (its text,
    VARCHAR; ``codes``: text -> code, as the model reads it) in its code's bin, and a text the
    schema does not list, or whose code training never saw, in :data:`OTHER` (last)."""
    if "categories" in base:
        position = {float(c): i for i, c in enumerate(base["categories"])}
        whens = [
            f"WHEN {value} = {sql_literal(text)} THEN {position[float(code)]}"
            for text, code in (codes or {}).items()
            if float(code) in position
        ]
        other = len(base["categories"])
    else:
        whens = [f"WHEN {value} <= {float_sql(e)} THEN {i}" for i, e in enumerate(base["edges"])]
        other = len(base["edges"])
    return f"CASE WHEN {value} IS NULL THEN -1 {' '.join(whens)} ELSE {other} END"


def shares(base: dict[str, Any], values: Any) -> tuple[list[float], float]:
    """Shares of ``values`` over ``base``'s bins (whatever their kind), and the share missing."""
    return shares_of(*count_bins(base, values), len(values))


def shares_of(counts: np.ndarray, missing: int, total: int) -> tuple[list[float], float]:
    """Bin counts (and the number missing) of ``total`` values as shares."""
    if total == 0:
        return [0.0] * len(counts), 0.0
    return (counts / total).tolist(), missing / total


def bin_counts(values: np.ndarray, edges: list[float]) -> tuple[np.ndarray, int]:
    """:func:`count_bins` over right-closed bins of ``edges``."""
    return count_bins({"edges": edges}, values)


def bin_shares(values: np.ndarray, edges: list[float]) -> tuple[list[float], float]:
    """Share of ``values`` in each right-closed bin of ``edges``, and the share missing."""
    return shares({"edges": edges}, values)


def _point(value: float) -> list[float]:
    """Edges of a right-closed bin holding exactly ``value``."""
    return [float(np.nextafter(value, -np.inf)), value]


def quantile_edges(present: np.ndarray) -> list[float]:
    """Decile edges, with a bin of its own for each value holding a decile's share or more."""
    if not present.size:
        return []
    values, counts = np.unique(present, return_counts=True)
    spikes = values[counts >= _DECILE * present.size]
    rest = present[~np.isin(present, spikes)]
    edges = [e for s in spikes.tolist() for e in _point(s)]
    if rest.size:
        k = round(1 / _DECILE) - len(spikes)
        edges += np.quantile(rest, [i / k for i in range(1, k)]).tolist()
    return sorted(set(edges))


def value_edges(present: np.ndarray) -> list[float] | None:
    """One right-closed bin per frequent value and a tail bin, or None when values are too many."""
    if not present.size:
        return []
    values, counts = np.unique(present, return_counts=True)
    is_frequent = counts >= MIN_VALUE_SHARE * present.size
    if is_frequent.sum() > MAX_VALUE_BINS or counts[~is_frequent].sum() > _DECILE * present.size:
        return None
    frequent = values[is_frequent]
    # The lowest frequent value's bin also holds rarer values below it (out of range anyway).
    return [float(v) for v in frequent]


def baseline(values: Any, binning: Binning = Binning()) -> dict[str, Any]:
    """The baseline of one variable (what training stores in metadata.json)."""
    if binning.kind == "category":
        cats = list(binning.categories)
        found, missing = shares({"categories": cats}, values)
        return {
            "binning": "category",
            "categories": cats,
            "labels": list(binning.labels) or [str(c) for c in cats],
            "shares": found,
            "missing_share": missing,
        }
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    edges = value_edges(present) if binning.kind == "integer" else None
    rule = "value" if edges is not None else "quantile"
    if edges is None:
        edges = quantile_edges(present)
    found, missing = bin_shares(values, edges)
    return {"binning": rule, "edges": edges, "shares": found, "missing_share": missing}


def bin_labels(base: dict[str, Any]) -> list[str]:
    """A short label per bin of ``base`` (missing excluded), for plots and tables."""
    if "categories" in base:
        return [*base.get("labels", [str(c) for c in base["categories"]]), OTHER]
    edges: list[float] = base["edges"]

    def g(v: float) -> str:
        return f"{v:,.4g}"

    if not edges:
        return ["all"]
    by_value = base.get("binning") == "value"
    labels = [g(edges[0]) if by_value else f"<={g(edges[0])}"]
    for lo, hi in itertools.pairwise(edges):
        first = lo + 1 if by_value else lo  # (lo, hi] of integers starts at lo + 1
        if hi == np.nextafter(lo, np.inf) or first == hi:
            labels.append(g(hi))  # a single value
        else:
            labels.append(f"{g(first)}-{g(hi)}")
    labels.append(f">{g(edges[-1])}")
    return labels


def psi(base: dict[str, Any], values: Any) -> float:
    """PSI of ``values`` against a :func:`baseline`."""
    return psi_of_shares(base, *shares(base, values))


def psi_of_shares(base: dict[str, Any], actual: list[float], actual_missing: float) -> float:
    """PSI of the bin shares ``actual`` (and the share missing) against a :func:`baseline`."""
    expected = [*base["shares"], base["missing_share"]]
    total = 0.0
    for a, e in zip([*actual, actual_missing], expected, strict=True):
        if a == 0.0 and e == 0.0:
            continue
        a, e = max(a, SHARE_FLOOR), max(e, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def reading(value: float) -> str:
    return next(label for bound, label in PSI_BANDS if value < bound)
