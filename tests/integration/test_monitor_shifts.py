"""Issue 30, done when: the past-due shift is flagged on both past-due counts, and the unchanged
holdout sent at 10 significant digits is not (real data when present, synthetic otherwise)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import REAL_DATA
from credit_model import artifacts, monitor
from credit_model.explain import build_explainer
from credit_schema import FEATURES

PAST_DUE_FEATURES = (
    "NumberOfTime30-59DaysPastDueNotWorse",
    "NumberOfTimes90DaysLate",
    "NumberOfTime60-89DaysPastDueNotWorse",
)


@pytest.fixture(scope="module")
def model_dir(request: pytest.FixtureRequest) -> Path:
    name = "real_model_dir" if REAL_DATA.is_file() else "synthetic_model_dir"
    return Path(request.getfixturevalue(name))


def split(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The model's training rows and held-out rows (its own split of the data it was fitted on)."""
    from credit_model.data import load_csv, split_xy
    from credit_model.synth import generate
    from credit_model.train import holdout_split

    hp = model.metadata["hyperparameters"]
    # The synthetic_model_dir fixture's data, regenerated.
    frame = load_csv(REAL_DATA) if REAL_DATA.is_file() else generate(6_000, seed=7)
    X_train, X_test, *_ = holdout_split(*split_xy(frame), hp["test_size"], hp["random_state"])
    return X_train, X_test


def monitored(model: Any, X: np.ndarray) -> dict[str, Any]:
    p, shap = build_explainer(model.pipeline).explain(X)
    return monitor.monitor(model.metadata, X, p, shap, [[] for _ in p])


def test_the_past_due_shift_is_flagged_and_the_10_digit_holdout_is_not(model_dir: Path) -> None:
    model = artifacts.load(model_dir)
    _, X = split(model)

    # Sent as pandas writes JSON by default (10 significant digits), read as the server reads it.
    sent = pd.DataFrame(X, columns=list(FEATURES)).to_json(orient="records", double_precision=10)
    received = np.array(
        [[math.nan if r[f] is None else r[f] for f in FEATURES] for r in json.loads(sent)], float
    )
    assert not np.array_equal(received, X, equal_nan=True)  # the writer moved some values
    report = monitored(model, received)
    assert report["alerts"] == [] and report["status"] == "ok"

    shifted = X.copy()
    for name in PAST_DUE_FEATURES:
        j = FEATURES.index(name)
        shifted[:, j] = np.where(shifted[:, j] >= 1, shifted[:, j] + 2, shifted[:, j])
    report = monitored(model, shifted)
    flagged = {a["feature"] for a in report["alerts"] if a["kind"] == "feature_psi"}
    assert set(PAST_DUE_FEATURES) <= flagged, report["alerts"]
    by = {f["feature"]: f for f in report["features"]}
    assert all(by[name]["binning"] == "value" for name in PAST_DUE_FEATURES)


def test_the_high_risk_threshold_is_the_whole_training_score_s_90th_percentile(
    model_dir: Path,
) -> None:
    model = artifacts.load(model_dir)
    X_train, _ = split(model)
    score = model.pipeline.predict_proba(X_train)[:, 1]
    threshold = model.metadata["baseline"]["monitoring"]["high_risk_threshold"]
    assert threshold == pytest.approx(np.quantile(score, 0.9), abs=1e-12)
