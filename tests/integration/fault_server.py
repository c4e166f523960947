"""A real HTTP peer that speaks the SageMaker Runtime API and fails on request.

It answers ``POST /endpoints/{name}/invocations`` (and ``GET /ping``) on
127.0.0.1 like the AWS SageMaker Runtime service does, including its error
responses (status, ``x-amzn-ErrorType``, ``x-amzn-RequestId``, JSON body), so
that the scoring handler's real boto3 client parses them into the exceptions it
raises against AWS. It injects the faults a real model server cannot produce on
demand: throttling, not ready, service errors, slow answers, garbage, and
explanations that do not add up.

Healthy answers are consistent explanations that echo the applicant's inputs
(``base_value + sum(shap) == probability``): the fault tests check what the API
does with what the endpoint says, not the model's numbers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from credit_explainer_tools.local.stack import ServerThread
from credit_schema import FEATURES, explanation_dict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_VERSION: Final = "fault-server-1"


@dataclass(frozen=True)
class Fault:
    """One way the endpoint can fail: the HTTP answer AWS would give."""

    name: str
    status: int = 200
    error_type: str | None = None  # x-amzn-ErrorType; None: a 200 answer
    body: bytes | None = None  # raw body; None: the AWS error JSON or a healthy answer
    delay: float = 0.0  # seconds before answering
    extra: dict[str, Any] | None = None  # extra members of the error JSON
    trickle: float = 0.0  # > 0: a healthy answer's headers at once, then a byte every this many s


def aws_error(status: int, error_type: str, message: str, **extra: Any) -> Fault:
    return Fault(
        error_type, status=status, error_type=error_type, extra={"message": message, **extra}
    )


#: Faults by name, with the status and ``x-amzn-ErrorType`` AWS uses for each.
FAULTS: Final[dict[str, Fault]] = {
    "internal_failure": aws_error(500, "InternalFailure", "An internal failure occurred."),
    "service_unavailable": aws_error(503, "ServiceUnavailable", "Service unavailable."),
    "throttled": aws_error(400, "ThrottlingException", "Rate exceeded"),
    "not_ready": aws_error(429, "ModelNotReadyException", "Model is not ready."),
    "model_error": aws_error(
        424,
        "ModelError",
        'Received server error (500) from primary with message "boom".',
        OriginalStatusCode=500,
        OriginalMessage="boom",
        LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
    ),
    "validation": aws_error(400, "ValidationError", "Endpoint credit-explainer-local not found."),
    "garbage": Fault("garbage", body=b"<html><body>502 Bad Gateway</body></html>"),
    "truncated_json": Fault(
        "truncated_json", body=b'{"model_version": "x", "predictions": [{"probab'
    ),
    "inconsistent": Fault("inconsistent"),  # SHAP values that do not add up
    "wrong_echo": Fault("wrong_echo"),  # an explanation of some other applicant's inputs
    "missing_applicant": Fault("missing_applicant"),  # one explanation fewer than applicants
    "slow": Fault("slow", delay=2.0),
}


def consistent_explanation(record: dict[str, Any], i: int) -> dict[str, Any]:
    values = [record.get(n) for n in FEATURES]
    shap = [((j + 1) * (-1) ** j) / 1000.0 + i / 1e6 for j in range(len(FEATURES))]
    base = 0.07
    return explanation_dict(base + sum(shap), base, values, shap)


class FaultServer:
    """``with FaultServer() as fs: fs.inject("throttled", times=2)`` then point boto3 at ``fs.url``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: list[Fault] = []
        self._always: Fault | None = None
        self.calls: Counter[str] = Counter()  # answers given, by fault name ("ok" when healthy)
        self._server = ServerThread(self._app(), name="fault server")

    # -- control ---------------------------------------------------------------------------

    def inject(self, fault: str | Fault, *, times: int | None = None) -> None:
        """Fail the next ``times`` invocations (None: every one until :meth:`clear`)."""
        f = FAULTS[fault] if isinstance(fault, str) else fault
        with self._lock:
            if times is None:
                self._always, self._plan = f, []
            else:
                self._always, self._plan = None, [f] * times

    def clear(self) -> None:
        with self._lock:
            self._always, self._plan = None, []

    def _next(self) -> Fault | None:
        with self._lock:
            if self._plan:
                return self._plan.pop(0)
            return self._always

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> FaultServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    # -- the SageMaker Runtime API ---------------------------------------------------------

    def _app(self) -> Starlette:
        async def ping(request: Request) -> Response:
            fault = self._peek()
            if fault is not None and fault.name in ("not_ready", "service_unavailable"):
                return Response(status_code=503)
            return Response(status_code=200)

        async def invoke(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            payload = await request.body()
            fault = self._next()
            self.calls[fault.name if fault else "ok"] += 1
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.error_type is not None:
                return JSONResponse(
                    fault.extra or {},
                    status_code=fault.status,
                    headers={"x-amzn-ErrorType": fault.error_type, "x-amzn-RequestId": request_id},
                )
            if fault is not None and fault.body is not None:
                return Response(
                    fault.body,
                    status_code=fault.status,
                    media_type="application/json",
                    headers={"x-amzn-RequestId": request_id},
                )
            records = json.loads(payload)["instances"]
            predictions = [consistent_explanation(r, i) for i, r in enumerate(records)]
            name = fault.name if fault else None
            if name == "inconsistent":
                predictions[-1]["contributions"][0]["shap_value"] += 0.05
            elif name == "wrong_echo":
                predictions[-1]["contributions"][0]["value"] = 12345.0
            elif name == "missing_applicant":
                predictions.pop()
            headers = {
                "x-amzn-RequestId": request_id,
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            }
            answer = {"model_version": MODEL_VERSION, "predictions": predictions}
            if fault is not None and fault.trickle:
                return trickled(json.dumps(answer).encode(), fault.trickle, headers)
            return JSONResponse(answer, headers=headers)

        return Starlette(
            routes=[
                Route("/ping", ping, methods=["GET"]),
                Route("/endpoints/{name}/invocations", invoke, methods=["POST"]),
            ]
        )

    def _peek(self) -> Fault | None:
        with self._lock:
            return self._plan[0] if self._plan else self._always


def trickled(body: bytes, every: float, headers: dict[str, str]) -> StreamingResponse:
    """``body`` with its headers (and Content-Length) at once, then one byte every ``every`` s:
    each socket read gets something well within any read timeout, the whole never comes."""

    async def bytes_slowly() -> Any:
        for i in range(len(body)):
            yield body[i : i + 1]
            await asyncio.sleep(every)

    return StreamingResponse(
        bytes_slowly(),
        media_type="application/json",
        headers={**headers, "content-length": str(len(body))},
    )
