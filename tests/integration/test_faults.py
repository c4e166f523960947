"""Fault injection: every way the model side fails, through the real chain on loopback.

HTTP client -> local API Gateway -> the real scoring handler -> its real boto3
``sagemaker-runtime`` client -> a real HTTP peer on 127.0.0.1 that speaks the
SageMaker Runtime API (:mod:`fault_server`) and fails on request (or no peer at
all: connection refused). Each fault must give the documented status and error
body, ``Retry-After`` where retrying helps, never a stack trace or an applicant's
value, and scoring must recover when the fault clears.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from credit_explainer_tools.local import LocalStack
from credit_schema import FEATURES, ErrorBody, ScoreResponse
from fault_server import FAULTS, MODEL_VERSION, FaultServer

#: The function's settings for these tests: short read timeout, the template's 3 attempts.
ENVIRONMENT = {"SAGEMAKER_READ_TIMEOUT": "0.5", "SAGEMAKER_CONNECT_TIMEOUT": "0.5"}

# Distinctive values: none of them may appear in an error body.
APPLICANTS: list[dict[str, Any]] = [
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.7316,
        "age": 47,
        "NumberOfTime30-59DaysPastDueNotWorse": 3,
        "DebtRatio": 0.4139,
        "MonthlyIncome": 98765.4321,
        "NumberOfOpenCreditLinesAndLoans": 13,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 2,
        "NumberOfTime60-89DaysPastDueNotWorse": 1,
        "NumberOfDependents": None,
    },
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.0571,
        "age": 63,
        "NumberOfTime30-59DaysPastDueNotWorse": 0,
        "DebtRatio": 1234.5678,
        "MonthlyIncome": None,
        "NumberOfOpenCreditLinesAndLoans": 7,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 0,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": 4,
    },
]
SECRETS = ("98765.4321", "1234.5678", "0.7316")

#: fault -> (status, error code, Retry-After) the API documents for it.
EXPECTED: dict[str, tuple[int, str, str | None]] = {
    "connection_refused": (503, "model_unavailable", "5"),
    "slow": (504, "model_timeout", None),
    "internal_failure": (502, "endpoint_error", None),
    "service_unavailable": (503, "model_unavailable", "5"),
    "throttled": (429, "throttled", "1"),
    "not_ready": (503, "model_unavailable", "5"),
    "model_error": (502, "model_error", None),
    "validation": (502, "endpoint_error", None),
    "garbage": (502, "bad_model_response", None),
    "truncated_json": (502, "bad_model_response", None),
    "inconsistent": (502, "inconsistent_explanation", None),
    "wrong_echo": (502, "inconsistent_explanation", None),
    "missing_applicant": (502, "bad_model_response", None),
}
assert set(EXPECTED) == {*FAULTS, "connection_refused"}


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(faults: FaultServer) -> Iterator[httpx.Client]:
    with (
        LocalStack(model_url=faults.url, environment=ENVIRONMENT) as stack,
        httpx.Client(base_url=stack.api_url, timeout=30) as client,
    ):
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_error(response: httpx.Response, fault: str) -> ErrorBody:
    status, code, retry_after = EXPECTED[fault]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate_json(response.content)
    assert body.error.code == code
    assert body.error.message
    assert body.error.request_id == response.headers["x-amzn-RequestId"]
    assert response.headers.get("retry-after") == retry_after
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    assert not any(secret in text for secret in SECRETS)
    return body


def score(api: httpx.Client) -> httpx.Response:
    return api.post("/score", json=APPLICANTS)


def check_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    parsed = ScoreResponse.model_validate_json(response.content)
    assert parsed.model_version == MODEL_VERSION
    assert [r.index for r in parsed.results] == [0, 1]
    for r, sent in zip(parsed.results, APPLICANTS, strict=True):
        values = {c.feature: c.value for c in r.contributions}
        assert values == {n: None if sent[n] is None else float(sent[n]) for n in FEATURES}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_gives_its_documented_answer_then_recovers(
    faults: FaultServer, api: httpx.Client, fault: str
) -> None:
    faults.inject(fault)  # every invocation fails until cleared (botocore's retries exhausted)
    try:
        check_error(score(api), fault)
    finally:
        faults.clear()
    check_ok(score(api))  # the fault has cleared: the same request scores


def test_connection_refused_is_503_with_retry_after() -> None:
    with (
        LocalStack(model_url=f"http://127.0.0.1:{free_port()}", environment=ENVIRONMENT) as stack,
        httpx.Client(base_url=stack.api_url, timeout=30) as client,
    ):
        check_error(client.post("/score", json=APPLICANTS), "connection_refused")
        health = client.get("/health")
        assert health.status_code == 503
        assert health.headers["retry-after"]


@pytest.mark.parametrize("fault", ["internal_failure", "service_unavailable", "throttled", "slow"])
def test_a_transient_fault_is_retried_by_boto3_within_one_request(
    faults: FaultServer, api: httpx.Client, fault: str
) -> None:
    before = faults.calls["ok"]
    faults.inject(fault, times=1)
    check_ok(score(api))
    assert faults.calls["ok"] == before + 1


@pytest.mark.parametrize("fault", ["model_error", "inconsistent", "garbage"])
def test_faults_that_retrying_cannot_fix_are_not_retried(
    faults: FaultServer, api: httpx.Client, fault: str
) -> None:
    before = sum(faults.calls.values())
    faults.inject(fault)
    try:
        check_error(score(api), fault)
    finally:
        faults.clear()
    assert sum(faults.calls.values()) == before + 1


def test_an_inconsistent_explanation_is_never_passed_on(
    faults: FaultServer, api: httpx.Client
) -> None:
    # Only the last applicant's explanation is wrong: the whole answer is refused, not a part.
    faults.inject("inconsistent")
    try:
        response = score(api)
    finally:
        faults.clear()
    body = check_error(response, "inconsistent")
    assert "results" not in response.json()
    assert "add up" in body.error.message
    assert json.loads(response.text).keys() == {"error"}


# -- the SDK's retries over the same chain -------------------------------------------------


@pytest.fixture(scope="module")
def stack_url(faults: FaultServer) -> Iterator[str]:
    with LocalStack(model_url=faults.url, environment=ENVIRONMENT) as stack:
        yield stack.api_url


@pytest.mark.parametrize(
    ("fault", "retry_after"), [("throttled", 1.0), ("service_unavailable", 5.0)]
)
def test_the_client_retries_honouring_retry_after_and_recovers_when_the_fault_clears(
    faults: FaultServer,
    stack_url: str,
    fault: str,
    retry_after: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from credit_explainer import CreditExplainerClient, _client

    waits: list[float] = []
    real_sleep = _client._sleep

    def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(seconds)  # really wait: the fault clears on the peer meanwhile

    monkeypatch.setattr(_client, "_sleep", recording_sleep)
    # The first API request exhausts botocore's 3 attempts (the API answers 429/503 with
    # Retry-After); the client's retry finds the endpoint healthy again.
    faults.inject(fault, times=3)
    before = faults.calls["ok"]
    with CreditExplainerClient(stack_url, max_retries=2) as client:
        score = client.score(APPLICANTS[0])
    assert waits == [retry_after]
    assert faults.calls["ok"] == before + 1
    assert score.model_version == MODEL_VERSION
    assert score.base_value + sum(c.shap_value for c in score.contributions) == pytest.approx(
        score.probability, abs=1e-9
    )


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("inconsistent", "ModelError"),
        ("model_error", "ModelError"),
        ("slow", "GatewayTimeoutError"),
        ("throttled", "RateLimitError"),
    ],
)
def test_a_persistent_fault_reaches_the_client_as_its_documented_exception(
    faults: FaultServer, stack_url: str, fault: str, error: str
) -> None:
    import credit_explainer
    from credit_explainer import CreditExplainerClient

    faults.inject(fault)
    try:
        with CreditExplainerClient(stack_url, max_retries=0) as client:
            with pytest.raises(getattr(credit_explainer, error)) as info:
                client.score(APPLICANTS[0])
    finally:
        faults.clear()
    assert info.value.request_id
    assert not any(secret in str(info.value) for secret in SECRETS)
