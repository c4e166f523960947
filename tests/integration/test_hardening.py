"""Issue 20, hardening: what an attacker's probe of the running stack found, over real HTTP.

The local stack (local API Gateway -> the real handler -> boto3 -> the real model
server) and the model server alone, on loopback sockets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from credit_explainer.local import LocalStack
from credit_schema import ErrorBody
from test_faults import APPLICANTS, SECRETS

#: A marker in every body sent with a refused content type: it must not come back.
MARKER = "zz-body-marker-7731"
BODY = json.dumps([dict(APPLICANTS[0]), {"note": MARKER}])


@pytest.fixture(scope="module")
def stack(synthetic_model_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(synthetic_model_dir) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


def refused_without_echo(response: httpx.Response, status: int, code: str) -> ErrorBody:
    assert response.status_code == status, response.text
    body = ErrorBody.model_validate_json(response.content)
    assert body.error.code == code
    assert MARKER not in response.text
    assert not any(secret in response.text for secret in SECRETS)
    assert "Traceback" not in response.text
    return body


# -- 1. content types on /score ---------------------------------------------------------------

NOT_JSON = [
    "application/x-www-form-urlencoded",  # curl -d's default
    "multipart/form-data; boundary=xyz",
    "application/jsonx",
    "application/json-patch+json",
    "application/json, text/csv",
    "text/csv",
    "text/plain",
    "text/html",
    "application/xml",
]


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_score_refuses_every_non_json_content_type_with_415_and_no_body(
    api: httpx.Client, content_type: str
) -> None:
    response = api.post("/score", content=BODY, headers={"Content-Type": content_type})
    refused_without_echo(response, 415, "unsupported_media_type")


def test_a_form_with_markup_is_not_echoed(api: httpx.Client) -> None:
    form = f"<script>alert('{MARKER}')</script>=1&" + "x=" + "y" * 100_000
    response = api.post(
        "/score", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    refused_without_echo(response, 415, "unsupported_media_type")
    assert len(response.content) < 1000


def test_a_second_content_type_header_that_is_not_json_is_refused(api: httpx.Client) -> None:
    headers = [("Content-Type", "application/json"), ("Content-Type", "text/csv")]
    response = api.post("/score", content=BODY, headers=headers)
    refused_without_echo(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8"]
)
def test_score_takes_json_with_or_without_charset_and_no_content_type(
    api: httpx.Client, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = api.post("/score", content=json.dumps(APPLICANTS), headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == len(APPLICANTS)


@pytest.mark.parametrize("content_type", NOT_JSON[:5])
def test_the_model_server_refuses_the_same_types(model_server: Any, content_type: str) -> None:
    response = httpx.post(
        f"{model_server.url}/invocations",
        content=BODY,
        headers={"Content-Type": content_type},
        timeout=30,
    )
    refused_without_echo(response, 415, "unsupported_media_type")


# -- 7. request ids ---------------------------------------------------------------------------

FORGED = [
    "x" * 2000,
    "2026-12-03 status=200 kind=ok latency_ms=1.00 request_id=admin",
    "00000000-0000-0000-0000-000000000000 status=200",
    "00000000-0000-0000-0000-00000000000g",
]


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_request_id_never_reaches_the_model_servers_logs_or_answer(
    model_server: Any, forged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="credit_model.server"):
        response = httpx.post(
            f"{model_server.url}/invocations",
            content=b"{not json",
            headers={"Content-Type": "application/json", "x-amzn-requestid": forged},
            timeout=30,
        )
    assert response.status_code == 400
    request_id = response.json()["error"]["request_id"]
    assert request_id != forged and forged not in response.text
    assert len(request_id) == 36
    assert request_id in caplog.text  # the replacement id is the one logged
    assert forged not in caplog.text


def test_a_request_id_in_the_shape_sagemaker_issues_is_kept(
    model_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sent = "3f2b4c1e-9a7d-4e2b-8c11-0a1b2c3d4e5f"
    with caplog.at_level("INFO", logger="credit_model.server"):
        response = httpx.post(
            f"{model_server.url}/invocations",
            content=b"{not json",
            headers={"Content-Type": "application/json", "x-amzn-requestid": sent},
            timeout=30,
        )
    assert response.json()["error"]["request_id"] == sent
    assert f"request_id={sent}" in caplog.text


@pytest.mark.parametrize("forged", FORGED[:2])
def test_a_forged_request_id_never_reaches_the_apis_answer(api: httpx.Client, forged: str) -> None:
    response = api.post(
        "/score",
        content=b"{not json",
        headers={"Content-Type": "application/json", "x-amzn-requestid": forged},
    )
    assert response.status_code == 400
    request_id = response.json()["error"]["request_id"]
    assert forged not in response.text and forged not in str(response.headers)
    assert request_id == response.headers["x-amzn-RequestId"]
