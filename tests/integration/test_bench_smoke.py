"""CI-sized run of the benchmark harness: asserts that every path agrees (never timing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_paths_agree(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    exe = Path(sys.executable).with_name("credit-explainer")
    done = subprocess.run(
        [str(exe), "bench", "--quick", "--threads", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # non-zero on any mismatch
    assert "speed-up" in done.stdout and str(out) in done.stdout
    results = json.loads(out.read_text())
    assert set(results["checks"]) == {
        "handlers_1",
        "handlers_100",
        "handlers_2000",
        "explainers_1",
        "explainers_2000",
        "http_1",
    }
    for label, worst in results["checks"].items():
        assert all(v <= 1e-9 for v in worst.values()), (label, worst)
    assert results["explainer"] == "FastTreeExplainer"
    assert results["threads"] == 2
    paths = {t["path"] for t in results["timings"]}
    assert "ours, handlers (JSON in/out), 1 thread" in paths  # 2,000 per request, also on 1
    assert "ours, handlers (JSON in/out), back to back" in paths  # 1 applicant, also alone
    assert results["server_rss_mib_idle"] > 0


@pytest.mark.slow
def test_serving_bench_measures_every_figure(tmp_path: Path) -> None:
    if shutil.which("wrk") is None and os.environ.get("CI") != "true":
        pytest.skip("wrk is not installed (apt-get install wrk); .ci/run installs it")
    script = Path(__file__).resolve().parents[1] / "bench" / "serving.py"
    out = tmp_path / "serving.json"
    done = subprocess.run(
        [sys.executable, str(script), "--seconds", "1", "--runs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # a wrong first answer fails the run
    results = json.loads(out.read_text())
    assert all(v > 0 for v in results["start_s"].values())
    assert set(results["requests_per_s"]) == {"floor", "model_server", "flask"}
    assert all(v > 0 for v in results["requests_per_s"].values())


@pytest.mark.slow
def test_capture_cost_bench_splits_the_cpu_by_thread(tmp_path: Path) -> None:
    if shutil.which("wrk") is None and os.environ.get("CI") != "true":
        pytest.skip("wrk is not installed (apt-get install wrk); .ci/run installs it")
    script = Path(__file__).resolve().parents[1] / "bench" / "serving.py"
    done = subprocess.run(
        [sys.executable, str(script), "--capture-cost", "--rounds", "1", "--seconds", "1",
         "--out", str(tmp_path / "serving.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "capture_cost.json").read_text())
    assert {kind: len(runs) for kind, runs in results["runs"].items()} == {"without": 1, "with": 1}
    assert all(runs[0] > 0 for runs in results["runs"].values())
    (main_without, others_without), (main_with, writer) = (
        results["cpu_per_request_s"][kind] for kind in ("without", "with")
    )
    assert main_without > 0 and main_with > 0
    assert writer > others_without  # the capture writer's thread is what the other threads do
    assert "the capture writer" in done.stdout
