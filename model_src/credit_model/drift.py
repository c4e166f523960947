"""Drift thresholds, stated once: read by training reports, ``monitor`` and its CLI.

Standard library only, so the CLI can show the defaults without loading numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

#: The usual reading of PSI: below 0.1 stable, 0.1 to 0.25 a moderate shift, above it a major one.
PSI_BANDS: Final = ((0.1, "stable"), (0.25, "moderate shift"), (math.inf, "major shift"))
#: A value is outside a training range [low, high] only beyond low - t|low| or high + t|high|:
#: a client writing 10 significant digits (pandas' to_json) moves a value by 5e-10 of itself at
#: most, float32 by 6e-8; any move worth an alert is orders of magnitude larger.
RANGE_TOLERANCE: Final = 1e-7
#: Significance level of calibration tests (the validation report's and monitor's outcomes).
CALIBRATION_ALPHA: Final = 0.05


@dataclass(frozen=True)
class Thresholds:
    """When ``monitor`` reports a figure (watch) or asks for action (act)."""

    psi_watch: float = PSI_BANDS[0][0]
    psi_act: float = PSI_BANDS[1][0]
    #: Share of applicants outside a feature's training range.
    out_of_range_watch: float = 0.01
    #: SageMaker Clarify's default alert for attribution drift.
    ndcg_watch: float = 0.9
    #: Outcomes: a month's realised AUC this far below the held-out AUC of training.
    auc_drop_watch: float = 0.05
    #: Outcomes: a month's defaults against its mean predicted rate, exact binomial p below it.
    calibration_p_watch: float = CALIBRATION_ALPHA
