"""``monitor``'s figures as the engine's aggregates (``credit_explainer_tools.aggregates``): the
SQL bins against :func:`credit_model.stability.count_bins` on the same values, and the report
against :mod:`credit_model.monitor`'s own functions fed with the records' raw values; the same
text on Athena (Stubber) run by DuckDB."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import numpy as np
import pytest
import sqlglot
from botocore.stub import Stubber
from credit_explainer_tools import aggregates
from credit_explainer_tools.decisions import EXIT_SKIPPED
from credit_explainer_tools.engine import LINES_TABLE, MACROS, AthenaEngine, LocalEngine
from credit_explainer_tools.monitor import _arrays, period_of
from credit_model import artifacts, stability
from credit_model import monitor as monitoring
from credit_schema.records import parse_record
from test_own_data import german, lender, other  # noqa: F401 (fixtures)
from test_records_engine import _close, _damage, _store, answered, run  # noqa: F401 (a fixture)


def _sql_bins(base: dict[str, Any], values: list[Any], codes: dict[str, int] | None) -> Any:
    db = duckdb.connect()
    kind = "VARCHAR" if "categories" in base else "DOUBLE"
    db.execute(f"CREATE TABLE t (v {kind})")
    db.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    rows = db.execute(f"SELECT {stability.bin_sql(base, 'v', codes)} AS b, count(*) FROM t "
                      "GROUP BY b").fetchall()  # fmt: skip
    size = len(base.get("categories", base.get("edges", []))) + 1
    counts = np.zeros(size, np.int64)
    missing = 0
    for b, n in rows:
        if b == -1:
            missing = n
        else:
            counts[b] = n
    return counts, missing


def test_the_sql_bins_count_as_count_bins_on_edges_missing_and_unknown_categories(
    synthetic_model_dir: Path,
) -> None:
    metadata = artifacts.verify(synthetic_model_dir)
    bases = {**metadata["baseline"]["features"], "score": metadata["baseline"]["score"]}
    for name, base in bases.items():
        edges = base["edges"]
        values: list[float | None] = [None, edges[0] - 1.0, edges[-1] + 1.0]
        for e in edges:  # on each edge, and the floats either side of it
            values += [e, float(np.nextafter(e, -np.inf)), float(np.nextafter(e, np.inf))]
        values += [float(round(e)) for e in edges]  # integer values
        # infinities bin alike (first, last); NaN does not (SQL: last bin, count_bins: missing),
        # which is why the reader refuses a record holding one (test below)
        values += [-math.inf, math.inf]
        sql = _sql_bins(base, values, None)
        python = stability.count_bins(base, [math.nan if v is None else v for v in values])
        assert sql[0].tolist() == python[0].tolist() and sql[1] == python[1], name
    # categories: text -> code as the model reads it; one code training never saw, one text
    # the schema does not list, missing
    base = {"categories": [0.0, 1.0, 2.0], "shares": [0.3, 0.3, 0.4, 0.0], "missing_share": 0}
    codes = {"A": 0, "B": 1, "C": 2, "D": 3, "it's": 1}
    texts = ["A", "C", "C", "D", "Z", None, "it's", "a"]
    as_codes = [math.nan if t is None else float(codes.get(t, len(codes))) for t in texts]
    sql = _sql_bins(base, texts, codes)
    python = stability.count_bins(base, np.asarray(as_codes))
    assert sql[0].tolist() == python[0].tolist() == [1, 1, 2, 3] and sql[1] == python[1] == 1


def _reference(root: Path, model_dir: Path, window: str) -> dict[str, Any]:
    """The figures of today's functions over the records' raw values, read by the reader."""
    metadata = artifacts.verify(model_dir)
    schema = artifacts.model_schema(model_dir)
    records = [parse_record(line) for p in sorted(root.glob("*/*/*/*/*.jsonl"))
               for line in p.open("rb") if line.strip().endswith(b"}")]  # fmt: skip
    names = monitoring.Aggregates(metadata).names
    X, p, shap, reasons = _arrays(records, names, schema.codes)
    report = monitoring.monitor(metadata, X, p, shap, reasons)
    periods = [period_of(r.time, window) for r in records for _ in r.results]
    by_period = {}
    for period in sorted(set(periods)):
        chosen = [r for r in records if period_of(r.time, window) == period]
        by_period[period] = monitoring.Aggregates(metadata)
        by_period[period].add(*_arrays(chosen, names, schema.codes))
    report["trend"] = {"window": window, "periods": monitoring.trend(by_period)}
    calibration = metadata["baseline"]["monitoring"]["calibration"]
    report["estimated"] = monitoring.estimated_figures(p.copy(), np.asarray(periods), calibration)
    return report


def _compare(got: dict[str, Any], want: dict[str, Any]) -> None:
    estimated = got.pop("estimated")
    expected = want.pop("estimated")
    for g, w in zip(estimated["periods"], expected["periods"], strict=True):
        bound = g.pop("auc_error_bound")
        assert bound >= 0  # an upper bound: the store repeats its answers, exact ties
        assert g.pop("auc") == pytest.approx(w.pop("auc"), abs=bound + 1e-12)
        g.pop("auc_interval"), w.pop("auc_interval")
        _close(g, w)
    for key in ("model_version", "capture", "since", "window", "decisions",
                "other_model_decisions"):  # fmt: skip
        got.pop(key)
    _close(got, want)


def test_the_engines_figures_equal_the_python_figures_on_raw_values(
    answered: Any,  # noqa: F811
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    _texts(root, sorted(ids)[3])
    want = _reference(root, synthetic_model_dir, "day")
    where = _damage(root, sorted(ids)[1])
    foreign = _foreign(root, sorted(ids)[2])
    out = tmp_path / "report.json"
    for step in ("json", "parquet"):
        if step == "parquet":
            run(capsys, "decisions", "compact", "--records", str(root))
        code, _, err = run(capsys, "monitor", "--records", str(root), "--model-dir",
                           str(synthetic_model_dir), "--window", "day", "--json", str(out))  # fmt: skip
        got = json.loads(out.read_text())
        assert code == (1 if got["alerts"] else EXIT_SKIPPED), err  # skipped, said in the status
        assert f"warning: {where}: skipped: not JSON" in err
        for line in foreign:  # NaN, infinities: damaged, whichever engine (not counted)
            assert f"warning: {line}: skipped: not a decision record" in err, err
        assert got["applicants"] == want["applicants"]
        _compare(got, json.loads(json.dumps(want)))


def test_monitor_on_athena_sends_one_aggregate_and_duckdb_runs_its_text(
    answered: Any,  # noqa: F811
    tmp_path: Path,
    synthetic_model_dir: Path,
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    _texts(root, sorted(ids)[3])
    metadata = artifacts.verify(synthetic_model_dir)
    schema = artifacts.model_schema(synthetic_model_dir)
    query = aggregates.Query(metadata, schema.codes, metadata["model_version"])
    local = list(LocalEngine(root).aggregate(query, None, None, print))

    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    engine = AthenaEngine(client, workgroup="w", database="d", poll_seconds=0)
    # The lines as the Glue table holds them, for DuckDB to run the texts Athena is sent.
    db = duckdb.connect()
    for macro in (MACROS, *aggregates.MACROS):
        db.execute(macro)
    db.execute("CREATE SCHEMA d")
    db.execute(f'CREATE TABLE d.{LINES_TABLE} (hour VARCHAR, "$path" VARCHAR, line VARCHAR)')
    for hour in ids:
        for path in (root / hour).glob("*.jsonl"):
            for line in path.read_text().splitlines():
                db.execute(
                    f"INSERT INTO d.{LINES_TABLE} VALUES (?, ?, ?)", [hour, "s3://b/o", line]
                )
    first = json.loads(
        (root / sorted(ids)[0]).glob("*.jsonl").__next__().read_text().split("\n")[0]
    )
    untimed = {k: v for k, v in first.items() if k != "time"}  # Trino reads it, NULL time
    too_big = {**first, "part": 2**64, "parts": 2**65}  # the reader reads it, not as BIGINT
    undated = {**first, "time": "yesterday"}  # not a date: a CAST of it would fail the query
    for line in ("{cut", json.dumps(untimed), json.dumps(too_big), json.dumps(undated)):
        db.execute(
            f"INSERT INTO d.{LINES_TABLE} VALUES (?, ?, ?)", [sorted(ids)[0], "s3://b/o", line]
        )
    typed = aggregates.record_type(query.names)

    def on_duckdb(sql: str) -> list[tuple[Any, ...]]:
        # transpiled where the dialects differ: the typed parse of a line, an applicant by index
        # (strict, as Trino's CAST: a number past BIGINT makes the line NULL, not the field)
        strict = aggregates.DUCKDB.parse("line", typed).replace(
            "from_json(", "json_transform_strict("
        )
        text = sql.replace(aggregates.TRINO.parse("line", typed), strict)
        item = ("rec.applicants", "i")
        text = text.replace(aggregates.TRINO.item(*item), aggregates.DUCKDB.item(*item))
        return db.execute(text).fetchall()

    sent: list[str] = []
    with Stubber(client) as stub:
        for n in range(2):
            stub.add_response("start_query_execution", {"QueryExecutionId": f"q{n}"})
            stub.add_response("get_query_execution",
                              {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}})  # fmt: skip
            stub.add_response("get_query_results", {"ResultSet": {"Rows": []}})
        original = engine.cells

        def cells(sql: str) -> Any:
            sent.append(sql)
            list(original(sql))  # the real calls, through the Stubber
            rows = on_duckdb(sql)
            return iter([[None if c is None else str(c) for c in row] for row in rows])

        engine.cells = cells  # type: ignore[method-assign]
        skipped: list[Any] = []
        athena = list(engine.aggregate(query, None, None, skipped.append))
        stub.assert_no_pending_responses()
    assert len(sent) == 2 and "TRY(CAST(json_parse(line) AS ROW(" in sent[1]
    for text in sent:  # the exact texts sent, read by a Trino grammar (DuckDB ran a rewrite)
        parsed = sqlglot.parse_one(text, read="trino")
        assert not list(parsed.find_all(sqlglot.exp.Anonymous))  # every function one Trino has
        fields = sorted(c.name for c in parsed.find_all(sqlglot.exp.ColumnDef))
        assert fields == sorted(_names(typed)) * text.count("AS ROW(")

    assert sorted(str(s) for s in skipped) == [
        "s3://b/o: skipped: not JSON: a damaged or cut-short line",
        "s3://b/o: skipped: not a decision record: time: Field required",
        "s3://b/o: skipped: not a decision record: time: Input should be a valid datetime, input "
        "is too short",
        "s3://b/o: skipped: the engine could not read it as a record",
    ]
    assert len(athena) == len(local)

    for a, b in zip(athena, local, strict=True):  # in the order fold reads them, both sorted by SQL
        assert a[:5] == tuple(b[:5]) and a[7:] == tuple(b[7:])
        for x, y in zip(a[5:7], b[5:7], strict=True):
            assert x == y or x == pytest.approx(y, rel=1e-12)


def test_outcomes_are_joined_in_the_engine_to_the_applicants_they_name(
    answered: Any,  # noqa: F811
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "records"
    _store(answered, root)
    metadata = artifacts.verify(synthetic_model_dir)
    schema = artifacts.model_schema(synthetic_model_dir)
    records = [parse_record(line) for p in sorted(root.glob("*/*/*/*/*.jsonl"))
               for line in p.open("rb")]  # fmt: skip
    target = schema.schema.target.name
    rows, p, y = [], [], []
    for n, record in enumerate(records):
        for result in record.results[n % 2 :: 2]:  # half the applicants, not all of a request
            outcome = (n + result.index) % 2
            rows.append(f"{record.request_id},{result.index},{outcome}")
            p.append(result.probability)
            y.append(outcome)
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("\n".join([f"request_id,index,{target}", *rows, "nowhere,0,1"]) + "\n")
    out = tmp_path / "report.json"
    code, _, err = run(capsys, "monitor", "--records", str(root), "--model-dir",
                       str(synthetic_model_dir), "--outcomes", str(outcomes), "--json", str(out))  # fmt: skip
    assert code in (0, 1), err
    assert f"1 outcome(s) in {outcomes} match no decision" in err
    got = json.loads(out.read_text())["outcomes"]
    period = period_of(records[0].time, "month")
    reference_auc = json.loads((synthetic_model_dir / artifacts.METRICS_FILE).read_text())
    want, _ = monitoring.outcome_figures(
        np.asarray(p), np.asarray(y), [period] * len(p),
        reference_auc=reference_auc.get("roc_auc"),
    )  # fmt: skip
    assert got["joined"] == len(rows) and metadata["model_version"]
    _close(got, json.loads(json.dumps(want)))


def test_a_lender_with_categories_gets_the_python_figures_unknown_and_missing_included(
    lender: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The synthetic second lender, and German credit when ../shared has it: categories binned
    by their texts' codes, a text the schema does not list in (other), a missing value."""
    from credit_explainer import CreditExplainerClient
    from credit_explainer_tools.local import LocalStack
    from credit_schema import SCHEMA_FILE, read_schema

    model_dir, frame = lender
    schema = read_schema(model_dir / SCHEMA_FILE)
    root = tmp_path / "records"
    root.mkdir()
    rows = frame.head(60).drop(columns=[schema.target])
    with LocalStack(model_dir, records_dir=root, log_level="ERROR") as stack:
        client = CreditExplainerClient(stack.api_url)
        for start in range(0, len(rows), 20):
            client.score_many(rows.iloc[start : start + 20])
    (path,) = root.glob("*/*/*/*/*.jsonl")
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    category = sorted(schema.categorical)[0]
    number = next(f for f in schema.features if f not in schema.categorical)
    first["applicants"][0][category] = "castle"  # recorded under an older schema, say
    first["applicants"][1][number] = None
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    want = _reference(root, model_dir, "month")
    out = tmp_path / "report.json"
    code, _, err = run(capsys, "monitor", "--records", str(root), "--model-dir", str(model_dir),
                       "--window", "month", "--json", str(out))  # fmt: skip
    assert code in (0, 1), err
    got = json.loads(out.read_text())
    feature = next(f for f in got["features"] if f["feature"] == category)
    assert feature["current_shares"][-1] == pytest.approx(1 / 60)  # (other)
    _compare(got, json.loads(json.dumps(want)))


