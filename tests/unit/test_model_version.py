"""model_version names the files served (issue 32): every signed file, the served tables too.

The fitted model's fingerprint (metadata.json) stays the same for the same data and
hyperparameters; the version, over the files' bytes, names one model directory exactly.
"""

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
    meta: dict[str, Any] = artifacts.verify(directory)
    return meta


def test_the_version_names_the_files_and_the_fingerprint_the_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = train(tmp_path / "a", "--n-jobs", "1")
    again = train(tmp_path / "b", "--n-jobs", "2")  # threads do not change the forest
    assert first["model_fingerprint"] == again["model_fingerprint"]
    # skops' archive names its members after object ids: the same fit is other bytes, so
    # another version; the version is what the manifest signs, written there for people.
    assert first["model_version"] != again["model_version"]
    manifest = json.loads((tmp_path / "a" / artifacts.MANIFEST_FILE).read_text())
    assert manifest["model_version"] == first["model_version"] == first["model_digest"][:16]
    assert manifest["files"][artifacts.MODEL_FILE] == first["model_sha256"]
    # A deployment pinned to one version (or its full digest) loads that directory only.
    for pin in (first["model_version"], first["model_digest"]):
        monkeypatch.setenv(artifacts.EXPECTED_VERSION_ENV, pin)
        assert artifacts.load(tmp_path / "a").version == first["model_version"]
        with pytest.raises(artifacts.ModelArtifactError, match="not the expected"):
            artifacts.load(tmp_path / "b")


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
    assert other["model_fingerprint"] != base["model_fingerprint"]
    monkeypatch.setenv(artifacts.EXPECTED_VERSION_ENV, base["model_version"])
    with pytest.raises(artifacts.ModelArtifactError, match="not the expected"):
        artifacts.load(tmp_path / "other")
