"""Exact interventional TreeSHAP in probability space, against a background set.

For one applicant ``x`` and one background row ``r``, the interventional game of a
tree ensemble's margin ``f`` is ``v(S) = f(x_S, r_not S)``; one leaf of value ``w``
whose path splits on the distinct features (slots) ``U`` is reached by the hybrid
iff every slot takes a side that satisfies the path: with ``o`` the slots ``x``
satisfies and ``q`` those ``r`` satisfies, it contributes only when ``o | q = U``, and
then its Shapley values are ``+w (M-1)! K! / (M+K)!`` for each slot of ``A = o \\ q``
(``M = |A|``, only ``x`` reaches the leaf) and ``-w M! (K-1)! / (M+K)!`` for each slot
of ``B = q \\ o`` (``K = |B|``). Summed over leaves they add up to ``f(x) - f(r)``.
As shap does for ``model_output="probability"``, each pair's values are rescaled by
``(expit f(x) - expit f(r)) / (f(x) - f(r))`` so that they add up to the difference of
probabilities, then averaged over the background: ``base = mean expit f(r)`` and
``base + sum(phi) = expit f(x)``, exactly.

The background's patterns ``q`` per leaf are computed once, at load, and grouped by value.
Per applicant the work is one pass over the nodes of the leaves' paths (a prefix shared by
several leaves is one node) for the slots the applicant misses on each leaf, then one over
the distinct background patterns of the leaves where some can complete the applicant's:
a group completes it iff it satisfies every slot the applicant misses, and then sums its
rows' weights before spreading them over the slots.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, NamedTuple

import numba
import numpy as np
import numpy.typing as npt
from credit_schema.responses import Space

from .ensemble import LEAF, Ensemble, FloatArray, IndexArray, UnsupportedModelError
from .explainer import default_threads
from .kernel import filled

#: The background and the leaves' paths, saved beside the model.
INTERVENTIONAL_FILE: Final = "interventional.npz"
#: Rows of the training data kept as the background (seeded sample).
BACKGROUND_ROWS: Final = 100
#: Requests of at least this many applicants are split across threads (each costs ~0.4 ms).
PARALLEL_MIN_APPLICANTS: Final = 16
#: Training rows kept to pick a background near an approval cutoff from (seeded sample).
CUTOFF_POOL_ROWS: Final = 2_000
_MAX_SLOTS: Final = 16  # a leaf's pattern (one bit per slot) fits _SLOT_DTYPE: one kernel
_SLOT_DTYPE: Final = np.uint16
_SLOT_MASK: Final = (1 << _MAX_SLOTS) - 1
#: A path step's code in _path_nodes: ``split << _BIT_SHIFT | slot bit << 1 | side``.
_BIT_SHIFT: Final = _MAX_SLOTS + 1
#: leaf_needs: one int64 of bits, one per pattern of missed slots ``need < _NEED_BITS``.
_NEED_BITS: Final = 64
assert np.iinfo(_SLOT_DTYPE).bits == _MAX_SLOTS == 16  # _popcount's steps count 16 bits
assert _NEED_BITS == np.iinfo(np.int64).bits


@dataclass(frozen=True, slots=True)
class LeafPaths:
    """Every leaf of an ensemble with the splits on its path, and the background."""

    n_features: int
    depth: int  #: most distinct features on one path
    float32_inputs: int
    logistic: int
    offset: float
    leaf_value: FloatArray  #: [L] leaf value / divisor
    leaf_slots: IndexArray  #: [L, depth] feature of each slot (padding: 0, never set)
    leaf_full: IndexArray  #: [L] the pattern of a leaf reached: (1 << slots) - 1
    path_start: IndexArray  #: [L + 1] first path split of each leaf
    path_feature: IndexArray  #: [P]
    path_threshold: FloatArray  #: [P] x <= threshold goes left
    path_missing: IndexArray  #: [P] 1 where NaN goes right
    path_right: IndexArray  #: [P] 1 where the path goes right
    path_bit: IndexArray  #: [P] 1 << slot of the split's feature
    background: FloatArray  #: [R, n_features] background rows (raw, NaN where missing)
    #: [P, n_features] training rows a background near an approval cutoff is picked from
    pool: FloatArray


def leaf_paths(
    ensemble: Ensemble, background: FloatArray, pool: FloatArray | None = None
) -> LeafPaths:
    """The leaves' paths of ``ensemble``, its background rows and its cutoff pool."""
    values: list[float] = []
    slots: list[tuple[int, ...]] = []
    starts = [0]
    path: list[tuple[int, float, int, int, int]] = []
    for tree in ensemble.trees:
        stack: list[tuple[int, tuple[tuple[int, float, int, int, int], ...], tuple[int, ...]]]
        stack = [(0, (), ())]
        while stack:
            node, steps, feats = stack.pop()
            if tree.left[node] == LEAF:
                if len(feats) > _MAX_SLOTS:
                    raise UnsupportedModelError("a path splits on too many features")
                values.append(float(tree.value[node]) / ensemble.divisor)
                slots.append(feats)
                path.extend(steps)
                starts.append(len(path))
                continue
            f = int(tree.feature[node])
            k = feats.index(f) if f in feats else len(feats)
            below = feats if f in feats else (*feats, f)
            t, miss = float(tree.threshold[node]), int(tree.missing_right[node])
            for child, right in ((int(tree.right[node]), 1), (int(tree.left[node]), 0)):
                stack.append((child, (*steps, (f, t, miss, right, 1 << k)), below))
    depth = max(1, max(len(s) for s in slots))
    leaf_slots = np.zeros((len(slots), depth), dtype=np.int64)
    for i, s in enumerate(slots):
        leaf_slots[i, : len(s)] = s
    table = np.asarray(path, dtype=np.float64).reshape(-1, 5)
    return LeafPaths(
        n_features=ensemble.n_features,
        depth=depth,
        float32_inputs=int(ensemble.float32_inputs),
        logistic=int(ensemble.link == "logistic"),
        offset=float(ensemble.offset),
        leaf_value=np.asarray(values, dtype=np.float64),
        leaf_slots=leaf_slots,
        leaf_full=np.asarray([(1 << len(s)) - 1 for s in slots], dtype=np.int64),
        path_start=np.asarray(starts, dtype=np.int64),
        path_feature=table[:, 0].astype(np.int64),
        path_threshold=np.ascontiguousarray(table[:, 1]),
        path_missing=table[:, 2].astype(np.int64),
        path_right=table[:, 3].astype(np.int64),
        path_bit=table[:, 4].astype(np.int64),
        background=np.ascontiguousarray(background, dtype=np.float64),
        pool=np.ascontiguousarray(
            np.zeros((0, ensemble.n_features)) if pool is None else pool, dtype=np.float64
        ),
    )


