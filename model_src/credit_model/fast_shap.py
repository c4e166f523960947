"""Fast exact path-dependent TreeSHAP for a fitted scikit-learn random forest.

Gives the same numbers as ``shap.TreeExplainer(forest)`` with its default
``feature_perturbation="tree_path_dependent"`` (class 1 of its 3-D output) and
the same probabilities as ``forest.predict_proba(X)[:, 1]``, in a few
microseconds per applicant.

How (the idea of FastTreeSHAP v2, Yang 2021, specialised to our forests):
for one leaf ``l`` of value ``v`` whose root-to-leaf path splits on the distinct
features ``U`` (``d = |U|``), path-dependent TreeSHAP is the Shapley value of
the game ``g(S) = v * prod_{j in S} o_j(x) * prod_{j in U \\ S} z_j``, where
``z_j`` is the product of cover ratios (``weighted_n_node_samples`` of child
over parent) at the path's splits on ``j`` and ``o_j(x)`` is 1 when ``x``
satisfies all the path's splits on ``j``, else 0. As ``o`` is binary, the
Shapley values of a leaf depend on ``x`` only through the ``d``-bit pattern of
satisfied features: they are computed once for all ``2**d`` patterns when the
model is loaded (:func:`compile_forest`, vectorised numpy), and the leaves of
each subtree of height two at most are summed into one table (see
:class:`CompiledForest`). Explaining one applicant is then one pass over each
tree's upper splits that propagates the pattern from the root (one comparison
per split, as in prediction) and, per subtree, three comparisons and one table
row added to the applicant's SHAP values (:func:`_explain_kernel`, numba):
``O(trees * leaves * depth)``, with no ``O(depth**2)`` polynomial algebra per
leaf as in the original TreeSHAP. Requests are explained in blocks of
applicants (independent work for the core) and large ones split across threads.

Semantics copied from scikit-learn: inputs are cast to float32 before the
comparisons ``x <= threshold`` (ties go left), leaf values are class
proportions averaged over the trees in tree order, missing values are filled
with the imputer's statistics before the forest sees them.

Covers ``RandomForestClassifier`` and ``ExtraTreesClassifier`` (binary) whose
leaves split on at most :data:`MAX_PATH_FEATURES` distinct features;
:func:`supports` says whether a model is covered, and
``credit_model.explain.build_explainer`` falls back to shap otherwise.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

#: Largest number of distinct features on one root-to-leaf path the tables cover
#: (a leaf's table has ``2**d * d`` entries).
MAX_PATH_FEATURES: Final = 8
#: Largest total size of the SHAP tables, in float64 entries (512 MiB).
MAX_TABLE_ENTRIES: Final = 64 * 1024 * 1024

_LEAF: Final = -1  # sklearn's TREE_LEAF (children_left of a leaf)
_CHUNK: Final = 10  # features summed per pass of the kernel (one register each)

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int32]  #: the kernel's integer arrays (see _pack)


class UnsupportedModelError(TypeError):
    """The fast path does not cover this model (the caller falls back to shap)."""


@dataclass(frozen=True, slots=True)
class CompiledForest:
    """A forest as flat arrays, with per-leaf SHAP tables (see the module docstring).

    Splits and table entries of all trees are concatenated tree after tree;
    splits in sklearn's preorder (a parent before its children). Node numbers
    (``split_node``, ``split_left``, ``split_right``, ``entry_node``) are the
    tree's own. ``slot`` numbers the distinct features along a path in order of
    first appearance, so a split's slot is the same for every leaf below it.

    An entry is a subtree of height two at most (a leaf, a split over two leaves,
    or a split over one or two such splits: 947 leaves and 897 splits of our
    default forest make 603 entries and 553 splits). Its splits (the root, its
    left child, its right child) are not in the split pass: the entry compares
    the input at each of them (``outcome`` ``r0 + 2 r1 + 4 r2``, 1 where the
    input goes right; an absent split's threshold is +inf: never right), and its
    table row for (pattern at the root, outcome) is the sum of its leaves' rows,
    each leaf's pattern losing the bits of the subtree's splits the input does
    not follow towards it. Fewer, larger entries: fewer table rows to fetch per
    applicant (the cost of a lone request, whose rows are not in cache) and
    fewer splits to propagate.

    Only the patterns an entry can meet are stored: the splits above its root use
    the slots of the ``a`` distinct features on the path there, ``0 .. a-1``, so
    the other bits of its pattern stay set and its ``2**a`` patterns are the
    last ones, ``2**D - 2**a .. 2**D - 1``: rows ``entry_base + pattern`` of
    ``table``, entry after entry (4.4 MB for our default forest instead of 23.6).
    """

    n_features: int
    n_trees: int
    depth: int  #: D: slots per leaf (the largest d in the forest); patterns are D-bit
    max_nodes: int  #: node count of the largest tree
    split_start: npt.NDArray[np.int64]  #: [n_trees + 1] first split of each tree
    split_node: npt.NDArray[np.int64]  #: [n_splits] node number of the split
    split_feature: npt.NDArray[np.int64]  #: [n_splits] feature compared
    split_threshold: FloatArray  #: [n_splits] threshold (x <= threshold goes left)
    split_left: npt.NDArray[np.int64]  #: [n_splits] node number of the left child
    split_right: npt.NDArray[np.int64]  #: [n_splits] node number of the right child
    split_bit: npt.NDArray[np.int64]  #: [n_splits] 1 << slot of the split's feature
    entry_start: npt.NDArray[np.int64]  #: [n_trees + 1] first entry of each tree
    entry_node: npt.NDArray[np.int64]  #: [n_entries] root node: its pattern indexes the table
    entry_feature: npt.NDArray[np.int64]  #: [n_entries, 3] features of the entry's splits
    entry_threshold: FloatArray  #: [n_entries, 3] their thresholds (absent split: +inf)
    entry_value: FloatArray  #: [n_entries, 8] class-1 proportion of the leaf reached, by outcome
    #: [n_entries] the entry's rows in ``table`` are ``entry_base + pattern`` (see below)
    entry_base: npt.NDArray[np.int64]
    table: FloatArray  #: [n_rows, 8, width] SHAP values by (entry and pattern, outcome)
    base_value: float  #: the forest's expected output (shap's expected_value)

    @property
    def n_entries(self) -> int:
        return int(self.entry_node.shape[0])


def supports(model: Any) -> bool:
    """Whether :func:`compile_forest` covers ``model`` (type, classes, paths' features)."""
    try:
        _check_forest(model)
    except UnsupportedModelError:
        return False
    return all(_path_features_within_bound(e.tree_) for e in model.estimators_)


def _path_features_within_bound(tree: Any) -> bool:
    stack: list[tuple[int, frozenset[int]]] = [(0, frozenset())]
    while stack:
        node, feats = stack.pop()
        if tree.children_left[node] == _LEAF:
            continue
        feats = feats | {int(tree.feature[node])}
        if len(feats) > MAX_PATH_FEATURES:
            return False
        stack.append((int(tree.children_left[node]), feats))
        stack.append((int(tree.children_right[node]), feats))
    return True


def _check_forest(model: Any) -> None:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    if not isinstance(model, RandomForestClassifier | ExtraTreesClassifier):
        raise UnsupportedModelError(f"{type(model).__name__} is not a fitted sklearn forest")
    if not hasattr(model, "estimators_"):
        raise UnsupportedModelError("the forest is not fitted")
    if getattr(model, "n_outputs_", 1) != 1 or list(model.classes_) != [0, 1]:
        raise UnsupportedModelError("only single-output classifiers of classes 0 and 1 are covered")


def _zero_fraction_products(z: FloatArray) -> FloatArray:
    """``out[l, mask] = prod(z[l, j] for bits j of mask)``, shape [n, 2**d]."""
    out = np.ones((z.shape[0], 1))
    for j in range(z.shape[1]):
        out = np.concatenate([out, out * z[:, j : j + 1]], axis=1)
    return out


def _shapley_coefficients(d: int) -> FloatArray:
    """``C[p, i, t]``: weight of ``prod(z over mask t)`` in slot ``i``'s Shapley sum.

    For pattern ``p`` (bit j set: the input satisfies the path's splits on slot
    j), ``phi_i = (o_i - z_i) * sum_{S subset of p minus i} w(|S|) * prod(z over
    all slots minus i minus S)`` with ``w(s) = s! (d-1-s)! / d!``.
    """
    full = (1 << d) - 1
    weights = np.array(
        [math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d) for s in range(d)]
    )
    p = np.arange(1 << d)[:, None, None]
    i = np.arange(d)[None, :, None]
    t = np.arange(1 << d)[None, None, :]
    s = full ^ (1 << i) ^ t  # the subset S whose complement (minus i) is t
    valid = (((t >> i) & 1) == 0) & ((s & ~p) == 0)
    popcount = np.array([bin(m).count("1") for m in range(1 << d)])
    return np.where(valid, weights[np.minimum(popcount[s & full], d - 1)], 0.0)


def compile_forest(model: Any) -> CompiledForest:
    """Flatten a fitted binary sklearn forest and precompute its SHAP tables.

    Raises :class:`UnsupportedModelError` when the model is not covered.
    """
    _check_forest(model)
    estimators = model.estimators_
    n_trees = len(estimators)
    scaling = 1.0 / n_trees

    splits: list[tuple[int, int, float, int, int, int]] = []
    split_start = [0]
    leaf_nodes: list[int] = []
    leaf_values: list[float] = []
    leaf_slot_features: list[tuple[int, ...]] = []
    leaf_zero: list[tuple[float, ...]] = []
    leaf_start = [0]
    root_values: list[float] = []
    max_nodes = 1
    for est in estimators:
        tree = est.tree_
        n = int(tree.node_count)
        max_nodes = max(max_nodes, n)
        cl = tree.children_left.astype(np.int64)
        cr = tree.children_right.astype(np.int64)
        feat = tree.feature.astype(np.int64)
        thr = tree.threshold.astype(np.float64)
        cover = tree.weighted_n_node_samples.astype(np.float64)
        value = tree.value.reshape(n, -1).astype(np.float64)
        proba = value[:, 1] / value.sum(axis=1)  # shap's normalize=True and sklearn's normaliser
        root_values.append(float(proba[0]))
        # Preorder walk carrying the distinct features on the path so far (slot
        # order) and the zero fraction accumulated per slot.
        stack: list[tuple[int, tuple[int, ...], tuple[float, ...]]] = [(0, (), ())]
        while stack:
            node, path_feats, path_zero = stack.pop()
            if cl[node] == _LEAF:
                if len(path_feats) > MAX_PATH_FEATURES:
                    raise UnsupportedModelError(
                        f"a leaf splits on {len(path_feats)} distinct features; "
                        f"the fast path covers up to {MAX_PATH_FEATURES}"
                    )
                leaf_nodes.append(node)
                leaf_values.append(float(proba[node]))
                leaf_slot_features.append(path_feats)
                leaf_zero.append(path_zero)
                continue
            f = int(feat[node])
            if f in path_feats:
                k = path_feats.index(f)
                feats = path_feats
            else:
                k = len(path_feats)
                feats = (*path_feats, f)
                path_zero = (*path_zero, 1.0)
            splits.append((node, f, float(thr[node]), int(cl[node]), int(cr[node]), 1 << k))
            for child in (int(cr[node]), int(cl[node])):
                zero = list(path_zero)
                zero[k] *= cover[child] / cover[node]
                stack.append((child, feats, tuple(zero)))
        split_start.append(len(splits))
        leaf_start.append(len(leaf_values))

    depth = max(len(f) for f in leaf_slot_features)
    n_leaves = len(leaf_values)
    # An entry's table has 8 outcomes per pattern; there are fewer entries than leaves.
    if 8 * n_leaves * (1 << depth) * int(model.n_features_in_) > MAX_TABLE_ENTRIES:
        raise UnsupportedModelError("the forest's SHAP tables would be too large")

    # Pad every leaf to `depth` slots with null players (z = 1, always satisfied):
    # their Shapley value is exactly 0 and the others' are unchanged.
    n_features = int(model.n_features_in_)
    n_patterns = 1 << depth
    zero = np.ones((n_leaves, depth))
    slot_feature = np.zeros((n_leaves, depth), dtype=np.int64)
    for i, (fs, zs) in enumerate(zip(leaf_slot_features, leaf_zero, strict=True)):
        zero[i, : len(zs)] = zs
        slot_feature[i, : len(fs)] = fs
    values = np.asarray(leaf_values) * scaling
    # Tables indexed by feature, not slot: the kernel adds one contiguous row per
    # leaf (vectorised), rather than scattering through an index.
    width = _CHUNK * -(-n_features // _CHUNK)  # padded to whole chunks (zero columns)
    table = np.zeros((n_leaves, n_patterns, width))
    if depth:
        coeff = _shapley_coefficients(depth)  # [P, D, P]
        sums = _zero_fraction_products(zero) @ coeff.reshape(n_patterns * depth, n_patterns).T
        sums = sums.reshape(n_leaves, n_patterns, depth)  # [L, P, D]
        pattern = np.arange(n_patterns)
        one = ((pattern[:, None] >> np.arange(depth)[None, :]) & 1).astype(np.float64)  # [P, D]
        by_slot = (one[None, :, :] - zero[:, None, :]) * sums * values[:, None, None]
        leaf_index = np.arange(n_leaves)[:, None, None]
        np.add.at(
            table,
            (leaf_index, pattern[None, :, None], slot_feature[:, None, :]),
            by_slot,
        )

    base_value = float(np.asarray(root_values).sum() * scaling)
    return _with_subtrees(
        n_features=n_features,
        n_trees=n_trees,
        depth=depth,
        max_nodes=max_nodes,
        splits=splits,
        split_start=split_start,
        leaf_nodes=leaf_nodes,
        leaf_values=leaf_values,
        leaf_start=leaf_start,
        table=table,
        base_value=base_value,
    )


def _with_subtrees(
    *,
    n_features: int,
    n_trees: int,
    depth: int,
    max_nodes: int,
    splits: list[tuple[int, int, float, int, int, int]],
    split_start: list[int],
    leaf_nodes: list[int],
    leaf_values: list[float],
    leaf_start: list[int],
    table: FloatArray,
    base_value: float,
) -> CompiledForest:
    """Group every subtree of height two at most into one table entry."""
    kept: list[tuple[int, int, float, int, int, int]] = []
    kept_start = [0]
    roots: list[int] = []
    features: list[tuple[int, int, int]] = []
    thresholds: list[tuple[float, float, float]] = []
    bits: list[tuple[int, int, int]] = []
    # Per entry, up to 4 leaves, each with its path inside the subtree:
    # ((split position 0/1/2, direction 0 left / 1 right), ...).
    leaves: list[list[tuple[int, tuple[tuple[int, int], ...]]]] = []
    above_mask: list[int] = []
    entry_start = [0]
    for t in range(n_trees):
        leaf_of = {leaf_nodes[i]: i for i in range(leaf_start[t], leaf_start[t + 1])}
        split_of = {row[0]: row for row in splits[split_start[t] : split_start[t + 1]]}
        height: dict[int, int] = dict.fromkeys(leaf_of, 0)
        for node, _, _, left, right, _ in reversed(splits[split_start[t] : split_start[t + 1]]):
            height[node] = 1 + max(height[left], height[right])  # preorder: children first here
        entry_roots = [0] if height[0] <= 2 else []
        mask = {0: 0}  # the pattern bits the splits above a node can clear
        for row in splits[split_start[t] : split_start[t + 1]]:
            node, _, _, left, right, bit = row
            if height[node] > 2:
                kept.append(row)
                mask[left] = mask[right] = mask[node] | bit
                entry_roots += [child for child in (left, right) if height[child] <= 2]
        for root in entry_roots:
            roots.append(root)
            # Slots are numbered in order of first appearance: those above are 0 .. a-1.
            assert mask[root] & (mask[root] + 1) == 0, "slots above an entry are the lowest"
            above_mask.append(mask[root])
            if root in leaf_of:
                features.append((0, 0, 0))
                thresholds.append((math.inf, math.inf, math.inf))
                bits.append((0, 0, 0))
                leaves.append([(leaf_of[root], ())])
                continue
            _, f0, t0, left, right, b0 = split_of[root]
            f = [f0, 0, 0]
            thr = [t0, math.inf, math.inf]
            bit = [b0, 0, 0]
            found: list[tuple[int, tuple[tuple[int, int], ...]]] = []
            for side, child, position in ((0, left, 1), (1, right, 2)):
                if child in leaf_of:
                    found.append((leaf_of[child], ((0, side),)))
                    continue
                _, fc, tc, cl, cr, bc = split_of[child]
                f[position], thr[position], bit[position] = fc, tc, bc
                found.append((leaf_of[cl], ((0, side), (position, 0))))
                found.append((leaf_of[cr], ((0, side), (position, 1))))
            features.append((f[0], f[1], f[2]))
            thresholds.append((thr[0], thr[1], thr[2]))
            bits.append((bit[0], bit[1], bit[2]))
            leaves.append(found)
        kept_start.append(len(kept))
        entry_start.append(len(roots))

    n_entries = len(roots)
    n_patterns = table.shape[1]
    outcome = np.arange(8)
    # Leaf j of entry e: its table index (a zero row where the entry has fewer leaves),
    # the bits its pattern loses for each outcome, and whether the input reaches it.
    zero_row = table.shape[0]
    extended = np.concatenate([table, np.zeros((1, *table.shape[1:]))])
    leaf_index = np.full((n_entries, 4), zero_row, dtype=np.int64)
    lost = np.zeros((n_entries, 4, 8), dtype=np.int64)
    entry_value = np.zeros((n_entries, 8))
    values = np.asarray(leaf_values)
    bit_array = np.asarray(bits, dtype=np.int64).reshape(n_entries, 3)
    for e, found in enumerate(leaves):
        for j, (leaf, path) in enumerate(found):
            leaf_index[e, j] = leaf
            reached = np.ones(8, dtype=bool)
            for position, direction in path:
                went = (outcome >> position) & 1
                lost[e, j] |= np.where(went != direction, bit_array[e, position], 0)
                reached &= went == direction
            entry_value[e, reached] = values[leaf]
    # The patterns each entry can meet: the last 2**a, a = slots used above its root.
    full = n_patterns - 1
    above = np.asarray(above_mask, dtype=np.int64)
    n_rows = above + 1
    offset = np.concatenate([[0], np.cumsum(n_rows)[:-1]]).astype(np.int64)
    entry_base = offset - (full - above)
    row_entry = np.repeat(np.arange(n_entries), n_rows)  # [R]
    row_pattern = np.arange(int(n_rows.sum())) - entry_base[row_entry]  # [R]
    entry_table = np.zeros((row_entry.shape[0], 8, table.shape[2]))
    for j in range(4):
        leaf_patterns = row_pattern[:, None] & ~lost[row_entry, j, :]  # [R, 8]
        entry_table += extended[leaf_index[row_entry, j, None], leaf_patterns]

    def ints(rows: list[tuple[int, int, float, int, int, int]], k: int) -> npt.NDArray[np.int64]:
        return np.asarray([r[k] for r in rows], dtype=np.int64)

    return CompiledForest(
        n_features=n_features,
        n_trees=n_trees,
        depth=depth,
        max_nodes=max_nodes,
        split_start=np.asarray(kept_start, dtype=np.int64),
        split_node=ints(kept, 0),
        split_feature=ints(kept, 1),
        split_threshold=np.asarray([r[2] for r in kept], dtype=np.float64),
        split_left=ints(kept, 3),
        split_right=ints(kept, 4),
        split_bit=ints(kept, 5),
        entry_start=np.asarray(entry_start, dtype=np.int64),
        entry_node=np.asarray(roots, dtype=np.int64),
        entry_feature=np.asarray(features, dtype=np.int64).reshape(n_entries, 3),
        entry_threshold=np.asarray(thresholds, dtype=np.float64).reshape(n_entries, 3),
        entry_value=entry_value,
        entry_base=entry_base,
        table=entry_table,
        base_value=base_value,
    )


# --- the kernel ---------------------------------------------------------------

#: Applicants explained side by side in one pass over a tree: independent work that
#: keeps the core busy while one applicant's pattern waits on its parent's.
_BLOCK: Final = 8
#: Trees explained together for the whole request before the next ones: their table
#: rows (about 90 KB per tree of our default forest) stay in the core's own cache.
_TREES: Final = 4
#: Requests of at least this many applicants are split across threads.
PARALLEL_MIN_APPLICANTS: Final = 256
#: Threads for large requests (default: the CPUs this process may use).
THREADS_ENV: Final = "CREDIT_EXPLAINER_THREADS"


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
    entry_start: IndexArray,
    entry_node: IndexArray,
    entry_feature: IndexArray,
    entry_threshold: FloatArray,
    entry_value: FloatArray,
    entry_base: IndexArray,
    tens: FloatArray,
    n_patterns: int,
    n_chunks: int,
    proba: FloatArray,
    phi: FloatArray,
) -> None:  # pragma: no cover - compiled by numba, inlined into _explain_kernel
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
            left = split_left[i]
            right_child = split_right[i]
            for k in range(bw):
                p = pattern[node, k]
                right = np.int64(xt[f, s0 + k] > threshold)
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
            for k in range(bw):
                p = pattern[node, k]
                outcome = (
                    np.int64(xt[f0, s0 + k] > t0)
                    + 2 * np.int64(xt[f1, s0 + k] > t1)
                    + 4 * np.int64(xt[f2, s0 + k] > t2)
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


def _explain_kernel(
    x: FloatArray,
    fill: FloatArray,
    max_nodes: int,
    split_start: IndexArray,
    split_node: IndexArray,
    split_feature: IndexArray,
    split_threshold: FloatArray,
    split_left: IndexArray,
    split_right: IndexArray,
    split_bit: IndexArray,
    entry_start: IndexArray,
    entry_node: IndexArray,
    entry_feature: IndexArray,
    entry_threshold: FloatArray,
    entry_value: FloatArray,
    entry_base: IndexArray,
    n_patterns: int,
    group: int,
    group_entries: int,
    table: FloatArray,
    base_value: float,
    proba: FloatArray,
    phi: FloatArray,
) -> float:  # pragma: no cover - compiled by numba; tested through FastTreeExplainer
    """Explain the rows of ``x`` into ``proba`` and ``phi``; return the largest additivity gap.

    ``x`` holds raw inputs, NaN where missing: they are filled with ``fill`` (the
    imputer's statistics) and rounded to float32, as sklearn compares them. Groups
    of ``group`` trees outside (:data:`_TREES`), blocks of :data:`_BLOCK` applicants
    inside: a group's tables stay in the core's cache for the whole request. Per
    tree and block, one pass over the splits
    propagates the applicants' patterns (branch-free: the comparisons are
    unpredictable), one pass over the entries turns them into table rows, then
    each applicant sums its rows in registers, ten features at a time (explicit
    scalars: an accumulator array would go through memory). Probabilities add
    the trees' leaf values in tree order, then divide: sklearn's arithmetic.
    """
    n_samples, n_features = x.shape
    n_trees = split_start.shape[0] - 1
    width = table.shape[2]
    n_chunks = width // 10
    tens = table.reshape(-1, 10)  # a table row is n_chunks runs of ten features
    xt = np.empty((n_features, n_samples))  # feature-major: a block's values side by side
    for s in range(n_samples):
        for f in range(n_features):
            v = x[s, f]
            if np.isnan(v):
                v = fill[f]
            xt[f, s] = np.float64(np.float32(v))
    # Scratch sized for the request (``group_entries``: the most entries a group of trees
    # has): small enough for a lone applicant's to come from malloc's per-thread cache
    # (a large block after other work costs microseconds).
    bw = min(_BLOCK, n_samples)
    pattern = np.empty((max_nodes, bw), dtype=np.int64)
    rows = np.empty((group_entries, bw), dtype=np.int64)
    for s in range(n_samples):
        proba[s] = 0.0
        for j in range(width):
            phi[s, j] = 0.0
    for t_lo in range(0, n_trees, group):
        t_hi = min(t_lo + group, n_trees)
        for s0 in range(0, n_samples, _BLOCK):
            nb = min(_BLOCK, n_samples - s0)
            # The same inlined body twice: with the block width a constant (whole blocks:
            # unrolled, vectorised) and as a variable (the last, partial block).
            if nb == _BLOCK:
                _block_jit(
                    xt, s0, _BLOCK, t_lo, t_hi, pattern, rows,
                    split_start, split_node, split_feature, split_threshold,
                    split_left, split_right, split_bit,
                    entry_start, entry_node, entry_feature, entry_threshold, entry_value,
                    entry_base, tens, n_patterns, n_chunks, proba, phi,
                )  # fmt: skip
            else:
                _block_jit(
                    xt, s0, nb, t_lo, t_hi, pattern, rows,
                    split_start, split_node, split_feature, split_threshold,
                    split_left, split_right, split_bit,
                    entry_start, entry_node, entry_feature, entry_threshold, entry_value,
                    entry_base, tens, n_patterns, n_chunks, proba, phi,
                )  # fmt: skip
    gap = 0.0
    for s0 in range(0, n_samples, _BLOCK):
        nb = min(_BLOCK, n_samples - s0)
        for k in range(nb):
            proba[s0 + k] /= n_trees
            total = base_value
            for j in range(width):
                total += phi[s0 + k, j]
            d = abs(total - proba[s0 + k])
            if d > gap or d != d:  # NaN sticks
                gap = d
    return gap


#: Layout of the packed integer arrays (:func:`_pack`): a header, then the arrays.
#: max_nodes, n_trees, n_splits, n_entries, n_patterns, trees per pass, most entries per pass
_HEADER: Final = 7


def _explain_packed(
    x: FloatArray,
    ints: IndexArray,
    floats: FloatArray,
    table: FloatArray,
    proba: FloatArray,
    phi: FloatArray,
) -> float:  # pragma: no cover - compiled by numba; tested through FastTreeExplainer
    """:func:`_explain_kernel` on the forest packed into two arrays (:func:`_pack`).

    The kernel's entry point: six arguments instead of nineteen. A call pays per
    argument (type check, unboxing), and on a lone request, whose data is not in
    the CPU caches, each array object costs a few memory fetches.
    """
    max_nodes = ints[0]
    n_trees = ints[1]
    n_splits = ints[2]
    n_entries = ints[3]
    n_patterns = ints[4]
    group = ints[5]
    group_entries = ints[6]
    n_features = x.shape[1]
    a = _HEADER
    split_start = ints[a : a + n_trees + 1]
    a += n_trees + 1
    split_node = ints[a : a + n_splits]
    split_feature = ints[a + n_splits : a + 2 * n_splits]
    split_left = ints[a + 2 * n_splits : a + 3 * n_splits]
    split_right = ints[a + 3 * n_splits : a + 4 * n_splits]
    split_bit = ints[a + 4 * n_splits : a + 5 * n_splits]
    a += 5 * n_splits
    entry_start = ints[a : a + n_trees + 1]
    a += n_trees + 1
    entry_node = ints[a : a + n_entries]
    a += n_entries
    entry_feature = ints[a : a + 3 * n_entries].reshape(n_entries, 3)
    a += 3 * n_entries
    entry_base = ints[a : a + n_entries]
    fill = floats[:n_features]
    base_value = floats[n_features]
    b = n_features + 1
    split_threshold = floats[b : b + n_splits]
    b += n_splits
    entry_threshold = floats[b : b + 3 * n_entries].reshape(n_entries, 3)
    b += 3 * n_entries
    entry_value = floats[b : b + 8 * n_entries].reshape(n_entries, 8)
    return _kernel_jit(
        x, fill, max_nodes,
        split_start, split_node, split_feature, split_threshold,
        split_left, split_right, split_bit,
        entry_start, entry_node, entry_feature, entry_threshold, entry_value,
        entry_base, n_patterns, group, group_entries, table, base_value, proba, phi,
    )  # fmt: skip


def _pack(c: CompiledForest, fill: FloatArray) -> tuple[IndexArray, FloatArray]:
    """The forest's arrays (all but the table) as one int32 and one float64 array.

    int32: half the bytes a lone request reads (every split and entry, from memory
    when the caches are cold); node numbers, offsets and rows are far below 2**31.
    """
    starts = c.entry_start
    group_entries = max(
        (starts[min(t + _TREES, c.n_trees)] - starts[t] for t in range(0, c.n_trees, _TREES)),
        default=0,
    )
    header = [c.max_nodes, c.n_trees, c.split_node.shape[0], c.n_entries, 1 << c.depth]
    ints = np.concatenate(
        [
            [*header, _TREES, group_entries],
            c.split_start,
            c.split_node,
            c.split_feature,
            c.split_left,
            c.split_right,
            c.split_bit,
            c.entry_start,
            c.entry_node,
            c.entry_feature.ravel(),
            c.entry_base,
        ]
    )
    if ints.min() < np.iinfo(np.int32).min or ints.max() > np.iinfo(np.int32).max:
        raise UnsupportedModelError("the forest is too large for the kernel's int32 indices")
    floats = np.concatenate(
        [
            fill,
            [c.base_value],
            c.split_threshold,
            c.entry_threshold.ravel(),
            c.entry_value.ravel(),
        ]
    ).astype(np.float64)
    return ints.astype(np.int32), floats


#: A transparent huge page (x86-64 and arm64 Linux with 4 KiB base pages).
_HUGE_PAGE: Final = 2 * 1024 * 1024
_ALIGN: Final = 64  # each array starts on its own cache line


def _on_huge_pages(*arrays: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], ...]:
    """Copies of ``arrays``, side by side in one mapping advised to use huge pages.

    A lone request reads a table row per entry, scattered over the whole table
    (4.4 MB for our default forest), and every split and entry: on 4 KiB pages,
    hundreds of pages whose translations other work has evicted since the last
    request, placed wherever the heap had room (so one process runs faster than
    the next). On 2 MiB pages the kernel's data is three pages, in the same
    layout every time. Measured with ``tests/bench/cold_steps.py``, twelve
    processes each: one applicant after the original path, median 156 us
    (148-182) against 164 (135-222) on the heap. Linux backs the mapping with
    huge pages when transparent huge pages are enabled (``always`` or
    ``madvise``); elsewhere, and for arrays smaller than one huge page in all
    (a small forest: few pages to miss, and a huge page would be mostly empty
    memory), the arrays are returned as they are.
    """
    spans = [-(-a.nbytes // _ALIGN) * _ALIGN for a in arrays]
    if not hasattr(mmap, "MADV_HUGEPAGE") or sum(spans) < _HUGE_PAGE:  # not Linux; small
        return arrays
    size = -(-sum(spans) // _HUGE_PAGE) * _HUGE_PAGE
    # One huge page more than needed, to start on a huge page boundary: pages never
    # touched (before the start, after the end) take address space, not memory.
    area = mmap.mmap(-1, size + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        area.madvise(mmap.MADV_HUGEPAGE)
    except OSError as exc:  # a kernel without transparent huge pages
        log.info("huge pages unavailable for the SHAP tables: %s", exc)
        area.close()
        return arrays
    raw = np.frombuffer(area, dtype=np.uint8)  # keeps the mapping alive
    start = -raw.ctypes.data % _HUGE_PAGE
    copies = []
    for a, span in zip(arrays, spans, strict=True):
        copy = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
        copy[...] = a
        copies.append(copy)
        start += span
    return tuple(copies)


def _numba_kernel() -> Any:
    """Compile the kernel with numba, caching the machine code on disk when possible.

    Compiled with LLVM's SLP vectoriser (numba leaves it off by default): it packs
    the kernel's independent scalar additions into SIMD instructions without
    reordering any of them, so the results are the same bit for bit.
    """
    import numba
    from numba.core import config

    def compile_now(cache: bool) -> Any:
        global _block_jit, _kernel_jit
        _block_jit = numba.njit(inline="always", nogil=True)(_explain_block)
        _kernel_jit = numba.njit(nogil=True)(_explain_kernel)
        kernel = numba.njit(cache=cache, nogil=True)(_explain_packed)
        slp = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            kernel.compile(_SIGNATURE)
        finally:
            config.SLP_VECTORIZE = slp
        return kernel

    try:
        return compile_now(cache=True)
    except RuntimeError as exc:  # no writable cache location (read-only install)
        log.info("numba cache unavailable, compiling in memory: %s", exc)
    return compile_now(cache=False)


_SIGNATURE: Final = (
    "float64(float64[:, ::1], int32[::1], float64[::1], float64[:, :, ::1], "
    "float64[::1], float64[:, ::1])"
)

_KERNEL: Any = None
_POOL: Any = None
_block_jit: Any = None  # _explain_block compiled for inlining (set when compiling the kernel)
_kernel_jit: Any = None  # _explain_kernel, called (not inlined: 2 s less to compile)


def _kernel() -> Any:
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _numba_kernel()
    return _KERNEL


def _entry_point(kernel: Any) -> Any:
    """The compiled kernel itself, called without numba's dispatcher.

    The dispatcher types every argument and looks the signature up on each call:
    about 6 us of a lone request's time when the CPU caches are cold (measured
    after the original blog path), 1 us warm. The explainer builds every argument
    itself with the one signature's types (C-contiguous float64 and int32 arrays),
    so the check could never fail there. (An input at an odd byte offset, which
    numba would type unaligned, goes through as well: the kernel reads it with
    loads that take any address on x86-64 and arm64; a test covers it.) The
    dispatcher if numba does not expose the entry point.
    """
    try:
        (compiled,) = kernel.overloads.values()
        return compiled.entry_point
    except (AttributeError, ValueError):  # another numba: keep the checked call
        return kernel


def default_threads() -> int:
    """:data:`THREADS_ENV`, else the CPUs this process may run on."""
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured:
        threads = int(configured)
        if threads < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, not {configured!r}")
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _pool(threads: int) -> Any:
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="treeshap")
    return _POOL


class FastTreeExplainer:
    """Exact path-dependent TreeSHAP of an (imputer +) binary sklearn forest.

    Implements the ``credit_model.explain`` Explainer protocol: ``base_value``
    and ``explain(X) -> (proba[n], shap[n, n_features])`` on raw inputs (NaN
    where missing, filled with ``fill_values``, the imputer's statistics), plus
    :meth:`explain_checked`, which also returns the largest additivity gap.
    Requests of :data:`PARALLEL_MIN_APPLICANTS` or more are split across
    ``threads`` threads (the compiled kernel runs without the GIL).
    """

    __slots__ = (
        "_call",
        "_floats",
        "_ints",
        "_kernel",
        "_n_features",
        "_table",
        "_width",
        "base_value",
        "compiled",
        "fill_values",
        "threads",
    )

    def __init__(
        self,
        forest: Any,
        *,
        fill_values: npt.ArrayLike | None = None,
        threads: int | None = None,
    ) -> None:
        self.compiled = compile_forest(forest)
        c = self.compiled
        self.fill_values: FloatArray | None = None
        if fill_values is not None:
            fill = np.asarray(fill_values, dtype=np.float64)
            if fill.shape != (c.n_features,) or not np.all(np.isfinite(fill)):
                raise UnsupportedModelError("fill values must be one finite number per feature")
            self.fill_values = fill
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self.base_value: float = c.base_value
        fill = (
            np.ascontiguousarray(self.fill_values)
            if self.fill_values is not None
            else np.full(c.n_features, np.nan)
        )
        self._ints, self._floats, self._table = _on_huge_pages(*_pack(c, fill), c.table)
        self.compiled = c = replace(c, table=self._table)  # one copy of the table
        self._width = int(c.table.shape[2])
        self._kernel = _kernel()
        self._call = _entry_point(self._kernel)
        self._n_features = c.n_features
        self.warm_up()

    def warm_up(self) -> None:
        """Compile (or load from cache) the kernel now rather than on the first request."""
        x = np.zeros((1, self.compiled.n_features))
        if self.fill_values is not None:
            x[:] = self.fill_values
        self.explain(x)

    def explain(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        proba, phi, _ = self.explain_checked(X)
        return proba, phi

    def explain_checked(self, X: npt.ArrayLike) -> tuple[FloatArray, FloatArray, float]:
        """``(proba, shap, gap)``: :meth:`explain` and ``max |base + sum(shap) - proba|``."""
        x = np.ascontiguousarray(X, dtype=np.float64)
        shape = x.shape
        m = self._n_features
        if len(shape) != 2 or shape[1] != m:
            raise ValueError(f"expected an array of shape (n, {m}), got {shape}")
        if self.fill_values is None and np.isnan(x).any():
            raise ValueError("missing values and no imputer statistics to fill them")
        n = shape[0]
        proba = np.empty(n)
        phi = np.empty((n, self._width))
        if n < PARALLEL_MIN_APPLICANTS or self.threads < 2:
            gap = self._call(x, self._ints, self._floats, self._table, proba, phi)
        else:
            # Chunks of whole blocks, one per thread; the kernel releases the GIL. This
            # thread explains the first chunk itself: one thread fewer to wake, and the
            # request's data is already in its cache.
            threads = min(self.threads, n // (PARALLEL_MIN_APPLICANTS // 2))
            step = -(-n // (threads * _BLOCK)) * _BLOCK

            def chunk(a: int) -> float:
                b = min(a + step, n)
                args = (self._ints, self._floats, self._table)
                return float(self._call(x[a:b], *args, proba[a:b], phi[a:b]))

            others = [_pool(threads - 1).submit(chunk, a) for a in range(step, n, step)]
            gaps = [chunk(0)] + [future.result() for future in others]
            gap = max(gaps, key=lambda g: math.inf if math.isnan(g) else g)
        if self._width != m:  # padded to whole runs of ten
            phi = phi[:, :m]
        return proba, phi, float(gap)


def fast_explainer_for(pipeline: Any, *, threads: int | None = None) -> FastTreeExplainer:
    """A :class:`FastTreeExplainer` for ``forest`` or ``Pipeline([imputer, forest])``.

    Raises :class:`UnsupportedModelError` for anything else (the caller falls back to shap).
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline):
        return FastTreeExplainer(pipeline, threads=threads)
    steps = [step for _, step in pipeline.steps if step not in (None, "passthrough")]
    if len(steps) == 1:
        return FastTreeExplainer(steps[0], threads=threads)
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
    return FastTreeExplainer(steps[1], fill_values=stats, threads=threads)
