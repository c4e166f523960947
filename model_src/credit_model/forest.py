"""Compile a fitted scikit-learn forest into exact path-dependent TreeSHAP tables.

For one leaf ``l`` of value ``v`` whose root-to-leaf path splits on the distinct
features ``U`` (``d = |U|``), path-dependent TreeSHAP is the Shapley value of the
game ``g(S) = v * prod_{j in S} o_j(x) * prod_{j in U \\ S} z_j``, where ``z_j`` is
the product of cover ratios (``weighted_n_node_samples`` of child over parent) at
the path's splits on ``j`` and ``o_j(x)`` is 1 when ``x`` satisfies all the path's
splits on ``j``, else 0 (the idea of FastTreeSHAP v2, Yang 2021). As ``o`` is
binary, a leaf's Shapley values depend on ``x`` only through the ``d``-bit pattern
of satisfied features: they are computed here once for all ``2**d`` patterns, and
the leaves of each subtree of height two at most are summed into one table entry
(see :class:`CompiledForest`). :mod:`credit_model.kernel` then explains an
applicant with one pass over each tree's upper splits and one table row per entry.

Semantics copied from scikit-learn: inputs are cast to float32 before the
comparisons ``x <= threshold`` (ties go left), leaf values are class proportions
averaged over the trees in tree order. Covers ``RandomForestClassifier`` and
``ExtraTreesClassifier`` (binary) whose leaves split on at most
:data:`MAX_PATH_FEATURES` distinct features (:func:`supports`).

The compiled tables are saved beside the model (:func:`save_tables`), so serving
loads them with numpy alone: no scikit-learn, no recompilation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import numpy as np

from .ensemble import LEAF, Ensemble, FloatArray, IndexArray, Tree, UnsupportedModelError

__all__ = [
    "CHUNK",
    "MAX_PATH_FEATURES",
    "TABLES_FILE",
    "CompiledForest",
    "FloatArray",
    "IndexArray",
    "UnsupportedModelError",
    "compile_ensemble",
    "compile_forest",
    "load_tables",
    "save_tables",
    "supports",
]

#: Largest number of distinct features on one root-to-leaf path the tables cover
#: (a leaf's table has ``2**d * d`` entries).
MAX_PATH_FEATURES: Final = 8
#: Largest total size of the SHAP tables, in float64 entries (512 MiB).
MAX_TABLE_ENTRIES: Final = 64 * 1024 * 1024

#: Features summed per pass of the kernel (one register each): table rows are padded to it.
CHUNK: Final = 10



@dataclass(frozen=True, slots=True)
class CompiledForest:
    """A forest as flat arrays, with per-leaf SHAP tables (see the module docstring).

    Splits and table entries of all trees are concatenated tree after tree;
    splits in sklearn's preorder (a parent before its children). Node numbers
    (``split_node``, ``split_left``, ``split_right``, ``entry_node``) are the
    tree's own. ``slot`` numbers the distinct features along a path in order of
    first appearance, so a split's slot is the same for every leaf below it.

    An entry is a subtree of height two at most (a leaf, a split over two leaves,
    or a split over one or two such splits). Its splits (the root, its
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
    ``table``, entry after entry.
    """

    n_features: int
    n_trees: int
    depth: int  #: D: slots per leaf (the largest d in the forest); patterns are D-bit
    max_nodes: int  #: node count of the largest tree
    split_start: IndexArray  #: [n_trees + 1] first split of each tree
    split_node: IndexArray  #: [n_splits] node number of the split
    split_feature: IndexArray  #: [n_splits] feature compared
    split_threshold: FloatArray  #: [n_splits] threshold (x <= threshold goes left)
    split_left: IndexArray  #: [n_splits] node number of the left child
    split_right: IndexArray  #: [n_splits] node number of the right child
    split_bit: IndexArray  #: [n_splits] 1 << slot of the split's feature
    split_missing: IndexArray  #: [n_splits] 1 where a missing value goes right
    entry_start: IndexArray  #: [n_trees + 1] first entry of each tree
    entry_node: IndexArray  #: [n_entries] root node: its pattern indexes the table
    entry_feature: IndexArray  #: [n_entries, 3] features of the entry's splits
    entry_threshold: FloatArray  #: [n_entries, 3] their thresholds (absent split: +inf)
    entry_missing: IndexArray  #: [n_entries, 3] 1 where a missing value goes right
    entry_value: FloatArray  #: [n_entries, 8] value of the leaf reached, by outcome
    #: [n_entries] the entry's rows in ``table`` are ``entry_base + pattern`` (see below)
    entry_base: IndexArray
    table: FloatArray  #: [n_rows, 8, width] SHAP values by (entry and pattern, outcome)
    base_value: float  #: the expected raw output (shap's expected_value)
    divisor: float = 1.0  #: raw = sum of the trees' leaf values / divisor + offset
    offset: float = 0.0
    logistic: int = 0  #: 1: probability = expit(raw) (boosting), 0: probability = raw
    float32_inputs: int = 1  #: 1: inputs rounded to float32 before comparing

    @property
    def n_entries(self) -> int:
        return int(self.entry_node.shape[0])


def supports(model: Any) -> bool:
    """Whether :func:`compile_forest` covers ``model`` (type, classes, paths' features)."""
    from .families import forest

    return forest.supports(model)


def path_features_within_bound(tree: Tree) -> bool:
    """Whether every root-to-leaf path of ``tree`` splits on at most
    :data:`MAX_PATH_FEATURES` distinct features."""
    stack: list[tuple[int, frozenset[int]]] = [(0, frozenset())]
    while stack:
        node, feats = stack.pop()
        if tree.left[node] == LEAF:
            continue
        feats = feats | {int(tree.feature[node])}
        if len(feats) > MAX_PATH_FEATURES:
            return False
        stack.append((int(tree.left[node]), feats))
        stack.append((int(tree.right[node]), feats))
    return True


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
    from .families import forest

    return compile_ensemble(forest.to_ensemble(model))


def compile_ensemble(ensemble: Ensemble) -> CompiledForest:
    """Precompute the SHAP tables of any family's trees (see the module docstring).

    Raises :class:`UnsupportedModelError` when a path splits on too many features or
    the tables would be too large.
    """
    n_trees = len(ensemble.trees)
    if n_trees == 0:
        raise UnsupportedModelError("the ensemble has no trees")
    scaling = 1.0 / ensemble.divisor

    splits: list[tuple[int, int, float, int, int, int, int]] = []
    split_start = [0]
    leaf_nodes: list[int] = []
    leaf_values: list[float] = []
    leaf_slot_features: list[tuple[int, ...]] = []
    leaf_zero: list[tuple[float, ...]] = []
    leaf_start = [0]
    expected = 0.0  # sum over leaves of value x product of zero fractions: exactly g(empty)
    max_nodes = 1
    for tree in ensemble.trees:
        n = int(tree.left.shape[0])
        max_nodes = max(max_nodes, n)
        cl = tree.left.astype(np.int64)
        cr = tree.right.astype(np.int64)
        feat = tree.feature.astype(np.int64)
        thr = tree.threshold.astype(np.float64)
        miss = tree.missing_right.astype(np.int64)
        cover = tree.cover.astype(np.float64)
        value = tree.value.astype(np.float64)
        # Preorder walk carrying the distinct features on the path so far (slot
        # order) and the zero fraction accumulated per slot.
        stack: list[tuple[int, tuple[int, ...], tuple[float, ...]]] = [(0, (), ())]
        while stack:
            node, path_feats, path_zero = stack.pop()
            if cl[node] == LEAF:
                if len(path_feats) > MAX_PATH_FEATURES:
                    raise UnsupportedModelError(
                        f"a leaf splits on {len(path_feats)} distinct features; "
                        f"the fast path covers up to {MAX_PATH_FEATURES}"
                    )
                leaf_nodes.append(node)
                leaf_values.append(float(value[node]))
                leaf_slot_features.append(path_feats)
                leaf_zero.append(path_zero)
                expected += float(value[node]) * math.prod(path_zero)
                continue
            f = int(feat[node])
            if f in path_feats:
                k = path_feats.index(f)
                feats = path_feats
            else:
                k = len(path_feats)
                feats = (*path_feats, f)
                path_zero = (*path_zero, 1.0)
            splits.append(
                (node, f, float(thr[node]), int(cl[node]), int(cr[node]), 1 << k, int(miss[node]))
            )
            for child in (int(cr[node]), int(cl[node])):
                zero = list(path_zero)
                zero[k] *= cover[child] / cover[node]
                stack.append((child, feats, tuple(zero)))
        split_start.append(len(splits))
        leaf_start.append(len(leaf_values))

    depth = max(len(f) for f in leaf_slot_features)
    n_leaves = len(leaf_values)
    # An entry's table has 8 outcomes per pattern; there are fewer entries than leaves.
    n_features = ensemble.n_features
    if 8 * n_leaves * (1 << depth) * n_features > MAX_TABLE_ENTRIES:
        raise UnsupportedModelError("the ensemble's SHAP tables would be too large")

    # Pad every leaf to `depth` slots with null players (z = 1, always satisfied):
    # their Shapley value is exactly 0 and the others' are unchanged.
    n_patterns = 1 << depth
    zeros = np.ones((n_leaves, depth))
    slot_feature = np.zeros((n_leaves, depth), dtype=np.int64)
    for i, (fs, zs) in enumerate(zip(leaf_slot_features, leaf_zero, strict=True)):
        zeros[i, : len(zs)] = zs
        slot_feature[i, : len(fs)] = fs
    values = np.asarray(leaf_values) * scaling
    # Tables indexed by feature, not slot: the kernel adds one contiguous row per
    # leaf (vectorised), rather than scattering through an index.
    width = CHUNK * -(-n_features // CHUNK)  # padded to whole chunks (zero columns)
    table = np.zeros((n_leaves, n_patterns, width))
    if depth:
        coeff = _shapley_coefficients(depth)  # [P, D, P]
        sums = _zero_fraction_products(zeros) @ coeff.reshape(n_patterns * depth, n_patterns).T
        sums = sums.reshape(n_leaves, n_patterns, depth)  # [L, P, D]
        pattern = np.arange(n_patterns)
        one = ((pattern[:, None] >> np.arange(depth)[None, :]) & 1).astype(np.float64)  # [P, D]
        by_slot = (one[None, :, :] - zeros[:, None, :]) * sums * values[:, None, None]
        leaf_index = np.arange(n_leaves)[:, None, None]
        np.add.at(
            table,
            (leaf_index, pattern[None, :, None], slot_feature[:, None, :]),
            by_slot,
        )

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
        base_value=expected * scaling + ensemble.offset,
        ensemble=ensemble,
    )


def _with_subtrees(
    *,
    n_features: int,
    n_trees: int,
    depth: int,
    max_nodes: int,
    splits: list[tuple[int, int, float, int, int, int, int]],
    split_start: list[int],
    leaf_nodes: list[int],
    leaf_values: list[float],
    leaf_start: list[int],
    table: FloatArray,
    base_value: float,
    ensemble: Ensemble,
) -> CompiledForest:
    """Group every subtree of height two at most into one table entry."""
    kept: list[tuple[int, int, float, int, int, int, int]] = []
    kept_start = [0]
    roots: list[int] = []
    features: list[tuple[int, int, int]] = []
    thresholds: list[tuple[float, float, float]] = []
    missing: list[tuple[int, int, int]] = []
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
        for node, _, _, left, right, _, _ in reversed(splits[split_start[t] : split_start[t + 1]]):
            height[node] = 1 + max(height[left], height[right])  # preorder: children first here
        entry_roots = [0] if height[0] <= 2 else []
        mask = {0: 0}  # the pattern bits the splits above a node can clear
        for row in splits[split_start[t] : split_start[t + 1]]:
            node, _, _, left, right, bit, _ = row
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
                missing.append((0, 0, 0))
                bits.append((0, 0, 0))
                leaves.append([(leaf_of[root], ())])
                continue
            _, f0, t0, left, right, b0, m0 = split_of[root]
            fs = [f0, 0, 0]
            thr = [t0, math.inf, math.inf]
            ms = [m0, 0, 0]  # an absent split sends missing values left too: never right
            bs = [b0, 0, 0]
            found: list[tuple[int, tuple[tuple[int, int], ...]]] = []
            for side, child, position in ((0, left, 1), (1, right, 2)):
                if child in leaf_of:
                    found.append((leaf_of[child], ((0, side),)))
                    continue
                _, fc, tc, cl, cr, bc, mc = split_of[child]
                fs[position], thr[position], bs[position], ms[position] = fc, tc, bc, mc
                found.append((leaf_of[cl], ((0, side), (position, 0))))
                found.append((leaf_of[cr], ((0, side), (position, 1))))
            features.append((fs[0], fs[1], fs[2]))
            thresholds.append((thr[0], thr[1], thr[2]))
            missing.append((ms[0], ms[1], ms[2]))
            bits.append((bs[0], bs[1], bs[2]))
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

    def ints(rows: list[tuple[int, int, float, int, int, int, int]], k: int) -> IndexArray:
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
        split_missing=ints(kept, 6),
        entry_start=np.asarray(entry_start, dtype=np.int64),
        entry_node=np.asarray(roots, dtype=np.int64),
        entry_feature=np.asarray(features, dtype=np.int64).reshape(n_entries, 3),
        entry_threshold=np.asarray(thresholds, dtype=np.float64).reshape(n_entries, 3),
        entry_missing=np.asarray(missing, dtype=np.int64).reshape(n_entries, 3),
        entry_value=entry_value,
        entry_base=entry_base,
        table=entry_table,
        base_value=base_value,
        divisor=float(ensemble.divisor),
        offset=float(ensemble.offset),
        logistic=int(ensemble.link == "logistic"),
        float32_inputs=int(ensemble.float32_inputs),
    )


#: The compiled forest and the imputer's fill values, saved beside the model.
TABLES_FILE: Final = "treeshap.npz"
_SCALARS: Final = (
    "n_features",
    "n_trees",
    "depth",
    "max_nodes",
    "base_value",
    "divisor",
    "offset",
    "logistic",
    "float32_inputs",
)


def save_tables(path: str | Path, forest: CompiledForest, fill_values: FloatArray) -> None:
    """Write ``forest`` and ``fill_values`` as one ``.npz`` (plain arrays: nothing pickled)."""
    arrays: dict[str, Any] = {f.name: np.asarray(getattr(forest, f.name)) for f in fields(forest)}
    arrays["fill_values"] = np.asarray(fill_values, dtype=np.float64)
    with Path(path).open("wb") as fh:
        np.savez(fh, **arrays)


def load_tables(path: str | Path) -> tuple[CompiledForest, FloatArray]:
    """``(forest, fill_values)`` from :func:`save_tables`' file (``allow_pickle=False``)."""
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    fill = arrays.pop("fill_values")
    values: dict[str, Any] = {
        name: arrays[name].item() if name in _SCALARS else arrays[name]
        for name in (f.name for f in fields(CompiledForest))
    }
    return CompiledForest(**values), fill
