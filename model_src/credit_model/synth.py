"""A seeded synthetic Give Me Some Credit data set: the project's default data.

Same schema as the Kaggle ``cs-training.csv`` (the 10 features and
``SeriousDlqin2yrs``) and realistic marginals: heavy right tails in revolving
utilisation and DebtRatio (DebtRatio is an absolute amount, not a ratio, where
the income is unknown, as in the source data), about 20% missing MonthlyIncome
and 2.6% missing NumberOfDependents, the 96/98 special codes in the past-due
counts, and a default rate of about 6.7%. A latent credit-worthiness drives both
the features and the outcome, so a forest learns a plausible model from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
from credit_schema import FEATURES, TARGET

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SEED: Final = 20_101
DEFAULT_ROWS: Final = 20_000
DEFAULT_RATE: Final = 0.067


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def generate(
    rows: int = DEFAULT_ROWS, *, seed: int = DEFAULT_SEED, default_rate: float = DEFAULT_RATE
) -> pd.DataFrame:
    """``rows`` synthetic applicants with their outcome, columns ``[TARGET, *FEATURES]``."""
    import pandas as pd

    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    risk = rng.standard_normal(rows)  # latent: higher is riskier

    age = np.clip(np.round(rng.normal(52.0 - 6.0 * risk, 14.5)), 21, 103).astype(np.int64)

    # Revolving utilisation: mostly in [0, 1], a cluster at ~1, a heavy tail of data errors.
    base_util = rng.beta(0.55 + 0.35 * _sigmoid(1.5 * risk), 1.4, rows)
    near_full = rng.random(rows) < 0.08 + 0.12 * _sigmoid(2.0 * risk - 1.0)
    util = np.where(near_full, rng.uniform(0.9, 1.1, rows), base_util)
    tail = rng.random(rows) < 0.0025
    util = np.where(tail, np.exp(rng.uniform(1.0, 9.0, rows)), util)

    income_missing = rng.random(rows) < 0.198
    income = np.round(np.exp(rng.normal(8.55 - 0.12 * risk, 0.62, rows)), 0)
    income = np.where(rng.random(rows) < 0.012, rng.choice([0.0, 1.0], rows), income)
    debt_ratio = np.exp(rng.normal(np.log(0.33) + 0.15 * risk, 0.75, rows))
    # Where the income is unknown the source's DebtRatio holds the monthly debt itself.
    debt_ratio = np.where(income_missing, np.exp(rng.normal(6.9, 1.6, rows)), debt_ratio)
    monthly_income = np.where(income_missing, np.nan, income)

    open_lines = rng.negative_binomial(4, 4.0 / (4.0 + 8.4 + 0.6 * risk.clip(-2, 2)), rows)
    real_estate = np.minimum(rng.poisson(np.exp(-0.05 - 0.1 * risk) * 1.0, rows), 54)
    dependents = np.minimum(rng.poisson(0.74, rows), 20).astype(np.float64)
    dependents[rng.random(rows) < 0.026] = np.nan

    def late(intercept: float, slope: float) -> np.ndarray:
        return rng.poisson(np.exp(intercept + slope * risk))

    past_30_59 = late(-2.35, 0.85)
    past_90 = late(-3.6, 1.25)
    past_60_89 = late(-3.65, 1.1)
    codes = rng.random(rows) < 0.0018  # the source's 96/98 codes hit all three counts at once
    code_value = rng.choice([96, 98], rows, p=[0.1, 0.9])
    for arr in (past_30_59, past_90, past_60_89):
        arr[codes] = code_value[codes]

    score = (
        1.15 * risk
        + 1.3 * np.minimum(util, 1.5)
        + 0.45 * np.minimum(past_30_59, 6)
        + 0.75 * np.minimum(past_90, 6)
        + 0.55 * np.minimum(past_60_89, 6)
        + 2.5 * codes
        - 0.012 * (age - 52)
        + 0.15 * income_missing
    )
    # Pick the intercept that gives the wanted default rate on this sample.
    lo, hi = -20.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(score + mid).mean() > default_rate:
            hi = mid
        else:
            lo = mid
    target = (rng.random(rows) < _sigmoid(score + lo)).astype(np.int64)

    columns = {
        TARGET: target,
        "RevolvingUtilizationOfUnsecuredLines": util,
        "age": age,
        "NumberOfTime30-59DaysPastDueNotWorse": past_30_59,
        "DebtRatio": debt_ratio,
        "MonthlyIncome": monthly_income,
        "NumberOfOpenCreditLinesAndLoans": open_lines,
        "NumberOfTimes90DaysLate": past_90,
        "NumberRealEstateLoansOrLines": real_estate,
        "NumberOfTime60-89DaysPastDueNotWorse": past_60_89,
        "NumberOfDependents": dependents,
    }
    frame = pd.DataFrame(columns)
    return frame[[TARGET, *FEATURES]]


#: The second synthetic data set's columns: another lender's names, kinds and an id, so the
#: paths any lender's data takes (categories, ids, a prohibited basis) are tested without files.
OTHER_TARGET: Final = "loan_status"
OTHER_ID: Final = "application_ref"
OTHER_PROHIBITED: Final = "gender"


def generate_other(rows: int = 4_000, *, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Another lender's file: an id, three categorical and four numeric attributes (one of them
    the applicant's age, one nullable), a prohibited basis and a text target (``default``)."""
    import pandas as pd

    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    risk = rng.standard_normal(rows)
    checking = np.array(["none", "overdrawn", "low", "healthy"])[
        np.clip((1.5 - risk + rng.normal(0, 0.8, rows)).astype(int), 0, 3)
    ]
    tenure = np.array(["unemployed", "under_1y", "1_to_4y", "4y_plus"])[
        np.clip((1.8 - 0.7 * risk + rng.normal(0, 1.0, rows)).astype(int), 0, 3)
    ]
    housing = rng.choice(np.array(["rent", "own", "with_family"]), rows, p=[0.45, 0.4, 0.15])
    age = np.clip(np.round(rng.normal(42, 13, rows) - 3 * risk), 18, 90).astype(int)
    late = rng.poisson(np.exp(0.8 * risk - 0.8))
    amount = np.round(np.exp(rng.normal(8.5, 0.7, rows) + 0.2 * risk), 2)
    amount[rng.random(rows) < 0.08] = np.nan
    duration = rng.choice(np.array([6, 12, 18, 24, 36, 48, 60]), rows)
    score = 1.3 * risk + 0.02 * (duration - 24) + 0.4 * (housing == "rent") - 2.0
    status = np.where(rng.random(rows) < _sigmoid(score), "default", "repaid")
    return pd.DataFrame(
        {
            OTHER_ID: [f"R{seed % 1000:03d}-{i:06d}" for i in range(rows)],
            "checking_account": checking,
            "employment_tenure": tenure,
            "housing": housing,
            "loan_amount": amount,
            "duration_months": duration,
            "applicant_age": age,
            "late_payments_12m": late,
            OTHER_PROHIBITED: rng.choice(np.array(["female", "male"]), rows),
            OTHER_TARGET: status,
        }
    )