class _Tables(NamedTuple):
    """The kernel's tables, in :func:`_explain`'s order (a test checks it): built by name,
    passed as ``*tables``, so that no two same-typed arrays can trade places unseen."""

    group_start: npt.NDArray[Any]
    group_missed: npt.NDArray[Any]
    group_quads: npt.NDArray[Any]
    member_start: npt.NDArray[Any]
    members: npt.NDArray[Any]
    leaf_value: npt.NDArray[Any]
    leaf_slots: npt.NDArray[Any]
    leaf_needs: npt.NDArray[Any]
    leaf_node: npt.NDArray[Any]
    node_parent: npt.NDArray[Any]
    node_split: npt.NDArray[Any]
    node_right: npt.NDArray[Any]
    node_bit: npt.NDArray[Any]
    split_feature: npt.NDArray[Any]
    split_threshold: npt.NDArray[Any]
    split_missing: npt.NDArray[Any]


@numba.njit(inline="always", nogil=True)
def _leaf_patterns(
    x: FloatArray,
    leaf_full: IndexArray,
    path_start: IndexArray,
    path_feature: IndexArray,
    path_threshold: FloatArray,
    path_missing: IndexArray,
    path_right: IndexArray,
    path_bit: IndexArray,
    out: IndexArray,
) -> None:  # pragma: no cover - compiled by numba
    """``out[l]``: the slots of leaf ``l`` whose path splits ``x`` (one row, filled) satisfies."""
    for leaf in range(leaf_full.shape[0]):
        p = np.int64(leaf_full[leaf])
        for k in range(path_start[leaf], path_start[leaf + 1]):
            v = x[path_feature[k]]
            right = np.int64(v > path_threshold[k]) | (path_missing[k] & np.int64(v != v))
            if right != path_right[k]:
                p &= ~np.int64(path_bit[k])
        out[leaf] = p


