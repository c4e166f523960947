"""Client retries and faults the local stack cannot produce, through httpx.MockTransport.

The happy paths and validation errors run against the real local stack
(tests/integration/test_client_stack.py); here the transport answers 429/503
with and without Retry-After, refuses connections, times out, or sends
responses the real API never sends (wrong shape, explanations that do not
add up), and the waits the client would make are recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import credit_explainer._client as client_module
import httpx
import pytest
from conftest import LENDER_SCHEMA as LENDER
from credit_explainer import (
    APIResponseError,
    AsyncCreditExplainerClient,
    ConnectError,
    CreditExplainerClient,
    Failure,
    InconsistentExplanationError,
    InvalidApplicantError,
    ModelError,
    RateLimitError,
    RetryPolicy,
    Score,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    ValidationError,
)
from credit_explainer._exceptions import parse_retry_after
from credit_schema import BUILTIN, FEATURES, explanation_dict

APPLICANT = {
    "RevolvingUtilizationOfUnsecuredLines": 0.8,
    "age": 31,
    "NumberOfTime30-59DaysPastDueNotWorse": 1,
    "DebtRatio": 0.4,
    "MonthlyIncome": None,
    "NumberOfOpenCreditLinesAndLoans": 5,
    "NumberOfTimes90DaysLate": 0,
    "NumberRealEstateLoansOrLines": 1,
    "NumberOfTime60-89DaysPastDueNotWorse": 0,
    "NumberOfDependents": 2,
}
NO_JITTER = RetryPolicy(max_retries=3, initial_backoff=0.5, max_backoff=8.0, jitter=False)


def scored_body(instances: list[dict[str, object]], *, skew: float = 0.0) -> dict[str, object]:
    """What the API answers, with SHAP values derived from the inputs (age tags each applicant)."""
    results = []
    for i, inst in enumerate(instances):
        shap = [0.001 * (j - 4) + 1e-5 * float(inst["age"]) for j in range(len(FEATURES))]  # type: ignore[arg-type]
        values = [inst[f] for f in FEATURES]
        e = explanation_dict(0.06 + sum(shap) + skew, 0.06, values, shap)  # type: ignore[arg-type]
        results.append({"index": i, **e, "decision": None})
    return {"request_id": "req-1", "model_version": "m-1", "results": results}


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=scored_body(json.loads(request.content)["instances"]))


def schema_answer(request: httpx.Request) -> httpx.Response | None:
    """The API's ``GET /schema`` (the built-in schema), asked once by each client."""
    if request.method == "GET" and request.url.path.endswith("/schema"):
        return httpx.Response(200, json=BUILTIN.document())
    return None


class Script:
    """A transport handler answering from a list of responders, recording each ``/score``
    request (``GET /schema`` is answered aside, in :attr:`schema_requests`)."""

    def __init__(self, *steps: Callable[[httpx.Request], httpx.Response]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.schema_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = schema_answer(request)
        if answer is not None:
            self.schema_requests += 1
            return answer
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)


