"""``credit-explainer decisions show|export|replay|notice``: the decisions kept, read back.

Reads the scoring API's decision records (``--records``: what ``up --records DIR`` writes, or
the stack's ``RecordsUri``, ``s3://bucket/records``) or, for the model-side view, SageMaker Data
Capture (``--capture``: ``serve-model --capture DIR``, ``up --capture DIR`` or an endpoint's
capture prefix). Both become :class:`credit_schema.records.DecisionRecord`, each line parsed by
the one reader (:func:`credit_schema.records.parse_record`, :func:`credit_schema.capture_format.
parse_capture`): a damaged or foreign line is named on stderr (``file:line``) and skipped, the
rest read, and the command exits :data:`EXIT_SKIPPED` when it has done its work. ``show``,
``export`` and ``notice`` need no model: every figure is the recorded answer, exactly as sent.
``replay`` re-scores every recorded input with a model directory and reports any difference.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from credit_explainer._config import install_hint
from credit_model.commands import DEFAULT_MODEL_DIR
from credit_schema import DEFAULT_ENDPOINT_NAME
from credit_schema.capture_format import parse_capture
from credit_schema.records import (
    DecisionRecord,
    RecordError,
    Skipped,
    hour_prefix,
    hours_of_id,
    parse_record,
    read_lines,
)
from credit_schema.text import neutral_cell

from . import engine as engines
from .notice import register as register_notice

MAX_REASONS_COLUMNS = 4
RECORDS_HELP = (
    "the scoring API's decision records: the directory of up --records (its compacted hours "
    "read from Parquet), or s3://bucket/records (the stack's RecordsUri) (default: none; one "
    "of --records, --athena, --capture)"
)
ATHENA_HELP = (
    "or Amazon Athena over the records of the deployed stack STACK, whose outputs name the "
    f"workgroup and the Glue database (default: none; STACK left out: {DEFAULT_ENDPOINT_NAME})"
)
CAPTURE_HELP = (
    "or SageMaker Data Capture: a capture directory or s3://bucket/prefix (default: none)"
)
#: Largest difference in a probability or SHAP value that replay accepts as the same answer.
REPLAY_TOLERANCE = 1e-9
#: The exit status of a command that did its work but skipped unreadable lines (named on stderr).
EXIT_SKIPPED: Final = 3


class CaptureReadError(ValueError):
    """A store that could not be read from S3 (the message says why)."""


@dataclass
class Source:
    """Where the decisions are: records or capture, a directory or ``s3://bucket/prefix``."""

    location: Path | str
    capture: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    #: The query engine that finds the records (local records and --athena; capture and
    #: s3:// are read file by file).
    engine: engines.Engine | None = None

    def __str__(self) -> str:
        return str(self.location)

    def _parse(self) -> Callable[[bytes], DecisionRecord]:
        return parse_capture if self.capture else parse_record

    def read(
        self,
        hours: Callable[[str], bool] | None = None,
        only: list[str] | None = None,
        naming: str | None = None,
    ) -> Iterator[DecisionRecord]:
        """Every record whose ``yyyy/mm/dd/hh`` folder passes ``hours`` (or is one of ``only``:
        records only, read without listing the rest), oldest file first; with ``naming``, only
        the lines holding that text are parsed. Each bad line is named on stderr, kept in
        :attr:`skipped`, and passed over."""
        if isinstance(self.location, str):
            files = _s3_files(self.location, hours, self.capture, only)
        else:
            files = _local_files(self.location, hours, self.capture, only)
        parse = self._parse()
        for name, lines in files:
            yield from read_lines(
                name, lines, self.skip, parse, None if naming is None else naming.encode()
            )

    def skip(self, skipped: Skipped) -> None:
        """Name a skipped line on stderr and keep it (the exit status says so: :meth:`status`)."""
        self.skipped.append(skipped)
        print(f"warning: {skipped}", file=sys.stderr)

    def find(self, request_id: str) -> list[DecisionRecord]:
        """Every part of one request's record, by id (a time-ordered id: its two hours only; in
        a capture, under every endpoint and variant)."""
        if self.engine is not None:
            found = [r for r in _engine_read(self.engine.lookup(request_id, self.skip))]
            return sorted((r for r in found if r.request_id == request_id), key=lambda r: r.part)
        hours = hours_of_id(request_id)
        if self.capture:  # the capture's inferenceId is the API's request id
            wanted = None if hours is None else set(hours).__contains__
            read = self.read(hours=wanted, naming=request_id)
        else:
            read = self.read(only=hours, naming=request_id)
        found = [r for r in read if r.request_id == request_id]
        return sorted(found, key=lambda r: r.part)

    def status(self, code: int = 0) -> int:
        """``code``, or :data:`EXIT_SKIPPED` when it is 0 and lines were skipped (said once)."""
        if self.skipped:
            print(f"warning: {len(self.skipped)} unreadable line(s) skipped under {self}",
                  file=sys.stderr)  # fmt: skip
        return EXIT_SKIPPED if code == 0 and self.skipped else code


