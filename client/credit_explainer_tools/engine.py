"""The query engine under ``decisions`` and ``monitor``: the SQL, stated once, run by DuckDB
over the local records (``--records DIR``) or by Amazon Athena over the Glue table
(``--athena``).

Every query reads one relation, a row per record line::

    hour         'yyyy/mm/dd/hh', the partition (folder, S3 prefix) the line is under
    source       the file (S3 object) it is in
    line_number  its place in that file (NULL on Athena, which does not know it)
    line         the line as written (NULL for a damaged line of a compacted hour)
    problem      why a compacted line was skipped (NULL for a good one)

and selects the lines to parse; the one reader (:func:`credit_schema.records.parse_record`)
turns each into a record or names it ``FILE:LINE: skipped: why``, so the engine finds lines
and the reader alone decides what a record is. The SQL is written in the subset DuckDB and
Athena (Trino) share; DuckDB gets Trino's ``json_extract_scalar`` as a macro (:data:`MACROS`),
which makes a line that is not JSON NULL there as it is on Athena, and a NULL id or time keeps
a line in the answer, so a damaged line is named, never dropped.

Locally, a compacted hour (``decisions compact``: Parquet under ``DIR/compacted/``) is read from
its Parquet file, and an hour not compacted yet from its JSON lines, through the reader, into a
temporary table; each hour on its own, so memory holds one hour at a time. Only the hours a
query needs are read (:attr:`LocalEngine.partitions_read`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from credit_schema.records import (
    DecisionRecord,
    RecordError,
    Skipped,
    hour_prefix,
    hours_of_id,
    parse_record,
    read_lines,
    time_text,
)
from credit_schema.text import sql_literal as literal

if TYPE_CHECKING:  # monitor's aggregates import numpy: not for decisions show
    from . import aggregates

#: A row of the relation the queries select: (source, line_number, line, problem).
Row = tuple[str, int | None, str | None, str | None]
OnSkip = Callable[[Skipped], None]

_PICK: Final = "SELECT source, line_number, line, problem FROM records"
_ORDER: Final = "ORDER BY hour, source, line_number"

#: One decision by id, in the hours its UUIDv7 names (and every line that is not JSON there).
LOOKUP: Final = (
    "WITH records AS ({relation})\n"
    f"{_PICK}\nWHERE hour IN ({{hours}})\n"
    "  AND (problem IS NOT NULL OR request_id IS NULL OR request_id = {request_id})\n"
    f"{_ORDER}"
)
#: The decisions timed within [since, until] (records' times are ISO 8601 text, UTC, to the
#: millisecond, so they compare as text), in the hours that can hold them.
WINDOW: Final = (
    "WITH records AS ({relation})\n"
    f"{_PICK}\nWHERE {{hours}}\n"
    "  AND (problem IS NOT NULL OR recorded_at IS NULL\n"
    "       OR (recorded_at >= {since} AND recorded_at <= {until}))\n"
    f"{_ORDER}"
)
#: Trino's JSON function for DuckDB: NULL for a line that is not JSON, as on Athena.
MACROS: Final = (
    "CREATE OR REPLACE MACRO json_extract_scalar(j, p) AS "
    "CASE WHEN json_valid(j) THEN json_extract_string(j, p) END"
)
#: What the compacted Parquet and the temporary table of an hour's lines hold.
_TABLE: Final = (
    "hour VARCHAR, source VARCHAR, line_number BIGINT, request_id VARCHAR, recorded_at VARCHAR, "
    "line VARCHAR, problem VARCHAR"
)
#: A row of it; the request id and time are the reader's, of the line it took.
Line = tuple[str, str, int, str | None, str | None, str | None, str | None]
_NAMES: Final = [c.split()[0] for c in _TABLE.split(", ")]
#: The rows as :meth:`LocalEngine._load` writes them: one JSON object a row.
_INSERT: Final = (
    "INSERT INTO lines SELECT * FROM read_json({path}, format = 'newline_delimited', "  # noqa: S608
    "columns = {{"
    + ", ".join(f"'{c.split()[0]}': '{c.split()[1]}'" for c in _TABLE.split(", "))
    + "}}, maximum_object_size = 1073741824)"
)
#: DuckDB's memory while it aggregates (it spills beyond): monitor's flat memory.
_AGGREGATE_MEMORY: Final = "600MB"
#: Hours aggregated between two additions of the partial counts (score cells repeat).
_FOLD_EVERY: Final = 12
#: Rows fetched from DuckDB at a time (memory holds these and one hour's table).
_BATCH: Final = 2000
_HOUR: Final = re.compile(r"\d{4}/\d{2}/\d{2}/\d{2}")
#: Where ``decisions compact`` writes, under the records directory.
COMPACTED: Final = "compacted"


class QueryError(RuntimeError):
    """A query the engine did not run (the message says why, and which hour locally)."""


def hours_in(since: datetime | None, until: datetime | None) -> Callable[[str], bool]:
    """The partitions that can hold records timed within [since, until]: a record reaches its
    folder up to an hour after its time."""
    low = hour_prefix(since) if since else ""
    high = hour_prefix(until + timedelta(hours=1)) if until else "~"
    return lambda hour: low <= hour <= high


def lookup_sql(relation: str, hours: Sequence[str], request_id: str) -> str:
    return LOOKUP.format(
        relation=relation,
        hours=", ".join(literal(h) for h in hours),
        request_id=literal(request_id),
    )


def window_sql(
    relation: str, hours: Sequence[str] | None, since: datetime | None, until: datetime | None
) -> str:
    return WINDOW.format(
        relation=relation,
        hours="1 = 1" if hours is None else f"hour IN ({', '.join(literal(h) for h in hours)})",
        since=literal(time_text(since) if since else ""),
        until=literal(time_text(until) if until else "~"),
    )


class Engine(Protocol):
    """Finds record lines; :func:`records` reads them."""

    def lookup(self, request_id: str, on_skip: OnSkip) -> Iterator[DecisionRecord]: ...

    def window(
        self, since: datetime | None, until: datetime | None, on_skip: OnSkip
    ) -> Iterator[DecisionRecord]: ...


def records(
    rows: Iterable[Row], on_skip: OnSkip, locate: Callable[[str, str], int] | None = None
) -> Iterator[DecisionRecord]:
    """The records of the selected rows, each line through the one reader; a damaged line (or
    one compaction skipped) is handed to ``on_skip``, numbered by ``locate(source, line)`` where
    the engine does not know its number."""
    for source, number, line, problem in rows:
        if line is None or problem is not None:
            on_skip(Skipped(source, number or 0, problem or "empty"))
            continue
        try:
            yield parse_record(line)
        except RecordError as exc:
            if number is None and locate is not None:
                number = locate(source, line)
            on_skip(Skipped(source, number or 0, str(exc)))


# ------------------------------------------------------------------ local: DuckDB -------


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise RecordError(
            "querying records needs duckdb (a dependency of credit-explainer-tools): pip install duckdb"
        ) from None
    return duckdb


def hour_lines(
    root: Path, hour: str, naming: bytes | None = None, *, keep: bool = True
) -> tuple[list[Line], dict[tuple[str, int], DecisionRecord]]:
    """One hour folder's lines as rows of the relation, each line through the one reader:
    a good line as written with its id and time, a damaged one as its problem; and (``keep``)
    the records read, by (file, line). With ``naming`` (a look-up), only the lines holding it
    are parsed (:func:`credit_schema.records.read_lines`)."""
    rows: list[Line] = []
    read: dict[tuple[str, int], DecisionRecord] = {}
    for path in sorted((root / hour).glob("*.jsonl")):
        name = path.relative_to(root).as_posix()
        with path.open("rb") as f:
            lines = f.readlines()
        kept: dict[int, DecisionRecord | None] = {}  # the reader's records, by the line's id
        problems: list[Skipped] = []
        ids: dict[int, tuple[str, str]] = {}

        def parse(
            line: bytes,
            kept: dict[int, DecisionRecord | None] = kept,
            ids: dict[int, tuple[str, str]] = ids,
        ) -> DecisionRecord:
            record = parse_record(line)
            kept[id(line)] = record if keep else None
            ids[id(line)] = (record.request_id, time_text(record.time))
            return record

        for _ in read_lines(name, lines, problems.append, parse, naming):
            pass
        for n, line in enumerate(lines, 1):
            found = ids.get(id(line))
            if found is not None:
                record = kept[id(line)]
                if record is not None:
                    read[name, n] = record
                text = line.decode().rstrip("\r\n")
                rows.append((hour, name, n, *found, text, None))
        rows.extend((hour, name, s.line, None, None, None, s.reason) for s in problems)
    return rows, read


@dataclass
class LocalEngine:
    """DuckDB over ``root``: the compacted Parquet of an hour when there is one, else its JSON
    lines through the reader."""

    root: Path
    #: Every partition a query read, and how (``parquet`` or ``json``): what tests check.
    partitions_read: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._db = _duckdb().connect(":memory:")
        self._read: dict[tuple[str, int], DecisionRecord] = {}  # the JSON hour's, parsed once

    def hours(self) -> list[str]:
        """The hour partitions under ``root`` (JSON lines or compacted), oldest first."""
        found = {
            "/".join(p.relative_to(self.root).parts)
            for p in self.root.glob("*/*/*/*")
            if p.is_dir()
        }
        found.update(_compacted_hour(p) for p in (self.root / COMPACTED).glob("*/*/*.parquet"))
        return sorted(h for h in found if _HOUR.fullmatch(h))

    def parquet(self, hour: str) -> Path:
        day, hh = hour.rsplit("/", 1)
        return (
            self.root
            / COMPACTED
            / f"date={day.replace('/', '-')}"
            / f"hour={hh}"
            / ("records.parquet")
        )

    def _relation(self, hour: str, naming: bytes | None, on_skip: OnSkip) -> str:
        """The relation of one hour: its Parquet, or its lines loaded into a temporary table."""
        compacted = self.parquet(hour)
        if compacted.exists():
            self.partitions_read.append((hour, "parquet"))
            path = literal(str(compacted))  # every value in the SQL is a literal()
            return f"SELECT * FROM read_parquet({path}, hive_partitioning = false)"  # noqa: S608
        self.partitions_read.append((hour, "json"))
        rows, self._read = hour_lines(self.root, hour, naming)
        self._load(rows)
        return "SELECT * FROM lines"

    def _load(self, rows: list[Line]) -> None:
        """The rows as the temporary table ``lines``, through a file of our own JSON lines
        (DuckDB's inserts from Python take seconds an hour; its JSON reader, milliseconds)."""
        self._db.execute(f"CREATE OR REPLACE TEMP TABLE lines ({_TABLE})")
        if not rows:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(dict(zip(_NAMES, row, strict=True))) + "\n")
            f.flush()
            self._db.execute(_INSERT.format(path=literal(f.name)))

    def _run(self, sql: str, on_skip: OnSkip) -> Iterator[DecisionRecord]:
        """The records of the query's rows, a batch at a time (a JSON hour's as the reader
        already read them)."""
        cursor = self._db.execute(sql)
        while batch := cursor.fetchmany(_BATCH):
            for source, number, line, problem in batch:
                known = self._read.get((source, number))
                if known is not None:
                    yield known
                else:
                    yield from records([(str(self.root / source), number, line, problem)], on_skip)
        self._read = {}

    def lookup(self, request_id: str, on_skip: OnSkip) -> Iterator[DecisionRecord]:
        hours = hours_of_id(request_id)
        if hours is None:  # not time-ordered: every hour
            yield from (r for r in self.window(None, None, on_skip) if r.request_id == request_id)
            return
        naming = request_id.encode()
        for hour in hours:
            if not (self.root / hour).is_dir() and not self.parquet(hour).exists():
                continue
            relation = self._relation(hour, naming, on_skip)
            yield from self._run(lookup_sql(relation, [hour], request_id), on_skip)

    def window(
        self, since: datetime | None, until: datetime | None, on_skip: OnSkip
    ) -> Iterator[DecisionRecord]:
        wanted = hours_in(since, until)
        for hour in self.hours():
            if not wanted(hour):
                continue
            relation = self._relation(hour, None, on_skip)
            yield from self._run(window_sql(relation, [hour], since, until), on_skip)

    def aggregate(
        self,
        query: aggregates.Query,
        since: datetime | None,
        until: datetime | None,
        on_skip: OnSkip,
    ) -> Iterator[aggregates.Row]:
        """:func:`aggregates.aggregate_sql` over the hours that can hold [since, until], one
        at a time (its Parquet, or its JSON lines through the reader), the partial counts kept
        in DuckDB and added up (:data:`aggregates.TOTALS`): memory holds counts and one hour.
        Damaged lines are named through ``on_skip``."""
        from . import aggregates

        for macro in (MACROS, *aggregates.MACROS):
            self._db.execute(macro)
        wanted = hours_in(since, until)
        hours = [h for h in self.hours() if wanted(h)]
        self._db.execute("DROP TABLE IF EXISTS partials")
        for n, hour in enumerate(hours):
            try:
                self._aggregate_hour(query, hour, n, since, until, on_skip)
            except _duckdb().Error as exc:  # a Parquet file DuckDB cannot read, say
                raise QueryError(f"hour {hour}: {str(exc).splitlines()[0]}") from None
        if not hours:
            return
        cursor = self._db.execute(aggregates.TOTALS.format(rows="SELECT * FROM partials"))
        while batch := cursor.fetchmany(_BATCH):
            yield from batch

    def _aggregate_hour(
        self,
        query: aggregates.Query,
        hour: str,
        n: int,
        since: datetime | None,
        until: datetime | None,
        on_skip: OnSkip,
    ) -> None:
        """The ``n``-th hour's partial counts into the table ``partials``."""
        from . import aggregates

        if self.parquet(hour).exists():
            self.partitions_read.append((hour, "parquet"))
            path = literal(str(self.parquet(hour)))
            relation = f"SELECT * FROM read_parquet({path}, hive_partitioning = false)"  # noqa: S608
        else:
            self.partitions_read.append((hour, "json"))
            rows, _ = hour_lines(self.root, hour, keep=False)
            self._load(rows)
            del rows
            relation = "SELECT * FROM lines"
        where = f"hour = {literal(hour)}"
        damaged = aggregates.damaged_sql(relation, where, "FALSE")  # the reader read them
        for source, number, line, problem in self._db.execute(damaged).fetchall():
            for _ in records([(str(self.root / source), number, line, problem)], on_skip):
                pass
        sql = aggregates.aggregate_sql(query, aggregates.DUCKDB, relation, where, since, until)
        self._db.execute(f"SET memory_limit = '{_AGGREGATE_MEMORY}'")  # spill beyond it
        self._db.execute(("CREATE TEMP TABLE partials AS " if n == 0 else
                          "INSERT INTO partials ") + sql)  # fmt: skip
        if n % _FOLD_EVERY == _FOLD_EVERY - 1:  # partial counts added up: they stay few
            totals = aggregates.TOTALS.format(rows="SELECT * FROM partials")
            self._db.execute(f"CREATE OR REPLACE TEMP TABLE partials AS {totals}")
        self._db.execute("RESET memory_limit")  # read_json reserves twice its largest line

    def scored(
        self, ids: Sequence[str], version: str, since: datetime | None
    ) -> Iterator[aggregates.Scored]:
        """The applicants of the requests ``ids`` (:func:`aggregates.outcome_sql`), read in the
        hours their time-ordered ids name (every hour since ``since`` for the others)."""
        from . import aggregates

        for macro in (MACROS, *aggregates.MACROS):
            self._db.execute(macro)
        by_hour: dict[str, list[str]] = {}
        anywhere = []
        for request_id in ids:
            hours = hours_of_id(request_id)
            if hours is None:
                anywhere.append(request_id)
            for hour in hours or []:
                by_hour.setdefault(hour, []).append(request_id)
        wanted = hours_in(since, None)
        for hour in self.hours():
            named = by_hour.get(hour, []) + anywhere
            if not named or not wanted(hour):
                continue
            relation = self._relation(hour, None, lambda _: None)  # named by the aggregates
            for start in range(0, len(named), aggregates.IDS_PER_QUERY):
                batch = named[start : start + aggregates.IDS_PER_QUERY]
                sql = aggregates.outcome_sql(
                    aggregates.DUCKDB, relation, f"hour = {literal(hour)}", version, batch, since
                )
                yield from self._db.execute(sql).fetchall()
            self._read = {}

    def compact(self, before: str, on_skip: OnSkip) -> tuple[list[str], int]:
        """Write each hour older than ``before`` (``yyyy/mm/dd/hh``) not compacted yet as
        Parquet, every line through the reader (damaged lines kept as their problem, and handed
        to ``on_skip``); returns the hours written and how many lines were skipped."""
        written, skipped = [], 0
        for hour in self.hours():
            target = self.parquet(hour)
            if hour >= before or target.exists():
                continue
            rows, _ = hour_lines(self.root, hour, keep=False)
            self._load(rows)
            for _, source, number, _, _, _, problem in rows:
                if problem is not None:
                    skipped += 1
                    on_skip(Skipped(str(self.root / source), number, problem))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}")
            self._db.execute(
                "COPY (SELECT * FROM lines ORDER BY source, line_number) "  # noqa: S608
                f"TO {literal(str(partial))} (FORMAT parquet, COMPRESSION zstd)"
            )
            partial.replace(target)  # all or nothing: a half-written file is never read
            written.append(hour)
        return written, skipped


