"""The model directory: what training writes and what serving loads.

Files (all at the top of the directory, which is also the layout of SageMaker's
``model.tar.gz``):

* ``model.skops``: the fitted scikit-learn Pipeline (median imputer + random
  forest) in the skops format, which loads without executing code from the file
  and refuses types that are not explicitly trusted;
* ``metadata.json``: feature names and order, training-data summary statistics,
  hyperparameters, library versions and ``model_version`` (a content hash);
* ``metrics.json``: held-out metrics;
* ``manifest.json``: SHA-256 of every other file, verified before anything is
  deserialised.

The shap explainer is never stored: it is built from the model at load time.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from credit_schema import FEATURES, TARGET

MODEL_FILE: Final = "model.skops"
METADATA_FILE: Final = "metadata.json"
METRICS_FILE: Final = "metrics.json"
MANIFEST_FILE: Final = "manifest.json"
FORMAT_VERSION: Final = 1

#: Types skops must be told to trust to load our Pipeline (everything else it trusts
#: by default is scikit-learn's own estimators and plain data). Nothing beyond these.
TRUSTED_TYPES: Final = ("numpy.dtype", "sklearn.tree._tree.Tree")

#: Set to a model version (or the full SHA-256 of model.skops) to refuse any other model.
EXPECTED_VERSION_ENV: Final = "CREDIT_EXPLAINER_EXPECTED_MODEL_VERSION"


class ModelArtifactError(RuntimeError):
    """A model directory that must not or cannot be loaded."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("scikit-learn", "numpy", "shap", "skops", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - every one is a dependency
            out[name] = "absent"
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def save(
    pipeline: Any,
    model_dir: str | Path,
    *,
    metadata: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the model directory; returns the metadata written (with ``model_version``)."""
    import skops.io as sio

    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    sio.dump(pipeline, model_path)
    model_sha = sha256_file(model_path)
    meta = {
        "format_version": FORMAT_VERSION,
        "model_version": model_sha[:16],
        "model_sha256": model_sha,
        "features": list(FEATURES),
        "target": TARGET,
        "positive_class": 1,
        "library_versions": library_versions(),
        **metadata,
    }
    _write_json(directory / METADATA_FILE, meta)
    _write_json(directory / METRICS_FILE, dict(metrics))
    manifest = {
        "algorithm": "sha256",
        "files": {
            name: sha256_file(directory / name)
            for name in (MODEL_FILE, METADATA_FILE, METRICS_FILE)
        },
    }
    _write_json(directory / MANIFEST_FILE, manifest)
    return meta


#: metadata.json's fields that serving reads, and their JSON types.
_METADATA_TYPES: Final[dict[str, type]] = {
    "format_version": int,
    "model_version": str,
    "model_sha256": str,
    "features": list,
    "library_versions": dict,
}


def read_metadata(directory: Path) -> dict[str, Any]:
    """metadata.json as a dict of the types serving reads, else :class:`ModelArtifactError`.

    Its SHA-256 may match (re-signed): its content is still the attacker's.
    """
    where = f"{directory}: {METADATA_FILE}"
    try:
        meta = json.loads((directory / METADATA_FILE).read_bytes().decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise ModelArtifactError(f"{where} is not UTF-8 JSON ({exc}); refusing to load") from None
    if not isinstance(meta, dict):
        raise ModelArtifactError(f"{where} is not a JSON object; refusing to load")
    for name, kind in _METADATA_TYPES.items():
        value = meta.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelArtifactError(
                f"{where}: {name} is not a JSON {kind.__name__}; refusing to load"
            )
    if not all(isinstance(v, str) for v in meta["library_versions"].values()):
        raise ModelArtifactError(f"{where}: library_versions are not strings; refusing to load")
    return meta


def verify(model_dir: str | Path) -> dict[str, Any]:
    """Check the manifest and the metadata; returns the metadata. Deserialises nothing."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelArtifactError(f"model directory {directory} does not exist")
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        files = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(files, dict):
            raise ValueError("unsupported manifest")
    except FileNotFoundError:
        raise ModelArtifactError(f"{directory}: no {MANIFEST_FILE}; refusing to load") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelArtifactError(f"{directory}: unreadable {MANIFEST_FILE}: {exc}") from None
    for name in (MODEL_FILE, METADATA_FILE):
        if name not in files:
            raise ModelArtifactError(f"{directory}: {MANIFEST_FILE} does not cover {name}")
    for name, expected in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise ModelArtifactError(f"{directory}: {name} is listed in the manifest but missing")
        if sha256_file(path) != expected:
            raise ModelArtifactError(
                f"{directory}: {name} does not match its SHA-256 in {MANIFEST_FILE}; "
                "the artifact was modified after training: refusing to load"
            )
    meta = read_metadata(directory)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelArtifactError(f"{directory}: unsupported format {meta.get('format_version')}")
    if tuple(meta.get("features", ())) != FEATURES:
        raise ModelArtifactError(f"{directory}: the model's features differ from this code's")
    if meta.get("model_sha256") != files[MODEL_FILE]:
        raise ModelArtifactError(f"{directory}: metadata and manifest disagree on {MODEL_FILE}")
    expected_version = os.environ.get(EXPECTED_VERSION_ENV, "").strip()
    if expected_version and expected_version not in (meta["model_version"], meta["model_sha256"]):
        raise ModelArtifactError(
            f"{directory}: model version {meta['model_version']} is not the expected "
            f"{expected_version} ({EXPECTED_VERSION_ENV})"
        )
    trained_with = meta.get("library_versions", {}).get("scikit-learn")
    running = library_versions()["scikit-learn"]
    if trained_with != running:
        raise ModelArtifactError(
            f"{directory}: trained with scikit-learn {trained_with}, running {running}; "
            "a fitted model does not travel across scikit-learn versions: retrain or use the "
            "matching image"
        )
    return meta


@dataclass(frozen=True)
class Artifacts:
    pipeline: Any
    metadata: dict[str, Any]
    model_dir: Path

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])


def load(model_dir: str | Path) -> Artifacts:
    """Verify, then load the model directory safely (skops, explicitly trusted types only)."""
    import skops.io as sio

    directory = Path(model_dir)
    meta = verify(directory)
    model_path = directory / MODEL_FILE
    try:
        untrusted = set(sio.get_untrusted_types(file=model_path))
        unexpected = untrusted - set(TRUSTED_TYPES)
        if unexpected:
            raise ModelArtifactError(
                f"{model_path}: holds types that are not trusted: {', '.join(sorted(unexpected))}"
            )
        pipeline = sio.load(model_path, trusted=sorted(untrusted))
    except ModelArtifactError:
        raise
    except Exception as exc:
        raise ModelArtifactError(f"{model_path}: not a loadable skops model: {exc}") from exc
    return Artifacts(pipeline=pipeline, metadata=meta, model_dir=directory)
