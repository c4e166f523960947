"""Issue 30, bins that see every shift: each kind's bins against counts made here, the range
tolerance, and the high-risk threshold from the whole training score."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from credit_model import monitor, stability
from credit_model.drift import RANGE_TOLERANCE
from credit_model.stability import Binning


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def test_a_zero_inflated_count_gets_a_bin_per_frequent_value_and_a_tail() -> None:
    counts = {0: 900, 1: 60, 2: 30, 3: 6, 7: 4}  # 7 holds 0.4%: below the value share, in the tail
    train = np.repeat(list(counts), list(counts.values())).astype(float)
    base = stability.baseline(train, Binning("integer"))
    assert base["binning"] == "value" and base["edges"] == [0.0, 1.0, 2.0, 3.0]
    assert base["shares"] == pytest.approx([0.9, 0.06, 0.03, 0.006, 0.004])
    assert stability.bin_labels(base) == ["0", "1", "2", "3", ">3"]
    # Two more late payments for everyone who had one: invisible to zero-or-more bins.
    shifted = np.where(train >= 1, train + 2, train)
    by_value = [np.mean(shifted == v) for v in (0, 1, 2, 3)]
    expected = _psi(np.array([0.9, 0.06, 0.03, 0.006, 0.004, 0.0]),
                    np.array([*by_value, np.mean(shifted > 3), 0.0]))  # fmt: skip
    assert stability.psi(base, shifted) == pytest.approx(expected)
    assert expected > 0.25


def test_an_integer_with_many_frequent_values_is_binned_by_quantile() -> None:
    ages = np.random.default_rng(0).integers(21, 90, 5000).astype(float)
    base = stability.baseline(ages, Binning("integer"))
    assert base["binning"] == "quantile"
    assert base["edges"] == np.quantile(ages, np.arange(1, 10) / 10).tolist()


def test_a_spike_gets_its_own_bin_and_the_rest_keeps_quantile_bins() -> None:
    rng = np.random.default_rng(1)
    ratio = np.where(rng.random(10_000) < 0.92, 0.0, rng.lognormal(0, 1, 10_000))
    base = stability.baseline(ratio)
    rest = np.sort(ratio[ratio != 0.0])
    assert base["edges"][:2] == [np.nextafter(0.0, -1.0), 0.0]
    assert base["edges"][2:] == np.quantile(rest, np.arange(1, 9) / 9).tolist()
    assert base["shares"][1] == pytest.approx(np.mean(ratio == 0.0))
    assert np.allclose(base["shares"][2:], np.mean(ratio != 0.0) / 9, atol=1e-3)
    doubled = ratio * 2
    bounds = [-np.inf, *base["edges"], np.inf]
    now = [np.mean((doubled > lo) & (doubled <= hi)) for lo, hi in itertools.pairwise(bounds)]
    then = [np.mean((ratio > lo) & (ratio <= hi)) for lo, hi in itertools.pairwise(bounds)]
    expected = _psi(np.array([*then, 0.0]), np.array([*now, 0.0]))
    assert stability.psi(base, doubled) == pytest.approx(expected) and expected > 0.03
    # Deciles alone give edges [0.0]: zero or more, blind to the doubling.
    assert np.unique(np.quantile(ratio, np.arange(1, 10) / 10)).tolist() == [0.0]


def test_a_category_is_binned_by_category_with_a_bin_for_the_unseen() -> None:
    train = ["rent"] * 50 + ["own"] * 30 + ["free"] * 10 + [None] * 10
    base = stability.baseline(train, Binning("category", ("own", "rent", "free")))
    assert base["shares"] == pytest.approx([0.3, 0.5, 0.1, 0.0]) and base["missing_share"] == 0.1
    assert stability.bin_labels(base) == ["own", "rent", "free", stability.OTHER]
    now = ["rent"] * 20 + ["own"] * 60 + ["lodger"] * 10 + [float("nan")] * 10
    expected = _psi(np.array([0.3, 0.5, 0.1, 0.0, 0.1]), np.array([0.6, 0.2, 0.0, 0.1, 0.1]))
    assert stability.psi(base, now) == pytest.approx(expected)


def test_out_of_range_allows_a_writer_s_rounding_and_nothing_more() -> None:
    low, high = -2.5, 0.9999998999999999
    values = np.array(
        [float(f"{high:.10g}"), high * (1 + 1e-6), float(f"{low:.10g}"), low * (1 + 1e-6), np.nan]
    )
    assert monitor.outside_range(values, low, high).tolist() == [False, True, False, True, False]
    assert monitor.outside_range(np.array([high * (1 + 2 * RANGE_TOLERANCE)]), low, high)[0]


def test_the_high_risk_threshold_is_the_training_score_s_quantile() -> None:
    rng = np.random.default_rng(3)
    X, score = rng.normal(size=(2000, 10)), rng.random(2000)
    sample = np.arange(0, 2000, 4)
    extra = monitor.attribution_baseline(
        X, X[sample], score[sample] ** 2, rng.normal(size=(500, 10)), training_score=score
    )
    assert extra["high_risk_threshold"] == pytest.approx(np.quantile(score, 0.9))
