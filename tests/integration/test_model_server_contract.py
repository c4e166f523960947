"""The model server's edges over real HTTP: timeouts, unknown routes, early 406/415."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import runtime_client
from credit_explainer_tools.local.stack import ModelServer


class SlowExplainer:
    """The real explainer, answering after a pause (a model slower than the server's timeout)."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner = inner
        self.base_value = inner.base_value
        self.seconds = seconds

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.explain_checked(X)[:2]

    def explain_checked(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        time.sleep(self.seconds)
        proba, values, gap = self.inner.explain_checked(X)
        return proba, values, gap


def batch_past_inline(applicants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A batch scored in a worker thread, under the timeout (small bodies run on the loop)."""
    from credit_model.server import INLINE_MAX_BYTES

    compact = len(json.dumps(applicants, separators=(",", ":")))
    batch = applicants * (INLINE_MAX_BYTES // compact + 1)
    assert len(json.dumps(batch, separators=(",", ":"))) > INLINE_MAX_BYTES
    return batch


@pytest.fixture(scope="module")
def slow_server(synthetic_model: Any) -> Any:
    slow = dataclasses.replace(
        synthetic_model, explainer=SlowExplainer(synthetic_model.explainer, 1.5)
    )
    with ModelServer(slow, timeout=0.2) as server:
        yield server


def test_a_request_past_the_timeout_gets_504_json_at_once(
    slow_server: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    started = time.perf_counter()
    body = batch_past_inline(sample_applicants)
    response = httpx.post(f"{slow_server.url}/invocations", json=body, timeout=10)
    elapsed = time.perf_counter() - started
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "model_timeout" and "0.2 s" in error["message"]
    assert elapsed < 1.5  # answered at the timeout, not when the slow model finished
    assert httpx.get(f"{slow_server.url}/ping").status_code == 200


def test_the_runtime_api_reports_a_timeout_as_model_error(
    slow_server: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    runtime = runtime_client(slow_server.url)
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(
            EndpointName=slow_server.endpoint_name,
            Body=json.dumps(batch_past_inline(sample_applicants)),
            ContentType="application/json",
        )
    assert info.value.response["OriginalStatusCode"] == 504
    assert "server error (504)" in info.value.response["Error"]["Message"]


def test_timeout_comes_from_sagemakers_variable(
    synthetic_model: Any, monkeypatch: pytest.MonkeyPatch, sample_applicants: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0.1")
    slow = dataclasses.replace(
        synthetic_model, explainer=SlowExplainer(synthetic_model.explainer, 1.0)
    )
    with ModelServer(slow) as server:
        response = httpx.post(f"{server.url}/invocations", json=batch_past_inline(sample_applicants))
    assert response.status_code == 504


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/invocations", 405, "method_not_allowed"),
        ("POST", "/ping", 405, "method_not_allowed"),
    ],
)
def test_unknown_routes_and_methods_answer_the_json_error_shape(
    model_server: Any, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(method, f"{model_server.url}{path}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"content-type": "application/xml"}, 415), ({"accept": "image/png"}, 406)],
)
def test_unsupported_types_are_refused_before_the_body_is_read(
    synthetic_model: Any, headers: dict[str, str], status: int
) -> None:
    # The body is over the size limit: refusing it for its type first proves it was not read.
    with ModelServer(synthetic_model, max_body_bytes=100) as server:
        response = httpx.post(
            f"{server.url}/invocations",
            content=b"x" * 10_000,
            headers={"content-type": "application/json", **headers},
        )
    assert response.status_code == status
