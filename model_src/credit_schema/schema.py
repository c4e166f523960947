"""The schema language: a lender's data set described as data, read from a JSON or YAML file.

A :class:`DataSchema` names the target column and its risk label, the id columns (carried
through scoring and every output, never given to the model), the features (wire name, kind,
nullability, bounds, special codes, texts, reason codes, direction of risk, whether it is the
applicant's age) and the prohibited-basis attributes (ECOA: never given to the model, kept so
the validation report can test for disparate impact).

:class:`ApplicantSchema` is what every component works from: the pydantic model that
validates an applicant (built from the schema, the one validator), the rules as data for bulk
checks, the encoding of categories for the trees, the reason codes. The built-in Give Me Some
Credit schema is a file shipped in this package (:func:`builtin_schema`).

Standard library and pydantic only: this package is the Lambda layer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .text import text_problem

#: The file of the built-in schema, and the name a model directory keeps its schema under.
BUILTIN_SCHEMA_FILE: Final = Path(__file__).parent / "schemas" / "give-me-some-credit.json"
SCHEMA_FILE: Final = "schema.json"
SCHEMA_FORMAT: Final = "credit-explainer/schema/1"
#: Names pandas and the Kaggle files give an index column: never features, always ignored.
INDEX_COLUMNS: Final[frozenset[str]] = frozenset({"", "Unnamed: 0", "index", "Id", "id"})
#: An id value: starts with a letter or digit (a cell that opens with = + - @ is a formula).
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,63}$"
#: Marks a text ``schema infer`` could not know, for the person editing the draft.
REVIEW_MARK: Final = "TODO(review):"

_NAME = Annotated[str, Field(min_length=1, max_length=100)]
_TEXT = Annotated[str, Field(min_length=1, max_length=500)]


class Kind(StrEnum):
    """How a feature's values are read and checked."""

    NUMBER = "number"
    INTEGER = "integer"
    CATEGORY = "category"


class Risk(StrEnum):
    """Expected direction of risk as the feature grows: training constraints and checks."""

    INCREASING = "increasing"
    DECREASING = "decreasing"
    NONE = "none"


