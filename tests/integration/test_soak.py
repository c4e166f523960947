"""CI-sized soak of ``credit-explainer up`` with locust (tests/load/run_load.py, bounded).

Asserts behaviour, not timing: every request answered 200 with explanations that add
up (error rate 0), the API key enforced as API Gateway does, and the ``up`` process's
memory not growing with the number of requests served. ``make load`` is the long run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_soak_error_rate_zero_and_memory_bounded(synthetic_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/load/run_load.py"),
            "--seconds",
            "12",
            "--max-requests",
            "600",
            "--users",
            "2",
            "--batch",
            "20",
            "--model-dir",
            str(synthetic_model_dir),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    for scenario in report["scenarios"]:
        assert scenario["requests"] > 0
        assert scenario["errors"] == 0, scenario["error_kinds"]
    for case in ("missing_key", "wrong_key"):
        assert report["auth"][case] == {"status": 403, "body": {"message": "Forbidden"}}
    memory = report["memory"]
    assert memory["samples"] >= 5
    # Hundreds of requests after warm-up: a leak of even 10 KiB per request would show.
    assert memory["growth_mib"] < 32, memory
