"""The model server: the SageMaker container contract over HTTP, and the runtime API.

One Starlette application (served by uvicorn) answers:

* ``GET /ping``, ``POST /invocations`` and ``GET /execution-parameters``: the
  SageMaker hosting and batch-transform container contract. The container image
  runs this same server as its ``serve`` program, so local and cloud serve with
  the same code.
* ``POST /endpoints/{EndpointName}/invocations``: the SageMaker Runtime
  ``InvokeEndpoint`` API as AWS answers it (``x-Amzn-Invoked-Production-Variant``,
  errors as ``x-amzn-ErrorType`` + JSON body; a model 4xx/5xx becomes
  ``ModelError`` with ``OriginalStatusCode``), so a real boto3
  ``sagemaker-runtime`` client with ``endpoint_url`` works against it.

The model is loaded once, before the server accepts requests. Error bodies use
the one JSON error shape; no response ever carries a stack trace, and the logs
carry request ids, sizes, statuses and latencies, never applicant values.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any, Final

from credit_schema import (
    CONTENT_TYPE_JSON,
    DEFAULT_ENDPOINT_NAME,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_VARIANT,
    MalformedPayloadError,
    RouteNotFoundError,
    ServiceError,
    check_body_size,
    check_content_type,
    negotiate,
)
from credit_schema.decisions import (
    CUSTOM_ATTRIBUTES_HEADER,
    REFERENCE_ATTRIBUTE,
    SPACE_ATTRIBUTE,
    THRESHOLDS_ATTRIBUTE,
    DecisionBands,
    custom_attribute,
)
from credit_schema.edge import inference_id, new_id
from credit_schema.edge import request_id as accepted_request_id
from credit_schema.reasons import ReasonCodesError, registry_from_env
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import artifacts, http_limits
from .capture import (
    CAPTURE_DIR_ENV,
    INFERENCE_ID_HEADER,
    CaptureError,
    CaptureWriter,
    capture_directory,
)
from .explainer import default_threads
from .handlers import (
    DEFAULT_MODEL_MAX_APPLICANTS,
    INPUT_CONTENT_TYPES,
    MAX_APPLICANTS_ENV,
    OUTPUT_CONTENT_TYPES,
    LoadedModel,
    model_fn,
    transform,
)
from .settings import SettingError, env_int, env_seconds

logger = logging.getLogger("credit_model.server")

#: What refuses a start: the user's to fix, reported as one ``error:`` line (exit 2).
STARTUP_ERRORS: Final = (
    artifacts.ModelArtifactError,
    ReasonCodesError,
    CaptureError,
    SettingError,
)

MODEL_DIR_ENV: Final = "CREDIT_EXPLAINER_MODEL_DIR"
DEFAULT_MODEL_DIR: Final = "/opt/ml/model"
ENDPOINT_NAME_ENV: Final = "CREDIT_EXPLAINER_ENDPOINT_NAME"
MAX_BODY_ENV: Final = "CREDIT_EXPLAINER_MAX_BODY_BYTES"
#: The account id in runtime-API error messages and log-stream ARNs (local: a dummy).
LOCAL_ACCOUNT: Final = "000000000000"
#: Bodies up to this size (a few applicants) are scored on the event loop; larger ones in a
#: worker thread, under the timeout below.
INLINE_MAX_BYTES: Final = 8 * 1024
#: Seconds one invocation may take before the caller gets 504 (SageMaker's own limit is 60 s).
TIMEOUT_ENV: Final = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT: Final = 60.0
#: The log level ``run`` hands its worker processes (spawned: they start with no logging set up).
LOG_LEVEL_ENV: Final = "CREDIT_EXPLAINER_LOG_LEVEL"
_CORAL: Final = "http://internal.amazon.com/coral/com.amazon.sagemaker/"


class ModelTimeoutError(ServiceError):
    status_code = 504
    code = "model_timeout"


class MethodNotAllowedError(ServiceError):
    status_code = 405
    code = "method_not_allowed"


def _error(exc: ServiceError, request_id: str) -> JSONResponse:
    return JSONResponse(exc.to_dict(request_id), status_code=exc.status_code)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_body_size(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _bands(custom_attributes: str | None) -> DecisionBands | None:
    """The caller's decision bands from InvokeEndpoint's CustomAttributes (400 if malformed)."""
    try:
        return DecisionBands.from_custom_attributes(custom_attributes)
    except ValueError as exc:
        raise MalformedPayloadError(f"custom attribute {THRESHOLDS_ATTRIBUTE}: {exc}") from None


class _Invoker:
    """Runs one invocation: body limits, the handler stages, errors as JSON."""

    def __init__(
        self,
        model: LoadedModel,
        max_body_bytes: int,
        timeout: float,
        capture: CaptureWriter | None = None,
    ) -> None:
        self.model = model
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.capture = capture

    async def __call__(self, request: Request, request_id: str) -> Response:
        started = time.perf_counter()
        content_type = request.headers.get("content-type")
        accept = request.headers.get("accept")
        try:
            # 406/415 before the body is read: no work for a request that cannot be answered.
            negotiate(accept, OUTPUT_CONTENT_TYPES)
            check_content_type(content_type, INPUT_CONTENT_TYPES)
            attributes = request.headers.get(CUSTOM_ATTRIBUTES_HEADER)
            bands = _bands(attributes)
            space = custom_attribute(attributes, SPACE_ATTRIBUTE)
            reference = custom_attribute(attributes, REFERENCE_ATTRIBUTE)
            body = await _read_body(request, self.max_body_bytes)
            if len(body) <= INLINE_MAX_BYTES:
                # A few applicants take less time than a hop to a worker thread.
                out, response_type = transform(
                    self.model,
                    body,
                    content_type,
                    accept,
                    bands=bands,
                    space=space,
                    reference=reference,
                )
            else:
                # The scoring thread cannot be interrupted: past the timeout the caller gets
                # its 504 at once and the thread's result is dropped when it finishes.
                work = asyncio.get_running_loop().run_in_executor(
                    None,
                    partial(transform, bands=bands, space=space, reference=reference),
                    self.model,
                    body,
                    content_type,
                    accept,
                )
                out, response_type = await asyncio.wait_for(work, self.timeout)
            response: Response = Response(out, media_type=response_type)
            kind = "ok"
            if self.capture is not None:  # queued only: written by the capture thread
                given = inference_id(request.headers.get(INFERENCE_ID_HEADER))
                self.capture.record(
                    content_type or "", body, response_type, out, given or request_id
                )
        except TimeoutError:
            failure: ServiceError = ModelTimeoutError(
                f"the model did not answer within {self.timeout:g} s"
            )
            response, kind = _error(failure, request_id), failure.code
        except ServiceError as exc:  # 4xx for the request, 500 for an inconsistent explanation
            response, kind = _error(exc, request_id), exc.code
        except ClientDisconnect:  # the caller left mid-body: nothing failed, nothing to answer
            response, kind = Response(status_code=499), "client_disconnected"
        except Exception:
            logger.exception("invocation failed", extra={"request_id": request_id})
            failure = ServiceError("the model failed to score the request")
            response, kind = _error(failure, request_id), failure.code
        logger.info(
            "invocation request_id=%s status=%d kind=%s latency_ms=%.2f",
            request_id,
            response.status_code,
            kind,
            (time.perf_counter() - started) * 1e3,
        )
        return response


def _aws_error(status: int, error_type: str, body: dict[str, Any], request_id: str) -> Response:
    return Response(
        json.dumps(body),
        status_code=status,
        media_type=CONTENT_TYPE_JSON,
        headers={"x-amzn-ErrorType": f"{error_type}:{_CORAL}", "x-amzn-RequestId": request_id},
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(RouteNotFoundError("no such route"), new_id())


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return _error(MethodNotAllowedError("method not allowed on this route"), new_id())


def create_app(
    model: LoadedModel | str | Path,
    *,
    endpoint_name: str | None = None,
    max_body_bytes: int | None = None,
    workers: int = 1,
    timeout: float | None = None,
    capture_dir: str | Path | None = None,
) -> Starlette:
    """The model server application for a loaded model (or a model directory to load now).

    ``timeout`` (seconds per invocation) defaults to ``$SAGEMAKER_MODEL_SERVER_TIMEOUT`` or 60.
    ``capture_dir``: write every successful invocation there (:mod:`credit_model.capture`);
    the capture is closed (flushed) at the application's shutdown or by ``app.state.capture``.
    """
    loaded = model if isinstance(model, LoadedModel) else model_fn(model)
    name = endpoint_name or os.environ.get(ENDPOINT_NAME_ENV, DEFAULT_ENDPOINT_NAME)
    limit = max_body_bytes or env_int(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES)
    capture = CaptureWriter(capture_dir, name) if capture_dir else None
    invoke = _Invoker(loaded, limit, timeout or env_seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT), capture)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if capture is not None:  # uvicorn's shutdown (SIGTERM, SIGINT): nothing queued is lost
            await asyncio.get_running_loop().run_in_executor(None, capture.close)

    async def ping(request: Request) -> Response:
        return JSONResponse({"status": "healthy", "model_version": loaded.version})

    async def execution_parameters(request: Request) -> Response:
        return JSONResponse(
            {
                "MaxConcurrentTransforms": max(1, workers),
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": max(1, limit // (1024 * 1024)),
            }
        )

    async def invocations(request: Request) -> Response:
        # The caller's id only in the shape SageMaker issues: never log or echo forged text.
        request_id = accepted_request_id(request.headers.get("x-amzn-requestid"))
        return await invoke(request, request_id)

    async def runtime_invoke_endpoint(request: Request) -> Response:
        request_id = new_id()
        endpoint = request.path_params["endpoint_name"]
        if endpoint != name:
            return _aws_error(
                400,
                "ValidationError",
                {"message": f"Endpoint {endpoint} of account {LOCAL_ACCOUNT} not found."},
                request_id,
            )
        response = await invoke(request, request_id)
        if response.status_code >= 400:
            original = bytes(response.body).decode("utf-8", "replace")
            client_or_server = "client" if response.status_code < 500 else "server"
            return _aws_error(
                424,
                "ModelError",
                {
                    "ErrorCode": f"{client_or_server.upper()}_ERROR_FROM_MODEL",
                    "Message": (
                        f"Received {client_or_server} error ({response.status_code}) from primary "
                        f'with message "{original}". See the endpoint\'s logs for more information.'
                    ),
                    "OriginalStatusCode": response.status_code,
                    "OriginalMessage": original,
                    "LogStreamArn": (
                        f"arn:aws:logs:local:{LOCAL_ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{name}"
                    ),
                },
                request_id,
            )
        response.headers["x-Amzn-Invoked-Production-Variant"] = DEFAULT_VARIANT
        response.headers["x-amzn-RequestId"] = request_id
        return response

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route(
                "/endpoints/{endpoint_name}/invocations", runtime_invoke_endpoint, methods=["POST"]
            ),
        ],
        exception_handlers={404: _not_found, 405: _method_not_allowed},
        lifespan=lifespan,
    )
    app.state.model = loaded
    app.state.endpoint_name = name
    app.state.capture = capture
    return app


def configure_logging(level: str) -> None:
    """The server's log lines (invocations, disconnects, capture's summary), in every process."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


