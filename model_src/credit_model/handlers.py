"""SageMaker inference handlers: decode, predict, encode as separate stages.

The scikit-learn container contract (``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn``), used unchanged by SageMaker's framework image, by our own image
and by the local model server.

* ``input_fn`` accepts ``application/json`` in every shape ``credit_schema``
  accepts (one object, records, pandas column/index/split JSON,
  ``{"instances": [...]}``, and any of these double-encoded), ``text/csv``
  (header optional, model column order) and ``application/jsonlines`` (batch
  transform: one applicant or one batch per line).
* ``output_fn`` answers ``application/json`` (:class:`credit_schema.ModelResponse`),
  the original blog's shape for :data:`credit_schema.CONTENT_TYPE_LEGACY_JSON`,
  ``application/jsonlines`` (one explanation per line) and ``text/csv``.

Errors are :class:`credit_schema.ServiceError` subclasses carrying their HTTP
status (400, 406, 413, 415, 422); :class:`ExplanationError` (500) is raised if an
explanation ever fails its additivity check, so it is never sent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
from credit_schema import (
    ADDITIVITY_TOLERANCE,
    BUILTIN,
    CONTENT_TYPE_CSV,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSONLINES,
    CONTENT_TYPE_LEGACY_JSON,
    ApplicantSchema,
    PayloadError,
    ServiceError,
    body_records,
    check_content_type,
    check_count,
    explanation_dict,
    legacy_dict,
    negotiate,
    validate_records,
)
from credit_schema.decisions import REFERENCE_ATTRIBUTE, SPACE_ATTRIBUTE, DecisionBands
from credit_schema.points import Scorecard
from credit_schema.reasons import (
    DEFAULT_REGISTRY,
    Registry,
    min_contribution_in,
    registry_from_env,
    schema_registry,
)
from pydantic_core import to_json

from . import artifacts
from .bulk import plain_rows
from .encode import explanation_text
from .explain import Explainer, build_explainer, explainer_kind
from .explainer import FastTreeExplainer, tables_space
from .forest import TABLES_FILE, load_tables
from .interventional import INTERVENTIONAL_FILE, InterventionalExplainer, load_paths
from .settings import SettingError, env_int

FloatArray = npt.NDArray[np.float64]

INPUT_CONTENT_TYPES: Final = (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV, CONTENT_TYPE_JSONLINES)
OUTPUT_CONTENT_TYPES: Final = (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_LEGACY_JSON,
    CONTENT_TYPE_JSONLINES,
    CONTENT_TYPE_CSV,
)
#: Applicants in one request to the model (batch transform sends large mini-batches;
#: the scoring API enforces its own, lower limit).
MAX_APPLICANTS_ENV: Final = "CREDIT_EXPLAINER_MAX_APPLICANTS"
DEFAULT_MODEL_MAX_APPLICANTS: Final = 50_000
#: Batches from this size on are checked in bulk first (:mod:`credit_model.bulk`).
BULK_MIN_RECORDS: Final = 50


class ExplanationError(ServiceError):
    """An explanation failed its consistency check; it must not be returned."""

    status_code = 500
    code = "inconsistent_explanation"


@dataclass
class LoadedModel:
    """What ``model_fn`` returns: the explainer (which also predicts) and the model's identity."""

    explainer: Explainer
    metadata: dict[str, Any]
    model_dir: Path
    max_applicants: int = DEFAULT_MODEL_MAX_APPLICANTS
    registry: Registry = DEFAULT_REGISTRY
    #: The schema the model was trained with (its ``schema.json``): what every request must fit.
    schema: ApplicantSchema = BUILTIN
    #: Every space this model can explain in (the default one is ``explainer``'s).
    explainers: Mapping[str, Explainer] = field(default_factory=dict)
    #: ``train --points``: every answer carries its scorecard points.
    scorecard: Scorecard | None = None
    #: The signed tables' explainers, with the cutoff pool (None: served from the skops file).
    served: ServedExplainers | None = None
    _cutoff: dict[float, Explainer] = field(default_factory=dict, repr=False)

    def explainer_in(self, space: str | None) -> Explainer:
        """The explainer for a request's ``space`` (None: the model's default), else 400."""
        if space is None or space == self.explainer.space:
            return self.explainer
        if space not in self.explainers:
            raise PayloadError(
                f"custom attribute {SPACE_ATTRIBUTE}: this model explains in "
                f"{', '.join(sorted(self.explainers) or [self.explainer.space])}, not {space!r}"
            )
        return self.explainers[space]

    def against_cutoff(self, cutoff: float) -> Explainer:
        """The probability-space explainer against the training applicants scored just inside
        ``cutoff`` (built once per cutoff), else 400."""
        if cutoff not in self._cutoff:
            interventional = None if self.served is None else self.served.interventional()
            if interventional is None:
                raise PayloadError(
                    f"custom attribute {REFERENCE_ATTRIBUTE}: explaining against the cutoff "
                    "needs a model directory with its cutoff pool"
                )
            try:
                self._cutoff[cutoff] = interventional.against_cutoff(cutoff)
            except ValueError as exc:
                raise PayloadError(f"custom attribute {REFERENCE_ATTRIBUTE}: {exc}") from None
        return self._cutoff[cutoff]

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])


