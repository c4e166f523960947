"""The whole chain over real loopback HTTP: client -> local API Gateway -> the handler ->
boto3 sagemaker-runtime -> the model server, and the built Lambda bundle against the same server."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from credit_explainer_tools.local import LocalStack, handler_environment
from credit_explainer_tools.local.gateway import LambdaEnvironment
from credit_schema import FEATURES, ScoreResponse
from test_sam_build import BUILD_X86, EVENTS, run_built_handler

KEY = "test-api-key"
BATCH: list[dict[str, Any]] = json.loads(
    json.loads((EVENTS / "score-batch.json").read_text())["body"]
)
SINGLE = json.loads(
    base64.b64decode(json.loads((EVENTS / "score-single.json").read_text())["body"])
)
EXPECTED_STATUS = {
    "score-single.json": 200,
    "score-batch.json": 200,
    "score-double-encoded.json": 200,
    "score-columns.json": 200,
    "score-legacy.json": 200,
    "score-invalid.json": 422,
    "health.json": 200,
    "get-schema.json": 200,
}


@pytest.fixture(scope="module")
def stack(synthetic_model_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(synthetic_model_dir, api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"x-api-key": KEY}, timeout=30) as client:
        yield client


def results(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    parsed = ScoreResponse.model_validate_json(response.content)
    return [r.model_dump() for r in parsed.results]


def numbers(rs: list[dict[str, Any]]) -> list[tuple[float, float, dict[str, float]]]:
    return [
        (
            r["probability"],
            r["base_value"],
            {c["feature"]: c["shap_value"] for c in r["contributions"]},
        )
        for r in rs
    ]


def test_one_applicant_through_the_whole_chain_equals_the_model_server(
    stack: LocalStack, http: httpx.Client
) -> None:
    response = http.post("/score", json=SINGLE)
    assert response.headers["x-amzn-RequestId"]
    [result] = results(response)
    body = response.json()
    assert body["request_id"] == response.headers["x-amzn-RequestId"]
    # The same applicant straight to the model server with boto3: the API adds nothing, loses nothing.
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=stack.model_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    direct = json.loads(
        runtime.invoke_endpoint(
            EndpointName="credit-explainer-local",
            Body=json.dumps(SINGLE),
            ContentType="application/json",
            Accept="application/json",
        )["Body"].read()
    )
    assert body["model_version"] == direct["model_version"]
    [explanation] = direct["predictions"]
    assert result["probability"] == explanation["probability"]
    assert result["base_value"] == explanation["base_value"]
    assert result["contributions"] == explanation["contributions"]
    total = result["base_value"] + sum(c["shap_value"] for c in result["contributions"])
    assert abs(total - result["probability"]) <= 1e-9
    assert {c["feature"]: c["value"] for c in result["contributions"]} == {
        n: None if SINGLE[n] is None else float(SINGLE[n]) for n in FEATURES
    }


def test_the_blogs_double_encoded_request_gives_the_same_numbers_as_the_plain_one(
    http: httpx.Client,
) -> None:
    plain = numbers(results(http.post("/score", json=BATCH)))
    assert len(plain) == len(BATCH)
    shapes = {
        "double-encoded": json.dumps(json.dumps(BATCH)),
        "instances": json.dumps({"instances": BATCH}),
        "value lists": json.dumps([[a[n] for n in FEATURES] for a in BATCH]),
        "columns": json.dumps({n: {str(i): a[n] for i, a in enumerate(BATCH)} for n in FEATURES}),
    }
    for name, body in shapes.items():
        got = http.post(
            "/score", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert numbers(results(got)) == plain, name
    # The original blog's client: requests.post(url, data=json.dumps(df.to_json(orient="records")))
    blog = http.post("/score", content=json.dumps(json.dumps(BATCH)).encode())
    assert numbers(results(blog)) == plain


def test_legacy_shape_over_http(http: httpx.Client) -> None:
    plain = results(http.post("/score", json=BATCH))
    legacy = http.post("/score", params={"format": "legacy"}, json=BATCH)
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/vnd.credit-explainer.legacy+json"
    body = legacy.json()
    assert body["prediction"] == [r["probability"] for r in plain]
    for i, r in enumerate(plain):
        by_feature = {c["feature"]: c["shap_value"] for c in r["contributions"]}
        assert {n: body["shap_values"][n][i] for n in FEATURES} == by_feature


def test_validation_errors_over_http_name_applicant_and_field(http: httpx.Client) -> None:
    bad = [BATCH[0], dict(BATCH[1], age=17), {**BATCH[2], "Age": 40}]
    response = http.post("/score", json=bad)
    assert response.status_code == 422
    details = {(d["applicant"], d["field"]) for d in response.json()["error"]["details"]}
    assert details == {(1, "age"), (2, "Age")}


def test_api_gateway_behaviour(stack: LocalStack, http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    anonymous = httpx.post(f"{stack.api_url}/score", json=SINGLE)
    assert (anonymous.status_code, anonymous.json()) == (403, {"message": "Forbidden"})
    wrong = httpx.post(f"{stack.api_url}/score", json=SINGLE, headers={"x-api-key": "nope"})
    assert wrong.status_code == 403
    missing = http.get("/score")
    assert (missing.status_code, missing.json()) == (
        403,
        {"message": "Missing Authentication Token"},
    )
    huge = http.post("/score", content=b"[" + b" " * (11 * 1024 * 1024) + b"]")
    assert (huge.status_code, huge.json()) == (413, {"message": "Request Too Long"})


def test_every_event_through_the_handler_against_the_model_server(stack: LocalStack) -> None:
    fn = LambdaEnvironment(handler_environment(stack.model_url))
    got = {p.name: fn.invoke(json.loads(p.read_text())) for p in sorted(EVENTS.glob("*.json"))}
    assert {name: r["statusCode"] for name, r in got.items()} == EXPECTED_STATUS
    batch = json.loads(got["score-batch.json"]["body"])["results"]
    for name in ("score-double-encoded.json", "score-columns.json"):
        assert numbers(json.loads(got[name]["body"])["results"]) == numbers(batch), name
    single = json.loads(got["score-single.json"]["body"])["results"]
    assert numbers(single) == numbers(batch[:1])


def test_the_built_bundle_scores_every_event_against_the_model_server(stack: LocalStack) -> None:
    report = run_built_handler(
        BUILD_X86,
        {
            "ENDPOINT_NAME": "credit-explainer-local",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": stack.model_url,
            "HEALTH_CHECK": "ping",
        },
        sorted(EVENTS.glob("*.json")),
    )
    statuses = {name: r["status"] for name, r in report["results"].items()}
    assert statuses == EXPECTED_STATUS
    in_process = LambdaEnvironment(handler_environment(stack.model_url)).invoke(
        json.loads((EVENTS / "score-double-encoded.json").read_text())
    )
    built = json.loads(report["results"]["score-double-encoded.json"]["body"])["results"]
    assert numbers(built) == numbers(json.loads(in_process["body"])["results"])


def test_credit_explainer_up_serves_and_stops_on_ctrl_c(synthetic_model_dir: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "credit_explainer",
            "up",
            "--model-dir",
            str(synthetic_model_dir),
            "--port",
            "0",
            "--model-port",
            "0",
            "--api-key",
            KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        api = next(line.split()[2] for line in lines if line.startswith("scoring API"))
        model = next(line.split()[2] for line in lines if line.startswith("model server"))
        assert httpx.get(f"{model}/ping").status_code == 200
        scored = httpx.post(f"{api}/score", json=SINGLE, headers={"x-api-key": KEY}, timeout=30)
        assert scored.status_code == 200
        assert httpx.post(f"{api}/score", json=SINGLE).status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    # By default a request that went well prints nothing: no JSON line per request.
    assert proc.stderr is not None and proc.stdout is not None
    assert proc.stdout.read() == "" and proc.stderr.read() == "stopping\n"


def test_demo_scores_through_the_api(
    synthetic_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from credit_explainer_tools.local import EXAMPLE_DECISION_THRESHOLDS
    from credit_explainer_tools.local.demo import demo

    assert demo(synthetic_model_dir) == 0
    out = capsys.readouterr().out
    assert "POST /score (3 applicants) -> 200" in out
    assert out.count("base value + contributions") == 3
    # The SDK's renderer (print(score)), with the example thresholds' decisions.
    assert out.count("probability of serious delinquency within 2 years: ") == 3
    assert "decision approve" in out and "decision decline" in out
    assert f"example thresholds {EXAMPLE_DECISION_THRESHOLDS}" in out
    assert "same probabilities: True" in out
    assert "invalid applicant -> 422" in out
    # It ends by saying what to do next, ready to paste.
    steps = out.split("\nnext:\n", 1)[1]
    assert f"credit-explainer up --model-dir {synthetic_model_dir} --decision-thresholds" in steps
    assert "credit-explainer score applicants.csv --url http://127.0.0.1:3000" in steps


def test_demo_on_the_ports_asked_for(
    synthetic_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from credit_explainer.cli import main

    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        api, model = a.getsockname()[1], b.getsockname()[1]
    argv = ["demo", "--model-dir", str(synthetic_model_dir), "--port", str(api)]
    assert main([*argv, "--model-port", str(model)]) == 0
    out = capsys.readouterr().out
    assert f"scoring API http://127.0.0.1:{api}, model server http://127.0.0.1:{model}" in out
