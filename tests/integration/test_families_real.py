"""Every boosted family on the real data sets in ../shared (skipped when absent): Give Me Some
Credit with the built-in schema, German credit with a drafted schema (categories as ordinal
codes). Probabilities equal the library's, log-odds explanations equal shap's, probability
explanations equal shap's exact Shapley values to 1e-9, and the default (constrained) model passes its report's checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shap
from credit_model import artifacts, families
from credit_model.data import load_csv, split_xy
from credit_model.handlers import model_fn
from credit_model.interventional import InterventionalExplainer
from credit_model.train import Hyperparameters, train
from credit_schema import BUILTIN, compile_schema

from tests.conftest import ROOT
from tests.references import by_shap_exact, library_margin

SHARED = ROOT.parent / "shared" / "data"
GMSC = SHARED / "give-me-some-credit" / "train.csv"
GERMAN = SHARED / "german-credit" / "german_credit.csv"


def _german(tmp: Path) -> tuple[Any, Path]:
    from credit_model.infer import draft

    frame = pd.read_csv(GERMAN, dtype=str)
    document, _ = draft(
        frame, target="creditability", positive="bad", prohibited=["personal_status_and_sex"]
    )
    path = tmp / "german.csv"
    frame.to_csv(path, index=False)
    return compile_schema(document), path


@pytest.fixture(scope="module", params=["gmsc", "german"])
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not (GMSC if request.param == "gmsc" else GERMAN).is_file():
        pytest.skip(f"{request.param} is not in {SHARED}")
    if request.param == "gmsc":
        return BUILTIN, load_csv(GMSC, BUILTIN)
    schema, path = _german(tmp_path_factory.mktemp("german"))
    return schema, load_csv(path, schema)


@pytest.mark.parametrize("family", ["hgb", "xgboost", "lightgbm"])
def test_each_family_on_real_data(real: Any, family: str, tmp_path: Path) -> None:
    schema, frame = real
    hp = Hyperparameters(model=family, n_estimators=20, n_jobs=1)
    train(frame, tmp_path / "m", hyperparameters=hp, log=lambda *_: None, schema=schema)
    model = model_fn(tmp_path / "m")
    library = artifacts.load(tmp_path / "m").pipeline
    X, _ = split_xy(frame, schema)
    rows = X[:300]
    tol = max(1e-9, families.module(family).AGREEMENT)  # XGBoost: its float32 sums
    p, phi, gap = model.explainers["log_odds"].explain_checked(rows)
    assert gap <= 1e-9
    np.testing.assert_allclose(p, library.predict_proba(rows)[:, 1], rtol=0, atol=tol)
    estimator = library.booster_ if family == "lightgbm" else library
    expected = np.asarray(shap.TreeExplainer(estimator).shap_values(rows), np.float64)
    np.testing.assert_allclose(phi, expected, rtol=0, atol=tol)
    probability = model.explainers["probability"]
    p2, _, gap2 = probability.explain_checked(rows)
    assert gap2 <= 1e-9
    np.testing.assert_allclose(p2, p, rtol=0, atol=1e-12)  # the same trees, summed apart
    # German credit's 17 features take 2**17 evaluations per applicant and background row.
    against = InterventionalExplainer(probability.paths, background=probability.background[:4])
    few = rows[:2]
    reference = by_shap_exact(library_margin(family, library), few, against.background)
    np.testing.assert_allclose(against.explain(few)[1], reference, rtol=0, atol=1e-9)


@pytest.mark.parametrize("data_set", ["gmsc", "german"])
def test_the_default_model_passes_every_check_of_its_report(
    data_set: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 28.5 on both data sets: `train` with its defaults, then `report --strict` exits 0.
    Without the forest's leaf calibration Give Me Some Credit fails Hosmer-Lemeshow (p 2e-7)."""
    from credit_explainer.cli import main

    csv = GMSC if data_set == "gmsc" else GERMAN
    if not csv.is_file():
        pytest.skip(f"{csv} is absent")
    schema, csv = (BUILTIN, GMSC) if data_set == "gmsc" else _german(tmp_path)
    hp = Hyperparameters(n_jobs=1)
    train(load_csv(csv, schema), tmp_path / "m", hyperparameters=hp, log=lambda *_: None,
          schema=schema)  # fmt: skip
    argv = ["report", "--model-dir", str(tmp_path / "m"), "--data", str(csv), "--holdout",
            "--strict", "--json", str(tmp_path / "r.json")]  # fmt: skip
    code = main(argv)
    capsys.readouterr()
    verdicts = json.loads((tmp_path / "r.json").read_text())["verdicts"]
    assert [v["check"] for v in verdicts if not v["passed"]] == [] and code == 0
