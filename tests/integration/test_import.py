"""``credit-explainer import``: a model fitted outside the project, served like one trained here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from credit_explainer.cli import main
from credit_model import families
from credit_model.data import split_xy
from credit_model.handlers import model_fn, transform
from credit_model.synth import generate
from credit_model.train import METRIC_DEFINITIONS, Hyperparameters, train

from tests.conftest import SAMPLE_APPLICANTS


def fitted_elsewhere(family: str, X: np.ndarray, y: np.ndarray, directory: Path) -> Path:
    """A model fitted with the library alone, saved in its own format."""
    if family == "xgboost":
        import xgboost

        model: Any = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
        path = directory / "lender.json"
        model.save_model(str(path))
    elif family == "lightgbm":
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(X, y)
        path = directory / "lender.txt"
        model.booster_.save_model(str(path))
    else:
        import skops.io as sio
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=10, max_depth=3).fit(X, y)
        path = directory / "lender.skops"
        sio.dump(model, path)
    return path


def answers(model_dir: Path, space: str) -> list[dict[str, Any]]:
    out, _ = transform(
        model_fn(model_dir), json.dumps(SAMPLE_APPLICANTS), "application/json",
        "application/json", space=space,
    )  # fmt: skip
    predictions: list[dict[str, Any]] = json.loads(out)["predictions"]
    return predictions


@pytest.mark.parametrize("family", ["hgb", "xgboost", "lightgbm"])
def test_imported_model_answers_as_its_library(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = generate(3_000, seed=4)
    X, y = split_xy(frame)
    estimator = fitted_elsewhere(family, X, y, tmp_path)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    code = main(
        ["import", "--estimator", str(estimator), "--data", str(data),
         "--model-dir", str(tmp_path / "m"), "--points", "600:50:20"]
    )  # fmt: skip
    assert code == 0
    # One metrics line for people, as train prints; SageMaker's lines are the entry point's.
    out = capsys.readouterr().out
    assert f"held-out {len(frame):,} rows: ROC AUC " in out
    assert not any(re.search(d["Regex"], out) for d in METRIC_DEFINITIONS)
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert meta["estimator"]["family"] == family and meta["imported"]["file"] == estimator.name
    from credit_model import artifacts

    library = artifacts.load(tmp_path / "m").pipeline
    rows = np.array(
        [[np.nan if a[f] is None else a[f] for f in frame.columns[1:]] for a in SAMPLE_APPLICANTS]
    )
    expected = library.predict_proba(rows)[:, 1]
    tol = max(1e-9, families.module(family).AGREEMENT)  # XGBoost: its float32 sums
    for answer, p in zip(answers(tmp_path / "m", "log_odds"), expected, strict=True):
        assert abs(answer["probability"] - p) <= tol
        assert answer["points"]["score"] == answer["points"]["base"] + sum(
            answer["points"]["features"].values()
        )


def test_importing_a_model_trained_here_gives_the_same_answers(tmp_path: Path) -> None:
    frame = generate(3_000, seed=6)
    hp = Hyperparameters(model="lightgbm", n_estimators=8, max_depth=3, n_jobs=1)
    train(frame, tmp_path / "here", hyperparameters=hp, log=lambda *_: None)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    estimator = str(tmp_path / "here" / "model.txt")
    args = ["import", "--estimator", estimator, "--data", str(data), "--model-dir"]
    assert main([*args, str(tmp_path / "imported")]) == 0
    assert answers(tmp_path / "imported", "log_odds") == answers(tmp_path / "here", "log_odds")


def test_a_file_that_is_no_model_is_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "model.txt").write_text("not a model")
    (tmp_path / "model.pkl").write_text("x")
    frame = generate(200, seed=1)
    frame.to_csv(tmp_path / "d.csv", index=False)
    for name in ("model.txt", "model.pkl"):
        code = main(
            ["import", "--estimator", str(tmp_path / name), "--data", str(tmp_path / "d.csv"),
             "--model-dir", str(tmp_path / "m")]
        )  # fmt: skip
        assert code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and name in err and "Traceback" not in err
