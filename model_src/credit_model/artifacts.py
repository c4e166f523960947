"""The model directory: what training writes and what serving loads.

Files (all at the top of the directory, which is also the layout of SageMaker's
``model.tar.gz``):

* ``model.skops``: the fitted scikit-learn Pipeline (median imputer + random
  forest) in the skops format, which loads without executing code from the file
  and refuses types that are not explicitly trusted;
* ``metadata.json``: feature names and order, training-data summary statistics,
  hyperparameters, library versions and ``model_fingerprint`` (a hash of the fitted
  model: the same for the same data and hyperparameters; descriptive only);
* ``metrics.json``: held-out metrics;
* ``treeshap.npz``: the forest compiled to exact TreeSHAP tables and the imputer's fill
  values (plain arrays), which is all serving loads: no scikit-learn at start-up;
* ``schema.json``: the data set's schema (features, kinds, categories, ids, reasons), which
  every server validates with and the model version covers;
* ``manifest.json``: SHA-256 of every other file, verified before anything is
  deserialised, and ``model_version``.

The model version is the first 16 hex digits of :func:`version_of` the manifest's files:
it covers every file listed, whatever files a model family writes, so it names exactly
what is served and what ``report`` validated. A file in the directory that the manifest
does not list is refused at load (only :data:`UNSIGNED_OUTPUTS`, which nothing loads, may
sit beside it). With :data:`SIGNING_KEY_ENV` set, training writes ``manifest.sig`` (an
HMAC-SHA256 of manifest.json) and loading requires it: someone who can write the directory
but not read the key cannot re-sign it.

Nothing is pickled: skops refuses untrusted types and the tables load with
``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from credit_schema import (
    BUILTIN,
    SCHEMA_FILE,
    ApplicantSchema,
    SchemaError,
    dump_schema,
    read_schema,
)

MODEL_FILE: Final = "model.skops"
METADATA_FILE: Final = "metadata.json"
METRICS_FILE: Final = "metrics.json"
MANIFEST_FILE: Final = "manifest.json"
#: The validation report ``report`` writes beside the model by default: nothing loads it.
REPORT_FILE: Final = "report.html"
#: The HMAC-SHA256 of manifest.json, with a key kept apart from the model directory.
SIGNATURE_FILE: Final = "manifest.sig"
#: A file holding the signing key: set, training signs and loading requires the signature.
SIGNING_KEY_ENV: Final = "CREDIT_EXPLAINER_SIGNING_KEY_FILE"
#: Files that may sit in a model directory without being in its manifest (never loaded).
UNSIGNED_OUTPUTS: Final = frozenset({REPORT_FILE})
FORMAT_VERSION: Final = 1
#: Hex digits of the manifest's digest that make the model version.
VERSION_DIGITS: Final = 16

#: Types skops must be told to trust to load our Pipeline (everything else it trusts
#: by default is scikit-learn's own estimators and plain data). Nothing beyond these.
TRUSTED_TYPES: Final = ("numpy.dtype", "sklearn.tree._tree.Tree")

#: Set to a model version (or its full digest) to refuse any other model.
EXPECTED_VERSION_ENV: Final = "CREDIT_EXPLAINER_EXPECTED_MODEL_VERSION"


class ModelArtifactError(RuntimeError):
    """A model directory that must not or cannot be loaded."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Parameters that say how a step runs, not what it computes: not part of the model version.
_RUNTIME_PARAMS: Final = frozenset({"n_jobs", "verbose", "copy"})
#: A fitted tree's arrays: its splits, its leaf values and the node weights TreeSHAP uses.
_TREE_ARRAYS: Final = (
    "children_left",
    "children_right",
    "feature",
    "threshold",
    "value",
    "weighted_n_node_samples",
)


