"""The SageMaker endpoint: one boundary where botocore errors become :mod:`scoring_api.errors`.

The runtime client is created once per execution environment (cold start) with
explicit timeouts and a bounded retry policy. Its URL is botocore's to resolve:
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or ``AWS_ENDPOINT_URL``) points it at the
local model server, which speaks the SageMaker Runtime API.

Every answer is checked before it is passed on: one explanation per applicant,
one contribution per feature echoing the applicant's input value, and
``base_value + sum(shap_value) == probability`` (to :data:`ADDITIVITY_TOLERANCE`).
An explanation that does not add up is refused (502): a credit decision must not
be explained with numbers that do not explain it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from credit_schema import CONTENT_TYPE_JSON, FEATURES, Applicant, ModelResponse
from pydantic import ValidationError

from .config import Settings
from .errors import (
    BadModelResponseError,
    EndpointError,
    InconsistentExplanationError,
    ModelFailedError,
    ModelTimeoutError,
    ModelUnavailableError,
    ThrottledError,
    UpstreamError,
)

#: |base_value + sum(shap) - probability| above this is refused. The model guarantees 1e-9;
#: the slack covers float summation order, not wrong explanations.
ADDITIVITY_TOLERANCE: Final = 1e-6

_THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
#: DescribeEndpoint statuses in which the endpoint answers invocations.
_SERVING: Final = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})


def client_config(settings: Settings) -> Config:
    return Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},  # type: ignore[typeddict-item]
        user_agent_extra="credit-explainer-scoring-api",
    )


@dataclass(frozen=True)
class Scored:
    """The model's validated answer for one request."""

    model_version: str
    explanations: list[dict[str, Any]]  # Explanation dicts, request order
    model_latency_ms: float


@dataclass(frozen=True)
class Health:
    status: str  # "ok" or the reason it is not
    detail: str
    serving: bool


class ModelEndpoint:
    """Invokes one SageMaker endpoint and checks what it answers."""

    def __init__(self, settings: Settings, runtime: Any | None = None) -> None:
        self.settings = settings
        self.runtime = runtime or boto3.client("sagemaker-runtime", config=client_config(settings))
        self._control: Any | None = None  # sagemaker control plane, created on first /health
        self._health: tuple[float, Health] | None = None
        self._lock = threading.Lock()

    # -- scoring -----------------------------------------------------------------------------

    def explain(self, applicants: Sequence[Applicant]) -> Scored:
        payload = json.dumps({"instances": [a.to_features() for a in applicants]})
        started = time.perf_counter()
        body = self._invoke(payload.encode())
        latency = (time.perf_counter() - started) * 1000.0
        model_version, explanations = check_response(body, applicants)
        return Scored(model_version, explanations, latency)

    def _invoke(self, payload: bytes) -> bytes:
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=self.settings.endpoint_name,
                Body=payload,
                ContentType=CONTENT_TYPE_JSON,
                Accept=CONTENT_TYPE_JSON,
            )
            body: bytes = response["Body"].read()
        except Exception as exc:
            raise upstream_error(exc) from exc
        return body

    # -- health ------------------------------------------------------------------------------

    def health(self) -> Health:
        """Is the endpoint there and serving? Cached for ``health_cache_seconds``."""
        now = time.monotonic()
        cached = self._health
        if cached is not None and now - cached[0] < self.settings.health_cache_seconds:
            return cached[1]
        with self._lock:
            if self.settings.health_check == "ping":
                result = self._ping()
            else:
                result = self._describe()
            self._health = (now, result)
        return result

    def _describe(self) -> Health:
        if self._control is None:
            self._control = boto3.client("sagemaker", config=client_config(self.settings))
        try:
            described = self._control.describe_endpoint(EndpointName=self.settings.endpoint_name)
        except (BotoCoreError, ClientError) as exc:
            err = upstream_error(exc)
            return Health(status=err.code, detail=err.message, serving=False)
        status = str(described.get("EndpointStatus", "Unknown"))
        return Health(
            status="ok" if status in _SERVING else "not_serving",
            detail=f"endpoint {self.settings.endpoint_name} is {status}",
            serving=status in _SERVING,
        )

    def _ping(self) -> Health:
        base = str(self.runtime.meta.endpoint_url).rstrip("/")
        if not base.startswith(("http://", "https://")):
            return Health("endpoint_error", "the runtime URL is not http(s)", False)
        try:
            with urllib.request.urlopen(  # noqa: S310 - scheme checked above
                base + "/ping", timeout=self.settings.connect_timeout
            ) as answer:
                ok = answer.status == 200
        except (urllib.error.URLError, OSError) as exc:
            return Health("model_unavailable", f"model server did not answer /ping: {exc}", False)
        return Health(
            "ok" if ok else "not_serving",
            f"model server at {base} answered /ping",
            ok,
        )


