"""Turn what callers hold (Applicant models, dicts, pandas rows and frames) into validated applicants.

Validation is credit_schema's (the same code the API runs), with the schema the
API serves (``GET /schema``), so a bad applicant is refused here, naming its
index and field, before anything is sent. NaN (pandas' marker for missing
values) becomes null: allowed for the schema's nullable features, refused elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from credit_schema import (
    BUILTIN,
    ApplicantBase,
    ApplicantSchema,
    ApplicantValidationError,
    ErrorDetail,
    validate_records,
)

from ._exceptions import InvalidApplicantError, UsageError

__all__ = ["ApplicantLike", "ApplicantsLike", "as_record", "validate_applicants"]

#: One applicant: a credit_schema ``Applicant``, a mapping of wire (or field) names to
#: values, or a pandas ``Series`` (a DataFrame row).
ApplicantLike: TypeAlias = ApplicantBase | Mapping[str, Any] | Any
#: Many applicants: an iterable of the above, or a pandas ``DataFrame``.
ApplicantsLike: TypeAlias = Iterable[ApplicantLike] | Any


def _clean(value: Any) -> Any:
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        value = item()  # numpy scalar -> Python scalar
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas.NA / NaT
        return None
    return value


def _is_series(obj: Any) -> bool:
    return hasattr(obj, "dtype") and hasattr(obj, "index") and hasattr(obj, "items")


def _is_frame(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "index") and hasattr(obj, "itertuples")


def _is_values(obj: Any) -> bool:
    # A list of the feature values in model order (the API takes those too).
    return isinstance(obj, list | tuple) and not any(
        isinstance(v, Mapping | ApplicantBase | list | tuple) for v in obj
    )


def as_record(obj: ApplicantLike, schema: ApplicantSchema = BUILTIN) -> Any:
    """One applicant as an applicant of ``schema`` or a plain dict ready for validation."""
    if isinstance(obj, ApplicantBase):
        if type(obj).applicant_schema is schema:
            return obj
        return obj.model_dump(by_alias=True)  # another schema's applicant: checked against this
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if _is_series(obj):
        return {str(k): _clean(v) for k, v in obj.items()}
    if _is_values(obj) and len(obj) == len(schema.features):
        return dict(zip(schema.features, map(_clean, obj), strict=True))
    return obj  # reported by validation with its index


def record_ids(record: Any, schema: ApplicantSchema) -> dict[str, str] | None:
    """The id columns a record holds, as text (None: none), for answers it gets no score for."""
    if isinstance(record, ApplicantBase):
        return record.ids() or None
    if not isinstance(record, Mapping):
        return None
    ids = {c: str(record[c]) for c in schema.id_columns if record.get(c) is not None}
    return ids or None


def records_and_labels(
    applicants: ApplicantsLike, schema: ApplicantSchema = BUILTIN
) -> tuple[list[Any], list[Any]]:
    """Records to validate and the input's labels (a DataFrame's index, else positions)."""
    if isinstance(applicants, ApplicantBase | Mapping) or _is_series(applicants):
        raise UsageError("score_many takes a list or DataFrame of applicants; use score() for one")
    if _is_frame(applicants):
        frame: Any = applicants
        columns = [str(c) for c in frame.columns]
        records = [
            {name: _clean(v) for name, v in zip(columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)
        ]
        return records, list(frame.index)
    if isinstance(applicants, str | bytes) or not isinstance(applicants, Iterable):
        raise UsageError(
            f"score_many takes a list or DataFrame of applicants, not {type(applicants).__name__}"
        )
    records = [as_record(a, schema) for a in applicants]
    return records, list(range(len(records)))


def validate_applicants(
    records: list[Any], schema: ApplicantSchema = BUILTIN
) -> tuple[list[ApplicantBase | None], dict[int, list[ErrorDetail]]]:
    """Validate every record: applicants (None where invalid) and the problems by index.

    The schema stops at its first kind of problem (cells that cannot be read before
    values out of range), so what is left is validated again until it passes.
    """
    out: list[ApplicantBase | None] = [None] * len(records)
    problems: dict[int, list[ErrorDetail]] = {}
    todo = list(range(len(records)))
    while todo:
        try:
            validated = validate_records([records[i] for i in todo], schema)
        except ApplicantValidationError as exc:
            failed = {d.applicant for d in exc.details}
            if None in failed or not failed:  # not about one applicant: none of these passes
                for i in todo:
                    problems[i] = [d.model_copy(update={"applicant": i}) for d in exc.details]
                break
            for d in exc.details:
                assert d.applicant is not None
                i = todo[d.applicant]
                problems.setdefault(i, []).append(d.model_copy(update={"applicant": i}))
            todo = [i for j, i in enumerate(todo) if j not in failed]
            continue
        for i, a in zip(todo, validated, strict=True):
            out[i] = a
        break
    return out, problems


def validate_one(obj: ApplicantLike, schema: ApplicantSchema = BUILTIN) -> ApplicantBase:
    if isinstance(obj, list | tuple) and not _is_values(obj):
        raise UsageError(f"score() takes one applicant; use score_many() for {len(obj)}")
    record = as_record(obj, schema)
    if isinstance(record, ApplicantBase):
        return record
    applicants, problems = validate_applicants([record], schema)
    if problems:
        raise invalid_applicants_error(problems, 1)
    applicant = applicants[0]
    assert applicant is not None
    return applicant


def invalid_applicants_error(
    problems: Mapping[int, list[ErrorDetail]], total: int
) -> InvalidApplicantError:
    details = [d for i in sorted(problems) for d in problems[i]]
    bad = sorted(i for i in problems if i >= 0)
    shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
    noun = "problem" if len(details) == 1 else "problems"
    return InvalidApplicantError(
        f"{len(details)} {noun} in {len(bad)} of {total} applicant(s) (index {shown}); "
        "nothing was sent",
        details,
    )


def describe(details: Iterable[ErrorDetail]) -> str:
    """Problems as one line: ``age: Input should be ...; housing: ...``."""
    return "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in details)
