"""The TreeSHAP kernel (numba): a compiled forest's tables -> probabilities and SHAP values.

Per tree and block of applicants, one pass over the upper splits propagates each
applicant's pattern of satisfied features from the root, one pass over the table
entries turns patterns into table rows, then each applicant sums its rows, ten
features at a time. See :mod:`credit_model.forest` for the tables.

The machine code is cached on disk (numba's cache: ``NUMBA_CACHE_DIR``, or beside
this file); the model image builds it when the image is built.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt
from numba.core import config

from .forest import FloatArray, IndexArray

log = logging.getLogger(__name__)

#: Applicants explained side by side in one pass over a tree: independent work that
#: keeps the core busy while one applicant's pattern waits on its parent's.
_BLOCK: Final = 8
#: Trees explained together for the whole request before the next ones: their table
#: rows stay in the core's own cache.
_TREES: Final = 4


@numba.njit(inline="always", nogil=True)
def filled(v: float, fill: float, float32_inputs: int) -> float:  # pragma: no cover - numba
    """An input as the model compares it: ``fill`` where missing (NaN), then rounded to
    float32 where ``float32_inputs`` (sklearn, XGBoost)."""
    if np.isnan(v):
        v = fill
    return np.float64(np.float32(v)) if float32_inputs else v


@numba.njit(inline="always", nogil=True)
def _explain_block(
    xt: FloatArray,
    s0: int,
    bw: int,
    t_lo: int,
    t_hi: int,
    pattern: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    split_start: IndexArray,
    split_node: IndexArray,
    split_feature: IndexArray,
    split_threshold: FloatArray,
    split_left: IndexArray,
    split_right: IndexArray,
    split_bit: IndexArray,
    split_missing: IndexArray,
    entry_start: IndexArray,
    entry_node: IndexArray,
    entry_feature: IndexArray,
    entry_threshold: FloatArray,
    entry_missing: IndexArray,
    entry_value: FloatArray,
    entry_base: IndexArray,
    tens: FloatArray,
    n_patterns: int,
    n_chunks: int,
    proba: FloatArray,
    phi: FloatArray,
) -> None:  # pragma: no cover - compiled by numba, inlined into explain_forest
    """Add every tree's leaf values and table rows for applicants ``s0 .. s0 + bw``.

    First, per tree, one pass over the splits propagates the applicants' patterns
    (branch-free: the comparisons are unpredictable) and one pass over the
    entries turns them into table rows (``rows``, all trees) and adds the reached
    leaves' values in tree order. Then each applicant sums its rows tree by tree
    in registers, ten features at a time (explicit scalars: an accumulator
    array would go through memory). Inlined with ``bw`` a constant for whole
    blocks, so the loops over the block are unrolled and vectorised.
    """
    full = n_patterns - 1
    e0 = entry_start[t_lo]  # rows holds the group's entries only
    for t in range(t_lo, t_hi):
        for k in range(bw):
            pattern[0, k] = full
        for i in range(split_start[t], split_start[t + 1]):
            node = split_node[i]
            f = split_feature[i]
            threshold = split_threshold[i]
            bit = split_bit[i]
            missing = split_missing[i]
            left = split_left[i]
            right_child = split_right[i]
            for k in range(bw):
                p = pattern[node, k]
                v = xt[f, s0 + k]
                right = np.int64(v > threshold) | (missing & np.int64(v != v))
                pattern[left, k] = p & ~(bit * right)
                pattern[right_child, k] = p & ~(bit * (1 - right))
        for e in range(entry_start[t], entry_start[t + 1]):
            node = entry_node[e]
            base = entry_base[e]
            f0 = entry_feature[e, 0]
            f1 = entry_feature[e, 1]
            f2 = entry_feature[e, 2]
            t0 = entry_threshold[e, 0]
            t1 = entry_threshold[e, 1]
            t2 = entry_threshold[e, 2]
            m0 = entry_missing[e, 0]
            m1 = entry_missing[e, 1]
            m2 = entry_missing[e, 2]
            for k in range(bw):
                p = pattern[node, k]
                v0 = xt[f0, s0 + k]
                v1 = xt[f1, s0 + k]
                v2 = xt[f2, s0 + k]
                outcome = (
                    (np.int64(v0 > t0) | (m0 & np.int64(v0 != v0)))
                    + 2 * (np.int64(v1 > t1) | (m1 & np.int64(v1 != v1)))
                    + 4 * (np.int64(v2 > t2) | (m2 & np.int64(v2 != v2)))
                )
                rows[e - e0, k] = ((base + p) * 8 + outcome) * n_chunks
                if p == full:  # the subtree the applicant reaches (one per tree)
                    proba[s0 + k] += entry_value[e, outcome]
    for t in range(t_lo, t_hi):
        for k in range(bw):
            for chunk in range(n_chunks):
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = 0.0
                for e in range(entry_start[t], entry_start[t + 1]):
                    r = rows[e - e0, k] + chunk
                    a0 += tens[r, 0]
                    a1 += tens[r, 1]
                    a2 += tens[r, 2]
                    a3 += tens[r, 3]
                    a4 += tens[r, 4]
                    a5 += tens[r, 5]
                    a6 += tens[r, 6]
                    a7 += tens[r, 7]
                    a8 += tens[r, 8]
                    a9 += tens[r, 9]
                c = 10 * chunk
                phi[s0 + k, c] += a0
                phi[s0 + k, c + 1] += a1
                phi[s0 + k, c + 2] += a2
                phi[s0 + k, c + 3] += a3
                phi[s0 + k, c + 4] += a4
                phi[s0 + k, c + 5] += a5
                phi[s0 + k, c + 6] += a6
                phi[s0 + k, c + 7] += a7
                phi[s0 + k, c + 8] += a8
                phi[s0 + k, c + 9] += a9


@numba.njit(nogil=True)
def explain_forest(
    x: FloatArray,
    fill: FloatArray,
    float32_inputs: int,
    max_nodes: int,
    split_start: IndexArray,
    split_node: IndexArray,
    split_feature: IndexArray,
    split_threshold: FloatArray,
    split_left: IndexArray,
    split_right: IndexArray,
    split_bit: IndexArray,
    split_missing: IndexArray,
    entry_start: IndexArray,
    entry_node: IndexArray,
    entry_feature: IndexArray,
    entry_threshold: FloatArray,
    entry_missing: IndexArray,
    entry_value: FloatArray,
    entry_base: IndexArray,
    n_patterns: int,
    table: FloatArray,
    base_value: float,
    divisor: float,
    offset: float,
    proba: FloatArray,
    phi: FloatArray,
) -> float:  # pragma: no cover - compiled by numba; tested through FastTreeExplainer
    """Explain the rows of ``x`` into ``proba`` (the raw output: probability for a forest,
    margin for boosting) and ``phi``; return the largest additivity gap.

    ``x`` holds raw inputs, NaN where missing: they are filled with ``fill`` (the
    imputer's statistics; NaN: left missing, each split sends them its default way)
    and rounded to float32 where ``float32_inputs``, as sklearn and XGBoost compare them. Groups
    of :data:`_TREES` trees outside, blocks of :data:`_BLOCK` applicants
    inside: a group's tables stay in the core's cache for the whole request. Per
    tree and block, one pass over the splits
    propagates the applicants' patterns (branch-free: the comparisons are
    unpredictable), one pass over the entries turns them into table rows, then
    each applicant sums its rows in registers, ten features at a time (explicit
    scalars: an accumulator array would go through memory). Raw outputs add
    the trees' leaf values in tree order, then divide (forests: sklearn's arithmetic)
    and add the offset (boosting's initial margin).
    """
    n_samples, n_features = x.shape
    n_trees = split_start.shape[0] - 1
    width = table.shape[2]
    n_chunks = width // 10
    tens = table.reshape(-1, 10)  # a table row is n_chunks runs of ten features
    xt = np.empty((n_features, n_samples))  # feature-major: a block's values side by side
    for s in range(n_samples):
        for f in range(n_features):
            xt[f, s] = filled(x[s, f], fill[f], float32_inputs)
    group_entries = 0  # scratch rows: the most entries a group of trees has
    for t_lo in range(0, n_trees, _TREES):
        group_entries = max(
            group_entries, entry_start[min(t_lo + _TREES, n_trees)] - entry_start[t_lo]
        )
    bw = min(_BLOCK, n_samples)
    pattern = np.empty((max_nodes, bw), dtype=np.int64)
    rows = np.empty((group_entries, bw), dtype=np.int64)
    for s in range(n_samples):
        proba[s] = 0.0
        for j in range(width):
            phi[s, j] = 0.0
    for t_lo in range(0, n_trees, _TREES):
        t_hi = min(t_lo + _TREES, n_trees)
        for s0 in range(0, n_samples, _BLOCK):
            nb = min(_BLOCK, n_samples - s0)
            # The same inlined body twice: with the block width a constant (whole blocks:
            # unrolled, vectorised) and as a variable (the last, partial block).
            if nb == _BLOCK:
                _explain_block(
                    xt, s0, _BLOCK, t_lo, t_hi, pattern, rows,
                    split_start, split_node, split_feature, split_threshold,
                    split_left, split_right, split_bit, split_missing,
                    entry_start, entry_node, entry_feature, entry_threshold, entry_missing,
                    entry_value, entry_base, tens, n_patterns, n_chunks, proba, phi,
                )  # fmt: skip
            else:
                _explain_block(
                    xt, s0, nb, t_lo, t_hi, pattern, rows,
                    split_start, split_node, split_feature, split_threshold,
                    split_left, split_right, split_bit, split_missing,
                    entry_start, entry_node, entry_feature, entry_threshold, entry_missing,
                    entry_value, entry_base, tens, n_patterns, n_chunks, proba, phi,
                )  # fmt: skip
    gap = 0.0
    for s0 in range(0, n_samples, _BLOCK):
        nb = min(_BLOCK, n_samples - s0)
        for k in range(nb):
            proba[s0 + k] = proba[s0 + k] / divisor + offset
            total = base_value
            for j in range(width):
                total += phi[s0 + k, j]
            d = abs(total - proba[s0 + k])
            if d > gap or d != d:  # NaN sticks
                gap = d
    return gap


#: Layout of the packed integer arrays (:func:`_pack`): a header, then the arrays.
#: max_nodes, n_trees, n_splits, n_entries, n_patterns, trees per pass, most entries per pass


_I1 = "int64[::1]"
_F1 = "float64[::1]"
#: The one signature compiled: C-contiguous arrays as :class:`~credit_model.forest.CompiledForest`
#: holds them.
SIGNATURE: Final = (
    f"float64(float64[:, ::1], {_F1}, int64, int64, {_I1}, {_I1}, {_I1}, {_F1}, {_I1}, {_I1}, "
    f"{_I1}, {_I1}, {_I1}, {_I1}, int64[:, ::1], float64[:, ::1], int64[:, ::1], "
    f"float64[:, ::1], {_I1}, int64, float64[:, :, ::1], float64, float64, float64, {_F1}, "
    "float64[:, ::1])"
)
_compiled = False


def compile_kernel() -> Any:
    """:func:`explain_forest`, compiled for :data:`SIGNATURE` (or loaded from numba's cache).

    With LLVM's SLP vectoriser on (numba leaves it off): it packs the independent scalar
    additions into SIMD instructions without reordering any, so the results are the same
    bit for bit.
    """
    global _compiled
    if not _compiled:
        try:
            explain_forest.enable_caching()
        except RuntimeError as exc:  # no writable cache location: compile in memory
            log.info("numba cache unavailable, compiling in memory: %s", exc)
        slp = getattr(config, "SLP_VECTORIZE", 0)
        config.SLP_VECTORIZE = 1  # type: ignore[attr-defined]
        try:
            explain_forest.compile(SIGNATURE)
        finally:
            config.SLP_VECTORIZE = slp  # type: ignore[attr-defined]
        _compiled = True
    return explain_forest
