"""``monitor``'s figures as aggregates the query engine computes: bin counts, sums, a histogram
of scores, never the applicants themselves, so memory stays flat however many decisions there
are (and ``--athena`` sends back counts, not lines).

One SQL text (:func:`aggregate_sql`), in the subset Athena (Trino) and DuckDB share, over the
engine's relation of record lines (:mod:`.engine`). Where the dialects differ it is rendered
(:class:`Dialect`): how a line is parsed into the typed record (Trino's ``CAST(json_parse(line)
AS ROW(...))``, DuckDB's ``from_json``) and an applicant by index; DuckDB gets Trino's
``sequence`` and ``json_format`` as macros. The bins are :func:`credit_model.stability.bin_sql`, the range test
:func:`credit_model.monitor.outside_range_sql`: each rule stated once, beside its Python form.

The result is a few rows of long form (:data:`COLUMNS`), added up over the engine's chunks and
folded into :class:`credit_model.monitor.Aggregates` per period (:func:`fold`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from credit_model import monitor as monitoring
from credit_model import stability
from credit_schema.records import time_text
from credit_schema.text import sql_literal

#: The columns of :func:`aggregate_sql`'s rows: what is counted (``kind``), the period's first
#: day, a feature, a bin (or a code), a count, two sums, the first and last decision's time.
COLUMNS: Final = ("kind", "period", "feature", "bin", "n", "x", "y", "first", "last")
#: DuckDB's stand-ins for Trino's functions the aggregates use (with ``engine.MACROS``).
MACROS: Final = (
    "CREATE OR REPLACE MACRO json_format(j) AS CAST(j AS VARCHAR)",  # JSON's text, quotes kept
    "CREATE OR REPLACE MACRO sequence(a, b) AS generate_series(CAST(a AS BIGINT), CAST(b AS BIGINT))",
)


def record_type(features: Iterable[str]) -> dict[str, Any]:
    """The fields of a record line the aggregates read, typed (a dict: a row; a list: an array
    of its one element's type); an applicant's values stay JSON (a number or a category)."""
    return {
        "model_version": "VARCHAR",
        "part": "BIGINT",
        "applicants": [{f: "JSON" for f in features}],
        "results": [
            {
                "probability": "DOUBLE",
                "contributions": [{"feature": "VARCHAR", "shap_value": "DOUBLE"}],
                "reasons": [{"feature": "VARCHAR"}],
            }
        ],
    }


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _trino_type(t: Any) -> str:
    if isinstance(t, dict):
        return "ROW(" + ", ".join(f"{_quoted(k)} {_trino_type(v)}" for k, v in t.items()) + ")"
    if isinstance(t, list):
        return f"ARRAY({_trino_type(t[0])})"
    return str(t)


@dataclass(frozen=True)
class Dialect:
    """How the one SQL text parses a line into the typed record, per engine."""

    name: str

    def parse(self, line: str, typed: dict[str, Any]) -> str:
        """The line as the typed record, NULL when it is not one (not JSON, wrong shape)."""
        if self.name == "duckdb":  # from_json, not CAST: a record's other fields are ignored
            return f"try(from_json({line}, {sql_literal(json.dumps(typed))}))"
        return f"TRY(CAST(json_parse({line}) AS {_trino_type(typed)}))"

    def item(self, array: str, index: str) -> str:
        """The array's item at ``index`` (from 1), NULL past its end (Trino's subscript fails
        there: a line with fewer applicants than results would fail the whole query)."""
        return f"{array}[{index}]" if self.name == "duckdb" else f"element_at({array}, {index})"


def number(value: Any, codes: dict[str, int] | None) -> float:
    """A recorded input as the model saw it: NaN when missing, a category as its code (one past
    the last for a text the schema does not list); a text in a numeric feature (the reader does
    not know the schema; our API refuses it) counts as missing, as :func:`number_sql`."""
    if value is None:
        return math.nan
    if codes is not None:
        return float(codes.get(str(value), len(codes)))
    return math.nan if isinstance(value, str) else float(value)


def number_sql(value: str) -> str:
    """:func:`number`'s rule in SQL over a JSON value: a number as a DOUBLE, NULL (missing)
    for null and for a text (TRY_CAST of its JSON text ``"12"``, quotes and all, is NULL)."""
    return f"TRY_CAST(json_format({value}) AS DOUBLE)"


DUCKDB: Final = Dialect("duckdb")
TRINO: Final = Dialect("trino")


#: The day of a line's time; NULL when it has none, or one that is not a date (on Athena, where
#: the reader has not read the line: a CAST would fail the whole query).
DAY: Final = "TRY_CAST(substr(recorded_at, 1, 10) AS DATE)"


def _indexes(array: str) -> str:
    """1 to the array's length (none for an empty or NULL array: filter ``k <= cardinality``)."""
    return f"sequence(1, greatest(coalesce(cardinality({array}), 0), 1))"


