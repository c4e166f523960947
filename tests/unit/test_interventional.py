"""Exact interventional TreeSHAP in probability space, against its definition and shap.

Three references, none built from our compiled tables:

* the definition itself: Shapley values of the margin game ``v(S) = f(x_S, r_rest)``
  enumerated over every coalition with the library's own predictions, each background
  row's values rescaled to the difference of probabilities and averaged (what shap's
  ``model_output="probability"`` computes);
* shap's exact Shapley values (``ExactExplainer``, float64) of the same game, one background
  row at a time over the library's own margin, rescaled the same way: equal to 1e-9;
* shap's interventional ``TreeExplainer`` itself, which cannot be equal to 1e-9: its C++
  kernel (``tree_shap_indep`` in shap 0.51's ``cext/tree_shap.h``) copies every node into
  ``struct Node {... float thres, value;}`` and keeps the leaf shares and Shapley weights
  in ``float``, so it agrees to 1e-7 whatever dtype the model is given in (a float64 dict
  of trees included). Its margins (``tree_predict``) compare against the float64
  thresholds, so where an applicant's or background value lies between a threshold and
  its float32 rounding the two disagree and shap fails its own additivity check: scikit-
  learn's HistGradientBoosting puts thresholds on training values (percentile midpoints
  that fall on a value), so only the first two references apply to that family.
"""

from __future__ import annotations

import inspect
import itertools
import math
from types import SimpleNamespace
from typing import Any

import numba
import numpy as np
import pytest
import shap
from credit_model.families import BOOSTED, module
from credit_model.interventional import (
    InterventionalExplainer,
    _explain,
    _Tables,
    leaf_paths,
    warm_up,
)

from tests.references import by_shap_exact, library_margin

HP = SimpleNamespace(
    n_estimators=12, learning_rate=0.3, max_depth=3, max_leaf_nodes=8, random_state=0, n_jobs=1
)
N_FEATURES = 4


def data(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + rng.normal(size=n) * 0.5 > 0).astype(int)
    X[rng.random(X.shape) < 0.15] = np.nan
    return X, y


