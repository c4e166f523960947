"""The fast exact explainer: a compiled forest, its fill values, and the kernel.

Gives the same numbers as ``shap.TreeExplainer(forest)`` with its default
``feature_perturbation="tree_path_dependent"`` (class 1) and the same
probabilities as ``pipeline.predict_proba(X)[:, 1]``, to 1e-9.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from credit_schema.responses import Space

from .ensemble import expit
from .forest import (
    CHUNK,
    CompiledForest,
    FloatArray,
    UnsupportedModelError,
    compile_ensemble,
    compile_forest,
)
from .kernel import compile_kernel
from .settings import env_int

#: Requests of at least this many applicants are split across threads.
PARALLEL_MIN_APPLICANTS: Final = 256
#: Threads for large requests (default: the CPUs this process may use).
THREADS_ENV: Final = "CREDIT_EXPLAINER_THREADS"
_BLOCK: Final = 8  # a thread's share is whole blocks of the kernel


def default_threads() -> int:
    """:data:`THREADS_ENV`, else the CPUs this process may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return env_int(THREADS_ENV, cpus)


def tables_space(compiled: CompiledForest) -> Space:
    """Where a compiled model's SHAP values add up: the probability (forests) or its
    log-odds (boosting)."""
    return "log_odds" if compiled.logistic else "probability"


