"""``credit-explainer decisions show|export|replay``: the decisions data capture kept, read back.

Reads capture files in SageMaker Data Capture's format and path scheme: what
``serve-model --capture-dir`` and ``up --capture-dir`` write, or a copy of an endpoint's
capture prefix (``aws s3 sync s3://bucket/prefix DIR``). ``show`` and ``export`` need no
model: every figure comes from the captured answer, exactly as it was sent. ``replay``
re-scores every captured input with a model directory and reports any answer that differs.
"""

from __future__ import annotations

import argparse
import base64
import csv
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_model.commands import DEFAULT_MODEL_DIR
from credit_schema import (
    CONTENT_TYPE_JSONLINES,
    FEATURES,
    PayloadError,
    body_records,
    media_type,
)

MAX_REASONS_COLUMNS = 4
CAPTURE_HELP = "capture directory, or s3://bucket/prefix of an endpoint's capture (default: none)"
#: Largest difference in a probability or SHAP value that replay accepts as the same answer.
REPLAY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Decision:
    """One captured invocation: its applicants and the answer the model sent for them."""

    inference_id: str
    time: str
    model_version: str
    reason_codes_version: str | None
    applicants: list[dict[str, Any]]
    explanations: list[dict[str, Any]]


def _body(part: dict[str, str]) -> bytes:
    data = part["data"]
    return base64.b64decode(data) if part.get("encoding") == "BASE64" else data.encode()


def _decision(record: dict[str, Any]) -> Decision:
    meta, data = record["eventMetadata"], record["captureData"]
    sent, answered = data["endpointInput"], data["endpointOutput"]
    applicants = body_records(_body(sent), media_type(sent["observedContentType"]))
    if media_type(answered["observedContentType"]) == CONTENT_TYPE_JSONLINES:
        lines = [json.loads(line) for line in _body(answered).splitlines() if line.strip()]
        answer = {"model_version": lines[0]["model_version"], "predictions": lines}
        answer["reason_codes_version"] = lines[0].get("reason_codes_version")
    else:
        answer = json.loads(_body(answered))
    return Decision(
        inference_id=meta["inferenceId"],
        time=meta["inferenceTime"],
        model_version=answer["model_version"],
        reason_codes_version=answer.get("reason_codes_version"),
        applicants=applicants,
        explanations=answer["predictions"],
    )


class CaptureReadError(ValueError):
    """A capture that could not be read from S3 (the message says why)."""


