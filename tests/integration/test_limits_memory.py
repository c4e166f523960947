"""A 60 MB body costs no memory: the limits are enforced before the body is decoded.

* The Lambda handler (a child process, cold-started like a Lambda) answers 413 to a
  60 MB event body, plain or base64, while tracemalloc sees almost no allocation:
  the size is read off the event, nothing decodes or copies the body.
* The local stack over real HTTP (a child process, ``LocalStack``) refuses a 60 MB
  upload (with and without Content-Length) without its resident memory growing by
  anything near the body's size.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from fault_server import FaultServer

ROOT = Path(__file__).resolve().parents[2]
BODY_BYTES = 60 * 1024 * 1024
MiB = 1024 * 1024

HANDLER_CHILD = """
import base64, json, sys, tracemalloc
from credit_explainer_tools.local import handler_environment
from credit_explainer_tools.local.gateway import LambdaEnvironment
fn = LambdaEnvironment(handler_environment("http://127.0.0.1:9", log_level="ERROR"))
event = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
out = []
for encoded in (False, True):
    body = "[" + " " * (n - 2) + "]"
    if encoded:
        body = base64.b64encode(body.encode()).decode()
    event.update(body=body, isBase64Encoded=encoded)
    tracemalloc.start()
    result = fn.invoke(event)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out.append({"status": result["statusCode"], "body": json.loads(result["body"]), "peak": peak})
    del body
print(json.dumps(out))
"""


def test_the_handler_refuses_a_60_mb_body_before_decoding_it() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            HANDLER_CHILD,
            str(ROOT / "events/score-batch.json"),
            str(BODY_BYTES),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for encoded, result in zip((False, True), results, strict=True):
        assert result["status"] == 413, encoded
        assert result["body"]["error"]["code"] == "payload_too_large"
        assert f"{BODY_BYTES} bytes" in result["body"]["error"]["message"]
        assert result["body"]["error"]["request_id"]
        # Decoding would allocate 60-180 MB; refusing allocates a few kilobytes.
        assert result["peak"] < 1 * MiB, (encoded, result["peak"])


STACK_CHILD = """
import sys
from credit_explainer_tools.local import LocalStack
with LocalStack(model_url=sys.argv[1], log_level="ERROR") as stack:
    print(stack.api_url, flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def stack_process() -> Iterator[tuple[str, psutil.Process]]:
    with FaultServer() as faults:
        child = subprocess.Popen(
            [sys.executable, "-c", STACK_CHILD, faults.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            url = child.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), url
            yield url, psutil.Process(child.pid)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)


def chunks(total: int, size: int = MiB) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_the_local_stack_refuses_a_60_mb_upload_with_flat_memory(
    stack_process: tuple[str, psutil.Process], declared: bool
) -> None:
    url, process = stack_process
    with httpx.Client(timeout=60) as client:
        assert client.get(f"{url}/health").status_code == 200  # warm: first-request allocations
        before = process.memory_info().rss
        headers = {"Content-Type": "application/json"}
        if declared:
            headers["Content-Length"] = str(BODY_BYTES)
        try:
            response = client.post(f"{url}/score", content=chunks(BODY_BYTES), headers=headers)
        except (httpx.WriteError, httpx.RemoteProtocolError):
            pytest.fail("the server should answer 413, not drop the connection")
        after = process.memory_info().rss
    print(
        f"\n60 MB upload ({'declared' if declared else 'chunked'}): RSS grew {(after - before) / MiB:.1f} MiB"
    )
    assert response.status_code == 413
    assert response.json() == {"message": "Request Too Long"}
    # At most API Gateway's 10 MiB limit is buffered before the refusal, never 60 MB.
    assert after - before < 24 * MiB, f"RSS grew by {(after - before) / MiB:.1f} MiB"


def test_body_size_is_exact_for_bodies_within_the_limit() -> None:
    from credit_explainer_tools.local import handler_environment
    from credit_explainer_tools.local.gateway import LambdaEnvironment

    module = LambdaEnvironment(handler_environment("http://127.0.0.1:9")).module
    for text in ["", "é" * 10, "x" * 100, "\U0001f600" * 7, "a", "ab", "abc"]:
        raw = text.encode()
        assert module.body_size({"body": text, "isBase64Encoded": False}, 1_000) == len(raw)
        encoded = {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
        assert module.body_size(encoded, 1_000) == len(raw)
