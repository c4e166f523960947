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
import test_limits_memory
from credit_explainer_tools.local import LocalStack
from credit_schema import ErrorBody
from test_faults import APPLICANTS, SECRETS
from test_limits_memory import MiB, chunks

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


# -- 4. tampered metadata.json, re-signed -----------------------------------------------------

TAMPERED_METADATA: dict[str, Any] = {
    "invalid-json": b'{"format_version": 1,',
    "a-list": b"[1, 2, 3]",
    "not-utf-8": b'{"format_version": 1, "model_version": "\xff\xfe"}',
    "features-not-a-list": {"features": 5},
    "library-versions-a-list": {"library_versions": ["scikit-learn"]},
    "library-version-a-number": {"library_versions": {"scikit-learn": 1.5}},
    "format-version-a-string": {"format_version": "1"},
    "model-sha-a-list": {"model_sha256": ["x"]},
}


def tampered_copy(model_dir: Path, tmp_path: Path, damage: str) -> Path:
    """The model directory with metadata.json changed and re-signed in manifest.json."""
    import shutil

    from credit_model.artifacts import MANIFEST_FILE, METADATA_FILE, sha256_file

    d = tmp_path / damage
    shutil.copytree(model_dir, d)
    change = TAMPERED_METADATA[damage]
    if isinstance(change, bytes):
        (d / METADATA_FILE).write_bytes(change)
    else:
        meta = json.loads((d / METADATA_FILE).read_text())
        (d / METADATA_FILE).write_text(json.dumps({**meta, **change}))
    manifest = json.loads((d / MANIFEST_FILE).read_text())
    manifest["files"][METADATA_FILE] = sha256_file(d / METADATA_FILE)
    (d / MANIFEST_FILE).write_text(json.dumps(manifest))
    return d


@pytest.mark.parametrize("damage", sorted(TAMPERED_METADATA))
def test_tampered_metadata_is_refused_with_model_artifact_error(
    synthetic_model_dir: Path, tmp_path: Path, damage: str
) -> None:
    from credit_model import artifacts

    d = tampered_copy(synthetic_model_dir, tmp_path, damage)
    with pytest.raises(artifacts.ModelArtifactError, match=r"metadata\.json.*refusing to load"):
        artifacts.load(d)


