"""Shared fixtures: trained models (once per session), the real data, servers on free ports."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from credit_schema import FEATURES

ROOT = Path(__file__).resolve().parents[1]
#: The real Give Me Some Credit rows, beside the repository (never inside it).
REAL_DATA = Path(
    os.environ.get(
        "CREDIT_EXPLAINER_REAL_DATA",
        ROOT.parent / "shared" / "data" / "give-me-some-credit" / "train.csv",
    )
)

#: Applicants used across tests (made up; wire names; one with missing values).
SAMPLE_APPLICANTS: list[dict[str, Any]] = [
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.92,
        "age": 34,
        "NumberOfTime30-59DaysPastDueNotWorse": 2,
        "DebtRatio": 0.51,
        "MonthlyIncome": 3100.0,
        "NumberOfOpenCreditLinesAndLoans": 5,
        "NumberOfTimes90DaysLate": 1,
        "NumberRealEstateLoansOrLines": 0,
        "NumberOfTime60-89DaysPastDueNotWorse": 1,
        "NumberOfDependents": 2,
    },
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.08,
        "age": 61,
        "NumberOfTime30-59DaysPastDueNotWorse": 0,
        "DebtRatio": 0.22,
        "MonthlyIncome": 9800.0,
        "NumberOfOpenCreditLinesAndLoans": 11,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 2,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": 0,
    },
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.45,
        "age": 47,
        "NumberOfTime30-59DaysPastDueNotWorse": 0,
        "DebtRatio": 1450.0,
        "MonthlyIncome": None,
        "NumberOfOpenCreditLinesAndLoans": 7,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 1,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": None,
    },
]


def require_real_data() -> Path:
    if not REAL_DATA.is_file():
        pytest.skip(f"real data not present at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def sample_applicants() -> list[dict[str, Any]]:
    return [dict(a) for a in SAMPLE_APPLICANTS]


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained once on the synthetic data (the project's default data)."""
    from credit_model.synth import generate
    from credit_model.train import Hyperparameters, train

    directory = tmp_path_factory.mktemp("synthetic-model")
    train(
        generate(6_000, seed=7),
        directory,
        hyperparameters=Hyperparameters(n_jobs=1),
        log=lambda *_: None,
    )
    return directory


@pytest.fixture(scope="session")
def real_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model trained once on the real data (skipped when it is absent)."""
    path = require_real_data()
    from credit_model.data import load_csv
    from credit_model.train import train

    directory = tmp_path_factory.mktemp("real-model")
    train(load_csv(path), directory, data_source=str(path), log=lambda *_: None)
    return directory


@pytest.fixture(scope="session")
def synthetic_model(synthetic_model_dir: Path) -> Any:
    from credit_model.handlers import model_fn

    return model_fn(synthetic_model_dir)


@pytest.fixture(scope="session")
def model_server(synthetic_model: Any) -> Iterator[Any]:
    """The real model server over HTTP on a free loopback port."""
    from credit_explainer.local.stack import ModelServer

    with ModelServer(synthetic_model) as server:
        yield server


def _csv(applicants: list[dict[str, Any]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(FEATURES)
    for a in applicants:
        writer.writerow(["" if a[f] is None else a[f] for f in FEATURES])
    return out.getvalue()


def payloads(apps: list[dict[str, Any]]) -> dict[str, tuple[str | bytes, str]]:
    records = json.dumps(apps)
    return {
        "records": (records, "application/json"),
        "records-charset": (records.encode(), "application/json; charset=utf-8"),
        "double-encoded": (json.dumps(records), "application/json"),
        "columns": (
            json.dumps({f: {str(i): a[f] for i, a in enumerate(apps)} for f in FEATURES}),
            "application/json",
        ),
        "index": (json.dumps({str(i): a for i, a in enumerate(apps)}), "application/json"),
        "split": (
            json.dumps(
                {
                    "columns": list(FEATURES),
                    "index": list(range(len(apps))),
                    "data": [[a[f] for f in FEATURES] for a in apps],
                }
            ),
            "application/json",
        ),
        "instances": (json.dumps({"instances": apps}), "application/json"),
        "csv-header": (_csv(apps, True), "text/csv"),
        "csv-no-header": (_csv(apps, False).encode(), "text/csv"),
        "jsonlines": ("\n".join(json.dumps(a) for a in apps) + "\n", "application/jsonlines"),
    }


def runtime_client(url: str) -> Any:
    """A real boto3 ``sagemaker-runtime`` client aimed at a local model server (no retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
