"""Issue 28.5: the random forest's leaves re-fitted out of bag (``--leaf-calibration oob``, the
default), so that the default model passes its report's calibration test. The calibrated forest
is still a scikit-learn forest: its own ``predict_proba``, shap and our served explanations agree."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shap
from credit_explainer.cli import main
from credit_model import artifacts, constraints, synth
from credit_model.families.forest import calibrate_leaves
from credit_model.handlers import model_fn
from credit_model.report.checks import calibration_test
from credit_model.train import Hyperparameters, holdout_split, split_xy, train
from credit_schema import BUILTIN
from sklearn.ensemble import RandomForestClassifier

HP = Hyperparameters(n_jobs=1)


@pytest.fixture(scope="module")
def forests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same forest trained twice on the same synthetic rows: calibrated, and not."""
    frame = synth.generate(8_000, seed=7)
    out = {}
    for how in ("oob", "none"):
        model_dir = tmp_path_factory.mktemp(how)
        train(frame, model_dir, hyperparameters=replace(HP, leaf_calibration=how),
              log=lambda *_: None)  # fmt: skip
        out[how] = artifacts.load(model_dir), model_dir
    X, y = split_xy(frame)
    _, X_test, _, y_test = holdout_split(X, y, HP.test_size, HP.random_state)
    out["test"] = X_test, y_test
    return out


def _forest(model: Any) -> Any:
    return model.pipeline.named_steps["forest"]


def test_the_map_keeps_every_tree_s_order_so_constraints_still_hold(forests: Any) -> None:
    calibrated, plain = _forest(forests["oob"][0]), _forest(forests["none"][0])
    for a, b in zip(calibrated.estimators_, plain.estimators_, strict=True):
        assert np.array_equal(a.tree_.feature, b.tree_.feature)  # the same splits
        leaf = a.tree_.children_left == -1
        new, old = a.tree_.value[leaf, 0, 1], b.tree_.value[leaf, 0, 1]
        order = np.argsort(old, kind="stable")
        assert np.all(np.diff(new[order]) >= 0) and not np.allclose(new, old)
        # An internal node holds the cover-weighted mean of its leaves, as in a fitted tree.
        cover = a.tree_.weighted_n_node_samples
        root = np.average(new, weights=cover[leaf])
        assert a.tree_.value[0, 0, 1] == pytest.approx(root, rel=0, abs=1e-12)


def test_out_of_bag_log_loss_falls(forests: Any) -> None:
    """Each training row scored by the trees that did not draw it, from the trees' own
    ``predict_proba``."""
    frame = synth.generate(8_000, seed=7)
    X, y = split_xy(frame)
    X_train, _, y_train, _ = holdout_split(X, y, HP.test_size, HP.random_state)

    def oob_log_loss(model: Any) -> float:
        prepared = constraints.prepare_training(X_train, constraints.ALL, BUILTIN)  # age capped
        imputed = model.pipeline.named_steps["imputer"].transform(prepared)
        forest = _forest(model)
        total, votes = np.zeros(len(y_train)), np.zeros(len(y_train))
        for tree, drawn in zip(forest.estimators_, forest.estimators_samples_, strict=True):
            unseen = np.setdiff1d(np.arange(len(y_train)), drawn)
            total[unseen] += tree.predict_proba(imputed[unseen])[:, 1]
            votes[unseen] += 1
        p = np.clip(total[votes > 0] / votes[votes > 0], 1e-15, 1 - 1e-15)
        t = y_train[votes > 0]
        return float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))

    assert oob_log_loss(forests["oob"][0]) < oob_log_loss(forests["none"][0]) - 1e-3


def test_held_out_calibration_improves(forests: Any) -> None:
    X_test, y_test = forests["test"]
    statistic = {
        how: calibration_test(y_test, forests[how][0].pipeline.predict_proba(X_test)[:, 1])[
            "hosmer_lemeshow"
        ]["statistic"]
        for how in ("oob", "none")
    }
    assert statistic["oob"] < statistic["none"] / 2, statistic


def test_served_answers_and_shap_agree_with_the_calibrated_forest(forests: Any) -> None:
    model, model_dir = forests["oob"]
    X_test, _ = forests["test"]
    rows = X_test[:200]
    p, phi, gap = model_fn(model_dir).explainers["probability"].explain_checked(rows)
    assert gap <= 1e-9
    imputed = model.pipeline.named_steps["imputer"].transform(rows)
    np.testing.assert_allclose(p, model.pipeline.predict_proba(rows)[:, 1], rtol=0, atol=1e-12)
    explainer = shap.TreeExplainer(_forest(model))
    expected = np.asarray(explainer.shap_values(imputed))[..., 1]
    np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(explainer.expected_value[1] + expected.sum(axis=1), p, atol=1e-9)


def test_metadata_names_the_calibration(forests: Any) -> None:
    calibration = forests["oob"][0].metadata["leaf_calibration"]
    assert calibration["slope"] > 1  # averaging pulls towards the mean: the leaves are sharpened
    assert forests["none"][0].metadata["leaf_calibration"] is None


def test_without_bootstrap_there_is_no_out_of_bag_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--rows", "500", "--model-dir", str(tmp_path / "m"), "--bootstrap", "false"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: the leaf calibration is fitted on out-of-bag rows: --bootstrap false needs "
        "--leaf-calibration none"
    )
    assert not (tmp_path / "m").exists()
    assert main([*argv, "--leaf-calibration", "none"]) == 0


@pytest.mark.parametrize("seed", range(2, 6))
def test_on_noise_the_map_still_increases(seed: int) -> None:
    """Out-of-bag predictions on labels that are noise anti-correlate with them: the best fit
    would reverse every tree's leaves, and the slope is kept positive instead."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((300, 4)), rng.integers(0, 2, 300)
    forest = RandomForestClassifier(n_estimators=30, random_state=seed).fit(X, y)
    before = [t.tree_.value[:, 0, 1].copy() for t in forest.estimators_]
    fitted = calibrate_leaves(forest, X, y, seed=seed)
    assert fitted["slope"] > 0
    for tree, old in zip(forest.estimators_, before, strict=True):
        leaf = tree.tree_.children_left == -1
        order = np.argsort(old[leaf], kind="stable")
        assert np.all(np.diff(tree.tree_.value[leaf, 0, 1][order]) >= 0)
