"""Load test of the local stack: ``make load`` (locust, headless, 127.0.0.1 only).

Starts ``credit-explainer up`` (model server + local API Gateway + the real
handler) in its own process with an API key, then drives ``POST /score`` with
locust users for a bounded time and number of requests, first one applicant
per request, then batches of 100. Reports sustained requests/s and applicants/s,
p50/p99 latency, the error rate, and the ``up`` process's resident memory over
time (sampled every second; growth per 1,000 requests after warm-up).

    .venv/bin/python tests/load/run_load.py [--seconds 60] [--max-requests 20000]
        [--users 4] [--model-dir models/default] [--json out/load.json]

Every request must answer 200 with one explanation per applicant that adds up;
anything else counts as an error. Exit status 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# locust runs on gevent: import it (it monkey-patches the standard library) before anything else.
import gevent
import psutil
from locust import FastHttpUser, constant, events, task
from locust.env import Environment

ROOT = Path(__file__).resolve().parents[2]
KEY = "load-test-key"
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def applicants(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        out.append(
            {
                "RevolvingUtilizationOfUnsecuredLines": round(rng.uniform(0, 1.2), 4),
                "age": rng.randint(21, 90),
                "NumberOfTime30-59DaysPastDueNotWorse": rng.choice([0, 0, 0, 1, 2]),
                "DebtRatio": round(rng.uniform(0, 2), 4),
                "MonthlyIncome": rng.choice([None, round(rng.uniform(1000, 20000), 2)]),
                "NumberOfOpenCreditLinesAndLoans": rng.randint(0, 25),
                "NumberOfTimes90DaysLate": rng.choice([0, 0, 0, 1]),
                "NumberRealEstateLoansOrLines": rng.randint(0, 4),
                "NumberOfTime60-89DaysPastDueNotWorse": rng.choice([0, 0, 1]),
                "NumberOfDependents": rng.choice([None, 0, 1, 2, 3]),
            }
        )
    return out


class Stack:
    """``credit-explainer up`` in a child process, on free loopback ports."""

    def __init__(self, model_dir: Path) -> None:
        self.port, model_port = free_port(), free_port()
        exe = Path(sys.executable).with_name("credit-explainer")
        self.proc = subprocess.Popen(
            [
                str(exe),
                "up",
                "--model-dir",
                str(model_dir),
                "--port",
                str(self.port),
                "--model-port",
                str(model_port),
                "--api-key",
                KEY,
                "--log-level",
                "ERROR",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.proc.stdout:
            if "Ctrl-C" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("credit-explainer up did not start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"credit-explainer up exited with {self.proc.returncode}")
        self.process = psutil.Process(self.proc.pid)
        self.samples: list[tuple[float, int]] = []  # (seconds, RSS bytes)
        self._running = True

    def _sample(self) -> None:
        started = time.monotonic()
        while self._running:
            self.samples.append((time.monotonic() - started, self.process.memory_info().rss))
            gevent.sleep(1.0)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def __enter__(self) -> Stack:
        self._sampler = gevent.spawn(self._sample)
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._sampler.kill()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_scenario(
    url: str, batch: int, *, seconds: float, max_requests: int, users: int
) -> dict[str, Any]:
    """Locust users posting ``batch`` applicants per request; stops at the time or request cap."""
    bodies = [json.dumps(applicants(batch, seed)) for seed in range(20)]
    state = {"requests": 0, "bad": 0, "reasons": {}}

    class Scorer(FastHttpUser):
        host = url
        wait_time = constant(0)

        @task
        def score(self) -> None:
            if state["requests"] >= max_requests:
                self.environment.runner.quit()
                return
            state["requests"] += 1
            body = random.choice(bodies)
            with self.client.post(
                "/score",
                data=body,
                headers={"Content-Type": "application/json", "x-api-key": KEY},
                catch_response=True,
                name=f"POST /score x{batch}",
            ) as response:
                problem = check(response.status_code, response.text, batch)
                if problem:
                    state["bad"] += 1
                    state["reasons"][problem] = state["reasons"].get(problem, 0) + 1
                    response.failure(problem)

    env = Environment(user_classes=[Scorer], events=events)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    stopper = gevent.spawn_later(seconds, runner.quit)
    started = time.perf_counter()
    runner.greenlet.join()
    elapsed = time.perf_counter() - started
    stopper.kill()
    total = env.stats.total
    return {
        "applicants_per_request": batch,
        "users": users,
        "seconds": round(elapsed, 1),
        "requests": total.num_requests,
        "errors": total.num_failures,
        "error_rate": total.num_failures / max(1, total.num_requests),
        "requests_per_s": round(total.num_requests / elapsed, 1),
        "applicants_per_s": round(total.num_requests * batch / elapsed, 1),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "error_kinds": state["reasons"],
    }


def check(status: int, text: str, batch: int) -> str | None:
    if status != 200:
        return f"status {status}"
    try:
        results = json.loads(text)["results"]
    except (ValueError, KeyError):
        return "unreadable body"
    if len(results) != batch:
        return "wrong number of results"
    for r in results:
        total = r["base_value"] + sum(c["shap_value"] for c in r["contributions"])
        if abs(total - r["probability"]) > 1e-9:
            return "explanation does not add up"
    return None


def check_auth(url: str) -> dict[str, Any]:
    """``up --api-key`` enforces the key as API Gateway does: 403 {"message": "Forbidden"}."""
    import urllib.error
    import urllib.request

    out = {}
    body = json.dumps(applicants(1, 0)).encode()
    for label, headers in (("missing_key", {}), ("wrong_key", {"x-api-key": "wrong"})):
        request = urllib.request.Request(
            f"{url}/score", data=body, headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                out[label] = {"status": answer.status, "body": json.loads(answer.read())}
        except urllib.error.HTTPError as exc:
            out[label] = {"status": exc.code, "body": json.loads(exc.read())}
    return out


def memory_report(samples: list[tuple[float, int]], requests_done: int) -> dict[str, Any]:
    rss = [r for _, r in samples]
    warm = rss[min(2, len(rss) - 1)]  # after the first seconds of warm-up
    return {
        "samples": len(rss),
        "rss_start_mib": round(warm / MiB, 1),
        "rss_max_mib": round(max(rss) / MiB, 1),
        "rss_end_mib": round(rss[-1] / MiB, 1),
        "growth_mib": round((rss[-1] - warm) / MiB, 1),
        "growth_mib_per_1000_requests": round(
            (rss[-1] - warm) / MiB / max(1, requests_done) * 1000, 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per scenario (60)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per scenario (20000)")
    parser.add_argument("--users", type=int, default=4, help="concurrent locust users (4)")
    parser.add_argument("--batch", type=int, default=100, help="applicants per batch request (100)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)

    from credit_explainer_tools.local.demo import ensure_model

    ensure_model(args.model_dir)
    report: dict[str, Any] = {"scenarios": []}
    with Stack(args.model_dir) as stack:
        report["auth"] = check_auth(stack.url)
        gevent.sleep(2.5)  # let the sampler take its warm-up samples
        for batch in (1, args.batch):
            figures = run_scenario(
                stack.url,
                batch,
                seconds=args.seconds,
                max_requests=args.max_requests,
                users=args.users,
            )
            report["scenarios"].append(figures)
            print(
                f"{batch:>4} applicant(s)/request: {figures['requests']} requests in "
                f"{figures['seconds']} s = {figures['requests_per_s']} req/s "
                f"({figures['applicants_per_s']} applicants/s), p50 {figures['p50_ms']} ms, "
                f"p99 {figures['p99_ms']} ms, errors {figures['errors']} "
                f"({figures['error_rate']:.2%}) {figures['error_kinds'] or ''}",
                flush=True,
            )
        gevent.sleep(1.5)
        done = sum(s["requests"] for s in report["scenarios"])
        report["memory"] = memory_report(stack.samples, done)
    m = report["memory"]
    print(
        f"memory of `credit-explainer up`: {m['rss_start_mib']} MiB after warm-up, max "
        f"{m['rss_max_mib']} MiB, end {m['rss_end_mib']} MiB ({m['growth_mib']:+} MiB, "
        f"{m['growth_mib_per_1000_requests']:+} MiB per 1,000 requests; {m['samples']} samples)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if any(s["errors"] for s in report["scenarios"]) else 0


if __name__ == "__main__":
    sys.exit(main())
