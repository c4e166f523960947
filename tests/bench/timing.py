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
    _, times = _rounds(cases, runs=runs, warmup=warmup)
    return {name: _stats(name, applicants, ts) for name, ts in times.items()}


def after_reference(
    reference: Callable[[], Any],
    cases: dict[str, Callable[[], Any]],
    *,
    applicants: int,
    runs: int,
    warmup: int = 2,
) -> tuple[Stats, dict[str, Stats]]:
    """Time every case ``runs`` times, each run right after a run of ``reference``.

    Every measurement of every case starts from the state the reference leaves
    (its code and data in the CPU caches, ours evicted), so cases compare with
    one another and with the reference on equal terms. The case order rotates
    each round. Returns the reference's statistics (all its runs) and each case's.
    """
    ref_times, times = _rounds(cases, runs=runs, warmup=warmup, before=reference)
    return _stats("reference", applicants, ref_times), {
        name: _stats(name, applicants, ts) for name, ts in times.items()
    }


def _rounds(
    cases: dict[str, Callable[[], Any]],
    *,
    runs: int,
    warmup: int,
    before: Callable[[], Any] | None = None,
) -> tuple[list[float], dict[str, list[float]]]:
    """``runs`` rounds over the cases (each preceded by ``before`` when given): the times."""
    for fn in ([before] if before is not None else []) + list(cases.values()):
        for _ in range(warmup):
            fn()
    before_times: list[float] = []
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
                if before is not None:
                    start = time.perf_counter()
                    before()
                    before_times.append(time.perf_counter() - start)
                fn = cases[name]
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return before_times, times


def _stats(name: str, applicants: int, times: list[float]) -> Stats:
    return Stats(
        name=name,
        applicants=applicants,
        runs=len(times),
        median_s=statistics.median(times),
        p99_s=percentile(times, 99),
        mean_s=statistics.fmean(times),
    )
