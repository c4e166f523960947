"""The fast TreeSHAP path against shap.TreeExplainer (path-dependent) and sklearn.

Property tests over random forests and inputs: ties at split thresholds, missing
values (imputed before the forest), depth-1 trees, single-leaf trees, repeated
features on a path, bootstrap and not, random forests and extra trees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shap
from credit_model import explainer as fast
from credit_model.explainer import FastTreeExplainer, fast_explainer_for
from credit_model.forest import (
    UnsupportedModelError,
    compile_forest,
    load_tables,
    save_tables,
    supports,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

TOL = 1e-9


def reference(pipeline: Pipeline, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """shap's own answer: imputer, then TreeExplainer on the forest, class 1."""
    forest = pipeline[-1]
    explainer = shap.TreeExplainer(forest)
    values = explainer.shap_values(pipeline[0].transform(X))
    assert values.ndim == 3  # current shap: [n, features, classes]
    return pipeline.predict_proba(X)[:, 1], values[:, :, 1], float(explainer.expected_value[1])


def threshold_points(forest: Any, X: np.ndarray) -> np.ndarray:
    """Rows of X with one feature set exactly to each split threshold (ties go left)."""
    rows = []
    for est in forest.estimators_:
        tree = est.tree_
        for node in np.flatnonzero(tree.children_left >= 0)[:20]:
            row = X[node % len(X)].copy()
            row[tree.feature[node]] = tree.threshold[node]
            rows.append(row)
    return np.array(rows).reshape(-1, X.shape[1])


@st.composite
def forests(draw: st.DrawFn) -> tuple[Pipeline, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(30, 200))
    n_features = draw(st.integers(1, 7))
    grid = draw(st.booleans())  # integer-valued features: thresholds at k + 0.5, many ties
    X = (
        rng.integers(0, 5, size=(n, n_features)).astype(float)
        if grid
        else rng.normal(size=(n, n_features))
    )
    y = (X[:, 0] + rng.normal(scale=1.0, size=n) > np.median(X[:, 0])).astype(int)
    y[:2] = [0, 1]  # both classes present
    missing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    X[rng.random(X.shape) < missing] = np.nan
    X[0, :] = np.where(np.isnan(X[0, :]), 1.0, X[0, :])  # every column keeps a finite median
    kind = draw(st.sampled_from([RandomForestClassifier, ExtraTreesClassifier]))
    forest = kind(
        n_estimators=draw(st.integers(1, 6)),
        max_depth=draw(st.sampled_from([1, 2, 3, 6, None])),
        max_leaf_nodes=draw(st.sampled_from([None, 2, 5, 30])),
        min_samples_leaf=draw(st.sampled_from([1, 5, 40])),
        bootstrap=draw(st.booleans()),
        max_features=draw(st.sampled_from(["sqrt", None])),
        random_state=seed % 1000,
    )
    pipeline = Pipeline([("impute", SimpleImputer(strategy="median")), ("forest", forest)])
    pipeline.fit(X, y)
    X_eval = np.vstack([X, threshold_points(pipeline[-1], pipeline[0].transform(X))])
    return pipeline, X_eval


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests())
def test_equals_shap_tree_explainer(case: tuple[Pipeline, np.ndarray]) -> None:
    pipeline, X = case
    if not supports(pipeline[-1]):  # deep unlimited trees: covered by the fallback
        with pytest.raises(UnsupportedModelError):
            fast_explainer_for(pipeline)
        return
    explainer = fast_explainer_for(pipeline)
    proba, phi = explainer.explain(X)
    ref_proba, ref_phi, ref_base = reference(pipeline, X)
    # Same arithmetic as sklearn, in the same order: bit-identical probabilities.
    np.testing.assert_array_equal(proba, ref_proba)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=TOL)
    assert explainer.base_value == pytest.approx(ref_base, abs=TOL)
    np.testing.assert_allclose(phi.sum(axis=1) + explainer.base_value, proba, rtol=0, atol=TOL)


def fit(model: Any, n: int = 300, seed: int = 0) -> Pipeline:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return Pipeline([("impute", SimpleImputer()), ("forest", model)]).fit(X, y)


def check_against_shap(pipeline: Pipeline, X: np.ndarray) -> None:
    proba, phi = fast_explainer_for(pipeline).explain(X)
    ref_proba, ref_phi, _ = reference(pipeline, X)
    np.testing.assert_array_equal(proba, ref_proba)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=TOL)


