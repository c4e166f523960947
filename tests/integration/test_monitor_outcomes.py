"""Issue 30, outcomes: joined to the decisions recorded through the local stack, realised figures
equal scikit-learn's and scipy's on the same rows; by period; errors name the file and line."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from credit_explainer.cli import main
from credit_explainer_tools.monitor import metric_data
from credit_model import monitor
from credit_model.synth import generate
from credit_schema import FEATURES, TARGET
from scipy.stats import binomtest, ks_2samp
from sklearn.metrics import roc_auc_score
from test_monitor import score_into

BATCH = 100  # score_into sends requests of 100 applicants


def write_outcomes(path: Path, rows: list[dict[str, Any]], header: list[str]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def labelled_scores(model_dir: Path, capture: Path, seed: int) -> tuple[Any, list[Any]]:
    """600 labelled synthetic applicants, scored through the local stack into ``capture``."""
    frame = generate(600, seed=seed)
    people = frame[list(FEATURES)].astype(object).where(frame[list(FEATURES)].notna(), None)
    return frame, score_into(model_dir, capture, people.to_dict(orient="records"))


def test_outcomes_joined_to_recorded_decisions_give_sklearn_s_figures(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "capture"
    frame, scores = labelled_scores(synthetic_model_dir, capture, seed=95)
    observed = frame[TARGET].to_numpy()
    known = [i for i in range(600) if i % 3]  # a third of the outcomes have not arrived
    outcomes = write_outcomes(
        tmp_path / "outcomes.csv",
        [{"request_id": scores[i].request_id, "index": i % BATCH, TARGET: observed[i]}
         for i in known]
        + [{"request_id": "not-a-recorded-request", "index": 0, TARGET: 1}],
        ["request_id", "index", TARGET],
    )  # fmt: skip
    capsys.readouterr()
    report_file = tmp_path / "r.json"
    argv = ["monitor", "--model-dir", str(synthetic_model_dir), "--capture", str(capture),
            "--outcomes", str(outcomes), "--json", str(report_file)]  # fmt: skip
    code = main(argv)
    captured = capsys.readouterr()
    assert "1 outcome(s) in " in captured.err and "match no decision" in captured.err
    report = json.loads(report_file.read_text())
    (period,) = report["outcomes"]["periods"]
    p = np.array([scores[i].probability for i in known])
    y = observed[known]
    assert period["applicants"] == len(known) and period["defaults"] == y.sum()
    assert period["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert period["ks"] == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic, abs=1e-12)
    assert period["mean_predicted"] == pytest.approx(p.mean())
    assert period["binomial_p"] == pytest.approx(binomtest(int(y.sum()), len(y), p.mean()).pvalue)
    assert f"outcomes {period['period']}: {len(known)} applicant(s)" in captured.out
    (estimate,) = report["estimated"]["periods"]  # every recorded applicant, outcome or not
    assert estimate["applicants"] == 600 and f"estimated {period['period']}: 600" in captured.out
    assert code == (1 if report["alerts"] else 0)
    datums = {d["MetricName"]: d["Value"] for d in metric_data(report, "prod")}
    assert datums["RealisedAUC"] == period["auc"]
    assert datums["RealisedDefaultRate"] == pytest.approx(y.mean())
    page = tmp_path / "monitor.html"
    main([*argv, "--html", str(page)])
    assert (
        "<h2>Outcomes</h2>" in page.read_text()
        and f"<td>{period['period']}</td>" in page.read_text()
    )
    # A period whose realised AUC is far below training's is a watch alert (exit 1).
    assert main([*argv, "--auc-drop-watch", "-1"]) == 1
    assert "realised AUC" in capsys.readouterr().out


def test_realised_figures_by_month_and_their_alerts() -> None:
    rng = np.random.default_rng(4)
    p = rng.beta(1, 10, 3000)
    y = (rng.random(3000) < p).astype(np.int64)
    periods = ["2027-01"] * 1000 + ["2027-02"] * 1000 + ["2027-03"] * 1000
    y[2000:] = (rng.random(1000) < 0.3).astype(np.int64)  # March: defaults no longer follow p
    reference = roc_auc_score(y[:2000], p[:2000])  # as the held-out AUC of training would be
    figures, alerts = monitor.outcome_figures(p, y, periods, reference_auc=reference)
    by = {m["period"]: m for m in figures["periods"]}
    for period, rows in (("2027-01", slice(0, 1000)), ("2027-03", slice(2000, 3000))):
        assert by[period]["auc"] == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-12)
    assert {(a["kind"], a["period"]) for a in alerts} >= {
        ("realised_auc", "2027-03"),
        ("calibration", "2027-03"),
    }
    assert not any(a["period"] in ("2027-01", "2027-02") for a in alerts)
    assert monitor.status(alerts) == "watch"
    ties = np.array([0.1, 0.1, 0.2, 0.2, 0.3])
    assert monitor.auc(np.array([0, 1, 0, 1, 1]), ties) == roc_auc_score([0, 1, 0, 1, 1], ties)
    assert monitor.auc(np.zeros(3, dtype=np.int64), ties[:3]) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("request_id,index\nr,0\n", f"no column {TARGET}"),
        (f"request_id,index,{TARGET}\nr,0,2\n", f"line 2: {TARGET} must be 0 or 1"),
        (f"request_id,index,{TARGET}\nr,0,1\nr,0,0\n", "line 3: a second outcome for request r"),
        (f"request_id,index,{TARGET}\nr,x,1\n", "line 2: index must be a whole number"),
    ],
)
def test_a_bad_outcomes_file_is_one_error_line(
    synthetic_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    capture = tmp_path / "capture"
    score_into(synthetic_model_dir, capture, [dict.fromkeys(FEATURES, 1) | {"age": 40}] * 2)
    bad = tmp_path / "outcomes.csv"
    bad.write_text(content)
    capsys.readouterr()
    argv = ["monitor", "--model-dir", str(synthetic_model_dir), "--capture", str(capture),
            "--outcomes", str(bad)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_estimated_auc_is_the_expected_roc_of_calibrated_scores() -> None:
    rng = np.random.default_rng(6)
    s = np.round(rng.random(400), 2)  # ties
    e = rng.random(400)
    pairs = e[:, None] * (1 - e[None, :])
    above = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    assert monitor.estimated_auc(s, e) == pytest.approx(
        (pairs * above).sum() / (e.sum() * (1 - e).sum()), rel=1e-12
    )


def test_estimated_performance_on_unshifted_data_covers_the_realised(
    synthetic_model_dir: Path,
) -> None:
    from credit_model import artifacts
    from credit_model.explain import build_explainer

    model = artifacts.load(synthetic_model_dir)
    calibration = model.metadata["baseline"]["monitoring"]["calibration"]
    frame = generate(4000, seed=94)  # drawn like the training data, never seen by the model
    p = build_explainer(model.pipeline).explain(frame[list(FEATURES)].to_numpy(float))[0]
    y = frame[TARGET].to_numpy()
    periods = ["2027-01"] * 2000 + ["2027-02"] * 2000
    estimated = monitor.estimated_figures(p, periods, calibration)["periods"]
    for m, rows in zip(estimated, (slice(0, 2000), slice(2000, 4000)), strict=True):
        low, high = m["auc_interval"]
        assert low <= roc_auc_score(y[rows], p[rows]) <= high, m
        low, high = m["default_rate_interval"]
        assert low <= y[rows].mean() <= high, m
    # Two more late payments for everyone who had one: the estimated default rate rises.
    shifted = frame[list(FEATURES)].copy()
    for name in ("NumberOfTimes90DaysLate", "NumberOfTime60-89DaysPastDueNotWorse"):
        shifted[name] = np.where(shifted[name] >= 1, shifted[name] + 2, shifted[name])
    q = build_explainer(model.pipeline).explain(shifted.to_numpy(float))[0]
    moved = monitor.estimated_figures(q, ["2027-03"] * 4000, calibration)["periods"][0]
    assert moved["default_rate"] > max(m["default_rate_interval"][1] for m in estimated)


def test_the_iso_week_and_day_and_month_of_a_decision() -> None:
    from datetime import UTC, datetime

    from credit_explainer_tools.monitor import period_of

    new_year = datetime(2027, 1, 1, tzinfo=UTC)
    assert [period_of(new_year, w) for w in ("day", "week", "month")] == [
        "2027-01-01",
        "2026-W53",  # Friday 1 January 2027 belongs to the last ISO week of 2026
        "2027-01",
    ]
    assert period_of(datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC), "week") == "2026-W49"


def test_monitor_by_window_gives_a_row_per_period_and_plots_them(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "capture"
    frame, scores = labelled_scores(synthetic_model_dir, capture, seed=92)
    # Three days of decisions: the capture's times rewritten, two requests of 100 a day.
    days = {}
    for path in capture.rglob("*.jsonl"):
        lines = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            meta = record["eventMetadata"]
            day = f"2026-11-{1 + len(days) // 2:02d}"
            days[meta["inferenceId"]] = day
            meta["inferenceTime"] = f"{day}T12:00:00Z"
            lines.append(json.dumps(record))
        path.write_text("\n".join(lines) + "\n")
    assert sorted(set(days.values())) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    outcomes = write_outcomes(
        tmp_path / "outcomes.csv",
        [{"request_id": s.request_id, "index": i % BATCH, TARGET: frame[TARGET][i]}
         for i, s in enumerate(scores)],
        ["request_id", "index", TARGET],
    )  # fmt: skip
    report_file, page = tmp_path / "r.json", tmp_path / "trend.html"
    argv = ["monitor", "--model-dir", str(synthetic_model_dir), "--capture", str(capture),
            "--json", str(report_file)]  # fmt: skip
    main([*argv, "--window", "day", "--outcomes", str(outcomes), "--html", str(page)])
    report = json.loads(report_file.read_text())
    rows = report["trend"]["periods"]
    assert [(r["period"], r["applicants"]) for r in rows] == [
        ("2026-11-01", 200), ("2026-11-02", 200), ("2026-11-03", 200)
    ]  # fmt: skip
    assert [r["period"] for r in report["outcomes"]["periods"]] == [r["period"] for r in rows]
    on_the_day = [i for i, s in enumerate(scores) if days[s.request_id] == "2026-11-03"]
    p, y = np.array([scores[i].probability for i in on_the_day]), frame[TARGET].to_numpy()
    assert report["outcomes"]["periods"][-1]["auc"] == pytest.approx(
        roc_auc_score(y[on_the_day], p), abs=1e-12
    )
    # The last day's row equals monitor's own figures for that day alone (--since).
    main([*argv, "--since", "2026-11-03"])
    alone = json.loads(report_file.read_text())
    assert rows[-1]["feature_psi"] == {f["feature"]: f["psi"] for f in alone["features"]}
    assert rows[-1]["score_psi"] == alone["score"]["psi"]
    assert rows[-1]["mean_score"] == pytest.approx(p.mean())
    capsys.readouterr()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium here: apt-get install chromium")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    ).stdout.decode()  # fmt: skip
    assert "Trends by day" in dom and "Estimated performance" in dom and "2026-11-02" in dom
    assert dom.count('src="data:image/png;base64,') == 5
