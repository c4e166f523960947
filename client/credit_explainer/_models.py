"""What the client returns: :class:`Score` for one applicant, :class:`ScoreResults` for many.

:class:`Score` is the API's :class:`credit_schema.ScoredApplicant` (probability,
base value, ranked contributions, decision band, the applicant's ids) plus the
model version and request id of the response it came in, with helpers to read
it; feature order, texts and labels are those of the schema the API served.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from credit_schema import (
    ADDITIVITY_TOLERANCE,
    BUILTIN,
    ApplicantSchema,
    Contribution,
    ErrorDetail,
    ScoredApplicant,
    additivity_target,
)
from pydantic import PrivateAttr

from ._config import install_hint
from ._exceptions import InconsistentExplanationError, MissingDependencyError
from ._reasons import DEFAULT_MAX_REASONS, Reason, ReasonCodes, reason_columns

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["ADDITIVITY_TOLERANCE", "Failure", "Score", "ScoreResults"]


def _reason_limit(reason_codes: ReasonCodes | None) -> int:
    return DEFAULT_MAX_REASONS if reason_codes is None else reason_codes.max_reasons


class Score(ScoredApplicant):
    """One applicant's score and its exact SHAP explanation.

    ``contributions`` are ranked by absolute SHAP value, largest first; ``index``
    is the applicant's position in what was passed to ``score``/``score_many``.
    """

    model_version: str
    request_id: str
    reason_codes_version: str | None = None
    # The schema the API served (feature order, reason texts, labels); the built-in by default.
    _schema: ApplicantSchema | None = PrivateAttr(default=None)

    @property
    def data_schema(self) -> ApplicantSchema:
        """The schema of the model that scored this applicant (``GET /schema``)."""
        return self._schema or BUILTIN

    # -- reading the explanation -------------------------------------------------------------

    def top(self, n: int = 3) -> list[Contribution]:
        """The ``n`` contributions with the largest absolute SHAP value."""
        return list(self.contributions[: max(0, n)])

    def increasing_risk(self) -> list[Contribution]:
        """Contributions that raised the probability, largest first."""
        return [c for c in self.contributions if c.shap_value > 0]

    def decreasing_risk(self) -> list[Contribution]:
        """Contributions that lowered the probability, largest (most negative) first."""
        return [c for c in self.contributions if c.shap_value < 0]

    @property
    def shap_values(self) -> dict[str, float]:
        """Feature -> SHAP value, in model feature order."""
        by_feature = {c.feature: c.shap_value for c in self.contributions}
        return {f: by_feature[f] for f in self.data_schema.features if f in by_feature}

    @property
    def inputs(self) -> dict[str, float | str | None]:
        """Feature -> the applicant's input value as the API saw it, in model feature order."""
        by_feature = {c.feature: c.value for c in self.contributions}
        return {f: by_feature[f] for f in self.data_schema.features if f in by_feature}

    @property
    def additivity_error(self) -> float:
        """``|base_value + sum(SHAP) - probability|`` (summed with ``math.fsum``), the
        probability taken as log-odds where the explanation's ``space`` is ``log_odds``."""
        total = math.fsum([self.base_value, *(c.shap_value for c in self.contributions)])
        return abs(total - additivity_target(self.probability, self.space))

    def is_additive(self, tolerance: float = ADDITIVITY_TOLERANCE) -> bool:
        """Whether base value + sum of SHAP values equals the probability within ``tolerance``."""
        return self.additivity_error <= tolerance

    def check(self, tolerance: float = ADDITIVITY_TOLERANCE) -> Score:
        """Raise :class:`InconsistentExplanationError` unless the explanation adds up; else self."""
        err = self.additivity_error
        if not err <= tolerance:
            raise InconsistentExplanationError(
                f"applicant {self.index}: base value + SHAP values differ from the probability "
                f"by {err:.3g} (tolerance {tolerance:g})"
            )
        return self

    # -- reasons, text, plots ----------------------------------------------------------------

    def reasons(
        self,
        *,
        cutoff: float | None = None,
        max_reasons: int = DEFAULT_MAX_REASONS,
        reason_codes: ReasonCodes | None = None,
    ) -> list[Reason]:
        """Principal reasons (adverse-action style) when the probability is at or above ``cutoff``.

        Precedence: ``reason_codes`` given -> computed here with those texts, cut-off and
        count; else the reasons the model server sent (what the applicant is told, from the
        server's registry, see ``reason_codes_version``), cut to ``cutoff`` and ``max_reasons``;
        else (a server that sends none) computed here from the schema's reason texts.
        """
        codes = reason_codes or ReasonCodes(
            cutoff=cutoff, max_reasons=max_reasons, schema=self.data_schema
        )  # checks both
        if reason_codes is None and self.principal_reasons is not None:
            if not codes.applies_to(self.probability):
                return []
            values = self.inputs
            return [
                Reason(r.code, r.text, r.feature, values.get(r.feature), r.shap_value)
                for r in self.principal_reasons[: codes.max_reasons]
            ]
        return codes.for_score(self)

    def to_text(self, *, max_features: int | None = None, ascii: bool = False) -> str:
        """A readable rendering for terminals (see :func:`credit_explainer.render_text`)."""
        from ._render import render_text

        return render_text(self, max_features=max_features, ascii=ascii)

    def __str__(self) -> str:
        return self.to_text()

    def plot(
        self,
        path: str | Path | None = None,
        *,
        kind: Literal["waterfall", "bar"] = "waterfall",
        max_features: int | None = None,
        title: str | None = None,
    ) -> Figure:
        """A waterfall (base value -> probability) or bar chart of the contributions.

        Needs the ``plot`` extra (matplotlib). Saved as PNG when ``path`` is given.
        """
        from ._plot import plot_score

        return plot_score(self, path, kind=kind, max_features=max_features, title=title)

    def to_record(self, *, reason_codes: ReasonCodes | None = None) -> dict[str, Any]:
        """One flat row: ids, probability, decision, base value, versions, reasons, a SHAP column
        per feature.

        The reasons are :meth:`reasons`' (the server's, unless ``reason_codes`` is given), as
        ``reason_codes`` and ``reason_1`` ... ``reason_N``: the columns ``credit-explainer score``
        writes.
        """
        row: dict[str, Any] = {
            "index": self.index,
            **(self.ids or {}),
            "probability": self.probability,
            "decision": self.decision,
            "base_value": self.base_value,
            "model_version": self.model_version,
            "request_id": self.request_id,
        }
        reasons = self.reasons(reason_codes=reason_codes)
        row.update(reason_columns(reasons, _reason_limit(reason_codes)))
        for name, value in self.shap_values.items():
            row[f"shap_{name}"] = value
        return row


