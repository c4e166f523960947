"""The decision record: what the scoring API keeps of every answer, stated once.

One JSON line per request (or per part of a request too large for one Firehose record)::

    {"record_version": 1, "request_id": "<UUIDv7>", "time": "2026-12-06T21:40:00.123Z",
     "model_version": "...", "reason_codes_version": "..." | null, "api_key_id": "..." | null,
     "part": 0, "parts": 1,
     "applicants": [{"<wire name>": value, ...}, ...],   # as validated
     "results": [{"index": 0, "probability": ..., "base_value": ..., "contributions": [...],
                  "reasons": [...], "decision": ...}, ...]}          # exactly as sent

kept under ``yyyy/mm/dd/hh/`` (UTC: :func:`hour_prefix`), locally and in S3 alike. The API
writes it with :func:`record_lines`; every reader parses it with :func:`parse_record`, which
refuses a line of the wrong shape with one sentence (:class:`RecordError`). The record is
generic: applicants are ``{wire name: value}`` and results carry their own feature names, so
it holds whatever schema the model was trained with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .edge import id_time
from .responses import (
    ADDITIVITY_TOLERANCE,
    Contribution,
    Reason,
    ScoredApplicant,
    additivity_target,
)

RECORD_VERSION: Final = 1
#: Amazon Data Firehose's largest record (1,000 KiB): a larger request is recorded in parts.
FIREHOSE_MAX_RECORD_BYTES: Final = 1000 * 1024
#: The partition a record is kept under, from its time (UTC): also Firehose's default prefix.
HOUR_FORMAT: Final = "%Y/%m/%d/%H"


class RecordError(ValueError):
    """A line that is not a decision record (the message says why, in one line)."""


#: A record holds finite numbers only (our writer refuses NaN and infinities): a line holding
#: one is damaged, whichever engine reads it. Every model of the record takes this config.
FINITE: Final = ConfigDict(allow_inf_nan=False)


class RecordedContribution(Contribution):
    model_config = FINITE


class RecordedReason(Reason):
    model_config = FINITE


class RecordedResult(ScoredApplicant):
    """One result as it was sent: fields the API adds later (the applicant's ids) are kept."""

    model_config = ConfigDict(**FINITE, extra="allow")

    contributions: list[RecordedContribution]  # type: ignore[assignment]
    principal_reasons: list[RecordedReason] | None = Field(default=None, alias="reasons")  # type: ignore[assignment]


class DecisionRecord(BaseModel):
    """One request's decision record (or one part of it), as read back."""

    # Strict: a probability written as a string is a damaged record, not a number.
    model_config = ConfigDict(**FINITE, strict=True, extra="forbid", frozen=True)

    record_version: Literal[1]
    request_id: str = Field(min_length=1)
    time: datetime
    model_version: str
    reason_codes_version: str | None
    api_key_id: str | None
    part: int = Field(default=0, ge=0)
    parts: int = Field(default=1, ge=1)
    applicants: list[dict[str, float | str | None]]  # categories as their texts
    results: list[RecordedResult]

    @model_validator(mode="after")
    def _consistent(self) -> DecisionRecord:
        if self.part >= self.parts:
            raise ValueError(f"part {self.part} of {self.parts}")
        if len(self.applicants) != len(self.results):
            raise ValueError(
                f"{len(self.applicants)} applicant(s) but {len(self.results)} result(s)"
            )
        for applicant, result in zip(self.applicants, self.results, strict=True):
            features = {c.feature for c in result.contributions}
            if features != set(applicant) or len(result.contributions) != len(applicant):
                raise ValueError(
                    f"result {result.index}: {len(result.contributions)} contribution(s) for "
                    f"{len(applicant)} input(s)"
                )
        return self

    def additivity_gap(self, i: int) -> float:
        """|base value + sum of contributions - probability| of result ``i`` (the probability's
        log-odds for a result in log-odds: :func:`additivity_target`)."""
        r = self.results[i]
        total = r.base_value + sum(c.shap_value for c in r.contributions)
        return abs(total - additivity_target(r.probability, r.space))

    def adds_up(self, i: int) -> bool:
        return self.additivity_gap(i) <= ADDITIVITY_TOLERANCE


def hour_prefix(moment: datetime) -> str:
    """``yyyy/mm/dd/hh`` (UTC) of ``moment``: the folder (S3 prefix) of its records."""
    return moment.astimezone(UTC).strftime(HOUR_FORMAT)


def hours_of_id(request_id: str) -> list[str] | None:
    """The hour prefixes a request's record can be under (its id's hour and the next: the
    record is written a little after the id is made); None when the id is not time-ordered."""
    made = id_time(request_id)
    if made is None:
        return None
    return [hour_prefix(made), hour_prefix(made + timedelta(hours=1))]


def time_text(moment: datetime) -> str:
    """A record's time as written (ISO 8601, UTC, to the millisecond): it sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_lines(
    *,
    request_id: str,
    moment: datetime,
    model_version: str,
    reason_codes_version: str | None,
    api_key_id: str | None,
    applicants: Sequence[dict[str, Any]],
    results: Sequence[dict[str, Any]],
    max_bytes: int | None = None,
) -> list[bytes]:
    """The request's record as JSON lines (UTF-8, each ending in a newline): one line, or as
    few parts as keep each line within ``max_bytes`` (one applicant per part at the least)."""
    items = [json.dumps(a, separators=(",", ":"), allow_nan=False).encode() for a in applicants]
    answers = [json.dumps(r, separators=(",", ":"), allow_nan=False).encode() for r in results]
    head = {
        "record_version": RECORD_VERSION,
        "request_id": request_id,
        "time": time_text(moment),
        "model_version": model_version,
        "reason_codes_version": reason_codes_version,
        "api_key_id": api_key_id,
    }
    overhead = len(json.dumps(head)) + 80  # the part fields and the brackets
    groups: list[range] = []
    start, size = 0, overhead
    for i, (a, r) in enumerate(zip(items, answers, strict=True)):
        grows = len(a) + len(r) + 2
        if max_bytes is not None and i > start and size + grows > max_bytes:
            groups.append(range(start, i))
            start, size = i, overhead
        size += grows
    groups.append(range(start, len(items)))
    lines = []
    for part, group in enumerate(groups):
        prefix = json.dumps({**head, "part": part, "parts": len(groups)}, separators=(",", ":"))
        lines.append(
            prefix[:-1].encode()
            + b',"applicants":['
            + b",".join(items[i] for i in group)
            + b'],"results":['
            + b",".join(answers[i] for i in group)
            + b"]}\n"
        )
    return lines


def _problem(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"


def parse_record(line: bytes | str) -> DecisionRecord:
    """One line as a :class:`DecisionRecord`, or :class:`RecordError` saying why it is not one
    (not UTF-8, not JSON, cut short, or JSON of the wrong shape)."""
    if isinstance(line, bytes):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("not UTF-8 text") from None
    try:
        # JSON-mode validation: times as ISO text, numbers as JSON numbers (strict).
        return DecisionRecord.model_validate_json(line, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise RecordError("not JSON: a damaged or cut-short line") from None
        if first["type"] == "model_type" and not first["loc"]:
            raise RecordError("JSON but not an object: not a decision record") from None
        raise RecordError(f"not a decision record: {_problem(exc)}") from None


def record_from(data: dict[str, Any]) -> DecisionRecord:
    """A decoded JSON object as a :class:`DecisionRecord` (:class:`RecordError` if it is not one)."""
    return parse_record(json.dumps(data))


class Skipped(NamedTuple):
    """A line a reader skipped: where it is and why."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:  # line 0: not known (an S3 object Athena named but cannot be read)
        return f"{self.source}{f':{self.line}' if self.line else ''}: skipped: {self.reason}"


def read_lines(
    source: str,
    lines: Iterable[bytes],
    on_skip: Callable[[Skipped], None],
    parse: Callable[[bytes], DecisionRecord] = parse_record,
    naming: bytes | None = None,
) -> Iterator[DecisionRecord]:
    """The records in ``lines`` (one file's, named ``source``); each line ``parse`` refuses is
    handed to ``on_skip`` instead, and the rest read. With ``naming`` (a look-up by id), the
    lines that do not hold those bytes cannot be its record: they are only checked to look whole
    (UTF-8, one JSON object from ``{`` to ``}``), which is what a crash or a full disk damages,
    at a tenth of the cost of parsing them."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            if naming is None or naming in line:
                yield parse(line)
            else:
                _whole(line)
        except RecordError as exc:
            on_skip(Skipped(source, number, str(exc)))


def _whole(line: bytes) -> None:
    """:class:`RecordError` unless ``line`` looks whole: UTF-8, from ``{`` to ``}``."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    text = line.strip()
    if not (text.startswith(b"{") and text.endswith(b"}")):
        raise RecordError("not JSON: a damaged or cut-short line")