@dataclass(frozen=True)
class Query:
    """What one monitor run counts: the model's baseline and version, the window's unit."""

    metadata: dict[str, Any]
    codes: dict[str, dict[str, int]]
    version: str
    unit: str = "month"  # day, week or month: the periods, by their first day
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        base = monitoring.check_baseline(self.metadata)
        names = [str(f) for f in self.metadata.get("features", base["features"])]
        object.__setattr__(self, "names", names)


def _column(j: int) -> str:
    return f"v{j}"


def aggregate_sql(
    query: Query,
    dialect: Dialect,
    relation: str,
    hours: str,
    since: datetime | None,
    until: datetime | None,
) -> str:
    """The one SQL text of the aggregates, over ``relation`` (the engine's: ``line``,
    ``recorded_at``, ``problem``) in the partitions ``hours`` (a condition on ``hour``)."""
    base = monitoring.check_baseline(query.metadata)
    extra = base["monitoring"]
    typed = record_type(query.names)
    values, codes = [], []
    for j, name in enumerate(query.names):
        b = base["features"][name]
        text = f"json_extract_scalar(a.{_quoted(name)}, '$')"
        bin_ = stability.bin_sql(b, _column(j), query.codes.get(name))
        if "categories" in b:
            values.append(f"{text} AS {_column(j)}")
            outside = monitoring.outside_sql(b, None, f"({bin_})")
        else:
            values.append(f"{number_sql('a.' + _quoted(name))} AS {_column(j)}")
            outside = monitoring.outside_sql(b, extra["range"].get(name), _column(j))
        # a bin and whether outside the range, in one number (bin * 2 + outside; -2 missing)
        codes.append(f"({bin_}) * 2 + {outside}")
    score_bin = stability.bin_sql(base["score"], "p")
    knots = {"edges": [float(x) for x in extra["calibration"]["score"]]} if extra.get(
        "calibration") else {"edges": []}  # fmt: skip
    segment = stability.bin_sql(knots, "p")
    if len(knots["edges"]) + 2 > SEGMENTS:
        raise ValueError(f"{len(knots['edges'])} calibration knots: at most {SEGMENTS - 2}")
    cell = f"CAST(floor(p * {monitoring.SCORE_CELLS}) AS BIGINT) * {SEGMENTS} + ({segment})"
    threshold = float(extra["high_risk_threshold"])
    applicant = "period, source, line_number, request_id, part, i"  # one applicant's key
    reasons = monitoring.reasons_sql(
        f"(SELECT {applicant}, p, reasons[k].feature AS reason\n"  # noqa: S608 (names only)
        f"   FROM counted CROSS JOIN UNNEST({_indexes('reasons')}) AS q(k)\n"
        "   WHERE k <= cardinality(reasons)) AS given",
        applicant,
        "reason",
        "p",
        threshold,
    )
    version = sql_literal(query.version)
    return f"""WITH records AS ({relation}),
decoded AS (
  SELECT source, line_number, request_id, recorded_at, {dialect.parse("line", typed)} AS rec
  FROM records
  WHERE {hours} AND problem IS NULL AND line IS NOT NULL
    AND recorded_at >= {sql_literal(time_text(since) if since else "")}
    AND recorded_at <= {sql_literal(time_text(until) if until else "~")} AND {DAY} IS NOT NULL
),
mine AS (
  SELECT CAST(date_trunc('{query.unit}', {DAY}) AS VARCHAR) AS period, source, line_number,
         request_id, rec
  FROM decoded WHERE rec.model_version = {version}
),
people AS (
  SELECT period, source, line_number, request_id, rec.part AS part, i, {dialect.item("rec.applicants", "i")} AS a,
         rec.results[i] AS result
  FROM mine CROSS JOIN UNNEST({_indexes("rec.results")}) AS t(i)
  WHERE i <= cardinality(rec.results)
),
valued AS (
  SELECT period, source, line_number, request_id, part, i, result.probability AS p, result.contributions AS contributions,
         result.reasons AS reasons, {", ".join(values)}
  FROM people
),
counted AS (
  SELECT period, source, line_number, request_id, part, i, p, contributions, reasons, ARRAY[{", ".join(codes)}] AS codes FROM valued
)
SELECT 'decisions' AS kind, CASE WHEN rec.model_version = {version} THEN 'mine' ELSE 'other' END
       AS period, CAST(NULL AS VARCHAR) AS feature, CAST(NULL AS BIGINT) AS bin,
       count(*) AS n, CAST(NULL AS DOUBLE) AS x, CAST(NULL AS DOUBLE) AS y,
       min(recorded_at) AS first, max(recorded_at) AS last
FROM decoded WHERE rec IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'feature', period, CAST(j AS VARCHAR), codes[j], count(*), NULL, NULL, NULL, NULL
FROM counted CROSS JOIN UNNEST({_indexes("codes")}) AS b(j)
GROUP BY period, j, codes[j]
UNION ALL
SELECT 'score', period, NULL, {score_bin}, count(*), sum(p), NULL, NULL, NULL
FROM counted GROUP BY period, {score_bin}
UNION ALL
SELECT 'shap', period, contributions[k].feature, NULL, count(*),
       sum(abs(contributions[k].shap_value)), NULL, NULL, NULL
FROM counted CROSS JOIN UNNEST({_indexes("contributions")}) AS c(k)
WHERE k <= cardinality(contributions)
GROUP BY period, contributions[k].feature
UNION ALL
SELECT 'high', period, NULL, NULL, count(*), NULL, NULL, NULL, NULL
FROM counted WHERE {monitoring.high_risk_sql("p", threshold)} GROUP BY period
UNION ALL
SELECT 'reason', period, feature, NULL, n, NULL, NULL, NULL, NULL FROM ({reasons}) AS r
UNION ALL
SELECT 'cbpe', period, NULL, {cell}, count(*), sum(p), sum(p * p), NULL, NULL
FROM counted GROUP BY period, {cell}"""  # noqa: S608 (every value a literal: float_sql, sql_literal)


