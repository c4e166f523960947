"""``decisions`` and ``monitor`` over the API's decision records (``up --records``), on real
files written by the real stack: the one reader names and skips every damaged, foreign or
wrong-shaped line and exits non-zero; ``show`` picks one applicant and flags an answer that
does not add up; ``export`` has contribution columns and neutralises formula cells."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from credit_explainer import CreditExplainerClient
from credit_explainer.cli import main
from credit_explainer_tools.decisions import EXIT_SKIPPED
from credit_explainer_tools.local import LocalStack
from credit_schema.records import parse_record, record_lines
from test_capture import applicants


@pytest.fixture(scope="module")
def recorded(synthetic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Three requests (2, 3 and 5 applicants) recorded by the real stack; their answers."""
    root = tmp_path_factory.mktemp("records")
    with (
        LocalStack(
            synthetic_model_dir,
            records_dir=root,
            log_level="ERROR",
            environment={"DECISION_THRESHOLDS": "approve:0.05,decline"},
        ) as stack,
        CreditExplainerClient(stack.api_url) as client,
    ):
        answers = [client.score_many(applicants(n, seed=n)) for n in (2, 3, 5)]
    return root, answers


def copy(recorded: Any, tmp_path: Path) -> tuple[Path, Path, list[Any]]:
    root, answers = recorded
    records = tmp_path / "records"
    shutil.copytree(root, records)
    (path,) = records.glob("*/*/*/*/*.jsonl")
    return records, path, answers


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_commands_read_the_records_and_show_picks_one_applicant(
    recorded: Any,
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records, _, answers = copy(recorded, tmp_path)
    big = answers[2]
    show = ["decisions", "show", big.scores[0].request_id, "--records", str(records)]
    code, out, err = run(capsys, *show)
    assert code == 0, err
    assert "5 applicant(s)" in out and out.count("\napplicant ") == 5
    # a version, not a count of codes (a lender's schema's is "1")
    assert f", reason codes version {big.scores[0].reason_codes_version}, 5 applicant(s)" in out
    code, out, _ = run(capsys, *show, "--applicant", "3")
    assert code == 0 and out.count("\napplicant ") == 1
    assert f"applicant 3: probability {big.scores[3].probability:.6f}" in out
    (inputs,) = [line for line in out.splitlines() if line.startswith("  inputs: ")]
    # as a person reads them: 48 and 5400, not 48.0 or 5.4e+03
    assert not re.search(r"=-?\d+\.0(,|$)|e\+", inputs), inputs
    code, _, err = run(capsys, *show, "--applicant", "5")
    assert code == 2 and "applicants 0 to 4, not 5" in err

    out_csv = tmp_path / "d.csv"
    code, _, err = run(capsys, "decisions", "export", "--records", str(records), "-o", str(out_csv))
    assert code == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 10
    by_key = {(r["request_id"], int(r["index"])): r for r in rows}
    for answer in answers:
        for i, score in enumerate(answer.scores):
            row = by_key[(answer.scores[0].request_id, i)]
            assert float(row["probability"]) == score.probability  # exactly as sent
            for c in score.contributions:
                assert float(row[f"contribution_{c.feature}"]) == c.shap_value
            assert row["decision"] == score.decision

    code, out, err = run(
        capsys, "decisions", "replay", "--records", str(records), "--model-dir",
        str(synthetic_model_dir),
    )  # fmt: skip
    assert code == 0, err
    assert "replayed 10 applicant(s)" in out
    code, out, err = run(
        capsys, "monitor", "--records", str(records), "--model-dir", str(synthetic_model_dir)
    )
    assert code in (0, 1), err
    assert "10 applicant(s) in 3 decision(s)" in out


def _bad_lines(valid: dict[str, Any]) -> list[bytes]:
    """A cut-short line, non-UTF-8, non-JSON, and JSON of the wrong shape."""
    line = json.dumps(valid).encode()
    wrong_number = json.loads(line)
    wrong_number["results"][0]["probability"] = "0.5"
    three = json.loads(line)
    three["results"][0]["contributions"] = three["results"][0]["contributions"][:3]
    return [
        line[: len(line) // 2],
        b"\xff\xfe\xfa{}",
        b"not json at all",
        json.dumps(wrong_number).encode(),
        json.dumps(three).encode(),
        b'{"eventMetadata": [], "captureData": {}}',
    ]


def test_damaged_lines_are_named_skipped_and_the_exit_status_says_so(
    recorded: Any,
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records, path, answers = copy(recorded, tmp_path)
    lines = path.read_bytes().splitlines()
    valid = json.loads(lines[0])
    bad = _bad_lines(valid)
    path.write_bytes(b"\n".join([lines[0], *bad, *lines[1:]]) + b"\n")
    named = [f"{path}:{n}: skipped" for n in range(2, 2 + len(bad))]

    code, out, err = run(
        capsys, "decisions", "show", answers[1].scores[0].request_id, "--records", str(records)
    )
    assert code == EXIT_SKIPPED and "applicant 2:" in out
    # show parses only the lines naming its id; the others are checked to be whole JSON lines
    assert all(n in err for n in named[:3]) and not any(n in err for n in named[3:]), err
    assert "Traceback" not in err

    out_csv = tmp_path / "d.csv"
    code, _, err = run(capsys, "decisions", "export", "--records", str(records), "-o", str(out_csv))
    assert code == EXIT_SKIPPED and all(n in err for n in named)
    assert len(list(csv.DictReader(out_csv.open()))) == 10  # the rest, all of it

    code, _, err = run(
        capsys, "decisions", "replay", "--records", str(records), "--model-dir",
        str(synthetic_model_dir),
    )  # fmt: skip
    assert code == EXIT_SKIPPED and all(n in err for n in named)
    code, out, err = run(
        capsys, "monitor", "--records", str(records), "--model-dir", str(synthetic_model_dir)
    )
    assert code != 0 and all(n in err for n in named) and "10 applicant(s)" in out


def test_show_flags_a_recorded_answer_that_does_not_add_up(
    recorded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, path, _ = copy(recorded, tmp_path)
    record = json.loads(path.read_bytes().splitlines()[0])
    record["results"][0]["probability"] = 0.999
    path.write_text(json.dumps(record) + "\n")
    code, out, _ = run(capsys, "decisions", "show", record["request_id"], "--records", str(records))
    assert code == 0
    assert "WARNING: this recorded answer does not add up" in out
    assert out.count("WARNING") == 1  # applicant 1 adds up


def test_export_neutralises_formula_cells(
    recorded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, path, _ = copy(recorded, tmp_path)
    record = json.loads(path.read_bytes().splitlines()[0])
    hostile = ['=HYPERLINK("http://evil","click")', "+1+2", "-3+4", "@SUM(A1:A9)", "\tx", "\rx"]
    record["model_version"] = hostile[3]
    result = record["results"][0]
    result["decision"] = hostile[0]
    feature = result["contributions"][0]["feature"]
    result["reasons"] = [
        {"code": text, "text": text, "feature": feature, "shap_value": 0.1} for text in hostile[1:5]
    ]
    path.write_text(json.dumps(record) + "\n")
    out_csv = tmp_path / "d.csv"
    assert main(["decisions", "export", "--records", str(records), "-o", str(out_csv)]) == 0
    rows = list(csv.reader(out_csv.open()))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    assert not [c for c in cells if c.startswith("-") and not _number(c)]
    row = rows[1]
    assert "'" + hostile[0] in row and "'" + hostile[3] in row and "'-3+4" in row


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_capture_lines_of_the_wrong_shape_are_named_too(
    recorded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "capture" / "endpoint" / "AllTraffic" / "2026" / "12" / "06" / "21"
    capture.mkdir(parents=True)
    good = {
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                              "data": json.dumps(applicants(1, seed=1)), "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": "{}", "encoding": "JSON"},
        },
        "eventMetadata": {"eventId": "e", "inferenceId": "i", "inferenceTime": "yesterday"},
        "eventVersion": "0",
    }  # fmt: skip
    listed = dict(good, eventMetadata=[])
    (capture / "x.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(listed) + "\n")
    code, _, err = run(
        capsys, "decisions", "export", "--capture", str(tmp_path / "capture"), "-o",
        str(tmp_path / "d.csv"),
    )  # fmt: skip
    assert code == EXIT_SKIPPED
    assert "x.jsonl:1: skipped" in err and "x.jsonl:2: skipped" in err
    assert "Traceback" not in err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LENDER = {
    "creditor": {"name": "Example Bank <&>", "address": ["1 Main St", "Springfield, IL 62701"],
                 "phone": "555-0100"},
    "ecoa_agency": {"name": "Consumer Financial Protection Bureau",
                    "address": ["1700 G Street NW", "Washington, DC 20552"]},
}  # fmt: skip


def _chromium(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", *argv],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def test_notice_for_a_declined_applicant_renders_and_prints_in_a_real_browser(
    recorded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is needed in CI (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium")
    records, _, answers = copy(recorded, tmp_path)
    lender = tmp_path / "lender.json"
    lender.write_text(json.dumps(LENDER))
    declined = [
        (answer, i, s)
        for answer in answers
        for i, s in enumerate(answer.scores)
        if s.decision == "decline" and s.principal_reasons
    ]
    approved = [(a, i) for a in answers for i, s in enumerate(a.scores) if s.decision == "approve"]
    assert declined and approved
    answer, index, score = declined[0]
    request_id = answer.scores[0].request_id
    page = tmp_path / "notice.html"
    argv = ["decisions", "notice", request_id, "--records", str(records), "--lender", str(lender)]
    code, _, err = run(capsys, *argv, "--applicant", str(index), "-o", str(page))
    assert code == 0, err

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    found = re.findall(r'<li data-code="([^"]*)">([^<]*)</li>', dom)
    reasons = [(html.unescape(code), html.unescape(text)) for code, text in found]
    expected = [(r.code, r.text) for r in score.principal_reasons]
    assert reasons == expected[:4] and 1 <= len(reasons) <= 4  # exactly as recorded
    assert "Example Bank &lt;&amp;&gt;" in dom and "Equal Credit Opportunity Act" in dom
    assert "Consumer Financial Protection Bureau" in dom and "1700 G Street NW" in dom
    pdf = tmp_path / "notice.pdf"
    _chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert (
        pdf.read_bytes().startswith(b"%PDF")
        and len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes())) == 1
    )

    other, other_index = approved[0]
    code, _, err = run(
        capsys, "decisions", "notice", other.scores[0].request_id, "--records", str(records),
        "--lender", str(lender), "--applicant", str(other_index), "-o", str(tmp_path / "x.html"),
    )  # fmt: skip
    assert code == 2 and "was not declined (decision approve" in err
    lender.write_text(json.dumps({**LENDER, "action": "=HYPERLINK(1)"}))
    code, _, err = run(capsys, *argv, "--applicant", str(index))
    assert code == 2 and "action starts with '='" in err


def test_since_and_until_read_only_the_hours_they_need(
    recorded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, _, _ = copy(recorded, tmp_path)
    old = records / "2020" / "01" / "01" / "00"
    old.mkdir(parents=True)
    (old / "old.jsonl").write_bytes(b"damaged\n")  # read: named and exit 3; not read: silent
    out_csv = str(tmp_path / "d.csv")
    export = ["decisions", "export", "--records", str(records), "-o", out_csv]
    code, _, err = run(capsys, *export)
    assert code == EXIT_SKIPPED and "old.jsonl:1" in err
    code, _, err = run(capsys, *export, "--since", "2021-01-01")
    assert code == 0 and "old.jsonl" not in err
    assert len(list(csv.DictReader(open(out_csv)))) == 10
    code, _, err = run(capsys, *export, "--until", "2019-12-31T22:00:00Z")
    assert code == 0 and "old.jsonl" not in err and "wrote 0 decision(s)" in err


def test_outcomes_join_by_index_in_the_request_when_its_record_is_in_parts(
    recorded: Any,
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A request too large for one Firehose record is kept in parts: an outcome's ``index`` is
    the applicant's position in the request, not in its part."""
    records, path, answers = copy(recorded, tmp_path)
    big = answers[2].scores  # the request of 5 applicants
    lines = []
    for line in path.read_bytes().splitlines():
        record, sent = parse_record(line), json.loads(line)
        lines += record_lines(
            request_id=record.request_id,
            moment=record.time,
            model_version=record.model_version,
            reason_codes_version=record.reason_codes_version,
            api_key_id=record.api_key_id,
            applicants=sent["applicants"],
            results=sent["results"],  # exactly as the API recorded them
            max_bytes=1,  # the smallest parts: one applicant each
        )
    path.write_bytes(b"".join(lines))
    assert sum(parse_record(line).parts == 5 for line in lines) == 5
    # Outcomes for the five applicants of the big request, defaults on the three riskiest.
    riskiest = sorted(range(5), key=lambda i: big[i].probability)[2:]
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        "request_id,index,SeriousDlqin2yrs\n"
        + "".join(f"{big[0].request_id},{i},{int(i in riskiest)}\n" for i in range(5))
    )
    report_file = tmp_path / "r.json"
    code, _, err = run(
        capsys, "monitor", "--model-dir", str(synthetic_model_dir), "--records", str(records),
        "--outcomes", str(outcomes), "--json", str(report_file),
    )  # fmt: skip
    assert code in (0, 1), err
    assert "match no decision" not in err
    (period,) = json.loads(report_file.read_text())["outcomes"]["periods"]
    assert period["applicants"] == 5 and period["defaults"] == 3
    assert period["auc"] == 1.0  # each outcome met its own applicant's probability
    assert period["mean_predicted"] == pytest.approx(sum(s.probability for s in big) / 5)
