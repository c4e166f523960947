"""``monitor --outcomes FILE``: observed outcomes joined to the recorded decisions.

The file is a CSV with ``request_id``, ``index`` (the applicant's position in its request; may be
left out or empty for requests of one applicant) and the model's target column holding 0 or 1.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from credit_schema.schema import Target

REQUEST_ID = "request_id"
INDEX = "index"


def read_outcomes(path: str | Path, target: Target) -> dict[tuple[str, int | None], int]:
    """``(request_id, index or None) -> outcome`` from the model's target column, read by its
    schema's rule (its risk label, or 0 and 1); ValueError naming the file and line at fault."""
    label = target
    target_name = target.name
    found: dict[tuple[str, int | None], int] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (REQUEST_ID, target_name) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)} (header: request_id, "
                             f"index, {target_name})")  # fmt: skip
        for line, row in enumerate(reader, start=2):
            where = f"{path} line {line}"
            index_text = (row.get(INDEX) or "").strip()
            try:
                index = int(index_text) if index_text else None
            except ValueError:
                raise ValueError(f"{where}: {INDEX} must be a whole number") from None
            value = label.outcome(row.get(target_name) or "")
            if value is None:
                raise ValueError(f"{where}: {target_name} must be {_labels(label)}")
            key = ((row.get(REQUEST_ID) or "").strip(), index)
            if not key[0]:
                raise ValueError(f"{where}: empty {REQUEST_ID}")
            if key in found:
                raise ValueError(f"{where}: a second outcome for request {key[0]} index {index}")
            found[key] = value
    return found


def _labels(target: Target) -> str:
    return "0 or 1" if isinstance(target.positive, int) else f"a label ({target.positive!r}: risk)"


class OutcomeError(ValueError):
    """An outcome that cannot be joined (the message says which and why)."""


class Joined:
    """Outcomes joined, decision by decision (:meth:`add`): each joined applicant's probability,
    outcome and period; memory grows with the outcomes, not with the decisions."""

    def __init__(self, outcomes: dict[tuple[str, int | None], int]) -> None:
        self.outcomes = outcomes
        self.probability: list[float] = []
        self.observed: list[int] = []
        self.periods: list[str] = []

    def add(
        self, request_id: str, scored: Sequence[tuple[int, float]], period: str, *, alone: bool
    ) -> None:
        """The applicants of one recorded request (or of one part of it), as (index in the
        request, probability); ``alone``: the request had one applicant, so ``index`` may be
        left out. A request of several needs ``index``."""
        if not alone and (request_id, None) in self.outcomes:
            raise OutcomeError(
                f"request {request_id} has several applicants: give each outcome's {INDEX}"
            )
        for i, p in scored:
            key = (request_id, i if (request_id, i) in self.outcomes or not alone else None)
            if key in self.outcomes:
                self.probability.append(p)
                self.observed.append(self.outcomes[key])
                self.periods.append(period)

    @property
    def unmatched(self) -> int:
        """Outcomes that matched no applicant added."""
        return len(self.outcomes) - len(self.observed)
