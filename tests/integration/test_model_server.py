"""The model server over real HTTP: the container contract and the SageMaker Runtime API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import payloads, runtime_client
from credit_model.handlers import transform


def test_ping(model_server: Any, synthetic_model: Any) -> None:
    response = httpx.get(f"{model_server.url}/ping")
    assert response.status_code == 200
    assert response.json()["model_version"] == synthetic_model.version


def test_every_shape_over_http_matches_the_handlers(
    model_server: Any, synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    expected = json.loads(
        transform(synthetic_model, json.dumps(sample_applicants), "application/json", None)[0]
    )
    with httpx.Client(base_url=model_server.url) as client:
        for name, (body, ctype) in payloads(sample_applicants).items():
            response = client.post(
                "/invocations",
                content=body,
                headers={"content-type": ctype, "accept": "application/json"},
            )
            assert response.status_code == 200, (name, response.text)
            assert response.headers["content-type"].startswith("application/json")
            assert response.json() == expected, name


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{oops", {"content-type": "application/json"}, 400, "malformed_request"),
        (b"<a/>", {"content-type": "application/xml"}, 415, "unsupported_media_type"),
        (b"[]", {"content-type": "application/json", "accept": "image/png"}, 406, "not_acceptable"),
        (
            json.dumps({"age": 40}).encode(),
            {"content-type": "application/json"},
            422,
            "validation_error",
        ),
    ],
)
def test_http_errors_are_json_without_stack_traces(
    model_server: Any, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = httpx.post(f"{model_server.url}/invocations", content=body, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["request_id"]
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_body_limit_is_413(synthetic_model: Any) -> None:
    from credit_explainer_tools.local.stack import ModelServer

    with ModelServer(synthetic_model, max_body_bytes=1_000) as server:
        response = httpx.post(
            f"{server.url}/invocations",
            content=b"[" + b" " * 5_000 + b"]",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.fixture()
def runtime(model_server: Any) -> Any:
    return runtime_client(model_server.url)


def test_boto3_invoke_endpoint(
    runtime: Any, model_server: Any, synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    body = json.dumps(json.dumps(sample_applicants))  # the original blog's double encoding
    response = runtime.invoke_endpoint(
        EndpointName=model_server.endpoint_name,
        Body=body,
        ContentType="application/json",
        Accept="application/json",
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    expected = json.loads(
        transform(synthetic_model, json.dumps(sample_applicants), "application/json", None)[0]
    )
    assert json.loads(response["Body"].read()) == expected


def test_boto3_gets_model_error_for_a_bad_payload(
    runtime: Any, model_server: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(
            EndpointName=model_server.endpoint_name,
            Body=json.dumps([sample_applicants[0], dict(sample_applicants[0], DebtRatio=-3)]),
            ContentType="application/json",
        )
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 422
    details = json.loads(error["OriginalMessage"])["error"]["details"]
    assert [(d["applicant"], d["field"]) for d in details] == [(1, "DebtRatio")]


def test_boto3_gets_validation_error_for_an_unknown_endpoint(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="not found"):
        runtime.invoke_endpoint(
            EndpointName="no-such-endpoint", Body=b"{}", ContentType="application/json"
        )


def test_custom_attributes_bands_put_a_decision_in_every_answer(
    runtime: Any, model_server: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    many = (sample_applicants * 30)[:60]  # past the bulk size: the column-wise answer too
    for applicants in (sample_applicants, many):
        answers = {}
        for accept in ("application/json", "application/jsonlines"):
            response = runtime.invoke_endpoint(
                EndpointName=model_server.endpoint_name,
                Body=json.dumps(applicants),
                ContentType="application/json",
                Accept=accept,
                CustomAttributes="trace=7; decision_thresholds=approve:0.05,review:0.2,decline",
            )
            text = response["Body"].read().decode()
            answers[accept] = (
                json.loads(text)["predictions"]
                if accept == "application/json"
                else [json.loads(line) for line in text.splitlines()]
            )
        for explanations in answers.values():
            assert len(explanations) == len(applicants)
            for e in explanations:
                p = e["probability"]
                assert e["decision"] == ("approve" if p < 0.05 else "review" if p < 0.2 else "decline")


def test_malformed_bands_in_custom_attributes_are_a_400_naming_the_attribute(
    model_server: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    response = httpx.post(
        f"{model_server.url}/invocations",
        json=sample_applicants,
        headers={"X-Amzn-SageMaker-Custom-Attributes": "decision_thresholds=approve:0.3,review:0.1,x"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_request"
    assert error["message"].startswith("custom attribute decision_thresholds: bounds must be")
    plain = httpx.post(f"{model_server.url}/invocations", json=sample_applicants)
    assert all("decision" not in e for e in plain.json()["predictions"])
