"""``credit-explainer report``: a model validation report and fair-lending checks.

:mod:`.metrics` computes the figures (also written as JSON); :mod:`.html` draws
them into one self-contained HTML file (matplotlib, imported only here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..artifacts import REPORT_FILE
from .metrics import Report, compute

__all__ = ["REPORT_FILE", "Report", "build", "write"]

_SYNTHETIC = re.compile(r"synthetic\(rows=(\d+), seed=(\d+)\)")


def load_data(
    artifacts: Any, data: str | Path | None, *, holdout: bool
) -> tuple[Any, Any, dict[str, Any]]:
    """``(X, y, description)``: ``data`` (or the model's synthetic training data), whole or held out.

    ``holdout``: the rows training held out (the same stratified split, from the
    model's ``test_size`` and ``random_state``), when ``data`` is the training data.
    """
    from ..data import load_csv, split_xy
    from ..train import holdout_split

    meta = artifacts.metadata
    if data is None:
        source = str(meta.get("training_data", {}).get("source", ""))
        match = _SYNTHETIC.fullmatch(source)
        if match is None:
            raise ValueError(
                f"the model was trained on {source or 'unrecorded data'}: give a labelled --data file"
            )
        from ..synth import generate

        frame = generate(int(match[1]), seed=int(match[2]))
        source, holdout = f"{source} (regenerated)", True
    else:
        frame, source = load_csv(data, artifacts.schema), str(data)
    X, y = split_xy(frame, artifacts.schema)
    note = None
    if not holdout and source == str(meta.get("training_data", {}).get("source")):
        note = "these rows include the training rows: --holdout gives out-of-sample figures"
    if holdout:
        hp = meta.get("hyperparameters", {})
        _, X, _, y = holdout_split(X, y, hp.get("test_size", 0.2), hp.get("random_state", 42))
    split = "held-out split of training" if holdout else "all rows"
    return X, y, {"source": source, "split": split, "note": note}


def build(
    model_dir: str | Path,
    data: str | Path | None = None,
    *,
    holdout: bool = False,
    thresholds: str | None = None,
) -> Report:
    from credit_schema.decisions import DecisionBands

    from .. import artifacts

    try:
        bands = DecisionBands.parse(thresholds) if thresholds else None
    except ValueError as exc:
        raise ValueError(f"--decision-thresholds {thresholds!r}: {exc}") from None
    model = artifacts.load(model_dir)
    X, y, description = load_data(model, data, holdout=holdout)
    _check_served(model, X)
    return compute(model, X, y, data_description=description, bands=bands)


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
