"""Cold-start import time of the scoring handler (``import scoring_api.app``), in fresh processes.

Runs the x86_64 ``sam build`` output under python3.13 (as the Lambda runtime
would, no site-packages) and the development install under this interpreter,
with and without Swagger (``ENABLE_SWAGGER``), and prints medians.

    make sam-build && .venv/bin/python tests/bench/api_import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam-x86_64" / "build"

PROBE = r"""
import sys, time, os
build = os.environ.get("PROBE_BUILD")
if build:
    sys.path[:0] = [build + "/ScoringFunction", build + "/CreditSchemaLayer/python"]
t = time.perf_counter()
import scoring_api.app
print((time.perf_counter() - t) * 1000)
"""


def python313() -> str | None:
    """The Lambda runtime's interpreter: $PYTHON313_BIN/python3.13, else pyenv's 3.13."""
    configured = os.environ.get("PYTHON313_BIN")
    candidates = [f"{configured}/python3.13"] if configured else []
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def measure(python: str, flags: list[str], env: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [python, *flags, "-c", PROBE], capture_output=True, text=True, env=env, check=True
        )
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    py313 = python313()
    setups = []
    if py313 and BUILD.exists():
        setups.append(
            ("sam build x86_64, python3.13 -I -S", py313, ["-I", "-S"], {"PROBE_BUILD": str(BUILD)})
        )
    setups.append(
        (
            f"dev install, python{sys.version_info.major}.{sys.version_info.minor}",
            sys.executable,
            [],
            {},
        )
    )
    rows = []
    for label, python, flags, extra in setups:
        # Alternate with and without Swagger, so both see the same machine load.
        times: dict[str, list[float]] = {"true": [], "false": []}
        for _ in range(args.runs):
            for swagger in ("true", "false"):
                env = {**base, **extra, "ENABLE_SWAGGER": swagger}
                times[swagger] += measure(python, flags, env, 1)
        for swagger, ms in times.items():
            rows.append(
                {
                    "setup": label,
                    "swagger": swagger,
                    "median_ms": statistics.median(ms),
                    "min_ms": min(ms),
                    "max_ms": max(ms),
                    "runs": len(ms),
                }
            )
            print(
                f"{label:40s} swagger={swagger:5s} median {statistics.median(ms):7.1f} ms "
                f"(min {min(ms):.1f}, max {max(ms):.1f}, {len(ms)} runs)"
            )
    pairs = {(r["setup"], r["swagger"]): r["median_ms"] for r in rows}
    for label, *_ in setups:
        on, off = pairs[(label, "true")], pairs[(label, "false")]
        print(f"{label:40s} swagger costs {on - off:+.1f} ms ({on / off:.2f}x)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
