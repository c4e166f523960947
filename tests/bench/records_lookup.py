"""How long ``credit-explainer decisions show ID --records DIR`` takes among many records.

    .venv/bin/python tests/bench/records_lookup.py [--applicants 10000000] [--hours 720]

Writes a record store of ``--applicants`` applicants over ``--hours`` hour folders (30 days by
default): one hour of records is generated in the API's format (requests of 1 to 20 applicants,
results that add up), and every other hour folder holds a hard link of that hour's file, so the
store has the size and layout of the real thing without writing it ``--hours`` times. Then times
the real command (a new process each time, imports included) looking up ids of the generated
hour, against reading one whole hour folder and, estimated from it, the whole store: a look-up
reads only its id's hour (and the next), so its time does not grow with the store.
"""

from __future__ import annotations

import argparse
import json
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
from credit_schema.records import hour_prefix, parse_record, record_lines


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applicants", type=int, default=10_000_000)
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--lookups", type=int, default=7)
    parser.add_argument("--dir", help="where to build the store (default: a temporary one)")
    parser.add_argument(
        "--monitor",
        metavar="MODEL_DIR",
        help="also run monitor --records over the whole store with this model (records made "
        "in its version) and print its time and peak memory",
    )
    args = parser.parse_args()
    version = "bench"
    if args.monitor:
        version = json.loads((Path(args.monitor) / "metadata.json").read_text())["model_version"]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp) / "records"
        started = time.perf_counter()
        path, ids = build(root, args.applicants, args.hours, model_version=version)
        print(f"store: {args.applicants:,} applicants in {len(ids) * args.hours:,} records over "
              f"{args.hours} hour folders ({path.stat().st_size / 1e6:.1f} MB an hour, "
              f"{path.stat().st_size * args.hours / 1e9:.1f} GB in all), built in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip

        cli = [sys.executable, "-m", "credit_explainer", "decisions", "show"]
        rng = random.Random(1)
        shows, cpu = [], []
        for request_id in rng.sample(ids, args.lookups):
            t, c = time.perf_counter(), _children_cpu()
            done = subprocess.run([*cli, request_id, "--records", str(root)], capture_output=True)
            shows.append(time.perf_counter() - t)
            cpu.append(_children_cpu() - c)
            assert done.returncode == 0 and request_id.encode() in done.stdout, done.stderr
        t, c = time.perf_counter(), _children_cpu()
        subprocess.run([sys.executable, "-m", "credit_explainer", "--help"], capture_output=True)
        startup, startup_cpu = time.perf_counter() - t, _children_cpu() - c

        t = time.perf_counter()
        with path.open("rb") as lines:
            count = sum(len(parse_record(line).results) for line in lines)
        hour_s = time.perf_counter() - t
        show = statistics.median(shows)
        print(f"decisions show ID --records DIR: median {show:.3f} s, max {max(shows):.3f} s "
              f"over {args.lookups} ids, CPU {statistics.median(cpu):.3f} s (the CLI's own "
              f"start: {startup:.3f} s, CPU {startup_cpu:.3f} s; load average "
              f"{os.getloadavg()[0]:.1f})")  # fmt: skip
        print(f"reading one hour folder with the reader: {hour_s:.3f} s ({count:,} applicants); "
              f"the whole store at that rate: {hour_s * args.hours:.0f} s")  # fmt: skip
        print(f"ratio, full read / look-up: {hour_s * args.hours / show:.0f}x")
        if args.monitor:
            t, c = time.perf_counter(), _children_cpu()
            done = subprocess.run(
                [sys.executable, "-m", "credit_explainer", "monitor", "--records", str(root),
                 "--model-dir", args.monitor],
                capture_output=True,
            )  # fmt: skip
            wall, cpu_s = time.perf_counter() - t, _children_cpu() - c
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
            assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
            print(done.stdout.decode().splitlines()[0])
            print(f"monitor --records DIR over the store: {wall:.0f} s wall, {cpu_s:.0f} s CPU, "
                  f"peak memory (largest child process) {peak:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
