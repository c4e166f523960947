"""Issue 30, the report's verdicts: each new figure against a computation of its own (scipy,
pandas, numpy), the disparate-impact section, ``--strict`` and the page in a real browser."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from credit_explainer.cli import main
from credit_model import artifacts
from credit_model.data import load_csv, split_xy
from credit_model.explain import build_explainer
from credit_model.report import checks
from credit_model.synth import generate
from credit_model.train import holdout_split
from credit_schema import BUILTIN, FEATURES
from scipy import stats
from sklearn.metrics import roc_auc_score

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def scored(n: int = 2000, seed: int = 0, bias: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 12, n)
    y = (rng.random(n) < np.minimum(p * bias, 1)).astype(np.int64)
    return y, p


def binomial_two_sided(k: int, n: int, rate: float) -> float:
    """Exact two-sided p: the probability of every count no likelier than ``k``."""
    pmf = [math.comb(n, i) * rate**i * (1 - rate) ** (n - i) for i in range(n + 1)]
    return min(1.0, sum(q for q in pmf if q <= pmf[k] * (1 + 1e-7)))


def chi2_sf_even_df(x: float, df: int) -> float:
    """Chi-square survival function for an even df, in closed form (a Poisson sum)."""
    return math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(df // 2))


@pytest.mark.parametrize("bias", [1.0, 1.4])
def test_hosmer_lemeshow_and_the_binomial_tests_equal_a_computation_of_their_own(
    bias: float,
) -> None:
    y, p = scored(bias=bias)
    test = checks.calibration_test(y, p)
    order = np.argsort(p, kind="stable")
    hl, rows = 0.0, []
    for decile in np.split(order, 10):  # 2,000 rows: ten deciles of 200
        o, e, n = y[decile].sum(), p[decile].sum(), len(decile)
        hl += (o - e) ** 2 / (e * (1 - e / n))
        rows.append(binomial_two_sided(int(o), n, e / n))
    assert test["hosmer_lemeshow"]["statistic"] == pytest.approx(hl, rel=1e-12)
    assert test["hosmer_lemeshow"]["df"] == 8
    assert test["hosmer_lemeshow"]["p_value"] == pytest.approx(chi2_sf_even_df(hl, 8), rel=1e-9)
    assert [r["p_value"] for r in test["deciles"]] == pytest.approx(rows, rel=1e-6)
    passed = bool(chi2_sf_even_df(hl, 8) >= 0.05 and min(rows) >= 0.005)
    assert test["passed"] is passed
    assert passed is (bias == 1.0)  # the honest scores pass, the scores 40% too low fail


def test_bootstrap_intervals_agree_with_scipy_s_bootstrap() -> None:
    y, p = scored(1500, seed=1)
    got = checks.bootstrap_intervals(y, p, resamples=2000)

    def ks(y: np.ndarray, p: np.ndarray, axis: int = -1) -> float:
        return float(stats.ks_2samp(p[y == 1], p[y == 0]).statistic)

    def auc(y: np.ndarray, p: np.ndarray, axis: int = -1) -> float:
        return float(roc_auc_score(y, p))

    for name, statistic in (("auc", auc), ("ks", ks)):
        ref = stats.bootstrap(
            (y, p), statistic, paired=True, vectorized=False, n_resamples=2000,
            confidence_level=0.95, method="percentile", rng=np.random.default_rng(7),
        ).confidence_interval  # fmt: skip
        assert got[name] == pytest.approx([ref.low, ref.high], abs=0.01), name
    assert got["gini"] == pytest.approx([2 * got["auc"][0] - 1, 2 * got["auc"][1] - 1])
    width = got["auc"][1] - got["auc"][0]
    # DeLong's standard error of an AUC, an independent check of the width.
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    se = math.sqrt(
        psi.mean(axis=1).var(ddof=1) / len(pos) + psi.mean(axis=0).var(ddof=1) / len(neg)
    )
    assert width == pytest.approx(2 * 1.96 * se, rel=0.05)


def test_disparate_impact_equals_a_groupby_of_its_own() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    group = rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]).tolist()
    approved = rng.random(n) < np.where(np.array(group) == "c", 0.5, 0.8)
    shap = rng.normal(size=(n, 3)) + np.where(np.array(group) == "c", 1.0, 0.0)[:, None]
    got = checks.disparate_impact({"g": group}, approved, shap, ["x", "y", "z"], "band 'approve'")
    frame = pd.DataFrame(shap, columns=["x", "y", "z"]).assign(
        g=pd.Series(group).fillna("(missing)"), ok=approved
    )
    by = frame.groupby("g")
    rates = by["ok"].mean()
    section = got["attributes"][0]
    assert [g["group"] for g in section["groups"]] == sorted(rates.index)
    for g in section["groups"]:
        assert g["count"] == by.size()[g["group"]]
        assert g["approval_rate"] == pytest.approx(rates[g["group"]])
        assert g["adverse_impact_ratio"] == pytest.approx(rates[g["group"]] / rates.max())
        assert g["flagged"] is bool(rates[g["group"]] / rates.max() < 0.8)
        means = by[["x", "y", "z"]].mean().loc[g["group"]]
        assert [g["mean_contributions"][f] for f in "xyz"] == pytest.approx(means.tolist())
    assert {g["group"] for g in section["groups"] if g["flagged"]} == {"c"}
    assert section["most_favoured"] == rates.idxmax() and not got["passed"]


def logistic_by_newton(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unpenalised logistic regression (intercept first) by Newton-Raphson."""
    A = np.column_stack([np.ones(len(Z)), Z])
    beta = np.zeros(A.shape[1])
    for _ in range(50):
        q = 1 / (1 + np.exp(-A @ beta))
        step = np.linalg.solve(A.T @ (A * (q * (1 - q))[:, None]), A.T @ (y - q))
        beta += step
        if np.abs(step).max() < 1e-12:
            break
    return beta