def status(
    code: int, *, retry_after: str | None = None, body: object = None
) -> Callable[..., httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        payload = (
            body
            if body is not None
            else {
                "error": {
                    "code": f"e{code}",
                    "message": f"status {code}",
                    "request_id": "rid-9",
                    "details": [],
                }
            }
        )
        return httpx.Response(code, json=payload, headers=headers)

    return respond


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", recorded.append)
    monkeypatch.setattr(client_module, "_async_sleep", async_sleep)
    return recorded


def make(script: Script, **options: object) -> CreditExplainerClient:
    options.setdefault("retry_policy", NO_JITTER)
    return CreditExplainerClient(
        "http://api.test/Prod",
        transport=httpx.MockTransport(script),
        **options,  # type: ignore[arg-type]
    )


def test_503_with_retry_after_waits_as_told_then_succeeds(waits: list[float]) -> None:
    script = Script(status(503, retry_after="2"), status(503, retry_after="0.25"), ok)
    with make(script) as client:
        score = client.score(APPLICANT)
    assert waits == [2.0, 0.25]
    assert len(script.requests) == 3
    assert score.request_id == "req-1"
    # The same request each time, to the stage path.
    assert {r.url.path for r in script.requests} == {"/Prod/score"}
    assert len({r.content for r in script.requests}) == 1


def test_429_backs_off_exponentially_and_gives_up_after_max_retries(waits: list[float]) -> None:
    script = Script(status(429))
    with make(script) as client, pytest.raises(RateLimitError) as info:
        client.score(APPLICANT)
    assert waits == [0.5, 1.0, 2.0]  # initial_backoff * 2**n, no jitter
    assert len(script.requests) == 4  # the first attempt + 3 retries
    assert info.value.status == 429 and info.value.code == "e429"
    assert info.value.request_id == "rid-9"


def test_backoff_is_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy(max_retries=10, initial_backoff=0.5, max_backoff=3.0, jitter=True)
    for retry in range(10):
        cap = min(3.0, 0.5 * 2**retry)
        delays = [policy.delay(retry, None) for _ in range(200)]
        assert all(d is not None and 0.0 <= d <= cap for d in delays)
        assert len(set(delays)) > 100  # jittered, not constant
    assert policy.delay(10, None) is None  # out of retries


def test_retry_after_longer_than_the_cap_is_not_waited_for(waits: list[float]) -> None:
    script = Script(status(503, retry_after="3600"), ok)
    with make(script) as client, pytest.raises(ServiceUnavailableError) as info:
        client.score(APPLICANT)
    assert waits == [] and len(script.requests) == 1
    assert info.value.retry_after == 3600.0


def test_retry_after_as_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None and 25.0 <= seconds <= 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("code", [400, 401, 403, 404, 413, 422, 500, 502, 504])
def test_other_statuses_are_never_retried(code: int, waits: list[float]) -> None:
    script = Script(status(code))
    with make(script) as client, pytest.raises(Exception) as info:
        client.score(APPLICANT)
    assert len(script.requests) == 1 and waits == []
    assert getattr(info.value, "status", None) == code


def test_5xx_map_to_server_errors(waits: list[float]) -> None:
    with make(Script(status(502))) as client, pytest.raises(ModelError):
        client.score(APPLICANT)
    with make(Script(status(500))) as client, pytest.raises(ServerError):
        client.score(APPLICANT)


def test_connection_refused_is_retried_then_raised_from_the_httpx_error(waits: list[float]) -> None:
    script = Script(refuse)
    with make(script) as client, pytest.raises(ConnectError) as info:
        client.score(APPLICANT)
    assert len(script.requests) == 4 and waits == [0.5, 1.0, 2.0]
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_connection_recovers_when_the_fault_clears(waits: list[float]) -> None:
    script = Script(refuse, refuse, ok)
    with make(script) as client:
        assert client.score(APPLICANT).probability > 0
    assert waits == [0.5, 1.0]


def test_read_timeout_is_not_retried(waits: list[float]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    script = Script(slow)
    with make(script) as client, pytest.raises(TimeoutError) as info:
        client.score(APPLICANT)
    assert len(script.requests) == 1 and waits == []
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_connect_timeout_is_retried(waits: list[float]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    script = Script(slow, ok)
    with make(script) as client:
        client.score(APPLICANT)
    assert waits == [0.5]


def test_max_retries_zero_disables_retries(waits: list[float]) -> None:
    script = Script(status(503, retry_after="1"))
    with make(script, max_retries=0) as client, pytest.raises(ServiceUnavailableError):
        client.score(APPLICANT)
    assert len(script.requests) == 1 and waits == []


def test_a_response_that_is_not_a_score_response_is_refused() -> None:
    script = Script(lambda r: httpx.Response(200, json={"prediction": [0.1]}))
    with make(script) as client, pytest.raises(APIResponseError) as info:
        client.score(APPLICANT)
    assert info.value.__cause__ is not None


def test_results_that_do_not_match_the_applicants_sent_are_refused() -> None:
    def duplicated(request: httpx.Request) -> httpx.Response:
        body = scored_body(json.loads(request.content)["instances"])
        body["results"][1]["index"] = 0  # type: ignore[index]
        return httpx.Response(200, json=body)

    def short(request: httpx.Request) -> httpx.Response:
        body = scored_body(json.loads(request.content)["instances"])
        body["results"] = body["results"][:1]  # type: ignore[index]
        return httpx.Response(200, json=body)

    for handler, message in ((duplicated, "0..n-1"), (short, "sent 2 applicant")):
        with make(Script(handler)) as client, pytest.raises(APIResponseError, match=message):
            client.score_many([APPLICANT, APPLICANT])


def test_an_explanation_that_does_not_add_up_is_refused() -> None:
    def skewed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=scored_body(json.loads(request.content)["instances"], skew=1e-6)
        )

    with make(Script(skewed)) as client, pytest.raises(InconsistentExplanationError):
        client.score(APPLICANT)
    with make(Script(skewed), check_additivity=False) as client:
        assert client.score(APPLICANT).additivity_error == pytest.approx(1e-6)


def test_api_gateway_errors_without_an_error_body_are_understood() -> None:
    script = Script(status(403, body={"message": "Forbidden"}))
    with make(script) as client, pytest.raises(Exception) as info:
        client.score(APPLICANT)
    assert "Forbidden" in str(info.value) and info.value.body is None  # type: ignore[attr-defined]


def test_score_many_collect_fails_only_the_batch_that_failed(waits: list[float]) -> None:
    script = Script(ok, status(502), ok)
    applicants = [{**APPLICANT, "age": 20 + i} for i in range(6)]
    with make(script) as client:
        results = client.score_many(applicants, batch_size=2, on_error="collect")
    assert [type(r).__name__ for r in results] == [
        "Score",
        "Score",
        "Failure",
        "Failure",
        "Score",
        "Score",
    ]
    failed = results.failures
    assert [f.index for f in failed] == [2, 3] and {f.status for f in failed} == {502}
    # Scores come back in input order, each with its own inputs.
    for i, item in enumerate(results):
        if isinstance(item, Score):
            assert item.index == i and item.inputs["age"] == 20 + i


def test_score_many_raise_mode_raises_the_api_error(waits: list[float]) -> None:
    script = Script(ok, status(502))
    with make(script) as client, pytest.raises(ModelError):
        client.score_many([APPLICANT] * 4, batch_size=2)


def test_score_many_collect_maps_a_422_to_the_applicants_it_names(waits: list[float]) -> None:
    """An API whose rules are stricter than the client's: the named rows fail, the rest are resent."""

    def strict(request: httpx.Request) -> httpx.Response:
        instances = json.loads(request.content)["instances"]
        bad = [i for i, inst in enumerate(instances) if inst["age"] == 99]
        if bad:
            details = [
                {"applicant": i, "field": "age", "message": "too old for this API", "type": "x"}
                for i in bad
            ]
            return status(
                422,
                body={"error": {"code": "validation_error", "message": "bad", "details": details}},
            )(request)
        return ok(request)

    applicants = [{**APPLICANT, "age": a} for a in (30, 99, 40, 99, 50)]
    script = Script(strict)
    with make(script) as client:
        results = client.score_many(applicants, batch_size=5, on_error="collect")
        with pytest.raises(ValidationError) as info:
            client.score_many(applicants, batch_size=5)
    assert [f.index for f in results.failures] == [1, 3]
    assert results.failures[0].errors[0].applicant == 1  # re-indexed to the caller's input
    assert [s.inputs["age"] for s in results.scores] == [30, 40, 50]
    assert info.value.bad_indices == [1, 3]


def test_connection_errors_stop_score_many_even_in_collect_mode(waits: list[float]) -> None:
    script = Script(ok, refuse)
    with make(script) as client, pytest.raises(ConnectError):
        client.score_many([APPLICANT] * 4, batch_size=2, on_error="collect")


def test_async_client_retries_the_same_way(waits: list[float]) -> None:
    script = Script(status(429, retry_after="1.5"), refuse, ok)

    async def main() -> list[Score | Failure]:
        async with AsyncCreditExplainerClient(
            "http://api.test", transport=httpx.MockTransport(script), retry_policy=NO_JITTER
        ) as client:
            return list(await client.score_many([APPLICANT] * 3))

    results = asyncio.run(main())
    assert waits == [1.5, 1.0]  # Retry-After, then the second backoff step
    assert len(results) == 3 and all(isinstance(r, Score) for r in results)


def test_user_agent_api_key_and_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDIT_EXPLAINER_URL", "http://env.test/stage/")
    monkeypatch.setenv("CREDIT_EXPLAINER_API_KEY", "k-123")
    script = Script(ok)
    with CreditExplainerClient(transport=httpx.MockTransport(script)) as client:
        client.score(APPLICANT)
    request = script.requests[0]
    assert str(request.url) == "http://env.test/stage/score"
    assert request.headers["x-api-key"] == "k-123"
    from credit_explainer import __version__

    assert request.headers["user-agent"].startswith(f"credit-explainer-python/{__version__} ")
    monkeypatch.delenv("CREDIT_EXPLAINER_URL")
    with pytest.raises(ValueError, match="CREDIT_EXPLAINER_URL"):
        CreditExplainerClient()


def test_concurrent_batches_are_in_flight_together_and_results_keep_input_order() -> None:
    """Three requests must be open at once to pass the barrier (sequential sending would break it)."""
    import threading

    barrier = threading.Barrier(3, timeout=10)
    seen: list[int] = []

    def together(request: httpx.Request) -> httpx.Response:
        instances = json.loads(request.content)["instances"]
        if len(seen) < 3:
            seen.append(len(instances))
            barrier.wait()
        return ok(request)

    applicants = [{**APPLICANT, "age": 20 + i} for i in range(11)]
    with make(Script(together)) as client:
        calls: list[tuple[int, int]] = []
        results = client.score_many(
            applicants, batch_size=2, concurrency=3, progress=lambda d, t: calls.append((d, t))
        )
    assert [s.inputs["age"] for s in results.scores] == [20 + i for i in range(11)]
    assert [s.index for s in results.scores] == list(range(11))
    assert calls[0] == (0, 11) and calls[-1] == (11, 11) and len(calls) == 7
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_async_concurrent_batches_keep_input_order() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if (answer := schema_answer(request)) is not None:
            return answer
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)  # let the other tasks start their requests
        await asyncio.sleep(0)
        in_flight -= 1
        return ok(request)

    async def main() -> list[Score | Failure]:
        async with AsyncCreditExplainerClient(
            "http://api.test", transport=httpx.MockTransport(handler)
        ) as client:
            return list(
                await client.score_many(
                    [{**APPLICANT, "age": 30 + i} for i in range(9)], batch_size=2, concurrency=4
                )
            )

    results = asyncio.run(main())
    assert peak == 4
    assert [r.inputs["age"] for r in results if isinstance(r, Score)] == [30 + i for i in range(9)]


def test_a_fatal_error_under_concurrency_is_raised(waits: list[float]) -> None:
    script = Script(ok, refuse)
    with make(script) as client, pytest.raises(ConnectError):
        client.score_many([APPLICANT] * 8, batch_size=2, concurrency=2, on_error="collect")


# -- the schema the API serves -------------------------------------------------------------------



def lender_api(request: httpx.Request) -> httpx.Response:
    """An API serving another lender's schema: echoes ids and category texts as the real one."""
    if request.url.path.endswith("/schema"):
        return httpx.Response(200, json=LENDER)
    results = []
    for i, inst in enumerate(json.loads(request.content)["instances"]):
        e = explanation_dict(0.3, 0.1, [inst["housing"], inst["late_payments"]], [0.15, 0.05],
                             ["housing", "late_payments"])
        ids = {"application_ref": inst["application_ref"]} if inst.get("application_ref") else None
        results.append({"index": i, **e, "ids": ids})
    return httpx.Response(200, json={"request_id": "r", "model_version": "m", "results": results})


def test_the_schema_is_fetched_once_per_client_and_validates_before_sending() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return lender_api(request)

    with CreditExplainerClient("http://api.test/v1", transport=httpx.MockTransport(handler)) as c:
        score = c.score({"housing": "own", "late_payments": 2, "application_ref": "A-1"})
        with pytest.raises(InvalidApplicantError) as caught:
            c.score({"housing": "castle", "late_payments": 2})
        results = c.score_many([["rent", 0], {"housing": "own", "late_payments": 1,
                                              "application_ref": 7}])
    assert seen == ["GET /v1/schema", "POST /v1/score", "POST /v1/score"]  # nothing for the bad one
    assert [(e.applicant, e.field) for e in caught.value.errors] == [(0, "housing")]
    assert score.ids == {"application_ref": "A-1"} and score.inputs == {"housing": "own",
                                                                         "late_payments": 2.0}
    assert [r.code for r in score.reasons()] == ["H1", "L1"]  # the schema's texts, computed here
    assert [s.ids for s in results.scores] == [None, {"application_ref": "7"}]
    assert results.to_records()[1]["application_ref"] == "7"


def test_an_api_without_get_schema_serves_the_built_in_schema() -> None:
    script = Script(ok)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/schema"):
            return httpx.Response(403, json={"message": "Missing Authentication Token"})
        return script(request)

    with CreditExplainerClient("http://api.test", transport=httpx.MockTransport(handler)) as c:
        assert c.score(APPLICANT).probability > 0
        assert c.schema() is BUILTIN


def test_a_schema_the_client_cannot_use_is_an_api_response_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**LENDER, "features": []})

    with CreditExplainerClient("http://api.test", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(APIResponseError, match=r"schema cannot be used.*features"):
            c.score({"housing": "own", "late_payments": 1})