@pytest.mark.parametrize("command", ["serve-model", "up"])
@pytest.mark.parametrize("damage", ["invalid-json", "a-list", "not-utf-8", "features-not-a-list"])
def test_serve_model_and_up_refuse_tampered_metadata_with_one_error_line(
    synthetic_model_dir: Path, tmp_path: Path, damage: str, command: str
) -> None:
    import subprocess
    import sys

    d = tampered_copy(synthetic_model_dir, tmp_path, damage)
    ports = ["--port", "0"] if command == "serve-model" else ["--port", "0", "--model-port", "0"]
    proc = subprocess.run(
        [sys.executable, "-m", "credit_explainer", command, "--model-dir", str(d), *ports],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "metadata.json" in lines[0] and "refusing to load" in lines[0]


def test_up_refuses_a_model_that_does_not_match_its_manifest_without_a_traceback(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    import shutil
    import subprocess
    import sys

    d = tmp_path / "flipped"
    shutil.copytree(synthetic_model_dir, d)
    blob = bytearray((d / "model.skops").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (d / "model.skops").write_bytes(bytes(blob))
    proc = subprocess.run(
        [sys.executable, "-m", "credit_explainer", "up", "--model-dir", str(d), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "does not match its SHA-256" in proc.stderr


# -- 6. the local gateway refuses at the function's own limit, unbuffered --------------------

stack_process = test_limits_memory.stack_process  # the stack in a child process, its RSS


def test_the_gateway_refuses_concurrent_bodies_over_the_functions_limit_unbuffered(
    stack_process: tuple[str, Any],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from credit_schema import DEFAULT_MAX_BODY_BYTES

    url, process = stack_process
    body = b" " * int(9.9 * MiB)  # under API Gateway's 10 MiB, over the function's 6 MiB
    with httpx.Client(timeout=60) as client:
        assert client.get(f"{url}/health").status_code == 200  # warm
        before = process.memory_info().rss

        def post(_: int) -> httpx.Response:
            return client.post(f"{url}/score", content=body)

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(post, range(20)))
        after = process.memory_info().rss
    print(f"\n20 concurrent 9.9 MB bodies: RSS grew {(after - before) / MiB:.1f} MiB")
    for response in responses:
        assert response.status_code == 413
        error = ErrorBody.model_validate_json(response.content).error
        assert error.code == "payload_too_large"
        assert f"the limit is {DEFAULT_MAX_BODY_BYTES} bytes" in error.message
        assert error.request_id == response.headers["x-amzn-RequestId"]
    assert after - before < 32 * MiB, f"RSS grew by {(after - before) / MiB:.1f} MiB"


def test_a_chunked_body_is_refused_once_its_count_passes_the_functions_limit(
    stack_process: tuple[str, Any],
) -> None:
    url, _ = stack_process
    size = int(9.9 * MiB)
    response = httpx.post(f"{url}/score", content=chunks(size), timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert f"request body is {size} bytes" in response.json()["error"]["message"]


# -- 3. a client that disconnects mid-body ----------------------------------------------------

STACK_WITH_LOGS = """
import logging, sys
logging.basicConfig(level="INFO", format="%(levelname)s %(name)s %(message)s")
from credit_explainer_tools.local import LocalStack
with LocalStack(sys.argv[1], log_level="ERROR") as stack:
    print(stack.api_url, stack.model_url, flush=True)
    sys.stdin.read()
"""


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def leave_mid_body(url: str, path: str) -> None:
    """Promise 1,000 bytes of body, send one, and close the connection."""
    import socket
    import time

    with socket.create_connection(address(url), timeout=5) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n[".encode()
        )
        time.sleep(0.02)  # the request has reached the application, reading its body


def test_a_mid_body_disconnect_logs_one_line_and_no_traceback_on_both_servers(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    n = 20
    log = (tmp_path / "stderr").open("w+")  # a file: a pipe left unread would block the child
    child = subprocess.Popen(
        [sys.executable, "-c", STACK_WITH_LOGS, str(synthetic_model_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert child.stdout is not None
        api_url, model_url = child.stdout.readline().split()
        for _ in range(n):
            leave_mid_body(model_url, "/invocations")
            leave_mid_body(api_url, "/score")
        # Both still serve.
        assert httpx.post(f"{api_url}/score", json=APPLICANTS, timeout=30).status_code == 200
        answer = httpx.post(f"{model_url}/invocations", json=APPLICANTS, timeout=30)
        assert answer.status_code == 200
    finally:
        child.communicate("", timeout=60)
    log.seek(0)
    stderr = log.read()
    assert "Traceback" not in stderr and "Exception in ASGI application" not in stderr, stderr
    lines = stderr.splitlines()
    assert sum("kind=client_disconnected" in line for line in lines) == n, stderr
    assert sum("client disconnected mid-body" in line for line in lines) == n, stderr
    assert not [line for line in lines if "status=5" in line or line.startswith("ERROR")]


# -- 5. read timeouts and a header size limit, on both servers --------------------------------


def hold(url: str, path: str, kind: str, bound: float) -> tuple[float | None, bytes]:
    """Trickle a request head one header a second ("head"), or send a head and one byte of a
    promised 1,000-byte body ("body"), until the server closes the connection or ``bound``
    seconds pass. Returns (seconds until the server closed it or None, what it answered)."""
    import socket
    import time

    start = time.monotonic()
    received = b""
    with socket.create_connection(address(url), timeout=1.0) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
        if kind == "body":
            head += "Content-Length: 1000\r\n\r\n["
        s.sendall(head.encode())
        while time.monotonic() - start < bound:
            try:
                if kind == "head":
                    s.sendall(b"X-Trickle: 1\r\n")
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset or broken pipe: closed by the server
                return time.monotonic() - start, received
            if not chunk:
                return time.monotonic() - start, received
            received += chunk
    return None, received


@pytest.fixture(scope="module")
def serve_model(synthetic_model_dir: Path) -> Iterator[str]:
    """``credit-explainer serve-model``, as the container runs it, on a free port."""
    import socket
    import subprocess
    import sys

    from conftest import wait_for_ping

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "credit_explainer", "serve-model"]
    args = ["--model-dir", str(synthetic_model_dir), "--host", "127.0.0.1", "--port", str(port)]
    child = subprocess.Popen([*command, *args], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, child, "serve-model")
        yield url
    finally:
        child.terminate()
        child.wait(timeout=30)


def test_slow_heads_and_stalled_bodies_are_cut_off_while_others_are_served(
    stack: LocalStack, serve_model: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from credit_model.http_limits import BODY_TIMEOUT, HEAD_TIMEOUT

    servers = {
        "gateway": (stack.api_url, "/score"),
        "model server": (stack.model_url, "/invocations"),
        "serve-model": (serve_model, "/invocations"),
    }
    cases = [(name, kind) for name in servers for kind in ("head", "body")]
    limit = {"head": HEAD_TIMEOUT, "body": BODY_TIMEOUT}
    with ThreadPoolExecutor(len(cases)) as pool:
        held = {
            case: pool.submit(hold, *servers[case[0]], case[1], limit[case[1]] + 5)
            for case in cases
        }
        # Meanwhile, every server answers others.
        for url, path in servers.values():
            answer = httpx.post(f"{url}{path}", json=APPLICANTS, timeout=30)
            assert answer.status_code == 200, answer.text
        results = {case: future.result() for case, future in held.items()}
    for (name, kind), (closed_after, answer) in results.items():
        assert closed_after is not None, f"{name}: a slow {kind} was still open"
        assert limit[kind] - 1 <= closed_after <= limit[kind] + 3, (name, kind, closed_after)
        if kind == "head":
            assert answer.startswith(b"HTTP/1.1 408"), (name, answer)


@pytest.mark.parametrize("server", ["gateway", "model server", "serve-model"])
def test_oversized_headers_are_refused_and_normal_ones_served(
    stack: LocalStack, serve_model: str, server: str
) -> None:
    url, path = {
        "gateway": (stack.api_url, "/health"),
        "model server": (stack.model_url, "/ping"),
        "serve-model": (serve_model, "/ping"),
    }[server]
    assert httpx.get(f"{url}{path}", headers={"X-Note": "n" * 4096}).status_code == 200
    for size in (17 * 1024, 8 * 1024 * 1024):
        try:
            response = httpx.get(f"{url}{path}", headers={"X-Note": "n" * size}, timeout=30)
        except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
            continue  # closed while the header was still being sent: refused
        assert response.status_code == 431, (size, response.status_code)
    assert httpx.get(f"{url}{path}").status_code == 200


# -- 2. the time budget: every allowed setting against a model that stops answering -----------


def test_the_504_comes_within_the_budget_at_every_allowed_read_timeout() -> None:
    """Each allowed SageMakerReadTimeout: the real boto3 client and its retries against a model
    that never answers, with the budget of a 29 s Lambda; and the whole API at the maximum."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from credit_schema import Applicant
    from fault_server import Fault, FaultServer
    from scoring_api.endpoint import ModelEndpoint, client_config
    from scoring_api.errors import ModelTimeoutError
    from test_timeout_budget import ALLOWED_READ_TIMEOUTS, LAMBDA_TIMEOUT, template_settings

    applicant = Applicant.model_validate(APPLICANTS[0])
    spare = 2.0

    def invoke_direct(read_timeout: float, url: str) -> tuple[float, BaseException | None]:
        settings = template_settings(read_timeout)
        runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=client_config(settings),
        )
        endpoint = ModelEndpoint(settings, runtime=runtime)
        started = time.monotonic()
        deadline = started + settings.time_budget(LAMBDA_TIMEOUT)
        try:
            endpoint.explain([applicant], deadline)
        except ModelTimeoutError as exc:
            return time.monotonic() - started, exc
        return time.monotonic() - started, None

    def through_the_api(url: str) -> tuple[float, httpx.Response]:
        environment = {"SAGEMAKER_READ_TIMEOUT": str(max(ALLOWED_READ_TIMEOUTS))}
        with LocalStack(model_url=url, environment=environment) as stack:
            started = time.monotonic()
            response = httpx.post(f"{stack.api_url}/score", json=APPLICANTS, timeout=60)
            return time.monotonic() - started, response

    with FaultServer() as stalled:
        stalled.inject(Fault("stall", delay=60.0))
        with ThreadPoolExecutor(len(ALLOWED_READ_TIMEOUTS) + 1) as pool:
            api = pool.submit(through_the_api, stalled.url)
            direct = {r: pool.submit(invoke_direct, r, stalled.url) for r in ALLOWED_READ_TIMEOUTS}
            results = {r: future.result() for r, future in direct.items()}
            api_elapsed, response = api.result()
        stalled.clear()
    for read_timeout, (elapsed, error) in results.items():
        assert isinstance(error, ModelTimeoutError), read_timeout
        assert read_timeout <= elapsed <= LAMBDA_TIMEOUT - spare, (read_timeout, elapsed)
    print(
        f"\n504 after (s), by read timeout: { {r: round(e, 1) for r, (e, _) in results.items()} }"
    )
    print(f"through the API at {max(ALLOWED_READ_TIMEOUTS)} s: {api_elapsed:.1f} s")
    assert response.status_code == 504
    assert ErrorBody.model_validate_json(response.content).error.code == "model_timeout"
    assert api_elapsed <= LAMBDA_TIMEOUT - spare


def test_the_local_gateway_answers_api_gateways_504_when_the_function_overruns() -> None:
    import time

    from credit_explainer_tools.local import handler_environment
    from credit_explainer_tools.local.gateway import LambdaEnvironment, make_app
    from credit_explainer_tools.local.stack import ServerThread
    from fault_server import Fault, FaultServer

    with FaultServer() as stalled:
        stalled.inject(Fault("stall", delay=30.0))
        function = LambdaEnvironment(
            {**handler_environment(stalled.url), "SAGEMAKER_READ_TIMEOUT": "5"}
        )
        server = ServerThread(make_app(function, timeout=1.0), name="gateway")
        server.start()
        try:
            started = time.monotonic()
            response = httpx.post(f"{server.url}/score", json=APPLICANTS, timeout=30)
            elapsed = time.monotonic() - started
        finally:
            server.stop()
            stalled.clear()
    assert (response.status_code, response.json()) == (
        504,
        {"message": "Endpoint request timed out"},
    )
    assert response.headers["x-amzn-RequestId"]
    assert 1.0 <= elapsed < 3.0


def test_the_limits_hold_with_h11_too(synthetic_model: Any) -> None:
    """Without httptools (the API's distribution lacks it) uvicorn speaks h11: the same limits."""
    import socket
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import uvicorn
    from credit_model.http_limits import (
        BODY_TIMEOUT,
        HEAD_TIMEOUT,
        UVICORN_OPTIONS,
        GuardedH11Protocol,
    )
    from credit_model.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    options = {**UVICORN_OPTIONS, "http": GuardedH11Protocol}
    config = uvicorn.Config(create_app(synthetic_model), log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with ThreadPoolExecutor(2) as pool:
            head = pool.submit(hold, url, "/invocations", "head", HEAD_TIMEOUT + 5)
            body = pool.submit(hold, url, "/invocations", "body", BODY_TIMEOUT + 5)
            big = httpx.get(f"{url}/ping", headers={"X-Note": "n" * 17 * 1024})
            assert big.status_code == 431
            assert httpx.post(f"{url}/invocations", json=APPLICANTS).status_code == 200
            (head_closed, answer), (body_closed, _) = head.result(), body.result()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert head_closed is not None and HEAD_TIMEOUT - 1 <= head_closed <= HEAD_TIMEOUT + 3
    assert answer.startswith(b"HTTP/1.1 408")
    assert body_closed is not None and BODY_TIMEOUT - 1 <= body_closed <= BODY_TIMEOUT + 3


def test_a_head_sent_in_pieces_is_counted_across_them(stack: LocalStack) -> None:
    import socket

    from credit_model.http_limits import MAX_HEAD_BYTES

    answer = b""
    with socket.create_connection(address(stack.model_url), timeout=10) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: local\r\n")
        try:
            for i in range(MAX_HEAD_BYTES // 1000 + 2):
                s.sendall(f"X-Piece-{i}: {'p' * 980}\r\n".encode())
        except OSError:
            pass  # closed while sending: refused
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 431"), answer
