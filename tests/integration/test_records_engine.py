"""The query engine (``credit_explainer_tools.engine``) on real records: the SQL run by DuckDB over
files the real stack and the records writer made, JSON lines and compacted Parquet alike;
damaged lines named, never dropped; ``--since`` reading only the hours it needs; and the same
SQL sent to Athena (botocore's Stubber: the workgroup, the polling, the paging)."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from botocore.stub import Stubber
from credit_explainer import CreditExplainerClient
from credit_explainer.cli import main
from credit_explainer_tools.decisions import EXIT_SKIPPED
from credit_explainer_tools.engine import (
    ATHENA_RELATION,
    LINES_TABLE,
    MACROS,
    AthenaEngine,
    LocalEngine,
    lookup_sql,
    window_sql,
)
from credit_explainer_tools.local import LocalStack
from credit_schema.edge import new_id
from credit_schema.records import Skipped, hour_prefix, parse_record, record_lines
from scoring_api.records import FileSink
from test_capture import applicants

from tests.conftest import MOTO_REGION

#: Hours before the current one that the store spreads over (complete hours: compactable).
AGO = (6, 5, 4, 3)


@pytest.fixture(scope="module")
def answered(synthetic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Records of three real requests (2, 3 and 5 applicants), as the real stack wrote them."""
    root = tmp_path_factory.mktemp("stack-records")
    with (
        LocalStack(synthetic_model_dir, records_dir=root, log_level="ERROR") as stack,
        CreditExplainerClient(stack.api_url) as client,
    ):
        for n in (2, 3, 5):
            client.score_many(applicants(n, seed=n))
    return [parse_record(line) for p in root.glob("*/*/*/*/*.jsonl") for line in p.open("rb")]


def _store(answered: Any, root: Path) -> dict[str, list[str]]:
    """The stack's answers written again by the records writer (FileSink) in each hour of
    :data:`AGO`, under new ids of their times; the ids of each hour."""
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    root.mkdir()
    sink, ids = FileSink(str(root)), {}
    for ago in AGO:
        moment = top - timedelta(hours=ago, minutes=-30)
        ids[hour_prefix(moment)] = []
        for record in answered:
            request_id = new_id(moment)
            ids[hour_prefix(moment)].append(request_id)
            sink.put(
                record_lines(
                    request_id=request_id,
                    moment=moment,
                    model_version=record.model_version,
                    reason_codes_version=record.reason_codes_version,
                    api_key_id=record.api_key_id,
                    applicants=record.applicants,
                    results=[r.model_dump(mode="json", by_alias=True) for r in record.results],
                ),
                moment,
            )
    sink._close()
    return ids


