"""LightGBM (``binary``): summed margins (the initial score is in the first tree), logistic.

LightGBM compares ``x <= threshold`` in float64. A missing value goes ``default_left``
where the split's ``missing_type`` is NaN; where it is None, LightGBM reads NaN as 0,
so it goes wherever 0 goes. ``missing_type`` Zero (zeros as missing), categorical
and linear trees are not covered.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..ensemble import LEAF, Ensemble, Tree, UnsupportedModelError

NAME: Final = "lightgbm"
#: How far the library's own outputs (predict_proba, its SHAP values) may be from ours beyond 1e-9 (float64 throughout: the tolerance of additivity).
AGREEMENT: Final = 0.0
LIBRARY: Final = "lightgbm"
MODEL_FILE: Final = "model.txt"


def build(hp: Any, monotonic_cst: list[int] | None) -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(
        n_estimators=hp.n_estimators,
        learning_rate=hp.learning_rate,
        max_depth=hp.max_depth or -1,
        num_leaves=hp.max_leaf_nodes or 31,
        random_state=hp.random_state,
        n_jobs=None if hp.n_jobs == -1 else hp.n_jobs,
        monotone_constraints=monotonic_cst,
        verbose=-1,
    )


class BoosterModel:
    """A LightGBM Booster loaded from its text file, with ``predict_proba`` as the wrapper's."""

    def __init__(self, booster: Any) -> None:
        self.booster_ = booster

    def predict_proba(self, X: Any) -> Any:
        p = np.asarray(self.booster_.predict(np.asarray(X, dtype=np.float64)), dtype=np.float64)
        return np.column_stack([1.0 - p, p])


def _flatten(root: dict[str, Any], scale: float) -> Tree:
    left: list[int] = []
    right: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    missing: list[int] = []
    value: list[float] = []
    cover: list[float] = []

    def visit(node: dict[str, Any]) -> int:
        i = len(left)
        for column in (left, right, feature, missing):
            column.append(LEAF if column is left or column is right else 0)
        threshold.append(math.inf)
        if "leaf_value" in node or "split_feature" not in node:
            value.append(float(node["leaf_value"]) * scale)
            cover.append(float(node.get("leaf_count", 0)))
            return i
        if node.get("decision_type") != "<=":
            raise UnsupportedModelError("categorical splits are not covered")
        kind = node.get("missing_type", "None")
        t = float(node["threshold"])
        if kind == "NaN":
            missing[i] = 0 if node["default_left"] else 1
        elif kind == "None":
            missing[i] = 0 if 0.0 <= t else 1
        else:
            raise UnsupportedModelError(f"missing_type {kind} (zeros as missing) is not covered")
        feature[i] = int(node["split_feature"])
        threshold[i] = t
        value.append(0.0)
        cover.append(float(node["internal_count"]))
        left[i] = visit(node["left_child"])
        right[i] = visit(node["right_child"])
        return i

    visit(root)
    return Tree(
        left=np.asarray(left, dtype=np.int64),
        right=np.asarray(right, dtype=np.int64),
        feature=np.asarray(feature, dtype=np.int64),
        threshold=np.asarray(threshold, dtype=np.float64),
        missing_right=np.asarray(missing, dtype=np.int64),
        value=np.asarray(value, dtype=np.float64),
        cover=np.asarray(cover, dtype=np.float64),
    )


def to_ensemble(model: Any) -> Ensemble:
    booster = getattr(model, "booster_", model)
    dump = booster.dump_model()
    objective = str(dump.get("objective", ""))
    match = re.fullmatch(r"binary sigmoid:([0-9.eE+-]+)", objective)
    if match is None or int(dump.get("num_tree_per_iteration", 1)) != 1:
        raise UnsupportedModelError(f"only the binary objective is covered, not {objective!r}")
    if any(t.get("is_linear") for t in dump["tree_info"]):
        raise UnsupportedModelError("linear trees are not covered")
    scale = float(match.group(1))  # probability = expit(sigmoid * raw)
    trees = tuple(_flatten(t["tree_structure"], scale) for t in dump["tree_info"])
    return Ensemble(
        trees=trees,
        n_features=int(dump["max_feature_idx"]) + 1,
        divisor=float(len(trees)) if dump.get("average_output") else 1.0,
        offset=0.0,
        link="logistic",
        float32_inputs=False,
    )


def save(model: Any, path: Path) -> None:
    getattr(model, "booster_", model).save_model(str(path))


def load(path: Path) -> Any:
    import lightgbm

    return BoosterModel(lightgbm.Booster(model_file=str(path)))
