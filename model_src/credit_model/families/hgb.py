"""scikit-learn's HistGradientBoostingClassifier (binary): summed margins, logistic link.

Compared in float64 as ``x <= num_threshold`` (ties go left); a missing value goes the
way the split learned (``missing_go_to_left``). Categorical splits (bitsets) are not
covered: categorical features arrive as ordinal codes and are split as numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from ..ensemble import LEAF, Ensemble, Tree, UnsupportedModelError

NAME: Final = "hgb"
#: How far the library's own outputs (predict_proba, its SHAP values) may be from ours beyond 1e-9 (float64 throughout: the tolerance of additivity).
AGREEMENT: Final = 0.0
LIBRARY: Final = "scikit-learn"
MODEL_FILE: Final = "model.skops"
#: The one type beyond the forest's that skops must be told to trust for this family.
TRUSTED_TYPES: Final = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def build(hp: Any, monotonic_cst: list[int] | None) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=hp.n_estimators,
        learning_rate=hp.learning_rate,
        max_depth=hp.max_depth,
        max_leaf_nodes=hp.max_leaf_nodes,
        early_stopping=False,
        random_state=hp.random_state,
        monotonic_cst=monotonic_cst,
    )


def _tree(nodes: Any) -> Tree:
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(
        left=np.where(leaf, LEAF, nodes["left"].astype(np.int64)),
        right=np.where(leaf, LEAF, nodes["right"].astype(np.int64)),
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_right=1 - nodes["missing_go_to_left"].astype(np.int64),
        value=nodes["value"].astype(np.float64),
        cover=nodes["count"].astype(np.float64),
    )


def to_ensemble(model: Any) -> Ensemble:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not isinstance(model, HistGradientBoostingClassifier) or not hasattr(model, "_predictors"):
        raise UnsupportedModelError(f"{type(model).__name__} is not a fitted HistGradientBoosting")
    if list(model.classes_) != [0, 1]:
        raise UnsupportedModelError("only classifiers of classes 0 and 1 are covered")
    trees = []
    for (predictor,) in model._predictors:
        if predictor.nodes["is_categorical"].any():
            raise UnsupportedModelError("native categorical splits are not covered")
        trees.append(_tree(predictor.nodes))
    return Ensemble(
        trees=tuple(trees),
        n_features=int(model.n_features_in_),
        divisor=1.0,
        offset=float(np.asarray(model._baseline_prediction).ravel()[0]),
        link="logistic",
        float32_inputs=False,
    )


def save(model: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(model, path)


def load(path: Path) -> Any:
    from ..artifacts import load_skops

    return load_skops(path, TRUSTED_TYPES)
