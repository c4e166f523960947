"""``monitor``'s figures as aggregates the query engine computes: bin counts, sums, a histogram
of scores, never the applicants themselves, so memory stays flat however many decisions there
are (and ``--athena`` sends back counts, not lines).

One SQL text (:func:`aggregate_sql`), in the subset Athena (Trino) and DuckDB share, over the
engine's relation of record lines (:mod:`.engine`). Where the dialects differ it is rendered
(:class:`Dialect`): how a line is parsed into the typed record (Trino's ``CAST(json_parse(line)
AS ROW(...))``, DuckDB's ``from_json``), and DuckDB gets Trino's ``sequence`` and ``json_parse``
as macros. The bins are :func:`credit_model.stability.bin_sql`, the range test
:func:`credit_model.monitor.outside_range_sql`: each rule stated once, beside its Python form.

The result is a few rows of long form (:data:`COLUMNS`), added up over the engine's chunks and
folded into :class:`credit_model.monitor.Aggregates` per period (:func:`fold`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from credit_model import monitor as monitoring
from credit_model import stability
from credit_schema.records import time_text

#: The columns of :func:`aggregate_sql`'s rows: what is counted (``kind``), the period's first
#: day, a feature, a bin (or a code), a count, two sums, the first and last decision's time.
COLUMNS: Final = ("kind", "period", "feature", "bin", "n", "x", "y", "first", "last")
#: DuckDB's stand-ins for Trino's functions the aggregates use (with ``engine.MACROS``).
MACROS: Final = (
    "CREATE OR REPLACE MACRO json_parse(j) AS CAST(j AS JSON)",
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
            return f"try(from_json({line}, {stability.text_sql(json.dumps(typed))}))"
        return f"TRY(CAST(json_parse({line}) AS {_trino_type(typed)}))"


DUCKDB: Final = Dialect("duckdb")
TRINO: Final = Dialect("trino")


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
        if "categories" in b:
            values.append(f"{text} AS {_column(j)}")
            outside = "0"  # a category training never saw: its bin, OTHER
        else:
            values.append(f"CAST({text} AS DOUBLE) AS {_column(j)}")
            low_high = extra["range"].get(name)
            outside = "0"
            if low_high:
                test = monitoring.outside_range_sql(_column(j), *low_high)
                outside = f"CASE WHEN {test} THEN 1 ELSE 0 END"
        # a bin and whether outside the range, in one number (bin * 2 + outside; -2 missing)
        codes.append(f"({stability.bin_sql(b, _column(j), query.codes.get(name))}) * 2 + {outside}")
    score_bin = stability.bin_sql(base["score"], "p")
    knots = {"edges": [float(x) for x in extra["calibration"]["score"]]} if extra.get(
        "calibration") else {"edges": []}  # fmt: skip
    segment = stability.bin_sql(knots, "p")
    threshold = stability.float_sql(float(extra["high_risk_threshold"]))
    version = stability.text_sql(query.version)
    day = "CAST(substr(recorded_at, 1, 10) AS DATE)"
    return f"""WITH records AS ({relation}),
decoded AS (
  SELECT source, line_number, recorded_at, {dialect.parse("line", typed)} AS rec
  FROM records
  WHERE {hours} AND problem IS NULL AND line IS NOT NULL
    AND recorded_at >= {stability.text_sql(time_text(since) if since else "")}
    AND recorded_at <= {stability.text_sql(time_text(until) if until else "~")}
),
mine AS (
  SELECT CAST(date_trunc('{query.unit}', {day}) AS VARCHAR) AS period, source, line_number,
         rec
  FROM decoded WHERE rec.model_version = {version}
),
people AS (
  SELECT period, source, line_number, rec.part AS part, i, rec.applicants[i] AS a,
         rec.results[i] AS result
  FROM mine CROSS JOIN UNNEST({_indexes("rec.results")}) AS t(i)
  WHERE i <= cardinality(rec.results)
),
valued AS (
  SELECT period, source, line_number, part, i, result.probability AS p, result.contributions AS contributions,
         result.reasons AS reasons, {", ".join(values)}
  FROM people
),
counted AS (
  SELECT period, source, line_number, part, i, p, contributions, reasons, ARRAY[{", ".join(codes)}] AS codes FROM valued
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
FROM counted WHERE p >= {threshold} GROUP BY period
UNION ALL
SELECT 'reason', period, feature, NULL, count(*), NULL, NULL, NULL, NULL FROM (
  SELECT DISTINCT period, source, line_number, part, i, reasons[k].feature AS feature
  FROM counted CROSS JOIN UNNEST({_indexes("reasons")}) AS q(k)
  WHERE p >= {threshold} AND k <= cardinality(reasons)
) AS given GROUP BY period, feature
UNION ALL
SELECT 'cbpe', period, CAST({segment} AS VARCHAR),
       CAST(floor(p * {monitoring.SCORE_CELLS}) AS BIGINT), count(*), sum(p), sum(p * p), NULL, NULL
FROM counted GROUP BY period, {segment}, CAST(floor(p * {monitoring.SCORE_CELLS}) AS BIGINT)"""
