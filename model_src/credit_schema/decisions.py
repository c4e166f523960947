"""Decision bands: probability -> decision label (``approve:0.08,review:0.2,decline``).

One parser for the scoring API's ``DECISION_THRESHOLDS`` and the model report's
``--thresholds``: ``label:upper_bound`` pairs with increasing bounds (exclusive),
the last label taking every higher probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .text import text_problem

#: The header in which SageMaker hands InvokeEndpoint's ``CustomAttributes`` to the model.
CUSTOM_ATTRIBUTES_HEADER: Final = "X-Amzn-SageMaker-Custom-Attributes"
#: The custom attribute that carries the API's bands, so the model's answer (and with it the
#: data capture) records the decision as sent: ``decision_thresholds=approve:0.08,decline``.
THRESHOLDS_ATTRIBUTE: Final = "decision_thresholds"
#: The custom attribute that asks for explanations in another space than the model's
#: default: ``space=log_odds`` or ``space=probability``.
SPACE_ATTRIBUTE: Final = "space"
#: The custom attribute that explains against the training applicants scored just inside the
#: approval cutoff (the first band's bound) instead of the average one: ``reference=cutoff``.
REFERENCE_ATTRIBUTE: Final = "reference"


def custom_attribute(header: str | None, key: str) -> str | None:
    """``key``'s value in a ``CustomAttributes`` value (``;``-separated ``key=value``)."""
    for part in (header or "").split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None
_MAX_CUSTOM_ATTRIBUTES: Final = 1024  # InvokeEndpoint's limit: visible US-ASCII characters


@dataclass(frozen=True)
class DecisionBands:
    """Probability -> decision label. ``bounds[i]`` is the exclusive upper bound of ``labels[i]``."""

    labels: tuple[str, ...]
    bounds: tuple[float, ...]

    def text(self) -> str:
        """The bands as :meth:`parse` reads them (bounds written to round-trip exactly)."""
        pairs = [f"{label}:{bound!r}" for label, bound in zip(self.labels, self.bounds, strict=False)]
        return ",".join([*pairs, self.labels[-1]])

    def custom_attributes(self) -> str:
        """InvokeEndpoint's ``CustomAttributes`` carrying these bands (ValueError if they cannot)."""
        text = f"{THRESHOLDS_ATTRIBUTE}={self.text()}"
        plain = all(" " <= c <= "~" and c != ";" for c in text)
        if len(text) > _MAX_CUSTOM_ATTRIBUTES or not plain:
            raise ValueError(
                "labels must be plain ASCII without ';' and the bands at most "
                f"{_MAX_CUSTOM_ATTRIBUTES - len(THRESHOLDS_ATTRIBUTE) - 1} characters"
            )
        return text

    @classmethod
    def from_custom_attributes(cls, header: str | None) -> DecisionBands | None:
        """The bands in a ``CustomAttributes`` value (``;``-separated ``key=value``), if any."""
        value = custom_attribute(header, THRESHOLDS_ATTRIBUTE)
        return None if value is None else cls.parse(value)

    def decide(self, probability: float) -> str:
        for label, bound in zip(self.labels, self.bounds, strict=False):
            if probability < bound:
                return label
        return self.labels[-1]

    @classmethod
    def parse(cls, text: str) -> DecisionBands:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if len(parts) < 2:
            raise ValueError("needs at least two bands, e.g. 'approve:0.1,decline'")
        labels: list[str] = []
        bounds: list[float] = []
        for i, part in enumerate(parts):
            label, sep, bound = part.partition(":")
            label = label.strip()
            if not label:
                raise ValueError(f"band {i + 1} has no label")
            problem = text_problem(label)
            if problem:
                raise ValueError(f"band label {label!r} {problem}")
            labels.append(label)
            if i == len(parts) - 1:
                if sep:
                    raise ValueError(
                        "the last band takes every higher probability and has no bound"
                    )
                break
            try:
                value = float(bound)
            except ValueError:
                raise ValueError(f"band {label!r} needs 'label:upper_bound'") from None
            if not (0.0 < value <= 1.0) or (bounds and value <= bounds[-1]):
                raise ValueError("bounds must be increasing probabilities in (0, 1]")
            bounds.append(value)
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be distinct")
        return cls(tuple(labels), tuple(bounds))