def test_tables_hold_the_patterns_each_entry_can_meet_only() -> None:
    # Each entry owns the next 2**a rows (a = features used above its root), ending at
    # entry_base + 2**D - 1; deep trees make the full layout much larger.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 6))
    y = (X[:, 0] * X[:, 1] + X[:, 2] - X[:, 3] > 0).astype(int)
    forest = RandomForestClassifier(12, max_depth=7, max_features=None, random_state=0)
    pipeline = Pipeline([("impute", SimpleImputer()), ("forest", forest)]).fit(X, y)
    c = fast_explainer_for(pipeline).compiled
    last = c.entry_base + (1 << c.depth) - 1
    owned = np.diff(np.concatenate([[-1], last]))
    assert last[-1] == c.table.shape[0] - 1
    assert np.all(owned >= 1) and np.all(owned & (owned - 1) == 0)  # powers of two
    assert np.all(owned <= 1 << c.depth)
    assert c.table.shape[0] < c.n_entries * (1 << c.depth) // 4
    X_eval = np.vstack([rng.normal(size=(200, 6)), np.repeat(c.split_threshold[:6, None], 6, 1)])
    check_against_shap(pipeline, X_eval)


def test_single_leaf_trees() -> None:
    # Constant features: no split is possible, every tree is one leaf.
    X = np.ones((50, 3))
    y = np.r_[np.zeros(20, int), np.ones(30, int)]
    pipeline = Pipeline([("impute", SimpleImputer()), ("forest", RandomForestClassifier(5))])
    pipeline.fit(X, y)
    assert all(e.tree_.node_count == 1 for e in pipeline[-1].estimators_)
    explainer = fast_explainer_for(pipeline)
    assert explainer.compiled.depth == 0
    _, phi = explainer.explain(np.array([[1.0, 2.0, np.nan]]))
    assert np.all(phi == 0.0)
    check_against_shap(pipeline, np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))


def test_depth_one_trees_and_ties() -> None:
    pipeline = fit(RandomForestClassifier(n_estimators=7, max_depth=1, random_state=1))
    forest = pipeline[-1]
    rows = []
    for est in forest.estimators_:
        row = np.zeros(4)
        row[est.tree_.feature[0]] = est.tree_.threshold[0]  # exactly on the threshold: left
        rows.append(row)
        rows.append(np.nextafter(row, np.inf))
    check_against_shap(pipeline, np.array(rows))


def test_repeated_feature_on_a_path() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = (np.abs(X[:, 0]) < 0.5).astype(int)  # needs two splits on feature 0 on one path
    pipeline = Pipeline(
        [("impute", SimpleImputer()), ("forest", RandomForestClassifier(10, max_depth=4))]
    ).fit(X, y)
    tree = pipeline[-1].estimators_[0].tree_
    assert len(set(tree.feature[tree.feature >= 0])) < (tree.feature >= 0).sum()
    check_against_shap(pipeline, rng.normal(size=(50, 2)))


def test_missing_values_are_imputed_before_the_forest() -> None:
    pipeline = fit(RandomForestClassifier(10, max_depth=5, random_state=0))
    X = np.array([[np.nan, 0.2, np.nan, 1.0], [np.nan] * 4])
    explainer = fast_explainer_for(pipeline)
    filled = pipeline[0].transform(X)
    np.testing.assert_array_equal(explainer.explain(X)[0], explainer.explain(filled)[0])
    check_against_shap(pipeline, X)


def test_bare_forest_routes_missing_values_as_sklearn_does() -> None:
    # scikit-learn forests fitted on NaN send them each split's own way (missing_go_to_left).
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X[rng.random(X.shape) < 0.2] = np.nan
    forest = RandomForestClassifier(5, max_depth=4, random_state=0).fit(X, y)
    explainer = FastTreeExplainer.from_model(forest)
    proba, _, gap = explainer.explain_checked(X)
    np.testing.assert_allclose(proba, forest.predict_proba(X)[:, 1], rtol=0, atol=TOL)
    assert gap <= TOL
    with pytest.raises(ValueError, match="shape"):
        explainer.explain(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "model",
    [
        GradientBoostingClassifier(n_estimators=3),
        RandomForestClassifier(3, max_depth=None, max_features=None),  # > MAX_PATH_FEATURES
    ],
    ids=["gradient-boosting", "deep-trees"],
)
def test_unsupported_models_are_refused(model: Any) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 12))
    y = (X.sum(axis=1) + rng.normal(size=2000) > 0).astype(int)
    pipeline = Pipeline([("impute", SimpleImputer()), ("model", model)]).fit(X, y)
    assert not supports(pipeline[-1])
    with pytest.raises(UnsupportedModelError):
        fast_explainer_for(pipeline)


def test_multiclass_is_refused() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    forest = RandomForestClassifier(3).fit(X, rng.integers(0, 3, 100))
    assert not supports(forest)


