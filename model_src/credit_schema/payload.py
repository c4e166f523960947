"""Decode and normalise scoring payloads into validated applicants.

One implementation, used by the model's ``input_fn``, the scoring Lambda and
the client, so that all of them accept exactly the same shapes:

* one applicant object: ``{"age": 45, ...}``
* a list of applicant objects (pandas ``orient="records"``), or of lists of the
  10 values in model order
* pandas ``orient="columns"``: ``{"age": {"0": 45, "1": 30}, ...}``
* pandas ``orient="index"``: ``{"0": {"age": 45, ...}, "1": {...}}``
* pandas ``orient="split"``: ``{"columns": [...], "index": [...], "data": [[...]]}``
* ``{"instances": [...]}`` holding records or value lists
* any of these as a JSON string holding that JSON (the double-encoded case:
  ``json.dumps(df.to_json(orient="records"))``)
* ``text/csv``: header row optional (a leading unnamed index column and a
  the target column are dropped), columns in model order

Pure Python: no numpy or pandas, so it runs in the Lambda bundle.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from difflib import get_close_matches
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import from_json

from .applicant import BUILTIN
from .content_types import CONTENT_TYPE_CSV, CONTENT_TYPE_JSONLINES
from .errors import (
    ApplicantValidationError,
    ErrorDetail,
    MalformedPayloadError,
    PayloadTooLargeError,
)
from .schema import MISSING_CELLS, ApplicantBase, ApplicantSchema, is_missing_cell

#: How many times a JSON string holding JSON is unwrapped.
MAX_JSON_STRING_LEVELS: Final = 3
#: Default cap on applicants in one request (the API makes it configurable).
DEFAULT_MAX_APPLICANTS: Final = 2_000
#: Default cap on a request body, in bytes: under the 6 MiB that Lambda and SageMaker accept
#: per invocation, leaving room for the event around the body.
DEFAULT_MAX_BODY_BYTES: Final = 6_000_000
#: Deepest JSON nesting accepted: the deepest accepted shape (``{"instances": [[...]]}``)
#: has 3 levels; anything past this is not one of the accepted shapes (400).
MAX_JSON_DEPTH: Final = 8
#: Longest string accepted as a field value (values are numbers; a numeric string
#: such as ``"45"`` is read as one). Longer strings are refused (422) before parsing.
MAX_STRING_CHARS: Final = 64


_MAX_FIELD_NAME: Final = 100  # an unknown key is echoed back in errors, cut to this length


def _huge_int(text: str) -> float:
    # An integer too long for int() (Python caps int-from-string at 4,300 digits)
    # becomes inf, which the schema refuses with the applicant and field at fault.
    try:
        return int(text)
    except ValueError:
        return float(text)


def _loads(text: str | bytes | bytearray) -> Any:
    # NaN, Infinity and overflowing numbers (1e999) parse to non-finite floats
    # here and are refused by the schema with the applicant and field at fault.
    try:
        # pydantic-core's parser halves the parse of large batches; what it refuses (TypeError: a
        # str with a lone surrogate) goes to json.loads, whose reading and errors are the rule.
        return from_json(text)
    except (ValueError, TypeError):
        pass
    try:
        return json.loads(text)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        return json.loads(text, parse_int=_huge_int)  # rare: keep the fast path hook-free


def decode_json(body: str | bytes | bytearray) -> Any:
    """Parse a JSON body; a JSON string holding JSON is unwrapped (double encoding).

    Raises :class:`MalformedPayloadError` (400) for anything that is not JSON.
    """
    try:
        obj = _loads(body)
        for _ in range(MAX_JSON_STRING_LEVELS):
            if not isinstance(obj, str):
                break
            obj = _loads(obj)
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError("request body is not valid UTF-8") from exc
    except RecursionError as exc:
        raise MalformedPayloadError(
            f"request body is nested too deeply; the limit is {MAX_JSON_DEPTH} levels"
        ) from exc
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise MalformedPayloadError(f"request body is not valid JSON: {_short(exc)}") from exc
    if isinstance(obj, str):
        raise MalformedPayloadError("request body is a JSON string, not applicants")
    return obj


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


_CONTAINERS: Final = (dict, list, tuple)
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def check_depth(obj: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse (400) JSON nested deeper than any accepted shape, a level at a time."""
    level = [obj] if isinstance(obj, _CONTAINERS) else []
    for depth in range(1, max_depth + 1):
        children: list[Any] = []
        for node in level:
            children.extend(node.values() if isinstance(node, dict) else node)
        if _SCALARS.issuperset(map(type, children)):  # most payloads end here, checked in C
            return
        level = [c for c in children if isinstance(c, _CONTAINERS)]
        if level and depth == max_depth:
            raise MalformedPayloadError(
                f"request body is nested too deeply; the limit is {max_depth} levels"
            )


