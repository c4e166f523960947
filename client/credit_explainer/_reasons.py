"""Reason codes: the principal reasons behind a high-risk score, in plain language.

US lenders must give an applicant they turn down (ECOA / Regulation B, and
FCRA for scores) a statement of the specific *principal* reasons for the
action; the official staff commentary says more than four reasons is unlikely
to be helpful. :class:`ReasonCodes` turns an explanation into those reasons: the
features whose SHAP values raised the risk the most, mapped to texts such as
"Proportion of balances to credit limits is too high".

The default texts cover the model's 10 features; override any of them::

    codes = ReasonCodes({"DebtRatio": ("DR", "Debts too high for your income")}, cutoff=0.2)
    codes.for_score(score)

A note on age: Regulation B allows age in an empirically derived, statistically
sound scoring system provided the age of an elderly applicant is not assigned a
negative factor; review the ``age`` text and your use of it with counsel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple

from credit_schema import FEATURES, Contribution

from ._exceptions import UsageError

if TYPE_CHECKING:
    from ._models import Score

__all__ = [
    "DEFAULT_MAX_REASONS",
    "DEFAULT_REASONS",
    "DEFAULT_REASONS_WHEN_MISSING",
    "Reason",
    "ReasonCodes",
    "ReasonText",
]

#: Regulation B's commentary: no more than four principal reasons.
DEFAULT_MAX_REASONS: Final = 4


class ReasonText(NamedTuple):
    """A reason's stable machine code and the sentence shown to the applicant."""

    code: str
    text: str


#: Feature -> reason when the feature raised the risk.
DEFAULT_REASONS: Final[Mapping[str, ReasonText]] = {
    "RevolvingUtilizationOfUnsecuredLines": ReasonText(
        "revolving_utilization", "Proportion of balances to credit limits is too high"
    ),
    "age": ReasonText("age", "Applicant's age, as weighed by the scoring model"),
    "NumberOfTime30-59DaysPastDueNotWorse": ReasonText(
        "delinquency_30_59", "Payments 30-59 days past due in the last two years"
    ),
    "DebtRatio": ReasonText("debt_ratio", "Debt obligations are too high relative to income"),
    "MonthlyIncome": ReasonText("income", "Income insufficient for the credit requested"),
    "NumberOfOpenCreditLinesAndLoans": ReasonText(
        "open_accounts", "Number of open credit lines and loans"
    ),
    "NumberOfTimes90DaysLate": ReasonText(
        "delinquency_90", "Serious delinquency: payments 90 days or more past due"
    ),
    "NumberRealEstateLoansOrLines": ReasonText(
        "real_estate_loans", "Number of real estate loans or lines of credit"
    ),
    "NumberOfTime60-89DaysPastDueNotWorse": ReasonText(
        "delinquency_60_89", "Payments 60-89 days past due in the last two years"
    ),
    "NumberOfDependents": ReasonText("dependents", "Number of dependents"),
}

#: Feature -> reason when the feature was missing (null) and the imputed value raised the risk.
DEFAULT_REASONS_WHEN_MISSING: Final[Mapping[str, ReasonText]] = {
    "MonthlyIncome": ReasonText("income_unknown", "Income not provided or not verified"),
    "NumberOfDependents": ReasonText("dependents_unknown", "Number of dependents not provided"),
}

assert set(DEFAULT_REASONS) == set(FEATURES), "a default reason for every feature"


@dataclass(frozen=True)
class Reason:
    """One principal reason: code, text, and the contribution behind it."""

    code: str
    text: str
    feature: str
    value: float | None
    shap_value: float

    def __str__(self) -> str:
        return self.text


def _as_text(feature: str, value: ReasonText | tuple[str, str] | str) -> ReasonText:
    if isinstance(value, str):
        return ReasonText(feature, value)
    code, text = value
    return ReasonText(code, text)


class ReasonCodes:
    """Map explanations to up to ``max_reasons`` principal reasons.

    ``reasons`` / ``reasons_when_missing`` override the defaults per feature
    (a text, or a ``(code, text)`` pair); features left out keep their default.
    ``cutoff``: only scores with probability at or above it get reasons (None:
    every score). Features mapped to the same code count once.
    """

    def __init__(
        self,
        reasons: Mapping[str, ReasonText | tuple[str, str] | str] | None = None,
        *,
        reasons_when_missing: Mapping[str, ReasonText | tuple[str, str] | str] | None = None,
        cutoff: float | None = None,
        max_reasons: int = DEFAULT_MAX_REASONS,
    ) -> None:
        unknown = set(reasons or {}) | set(reasons_when_missing or {})
        unknown -= set(FEATURES)
        if unknown:
            raise UsageError(f"reasons given for unknown features: {sorted(unknown)}")
        if max_reasons < 1:
            raise UsageError("max_reasons must be at least 1")
        if cutoff is not None and not (0.0 <= cutoff <= 1.0):
            raise UsageError("cutoff is a probability in [0, 1]")
        self.reasons: dict[str, ReasonText] = dict(DEFAULT_REASONS)
        self.reasons.update({f: _as_text(f, t) for f, t in (reasons or {}).items()})
        self.reasons_when_missing: dict[str, ReasonText] = dict(DEFAULT_REASONS_WHEN_MISSING)
        self.reasons_when_missing.update(
            {f: _as_text(f, t) for f, t in (reasons_when_missing or {}).items()}
        )
        self.cutoff = cutoff
        self.max_reasons = max_reasons

    def applies_to(self, probability: float) -> bool:
        """Whether a score with this probability gets reasons (at or above the cut-off)."""
        return self.cutoff is None or probability >= self.cutoff

    def for_contributions(
        self, probability: float, contributions: Iterable[Contribution]
    ) -> list[Reason]:
        if not self.applies_to(probability):
            return []
        ranked = sorted(
            (c for c in contributions if c.shap_value > 0), key=lambda c: -abs(c.shap_value)
        )
        out: list[Reason] = []
        seen: set[str] = set()
        for c in ranked:
            missing = c.value is None or (isinstance(c.value, float) and math.isnan(c.value))
            text = (missing and self.reasons_when_missing.get(c.feature)) or self.reasons[c.feature]
            if text.code in seen:
                continue
            seen.add(text.code)
            out.append(Reason(text.code, text.text, c.feature, c.value, c.shap_value))
            if len(out) == self.max_reasons:
                break
        return out

    def for_score(self, score: Score) -> list[Reason]:
        """The principal reasons for one score (empty below the cut-off)."""
        return self.for_contributions(score.probability, score.contributions)
