"""``decisions show`` and ``monitor`` among many distinct decision records.

    .venv/bin/python tests/bench/records_lookup.py [--applicants 10000000] [--hours 720] \\
        [--store DIR] [--compact] [--monitor MODEL_DIR]

Writes a store of ``--applicants`` distinct applicants over ``--hours`` hour folders (30 days by
default) with the records writer (``credit_schema.records.record_lines``): requests of 1 to 20
applicants, results that add up, ids made at their records' times (UUIDv7). ``--store`` keeps
it for later runs (generating 10,000,000 takes minutes; do it once). Then times the real
command, a new process each time (imports included), looking up random ids: a look-up reads
only its id's hour and the next, so its time does not grow with the store. ``--compact`` runs
``decisions compact`` first (later look-ups read Parquet); ``--monitor`` runs ``monitor`` over
every record and prints its peak memory.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from credit_schema import FEATURES
from credit_schema.edge import new_id
from credit_schema.records import hour_prefix, record_lines


def _request(rng: random.Random, n: int) -> tuple[list[dict[str, float]], list[dict[str, object]]]:
    applicants, results = [], []
    for i in range(n):
        applicant = {f: round(rng.uniform(0, 100), 3) for f in FEATURES}
        shap = [rng.uniform(-0.05, 0.05) for _ in FEATURES]
        base = 0.066
        probability = min(max(base + sum(shap), 0.0), 1.0)
        shap[0] += probability - (base + sum(shap))  # adds up exactly enough
        contributions = sorted(
            (
                {"feature": f, "value": applicant[f], "shap_value": s,
                 "direction": "up" if s > 0 else "down" if s < 0 else "none"}
                for f, s in zip(FEATURES, shap, strict=True)
            ),
            key=lambda c: -abs(float(c["shap_value"])),  # type: ignore[arg-type]
        )  # fmt: skip
        reasons = [
            {"code": c["feature"], "text": f"{c['feature']} raised the risk",
             "feature": c["feature"], "shap_value": c["shap_value"]}
            for c in contributions if float(c["shap_value"]) > 0.005  # type: ignore[arg-type]
        ][:4]  # fmt: skip
        applicants.append(applicant)
        results.append(
            {"index": i, "probability": probability, "base_value": base,
             "contributions": contributions, "reasons": reasons,
             "decision": "decline" if probability >= 0.2 else "approve"}
        )  # fmt: skip
    return applicants, results


def build(
    root: Path, applicants: int, hours: int, seed: int = 7, model_version: str = "bench"
) -> tuple[Path, list[str]]:
    """The store: ``hours`` hour folders ending two hours ago (complete hours, which ``decisions
    compact`` takes), each one file of distinct applicants written by the records writer, their
    ids made at their records' times. Returns the last hour's file and every request id."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    per_hour = applicants // hours
    ids: list[str] = []
    path = root
    for h in range(hours - 1, -1, -1):
        start = end - timedelta(hours=h)
        hour = root / hour_prefix(start)
        hour.mkdir(parents=True)
        path = hour / f"{new_id(start)}.jsonl"
        with path.open("wb") as out:
            written = 0
            while written < per_hour:
                n = min(rng.randint(1, 20), per_hour - written)
                people, results = _request(rng, n)
                moment = start + timedelta(seconds=3599.0 * written / per_hour)
                request_id = new_id(moment)
                ids.append(request_id)
                for line in record_lines(
                    request_id=request_id, moment=moment, model_version=model_version,
                    reason_codes_version="bench", api_key_id=None, applicants=people,
                    results=results,
                ):  # fmt: skip
                    out.write(line)
                written += n
    return path, ids


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str]) -> tuple[subprocess.CompletedProcess[bytes], float, float]:
    """The command in a new process: its result, wall and CPU seconds."""
    t, c = time.perf_counter(), _children_cpu()
    done = subprocess.run(argv, capture_output=True)
    return done, time.perf_counter() - t, _children_cpu() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applicants", type=int, default=10_000_000)
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--lookups", type=int, default=7)
    parser.add_argument(
        "--store",
        help="keep the store in this directory (built there when absent, reused when present: "
        "build once, measure again) (default: a temporary one, removed)",
    )
    parser.add_argument(
        "--compact", action="store_true", help="run decisions compact over the store first"
    )
    parser.add_argument(
        "--monitor",
        metavar="MODEL_DIR",
        help="make the records in this model's version and run monitor --records over the "
        "whole store: its time and peak memory",
    )
    args = parser.parse_args()
    version = "bench"
    if args.monitor:
        from credit_model import artifacts  # the version is the manifest's, checked

        version = artifacts.verify(args.monitor)["model_version"]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.store) if args.store else Path(tmp)
        root, listed = home / "records", home / "ids.txt"
        if listed.exists():
            ids = listed.read_text().split()
            print(f"store: {root} (reused, {len(ids):,} records)")
        else:
            started = time.perf_counter()
            path, ids = build(root, args.applicants, args.hours, model_version=version)
            listed.write_text("\n".join(ids) + "\n")
            size = sum(p.stat().st_size for p in root.glob("*/*/*/*/*.jsonl"))
            print(f"store: {args.applicants:,} distinct applicants in {len(ids):,} records over "
                  f"{args.hours} hour folders ({path.stat().st_size / 1e6:.1f} MB an hour, "
                  f"{size / 1e9:.1f} GB, {size / args.applicants:.0f} bytes an applicant), "
                  f"built in {time.perf_counter() - started:.0f} s")  # fmt: skip
        cli = [sys.executable, "-m", "credit_explainer"]
        if args.compact:
            done, wall, cpu_s = _run([*cli, "decisions", "compact", "--records", str(root)])
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            parquet = sum(p.stat().st_size for p in (root / "compacted").rglob("*.parquet"))
            print(f"decisions compact: {wall:.0f} s wall, {cpu_s:.0f} s CPU; "
                  f"{done.stderr.decode().strip()}; Parquet {parquet / 1e9:.1f} GB")  # fmt: skip

        rng = random.Random(1)
        shows, cpu = [], []
        for request_id in rng.sample(ids, args.lookups):
            done, wall, cpu_s = _run(
                [*cli, "decisions", "show", request_id, "--records", str(root)]
            )
            assert done.returncode == 0 and request_id.encode() in done.stdout, done.stderr
            shows.append(wall)
            cpu.append(cpu_s)
        _, startup, startup_cpu = _run([*cli, "--help"])
        compacted = (root / "compacted").is_dir()
        print(f"decisions show ID --records DIR ({'compacted Parquet' if compacted else 'JSON lines'}): "
              f"median {statistics.median(shows):.3f} s, max {max(shows):.3f} s over "
              f"{args.lookups} ids, CPU {statistics.median(cpu):.3f} s (the CLI's own start: "
              f"{startup:.3f} s, CPU {startup_cpu:.3f} s; load average "
              f"{os.getloadavg()[0]:.1f})")  # fmt: skip
        if args.monitor:
            done, wall, cpu_s = _run(
                [*cli, "monitor", "--records", str(root), "--model-dir", args.monitor]
            )
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
            assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
            print(done.stdout.decode().splitlines()[0])
            print(f"monitor --records DIR over the store: {wall:.0f} s wall, {cpu_s:.0f} s CPU, "
                  f"peak memory (largest child process) {peak:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