def model_fingerprint(pipeline: Any, schema: ApplicantSchema = BUILTIN) -> str:
    """SHA-256 of the fitted model itself: features, each step's class and parameters, fitted
    values. The same data and hyperparameters give the same fingerprint (skops' bytes differ
    from one dump to the next); descriptive, in metadata.json: the version is over the files.
    """
    import numpy as np

    digest = hashlib.sha256()

    def add(name: str, value: Any) -> None:
        digest.update(name.encode() + b"\0")
        if isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True, default=repr).encode())
        digest.update(b"\0")

    add("features", list(schema.features))
    if schema is not BUILTIN:  # the built-in schema's models keep the version they had
        add("schema", schema.document())
    for step_name, step in pipeline.steps:
        params = step.get_params(deep=False)
        add(
            step_name,
            [
                type(step).__qualname__,
                {k: v for k, v in params.items() if k not in _RUNTIME_PARAMS},
            ],
        )
        if hasattr(step, "statistics_"):
            add(f"{step_name}.statistics_", step.statistics_)
        if hasattr(step, "classes_"):
            add(f"{step_name}.classes_", np.asarray(step.classes_))
        for i, tree in enumerate(getattr(step, "estimators_", ())):
            for attr in _TREE_ARRAYS:
                add(f"{step_name}.estimators_[{i}].{attr}", getattr(tree.tree_, attr))
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("scikit-learn", "numpy", "shap", "skops", "pandas", "xgboost", "lightgbm"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # xgboost and lightgbm are the gbm extra's
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
    background: np.ndarray | None = None,
    schema: ApplicantSchema = BUILTIN,
    cutoff_pool: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write the model directory; returns the metadata written (with ``model_version``).

    ``background``: rows a boosted model's probability-space explanations are taken
    against (kept in the directory, covered by the manifest and the model version);
    ``cutoff_pool``: the training rows a background near an approval cutoff is picked from."""
    from . import families

    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_previous(directory)
    family_name = families.of(pipeline)
    family = families.module(family_name)
    model_file = MODEL_FILE if family_name == "rf" else family.MODEL_FILE
    model_path = directory / model_file
    if family_name == "rf":
        import skops.io as sio

        sio.dump(pipeline, model_path)
        fingerprint = model_fingerprint(pipeline, schema)
        tables = _save_tables(pipeline, directory)
        if tables and cutoff_pool is not None:  # reasons against a cutoff: the forest's paths
            from .ensemble import UnsupportedModelError
            from .explainer import imputer_and_forest

            ensemble = family.to_ensemble(imputer_and_forest(pipeline)[1])
            # A path on too many features: no interventional tables, no cutoff reasons.
            with contextlib.suppress(UnsupportedModelError):
                tables += _save_paths(ensemble, directory, (background, cutoff_pool))[1]
    else:
        family.save(pipeline, model_path)
        fingerprint, tables = _save_ensemble_tables(
            family.to_ensemble(pipeline), directory, (background, cutoff_pool), schema
        )
    model_sha = sha256_file(model_path)
    dump_schema(schema.schema, directory / SCHEMA_FILE)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_fingerprint": fingerprint,
        "model_sha256": model_sha,
        "schema": schema.name,
        "features": list(schema.features),
        "target": schema.target,
        "positive_class": 1,
        "library_versions": library_versions(),
        "estimator": {
            "family": family_name,
            "library": getattr(family, "LIBRARY", "scikit-learn"),
            "version": library_versions().get(getattr(family, "LIBRARY", "scikit-learn"), ""),
            "file": model_file,
        },
        **metadata,
    }
    _write_json(directory / METADATA_FILE, meta)
    _write_json(directory / METRICS_FILE, dict(metrics))
    digest = write_manifest(
        directory, (model_file, METADATA_FILE, METRICS_FILE, SCHEMA_FILE, *tables)
    )
    return {**meta, "model_version": digest[:VERSION_DIGITS], "model_digest": digest}


def version_of(files: Mapping[str, str]) -> str:
    """The model's digest: SHA-256 over every listed file's name and SHA-256 (sorted).

    Its first :data:`VERSION_DIGITS` hex digits are the model version.
    """
    canonical = json.dumps(dict(files), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_manifest(directory: Path, names: Iterable[str]) -> str:
    """Sign ``names`` (every file serving or any command reads) in manifest.json; the digest."""
    files = {name: sha256_file(directory / name) for name in sorted(names)}
    digest = version_of(files)
    manifest = {"algorithm": "sha256", "files": files, "model_version": digest[:VERSION_DIGITS]}
    _write_json(directory / MANIFEST_FILE, manifest)
    key = _signing_key()
    if key is not None:
        signature = hmac.new(key, (directory / MANIFEST_FILE).read_bytes(), hashlib.sha256)
        (directory / SIGNATURE_FILE).write_text(signature.hexdigest() + "\n")
    return digest


def _signing_key() -> bytes | None:
    """The key in ``$CREDIT_EXPLAINER_SIGNING_KEY_FILE`` (None when unset)."""
    path = os.environ.get(SIGNING_KEY_ENV, "").strip()
    if not path:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ModelArtifactError(f"{SIGNING_KEY_ENV}={path}: {exc.strerror}") from None
    if len(key) < 32:
        raise ModelArtifactError(f"{SIGNING_KEY_ENV}={path}: a key of at least 32 bytes is needed")
    return key


def _check_signature(directory: Path) -> None:
    """With a signing key set, manifest.json must carry its HMAC (else ModelArtifactError)."""
    key = _signing_key()
    if key is None:
        return
    try:
        given = (directory / SIGNATURE_FILE).read_text().strip()
    except OSError:
        raise ModelArtifactError(
            f"{directory}: no {SIGNATURE_FILE} and {SIGNING_KEY_ENV} is set; refusing to load"
        ) from None
    expected = hmac.new(key, (directory / MANIFEST_FILE).read_bytes(), hashlib.sha256)
    if not hmac.compare_digest(given, expected.hexdigest()):
        raise ModelArtifactError(
            f"{directory}: {MANIFEST_FILE} is not signed with the key in {SIGNING_KEY_ENV}; "
            "refusing to load"
        )


def _remove_previous(directory: Path) -> None:
    """A model written over another leaves none of its files (signed or not) behind."""
    try:
        previous = json.loads((directory / MANIFEST_FILE).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        previous = {}
    for name in (*previous, MANIFEST_FILE, SIGNATURE_FILE, *UNSIGNED_OUTPUTS):
        if isinstance(name, str) and Path(name).name == name:
            (directory / name).unlink(missing_ok=True)


def _save_tables(pipeline: Any, directory: Path) -> tuple[str, ...]:
    """Write the compiled TreeSHAP tables; () for a model the fast explainer does not cover."""
    from .explainer import imputer_and_forest
    from .forest import TABLES_FILE, UnsupportedModelError, compile_forest, save_tables

    try:
        fill, forest = imputer_and_forest(pipeline)
        compiled = compile_forest(forest)
    except UnsupportedModelError:
        return ()
    fill_values = fill if fill is not None else np.full(compiled.n_features, np.nan)
    save_tables(directory / TABLES_FILE, compiled, fill_values)
    return (TABLES_FILE,)


def _save_ensemble_tables(
    ensemble: Any,
    directory: Path,
    rows: tuple[np.ndarray | None, np.ndarray | None],
    schema: ApplicantSchema,
) -> tuple[str, tuple[str, ...]]:
    """A boosted model's tables (no imputer: each split routes NaN its own way), its leaves'
    paths and background (probability space), and its fingerprint: a hash of the compiled
    trees and the background, so two fits differ in version."""
    from .ensemble import fingerprint
    from .forest import TABLES_FILE, compile_ensemble, save_tables

    compiled = compile_ensemble(ensemble)
    save_tables(directory / TABLES_FILE, compiled, np.full(compiled.n_features, np.nan))
    document = json.dumps(schema.document(), sort_keys=True)
    digest = hashlib.sha256(f"{document}|{fingerprint(ensemble)}".encode())
    rows_digest, names = _save_paths(ensemble, directory, rows)
    digest.update(rows_digest)
    return digest.hexdigest(), (TABLES_FILE, *names)


def _save_paths(
    ensemble: Any, directory: Path, rows: tuple[np.ndarray | None, np.ndarray | None]
) -> tuple[bytes, tuple[str, ...]]:
    """The leaves' paths with the background and cutoff pool ``rows`` (interventional
    explanations), when there is a background: the rows' bytes (for a fingerprint) and the
    file written."""
    from .interventional import INTERVENTIONAL_FILE, leaf_paths, save_paths

    background, pool = rows
    if background is None:
        return b"", ()
    paths = leaf_paths(ensemble, background, pool)
    save_paths(directory / INTERVENTIONAL_FILE, paths)
    return paths.background.tobytes() + paths.pool.tobytes(), (INTERVENTIONAL_FILE,)


#: metadata.json's fields that serving reads, and their JSON types.
_METADATA_TYPES: Final[dict[str, type]] = {
    "format_version": int,
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


def _read_manifest(directory: Path) -> tuple[dict[str, str], object]:
    """manifest.json's files (name -> SHA-256), checked for shape, and the model version it
    states (None if it states none: a directory from before issue 32); else ModelArtifactError."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_bytes().decode("utf-8"))
        files = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(files, dict):
            raise ValueError("unsupported manifest")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ValueError("its files are not names and SHA-256 digests")
    except FileNotFoundError:
        raise ModelArtifactError(f"{directory}: no {MANIFEST_FILE}; refusing to load") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelArtifactError(
            f"{directory}: unreadable {MANIFEST_FILE}: {exc}; refusing to load"
        ) from None
    return files, manifest.get("model_version")


