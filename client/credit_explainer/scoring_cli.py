"""``credit-explainer score``: score a whole file through the API.

::

    credit-explainer score --url http://127.0.0.1:3000 applicants.csv -o scored.csv

Reads CSV (header optional, the columns of the schema the API serves, fetched
with ``GET /schema``; its id columns, and an index column, are carried through)
or JSON lines (one applicant object per line), streams it through
:meth:`CreditExplainerClient.score_many` in batches with a progress bar, and
writes one row per applicant: its ids, probability, decision band, the principal
reasons and every SHAP value. Rows that cannot be scored are never dropped:
each is reported and written, with its error, to a rejects file next to the
output. Exit status: 0 every row scored, 1 some rows rejected, 2 the run failed
(API unreachable, wrong key, bad arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from credit_schema import (
    BUILTIN,
    INDEX_COLUMNS,
    MISSING_CELLS,
    ApplicantSchema,
    ApplicantValidationError,
    PayloadError,
    csv_records,
    decode_json,
    to_records,
    validate_records,
)

from ._config import API_KEY_ENV, DEFAULT_BATCH_SIZE, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, URL_ENV
from ._reasons import DEFAULT_MAX_REASONS, reason_columns

__all__ = ["register", "run"]

Format = Literal["csv", "jsonl", "json"]
_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson", ".jsonlines"})
#: Separators a CSV file may use besides the comma (spreadsheets in many locales write ";").
_OTHER_DELIMITERS: Final = (";", "\t")
#: Lines ending in "\n" alone: a CRLF would end up in the last cell (an id) read by `cut`, awk...
_LINE_END: Final = "\n"
#: Rows read and handed to score_many at a time (it batches them further).
CHUNK_ROWS: Final = 2_000
#: Rejected rows listed in the summary (all of them are in the rejects file).
SHOWN_REJECTS: Final = 10
#: What a rejects file adds before each row as read (ignored when it is scored again).
REJECT_COLUMNS: Final = ["row", "error"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="score a CSV or JSON-lines file of applicants through the API",
        description=(
            "Score every applicant of a file through the scoring API, in batches, with a "
            "progress bar. Writes probability, decision, principal reasons and every SHAP value "
            "per row; rows that cannot be scored go to a rejects file with their error. "
            "Exit status: 0 all scored, 1 some rows rejected, 2 failed."
        ),
    )
    p.add_argument(
        "input",
        type=Path,
        help="applicants: .csv (comma, semicolon or tab separated), .jsonl/.ndjson (JSON lines) "
        "or .json (one document in any shape the API takes)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="scored rows, .csv or .jsonl (default: INPUT's name with .scored before the suffix)",
    )
    p.add_argument(
        "--rejects",
        type=Path,
        help="rows that could not be scored, as read, with their row number and error; fix "
        "them and score this file again (default: OUTPUT.rejects.<suffix>)",
    )
    p.add_argument(
        "--url", help=f"API base URL, with its stage, e.g. .../Prod (default: ${URL_ENV})"
    )
    p.add_argument(
        "--api-key",
        help=f"API key, sent as x-api-key (default: ${API_KEY_ENV}; prefer it: arguments show in ps)",
    )
    p.add_argument(
        "--id-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column of the file carried into the output as read and never sent, for an id "
        "the API's schema does not declare (its own id columns are carried without it); "
        "repeatable (default: none)",
    )
    p.add_argument(
        "--input-format", choices=("csv", "jsonl", "json"), help="(default: from the suffix)"
    )
    p.add_argument("--output-format", choices=("csv", "jsonl"), help="(default: from the suffix)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"applicants per request (default: {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--concurrency", type=int, default=1, help="requests in flight at once (default: 1)"
    )
    p.add_argument(
        "--cutoff",
        type=float,
        default=None,
        help="give reasons only for probabilities at or above this (default: every row)",
    )
    p.add_argument(
        "--max-reasons",
        type=int,
        default=DEFAULT_MAX_REASONS,
        help=f"principal reasons per row (default: {DEFAULT_MAX_REASONS})",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT.read,
        help=f"seconds per request (default: {DEFAULT_TIMEOUT.read:g})",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help=f"retries on 429/503/connection errors (default: {DEFAULT_MAX_RETRIES})",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (default: a bar when stderr is a terminal)",
    )
    p.set_defaults(func=run)


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Chunk:
    """Rows read from the input: the records to score and what to echo for each."""

    rows: list[int] = field(default_factory=list)  # 0-based data row numbers
    ids: list[str | None] = field(default_factory=list)  # the input's id column, if any
    carried: list[list[str]] = field(default_factory=list)  # --id-column values, as read
    records: list[Any] = field(default_factory=list)  # what score_many validates
    raw: list[Any] = field(default_factory=list)  # the row as read (for the rejects file)
    unreadable: dict[int, str] = field(default_factory=dict)  # position -> why


class SourceError(ValueError):
    """The input as a whole cannot be scored (its header, its format): one error, exit 2."""


def _delimiter(first_line: str, schema: ApplicantSchema) -> str:
    """The comma, or the separator that splits the first line into feature names or values."""
    for other in _OTHER_DELIMITERS:
        cells = [c.strip() for c in first_line.split(other)]
        if other in first_line and (
            any(c in schema.known_keys for c in cells)
            or len(cells) >= len(schema.features) > first_line.count(",")
        ):
            return other
    return ","


def _looks_like_a_header(cells: list[str], schema: ApplicantSchema) -> bool:
    """Names, not values: every cell is text that is neither a number nor a missing cell."""

    def is_name(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return cell.lower() not in MISSING_CELLS
        return False

    return any(c in schema.known_keys for c in cells) or all(map(is_name, cells))


#: A header's problems listed in its error line; the rest are counted.
_HEADER_PROBLEMS: Final = 5


def check_header(
    header: Sequence[str], schema: ApplicantSchema, carried: Sequence[str] = ()
) -> None:
    """Refuse, once, a header naming a column the schema does not know or lacking a feature
    (``carried``: the --id-column columns, never sent)."""
    names = [n for n in header if n not in schema.ignored and n not in carried]
    try:
        validate_records([dict.fromkeys(names, 0)], schema)
    except ApplicantValidationError as exc:
        # Values are placeholders here: only the column names' problems count.
        # unknown names first (a "did you mean" is the likeliest fix), then missing features
        wrong = sorted(
            (d for d in exc.details if d.type in ("extra_forbidden", "missing")),
            key=lambda d: d.type != "extra_forbidden",
        )
        if not wrong:
            return
        problems = "; ".join(f"{d.field}: {d.message}" for d in wrong[:_HEADER_PROBLEMS])
        if len(wrong) > _HEADER_PROBLEMS:
            problems += f"; and {len(wrong) - _HEADER_PROBLEMS} more"
        close = [d for d in wrong if "did you mean" in d.message]
        if not set(names) & set(schema.features) and not close:  # another model's file
            raise SourceError(
                f"none of its columns is a feature of the API's schema {schema.name!r} "
                f"({', '.join(schema.features[:3])}, ...): is this the API of the model the file "
                "is for?"
            ) from None
        raise SourceError(f"the header does not name the features: {problems}") from None


class CsvSource:
    """CSV in chunks, parsed by credit_schema's own CSV code (same acceptance as the API)."""

    def __init__(
        self, stream: IO[str], schema: ApplicantSchema, carry: Sequence[str] = ()
    ) -> None:
        self.schema = schema
        first_line = next((line for line in stream if line.strip()), "")
        self.delimiter = _delimiter(first_line, schema)
        self._reader = csv.reader(itertools.chain([first_line], stream), delimiter=self.delimiter)
        self.header: list[str] | None = None
        self._first: list[str] | None = None
        for row in self._rows():
            cells = [c.strip() for c in row]
            if _looks_like_a_header(cells, schema):
                self.header = cells
            else:
                self._first = row
            break
        # A rejects file of ours, corrected: its row and error columns are not the applicant's.
        self._skip = len(REJECT_COLUMNS) if self.header and self.header[:2] == REJECT_COLUMNS else 0
        # --id-column: read, carried into the output, never sent (the schema does not know them).
        if carry and self.header is None:
            raise SourceError("--id-column needs a file with a header row")
        absent = [c for c in carry if c not in (self.header or ())]
        if absent:
            raise SourceError(f"--id-column {absent[0]}: not a column of the file")
        if self.header is not None:
            self.header = self.header[self._skip :]
            check_header(self.header, schema, carry)
        self._carried = [self.header.index(c) for c in carry] if self.header else []
        self.id_column: int | None = None
        if self.header is not None:
            for i, name in enumerate(self.header):
                if name in INDEX_COLUMNS and name not in schema.id_columns:
                    self.id_column = i
                    break

    def _rows(self) -> Iterator[list[str]]:
        for row in self._reader:
            if row and any(c.strip() for c in row):
                yield row

    def chunks(self, size: int) -> Iterator[Chunk]:
        def all_rows() -> Iterator[list[str]]:
            if self._first is not None:
                yield self._first
            yield from self._rows()

        chunk = Chunk()
        n = 0
        for row in all_rows():
            row = row[self._skip :]
            chunk.rows.append(n)
            chunk.raw.append(row)
            chunk.ids.append(
                row[self.id_column]
                if self.id_column is not None and self.id_column < len(row)
                else None
            )
            chunk.carried.append([row[i] if i < len(row) else "" for i in self._carried])
            n += 1
            if len(chunk.raw) == size:
                yield self._parse(chunk)
                chunk = Chunk()
        if chunk.raw:
            yield self._parse(chunk)

    def _parse(self, chunk: Chunk) -> Chunk:
        width = len(self.schema.features) if self.header is None else len(self.header)
        named = "the header" if self.header is not None else "the features in model order"
        for pos, row in enumerate(chunk.raw):
            if len(row) != width:
                chunk.unreadable[pos] = f"{len(row)} cells; {named} has {width}"
        buf = io.StringIO()
        writer = csv.writer(buf)
        sent = [i for i in range(width) if i not in self._carried]
        if self.header is not None:
            writer.writerow([self.header[i] for i in sent])
        writer.writerows([row[i] for i in sent] if len(row) == width else row for row in chunk.raw)
        records = csv_records(buf.getvalue(), self.schema)
        assert len(records) == len(chunk.raw)
        chunk.records = [None if i in chunk.unreadable else r for i, r in enumerate(records)]
        return chunk