def _compacted_hour(path: Path) -> str:
    """``yyyy/mm/dd/hh`` of ``compacted/date=yyyy-mm-dd/hour=hh/records.parquet``."""
    day = path.parent.parent.name.removeprefix("date=").replace("-", "/")
    return f"{day}/{path.parent.name.removeprefix('hour=')}"


# ------------------------------------------------------------------ AWS: Athena ---------

#: The Glue table of raw record lines (template.yaml ``DecisionRecordLinesTable``).
LINES_TABLE: Final = "decision_record_lines"
#: The relation on Athena: the Glue table's lines, named by object.
ATHENA_RELATION: Final = (
    'SELECT hour, "$path" AS source, CAST(NULL AS BIGINT) AS line_number, '
    "json_extract_scalar(line, '$.request_id') AS request_id, "
    "json_extract_scalar(line, '$.time') AS recorded_at, "
    "line, CAST(NULL AS VARCHAR) AS problem FROM {table}"
)
_DONE: Final = {"SUCCEEDED", "FAILED", "CANCELLED"}
#: Why a line the reader reads but Trino's typed parse does not (a part past BIGINT, say) is
#: left out of the aggregates.
UNREAD: Final = "the engine could not read it as a record"


class AthenaError(QueryError):
    """A query Athena did not run (the message says why)."""


