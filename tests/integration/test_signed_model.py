"""Issue 32, point 1: what is served is what the version names and the manifest signs.

On real model directories: the model version covers every file the manifest lists (the
served TreeSHAP tables included), a file the manifest does not list is refused at load, a
malformed table file is one ``error:`` line (exit 2) from every command that loads it, and
``report`` states the version of what is served, refusing tables that are another model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from credit_explainer.cli import main as cli_main
from credit_model import artifacts
from credit_model.artifacts import (
    MANIFEST_FILE,
    METADATA_FILE,
    ModelArtifactError,
    sha256_file,
)
from credit_model.forest import TABLES_FILE


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model of the same features: its tables answer other probabilities."""
    from credit_model.synth import generate
    from credit_model.train import Hyperparameters, train

    directory = tmp_path_factory.mktemp("other-model")
    train(
        generate(800, seed=99),
        directory,
        hyperparameters=Hyperparameters(n_estimators=4, max_depth=3, n_jobs=1),
        log=lambda *_: None,
    )
    return directory


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from credit_model.synth import generate

    path = tmp_path_factory.mktemp("report-data") / "labelled.csv"
    generate(2_000, seed=98).to_csv(path, index=False)
    return path


def copy(src: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(src, tmp_path / name))


def manifest(directory: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((directory / MANIFEST_FILE).read_text())
    return loaded


def sign_tables(d: Path, *, listed: bool = True) -> None:
    """What someone who can write the directory does: list (or drop) the tables in the
    manifest as they now are, with no stated version (as before issue 32)."""
    signed = manifest(d)
    files = signed["files"]
    assert isinstance(files, dict)
    if listed:
        files[TABLES_FILE] = sha256_file(d / TABLES_FILE)
    else:
        del files[TABLES_FILE]
    signed.pop("model_version", None)
    (d / MANIFEST_FILE).write_text(json.dumps(signed))


def test_the_version_covers_every_listed_file_and_the_served_tables(
    synthetic_model_dir: Path,
) -> None:
    signed = manifest(synthetic_model_dir)
    files = signed["files"]
    assert isinstance(files, dict)
    assert TABLES_FILE in files  # what the model server loads is signed
    meta = artifacts.verify(synthetic_model_dir)
    assert meta["model_version"] == signed["model_version"] == meta["model_digest"][:16]
    assert meta["signed_files"] == sorted(files)
    # An independent recomputation: SHA-256 over the sorted names and each file's SHA-256.
    import hashlib

    canonical = json.dumps(
        {
            name: hashlib.sha256((synthetic_model_dir / name).read_bytes()).hexdigest()
            for name in sorted(files)
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert meta["model_digest"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_other_tables_dropped_in_unlisted_are_refused_even_under_the_pinned_version(
    synthetic_model_dir: Path,
    other_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe: another model's tables copied in, their manifest entry dropped, the version
    pinned. Before: the pinned version served the other model's probabilities."""
    from credit_model.handlers import model_fn

    pinned = artifacts.verify(synthetic_model_dir)["model_version"]
    d = copy(synthetic_model_dir, tmp_path, "swapped-tables")
    shutil.copy(other_model_dir / TABLES_FILE, d / TABLES_FILE)
    sign_tables(d, listed=False)
    monkeypatch.setenv(artifacts.EXPECTED_VERSION_ENV, pinned)
    with pytest.raises(ModelArtifactError, match=f"{TABLES_FILE} not listed in manifest.json"):
        model_fn(d)
    # Signing them instead changes the version: the pin refuses it.
    sign_tables(d)
    with pytest.raises(ModelArtifactError, match="not the expected"):
        model_fn(d)
    monkeypatch.delenv(artifacts.EXPECTED_VERSION_ENV)
    assert model_fn(d).version != pinned


@pytest.mark.parametrize("name", ["notes.txt", "extra.npz", "__pycache__"])
def test_any_unlisted_file_is_refused_at_load(
    synthetic_model_dir: Path, tmp_path: Path, name: str
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "unlisted")
    if name == "__pycache__":
        (d / name).mkdir()
    else:
        (d / name).write_bytes(b"anything")
    with pytest.raises(ModelArtifactError, match=f"{name} not listed in manifest.json"):
        artifacts.verify(d)


def test_the_report_beside_the_model_is_no_served_file(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "reported")
    (d / artifacts.REPORT_FILE).write_text("<html></html>")
    assert (
        artifacts.verify(d)["model_version"]
        == artifacts.verify(synthetic_model_dir)["model_version"]
    )


def test_a_manifest_whose_version_is_not_its_files_is_refused(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "relabelled")
    signed = manifest(d)
    signed["model_version"] = "23a50169d408ef38"
    (d / MANIFEST_FILE).write_text(json.dumps(signed))
    with pytest.raises(ModelArtifactError, match="is not its files' version"):
        artifacts.verify(d)


def object_array_tables(d: Path) -> None:
    """A table file holding an object array (np.load refuses it without pickle), re-signed."""
    import numpy as np

    with np.load(d / TABLES_FILE) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["table"] = np.array([{"a": 1}, None], dtype=object)
    with (d / TABLES_FILE).open("wb") as fh:
        np.savez(fh, **arrays)
    sign_tables(d)


@pytest.mark.parametrize("command", ["serve-model", "report"])
def test_a_malformed_table_file_is_one_error_line_and_exit_2(
    synthetic_model_dir: Path, tmp_path: Path, command: str, data_file: Path
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "object-array")
    object_array_tables(d)
    args = [sys.executable, "-m", "credit_explainer", command, "--model-dir", str(d)]
    if command == "serve-model":
        args += ["--port", "0", "--host", "127.0.0.1"]
    else:
        args += ["--data", str(data_file), "--output", str(tmp_path / "r.html")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{TABLES_FILE}: not loadable TreeSHAP tables" in errors[0]


def test_report_states_the_served_version_and_refuses_tables_of_another_model(
    synthetic_model_dir: Path,
    other_model_dir: Path,
    tmp_path: Path,
    data_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    d = copy(synthetic_model_dir, tmp_path, "report")
    out = tmp_path / "report.json"
    report = ["report", "--model-dir", str(d), "--data", str(data_file), "--json", str(out)]
    assert cli_main(report) == 0
    served = artifacts.verify(d)["model_version"]
    figures = json.loads(out.read_text())
    assert figures["model"]["model_version"] == served
    # The other model's tables, signed (someone who can write the directory re-signs it):
    # the version changes, and the report refuses a pair that is not one model.
    shutil.copy(other_model_dir / TABLES_FILE, d / TABLES_FILE)
    sign_tables(d)
    capsys.readouterr()
    assert cli_main(report) == 2
    assert "are not one model" in capsys.readouterr().err


def test_retraining_over_a_directory_leaves_nothing_of_the_old_model(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    from credit_model.synth import generate
    from credit_model.train import Hyperparameters, train

    d = copy(synthetic_model_dir, tmp_path, "retrained")
    (d / artifacts.REPORT_FILE).write_text("the old model's report")
    train(
        generate(600, seed=3),
        d,
        hyperparameters=Hyperparameters(n_estimators=3, n_jobs=1),
        log=lambda *_: None,
    )
    assert not (d / artifacts.REPORT_FILE).exists()
    assert (
        artifacts.verify(d)["model_version"]
        != artifacts.verify(synthetic_model_dir)["model_version"]
    )
    assert METADATA_FILE in manifest(d)["files"]  # type: ignore[operator]


# -- signing the manifest with a local key ------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "signing.key"
    key.write_bytes(os.urandom(32).hex().encode())
    monkeypatch.setenv(artifacts.SIGNING_KEY_ENV, str(key))
    return key


def test_a_signed_directory_loads_only_while_its_signature_holds(
    tmp_path: Path, key_file: Path, other_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "signed"
    assert cli_main(["train", "--rows", "800", "--n-estimators", "3", "--model-dir", str(d)]) == 0
    assert (d / artifacts.SIGNATURE_FILE).is_file()
    version = artifacts.verify(d)["model_version"]
    # Someone who can write the directory swaps the tables and rewrites the manifest, but
    # has not the key: refused, whatever the manifest says.
    shutil.copy(other_model_dir / TABLES_FILE, d / TABLES_FILE)
    sign_tables(d)
    with pytest.raises(ModelArtifactError, match="is not signed with the key"):
        artifacts.verify(d)
    # A server with the key refuses a directory that was never signed.
    with pytest.raises(ModelArtifactError, match=f"no {artifacts.SIGNATURE_FILE}"):
        artifacts.verify(other_model_dir)
    # Without a key the signature is not checked (and not an unlisted file).
    monkeypatch.delenv(artifacts.SIGNING_KEY_ENV)
    assert artifacts.verify(d)["model_version"] != version


def test_serve_model_refuses_a_directory_signed_with_another_key(
    tmp_path: Path, key_file: Path
) -> None:
    d = tmp_path / "signed"
    assert cli_main(["train", "--rows", "800", "--n-estimators", "3", "--model-dir", str(d)]) == 0
    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32).hex().encode())
    proc = subprocess.run(
        [sys.executable, "-m", "credit_explainer", "serve-model", "--model-dir", str(d),
         "--port", "0", "--host", "127.0.0.1"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, artifacts.SIGNING_KEY_ENV: str(other_key)},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "is not signed with the key" in proc.stderr


def test_a_short_signing_key_is_an_error_line_at_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.key"
    short.write_text("secret")
    monkeypatch.setenv(artifacts.SIGNING_KEY_ENV, str(short))
    d = tmp_path / "m"
    assert cli_main(["train", "--rows", "800", "--n-estimators", "3", "--model-dir", str(d)]) == 2
    assert "at least 32 bytes" in capsys.readouterr().err