def verify(model_dir: str | Path) -> dict[str, Any]:
    """Check the manifest and the metadata; returns the metadata with ``model_version`` (of
    every signed file), ``model_digest`` and ``signed_files``. Deserialises nothing."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelArtifactError(f"model directory {directory} does not exist")
    files, stated_version = _read_manifest(directory)
    _check_signature(directory)
    if METADATA_FILE not in files:
        raise ModelArtifactError(f"{directory}: {MANIFEST_FILE} does not cover {METADATA_FILE}")
    for name, expected in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise ModelArtifactError(f"{directory}: {name} is listed in the manifest but missing")
        if sha256_file(path) != expected:
            raise ModelArtifactError(
                f"{directory}: {name} does not match its SHA-256 in {MANIFEST_FILE}; "
                "the artifact was modified after training: refusing to load"
            )
    unsigned = sorted(
        entry.name
        for entry in directory.iterdir()
        if entry.name not in files
        and entry.name not in (MANIFEST_FILE, SIGNATURE_FILE)
        and entry.name not in UNSIGNED_OUTPUTS
    )
    if unsigned:
        raise ModelArtifactError(
            f"{directory}: {', '.join(unsigned)[:200]} not listed in {MANIFEST_FILE}: "
            "nothing unsigned is served; refusing to load"
        )
    meta = read_metadata(directory)
    model_file = model_file_of(meta)
    if model_file not in files:
        raise ModelArtifactError(f"{directory}: {MANIFEST_FILE} does not cover {model_file}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelArtifactError(f"{directory}: unsupported format {meta.get('format_version')}")
    if tuple(meta.get("features", ())) != model_schema(directory, files).features:
        raise ModelArtifactError(f"{directory}: the model's features differ from its schema's")
    if meta.get("model_sha256") != files[model_file]:
        raise ModelArtifactError(f"{directory}: metadata and manifest disagree on {model_file}")
    digest = version_of(files)
    version = digest[:VERSION_DIGITS]
    if stated_version is not None and stated_version != version:
        raise ModelArtifactError(
            f"{directory}: {MANIFEST_FILE}'s model_version {str(stated_version)[:40]!r} is not "
            f"its files' version {version}; refusing to load"
        )
    expected_version = os.environ.get(EXPECTED_VERSION_ENV, "").strip()
    if expected_version and expected_version not in (version, digest):
        raise ModelArtifactError(
            f"{directory}: model version {version} is not the expected "
            f"{expected_version[:64]} ({EXPECTED_VERSION_ENV})"
        )
    return {**meta, "model_version": version, "model_digest": digest, "signed_files": sorted(files)}


def model_schema(directory: Path, files: Mapping[str, str] | None = None) -> ApplicantSchema:
    """The schema a model directory serves: its ``schema.json`` (covered by the manifest), or
    the built-in schema for a directory written before schemas travelled with the model."""
    if files is None:
        files = json.loads((directory / MANIFEST_FILE).read_text())["files"]
    if SCHEMA_FILE not in files:
        return BUILTIN
    try:
        return read_schema(directory / SCHEMA_FILE)
    except SchemaError as exc:
        raise ModelArtifactError(f"{directory}: {exc}; refusing to load") from None


def _check_sklearn_version(directory: Path, meta: dict[str, Any]) -> None:
    # Only the pickled-free skops model needs it; the tables are plain arrays.
    trained_with = meta.get("library_versions", {}).get("scikit-learn")
    running = library_versions()["scikit-learn"]
    if trained_with != running:
        raise ModelArtifactError(
            f"{directory}: trained with scikit-learn {trained_with}, running {running}; "
            "a fitted model does not travel across scikit-learn versions: retrain or use the "
            "matching image"
        )


@dataclass(frozen=True)
class Artifacts:
    pipeline: Any
    metadata: dict[str, Any]
    model_dir: Path
    schema: ApplicantSchema = BUILTIN

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])


def model_file_of(meta: dict[str, Any]) -> str:
    """The library's own model file named in metadata.json (the forest's: :data:`MODEL_FILE`)."""
    estimator = meta.get("estimator")
    name = estimator.get("file") if isinstance(estimator, dict) else MODEL_FILE
    if not isinstance(name, str) or Path(name).name != name or not name:
        raise ModelArtifactError(f"{METADATA_FILE}: estimator.file is not a file name")
    return name


def family_of(meta: dict[str, Any]) -> str:
    estimator = meta.get("estimator")
    family = estimator.get("family", "rf") if isinstance(estimator, dict) else "rf"
    return str(family)


def load_skops(model_path: Path, also_trusted: tuple[str, ...] = ()) -> Any:
    """A skops file, with only scikit-learn's types, :data:`TRUSTED_TYPES` and
    ``also_trusted`` (a family's own) trusted."""
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(file=model_path))
        unexpected = untrusted - set(TRUSTED_TYPES) - set(also_trusted)
        if unexpected:
            raise ModelArtifactError(
                f"{model_path}: holds types that are not trusted: {', '.join(sorted(unexpected))}"
            )
        return sio.load(model_path, trusted=sorted(untrusted))
    except ModelArtifactError:
        raise
    except Exception as exc:
        raise ModelArtifactError(f"{model_path}: not a loadable skops model: {exc}") from exc


def load(model_dir: str | Path) -> Artifacts:
    """Verify, then load the model directory safely (skops with explicitly trusted types
    only, or the boosting library's own format)."""
    from . import families

    directory = Path(model_dir)
    meta = verify(directory)
    family = family_of(meta)
    model_path = directory / model_file_of(meta)
    schema = model_schema(directory)
    if family == "rf":
        _check_sklearn_version(directory, meta)
        pipeline = load_skops(model_path)
        return Artifacts(pipeline=pipeline, metadata=meta, model_dir=directory, schema=schema)
    try:
        module = families.module(family)
    except ValueError as exc:
        raise ModelArtifactError(f"{directory}: {exc}") from None
    if module.LIBRARY == "scikit-learn":
        _check_sklearn_version(directory, meta)
    try:
        estimator = module.load(model_path)
    except ModelArtifactError:
        raise
    except Exception as exc:
        raise ModelArtifactError(f"{model_path}: not a loadable {family} model: {exc}") from exc
    return Artifacts(pipeline=estimator, metadata=meta, model_dir=directory, schema=schema)