def _hour_of(parts: tuple[str, ...]) -> str:
    return "/".join(parts[-5:-1])  # .../yyyy/mm/dd/hh/<file>.jsonl


def _s3_files(
    url: str, hours: Callable[[str], bool] | None, capture: bool, only: list[str] | None
) -> Iterator[tuple[str, Iterable[bytes]]]:
    """The lines of each file under ``s3://bucket/prefix``, in key order (time order)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise CaptureReadError(
            f"reading s3:// needs boto3: {install_hint('credit-explainer-tools')}"
        ) from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    base = prefix.rstrip("/") + "/" if prefix else ""
    try:
        s3 = boto3.client("s3")
        pager = s3.get_paginator("list_objects_v2")
        listed = [base + hour + "/" for hour in only] if only is not None else [prefix]
        keys = sorted(
            o["Key"]
            for start in listed
            for page in pager.paginate(Bucket=bucket, Prefix=start)
            for o in page.get("Contents", [])
        )
        for key in keys:
            if hours is not None and not hours(_hour_of(tuple(key.split("/")))):
                continue
            if not capture or key.endswith(".jsonl"):  # Firehose's objects have no extension
                body = s3.get_object(Bucket=bucket, Key=key)["Body"]
                yield f"s3://{bucket}/{key}", body.iter_lines()
    except (BotoCoreError, ClientError) as exc:
        raise CaptureReadError(str(exc)) from None


def _local_files(
    root: Path, hours: Callable[[str], bool] | None, capture: bool, only: list[str] | None
) -> Iterator[tuple[str, Iterable[bytes]]]:
    # Records sit at root/yyyy/mm/dd/hh/; capture one level deeper per endpoint and variant.
    if only is not None:
        paths: Iterable[Path] = (p for hour in only for p in (root / hour).glob("*.jsonl"))
    elif capture:
        paths = root.rglob("*.jsonl")
    else:
        paths = root.glob("*/*/*/*/*.jsonl")
    for path in sorted(paths):
        if hours is not None and not hours(_hour_of(path.relative_to(root).parts)):
            continue
        with path.open("rb") as lines:
            yield str(path), lines


def hours_between(since: datetime | None, until: datetime | None) -> Callable[[str], bool] | None:
    """The folders that can hold records timed within [since, until] (a record reaches its folder
    up to an hour after its time)."""
    if since is None and until is None:
        return None
    return engines.hours_in(since, until)


def _adds_up_note(record: DecisionRecord, i: int) -> str | None:
    if record.adds_up(i):
        return None
    r = record.results[i]
    total = r.base_value + sum(c.shap_value for c in r.contributions)
    return (
        f"  WARNING: this recorded answer does not add up: base value + contributions = "
        f"{total:.6f}, not the probability {r.probability:.6f} (off by "
        f"{record.additivity_gap(i):.3g}); the record is damaged or was not made by this API"
    )


def _show(parts: list[DecisionRecord], applicant: int | None) -> str:
    head = parts[0]
    out = [
        f"decision {head.request_id} at {head.time.isoformat().replace('+00:00', 'Z')}, "
        f"model {head.model_version}"
        + (f", reason codes version {head.reason_codes_version}" if head.reason_codes_version else "")
        + f", {sum(len(p.results) for p in parts)} applicant(s)"
    ]
    for part in parts:
        for i, (inputs, result) in enumerate(zip(part.applicants, part.results, strict=True)):
            if applicant is not None and result.index != applicant:
                continue
            out.append(
                f"applicant {result.index}: probability {result.probability:.6f}, "
                f"base value {result.base_value:.6f}"
                + (f", decision {result.decision}" if result.decision else "")
            )
            ids = _ids(result)
            if ids:
                out.append("  ids: " + ", ".join(f"{k}={v}" for k, v in ids.items()))
            out.append("  inputs: " + ", ".join(f"{k}={_value(v)}" for k, v in inputs.items()))
            for c in result.contributions:
                out.append(f"  {c.shap_value:+.6f}  {c.feature} = {_value(c.value)}")
            for r in result.principal_reasons or []:
                out.append(f"  reason {r.code}: {r.text}")
            note = _adds_up_note(part, i)
            if note:
                out.append(note)
    return "\n".join(out)


def _value(value: float | str | None) -> str:
    """A value exactly as recorded, as a person reads it: 48 not 48.0, 1234567 not 1.23457e+06."""
    if value is None:
        return "missing"
    if isinstance(value, str):  # a category's text
        return value
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def _ids(result: Any) -> dict[str, str]:
    """The applicant's ids the API sent with its result (a schema's id columns)."""
    ids = getattr(result, "ids", None)
    return {str(k): str(v) for k, v in ids.items()} if isinstance(ids, dict) else {}


def _row(
    record: DecisionRecord, features: list[str], id_columns: list[str]
) -> Iterator[list[Any]]:
    for inputs, result in zip(record.applicants, record.results, strict=True):
        ids = _ids(result)
        reasons = result.principal_reasons or []
        texts = [r.text for r in reasons][:MAX_REASONS_COLUMNS]
        shap = {c.feature: c.shap_value for c in result.contributions}
        row = [
            record.request_id,
            record.time.isoformat().replace("+00:00", "Z"),
            record.model_version,
            result.index,
            *(ids.get(c, "") for c in id_columns),
            *(inputs.get(f) for f in features),
            result.probability,
            result.base_value,
            result.decision or "",
            ";".join(r.code for r in reasons),
            *texts,
            *[""] * (MAX_REASONS_COLUMNS - len(texts)),
            *(shap.get(f) for f in features),
        ]
        yield [neutral_cell(cell) for cell in row]


def add_model_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-dir",
        default=str(DEFAULT_MODEL_DIR),
        help=f"model directory (default: {DEFAULT_MODEL_DIR})",
    )


def add_source(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--records", metavar="DIR|S3_URI", help=RECORDS_HELP)
    where.add_argument("--athena", nargs="?", const=DEFAULT_ENDPOINT_NAME, metavar="STACK",
                       help=ATHENA_HELP)  # fmt: skip
    where.add_argument("--capture", metavar="DIR|S3_URI", help=CAPTURE_HELP)


def source_of(args: argparse.Namespace) -> Source | None:
    """The records or capture the arguments name; None after an error line."""
    if getattr(args, "athena", None):
        try:
            athena = engines.athena_from_stack(args.athena)
        except engines.AthenaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return None
        return Source(f"athena:{athena.workgroup}/{athena.database}", engine=athena)
    given = args.records or args.capture
    kind = "records" if args.records else "capture"
    if str(given).startswith("s3://"):
        if not str(given).removeprefix("s3://").partition("/")[0]:
            print(f"error: no bucket in {given} (s3://bucket/prefix)", file=sys.stderr)
            return None
        return Source(str(given), capture=not args.records)
    root = Path(given)
    if not root.is_dir():
        print(f"error: no {kind} directory {root}", file=sys.stderr)
        return None
    if not args.records:
        return Source(root, capture=True)
    try:
        return Source(root, engine=engines.LocalEngine(root))
    except RecordError as exc:  # duckdb is missing: the JSON lines (the record) file by file
        if getattr(args, "step", None) == "compact":
            print(f"error: {exc}", file=sys.stderr)
            return None
        return Source(root)


def _run_show(args: argparse.Namespace) -> int:
    source = source_of(args)
    if source is None:
        return 2
    try:
        parts = source.find(args.request_id)
    except CaptureReadError as exc:
        print(f"error: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    if not parts:
        print(f"error: no decision {args.request_id} under {source}", file=sys.stderr)
        return source.status(1)
    count = sum(len(p.results) for p in parts)
    if args.applicant is not None and not 0 <= args.applicant < count:
        print(f"error: decision {args.request_id} has applicants 0 to {count - 1}, "
              f"not {args.applicant}", file=sys.stderr)  # fmt: skip
        return 2
    print(_show(parts, args.applicant))
    return source.status()


def _run_export(args: argparse.Namespace) -> int:
    source = source_of(args)
    if source is None:
        return 2
    count = 0
    records = records_within(source, args.since, args.until)
    try:
        first = next(records, None)
        features = list(first.applicants[0]) if first and first.applicants else []
        id_columns = list(_ids(first.results[0])) if first and first.results else []
        header = [
            "request_id", "time", "model_version", "index", *id_columns, *features, "probability",
            "base_value", "decision", "reason_codes",
            *(f"reason_{i + 1}" for i in range(MAX_REASONS_COLUMNS)),
            *(f"contribution_{f}" for f in features),
        ]  # fmt: skip
        with Path(args.output).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([neutral_cell(h) for h in header])
            for record in _chain(first, records):
                for row in _row(record, features, id_columns):
                    writer.writerow(row)
                    count += 1
    except CaptureReadError as exc:
        print(f"error: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {count} decision(s) to {args.output}", file=sys.stderr)
    return source.status()


def _chain(
    first: DecisionRecord | None, rest: Iterator[DecisionRecord]
) -> Iterator[DecisionRecord]:
    if first is not None:
        yield first
        yield from rest


def _engine_read(read: Iterator[DecisionRecord]) -> Iterator[DecisionRecord]:
    try:
        yield from read
    except engines.AthenaError as exc:
        raise CaptureReadError(str(exc)) from None


def records_within(
    source: Source, since: datetime | None, until: datetime | None
) -> Iterator[DecisionRecord]:
    """The records timed within [since, until], reading only the hours that can hold them."""
    if source.engine is not None:
        read = _engine_read(source.engine.window(since, until, source.skip))
    else:
        read = source.read(hours_between(since, until))
    for record in read:
        if (since is None or record.time >= since) and (until is None or record.time <= until):
            yield record


def _difference(old: dict[str, Any], new: dict[str, Any]) -> float:
    """Largest |difference| in probability and SHAP values; inf when the reasons or the features
    differ."""
    if old.get("reasons") != new.get("reasons"):
        return float("inf")
    shap_old = {c["feature"]: c["shap_value"] for c in old["contributions"]}
    shap_new = {c["feature"]: c["shap_value"] for c in new["contributions"]}
    if set(shap_old) != set(shap_new):
        return float("inf")
    gaps = [abs(shap_old[f] - shap_new[f]) for f in shap_old]
    return float(max([abs(old["probability"] - new["probability"]), *gaps]))


def _run_replay(args: argparse.Namespace) -> int:
    source = source_of(args)
    if source is None:
        return 2
    # The model side (credit-explainer-model), imported only for replay.
    from credit_model import handlers, server

    try:
        model = handlers.model_fn(args.model_dir)
    except server.STARTUP_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    replayed = differ = other = 0
    try:
        for record in records_within(source, None, None):
            if record.model_version != model.version:
                other += 1
                print(f"{record.request_id}: made by model {record.model_version}, not this one")
                continue
            body = json.dumps({"instances": record.applicants})
            # In the space the decision was explained in (a boosted model answers in two).
            space = record.results[0].space if record.results else None
            answer = json.loads(
                handlers.transform(model, body, "application/json", None, space=space)[0]
            )
            for old, new in zip(record.results, answer["predictions"], strict=True):
                replayed += 1
                gap = _difference(old.model_dump(by_alias=True), new)
                if not gap <= REPLAY_TOLERANCE:
                    differ += 1
                    print(f"{record.request_id} applicant {old.index}: differs (by {gap:.3g})")
    except CaptureReadError as exc:
        print(f"error: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    print(
        f"replayed {replayed} applicant(s) with model {model.version}: {differ} differ; "
        f"{other} decision(s) made by another model"
    )
    if replayed == 0:  # nothing compared is not "nothing differs"
        print(f"error: nothing replayed: no decision under {source} was made by model "
              f"{model.version}", file=sys.stderr)  # fmt: skip
        return source.status(2)
    return source.status(1 if differ else 0)


def _run_compact(args: argparse.Namespace) -> int:
    root = Path(args.records)
    if not root.is_dir():
        print(f"error: no records directory {root}", file=sys.stderr)
        return 2
    source = source_of(args)
    if source is None or not isinstance(source.engine, engines.LocalEngine):
        return 2
    # The current hour and the last may still be written to; older hours are complete.
    before = hour_prefix(datetime.now(UTC) - timedelta(hours=1))
    try:
        written, skipped = source.engine.compact(before, source.skip)
    except OSError as exc:
        print(f"error: cannot write under {root / engines.COMPACTED}: {exc.strerror}",
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"compacted {len(written)} hour(s) into {root / engines.COMPACTED} "
          f"({skipped} damaged line(s) named and kept out; hours from {before} on are left "
          "to their JSON lines)", file=sys.stderr)  # fmt: skip
    return source.status()


def moment_arg(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or time: {text!r} (for example 2026-12-01 or "
            "2026-12-01T08:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "decisions",
        help="decisions kept by the API's records (or data capture): show one by request id, "
        "export them as CSV, replay them with a model, write an adverse-action notice, compact "
        "local records into Parquet",
        description="Read the decisions the scoring API recorded before answering (up --records "
        "locally, the stack's records on AWS: --athena) or SageMaker Data Capture kept. A damaged "
        f"line is named on stderr and skipped, and the command then exits {EXIT_SKIPPED}.",
    )
    steps = p.add_subparsers(dest="step", metavar="STEP", required=True)
    show = steps.add_parser(
        "show",
        help="one decision: inputs, probability, contributions, reasons",
        description="Print one recorded decision: each applicant's inputs, probability, ranked "
        "contributions and reasons, the model version and time, as recorded. Exit status: 0, 1 "
        f"no such request id, 2 an error, {EXIT_SKIPPED} lines were skipped.",
    )
    show.add_argument("request_id", help="the API request id (the capture's inferenceId)")
    add_source(show)
    show.add_argument(
        "--applicant", type=int, metavar="N", help="only applicant N (0-based) (default: all)"
    )
    show.set_defaults(func=_run_show)
    export = steps.add_parser(
        "export",
        help="the decisions as CSV, one row an applicant, contributions included",
        description="Write the decisions as CSV, one row an applicant: request id, time, model "
        "version, inputs, probability, decision, reasons and one contribution column a feature; "
        "cells safe to open in a spreadsheet. Exit status: 0, 2 an error, "
        f"{EXIT_SKIPPED} lines were skipped.",
    )
    add_source(export)
    export.add_argument(
        "-o", "--output", default="decisions.csv", help="CSV file (default: decisions.csv)"
    )
    export.add_argument(
        "--since", type=moment_arg, help="decisions at or after this ISO 8601 time, UTC unless "
        "given (default: all)",
    )  # fmt: skip
    export.add_argument(
        "--until", type=moment_arg, help="decisions at or before this time (default: all)"
    )
    export.set_defaults(func=_run_export)
    replay = steps.add_parser(
        "replay",
        help="re-score every recorded input with a model; report any answer that differs "
        "(exit 1; 2 when nothing was made by this model)",
        description="Re-score every recorded input with the model directory given and report "
        "each applicant whose probability or SHAP values differ by more than 1e-9, or whose "
        "reasons differ; decisions of another model version are listed, not replayed. Exit "
        "status: 0 every answer reproduced, 1 some differ, 2 nothing replayed or an error, "
        f"{EXIT_SKIPPED} lines were skipped.",
    )
    add_source(replay)
    add_model_dir(replay)
    replay.set_defaults(func=_run_replay)
    register_notice(steps, add_source, exit_skipped=EXIT_SKIPPED)
    compact = steps.add_parser(
        "compact",
        help="copy the complete hours of local records into Parquet (DIR/compacted/, by date "
        "and hour) that later queries read instead of the JSON lines; idempotent",
        description="Read every line of each complete hour not compacted yet through the one "
        "reader and write the hour as one Parquet file under DIR/compacted/date=YYYY-MM-DD/"
        "hour=HH/ (the JSON lines stay: they are the record). Damaged lines are named "
        "(FILE:LINE) and kept out, and named again by every query over that hour. Exit status: "
        f"0, {EXIT_SKIPPED} when a line was skipped, 2 an error.",
    )
    compact.add_argument("--records", metavar="DIR", required=True,
                         help="the directory of up --records")  # fmt: skip
    compact.set_defaults(func=_run_compact, capture=None, athena=None)