@dataclass
class AthenaEngine:
    """The same SQL on Amazon Athena, over the stack's Glue table of record lines in its
    workgroup (the stack's outputs ``RecordsAthenaWorkGroup`` and ``RecordsGlueDatabase``)."""

    athena: Any
    workgroup: str
    database: str
    poll_seconds: float = 1.0
    #: Reads the object of a damaged line to number it (Athena names the object only).
    s3: Any = None
    #: Every query run, as sent: what tests check.
    queries: list[str] = field(default_factory=list)
    _objects: dict[str, str] = field(default_factory=dict, repr=False)
    _searched: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    @property
    def relation(self) -> str:
        return ATHENA_RELATION.format(table=f'"{self.database}".{LINES_TABLE}')

    def cells(self, sql: str) -> Iterator[list[str | None]]:
        """start_query_execution in the workgroup, poll until done, page through the results:
        each row's cells as text."""
        self.queries.append(sql)
        started = self.athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self.workgroup,
            QueryExecutionContext={"Database": self.database},
        )
        query_id = started["QueryExecutionId"]
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=query_id)
            state = status["QueryExecution"]["Status"]
            if state["State"] in _DONE:
                break
            time.sleep(self.poll_seconds)
        if state["State"] != "SUCCEEDED":
            reason = state.get("StateChangeReason", "no reason given")
            raise AthenaError(f"query {query_id} {state['State'].lower()}: {reason}")
        token: str | None = None
        first = True
        while True:
            page = self.athena.get_query_results(
                QueryExecutionId=query_id, **({"NextToken": token} if token else {})
            )
            result_rows = page["ResultSet"]["Rows"]
            if first:  # the first page's first row is the header
                result_rows, first = result_rows[1:], False
            for row in result_rows:
                yield [c.get("VarCharValue") for c in row["Data"]]
            token = page.get("NextToken")
            if not token:
                return

    def line_number(self, source: str, line: str) -> int:
        """Where the damaged ``line`` is in its S3 object (0: the object cannot be read, or
        the line is not found whole in it); the same text again is the next such line."""
        if self.s3 is None or not source.startswith("s3://"):
            return 0
        if source not in self._objects:
            from botocore.exceptions import BotoCoreError, ClientError

            bucket, _, key = source.removeprefix("s3://").partition("/")
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except (BotoCoreError, ClientError):
                body = b""
            # As Athena reads it: undecodable bytes replaced, a newline around every line.
            self._objects = {source: "\n" + body.decode("utf-8", "replace") + "\n"}
        text = self._objects[source]
        at = text.find("\n" + line + "\n", self._searched.get((source, line), 0))
        if at < 0:
            return 0
        self._searched[(source, line)] = at + 1
        return text.count("\n", 0, at + 1)

    def run(self, sql: str) -> Iterator[Row]:
        """The query's rows of the relation: (source, line_number, line, problem)."""
        for cells in self.cells(sql):
            number = cells[1]
            yield (str(cells[0]), int(number) if number else None, cells[2], cells[3])

    def lookup(self, request_id: str, on_skip: OnSkip) -> Iterator[DecisionRecord]:
        hours = hours_of_id(request_id)
        if hours is None:
            sql = window_sql(self.relation, None, None, None)
            yield from (
                r
                for r in records(self.run(sql), on_skip, self.line_number)
                if r.request_id == request_id
            )
            return
        yield from records(
            self.run(lookup_sql(self.relation, hours, request_id)), on_skip, self.line_number
        )

    def window(
        self, since: datetime | None, until: datetime | None, on_skip: OnSkip
    ) -> Iterator[DecisionRecord]:
        hours = _projected(since, until)
        yield from records(
            self.run(window_sql(self.relation, hours, since, until)), on_skip, self.line_number
        )

    def aggregate(
        self,
        query: aggregates.Query,
        since: datetime | None,
        until: datetime | None,
        on_skip: OnSkip,
    ) -> Iterator[aggregates.Row]:
        """:func:`aggregates.aggregate_sql` on Athena over the partitions the window can touch:
        counts come back, not lines. The lines that are not records (not JSON, or not of the
        record's shape) are fetched by a second query and named by the reader."""
        from . import aggregates

        hours = _projected(since, until)
        where = "1 = 1" if hours is None else f"hour IN ({', '.join(literal(h) for h in hours)})"
        typed = aggregates.record_type(query.names)
        unparsed = f"{aggregates.TRINO.parse('line', typed)} IS NULL"
        damaged = aggregates.damaged_sql(self.relation, where, unparsed)
        for row in self.run(damaged):  # left out of the aggregates: each one named
            for _ in records([row], on_skip, self.line_number):  # the reader's reason, or:
                source, _, line, _ = row
                on_skip(Skipped(source, self.line_number(source, line or ""), UNREAD))
        sql = aggregates.aggregate_sql(query, aggregates.TRINO, self.relation, where, since, until)
        yield from aggregates.rows_of(self.cells(aggregates.TOTALS.format(rows=sql)))

    def scored(
        self, ids: Sequence[str], version: str, since: datetime | None
    ) -> Iterator[aggregates.Scored]:
        """The applicants of the requests ``ids`` (:func:`aggregates.outcome_sql`) on Athena, a
        batch of ids a query, in the partitions their time-ordered ids name."""
        from . import aggregates

        for start in range(0, len(ids), aggregates.IDS_PER_QUERY):
            batch = ids[start : start + aggregates.IDS_PER_QUERY]
            hours: set[str] | None = set()
            for request_id in batch:
                named = hours_of_id(request_id)
                if named is None or hours is None:
                    hours = None
                else:
                    hours.update(named)
            where = (
                "1 = 1"
                if hours is None
                else f"hour IN ({', '.join(literal(h) for h in sorted(hours))})"
            )
            sql = aggregates.outcome_sql(
                aggregates.TRINO, self.relation, where, version, batch, since
            )
            for cells in self.cells(sql):
                found, moment, part, parts, count, index, probability = cells
                yield (str(found), str(moment), int(str(part)), int(str(parts)),
                       int(str(count)), int(str(index)), float(str(probability)))  # fmt: skip