@dataclass
class Batch:
    """What ``input_fn`` returns: the rows for the model and each applicant's ids, if any."""

    rows: FloatArray
    ids: list[dict[str, str]] | None = None


@dataclass
class Prediction:
    """What ``predict_fn`` returns: inputs, probabilities and SHAP values, row-aligned."""

    inputs: FloatArray
    probability: FloatArray
    base_value: float
    shap_values: FloatArray
    model_version: str
    registry: Registry = DEFAULT_REGISTRY
    #: The caller's decision bands (InvokeEndpoint's CustomAttributes): a decision per answer.
    bands: DecisionBands | None = None
    schema: ApplicantSchema = BUILTIN
    ids: list[dict[str, str]] | None = None
    #: Where base value + SHAP values add up (credit_schema.additivity_target).
    space: str = "probability"
    #: Each applicant's scorecard points (models trained with --points).
    points: list[dict[str, Any]] | None = None
    #: ``cutoff``: explained against the applicants just inside the approval cutoff.
    reference: str = "training"


#: SageMaker calls ``input_fn`` without the model: it reads the schema of the model this
#: process loaded last (one model per worker process).
_loaded_schema: ApplicantSchema = BUILTIN


class _Unloadable(Exception):
    """A signed file that does not build an explainer that answers: its message names it."""