def by_definition(predict: Any, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Average over ``background`` of the rescaled margin-game Shapley values of ``x``."""
    n = len(x)
    phi = np.zeros(n)
    coalitions = [c for k in range(n + 1) for c in itertools.combinations(range(n), k)]
    for r in background:
        hybrids = np.repeat(r[None, :], len(coalitions), axis=0)
        for i, c in enumerate(coalitions):
            hybrids[i, list(c)] = x[list(c)]
        p = predict(hybrids)
        margin = dict(zip(coalitions, np.log(p) - np.log1p(-p), strict=True))
        values = np.zeros(n)
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for k in range(n):
                w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                for c in itertools.combinations(others, k):
                    values[i] += w * (margin[tuple(sorted((*c, i)))] - margin[c])
        fx, fr = margin[tuple(range(n))], margin[()]
        pr = 1.0 / (1.0 + math.exp(-fr))
        scale = (1.0 / (1.0 + math.exp(-fx)) - pr) / (fx - fr) if fx != fr else 1.0
        phi += values * scale / len(background)
    return phi


@pytest.fixture(scope="module", params=BOOSTED)
def fitted(request: pytest.FixtureRequest) -> tuple[str, Any, InterventionalExplainer, Any]:
    family = module(request.param)
    X, y = data()
    estimator = family.build(HP, None).fit(X, y)
    background = X[:20]
    explainer = InterventionalExplainer(leaf_paths(family.to_ensemble(estimator), background))
    return request.param, estimator, explainer, X


def test_equals_the_definition_and_adds_up(fitted: tuple[str, Any, Any, Any]) -> None:
    name, estimator, explainer, X = fitted
    rows = X[100:106]
    proba, phi, gap = explainer.explain_checked(rows)
    assert explainer.space == "probability" and gap <= 1e-9
    tol = 1e-7 if name == "xgboost" else 1e-9  # XGBoost predicts in float32
    np.testing.assert_allclose(proba, estimator.predict_proba(rows)[:, 1], rtol=0, atol=tol)
    background = explainer.paths.background
    base = np.mean(estimator.predict_proba(background)[:, 1])
    assert abs(explainer.base_value - base) <= tol
    for x, values in zip(rows, phi, strict=True):
        expected = by_definition(lambda Z: estimator.predict_proba(Z)[:, 1], x, background)
        np.testing.assert_allclose(values, expected, rtol=0, atol=tol)


def test_equals_shap_exact_shapley_values_to_1e_9(fitted: tuple[str, Any, Any, Any]) -> None:
    name, estimator, explainer, X = fitted
    rows = X[200:240]
    _, phi = explainer.explain(rows)
    margin = library_margin(name, estimator)
    expected = by_shap_exact(margin, rows, explainer.paths.background)
    np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-9)
    base = np.mean(1.0 / (1.0 + np.exp(-margin(explainer.paths.background))))
    assert abs(explainer.base_value - base) <= 1e-12


def test_equals_shap_interventional_probability(fitted: tuple[str, Any, Any, Any]) -> None:
    name, estimator, explainer, X = fitted
    if name == "hgb":
        pytest.skip("shap's float32 thresholds route values on a HistGradientBoosting threshold")
    rows = X[200:400]
    reference = shap.TreeExplainer(
        estimator,
        explainer.paths.background,
        model_output="probability",
        feature_perturbation="interventional",
    )
    expected = np.asarray(reference.shap_values(rows), np.float64)
    _, phi = explainer.explain(rows)
    np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-7)  # shap's float32 Node
    assert abs(explainer.base_value - float(np.ravel(reference.expected_value)[0])) <= 1e-7


def test_shap_interventional_rounds_hgb_thresholds_to_float32(
    fitted: tuple[str, Any, Any, Any],
) -> None:
    """Why the skip above: a value on a threshold goes left in prediction and right in shap's
    interventional kernel, which breaks its additivity; a copy of the trees with thresholds
    rounded to float32 routes both ways alike, and shap adds up to that copy's margins."""
    name, estimator, explainer, X = fitted
    if name != "hgb":
        pytest.skip("HistGradientBoosting only")
    background, rows = explainer.paths.background, X[200:400]
    trees = [shap_tree(predictor.nodes) for (predictor,) in estimator._predictors]
    offset = float(np.ravel(estimator._baseline_prediction)[0])

    def additivity_gap(model_trees: list[dict[str, Any]]) -> float:
        model = {"trees": model_trees, "base_offset": offset, "tree_output": "raw_value"}
        reference = shap.TreeExplainer(
            model, background, model_output="raw", feature_perturbation="interventional"
        )
        phi = np.asarray(reference.shap_values(rows, check_additivity=False))
        total = phi.sum(axis=1) + float(np.ravel(reference.expected_value)[0])
        return float(np.max(np.abs(total - reference.model.predict(rows))))

    assert additivity_gap(trees) > 1e-3
    rounded = [{**t, "thresholds": t["thresholds"].astype(np.float32).astype(float)} for t in trees]
    on_a_threshold = any(
        np.any((background[:, f] <= t) != (background[:, f] <= np.float32(t)))
        for tree in trees
        for f, t in zip(tree["features"], tree["thresholds"], strict=True)
        if f >= 0
    )
    assert on_a_threshold
    assert additivity_gap(rounded) <= 1e-6


def shap_tree(nodes: Any) -> dict[str, Any]:
    """One HistGradientBoosting predictor as shap's dict of float64 node arrays."""
    leaf = nodes["is_leaf"].astype(bool)
    left, right = nodes["left"].astype(int), nodes["right"].astype(int)
    return {
        "children_left": np.where(leaf, -1, left),
        "children_right": np.where(leaf, -1, right),
        "children_default": np.where(leaf, -1, np.where(nodes["missing_go_to_left"], left, right)),
        "features": np.where(leaf, -2, nodes["feature_idx"].astype(int)),
        "thresholds": nodes["num_threshold"].astype(np.float64),
        "values": nodes["value"].astype(np.float64)[:, None],
        "node_sample_weight": nodes["count"].astype(np.float64),
    }


def test_deep_paths_and_a_large_background_equal_shap_exact() -> None:
    """Leaves of more than 6 slots (read whatever the applicant misses) and more than 255
    background rows (wider row numbers) take the kernel's general paths: still exact."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3_000, 8))
    y = (X.sum(axis=1) + X[:, 0] * X[:, 1] + rng.normal(size=len(X)) > 0).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan
    deep = SimpleNamespace(**{**vars(HP), "max_depth": 10, "max_leaf_nodes": 200})
    family = module("lightgbm")
    estimator = family.build(deep, None).fit(X, y)
    paths = leaf_paths(family.to_ensemble(estimator), X[:300])
    assert int(paths.leaf_full.max()) >= 2**7 - 1  # some leaf splits on 7 features or more
    explainer = InterventionalExplainer(paths)
    rows = X[1_000:1_003]
    proba, phi, gap = explainer.explain_checked(rows)
    assert gap <= 1e-9
    margin = library_margin("lightgbm", estimator)
    np.testing.assert_allclose(phi, by_shap_exact(margin, rows, X[:300]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(proba, estimator.predict_proba(rows)[:, 1], rtol=0, atol=1e-9)


def test_a_served_model_runs_the_kernel_warm_up_compiles() -> None:
    """The image build compiles the kernel for a one-split model (``warm_up``): a model of the
    default size must give its tables the same types, or its first answer compiles anew."""
    X, y = data(2_000)
    family = module("lightgbm")
    default = SimpleNamespace(**{**vars(HP), "n_estimators": 50, "max_depth": 6})
    estimator = family.build(default, None).fit(X, y)
    explainer = InterventionalExplainer(leaf_paths(family.to_ensemble(estimator), X[:100]))
    assert len(explainer.paths.leaf_value) > 255  # more leaves and nodes than a byte numbers
    compiled = [numba.typeof(table) for table in warm_up()._tables]
    assert [numba.typeof(table) for table in explainer._tables] == compiled


def test_the_kernel_takes_its_tables_in_their_order() -> None:
    """The kernel is called with ``*tables``: its parameters name them in the tuple's order,
    or two same-typed arrays would trade places and give wrong numbers without an error."""
    params = list(inspect.signature(_explain.py_func).parameters)
    first = params.index(_Tables._fields[0])
    assert tuple(params[first : first + len(_Tables._fields)]) == _Tables._fields
