"""Serving benchmark: a fresh container's readiness and the model server's requests/s.

Each figure is a ratio against a reference measured in the same run:

* **readiness**: from process start to the first correct ``/invocations`` answer of
  ``python -m credit_model serve`` (what the image's ``serve`` runs), with an empty ``HOME``,
  the numba cache the image builds (``NUMBA_CPU_NAME=generic``, ``NUMBA_CACHE_DIR``) and
  the bytecode its install compiles,
  against the original blog's imports alone (``import shap, sklearn.ensemble, pandas``);
  also with an empty cache (a CPU the image's cache does not fit: compiled on start);
* **requests/s**, one applicant per request, server on CPU 0 and wrk (8 connections) on
  CPU 1: the model server against its stack's floor (a trivial Starlette app returning a
  fixed 1 KB JSON on the same uvicorn settings) and against the original blog's handlers
  under gunicorn + Flask;
* the scoring Lambda's import under python3.13 (the x86_64 ``sam build`` output) beside
  ``import boto3`` alone.

    .venv/bin/python tests/bench/serving.py [--seconds 10] [--runs 3]
    .venv/bin/python tests/bench/serving.py --capture-cost [--rounds 5] [--model-dir M]

``--capture-cost`` measures only the model server's requests/s without and with
``--capture-dir`` (data capture), interleaved round by round on the same machine.

Needs wrk (Debian: ``apt-get install wrk``) and, for the Lambda figure, ``make sam-build``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from api_import_time import python313  # noqa: E402
from real_data import REAL_DATA  # noqa: E402

PY = sys.executable
APPLICANT = {
    "RevolvingUtilizationOfUnsecuredLines": 0.92, "age": 34,
    "NumberOfTime30-59DaysPastDueNotWorse": 2, "DebtRatio": 0.51, "MonthlyIncome": 3100.0,
    "NumberOfOpenCreditLinesAndLoans": 5, "NumberOfTimes90DaysLate": 1,
    "NumberRealEstateLoansOrLines": 0, "NumberOfTime60-89DaysPastDueNotWorse": 1,
    "NumberOfDependents": 2,
}  # fmt: skip
#: What the model image sets (container/Dockerfile): a cache that fits any x86-64 CPU.
IMAGE_NUMBA = {"NUMBA_CPU_NAME": "generic"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(model_dir: Path) -> None:
    data = ["--data", str(REAL_DATA)] if REAL_DATA.is_file() else ["--rows", "20000"]
    subprocess.run(
        [PY, "-m", "credit_model", "train", "--model-dir", str(model_dir), *data],
        check=True, capture_output=True,
    )  # fmt: skip


def reference_answer(model_dir: Path) -> dict[str, Any]:
    """The first applicant's explanation from shap.TreeExplainer, for the 1e-9 check."""
    import numpy as np
    import shap
    from credit_model.artifacts import load
    from credit_schema import FEATURES

    pipeline = load(model_dir).pipeline
    x = pipeline[0].transform(np.array([[APPLICANT[f] for f in FEATURES]], dtype=float))
    explainer = shap.TreeExplainer(pipeline[-1])
    values = explainer.shap_values(x)[0, :, 1]
    return {
        "probability": float(pipeline[-1].predict_proba(x)[0, 1]),
        "shap": dict(zip(FEATURES, values.tolist(), strict=True)),
    }


def correct(answer: dict[str, Any], reference: dict[str, Any]) -> bool:
    (explanation,) = answer["predictions"]
    shap = {c["feature"]: c["shap_value"] for c in explanation["contributions"]}
    return abs(explanation["probability"] - reference["probability"]) <= 1e-9 and all(
        abs(shap[f] - v) <= 1e-9 for f, v in reference["shap"].items()
    )


def seconds_to_import_reference() -> float:
    start = time.perf_counter()
    subprocess.run([PY, "-c", "import shap, sklearn.ensemble, pandas"], check=True)
    return time.perf_counter() - start


