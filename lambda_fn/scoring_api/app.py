"""The scoring API: a Powertools Lambda behind an API Gateway REST API.

Routes
    ``POST /score``   score one applicant or many, with exact SHAP explanations
    ``GET /schema``   the data schema of the model behind the API (features, ids, texts)
    ``GET /health``   is the model endpoint there and serving (no scoring)
    ``GET /swagger``  OpenAPI document (``?format=json``) and Swagger UI

The API validates with the schema of the model it fronts: the file named by
``CREDIT_EXPLAINER_SCHEMA`` (shipped with the function), read at cold start; the
request model and the OpenAPI document are built from it. The request body is
normalised by :mod:`credit_schema` *before* Powertools validates it (its
``json_body`` decodes once, so the original blog's double-encoded body would
reach the route as a string): every shape the model accepts becomes the
canonical ``{"instances": [...]}`` of that schema's applicants, validated with
every problem listed (applicant index, field, message). Errors share one
JSON shape, :class:`credit_schema.ErrorBody`; logs carry the request id, counts,
latencies and error kinds, never applicant values.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from credit_schema import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_LEGACY_JSON,
    ApplicantBase,
    ApplicantValidationError,
    ErrorBody,
    ErrorDetail,
    GatewayErrorBody,
    HealthResponse,
    LegacyResponse,
    MalformedPayloadError,
    PayloadTooLargeError,
    RouteNotFoundError,
    ScoreRequest,
    ScoreResponse,
    ServiceError,
    UnsupportedMediaTypeError,
    check_body_size,
    check_content_type,
    check_count,
    decode_json,
    legacy_dict,
    negotiate,
    score_request_model,
    to_records,
    validate_records,
)
from credit_schema.edge import decision_id, security_headers
from credit_schema.records import record_lines
from credit_schema.responses import Space

from .config import Settings
from .endpoint import ModelEndpoint, Scored
from .records import RecordUnavailableError, make_sink

SERVICE = "scoring-api"
#: What ``POST /score`` answers, the default first.
ANSWER_TYPES = (CONTENT_TYPE_JSON, CONTENT_TYPE_LEGACY_JSON)
#: What ``POST /score`` reads (no Content-Type: JSON, as the original blog sends it).
REQUEST_TYPES = (CONTENT_TYPE_JSON,)

settings = Settings.from_env()
#: The schema of the model behind the API: every check, the request model and the OpenAPI.
schema = settings.schema()
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
metrics = Metrics(service=SERVICE, namespace="CreditExplainer")
endpoint = ModelEndpoint(settings, schema=schema)
#: Where decision records go (None: nowhere; template.yaml always names a stream).
records = make_sink(settings)
#: The schema document ``GET /schema`` answers, serialised once.
SCHEMA_DOCUMENT = json.dumps(schema.document())

if TYPE_CHECKING:
    ScoreBody = ScoreRequest
else:  # the route's body model (and its OpenAPI schema) are the served schema's applicants
    ScoreBody = score_request_model(schema)


def normalise_body(text: str) -> dict[str, Any]:
    """Any accepted payload shape -> the canonical ``{"instances": [Applicant, ...]}``.

    Installed as Powertools' JSON deserializer, so it runs before route validation.
    Raises :class:`credit_schema.PayloadError` (400/413/422) with every problem listed.
    """
    check_body_size(len(text.encode("utf-8")), settings.max_body_bytes)
    records = to_records(decode_json(text), schema)
    check_count(len(records), settings.max_applicants)
    # Validated here by the shared schema, so the API reports exactly what the model server
    # and the client report; Powertools then accepts the Applicant objects as they are.
    return {"instances": validate_records(records, schema)}


app = APIGatewayRestResolver(
    enable_validation=True,
    json_body_deserializer=normalise_body,
    debug=False,  # never: debug mode returns stack traces and prints events
)
if settings.enable_swagger:
    # The OpenAPI document (GET /swagger?format=json) declares API Gateway's x-api-key, so that
    # generated clients and schema-driven fuzzers send it.
    app.enable_swagger(
        path="/swagger",
        title="credit-explainer scoring API",
        version="1",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
        security=[{"apiKey": []}],
    )


def _request_id() -> str:
    return str(app.context["request_id"])  # set once per request by _handle


def _error_response(exc: ServiceError) -> Response[str]:
    """The one error body for ``exc``, with ``Retry-After`` when the error has one."""
    headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    body = json.dumps(exc.to_dict(_request_id()))
    return Response(exc.status_code, content_type=CONTENT_TYPE_JSON, body=body, headers=headers)


class UnhealthyError(ServiceError):
    status_code = 503
    retry_after = 5

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]  # the endpoint's state names the error


def _count_error(kind: str, status: int) -> None:
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    if not is_metrics_disabled():  # single_metric does not check it itself
        # One EMF record per error, with the kind as a dimension: errors by kind.
        with single_metric(
            name="ErrorsByKind",
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="ErrorKind", value=kind)
    started = app.context.get("started")
    latency = None if started is None else round((time.perf_counter() - started) * 1000.0, 3)
    logger.warning(
        "request failed", extra={"error_kind": kind, "status": status, "latency_ms": latency}
    )


# -- error handlers: one per error class, one body shape --------------------------------------


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[str]:
    # PayloadError (4xx, the request) and UpstreamError (5xx and 429, the endpoint) alike.
    _count_error(exc.code, exc.status_code)
    return _error_response(exc)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[str]:
    return _service_error(UnsupportedMediaTypeError(f"send the applicants as {CONTENT_TYPE_JSON}"))


@app.exception_handler(RequestValidationError)
def _request_validation_error(exc: RequestValidationError) -> Response[str]:
    details: list[ErrorDetail] = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if loc == ("body",) and err.get("type") == "missing":
            return _service_error(MalformedPayloadError("the request body is empty"))
        if loc[:1] == ("body",) and err.get("type") == "json_invalid":
            return _service_error(MalformedPayloadError("request body is not valid JSON"))
        applicant = next((p for p in loc if isinstance(p, int)), None)
        names = [str(p) for p in loc[1:] if isinstance(p, str) and p != "instances"]
        details.append(
            ErrorDetail(
                applicant=applicant,
                field=names[-1] if names else None,
                message=str(err.get("msg", "invalid")),
                type=err.get("type"),
            )
        )
    return _service_error(
        ApplicantValidationError(f"{len(details)} problem(s) in the request", details)
    )


@app.exception_handler([UnicodeDecodeError, binascii.Error])
def _undecodable_body(exc: ValueError) -> Response[str]:
    return _service_error(MalformedPayloadError("request body is not valid base64 UTF-8 text"))


@app.not_found
def _not_found(exc: NotFoundError) -> Response[str]:
    return _error_response(RouteNotFoundError("no such route"))


@app.exception_handler(Exception)
def _internal_error(exc: Exception) -> Response[str]:
    # The stack trace goes to the logs (it holds no applicant values: those live in
    # validated models, never in exception messages); the caller gets the request id.
    logger.exception("unhandled error", extra={"error_kind": type(exc).__name__})
    _count_error("internal_error", 500)
    return _error_response(
        ServiceError("the scoring API failed; quote the request id when reporting it")
    )


# -- routes -----------------------------------------------------------------------------------

_ERRORS = {
    400: "Malformed JSON or not one of the accepted shapes.",
    406: "Accept names neither application/json nor the legacy shape.",
    413: "Body or batch over the configured limits.",
    415: "Content-Type is not JSON.",
    422: "Applicants failing the schema; every problem listed with applicant index and field.",
    429: "SageMaker throttled the request; see Retry-After.",
    502: "The model failed or answered an inconsistent explanation.",
    503: (
        "The model endpoint is not ready or unreachable, or the decision record could not be "
        "kept (record_unavailable: nothing is answered unrecorded); see Retry-After."
    ),
    504: "The model did not answer in time.",
}


#: What API Gateway itself answers, before the function runs (its own ``{"message"}`` body).
_GATEWAY_RESPONSES: dict[int, Any] = {
    403: {
        "description": 'Missing or wrong x-api-key (API Gateway: {"message": "Forbidden"}).',
        "content": {CONTENT_TYPE_JSON: {"model": GatewayErrorBody}},
    },
}


def _error_responses(*codes: int) -> dict[int, Any]:
    return {
        **_GATEWAY_RESPONSES,
        **{
            code: {
                "description": _ERRORS[code],
                "content": {CONTENT_TYPE_JSON: {"model": ErrorBody}},
            }
            for code in codes
        },
    }


def _wants_legacy(fmt: str) -> bool:
    if fmt == "legacy":
        return True
    accept = app.current_event.headers.get("accept")
    return negotiate(accept, ANSWER_TYPES) == CONTENT_TYPE_LEGACY_JSON


@tracer.capture_method(capture_response=False)
def _explain(
    applicants: list[ApplicantBase], inference_id: str | None = None, space: str | None = None
) -> Scored:
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000.0
    deadline = time.monotonic() + settings.time_budget(remaining)
    return endpoint.explain(applicants, deadline, inference_id, space)


@app.post(
    "/score",
    summary="Score applicants with exact SHAP explanations",
    description=(
        "Accepts one applicant object, a list of records or of value lists in model order, "
        'pandas column/index/split JSON, `{"instances": [...]}`, or any of these as a JSON '
        f"string holding that JSON (double-encoded). Answers the probability of "
        f"{schema.target_label}, the base value, one contribution per feature ranked by "
        "absolute SHAP value and the applicant's id columns, if sent. `?format=legacy` or "
        f"`Accept: {CONTENT_TYPE_LEGACY_JSON}` answers the original blog's shape. "
        "`?space=log_odds` or `?space=probability` asks for explanations in that space instead "
        "of the model's default (a boosted model explains in both; the random forest in "
        "probability only: it answers `?space=log_odds` with a 400 `bad_request`)."
    ),
    responses={
        200: {
            "description": "One result per applicant, in request order.",
            "content": {
                CONTENT_TYPE_JSON: {"model": ScoreResponse},
                CONTENT_TYPE_LEGACY_JSON: {"model": LegacyResponse},
            },
        },
        **_error_responses(400, 406, 413, 415, 422, 429, 502, 503, 504),
    },
    tags=["scoring"],
)
def score(
    request: Annotated[ScoreBody, Body()],
    format: Annotated[  # the query parameter's public name
        Literal["json", "legacy"], Query(description="Response shape.")
    ] = "json",
    space: Annotated[
        Space | None,
        Query(description="Where explanations add up (default: the model's)."),
    ] = None,
) -> Response[str]:
    started = time.perf_counter()
    request_id = _request_id()
    legacy = _wants_legacy(format)
    applicants = request.instances
    scored = _explain(applicants, request_id, space)  # joins the endpoint's capture to this id
    bands = settings.decision_bands
    results = [
        {"index": i, **e, "decision": bands.decide(e["probability"]) if bands else None}
        for i, e in enumerate(scored.explanations)
    ]
    if records is not None:  # durable before anything is answered
        _record(request_id, scored, applicants, results)
    if legacy:
        rows = []
        for e in scored.explanations:
            by_feature = {c["feature"]: c["shap_value"] for c in e["contributions"]}
            rows.append([by_feature[name] for name in schema.features])
        body: dict[str, Any] = legacy_dict(
            [e["probability"] for e in scored.explanations],
            scored.explanations[0]["base_value"],
            rows,
            schema.features,
        )
        content_type = CONTENT_TYPE_LEGACY_JSON
    else:
        body = {
            "request_id": request_id,
            "model_version": scored.model_version,
            "reason_codes_version": scored.reason_codes_version,
            "results": results,
        }
        content_type = CONTENT_TYPE_JSON
    elapsed = (time.perf_counter() - started) * 1000.0
    metrics.add_metric(name="ApplicantsScored", unit=MetricUnit.Count, value=len(applicants))
    metrics.add_metric(name="ScoreLatency", unit=MetricUnit.Milliseconds, value=elapsed)
    metrics.add_metric(
        name="ModelLatency", unit=MetricUnit.Milliseconds, value=scored.model_latency_ms
    )
    logger.info(
        "scored",
        extra={
            "applicants": len(applicants),
            "model_version": scored.model_version,
            "latency_ms": round(elapsed, 3),
            "model_latency_ms": round(scored.model_latency_ms, 3),
            "legacy": legacy,
        },
    )
    return Response(
        status_code=200,
        content_type=content_type,
        body=json.dumps(body),
        headers={"X-Model-Version": scored.model_version},
    )


def _record(
    request_id: str, scored: Scored, applicants: list[ApplicantBase], results: list[dict[str, Any]]
) -> None:
    """Keep the decision record (:mod:`credit_schema.records`), or raise the 503 that refuses
    the answer (:class:`scoring_api.records.RecordUnavailableError`)."""
    assert records is not None
    moment = datetime.now(UTC)
    lines = record_lines(
        request_id=request_id,
        moment=moment,
        model_version=scored.model_version,
        reason_codes_version=scored.reason_codes_version,
        api_key_id=app.current_event.request_context.identity.api_key_id,
        applicants=[a.to_features() for a in applicants],
        results=results,
        max_bytes=records.max_bytes,
    )
    records.put(lines, moment)


@app.get(
    "/schema",
    summary="The data schema of the model behind the API",
    description=(
        "The schema the API validates with (the model's `schema.json`): the features in model "
        "order with their kinds, categories, bounds and texts, the id columns carried into "
        "every answer, the target and its risk label. Clients validate against it."
    ),
    responses={
        200: {
            "description": "The schema document (format credit-explainer/schema/1).",
            "content": {CONTENT_TYPE_JSON: {"schema": {"type": "object"}}},
        },
    },
    tags=["scoring"],
)
def get_schema() -> Response[str]:
    return Response(
        status_code=200,
        content_type=CONTENT_TYPE_JSON,
        body=SCHEMA_DOCUMENT,
        headers={"Cache-Control": "max-age=300"},
    )


@app.get(
    "/health",
    summary="Is the model endpoint there and serving (without scoring)",
    responses={
        200: {
            "description": "The endpoint is serving.",
            "content": {CONTENT_TYPE_JSON: {"model": HealthResponse}},
        },
        **_error_responses(503),
    },
    tags=["operations"],
)
def health() -> Response[str]:
    problem = None if records is None else records.problem()
    if problem is not None:
        _count_error(RecordUnavailableError.code, 503)
        return _error_response(UnhealthyError(RecordUnavailableError.code, problem))
    result = endpoint.health()
    if not result.serving:
        _count_error("unhealthy", 503)
        return _error_response(UnhealthyError(result.status, result.detail))
    return Response(
        status_code=200,
        content_type=CONTENT_TYPE_JSON,
        body=HealthResponse(
            status="ok",
            endpoint=settings.endpoint_name,
            detail=result.detail,
            check=settings.health_check,
        ).model_dump_json(),
    )


def body_size(event: dict[str, Any], limit: int) -> int:
    """The request body's size in bytes, read off the event without decoding or copying it.

    Exact for base64 bodies; for text bodies longer than ``limit`` characters, their
    length in characters (at least one byte each: already over the limit).
    """
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4 - body[-2:].count("=")
    if len(body) > limit:
        return len(body)
    return len(body.encode("utf-8"))


def _checked_content_types(event: dict[str, Any]) -> dict[str, Any]:
    """The event with every ``Content-Type`` checked (415) and written as its bare media type.

    API Gateway keeps the header's name and value as sent; Powertools compares the value with
    ``application/json`` case-sensitively, and media types are case-insensitive.
    """
    headers = {
        name: check_content_type(v, REQUEST_TYPES)
        if name.lower() == "content-type" and v is not None
        else v
        for name, v in (event.get("headers") or {}).items()
    }
    multi = {
        name: [check_content_type(v, REQUEST_TYPES) for v in vs or ()]
        if name.lower() == "content-type"
        else vs
        for name, vs in (event.get("multiValueHeaders") or {}).items()
    }
    return {**event, "headers": headers, "multiValueHeaders": multi}


def _refused(event: dict[str, Any], context: LambdaContext, exc: ServiceError) -> dict[str, Any]:
    """The 413/415 proxy response, built without Powertools decoding the body."""
    request_id = app.context["request_id"]
    _count_error(exc.code, exc.status_code)
    app.clear_context()
    return {
        "statusCode": exc.status_code,
        "headers": {"Content-Type": CONTENT_TYPE_JSON},
        "body": json.dumps(exc.to_dict(request_id)),
        "isBase64Encoded": False,
    }


def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    given = (event.get("requestContext") or {}).get("requestId") or context.aws_request_id
    # failures log their latency too; the id is time-ordered, so it names its record's hour
    request_id = decision_id(given)
    app.append_context(started=time.perf_counter(), request_id=request_id)
    logger.append_keys(request_id=request_id)  # the id callers quote, beside API Gateway's
    try:  # before anything decodes the body: a 60 MB body costs no memory
        if event.get("httpMethod") == "POST":  # Powertools would parse forms, echoing them
            event = _checked_content_types(event)
        check_body_size(body_size(event, settings.max_body_bytes), settings.max_body_bytes)
    except (PayloadTooLargeError, UnsupportedMediaTypeError) as exc:
        return _refused(event, context, exc)
    return app.resolve(event, context)


def _without_metrics(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return _handle(event, context)
    finally:
        # With POWERTOOLS_METRICS_DISABLED, Powertools neither prints nor clears the metric set,
        # which then grows across invocations and is printed anyway at 100 values.
        metrics.clear_metrics()


_measured = _without_metrics if is_metrics_disabled() else metrics.log_metrics(_handle)


def _secured(result: dict[str, Any]) -> dict[str, Any]:
    """The proxy result with the security headers (an HTML page: a policy it satisfies)."""
    multi = result.get("multiValueHeaders")
    single = result.get("headers") or {}
    given = {**{k: v[-1] for k, v in (multi or {}).items() if v}, **single}
    content_type = next((str(v) for k, v in given.items() if k.lower() == "content-type"), None)
    body = str(result.get("body") or "")
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    extra = security_headers(content_type, body)
    if multi is not None:
        multi.update({name: [value] for name, value in extra.items()})
    else:
        result["headers"] = {**single, **extra}
    return result


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False
)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _secured(_measured(event, context))