@numba.njit(nogil=True, cache=True)
def _patterns(
    x: FloatArray, fill: FloatArray, float32_inputs: int, paths: tuple[Any, ...], out: IndexArray
) -> None:  # pragma: no cover - compiled by numba
    """``out[s, l]``: the slots of leaf ``l`` whose path splits row ``s`` satisfies
    (``paths``: leaf_full, path_start and the path arrays)."""
    full, start, feature, threshold, missing, right, bit = paths
    row = np.empty(x.shape[1])
    for s in range(x.shape[0]):
        for f in range(x.shape[1]):
            row[f] = filled(x[s, f], fill[f], float32_inputs)
        _leaf_patterns(row, full, start, feature, threshold, missing, right, bit, out[s])


@numba.njit(nogil=True, cache=True)
def _link(raw: float, logistic: int) -> float:  # pragma: no cover - compiled by numba
    return 1.0 / (1.0 + math.exp(-raw)) if logistic else raw


@numba.njit(nogil=True, cache=True)
def _explain(
    x: FloatArray,
    fill: FloatArray,
    float32_inputs: int,
    fr: FloatArray,
    pr: FloatArray,
    group_start: IndexArray,
    group_missed: IndexArray,
    group_quads: IndexArray,
    member_start: IndexArray,
    members: IndexArray,
    leaf_value: FloatArray,
    leaf_slots: IndexArray,
    leaf_needs: IndexArray,
    leaf_node: IndexArray,
    node_parent: IndexArray,
    node_split: IndexArray,
    node_right: IndexArray,
    node_bit: IndexArray,
    split_feature: IndexArray,
    split_threshold: FloatArray,
    split_missing: IndexArray,
    offset: float,
    logistic: int,
    positive: FloatArray,
    negative: FloatArray,
    base_value: float,
    proba: FloatArray,
    phi: FloatArray,
) -> float:  # pragma: no cover - compiled by numba; tested through InterventionalExplainer
    """Per applicant (row of ``x``, filled): the side it takes at every distinct split
    (``split_*``), the slots it misses at every node of the leaves' paths (``node_*``: a
    prefix shared by several leaves' paths is one node) and so on every leaf, its margin
    and ``proba``, each background row's weight (``fr``, ``pr``: the rows' margins and
    probabilities), then the groups that contribute and their contributions into ``phi``;
    returns the largest additivity gap (NaN sticks).

    A group of a leaf's background rows (``group_missed``: the slots they miss, ``a``)
    contributes iff it has every slot the applicant misses (``need``): then ``B = need``
    and ``A = a``, so ``K = |need|`` is the leaf's and ``M = |a|`` the group's. Bit
    ``need`` of ``leaf_needs`` says whether any group of the leaf does (``need < _NEED_BITS``)."""
    n_bg = fr.shape[0]
    depth = leaf_slots.shape[1]
    n_leaves = leaf_value.shape[0]
    weight = np.zeros(n_bg + 1)  # the last: the padding row of every group's members, 0
    need_of = np.empty(n_leaves, dtype=np.int64)
    need_at = np.zeros(node_parent.shape[0], dtype=np.int64)  # node 0: above every root
    right = np.empty(split_feature.shape[0], dtype=np.int8)
    hit_group = np.empty(group_missed.shape[0] + 1, dtype=np.int32)
    hit_leaf = np.empty(group_missed.shape[0] + 1, dtype=np.int32)
    hit_member = np.empty(group_missed.shape[0] + 1, dtype=np.int32)
    row = np.empty(x.shape[1])
    gap = 0.0
    for s in range(x.shape[0]):
        for f in range(x.shape[1]):  # here, not in numpy: one call per request is cheaper
            row[f] = filled(x[s, f], fill[f], float32_inputs)
        for i in range(split_feature.shape[0]):  # each split once, not once per leaf below it
            v = row[split_feature[i]]
            right[i] = (v > split_threshold[i]) | (split_missing[i] & (v != v))
        for i in range(1, node_parent.shape[0]):  # parents first
            missed = right[node_split[i]] != node_right[i]
            need_at[i] = need_at[node_parent[i]] | (missed * node_bit[i])
        fx = offset
        for leaf in range(n_leaves):
            need = need_at[leaf_node[leaf]]
            need_of[leaf] = need
            if need == 0:
                fx += leaf_value[leaf]
        px = _link(fx, logistic)
        proba[s] = px
        for r in range(n_bg):
            d = fx - fr[r]
            weight[r] = ((px - pr[r]) / d if d != 0.0 else 1.0) / n_bg
        # The groups that contribute, listed without a branch: which do depends on the
        # applicant, so a branch would mispredict (how many: docs/performance.md); the
        # others: the hybrid never reaches the leaf, or both do.
        n = 0
        for leaf in range(n_leaves):
            need = need_of[leaf]
            if need < _NEED_BITS and ((leaf_needs[leaf] >> need) & 1) == 0:
                continue  # no group of this leaf contributes: its groups are not read
            member = member_start[leaf]
            for g in range(group_start[leaf], group_start[leaf + 1]):
                a = int(group_missed[g])
                hit_group[n] = g
                hit_leaf[n] = leaf
                hit_member[n] = member
                n += ((need & a) == 0) & ((need | a) != 0)
                member += 4 * int(group_quads[g])
        for j in range(phi.shape[1]):
            phi[s, j] = 0.0
        for i in range(n):
            g = hit_group[i]
            leaf = hit_leaf[i]
            total = 0.0
            # Members in fours (padded with the zero-weight row): most groups take one
            # pass, a predictable loop, and the four adds do not wait on one another.
            for k in range(hit_member[i], hit_member[i] + 4 * int(group_quads[g]), 4):
                total += (weight[members[k]] + weight[members[k + 1]]) + (
                    weight[members[k + 2]] + weight[members[k + 3]]
                )
            a = int(group_missed[g])
            need = need_of[leaf]
            m = _popcount(a)
            k_need = _popcount(need)
            value = leaf_value[leaf]
            up = value * total * positive[m, k_need]
            down = value * total * negative[m, k_need]
            # Every slot gets its share, zero where it is in neither set: no branch to
            # mispredict (a padding slot adds zero to feature 0).
            for j in range(depth):
                phi[s, leaf_slots[leaf, j]] += ((a >> j) & 1) * up - ((need >> j) & 1) * down
        total = base_value
        for j in range(phi.shape[1]):
            total += phi[s, j]
        d = abs(total - px)
        if d > gap or d != d:
            gap = d
    return gap