class ServedExplainers(Mapping[str, Explainer]):
    """The explainers of a model directory's signed tables (numpy alone), by space: the
    TreeSHAP tables' and, for a boosted model, the interventional one in probability; and
    the interventional one with the cutoff pool (:meth:`interventional`; a forest's
    explains only against a cutoff: its own probability space is path-dependent).

    Every file is read at load, and what every answer needs (the model's own space, and
    log-odds for scorecard points) built and checked to answer; the others are built and
    checked when first asked for, so that a fresh server loads only the kernels its first
    answer needs. A file that does not read, build or answer is a
    :class:`ModelArtifactError` at load and an :class:`ExplanationError` (500) when first
    asked for: never an answer from it.
    """

    def __init__(self, directory: Path, metadata: dict[str, Any]) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._built: dict[str, Explainer] = {}
        self._failed: dict[str, str] = {}  # file -> why it did not build: never built again
        self._builders: dict[str, Callable[[], Explainer]] = {}
        self._spaces: dict[str, str] = {}  # space -> the file its explainer is built from
        try:
            with _naming(TABLES_FILE):
                compiled, fill_values = load_tables(directory / TABLES_FILE)
            self._fill = np.ascontiguousarray(fill_values, dtype=np.float64)
            self._builders[TABLES_FILE] = lambda: FastTreeExplainer(
                compiled, fill_values=fill_values
            )
            self._spaces[tables_space(compiled)] = TABLES_FILE
            if INTERVENTIONAL_FILE in metadata["signed_files"]:
                with _naming(INTERVENTIONAL_FILE):
                    paths = load_paths(directory / INTERVENTIONAL_FILE)
                self._builders[INTERVENTIONAL_FILE] = lambda: InterventionalExplainer(
                    paths, fill_values=self._fill
                )
                self._spaces.setdefault(InterventionalExplainer.space, INTERVENTIONAL_FILE)
            own = str(metadata.get("space", "probability"))
            self.own = self._explainer(self._spaces.get(own, next(iter(self._spaces.values()))))
            if metadata.get("points") and "log_odds" in self._spaces:  # points: log-odds
                self._explainer(self._spaces["log_odds"])
        except _Unloadable as exc:
            raise artifacts.ModelArtifactError(f"{directory}/{exc}; refusing to load") from None

    def __getitem__(self, space: str) -> Explainer:
        try:
            return self._explainer(self._spaces[space])
        except _Unloadable as exc:
            raise ExplanationError(f"{exc}: this model cannot explain in {space}") from None

    def __contains__(self, space: object) -> bool:
        return space in self._spaces  # without building it

    def __iter__(self) -> Iterator[str]:
        return iter(self._spaces)

    def __len__(self) -> int:
        return len(self._spaces)

    def interventional(self) -> InterventionalExplainer | None:
        """The interventional explainer, with the cutoff pool (None: no such file)."""
        if INTERVENTIONAL_FILE not in self._builders:
            return None
        try:
            return cast(InterventionalExplainer, self._explainer(INTERVENTIONAL_FILE))
        except _Unloadable as exc:
            raise ExplanationError(f"{exc}: this model cannot explain against a cutoff") from None

    def _explainer(self, name: str) -> Explainer:
        """The explainer of file ``name``, built and checked once (by one thread); a file that
        failed fails again without being rebuilt (under the lock other first uses wait for)."""
        built = self._built.get(name)
        if built is not None:
            return built
        with self._lock:
            if name in self._built:  # another thread built it while this one waited
                return self._built[name]
            if name in self._failed:
                raise _Unloadable(self._failed[name])
            try:
                with _naming(name):
                    built = self._builders[name]()
                    proba, shap = built.explain(self._fill[None, :])
                    if not (0.0 <= float(proba[0]) <= 1.0 and np.all(np.isfinite(shap))):
                        raise ValueError("they do not answer a probability and finite SHAP")
            except _Unloadable as exc:
                self._failed[name] = str(exc)
                raise
            self._built[name] = built
            return built