GROUP = "applicant_group"


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model on the built-in schema plus a prohibited-basis column tied to the risk, trained on
    the synthetic data with that column, and the labelled file."""
    import json

    from credit_model.train import Hyperparameters, train
    from credit_schema import SCHEMA_FILE, compile_schema, parse_schema
    from credit_schema.schema import schema_document

    document = schema_document(BUILTIN.schema) | {
        "prohibited": [{"name": GROUP, "basis": "a stand-in for a protected class"}]
    }
    schema = compile_schema(parse_schema(document))
    frame = generate(6_000, seed=7)
    late = frame["NumberOfTimes90DaysLate"] > 0
    frame[GROUP] = np.where(late, "late-payers", "others")
    directory = tmp_path_factory.mktemp("checks")
    train(frame, directory / "model", schema=schema, hyperparameters=Hyperparameters(n_jobs=1),
          log=lambda *_: None)  # fmt: skip
    assert json.loads((directory / "model" / SCHEMA_FILE).read_text())["prohibited"]
    frame.to_csv(directory / "labelled.csv", index=False)
    return directory / "model", directory / "labelled.csv"


def test_strict_report_names_its_failed_checks_and_the_benchmark_is_a_logistic_fit(
    grouped: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, labelled = grouped
    page, figures = tmp_path / "report.html", tmp_path / "report.json"
    argv = ["report", "--model-dir", str(model_dir), "--data", str(labelled), "--holdout",
            "-o", str(page), "--json", str(figures)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--strict"]) == 1
    out = capsys.readouterr().out
    f = pd.read_json(figures, typ="series")
    failed = [v["check"] for v in f["verdicts"] if not v["passed"]]
    assert "disparate impact: applicant_group (four-fifths rule)" in failed
    assert all(f"check failed: {c}" in out for c in failed)
    text = page.read_text()
    assert f"{len(failed)} of {len(f['verdicts'])} checks failed" in text

    # The benchmark: the same split, an unpenalised logistic regression fitted here by Newton.
    model = artifacts.load(model_dir)
    X, y = split_xy(load_csv(labelled, model.schema), model.schema)
    X_train, X_test, y_train, y_test = holdout_split(X, y, 0.2, 42)

    def transform(A: np.ndarray, medians: np.ndarray, with_missing: np.ndarray) -> np.ndarray:
        T = np.sign(A) * np.log1p(np.abs(A))
        return np.column_stack([np.where(np.isnan(T), medians, T), np.isnan(A[:, with_missing])])

    T_train = np.sign(X_train) * np.log1p(np.abs(X_train))
    medians, with_missing = np.nanmedian(T_train, axis=0), np.isnan(X_train).any(axis=0)
    Z_train = transform(X_train, medians, with_missing)
    mean, std = Z_train.mean(axis=0), Z_train.std(axis=0)
    beta = logistic_by_newton((Z_train - mean) / std, y_train)
    z = beta[0] + ((transform(X_test, medians, with_missing) - mean) / std) @ beta[1:]
    bench = f["benchmark"]
    assert bench["available"] and bench["train_rows"] == len(y_train)
    assert bench["logistic_regression"]["auc"] == pytest.approx(roc_auc_score(y_test, z), abs=1e-4)
    p = build_explainer(model.pipeline).explain(X_test)[0]
    assert bench["model"]["auc"] == pytest.approx(roc_auc_score(y_test, p), abs=1e-12)

    # Approval rates by group: the model's own probabilities against the top-decile cutoff.
    groups = np.where(
        X_test[:, FEATURES.index("NumberOfTimes90DaysLate")] > 0, "late-payers", "others"
    )
    approved = p < np.quantile(p, 0.9)
    rates = {g: approved[groups == g].mean() for g in ("late-payers", "others")}
    section = f["disparate_impact"]["attributes"][0]
    got = {g["group"]: g["adverse_impact_ratio"] for g in section["groups"]}
    assert got == pytest.approx({g: r / max(rates.values()) for g, r in rates.items()})


def test_a_prohibited_attribute_must_be_one_the_schema_names(
    grouped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, labelled = grouped
    argv = ["report", "--model-dir", str(model_dir), "--data", str(labelled), "--json",
            os.devnull, "--no-html", "--prohibited"]  # fmt: skip
    assert main([*argv, "age"]) == 2
    assert capsys.readouterr().err.startswith("error: --prohibited age: a model input")
    assert main([*argv, "no_such_column"]) == 2
    err = capsys.readouterr().err
    assert "not a prohibited-basis attribute of the model's schema" in err and GROUP in err
    assert main([*argv, GROUP]) == 0


def test_the_report_with_its_verdicts_renders_in_a_real_browser(
    grouped: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir, labelled = grouped
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is needed in CI (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium")
    page = tmp_path / "report.html"
    argv = ["report", "--model-dir", str(model_dir), "--data", str(labelled), "--holdout",
            "-o", str(page)]  # fmt: skip
    assert main(argv) == 0
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()], check=True, capture_output=True, timeout=120
    ).stdout.decode()
    for heading in ("Checks", "Uncertainty", "Benchmark", "Calibration tests", "Disparate impact"):
        assert heading in dom, heading
    assert "late-payers" in dom and "checks failed:" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    from matplotlib.image import imread

    pixels = imread(shot)[:, :, :3]
    red = np.array([0xB3, 0x26, 0x1E]) / 255  # FAIL's colour reached the screen, above the fold
    assert (np.abs(pixels - red).max(axis=2) < 0.02).mean() > 1e-4
