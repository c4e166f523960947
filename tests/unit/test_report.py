"""``credit-explainer report``: figures checked against independent computations, HTML, CLI."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from credit_explainer.cli import main
from credit_model import artifacts
from credit_model.data import load_csv, split_xy
from credit_model.explain import ShapTreeExplainer
from credit_model.report import build, load_data
from credit_model.synth import generate
from credit_model.train import Hyperparameters, holdout_split, train
from credit_schema import BUILTIN, ELDERLY_AGE, FEATURES
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from tests.conftest import require_real_data

THRESHOLDS = "approve:0.08,review:0.2,decline"
AGE = FEATURES.index("age")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-data") / "labelled.csv"
    generate(3_000, seed=99).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(
    synthetic_model_dir: Path, data_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("report-out")
    html, js = out / "report.html", out / "report.json"
    rc = main(
        [
            "report",
            "--model-dir",
            str(synthetic_model_dir),
            "--data",
            str(data_file),
            "-o",
            str(html),
            "--json",
            str(js),
            "--decision-thresholds",
            THRESHOLDS,
        ]
    )
    assert rc == 0
    X, y = split_xy(load_csv(data_file))
    model = artifacts.load(synthetic_model_dir)
    p = model.pipeline.predict_proba(X)[:, 1]  # scikit-learn's own, not the report's explainer
    return {
        "html": html.read_text(),
        "f": json.loads(js.read_text()),
        "X": X,
        "y": y,
        "p": p,
        "model": model,
    }


def test_auc_gini_ks_equal_independent_computations(run: dict[str, Any]) -> None:
    d, y, p = run["f"]["discrimination"], run["y"], run["p"]
    auc = roc_auc_score(y, p)
    assert abs(d["auc"] - auc) < 1e-9 and abs(d["gini"] - (2 * auc - 1)) < 1e-9
    ks = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert abs(d["ks"] - ks) < 1e-9
    t = d["ks_score"]  # the KS is reached at this score
    assert abs(abs(np.mean(p[y == 0] <= t) - np.mean(p[y == 1] <= t)) - ks) < 1e-9


def test_gains_and_reliability_match_a_computation_of_their_own(run: dict[str, Any]) -> None:
    y, p = run["y"], run["p"]
    # 3,000 rows: ten deciles of exactly 300 by rank (stable order for ties).
    up = np.array_split(np.argsort(p, kind="stable"), 10)
    cal = run["f"]["calibration"]
    assert [r["count"] for r in cal["deciles"]] == [300] * 10
    for row, idx in zip(cal["deciles"], up, strict=True):
        assert abs(row["predicted"] - p[idx].mean()) < 1e-12
        assert abs(row["observed"] - y[idx].mean()) < 1e-12
    ece = sum(len(i) / len(p) * abs(y[i].mean() - p[i].mean()) for i in up)
    assert abs(cal["ece"] - ece) < 1e-12
    assert abs(cal["brier"] - np.mean((p - y) ** 2)) < 1e-12
    down = np.array_split(np.argsort(-p, kind="stable"), 10)
    gains = run["f"]["discrimination"]["gains"]
    assert [g["defaults"] for g in gains] == [int(y[i].sum()) for i in down]
    assert abs(gains[0]["lift"] - y[down[0]].mean() / y.mean()) < 1e-12
    assert gains[-1]["cumulative_gain"] == pytest.approx(1.0)


def _psi(edges: list[float], shares: list[float], missing: float, values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    bounds = [-math.inf, *edges, math.inf]
    actual = [
        np.sum((present > lo) & (present <= hi)) / len(values)
        for lo, hi in itertools.pairwise(bounds)
    ]
    actual.append(np.isnan(values).mean())
    total = 0.0
    for a, e in zip(actual, [*shares, missing], strict=True):
        if a or e:
            a, e = max(a, 1e-4), max(e, 1e-4)
            total += (a - e) * math.log(a / e)
    return total


def test_psi_matches_a_computation_of_its_own(run: dict[str, Any]) -> None:
    st, base = run["f"]["stability"], run["model"].metadata["baseline"]
    assert st["available"]
    for j, name in enumerate(FEATURES):
        b = base["features"][name]
        want = _psi(b["edges"], b["shares"], b["missing_share"], run["X"][:, j])
        assert abs(st["features"][name]["psi"] - want) < 1e-12
    b = base["score"]
    assert abs(st["score"]["psi"] - _psi(b["edges"], b["shares"], 0.0, run["p"])) < 1e-12
    # Same population as training: stable.
    assert st["score"]["psi"] < 0.1


def test_regulation_b_count_matches_shaps_reference(run: dict[str, Any]) -> None:
    X = run["X"]
    _, shap = ShapTreeExplainer(run["model"].pipeline).explain(X)
    elderly = X[:, AGE] >= ELDERLY_AGE
    reg = run["f"]["regulation_b"]
    assert reg["elderly_applicants"] == int(elderly.sum()) > 0
    assert reg["age_raises_risk"] == int(np.sum(shap[elderly, AGE] > 1e-12))
    assert reg["passed"] is (reg["age_raises_risk"] == 0)
    assert reg["constrained_by_construction"] is True  # constraints by default


def test_segments_reasons_importance(run: dict[str, Any]) -> None:
    f, X, y, p = run["f"], run["X"], run["y"], run["p"]
    seg = {s["segment"]: s for s in f["segments"]}
    old = X[:, AGE] >= ELDERLY_AGE
    assert seg["age 62 and over"]["count"] == int(old.sum())
    assert abs(seg["age 62 and over"]["auc"] - roc_auc_score(y[old], p[old])) < 1e-9
    assert sum(seg[k]["count"] for k in seg if k.startswith("age ")) == len(y)
    assert seg["Monthly income missing"]["count"] == int(
        np.isnan(X[:, FEATURES.index("MonthlyIncome")]).sum()
    )
    assert seg["all applicants"]["decisions"]["decline"] == pytest.approx(np.mean(p >= 0.2))
    rs = f["reasons"]
    assert rs["applicants"] == int(np.sum(p >= 0.2)) and rs["basis"] == "decision band 'decline'"
    assert sum(r["first"] for r in rs["reasons"]) == rs["applicants"] - rs["without_reason"]
    imp = f["explanations"]["importance"]
    assert [r["mean_abs_shap"] for r in imp] == sorted(
        (r["mean_abs_shap"] for r in imp), reverse=True
    )
    assert f["explanations"]["max_additivity_gap"] < 1e-9


def test_html_is_self_contained_with_every_plot(run: dict[str, Any]) -> None:
    page = run["html"]
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == [
        "ROC and KS curves",
        "gains and lift",
        "reliability plot",
        "global importance",
        "SHAP summary",
        "dependence plots",
        "PSI per feature",
        "reason frequencies",
    ]
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for heading in (
        "Regulation B",
        "Monotonicity",
        "Model card",
        "Segments",
        "Stability",
        "Training data by feature",
    ):
        assert heading in page
    assert run["model"].metadata["model_sha256"] in page


@pytest.mark.parametrize("model", ["rf", "hgb", "xgboost", "lightgbm"])
def test_the_default_constrained_model_passes_both_checks(
    tmp_path: Path, data_file: Path, model: str
) -> None:
    # Constraints by default: no --constraints given.
    train(
        generate(5_000, seed=3),
        tmp_path / "m",
        hyperparameters=Hyperparameters(model=model, n_jobs=1, n_estimators=20),
        log=lambda *_: None,
    )
    f = build(tmp_path / "m", data_file).figures
    assert f["regulation_b"]["passed"] and f["regulation_b"]["age_raises_risk"] == 0
    assert f["regulation_b"]["constrained_by_construction"]
    assert "capped at 62" in f["regulation_b"]["method"]
    assert f["monotonicity"]["passed"]
    assert all(r["constrained"] for r in f["monotonicity"]["features"])
    assert f["reasons"]["basis"].startswith("top score decile")


def test_a_model_dir_from_before_baselines_still_reports(
    synthetic_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    old = artifacts.load(synthetic_model_dir)
    dropped = ("baseline", "constraints", "model_version", "model_sha256")
    meta = {k: v for k, v in old.metadata.items() if k not in dropped}
    artifacts.save(old.pipeline, tmp_path / "old", metadata=meta, metrics={})
    f = build(tmp_path / "old", data_file).figures
    assert f["stability"]["available"] is False and "retrain" in f["stability"]["why"]
    assert f["data"]["note"] is None  # not the training data
    assert f["regulation_b"]["method"].startswith("none recorded")


def test_training_data_is_flagged_in_sample_unless_held_out(
    data_file: Path, tmp_path: Path
) -> None:
    train(
        load_csv(data_file),
        tmp_path,
        hyperparameters=Hyperparameters(n_jobs=1, n_estimators=10),
        data_source=str(data_file),
        log=lambda *_: None,
    )
    whole = build(tmp_path, data_file).figures["data"]
    assert whole["rows"] == 3_000 and "--holdout" in whole["note"]
    held = build(tmp_path, data_file, holdout=True).figures
    assert held["data"]["rows"] == 600 and held["data"]["note"] is None
    assert (
        abs(
            held["discrimination"]["auc"]
            - json.loads((tmp_path / "metrics.json").read_text())["roc_auc"]
        )
        < 1e-9
    )  # training's own held-out AUC


def test_synthetic_model_without_data_uses_its_regenerated_held_out_split() -> None:
    class Fake:  # only the metadata is read
        metadata: ClassVar[dict[str, Any]] = {
            "training_data": {"source": "synthetic(rows=2000, seed=5)"},
            "hyperparameters": {"test_size": 0.2, "random_state": 42},
        }
        schema = BUILTIN

    X, _, desc = load_data(Fake(), None, holdout=False)
    assert X.shape == (400, 10) and desc["split"] == "held-out split of training"
    Fake.metadata["training_data"]["source"] = "data/train.csv"
    with pytest.raises(ValueError, match="give a labelled --data"):
        load_data(Fake(), None, holdout=False)


def test_cli_errors_are_one_line_and_exit_2(
    synthetic_model_dir: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["report", "--model-dir", str(synthetic_model_dir), "-o", str(tmp_path / "r.html")]
    assert main([*base, "--data", str(data_file), "--thresholds", "approve:0.3,review:0.2,d"]) == 2
    assert "error: --decision-thresholds 'approve:0.3,review:0.2,d': bounds must be increasing" in (
        capsys.readouterr().err
    )
    unlabelled = tmp_path / "x.csv"
    generate(50, seed=1).drop(columns=["SeriousDlqin2yrs"]).to_csv(unlabelled, index=False)
    assert main([*base, "--data", str(unlabelled)]) == 2
    assert "missing column(s) SeriousDlqin2yrs" in capsys.readouterr().err
    assert main([*base]) == 2  # trained on a DataFrame: no data to regenerate
    assert "give a labelled --data file" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_make_demo_writes_the_report_beside_the_model_it_trained(tmp_path: Path) -> None:
    from credit_explainer_tools.local.demo import build_report, report_path

    train(
        generate(3_000, seed=5),
        tmp_path,
        hyperparameters=Hyperparameters(n_jobs=1, n_estimators=10),
        data_source="synthetic(rows=3000, seed=5)",
        log=lambda *_: None,
    )
    build_report(tmp_path)
    page = report_path(tmp_path).read_text()
    assert report_path(tmp_path) == tmp_path / "report.html"
    assert "held-out split of training, 600 rows" in page and "Note:" not in page
    assert artifacts.verify(tmp_path)  # the report beside the artifacts leaves them loadable


def test_json_comes_with_the_html_its_help_promises(tmp_path: Path) -> None:
    model = tmp_path / "model"
    train(
        generate(2_000, seed=5),
        model,
        hyperparameters=Hyperparameters(n_jobs=1, n_estimators=5),
        data_source="synthetic(rows=2000, seed=5)",
        log=lambda *_: None,
    )
    figures = tmp_path / "figures.json"  # beside the model: its directory holds signed files
    assert main(["report", "--model-dir", str(model), "--json", str(figures)]) == 0
    assert json.loads(figures.read_text())["discrimination"]["auc"] > 0.5
    assert "<html" in (model / "report.html").read_text()
    (model / "report.html").unlink()
    argv = ["report", "--model-dir", str(model), "--json", str(figures), "--no-html"]
    assert main(argv) == 0
    assert figures.is_file() and not (model / "report.html").exists()


def test_the_model_server_never_imports_matplotlib() -> None:
    code = (
        "import sys, credit_model.server, credit_model.handlers, credit_model.commands, "
        "credit_model.report; sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_regulation_b_counts_only_elderly_applicants_whose_age_raises_the_risk() -> None:
    from credit_model.report.metrics import regulation_b

    X = np.zeros((5, len(FEATURES)))
    X[:, AGE] = [30, 61, 62, 70, 80]
    shap = np.zeros_like(X)
    shap[:, AGE] = [0.2, 0.1, 0.0, 1e-13, 0.02]  # only the 80-year-old's age raises the risk
    reg = regulation_b(X, shap, {"constraints": {"age_cap": None}})
    assert (reg["elderly_applicants"], reg["age_raises_risk"], reg["passed"]) == (3, 1, False)
    assert reg["share"] == pytest.approx(1 / 3) and reg["max_age_contribution"] == 0.02
    assert reg["method"].startswith("none (train with --constraints elderly_age")


def test_monotonicity_finds_a_model_that_rewards_more_late_payments(tmp_path: Path) -> None:
    from credit_model.report.metrics import monotonicity
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (600, len(FEATURES)))
    j = FEATURES.index("NumberOfTime30-59DaysPastDueNotWorse")
    X[:, j] = rng.integers(0, 3, 600)
    X[:, FEATURES.index("NumberOfTimes90DaysLate")] = 0  # constant: never split on
    y = (X[:, j] == 1).astype(int)  # one late payment is risky, two are "safe"
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    mono = monotonicity(forest, X, {})
    by = {f["feature"]: f for f in mono["features"]}
    assert by["NumberOfTime30-59DaysPastDueNotWorse"]["violations"] == int(np.sum(X[:, j] == 1))
    assert by["NumberOfTimes90DaysLate"]["violations"] == 0 and not mono["passed"]


def test_unconstrained_real_model_regulation_b_count_matches_shaps_reference(
    real_model_dir: Path,
) -> None:
    data = require_real_data()
    f = build(real_model_dir, data, holdout=True).figures
    X, y = split_xy(load_csv(data))
    _, X, _, _ = holdout_split(X, y, 0.2, 42)
    _, shap = ShapTreeExplainer(artifacts.load(real_model_dir).pipeline).explain(X)
    elderly = X[:, AGE] >= ELDERLY_AGE
    reg = f["regulation_b"]
    assert reg["elderly_applicants"] == int(elderly.sum())
    assert reg["age_raises_risk"] == int(np.sum(shap[elderly, AGE] > 1e-12))
    assert reg["passed"] is (reg["age_raises_risk"] == 0)


def test_without_matplotlib_the_cli_says_what_to_install(
    synthetic_model_dir: Path,
    data_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if absent
    args = ["report", "--model-dir", str(synthetic_model_dir), "--data", str(data_file)]
    assert main([*args, "-o", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")]) == 2
    assert "pip install './model_src[plot]' in the credit-explainer checkout" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["discrimination"]["auc"] > 0.5


def test_plot_titles_read_as_words_and_a_long_tail_is_drawn_on_a_log_axis() -> None:
    from credit_model.report.html import _wrapped, axis_scale

    title = _wrapped("NumberOfTime30-59DaysPastDueNotWorse").replace("\n", " ")
    assert "Number Of" not in title and "30-59 days late" in title
    frame = generate(3_000, seed=7)
    assert axis_scale(frame["DebtRatio"].dropna().to_numpy()) == "symlog"
    for name in ("age", "MonthlyIncome", "RevolvingUtilizationOfUnsecuredLines"):
        assert axis_scale(frame[name].dropna().to_numpy()) == "linear", name


def test_a_boosted_model_with_points_reports_its_points_and_log_odds(
    tmp_path: Path, data_file: Path
) -> None:
    from credit_model.report.html import render

    hp = Hyperparameters(model="lightgbm", n_jobs=1, n_estimators=15, points="600:50:20")
    train(generate(4_000, seed=3), tmp_path / "m", hyperparameters=hp, log=lambda *_: None)
    report = build(tmp_path / "m", data_file)
    f = report.figures
    assert f["explanations"]["space"] == "log_odds"
    assert f["explanations"]["max_additivity_gap"] <= 1e-9  # against the log-odds, not p
    pts = f["points"]
    assert pts["scorecard"] == "600:50:20" and [r["feature"] for r in pts["features"]] == list(
        FEATURES
    )
    # Every row's points sum exactly to its score, so the means do too.
    total = pts["mean_base_points"] + sum(r["mean_points"] for r in pts["features"])
    assert abs(total - pts["mean_score"]) <= 1e-9
    assert pts["score_quantiles"]["p1"] < pts["score_quantiles"]["p99"]
    assert "Scorecard points" in render(report)


def test_reason_counts_of_a_log_odds_model_are_the_reasons_its_server_sends(
    tmp_path: Path,
) -> None:
    """The report counts principal reasons with the server's rule in the explanations' space:
    in log-odds the threshold depends on each applicant's probability."""
    from credit_model.handlers import model_fn, transform
    from credit_schema.decisions import DecisionBands

    model, data = tmp_path / "model", tmp_path / "labelled.csv"
    hp = Hyperparameters(model="lightgbm", space="log_odds", n_estimators=20, max_depth=3, n_jobs=1)
    train(generate(2_000, seed=6), model, hyperparameters=hp, log=lambda *_: None)
    generate(800, seed=7).to_csv(data, index=False)
    thresholds = "approve:0.03,review:0.05,decline"  # a third declined, many small reasons
    figures = tmp_path / "figures.json"
    argv = ["report", "--model-dir", str(model), "--data", str(data), "--json", str(figures),
            "--no-html", "--decision-thresholds", thresholds]  # fmt: skip
    assert main(argv) == 0
    table = json.loads(figures.read_text())["reasons"]

    bands = DecisionBands.parse(thresholds)
    rows = load_csv(data)[list(FEATURES)]
    people = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    body, _ = transform(
        model_fn(model), json.dumps(people), "application/json", "application/json", bands=bands
    )
    declined = [a for a in json.loads(body)["predictions"] if a["decision"] == bands.labels[-1]]
    assert declined and {a["space"] for a in declined} == {"log_odds"}
    sent: dict[str, int] = {}
    for answer in declined:
        for reason in answer["reasons"] or []:
            sent[reason["code"]] = sent.get(reason["code"], 0) + 1
    assert table["applicants"] == len(declined)
    assert {r["code"]: r["applicants"] for r in table["reasons"]} == sent
    assert table["without_reason"] == sum(not a["reasons"] for a in declined)
