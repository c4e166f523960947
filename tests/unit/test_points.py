"""Scorecard points: the scaling, rounding that sums exactly, and the API's check."""

from __future__ import annotations

import math

import pytest
from credit_schema.points import Scorecard, check_points
from hypothesis import given
from hypothesis import strategies as st

FEATURES = ("a", "b", "c")


def test_600_points_at_odds_50_and_20_to_double() -> None:
    card = Scorecard.parse("600:50:20")
    assert math.isclose(card.factor, 20 / math.log(2))
    assert math.isclose(card.offset, 600 - 20 / math.log(2) * math.log(50))
    # Odds of 50 good to 1 bad: bad log-odds -ln 50 -> 600; twice the odds -> 620.
    assert card.points(-math.log(50), [0.0, 0.0, 0.0], FEATURES)["score"] == 600
    assert card.points(-math.log(100), [0.0, 0.0, 0.0], FEATURES)["score"] == 620
    for text in ("600:50", "600:0:20", "a:b:c", "600:50:-1"):
        with pytest.raises(ValueError, match="points"):
            Scorecard.parse(text)


@given(
    base=st.floats(-8, 8),
    phi=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    score=st.floats(300, 900),
    pdo=st.floats(5, 80),
)
def test_points_sum_exactly_to_the_rounded_score(
    base: float, phi: list[float], score: float, pdo: float
) -> None:
    card = Scorecard(score, 50.0, pdo)
    points = card.points(base, phi, FEATURES)
    assert points["base"] + sum(points["features"].values()) == points["score"]
    assert points["score"] == round(card.offset - card.factor * (base + math.fsum(phi)))
    for name, value in zip(FEATURES, phi, strict=True):
        assert abs(points["features"][name] + card.factor * value) < 1.0
    assert check_points(points, FEATURES) is None


def test_check_points_names_what_is_wrong() -> None:
    good = {"score": 10, "base": 7, "features": {"a": 1, "b": 1, "c": 1}}
    assert check_points(good, FEATURES) is None
    assert check_points({**good, "score": 11}, FEATURES) == "points do not sum to the score"
    assert "per feature" in str(check_points({**good, "features": {"a": 3}}, FEATURES))
    assert "integers" in str(check_points({**good, "base": 7.0}, FEATURES))
    assert "object" in str(check_points([1], FEATURES))