def _s3_files(url: str) -> Iterator[Iterator[str]]:
    """The lines of each capture file under ``s3://bucket/prefix``, in key order (time order)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise CaptureReadError(
            "reading s3:// needs boto3: pip install 'credit-explainer[deploy]'"
        ) from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        s3 = boto3.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for p in pages for o in p.get("Contents", []))
        for key in keys:
            if key.endswith(".jsonl"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"]
                yield (line.decode("utf-8") for line in body.iter_lines())
    except (BotoCoreError, ClientError) as exc:
        raise CaptureReadError(str(exc)) from None


def _local_files(root: Path) -> Iterator[Iterator[str]]:
    for path in sorted(root.rglob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            yield lines


def read_decisions(root: Path | str) -> Iterator[Decision]:
    """Every captured decision under ``root`` (a directory or ``s3://bucket/prefix``), oldest
    file first."""
    files = _s3_files(root) if isinstance(root, str) else _local_files(root)
    for lines in files:
        for line in lines:
            if line.strip():
                yield _decision(json.loads(line))


def _show(decision: Decision) -> str:
    out = [
        f"decision {decision.inference_id} at {decision.time}, model {decision.model_version}"
        + (
            f", reason codes {decision.reason_codes_version}"
            if decision.reason_codes_version
            else ""
        )
    ]
    for i, (applicant, explanation) in enumerate(
        zip(decision.applicants, decision.explanations, strict=True)
    ):
        out.append(
            f"applicant {i}: probability {explanation['probability']:.6f}, "
            f"base value {explanation['base_value']:.6f}"
            + (f", decision {explanation['decision']}" if explanation.get("decision") else "")
        )
        out.append("  inputs: " + ", ".join(f"{f}={applicant.get(f)}" for f in FEATURES))
        for c in explanation["contributions"]:
            value = "missing" if c["value"] is None else f"{c['value']:g}"
            out.append(f"  {c['shap_value']:+.6f}  {c['feature']} = {value}")
        for r in explanation.get("reasons", []):
            out.append(f"  reason {r['code']}: {r['text']}")
    return "\n".join(out)


def _rows(decision: Decision) -> Iterator[list[Any]]:
    for i, (applicant, explanation) in enumerate(
        zip(decision.applicants, decision.explanations, strict=True)
    ):
        reasons = [r["text"] for r in explanation.get("reasons", [])][:MAX_REASONS_COLUMNS]
        yield [
            decision.inference_id,
            decision.time,
            decision.model_version,
            i,
            *(applicant.get(f) for f in FEATURES),
            explanation["probability"],
            explanation["base_value"],
            explanation.get("decision", ""),
            ";".join(r["code"] for r in explanation.get("reasons", [])),
            *reasons,
            *[""] * (MAX_REASONS_COLUMNS - len(reasons)),
        ]


def add_model_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-dir",
        default=str(DEFAULT_MODEL_DIR),
        help=f"model directory (default: {DEFAULT_MODEL_DIR})",
    )


def capture_location(args: argparse.Namespace) -> Path | str | None:
    """The local capture directory or the ``s3://`` location; None after an error line."""
    if str(args.capture).startswith("s3://"):
        if not str(args.capture).removeprefix("s3://").partition("/")[0]:
            print(f"error: no bucket in {args.capture} (s3://bucket/prefix)", file=sys.stderr)
            return None
        return str(args.capture)
    root = Path(args.capture)
    if not root.is_dir():
        print(f"error: no capture directory {root}", file=sys.stderr)
        return None
    return root


def _run_show(args: argparse.Namespace) -> int:
    root = capture_location(args)
    if root is None:
        return 2
    try:
        found = next((d for d in read_decisions(root) if d.inference_id == args.request_id), None)
    except (ValueError, KeyError, PayloadError) as exc:  # a file that is not capture data
        print(f"error: unreadable capture under {root}: {exc}", file=sys.stderr)
        return 2
    if found is None:
        print(f"error: no decision {args.request_id} under {root}", file=sys.stderr)
        return 1
    print(_show(found))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    root = capture_location(args)
    if root is None:
        return 2
    header = [
        "request_id", "time", "model_version", "index", *FEATURES, "probability", "base_value",
        "decision", "reason_codes", *(f"reason_{i + 1}" for i in range(MAX_REASONS_COLUMNS)),
    ]  # fmt: skip
    count = 0
    try:
        with Path(args.output).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for decision in read_decisions(root):
                for row in _rows(decision):
                    writer.writerow(row)
                    count += 1
    except (ValueError, KeyError, PayloadError) as exc:
        print(f"error: unreadable capture under {root}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} decision(s) to {args.output}", file=sys.stderr)
    return 0


def _difference(old: dict[str, Any], new: dict[str, Any]) -> float:
    """Largest |difference| in probability and SHAP values; inf when the reasons differ."""
    if old.get("reasons") != new.get("reasons"):
        return float("inf")
    shap_old = {c["feature"]: c["shap_value"] for c in old["contributions"]}
    shap_new = {c["feature"]: c["shap_value"] for c in new["contributions"]}
    gaps = [abs(shap_old[f] - shap_new[f]) for f in FEATURES]
    return float(max([abs(old["probability"] - new["probability"]), *gaps]))


def _run_replay(args: argparse.Namespace) -> int:
    root = capture_location(args)
    if root is None:
        return 2
    # The model side (the model extra), imported only for replay.
    handlers: Any = importlib.import_module("credit_model.handlers")
    server: Any = importlib.import_module("credit_model.server")
    try:
        model = handlers.model_fn(args.model_dir)
    except server.STARTUP_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    replayed = differ = other = 0
    try:
        for decision in read_decisions(root):
            if decision.model_version != model.version:
                other += 1
                print(
                    f"{decision.inference_id}: made by model {decision.model_version}, not this one"
                )
                continue
            body = json.dumps({"instances": decision.applicants})
            # In the space the decision was explained in (a boosted model answers in two).
            space = (decision.explanations[:1] or [{}])[0].get("space")
            answer = json.loads(
                handlers.transform(model, body, "application/json", None, space=space)[0]
            )
            for i, (old, new) in enumerate(
                zip(decision.explanations, answer["predictions"], strict=True)
            ):
                replayed += 1
                gap = _difference(old, new)
                if not gap <= REPLAY_TOLERANCE:
                    differ += 1
                    print(f"{decision.inference_id} applicant {i}: differs (by {gap:.3g})")
    except (ValueError, KeyError, PayloadError) as exc:
        print(f"error: unreadable capture under {root}: {exc}", file=sys.stderr)
        return 2
    print(
        f"replayed {replayed} applicant(s) with model {model.version}: {differ} differ; "
        f"{other} decision(s) made by another model"
    )
    return 1 if differ else 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "decisions",
        help="decisions kept by data capture: show one by request id, or export them as CSV",
    )
    steps = p.add_subparsers(dest="step", metavar="STEP", required=True)
    show = steps.add_parser(
        "show", help="one decision: inputs, probability, contributions, reasons"
    )
    show.add_argument("request_id", help="the API request id (the capture's inferenceId)")
    show.add_argument("--capture", required=True, help=CAPTURE_HELP)
    show.set_defaults(func=_run_show)
    export = steps.add_parser("export", help="every captured decision as CSV, one row an applicant")
    export.add_argument("--capture", required=True, help=CAPTURE_HELP)
    export.add_argument(
        "-o", "--output", default="decisions.csv", help="CSV file (default: decisions.csv)"
    )
    export.set_defaults(func=_run_export)
    replay = steps.add_parser(
        "replay",
        help="re-score every captured input with a model; report any answer that differs (exit 1)",
    )
    replay.add_argument("--capture", required=True, help=CAPTURE_HELP)
    add_model_dir(replay)
    replay.set_defaults(func=_run_replay)