def test_works_without_a_writable_numba_cache(tmp_path: Any) -> None:
    import subprocess
    import sys

    blocked = tmp_path / "file"
    blocked.write_text("")  # a cache directory below a file cannot be created
    code = (
        "import numpy as np\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from credit_model.explainer import FastTreeExplainer\n"
        "X = np.random.default_rng(0).normal(size=(100, 3)); y = (X[:, 0] > 0).astype(int)\n"
        "f = RandomForestClassifier(3, max_depth=3, random_state=0).fit(X, y)\n"
        "p, phi = FastTreeExplainer.from_model(f).explain(X)\n"
        "assert np.array_equal(p, f.predict_proba(X)[:, 1])\n"
    )
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(blocked / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_saved_tables_explain_bit_for_bit_like_the_forest(tmp_path: Any) -> None:
    pipeline = fit(RandomForestClassifier(6, max_depth=5, random_state=1))
    X = np.random.default_rng(2).normal(size=(50, 4))
    X[::7, 1] = np.nan
    direct = fast_explainer_for(pipeline)
    save_tables(tmp_path / "t.npz", compile_forest(pipeline[-1]), direct.fill_values)
    compiled, fill = load_tables(tmp_path / "t.npz")
    loaded = FastTreeExplainer(compiled, fill_values=fill)
    for got, want in zip(loaded.explain_checked(X), direct.explain_checked(X), strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.base_value == direct.base_value


def test_build_explainer_is_fast_by_default_and_falls_back_to_shap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from credit_model.explain import EXPLAINER_ENV, ShapTreeExplainer, build_explainer

    monkeypatch.delenv(EXPLAINER_ENV, raising=False)
    shallow = fit(RandomForestClassifier(5, max_depth=4, random_state=0))
    assert isinstance(build_explainer(shallow), FastTreeExplainer)
    assert isinstance(build_explainer(shallow, "shap"), ShapTreeExplainer)
    monkeypatch.setenv(EXPLAINER_ENV, "shap")
    assert isinstance(build_explainer(shallow), ShapTreeExplainer)
    monkeypatch.delenv(EXPLAINER_ENV)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 12))
    y = (X.sum(axis=1) + rng.normal(size=2000) > 0).astype(int)
    deep = Pipeline(
        [("impute", SimpleImputer()), ("forest", RandomForestClassifier(3, max_features=None))]
    ).fit(X, y)
    fallback = build_explainer(deep)
    assert isinstance(fallback, ShapTreeExplainer)  # same numbers, shap's speed
    with pytest.raises(UnsupportedModelError):
        build_explainer(deep, "fast")
    with pytest.raises(ValueError, match="auto, fast or shap"):
        build_explainer(shallow, "quick")


def test_blocks_threads_and_wide_inputs_agree_with_shap() -> None:
    # 12 features: table rows of two runs of ten; sizes around the block of 8 and
    # past the threshold where a request is split across threads.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 12))
    y = (X[:, 0] + X[:, 11] + rng.normal(size=600) > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    pipeline = Pipeline(
        [("impute", SimpleImputer()), ("forest", RandomForestClassifier(8, max_depth=4))]
    ).fit(X, y)
    one = fast_explainer_for(pipeline, threads=1)
    several = [fast_explainer_for(pipeline, threads=k) for k in (2, 3)]
    assert fast.PARALLEL_MIN_APPLICANTS <= len(X)
    for n in (1, 7, 8, 9, 17, fast.PARALLEL_MIN_APPLICANTS + 3, len(X)):
        proba, phi = one.explain(X[:n])
        for explainer in several:  # split across threads (the caller's among them): same bits
            proba2, phi2 = explainer.explain(X[:n])
            np.testing.assert_array_equal(proba2, proba)
            np.testing.assert_array_equal(phi2, phi)
    check_against_shap(pipeline, X)


def test_the_kernel_measures_the_additivity_gap() -> None:
    pipeline = fit(RandomForestClassifier(6, max_depth=4, random_state=2))
    explainer = fast_explainer_for(pipeline)
    X = np.random.default_rng(4).normal(size=(40, 4))
    proba, phi, gap = explainer.explain_checked(X)
    assert gap == pytest.approx(
        np.max(np.abs(explainer.base_value + phi.sum(1) - proba)), abs=1e-15
    )
    assert gap <= 1e-12
    explainer.compiled.table[...] *= 1.01  # a broken table: the explanation no longer adds up
    assert explainer.explain_checked(X)[2] > 1e-6
    explainer.compiled.table[...] = np.nan
    assert np.isnan(explainer.explain_checked(X)[2])  # a NaN is never hidden by max()


def test_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fast.THREADS_ENV, "3")
    assert fast.default_threads() == 3
    monkeypatch.setenv(fast.THREADS_ENV, "0")
    with pytest.raises(ValueError, match=fast.THREADS_ENV):
        fast.default_threads()
    monkeypatch.delenv(fast.THREADS_ENV)
    assert fast.default_threads() >= 1
