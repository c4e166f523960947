"""Adversarial model directories: a tampered artifact is refused, and nothing in it runs.

Two kinds of attacker: one who edits files but cannot re-sign them (caught by the
SHA-256 manifest), and one who also rewrites manifest.json and metadata.json
consistently (caught by skops' trusted-type check and by the skops format, which
never unpickles; and, when deployed with it, by the expected-version pin).
Each case checks the error names the problem, and that a payload planted in
the artifact never executed (its marker file does not exist).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from credit_model import artifacts
from credit_model.artifacts import (
    MANIFEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    ModelArtifactError,
    sha256_file,
)
from credit_model.forest import TABLES_FILE


def copy(src: Path, tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def resign(directory: Path) -> None:
    """What an attacker with write access does: make manifest and metadata agree again."""
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["model_sha256"] = sha256_file(directory / MODEL_FILE)
    (directory / METADATA_FILE).write_text(json.dumps(meta))
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"] = {n: sha256_file(directory / n) for n in manifest["files"]}
    manifest["model_version"] = artifacts.version_of(manifest["files"])[:16]
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


class Planted:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("where", [0, 100, -1, "middle"])
@pytest.mark.parametrize("name", [MODEL_FILE, METADATA_FILE, "metrics.json"])
def test_a_flipped_byte_anywhere_is_refused(
    synthetic_model_dir: Path, tmp_path: Path, name: str, where: int | str
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "flipped")
    blob = bytearray((d / name).read_bytes())
    i = len(blob) // 2 if where == "middle" else int(where)
    blob[i] ^= 0x01
    (d / name).write_bytes(bytes(blob))
    with pytest.raises(ModelArtifactError, match=f"{name} does not match its SHA-256"):
        artifacts.load(d)


def test_a_model_swapped_in_from_another_directory_is_refused(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    from credit_model.synth import generate
    from credit_model.train import Hyperparameters, train

    other = tmp_path / "other"
    train(
        generate(600, seed=99),
        other,
        hyperparameters=Hyperparameters(n_estimators=3, n_jobs=1),
        log=lambda *_: None,
    )
    d = copy(synthetic_model_dir, tmp_path, "swapped")
    shutil.copy(other / MODEL_FILE, d / MODEL_FILE)  # a valid model, not the one signed
    with pytest.raises(ModelArtifactError, match="does not match its SHA-256"):
        artifacts.load(d)
    # Swapping the whole directory's manifest but not the metadata: they disagree.
    shutil.copy(other / MANIFEST_FILE, d / MANIFEST_FILE)
    with pytest.raises(ModelArtifactError, match=r"SHA-256|disagree"):
        artifacts.load(d)
    # A fully consistent foreign directory loads, unless the deployment pins its version.
    for name in json.loads((other / MANIFEST_FILE).read_text())["files"]:
        shutil.copy(other / name, d / name)
    assert (
        artifacts.load(d).version
        == json.loads((other / MANIFEST_FILE).read_text())["model_version"]
    )
    pinned = json.loads((synthetic_model_dir / MANIFEST_FILE).read_text())["model_version"]
    os.environ[artifacts.EXPECTED_VERSION_ENV] = pinned
    try:
        with pytest.raises(ModelArtifactError, match="not the expected"):
            artifacts.load(d)
        assert artifacts.load(synthetic_model_dir).version == pinned
    finally:
        del os.environ[artifacts.EXPECTED_VERSION_ENV]


def test_a_skops_file_with_an_untrusted_type_is_refused_unloaded(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    d = copy(synthetic_model_dir, tmp_path, "untrusted")
    marker = tmp_path / "executed"
    original = sio.load(d / MODEL_FILE, trusted=list(artifacts.TRUSTED_TYPES))
    # The real pipeline with a step that would run a shell command on every prediction.
    evil = Pipeline([("run", FunctionTransformer(os.system)), *original.steps])
    sio.dump(evil, d / MODEL_FILE)
    resign(d)
    with pytest.raises(ModelArtifactError, match=r"not trusted: .*system"):
        artifacts.load(d)
    assert not marker.exists()


def test_a_pickle_where_skops_is_expected_never_runs(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "pickled")
    marker = tmp_path / "executed"
    (d / MODEL_FILE).write_bytes(pickle.dumps(Planted(marker)))
    resign(d)
    with pytest.raises(ModelArtifactError, match="not a loadable skops model"):
        artifacts.load(d)
    assert not marker.exists(), "loading the model directory executed code from it"


def test_a_skops_archive_hiding_a_pickle_never_runs(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    # skops files are zip archives; put a pickle inside one, under the names skops reads.
    import zipfile

    d = copy(synthetic_model_dir, tmp_path, "zipped-pickle")
    marker = tmp_path / "executed"
    with zipfile.ZipFile(d / MODEL_FILE, "a") as archive:
        names = archive.namelist()
    rebuilt = tmp_path / "rebuilt.zip"
    with zipfile.ZipFile(d / MODEL_FILE) as src, zipfile.ZipFile(rebuilt, "w") as dst:
        for name in names:
            data = src.read(name)
            if name != "schema.json":
                data = pickle.dumps(Planted(marker))
            dst.writestr(name, data)
    shutil.move(rebuilt, d / MODEL_FILE)
    resign(d)
    with pytest.raises(ModelArtifactError):
        artifacts.load(d)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage",
    ["no-manifest", "manifest-not-json", "manifest-omits-model", "path-traversal", "no-model"],
)
def test_a_broken_manifest_is_refused(
    synthetic_model_dir: Path, tmp_path: Path, damage: str
) -> None:
    d = copy(synthetic_model_dir, tmp_path, damage)
    manifest_path = d / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    if damage == "no-manifest":
        manifest_path.unlink()
    elif damage == "manifest-not-json":
        manifest_path.write_text("{not json")
    elif damage == "manifest-omits-model":
        del manifest["files"][MODEL_FILE]
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "path-traversal":
        outside = tmp_path / "outside.json"
        outside.write_text("{}")
        manifest["files"]["../outside.json"] = sha256_file(outside)
        manifest_path.write_text(json.dumps(manifest))
    else:
        (d / MODEL_FILE).unlink()
    with pytest.raises(ModelArtifactError, match=r"manifest|missing"):
        artifacts.load(d)


def test_the_model_server_refuses_to_start_on_a_tampered_model(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "served")
    blob = bytearray((d / MODEL_FILE).read_bytes())
    blob[len(blob) // 3] ^= 0xFF
    (d / MODEL_FILE).write_bytes(bytes(blob))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "credit_explainer",
            "serve-model",
            "--model-dir",
            str(d),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "does not match its SHA-256" in proc.stderr
    assert "refusing to load" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tampered_tables_are_refused_before_they_are_read(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    from credit_model.handlers import model_fn

    d = copy(synthetic_model_dir, tmp_path, "tables")
    with (d / TABLES_FILE).open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x7f")
    with pytest.raises(ModelArtifactError, match="does not match its SHA-256"):
        model_fn(d)