def _is_feature_key(key: object, schema: ApplicantSchema) -> bool:
    return isinstance(key, str) and key in schema.known_keys


def _positional(values: Sequence[Any], schema: ApplicantSchema) -> dict[str, Any] | Sequence[Any]:
    # A list of values in model order; a wrong length is reported per applicant.
    if len(values) != len(schema.features):
        return values
    return dict(zip(schema.features, values, strict=True))


def _rows_to_records(rows: Iterable[Any], schema: ApplicantSchema) -> list[Any]:
    records: list[Any] = []
    for row in rows:
        if isinstance(row, list):
            records.append(_positional(row, schema))
        else:
            records.append(row)
    return records


def _columns_to_records(columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    index: dict[str, None] = {}
    for col in columns.values():
        if not isinstance(col, dict):
            raise MalformedPayloadError(
                "column-oriented payload: every feature must map row labels to values"
            )
        for label in col:
            index.setdefault(label, None)
    return [{name: col[label] for name, col in columns.items() if label in col} for label in index]


def _split_to_records(obj: Mapping[str, Any]) -> list[Any]:
    columns, data = obj.get("columns"), obj.get("data")
    if not isinstance(columns, list) or not isinstance(data, list):
        raise MalformedPayloadError("split-oriented payload needs 'columns' and 'data' lists")
    if not all(isinstance(c, str) for c in columns):
        raise MalformedPayloadError("split-oriented payload: 'columns' must be feature names")
    records: list[Any] = []
    for row in data:
        if not isinstance(row, list) or len(row) != len(columns):
            records.append(row)  # reported per applicant
        else:
            records.append(dict(zip(columns, row, strict=True)))
    return records


def to_records(obj: Any, schema: ApplicantSchema = BUILTIN) -> list[Any]:
    """Normalise any accepted JSON shape to a list of records (one per applicant).

    Records are returned as they are (dicts, or whatever the caller sent in a
    row's place); :func:`validate_records` reports the bad ones by index.
    JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused first (400).
    """
    check_depth(obj)
    known = schema.known_keys
    if isinstance(obj, list):
        records = _rows_to_records(obj, schema)
    elif isinstance(obj, dict):
        if "instances" in obj:
            if set(obj) != {"instances"} or not isinstance(obj["instances"], list):
                raise MalformedPayloadError(
                    "'instances' must be a list and the only key of the object"
                )
            records = _rows_to_records(obj["instances"], schema)
        elif "columns" in obj and "data" in obj and known.isdisjoint(obj):
            records = _split_to_records(obj)
        elif obj and all(isinstance(v, dict) for v in obj.values()):
            if not known.isdisjoint(obj):
                records = _columns_to_records(obj)  # pandas orient="columns"
            else:
                records = list(obj.values())  # pandas orient="index"
        else:
            records = [obj]  # one applicant
    else:
        raise MalformedPayloadError(
            "expected an applicant object, a list of applicants, pandas column/index/split JSON "
            "or {'instances': [...]}"
        )
    if not records:
        raise MalformedPayloadError("the request holds no applicants")
    return records


def _long_strings(index: int, record: Any) -> list[ErrorDetail]:
    # Checked before pydantic parses anything: a megabyte of digits is refused unread.
    if isinstance(record, str):
        items: Iterable[tuple[Any, Any]] = [(None, record)]
    elif isinstance(record, dict):
        items = record.items()
    elif isinstance(record, list | tuple):
        items = [(None, v) for v in record]
    else:
        return []
    return [
        ErrorDetail(
            applicant=index,
            field=key[:_MAX_FIELD_NAME] if isinstance(key, str) else None,
            message=f"a string of {len(value)} characters; the limit is {MAX_STRING_CHARS}",
            type="string_too_long",
        )
        for key, value in items
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS
    ]


_NUMBER_TYPES: Final = frozenset(
    {"int_type", "float_type", "int_parsing", "float_parsing", "finite_number", "literal_error"}
)


def _may_be_empty(schema: ApplicantSchema) -> str:
    names = [f for f in schema.features if f in schema.nullable]
    return f" (only {' and '.join(names)} may)" if names else ""


def _message(err: Mapping[str, Any], field: str | None, schema: ApplicantSchema) -> str:
    # pydantic's words, where they mislead for this schema (the input is looked at, never echoed).
    kind = err.get("type")
    if kind == "missing" and field in schema.nullable:
        return "required: may be null when unknown, but must be sent"
    if kind in _NUMBER_TYPES and (err.get("input", 0) is None or is_missing_cell(err["input"])):
        return f"required: may not be empty or null{_may_be_empty(schema)}"
    if kind == "extra_forbidden" and field is not None:
        close = get_close_matches(field.lower(), schema.by_lower, n=1, cutoff=0.6)
        if close:
            return f"unknown field; did you mean {schema.by_lower[close[0]]!r}?"
        return f"unknown field (the features are named as in the schema {schema.name!r})"
    return str(err.get("msg", "invalid"))


def _detail_from_pydantic(
    err: Mapping[str, Any], schema: ApplicantSchema, offset: int = 0
) -> ErrorDetail:
    loc = tuple(err.get("loc", ()))
    applicant = loc[0] + offset if loc and isinstance(loc[0], int) else None
    field = next((str(p)[:_MAX_FIELD_NAME] for p in loc[1:] if isinstance(p, str)), None)
    return ErrorDetail(
        applicant=applicant,
        field=field,
        message=_message(err, field, schema),
        type=err.get("type"),
    )


def _one_per_misspelling(details: list[ErrorDetail]) -> list[ErrorDetail]:
    # "Age" for "age" is one mistake: the unknown field's "did you mean" names the other.
    meant = {
        (d.applicant, d.message.split("'")[1])
        for d in details
        if d.type == "extra_forbidden" and "did you mean" in d.message
    }
    return [d for d in details if not (d.type == "missing" and (d.applicant, d.field) in meant)]


def validate_records(
    records: Sequence[Any], schema: ApplicantSchema = BUILTIN
) -> list[ApplicantBase]:
    """Validate normalised records; every problem is reported with applicant index and field."""
    details: list[ErrorDetail] = []
    for i, rec in enumerate(records):
        details.extend(_long_strings(i, rec))
        if isinstance(rec, list | tuple):
            details.append(
                ErrorDetail(
                    applicant=i,
                    message=f"expected {len(schema.features)} values in model order, got {len(rec)}",
                    type="wrong_length",
                )
            )
    if details:
        raise ApplicantValidationError(_summary(details, len(records)), details)
    try:
        return schema.adapter.validate_python(records)
    except ValidationError as exc:
        details = _one_per_misspelling(
            [_detail_from_pydantic(e, schema) for e in exc.errors(include_url=False)]
        )
        raise ApplicantValidationError(_summary(details, len(records)), details) from None


def _summary(details: Sequence[ErrorDetail], n: int) -> str:
    bad = sorted({d.applicant for d in details if d.applicant is not None})
    shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
    noun = "problem" if len(details) == 1 else "problems"
    return f"{len(details)} {noun} in {len(bad)} of {n} applicant(s) (index {shown})"


def check_count(n: int, max_applicants: int) -> None:
    if n > max_applicants:
        raise PayloadTooLargeError(
            f"{n} applicants in one request; the limit is {max_applicants}: split the batch"
        )


def check_body_size(n_bytes: int, max_body_bytes: int) -> None:
    if n_bytes > max_body_bytes:
        raise PayloadTooLargeError(
            f"request body is {n_bytes} bytes; the limit is {max_body_bytes} bytes"
        )


def parse_json_applicants(
    body: str | bytes | Any,
    *,
    max_applicants: int = DEFAULT_MAX_APPLICANTS,
    schema: ApplicantSchema = BUILTIN,
) -> list[ApplicantBase]:
    """JSON body (bytes/str, possibly double-encoded, or already-parsed object) -> applicants."""
    obj = decode_json(body) if isinstance(body, str | bytes | bytearray) else body
    records = to_records(obj, schema)
    check_count(len(records), max_applicants)
    return validate_records(records, schema)


def _csv_cell(cell: str) -> Any:
    text = cell.strip()
    if text.lower() in MISSING_CELLS:  # is_missing_cell's rule, without stripping twice
        return None
    if "." not in text and "e" not in text and "E" not in text:  # int() refuses those: skip
        try:  # its exception for every decimal (about 1 us a cell)
            return int(text)
        except ValueError:
            pass
    try:
        return float(text)  # inf/nan/1e999 come out non-finite and are refused by the schema
    except ValueError:
        return text


def csv_records(text: str, schema: ApplicantSchema = BUILTIN) -> list[Any]:
    """Parse ``text/csv``: header optional, columns in model order."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
    except csv.Error as exc:
        raise MalformedPayloadError(f"request body is not valid CSV: {_short(exc)}") from exc
    if not rows:
        raise MalformedPayloadError("the request holds no applicants")
    header = [c.strip() for c in rows[0]]
    if any(_is_feature_key(c, schema) for c in header):
        keep = [i for i, c in enumerate(header) if c not in schema.ignored]
        names = [header[i] for i in keep]
        texts = [schema.codes.get(name) for name in names]
        records: list[Any] = []
        for row in rows[1:]:
            if len(row) != len(header):
                records.append(row)
            else:
                records.append(
                    {names[j]: _category_cell(row[i], texts[j]) for j, i in enumerate(keep)}
                )
        if not records:
            raise MalformedPayloadError("the CSV has a header but no applicants")
        return records
    texts = [schema.codes.get(name) for name in schema.features]
    return [
        _positional(
            [_category_cell(c, texts[j] if j < len(texts) else None) for j, c in enumerate(row)],
            schema,
        )
        for row in rows
    ]


def _category_cell(cell: str, categories: Mapping[str, int] | None) -> Any:
    # A category may be named like a missing value ("none"): its text is the category.
    if categories is not None and cell.strip() in categories:
        return cell.strip()
    return _csv_cell(cell)


def csv_text(body: str | bytes) -> str:
    """A ``text/csv`` body as text (UTF-8, optional BOM)."""
    try:
        return body.decode("utf-8-sig") if isinstance(body, bytes | bytearray) else body
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError("request body is not valid UTF-8") from exc


def jsonlines_records(body: str | bytes, schema: ApplicantSchema = BUILTIN) -> list[Any]:
    """Parse ``application/jsonlines``: each line one applicant or any accepted JSON shape."""
    text = csv_text(body)
    records: list[Any] = []
    for line in text.splitlines():
        if line.strip():
            records.extend(to_records(decode_json(line), schema))
    if not records:
        raise MalformedPayloadError("the request holds no applicants")
    return records


def body_records(
    body: str | bytes, media_type: str, schema: ApplicantSchema = BUILTIN
) -> list[Any]:
    """Any accepted body (JSON, CSV or JSON Lines, by its checked media type) -> records."""
    if media_type == CONTENT_TYPE_CSV:
        return csv_records(csv_text(body), schema)
    if media_type == CONTENT_TYPE_JSONLINES:
        return jsonlines_records(body, schema)
    return to_records(decode_json(body), schema)


def parse_csv_applicants(
    body: str | bytes,
    *,
    max_applicants: int = DEFAULT_MAX_APPLICANTS,
    schema: ApplicantSchema = BUILTIN,
) -> list[ApplicantBase]:
    records = csv_records(csv_text(body), schema)
    check_count(len(records), max_applicants)
    return validate_records(records, schema)