def seconds_to_first_answer(
    model_dir: Path, cache: Path | None, reference: dict[str, Any]
) -> float:
    """A fresh server process, empty HOME, the given numba cache: until its first correct answer."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, **IMAGE_NUMBA, "HOME": home}
        env["NUMBA_CACHE_DIR"] = str(cache) if cache else str(Path(home) / "numba")
        start = time.perf_counter()
        proc = subprocess.Popen(
            [PY, "-m", "credit_model", "serve", "--model-dir", str(model_dir), "--port",
             str(port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            with httpx.Client(timeout=5) as client:
                while time.perf_counter() - start < 120:
                    try:
                        r = client.post(f"http://127.0.0.1:{port}/invocations", json=APPLICANT)
                        if r.status_code == 200 and correct(r.json(), reference):
                            return time.perf_counter() - start
                        raise RuntimeError(f"wrong first answer: {r.status_code} {r.text[:300]}")
                    except httpx.TransportError:
                        time.sleep(0.005)
            raise RuntimeError("the model server did not answer within 120 s")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def image_cache(model_dir: Path, where: Path) -> Path:
    """The numba cache the image's build step leaves (container/Dockerfile), and the bytecode
    pip compiles when it installs the model's wheel there: a checkout run with
    PYTHONDONTWRITEBYTECODE would otherwise compile our modules again on every start."""
    import credit_model
    import credit_schema

    packages = [str(Path(m.__file__).parent) for m in (credit_model, credit_schema)]
    subprocess.run([PY, "-m", "compileall", "-q", *packages], check=True)
    env = {**os.environ, **IMAGE_NUMBA, "NUMBA_CACHE_DIR": str(where)}
    subprocess.run([PY, "-m", "credit_model", "warm-up"], env=env, check=True)
    return where


# --- requests per second --------------------------------------------------------------

FLOOR_APP = '''
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = b'{"model_version":"0123456789abcdef","predictions":[' + b'1' * 950 + b']}'
async def invocations(request):
    await request.body()
    return Response(BODY, media_type="application/json")
app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
'''

FLASK_APP = '''
import os, sys
sys.path.insert(0, os.environ["BENCH_DIR"])
from flask import Flask, Response, request
from credit_model.artifacts import load
from original import OriginalPath
path = OriginalPath(load(os.environ["MODEL_DIR"]).pipeline)
app = Flask(__name__)
@app.post("/invocations")
def invocations():
    return Response(path(request.get_data()), mimetype="application/json")
'''


@contextmanager
def server(argv: list[str], port: int, env: dict[str, str]) -> Iterator[int]:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *argv], env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/invocations", json=[APPLICANT], timeout=5)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[:4]} did not start")
            time.sleep(0.1)
        yield proc.pid  # taskset execs the server: this is the server's pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wrk(port: int, seconds: int, script: Path) -> float:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t", "1", "-c", "8", "-d", f"{seconds}s", "-s",
         str(script), f"http://127.0.0.1:{port}/invocations"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} error responses under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def requests_per_second(model_dir: Path, seconds: int, work: Path) -> dict[str, float]:
    script = work / "post.lua"
    body = json.dumps([APPLICANT])
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    (work / "floor_app.py").write_text(FLOOR_APP)
    (work / "flask_app.py").write_text(FLASK_APP)
    uvicorn = [PY, "-m", "uvicorn", "--port"]
    figures = {}
    port = free_port()
    log("requests/s: the stack's floor (trivial Starlette app) ...")
    with server([*uvicorn, str(port), "--log-level", "warning", "--no-access-log",
                 "--app-dir", str(work), "floor_app:app"], port, {}):  # fmt: skip
        figures["floor"] = wrk(port, seconds, script)
    port = free_port()
    log("requests/s: the model server ...")
    with server([PY, "-m", "credit_model", "serve", "--model-dir", str(model_dir),
                 "--port", str(port), "--log-level", "warning"], port, {}):  # fmt: skip
        figures["model_server"] = wrk(port, seconds, script)
    port = free_port()
    log("requests/s: the original blog's handlers under gunicorn + Flask ...")
    gunicorn = [PY, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir",
                str(work), "flask_app:app"]  # fmt: skip
    env = {"BENCH_DIR": str(HERE), "MODEL_DIR": str(model_dir)}
    with server(gunicorn, port, env):
        figures["flask"] = wrk(port, seconds, script)
    return figures


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def capture_cost(model_dir: Path, seconds: int, rounds: int, work: Path) -> dict[str, Any]:
    """The model server's requests/s without and with data capture, alternating; and the CPU
    per request of the server's main thread and of its other threads (the capture writer)."""
    script = work / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps([APPLICANT]))}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    runs: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    for i in range(rounds):
        for kind in ("without", "with") if i % 2 == 0 else ("with", "without"):
            port = free_port()
            extra = ["--capture-dir", str(work / f"capture-{i}")] if kind == "with" else []
            with server([PY, "-m", "credit_model", "serve", "--model-dir", str(model_dir),
                         "--port", str(port), "--log-level", "warning", *extra], port, {}) as pid:  # fmt: skip
                before = thread_cpu_seconds(pid)
                runs[kind].append(wrk(port, seconds, script))
                after = thread_cpu_seconds(pid)
            requests = runs[kind][-1] * seconds
            used = {t: after[t] - before.get(t, 0.0) for t in after}
            main = used.pop(pid, 0.0)
            cpu[kind].append((main / requests, sum(used.values()) / requests))
            log(f"round {i + 1}: {kind} capture {runs[kind][-1]:.0f} requests/s; CPU per "
                f"request: main thread {cpu[kind][-1][0] * 1e6:.1f} us, other threads "
                f"{cpu[kind][-1][1] * 1e6:.1f} us")  # fmt: skip
    without, with_ = statistics.median(runs["without"]), statistics.median(runs["with"])
    # Each round's pair ran back to back: the median of the pairs' ratios resists the noise of a
    # shared machine better than the ratio of medians.
    paired = statistics.median(w / o for w, o in zip(runs["with"], runs["without"], strict=True))
    per_request = {kind: [statistics.median(c[j] for c in cpu[kind]) for j in (0, 1)]
                   for kind in cpu}  # fmt: skip
    return {"runs": runs, "without": without, "with": with_, "cost": 1 - with_ / without,
            "paired_cost": 1 - paired, "cpu_per_request_s": per_request}  # fmt: skip


