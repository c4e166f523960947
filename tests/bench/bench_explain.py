"""Benchmark: the original blog's scoring path against ours, in one process.

Run with ``make bench`` or ``credit-explainer bench`` (or ``python
tests/bench/bench_explain.py``; ``--threads N`` sets the threads large requests
are split across, default the CPUs). Trains the
default model on the real data in ``../shared`` when present (synthetic data
otherwise), then measures, each run of ours right after a run of the reference
(``timing.after_reference``: every case starts from the CPU caches the reference
leaves, so the cases compare on equal terms):

* the original blog's path (``original.OriginalPath``: pandas DataFrame,
  imputer, the forest's ``predict_proba``, ``shap.TreeExplainer.shap_values``,
  ``json.dumps``) and ours through the SageMaker inference handlers
  (``input_fn`` -> ``predict_fn`` -> ``output_fn``, JSON in, JSON out; both the
  default response and the blog's legacy shape), for 1, 100 and 2,000 applicants
  per request, from the same request body (the blog client's double-encoded
  ``df.to_json(orient="records")``); where ours splits a request across threads,
  also on one thread (the original path runs on one); for one applicant, also
  ours alone, back to back (as a busy server answers: after the original path,
  ours starts from CPU caches filled with the reference's code and data);
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
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from credit_model.explainer import PARALLEL_MIN_APPLICANTS  # noqa: E402
from credit_model.handlers import input_fn, model_fn, output_fn, predict_fn  # noqa: E402
from credit_schema import CONTENT_TYPE_JSON, CONTENT_TYPE_LEGACY_JSON, FEATURES  # noqa: E402
from original import OriginalPath  # noqa: E402
from real_data import REAL_DATA  # noqa: E402
from timing import Stats, after_reference, alternate  # noqa: E402

TOL = 1e-9
SIZES = (1, 100, 2000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the model ----------------------------------------------------------------


def train(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Train the default model (real data when present) into ``model_dir``; (data, summary)."""
    from credit_model.train import load_training_data
    from credit_model.train import train as fit

    data, source = load_training_data(REAL_DATA if REAL_DATA.is_file() else None)
    start = time.perf_counter()
    metrics = fit(data, model_dir, data_source=source, log=lambda *_: None)
    summary = {"data": source, "rows": len(data), "train_s": time.perf_counter() - start}
    return data, {
        **summary,
        "roc_auc": metrics["roc_auc"],
        "model_version": metrics["model_version"],
    }


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
    # Its log goes to a file: a pipe nobody reads would stall the server once full.
    log_file = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [str(exe), "serve-model", "--model-dir", str(model_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
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
                log_file.seek(0)
                err = log_file.read().decode(errors="replace")
                raise RuntimeError(f"model server did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def fresh_process_model_fn(model_dir: Path) -> dict[str, float]:
    """A new interpreter: import the libraries, then the handlers, then run ``model_fn``.

    Library imports (scikit-learn, skops, numba) are timed apart: they are paid
    once per process, before the model server answers its first ping.
    """
    code = (
        "import time, json, sys; t0 = time.perf_counter();"
        "import numpy, sklearn.ensemble, skops.io, numba; t1 = time.perf_counter();"
        "from credit_model.handlers import model_fn; t2 = time.perf_counter();"
        "model_fn(sys.argv[1]); t3 = time.perf_counter();"
        "print(json.dumps({'library_import_s': t1 - t0, 'handlers_import_s': t2 - t1,"
        " 'model_fn_s': t3 - t2, 'shap_imported': 'shap' in sys.modules}))"
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
    """Ours: the SageMaker inference handlers, JSON in, JSON out.

    (The handlers are imported once, at the top, as the original path's libraries
    are: an import statement here would cost every request a few microseconds.)
    """
    rows = input_fn(body, CONTENT_TYPE_JSON, max_applicants=model.max_applicants)
    return output_fn(predict_fn(rows, model), accept)[0]


@contextmanager
def single_thread(explainer: Any) -> Any:
    """Ours with the explainer on one thread, as the original path runs."""
    threads = explainer.threads
    explainer.threads = 1
    try:
        yield
    finally:
        explainer.threads = threads


def one_thread(model: Any, body: bytes) -> bytes:
    with single_thread(model.explainer):
        return handle(model, body, CONTENT_TYPE_JSON)


def explain_one_thread(explainer: Any, X: np.ndarray) -> Any:
    with single_thread(explainer):
        return explainer.explain(X)


def on(threads: int, n: int) -> str:
    return f", {threads} threads" if threads > 1 and n >= PARALLEL_MIN_APPLICANTS else ""


def runs_for(n: int, quick: bool) -> int:
    if quick:
        return 1
    return {1: 300, 100: 60}.get(n, 12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench.json")
    parser.add_argument("--quick", action="store_true", help="a few runs only (smoke test)")
    parser.add_argument("--no-http", action="store_true", help="skip the model server")
    parser.add_argument("--threads", type=int, help="threads for large requests (default: CPUs)")
    args = parser.parse_args(argv)
    if args.threads:
        from credit_model.explainer import THREADS_ENV

        os.environ[THREADS_ENV] = str(args.threads)  # read by model_fn, here and in the server
    # The pipeline is fitted on arrays; the original path passes a DataFrame, as the blog did.
    warnings.filterwarnings("ignore", message="X has feature names")

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
        data, results["model"] = train(model_dir)
        log(f"trained on {results['model']['data']} in {results['model']['train_s']:.1f} s")

        start = time.perf_counter()
        model = model_fn(str(model_dir))
        results["model_fn_s"] = time.perf_counter() - start
        results["model_fn_fresh_process"] = fresh_process_model_fn(model_dir)
        from credit_model.artifacts import load

        pipeline = load(model_dir).pipeline
        ours_explainer = model.explainer
        original = OriginalPath(pipeline)
        frame = data[list(FEATURES)].head(max(SIZES))  # missing values kept
        results["explainer"] = type(ours_explainer).__name__
        threads = int(getattr(ours_explainer, "threads", 1))
        results["threads"] = threads

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
            cases = {
                "ours": lambda body=body: handle(model, body, CONTENT_TYPE_JSON),
                "ours_legacy": lambda body=body: handle(model, body, CONTENT_TYPE_LEGACY_JSON),
            }
            parallel = threads > 1 and n >= PARALLEL_MIN_APPLICANTS
            if parallel:
                cases["ours_1_thread"] = lambda body=body: one_thread(model, body)
            ref, stats = after_reference(
                lambda body=body: original(body),
                cases,
                applicants=n,
                runs=runs_for(n, args.quick),
                warmup=0 if args.quick else 2,
            )
            results["timings"] += [
                row(ref, "original blog path (JSON in/out)", None),
                row(stats["ours"], f"ours, handlers (JSON in/out){on(threads, n)}", ref),
                row(stats["ours_legacy"], f"ours, handlers, legacy shape{on(threads, n)}", ref),
            ]
            if parallel:
                results["timings"].append(
                    row(stats["ours_1_thread"], "ours, handlers (JSON in/out), 1 thread", ref)
                )
            if n == 1:
                # Above, ours runs right after the original path, which leaves the CPU
                # caches full of its own code and data; a busy server answers requests
                # back to back. Reported apart, against the same reference.
                alone = alternate(
                    {"ours": lambda body=body: handle(model, body, CONTENT_TYPE_JSON)},
                    applicants=n,
                    runs=runs_for(n, args.quick),
                    warmup=0 if args.quick else 2,
                )
                results["timings"].append(
                    row(alone["ours"], "ours, handlers (JSON in/out), back to back", ref)
                )

        # The explainers alone on a numpy batch: shap's C++ TreeSHAP against ours.
        X = frame.to_numpy(dtype=np.float64)
        X_imputed = pipeline[0].transform(X)
        for n in (1, max(SIZES)):
            shap_values = original.explainer.shap_values(X_imputed[:n])[:, :, 1]
            proba, ours_values = ours_explainer.explain(X[:n])
            worst = {
                "shap": float(np.max(np.abs(shap_values - ours_values))),
                "probability": float(np.max(np.abs(pipeline.predict_proba(X[:n])[:, 1] - proba))),
            }
            check(f"explainers, {n} rows", worst)
            results["checks"][f"explainers_{n}"] = worst
            cases = {"ours": lambda n=n: ours_explainer.explain(X[:n])}
            parallel = threads > 1 and n >= PARALLEL_MIN_APPLICANTS
            if parallel:
                cases["ours_1_thread"] = lambda n=n: explain_one_thread(ours_explainer, X[:n])
            shap_stats, stats = after_reference(
                lambda n=n: original.explainer.shap_values(X_imputed[:n]),
                cases,
                applicants=n,
                runs=runs_for(n, args.quick) * (1 if args.quick or n == 1 else 3),
                warmup=0 if args.quick else 2,
            )
            name = f"ours, {results['explainer']}.explain (numpy)"
            results["timings"] += [
                row(shap_stats, "shap.TreeExplainer.shap_values (numpy)", None),
                row(stats["ours"], name + on(threads, n), shap_stats),
            ]
            if parallel:
                results["timings"].append(
                    row(stats["ours_1_thread"], name + ", 1 thread", shap_stats)
                )

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
                http_ref, stats = after_reference(
                    lambda: original(body),
                    {
                        "http": lambda: client.post(
                            f"{url}/invocations", content=body, headers=headers
                        )
                    },
                    applicants=1,
                    runs=runs_for(1, args.quick),
                    warmup=0 if args.quick else 2,
                )
                results["server_rss_mib_after"] = rss_mib(pid)
            results["timings"] += [
                row(stats["http"], "ours, model server over HTTP", http_ref),
            ]
    results["machine"]["load_average_1m_after"] = os.getloadavg()[0]

    print(table(results["timings"]))
    print()
    fresh = results["model_fn_fresh_process"]
    print(
        f"model_fn: {fresh['model_fn_s']:.3f} s in a fresh process (after importing numpy, "
        f"scikit-learn, skops and numba: {fresh['library_import_s']:.2f} s, and the handlers: "
        f"{fresh['handlers_import_s']:.2f} s; shap imported: {fresh['shap_imported']}); "
        f"{results['model_fn_s']:.3f} s in this process"
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
