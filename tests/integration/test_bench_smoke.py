"""CI-sized run of the benchmark harness: asserts that every path agrees (never timing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_bench_paths_agree(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import bench_explain
    finally:
        sys.path.remove(str(BENCH))
    out = tmp_path / "bench.json"
    assert bench_explain.main(["--quick", "--out", str(out)]) == 0  # exits non-zero on a mismatch
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
    assert results["server_rss_mib_idle"] > 0
