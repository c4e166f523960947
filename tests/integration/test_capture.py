"""Issue 18 item 1: data capture in SageMaker's format, through the real model server and stack."""

from __future__ import annotations

import base64
import csv
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import runtime_client, wait_for_ping
from credit_explainer import CreditExplainerClient
from credit_explainer_tools.local import LocalStack
from credit_explainer_tools.local.stack import ModelServer
from credit_model.capture import CaptureError, CaptureWriter
from credit_model.synth import generate
from credit_schema import DEFAULT_VARIANT, FEATURES

#: <endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl
PATH = re.compile(
    r"(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P<h>\d\d)/"
    r"\d\d-\d\d-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl"
)


def read_captures(root: Path) -> list[dict[str, Any]]:
    """Every record under ``root``, each checked against the contract's shape and path."""
    records = []
    for path in sorted(root.rglob("*.jsonl")):
        where = PATH.fullmatch(path.relative_to(root).as_posix())
        assert where, path
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
            assert record["eventVersion"] == "0"
            meta = record["eventMetadata"]
            assert set(meta) == {"eventId", "inferenceId", "inferenceTime"}
            stamp = time.strptime(meta["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
            assert time.strftime("%Y/%m/%d/%H", stamp) == "/".join(
                where.group("y", "m", "d", "h")
            ), "the file's hour is the record's UTC hour"
            for key, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
                part = record["captureData"][key]
                assert set(part) == {"observedContentType", "mode", "data", "encoding"}
                assert part["mode"] == mode and part["encoding"] in ("JSON", "BASE64")
            record["_path"] = where.groupdict()
            records.append(record)
    return records


def body_of(part: dict[str, str]) -> bytes:
    if part["encoding"] == "BASE64":
        return base64.b64decode(part["data"])
    return part["data"].encode()


def applicants(n: int, seed: int = 18) -> list[dict[str, Any]]:
    frame = generate(n, seed=seed)[list(FEATURES)]
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[no-any-return]


#: A request id in the shape the service issues (others are replaced: credit_schema.edge).
DIRECT_ID = "0b9c8f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"


def test_model_server_captures_what_it_was_sent_and_answered(
    synthetic_model: Any, tmp_path: Path
) -> None:
    sent = applicants(5)
    with ModelServer(synthetic_model, endpoint_name="cap-test", capture_dir=tmp_path) as server:
        runtime = runtime_client(server.url)
        answers = {}
        for i, applicant in enumerate(sent):
            body = json.dumps(applicant).encode()
            response = runtime.invoke_endpoint(
                EndpointName="cap-test",
                Body=body,
                ContentType="application/json",
                InferenceId=f"inference-{i}",
            )
            answers[f"inference-{i}"] = (body, response["Body"].read())
        plain = httpx.post(
            f"{server.url}/invocations",
            content="age,DebtRatio\n",
            headers={"content-type": "text/csv"},
        )
        assert plain.status_code == 400  # failures are not captured
        direct = httpx.post(
            f"{server.url}/invocations",
            json=sent[0],
            headers={"x-amzn-requestid": DIRECT_ID, "accept": "application/jsonlines"},
        )
        assert direct.status_code == 200
    # The server stopped: everything it answered is on disk.
    records = read_captures(tmp_path)
    assert len(records) == len(sent) + 1
    by_id = {r["eventMetadata"]["inferenceId"]: r for r in records}
    assert len({r["eventMetadata"]["eventId"] for r in records}) == len(records)
    for inference_id, (body, answer) in answers.items():
        record = by_id[inference_id]
        assert record["_path"]["endpoint"] == "cap-test"
        assert record["_path"]["variant"] == DEFAULT_VARIANT
        data = record["captureData"]
        assert data["endpointInput"]["observedContentType"] == "application/json"
        assert data["endpointInput"]["encoding"] == "JSON"
        assert body_of(data["endpointInput"]) == body
        assert body_of(data["endpointOutput"]) == answer
        assert json.loads(answer)["predictions"][0]["reasons"] is not None
    # Without an InferenceId the server's own request id joins the record to the call.
    jsonl = by_id[DIRECT_ID]["captureData"]["endpointOutput"]
    assert jsonl["observedContentType"] == "application/jsonlines"
    assert body_of(jsonl) == direct.content


def test_json_bodies_are_text_and_others_base64_as_sagemaker_writes_them(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path, "e") as writer:
        writer.record("application/json", b"\xff\xfe{}", "text/csv", b"p\n0.1\n", "id-1")
        writer.record("text/csv", b"1,2\n", "application/jsonlines; charset=utf-8", b"{}\n", "id-2")
    first, second = sorted(read_captures(tmp_path), key=lambda r: r["eventMetadata"]["inferenceId"])
    data = first["captureData"]
    assert data["endpointInput"]["encoding"] == "BASE64"  # JSON that is not UTF-8
    assert body_of(data["endpointInput"]) == b"\xff\xfe{}"
    assert data["endpointOutput"] == {
        "observedContentType": "text/csv",
        "mode": "OUTPUT",
        "data": base64.b64encode(b"p\n0.1\n").decode(),
        "encoding": "BASE64",
    }
    data = second["captureData"]
    assert data["endpointInput"]["encoding"] == "BASE64"
    assert data["endpointOutput"]["encoding"] == "JSON"
    assert data["endpointOutput"]["data"] == "{}\n"


def test_text_bodies_and_ids_round_trip_exactly(tmp_path: Path) -> None:
    body = '[{"note": "a \\"quoted\\" \\\\ path\\nline", "name": "Zoë 李"}]\n'.encode()
    answer = b'{"reasons":[{"text":"Debt \\u2014 \\"high\\""}]}'
    with CaptureWriter(tmp_path, "e") as writer:
        writer.record("application/json", body, "application/json", answer, 'id "1" \\ é')
    (record,) = read_captures(tmp_path)
    data = record["captureData"]
    assert data["endpointInput"]["data"].encode() == body
    assert data["endpointOutput"]["data"].encode() == answer
    assert record["eventMetadata"]["inferenceId"] == 'id "1" \\ é'
    assert uuid.UUID(record["eventMetadata"]["eventId"]).version == 7


def test_a_batch_across_an_hour_goes_to_each_hours_file(tmp_path: Path) -> None:
    from credit_model.capture import _Invocation

    hour = 3600 * (int(time.time()) // 3600)
    times = (hour - 1.5, hour - 0.25, hour + 0.5)  # two records before the hour, one after
    with CaptureWriter(tmp_path, "e") as writer:
        writer._write(
            [_Invocation(t, f"id-{i}", "application/json", b"[]", "application/json", b"{}")
             for i, t in enumerate(times)]
        )  # fmt: skip
    records = read_captures(tmp_path)  # checks each file's hour against its records' times
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == ["id-0", "id-1", "id-2"]
    assert len(list(tmp_path.rglob("*.jsonl"))) == 2 and writer.written == 3


def test_a_file_system_refusing_the_page_cache_hint_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from credit_model import capture

    def refused(*args: Any) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(capture, "_FADVISE", refused)
    with CaptureWriter(tmp_path, "e") as writer:
        for i in range(3):
            writer.record("application/json", b"[]", "application/json", b"{}", f"id-{i}")
    assert len(read_captures(tmp_path)) == 3
    assert (writer.written, writer.dropped) == (3, 0) and "could not write" not in caplog.text


def test_a_full_queue_drops_and_counts_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    original = CaptureWriter._write

    def slow_disk(self: CaptureWriter, batch: Any) -> None:
        release.wait(10)
        original(self, batch)

    monkeypatch.setattr(CaptureWriter, "_write", slow_disk)
    writer = CaptureWriter(tmp_path, "e", max_queue=2)
    started = time.perf_counter()
    for i in range(10):
        writer.record("application/json", b'{"secret": 123456}', "application/json", b"{}", str(i))
    assert time.perf_counter() - started < 0.5  # the caller never waited for the disk
    release.set()
    writer.close()
    written = read_captures(tmp_path)
    # Two queued (two more if the writer took a batch meanwhile): the rest dropped and counted.
    assert writer.dropped == 10 - len(written) and 2 <= len(written) <= 4
    assert writer.written == len(written)
    assert "dropped" in caplog.text and "123456" not in caplog.text


def test_an_unusable_capture_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CaptureError, match="cannot write captures to"):
        CaptureWriter(blocker, "e")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_model_flushes_every_record_on_sigterm(
    synthetic_model_dir: Path, tmp_path: Path, workers: int
) -> None:
    port = free_port()
    capture = tmp_path / "capture"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "credit_explainer", "serve-model"),
            *("--model-dir", str(synthetic_model_dir), "--port", str(port)),
            *("--endpoint-name", "sig-test", "--capture-dir", str(capture)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, proc, "serve-model")
        sent = applicants(200, seed=3)
        runtime = runtime_client(url)
        for i, applicant in enumerate(sent):
            runtime.invoke_endpoint(
                EndpointName="sig-test",
                Body=json.dumps(applicant),
                ContentType="application/json",
                InferenceId=f"sig-{i}",
            )
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn re-raises the signal after its graceful shutdown (one worker): killed by SIGTERM.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    records = read_captures(capture)
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == sorted(
        f"sig-{i}" for i in range(len(sent))
    )
    if workers == 1:  # (spawned workers do not inherit the parent's logging configuration)
        assert f"{len(sent)} record(s) written" in output
    # No applicant value in the logs: the debt ratios sent are distinctive numbers.
    for applicant in sent[:20]:
        assert repr(applicant["DebtRatio"]) not in output


def test_local_stack_captures_every_applicant_with_the_api_request_id(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    batches = [applicants(7, seed=s) for s in (1, 2, 3)]
    with (
        LocalStack(
            synthetic_model_dir,
            capture_dir=tmp_path,
            environment={"DECISION_THRESHOLDS": "approve:0.1,review:0.3,decline"},
        ) as stack,
        CreditExplainerClient(stack.api_url) as client,
    ):
        scored = [client.score_many(batch) for batch in batches]
        one = client.score(batches[0][0])
    records = read_captures(tmp_path)
    by_id = {r["eventMetadata"]["inferenceId"]: r for r in records}
    assert len(by_id) == len(records) == len(batches) + 1
    assert {r["_path"]["endpoint"] for r in records} == {"credit-explainer-local"}
    for batch, results in [*zip(batches, scored, strict=True), ([batches[0][0]], [one])]:
        request_ids = {s.request_id for s in results}
        assert len(request_ids) == 1
        record = by_id[request_ids.pop()]
        captured_in = json.loads(body_of(record["captureData"]["endpointInput"]))["instances"]
        assert captured_in == [{f: a[f] for f in FEATURES} for a in batch]
        out = json.loads(body_of(record["captureData"]["endpointOutput"]))
        for score, explanation in zip(results, out["predictions"], strict=True):
            # What the API sent is exactly what the model answered and was recorded.
            assert score.probability == explanation["probability"]
            assert score.decision is not None and score.decision == explanation["decision"]
            assert [r.model_dump() for r in score.principal_reasons or []] == explanation["reasons"]
            assert [(r.code, r.shap_value) for r in score.reasons()] == [
                (r["code"], r["shap_value"]) for r in explanation["reasons"]
            ]
            assert score.reason_codes_version == out["reason_codes_version"]


def test_up_refuses_an_unusable_capture_dir(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from credit_explainer.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["up", "--model-dir", str(synthetic_model_dir), "--capture-dir", str(blocker / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write captures to") and "Traceback" not in err


def test_up_refuses_bad_reason_codes_with_an_error_line(
    synthetic_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from credit_explainer.cli import main
    from credit_schema.reasons import REASON_CODES_ENV

    codes = tmp_path / "codes.json"
    codes.write_text("[not a registry")
    monkeypatch.setenv(REASON_CODES_ENV, str(codes))
    assert main(["up", "--model-dir", str(synthetic_model_dir), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(codes) in err and "Traceback" not in err


def test_serve_model_with_workers_refuses_an_unusable_capture_dir(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["--model-dir", str(synthetic_model_dir), "--workers", "2", "--port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "credit_model", "serve", *argv, "--capture-dir", str(blocker / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: cannot write captures to")
    assert "Traceback" not in done.stderr


def test_decisions_show_and_export_read_back_what_the_api_sent(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from credit_explainer.cli import main

    capture = tmp_path / "capture"
    batches = [applicants(3, seed=s) for s in (4, 5)]
    with (
        LocalStack(
            synthetic_model_dir,
            capture_dir=capture,
            log_level="ERROR",
            environment={"DECISION_THRESHOLDS": "approve:0.1,review:0.3,decline"},
        ) as stack,
        CreditExplainerClient(stack.api_url) as client,
    ):
        scored = [client.score_many(batch).scores for batch in batches]
    capsys.readouterr()
    first = scored[0]
    assert main(["decisions", "show", first[0].request_id, "--capture", str(capture)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"decision {first[0].request_id} at ")
    for i, score in enumerate(first):
        assert f"applicant {i}: probability {score.probability:.6f}" in shown
        assert f", decision {score.decision}\n" in shown
        for reason in score.principal_reasons or []:
            assert f"reason {reason.code}: {reason.text}" in shown

    out = tmp_path / "decisions.csv"
    assert main(["decisions", "export", "--capture", str(capture), "-o", str(out)]) == 0
    assert capsys.readouterr().err == f"wrote 6 decision(s) to {out}\n"
    rows = list(csv.DictReader(out.open()))
    sent = {(s.request_id, s.index): s for batch in scored for s in batch}
    assert len(rows) == len(sent)
    for row in rows:
        score = sent[(row["request_id"], int(row["index"]))]
        assert float(row["probability"]) == score.probability
        assert row["decision"] == score.decision
        assert row["reason_codes"] == ";".join(r.code for r in score.principal_reasons or [])

    assert main(["decisions", "show", "no-such-id", "--capture", str(capture)]) == 1
    assert capsys.readouterr().err.startswith("error: no decision no-such-id")
    assert main(["decisions", "show", "x", "--capture", str(tmp_path / "nowhere")]) == 2


def test_decisions_replay_finds_no_difference_then_a_tampered_answer(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from credit_explainer.cli import main

    capture = tmp_path / "capture"
    with (
        LocalStack(synthetic_model_dir, capture_dir=capture, log_level="ERROR") as stack,
        CreditExplainerClient(stack.api_url) as client,
    ):
        scores = client.score_many(applicants(4, seed=9)).scores
    argv = ["decisions", "replay", "--capture", str(capture), "--model-dir", str(synthetic_model_dir)]
    capsys.readouterr()
    assert main(argv) == 0
    assert "replayed 4 applicant(s)" in capsys.readouterr().out

    (path,) = capture.rglob("*.jsonl")
    record = json.loads(path.read_text())
    answer = json.loads(record["captureData"]["endpointOutput"]["data"])
    answer["predictions"][2]["probability"] += 1e-6  # a decision that was not the model's
    record["captureData"]["endpointOutput"]["data"] = json.dumps(answer)
    path.write_text(json.dumps(record) + "\n")
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert f"{scores[0].request_id} applicant 2: differs" in out and "1 differ" in out

    answer["model_version"] = "another"
    record["captureData"]["endpointOutput"]["data"] = json.dumps(answer)
    path.write_text(json.dumps(record) + "\n")
    assert main(argv) == 2  # compared nothing: not a pass
    captured = capsys.readouterr()
    assert "made by model another" in captured.out
    assert "error: nothing replayed" in captured.err
