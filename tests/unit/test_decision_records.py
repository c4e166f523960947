"""The decision record's one format (credit_schema.records): written once, read once, every
damaged or wrong-shaped line refused with one sentence; and what depends on it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from credit_schema.records import RecordError, parse_record, record_lines

APPLICANT = {"a": 1.0, "b": None}
RESULT = {
    "index": 0,
    "probability": 0.5,
    "base_value": 0.4,
    "space": "probability",  # every answer says its space
    "contributions": [
        {"feature": "a", "value": 1.0, "shap_value": 0.1, "direction": "up"},
        {"feature": "b", "value": None, "shap_value": 0.0, "direction": "none"},
    ],
    "reasons": [{"code": "A1", "text": "a is high", "feature": "a", "shap_value": 0.1}],
    "decision": "review",
}


def line(**changes: Any) -> bytes:
    [one] = record_lines(
        request_id="01a24d4d-b716-730f-a920-7054501a6e17",
        moment=datetime(2026, 12, 6, 21, 0, tzinfo=UTC),
        model_version="m1",
        reason_codes_version="r1",
        api_key_id="k1",
        applicants=[APPLICANT],
        results=[RESULT],
    )
    data = json.loads(one)
    data.update(changes)
    return json.dumps(data).encode()


def test_a_record_round_trips_exactly() -> None:
    record = parse_record(line())
    assert record.results[0].model_dump(by_alias=True) == RESULT
    assert record.applicants == [APPLICANT]
    assert record.adds_up(0)


def test_a_log_odds_result_adds_up_to_the_log_odds_of_its_probability() -> None:
    # probability 0.5: log-odds 0; base -0.1 + 0.1 + 0.0 = 0.
    log_odds = dict(RESULT, space="log_odds", base_value=-0.1)
    record = parse_record(line(results=[log_odds]))
    assert record.adds_up(0) and record.results[0].space == "log_odds"
    assert not parse_record(line(results=[dict(RESULT, space="log_odds")])).adds_up(0)
    assert record.results[0].model_dump(by_alias=True) == log_odds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (line()[:80], "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "not an object"),
        (line(results=[dict(RESULT, probability="0.5")]), "results.0.probability"),
        (line(time="yesterday"), "time"),
        (line(results=[dict(RESULT, contributions=RESULT["contributions"][:1])]), "1 contribution"),
        (line(applicants=[]), "0 applicant(s) but 1 result(s)"),
        (line(eventMetadata=[]), "eventMetadata"),
    ],
)
def test_damaged_and_wrong_shaped_lines_are_refused_in_one_sentence(
    text: bytes, reason: str
) -> None:
    with pytest.raises(RecordError) as refused:
        parse_record(text)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_an_answer_that_does_not_add_up_is_read_and_flagged() -> None:
    record = parse_record(line(results=[dict(RESULT, probability=0.999)]))
    assert not record.adds_up(0)
    assert abs(record.additivity_gap(0) - 0.499) < 1e-12


def test_deploy_refuses_serverless_with_capture() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "credit_explainer", "deploy", "--dry-run", "--region", "eu-west-1",
         "--serverless",
         "--capture", "s3://bucket/prefix"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        done.stderr.startswith("error: --serverless with --capture")
        and "Traceback" not in done.stderr
    )


HOSTILE = ['=HYPERLINK("http://evil","x")', "+1", "-1+2", "@SUM(A1)", "\tx", "a\nb"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_reason_texts_and_codes_are_refused_when_loaded(text: str, tmp_path: Any) -> None:
    from credit_schema.reasons import ReasonCodesError, load_registry

    for entry in ({"code": "D1", "text": text}, {"code": text, "text": "Debt is high"}):
        path = tmp_path / "reasons.json"
        path.write_text(json.dumps({"version": "v", "reasons": {"DebtRatio": entry}}))
        with pytest.raises(ReasonCodesError, match="DebtRatio"):
            load_registry(str(path))


@pytest.mark.parametrize("label", HOSTILE[:4])
def test_hostile_band_labels_are_refused_when_loaded(label: str) -> None:
    from credit_schema.decisions import DecisionBands

    with pytest.raises(ValueError, match="formula"):
        DecisionBands.parse(f"{label}:0.1,decline")
    with pytest.raises(ValueError, match="formula"):
        DecisionBands.parse(f"approve:0.1,{label}")


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil","x")', "@SUM(A1)", "a\nb"])
def test_hostile_reason_texts_in_a_data_schema_are_refused_when_loaded(text: str) -> None:
    from credit_schema.schema import BUILTIN_SCHEMA_FILE, SchemaError, parse_schema

    data = json.loads(BUILTIN_SCHEMA_FILE.read_text())
    feature = data["features"][0]
    feature["reason"] = {**feature["reason"], "text": text}
    with pytest.raises(SchemaError, match=feature["name"] + "|reason"):
        parse_schema(data, source="lender.json")


@pytest.mark.parametrize("command", [["up"], ["serve-model"]])
def test_capture_is_the_option_that_writes_capture_and_capture_dir_still_works(
    command: list[str],
) -> None:
    from credit_explainer.cli import build_parser

    parser = build_parser()
    for option in ("--capture", "--capture-dir"):
        assert parser.parse_args([*command, option, "cap"]).capture_dir == "cap"


def test_up_records_names_the_records_directory() -> None:
    from credit_explainer.cli import build_parser

    assert build_parser().parse_args(["up", "--records", "recs"]).records == "recs"