class JsonLinesSource:
    """One JSON object per line; a line that is not JSON is rejected, not skipped."""

    header: list[str] | None = None
    id_column: int | None = None
    delimiter = None

    def __init__(self, stream: IO[str], carry: Sequence[str] = ()) -> None:
        self._stream = stream
        self._carry = carry

    def _items(self) -> Iterator[tuple[str, Any, str | None]]:
        """Each applicant: its text as read, the record, and why it is unreadable (or None)."""
        for line in self._stream:
            if line.strip():
                try:
                    yield line.rstrip("\r\n"), json.loads(line), None
                except ValueError as exc:
                    yield line.rstrip("\r\n"), None, f"not valid JSON: {exc}"

    def chunks(self, size: int) -> Iterator[Chunk]:
        chunk = Chunk()
        n = 0
        for raw, record, why in self._items():
            chunk.rows.append(n)
            chunk.raw.append(raw)
            if why is not None:
                chunk.unreadable[len(chunk.records)] = why
            if isinstance(record, dict):
                if all(name in record for name in REJECT_COLUMNS):  # a corrected rejects file
                    for name in REJECT_COLUMNS:
                        del record[name]
                ident = record.pop("id", None)
                chunk.ids.append(None if ident is None else str(ident))
                values = [record.pop(c, None) for c in self._carry]
                chunk.carried.append(["" if v is None else str(v) for v in values])
            else:
                chunk.ids.append(None)
                chunk.carried.append([""] * len(self._carry))
            chunk.records.append(record)
            n += 1
            if len(chunk.records) == size:
                yield chunk
                chunk = Chunk()
        if chunk.records:
            yield chunk


