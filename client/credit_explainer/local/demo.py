"""``make demo``: train if needed, start the local stack, score applicants through the API, print."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Final

import httpx

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

DEMO_THRESHOLDS: Final = "approve:0.08,review:0.25,decline"
_BAR: Final = 30


def ensure_model(model_dir: Path) -> bool:
    """Train a model on the embedded synthetic data when ``model_dir`` holds none (True: trained)."""
    if (model_dir / "metadata.json").exists():
        print(f"model: {model_dir}")
        return False
    print(f"no model in {model_dir}: training one on synthetic data ...", flush=True)
    commands: Any = importlib.import_module("credit_model.commands")
    started = time.perf_counter()
    commands.train_default(model_dir)
    print(f"trained in {time.perf_counter() - started:.1f} s")
    return True


def build_report(model_dir: Path) -> None:
    """Write the model validation report beside the model just trained (its held-out split)."""
    report: Any = importlib.import_module("credit_model.report")
    started = time.perf_counter()
    report.write(report.build(model_dir, thresholds=DEMO_THRESHOLDS), report_path(model_dir), None)
    print(f"validation report built in {time.perf_counter() - started:.1f} s")


def report_path(model_dir: Path) -> Path:
    return model_dir / str(importlib.import_module("credit_model.report").REPORT_FILE)


def render(result: dict[str, Any], top: int = 5) -> str:
    """One scored applicant as text: probability, decision, ranked contributions as bars."""
    lines = [
        f"applicant {result['index']}: P(serious delinquency in 2 years) = "
        f"{result['probability']:.3f}"
        + (f"  -> {result['decision']}" if result.get("decision") else "")
        + f"   (base value {result['base_value']:.3f})"
    ]
    contributions = result["contributions"]
    scale = max(abs(c["shap_value"]) for c in contributions) or 1.0
    for c in contributions[:top]:
        width = round(abs(c["shap_value"]) / scale * _BAR)
        bar = ("+" if c["shap_value"] > 0 else "-") * max(width, 1)
        value = "missing" if c["value"] is None else f"{c['value']:g}"
        lines.append(f"  {c['shap_value']:+.4f} {bar:<{_BAR}} {c['feature']} = {value}")
    rest = sum(c["shap_value"] for c in contributions[top:])
    lines.append(f"  {rest:+.4f} {'':<{_BAR}} {len(contributions) - top} other features")
    return "\n".join(lines)


def demo(model_dir: Path) -> int:
    if ensure_model(model_dir):
        build_report(model_dir)
    if report_path(model_dir).exists():
        print(f"validation report: {report_path(model_dir).resolve().as_uri()}")
    else:
        print(
            f"validation report: credit-explainer report --model-dir {model_dir} "
            f"--thresholds {DEMO_THRESHOLDS} [--data LABELLED.csv]"
        )
    with LocalStack(
        model_dir, environment={"DECISION_THRESHOLDS": DEMO_THRESHOLDS}, log_level="ERROR"
    ) as stack:
        print(f"local stack: scoring API {stack.api_url}, model server {stack.model_url}\n")
        with httpx.Client(base_url=stack.api_url, timeout=30.0) as http:
            health = http.get("/health")
            print(f"GET /health -> {health.status_code}")
            answer = http.post("/score", json=SAMPLE_APPLICANTS)
            print(f"POST /score ({len(SAMPLE_APPLICANTS)} applicants) -> {answer.status_code}")
            if answer.status_code != 200:
                print(answer.text, file=sys.stderr)
                return 1
            body = answer.json()
            print(f"model version {body['model_version']}, request id {body['request_id']}\n")
            for result in body["results"]:
                print(render(result))
                total = result["base_value"] + sum(c["shap_value"] for c in result["contributions"])
                print(f"  base value + contributions = {total:.6f} (the probability)\n")
            # The original blog's client double-encodes: the same numbers come back.
            blog = http.post(
                "/score",
                content=json.dumps(json.dumps(SAMPLE_APPLICANTS)),
                headers={"Content-Type": "application/json"},
            )
            same = blog.status_code == 200 and [
                r["probability"] for r in blog.json()["results"]
            ] == [r["probability"] for r in body["results"]]
            print(
                f"double-encoded request (the original blog's client) -> {blog.status_code}, "
                f"same probabilities: {same}"
            )
            bad = http.post("/score", json=[dict(SAMPLE_APPLICANTS[0], age=12, Age=45)])
            print(f"invalid applicant -> {bad.status_code}:")
            for detail in bad.json()["error"]["details"]:
                print(f"  applicant {detail['applicant']}, {detail['field']}: {detail['message']}")
    print("\nstopped the local stack")
    return 0
