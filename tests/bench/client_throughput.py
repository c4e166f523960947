"""Throughput of ``CreditExplainerClient.score_many`` over the local stack, for 2,000 applicants.

    .venv/bin/python tests/bench/client_throughput.py [--model-dir DIR] [--repeats 5]

Model: DIR if given, else one trained here on ../shared's Give Me Some Credit file
(synthetic data when it is absent). Applicants: the first 2,000 valid rows of the
same data. In one process, alternating, after a warm-up, it times
``score_many`` at several batch sizes, a raw httpx POST of all 2,000 to the same
API (no client-side validation or parsing: the client's own overhead is the
difference), and the model's handlers in-process (no HTTP at all). Prints medians,
applicants per second and ratios; checks the client's numbers equal the in-process ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from credit_explainer import CreditExplainerClient
from credit_explainer._inputs import validate_applicants
from credit_explainer_tools.local import LocalStack
from credit_explainer_tools.local.demo import ensure_model
from credit_schema import FEATURES, ModelResponse
from real_data import REAL_DATA


def load_applicants(n: int) -> tuple[list[dict[str, Any]], str]:
    import pandas as pd

    if REAL_DATA.exists():
        frame, source = pd.read_csv(REAL_DATA, nrows=n + 200)[list(FEATURES)], "real data"
    else:
        from credit_model import synth

        frame, source = synth.generate(n + 200, seed=11)[list(FEATURES)], "synthetic data"
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    valid, _ = validate_applicants(records)
    good = [a.model_dump(by_alias=True) for a in valid if a is not None][:n]
    assert len(good) == n
    return good, source


def train_model() -> Path:
    from credit_model.train import load_training_data, train

    data, source = load_training_data(REAL_DATA if REAL_DATA.exists() else None)
    directory = Path(tempfile.mkdtemp(prefix="client-bench-model-"))
    train(data, directory, data_source=source, log=lambda *_: None)
    return directory


def seconds(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--applicants", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model_dir = Path(args.model_dir) if args.model_dir else train_model()
    ensure_model(model_dir)
    applicants, source = load_applicants(args.applicants)
    n = len(applicants)
    body = json.dumps(applicants).encode()

    from credit_model import handlers

    model = handlers.model_fn(model_dir)

    def in_process() -> None:
        handlers.transform(model, body, "application/json", "application/json")

    with (
        LocalStack(model_dir, log_level="WARNING") as stack,
        CreditExplainerClient(stack.api_url, timeout=120) as client,
        httpx.Client(base_url=stack.api_url, timeout=120) as raw,
    ):
        # Same numbers as the model in-process.
        expected = ModelResponse.model_validate_json(
            handlers.transform(model, body, "application/json", "application/json")[0]
        ).predictions
        got = client.score_many(applicants, batch_size=500)
        assert all(
            s.probability == e.probability
            and s.shap_values == {c.feature: c.shap_value for c in e.contributions}
            for s, e in zip(got.scores, expected, strict=True)
        ), "client and in-process numbers differ"

        def raw_post() -> None:
            raw.post(
                "/score", content=body, headers={"content-type": "application/json"}
            ).raise_for_status()

        cases: dict[str, Any] = {
            f"score_many batch_size={b}": (lambda b=b: client.score_many(applicants, batch_size=b))
            for b in (100, 500, 2000)
        }
        cases["raw httpx POST, 1 request"] = raw_post
        cases["handlers in-process (no HTTP)"] = in_process
        for fn in cases.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(args.repeats):
            for label, fn in cases.items():
                times[label].append(seconds(fn))

    print(f"{n} applicants ({source}), median of {args.repeats} runs, local stack on loopback")
    reference = statistics.median(times["raw httpx POST, 1 request"])
    for label, ts in times.items():
        med = statistics.median(ts)
        print(
            f"  {label:32s} {med * 1000:8.1f} ms  {n / med:8.0f} applicants/s  "
            f"{med / reference:5.2f}x the raw POST"
        )


if __name__ == "__main__":
    main()
