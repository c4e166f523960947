"""Regenerate the sample API Gateway events in this directory.

Each event starts as ``sam local generate-event apigateway aws-proxy`` output
(the REST/v1 proxy shape API Gateway sends the Lambda) and is then edited: the
body, the resource and path, JSON headers, and the generator's placeholders
(``foo=bar`` query string, ``{proxy+}`` path parameters, stage variables)
removed. ``generate-event`` writes the body base64-encoded with
``isBase64Encoded: true``; the single-applicant event keeps that form, the
others carry text bodies as API Gateway sends them without binary media types.

    python events/generate.py        # needs `sam` (the dev extra) on PATH or in .venv/bin
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

APPLICANT = {
    "RevolvingUtilizationOfUnsecuredLines": 0.766,
    "age": 45,
    "NumberOfTime30-59DaysPastDueNotWorse": 2,
    "DebtRatio": 0.803,
    "MonthlyIncome": 9120.0,
    "NumberOfOpenCreditLinesAndLoans": 13,
    "NumberOfTimes90DaysLate": 0,
    "NumberRealEstateLoansOrLines": 6,
    "NumberOfTime60-89DaysPastDueNotWorse": 0,
    "NumberOfDependents": 2,
}
BATCH = [
    APPLICANT,
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.957,
        "age": 40,
        "NumberOfTime30-59DaysPastDueNotWorse": 0,
        "DebtRatio": 0.122,
        "MonthlyIncome": 2600.0,
        "NumberOfOpenCreditLinesAndLoans": 4,
        "NumberOfTimes90DaysLate": 0,
        "NumberRealEstateLoansOrLines": 0,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": 1,
    },
    {
        "RevolvingUtilizationOfUnsecuredLines": 0.658,
        "age": 38,
        "NumberOfTime30-59DaysPastDueNotWorse": 1,
        "DebtRatio": 0.085,
        "MonthlyIncome": None,
        "NumberOfOpenCreditLinesAndLoans": 2,
        "NumberOfTimes90DaysLate": 1,
        "NumberRealEstateLoansOrLines": 0,
        "NumberOfTime60-89DaysPastDueNotWorse": 0,
        "NumberOfDependents": None,
    },
]
INVALID = [
    dict(APPLICANT, age=12),  # under 18
    {**{k: v for k, v in APPLICANT.items() if k != "age"}, "Age": 45},  # misspelt field
]


def _sam() -> str:
    local = Path(sys.executable).parent / "sam"
    found = str(local) if local.exists() else shutil.which("sam")
    if not found:
        raise SystemExit("sam not found: install the dev tools (make venv)")
    return found


def generate(method: str, path: str, body: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [
            _sam(),
            "local",
            "generate-event",
            "apigateway",
            "aws-proxy",
            "--method",
            method,
            "--resource",
            path,
            "--path",
            path.lstrip("/"),
            "--stage",
            "v1",
            "--body",
            body,
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    ).stdout
    event: dict[str, Any] = json.loads(out)
    return event


def edit(
    event: dict[str, Any],
    *,
    body: str | None,
    base64_body: bool = False,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    if body is None:
        event["body"], event["isBase64Encoded"] = None, False
    elif base64_body:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    event["pathParameters"] = None
    event["stageVariables"] = None
    extra = {"Accept": "application/json", "x-api-key": "local-example-key"}
    if body is not None:
        extra["Content-Type"] = "application/json; charset=utf-8"
    extra.update(headers or {})
    event["headers"].update(extra)
    event["multiValueHeaders"].update({k: [v] for k, v in extra.items()})
    return event


def main() -> None:
    single = json.dumps(APPLICANT)
    batch = json.dumps(BATCH)
    columns = json.dumps({k: {str(i): a[k] for i, a in enumerate(BATCH)} for k in APPLICANT})
    events = {
        # generate-event's own form: base64 body, isBase64Encoded true
        "score-single.json": edit(
            generate("POST", "/score", single), body=single, base64_body=True
        ),
        "score-batch.json": edit(generate("POST", "/score", batch), body=batch),
        # the original blog's client: data=json.dumps(df.to_json(orient="records"))
        "score-double-encoded.json": edit(
            generate("POST", "/score", batch),
            body=json.dumps(batch),
            headers={"Content-Type": "application/json"},
        ),
        "score-columns.json": edit(generate("POST", "/score", columns), body=columns),
        "score-legacy.json": edit(
            generate("POST", "/score", batch), body=batch, query={"format": "legacy"}
        ),
        "score-invalid.json": edit(
            generate("POST", "/score", json.dumps(INVALID)), body=json.dumps(INVALID)
        ),
        "health.json": edit(generate("GET", "/health", ""), body=None),
        "get-schema.json": edit(generate("GET", "/schema", ""), body=None),
    }
    for name, event in events.items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
