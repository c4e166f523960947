"""Synthetic data, training, artifacts and the exact explanations."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shap
from conftest import require_real_data
from credit_model import artifacts
from credit_model.data import DataError, load_csv, split_xy
from credit_model.explain import ShapTreeExplainer, split_pipeline
from credit_model.synth import generate
from credit_model.train import METRIC_DEFINITIONS, Hyperparameters, main, train
from credit_schema import FEATURES, TARGET


def test_synthetic_data_looks_like_the_real_thing() -> None:
    data = generate(20_000, seed=1)
    assert list(data.columns) == [TARGET, *FEATURES]
    assert 0.06 <= data[TARGET].mean() <= 0.075
    assert 0.17 <= data["MonthlyIncome"].isna().mean() <= 0.23
    assert 0.015 <= data["NumberOfDependents"].isna().mean() <= 0.04
    assert (
        data[list(FEATURES)]
        .drop(columns=["MonthlyIncome", "NumberOfDependents"])
        .notna()
        .all()
        .all()
    )
    for col in ("NumberOfTime30-59DaysPastDueNotWorse", "NumberOfTimes90DaysLate"):
        assert set(data[col]) >= {0, 1, 98}  # the source's 96/98 codes are there
    util = data["RevolvingUtilizationOfUnsecuredLines"]
    assert util.median() < 0.6 and util.max() > 100  # mostly in [0, 1], heavy tail
    assert data["age"].between(21, 103).all()
    assert generate(50, seed=3).equals(generate(50, seed=3))
    assert not generate(50, seed=3).equals(generate(50, seed=4))


def test_training_writes_metrics_a_sagemaker_regex_can_read(tmp_path: Path) -> None:
    lines: list[str] = []
    metrics = train(
        generate(3_000, seed=2),
        tmp_path,
        hyperparameters=Hyperparameters(n_estimators=10),
        log=lines.append,
    )
    text = "\n".join(lines)
    for definition in METRIC_DEFINITIONS:
        found = re.search(definition["Regex"], text)
        assert found, definition
        assert float(found.group(1)) == pytest.approx(
            metrics[definition["Name"].split(":")[1]], abs=1e-6
        )
    assert 0.6 < metrics["roc_auc"] <= 1.0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["roc_auc"] == metrics["roc_auc"]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["features"] == list(FEATURES)
    assert meta["hyperparameters"]["n_estimators"] == 10
    assert meta["library_versions"]["scikit-learn"]
    assert meta["training_data"]["features"]["MonthlyIncome"]["missing_rate"] > 0.1
    # The version names the signed files (tests/unit/test_model_version.py), in the manifest.
    assert meta["model_sha256"] == artifacts.sha256_file(tmp_path / "model.skops")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["model_version"] == metrics["model_version"]


@pytest.mark.real_data
def test_real_data_auc_is_at_least_0_84(real_model_dir: Path) -> None:
    metrics = json.loads((real_model_dir / "metrics.json").read_text())
    assert metrics["roc_auc"] >= 0.84, metrics


def test_kaggle_csv_with_index_column_loads(tmp_path: Path) -> None:
    data = generate(30, seed=5)
    data.to_csv(tmp_path / "cs-training.csv", index=True)  # the unnamed index column
    loaded = load_csv(tmp_path)
    assert list(loaded.columns) == [TARGET, *FEATURES] and len(loaded) == 30
    np.testing.assert_array_equal(split_xy(loaded)[0], split_xy(data)[0])
    (tmp_path / "bad.csv").write_text("age,Income\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        load_csv(tmp_path / "bad.csv")


def test_sagemaker_script_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = tmp_path / "input" / "data" / "train"
    channel.mkdir(parents=True)
    generate(2_000, seed=9).to_csv(channel / "train.csv", index=False)
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(channel))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    assert main(["--n_estimators", "7", "--max-depth", "4"]) == 0
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert (
        meta["hyperparameters"]["n_estimators"] == 7 and meta["hyperparameters"]["max_depth"] == 4
    )
    assert (tmp_path / "output" / "metrics.json").is_file()


def test_artifacts_round_trip_and_refuse_tampering(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    loaded = artifacts.load(synthetic_model_dir)
    assert (
        loaded.version
        == json.loads((synthetic_model_dir / "manifest.json").read_text())["model_version"]
    )

    tampered = tmp_path / "tampered"
    shutil.copytree(synthetic_model_dir, tampered)
    blob = bytearray((tampered / "model.skops").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tampered / "model.skops").write_bytes(bytes(blob))
    with pytest.raises(artifacts.ModelArtifactError, match="SHA-256"):
        artifacts.load(tampered)

    unlisted = tmp_path / "no-manifest"
    shutil.copytree(synthetic_model_dir, unlisted)
    (unlisted / "manifest.json").unlink()
    with pytest.raises(artifacts.ModelArtifactError, match="manifest"):
        artifacts.load(unlisted)


def test_expected_version_pins_the_model(
    synthetic_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(artifacts.EXPECTED_VERSION_ENV, "0123456789abcdef")
    with pytest.raises(artifacts.ModelArtifactError, match="expected"):
        artifacts.load(synthetic_model_dir)


def pipeline_of(model: Any) -> Any:
    """The fitted Pipeline behind a served model, loaded on its own from the model directory."""
    return artifacts.load(model.model_dir).pipeline


def _raw_rows(n: int, seed: int) -> np.ndarray:
    X, _ = split_xy(generate(n, seed=seed))
    return X


def _reference(pipeline: Any, X: np.ndarray) -> tuple[np.ndarray, float]:
    pre, forest = split_pipeline(pipeline)
    explainer = shap.TreeExplainer(forest)
    values = np.asarray(explainer.shap_values(pre.transform(X)))
    assert values.shape == (len(X), len(FEATURES), 2)  # newer shap: (n, features, classes)
    return values[:, :, 1], float(np.asarray(explainer.expected_value)[1])


def test_shap_values_equal_shap_tree_explainer_and_add_up(synthetic_model: Any) -> None:
    X = _raw_rows(500, seed=11)
    proba, values = synthetic_model.explainer.explain(X)
    ref_values, ref_base = _reference(pipeline_of(synthetic_model), X)
    np.testing.assert_allclose(values, ref_values, rtol=0, atol=1e-9)
    assert synthetic_model.explainer.base_value == pytest.approx(ref_base, abs=1e-9)
    np.testing.assert_allclose(
        proba, pipeline_of(synthetic_model).predict_proba(X)[:, 1], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        synthetic_model.explainer.base_value + values.sum(axis=1), proba, rtol=0, atol=1e-9
    )


@pytest.mark.real_data
def test_real_model_explanations_add_up_on_every_real_row(real_model_dir: Path) -> None:
    from credit_model.handlers import model_fn

    model = model_fn(real_model_dir)
    X, _ = split_xy(load_csv(require_real_data()))
    proba, values = model.explainer.explain(X)
    np.testing.assert_allclose(
        model.explainer.base_value + values.sum(axis=1), proba, rtol=0, atol=1e-9
    )
    ref_values, _ = _reference(pipeline_of(model), X[:300])
    np.testing.assert_allclose(values[:300], ref_values, rtol=0, atol=1e-9)


def test_the_explained_class_is_serious_delinquency(synthetic_model: Any) -> None:
    X = _raw_rows(50, seed=12)
    proba, _ = ShapTreeExplainer(pipeline_of(synthetic_model)).explain(X)
    np.testing.assert_allclose(proba, pipeline_of(synthetic_model).predict_proba(X)[:, 1])
    assert proba.mean() < 0.5  # class 1 is the rare one; class 0 would be ~0.93


def test_a_forest_too_large_for_the_tables_trains_and_is_served_by_shap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its baseline's explanations came from the tables, so training stopped with a stack
    trace (``--max-depth 8 --max-leaf-nodes 100`` on Give Me Some Credit)."""
    from credit_model import forest
    from credit_model.handlers import model_fn

    monkeypatch.setattr(forest, "MAX_TABLE_ENTRIES", 1_000)
    hp = Hyperparameters(n_estimators=5, n_jobs=1)
    train(generate(1_000, seed=8), tmp_path / "m", hyperparameters=hp, log=lambda *_: None)
    files = json.loads((tmp_path / "m" / artifacts.MANIFEST_FILE).read_text())["files"]
    assert forest.TABLES_FILE not in files
    model = model_fn(tmp_path / "m")
    assert isinstance(model.explainer, ShapTreeExplainer)
    X, _ = split_xy(generate(50, seed=9))
    p, phi = model.explainer.explain(X)
    np.testing.assert_allclose(model.explainer.base_value + phi.sum(axis=1), p, atol=1e-9)