def _projected(since: datetime | None, until: datetime | None) -> list[str] | None:
    """The projected partitions a window can touch, named (None: every one)."""
    if since is None:
        return None
    end = until or datetime.now(UTC)
    wanted = hours_in(since, until)
    hours, moment = [], since - timedelta(hours=1)
    while moment <= end + timedelta(hours=1):
        if wanted(hour_prefix(moment)):
            hours.append(hour_prefix(moment))
        moment += timedelta(hours=1)
    return hours


def athena_from_stack(stack: str, region: str | None = None) -> AthenaEngine:
    """The Athena engine of a deployed stack: its workgroup and Glue database from the stack's
    outputs (:class:`AthenaError` when it has none)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise AthenaError(
            "--athena needs boto3 (a dependency of credit-explainer-tools): pip install boto3"
        ) from None
    try:
        described = boto3.client("cloudformation", region_name=region).describe_stacks(
            StackName=stack
        )
        outputs = {
            o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])
        }
    except (BotoCoreError, ClientError) as exc:
        raise AthenaError(f"cannot read stack {stack}: {exc}") from None
    missing = [k for k in ("RecordsAthenaWorkGroup", "RecordsGlueDatabase") if k not in outputs]
    if missing:
        raise AthenaError(f"stack {stack} has no {' or '.join(missing)} output: deploy it again")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", outputs["RecordsGlueDatabase"]):  # quoted in the SQL
        raise AthenaError(
            f"stack {stack}: not a Glue database name: {outputs['RecordsGlueDatabase']}"
        )
    return AthenaEngine(
        athena=boto3.client("athena", region_name=region),
        s3=boto3.client("s3", region_name=region),
        workgroup=outputs["RecordsAthenaWorkGroup"],
        database=outputs["RecordsGlueDatabase"],
    )
