"""Population stability: baseline bins recorded at training, PSI against new data.

The baseline of a variable is its training deciles (distinct edges only, so count
features get fewer bins), the share of training rows in each right-closed bin
``(-inf, e0], (e0, e1], ..., (e_last, inf)``, and the share missing (its own bin).
PSI = sum((actual - expected) * ln(actual / expected)) over the bins, each share
floored at :data:`SHARE_FLOOR` so an empty bin gives a large but finite term.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from .drift import PSI_BANDS

BASELINE_QUANTILES: Final = tuple(i / 10 for i in range(1, 10))
SHARE_FLOOR: Final = 1e-4


def bin_shares(values: np.ndarray, edges: list[float]) -> tuple[list[float], float]:
    """Share of ``values`` in each right-closed bin of ``edges``, and the share missing."""
    values = np.asarray(values, dtype=np.float64)
    counts, missing = bin_counts(values, edges)
    return shares_of(counts, missing, values.size)


def shares_of(counts: np.ndarray, missing: int, total: int) -> tuple[list[float], float]:
    """Bin counts (and the number missing) of ``total`` values as shares."""
    if total == 0:
        return [0.0] * len(counts), 0.0
    return (counts / total).tolist(), float(1.0 - (total - missing) / total)


def baseline(values: np.ndarray) -> dict[str, Any]:
    """The baseline of one variable (what training stores in metadata.json)."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, BASELINE_QUANTILES)).tolist() if present.size else []
    shares, missing = bin_shares(values, edges)
    return {"edges": edges, "shares": shares, "missing_share": missing}


def bin_counts(values: np.ndarray, edges: list[float]) -> tuple[np.ndarray, int]:
    """How many ``values`` fall in each right-closed bin of ``edges``, and how many are missing
    (what :func:`bin_shares` divides: counts add up over chunks of the values)."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), present, side="left"),
        minlength=len(edges) + 1,
    )
    return counts, int(values.size - present.size)


def psi(base: dict[str, Any], values: np.ndarray) -> float:
    """PSI of ``values`` against a :func:`baseline`."""
    return psi_of_shares(base, *bin_shares(values, base["edges"]))


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
