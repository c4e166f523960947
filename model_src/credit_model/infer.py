"""``credit-explainer schema infer``: a draft schema read off a lender's CSV file.

Kinds, categories, nullability and bounds come from the data; what the data cannot say (the
description, the adverse-action text, the direction of risk) is left as a placeholder marked
:data:`credit_schema.schema.REVIEW_MARK` for the person who edits the draft. ``check`` lists the
placeholders still in a schema, so ``train`` can say a schema has not been reviewed.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from credit_schema import DataSchema, SchemaError, dump_schema, load_schema, parse_schema
from credit_schema.schema import INDEX_COLUMNS, REVIEW_MARK

if TYPE_CHECKING:
    import pandas as pd

#: More distinct texts than this and a column is not a category (an id, a free text).
MAX_CATEGORIES: Final = 50
#: A draft's upper bound is this many times the largest value seen: absurd values are refused,
#: new applicants a little beyond the training data are not.
BOUND_FACTOR: Final = 10
_AGE_NAME: Final = re.compile(r"(^|_|\b)age(_|\b|$)|^age", re.IGNORECASE)


def _label(name: str) -> str:
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    text = " ".join(words.split())
    return (text[:1].upper() + text[1:])[:80] or name[:80]


def _code(name: str, taken: set[str]) -> str:
    code = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_").lower()[:60] or "feature"
    while code in taken:
        code += "_"
    taken.add(code)
    return code


def _numbers(column: pd.Series) -> pd.Series | None:
    import pandas as pd

    present = column.dropna()
    values = pd.to_numeric(present, errors="coerce")
    return None if values.isna().any() else values


def _feature(name: str, column: pd.Series, codes: set[str]) -> dict[str, Any] | None:
    nullable = bool(column.isna().any())
    label = _label(name)
    entry: dict[str, Any] = {"name": name}
    numbers = _numbers(column)
    if numbers is not None and len(numbers):
        whole = bool((numbers == numbers.round()).all())
        low, high = float(numbers.min()), float(numbers.max())
        entry["kind"] = "integer" if whole else "number"
        entry["minimum"] = 0 if low >= 0 else math.floor(low)
        top = max(high, 1.0) * BOUND_FACTOR
        entry["maximum"] = math.ceil(top) if whole else float(top)
        seen = f"values seen: {low:g} to {high:g}"
    else:
        texts = sorted({str(v).strip() for v in column.dropna()})
        if not texts or len(texts) > MAX_CATEGORIES or max(map(len, texts)) > 64:
            return None
        entry["kind"] = "category"
        entry["categories"] = texts
        seen = f"{len(texts)} categories seen"
    if nullable:
        entry["nullable"] = True
    entry["description"] = f"{REVIEW_MARK} what {label} means ({seen})"
    entry["label"] = label
    entry["reason"] = {
        "code": _code(name, codes),
        "text": f"{REVIEW_MARK} adverse-action text for {label}",
    }
    if entry["kind"] == "integer" and _AGE_NAME.search(name):
        entry["age"] = True
    return entry


def draft(
    frame: pd.DataFrame,
    *,
    target: str,
    positive: str | None = None,
    id_columns: Sequence[str] = (),
    prohibited: Sequence[str] = (),
    name: str = "lender",
) -> tuple[DataSchema, list[str]]:
    """A draft schema for ``frame``, and notes on what the person must look at."""
    from .data import DataError

    columns = [str(c) for c in frame.columns]
    for role, given in (
        ("--target", [target]),
        ("--id-column", id_columns),
        ("--prohibited", prohibited),
    ):
        for col in given:
            if col not in columns:
                raise DataError(f"{role} {col}: no such column (columns: {', '.join(columns)})")
    labels = sorted({str(v).strip() for v in frame[target].dropna()})
    if len(labels) != 2:
        raise DataError(f"{target}: a target has two values, this one has {len(labels)}")
    if positive is None:
        if labels != ["0", "1"]:
            raise DataError(
                f"{target}: give --positive, the value that marks the risk (one of {labels})"
            )
        risk: str | int = 1
    elif positive not in labels:
        raise DataError(f"--positive {positive}: {target} holds {labels}")
    else:
        risk = int(positive) if labels == ["0", "1"] else positive
    notes: list[str] = []
    features: list[dict[str, Any]] = []
    ignored: list[str] = []
    codes: set[str] = set()
    taken = {target, *id_columns, *prohibited}
    for col in columns:
        if col in taken:
            continue
        if col in INDEX_COLUMNS or col.startswith("Unnamed:"):
            continue
        entry = _feature(col, frame[col], codes)
        if entry is None:
            ignored.append(col)
            notes.append(
                f"{col}: text with too many distinct values for a category: left out "
                "(ignored_columns); name it with --id-column if it identifies the application"
            )
            continue
        features.append(entry)
    ages = [f for f in features if f.get("age")]
    for extra in ages[1:]:
        del extra["age"]
    if ages:
        notes.append(f"{ages[0]['name']}: taken as the applicant's age (Regulation B checks)")
    document = {
        "name": name,
        "description": f"{REVIEW_MARK} where the data comes from",
        "target": {"name": target, "positive": risk, "label": "default"},
        "id_columns": list(id_columns),
        "ignored_columns": ignored,
        "features": features,
        "prohibited": [{"name": p, "basis": f"{REVIEW_MARK} sex, race, ..."} for p in prohibited],
    }
    return parse_schema(document, source="draft"), notes


def review_marks(schema: DataSchema) -> list[str]:
    """The places of a schema still marked for review."""
    found = []
    for path, text in _texts(schema.model_dump(mode="json")):
        if REVIEW_MARK in text:
            found.append(path)
    return found


def _texts(obj: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, str):
        return [(path, obj)]
    if isinstance(obj, dict):
        name = obj.get("name")
        here = f"{path}({name})" if isinstance(name, str) and path.endswith("]") else path
        return [t for k, v in obj.items() for t in _texts(v, f"{here}.{k}" if here else k)]
    if isinstance(obj, list):
        return [t for i, v in enumerate(obj) for t in _texts(v, f"{path}[{i}]")]
    return []


def _infer(args: argparse.Namespace) -> int:
    import pandas as pd

    from .data import DataError


    try:
        frame = pd.read_csv(args.data, dtype=str, keep_default_na=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"error: {args.data}: cannot read it as CSV ({exc})", file=sys.stderr)
        return 2
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("Unnamed:")])
    try:
        schema, notes = draft(
            frame,
            target=args.target,
            positive=args.positive,
            id_columns=args.id_column,
            prohibited=args.prohibited,
            name=args.name or Path(args.data).stem,
        )
    except (DataError, SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output in (None, "-"):
        import json

        from credit_schema.schema import schema_document

        print(json.dumps(schema_document(schema), indent=2, ensure_ascii=False))
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        dump_schema(schema, args.output)
        print(f"wrote {args.output}: {len(schema.features)} features", file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"review every {REVIEW_MARK} text (descriptions, adverse-action reasons), the bounds and "
        "each feature's risk direction before training",
        file=sys.stderr,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    marks = review_marks(schema)
    print(
        f"{args.schema}: {schema.name}, {len(schema.features)} features, "
        f"{len(schema.id_columns)} id column(s), {len(schema.prohibited)} prohibited basis"
    )
    for place in marks:
        print(f"not reviewed: {place}")
    return 1 if marks else 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "schema",
        help="describe a lender's data set: infer a draft schema from a CSV, check one",
        description="A schema names the target and its risk label, id columns, each feature "
        "(kind, categories, missing values, bounds, texts, reason code, direction of risk) and "
        "the prohibited bases; train --schema uses it and the model carries it.",
    )
    actions = p.add_subparsers(dest="schema_action", required=True, metavar="ACTION")
    q = actions.add_parser(
        "infer",
        help="write a draft schema from a CSV file, for a person to review",
        description="Read kinds, categories, missing values and bounds off the data; leave "
        f"texts marked {REVIEW_MARK} for review.",
    )
    q.add_argument("--data", required=True, help="the lender's CSV file (with the target)")
    q.add_argument("--target", required=True, help="the outcome column")
    q.add_argument(
        "--positive",
        help="the target value that marks the risk, needed unless the target is 0/1 (default: 1)",
    )
    q.add_argument(
        "--id-column",
        action="append",
        default=[],
        metavar="COL",
        help="a column that identifies the application: carried, never a feature; repeatable "
        "(default: none)",
    )
    q.add_argument(
        "--prohibited",
        action="append",
        default=[],
        metavar="COL",
        help="a prohibited basis (sex, marital status, race, ...): never a feature, kept for "
        "the fairness checks; repeatable (default: none)",
    )
    q.add_argument("--name", help="the schema's name (default: the file's name)")
    q.add_argument(
        "-o", "--output", help="schema file to write, .json or .yaml (default: stdout, JSON)"
    )
    q.set_defaults(func=_infer)
    q = actions.add_parser(
        "check",
        help="read a schema file; list what is still marked for review (exit 1 if anything)",
        description="Read a schema file as train --schema does (one error naming the field if "
        f"it is wrong) and list every text still marked {REVIEW_MARK}. Exit status: 0 ready, "
        "1 something awaits review, 2 the file is wrong.",
    )
    q.add_argument("schema", help="schema file, .json or .yaml")
    q.set_defaults(func=_check)
