"""The local stack: model server + local API Gateway + the real scoring handler, on loopback.

::

    with LocalStack("models/default") as stack:
        httpx.post(f"{stack.api_url}/score", json=applicant)

The chain is the production one with the AWS parts swapped for local twins
speaking the same protocols: HTTP -> API Gateway proxy event -> the handler
(``scoring_api.app.lambda_handler``) -> a real boto3 ``sagemaker-runtime``
client (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, dummy credentials) -> the model
server's ``POST /endpoints/{name}/invocations``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import uvicorn
from credit_model.http_limits import SERVER_OPTIONS, UVICORN_OPTIONS
from credit_schema import SCHEMA_FILE

from .gateway import LambdaEnvironment, make_app

LOOPBACK: Final = "127.0.0.1"
ENDPOINT_NAME: Final = "credit-explainer-local"


def handler_environment(
    model_url: str,
    *,
    endpoint_name: str = ENDPOINT_NAME,
    log_level: str = "INFO",
    schema_file: str | Path | None = None,
) -> dict[str, str | None]:
    """The function's environment variables for the local stack (template.yaml's, made local).

    ``schema_file``: the served model's ``schema.json`` (None: the built-in schema).
    """
    return {
        "ENDPOINT_NAME": endpoint_name,
        "CREDIT_EXPLAINER_SCHEMA": None if schema_file is None else str(schema_file),
        # botocore's own per-service endpoint override: the model server speaks the runtime API.
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": model_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "HEALTH_CHECK": "ping",
        "POWERTOOLS_SERVICE_NAME": "scoring-api",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


class ListenError(OSError):
    """A port that cannot be listened on (taken, or not ours to take): the user's to fix."""


class ServerThread:
    """A uvicorn server on a loopback socket bound up front (port 0: a free port), in a thread."""

    def __init__(
        self,
        app: Any,
        *,
        port: int = 0,
        host: str = LOOPBACK,
        name: str = "server",
        options: Mapping[str, Any] = UVICORN_OPTIONS,
    ):
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it Nagle's algorithm and delayed ACKs add ~40 ms to every response.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise ListenError(f"cannot listen on {host}:{port} for the {name}: {exc}") from exc
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            **options,  # read timeouts and a header size limit (http_limits)
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=name, daemon=True
        )
        self.name = name

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} did not start on {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._socket.close()


class LocalStack(AbstractContextManager["LocalStack"]):
    """Model server and scoring API on loopback; ``api_url`` and ``model_url`` once entered.

    ``environment`` adds or overrides the function's variables (``MAX_APPLICANTS``,
    ``DECISION_THRESHOLDS``, ``SAGEMAKER_READ_TIMEOUT``, ...). ``records_dir`` keeps the
    decision records there (``RECORDS_DIR``: :mod:`scoring_api.records`). ``model_url`` uses a
    model server that is already running instead of starting one from ``model_dir``
    (it must answer ``POST /endpoints/{endpoint_name}/invocations``).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        api_port: int = 0,
        model_port: int = 0,
        api_key: str | None = None,
        model_url: str | None = None,
        environment: Mapping[str, str] | None = None,
        log_level: str = "INFO",
        endpoint_name: str = ENDPOINT_NAME,
        capture_dir: str | Path | None = None,
        records_dir: str | Path | None = None,
    ) -> None:
        if (model_dir is None) == (model_url is None):
            raise ValueError(
                "give a model_dir to serve, or the model_url of a running model server"
            )
        self.model_dir = None if model_dir is None else Path(model_dir)
        self.api_port = api_port
        self.model_port = model_port
        self.api_key = api_key
        self.endpoint_name = endpoint_name
        self.capture_dir = capture_dir
        self._model_url = model_url
        self._environment = dict(environment or {})
        if records_dir is not None:  # the decision records, written by the handler itself
            self._environment["RECORDS_DIR"] = str(records_dir)
        self._log_level = log_level
        self._stack = ExitStack()
        self._api: ServerThread | None = None
        self.lambda_environment: LambdaEnvironment | None = None
        #: The model server's data capture (with ``capture_dir``): its summary once stopped.
        self.capture: Any = None

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise RuntimeError("the local stack is not running: use it as a context manager")
        return self._api.url

    @property
    def model_url(self) -> str:
        if self._model_url is None:
            raise RuntimeError("the local stack is not running: use it as a context manager")
        return self._model_url

    def __enter__(self) -> Self:
        try:
            if self.model_dir is not None:
                server = self._stack.enter_context(
                    ModelServer(
                        self.model_dir,
                        port=self.model_port,
                        endpoint_name=self.endpoint_name,
                        capture_dir=self.capture_dir,
                    )
                )
                self._model_url = str(server.url).rstrip("/")
                self.capture = server.app.state.capture
            env: dict[str, str | None] = {
                **handler_environment(
                    self.model_url,
                    endpoint_name=self.endpoint_name,
                    log_level=self._log_level,
                    schema_file=self._schema_file(),
                ),
                **self._environment,
            }
            self.lambda_environment = LambdaEnvironment(env)
            api = ServerThread(
                make_app(self.lambda_environment, api_key=self.api_key),
                port=self.api_port,
                name="local API",
            )
            api.start()
            self._stack.callback(api.stop)
            self._api = api
        except BaseException:
            self._stack.close()
            raise
        return self

    def _schema_file(self) -> Path | None:
        # The served model's schema, as `sam build` ships it with the function; a model
        # directory written before schemas travelled with the model serves the built-in one.
        if self.model_dir is None:
            return None
        path = self.model_dir / SCHEMA_FILE
        return path if path.is_file() else None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._api = None
        self._stack.close()


class ModelServer:
    """The model server on a free loopback port, in a thread, for tests and the local stack.

    ``with ModelServer(model_dir) as server: server.url`` ...
    """

    def __init__(
        self,
        model: Any,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        endpoint_name: str | None = None,
        max_body_bytes: int | None = None,
        timeout: float | None = None,
        capture_dir: str | Path | None = None,
    ) -> None:
        # The model side (credit-explainer-model) is imported only when a model is served here.
        from credit_model import server

        self.app = server.create_app(
            model,
            endpoint_name=endpoint_name,
            max_body_bytes=max_body_bytes,
            timeout=timeout,
            capture_dir=capture_dir,
        )
        self.endpoint_name: str = self.app.state.endpoint_name
        self._thread = ServerThread(
            self.app, host=host, port=port, name="model server", options=SERVER_OPTIONS
        )

    @property
    def url(self) -> str:
        return self._thread.url

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.stop()
        if self.app.state.capture is not None:  # no lifespan in this thread: flush here
            self.app.state.capture.close()
