"""The applicant: the one definition of the model's inputs.

Field aliases are the Give Me Some Credit column names, which are also the wire
names everywhere (model server, scoring API, client, CSV files). Python code may
use the snake_case attribute names when constructing an ``Applicant``.

This module imports nothing but pydantic and the standard library: it ships in
the Lambda bundle (as a layer), in the client and in the model container.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

TARGET: Final = "SeriousDlqin2yrs"
#: Names pandas and the Kaggle files give an index column (``""`` and ``Unnamed: 0`` for
#: cs-training.csv's unnamed first column).
INDEX_COLUMNS: Final[frozenset[str]] = frozenset({"", "Unnamed: 0", "index", "Id", "id"})
#: Not features, ignored wherever an applicant is read (API, client, CLI; JSON and CSV):
#: the data set's own files carry them, and neither can be mistaken for a feature.
IGNORED_FIELDS: Final[frozenset[str]] = INDEX_COLUMNS | {TARGET}

#: Feature names in model order (the column order of the Kaggle ``cs-training.csv``).
FEATURES: Final[tuple[str, ...]] = (
    "RevolvingUtilizationOfUnsecuredLines",
    "age",
    "NumberOfTime30-59DaysPastDueNotWorse",
    "DebtRatio",
    "MonthlyIncome",
    "NumberOfOpenCreditLinesAndLoans",
    "NumberOfTimes90DaysLate",
    "NumberRealEstateLoansOrLines",
    "NumberOfTime60-89DaysPastDueNotWorse",
    "NumberOfDependents",
)

#: Features that may be null (missing in the source data; the model imputes them).
NULLABLE_FEATURES: Final[frozenset[str]] = frozenset({"MonthlyIncome", "NumberOfDependents"})

#: Features that are counts (non-negative integers).
COUNT_FEATURES: Final[frozenset[str]] = frozenset(
    {
        "age",
        "NumberOfTime30-59DaysPastDueNotWorse",
        "NumberOfOpenCreditLinesAndLoans",
        "NumberOfTimes90DaysLate",
        "NumberRealEstateLoansOrLines",
        "NumberOfTime60-89DaysPastDueNotWorse",
        "NumberOfDependents",
    }
)

# Plain-language descriptions, used in the OpenAPI document and reason codes.
DESCRIPTIONS: Final[dict[str, str]] = {
    "RevolvingUtilizationOfUnsecuredLines": (
        "Total balance on credit cards and personal lines of credit (excluding real estate and "
        "instalment debt) divided by the sum of credit limits."
    ),
    "age": "Age of the borrower in years.",
    "NumberOfTime30-59DaysPastDueNotWorse": (
        "Number of times the borrower has been 30-59 days past due (but no worse) in the last "
        "2 years. 96 and 98 are special codes in the source data."
    ),
    "DebtRatio": "Monthly debt payments, alimony and living costs divided by monthly gross income.",
    "MonthlyIncome": "Monthly gross income; null when unknown (the model imputes it).",
    "NumberOfOpenCreditLinesAndLoans": (
        "Number of open loans (instalment, e.g. car loan or mortgage) and lines of credit "
        "(e.g. credit cards)."
    ),
    "NumberOfTimes90DaysLate": "Number of times the borrower has been 90 days or more past due.",
    "NumberRealEstateLoansOrLines": (
        "Number of mortgage and real estate loans, including home equity lines of credit."
    ),
    "NumberOfTime60-89DaysPastDueNotWorse": (
        "Number of times the borrower has been 60-89 days past due (but no worse) in the last "
        "2 years. 96 and 98 are special codes in the source data."
    ),
    "NumberOfDependents": (
        "Number of dependents in the family, excluding the borrower; null when unknown "
        "(the model imputes it)."
    ),
}

#: Short plain-language names, for charts and texts a loan officer reads.
FEATURE_LABELS: Final[dict[str, str]] = {
    "RevolvingUtilizationOfUnsecuredLines": "Credit card and credit line use",
    "age": "Age",
    "NumberOfTime30-59DaysPastDueNotWorse": "Times 30-59 days late (2 years)",
    "DebtRatio": "Debt payments to income",
    "MonthlyIncome": "Monthly income",
    "NumberOfOpenCreditLinesAndLoans": "Open credit lines and loans",
    "NumberOfTimes90DaysLate": "Times 90+ days late",
    "NumberRealEstateLoansOrLines": "Real estate loans and lines",
    "NumberOfTime60-89DaysPastDueNotWorse": "Times 60-89 days late (2 years)",
    "NumberOfDependents": "Dependents",
}
#: What the model predicts, in words: the probability of this outcome.
TARGET_LABEL: Final = "serious delinquency within 2 years"


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
    # pydantic's lax mode would read true as 1; a boolean is never a valid count or ratio.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


# Upper bounds are far above anything in the source data (they exist to refuse
# absurd values such as 1e300 before they reach the model), not business rules.
MAX_COUNT: Final = 1_000
MAX_RATIO: Final = 10_000_000.0
MAX_INCOME: Final = 1_000_000_000.0

# Constraints come before the BeforeValidator: in this order pydantic writes them to the
# JSON schema as minimum/maximum (the other order leaks non-standard "ge"/"le" keys into the
# OpenAPI document, and clients and fuzzers generating from it miss every range).
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_reject_bool)]
Ratio = Annotated[
    float, Field(ge=0.0, le=MAX_RATIO, allow_inf_nan=False), BeforeValidator(_reject_bool)
]
_T = TypeVar("_T")
#: A feature that may be null: the one spelling of nullable, so every nullable feature reads a
#: missing cell as null.
Nullable = Annotated[_T | None, BeforeValidator(_missing_as_null)]


class Applicant(BaseModel):
    """One loan applicant: the model's 10 features, validated.

    Unknown or misspelt fields are rejected (a silently ignored ``Age`` would
    impute the age and change the decision); the target and an index column
    (:data:`IGNORED_FIELDS`) are ignored. ``MonthlyIncome`` and
    ``NumberOfDependents`` may be null but must be present.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        title="Applicant",
    )

    revolving_utilization: Ratio = Field(
        alias="RevolvingUtilizationOfUnsecuredLines",
        description=DESCRIPTIONS["RevolvingUtilizationOfUnsecuredLines"],
        examples=[0.3],
    )
    age: Annotated[int, Field(ge=18, le=120), BeforeValidator(_reject_bool)] = Field(
        alias="age", description=DESCRIPTIONS["age"], examples=[45]
    )
    past_due_30_59: Count = Field(
        alias="NumberOfTime30-59DaysPastDueNotWorse",
        description=DESCRIPTIONS["NumberOfTime30-59DaysPastDueNotWorse"],
        examples=[0],
    )
    debt_ratio: Ratio = Field(
        alias="DebtRatio", description=DESCRIPTIONS["DebtRatio"], examples=[0.35]
    )
    monthly_income: Nullable[
        Annotated[
            float,
            Field(ge=0.0, le=MAX_INCOME, allow_inf_nan=False),
            BeforeValidator(_reject_bool),
        ]
    ] = Field(alias="MonthlyIncome", description=DESCRIPTIONS["MonthlyIncome"], examples=[5400.0])
    open_credit_lines: Count = Field(
        alias="NumberOfOpenCreditLinesAndLoans",
        description=DESCRIPTIONS["NumberOfOpenCreditLinesAndLoans"],
        examples=[8],
    )
    times_90_days_late: Count = Field(
        alias="NumberOfTimes90DaysLate",
        description=DESCRIPTIONS["NumberOfTimes90DaysLate"],
        examples=[0],
    )
    real_estate_loans: Count = Field(
        alias="NumberRealEstateLoansOrLines",
        description=DESCRIPTIONS["NumberRealEstateLoansOrLines"],
        examples=[1],
    )
    past_due_60_89: Count = Field(
        alias="NumberOfTime60-89DaysPastDueNotWorse",
        description=DESCRIPTIONS["NumberOfTime60-89DaysPastDueNotWorse"],
        examples=[0],
    )
    dependents: Nullable[Count] = Field(
        alias="NumberOfDependents", description=DESCRIPTIONS["NumberOfDependents"], examples=[2]
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        if isinstance(data, dict) and not IGNORED_FIELDS.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in IGNORED_FIELDS}
        return data

    def to_features(self) -> dict[str, float | int | None]:
        """The applicant as ``{wire name: value}`` in model order."""
        dumped = self.model_dump(by_alias=True)
        return {name: dumped[name] for name in FEATURES}

    def to_row(self) -> list[float | None]:
        """The applicant as one row of floats in model order (None where missing)."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [None if v is None else float(v) for v in values]


#: pydantic field name -> wire name, and back.
ALIAS_BY_FIELD: Final[dict[str, str]] = {
    name: str(info.alias) for name, info in Applicant.model_fields.items()
}
FIELD_BY_ALIAS: Final[dict[str, str]] = {alias: name for name, alias in ALIAS_BY_FIELD.items()}

assert tuple(ALIAS_BY_FIELD.values()) == FEATURES, "Applicant fields must follow FEATURES order"
assert set(FEATURE_LABELS) == set(FEATURES) == set(DESCRIPTIONS), "a label for every feature"


class FieldRule(NamedTuple):
    """One field's constraints, read off the :class:`Applicant` model's JSON schema."""

    name: str  #: wire name
    integer: bool  #: a count: whole numbers only
    lower: float
    upper: float
    nullable: bool


def _field_rules() -> tuple[FieldRule, ...]:
    properties = Applicant.model_json_schema(by_alias=True)["properties"]
    rules = []
    for name in FEATURES:
        options = properties[name].get("anyOf", [properties[name]])
        (kind,) = [o for o in options if o.get("type") != "null"]
        rules.append(
            FieldRule(
                name,
                kind["type"] == "integer",
                float(kind["minimum"]),
                float(kind["maximum"]),
                len(options) > 1,
            )
        )
    return tuple(rules)


#: The applicant rules as data, in model order, for checks that must run in bulk (the model
#: server's large batches): derived from :class:`Applicant`, never stated a second time.
FIELD_RULES: Final = _field_rules()
