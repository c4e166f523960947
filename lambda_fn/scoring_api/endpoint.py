"""The SageMaker endpoint: one boundary where botocore errors become :mod:`scoring_api.errors`.

The runtime client is created once per execution environment (cold start) with
explicit timeouts and a bounded retry policy. botocore's read timeout is per socket read: a
model that sends its headers and then a byte every few seconds would hold the function for
as long as it likes. The answer's body is therefore read by a deadline per attempt (connect +
read timeout from the attempt's start) and per request (the budget the handler gives), each
socket read given only the time left (:meth:`ModelEndpoint._read_by`). Its URL is botocore's to resolve:
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or ``AWS_ENDPOINT_URL``) points it at the
local model server, which speaks the SageMaker Runtime API.

Every answer is checked before it is passed on, against the schema of the model
the API fronts: one explanation per applicant, one contribution per schema
feature echoing the applicant's input value (a category's text), the
applicant's ids echoed, and ``base_value + sum(shap_value) == probability`` (to :data:`ADDITIVITY_TOLERANCE`).
An explanation that does not add up is refused (502): a credit decision must not
be explained with numbers that do not explain it.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import boto3
import urllib3
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
from credit_schema import (
    ADDITIVITY_TOLERANCE,
    BUILTIN,
    CONTENT_TYPE_JSON,
    SPACES,
    ApplicantBase,
    ApplicantSchema,
    PayloadError,
    additivity_target,
    direction_of,
    edge,
    ranked,
)
from credit_schema.decisions import REFERENCE_ATTRIBUTE, SPACE_ATTRIBUTE, DecisionBands
from credit_schema.points import check_points
from credit_schema.reasons import MAX_REASONS

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

_THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
#: botocore's standard retry mode sleeps rand() * min(BASE ** (n - 1), MAX) s before attempt
#: n + 1, up to RETRY_AFTER_EXTRA s more when the answer carries x-amz-retry-after.
BACKOFF_BASE: Final = 2
MAX_BACKOFF: Final = 20.0
RETRY_AFTER_EXTRA: Final = 5.0
_RETRY_AFTER_HEADER: Final = "x-amz-retry-after"
#: Bytes asked of one socket read of the answer's body.
_READ_CHUNK: Final = 256 * 1024
_INVOKE: Final = "InvokeEndpoint"

#: DescribeEndpoint statuses in which the endpoint answers invocations.
_SERVING: Final = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})


def longest_backoff(attempts: int, retry_after: bool = False) -> float:
    """The longest botocore sleeps after ``attempts`` attempts, before the next one."""
    longest = min(float(BACKOFF_BASE ** (attempts - 1)), MAX_BACKOFF)
    return longest + (RETRY_AFTER_EXTRA if retry_after else 0.0)


def worst_case_seconds(settings: Settings, budget: float) -> float:
    """How long an invocation can take when every attempt takes its longest (connect + read
    timeouts) and every sleep too, given the ``budget`` :meth:`ModelEndpoint.explain` keeps."""
    attempt = settings.connect_timeout + settings.read_timeout
    spent = attempt
    for made in range(1, settings.max_attempts):
        if spent + longest_backoff(made) + attempt > budget:
            break
        spent += longest_backoff(made) + attempt
    return spent


def client_config(settings: Settings) -> Config:
    return Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},  # type: ignore[arg-type]
        user_agent_extra="credit-explainer-scoring-api",
    )


@dataclass(frozen=True)
class Scored:
    """The model's validated answer for one request."""

    model_version: str
    explanations: list[dict[str, Any]]  # Explanation dicts, request order
    model_latency_ms: float
    reason_codes_version: str | None = None


@dataclass(frozen=True)
class Health:
    status: str  # "ok" or the reason it is not
    detail: str
    serving: bool


