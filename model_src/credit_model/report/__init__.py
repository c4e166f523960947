"""``credit-explainer report``: a model validation report and fair-lending checks.

:mod:`.metrics` computes the figures (also written as JSON); :mod:`.html` draws
them into one self-contained HTML file (matplotlib, imported only here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import REPORT_FILE
from .metrics import Report, compute

__all__ = ["REPORT_FILE", "Evaluation", "Report", "build", "load_evaluation", "write"]

_SYNTHETIC = re.compile(r"synthetic\(rows=(\d+), seed=(\d+)\)")


@dataclass
class Evaluation:
    """The labelled rows a report is computed on, and what the checks need beside them."""

    X: Any
    y: Any
    description: dict[str, Any]
    #: The rows the model was trained on (``(X, y)``), when known: the benchmark is fitted on them.
    train: tuple[Any, Any] | None = None
    #: Prohibited-basis attributes of the rows (column -> values), never given to the model.
    attributes: dict[str, list[Any]] = field(default_factory=dict)


def load_evaluation(
    artifacts: Any,
    data: str | Path | None,
    *,
    holdout: bool,
    prohibited: Sequence[str] | None = None,
) -> Evaluation:
    """``data`` (or the model's synthetic training data), whole or held out, with its
    prohibited-basis attributes (``prohibited``, by default every one the model's schema names
    that the data holds; never model inputs).

    ``holdout``: the rows training held out (the same stratified split, from the
    model's ``test_size`` and ``random_state``), when ``data`` is the training data.
    """
    import numpy as np

    from ..data import load_csv, split_xy
    from ..train import holdout_split

    schema = artifacts.schema
    for name in prohibited or ():
        if name in (schema.target, *schema.features):
            raise ValueError(
                f"--prohibited {name}: a model input or the target; a prohibited-basis "
                "attribute is never given to the model"
            )
        if name not in schema.prohibited:
            raise ValueError(
                f"--prohibited {name}: not a prohibited-basis attribute of the model's schema "
                f"{schema.name!r} (its schema lists: {', '.join(schema.prohibited) or 'none'})"
            )
    meta = artifacts.metadata
    if data is None:
        source = str(meta.get("training_data", {}).get("source", ""))
        match = _SYNTHETIC.fullmatch(source)
        if match is None:
            raise ValueError(
                f"the model was trained on {source or 'unrecorded data'}: give a labelled --data file"
            )
        if prohibited:
            raise ValueError(f"--prohibited {prohibited[0]}: give a --data file with that column")
        from ..synth import generate

        frame = generate(int(match[1]), seed=int(match[2]))
        source, holdout = f"{source} (regenerated)", True
    else:
        frame, source = load_csv(data, schema), str(data)
    X, y = split_xy(frame, schema)
    wanted = schema.prohibited if prohibited is None else prohibited
    missing = [c for c in wanted if c not in frame.columns]
    if missing and prohibited is not None:
        raise ValueError(f"--prohibited {missing[0]}: no such column in the data")
    attributes = {c: frame[c].tolist() for c in wanted if c in frame.columns}
    note = None
    if not holdout and source == str(meta.get("training_data", {}).get("source")):
        note = "these rows include the training rows: --holdout gives out-of-sample figures"
    train = None
    if holdout:
        hp = meta.get("hyperparameters", {})
        fitted, kept, _, _ = holdout_split(
            np.arange(len(y)), y, hp.get("test_size", 0.2), hp.get("random_state", 42)
        )
        train = (X[fitted], y[fitted])
        X, y = X[kept], y[kept]
        attributes = {c: [v[i] for i in kept] for c, v in attributes.items()}
    split = "held-out split of training" if holdout else "all rows"
    description = {"source": source, "split": split, "note": note}
    return Evaluation(X, y, description, train, attributes)


def load_data(
    artifacts: Any, data: str | Path | None, *, holdout: bool
) -> tuple[Any, Any, dict[str, Any]]:
    """``(X, y, description)`` of :func:`load_evaluation`."""
    e = load_evaluation(artifacts, data, holdout=holdout)
    return e.X, e.y, e.description


def build(
    model_dir: str | Path,
    data: str | Path | None = None,
    *,
    holdout: bool = False,
    thresholds: str | None = None,
    prohibited: Sequence[str] | None = None,
) -> Report:
    from credit_schema.decisions import DecisionBands

    from .. import artifacts

    try:
        bands = DecisionBands.parse(thresholds) if thresholds else None
    except ValueError as exc:
        raise ValueError(f"--decision-thresholds {thresholds!r}: {exc}") from None
    model = artifacts.load(model_dir)
    e = load_evaluation(model, data, holdout=holdout, prohibited=prohibited)
    _check_served(model, e.X)
    return compute(
        model,
        e.X,
        e.y,
        data_description=e.description,
        bands=bands,
        train=e.train,
        attributes=e.attributes,
    )


def _check_served(model: Any, X: Any) -> None:
    """The report validates ``model.pipeline``: refuse one whose served form (the tables the
    model server loads) answers these rows otherwise, so its version names what is served."""
    import numpy as np
    from credit_schema import ADDITIVITY_TOLERANCE

    from .. import artifacts, families
    from ..artifacts import ModelArtifactError
    from ..handlers import served_explainer

    served = served_explainer(model.model_dir, model.metadata)
    if served is None:
        return  # served from model.skops itself
    gap = float(np.max(np.abs(served.explain(X)[0] - model.pipeline.predict_proba(X)[:, 1])))
    family = artifacts.family_of(model.metadata)
    if not gap <= max(ADDITIVITY_TOLERANCE, families.module(family).AGREEMENT):
        raise ModelArtifactError(
            f"{model.model_dir}: the served tables and the model answer the report's rows "
            f"differently (by up to {gap:.3g}): they are not one model; refusing to report"
        )


def write(report: Report, html_path: str | Path | None, json_path: str | Path | None) -> None:
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.figures, indent=2, allow_nan=False) + "\n")
    if html_path is not None:
        from .html import render

        path = Path(html_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(report), encoding="utf-8")
