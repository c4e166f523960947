"""The scoring Lambda's request side, error paths and response checks.

Events are the API Gateway fixtures in events/ (from ``sam local generate-event``),
loaded and edited per test. Each handler instance is a fresh cold start of the
real ``scoring_api.app`` with its own environment (:class:`LambdaEnvironment`).
What needs SageMaker itself (throttling, not-ready, the control plane's
DescribeEndpoint) goes through botocore's ``Stubber``, which validates every
request against the service model; the real model server is used in
tests/integration.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import math
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from conftest import LENDER_SCHEMA as LENDER
from credit_explainer_tools.local.gateway import LambdaEnvironment
from credit_explainer_tools.local.stack import handler_environment
from credit_schema import FEATURES, ErrorBody, explanation_dict
from credit_schema.edge import new_id
from scoring_api.config import ConfigurationError, DecisionBands, Settings

EVENTS = Path(__file__).resolve().parents[2] / "events"
ENDPOINT = "credit-explainer-local"


def load_event(name: str, **edits: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event.update(edits)
    return event


def with_body(event: dict[str, Any], body: str | None, **headers: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["body"], event["isBase64Encoded"] = body, False
    for name, value in headers.items():
        name = name.replace("_", "-")
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event


def body_of(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


def header(result: dict[str, Any], name: str) -> str | None:
    values = result.get("multiValueHeaders", {}).get(name)
    return values[0] if values else None


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    body = body_of(result)
    ErrorBody.model_validate(body)  # the one error shape
    assert "Traceback" not in result["body"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connections are refused


def make_env(closed_port: int, **env: str) -> LambdaEnvironment:
    return LambdaEnvironment(
        {
            **handler_environment(f"http://127.0.0.1:{closed_port}", endpoint_name=ENDPOINT),
            "SAGEMAKER_MAX_ATTEMPTS": "1",
            **env,
        }
    )


@pytest.fixture(scope="module")
def fn(closed_port: int) -> LambdaEnvironment:
    return make_env(closed_port, DECISION_THRESHOLDS="approve:0.1,review:0.3,decline")


@pytest.fixture
def runtime(fn: LambdaEnvironment) -> Iterator[Stubber]:
    with Stubber(fn.module.endpoint.runtime) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


APPLICANTS = json.loads(load_event("score-batch.json")["body"])


def model_answer(
    applicants: list[dict[str, Any]],
    *,
    break_additivity: bool = False,
    log_odds: bool = False,
    points: dict[str, Any] | None = None,
) -> bytes:
    """A ModelResponse as the container writes it (numbers chosen here, additivity exact;
    in log-odds, the probability is the logistic of base + SHAP values)."""
    predictions = []
    for i, a in enumerate(applicants):
        shap = [0.02 * (j - 4) * (i + 1) for j in range(len(FEATURES))]
        base = -2.5 if log_odds else 0.066
        p = base + sum(shap)
        if log_odds:
            p = 1.0 / (1.0 + math.exp(-p))
        if break_additivity:
            p += 0.05
        space = "log_odds" if log_odds else "probability"
        explanation = explanation_dict(p, base, [a[n] for n in FEATURES], shap, space=space)
        if points is not None:
            explanation["points"] = points
        predictions.append(explanation)
    return json.dumps({"model_version": "test-version", "predictions": predictions}).encode()


def stub_invoke(
    stubber: Stubber,
    body: bytes,
    applicants: list[dict[str, Any]] | None = None,
    inference_id: Any = ANY,
    extra_attributes: str = "",
) -> None:
    stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        {
            "EndpointName": ENDPOINT,
            "Body": json.dumps({"instances": applicants or APPLICANTS}).encode(),
            "ContentType": "application/json",
            "Accept": "application/json",
            "InferenceId": inference_id,
            # fn's DECISION_THRESHOLDS, handed to the model so that its capture holds the decision
            "CustomAttributes": "decision_thresholds=approve:0.1,review:0.3,decline"
            + extra_attributes,
        },
    )


# -- request validation -------------------------------------------------------------------------


def test_invalid_event_lists_every_problem_with_applicant_and_field(fn: LambdaEnvironment) -> None:
    event = load_event("score-invalid.json")
    result = fn.invoke(event)
    assert result["statusCode"] == 422
    error = error_of(result)
    assert error["code"] == "validation_error"
    # API Gateway's random id is replaced by a time-ordered one (it names its record's hour)
    assert uuid.UUID(error["request_id"]).version == 7
    problems = {(d["applicant"], d["field"], d["type"]) for d in error["details"]}
    assert problems == {
        (0, "age", "greater_than_equal"),
        (1, "Age", "extra_forbidden"),  # one problem: no "age missing" beside it
    }
    assert {d["field"]: d["message"] for d in error["details"]}["Age"] == (
        "unknown field; did you mean 'age'?"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"age": 45,', "malformed_request"),
        ("", "malformed_request"),
        ('"just a string"', "malformed_request"),
        ("[]", "malformed_request"),
        ("42", "malformed_request"),
    ],
)
def test_malformed_bodies_are_400(fn: LambdaEnvironment, body: str, code: str) -> None:
    result = fn.invoke(with_body(load_event("score-batch.json"), body))
    assert result["statusCode"] == 400, result["body"]
    assert error_of(result)["code"] == code


def test_body_that_is_not_base64_utf8_is_400(fn: LambdaEnvironment) -> None:
    event = load_event("score-single.json")
    event["body"] = base64.b64encode(b"\xff\xfe\x00garbage").decode()
    result = fn.invoke(event)
    assert result["statusCode"] == 400
    assert error_of(result)["code"] == "malformed_request"


def test_every_applicant_error_in_a_batch_is_reported(fn: LambdaEnvironment) -> None:
    bad = [dict(APPLICANTS[0], DebtRatio=-1), APPLICANTS[1], dict(APPLICANTS[2], age=True)]
    bad[1] = {k: v for k, v in bad[1].items() if k != "NumberOfDependents"}
    result = fn.invoke(with_body(load_event("score-batch.json"), json.dumps(bad)))
    assert result["statusCode"] == 422
    fields = {(d["applicant"], d["field"]) for d in error_of(result)["details"]}
    assert fields == {(0, "DebtRatio"), (1, "NumberOfDependents"), (2, "age")}


def test_limits_are_413(closed_port: int) -> None:
    small = make_env(closed_port, MAX_APPLICANTS="2", MAX_BODY_BYTES="600")
    result = small.invoke(with_body(load_event("score-batch.json"), json.dumps(APPLICANTS)))
    assert result["statusCode"] == 413
    assert "limit is 600 bytes" in error_of(result)["message"]
    compact = json.dumps({"instances": [[a[n] for n in FEATURES] for a in APPLICANTS]})
    assert len(compact) < 600
    result = small.invoke(with_body(load_event("score-batch.json"), compact))
    assert result["statusCode"] == 413
    assert "3 applicants" in error_of(result)["message"]


def test_csv_is_415(fn: LambdaEnvironment) -> None:
    event = with_body(load_event("score-batch.json"), "a,b\n1,2\n", Content_Type="text/csv")
    result = fn.invoke(event)
    assert result["statusCode"] == 415
    assert error_of(result)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("kind", ["APPLICATION/JSON", "Application/Json; charset=UTF-8"])
def test_media_types_are_case_insensitive(
    fn: LambdaEnvironment, runtime: Stubber, kind: str
) -> None:
    stub_invoke(runtime, model_answer(APPLICANTS))
    event = with_body(
        load_event("score-batch.json"), json.dumps(APPLICANTS), Content_Type=kind, Accept=kind
    )
    result = fn.invoke(event)
    assert result["statusCode"] == 200, result["body"]
    assert len(body_of(result)["results"]) == len(APPLICANTS)


def test_unknown_format_and_unacceptable_accept(fn: LambdaEnvironment) -> None:
    event = load_event("score-batch.json")
    event["queryStringParameters"] = {"format": "xml"}
    event["multiValueQueryStringParameters"] = {"format": ["xml"]}
    result = fn.invoke(event)
    assert result["statusCode"] == 422
    assert [d["field"] for d in error_of(result)["details"]] == ["format"]

    result = fn.invoke(
        with_body(load_event("score-batch.json"), json.dumps(APPLICANTS), Accept="text/html")
    )
    assert result["statusCode"] == 406


def test_unknown_route_is_404_in_the_error_shape(fn: LambdaEnvironment) -> None:
    event = load_event("health.json", path="/nope", resource="/nope")
    result = fn.invoke(event)
    assert result["statusCode"] == 404
    assert error_of(result)["code"] == "not_found"


# -- the model endpoint's failures ----------------------------------------------------------------


def test_unreachable_endpoint_is_503_with_retry_after(fn: LambdaEnvironment) -> None:
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 503
    assert header(result, "Retry-After") == "5"
    assert error_of(result)["code"] == "model_unavailable"
    health = fn.invoke(load_event("health.json"))
    assert health["statusCode"] == 503
    assert header(health, "Retry-After") == "5"


@pytest.mark.parametrize(
    ("code", "http", "status", "kind", "retry_after"),
    [
        ("ThrottlingException", 400, 429, "throttled", "1"),
        ("ModelNotReadyException", 429, 503, "model_unavailable", "5"),
        ("ServiceUnavailable", 503, 503, "model_unavailable", "5"),
        ("ModelError", 424, 502, "model_error", None),
        ("ValidationError", 400, 502, "endpoint_error", None),
        ("InternalFailure", 500, 502, "endpoint_error", None),
    ],
)
def test_sagemaker_errors_map_to_documented_statuses(
    fn: LambdaEnvironment,
    runtime: Stubber,
    code: str,
    http: int,
    status: int,
    kind: str,
    retry_after: str | None,
) -> None:
    runtime.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=http)
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == status
    assert error_of(result)["code"] == kind
    assert header(result, "Retry-After") == retry_after


def test_the_space_a_request_asks_for_is_sent_to_the_model(
    fn: LambdaEnvironment, runtime: Stubber
) -> None:
    stub_invoke(
        runtime, model_answer(APPLICANTS, log_odds=True), extra_attributes=";space=log_odds"
    )
    event = load_event("score-batch.json")
    event["queryStringParameters"] = {"space": "log_odds"}
    result = fn.invoke(event)
    assert result["statusCode"] == 200
    assert {r["space"] for r in json.loads(result["body"])["results"]} == {"log_odds"}
    event["queryStringParameters"] = {"space": "odds"}
    assert fn.invoke(event)["statusCode"] == 422


@pytest.mark.parametrize("log_odds", [False, True])
def test_an_explanation_in_log_odds_is_checked_there(
    fn: LambdaEnvironment, runtime: Stubber, log_odds: bool
) -> None:
    stub_invoke(runtime, model_answer(APPLICANTS, log_odds=log_odds))
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 200
    spaces = {r["space"] for r in json.loads(result["body"])["results"]}
    assert spaces == {"log_odds" if log_odds else "probability"}


@pytest.mark.parametrize("score", [612, 613])
def test_points_pass_through_only_when_they_sum_to_the_score(
    fn: LambdaEnvironment, runtime: Stubber, score: int
) -> None:
    features = dict.fromkeys(FEATURES, 1)
    points = {"score": score, "base": 602, "features": features}  # 602 + 10 = 612
    stub_invoke(runtime, model_answer(APPLICANTS, log_odds=True, points=points))
    result = fn.invoke(load_event("score-batch.json"))
    if score == 612:
        assert result["statusCode"] == 200
        assert all(r["points"] == points for r in json.loads(result["body"])["results"])
    else:
        assert result["statusCode"] == 502
        assert "points do not sum to the score" in error_of(result)["message"]


@pytest.mark.parametrize("log_odds", [False, True])
def test_an_explanation_that_does_not_add_up_is_refused(
    fn: LambdaEnvironment, runtime: Stubber, log_odds: bool
) -> None:
    stub_invoke(runtime, model_answer(APPLICANTS, break_additivity=True, log_odds=log_odds))
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 502
    error = error_of(result)
    assert error["code"] == "inconsistent_explanation"
    assert "does not add up" in error["message"]


@pytest.mark.parametrize(
    "answer",
    [
        b"not json",
        json.dumps({"model_version": "v", "predictions": []}).encode(),
        json.dumps({"predictions": "x"}).encode(),
    ],
)
def test_a_garbled_model_answer_is_502(
    fn: LambdaEnvironment, runtime: Stubber, answer: bytes
) -> None:
    stub_invoke(runtime, answer)
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 502
    assert error_of(result)["code"] == "bad_model_response"


def test_an_explanation_of_other_inputs_is_refused(fn: LambdaEnvironment, runtime: Stubber) -> None:
    shifted = [dict(a, age=a["age"] + 1) for a in APPLICANTS]
    stub_invoke(runtime, model_answer(shifted))
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 502
    assert error_of(result)["code"] == "inconsistent_explanation"


def test_read_timeout_is_504(closed_port: int) -> None:
    # A real listener that accepts and never answers: botocore's read timeout fires.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        slow = LambdaEnvironment(
            {
                **handler_environment(f"http://127.0.0.1:{port}", endpoint_name=ENDPOINT),
                "SAGEMAKER_READ_TIMEOUT": "0.3",
                "SAGEMAKER_MAX_ATTEMPTS": "1",
            }
        )
        result = slow.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 504
    assert error_of(result)["code"] == "model_timeout"


def test_an_unexpected_failure_is_500_without_a_trace(
    fn: LambdaEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(applicants: Any) -> Any:
        raise RuntimeError("secret internals at /var/task/scoring_api/app.py line 1")

    monkeypatch.setattr(fn.module.endpoint, "explain", boom)
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 500
    error = error_of(result)
    assert error["code"] == "internal_error"
    assert "secret" not in result["body"] and "/var/task" not in result["body"]


# -- responses ------------------------------------------------------------------------------------


def test_response_ranks_contributions_and_applies_decision_bands(
    fn: LambdaEnvironment, runtime: Stubber
) -> None:
    stub_invoke(runtime, model_answer(APPLICANTS))
    event = load_event("score-batch.json")
    result = fn.invoke(event)
    assert result["statusCode"] == 200, result["body"]
    assert header(result, "X-Model-Version") == "test-version"
    body = body_of(result)
    assert uuid.UUID(body["request_id"]).version == 7
    assert body["model_version"] == "test-version"
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    bands = DecisionBands.parse("approve:0.1,review:0.3,decline")
    for r, applicant in zip(body["results"], APPLICANTS, strict=True):
        shaps = [c["shap_value"] for c in r["contributions"]]
        assert [abs(s) for s in shaps] == sorted((abs(s) for s in shaps), reverse=True)
        assert r["base_value"] + sum(shaps) == pytest.approx(r["probability"], abs=1e-12)
        assert {c["feature"]: c["value"] for c in r["contributions"]} == {
            n: None if applicant[n] is None else float(applicant[n]) for n in FEATURES
        }
        assert r["decision"] == bands.decide(r["probability"])
    assert {r["decision"] for r in body["results"]} == {"review", "decline"}


def test_legacy_shape_by_query_and_by_accept(fn: LambdaEnvironment, runtime: Stubber) -> None:
    answer = model_answer(APPLICANTS)
    expected = json.loads(answer)["predictions"]
    for event in (
        load_event("score-legacy.json"),
        with_body(
            load_event("score-batch.json"),
            json.dumps(APPLICANTS),
            Accept="application/vnd.credit-explainer.legacy+json",
        ),
    ):
        stub_invoke(runtime, answer)
        result = fn.invoke(event)
        assert result["statusCode"] == 200
        assert header(result, "Content-Type") == "application/vnd.credit-explainer.legacy+json"
        legacy = body_of(result)
        assert set(legacy) == {"prediction", "shap_base", "shap_values"}
        assert legacy["prediction"] == [e["probability"] for e in expected]
        assert list(legacy["shap_values"]) == list(FEATURES)
        for i, e in enumerate(expected):
            by_feature = {c["feature"]: c["shap_value"] for c in e["contributions"]}
            assert [legacy["shap_values"][n][i] for n in FEATURES] == [
                by_feature[n] for n in FEATURES
            ]


def test_health_with_describe_endpoint(closed_port: int) -> None:
    fn = make_env(closed_port, HEALTH_CHECK="describe-endpoint", HEALTH_CACHE_SECONDS="0.001")
    fn.module.endpoint._control = boto3.client(
        "sagemaker",
        config=fn.module.endpoint.runtime.meta.config,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    with Stubber(fn.module.endpoint._control) as control:
        for status in ("InService", "Creating"):
            control.add_response(
                "describe_endpoint",
                {
                    "EndpointName": ENDPOINT,
                    "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
                    "EndpointConfigName": "c",
                    "EndpointStatus": status,
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "LastModifiedTime": "2026-01-01T00:00:00Z",
                },
                {"EndpointName": ENDPOINT},
            )
        control.add_client_error(
            "describe_endpoint", service_error_code="ValidationException", http_status_code=400
        )
        ok = fn.invoke(load_event("health.json"))
        assert ok["statusCode"] == 200
        assert body_of(ok)["status"] == "ok"
        threading.Event().wait(0.01)
        creating = fn.invoke(load_event("health.json"))
        assert creating["statusCode"] == 503
        assert "Creating" in error_of(creating)["message"]
        threading.Event().wait(0.01)
        missing = fn.invoke(load_event("health.json"))
        assert missing["statusCode"] == 503
        assert error_of(missing)["code"] == "endpoint_error"


def test_openapi_document_is_generated_from_the_schema(fn: LambdaEnvironment) -> None:
    event = load_event("health.json", path="/swagger", resource="/swagger")
    event["queryStringParameters"] = {"format": "json"}
    event["multiValueQueryStringParameters"] = {"format": ["json"]}
    result = fn.invoke(event)
    assert result["statusCode"] == 200
    doc = body_of(result)
    assert set(doc["paths"]) == {"/score", "/schema", "/health"}
    schemas = doc["components"]["schemas"]
    assert {"ScoreRequest", "Applicant", "ScoreResponse", "ErrorBody", "LegacyResponse"} <= set(
        schemas
    )
    assert list(schemas["Applicant"]["properties"]) == list(FEATURES)
    assert schemas["Applicant"]["additionalProperties"] is False
    responses = doc["paths"]["/score"]["post"]["responses"]
    assert {"200", "400", "413", "422", "429", "502", "503", "504"} <= set(responses)
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }


def test_logs_carry_no_applicant_values(fn: LambdaEnvironment, runtime: Stubber) -> None:
    # What the function writes to stdout (CloudWatch Logs in AWS), captured at its handler.
    handler = fn.module.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    marked = [dict(a, MonthlyIncome=98765.4321, DebtRatio=0.123456789) for a in APPLICANTS]
    try:
        invalid = [dict(marked[0], age=117.5)]
        fn.invoke(with_body(load_event("score-batch.json"), json.dumps(invalid)))
        double = json.dumps(json.dumps(marked))
        fn.invoke(with_body(load_event("score-batch.json"), double, Accept="text/html"))
        runtime.add_client_error(
            "invoke_endpoint", service_error_code="ModelError", http_status_code=424
        )
        fn.invoke(with_body(load_event("score-batch.json"), json.dumps(marked)))
        stub_invoke(runtime, model_answer(marked), marked)
        ok = fn.invoke(with_body(load_event("score-batch.json"), json.dumps(marked)))
    finally:
        handler.setStream(previous)
    assert ok["statusCode"] == 200 and "98765.4321" in ok["body"]  # the values were there
    logs = stream.getvalue()
    assert logs.count("request failed") == 3
    assert '"message":"scored"' in logs
    for value in ("98765", "0.123456789", "117.5"):
        assert value not in logs


def test_each_environment_logs_at_its_own_level(closed_port: int) -> None:
    # Powertools keeps one logger per process: a quiet stack made first must not silence the next.
    quiet = make_env(closed_port, POWERTOOLS_LOG_LEVEL="ERROR")
    assert not quiet.module.logger.isEnabledFor(logging.WARNING)
    loud = make_env(closed_port, POWERTOOLS_LOG_LEVEL="INFO")
    assert loud.module.logger.isEnabledFor(logging.INFO)


# -- configuration ---------------------------------------------------------------------------------


def test_decision_bands() -> None:
    bands = DecisionBands.parse("approve:0.1, review:0.3, decline")
    assert [bands.decide(p) for p in (0.0, 0.0999, 0.1, 0.29, 0.3, 1.0)] == [
        "approve",
        "approve",
        "review",
        "review",
        "decline",
        "decline",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DECISION_THRESHOLDS", "approve:0.3,review:0.1,decline"),
        ("DECISION_THRESHOLDS", "approve"),
        ("DECISION_THRESHOLDS", "approve:x,decline"),
        ("DECISION_THRESHOLDS", "approve:0.1,decline:1"),
        ("MAX_APPLICANTS", "0"),
        ("MAX_BODY_BYTES", "lots"),
        ("SAGEMAKER_READ_TIMEOUT", "nan"),
        ("AWS_RETRY_MODE", "legacy"),
        ("HEALTH_CHECK", "always"),
        ("ENABLE_SWAGGER", "maybe"),
    ],
)
def test_bad_configuration_fails_the_cold_start(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_metrics_are_emitted_as_emf_and_not_kept_when_disabled(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("score-invalid.json")
    enabled = make_env(closed_port, POWERTOOLS_METRICS_DISABLED="false")
    capsys.readouterr()
    enabled.invoke(event)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {
        m["Name"]
        for record in emf
        for d in record["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert {"Requests", "Errors", "ErrorsByKind"} <= names
    by_kind = next(r for r in emf if "ErrorsByKind" in r)
    assert by_kind["ErrorKind"] == "validation_error"

    disabled = make_env(closed_port)  # the local stack's default: POWERTOOLS_METRICS_DISABLED=true
    for _ in range(120):  # Powertools would print a kept metric set at 100 values
        disabled.invoke(event)
        assert disabled.module.metrics.metric_set == {}
    assert '"_aws"' not in capsys.readouterr().out


# -- reasons and data capture (issue 18) ----------------------------------------------------------


def with_reasons(answer: bytes, reasons: Any, version: str = "lender-7") -> bytes:
    parsed = json.loads(answer)
    parsed["reason_codes_version"] = version
    for p in parsed["predictions"]:
        p["reasons"] = reasons
    return json.dumps(parsed).encode()


def test_the_model_s_reasons_pass_through_unchanged_with_the_request_id_as_inference_id(
    fn: LambdaEnvironment, runtime: Stubber
) -> None:
    event = load_event("score-batch.json")
    event["requestContext"]["requestId"] = new_id()  # time-ordered, as the local gateway's: kept
    reasons = [{"code": "X1", "text": "Lender's text", "feature": "DebtRatio", "shap_value": 0.5}]
    stub_invoke(
        runtime,
        with_reasons(model_answer(APPLICANTS), reasons),
        inference_id=event["requestContext"]["requestId"],
    )
    result = fn.invoke(event)
    assert result["statusCode"] == 200, result["body"]
    body = body_of(result)
    assert body["reason_codes_version"] == "lender-7"
    assert [r["reasons"] for r in body["results"]] == [reasons] * len(APPLICANTS)


@pytest.mark.parametrize(
    "reasons",
    [
        "DebtRatio",
        [{"code": "X", "text": "t", "feature": "shoe_size", "shap_value": 0.1}],
        [{"code": "X", "text": "t", "feature": "DebtRatio"}],
        [{"code": "X", "text": "t", "feature": "DebtRatio", "shap_value": 0.1}] * 5,
    ],
)
def test_malformed_reasons_from_the_model_are_502(
    fn: LambdaEnvironment, runtime: Stubber, reasons: Any
) -> None:
    stub_invoke(runtime, with_reasons(model_answer(APPLICANTS), reasons))
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 502
    assert error_of(result)["code"] == "bad_model_response"


def test_a_model_without_reasons_still_answers_without_them(
    fn: LambdaEnvironment, runtime: Stubber
) -> None:
    stub_invoke(runtime, model_answer(APPLICANTS))
    body = body_of(fn.invoke(load_event("score-batch.json")))
    assert body["reason_codes_version"] is None
    assert all("reasons" not in r or r["reasons"] is None for r in body["results"])


# -- the decision recorded by the model (issue 18, item 0) ---------------------------------------


def with_decisions(answer: bytes, decide: Any) -> bytes:
    parsed = json.loads(answer)
    for p in parsed["predictions"]:
        p["decision"] = decide(p["probability"])
    return json.dumps(parsed).encode()


def test_the_model_s_recorded_decision_must_be_the_api_s(
    fn: LambdaEnvironment, runtime: Stubber
) -> None:
    bands = fn.module.settings.decision_bands
    stub_invoke(runtime, with_decisions(model_answer(APPLICANTS), bands.decide))
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 200, result["body"]
    sent = [r["decision"] for r in body_of(result)["results"]]
    probabilities = [r["probability"] for r in body_of(result)["results"]]
    assert sent == [
        "approve" if p < 0.1 else "review" if p < 0.3 else "decline" for p in probabilities
    ]

    stub_invoke(runtime, with_decisions(model_answer(APPLICANTS), lambda p: "approve"))
    result = fn.invoke(load_event("score-batch.json"))
    assert result["statusCode"] == 502
    assert "recorded the decision 'approve'" in error_of(result)["message"]


def test_bands_that_cannot_travel_in_custom_attributes_refuse_the_cold_start(
    closed_port: int,
) -> None:
    with pytest.raises(Exception, match="plain ASCII"):
        make_env(closed_port, DECISION_THRESHOLDS="approuvé:0.1,refusé").invoke(
            load_event("score-batch.json")
        )


def test_reasons_against_the_cutoff_need_decision_bands() -> None:
    from scoring_api.config import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="REASONS_REFERENCE"):
        Settings.from_env({"REASONS_REFERENCE": "cutoff"})
    with pytest.raises(ConfigurationError, match="REASONS_REFERENCE"):
        Settings.from_env({"REASONS_REFERENCE": "median", "DECISION_THRESHOLDS": "a:0.1,b"})
    settings = Settings.from_env({"REASONS_REFERENCE": "cutoff", "DECISION_THRESHOLDS": "a:0.1,b"})
    assert settings.reasons_reference == "cutoff"


# -- another lender's schema ------------------------------------------------------------------------



def test_a_schema_file_the_api_cannot_use_fails_the_cold_start(tmp_path: Path) -> None:
    bad = tmp_path / "schema.json"
    bad.write_text(json.dumps({**LENDER, "features": []}))
    with pytest.raises(ConfigurationError, match=r"CREDIT_EXPLAINER_SCHEMA: .*features"):
        Settings.from_env({"CREDIT_EXPLAINER_SCHEMA": str(bad)}).schema()
    with pytest.raises(ConfigurationError, match=r"CREDIT_EXPLAINER_SCHEMA: .*cannot read"):
        Settings.from_env({"CREDIT_EXPLAINER_SCHEMA": str(tmp_path / "none.json")}).schema()
    assert Settings.from_env({}).schema().features == tuple(FEATURES)  # unset: the built-in


@pytest.mark.parametrize(
    ("answered", "code"),
    [
        ({}, None),
        ({"ids": {"application_ref": "B-2"}}, "inconsistent_explanation"),
        ({"ids": None}, "inconsistent_explanation"),
        ({"housing": "rent"}, "inconsistent_explanation"),
        ({"housing": 1.0}, "inconsistent_explanation"),
    ],
    ids=["echoed", "other ids", "no ids", "other category", "a code for a category"],
)
def test_explanations_are_checked_against_the_served_schema(
    answered: dict[str, Any], code: str | None
) -> None:
    from credit_schema import compile_schema, parse_schema
    from scoring_api.endpoint import BadModelResponseError, check_response

    schema = compile_schema(parse_schema(LENDER))
    sent = {"housing": "own", "late_payments": 2, "application_ref": "A-1"}
    housing = answered.get("housing", "own")
    e = explanation_dict(0.3, 0.1, [housing, 2.0], [0.15, 0.05], schema.features)
    e["ids"] = answered.get("ids", {"application_ref": "A-1"})
    body = json.dumps({"model_version": "m", "predictions": [e]}).encode()
    if code is None:
        _, explanations, _ = check_response(body, [sent], None, schema)
        assert explanations[0]["ids"] == {"application_ref": "A-1"}
        assert [c["value"] for c in explanations[0]["contributions"]] == ["own", 2.0]
        return
    with pytest.raises(BadModelResponseError) as caught:
        check_response(body, [sent], None, schema)
    assert caught.value.code == code