def lambda_import(runs: int) -> dict[str, float] | None:
    build = ROOT / ".aws-sam-x86_64" / "build"
    python = python313()
    if not (build / "ScoringFunction").is_dir() or python is None:
        return None
    paths = f"{build}/ScoringFunction:{build}/CreditSchemaLayer/python"
    env = {**os.environ, "PYTHONPATH": paths, "POWERTOOLS_TRACE_DISABLED": "true",
           "POWERTOOLS_METRICS_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip

    def timed(module: str) -> float:
        start = time.perf_counter()
        subprocess.run([str(python), "-S", "-c", f"import {module}"], env=env, check=True)
        return time.perf_counter() - start

    return {
        "scoring_api.app": statistics.median(timed("scoring_api.app") for _ in range(runs)),
        "boto3": statistics.median(timed("boto3") for _ in range(runs)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per server")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per start-up figure")
    parser.add_argument(
        "--out", default="out/serving.json", help="results (--capture-cost: capture_cost.json beside it)"
    )
    parser.add_argument("--capture-cost", action="store_true", help="only data capture's cost")
    parser.add_argument("--rounds", type=int, default=5, help="--capture-cost rounds")
    parser.add_argument("--model-dir", help="--capture-cost: this model (default: train one)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    if args.capture_cost:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(args.model_dir) if args.model_dir else Path(tmp) / "model"
            if not args.model_dir:
                train(model_dir)
            cost = capture_cost(model_dir, args.seconds, args.rounds, Path(tmp))
        print(f"requests/s, median of {args.rounds}: without capture {cost['without']:.0f}, "
              f"with capture {cost['with']:.0f}: {cost['cost']:.1%} fewer; median of the rounds' "
              f"paired ratios: {cost['paired_cost']:.1%} fewer (target <= 10%)")  # fmt: skip
        (main_without, _), (main_with, writer) = (cost["cpu_per_request_s"][k]
                                                  for k in ("without", "with"))  # fmt: skip
        print(f"CPU per request, medians: main thread {main_without * 1e6:.1f} us without "
              f"capture, {main_with * 1e6:.1f} us with; the capture writer {writer * 1e6:.1f} us")  # fmt: skip
        out = Path(args.out).with_name("capture_cost.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(cost, indent=2) + "\n")
        return 0
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        log("training the default model ...")
        train(model_dir)
        reference = reference_answer(model_dir)
        cache = image_cache(model_dir, work / "numba-cache")
        starts: dict[str, list[float]] = {"blog imports": [], "ours, image cache": [],
                                          "ours, empty cache": []}  # fmt: skip
        for _ in range(args.runs):  # interleaved: each figure sees the same machine
            starts["blog imports"].append(seconds_to_import_reference())
            starts["ours, image cache"].append(seconds_to_first_answer(model_dir, cache, reference))
            starts["ours, empty cache"].append(seconds_to_first_answer(model_dir, None, reference))
        results["start_s"] = {k: statistics.median(v) for k, v in starts.items()}
        results["requests_per_s"] = requests_per_second(model_dir, args.seconds, work)
    results["lambda_import_s"] = lambda_import(args.runs * 2)

    s, r = results["start_s"], results["requests_per_s"]
    ref = s["blog imports"]
    print("\n| figure | value | against its reference |\n|---|---|---|")
    print(f"| original blog's imports (reference) | {ref:.2f} s | 1x |")
    print(f"| first correct answer, image's numba cache | {s['ours, image cache']:.2f} s | "
          f"{s['ours, image cache'] / ref:.2f}x (target <= 0.5x) |")  # fmt: skip
    print(f"| first correct answer, empty cache | {s['ours, empty cache']:.2f} s | "
          f"{s['ours, empty cache'] / ref:.2f}x |")  # fmt: skip
    print(f"| requests/s, stack floor (trivial app) | {r['floor']:.0f} | 1x |")
    print(f"| requests/s, model server | {r['model_server']:.0f} | "
          f"{r['model_server'] / r['floor']:.2f}x of the floor (target >= 0.5x); "
          f"{r['model_server'] / r['flask']:.0f}x gunicorn + Flask (target >= 40x) |")  # fmt: skip
    print(f"| requests/s, blog handlers, gunicorn + Flask | {r['flask']:.0f} | |")
    lam = results["lambda_import_s"]
    if lam:
        print(f"| Lambda import, python3.13 | {lam['scoring_api.app']:.2f} s | "
              f"{lam['scoring_api.app'] / lam['boto3']:.2f}x `import boto3` "
              f"({lam['boto3']:.2f} s) |")  # fmt: skip
    else:
        print("| Lambda import | not measured: run `make sam-build` first | |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
