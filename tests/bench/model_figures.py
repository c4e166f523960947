"""Figures of issue 2: held-out metrics, time to train, time to load the model.

    .venv/bin/python tests/bench/model_figures.py [--runs 3]

Trains the default model on ../shared's real data when present (the synthetic data
otherwise), prints ROC AUC / PR AUC / Brier on the held-out split and the fit time,
then loads the model directory in fresh processes (``--runs`` times) and prints the
import time of the libraries apart from ``model_fn`` itself, split into verify +
deserialise and building the explainer. Medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from real_data import REAL_DATA

_PROBE = """
import json, time
t0 = time.perf_counter()
import numpy, pandas, sklearn.ensemble, skops.io, shap  # the libraries model_fn needs
t1 = time.perf_counter()
from credit_model import artifacts
from credit_model.explain import build_explainer
from credit_model.handlers import model_fn
t2 = time.perf_counter()
model = model_fn({model_dir!r})
t3 = time.perf_counter()
loaded = artifacts.load({model_dir!r})
t4 = time.perf_counter()
build_explainer(loaded.pipeline)
t5 = time.perf_counter()
print(json.dumps({{"imports": t1 - t0, "credit_model_import": t2 - t1, "model_fn": t3 - t2,
                  "verify_and_deserialise": t4 - t3, "build_explainer": t5 - t4,
                  "explainer": type(model.explainer).__name__}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-process loads (default 3)")
    args = parser.parse_args()

    from credit_model.train import load_training_data, train

    data_path = REAL_DATA if REAL_DATA.is_file() else None
    frame, source = load_training_data(data_path)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        started = time.perf_counter()
        metrics = train(frame, model_dir, data_source=source, log=lambda *_: None)
        total = time.perf_counter() - started
        print(f"data: {source} ({len(frame)} rows)")
        print(
            f"held-out ({metrics['test_rows']} rows): ROC AUC {metrics['roc_auc']:.4f}, "
            f"PR AUC {metrics['pr_auc']:.4f}, Brier {metrics['brier']:.4f}"
        )
        print(f"train: fit {metrics['fit_seconds']:.2f} s, fit + evaluate + save {total:.2f} s")
        runs = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, "-c", _PROBE.format(model_dir=str(model_dir))],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "explainer"}
    print(
        f"load, fresh process, median of {len(runs)} ({runs[0]['explainer']}): "
        f"library imports {med['imports']:.2f} s, model_fn {med['model_fn']:.3f} s "
        f"(verify + deserialise {med['verify_and_deserialise']:.3f} s, "
        f"explainer {med['build_explainer']:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