class FastTreeExplainer:
    """Exact path-dependent TreeSHAP of an (imputer +) binary forest, from its compiled tables.

    ``explain(X) -> (raw[n], shap[n, n_features])`` on raw inputs (NaN where missing,
    filled with ``fill_values``, the imputer's statistics, where given; else each split
    sends them its default way). ``raw`` is the probability for a forest, the margin
    (log-odds) for boosting, in which the SHAP values add up; :meth:`explain_checked` also
    returns the largest additivity gap, measured in the kernel. Requests of
    :data:`PARALLEL_MIN_APPLICANTS` or more are split across ``threads`` threads (the
    kernel runs without the GIL).
    """

    def __init__(
        self,
        compiled: CompiledForest,
        *,
        fill_values: npt.ArrayLike | None = None,
        threads: int | None = None,
    ) -> None:
        self.compiled = compiled
        n = compiled.n_features
        fill = np.full(n, np.nan) if fill_values is None else np.asarray(fill_values, np.float64)
        if fill.shape != (n,):
            raise UnsupportedModelError("fill values must be one number (or NaN) per feature")
        self.fill_values = np.ascontiguousarray(fill)
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self.base_value: float = compiled.base_value
        #: Where the SHAP values add up (:func:`tables_space`).
        self.space: Space = tables_space(compiled)
        self._kernel = compile_kernel()
        self._pool: ThreadPoolExecutor | None = None
        self.explain(np.zeros((1, n)))

    @classmethod
    def from_model(cls, forest: Any, **kwargs: Any) -> FastTreeExplainer:
        """Compile a fitted sklearn forest (raises :class:`UnsupportedModelError`)."""
        return cls(compile_forest(forest), **kwargs)

    def explain(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        proba, phi, _ = self.explain_checked(X)
        return proba, phi

    def explain_checked(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray, float]:
        """``(proba, shap, gap)``: :meth:`explain` and the largest additivity gap in
        :attr:`space` (``|base + sum(shap) - proba|``, or ``- logit(proba)``)."""
        raw, phi, gap = self.explain_raw(X)
        return (expit(raw) if self.compiled.logistic else raw), phi, gap

    def explain_raw(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray, float]:
        """``(raw, shap, gap)``: the raw output (probability or margin) the SHAP values add
        up to, and ``max |base + sum(shap) - raw|``."""
        x = np.ascontiguousarray(X, dtype=np.float64)
        m = self.compiled.n_features
        if x.ndim != 2 or x.shape[1] != m:
            raise ValueError(f"expected an array of shape (n, {m}), got {x.shape}")
        n = x.shape[0]
        proba = np.empty(n)
        phi = np.empty((n, self.compiled.table.shape[2]))
        threads = min(self.threads, n // (PARALLEL_MIN_APPLICANTS // 2))
        if n < PARALLEL_MIN_APPLICANTS or threads < 2:
            gap = self._run(x, proba, phi)
        else:
            # One chunk of whole blocks per thread; this thread explains the first itself.
            step = -(-n // (threads * _BLOCK)) * _BLOCK
            if self._pool is None or self._pool._max_workers < threads - 1:
                self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="treeshap")
            chunks = [(a, min(a + step, n)) for a in range(0, n, step)]
            others = [
                self._pool.submit(self._run, x[a:b], proba[a:b], phi[a:b]) for a, b in chunks[1:]
            ]
            a, b = chunks[0]
            gaps = [self._run(x[a:b], proba[a:b], phi[a:b])] + [f.result() for f in others]
            gap = max(gaps, key=lambda g: math.inf if math.isnan(g) else g)
        return proba, phi[:, :m], float(gap)

    def _run(self, x: FloatArray, proba: FloatArray, phi: FloatArray) -> float:
        c = self.compiled
        gap = self._kernel(
            x, self.fill_values, c.float32_inputs, c.max_nodes,
            c.split_start, c.split_node, c.split_feature, c.split_threshold,
            c.split_left, c.split_right, c.split_bit, c.split_missing,
            c.entry_start, c.entry_node, c.entry_feature, c.entry_threshold, c.entry_missing,
            c.entry_value, c.entry_base, 1 << c.depth, c.table, c.base_value,
            c.divisor, c.offset, proba, phi,
        )  # fmt: skip
        return float(gap)


def imputer_and_forest(pipeline: Any) -> tuple[FloatArray | None, Any]:
    """``(fill values or None, forest)`` of a forest or ``Pipeline([SimpleImputer, forest])``.

    Raises :class:`UnsupportedModelError` for anything else (the caller falls back to shap).
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline):
        return None, pipeline
    steps = [step for _, step in pipeline.steps if step not in (None, "passthrough")]
    if len(steps) == 1:
        return None, steps[0]
    if len(steps) != 2 or not isinstance(steps[0], SimpleImputer):
        raise UnsupportedModelError("only Pipeline([SimpleImputer, forest]) is covered")
    imputer = steps[0]
    stats = np.asarray(getattr(imputer, "statistics_", None), dtype=np.float64)
    missing = imputer.missing_values
    if (
        imputer.add_indicator
        or not (isinstance(missing, float) and math.isnan(missing))
        or stats.ndim != 1
        or not np.all(np.isfinite(stats))
    ):
        raise UnsupportedModelError(
            "the imputer must fill NaN with finite statistics, no indicator"
        )
    return stats, steps[1]


def fast_explainer_for(pipeline: Any, *, threads: int | None = None) -> FastTreeExplainer:
    """A :class:`FastTreeExplainer` for ``forest``, ``Pipeline([imputer, forest])`` or a
    boosted model of any family (:mod:`credit_model.families`)."""
    from . import families

    name = families.of(pipeline)
    if name != "rf":
        ensemble = families.module(name).to_ensemble(pipeline)
        return FastTreeExplainer(compile_ensemble(ensemble), threads=threads)
    fill, forest = imputer_and_forest(pipeline)
    return FastTreeExplainer(compile_forest(forest), fill_values=fill, threads=threads)


def explainer_in_space(pipeline: Any, space: str, background: Any = None) -> Any:
    """The fast explainer of a fitted model in ``space``: a boosted model's probability
    space is interventional against ``background``; its log-odds and the forest's
    probability are path-dependent (:func:`fast_explainer_for`)."""
    from . import families
    from .interventional import InterventionalExplainer, leaf_paths

    name = families.of(pipeline)
    if name == "rf":  # shap's explainer where the forest's tables would be too large
        from .explain import build_explainer

        return build_explainer(pipeline)
    if space == "log_odds":
        return fast_explainer_for(pipeline)
    ensemble = families.module(name).to_ensemble(pipeline)
    return InterventionalExplainer(leaf_paths(ensemble, np.asarray(background, np.float64)))


__all__ = [
    "CHUNK",
    "PARALLEL_MIN_APPLICANTS",
    "THREADS_ENV",
    "FastTreeExplainer",
    "UnsupportedModelError",
    "default_threads",
    "fast_explainer_for",
    "imputer_and_forest",
    "tables_space",
]