def damaged_sql(relation: str, hours: str, unparsed: str) -> str:
    """The lines the aggregates leave out for not being records, to be named: damaged lines
    (``problem``), those without a time or whose time is not a date (:data:`DAY`), and those
    ``unparsed`` (a condition on ``line``). Locally the reader gave every other line its time."""
    return (
        f"WITH records AS ({relation})\n"
        "SELECT source, line_number, line, problem FROM records\n"
        f"WHERE {hours} AND (problem IS NOT NULL OR line IS NULL OR {DAY} IS NULL\n"
        f"       OR {unparsed})\n"
        "ORDER BY source, line_number"
    )


#: What :func:`aggregate_sql`'s rows add up to, over the engine's chunks (or Athena's one
#: query), in the order :func:`fold` reads them (a period's score cells from the highest down).
TOTALS: Final = (
    "SELECT kind, period, feature, bin, sum(n) AS n, sum(x) AS x, sum(y) AS y, "
    "min(first) AS first, max(last) AS last "
    "FROM ({rows}) AS partial GROUP BY kind, period, feature, bin "
    "ORDER BY kind, period, bin DESC NULLS LAST, feature"
)
#: A score cell and calibration segment in one ``bin`` (cell * SEGMENTS + segment).
SEGMENTS: Final = 2**16


@dataclass
class Folded:
    """The aggregates folded: decisions of the model and of others, the first and last
    decision's time, the counts per period (by label) and the CBPE estimate."""

    decisions: int = 0
    other: int = 0
    first: datetime | None = None
    last: datetime | None = None
    periods: dict[str, monitoring.Aggregates] = field(default_factory=dict)
    estimated: dict[str, Any] | None = None


Row = tuple[Any, ...]


