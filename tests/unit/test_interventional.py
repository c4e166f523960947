"""Exact interventional TreeSHAP in probability space, against its definition and shap.

The reference is the definition itself: Shapley values of the margin game
``v(S) = f(x_S, r_rest)`` enumerated over every coalition with the library's own
predictions, each background row's values rescaled to the difference of probabilities
and averaged (what shap's ``model_output="probability"`` computes). shap agrees to its
own arithmetic: its C++ keeps each leaf's share in float32, so to 1e-7; its
interventional path for HistGradientBoosting fails shap's own additivity check, so only
the definition is the reference there.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import shap
from credit_model.families import BOOSTED, module
from credit_model.interventional import InterventionalExplainer, leaf_paths

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


def test_equals_shap_interventional_probability(fitted: tuple[str, Any, Any, Any]) -> None:
    name, estimator, explainer, X = fitted
    if name == "hgb":
        pytest.skip("shap's interventional HistGradientBoosting fails its own additivity check")
    rows = X[200:400]
    reference = shap.TreeExplainer(
        estimator,
        explainer.paths.background,
        model_output="probability",
        feature_perturbation="interventional",
    )
    expected = np.asarray(reference.shap_values(rows), np.float64)
    _, phi = explainer.explain(rows)
    np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-7)  # shap's float32 leaf shares
    assert abs(explainer.base_value - float(np.ravel(reference.expected_value)[0])) <= 1e-7