def test_monitor_since_aggregates_only_the_hours_it_needs(
    answered: Any,  # noqa: F811
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    hours = sorted(ids)
    run(capsys, "decisions", "compact", "--records", str(root))
    engine = LocalEngine(root)
    # Before the window, a Parquet file DuckDB cannot read and a damaged JSON line: reading
    # either would show (a failed query, a warning).
    engine.parquet(hours[0]).write_bytes(b"not parquet")
    engine.parquet(hours[1]).unlink()
    _damage(root, hours[1])
    metadata = artifacts.verify(synthetic_model_dir)
    schema = artifacts.model_schema(synthetic_model_dir)
    query = aggregates.Query(metadata, schema.codes, metadata["model_version"])
    since = datetime.strptime(hours[2], "%Y/%m/%d/%H").replace(tzinfo=UTC)
    rows = list(engine.aggregate(query, since, None, print))
    assert engine.partitions_read == [(hours[2], "parquet"), (hours[3], "parquet")]
    (decided,) = [r for r in rows if r[0] == "decisions"]
    assert decided[4] == 2 * len(answered)  # the two hours' records, none before
    out = tmp_path / "since.json"
    code, _, err = run(capsys, "monitor", "--records", str(root), "--model-dir",
                       str(synthetic_model_dir), "--since", since.isoformat(), "--json", str(out))  # fmt: skip
    assert code in (0, 1) and "warning" not in err, err
    assert json.loads(out.read_text())["decisions"] == 2 * len(answered)


def _texts(root: Path, hour: str) -> None:
    """The hour's first record rewritten with texts in numeric features ("abc", "12"), as a
    foreign writer might: the reader accepts them (it does not know the schema)."""
    (path,) = (root / hour).glob("*.jsonl")
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    numbers = [k for k, v in first["applicants"][0].items() if isinstance(v, float)]
    first["applicants"][0][numbers[0]] = "abc"
    first["applicants"][-1][numbers[-1]] = "12"
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")


def _foreign(root: Path, hour: str) -> list[str]:
    """Lines a writer other than ours might leave (ours refuses NaN): a record with a NaN
    probability, one with an infinite input, one with a -infinite SHAP value, appended to the
    hour's file; ``FILE:LINE`` of each."""
    (path,) = (root / hour).glob("*.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    count = len(path.read_bytes().splitlines())
    nan, inf, minus = (json.loads(json.dumps(first)) for _ in range(3))
    nan["results"][0]["probability"] = math.nan
    name = next(k for k, v in inf["applicants"][0].items() if isinstance(v, float))
    inf["applicants"][0][name] = math.inf
    minus["results"][0]["contributions"][0]["shap_value"] = -math.inf
    with path.open("a") as f:
        for record in (nan, inf, minus):
            f.write(json.dumps(record) + "\n")  # NaN, Infinity, -Infinity: not our writer's
    return [f"{path}:{count + k}" for k in (1, 2, 3)]


def test_an_hour_the_engine_cannot_read_is_one_error_line_naming_it(
    answered: Any,  # noqa: F811
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "records"
    hours = sorted(_store(answered, root))
    run(capsys, "decisions", "compact", "--records", str(root))
    LocalEngine(root).parquet(hours[2]).write_bytes(b"not parquet")
    code, out, err = run(capsys, "monitor", "--records", str(root), "--model-dir",
                         str(synthetic_model_dir))  # fmt: skip
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert (
        line.startswith(f"error: cannot read {root}: hour {hours[2]}: ") and "Traceback" not in err
    )


def test_an_outcome_without_its_index_for_a_request_of_several_is_one_error_line(
    answered: Any,  # noqa: F811
    tmp_path: Path,
    synthetic_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "records"
    ids = _store(answered, root)
    several = ids[sorted(ids)[0]][-1]  # the request of five applicants
    schema = artifacts.model_schema(synthetic_model_dir)
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(f"request_id,index,{schema.schema.target.name}\n{several},,1\n")
    code, out, err = run(capsys, "monitor", "--records", str(root), "--model-dir",
                         str(synthetic_model_dir), "--outcomes", str(outcomes))  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (f"error: {outcomes}: request {several} has several applicants: give each "
                   "outcome's index\n")  # fmt: skip


def test_the_outcomes_join_leaves_out_an_applicant_without_index_or_probability(
    answered: Any,  # noqa: F811
) -> None:
    record = answered[0].model_dump(mode="json", by_alias=True)
    record["request_id"] = "r"
    no_index, no_p = json.loads(json.dumps(record)), json.loads(json.dumps(record))
    del no_index["results"][0]["index"]
    no_p["results"][1]["probability"] = None
    no_part = {**record, "part": None}
    db = duckdb.connect()
    for macro in (MACROS, *aggregates.MACROS):
        db.execute(macro)
    db.execute("CREATE TABLE t (hour VARCHAR, line VARCHAR, request_id VARCHAR, "
                "recorded_at VARCHAR, problem VARCHAR)")  # fmt: skip
    for r in (no_index, no_p, no_part):
        db.execute("INSERT INTO t VALUES ('h', ?, 'r', '2026', NULL)", [json.dumps(r)])
    sql = aggregates.outcome_sql(aggregates.DUCKDB, "SELECT * FROM t", "1 = 1",
                                 record["model_version"], ["r"], None)  # fmt: skip
    rows = db.execute(sql).fetchall()
    n = len(record["results"])
    assert sorted(row[5] for row in rows) == sorted(
        [*range(1, n), *(i for i in range(n) if i != 1)]
    )
    assert all(None not in row for row in rows)


def test_merged_aggregates_hold_every_count_of_the_applicants_counted_at_once(
    answered: Any,  # noqa: F811
    synthetic_model_dir: Path,
) -> None:
    metadata = artifacts.verify(synthetic_model_dir)
    schema = artifacts.model_schema(synthetic_model_dir)
    names = monitoring.Aggregates(metadata).names
    once, halves = monitoring.Aggregates(metadata), []
    once.add(*_arrays(answered, names, schema.codes))
    for chunk in (answered[:1], answered[1:]):
        halves.append(monitoring.Aggregates(metadata))
        halves[-1].add(*_arrays(chunk, names, schema.codes))
    query = aggregates.Query(metadata, schema.codes, metadata["model_version"])
    merged = aggregates.total(query, halves)
    for name, value in vars(once).items():  # every attribute, those added later too
        got = vars(merged)[name]
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            assert [g.tolist() for g in got] == [v.tolist() for v in value], name
        elif isinstance(value, np.ndarray):
            assert got.tolist() == pytest.approx(value.tolist(), rel=1e-12), name
        else:
            assert (
                got == pytest.approx(value, rel=1e-12) if isinstance(value, float) else got == value
            ), name
    assert merged.n == sum(len(r.results) for r in answered) > 0


def _names(typed: Any) -> list[str]:
    """The field names of a record type, nested ones included."""
    if isinstance(typed, list):
        return _names(typed[0])
    if isinstance(typed, dict):
        return [n for k, v in typed.items() for n in (k, *_names(v))]
    return []


def test_trinos_row_type_keeps_a_mixed_case_name_with_quotes_as_trino_reads_it() -> None:
    typed = {'It\'s "Age"': "DOUBLE", "Debt Ratio": "JSON", "rows": [{"MonthlyIncome": "JSON"}]}
    text = f"SELECT TRY(CAST(json_parse(line) AS {aggregates._trino_type(typed)})) FROM t"
    parsed = sqlglot.parse_one(text, read="trino")
    defs = {c.name: c.args["kind"].sql("trino") for c in parsed.find_all(sqlglot.exp.ColumnDef)}
    assert defs == {
        'It\'s "Age"': "DOUBLE",
        "Debt Ratio": "JSON",
        "rows": 'ARRAY(ROW("MonthlyIncome" JSON))',
        "MonthlyIncome": "JSON",
    }
