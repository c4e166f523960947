"""Decision records through the local stack (``up --records DIR``), over real HTTP, on a real
2 MiB file system: every 200 is recorded before it is sent, with the numbers it sent; a full
disk, a deleted directory and a symlinked hour turn the API to 503 ``record_unavailable``
(and ``/health`` says why), and it answers 200 again once records can be written."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from credit_explainer_tools.local import LocalStack
from credit_schema.records import hour_prefix, parse_record

KEY = "records-test-key"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _read_records(root: Path) -> dict[str, Any]:
    """Every record under root by request id; every line must parse (none glued or cut)."""
    found = {}
    for path in sorted(root.rglob("*.jsonl")):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path} ends in a cut line"
        for line in data.splitlines():
            record = parse_record(line)
            found[record.request_id] = record
    return found


def load_until(url: str, applicants: list[dict[str, Any]], status: int) -> list[httpx.Response]:
    """Four callers scoring in a loop until one is answered ``status``; every answer, once all
    four have stopped (none in flight)."""
    answers: list[httpx.Response] = []
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(base_url=url, headers={"x-api-key": KEY}, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/score", json=applicants)
                answers.append(answer)
                if answer.status_code == status or len(answers) > 2000:
                    stop.set()

    with ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(caller) for _ in range(4)]:
            f.result()
    assert any(a.status_code == status for a in answers), f"no {status} in {len(answers)}"
    return answers


def _check(answers: list[httpx.Response], records: dict[str, Any]) -> None:
    key_id = "local-" + hashlib.sha256(KEY.encode()).hexdigest()[:10]
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) >= 10
    for answer in ok:
        body = answer.json()
        assert uuid.UUID(body["request_id"]).version == 7
        record = records[body["request_id"]]  # every 200 is recorded ...
        assert [r.model_dump(by_alias=True) for r in record.results] == body["results"]  # as sent
        assert record.model_version == body["model_version"]
        assert record.api_key_id == key_id and KEY not in record.model_dump_json()
    refused = [r for r in answers if r.status_code != 200]
    assert len(refused) >= 3
    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "record_unavailable"
        assert answer.headers["retry-after"] == "5"


def _unhealthy(http: httpx.Client, words: str) -> None:
    health = http.get("/health")
    assert health.status_code == 503
    error = health.json()["error"]
    assert error["code"] == "record_unavailable" and words in error["message"], error


def test_records_survive_a_full_disk_a_deleted_directory_and_a_symlinked_hour(
    synthetic_model_dir: Path,
    small_disk: Path,
    sample_applicants: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    records = small_disk / "records"
    records.mkdir()
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (1536 * 1024))  # leaves room for some dozens of records
    outside = tmp_path / "outside"
    outside.mkdir()
    answers: list[httpx.Response] = []
    seen: dict[str, Any] = {}  # every record read before the test deletes it
    with (
        LocalStack(
            synthetic_model_dir, api_key=KEY, records_dir=records, log_level="ERROR"
        ) as stack,
        httpx.Client(base_url=stack.api_url, headers={"x-api-key": KEY}) as http,
    ):
        applicants = sample_applicants * 4

        # 1. the disk fills: 503 record_unavailable, /health says why; space returns: 200
        answers += load_until(stack.api_url, applicants, 503)
        _unhealthy(http, "no space left")
        filler.unlink()
        assert http.get("/health").status_code == 200
        answers += load_until(stack.api_url, applicants, 200)

        # 2. the directory is deleted under the running API, then made again
        seen |= _read_records(records)
        shutil.rmtree(records)
        answers += load_until(stack.api_url, applicants, 503)
        _unhealthy(http, "is gone")
        records.mkdir()
        answers += load_until(stack.api_url, applicants, 200)

        # 3. the hour's folder becomes a symlink out of the directory
        hour = records / hour_prefix(datetime.now(UTC))
        seen |= _read_records(records)
        shutil.rmtree(hour)
        hour.symlink_to(outside)
        answers += load_until(stack.api_url, applicants, 503)
        _unhealthy(http, "symlink")
        hour.unlink()
        answers += load_until(stack.api_url, applicants, 200)
        seen |= _read_records(records)
    assert not list(outside.iterdir())  # nothing went through the symlink
    _check(answers, seen)