class JsonSource(JsonLinesSource):
    """A ``.json`` file: one JSON document in any shape the API takes (a list, pandas' orients)."""

    def __init__(
        self, stream: IO[str], schema: ApplicantSchema, carry: Sequence[str] = ()
    ) -> None:
        super().__init__(stream, carry)
        try:
            self._records = to_records(decode_json(stream.read()), schema)
        except PayloadError as exc:
            raise SourceError(f"{exc} (a file of one JSON object per line is .jsonl)") from None

    def _items(self) -> Iterator[tuple[str, Any, str | None]]:
        for record in self._records:
            yield json.dumps(record), record, None


def _source(
    stream: IO[str], fmt: Format, schema: ApplicantSchema, carry: Sequence[str] = ()
) -> CsvSource | JsonLinesSource:
    if fmt == "json":
        return JsonSource(stream, schema, carry)
    return CsvSource(stream, schema, carry) if fmt == "csv" else JsonLinesSource(stream, carry)


# -- writing ---------------------------------------------------------------------------------


class Sink:
    """Scored rows, as CSV or JSON lines: the schema's id columns and one SHAP value per feature."""

    def __init__(
        self,
        out: IO[str],
        fmt: Format,
        *,
        schema: ApplicantSchema = BUILTIN,
        with_id: bool,
        max_reasons: int,
        carry: Sequence[str] = (),
    ) -> None:
        self._out = out
        self._fmt = fmt
        self._schema = schema
        self._with_id = with_id
        self._carry = list(carry)
        self._max_reasons = max_reasons
        self._writer: Any = None
        if fmt == "csv":
            self._writer = csv.writer(out, lineterminator=_LINE_END)
            self._writer.writerow(self.columns())

    def columns(self) -> list[str]:
        return [
            "row",
            *(["id"] if self._with_id else []),
            *self._carry,
            *self._schema.id_columns,
            "probability",
            "decision",
            "base_value",
            *reason_columns([], self._max_reasons),
            *(f"shap_{f}" for f in self._schema.features),
            "model_version",
            "request_id",
        ]

    def write(
        self,
        row: int,
        ident: str | None,
        carried: Sequence[str],
        score: Any,
        reasons: Sequence[Any],
    ) -> None:
        shap = score.shap_values
        ids = score.ids or {}  # as the API echoed them
        if self._fmt == "csv":
            self._writer.writerow(
                [
                    row,
                    *([ident] if self._with_id else []),
                    *carried,
                    *(ids.get(c, "") for c in self._schema.id_columns),
                    repr(score.probability),
                    score.decision or "",
                    repr(score.base_value),
                    *reason_columns(reasons, self._max_reasons).values(),
                    *(repr(shap[f]) for f in self._schema.features),
                    score.model_version,
                    score.request_id,
                ]
            )
        else:
            obj: dict[str, Any] = {"row": row}
            if ident is not None:
                obj["id"] = ident
            obj.update(zip(self._carry, carried, strict=True))
            obj.update(ids)
            obj.update(
                probability=score.probability,
                decision=score.decision,
                base_value=score.base_value,
                reasons=[
                    {
                        "code": r.code,
                        "text": r.text,
                        "feature": r.feature,
                        "shap_value": r.shap_value,
                    }
                    for r in reasons
                ],
                shap_values=shap,
                model_version=score.model_version,
                request_id=score.request_id,
            )
            self._out.write(json.dumps(obj) + "\n")


