"""The local API Gateway over real HTTP, with nothing listening where the model should be."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from credit_explainer_tools.local import LocalStack

EVENTS = Path(__file__).resolve().parents[2] / "events"
INVALID = json.loads(json.loads((EVENTS / "score-invalid.json").read_text())["body"])


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with LocalStack(
        model_url=closed, api_key="k", environment={"SAGEMAKER_MAX_ATTEMPTS": "1"}
    ) as running:
        yield running


def test_requests_become_proxy_events_for_the_real_handler(stack: LocalStack) -> None:
    response = httpx.post(f"{stack.api_url}/score", json=INVALID, headers={"x-api-key": "k"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-amzn-RequestId"]
    assert {(d["applicant"], d["field"]) for d in error["details"]} == {
        (0, "age"),
        (1, "Age"),  # "did you mean 'age'?": one problem
    }
    # a body that is not UTF-8 arrives base64-encoded (isBase64Encoded) and is refused cleanly
    binary = httpx.post(f"{stack.api_url}/score", content=b"\xff\xfe", headers={"x-api-key": "k"})
    assert binary.status_code == 400
    assert binary.json()["error"]["code"] == "malformed_request"


def test_model_down_is_503_with_retry_after(stack: LocalStack) -> None:
    applicant = dict(INVALID[0], age=40)
    response = httpx.post(f"{stack.api_url}/score", json=applicant, headers={"x-api-key": "k"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    health = httpx.get(f"{stack.api_url}/health", headers={"x-api-key": "k"})
    assert health.status_code == 503


def test_api_gateway_answers_before_the_handler(stack: LocalStack) -> None:
    anonymous = httpx.post(f"{stack.api_url}/score", json=INVALID)
    assert (anonymous.status_code, anonymous.json()) == (403, {"message": "Forbidden"})
    assert anonymous.headers["x-amzn-ErrorType"] == "ForbiddenException"
    wrong = httpx.get(f"{stack.api_url}/health", headers={"x-api-key": "K"})
    assert wrong.status_code == 403
    unknown = httpx.get(f"{stack.api_url}/admin", headers={"x-api-key": "k"})
    assert (unknown.status_code, unknown.json()) == (
        403,
        {"message": "Missing Authentication Token"},
    )
    big = httpx.post(
        f"{stack.api_url}/score", content=b" " * (10 * 1024 * 1024 + 1), headers={"x-api-key": "k"}
    )
    assert (big.status_code, big.json()) == (413, {"message": "Request Too Long"})


def test_openapi_document_is_served(stack: LocalStack) -> None:
    doc = httpx.get(
        f"{stack.api_url}/swagger", params={"format": "json"}, headers={"x-api-key": "k"}
    )
    assert doc.status_code == 200
    assert "/score" in doc.json()["paths"]


def test_stack_needs_a_model_dir_or_a_model_url() -> None:
    with pytest.raises(ValueError, match="model_dir"):
        LocalStack()
    with pytest.raises(RuntimeError, match="not running"):
        _ = LocalStack(model_url="http://127.0.0.1:1").api_url
