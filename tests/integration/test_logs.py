"""The scoring handler's logs: request ids, latencies and error kinds; never applicant values.

The handler runs in a child process, cold-started like a Lambda execution
environment with the function's environment variables, and handles API Gateway
events (the ``events/`` fixtures with our applicants in their bodies) for a
success, a validation failure, malformed JSON and an upstream fault. Everything
it writes to stdout and stderr is captured and checked line by line.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fault_server import FaultServer
from test_faults import APPLICANTS, SECRETS

EVENTS = Path(__file__).resolve().parents[2] / "events"

CHILD = """
import json, sys
from credit_explainer_tools.local import handler_environment
from credit_explainer_tools.local.gateway import LambdaEnvironment
url, level, events = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
fn = LambdaEnvironment(handler_environment(url, log_level=level))
statuses = [fn.invoke(event)["statusCode"] for event in events]
sys.stderr.write("STATUSES " + json.dumps(statuses) + "\\n")
"""


def event(request_id: str, body: str, *, encode: bool = False) -> dict[str, Any]:
    ev: dict[str, Any] = json.loads((EVENTS / "score-batch.json").read_text())
    ev["requestContext"]["requestId"] = request_id
    if encode:
        ev["body"], ev["isBase64Encoded"] = base64.b64encode(body.encode()).decode(), True
    else:
        ev["body"], ev["isBase64Encoded"] = body, False
    return ev


CASES = [  # (request id, event, status, error kind or None for a success)
    ("req-throttled", event("req-throttled", json.dumps(APPLICANTS)), 429, "throttled"),
    ("req-ok", event("req-ok", json.dumps(APPLICANTS), encode=True), 200, None),
    (
        "req-invalid",
        event("req-invalid", json.dumps([dict(APPLICANTS[0], age=17), APPLICANTS[1]])),
        422,
        "validation_error",
    ),
    (
        "req-malformed",
        event("req-malformed", json.dumps(APPLICANTS)[:-9]),
        400,
        "malformed_request",
    ),
    ("req-double", event("req-double", json.dumps(json.dumps(APPLICANTS))), 200, None),
]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_logs_carry_request_ids_latencies_and_error_kinds_never_applicant_values(
    level: str,
) -> None:
    with FaultServer() as faults:
        faults.inject("throttled", times=3)  # the first request: every boto3 attempt throttled
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, faults.url, level],
            input=json.dumps([ev for _, ev, _, _ in CASES]),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    statuses = json.loads(proc.stderr.split("STATUSES ", 1)[1].splitlines()[0])
    assert statuses == [status for _, _, status, _ in CASES]

    everything = proc.stdout + proc.stderr
    for secret in SECRETS:
        assert secret not in everything, f"an applicant value ({secret}) reached the logs"

    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    by_request: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        assert record.get("correlation_id"), record  # every line names its request
        by_request.setdefault(record["correlation_id"], []).append(record)
    assert set(by_request) == {request_id for request_id, *_ in CASES}

    for request_id, _, status, kind in CASES:
        lines = by_request[request_id]
        assert all(r["function_request_id"] for r in lines)
        if kind is None:
            [done] = [r for r in lines if r["message"] == "scored"]
            assert done["applicants"] == len(APPLICANTS)
            assert done["latency_ms"] > 0 and done["model_latency_ms"] > 0
            assert not any("error_kind" in r for r in lines)
        else:
            [failed] = [r for r in lines if r.get("error_kind") == kind]
            assert failed["status"] == status
            assert failed["latency_ms"] >= 0