def _started() -> None:
    """Start-up is over: what it made lives as long as the server, so no collection walks it
    again (frozen), and the collector is back on (``serve`` stops it for the start)."""
    gc.freeze()
    gc.enable()


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and multi-worker serving (model dir from the environment)."""
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"))
    gc.disable()
    try:
        return create_app(
            os.environ.get(MODEL_DIR_ENV, DEFAULT_MODEL_DIR),
            capture_dir=os.environ.get(CAPTURE_DIR_ENV) or None,
        )
    finally:
        _started()


def run(
    model_dir: str | Path | None = None,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - a container must listen on all interfaces
    port: int | None = None,
    workers: int | None = None,
    endpoint_name: str | None = None,
    log_level: str = "info",
    timeout: float | None = None,
    capture_dir: str | Path | None = None,
) -> None:
    """Serve until interrupted (the container's ``serve`` program calls this).

    Unset arguments come from SageMaker's variables: ``SAGEMAKER_BIND_TO_PORT`` (8080),
    ``SAGEMAKER_MODEL_SERVER_WORKERS`` (1) and ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (60 s).
    With several workers each worker process loads the model once at its start.
    """
    import uvicorn

    directory = str(model_dir or os.environ.get(MODEL_DIR_ENV, DEFAULT_MODEL_DIR))
    port = port or env_int("SAGEMAKER_BIND_TO_PORT", 8080)
    workers = workers or env_int("SAGEMAKER_MODEL_SERVER_WORKERS", 1)
    if timeout:
        os.environ[TIMEOUT_ENV] = str(timeout)
    configure_logging(log_level)
    if workers > 1:
        # Fail here, once, on a missing or tampered model, reason codes or a bad setting, not
        # in every worker.
        artifacts.verify(directory)
        registry_from_env()
        env_int(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES)
        env_seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT)
        env_int(MAX_APPLICANTS_ENV, DEFAULT_MODEL_MAX_APPLICANTS)
        default_threads()
        os.environ[MODEL_DIR_ENV] = directory
        os.environ[LOG_LEVEL_ENV] = log_level
        if endpoint_name:
            os.environ[ENDPOINT_NAME_ENV] = endpoint_name
        if capture_dir:  # each worker writes its own files (a uuid in every name)
            name = endpoint_name or os.environ.get(ENDPOINT_NAME_ENV, DEFAULT_ENDPOINT_NAME)
            capture_directory(capture_dir, name)
            os.environ[CAPTURE_DIR_ENV] = str(capture_dir)
        _started()
        uvicorn.run(
            "credit_model.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            **http_limits.SERVER_OPTIONS,
        )
        return
    app = create_app(directory, endpoint_name=endpoint_name, capture_dir=capture_dir)
    _started()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        **http_limits.SERVER_OPTIONS,  # read timeouts, a header size limit, security headers
    )
