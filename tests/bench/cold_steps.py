"""Where one applicant's time goes, step by step, after the original path and back to back.

    .venv/bin/python tests/bench/cold_steps.py [--runs 300]

The bench (``make bench``) times ours for one applicant right after the original
blog's path, which leaves the CPU caches full of pandas', scikit-learn's and
shap's code and data. This script times the same request through the same
handler stages, step by step, in two conditions: right after a run of the
original path ("cold") and right after another request of ours ("warm", as a
busy server answers). Medians in microseconds; nothing is asserted. The steps
are those of ``input_fn``, ``predict_fn`` and ``output_fn`` for a JSON request.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_explain import train  # noqa: E402
from credit_model import fast_input, fast_io  # noqa: E402
from credit_model.handlers import (  # noqa: E402
    Prediction,
    check_content_type,
    model_fn,
    negotiate,
)
from credit_schema import CONTENT_TYPE_JSON, FEATURES, decode_json  # noqa: E402
from original import OriginalPath  # noqa: E402

STEPS = (
    "content type",
    "JSON parse",
    "record checks",
    "explainer (kernel)",
    "prediction object",
    "accept",
    "encoding",
)


def steps(model: Any, body: bytes) -> list[float]:
    """One request through the handler stages' steps; each step's seconds."""
    clock = time.perf_counter
    t = [clock()]
    check_content_type(CONTENT_TYPE_JSON)
    t.append(clock())
    obj = decode_json(body)
    t.append(clock())
    rows = fast_input.records_array(obj, max_records=model.max_applicants)
    t.append(clock())
    proba, shap_values, _ = model.explain_checked(rows)
    t.append(clock())
    prediction = Prediction(
        rows, proba, float(model.explainer.base_value), shap_values, model.version
    )
    t.append(clock())
    negotiate(CONTENT_TYPE_JSON)
    t.append(clock())
    fast_io.encode_explanations(
        "json",
        prediction.model_version,
        prediction.probability,
        prediction.base_value,
        prediction.inputs,
        prediction.shap_values,
        prediction.order,
    )
    t.append(clock())
    return [b - a for a, b in pairwise(t)]


def measure(before: Callable[[], Any], model: Any, body: bytes, runs: int) -> list[float]:
    """Median seconds of each step over ``runs`` requests, each right after ``before()``."""
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            before()
            samples.append(steps(model, body))
    finally:
        gc.enable()
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="X has feature names")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        data, summary = train(model_dir)
        model = model_fn(str(model_dir))
        original = OriginalPath(model.pipeline)
        body = json.dumps(data[list(FEATURES)].head(1).to_json(orient="records")).encode()
        assert rows_match(model, body)
        conditions = {
            "after the original path": lambda: original(body),
            "back to back": lambda: steps(model, body),
        }
        results = {
            name: measure(before, model, body, args.runs) for name, before in conditions.items()
        }
    print(f"one applicant, {summary['data']}, {args.runs} requests per condition, medians in us")
    width = max(map(len, STEPS))
    print(f"{'step':{width}}  " + "  ".join(f"{name:>24}" for name in results))
    for i, step in enumerate(STEPS):
        print(f"{step:{width}}  " + "  ".join(f"{r[i] * 1e6:24.1f}" for r in results.values()))
    print(f"{'total':{width}}  " + "  ".join(f"{sum(r) * 1e6:24.1f}" for r in results.values()))
    return 0


def rows_match(model: Any, body: bytes) -> bool:
    """The steps take the handlers' own path: the same rows as ``input_fn``."""
    from credit_model.handlers import input_fn

    rows = fast_input.records_array(decode_json(body), max_records=model.max_applicants)
    return rows is not None and bool((rows == input_fn(body, CONTENT_TYPE_JSON)).all())


if __name__ == "__main__":
    raise SystemExit(main())