class SchemaError(ValueError):
    """A schema that cannot be used: one line naming the file and the field at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _plain(value: str) -> str:
    problem = text_problem(value)  # reaches notices and spreadsheets: no formula, no control
    if problem:
        raise ValueError(problem)
    return value


class ReasonCode(_Strict):
    """An adverse-action reason: a stable machine code and the sentence the applicant reads."""

    code: Annotated[
        str,
        Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"),
        AfterValidator(_plain),
    ]
    text: Annotated[_TEXT, AfterValidator(_plain)]


class Feature(_Strict):
    """One feature the model sees."""

    name: _NAME = Field(description="Wire name: the column in files, the key in requests.")
    kind: Kind
    categories: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, description="For kind category: every allowed value, in code order."
    )
    nullable: bool = Field(default=False, description="May be missing (null or an empty cell).")
    minimum: float | None = None
    maximum: float | None = None
    special_codes: list[float] = Field(
        default_factory=list, description="Values with a meaning of their own (e.g. 96, 98)."
    )
    description: _TEXT
    label: Annotated[str, Field(min_length=1, max_length=80)] | None = Field(
        default=None, description="A short name for charts and texts (default: the name)."
    )
    reason: ReasonCode = Field(description="The reason when this feature raised the risk.")
    reason_when_missing: ReasonCode | None = Field(
        default=None, description="The reason when the value was missing and that raised the risk."
    )
    risk: Risk = Field(default=Risk.NONE, description="Expected direction of risk.")
    age: bool = Field(default=False, description="The applicant's age (Regulation B).")
    attribute: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")] | None = Field(
        default=None, description="Python attribute name on the typed applicant model."
    )
    example: int | float | str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.kind is Kind.CATEGORY:
            if not self.categories:
                raise ValueError("categories: a category feature must list at least one category")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("categories: each category may be listed once")
            if self.minimum is not None or self.maximum is not None or self.special_codes:
                raise ValueError("a category feature has no minimum, maximum or special codes")
            if self.risk is not Risk.NONE or self.age:
                raise ValueError("risk: a category feature has no direction of risk (use none)")
        elif self.categories is not None:
            raise ValueError(f"categories: only a category feature lists categories, not {self.kind}")
        for bound in (self.minimum, self.maximum):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("minimum and maximum must be finite numbers")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        return self


class Target(_Strict):
    """The outcome column: ignored wherever applicants are read."""

    name: _NAME
    positive: str | int = Field(default=1, description="The value that marks the risk (a default).")
    label: _TEXT = Field(
        default="default", description="What the model predicts, in words (its probability)."
    )

    def outcome(self, text: str) -> int | None:
        """A target cell as 1 (it marks the risk) or 0; None for a cell that cannot be read
        (a numeric label takes 0 and 1 only; with a text label, every other text is 0)."""
        value = text.strip()
        if isinstance(self.positive, int):
            number = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}.get(value)
            return None if number is None else int(number == self.positive)
        return int(value == self.positive) if value else None


class Prohibited(_Strict):
    """A prohibited basis (ECOA): never given to the model, only to the fairness checks."""

    name: _NAME
    basis: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="sex, marital status, race, religion, national origin, age, ..."
    )


class DataSchema(_Strict):
    """A lender's data set. Read with :func:`load_schema`, written with :func:`dump_schema`."""

    format: Literal["credit-explainer/schema/1"] = SCHEMA_FORMAT
    name: _NAME
    description: str = ""
    target: Target
    id_columns: list[_NAME] = Field(default_factory=list)
    ignored_columns: list[_NAME] = Field(
        default_factory=list, description="Columns read and dropped (an index, a date)."
    )
    features: list[Feature] = Field(min_length=1)
    prohibited: list[Prohibited] = Field(default_factory=list)
    reason_codes_version: Annotated[str, Field(min_length=1, max_length=64)] = "1"

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: list[Feature]) -> list[Feature]:
        seen: set[str] = set()
        for i, f in enumerate(features):
            if f.name in seen:
                raise ValueError(f"features[{i}]: {f.name!r} is listed twice")
            seen.add(f.name)
        if sum(f.age for f in features) > 1:
            raise ValueError("at most one feature is the applicant's age")
        return features

    @model_validator(mode="after")
    def _roles_apart(self) -> DataSchema:
        features = {f.name for f in self.features}
        roles: list[tuple[str, Sequence[str]]] = [
            ("target", [self.target.name]),
            ("id_columns", self.id_columns),
            ("ignored_columns", self.ignored_columns),
            ("prohibited", [p.name for p in self.prohibited]),
        ]
        for role, names in roles:
            for name in names:
                if name in features:
                    raise ValueError(f"{role}: {name!r} is also a feature; a column has one role")
        flat = [n for _, names in roles for n in names]
        twice = sorted({n for n in flat if flat.count(n) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} has two roles (target, id, ignored or prohibited)")
        codes = [f.reason.code for f in self.features]
        codes += [f.reason_when_missing.code for f in self.features if f.reason_when_missing]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"reason code {dup[0]!r} is used by two features")
        return self


# -- reading and writing ----------------------------------------------------------------------


def _where(error: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for p in error.get("loc", ()):
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{p}]"]
        else:
            parts.append(str(p))
    return ".".join(parts)


def parse_schema(data: Any, *, source: str = "schema") -> DataSchema:
    """A :class:`DataSchema` from parsed JSON/YAML; :class:`SchemaError` names the field."""
    try:
        return DataSchema.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = _where(err)
        # The feature's name makes the place findable in a long file.
        names = re.match(r"features\[(\d+)\]", where)
        if names and isinstance(data, dict) and isinstance(data.get("features"), list):
            entry = data["features"][int(names.group(1))]
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                where += f" ({entry['name']})"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise SchemaError(f"{source}: {where + ': ' if where else ''}{message}") from None


def _yaml(path: Path, doing: str) -> Any:
    """PyYAML, an optional dependency: JSON schemas need nothing beyond the standard library."""
    try:
        import yaml
    except ImportError:
        raise SchemaError(f"{path}: {doing} YAML needs PyYAML (pip install pyyaml)") from None
    return yaml


