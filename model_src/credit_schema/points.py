"""Scorecard points: a model additive in log-odds read as points, the scorecard way.

``train --points SCORE:ODDS:PDO`` (for example ``600:50:20``: 600 points at odds of 50 good
to 1 bad, 20 points to double the odds): ``factor = PDO / ln 2``, ``offset = SCORE - factor
* ln(ODDS)``, and an applicant's score is ``offset + factor * ln(good:bad odds)``. The
model's log-odds are of the bad outcome, so ``score = offset - factor * (base + sum(phi))``:
the base takes ``offset - factor * base`` points and each feature ``-factor * phi``. They
are rounded (largest remainders) so that they sum exactly to the rounded score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scorecard:
    """The scaling of ``--points SCORE:ODDS:PDO``."""

    score: float
    odds: float
    pdo: float

    @classmethod
    def parse(cls, text: str) -> Scorecard:
        parts = text.split(":")
        try:
            score, odds, pdo = (float(p) for p in parts)
        except ValueError:
            raise ValueError(
                f"points must be SCORE:ODDS:PDO, for example 600:50:20, not {text!r}"
            ) from None
        if not all(math.isfinite(v) for v in (score, odds, pdo)) or odds <= 0 or pdo <= 0:
            raise ValueError("points need a finite score, odds above 0 and PDO above 0")
        return cls(score, odds, pdo)

    def text(self) -> str:
        return f"{self.score:g}:{self.odds:g}:{self.pdo:g}"

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.score - self.factor * math.log(self.odds)

    def points(
        self, base_log_odds: float, shap_log_odds: Sequence[float], features: Sequence[str]
    ) -> dict[str, Any]:
        """``{"score", "base", "features": {feature: points}}`` (integers) with
        ``base + sum(features) == score`` exactly; ``shap_log_odds`` in ``features`` order."""
        raw = [self.offset - self.factor * base_log_odds]
        raw += [-self.factor * phi for phi in shap_log_odds]
        score = round(math.fsum(raw))
        rounded = [math.floor(v) for v in raw]
        short = score - sum(rounded)  # 0 .. len(raw): one more point to the largest remainders
        order = sorted(range(len(raw)), key=lambda i: rounded[i] - raw[i])
        for i in order[:short]:
            rounded[i] += 1
        by_feature = dict(zip(features, rounded[1:], strict=True))
        return {"score": score, "base": rounded[0], "features": by_feature}


def check_points(points: Any, features: Sequence[str]) -> str | None:
    """What is wrong with an answer's ``points`` (None: nothing): one integer per feature,
    and the base's and the features' summing exactly to the score."""
    if not isinstance(points, dict):
        return "points is not an object"
    score, base, by_feature = points.get("score"), points.get("base"), points.get("features")
    if not isinstance(by_feature, dict) or set(by_feature) != set(features):
        return "points do not hold one number per feature"
    values = [score, base, *by_feature.values()]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "points are not integers"
    if sum(values[1:]) != score:
        return "points do not sum to the score"
    return None
