"""Benchmark: the original blog's scoring path against ours, in one process.

Run with ``make bench`` (or ``python tests/bench/bench_explain.py``). Trains the
default model on the real data in ``../shared`` when present (synthetic data
otherwise), then measures, alternating the paths run by run:

* the original blog's path (``original.OriginalPath``: pandas DataFrame,
  imputer, the forest's ``predict_proba``, ``shap.TreeExplainer.shap_values``,
  ``json.dumps``) and ours through the SageMaker inference handlers
  (``input_fn`` -> ``predict_fn`` -> ``output_fn``, JSON in, JSON out; both the
  default response and the blog's legacy shape), for 1, 100 and 2,000 applicants
  per request, from the same request body (the blog client's double-encoded
  ``df.to_json(orient="records")``);
* the explainers alone on a numpy batch: ``shap.TreeExplainer.shap_values``
  (the best off-the-shelf exact path) against ours;
* one applicant through the local model server over HTTP (ours), with the
  server's memory (RSS);
* model load (``model_fn``), in this process and in a fresh one.

Checks that every path gives the same probabilities and SHAP values (1e-9),
prints a table with ratios, and writes ``out/bench.json`` (gitignored) so runs
can be compared across commits. Figures depend on the machine and its load:
compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from credit_schema import CONTENT_TYPE_JSON, CONTENT_TYPE_LEGACY_JSON, FEATURES  # noqa: E402
from original import OriginalPath  # noqa: E402
from timing import Stats, alternate  # noqa: E402

REAL_DATA = ROOT / ".." / "shared" / "data" / "give-me-some-credit" / "train.csv"
TOL = 1e-9
SIZES = (1, 100, 2000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the model ----------------------------------------------------------------


def train(model_dir: Path) -> dict[str, Any]:
    """Train the default model (real data when present) into ``model_dir``."""
    from credit_model import adapters

    start = time.perf_counter()
    source = adapters.train_default(REAL_DATA if REAL_DATA.exists() else None, model_dir)
    return {"data": source, "train_s": time.perf_counter() - start}


def applicants_frame(n: int) -> Any:
    """The first ``n`` applicants of the data the model was trained on (missing values kept)."""
    from credit_model import adapters

    return adapters.frame(REAL_DATA if REAL_DATA.exists() else None).head(n)


# --- measurements ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def model_server(model_dir: Path) -> Any:
    """The real model server (``credit-explainer serve-model``) in a child process."""
    import httpx

    port = free_port()
    exe = Path(sys.executable).with_name("credit-explainer")
    proc = subprocess.Popen(
        [str(exe), "serve-model", "--model-dir", str(model_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"model server did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def fresh_process_model_fn(model_dir: Path) -> dict[str, float]:
    """Import the handlers and run ``model_fn`` in a new interpreter: the cold start."""
    code = (
        "import time, json, sys; t0 = time.perf_counter();"
        "from credit_model.handlers import model_fn; t1 = time.perf_counter();"
        "model_fn(sys.argv[1]); t2 = time.perf_counter();"
        "print(json.dumps({'import_s': t1 - t0, 'model_fn_s': t2 - t1}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(model_dir)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def arrays_from(body: bytes | str) -> tuple[np.ndarray, np.ndarray, float]:
    """(probabilities, SHAP matrix in feature order, base value) from any of the response shapes."""
    doc = json.loads(body)
    if "prediction" in doc:  # the blog's legacy shape
        shap = np.array([doc["shap_values"][f] for f in FEATURES]).T
        return np.array(doc["prediction"]), shap, float(doc["shap_base"])
    preds = doc["predictions"]
    proba = np.array([p["probability"] for p in preds])
    shap = np.array(
        [
            [{c["feature"]: c["shap_value"] for c in p["contributions"]}[f] for f in FEATURES]
            for p in preds
        ]
    )
    return proba, shap, float(preds[0]["base_value"])


def max_differences(reference: bytes | str, *others: bytes | str) -> dict[str, float]:
    """Largest absolute differences of probabilities, SHAP values and base value, and additivity."""
    p0, s0, b0 = arrays_from(reference)
    worst = {"probability": 0.0, "shap": 0.0, "base_value": 0.0, "additivity": 0.0}
    for other in others:
        p, s, b = arrays_from(other)
        worst["probability"] = max(worst["probability"], float(np.max(np.abs(p - p0))))
        worst["shap"] = max(worst["shap"], float(np.max(np.abs(s - s0))))
        worst["base_value"] = max(worst["base_value"], abs(b - b0))
        worst["additivity"] = max(worst["additivity"], float(np.max(np.abs(b + s.sum(1) - p))))
    return worst


def check(label: str, worst: dict[str, float]) -> None:
    bad = {k: v for k, v in worst.items() if not v <= TOL}
    if bad:
        raise SystemExit(f"{label}: results differ by more than {TOL}: {bad}")


def fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def table(rows: list[dict[str, Any]]) -> str:
    head = ["path", "applicants", "median", "p99", "per applicant", "speed-up"]
    lines = [head] + [
        [
            r["path"],
            str(r["applicants"]),
            fmt_time(r["median_s"]),
            fmt_time(r["p99_s"]),
            fmt_time(r["per_applicant_s"]),
            f"{r['speedup']:.1f}x" if r.get("speedup") else "1x (reference)",
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def row(stats: Stats, path: str, reference: Stats | None) -> dict[str, Any]:
    speedup = reference.median_s / stats.median_s if reference is not None else None
    return {**stats.as_dict(), "path": path, "speedup": speedup}


def handle(model: Any, body: bytes, accept: str) -> bytes:
    """Ours: the SageMaker inference handlers, JSON in, JSON out."""
    from credit_model.handlers import input_fn, output_fn, predict_fn

    return adapters_output(output_fn(predict_fn(input_fn(body, CONTENT_TYPE_JSON), model), accept))


def adapters_output(result: Any) -> bytes:
    if isinstance(result, tuple):  # (body, content type)
        result = result[0]
    return result if isinstance(result, bytes) else str(result).encode()


def runs_for(n: int, quick: bool) -> int:
    if quick:
        return 2
    return {1: 300, 100: 60}.get(n, 12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench.json")
    parser.add_argument("--quick", action="store_true", help="a few runs only (smoke test)")
    parser.add_argument("--no-http", action="store_true", help="skip the model server")
    args = parser.parse_args(argv)

    from credit_model import adapters
    from credit_model.handlers import model_fn

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_before": os.getloadavg()[0],
            "platform": platform.platform(),
        },
        "checks": {},
        "timings": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        log("training the default model ...")
        results["model"] = train(model_dir)
        log(f"trained on {results['model']['data']} in {results['model']['train_s']:.1f} s")

        start = time.perf_counter()
        model = model_fn(str(model_dir))
        results["model_fn_s"] = time.perf_counter() - start
        results["model_fn_fresh_process"] = fresh_process_model_fn(model_dir)
        pipeline = adapters.pipeline(model)
        ours_explainer = adapters.explainer(model)
        original = OriginalPath(pipeline)
        frame = applicants_frame(max(SIZES))
        results["explainer"] = type(ours_explainer).__name__

        # JSON in, JSON out, for each request size.
        for n in SIZES:
            body = json.dumps(frame.head(n).to_json(orient="records")).encode()  # the blog's client
            orig_out = original(body)
            ours_out = handle(model, body, CONTENT_TYPE_JSON)
            legacy_out = handle(model, body, CONTENT_TYPE_LEGACY_JSON)
            worst = max_differences(orig_out, ours_out, legacy_out)
            check(f"{n} applicants", worst)
            results["checks"][f"handlers_{n}"] = worst
            log(f"{n} applicants per request: identical to {TOL}; timing ...")
            stats = alternate(
                {
                    "original": lambda body=body: original(body),
                    "ours": lambda body=body: handle(model, body, CONTENT_TYPE_JSON),
                    "ours_legacy": lambda body=body: handle(model, body, CONTENT_TYPE_LEGACY_JSON),
                },
                applicants=n,
                runs=runs_for(n, args.quick),
            )
            ref = stats["original"]
            results["timings"] += [
                row(ref, "original blog path (JSON in/out)", None),
                row(stats["ours"], "ours, handlers (JSON in/out)", ref),
                row(stats["ours_legacy"], "ours, handlers, legacy shape", ref),
            ]

        # The explainers alone on a numpy batch: shap's C++ TreeSHAP against ours.
        X = frame.to_numpy(dtype=np.float64)
        X_imputed = pipeline[0].transform(frame)
        for n in (1, max(SIZES)):
            shap_values = original.explainer.shap_values(X_imputed[:n])[:, :, 1]
            proba, ours_values = ours_explainer.explain(X[:n])
            worst = {
                "shap": float(np.max(np.abs(shap_values - ours_values))),
                "probability": float(
                    np.max(np.abs(pipeline.predict_proba(frame.head(n))[:, 1] - proba))
                ),
            }
            check(f"explainers, {n} rows", worst)
            results["checks"][f"explainers_{n}"] = worst
            stats = alternate(
                {
                    "shap": lambda n=n: original.explainer.shap_values(X_imputed[:n]),
                    "ours": lambda n=n: ours_explainer.explain(X[:n]),
                },
                applicants=n,
                runs=runs_for(n, args.quick) * (5 if n > 1 else 1),
            )
            results["timings"] += [
                row(stats["shap"], "shap.TreeExplainer.shap_values (numpy)", None),
                row(stats["ours"], f"ours, {results['explainer']}.explain (numpy)", stats["shap"]),
            ]

        # One applicant over HTTP through the real model server.
        if not args.no_http:
            import httpx

            body = json.dumps(frame.head(1).to_json(orient="records")).encode()
            with model_server(model_dir) as (url, pid), httpx.Client(timeout=30) as client:
                headers = {"Content-Type": CONTENT_TYPE_JSON, "Accept": CONTENT_TYPE_JSON}
                response = client.post(f"{url}/invocations", content=body, headers=headers)
                response.raise_for_status()
                worst = max_differences(original(body), response.content)
                check("model server", worst)
                results["checks"]["http_1"] = worst
                results["server_rss_mib_idle"] = rss_mib(pid)
                stats = alternate(
                    {
                        "original": lambda: original(body),
                        "http": lambda: client.post(
                            f"{url}/invocations", content=body, headers=headers
                        ),
                    },
                    applicants=1,
                    runs=runs_for(1, args.quick),
                )
                results["server_rss_mib_after"] = rss_mib(pid)
            results["timings"] += [
                row(stats["http"], "ours, model server over HTTP", stats["original"]),
            ]
    results["machine"]["load_average_1m_after"] = os.getloadavg()[0]

    print(table(results["timings"]))
    print()
    print(
        f"model_fn: {results['model_fn_s']:.3f} s in this process; fresh process: "
        f"import {results['model_fn_fresh_process']['import_s']:.2f} s, "
        f"model_fn {results['model_fn_fresh_process']['model_fn_s']:.3f} s"
    )
    if "server_rss_mib_idle" in results:
        print(
            f"model server RSS: {results['server_rss_mib_idle']:.0f} MiB idle, "
            f"{results['server_rss_mib_after']:.0f} MiB after the HTTP runs"
        )
    print(f"all paths agree to {TOL} (probabilities, SHAP values, base value, additivity)")
    print(
        f"load average (1 min) before/after: {results['machine']['load_average_1m_before']:.2f}"
        f" / {results['machine']['load_average_1m_after']:.2f} on {os.cpu_count()} CPUs"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
