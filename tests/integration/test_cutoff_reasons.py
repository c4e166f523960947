"""Reasons against the cutoff: explained against the training applicants scored just inside the
approval cutoff (Regulation B, official interpretation 9(b)(2)-5), equal to shap with that
background, for a boosted model and for the random forest (additive in probability, so its
interventional values against the pool are exact too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shap
from credit_model import artifacts
from credit_model.handlers import model_fn, transform
from credit_model.interventional import INTERVENTIONAL_FILE
from credit_model.synth import generate
from credit_model.train import Hyperparameters, train
from credit_schema import FEATURES, PayloadError
from credit_schema.decisions import DecisionBands

from tests.conftest import SAMPLE_APPLICANTS
from tests.references import by_shap_exact, library_margin

BANDS = DecisionBands.parse("approve:0.1,review:0.3,decline")


@pytest.fixture(scope="module", params=["lightgbm", "rf"])
def model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cutoff")
    hp = Hyperparameters(model=request.param, n_estimators=15, max_depth=3, n_jobs=1)
    train(generate(4_000, seed=9), directory, hyperparameters=hp, log=lambda *_: None)
    return directory


def test_reasons_against_the_cutoff_equal_shap_with_that_background(model_dir: Path) -> None:
    model = model_fn(model_dir)
    family = model.metadata["estimator"]["family"]
    assert INTERVENTIONAL_FILE in json.loads((model_dir / "manifest.json").read_text())["files"]
    body = json.dumps(SAMPLE_APPLICANTS)
    out, _ = transform(
        model, body, "application/json", "application/json", bands=BANDS, reference="cutoff"
    )
    answers = json.loads(out)["predictions"]
    explainer: Any = model.against_cutoff(0.1)
    background = explainer.background
    # The background: 100 approved applicants of the pool (below 0.1), the highest scored
    # (ties in score may be taken in any order).
    library = artifacts.load(model_dir).pipeline
    pool_scores = np.sort(library.predict_proba(explainer.paths.pool)[:, 1])
    bg_scores = library.predict_proba(background)[:, 1]
    approved = pool_scores[pool_scores < 0.1]
    assert len(background) == 100 and np.all(bg_scores < 0.1)
    assert np.min(bg_scores) >= approved[-100] - 1e-12
    rows = np.array(
        [[np.nan if a[f] is None else a[f] for f in FEATURES] for a in SAMPLE_APPLICANTS]
    )
    # shap's interventional TreeExplainer, to its float32 nodes (the forest behind its imputer)
    if family == "rf":
        imputer, forest = library.named_steps["imputer"], library.named_steps["forest"]
        native, bg_rows, x_rows = forest, imputer.transform(background), imputer.transform(rows)
    else:
        native, bg_rows, x_rows = library.booster_, background, rows
    reference = shap.TreeExplainer(
        native, bg_rows, model_output="probability", feature_perturbation="interventional"
    )
    expected = np.asarray(reference.shap_values(x_rows), np.float64)
    if expected.ndim == 3:  # a forest: both classes
        expected = expected[:, :, 1]
    # shap's exact Shapley values in float64 over the library's own margin, to 1e-9
    margin = library_margin(family, library)
    exact = by_shap_exact(margin, rows, background, logistic=family != "rf")
    for i, answer in enumerate(answers):
        assert answer["reference"] == "cutoff" and answer["space"] == "probability"
        assert abs(answer["base_value"] - float(np.mean(bg_scores))) <= 1e-9
        by_feature = {c["feature"]: c["shap_value"] for c in answer["contributions"]}
        values = [by_feature[f] for f in FEATURES]
        np.testing.assert_allclose(values, expected[i], rtol=0, atol=1e-7)
        np.testing.assert_allclose(values, exact[i], rtol=0, atol=1e-9)
        total = answer["base_value"] + sum(by_feature.values())
        assert abs(total - answer["probability"]) <= 1e-9
    # Without bands there is no cutoff to explain against.
    with pytest.raises(PayloadError, match="decision_thresholds"):
        transform(model, body, "application/json", "application/json", reference="cutoff")