@numba.njit(inline="always", nogil=True)
def _popcount(v: int) -> int:  # pragma: no cover - compiled by numba
    """Set bits of a slot pattern (16 bits), without a loop (a data-dependent exit
    mispredicts): counts of 2, 4, 8 bits (masks 0x5555, 0x3333, 0x0F0F), then of 16."""
    v = v - ((v >> 1) & (_SLOT_MASK // 3))
    v = (v & (_SLOT_MASK // 5)) + ((v >> 2) & (_SLOT_MASK // 5))
    v = (v + (v >> 4)) & (_SLOT_MASK // 17)
    return (v + (v >> 8)) & (2 * _MAX_SLOTS - 1)


def _narrowest(limit: int, smallest: Any = np.uint8) -> type[np.unsignedinteger[Any]]:
    """The narrowest unsigned type holding ``0 .. limit``, ``smallest`` at least: the kernel's
    tables stay small. Each table's type changes only past limits real models rarely reach
    (255 background rows or features, 65,535 nodes or splits), so the kernel compiled into
    numba's cache by :func:`warm_up` is the one a served model runs."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if np.iinfo(smallest).max <= np.iinfo(dtype).max and limit <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def _groups(q: IndexArray, full: IndexArray) -> dict[str, npt.NDArray[Any]]:
    """Per leaf (row of ``q[L, R]``), its distinct background patterns and their rows, by
    name: ``group_start[L + 1], group_missed[G], group_quads[G], member_start[L], members``,
    every leaf at once (a leaf's rows sorted by pattern; a group starts where the pattern
    changes; ``group_missed``: the slots of the leaf its rows do not satisfy). A group's
    rows are padded with row ``R`` to a multiple of four (``group_quads`` fours)."""
    n_leaves, n_rows = q.shape
    order = np.argsort(q, axis=1, kind="stable")
    ordered = np.take_along_axis(q, order, axis=1)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group_start = np.zeros(n_leaves + 1, dtype=np.int32)
    np.cumsum(starts.sum(axis=1), out=group_start[1:])
    first = np.flatnonzero(starts.ravel())
    missed = (full[:, None] & ~ordered).ravel()[first]
    size = np.diff(np.append(first, n_leaves * n_rows))
    quads = -(-size // 4)
    padded_start = np.concatenate([[0], np.cumsum(4 * quads)])
    members = np.full(padded_start[-1], n_rows, dtype=_narrowest(n_rows))
    within = np.arange(n_leaves * n_rows) - np.repeat(first, size)
    members[np.repeat(padded_start[:-1], size) + within] = order.ravel()
    return {
        "group_start": group_start,
        "group_missed": missed.astype(_SLOT_DTYPE),  # whatever the depth: one kernel
        "group_quads": quads.astype(members.dtype),  # fewer fours than rows
        "member_start": padded_start[group_start[:-1]].astype(np.int32),
        "members": members,
    }


def _leaf_needs(group_start: IndexArray, missed: IndexArray, full: IndexArray) -> IndexArray:
    """Per leaf, bit ``need`` set where one of its groups contributes when the applicant
    misses the slots ``need``; every bit where the leaf has more than 6 slots (patterns past
    ``_NEED_BITS``: the kernel reads all its groups then)."""
    need = np.arange(_NEED_BITS, dtype=np.int64)
    distinct, which = np.unique(missed, return_inverse=True)  # a few dozen values
    a = distinct.astype(np.int64)[:, None]
    hit = ((a & need) == 0) & ((a | need) != 0)  # [distinct a, _NEED_BITS]
    # Bit ``need`` of each int64 set arithmetically (bit 63: the sign), whatever the byte order.
    bits = np.bitwise_or.reduce(hit.astype(np.int64) << need, axis=1)[which.ravel()]
    out: IndexArray = np.bitwise_or.reduceat(bits, group_start[:-1])
    out[full >= _NEED_BITS] = -1
    return out


def _path_nodes(paths: LeafPaths) -> dict[str, npt.NDArray[Any]]:
    """The leaves' paths as one tree of steps, by name: ``leaf_node[L], node_parent[N],
    node_split[N], node_right[N], node_bit[N]``, with the distinct splits apart (``split_``
    ``feature, threshold, missing``): a split near the root is on the path of every leaf below it, so
    an applicant's side there is computed once, and a path's prefix is one node for all the
    leaves below it (consecutive leaves share it: the paths are listed depth first)."""
    steps = np.rec.fromarrays([paths.path_feature, paths.path_threshold, paths.path_missing])
    splits, path_split = np.unique(steps, return_inverse=True)
    # One code per step, split << _BIT_SHIFT | slot bit (_MAX_SLOTS bits) << 1 | side, leaf by
    # leaf in a [L, longest] grid (-1: none).
    code = (path_split.ravel() << _BIT_SHIFT) | (paths.path_bit << 1) | paths.path_right
    length = np.diff(paths.path_start)
    grid = np.full((len(length), max(1, int(length.max(initial=0)))), -1, dtype=np.int64)
    column = np.arange(len(code)) - np.repeat(paths.path_start[:-1], length)
    grid[np.repeat(np.arange(len(length)), length), column] = code
    # A step is a new node unless it and every step above it equal the leaf before's.
    same = np.zeros(grid.shape, dtype=bool)
    same[1:] = np.logical_and.accumulate(grid[1:] == grid[:-1], axis=1)
    new = (grid >= 0) & ~same
    node = np.where(new, np.cumsum(new).reshape(grid.shape), 0)  # node 0: above every root
    node = np.maximum.accumulate(node, axis=0)  # a shared step: the leaf before's node
    parent = np.zeros_like(node)
    parent[:, 1:] = node[:, :-1]
    n_nodes = int(new.sum()) + 1
    leaf_node = np.where(length > 0, node[np.arange(len(length)), np.maximum(length - 1, 0)], 0)
    table = np.zeros((n_nodes, 3), dtype=np.int64)  # by node number
    table[1:] = np.stack([parent[new], grid[new] >> _BIT_SHIFT, grid[new] & 1], axis=1)
    bit = np.zeros(n_nodes, dtype=np.int64)
    bit[1:] = (grid[new] >> 1) & _SLOT_MASK
    return {
        "leaf_node": leaf_node.astype(_narrowest(n_nodes, np.uint16)),
        "node_parent": table[:, 0].astype(_narrowest(n_nodes, np.uint16)),
        "node_split": table[:, 1].astype(_narrowest(len(splits), np.uint16)),
        "node_right": table[:, 2].astype(np.int8),
        "node_bit": bit.astype(_SLOT_DTYPE),
        "split_feature": splits["f0"].astype(np.int32),
        "split_threshold": splits["f1"].astype(np.float64),
        "split_missing": splits["f2"].astype(np.int8),
    }


def _coefficients(depth: int) -> tuple[FloatArray, FloatArray]:
    """``(M-1)! K! / (M+K)!`` and ``M! (K-1)! / (M+K)!`` for ``M, K <= depth``."""
    f = math.factorial
    n = depth + 1
    positive = np.zeros((n, n))
    negative = np.zeros((n, n))
    for m in range(n):
        for k in range(n):
            if m + k == 0:
                continue
            if m:
                positive[m, k] = f(m - 1) * f(k) / f(m + k)
            if k:
                negative[m, k] = f(m) * f(k - 1) / f(m + k)
    return positive, negative


class InterventionalExplainer:
    """Exact interventional TreeSHAP of the ensemble's probability against its background.

    ``explain(X) -> (probability[n], shap[n, n_features])`` with
    ``base_value + shap.sum(axis=1) == probability`` (``space`` is ``probability``).
    """

    space: Space = "probability"

    def __init__(
        self,
        paths: LeafPaths,
        *,
        fill_values: FloatArray | None = None,
        background: FloatArray | None = None,
    ) -> None:
        self.paths = paths
        n = paths.n_features
        fill = np.full(n, np.nan) if fill_values is None else fill_values
        self.fill_values = np.ascontiguousarray(fill, dtype=np.float64)
        self._positive, self._negative = _coefficients(paths.depth)
        self.background = paths.background if background is None else background
        self._pool_scores: FloatArray | None = None
        self.threads = default_threads()
        self._pool: ThreadPoolExecutor | None = None
        if not len(self.background):
            raise ValueError("an interventional explanation needs at least one background row")
        background = self._prepare(self.background)
        q = self._patterns(background)
        # The kernel's tables in narrow types (see _narrowest): a request reads them once per
        # applicant, mostly from memory after other work has filled the caches.
        groups = _groups(np.ascontiguousarray(q.T), paths.leaf_full)
        self._tables = _Tables(
            **groups,
            leaf_value=paths.leaf_value,
            leaf_slots=paths.leaf_slots.astype(_narrowest(paths.n_features)),
            leaf_needs=_leaf_needs(groups["group_start"], groups["group_missed"], paths.leaf_full),
            **_path_nodes(paths),
        )
        self._fr = self._raw(q)
        self._pr = 1.0 / (1.0 + np.exp(-self._fr)) if paths.logistic else self._fr
        self.base_value = float(np.mean(self._pr))

    def _prepare(self, X: Any) -> FloatArray:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.paths.n_features:
            raise ValueError(f"expected an array of shape (n, {self.paths.n_features})")
        return np.ascontiguousarray(x)  # the kernels fill and round it

    def _patterns(self, x: FloatArray) -> IndexArray:
        p = self.paths
        out = np.empty((x.shape[0], p.leaf_full.shape[0]), dtype=np.int64)
        paths = (p.leaf_full, p.path_start, p.path_feature, p.path_threshold,
                 p.path_missing, p.path_right, p.path_bit)  # fmt: skip
        _patterns(x, self.fill_values, p.float32_inputs, paths, out)
        return out

    def _raw(self, patterns: IndexArray) -> FloatArray:
        reached = patterns == self.paths.leaf_full[None, :]
        raw: FloatArray = reached.astype(np.float64) @ self.paths.leaf_value + self.paths.offset
        return raw

    def explain_raw(self, X: Any) -> tuple[FloatArray, FloatArray, float]:
        """``(probability, shap, gap)`` (the raw output here is the probability)."""
        x = self._prepare(X)
        n = x.shape[0]
        proba = np.empty(n)
        phi = np.empty((n, self.paths.n_features))
        threads = min(self.threads, n // PARALLEL_MIN_APPLICANTS)
        if threads < 2:
            return proba, phi, self._run(x, proba, phi)
        # The kernel runs without the GIL: one share of the applicants per thread.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="shap-int")
        step = -(-n // threads)
        shares = [slice(a, min(a + step, n)) for a in range(0, n, step)]
        others = [self._pool.submit(self._run, x[k], proba[k], phi[k]) for k in shares[1:]]
        gaps = [self._run(x[shares[0]], proba[shares[0]], phi[shares[0]])]
        gaps += [done.result() for done in others]
        return proba, phi, float(np.nan if np.isnan(gaps).any() else max(gaps))

    def _run(self, x: FloatArray, proba: FloatArray, phi: FloatArray) -> float:
        p = self.paths
        args: tuple[Any, ...] = (
            x, self.fill_values, p.float32_inputs, self._fr, self._pr, *self._tables,
            p.offset, p.logistic, self._positive, self._negative, self.base_value, proba, phi,
        )  # fmt: skip
        return float(_explain(*args))

    def explain_checked(self, X: Any) -> tuple[FloatArray, FloatArray, float]:
        return self.explain_raw(X)

    def explain(self, X: Any) -> tuple[FloatArray, FloatArray]:
        proba, phi, _ = self.explain_raw(X)
        return proba, phi

    def against_cutoff(self, cutoff: float, rows: int = BACKGROUND_ROWS) -> InterventionalExplainer:
        """The same model explained against the ``rows`` pool applicants scored just inside an
        approval ``cutoff`` (the riskiest approved: probability below it, highest first), so
        that reasons say why an applicant is not among them (Regulation B, 9(b)(2)-5)."""
        pool = self.paths.pool
        if not len(pool):
            raise ValueError("this model directory keeps no training rows to pick a cutoff from")
        scores = self._scores()
        approved = np.flatnonzero(scores < cutoff)
        if not len(approved):
            raise ValueError(
                f"no training applicant is scored below the approval cutoff {cutoff:g}"
            )
        nearest = approved[np.argsort(-scores[approved], kind="stable")[:rows]]
        return InterventionalExplainer(
            self.paths, fill_values=self.fill_values, background=pool[np.sort(nearest)]
        )

    def _scores(self) -> FloatArray:
        """The pool's probabilities (computed once)."""
        if self._pool_scores is None:
            raw = self._raw(self._patterns(self._prepare(self.paths.pool)))
            self._pool_scores = 1.0 / (1.0 + np.exp(-raw)) if self.paths.logistic else raw
        scores: FloatArray = self._pool_scores
        return scores


_SCALARS: Final = ("n_features", "depth", "float32_inputs", "logistic", "offset")


def save_paths(path: str | Path, paths: LeafPaths) -> None:
    """Write ``paths`` as one ``.npz`` (plain arrays: nothing pickled)."""
    arrays = {f.name: np.asarray(getattr(paths, f.name)) for f in fields(paths)}
    with Path(path).open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def load_paths(path: str | Path) -> LeafPaths:
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    values: dict[str, Any] = {
        name: arrays[name].item() if name in _SCALARS else arrays[name]
        for name in (f.name for f in fields(LeafPaths))
    }
    return LeafPaths(**values)


def warm_up() -> InterventionalExplainer:
    """Compile the kernels into numba's cache (the image build runs it): a one-split model,
    whose explainer is returned (its tables have a served model's types)."""
    from .ensemble import Tree

    stump = Tree(
        left=np.array([1, LEAF, LEAF]),
        right=np.array([2, LEAF, LEAF]),
        feature=np.array([0, 0, 0]),
        threshold=np.array([0.5, 0.0, 0.0]),
        missing_right=np.array([0, 0, 0]),
        value=np.array([0.0, -1.0, 1.0]),
        cover=np.array([2.0, 1.0, 1.0]),
    )
    ensemble = Ensemble((stump,), 1, 1.0, 0.0, "logistic", False)
    explainer = InterventionalExplainer(leaf_paths(ensemble, np.array([[0.0], [1.0]])))
    explainer.explain([[1.0]])
    return explainer