def fold(
    query: Query, rows: Iterable[Row], label: Any, calibration: dict[str, list[float]] | None
) -> Folded:
    """The rows of :data:`TOTALS` (sorted so) as :class:`Folded`; ``label(day)`` names the period
    starting on ``day``."""
    import itertools

    out = Folded()

    def aggregates(period: str) -> monitoring.Aggregates:
        name = label(date.fromisoformat(str(period)[:10]))
        if name not in out.periods:
            out.periods[name] = monitoring.Aggregates(query.metadata)
        return out.periods[name]

    column = {f: j for j, f in enumerate(query.names)}
    for kind, group in itertools.groupby(rows, key=lambda r: r[0]):
        if kind == "cbpe":
            by_period = itertools.groupby(group, key=lambda r: r[1])
            figures = monitoring.estimated_of_groups(
                (
                    (label(date.fromisoformat(str(p)[:10])),
                     ((int(r[3]) % SEGMENTS, int(r[4]), float(r[5]), float(r[6])) for r in g))
                    for p, g in by_period
                ),
                calibration or {"score": [0.0], "probability": [0.0]},
            )  # fmt: skip
            out.estimated = figures if calibration else None
            continue
        for _, period, feature, bin_, n, x, _y, first, last in group:
            n = int(n)
            if kind == "decisions":
                if period == "other":
                    out.other += n
                    continue
                out.decisions += n
                out.first = datetime.fromisoformat(str(first))
                out.last = datetime.fromisoformat(str(last))
                continue
            agg = aggregates(period)
            if kind == "feature":
                j, code = int(feature) - 1, int(bin_)  # SQL arrays count from 1
                if code >> 1 == -1:
                    agg.missing[j] += n
                else:
                    agg.bins[j][code >> 1] += n
                agg.outside[j] += n * (code & 1)
            elif kind == "score":
                agg.n += n
                agg.score_sum += float(x)
                if int(bin_) == -1:
                    agg.score_missing += n
                else:
                    agg.score_bins[int(bin_)] += n
            elif kind == "shap" and feature in column:
                agg.abs_shap_sum[column[feature]] += float(x)
            elif kind == "high":
                agg.high_risk += n
            elif kind == "reason" and feature in column:
                agg.reasons[column[feature]] += n
    return out


def total(query: Query, periods: Iterable[monitoring.Aggregates]) -> monitoring.Aggregates:
    """The periods' counts added up."""
    out = monitoring.Aggregates(query.metadata)
    for agg in periods:
        out.merge(agg)
    return out


def rows_of(cells: Iterator[list[str | None]]) -> Iterator[Row]:
    """Athena's text cells as typed rows."""
    for kind, period, feature, bin_, n, x, y, first, last in cells:
        yield (kind, period, feature, None if bin_ is None else int(bin_), int(n or 0),
               None if x is None else float(x), None if y is None else float(y), first, last)  # fmt: skip


#: A joined applicant's row of :func:`outcome_sql`: request id, time, part, parts, results in
#: the part, the applicant's index in the request, its probability.
Scored = tuple[str, str, int, int, int, int, float]
#: Request ids an outcome query names at most (Athena's query text is limited to 256 KB).
IDS_PER_QUERY: Final = 2000


def outcome_type() -> dict[str, Any]:
    """The fields of a record line the outcomes' join reads, typed (as :func:`record_type`)."""
    return {
        "model_version": "VARCHAR",
        "part": "BIGINT",
        "parts": "BIGINT",
        "results": [{"index": "BIGINT", "probability": "DOUBLE"}],
    }


def outcome_sql(
    dialect: Dialect,
    relation: str,
    hours: str,
    version: str,
    ids: Iterable[str],
    since: datetime | None,
) -> str:
    """The one SQL text of the outcomes' join: the applicants of the requests ``ids`` (those
    the outcomes name) of model ``version``, in request order; :class:`.outcomes.Joined` pairs
    them with their outcomes, by its rule."""
    named = ", ".join(sql_literal(i) for i in ids)
    return f"""WITH records AS ({relation}),
decoded AS (
  SELECT request_id, recorded_at, {dialect.parse("line", outcome_type())} AS rec
  FROM records
  WHERE {hours} AND problem IS NULL AND line IS NOT NULL AND request_id IN ({named})
    AND recorded_at >= {sql_literal(time_text(since) if since else "")}
)
SELECT request_id, recorded_at, rec.part, rec.parts, cardinality(rec.results),
       rec.results[i]."index", rec.results[i].probability
FROM decoded CROSS JOIN UNNEST({_indexes("rec.results")}) AS t(i)
WHERE i <= cardinality(rec.results) AND rec.model_version = {sql_literal(version)}
  -- no part, index or probability (a line the reader refuses): left out, never guessed
  AND rec.part IS NOT NULL AND rec.parts IS NOT NULL
  AND rec.results[i]."index" IS NOT NULL AND rec.results[i].probability IS NOT NULL
ORDER BY request_id, rec.part, i"""  # noqa: S608 (every value a literal)
