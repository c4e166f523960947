"""The client against the real local stack over real HTTP: happy paths, validation, limits, auth.

HTTP -> local API Gateway -> the real scoring Lambda handler -> a real boto3
sagemaker-runtime client -> the real model server. Numbers are compared with
the model run in-process through its SageMaker handlers (credit_model.handlers).
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from credit_explainer import (
    Applicant,
    AsyncCreditExplainerClient,
    AuthenticationError,
    CreditExplainerClient,
    Failure,
    InvalidApplicantError,
    NotFoundError,
    Score,
    ValidationError,
)
from credit_explainer.cli import main as cli_main
from credit_explainer_tools.local import LocalStack
from credit_schema import FEATURES, ModelResponse

pd = pytest.importorskip("pandas")
handlers = pytest.importorskip("credit_model.handlers")
synth = pytest.importorskip("credit_model.synth")

API_KEY = "client-test-key"


@pytest.fixture(scope="module")
def model_dir(synthetic_model_dir: Path) -> Path:
    return synthetic_model_dir


@pytest.fixture(scope="module")
def real_data() -> Path:
    from conftest import require_real_data

    return require_real_data()


@pytest.fixture(scope="module")
def stack(model_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(model_dir, api_key=API_KEY) as running:
        yield running


@pytest.fixture
def client(stack: LocalStack) -> Iterator[CreditExplainerClient]:
    with CreditExplainerClient(stack.api_url, api_key=API_KEY) as c:
        yield c


@pytest.fixture(scope="module")
def applicants() -> list[dict[str, Any]]:
    """Synthetic applicants as the API takes them (NaN -> None), some with missing values."""
    frame = synth.generate(40, seed=7)[list(FEATURES)]
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    assert any(r["MonthlyIncome"] is None for r in records)
    return records


def in_process(model_dir: Path, records: list[dict[str, Any]]) -> ModelResponse:
    """The model's own answer through its SageMaker handlers, in this process."""
    model = handlers.model_fn(model_dir)
    body, _ = handlers.transform(model, json.dumps(records), "application/json", "application/json")
    return ModelResponse.model_validate_json(body)


def assert_same(score: Score, expected: Any) -> None:
    assert score.probability == expected.probability
    assert score.base_value == expected.base_value
    assert [c.model_dump() for c in score.contributions] == [
        c.model_dump() for c in expected.contributions
    ]


def test_score_one_applicant_equals_the_model_in_process(
    client: CreditExplainerClient, model_dir: Path, applicants: list[dict[str, Any]]
) -> None:
    score = client.score(applicants[0])
    expected = in_process(model_dir, applicants[:1])
    assert_same(score, expected.predictions[0])
    assert score.model_version == expected.model_version
    assert score.request_id and score.index == 0
    assert score.is_additive()
    shap = [abs(c.shap_value) for c in score.contributions]
    assert shap == sorted(shap, reverse=True) and len(shap) == len(FEATURES)
    assert all(
        c.direction == ("up" if c.shap_value > 0 else "down")
        for c in score.contributions
        if c.shap_value
    )