class ModelEndpoint:
    """Invokes one SageMaker endpoint and checks what it answers."""

    def __init__(
        self, settings: Settings, runtime: Any | None = None, *, schema: ApplicantSchema = BUILTIN
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.runtime = runtime or boto3.client("sagemaker-runtime", config=client_config(settings))
        self._control: Any | None = None  # sagemaker control plane, created on first /health
        self._health: tuple[float, Health] | None = None
        self._lock = threading.Lock()
        self._deadline = threading.local()  # of the invocation under way in this thread
        # Ahead of botocore's own retry handler: no retry that could end past the deadline.
        self.runtime.meta.events.register_first(
            f"needs-retry.sagemaker-runtime.{_INVOKE}", self._no_retry_past_deadline
        )
        self.runtime.meta.events.register(
            f"before-send.sagemaker-runtime.{_INVOKE}", self._attempt_started
        )

    # -- scoring -----------------------------------------------------------------------------

    def explain(
        self,
        applicants: Sequence[ApplicantBase],
        deadline: float | None = None,
        inference_id: str | None = None,
        space: str | None = None,
    ) -> Scored:
        """Score and check; no attempt is made that could end past ``deadline`` (monotonic).

        ``inference_id`` (the API request id) names the call in the endpoint's data capture;
        ``space`` asks for explanations in that space (None: the model's default).
        """
        if deadline is not None and deadline <= time.monotonic():  # queued past its time
            raise ModelTimeoutError("no time was left to call the model endpoint")
        inputs = [a.to_features() | a.ids() for a in applicants]  # the model echoes the ids
        payload = json.dumps({"instances": inputs})
        started = time.perf_counter()
        self._deadline.value = deadline
        try:
            body = self._invoke(payload.encode(), inference_id, space)
        finally:
            self._deadline.value = None
        latency = (time.perf_counter() - started) * 1000.0
        bands = self.settings.decision_bands
        model_version, explanations, reasons_version = check_response(
            body, inputs, bands, self.schema
        )
        return Scored(model_version, explanations, latency, reasons_version)

    def _invoke(
        self, payload: bytes, inference_id: str | None = None, space: str | None = None
    ) -> bytes:
        accepted = edge.inference_id(inference_id)  # API Gateway's ids are UUIDs: always kept
        extra = {"InferenceId": accepted} if accepted else {}
        attributes = [f"{SPACE_ATTRIBUTE}={space}"] if space else []
        if self.settings.decision_bands is not None:  # the model records the decision as sent
            attributes.insert(0, self.settings.decision_bands.custom_attributes())
            if self.settings.reasons_reference == "cutoff":
                attributes.append(f"{REFERENCE_ATTRIBUTE}=cutoff")
        if attributes:
            extra["CustomAttributes"] = ";".join(attributes)
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=self.settings.endpoint_name,
                Body=payload,
                ContentType=CONTENT_TYPE_JSON,
                Accept=CONTENT_TYPE_JSON,
                **extra,
            )
            return self._read_by(response["Body"], self._attempt_due())
        except Exception as exc:
            raise upstream_error(exc) from exc

    def _attempt_started(self, **_: Any) -> None:
        self._deadline.attempt_started = time.monotonic()

    def _attempt_due(self) -> float:
        """When the attempt under way must have answered: its connect + read timeouts from its
        start, and never past the request's deadline."""
        started = getattr(self._deadline, "attempt_started", None) or time.monotonic()
        due = started + self.settings.connect_timeout + self.settings.read_timeout
        deadline: float | None = getattr(self._deadline, "value", None)
        return due if deadline is None else min(due, deadline)

    def _read_by(self, body: Any, due: float) -> bytes:
        """The whole body by ``due`` (monotonic): each socket read gets only the time left."""
        raw = body._raw_stream  # urllib3's response: read1 is one socket read
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        chunks: list[bytes] = []
        while True:
            left = due - time.monotonic()
            if left <= 0:
                body.close()  # the connection is closed, not returned to the pool half-read
                raise ModelTimeoutError(
                    "the model endpoint did not send its whole answer within the attempt's "
                    "deadline"
                )
            if sock is not None:
                sock.settimeout(min(left, self.settings.read_timeout))
            chunk = raw.read1(_READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _no_retry_past_deadline(
        self,
        attempts: int,
        response: tuple[Any, dict[str, Any]] | None = None,
        caught_exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """After each attempt: if botocore's next one could end past the deadline, fail now
        with what this attempt failed with (its own retry handler can only say "retry")."""
        deadline: float | None = getattr(self._deadline, "value", None)
        http = response[0] if response is not None else None
        if deadline is None or (caught_exception is None and http and http.status_code < 300):
            return
        retry_after = http is not None and _RETRY_AFTER_HEADER in http.headers
        longest = longest_backoff(attempts, retry_after)
        longest += self.settings.connect_timeout + self.settings.read_timeout
        if time.monotonic() + longest <= deadline:
            return
        if caught_exception is not None:
            raise caught_exception
        assert response is not None
        raise ClientError(response[1], _INVOKE)  # type: ignore[arg-type]

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


def upstream_error(exc: BaseException) -> UpstreamError | PayloadError:
    """Convert a botocore (or any) exception from the endpoint call into an :class:`UpstreamError`."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, ReadTimeoutError | urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return ModelTimeoutError("the model endpoint did not answer within the read timeout")
    if isinstance(exc, urllib3.exceptions.HTTPError):  # the body cut short, a reset connection
        return ModelUnavailableError("the model endpoint's answer was cut short")
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError):
        return ModelUnavailableError("the model endpoint cannot be reached")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ModelError":
            original = exc.response.get("OriginalStatusCode")
            refused = _refused_option(exc.response) if original == 400 else None
            if refused is not None:
                return refused
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


def _refused_option(response: Any) -> PayloadError | None:
    """The model's 400 ``bad_request``: an option the caller chose (``?space=``) that this model
    does not serve, answered as the caller's 400 in the model's words (which hold no applicant
    data); None for any other model error."""
    try:
        error = json.loads(str(response.get("OriginalMessage", "")))["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(error, dict) or error.get("code") != PayloadError.code:
        return None
    return PayloadError(str(error.get("message", "an option this model does not serve"))[:200])


def _is_number(x: object) -> TypeGuard[float]:
    return isinstance(x, float | int) and type(x) is not bool and math.isfinite(x)


def _bad(message: str) -> BadModelResponseError:
    return BadModelResponseError(
        f"the model answered something that is not a model response: {message}"
    )


def _check_reasons(i: int, reasons: object, order: Mapping[str, int]) -> list[dict[str, Any]]:
    """The model's principal reasons for explanation ``i``, checked and passed on unchanged."""
    if not isinstance(reasons, list) or len(reasons) > MAX_REASONS:
        raise _bad(f"explanation {i} has no list of at most {MAX_REASONS} reasons")
    for r in reasons:
        if not (
            isinstance(r, dict)
            and isinstance(r.get("code"), str)
            and isinstance(r.get("text"), str)
            and r.get("feature") in order
            and _is_number(r.get("shap_value"))
        ):
            raise _bad(f"explanation {i} has a malformed reason")
    return reasons


def _echoes(given: float | str | None, value: object) -> bool:
    # The model answers a category's text as sent, a number as a float, null where missing.
    if given is None or value is None:
        return given is None and value is None
    if isinstance(given, str):
        return value == given
    return _is_number(value) and float(given) == value


def check_response(
    body: bytes,
    inputs: Sequence[Mapping[str, float | int | str | None]],
    bands: DecisionBands | None = None,
    schema: ApplicantSchema = BUILTIN,
) -> tuple[str, list[dict[str, Any]], str | None]:
    """Check the model's :class:`credit_schema.ModelResponse` for these inputs; explanations ranked.

    ``inputs`` are what was sent: each applicant's features and ids (wire names). Returns
    the model version, the explanations (with the model's ``reasons`` and the applicant's
    ``ids`` when there are any) and the reason-code registry's version (None from a model
    that sends no reasons).

    A plain-Python structural check rather than ``ModelResponse.model_validate_json``: the
    response of a 2,000-applicant batch holds 20,000 contributions, and building a model object
    for each costs more than the rest of the request. The checks are the schema's (types,
    probability in [0, 1], one contribution per feature) plus the API's own (inputs echoed,
    additivity); directions are recomputed from the SHAP values.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad("not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("predictions"), list):
        raise _bad("no 'predictions' list")
    model_version = parsed.get("model_version")
    if not isinstance(model_version, str) or not model_version:
        raise _bad("no 'model_version'")
    reasons_version = parsed.get("reason_codes_version")
    if reasons_version is not None and not isinstance(reasons_version, str):
        raise _bad("'reason_codes_version' is not a string")
    features = schema.features
    order = {name: j for j, name in enumerate(features)}
    predictions = parsed["predictions"]
    if len(predictions) != len(inputs):
        raise BadModelResponseError(
            f"the model answered {len(predictions)} explanations for {len(inputs)} applicants"
        )
    explanations: list[dict[str, Any]] = []
    for i, (explanation, sent) in enumerate(zip(predictions, inputs, strict=True)):
        if not isinstance(explanation, dict):
            raise _bad(f"explanation {i} is not an object")
        probability, base = explanation.get("probability"), explanation.get("base_value")
        contributions = explanation.get("contributions")
        if not (_is_number(probability) and 0.0 <= probability <= 1.0 and _is_number(base)):
            raise _bad(f"explanation {i} has no probability in [0, 1] or no base value")
        space = explanation.get("space", "probability")
        if space not in SPACES:
            raise _bad(f"explanation {i} has a space that is not one of {', '.join(SPACES)}")
        if not isinstance(contributions, list) or len(contributions) != len(features):
            raise _bad(f"explanation {i} does not hold one contribution per feature")
        checked: list[dict[str, Any]] = []
        total = float(base)
        for c in contributions:
            feature = c.get("feature") if isinstance(c, dict) else None
            value, shap = (c.get("value"), c.get("shap_value")) if isinstance(c, dict) else (0, 0)
            if not isinstance(feature, str) or feature not in order or not _is_number(shap):
                raise _bad(f"explanation {i} has a malformed contribution")
            if not _echoes(sent[feature], value):
                raise InconsistentExplanationError(
                    f"explanation {i} does not echo the input value of {feature}"
                )
            total += shap
            checked.append(
                {
                    "feature": feature,
                    "value": value if value is None or isinstance(value, str) else float(value),
                    "shap_value": float(shap),
                    "direction": direction_of(shap),
                }
            )
        if len({c["feature"] for c in checked}) != len(features):
            raise _bad(f"explanation {i} repeats a feature")
        target = additivity_target(float(probability), space)
        if not abs(total - target) <= ADDITIVITY_TOLERANCE:
            raise InconsistentExplanationError(
                f"explanation {i}: base value + SHAP values = {total:.9f} but the probability "
                f"is {probability:.9f} ({space} {target:.9f}); refusing an explanation that "
                "does not add up"
            )
        checked.sort(key=lambda c: order[c["feature"]])
        checked = [checked[j] for j in ranked([c["shap_value"] for c in checked])]
        checked_explanation = {
            "probability": float(probability),
            "base_value": float(base),
            "space": space,
            "contributions": checked,
        }
        if "reasons" in explanation:
            checked_explanation["reasons"] = _check_reasons(i, explanation["reasons"], order)
        ids = {c: sent[c] for c in schema.id_columns if sent.get(c) is not None}
        if ids:
            if explanation.get("ids") != ids:
                raise InconsistentExplanationError(f"explanation {i} does not echo the applicant's ids")
            checked_explanation["ids"] = ids
        if explanation.get("points") is not None:
            wrong = check_points(explanation["points"], features)
            if wrong is not None:
                raise InconsistentExplanationError(f"explanation {i}: {wrong}")
            checked_explanation["points"] = explanation["points"]
        if explanation.get("reference", "training") != "training":
            if explanation["reference"] != "cutoff":
                raise _bad(f"explanation {i} has an unknown reference")
            checked_explanation["reference"] = "cutoff"
        decision = explanation.get("decision")
        if bands is not None and decision is not None and decision != bands.decide(probability):
            raise InconsistentExplanationError(
                f"explanation {i}: the model recorded the decision {str(decision)[:40]!r}, "
                f"not {bands.decide(probability)!r} as the API's bands give"
            )
        explanations.append(checked_explanation)
    return model_version, explanations, reasons_version
