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

Errors are :class:`credit_schema.PayloadError` subclasses carrying their HTTP
status (400, 406, 413, 415, 422); :class:`ExplanationError` (500) is raised if an
explanation ever fails its additivity check, so it is never sent.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from credit_schema import (
    CONTENT_TYPE_CSV,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_LEGACY_JSON,
    FEATURES,
    NotAcceptableError,
    PayloadError,
    UnsupportedMediaTypeError,
    check_count,
    csv_records,
    csv_text,
    decode_json,
    to_records,
    validate_rows,
)
from credit_schema.media import media_type  # the one parse of a Content-Type header

from . import artifacts, fast_input, fast_io
from .explain import CheckedExplain, Explainer, build_explainer, checked

CONTENT_TYPE_JSONLINES: Final = "application/jsonlines"
_JSONLINES_ALIASES: Final = frozenset(
    {CONTENT_TYPE_JSONLINES, "application/x-jsonlines", "application/jsonl"}
)
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
#: |base + sum(SHAP) - probability| above this means a broken explanation.
ADDITIVITY_TOLERANCE: Final = 1e-9


class ExplanationError(RuntimeError):
    """An explanation failed its consistency check; it must not be returned."""

    status_code = 500
    code = "inconsistent_explanation"


@dataclass(slots=True)
class LoadedModel:
    """What ``model_fn`` returns: the fitted model, its explainer and identity."""

    pipeline: Any
    explainer: Explainer
    metadata: dict[str, Any]
    model_dir: Path
    max_applicants: int = DEFAULT_MODEL_MAX_APPLICANTS
    #: The metadata's ``model_version``, read once (every response carries it).
    version: str = ""
    #: The explainer's :func:`~credit_model.explain.checked` explanation, looked up once.
    explain_checked: CheckedExplain = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.version:
            self.version = str(self.metadata["model_version"])
        self.explain_checked = checked(self.explainer)


@dataclass(slots=True)
class Prediction:
    """What ``predict_fn`` returns: inputs, probabilities and SHAP values, row-aligned."""

    inputs: np.ndarray
    probability: np.ndarray
    base_value: float
    shap_values: np.ndarray
    model_version: str
    #: Each row's feature indices ranked by ``|shap|``, largest first, ties in feature
    #: order, when the explainer has them (``output_fn`` ranks them otherwise).
    order: np.ndarray | None = None


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Verify and load the model directory; build the explainer (never unpickled)."""
    loaded = artifacts.load(model_dir)
    limit = int(os.environ.get(MAX_APPLICANTS_ENV, DEFAULT_MODEL_MAX_APPLICANTS))
    fast_io.warm_up()  # compile (or load) the response encoder now, not on the first request
    return LoadedModel(
        pipeline=loaded.pipeline,
        explainer=build_explainer(loaded.pipeline),
        metadata=loaded.metadata,
        model_dir=loaded.model_dir,
        max_applicants=limit,
    )


def _jsonlines_records(text: str | bytes) -> list[Any]:
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            from credit_schema import MalformedPayloadError

            raise MalformedPayloadError("request body is not valid UTF-8") from exc
    records: list[Any] = []
    for line in text.splitlines():
        if line.strip():
            obj = decode_json(line)
            if fast_input.is_plain_record(obj):  # to_records(obj) would be [obj]
                records.append(obj)
            else:
                records.extend(to_records(obj))
    if not records:
        from credit_schema import MalformedPayloadError

        raise MalformedPayloadError("the request holds no applicants")
    return records


def check_content_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header input_fn decodes (none: JSON), else 415."""
    if content_type == CONTENT_TYPE_JSON:  # nearly every request: nothing to parse
        return CONTENT_TYPE_JSON
    kind = media_type(content_type) or CONTENT_TYPE_JSON
    if kind in _JSONLINES_ALIASES:
        return CONTENT_TYPE_JSONLINES
    if kind not in INPUT_CONTENT_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type {kind[:100]!r} is not supported; "
            f"use one of {', '.join(INPUT_CONTENT_TYPES)}"
        )
    return kind


def input_fn(
    input_data: str | bytes,
    content_type: str | None,
    *,
    max_applicants: int = DEFAULT_MODEL_MAX_APPLICANTS,
) -> np.ndarray:
    """Decode and validate a request body -> raw rows ``[n, 10]`` (NaN where missing)."""
    # (JSON, nearly every request, is checked here: a call less for a lone request.)
    kind = (
        CONTENT_TYPE_JSON if content_type == CONTENT_TYPE_JSON else check_content_type(content_type)
    )
    if kind == CONTENT_TYPE_JSON:
        obj = decode_json(input_data)
        # Records that pass as is, checked in bulk (fast_input); anything else, the general path.
        rows = fast_input.records_array(obj, max_records=max_applicants)
        if rows is not None:
            return rows
        records = to_records(obj)
    elif kind == CONTENT_TYPE_CSV:
        records = csv_records(csv_text(input_data))
    else:
        records = _jsonlines_records(input_data)
    check_count(len(records), max_applicants)
    rows = fast_input.validated_array(records)
    if rows is not None:
        return rows
    # validate_rows: validate_records' acceptance and errors, without an Applicant per row.
    return np.array(validate_rows(records), dtype=np.float64).reshape(-1, len(FEATURES))


