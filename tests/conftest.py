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
#: Where each of our packages' sources are (four distributions: docs/architecture.md).
PACKAGE_DIRS = {
    "credit_schema": ROOT / "model_src" / "credit_schema",
    "credit_model": ROOT / "model_src" / "credit_model",
    "scoring_api": ROOT / "lambda_fn" / "scoring_api",
    "credit_explainer": ROOT / "client" / "credit_explainer",
    "credit_explainer_tools": ROOT / "client" / "credit_explainer_tools",
}
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


#: A small schema of another lender (a category, a count, an id), as GET /schema answers it.
LENDER_SCHEMA: dict[str, Any] = {
    "format": "credit-explainer/schema/1",
    "name": "a-lender",
    "target": {"name": "outcome", "positive": "bad"},
    "id_columns": ["application_ref"],
    "features": [
        {"name": "housing", "kind": "category", "categories": ["rent", "own"],
         "description": "Housing", "reason": {"code": "H1", "text": "Housing situation"}},
        {"name": "late_payments", "kind": "integer", "minimum": 0, "risk": "increasing",
         "description": "Late payments", "reason": {"code": "L1", "text": "Late payments"}},
    ],
}


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
    from credit_explainer_tools.local.stack import ModelServer

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


def wait_for_ping(url: str, proc: Any, what: str, timeout: float = 60.0) -> None:
    """Until the server process at ``url`` answers ``GET /ping`` 200; fails the test if it dies."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = proc.communicate()[0] if proc.stdout is not None else ""
            pytest.fail(f"{what} did not start:\n{output}")
        time.sleep(0.1)


#: The region of the moto account (deploy and capture tests against moto's server).
MOTO_REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # port 0: the kernel picks a free one
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def account(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """An empty moto account; every boto3 session of this test (ours and the CLI's) uses it."""
    import httpx

    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # moto answers an unimplemented call with a 500
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    import boto3

    return boto3.Session(region_name=MOTO_REGION)
