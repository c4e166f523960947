"""``make demo``: train if needed, start the local stack, score applicants through the API, print.

Explanations are printed by the SDK's own renderer (``print(score)``), as a user would.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Final

import httpx
from credit_model.commands import DEFAULT_MODEL_DIR
from credit_schema import CONTENT_TYPE_JSON

from . import EXAMPLE_DECISION_THRESHOLDS
from .stack import LocalStack

#: Three applicants of the Give Me Some Credit kind (made up, not from the data set).
SAMPLE_APPLICANTS: Final[list[dict[str, Any]]] = [
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.12,
        "age": 58,
        "NumberOfTime30-59DaysPastDueNotWorse": 0,
        "DebtRatio": 0.21,
        "MonthlyIncome": 7400.0,
        "NumberOfOpenCreditLinesAndLoans": 9,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 1,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": 1,
    },
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.96,
        "age": 31,
        "NumberOfTime30-59DaysPastDueNotWorse": 2,
        "DebtRatio": 0.63,
        "MonthlyIncome": 2900.0,
        "NumberOfOpenCreditLinesAndLoans": 4,
        "NumberOfTimes90DaysLate": 1,
        "NumberRealEstateLoansOrLines": 0,
        "NumberOfTime60-89DaysPastDueNotWorse": 1,
        "NumberOfDependents": 2,
    },
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.45,
        "age": 44,
        "NumberOfTime30-59DaysPastDueNotWorse": 0,
        "DebtRatio": 1250.0,
        "MonthlyIncome": None,
        "NumberOfOpenCreditLinesAndLoans": 7,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 1,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": None,
    },
]


def ensure_model(model_dir: Path) -> bool:
    """Train a model on the embedded synthetic data when ``model_dir`` holds none (True: trained)."""
    if (model_dir / "metadata.json").exists():
        print(f"model: {model_dir}")
        return False
    print(f"no model in {model_dir}: training one on synthetic data ...", flush=True)
    from credit_model import commands

    started = time.perf_counter()
    commands.train_default(model_dir)
    print(f"trained in {time.perf_counter() - started:.1f} s")
    return True


def build_report(model_dir: Path) -> None:
    """Write the model validation report beside the model just trained (its held-out split)."""
    from credit_model import report

    started = time.perf_counter()
    report.write(
        report.build(model_dir, thresholds=EXAMPLE_DECISION_THRESHOLDS),
        report_path(model_dir),
        None,
    )
    print(f"validation report built in {time.perf_counter() - started:.1f} s")


def report_path(model_dir: Path) -> Path:
    from credit_model.report import REPORT_FILE

    return model_dir / REPORT_FILE


def demo(model_dir: Path, *, api_port: int = 0, model_port: int = 0) -> int:
    from credit_explainer import CreditExplainerClient

    if ensure_model(model_dir):
        build_report(model_dir)
    from credit_model.artifacts import model_schema
    from credit_schema import BUILTIN

    served = model_schema(model_dir)
    if served is not BUILTIN:  # the sample applicants are the built-in's
        print(
            f"error: {model_dir} is a model of the schema {served.name!r}; "
            "demo scores the built-in example's applicants: for your own model, "
            "credit-explainer up and credit-explainer score (docs/own-data.md)",
            file=sys.stderr,
        )
        return 2
    if report_path(model_dir).exists():
        print(f"validation report: {report_path(model_dir).resolve().as_uri()}")
    else:
        print(
            f"validation report: credit-explainer report --model-dir {model_dir} "
            f"--decision-thresholds {EXAMPLE_DECISION_THRESHOLDS} [--data LABELLED.csv]"
        )
    with LocalStack(
        model_dir,
        api_port=api_port,
        model_port=model_port,
        environment={"DECISION_THRESHOLDS": EXAMPLE_DECISION_THRESHOLDS},
        log_level="ERROR",
    ) as stack:
        print(f"local stack: scoring API {stack.api_url}, model server {stack.model_url}")
        print(
            f"decisions from the example thresholds {EXAMPLE_DECISION_THRESHOLDS} "
            "(yours: credit-explainer up --decision-thresholds ...)\n"
        )
        with (
            CreditExplainerClient(stack.api_url) as client,
            httpx.Client(base_url=stack.api_url, timeout=30.0) as http,
        ):
            print(f"GET /health -> {http.get('/health').status_code}")
            scores = client.score_many(SAMPLE_APPLICANTS)
            print(
                f"POST /score ({len(SAMPLE_APPLICANTS)} applicants) -> 200, model version "
                f"{scores.scores[0].model_version}\n"
            )
            for score in scores.scores:
                print(f"applicant {score.index}\n{score}\n")
            # The original blog's client double-encodes: the same numbers come back.
            blog = http.post(
                "/score",
                content=json.dumps(json.dumps(SAMPLE_APPLICANTS)),
                headers={"Content-Type": CONTENT_TYPE_JSON},
            )
            same = (
                blog.status_code == 200
                and [r["probability"] for r in blog.json()["results"]] == scores.probabilities()
            )
            print(
                f"double-encoded request (the original blog's client) -> {blog.status_code}, "
                f"same probabilities: {same}"
            )
            bad = http.post("/score", json=[dict(SAMPLE_APPLICANTS[0], age=12, Age=45)])
            print(f"invalid applicant -> {bad.status_code}:")
            for detail in bad.json()["error"]["details"]:
                print(f"  applicant {detail['applicant']}, {detail['field']}: {detail['message']}")
    print("\nstopped the local stack")
    print(next_steps(model_dir))
    return 0


def _command() -> str:
    """This command as a shell here calls it: by name when PATH finds this one, else by its path
    (make demo runs .venv/bin/credit-explainer, which a fresh shell's PATH does not hold)."""
    here = Path(sys.executable).parent / "credit-explainer"
    found = shutil.which("credit-explainer")
    if not here.exists() or (found is not None and Path(found).resolve() == here.resolve()):
        return "credit-explainer"
    return str(here.relative_to(Path.cwd()) if here.is_relative_to(Path.cwd()) else here)


def next_steps(model_dir: Path) -> str:
    """What to do after the demo: the commands a newcomer runs next, ready to paste."""
    model = "" if model_dir == Path(DEFAULT_MODEL_DIR) else f" --model-dir {model_dir}"
    run = _command()
    return (
        "\nnext:\n"
        f"  {run} up{model} --decision-thresholds {EXAMPLE_DECISION_THRESHOLDS}\n"
        "      the same stack until Ctrl-C, at http://127.0.0.1:3000 (Swagger UI: /swagger)\n"
        f"  {run} synth --rows 100 -o applicants.csv\n"
        f"  {run} score applicants.csv --url http://127.0.0.1:3000\n"
        "      score a file through it (in another terminal); the client: docs/client.md\n"
        f"  {run} deploy --region REGION --dry-run\n"
        "      what deploying to AWS would do, without doing it (docs/deployment.md)"
    )
