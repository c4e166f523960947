"""scikit-learn's RandomForest and ExtraTrees (binary): averaged class-1 proportions.

Inputs are cast to float32 before ``x <= threshold`` (ties go left); the imputer in
front of the forest fills missing values.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from ..ensemble import Ensemble, Tree, UnsupportedModelError

NAME: Final = "rf"
#: How far the library's own outputs (predict_proba, its SHAP values) may be from ours beyond 1e-9 (float64 throughout: the tolerance of additivity).
AGREEMENT: Final = 0.0
#: Out-of-bag rows the leaf calibration is fitted on at most: two parameters need few.
CALIBRATION_ROWS: Final = 50_000
#: How close to 0 or 1 a pure leaf's proportion is read before its logit.
LEAF_FLOOR: Final = 1e-4
NO_OUT_OF_BAG: Final = (
    "the leaf calibration is fitted on out-of-bag rows: --bootstrap false needs "
    "--leaf-calibration none"
)


def check(model: Any) -> None:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    if not isinstance(model, RandomForestClassifier | ExtraTreesClassifier):
        raise UnsupportedModelError(f"{type(model).__name__} is not a fitted sklearn forest")
    if not hasattr(model, "estimators_"):
        raise UnsupportedModelError("the forest is not fitted")
    if getattr(model, "n_outputs_", 1) != 1 or list(model.classes_) != [0, 1]:
        raise UnsupportedModelError("only single-output classifiers of classes 0 and 1 are covered")


def _tree(est: Any) -> Tree:
    tree = est.tree_
    n = int(tree.node_count)
    value = tree.value.reshape(n, -1).astype(np.float64)
    return Tree(
        left=tree.children_left.astype(np.int64),
        right=tree.children_right.astype(np.int64),
        feature=tree.feature.astype(np.int64),
        threshold=tree.threshold.astype(np.float64),
        # NaN's way at each split (scikit-learn >= 1.3 routes them natively; behind the
        # imputer no NaN reaches a split).
        missing_right=1 - tree.missing_go_to_left.astype(np.int64),
        value=value[:, 1] / value.sum(axis=1),  # shap's normalize=True and sklearn's normaliser
        cover=tree.weighted_n_node_samples.astype(np.float64),
    )


def to_ensemble(model: Any) -> Ensemble:
    """The forest in the one ensemble form (raises ``UnsupportedModelError``)."""
    check(model)
    trees = tuple(_tree(est) for est in model.estimators_)
    return Ensemble(
        trees=trees,
        n_features=int(model.n_features_in_),
        divisor=float(len(trees)),
        offset=0.0,
        link="identity",
        float32_inputs=True,
    )


def supports(model: Any) -> bool:
    from ..forest import path_features_within_bound

    try:
        ensemble = to_ensemble(model)
    except UnsupportedModelError:
        return False
    return all(path_features_within_bound(t) for t in ensemble.trees)


def calibrate_leaves(model: Any, X: np.ndarray, y: np.ndarray, *, seed: int) -> dict[str, Any]:
    """Re-fit the fitted forest's class-1 proportions in place: ``v -> expit(a logit(v) + b)``.

    Averaging trees pulls the probabilities towards the mean (a forest under-predicts its
    riskiest applicants); ``a > 0`` and ``b`` minimise the out-of-bag log loss, each training
    row (``X`` as the forest was fitted on it) scored only by the trees that did not draw it.
    The map is increasing, so monotonic constraints still hold (pure leaves are read as
    ``LEAF_FLOOR`` from 0 or 1); each internal node keeps the cover-weighted mean of its
    children, as a fitted tree does (tree plots and Saabas attributions read them).
    """
    from scipy.optimize import minimize
    from scipy.special import expit, logit

    if not getattr(model, "bootstrap", False):
        raise ValueError(NO_OUT_OF_BAG)
    trees = [est.tree_ for est in model.estimators_]
    oob = np.ones((len(y), len(trees)), dtype=bool)
    for t, drawn in enumerate(model.estimators_samples_):
        oob[drawn, t] = False
    rows = np.flatnonzero(oob.any(axis=1))
    if not len(rows):  # every row drawn by every tree (a handful of rows): nothing to fit on
        return {"method": "none: no out-of-bag row", "rows": 0}
    if len(rows) > CALIBRATION_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, CALIBRATION_ROWS, replace=False))
    oob, target = oob[rows], np.asarray(y, dtype=np.float64)[rows]
    votes = oob.sum(axis=1)
    leaves = model.apply(X[rows])
    proportion = [t.value[:, 0, 1] / t.value[:, 0].sum(axis=1) for t in trees]
    # A function of the proportion alone (smoothing by a leaf's size would reorder leaves and
    # break monotonic constraints); pure leaves get a finite logit.
    log_odds = [logit(np.clip(v, LEAF_FLOOR, 1 - LEAF_FLOOR)) for v in proportion]

    def oob_log_loss(node_values: list[np.ndarray]) -> float:
        p = sum(np.where(oob[:, t], v[leaves[:, t]], 0.0) for t, v in enumerate(node_values))
        p = np.clip(p / votes, 1e-15, 1 - 1e-15)
        return float(-np.mean(target * np.log(p) + (1 - target) * np.log1p(-p)))

    def log_loss(theta: np.ndarray) -> float:  # slope exp(theta[0]) > 0: the map increases
        return oob_log_loss([expit(np.exp(theta[0]) * z + theta[1]) for z in log_odds])

    fit = minimize(log_loss, np.array([0.0, 0.0]), method="Nelder-Mead",
                   options={"xatol": 1e-8, "fatol": 1e-12})  # fmt: skip
    slope, intercept = float(np.exp(fit.x[0])), float(fit.x[1])
    for tree, z_tree in zip(trees, log_odds, strict=True):
        new = expit(slope * z_tree + intercept)
        left, right, cover = tree.children_left, tree.children_right, tree.weighted_n_node_samples
        for node in range(tree.node_count - 1, -1, -1):  # children come after their parent
            if left[node] != -1:
                a, b = left[node], right[node]
                new[node] = (new[a] * cover[a] + new[b] * cover[b]) / (cover[a] + cover[b])
        value = tree.value  # a writable view of the tree's own array
        total = value.sum(axis=2)
        value[:, 0, 0], value[:, 0, 1] = (1 - new) * total[:, 0], new * total[:, 0]
    return {
        "method": "out-of-bag logistic on the leaves' log-odds",
        "slope": slope,
        "intercept": intercept,
        "rows": len(rows),
        "log_loss_out_of_bag": {"before": oob_log_loss(proportion), "after": float(fit.fun)},
    }
