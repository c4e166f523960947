"""References for probability-space explanations that owe nothing to our compiled tables: each
library's own margin, and shap's exact Shapley values of the interventional game in float64
(shap's interventional TreeExplainer keeps its nodes in float32: see tests/unit/
test_interventional.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import shap


def library_margin(name: str, estimator: Any) -> Any:
    """The fitted model's margin in float64, computed by the library itself: log-odds for
    boosting, the probability for a forest (its trees average probabilities)."""
    if name == "rf":
        return lambda Z: estimator.predict_proba(Z)[:, 1]
    if name == "hgb":
        return lambda Z: estimator.decision_function(Z)
    if name == "lightgbm":
        return lambda Z: estimator.booster_.predict(Z, raw_score=True)
    # XGBoost sums its float32 leaves in float32: its own leaf routing (pred_leaf) and the
    # leaf values of its own dump, summed in float64 from base_score's margin.
    import xgboost

    booster = estimator.get_booster()
    trees = []
    for dump in booster.get_dump(dump_format="json"):
        leaves: dict[int, float] = {}
        stack = [json.loads(dump)]
        while stack:
            node = stack.pop()
            if "leaf" in node:
                leaves[node["nodeid"]] = float(np.float32(node["leaf"]))
            stack.extend(node.get("children", []))
        trees.append(leaves)
    config = json.loads(booster.save_config())["learner"]["learner_model_param"]
    base = float(np.float32(config["base_score"].strip("[]")))  # a probability

    def margin(Z: np.ndarray) -> np.ndarray:
        reached = booster.predict(xgboost.DMatrix(Z), pred_leaf=True).astype(int)
        total = np.full(len(Z), math.log(base) - math.log1p(-base))
        for t, leaves in enumerate(trees):
            total += [leaves[i] for i in reached[:, t]]
        return total

    return margin


def by_shap_exact(
    margin: Any, rows: np.ndarray, background: np.ndarray, *, logistic: bool = True
) -> np.ndarray:
    """shap's exact Shapley values of the margin game against each background row (float64),
    rescaled to the difference of probabilities as shap's TreeExplainer does (``logistic``;
    a forest's margin is its probability), averaged over the rows."""
    fx = margin(rows)
    phi = np.zeros(rows.shape)
    for r in background:
        explainer = shap.explainers.ExactExplainer(margin, shap.maskers.Independent(r[None, :]))
        values = explainer(rows, max_evals=2 * 2 ** rows.shape[1]).values
        fr = margin(r[None, :])[0]
        px, pr = 1.0 / (1.0 + np.exp(-fx)), 1.0 / (1.0 + math.exp(-fr))
        gap = np.where(fx != fr, fx - fr, 1.0)
        scale = np.where(fx != fr, (px - pr) / gap, 1.0) if logistic else np.ones(len(fx))
        phi += values * scale[:, None] / len(background)
    return phi