@contextlib.contextmanager
def _naming(name: str) -> Iterator[None]:
    """Any failure of file ``name`` (a damaged file: one clear error), but the operator's
    settings (their own error line)."""
    try:
        yield
    except SettingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a damaged file: one clear error
        raise _Unloadable(
            f"{name}: not loadable TreeSHAP tables ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def served_explainers(directory: Path, metadata: dict[str, Any]) -> ServedExplainers | None:
    """The explainers of the signed tables (None: the model is served from its skops file)."""
    if TABLES_FILE not in metadata["signed_files"] or explainer_kind() == "shap":
        return None
    return ServedExplainers(directory, metadata)


def served_explainer(directory: Path, metadata: dict[str, Any]) -> Explainer | None:
    """The explainer of the signed tables in the model's own space (None: served from the
    skops file)."""
    served = served_explainers(directory, metadata)
    return None if served is None else served.own


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Verify and load the model directory: its signed TreeSHAP tables when it has them
    (numpy alone), else the skops model and an explainer built from it (never unpickled)."""
    directory = Path(model_dir)
    metadata = artifacts.verify(directory)
    served = served_explainers(directory, metadata)
    if served is None:
        explainer = build_explainer(artifacts.load(directory).pipeline)
    schema = artifacts.model_schema(directory)
    global _loaded_schema
    _loaded_schema = schema
    return LoadedModel(
        explainers={} if served is None else served,
        explainer=explainer if served is None else served.own,
        metadata=metadata,
        model_dir=directory,
        max_applicants=env_int(MAX_APPLICANTS_ENV, DEFAULT_MODEL_MAX_APPLICANTS),
        # a bad override file fails the start, not a request
        registry=registry_from_env(base=schema_registry(schema)),
        schema=schema,
        scorecard=Scorecard.parse(metadata["points"]) if metadata.get("points") else None,
        served=served,
    )


def input_fn(
    input_data: str | bytes,
    content_type: str | None,
    *,
    max_applicants: int = DEFAULT_MODEL_MAX_APPLICANTS,
    schema: ApplicantSchema | None = None,
) -> Batch:
    """Decode and validate a request body -> rows ``[n, features]`` (NaN where missing, a
    category as its code) and the applicants' ids."""
    schema = schema or _loaded_schema
    kind = check_content_type(content_type, INPUT_CONTENT_TYPES)
    records = body_records(input_data, kind, schema)
    check_count(len(records), max_applicants)
    if len(records) >= BULK_MIN_RECORDS:
        bulk = plain_rows(records, schema)
        if bulk is not None:
            return Batch(bulk)
    applicants = validate_records(records, schema)
    rows = [applicant.to_row() for applicant in applicants]
    ids = [applicant.ids() for applicant in applicants] if schema.id_columns else None
    X = np.array(rows, dtype=np.float64).reshape(-1, len(schema.features))  # None -> NaN
    return Batch(X, ids if ids and any(ids) else None)


def predict_fn(
    input_data: Batch | FloatArray,
    model: LoadedModel,
    space: str | None = None,
    cutoff: float | None = None,
) -> Prediction:
    """Probability of the schema's risk label and exact SHAP values for every row, in
    ``space`` (None: the model's default), against the applicants just inside ``cutoff``
    when given (probability space)."""
    batch = input_data if isinstance(input_data, Batch) else Batch(input_data)
    X = np.asarray(batch.rows, dtype=np.float64)
    if cutoff is not None and space not in (None, "probability"):
        raise PayloadError(
            f"custom attribute {REFERENCE_ATTRIBUTE}: the cutoff reference is in probability"
        )
    explainer = model.explainer_in(space) if cutoff is None else model.against_cutoff(cutoff)
    proba, shap_values, gap = explainer.explain_checked(X)
    if not gap <= ADDITIVITY_TOLERANCE:
        raise ExplanationError(f"the model produced an inconsistent explanation (gap {gap:.3g})")
    base = float(explainer.base_value)
    points = None
    if model.scorecard is not None:
        in_log_odds = model.explainer_in("log_odds")
        log_odds = shap_values if explainer is in_log_odds else in_log_odds.explain(X)[1]
        points = [
            model.scorecard.points(in_log_odds.base_value, row, model.schema.features)
            for row in log_odds.tolist()
        ]
    return Prediction(
        X,
        proba,
        base,
        shap_values,
        model.version,
        model.registry,
        schema=model.schema,
        ids=batch.ids,
        space=explainer.space,
        points=points,
        reference="training" if cutoff is None else "cutoff",
    )


def explanations(prediction: Prediction) -> list[dict[str, Any]]:
    """One :class:`credit_schema.Explanation` dict per applicant, request order, with reasons."""
    base = prediction.base_value
    schema = prediction.schema
    out = []
    for i, (probability, row, shap) in enumerate(
        zip(
            prediction.probability.tolist(),
            prediction.inputs.tolist(),
            prediction.shap_values.tolist(),
            strict=True,
        )
    ):
        values = [None if v != v else v for v in row]  # NaN: null
        wire = schema.wire_values(values) if schema.categorical else values
        explanation = explanation_dict(
            probability, base, wire, shap, schema.features, space=prediction.space
        )
        triples = zip(schema.features, values, shap, strict=True)
        explanation["reasons"] = prediction.registry.principal_reasons(
            triples, min_contribution=min_contribution_in(prediction.space, probability)
        )
        if prediction.bands is not None:
            explanation["decision"] = prediction.bands.decide(probability)
        if prediction.ids is not None:
            explanation["ids"] = prediction.ids[i]
        if prediction.points is not None:
            explanation["points"] = prediction.points[i]
        if prediction.reference != "training":
            explanation["reference"] = prediction.reference
        out.append(explanation)
    return out


def _explanations_json(prediction: Prediction, members: dict[str, str], separator: str) -> str:
    """Each applicant's explanation as JSON, opening with ``members``, joined by ``separator``:
    large batches are written column-wise (:mod:`credit_model.encode`), others dict by dict."""
    text = None
    # The column-wise writer covers plain numbers; categories' texts, ids and points go dict
    # by dict.
    plain = not prediction.schema.categorical and prediction.ids is None
    plain = plain and prediction.points is None and prediction.reference == "training"
    if plain and len(prediction.probability) >= BULK_MIN_RECORDS:
        text = explanation_text(
            prediction.probability,
            prediction.base_value,
            prediction.inputs,
            prediction.shap_values,
            prediction.registry,
            prediction.bands,
            space=prediction.space,
            prefix=to_json(members).decode()[1:-1] + "," if members else "",
            separator=separator,
            features=prediction.schema.features,
        )
    if text is None:
        text = separator.join(to_json({**members, **e}).decode() for e in explanations(prediction))
    return text


def _csv_header_absent(accept: str | None) -> bool:
    """RFC 4180's ``text/csv; header=absent``: rows only (Batch Transform joins mini-batches)."""
    for part in (accept or "").split(","):
        kind, *params = (p.strip().lower() for p in part.split(";"))
        if kind in (CONTENT_TYPE_CSV, "text/*"):
            return "header=absent" in params
    return False


def _csv(prediction: Prediction, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        names = prediction.schema.features
        writer.writerow(["probability", "base_value", *(f"shap_{name}" for name in names)])
    for probability, shap in zip(
        prediction.probability.tolist(), prediction.shap_values.tolist(), strict=True
    ):
        writer.writerow([probability, prediction.base_value, *shap])
    return out.getvalue().encode()


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Encode predictions -> ``(body, content_type)``."""
    kind = negotiate(accept, OUTPUT_CONTENT_TYPES)
    versions = {
        "model_version": prediction.model_version,
        "reason_codes_version": prediction.registry.version,
    }
    if kind == CONTENT_TYPE_JSON and len(prediction.probability) < BULK_MIN_RECORDS:
        return to_json({**versions, "predictions": explanations(prediction)}), kind
    if kind == CONTENT_TYPE_JSON:
        items = _explanations_json(prediction, {}, ",")
        return f'{to_json(versions).decode()[:-1]},"predictions":[{items}]}}'.encode(), kind
    if kind == CONTENT_TYPE_JSONLINES:
        return (_explanations_json(prediction, versions, "\n") + "\n").encode(), kind
    if kind == CONTENT_TYPE_LEGACY_JSON:
        legacy = legacy_dict(
            prediction.probability.tolist(),
            prediction.base_value,
            prediction.shap_values.tolist(),
            prediction.schema.features,
        )
        return to_json(legacy), kind
    return _csv(prediction, header=not _csv_header_absent(accept)), kind


def transform(
    model: LoadedModel,
    body: str | bytes,
    content_type: str | None,
    accept: str | None,
    *,
    bands: DecisionBands | None = None,
    space: str | None = None,
    reference: str | None = None,
) -> tuple[bytes, str]:
    """All three stages for one request; negotiates Accept before doing any work.

    With ``bands`` (the caller's, from InvokeEndpoint's CustomAttributes) every JSON and JSON
    Lines explanation carries its ``decision``, so what is captured is what the API sent.
    """
    negotiate(accept, OUTPUT_CONTENT_TYPES)
    rows = input_fn(body, content_type, max_applicants=model.max_applicants, schema=model.schema)
    cutoff = None
    if reference not in (None, "training"):
        if reference != "cutoff" or bands is None:
            raise PayloadError(
                f"custom attribute {REFERENCE_ATTRIBUTE}: 'cutoff' with decision_thresholds "
                "(the first band's bound is the approval cutoff), or 'training'"
            )
        cutoff = bands.bounds[0]
    prediction = predict_fn(rows, model, space, cutoff)
    if bands is not None:
        prediction.bands = bands
    return output_fn(prediction, accept)


__all__ = [
    "INPUT_CONTENT_TYPES",
    "OUTPUT_CONTENT_TYPES",
    "Batch",
    "ExplanationError",
    "LoadedModel",
    "PayloadError",
    "Prediction",
    "input_fn",
    "model_fn",
    "output_fn",
    "predict_fn",
    "transform",
]
