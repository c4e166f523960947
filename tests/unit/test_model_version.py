"""model_version names the model, not the file: same data and hyperparameters, same version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from credit_explainer.cli import main as cli_main

artifacts = pytest.importorskip("credit_model.artifacts")


def train(directory: Path, *options: str) -> dict[str, Any]:
    args = ["train", "--rows", "3000", "--seed", "5", "--model-dir", str(directory)]
    assert cli_main([*args, "--n-estimators", "8", *options]) == 0
    meta: dict[str, Any] = json.loads((directory / artifacts.METADATA_FILE).read_text())
    return meta


def test_the_same_data_and_hyperparameters_give_the_same_model_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = train(tmp_path / "a", "--n-jobs", "1")
    again = train(tmp_path / "b", "--n-jobs", "2")  # threads do not change the forest
    assert first["model_version"] == again["model_version"]
    assert first["model_fingerprint"] == again["model_fingerprint"]
    assert first["model_version"] == first["model_fingerprint"][:16]
    # The manifest still checks the file itself.
    manifest = json.loads((tmp_path / "a" / artifacts.MANIFEST_FILE).read_text())
    assert manifest["files"][artifacts.MODEL_FILE] == first["model_sha256"]
    # A deployment pinned to the version loads either directory.
    monkeypatch.setenv(artifacts.EXPECTED_VERSION_ENV, first["model_version"])
    assert artifacts.load(tmp_path / "b").version == first["model_version"]


@pytest.mark.parametrize(
    "options",
    [
        ["--random-state", "7"],  # another forest from the same data
        ["--max-depth", "3"],  # another hyperparameter
        ["--seed", "6"],  # other data
    ],
)
def test_a_different_forest_gets_a_different_model_version(
    tmp_path: Path, options: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = train(tmp_path / "base", "--n-jobs", "1")
    other = train(tmp_path / "other", "--n-jobs", "1", *options)
    assert other["model_version"] != base["model_version"]
    monkeypatch.setenv(artifacts.EXPECTED_VERSION_ENV, base["model_version"])
    with pytest.raises(artifacts.ModelArtifactError, match="not the expected"):
        artifacts.load(tmp_path / "other")
