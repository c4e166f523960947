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
