"""The monitoring page draws every feature of a schema of any size (German credit has 19)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from credit_model import monitor, stability
from credit_model.report import monitor_html
from credit_schema import compile_schema, parse_schema

NAMES = [f"attribute_{j}_of_the_applicant_with_a_long_name" for j in range(19)]
CATEGORIES = [f"a category of {k} words spelt out as a lender's file holds it" for k in range(5)]


def schema_of(names: list[str]) -> Any:
    """Numbers, and every other feature a category with long texts (German credit's kind)."""
    features = [
        {"name": f, "kind": "number", "description": f, "reason": {"code": f, "text": f}}
        if j % 2
        else {"name": f, "kind": "category", "categories": CATEGORIES, "description": f,
              "reason": {"code": f, "text": f}}
        for j, f in enumerate(names)
    ]  # fmt: skip
    return compile_schema(
        parse_schema({"name": "wide", "target": {"name": "y"}, "features": features})
    )


def report_of(names: list[str]) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    schema = schema_of(names)
    binnings = stability.binnings(schema)
    n = len(names)

    def rows(size: int) -> Any:
        x = rng.lognormal(3, 1, size=(size, n))
        x[:, ::2] = rng.integers(0, len(CATEGORIES), size=(size, len(range(0, n, 2))))
        return x

    train = rows(2000)
    p_train, phi_train = rng.random(2000), rng.normal(0, 1, (2000, n))
    meta = {
        "baseline": {
            "features": {
                f: stability.baseline(train[:, j], binnings[f]) for j, f in enumerate(names)
            },
            "score": stability.baseline(p_train),
            "monitoring": monitor.attribution_baseline(
                train, train, p_train, phi_train, schema, training_score=p_train
            ),
        }
    }
    now = rows(300)
    p, phi = rng.random(300), rng.normal(0, 1, (300, n))
    report = monitor.monitor(meta, now, p, phi, [[names[0]]] * 300)
    return {
        "model_version": "test", "capture": "records", "decisions": 3,
        "window": {"first": "2026-12-01T00:00:00Z", "last": "2026-12-02T00:00:00Z"}, **report,
    }  # fmt: skip


def test_every_feature_and_the_score_get_a_distribution_panel_without_layout_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: dict[str, list[str]] = {}
    real_img = monitor_html._img

    def img(figure: Any, draw: Any, size: tuple[float, float], alt: str) -> str:
        def recording(fig: Any) -> None:
            draw(fig)
            drawn[alt] = ["".join(a.get_title().split()) for a in fig.axes if a.get_visible()]

        return real_img(figure, recording, size, alt)

    monkeypatch.setattr(monitor_html, "_img", img)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Tight layout not applied" on a crowded figure
        monitor_html.render(report_of(NAMES))
    [titles] = [t for alt, t in drawn.items() if alt.startswith("distributions")]
    assert len(titles) == len(NAMES) + 1  # was 12: a 4 x 3 grid, the rest silently dropped
    for name, title in zip([*NAMES, "score(probability)"], titles, strict=True):
        assert title.startswith(name), (name, title)
