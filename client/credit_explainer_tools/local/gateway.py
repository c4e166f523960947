"""A local API Gateway (REST API, Lambda proxy integration) in front of the real handler.

HTTP requests become the same ``aws-proxy`` (v1) events API Gateway sends the
Lambda (the shape of ``events/*.json``); the handler's answer becomes the HTTP
response. What API Gateway itself does is emulated where a client can see it:

* only the template's routes reach the handler; anything else is
  ``403 {"message": "Missing Authentication Token"}``, as a REST API answers;
* with an API key configured, a missing or wrong ``x-api-key`` is
  ``403 {"message": "Forbidden"}`` (``x-amzn-ErrorType: ForbiddenException``);
* bodies over API Gateway's 10 MiB payload limit are refused with its 413, and
  bodies over the function's own limit (``MAX_BODY_BYTES``) with the function's
  413, from ``Content-Length`` before reading, or as soon as the count passes it;
* a function that has not answered within API Gateway's 29 s integration timeout
  gets ``504 {"message": "Endpoint request timed out"}`` (it runs on, as on AWS);
* text bodies pass as they are, other bodies base64-encoded with
  ``isBase64Encoded: true``; ``x-amzn-RequestId`` carries the request id;
* its own answers carry the security headers template.yaml's GatewayResponses give
  API Gateway's (the function's carry their own).

The handler runs in-process in a :class:`LambdaEnvironment`: its own copy of
the ``scoring_api.app`` module, initialised (cold start) with the function's
environment variables, one invocation at a time, as in one Lambda execution
environment. The wait for it is bounded: a request that has not started within API
Gateway's timeout gets the 504 and is never run; one that has keeps to the function's own
deadlines, per attempt and per request (:mod:`scoring_api.endpoint`). So a slow upstream
holds the API for one invocation's deadline at a time, never a queue of abandoned ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import importlib.util
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Final

from credit_explainer._config import install_hint
from credit_schema import PayloadTooLargeError, check_body_size
from credit_schema.edge import API_GATEWAY_TIMEOUT_SECONDS, SECURITY_HEADERS
from credit_schema.edge import request_id as new_request_id
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: The routes template.yaml gives the function: (method, resource path).
ROUTES: Final[frozenset[tuple[str, str]]] = frozenset(
    {("POST", "/score"), ("GET", "/schema"), ("GET", "/health"), ("GET", "/swagger")}
)
#: API Gateway's payload limit for REST APIs.
MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
HANDLER_MODULE: Final = "scoring_api.app"
FUNCTION_NAME: Final = "credit-explainer-local-ScoringFunction"

logger = logging.getLogger(__name__)

# Environment variables are process-wide: one cold start at a time.
_ENV_LOCK = threading.Lock()
# Powertools keeps some state per process (metric sets, logger keys): one invocation at a time.
_INVOKE_LOCK = threading.Lock()


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (None: unset) environment variables for the duration of the block (hold _ENV_LOCK)."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@dataclass
class LambdaContext:
    """The context object the Lambda runtime passes the handler (the attributes Powertools reads)."""

    aws_request_id: str
    timeout_s: float = API_GATEWAY_TIMEOUT_SECONDS
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


class LambdaEnvironment:
    """The scoring handler, cold-started with ``environment``, invoked one event at a time.

    Each environment imports its own copy of ``scoring_api.app`` (its own
    settings, boto3 client, Powertools app), so that two local stacks in one
    process do not share a model endpoint.
    """

    def __init__(self, environment: Mapping[str, str | None]) -> None:
        self.environment = dict(environment)
        spec = importlib.util.find_spec(HANDLER_MODULE)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(
                f"{HANDLER_MODULE} is not importable: {install_hint('credit-explainer-tools')}",
                name=HANDLER_MODULE,
            )
        module = importlib.util.module_from_spec(spec)
        started = time.perf_counter()
        with _ENV_LOCK, patched_environ(environment):
            spec.loader.exec_module(module)
        self.init_ms = (time.perf_counter() - started) * 1000.0
        # Powertools configures its logger once per process: this environment's level applies.
        level = self.environment.get("POWERTOOLS_LOG_LEVEL")
        if level and hasattr(module, "logger"):
            module.logger.setLevel(level.upper())
        self.module: ModuleType = module
        self._handler: Callable[[dict[str, Any], Any], dict[str, Any]] = module.lambda_handler

    def invoke(self, event: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        """Run the handler on ``event``; with a ``deadline`` (monotonic), wait for the
        environment only until then (else :class:`TimeoutError`: the event is never run)."""
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not _INVOKE_LOCK.acquire(timeout=wait):
            raise TimeoutError("the execution environment stayed busy until the deadline")
        try:
            context = LambdaContext(aws_request_id=str(uuid.uuid4()))
            # Powertools reads some variables at run time (metrics on/off): the function's apply.
            with _ENV_LOCK, patched_environ(self.environment):
                return self._handler(event, context)
        finally:
            _INVOKE_LOCK.release()


def _gateway_error(status: int, message: str, error_type: str | None, request_id: str) -> Response:
    headers = {**SECURITY_HEADERS, "x-amzn-RequestId": request_id}
    if error_type is not None:
        headers["x-amzn-ErrorType"] = error_type
    return JSONResponse({"message": message}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | int:
    """The body, or its size once over ``limit`` (declared, or counted up to API Gateway's).

    Never holds more than ``limit`` bytes: the rest of an over-limit body is only counted.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return int(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            return size
        if size <= limit:
            chunks.append(chunk)
    return size if size > limit else b"".join(chunks)


def _function_too_large(size: int, limit: int, request_id: str) -> Response:
    """The handler's own 413 (credit_schema's check and words) for a body over its limit."""
    try:
        check_body_size(size, limit)
    except PayloadTooLargeError as exc:
        return JSONResponse(
            exc.to_dict(request_id),
            exc.status_code,
            {**SECURITY_HEADERS, "x-amzn-RequestId": request_id},
        )
    raise ValueError(f"{size} bytes is within the limit of {limit}")


def _without_stage(path: str, stage: str) -> str:
    # API Gateway serves a stage under /<stage>; the OpenAPI document's servers (and so Swagger
    # UI's "Try it out") point there, so the local gateway answers there too, as at its root.
    return path[len(stage) + 1 :] if path.startswith(f"/{stage}/") else path


def build_event(
    request: Request, body: bytes, *, resource: str, stage: str, request_id: str
) -> dict[str, Any]:
    """The API Gateway REST proxy (v1) event for this request."""
    path = _without_stage(request.url.path, stage)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    now = datetime.now(UTC)
    client = request.client
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": request.method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
            "domainName": request.url.hostname,
            "identity": {
                "sourceIp": client.host if client else "127.0.0.1",
                "userAgent": request.headers.get("user-agent"),
                "apiKey": request.headers.get("x-api-key"),
                "apiKeyId": api_key_id(request.headers.get("x-api-key")),
            },
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def api_key_id(key: str | None) -> str | None:
    """A stable id for an API key, never the key (API Gateway gives its keys ids like this)."""
    return None if not key else "local-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def to_response(result: Mapping[str, Any], request_id: str) -> Response:
    """The handler's proxy result as an HTTP response."""
    headers: dict[str, str] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    for name, value in (result.get("headers") or {}).items():
        headers[name] = str(value)
    headers.setdefault("x-amzn-RequestId", request_id)
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return Response(content=content, status_code=int(result["statusCode"]), headers=headers)


def make_app(
    environment: LambdaEnvironment,
    *,
    api_key: str | None = None,
    stage: str = "local",
    timeout: float = API_GATEWAY_TIMEOUT_SECONDS,
) -> Starlette:
    """The local API Gateway as an ASGI app; ``timeout``: its integration timeout, seconds."""

    async def proxy(request: Request) -> Response:
        request_id = new_request_id(None)  # API Gateway issues its own, whatever the client sent
        resource = _without_stage(request.url.path, stage).rstrip("/") or "/"
        if (request.method, resource) not in ROUTES:
            return _gateway_error(
                403,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
                request_id,
            )
        if api_key is not None and request.headers.get("x-api-key") != api_key:
            return _gateway_error(403, "Forbidden", "ForbiddenException", request_id)
        # The function's own limit (MAX_BODY_BYTES), as its handler would refuse the body.
        limit = min(MAX_PAYLOAD_BYTES, environment.module.settings.max_body_bytes)
        try:
            body = await _read_body(request, limit)
        except ClientDisconnect:  # the client left mid-body: one line, not a traceback
            logger.warning("client disconnected mid-body request_id=%s", request_id)
            return Response(status_code=499)
        if isinstance(body, int):
            if body > MAX_PAYLOAD_BYTES:
                return _gateway_error(
                    413, "Request Too Long", "RequestTooLongException", request_id
                )
            return _function_too_large(body, limit, request_id)
        event = build_event(request, body, resource=resource, stage=stage, request_id=request_id)
        deadline = time.monotonic() + timeout
        try:
            result = await asyncio.wait_for(
                run_in_threadpool(environment.invoke, event, deadline), timeout
            )
        except TimeoutError:
            return _gateway_error(504, "Endpoint request timed out", None, request_id)
        except Exception:  # noqa: BLE001 - a crashed function: API Gateway answers 502, no trace
            return _gateway_error(
                502, "Internal server error", "InternalServerErrorException", request_id
            )
        return to_response(result, request_id)

    methods = sorted({m for m, _ in ROUTES} | {"PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"})
    return Starlette(routes=[Route("/{path:path}", proxy, methods=methods)])