class RejectSink:
    """Rejected rows as read, with the row number and the error, written only when needed."""

    def __init__(
        self, path: Path, fmt: Format, header: list[str] | None, features: Sequence[str]
    ) -> None:
        self.path = path
        self._fmt = fmt
        self._header = header
        self._features = features
        self._out: IO[str] | None = None
        self._writer: Any = None
        self.count = 0

    def write(self, row: int, raw: Any, error: str) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.path.open("w", newline="", encoding="utf-8")
            if self._fmt == "csv":
                self._writer = csv.writer(self._out, lineterminator=_LINE_END)
                # A file without a header has the features in model order: name them, so the
                # corrected rejects file reads back as the same columns.
                self._writer.writerow([*REJECT_COLUMNS, *(self._header or self._features)])
        self.count += 1
        if self._fmt == "csv":
            self._writer.writerow([row, error, *raw])
        else:
            assert self._out is not None
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            # An object is written back with row and error added (fix it, score the file
            # again); a line that is not one is kept as text under "line".
            entry = (
                {"row": row, "error": error, **obj}
                if isinstance(obj, dict)
                else {
                    "row": row,
                    "error": error,
                    "line": raw,
                }
            )
            self._out.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


# -- the command -----------------------------------------------------------------------------


def _format(path: Path, given: str | None) -> Format:
    kind = given or path.suffix.lower()
    if kind == "json" or kind == ".json":
        return "json"
    return "jsonl" if kind == "jsonl" or kind in _JSONL_SUFFIXES else "csv"


