"""XGBoost (``binary:logistic``): summed float32 margins plus the base score, logistic link.

XGBoost sends ``x`` left when ``float32(x) < split_condition``; with both sides float32
that is ``float32(x) <= the float32 just below split_condition``, the threshold kept
here. A missing value goes ``default_left``. Read from the model's JSON, so any
XGBoost model file (JSON or UBJSON) compiles without scikit-learn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..ensemble import Ensemble, Tree, UnsupportedModelError

NAME: Final = "xgboost"
#: How far the library's own outputs (predict_proba, its SHAP values) may be from ours beyond 1e-9 (XGBoost sums float32 leaves in float32).
AGREEMENT: Final = 1e-6
LIBRARY: Final = "xgboost"
MODEL_FILE: Final = "model.ubj"


def build(hp: Any, monotonic_cst: list[int] | None) -> Any:
    import xgboost

    return xgboost.XGBClassifier(
        n_estimators=hp.n_estimators,
        learning_rate=hp.learning_rate,
        max_depth=hp.max_depth or 0,
        max_leaves=hp.max_leaf_nodes or 0,
        tree_method="hist",
        random_state=hp.random_state,
        n_jobs=None if hp.n_jobs == -1 else hp.n_jobs,
        monotone_constraints=tuple(monotonic_cst) if monotonic_cst else None,
    )


def _booster_json(model: Any) -> dict[str, Any]:
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    parsed: dict[str, Any] = json.loads(bytes(booster.save_raw("json")))
    return parsed


def _below(threshold: float) -> float:
    """The float32 just below ``threshold`` (a float32): ``x < t`` as ``x <= t'``."""
    return float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))


def _tree(tree: dict[str, Any]) -> Tree:
    left = np.asarray(tree["left_children"], dtype=np.int64)
    if any(int(t) != 0 for t in tree.get("split_type", [])):
        raise UnsupportedModelError("native categorical splits are not covered")
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
    leaf = left == -1
    return Tree(
        left=left,
        right=np.asarray(tree["right_children"], dtype=np.int64),
        feature=np.asarray(tree["split_indices"], dtype=np.int64),
        threshold=np.array(
            [math.inf if lf else _below(c) for c, lf in zip(conditions, leaf, strict=True)]
        ),
        missing_right=1 - np.asarray(tree["default_left"], dtype=np.int64),
        value=np.where(leaf, conditions.astype(np.float64), 0.0),  # a leaf's value is there
        cover=np.asarray(tree["sum_hessian"], dtype=np.float64),
    )


def to_ensemble(model: Any) -> Ensemble:
    learner = _booster_json(model)["learner"]
    if learner["objective"]["name"] != "binary:logistic":
        raise UnsupportedModelError(
            f"only binary:logistic is covered, not {learner['objective']['name']}"
        )
    params = learner["learner_model_param"]
    if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
        raise UnsupportedModelError("only single-output binary models are covered")
    booster = learner["gradient_booster"]
    if booster["name"] != "gbtree":
        raise UnsupportedModelError(f"only gbtree boosters are covered, not {booster['name']}")
    base = float(np.float32(str(params["base_score"]).strip("[]")))
    return Ensemble(
        trees=tuple(_tree(t) for t in booster["model"]["trees"]),
        n_features=int(params["num_feature"]),
        divisor=1.0,
        offset=math.log(base) - math.log1p(-base),  # base_score is a probability
        link="logistic",
        float32_inputs=True,
    )


def save(model: Any, path: Path) -> None:
    model.save_model(str(path))


def load(path: Path) -> Any:
    import xgboost

    model = xgboost.XGBClassifier()
    model.load_model(str(path))
    return model
