"""Every estimator family compiled to the one ensemble form, against the library itself.

Probabilities equal each library's ``predict_proba`` (1e-9 for scikit-learn and
LightGBM, float64 throughout; XGBoost sums float32 leaves in float32, so its leaves
are checked exactly through ``pred_leaf`` and its probability to float32 rounding),
log-odds SHAP values equal XGBoost's ``pred_contribs``, LightGBM's ``pred_contrib``
and shap's TreeExplainer; inputs exactly on split thresholds and missing values
included.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import shap
from credit_model.ensemble import expit
from credit_model.explainer import FastTreeExplainer
from credit_model.families import BOOSTED, module
from credit_model.forest import compile_ensemble

TOL = 1e-9
HP = SimpleNamespace(
    n_estimators=15, learning_rate=0.3, max_depth=4, max_leaf_nodes=12, random_state=0, n_jobs=1
)


def data(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 4] = rng.integers(0, 4, n)  # an ordinal-coded categorical column
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.3 * X[:, 4] + rng.normal(size=n) * 0.5 > 0).astype(int)
    X[rng.random(X.shape) < 0.15] = np.nan
    return X, y


def on_thresholds(ensemble: Any, X: np.ndarray) -> np.ndarray:
    """Rows with one feature set exactly to a split's own (library) threshold."""
    rows = []
    for t, tree in enumerate(ensemble.trees):
        for node in np.flatnonzero(tree.left >= 0)[:6]:
            row = X[(t * 7 + node) % len(X)].copy()
            row[tree.feature[node]] = tree.threshold[node]
            rows.append(row)
            above = row.copy()
            above[tree.feature[node]] = np.nextafter(tree.threshold[node], np.inf)
            rows.append(above)
    return np.array(rows)


@pytest.fixture(scope="module", params=BOOSTED)
def fitted(request: pytest.FixtureRequest) -> tuple[str, Any, FastTreeExplainer, np.ndarray]:
    family = module(request.param)
    X, y = data()
    estimator = family.build(HP, [1, 0, 0, 0, -1]).fit(X, y)
    ensemble = family.to_ensemble(estimator)
    X_all = np.vstack([X, on_thresholds(ensemble, X)])
    return request.param, estimator, FastTreeExplainer(compile_ensemble(ensemble)), X_all


def library_contributions(name: str, estimator: Any, X: np.ndarray) -> np.ndarray:
    if name == "xgboost":
        import xgboost

        dm = xgboost.DMatrix(X)
        return np.asarray(estimator.get_booster().predict(dm, pred_contribs=True), np.float64)
    if name == "lightgbm":
        return np.asarray(estimator.booster_.predict(X, pred_contrib=True), np.float64)
    explainer = shap.TreeExplainer(estimator)  # scikit-learn has no contributions of its own
    values = np.asarray(explainer.shap_values(X), np.float64)
    return np.column_stack([values, np.full(len(X), np.ravel(explainer.expected_value)[0])])


def test_probabilities_equal_the_library(fitted: tuple[str, Any, Any, np.ndarray]) -> None:
    name, estimator, explainer, X = fitted
    proba, _ = explainer.explain(X)
    raw, _, _ = explainer.explain_raw(X)
    assert explainer.space == "log_odds"
    expected = estimator.predict_proba(X)[:, 1]
    if name == "xgboost":
        # The leaves reached are exactly XGBoost's: their float64 sum is the margin.
        import xgboost

        booster = estimator.get_booster()
        leaves = booster.predict(xgboost.DMatrix(X), pred_leaf=True).astype(np.int64)
        ensemble = module(name).to_ensemble(estimator)
        margin = ensemble.offset + sum(
            tree.value[leaves[:, t]] for t, tree in enumerate(ensemble.trees)
        )
        np.testing.assert_allclose(raw, margin, rtol=0, atol=TOL)
        np.testing.assert_allclose(proba, expected, rtol=0, atol=2e-7)  # float32's own
    else:
        np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL)
    np.testing.assert_array_equal(proba, expit(raw))


def test_log_odds_shap_equals_the_library_and_shap(
    fitted: tuple[str, Any, Any, np.ndarray],
) -> None:
    name, estimator, explainer, X = fitted
    p, phi, gap = explainer.explain_checked(X)
    assert gap <= TOL  # base + sum(phi) = the margin = logit(probability)
    tol = max(TOL, module(name).AGREEMENT)  # XGBoost's contributions are float32
    reference = library_contributions(name, estimator, X)
    np.testing.assert_allclose(phi, reference[:, :-1], rtol=0, atol=tol)
    assert math.isclose(explainer.base_value, float(reference[0, -1]), abs_tol=tol)
    ref = np.asarray(shap.TreeExplainer(estimator).shap_values(X), np.float64)
    np.testing.assert_allclose(phi, ref, rtol=0, atol=tol)
    margin = explainer.base_value + phi.sum(axis=1)
    np.testing.assert_allclose(np.log(p) - np.log1p(-p), margin, rtol=0, atol=TOL)


def test_constraints_reach_each_library(fitted: tuple[str, Any, Any, np.ndarray]) -> None:
    # [1, 0, 0, 0, -1]: raising column 0 never lowers the margin, raising column 4 never raises it.
    _, _, explainer, X = fitted
    rows = np.nan_to_num(X[:50])
    base, _, _ = explainer.explain_raw(rows)
    for column, sign in ((0, 1), (4, -1)):
        moved = rows.copy()
        moved[:, column] += 1.0
        raised, _, _ = explainer.explain_raw(moved)
        assert np.all(sign * (raised - base) >= -1e-12)