def test_dict_applicant_model_and_pandas_row_give_the_same_score(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    record = next(r for r in applicants if r["MonthlyIncome"] is None)
    frame = pd.DataFrame([record], dtype=float)  # as read_csv gives it: floats, NaN
    assert math.isnan(frame.iloc[0]["MonthlyIncome"])  # pandas holds the missing income as NaN
    by_dict = client.score(record)
    by_model = client.score(Applicant.model_validate(record))
    by_row = client.score(frame.iloc[0])
    for other in (by_model, by_row):
        assert_same(other, by_dict)
    assert by_row.inputs["MonthlyIncome"] is None


def test_score_many_batches_keep_input_order_and_report_progress(
    client: CreditExplainerClient, model_dir: Path, applicants: list[dict[str, Any]]
) -> None:
    calls: list[tuple[int, int]] = []
    results = client.score_many(
        applicants[:25], batch_size=7, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(0, 25), (7, 25), (14, 25), (21, 25), (25, 25)]
    assert results.ok and len(results) == 25
    expected = in_process(model_dir, applicants[:25]).predictions
    for i, (score, exp) in enumerate(zip(results.scores, expected, strict=True)):
        assert score.index == i
        assert_same(score, exp)
    assert len({s.request_id for s in results.scores}) == 4  # one request per batch


def test_concurrent_score_many_equals_sequential(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    sequential = client.score_many(applicants, batch_size=5)
    concurrent = client.score_many(applicants, batch_size=5, concurrency=4)
    assert len(concurrent) == len(applicants) == 40
    for a, b in zip(sequential.scores, concurrent.scores, strict=True):
        assert a.index == b.index
        assert_same(a, b)


def test_score_many_dataframe_to_dataframe_keeps_the_index(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    frame = pd.DataFrame(applicants[:9], index=[f"app-{i}" for i in range(9)])
    results = client.score_many(frame, batch_size=4)
    out = results.to_dataframe()
    assert list(out.index) == list(frame.index)
    assert out["probability"].tolist() == results.probabilities()
    row = out.loc["app-3"]
    assert row["base_value"] + sum(row[f"shap_{f}"] for f in FEATURES) == pytest.approx(
        row["probability"], abs=1e-9
    )


def test_async_client_gives_the_same_numbers(
    stack: LocalStack, client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    async def main() -> list[Score]:
        async with AsyncCreditExplainerClient(stack.api_url, api_key=API_KEY) as a:
            one = await a.score(applicants[1])
            many = await a.score_many(applicants[:5], batch_size=2)
            return [one, *many.scores]

    got = asyncio.run(main())
    assert_same(got[0], client.score(applicants[1]))
    for g, s in zip(got[1:], client.score_many(applicants[:5]).scores, strict=True):
        assert_same(g, s)


def test_invalid_applicant_is_refused_locally_naming_index_and_field(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    typo = {k: v for k, v in applicants[0].items() if k != "age"} | {"Age": 40}
    with pytest.raises(InvalidApplicantError) as info:
        client.score(typo)
    assert not isinstance(info.value, ValidationError)  # caught before sending
    assert {(e.applicant, e.field) for e in info.value.errors} == {(0, "Age")}  # did you mean age
    bad = [
        applicants[0],
        dict(applicants[1], age=12),
        applicants[2],
        dict(applicants[3], DebtRatio=-1),
    ]
    with pytest.raises(InvalidApplicantError) as many:
        client.score_many(bad)
    assert many.value.bad_indices == [1, 3]
    assert {(e.applicant, e.field) for e in many.value.errors} == {(1, "age"), (3, "DebtRatio")}


def test_the_apis_422_is_parsed_into_field_errors(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    """What local validation would catch, sent anyway: the API's ErrorBody becomes ValidationError."""
    body = [applicants[0], dict(applicants[1], age=12, Age=40)]
    request = client._http.build_request("POST", "/score", json=body)
    with pytest.raises(ValidationError) as info:
        client._send(request)
    err = info.value
    assert err.status == 422 and err.code == "validation_error" and err.request_id
    assert {(e.applicant, e.field) for e in err.errors} == {(1, "age"), (1, "Age")}
    assert err.bad_indices == [1]


def test_collect_mode_scores_the_good_rows_and_reports_the_bad(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    rows = [*applicants[:3], dict(applicants[3], NumberOfTimes90DaysLate=-2), applicants[4]]
    results = client.score_many(rows, on_error="collect", batch_size=2)
    assert [type(r).__name__ for r in results] == ["Score", "Score", "Score", "Failure", "Score"]
    failure = results[3]
    assert isinstance(failure, Failure)
    assert failure.errors[0].field == "NumberOfTimes90DaysLate" and failure.errors[0].applicant == 3
    out = results.to_dataframe()
    assert out["error"].notna().tolist() == [False, False, False, True, False]


def test_batches_over_the_apis_limit_are_split(
    model_dir: Path, applicants: list[dict[str, Any]]
) -> None:
    with LocalStack(model_dir, environment={"MAX_APPLICANTS": "5"}) as small:
        with CreditExplainerClient(small.api_url) as c:
            results = c.score_many(applicants[:12], batch_size=12)
            request = c._http.build_request("POST", "/score", json=applicants[:6])
            from credit_explainer import PayloadTooLargeError

            with pytest.raises(PayloadTooLargeError) as info:
                c._send(request)
    assert info.value.status == 413
    assert results.ok and [s.index for s in results.scores] == list(range(12))
    # 12 -> 6 + 6 -> 3 + 3 + 3 + 3: every request within the limit of 5.
    assert len({s.request_id for s in results.scores}) == 4


def test_api_key_missing_or_wrong_is_an_authentication_error(
    stack: LocalStack, applicants: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        CreditExplainerClient(stack.api_url) as anonymous,
        pytest.raises(AuthenticationError) as info,
    ):
        anonymous.score(applicants[0])
    assert info.value.status == 403
    monkeypatch.setenv("CREDIT_EXPLAINER_API_KEY", API_KEY)
    monkeypatch.setenv("CREDIT_EXPLAINER_URL", stack.api_url)
    with CreditExplainerClient() as from_env:
        assert from_env.score(applicants[0]).probability >= 0
        assert from_env.health()["status"] == "ok"


def test_wrong_path_is_not_found_with_a_hint(
    stack: LocalStack, applicants: list[dict[str, Any]]
) -> None:
    with (
        CreditExplainerClient(stack.api_url + "/Prod", api_key=API_KEY) as c,
        pytest.raises(NotFoundError) as info,
    ):
        c.score(applicants[0])
    assert "stage" in str(info.value)


# -- the scoring CLI -------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, Any]], *, bad: dict[int, dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", *FEATURES])  # pandas' unnamed index column, as in cs-training.csv
        for i, r in enumerate(rows):
            r = {**r, **bad.get(i, {})}
            w.writerow([i + 1, *("" if r[c] is None else r[c] for c in FEATURES)])


def test_cli_scores_a_csv_and_writes_rejects(
    stack: LocalStack,
    client: CreditExplainerClient,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    src = tmp_path / "applicants.csv"
    write_csv(src, applicants[:20], bad={4: {"age": 7}, 11: {"DebtRatio": "lots"}})
    out = tmp_path / "scored.csv"
    code = cli_main(
        [
            "score",
            "--url",
            stack.api_url,
            "--api-key",
            API_KEY,
            str(src),
            "-o",
            str(out),
            "--batch-size",
            "6",
            "--concurrency",
            "2",
            "--no-progress",
        ]
    )
    assert code == 1  # some rows rejected
    scored = list(csv.DictReader(out.open()))
    assert [int(r["row"]) for r in scored] == [i for i in range(20) if i not in (4, 11)]
    assert [r["id"] for r in scored][:4] == ["1", "2", "3", "4"]
    expected = client.score_many([a for i, a in enumerate(applicants[:20]) if i not in (4, 11)])
    for row, score in zip(scored, expected.scores, strict=True):
        assert float(row["probability"]) == score.probability
        assert [float(row[f"shap_{f}"]) for f in FEATURES] == list(score.shap_values.values())
        reasons = score.reasons()
        assert row["reason_codes"] == ";".join(r.code for r in reasons)
        assert row["reason_1"] == (reasons[0].text if reasons else "")
    rejects = list(csv.DictReader((tmp_path / "scored.rejects.csv").open()))
    assert [(r["row"], r[""]) for r in rejects] == [("4", "5"), ("11", "12")]
    assert "age" in rejects[0]["error"] and "DebtRatio" in rejects[1]["error"]


def test_cli_json_lines_in_and_out(
    stack: LocalStack,
    client: CreditExplainerClient,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "in.jsonl"
    lines = [json.dumps(dict(a, id=f"L{i}")) for i, a in enumerate(applicants[:6])]
    lines.insert(2, "{not json")
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    code = cli_main(
        [
            "score",
            "--url",
            stack.api_url,
            "--api-key",
            API_KEY,
            str(src),
            "-o",
            str(out),
            "--cutoff",
            "0.0",
            "--no-progress",
        ]
    )
    assert code == 1
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == [f"L{i}" for i in range(6)]
    assert [g["row"] for g in got] == [0, 1, 3, 4, 5, 6]
    expected = client.score_many(applicants[:6]).scores
    for g, s in zip(got, expected, strict=True):
        assert g["probability"] == s.probability and g["shap_values"] == s.shap_values
        assert [r["code"] for r in g["reasons"]] == [r.code for r in s.reasons()]
    rejects = [
        json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()
    ]
    assert rejects == [{"row": 2, "error": rejects[0]["error"], "line": "{not json"}]
    assert "not valid JSON" in rejects[0]["error"]
    err = capsys.readouterr().err
    assert (
        "scored 6 of 7 rows" in err and "rejected 1 rows" in err and "row 2: not valid JSON" in err
    )


def test_cli_unreachable_api_fails_with_status_2(
    tmp_path: Path, applicants: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    src = tmp_path / "a.csv"
    write_csv(src, applicants[:3], bad={})
    code = cli_main(["score", "--url", closed, "--max-retries", "0", str(src), "--no-progress"])
    assert code == 2
    assert "cannot reach the API" in capsys.readouterr().err


def test_real_data_through_the_client_equals_the_model_in_process(
    real_data: Path, real_model_dir: Path
) -> None:
    """2,000 rows of ../shared's Give Me Some Credit file, through the model trained on it:
    identical numbers through the client and in-process."""
    frame = pd.read_csv(real_data, nrows=2_000)[list(FEATURES)]  # CI-sized: ~2 s
    model_dir = real_model_dir
    with LocalStack(model_dir) as real, CreditExplainerClient(real.api_url) as client:
        results = client.score_many(frame, on_error="collect", batch_size=1000)
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    good = [i for i, r in enumerate(results) if isinstance(r, Score)]
    assert len(good) >= 0.99 * len(
        frame
    )  # rows the schema refuses (if any) are reported, not dropped
    for f in results.failures:
        assert f.errors and f.errors[0].applicant == f.index
    expected = in_process(model_dir, [records[i] for i in good]).predictions
    for i, exp in zip(good, expected, strict=True):
        score = results[i]
        assert isinstance(score, Score)
        assert_same(score, exp)


def test_cli_carries_an_id_column_the_schema_does_not_declare(
    stack: LocalStack,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A lender's file with an ``application_id`` column, scored by the built-in model: refused
    as an unknown field unless ``--id-column`` names it; then it comes back in every output."""
    src = tmp_path / "loans.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["application_id", *FEATURES])
        for i, r in enumerate(applicants[:6]):
            r = {**r, "age": 7} if i == 2 else r
            w.writerow([f"APP-{i:03d}", *("" if r[c] is None else r[c] for c in FEATURES)])
    base = ["score", "--url", stack.api_url, "--api-key", API_KEY, str(src), "--no-progress"]
    assert cli_main([*base, "-o", str(tmp_path / "refused.csv")]) == 2
    assert "application_id: unknown field" in capsys.readouterr().err
    out = tmp_path / "scored.csv"
    assert cli_main([*base, "-o", str(out), "--id-column", "application_id"]) == 1
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:3] == ["row", "application_id", "probability"]
    assert [r["application_id"] for r in rows] == [f"APP-{i:03d}" for i in (0, 1, 3, 4, 5)]
    with (tmp_path / "scored.rejects.csv").open(newline="") as f:
        rejected = list(csv.DictReader(f))
    assert [(r["row"], r["application_id"]) for r in rejected] == [("2", "APP-002")]
    jsonl = tmp_path / "loans.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"application_id": f"J{i}", **a}) + "\n" for i, a in enumerate(applicants[:2]))
    )
    out_jsonl = tmp_path / "scored.jsonl"
    args = ["score", "--url", stack.api_url, "--api-key", API_KEY, str(jsonl), "-o", str(out_jsonl)]
    assert cli_main([*args, "--no-progress", "--id-column", "application_id"]) == 0
    lines = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert [line["application_id"] for line in lines] == ["J0", "J1"]
