"""Timing helpers for the bench: alternating runs, medians and p99 in one process."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    name: str
    applicants: int  # per call
    runs: int
    median_s: float
    p99_s: float
    mean_s: float

    @property
    def per_applicant_s(self) -> float:
        return self.median_s / self.applicants

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_applicant_s": self.per_applicant_s}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def alternate(
    cases: dict[str, Callable[[], Any]], *, applicants: int, runs: int, warmup: int = 2
) -> dict[str, Stats]:
    """Time every case ``runs`` times, interleaved (A B C A B C ...), after a warm-up.

    Interleaving spreads any drift of a shared machine (other processes, CPU
    frequency) over every case alike, so ratios measured in one run are fair.
    """
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # no collection pauses inside the measurements (freeing is by refcount)
    names = list(cases)
    try:
        for r in range(runs):
            # Rotate the order each round: no case always runs first (after the others'
            # garbage, or on cold caches).
            for name in names[r % len(names) :] + names[: r % len(names)]:
                fn = cases[name]
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {
        name: Stats(
            name=name,
            applicants=applicants,
            runs=runs,
            median_s=statistics.median(ts),
            p99_s=percentile(ts, 99),
            mean_s=statistics.fmean(ts),
        )
        for name, ts in times.items()
    }
