"""Reason codes: the principal reasons behind a high-risk score, in plain language.

US lenders must give an applicant they turn down (ECOA / Regulation B, and
FCRA for scores) a statement of the specific *principal* reasons for the
action; the official staff commentary says more than four reasons is unlikely
to be helpful. :class:`ReasonCodes` turns an explanation into those reasons: the
features whose SHAP values raised the risk the most, mapped to the texts of the
model's schema (each feature's ``reason``, and ``reason_when_missing``).

The default texts are the schema's (``schema=``: the one the API serves,
``client.schema()``; the built-in schema when none is given); override any of them::

    codes = ReasonCodes({"housing": ("HS", "Housing situation")}, cutoff=0.2, schema=schema)
    codes.for_score(score)

The rule is :mod:`credit_schema.reasons` (the model's validation report uses the
same copy). A note on age: Regulation B allows age in an empirically derived,
statistically sound scoring system provided the age of an elderly applicant is not
assigned a negative factor, so the schema's age feature is never a reason for an
applicant aged 62 or over; review its text and your use of it with counsel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from credit_schema import BUILTIN, ApplicantSchema, Contribution
from credit_schema import reasons as rule
from credit_schema.reasons import ReasonText, registry_texts

from ._exceptions import UsageError

if TYPE_CHECKING:
    from ._models import Score

__all__ = [
    "DEFAULT_MAX_REASONS",
    "DEFAULT_MIN_CONTRIBUTION",
    "DEFAULT_REASONS",
    "DEFAULT_REASONS_WHEN_MISSING",
    "REGISTRY_VERSION",
    "Reason",
    "ReasonCodes",
    "ReasonText",
    "reason_columns",
]

#: Regulation B's commentary: no more than four principal reasons.
DEFAULT_MAX_REASONS: Final = rule.MAX_REASONS
#: The smallest rise in probability that counts as a reason.
DEFAULT_MIN_CONTRIBUTION: Final = rule.MIN_CONTRIBUTION
#: The built-in schema's feature -> reason when the feature raised the risk.
DEFAULT_REASONS: Final = rule.REASONS
#: The built-in schema's feature -> reason when the feature was missing (null) and the imputed
#: value raised the risk.
DEFAULT_REASONS_WHEN_MISSING: Final = rule.REASONS_WHEN_MISSING
REGISTRY_VERSION: Final = rule.REGISTRY_VERSION


@dataclass(frozen=True)
class Reason:
    """One principal reason: code, text, and the contribution behind it."""

    code: str
    text: str
    feature: str
    value: float | str | None
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

    ``reasons`` / ``reasons_when_missing`` override ``schema``'s texts per feature
    (a text, or a ``(code, text)`` pair); features left out keep the schema's.
    ``cutoff``: only scores with probability at or above it get reasons (None:
    every score). The rule itself is :func:`credit_schema.reasons.principal_reasons`:
    only contributions that raised the probability by at least ``min_contribution``,
    features mapped to the same code count once, and never age for an applicant
    aged 62 or over.
    """

    def __init__(
        self,
        reasons: Mapping[str, ReasonText | tuple[str, str] | str] | None = None,
        *,
        reasons_when_missing: Mapping[str, ReasonText | tuple[str, str] | str] | None = None,
        cutoff: float | None = None,
        max_reasons: int = DEFAULT_MAX_REASONS,
        min_contribution: float = DEFAULT_MIN_CONTRIBUTION,
        schema: ApplicantSchema = BUILTIN,
    ) -> None:
        unknown = set(reasons or {}) | set(reasons_when_missing or {})
        unknown -= set(schema.features)
        if unknown:
            raise UsageError(f"reasons given for unknown features: {sorted(unknown)}")
        if max_reasons < 1:
            raise UsageError("max_reasons must be at least 1")
        if cutoff is not None and not (0.0 <= cutoff <= 1.0):
            raise UsageError("cutoff is a probability in [0, 1]")
        defaults, defaults_when_missing = registry_texts(schema)
        self.age_feature = schema.age_feature
        self.reasons: dict[str, ReasonText] = dict(defaults)
        self.reasons.update({f: _as_text(f, t) for f, t in (reasons or {}).items()})
        self.reasons_when_missing: dict[str, ReasonText] = dict(defaults_when_missing)
        self.reasons_when_missing.update(
            {f: _as_text(f, t) for f, t in (reasons_when_missing or {}).items()}
        )
        if not min_contribution >= 0.0:
            raise ValueError("min_contribution must be at least 0")
        self.cutoff = cutoff
        self.max_reasons = max_reasons
        self.min_contribution = min_contribution

    def applies_to(self, probability: float) -> bool:
        """Whether a score with this probability gets reasons (at or above the cut-off)."""
        return self.cutoff is None or probability >= self.cutoff

    def for_contributions(
        self, probability: float, contributions: Iterable[Contribution]
    ) -> list[Reason]:
        if not self.applies_to(probability):
            return []
        found = rule.principal_reasons(
            ((c.feature, c.value, c.shap_value) for c in contributions),
            reasons=self.reasons,
            reasons_when_missing=self.reasons_when_missing,
            max_reasons=self.max_reasons,
            min_contribution=self.min_contribution,
            age_feature=self.age_feature,
        )
        return [Reason(r.code, r.text, r.feature, r.value, r.shap_value) for r in found]

    def for_score(self, score: Score) -> list[Reason]:
        """The principal reasons for one score (empty below the cut-off)."""
        return self.for_contributions(score.probability, score.contributions)


def reason_columns(reasons: Sequence[Reason], max_reasons: int) -> dict[str, str]:
    """Reasons as the columns of every table of scores: their codes, then one text per reason."""
    texts = [r.text for r in reasons[:max_reasons]]
    texts += [""] * (max_reasons - len(texts))
    return {
        "reason_codes": ";".join(r.code for r in reasons[:max_reasons]),
        **{f"reason_{i + 1}": text for i, text in enumerate(texts)},
    }
