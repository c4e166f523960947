"""``monitor --outcomes FILE``: observed outcomes joined to the recorded decisions.

The file is a CSV with ``request_id``, ``index`` (the applicant's position in its request; may be
left out or empty for requests of one applicant) and the model's target column holding 0 or 1.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REQUEST_ID = "request_id"
INDEX = "index"


class _Recorded(Protocol):
    """What the join reads of a recorded decision."""

    @property
    def inference_id(self) -> str: ...
    @property
    def time(self) -> str: ...
    @property
    def applicants(self) -> Sequence[object]: ...


@dataclass
class Joined:
    """Positions (in the decisions' applicant order) with an outcome, the outcomes, the periods."""

    rows: list[int]
    outcomes: list[int]
    periods: list[str]
    unmatched: int


def read_outcomes(path: str | Path, target: str) -> dict[tuple[str, int | None], int]:
    """``(request_id, index or None) -> outcome`` from the column ``target``; ValueError naming
    the file and line at fault."""
    found: dict[tuple[str, int | None], int] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (REQUEST_ID, target) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)} (header: request_id, "
                             f"index, {target})")  # fmt: skip
        for line, row in enumerate(reader, start=2):
            where = f"{path} line {line}"
            index_text = (row.get(INDEX) or "").strip()
            try:
                index = int(index_text) if index_text else None
            except ValueError:
                raise ValueError(f"{where}: {INDEX} must be a whole number") from None
            value = (row.get(target) or "").strip()
            if value not in ("0", "1"):
                raise ValueError(f"{where}: {target} must be 0 or 1")
            key = ((row.get(REQUEST_ID) or "").strip(), index)
            if not key[0]:
                raise ValueError(f"{where}: empty {REQUEST_ID}")
            if key in found:
                raise ValueError(f"{where}: a second outcome for request {key[0]} index {index}")
            found[key] = int(value)
    return found


def join(
    decisions: Iterable[_Recorded],
    outcomes: dict[tuple[str, int | None], int],
    period: Callable[[str], str],
) -> Joined:
    """Each recorded applicant's outcome where the file has one, and the period of its decision
    (``period`` of the decision's time). A request of several applicants needs ``index``."""
    rows: list[int] = []
    observed: list[int] = []
    periods: list[str] = []
    used = 0
    position = 0
    for d in decisions:
        n = len(d.applicants)
        if n > 1 and (d.inference_id, None) in outcomes:
            raise ValueError(
                f"request {d.inference_id} has {n} applicants: give each outcome's {INDEX}"
            )
        for i in range(n):
            key = (d.inference_id, i if (d.inference_id, i) in outcomes or n > 1 else None)
            if key in outcomes:
                rows.append(position)
                observed.append(outcomes[key])
                periods.append(period(d.time))
                used += 1
            position += 1
    return Joined(rows, observed, periods, len(outcomes) - used)