def _damage(root: Path, hour: str) -> str:
    """A crash's cut line and a non-UTF-8 line appended to the hour's file; ``FILE:LINE`` of
    the first."""
    (path,) = (root / hour).glob("*.jsonl")
    count = len(path.read_bytes().splitlines())
    with path.open("ab") as f:
        f.write(b'{"record_version": 1, "request_id": "01\n\xff\xfe not text\n')
    return f"{path}:{count + 1}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _close(a: Any, b: Any, where: str = "") -> None:
    """JSON figures equal, numbers to float tolerance."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert a == b, where


def _export(
    capsys: Any, root: Path, out: Path, *extra: str
) -> tuple[int, list[dict[str, str]], str]:
    code, _, err = run(
        capsys, "decisions", "export", "--records", str(root), "-o", str(out), *extra
    )
    return code, list(csv.DictReader(out.open())), err


def test_damaged_lines_are_named_in_json_hours_and_again_after_compaction(
    answered: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    hours = sorted(ids)
    where = _damage(root, hours[1])
    applicants_per_hour = sum(len(r.results) for r in answered)

    code, rows, err = _export(capsys, root, tmp_path / "a.csv")
    assert code == EXIT_SKIPPED
    assert f"warning: {where}: skipped: not JSON" in err
    assert (
        f"{where.rsplit(':', 1)[0]}:{int(where.rsplit(':', 1)[1]) + 1}: skipped: not UTF-8" in err
    )
    assert len(rows) == applicants_per_hour * len(AGO)
    by_id = {r.request_id: r for r in answered}
    assert {row["request_id"] for row in rows} == {i for h in hours for i in ids[h]}
    assert by_id  # the stack recorded its answers

    code, _, err = run(capsys, "decisions", "compact", "--records", str(root))
    assert code == EXIT_SKIPPED and f"warning: {where}: skipped: not JSON" in err
    parquet = sorted((root / "compacted").glob("date=*/hour=*/records.parquet"))
    assert len(parquet) == len(AGO)
    stamps = [p.stat().st_mtime_ns for p in parquet]
    code, _, err = run(capsys, "decisions", "compact", "--records", str(root))
    assert code == 0 and "compacted 0 hour(s)" in err  # idempotent: nothing rewritten
    assert [p.stat().st_mtime_ns for p in parquet] == stamps

    # Compacted hours are read from Parquet (the JSON lines made unreadable prove it) and their
    # damaged lines are named again, by their original file and line.
    for path in root.glob("*/*/*/*/*.jsonl"):
        path.write_bytes(b"\x00 not what was compacted\n")
    code, rows2, err = _export(capsys, root, tmp_path / "b.csv")
    assert code == EXIT_SKIPPED and f"warning: {where}: skipped: not JSON" in err
    assert "not what was compacted" not in err
    assert [r["request_id"] for r in rows2] == [r["request_id"] for r in rows]
    assert [r["probability"] for r in rows2] == [r["probability"] for r in rows]


def test_show_reads_only_its_hours_and_finds_the_same_in_json_and_parquet(
    answered: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    hours = sorted(ids)
    wanted = ids[hours[2]][-1]  # the 5-applicant request
    _damage(root, hours[0])  # outside its hours: never read
    engine = LocalEngine(root)
    skipped: list[Skipped] = []
    [found] = engine.lookup(wanted, skipped.append)
    assert found.request_id == wanted and len(found.results) == 5 and not skipped
    assert engine.partitions_read == [(hours[2], "json"), (hours[3], "json")]

    code, json_out, err = run(capsys, "decisions", "show", wanted, "--records", str(root))
    assert code == 0 and not err and "5 applicant(s)" in json_out
    shutil.rmtree(root / hours[0])  # the damaged hour, so compaction is clean
    run(capsys, "decisions", "compact", "--records", str(root))
    engine = LocalEngine(root)
    [again] = engine.lookup(wanted, skipped.append)
    assert again == found and engine.partitions_read == [
        (hours[2], "parquet"),
        (hours[3], "parquet"),
    ]
    code, parquet_out, err = run(capsys, "decisions", "show", wanted, "--records", str(root))
    assert code == 0 and parquet_out == json_out


def _text(hour: str, minutes: str) -> str:
    """``yyyy/mm/dd/hh`` and ``:mm:ss`` as an ISO 8601 time (UTC)."""
    return hour.replace("/", "-", 2).replace("/", "T") + minutes + "Z"


def test_since_and_until_read_only_the_hours_they_need(
    answered: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    hours = sorted(ids)
    run(capsys, "decisions", "compact", "--records", str(root))
    engine = LocalEngine(root)
    # Outside the window, a Parquet file DuckDB cannot read (reading it would fail the query)
    # and, in an hour not compacted, a damaged JSON line (reading it would name it).
    engine.parquet(hours[0]).write_bytes(b"not parquet")
    engine.parquet(hours[3]).unlink()
    where = _damage(root, hours[3])

    since, until = _text(hours[1], ":00:00"), _text(hours[1], ":45:00")
    code, rows, err = _export(capsys, root, tmp_path / "w.csv", "--since", since, "--until", until)
    assert code == 0 and "warning" not in err, err
    assert {r["request_id"] for r in rows} == set(ids[hours[1]])
    window = (datetime.fromisoformat(since), datetime.fromisoformat(until))
    assert {r.request_id for r in engine.window(*window, print)} == set(ids[hours[1]])
    # until's hour and the next (a record reaches its folder up to an hour late): nothing else
    assert engine.partitions_read == [(hours[1], "parquet"), (hours[2], "parquet")]

    code, rows, err = _export(capsys, root, tmp_path / "s.csv", "--since", since)
    assert code == EXIT_SKIPPED and f"warning: {where}: skipped: not JSON" in err
    assert {r["request_id"] for r in rows} == set(ids[hours[1]] + ids[hours[2]] + ids[hours[3]])


def test_the_sql_on_duckdb_keeps_a_quote_in_an_id_a_value() -> None:
    db = duckdb.connect()
    db.execute(MACROS)
    db.execute('CREATE TABLE t (hour VARCHAR, "$path" VARCHAR, line VARCHAR)')
    db.execute(
        "INSERT INTO t VALUES ('2026/12/06/21', 'f', '{\"request_id\": \"a\"}'), "
        "('2026/12/06/21', 'f', 'not json')"
    )
    relation = ATHENA_RELATION.format(table="t")
    hostile = "a' OR '1'='1"
    assert db.execute(lookup_sql(relation, ["2026/12/06/21"], hostile)).fetchall() == [
        ("f", None, "not json", None)  # only the line that is not JSON, to be named
    ]
    rows = db.execute(lookup_sql(relation, ["2026/12/06/21"], "a")).fetchall()
    assert [r[2] for r in rows] == ['{"request_id": "a"}', "not json"]


def _athena_rows(cells: list[list[str | None]]) -> list[dict[str, Any]]:
    return [{"Data": [{} if c is None else {"VarCharValue": c} for c in row]} for row in cells]


def test_athena_runs_the_same_sql_in_the_workgroup_polls_and_pages(
    answered: Any, tmp_path: Path
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    hours = sorted(ids)
    wanted = ids[hours[1]][0]
    (path,) = (root / hours[1]).glob("*.jsonl")
    [line] = [raw for raw in path.read_text().splitlines() if wanted in raw]
    obj = f"s3://records-bucket/records/{hours[1]}/stream-1-2026"
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    engine = AthenaEngine(client, workgroup="ce-records", database="ce_db", poll_seconds=0)
    sql = lookup_sql(engine.relation, [hours[1], hours[2]], wanted)
    header = [["source", "line_number", "line", "problem"]]
    with Stubber(client) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q1"},
            {"QueryString": sql, "WorkGroup": "ce-records",
             "QueryExecutionContext": {"Database": "ce_db"}},
        )  # fmt: skip
        for state in ("QUEUED", "RUNNING", "SUCCEEDED"):
            stub.add_response(
                "get_query_execution",
                {"QueryExecution": {"QueryExecutionId": "q1", "Status": {"State": state}}},
                {"QueryExecutionId": "q1"},
            )
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": _athena_rows([*header, [obj, None, line, None]])},
             "NextToken": "page-2"},
            {"QueryExecutionId": "q1"},
        )  # fmt: skip
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": _athena_rows([[obj, None, '{"request_id": "0', None]])}},
            {"QueryExecutionId": "q1", "NextToken": "page-2"},
        )
        skipped: list[Skipped] = []
        [found] = engine.lookup(wanted, skipped.append)
        stub.assert_no_pending_responses()
    assert found == parse_record(line)
    assert [str(s) for s in skipped] == [f"{obj}: skipped: not JSON: a damaged or cut-short line"]
    assert engine.queries == [sql]
    assert f"hour IN ('{hours[1]}', '{hours[2]}')" in sql  # partitions projected, not scanned

    # The very text Athena was sent, run by DuckDB over a table of the same shape.
    db = duckdb.connect()
    db.execute(MACROS)
    db.execute("CREATE SCHEMA ce_db")
    db.execute(f'CREATE TABLE ce_db.{LINES_TABLE} (hour VARCHAR, "$path" VARCHAR, line VARCHAR)')
    db.execute(f"INSERT INTO ce_db.{LINES_TABLE} VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)",
               [hours[1], obj, line, hours[1], obj, "cut {", hours[0], obj, line])  # fmt: skip
    assert db.execute(sql).fetchall() == [(obj, None, line, None), (obj, None, "cut {", None)]


def test_athena_numbers_a_damaged_line_from_its_s3_object(
    answered: Any, tmp_path: Path, account: Any
) -> None:
    """Athena names the object of a line; the engine reads that object (moto's S3) to number it.
    A cut-short line is a prefix of a whole one, so only a whole line matches; the same damaged
    text twice is two lines; an object that cannot be read leaves the line named by object."""
    root = tmp_path / "records"
    ids = _store(answered, root)
    hour = sorted(ids)[0]
    (path,) = (root / hour).glob("*.jsonl")
    good = path.read_text().splitlines()[:2]
    cut = good[1][:40]
    body = "\n".join([good[0], cut, good[1], cut, "\xff{"]) + "\n"
    s3 = account.client("s3")
    s3.create_bucket(Bucket="records-bucket",
                     CreateBucketConfiguration={"LocationConstraint": MOTO_REGION})  # fmt: skip
    key = f"records/{hour}/stream-1-2026"
    s3.put_object(Bucket="records-bucket", Key=key,
                  Body=body.encode("utf-8").replace("\xff".encode(), b"\xff"))  # fmt: skip
    obj, gone = f"s3://records-bucket/{key}", f"s3://records-bucket/{key}-gone"
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    engine = AthenaEngine(client, workgroup="w", database="d", poll_seconds=0, s3=s3)
    rows = [[obj, None, line, None] for line in (good[0], cut, good[1], cut, "\ufffd{")]
    header = [["source", "line_number", "line", "problem"]]
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q"})
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"QueryExecutionId": "q", "Status": {"State": "SUCCEEDED"}}},
        )
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": _athena_rows([*header, *rows, [gone, None, cut, None]])}},
        )
        skipped: list[Skipped] = []
        found = list(engine.window(None, None, skipped.append))
    assert found == [parse_record(good[0]), parse_record(good[1])]
    assert [(s.source, s.line) for s in skipped] == [(obj, 2), (obj, 4), (obj, 5), (gone, 0)]
    assert str(skipped[0]).startswith(f"{obj}:2: skipped: ")


def test_athena_failure_is_one_error_line(tmp_path: Path) -> None:
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    engine = AthenaEngine(client, workgroup="w", database="d", poll_seconds=0)
    since = datetime(2026, 12, 6, 21, 10, tzinfo=UTC)
    sql = window_sql(engine.relation, ["2026/12/06/21", "2026/12/06/22"], since, since)
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q"},
                          {"QueryString": sql, "WorkGroup": "w",
                           "QueryExecutionContext": {"Database": "d"}})  # fmt: skip
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "FAILED",
                                           "StateChangeReason": "Table not found"}}},
            {"QueryExecutionId": "q"},
        )  # fmt: skip
        with pytest.raises(RuntimeError, match="query q failed: Table not found"):
            list(engine.window(since, since, print))
    json.dumps(sql)


def test_decisions_show_athena_finds_the_stack_outputs_and_reads_the_answer(
    answered: Any,
    tmp_path: Path,
    account: Any,
    moto_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI end to end on moto's server: the workgroup and database from the stack's
    outputs, the query answered with the results moto is given (a record line, a cut one)."""
    import httpx
    from conftest import MOTO_REGION

    root = tmp_path / "records"
    ids = _store(answered, root)
    wanted = ids[sorted(ids)[0]][1]
    [line] = [raw for p in root.rglob("*.jsonl") for raw in p.read_text().splitlines()
              if wanted in raw]  # fmt: skip
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {
            "RecordsAthenaWorkGroup": {"Value": "primary"},
            "RecordsGlueDatabase": {"Value": "ce_db"},
        },
    }
    account.client("cloudformation").create_stack(StackName="ce", TemplateBody=json.dumps(template))
    obj = "s3://b/records/x"
    rows = [["source", "line_number", "line", "problem"], [obj, None, line, None],
            [obj, None, '{"cut', None]]  # fmt: skip
    httpx.post(
        f"{moto_url}/moto-api/static/athena/query-results",
        json={"region": MOTO_REGION, "results": [{"rows": _athena_rows(rows)}]},
    ).raise_for_status()
    code, out, err = run(capsys, "decisions", "show", wanted, "--athena", "ce")
    assert code == EXIT_SKIPPED, err
    assert f"decision {wanted}" in out and "3 applicant(s)" in out
    assert f"warning: {obj}: skipped: not JSON" in err

    code, _, err = run(capsys, "decisions", "show", wanted, "--athena", "nope")
    assert code == 2 and err.startswith("error: cannot read stack nope")


