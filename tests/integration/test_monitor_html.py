"""The monitoring report opens in a real browser (headless Chromium) and shows its plots."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from credit_model import monitor, stability
from credit_model.report.monitor_html import render
from credit_schema import FEATURES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def drifted_report() -> dict[str, object]:
    rng = np.random.default_rng(5)
    n = len(FEATURES)
    train = rng.lognormal(3, 1, size=(4000, n))
    p_train, phi_train = rng.random(4000), rng.normal(0, 1, (4000, n)) * np.arange(1, n + 1)
    meta = {
        "baseline": {
            "features": {f: stability.baseline(train[:, j]) for j, f in enumerate(FEATURES)},
            "score": stability.baseline(p_train),
            "monitoring": monitor.attribution_baseline(
                train, train, p_train, phi_train, training_score=p_train
            ),
        }
    }
    now = rng.lognormal(3, 1, size=(800, n))
    now[:, 3] *= 3  # DebtRatio up
    p, phi = rng.random(800) ** 0.7, rng.normal(0, 1, (800, n)) * np.arange(n, 0, -1)
    reasons = [[FEATURES[3]] if i % 3 else [] for i in range(800)]
    report = monitor.monitor(meta, now, p, phi, reasons)
    return {
        "model_version": "test", "capture": "capture", "decisions": 8,
        "window": {"first": "2026-12-01T00:00:00Z", "last": "2026-12-02T00:00:00Z"}, **report,
    }  # fmt: skip


def test_the_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is needed in CI (.ci/run installs it)")
        pytest.skip("no chromium here: apt-get install chromium")
    page = tmp_path / "monitor.html"
    page.write_text(render(drifted_report()), encoding="utf-8")
    shot = tmp_path / "monitor.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,4200", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    from matplotlib.image import imread

    pixels = imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (4200, 1280)
    ink = np.any(pixels < 0.9, axis=2).mean()
    assert ink > 0.05, f"only {ink:.1%} of the page is not white: the plots did not render"
    # The plots' own colours reached the screen: "now" blue, act red, training grey.
    for colour in ("#1f5fbf", "#b3261e", "#9aa5b1"):
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
        assert (np.abs(pixels - rgb).max(axis=2) < 0.02).mean() > 1e-4, colour