def load_schema(path: str | Path) -> DataSchema:
    """Read a schema file, JSON or YAML by its suffix (``.yaml``/``.yml`` needs PyYAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read the schema ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SchemaError(f"{path}: not UTF-8 text") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        yaml = _yaml(path, "reading")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SchemaError(f"{path}: not JSON ({exc})") from None
    return parse_schema(data, source=str(path))


def schema_document(schema: DataSchema) -> dict[str, Any]:
    """The schema as the plain document its file holds (defaults left out)."""
    return schema.model_dump(mode="json", exclude_defaults=True) | {"format": SCHEMA_FORMAT}


def dump_schema(schema: DataSchema, path: str | Path) -> None:
    """Write a schema file, JSON or YAML by its suffix."""
    path = Path(path)
    document = schema_document(schema)
    if path.suffix.lower() in (".yaml", ".yml"):
        text = _yaml(path, "writing").safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


# -- the compiled view: what every component works from ---------------------------------------


#: Cell texts that mean "unknown" (case and surrounding blanks ignored), wherever values arrive as
#: text (CSV cells, ``csv.DictReader`` rows, JSON strings): null for a nullable feature,
#: "missing" for any other. The one statement of the missing-cell rule.
MISSING_CELLS: Final[frozenset[str]] = frozenset({"", "na", "nan", "null", "none"})


def is_missing_cell(value: Any) -> bool:
    """True for a text that means "unknown" (:data:`MISSING_CELLS`)."""
    return isinstance(value, str) and value.strip().lower() in MISSING_CELLS


def _missing_as_null(value: Any) -> Any:
    # Nullable features only: there an empty, NA or NaN cell is the null the model imputes.
    return None if is_missing_cell(value) else value


def _reject_bool(value: Any) -> Any:
    # pydantic's lax mode would read true as 1; a boolean is never a valid number or category.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _category_text(value: Any) -> Any:
    # A category coded as a number in a file (1, 2.0) means its text ("1", "2").
    if isinstance(value, bool):
        raise ValueError("must be one of the categories, not a boolean")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return value


def _id_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class FieldRule(NamedTuple):
    """One feature's constraints as data, in model order, for checks that run in bulk."""

    name: str  #: wire name
    integer: bool  #: whole numbers only
    lower: float
    upper: float
    nullable: bool
    categories: tuple[str, ...] | None = None  #: a category feature's values (codes 0..k-1)


class ApplicantBase(BaseModel):
    """Base of every schema's applicant model: unknown fields refused, ignored columns dropped."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )
    applicant_schema: ClassVar[ApplicantSchema]

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        ignored = cls.applicant_schema.ignored
        if isinstance(data, dict) and not ignored.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in ignored}
        return data

    def to_features(self) -> dict[str, Any]:
        """The applicant's features as ``{wire name: value}`` in model order (no ids)."""
        dumped = self.model_dump(by_alias=True)
        return {name: dumped[name] for name in self.applicant_schema.features}

    def to_row(self) -> list[float | None]:
        """The applicant as one row for the model: floats, category codes, None where missing."""
        return self.applicant_schema.row(self)

    def ids(self) -> dict[str, str]:
        """The applicant's id columns that were sent."""
        dumped = self.model_dump(by_alias=True)
        return {c: dumped[c] for c in self.applicant_schema.id_columns if dumped[c] is not None}


def _python_name(wire: str, attribute: str | None, j: int, taken: set[str]) -> str:
    if attribute:
        name = attribute
    else:
        name = re.sub(r"\W+", "_", wire).strip("_").lower() or f"feature_{j}"
        if not name[0].isalpha():
            name = f"f_{name}"
    if name in taken or name.startswith("model_") or hasattr(BaseModel, name):
        name = f"{name}_{j}"
    taken.add(name)
    return name


def _annotation(feature: Feature) -> Any:
    if feature.kind is Kind.CATEGORY:
        assert feature.categories is not None
        kind: Any = Annotated[
            Literal[tuple(feature.categories)],
            BeforeValidator(_category_text),
        ]
    else:
        bounds: dict[str, Any] = {}
        if feature.minimum is not None:
            bounds["ge"] = int(feature.minimum) if feature.kind is Kind.INTEGER else feature.minimum
        if feature.maximum is not None:
            bounds["le"] = int(feature.maximum) if feature.kind is Kind.INTEGER else feature.maximum
        base = int if feature.kind is Kind.INTEGER else float
        # Constraints before the BeforeValidator: pydantic then writes minimum/maximum into the
        # JSON schema (the other order leaks non-standard "ge"/"le" keys into the OpenAPI).
        kind = Annotated[base, Field(allow_inf_nan=False, **bounds), BeforeValidator(_reject_bool)]
    if feature.nullable:  # every nullable feature reads a missing cell as null
        return Annotated[kind | None, BeforeValidator(_missing_as_null)]
    return kind


