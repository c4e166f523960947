"""The built-in Give Me Some Credit applicant, derived from its schema file.

Every component works from the schema of the model it serves (:class:`ApplicantSchema`); these
names are the built-in schema's, kept as a convenience for Python callers of the built-in model
(``Applicant(age=45, ...)``, ``FEATURES``). Nothing here states a column: the names, kinds,
bounds and texts live in ``schemas/give-me-some-credit.json``.
"""

from __future__ import annotations

from typing import Final

from .schema import INDEX_COLUMNS, ApplicantBase, FieldRule, builtin_schema

BUILTIN: Final = builtin_schema()

#: The built-in applicant model (pydantic), validating exactly as the model server does.
Applicant: Final[type[ApplicantBase]] = BUILTIN.model
TARGET: Final = BUILTIN.target
TARGET_LABEL: Final = BUILTIN.target_label
#: Not features, ignored wherever an applicant of the built-in schema is read.
IGNORED_FIELDS: Final[frozenset[str]] = BUILTIN.ignored
FEATURES: Final[tuple[str, ...]] = BUILTIN.features
NULLABLE_FEATURES: Final[frozenset[str]] = BUILTIN.nullable
COUNT_FEATURES: Final[frozenset[str]] = BUILTIN.integers
DESCRIPTIONS: Final[dict[str, str]] = BUILTIN.descriptions
FEATURE_LABELS: Final[dict[str, str]] = BUILTIN.labels
#: pydantic field name -> wire name, and back.
FIELD_BY_ALIAS: Final[dict[str, str]] = BUILTIN.attribute_by_name
ALIAS_BY_FIELD: Final[dict[str, str]] = {a: n for n, a in FIELD_BY_ALIAS.items()}
FIELD_RULES: Final[tuple[FieldRule, ...]] = BUILTIN.rules

__all__ = [
    "ALIAS_BY_FIELD",
    "BUILTIN",
    "COUNT_FEATURES",
    "DESCRIPTIONS",
    "FEATURES",
    "FEATURE_LABELS",
    "FIELD_BY_ALIAS",
    "FIELD_RULES",
    "IGNORED_FIELDS",
    "INDEX_COLUMNS",
    "NULLABLE_FEATURES",
    "TARGET",
    "TARGET_LABEL",
    "Applicant",
    "FieldRule",
]