def upstream_error(exc: BaseException) -> UpstreamError:
    """Convert a botocore (or any) exception from the endpoint call into an :class:`UpstreamError`."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, ReadTimeoutError):
        return ModelTimeoutError("the model endpoint did not answer within the read timeout")
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError):
        return ModelUnavailableError("the model endpoint cannot be reached")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ModelError":
            original = exc.response.get("OriginalStatusCode")
            suffix = f" (status {original})" if original else ""
            return ModelFailedError(f"the model failed to score the request{suffix}")
        if code in ("ModelNotReadyException", "ServiceUnavailable", "InternalDependencyException"):
            return ModelUnavailableError("the model endpoint is not ready: retry later")
        if code in _THROTTLING_CODES or status == 429:
            return ThrottledError("the model endpoint is throttling requests: retry later")
        if code in ("ValidationError", "ValidationException"):
            return EndpointError("the model endpoint rejected the call (is it deployed?)")
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            return EndpointError("the scoring API is not allowed to call the model endpoint")
        return EndpointError(f"the model endpoint answered an error ({code or status})")
    if isinstance(exc, NoCredentialsError):
        return EndpointError("the scoring API has no AWS credentials to call the model endpoint")
    return EndpointError(f"the model endpoint call failed ({type(exc).__name__})")


def _ranked(contributions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {name: i for i, name in enumerate(FEATURES)}
    return sorted(contributions, key=lambda c: (-abs(c["shap_value"]), order[c["feature"]]))


def check_response(
    body: bytes, applicants: Sequence[Applicant]
) -> tuple[str, list[dict[str, Any]]]:
    """Validate the model's answer for these applicants; explanations as dicts, ranked."""
    try:
        parsed = ModelResponse.model_validate_json(body)
    except ValidationError as exc:
        raise BadModelResponseError(
            f"the model answered something that is not a model response ({exc.error_count()} "
            "problems)"
        ) from None
    if len(parsed.predictions) != len(applicants):
        raise BadModelResponseError(
            f"the model answered {len(parsed.predictions)} explanations for "
            f"{len(applicants)} applicants"
        )
    explanations: list[dict[str, Any]] = []
    for i, (explanation, applicant) in enumerate(zip(parsed.predictions, applicants, strict=True)):
        contributions = [c.model_dump() for c in explanation.contributions]
        if sorted(c["feature"] for c in contributions) != sorted(FEATURES):
            raise BadModelResponseError(
                f"explanation {i} does not hold exactly one contribution per feature"
            )
        inputs = applicant.to_features()
        for c in contributions:
            sent = inputs[c["feature"]]
            if (sent is None) != (c["value"] is None) or (
                sent is not None and float(sent) != c["value"]
            ):
                raise InconsistentExplanationError(
                    f"explanation {i} does not echo the input value of {c['feature']}"
                )
        total = explanation.base_value + sum(c["shap_value"] for c in contributions)
        if not abs(total - explanation.probability) <= ADDITIVITY_TOLERANCE:
            raise InconsistentExplanationError(
                f"explanation {i}: base value + SHAP values = {total:.9f} but the probability "
                f"is {explanation.probability:.9f}; refusing an explanation that does not add up"
            )
        explanations.append(
            {
                "probability": explanation.probability,
                "base_value": explanation.base_value,
                "contributions": _ranked(contributions),
            }
        )
    return parsed.model_version, explanations
