"""Issue 30, done when, on a lender's own data (German credit when present, the synthetic second
lender always): the disparate-impact section shows the prohibited basis' groups with their
ratios, ``--strict`` exits 1 on a failed check, and a shift of a categorical attribute is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from credit_explainer.cli import main
from credit_model import artifacts, monitor
from credit_model.data import load_csv, split_xy
from credit_model.explain import build_explainer
from credit_model.train import holdout_split
from credit_schema import SCHEMA_FILE, read_schema
from test_own_data import german, lender, other  # noqa: F401  (the lenders' models, trained once)


def test_disparate_impact_by_the_schema_s_prohibited_basis(
    lender: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_dir, frame = lender
    schema = read_schema(model_dir / SCHEMA_FILE)
    (basis,) = schema.prohibited  # personal_status_and_sex for German credit
    data = tmp_path / "all.csv"
    frame.to_csv(data, index=False)
    figures_file = tmp_path / "r.json"
    argv = ["report", "--model-dir", str(model_dir), "--data", str(data), "--holdout",
            "--json", str(figures_file), "--strict"]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr().out
    figures = json.loads(figures_file.read_text())
    failed = [v["check"] for v in figures["verdicts"] if not v["passed"]]
    assert code == (1 if failed else 0) and all(f"check failed: {c}" in out for c in failed)
    (section,) = figures["disparate_impact"]["attributes"]
    assert section["attribute"] == basis

    # Recomputed here: the held-out rows, the model's probabilities, the top-decile cutoff.
    model = artifacts.load(model_dir)
    encoded = load_csv(data, model.schema)
    X, y = split_xy(encoded, model.schema)
    hp = model.metadata["hyperparameters"]
    _, kept, _, _ = holdout_split(np.arange(len(y)), y, hp["test_size"], hp["random_state"])
    p = build_explainer(model.pipeline).explain(X[kept])[0]
    groups = pd.Series(encoded[basis].to_numpy()[kept])
    rates = pd.Series(p < np.quantile(p, 0.9)).groupby(groups).mean()
    got = {g["group"]: (g["count"], g["adverse_impact_ratio"]) for g in section["groups"]}
    assert set(got) == set(rates.index) and len(got) >= 2
    for group, rate in rates.items():
        assert got[group][0] == (groups == group).sum()
        assert got[group][1] == pytest.approx(rate / rates.max())
    assert section["passed"] is all(rate / rates.max() >= 0.8 for rate in rates)


def test_a_shift_of_a_categorical_attribute_is_named(
    lender: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    model_dir, frame = lender
    model = artifacts.load(model_dir)
    schema = model.schema
    frame.to_csv(tmp_path / "all.csv", index=False)
    X, y = split_xy(load_csv(tmp_path / "all.csv", schema), schema)
    hp = model.metadata["hyperparameters"]
    _, X, _, _ = holdout_split(X, y, hp["test_size"], hp["random_state"])

    def run(rows: np.ndarray) -> dict[str, Any]:
        p, shap = build_explainer(model.pipeline).explain(rows)
        return monitor.monitor(model.metadata, rows, p, shap, [[] for _ in p])

    report = run(X)
    assert not [a for a in report["alerts"] if a["kind"] == "feature_psi"], report["alerts"]
    name = sorted(schema.categorical)[0]
    j = schema.features.index(name)
    codes = schema.codes[name]
    most = float(np.bincount(X[:, j].astype(int)).argmax())
    other_code = next(float(c) for c in codes.values() if c != most)
    shifted = X.copy()
    shifted[shifted[:, j] == most, j] = other_code  # the commonest category moved to another
    report = run(shifted)
    named = {a["feature"] for a in report["alerts"] if a["kind"] == "feature_psi"}
    assert named == {name}, report["alerts"]
    by = {f["feature"]: f for f in report["features"]}[name]
    assert by["binning"] == "category" and by["bins"][:-1] == list(codes)