def test_monitor_and_replay_read_the_same_from_json_lines_and_parquet(
    answered: Any, tmp_path: Path, synthetic_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "records"
    _store(answered, root)
    model = ["--records", str(root), "--model-dir", str(synthetic_model_dir)]
    reports, replays = [], []
    for step in ("json", "parquet"):
        if step == "parquet":
            run(capsys, "decisions", "compact", "--records", str(root))
            for path in root.glob("*/*/*/*/*.jsonl"):
                path.unlink()  # only the Parquet files are left to read
        out = tmp_path / f"{step}.json"
        code, _, err = run(capsys, "monitor", *model, "--json", str(out))
        assert code in (0, 1), err
        reports.append(json.loads(out.read_text()))
        code, printed, err = run(capsys, "decisions", "replay", *model)
        assert code == 0, err
        replays.append(printed)
    _close(reports[0], reports[1])  # sums added in another order: to float tolerance
    assert reports[0]["applicants"] == len(AGO) * sum(len(r.results) for r in answered)
    assert (
        replays[0] == replays[1]
        and f"replayed {reports[0]['applicants']} applicant(s)" in replays[0]
    )


def test_without_duckdb_the_json_lines_are_read_file_by_file_and_compact_says_what_to_install(
    answered: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_duckdb(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "duckdb":
            raise ImportError("No module named 'duckdb'")  # the base install
        return real_import(name, *args, **kwargs)

    root = tmp_path / "records"
    ids = _store(answered, root)
    monkeypatch.setattr(builtins, "__import__", no_duckdb)
    wanted = ids[sorted(ids)[2]][0]
    code, out, err = run(capsys, "decisions", "show", wanted, "--records", str(root))
    assert code == 0 and f"decision {wanted}" in out, err
    code, _, err = run(capsys, "decisions", "compact", "--records", str(root))
    assert code == 2 and "pip install duckdb" in err