class ApplicantSchema:
    """A :class:`DataSchema` compiled for use: the applicant model, rules, encodings, reasons."""

    def __init__(self, schema: DataSchema) -> None:
        self.schema = schema
        self.name = schema.name
        self.target = schema.target.name
        self.target_label = schema.target.label
        self.features: tuple[str, ...] = tuple(f.name for f in schema.features)
        self.feature = {f.name: f for f in schema.features}
        self.id_columns: tuple[str, ...] = tuple(schema.id_columns)
        self.prohibited: tuple[str, ...] = tuple(p.name for p in schema.prohibited)
        self.nullable = frozenset(f.name for f in schema.features if f.nullable)
        self.integers = frozenset(f.name for f in schema.features if f.kind is Kind.INTEGER)
        self.categorical = frozenset(f.name for f in schema.features if f.kind is Kind.CATEGORY)
        #: Read and dropped wherever applicants are read: never features, never recorded.
        self.ignored: frozenset[str] = (
            INDEX_COLUMNS | {self.target} | set(schema.ignored_columns) | set(self.prohibited)
        ) - set(self.id_columns)
        self.descriptions = {f.name: f.description for f in schema.features}
        self.labels = {f.name: f.label or f.name for f in schema.features}
        self.age_feature: str | None = next((f.name for f in schema.features if f.age), None)
        self.codes: dict[str, dict[str, int]] = {
            f.name: {c: k for k, c in enumerate(f.categories or ())}
            for f in schema.features
            if f.kind is Kind.CATEGORY
        }
        self.rules: tuple[FieldRule, ...] = tuple(
            FieldRule(
                f.name,
                f.kind is Kind.INTEGER,
                -math.inf if f.minimum is None else f.minimum,
                math.inf if f.maximum is None else f.maximum,
                f.nullable,
                tuple(f.categories) if f.categories else None,
            )
            for f in schema.features
        )
        self.model = self._build_model()
        self.adapter: TypeAdapter[list[ApplicantBase]] = TypeAdapter(list[self.model])  # type: ignore[name-defined]
        self.attribute_by_name = {
            str(info.alias): attr for attr, info in self.model.model_fields.items()
        }
        #: Every key an applicant record may hold: wire names, attribute names, ids.
        self.known_keys = frozenset(self.features) | set(self.attribute_by_name.values()) | set(
            self.id_columns
        )
        self.by_lower = {name.lower(): name for name in (*self.features, *self.id_columns)}
        self._row_getters = [
            (self.attribute_by_name[f.name], self.codes.get(f.name)) for f in schema.features
        ]

    def _build_model(self) -> type[ApplicantBase]:
        taken: set[str] = set()
        fields: dict[str, Any] = {}
        for j, f in enumerate(self.schema.features):
            extra: dict[str, Any] = {}
            if f.example is not None:
                extra["examples"] = [f.example]
            fields[_python_name(f.name, f.attribute, j, taken)] = (
                _annotation(f),
                Field(alias=f.name, description=f.description, **extra),
            )
        for c in self.id_columns:
            fields[_python_name(c, None, len(fields), taken)] = (
                Annotated[str, BeforeValidator(_id_text), Field(pattern=ID_PATTERN)] | None,
                Field(default=None, alias=c, description="An id, carried into every output."),
            )
        model = create_model(
            "Applicant",
            __base__=ApplicantBase,
            __doc__=f"One applicant of {self.name}: the model's {len(self.features)} features.",
            **fields,
        )
        model.model_config["title"] = "Applicant"
        model.applicant_schema = self
        return model

    # -- rows for the model, and back ---------------------------------------------------------

    def row(self, applicant: ApplicantBase) -> list[float | None]:
        out: list[float | None] = []
        for attr, codes in self._row_getters:
            v = getattr(applicant, attr)
            out.append(None if v is None else float(codes[v] if codes is not None else v))
        return out

    def wire_value(self, feature: str, value: float | None) -> float | str | None:
        """A model input back as the applicant sent it (a category's text for its code)."""
        if value is None or value != value:
            return None
        codes = self.codes.get(feature)
        if codes is None:
            return value
        return self.schema.features[self.features.index(feature)].categories[int(value)]  # type: ignore[index]

    def wire_values(self, row: Sequence[float | None]) -> list[float | str | None]:
        return [self.wire_value(f, v) for f, v in zip(self.features, row, strict=True)]

    def document(self) -> dict[str, Any]:
        return schema_document(self.schema)

    def __reduce__(self) -> tuple[Any, tuple[DataSchema]]:
        # Pickled as its schema (the applicant model is a class built here, not importable):
        # scores and results that carry it pickle as they did before schemas travelled.
        return compile_schema, (self.schema,)


@cache
def _compiled(text: str) -> ApplicantSchema:
    return ApplicantSchema(DataSchema.model_validate_json(text))


def compile_schema(schema: DataSchema) -> ApplicantSchema:
    """The compiled view of ``schema``, built once per distinct schema in a process."""
    return _compiled(schema.model_dump_json())


def builtin_schema() -> ApplicantSchema:
    """The built-in Give Me Some Credit schema (``schemas/give-me-some-credit.json``)."""
    return compile_schema(load_schema(BUILTIN_SCHEMA_FILE))


def read_schema(path: str | Path) -> ApplicantSchema:
    """A schema file, read and compiled."""
    return compile_schema(load_schema(path))