@dataclass(frozen=True)
class Failure:
    """An applicant ``score_many`` could not score, and why."""

    index: int
    message: str
    errors: list[ErrorDetail] = field(default_factory=list)
    status: int | None = None
    code: str | None = None
    ids: dict[str, str] | None = None  #: the applicant's id columns, as given

    def to_record(self) -> dict[str, Any]:
        return {"index": self.index, **(self.ids or {}), "error": self.message, "status": self.status}


class ScoreResults(Sequence[Score | Failure]):
    """The outcome of ``score_many``, in input order: a :class:`Score` or a :class:`Failure` each.

    With ``on_error="raise"`` (the default) there are no failures. ``labels``
    are the input's index labels (a DataFrame's index), used by :meth:`to_dataframe`;
    ``schema`` the API's (its id columns and features name the frame's columns).
    """

    def __init__(
        self,
        items: Sequence[Score | Failure],
        labels: Sequence[Any] | None = None,
        *,
        schema: ApplicantSchema = BUILTIN,
    ):
        self._items = list(items)
        self.schema = schema
        self.labels: list[Any] = list(labels) if labels is not None else list(range(len(items)))
        if len(self.labels) != len(self._items):
            raise ValueError("one label per item")

    @overload
    def __getitem__(self, i: int) -> Score | Failure: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Score | Failure]: ...
    def __getitem__(self, i: int | slice) -> Score | Failure | Sequence[Score | Failure]:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Score | Failure]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<ScoreResults scored={len(self.scores)} failed={len(self.failures)}>"

    @property
    def scores(self) -> list[Score]:
        """The successful scores, in input order."""
        return [s for s in self._items if isinstance(s, Score)]

    @property
    def failures(self) -> list[Failure]:
        """The applicants that could not be scored, in input order."""
        return [f for f in self._items if isinstance(f, Failure)]

    @property
    def ok(self) -> bool:
        return not any(isinstance(s, Failure) for s in self._items)

    def probabilities(self) -> list[float | None]:
        """Probability per input (None where it failed)."""
        return [s.probability if isinstance(s, Score) else None for s in self._items]

    def to_records(self, *, reason_codes: ReasonCodes | None = None) -> list[dict[str, Any]]:
        """One flat dict per input (see :meth:`Score.to_record`); failures carry ``error``."""
        rows: list[dict[str, Any]] = []
        for item in self._items:
            if isinstance(item, Score):
                row = item.to_record(reason_codes=reason_codes)
                row["error"] = None
            else:
                row = item.to_record()
            rows.append(row)
        return rows

    def to_dataframe(self, *, reason_codes: ReasonCodes | None = None) -> pd.DataFrame:
        """A pandas DataFrame, one row per input, indexed like the input (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise MissingDependencyError(
                f"to_dataframe needs pandas: {install_hint('credit-explainer', 'pandas')}"
            ) from exc
        columns = [
            *self.schema.id_columns,
            "probability",
            "decision",
            "base_value",
            "model_version",
            "request_id",
            *reason_columns([], _reason_limit(reason_codes)),
            *(f"shap_{f}" for f in self.schema.features),
            "error",
        ]
        frame = pd.DataFrame.from_records(
            self.to_records(reason_codes=reason_codes), columns=["index", *columns]
        )
        frame = frame.drop(columns="index")
        frame.index = pd.Index(self.labels)
        return frame
