"""The report's dependence plot names a category feature's categories, not their codes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from credit_model.report import html
from credit_model.report.metrics import PlotData, Report

CHECKING = ["... < 0 DM", "0 <= ... < 200 DM", "no checking account", "critical account/ other credits existing (not at this bank)"]  # fmt: skip


def test_a_category_feature_is_drawn_with_every_category_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, len(CHECKING), 400).astype(float)
    codes[:2] = len(CHECKING) - 1  # a rare category: still drawn (no percentile cut)
    X = np.column_stack([codes, rng.normal(40, 10, 400)])
    S = rng.normal(0, 0.05, (400, 2))
    report = Report(
        figures={
            "model": {
                "features": ["checking", "age"],
                "labels": {"checking": "Checking account", "age": "Age"},
                "age_feature": "age",
                "categories": {"checking": CHECKING},
            },
            "explanations": {"importance": [{"feature": "checking"}, {"feature": "age"}]},
        },
        plots=PlotData(roc=(np.zeros(1), np.zeros(1)), ks=(np.zeros(1),) * 3, X=X, shap=S),
    )
    ticks: dict[str, list[str]] = {}
    real_img = html._img

    def img(figure: Any, draw: Any, size: tuple[float, float], alt: str) -> str:
        def recording(fig: Any) -> None:
            draw(fig)
            for a in fig.axes:
                if a.get_visible():
                    ticks[a.get_title()] = [t.get_text() for t in a.get_xticklabels()]
                    if a.get_title().startswith("Checking"):
                        ticks["points"] = [str(len(c.get_offsets())) for c in a.collections]

        return real_img(figure, recording, size, alt)

    monkeypatch.setattr(html, "_img", img)
    html._Plots(report).dependence()
    assert ticks["Checking account"] == [
        "... < 0 DM",
        "0 <= ... < 200 DM",
        "no checking account",
        "critical account/…",
    ]  # were the codes 0.0 ... 3.0
    assert ticks["points"] == ["400"]