def predict_fn(input_data: np.ndarray, model: LoadedModel) -> Prediction:
    """Probability of SeriousDlqin2yrs and exact SHAP values for every row."""
    X = fast_io.as_float_array(input_data)
    proba, shap_values, gap = model.explain_checked(X)
    if not gap <= ADDITIVITY_TOLERANCE:
        raise ExplanationError(f"SHAP values do not add up to the probability (max gap {gap:.3g})")
    # Positional: keyword arguments cost a lone request, on cold CPU caches, a microsecond.
    return Prediction(X, proba, float(model.explainer.base_value), shap_values, model.version)


def explanations(prediction: Prediction) -> list[dict[str, Any]]:
    """One :class:`credit_schema.Explanation` dict per applicant, request order.

    The same dicts as :func:`credit_schema.explanation_dict`, built for the whole
    batch at once (:mod:`credit_model.fast_io`).
    """
    return fast_io.explanations(
        prediction.probability,
        prediction.base_value,
        fast_io.input_values(prediction.inputs),
        prediction.shap_values,
    )


def negotiate(accept: str | None) -> str:
    """Pick the response content type from an Accept header (``*/*`` and empty -> JSON)."""
    if accept == CONTENT_TYPE_JSON:  # nearly every request: nothing to parse
        return CONTENT_TYPE_JSON
    if not accept or not accept.strip():
        return CONTENT_TYPE_JSON
    for part in accept.split(","):
        kind = media_type(part)
        if kind in ("*/*", "application/*", CONTENT_TYPE_JSON):
            return CONTENT_TYPE_JSON
        if kind in _JSONLINES_ALIASES:
            return CONTENT_TYPE_JSONLINES
        if kind in (CONTENT_TYPE_LEGACY_JSON, CONTENT_TYPE_CSV):
            return kind
        if kind == "text/*":
            return CONTENT_TYPE_CSV
    raise NotAcceptableError(
        f"cannot answer {accept.strip()[:100]!r}; available: {', '.join(OUTPUT_CONTENT_TYPES)}"
    )


def _csv_header_absent(accept: str | None) -> bool:
    """RFC 4180's ``text/csv; header=absent``: rows only (Batch Transform joins mini-batches)."""
    for part in (accept or "").split(","):
        kind, *params = (p.strip().lower() for p in part.split(";"))
        if kind in (CONTENT_TYPE_CSV, "text/*"):
            return "header=absent" in params
    return False


def _csv_header() -> bytes:
    out = io.StringIO()
    header = ["probability", "base_value", *(f"shap_{name}" for name in FEATURES)]
    csv.writer(out, lineterminator="\n").writerow(header)
    return out.getvalue().encode()


_CSV_HEADER: Final = _csv_header()


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Encode predictions -> ``(body, content_type)``.

    JSON and JSON Lines go through :mod:`credit_model.fast_io` (numbers formatted
    by pydantic-core, assembled by a compiled loop); ``prediction.order``, when
    ``predict_fn`` provides it, is the ranking of each row's contributions.
    """
    kind = CONTENT_TYPE_JSON if accept == CONTENT_TYPE_JSON else negotiate(accept)
    if kind == CONTENT_TYPE_JSON or kind == CONTENT_TYPE_JSONLINES:
        body = fast_io.encode_explanations(
            "json" if kind == CONTENT_TYPE_JSON else "jsonl",
            prediction.model_version,
            prediction.probability,
            prediction.base_value,
            prediction.inputs,
            prediction.shap_values,
            prediction.order,
        )
        return body, kind
    if kind == CONTENT_TYPE_LEGACY_JSON:
        legacy = fast_io.legacy_json(
            prediction.probability, prediction.base_value, prediction.shap_values
        )
        return legacy, CONTENT_TYPE_LEGACY_JSON
    table = fast_io.csv_rows(prediction.probability, prediction.base_value, prediction.shap_values)
    if _csv_header_absent(accept):
        return table, CONTENT_TYPE_CSV
    return _CSV_HEADER + table, CONTENT_TYPE_CSV


def transform(
    model: LoadedModel, body: str | bytes, content_type: str | None, accept: str | None
) -> tuple[bytes, str]:
    """All three stages for one request; negotiates Accept before doing any work."""
    negotiate(accept)
    rows = input_fn(body, content_type, max_applicants=model.max_applicants)
    return output_fn(predict_fn(rows, model), accept)


__all__ = [
    "CONTENT_TYPE_JSONLINES",
    "ExplanationError",
    "LoadedModel",
    "PayloadError",
    "Prediction",
    "check_content_type",
    "input_fn",
    "model_fn",
    "negotiate",
    "output_fn",
    "predict_fn",
    "transform",
]
