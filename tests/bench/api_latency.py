"""Latency of one applicant through the local stack (HTTP -> API Gateway event -> handler ->
boto3 -> model server), against the model server alone in the same run.

    .venv/bin/python tests/bench/api_latency.py [--model-dir models/default] [--requests 500]

Sequential requests on a keep-alive connection after a warm-up; prints p50/p99 and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx
from credit_explainer_tools.local import LocalStack
from credit_explainer_tools.local.demo import SAMPLE_APPLICANTS, ensure_model


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(client: httpx.Client, url: str, body: bytes, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
        out.append((time.perf_counter() - started) * 1000.0)
        response.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default="models/default")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    model_dir = Path(args.model_dir)
    ensure_model(model_dir)
    body = json.dumps(SAMPLE_APPLICANTS[1]).encode()
    with LocalStack(model_dir, log_level="WARNING") as stack, httpx.Client(timeout=30) as client:
        api, model = f"{stack.api_url}/score", f"{stack.model_url}/invocations"
        timed(client, api, body, 50)
        timed(client, model, body, 50)
        # Alternate in blocks so both see the same machine load.
        api_ms: list[float] = []
        model_ms: list[float] = []
        for _ in range(5):
            api_ms += timed(client, api, body, args.requests // 5)
            model_ms += timed(client, model, body, args.requests // 5)
    rows = {
        "local stack POST /score": api_ms,
        "model server POST /invocations": model_ms,
    }
    for label, ms in rows.items():
        print(
            f"{label:32s} p50 {statistics.median(ms):6.2f} ms  p99 {percentile(ms, 0.99):6.2f} ms"
            f"  ({len(ms)} requests, 1 applicant)"
        )
    overhead = statistics.median(api_ms) - statistics.median(model_ms)
    print(
        f"API overhead (gateway + handler + boto3) p50 {overhead:.2f} ms; "
        f"ratio p50 {statistics.median(api_ms) / statistics.median(model_ms):.2f}x"
    )


if __name__ == "__main__":
    main()
