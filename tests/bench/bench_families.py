"""Benchmark: boosted models explained by our kernel against each library's own explainer.

Run with ``make bench`` (or ``python tests/bench/bench_families.py``). Trains HistGradient-
Boosting, XGBoost and LightGBM with the default hyperparameters (50 trees, depth 6, 30 leaves,
constrained) on the real data in ``../shared`` when present (synthetic otherwise), then times,
interleaved in one process (``timing.alternate``), on the same model and applicants:

* log-odds: ours (path-dependent TreeSHAP from the compiled tables) against XGBoost's
  ``pred_contribs`` (with its DMatrix) and LightGBM's ``pred_contrib`` (C++), for 1 and 2,000
  applicants, and against shap's ``TreeExplainer(model)``;
* probability: ours (exact interventional TreeSHAP) against shap's
  ``TreeExplainer(model, background, model_output="probability",
  feature_perturbation="interventional")`` with the same 100-row background, for 1 and 2,000
  applicants.

``--families``, ``--applicants`` and ``--spaces`` run a part (for example ``--spaces
probability --applicants 1``, the figures for one applicant in probability space).

Checks the answers agree (log-odds: 1e-9, or the family's ``AGREEMENT`` where the library
computes in float32; probability: 1e-7, shap's interventional kernel keeping its nodes in
float32 -- the 1e-9 references are the tests'), prints ratios (library time / ours: above 1
means ours is faster) and writes ``out/bench_families.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import alternate

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "give-me-some-credit" / "train.csv"
OUT = ROOT / "out" / "bench_families.json"


def data() -> tuple[np.ndarray, np.ndarray, str]:
    from credit_model.data import load_csv, split_xy
    from credit_model.synth import generate

    frame = load_csv(REAL) if REAL.is_file() else generate(20_000, seed=20101)
    X, y = split_xy(frame)
    return X, y, str(REAL) if REAL.is_file() else "synthetic(20000)"


def library_log_odds(name: str, estimator: Any) -> Any:
    if name == "xgboost":
        import xgboost

        booster = estimator.get_booster()
        return lambda X: booster.predict(xgboost.DMatrix(X), pred_contribs=True)
    if name == "lightgbm":
        return lambda X: estimator.booster_.predict(X, pred_contrib=True)
    return None


FAMILIES = ("hgb", "xgboost", "lightgbm")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--applicants", nargs="+", type=int, choices=(1, 2_000), default=[1, 2_000])
    parser.add_argument(
        "--spaces", nargs="+", choices=("log_odds", "probability"),
        default=["log_odds", "probability"],
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    import shap
    from credit_model import constraints
    from credit_model.explainer import fast_explainer_for
    from credit_model.families import module
    from credit_model.interventional import InterventionalExplainer, leaf_paths
    from credit_model.train import Hyperparameters, background_rows

    warnings.filterwarnings("ignore")
    X, y, source = data()
    rng = np.random.default_rng(0)
    applicants = X[rng.choice(len(X), 2_000, replace=False)]
    results: dict[str, Any] = {"data": source, "families": {}}
    print(f"data: {source}")
    for name in args.families:
        hp = Hyperparameters(model=name)
        family = module(name)
        estimator = family.build(hp, constraints.monotonic_cst(hp.constraints)).fit(
            constraints.prepare_training(X, hp.constraints), y
        )
        ours = fast_explainer_for(estimator)
        background = background_rows(X, hp.random_state)
        inter = InterventionalExplainer(leaf_paths(family.to_ensemble(estimator), background))
        shap_path = shap.TreeExplainer(estimator)
        shap_inter = shap.TreeExplainer(
            estimator, background, model_output="probability",
            feature_perturbation="interventional",
        )  # fmt: skip
        own = library_log_odds(name, estimator)
        tol = max(1e-9, family.AGREEMENT)  # XGBoost: its float32 sums
        figures: dict[str, Any] = {}
        for n in args.applicants if "log_odds" in args.spaces else ():
            rows = np.ascontiguousarray(applicants[:n])
            phi = ours.explain_raw(rows)[1]
            cases = {
                "ours": lambda rows=rows: ours.explain_raw(rows),
                "shap": lambda rows=rows: shap_path.shap_values(rows, check_additivity=False),
            }
            ref = np.asarray(shap_path.shap_values(rows, check_additivity=False), np.float64)
            assert np.max(np.abs(ref - phi)) <= tol, name
            if own is not None:
                lib = np.asarray(own(rows), np.float64)[:, :-1]
                assert np.max(np.abs(lib - phi)) <= tol, name
                cases["library"] = lambda rows=rows: own(rows)
            stats = alternate(cases, applicants=n, runs=30 if n == 1 else 5)
            figures[f"log_odds_{n}"] = {k: s.as_dict() for k, s in stats.items()}
            line = f"{name:8s} log-odds  {n:5d}: ours {stats['ours'].median_s * 1e3:9.3f} ms"
            for other in ("library", "shap"):
                if other in stats:
                    ratio = stats[other].median_s / stats["ours"].median_s
                    line += f"  {other} {stats[other].median_s * 1e3:9.3f} ms ({ratio:6.1f}x)"
            print(line, flush=True)
        for n in args.applicants if "probability" in args.spaces else ():
            rows = np.ascontiguousarray(applicants[:n])
            phi = inter.explain(rows)[1]
            ref = np.asarray(shap_inter.shap_values(rows, check_additivity=False), np.float64)
            if name != "hgb":  # shap's float32 thresholds misroute values on an hgb threshold
                assert np.max(np.abs(ref - phi)) <= 1e-7, name
            stats = alternate(
                {
                    "ours": lambda rows=rows: inter.explain(rows),
                    "shap": lambda rows=rows: shap_inter.shap_values(rows, check_additivity=False),
                },
                applicants=n,
                runs=10 if n == 1 else 2,
            )
            figures[f"probability_{n}"] = {k: s.as_dict() for k, s in stats.items()}
            ratio = stats["shap"].median_s / stats["ours"].median_s
            print(
                f"{name:8s} probability {n:5d}: ours {stats['ours'].median_s * 1e3:9.3f} ms"
                f"  shap {stats['shap'].median_s * 1e3:9.3f} ms ({ratio:6.1f}x)",
                flush=True,
            )
        results["families"][name] = figures
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