def _count_rows(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ._client import CreditExplainerClient
    from ._exceptions import CreditExplainerError
    from ._models import Failure, Score
    from ._reasons import ReasonCodes

    src_path: Path = args.input
    if not src_path.is_file():
        print(f"error: no such file: {src_path}", file=sys.stderr)
        return 2
    in_fmt = _format(src_path, args.input_format)
    suffix = ".csv" if in_fmt == "csv" else ".jsonl"  # a .json input's answers: one per line
    out_path: Path = args.output or src_path.with_name(f"{src_path.stem}.scored{suffix}")
    out_fmt = _format(out_path, args.output_format)
    if out_fmt == "json":
        print("error: the output is .csv or .jsonl (one answer per line)", file=sys.stderr)
        return 2
    rejects_path: Path = args.rejects or out_path.with_name(f"{out_path.stem}.rejects{suffix}")
    if out_path.resolve() in (src_path.resolve(), rejects_path.resolve()):
        print("error: the output must not overwrite the input or the rejects file", file=sys.stderr)
        return 2
    if not (args.url or os.environ.get(URL_ENV)):
        print(
            f"error: no API URL: pass --url or set {URL_ENV} "
            "(for the local stack, the URL `credit-explainer up` prints)",
            file=sys.stderr,
        )
        return 2
    try:
        ReasonCodes(cutoff=args.cutoff, max_reasons=args.max_reasons)  # checks both, early
        client = CreditExplainerClient(
            args.url,
            api_key=args.api_key,
            timeout=args.timeout,
            max_retries=args.max_retries,
            batch_size=args.batch_size,
        )
    except CreditExplainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        schema = client.schema()  # what the API validates with: columns, ids, features
    except CreditExplainerError as exc:
        client.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # A JSON document's applicants are counted once it is read; lines say nothing of them.
    total: int | None = None if in_fmt == "json" else max(0, _count_rows(src_path))
    started = time.perf_counter()
    scored = 0
    shown: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(client)
        src = stack.enter_context(src_path.open(newline="", encoding="utf-8-sig"))
        try:
            source = _source(src, in_fmt, schema, args.id_column)
        except SourceError as exc:
            print(f"error: {src_path}: {exc}", file=sys.stderr)
            return 2
        if source.delimiter not in (None, ","):
            print(f"reading {src_path} as {source.delimiter!r}-separated", file=sys.stderr)
        if source.header is not None and total is not None:
            total -= 1
        out = stack.enter_context(out_path.open("w", newline="", encoding="utf-8"))
        rejects = RejectSink(rejects_path, in_fmt, source.header, schema.features)
        sink = Sink(
            out,
            out_fmt,
            schema=schema,
            with_id=source.id_column is not None,
            max_reasons=args.max_reasons,
            carry=args.id_column,
        )
        bar = tqdm(
            total=total,
            unit="row",
            desc="scoring",
            disable=args.no_progress or None,  # None: only on a terminal
            file=sys.stderr,
        )

        def reject(row: int, raw: Any, error: str) -> None:
            rejects.write(row, raw, error)
            if len(shown) < SHOWN_REJECTS:
                shown.append(f"  row {row}: {error}")

        try:
            for chunk in source.chunks(CHUNK_ROWS):
                base = int(bar.n)

                def progress(done: int, _total: int, base: int = base) -> None:
                    bar.update(base + done - int(bar.n))

                results = client.score_many(
                    chunk.records,
                    on_error="collect",
                    progress=progress,
                    concurrency=args.concurrency,
                )
                for pos, item in enumerate(results):
                    row, raw = chunk.rows[pos], chunk.raw[pos]
                    if pos in chunk.unreadable:
                        reject(row, raw, chunk.unreadable[pos])
                    elif isinstance(item, Score):
                        # The server's reasons: what the applicant is told (its registry's texts).
                        reasons = item.reasons(cutoff=args.cutoff, max_reasons=args.max_reasons)
                        sink.write(row, chunk.ids[pos], chunk.carried[pos], item, reasons)
                        scored += 1
                    else:
                        assert isinstance(item, Failure)
                        reject(row, raw, item.message)
        except CreditExplainerError as exc:
            bar.close()
            rejects.close()
            print(f"error: {exc}", file=sys.stderr)
            print(
                f"stopped after {scored} scored and {rejects.count} rejected row(s) of "
                f"{'?' if total is None else total}; "
                f"{out_path} holds the rows scored so far",
                file=sys.stderr,
            )
            return 2
        finally:
            bar.close()
            rejects.close()

    total = scored + rejects.count if total is None else total
    elapsed = time.perf_counter() - started
    rate = scored / elapsed if elapsed > 0 else 0.0
    print(
        f"scored {scored:,} of {total:,} rows in {elapsed:.1f} s ({rate:,.0f} rows/s) -> {out_path}",
        file=sys.stderr,
    )
    if rejects.count:
        print(f"rejected {rejects.count:,} rows -> {rejects_path}", file=sys.stderr)
        print("\n".join(shown), file=sys.stderr)
        if rejects.count > len(shown):
            print(f"  ... and {rejects.count - len(shown)} more in {rejects_path}", file=sys.stderr)
        return 1
    return 0
