"""``credit-explainer up`` and ``credit-explainer demo``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from credit_model.commands import DEFAULT_MODEL_DIR


def register(subparsers: Any) -> None:
    from . import EXAMPLE_DECISION_THRESHOLDS

    up = subparsers.add_parser(
        "up",
        help="run the local stack: model server + scoring API on loopback (Ctrl-C stops)",
        description=(
            "Start the model server and a local API Gateway running the real scoring handler. "
            "POST applicants to {api}/score; GET {api}/health; GET {api}/swagger (Swagger UI)."
        ),
    )
    up.add_argument(
        "--model-dir",
        default=DEFAULT_MODEL_DIR,
        help=f"trained model directory (default: {DEFAULT_MODEL_DIR})",
    )
    up.add_argument("--port", type=int, default=3000, help="scoring API port (default: 3000)")
    up.add_argument(
        "--model-port", type=int, default=8080, help="model server port (default: 8080)"
    )
    up.add_argument(
        "--api-key", help="require this x-api-key, as API Gateway does (default: none; 403 without)"
    )
    up.add_argument(
        "--decision-thresholds",
        metavar="BANDS",
        help=(
            "decision bands, label:upper bound, the last label takes the rest, e.g. "
            f"{EXAMPLE_DECISION_THRESHOLDS} (default: none: probabilities only, no decision)"
        ),
    )
    up.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another function environment variable, e.g. MAX_APPLICANTS=500; repeatable "
        "(default: none)",
    )
    up.add_argument(
        "--log-level",
        default="WARNING",
        help="the function's log level; INFO prints its JSON line per request, as CloudWatch "
        "gets it (default: WARNING: failures only)",
    )
    up.add_argument(
        "--records",
        metavar="DIR",
        help="decision records: every answer kept (fsync'd) before it is sent, one JSON line "
        "each under DIR/yyyy/mm/dd/hh/; a request whose record cannot be written gets a 503 "
        "(default: none; read them with decisions and monitor --records DIR)",
    )
    up.add_argument(
        "--capture",
        "--capture-dir",  # its earlier name, kept working
        dest="capture_dir",
        metavar="DIR",
        help="model-side data capture: every invocation in SageMaker Data Capture's format under "
        "DIR/credit-explainer-local/AllTraffic/yyyy/mm/dd/hh/ (default: none)",
    )
    up.set_defaults(func=run_up)

    demo = subparsers.add_parser(
        "demo",
        help="train if needed, start the local stack, score sample applicants, print explanations",
        description=(
            "Train a model on the synthetic data if --model-dir holds none (about 10 s with its "
            "validation report), "
            "start the local stack with the example decision thresholds "
            f"{EXAMPLE_DECISION_THRESHOLDS}, score three sample applicants through the API, "
            "print their explanations, stop."
        ),
    )
    demo.add_argument(
        "--model-dir",
        default=DEFAULT_MODEL_DIR,
        help=f"model directory, trained if absent (default: {DEFAULT_MODEL_DIR})",
    )
    demo.add_argument("--port", type=int, default=0, help="scoring API port (default: a free port)")
    demo.add_argument(
        "--model-port", type=int, default=0, help="model server port (default: a free port)"
    )
    demo.set_defaults(func=run_demo)


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env wants NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def run_up(args: argparse.Namespace) -> int:
    from credit_model import artifacts, server  # the model side, as the stack's

    from .stack import ListenError, LocalStack

    model_dir = Path(args.model_dir)
    if not (model_dir / "metadata.json").exists():
        print(f"error: {artifacts.no_model(model_dir)}", file=sys.stderr)
        return 2
    stack = LocalStack(
        model_dir,
        api_port=args.port,
        model_port=args.model_port,
        api_key=args.api_key,
        environment={
            **_parse_env(args.env),
            **(
                {"DECISION_THRESHOLDS": args.decision_thresholds}
                if args.decision_thresholds
                else {}
            ),
        },
        log_level=args.log_level,
        capture_dir=args.capture_dir,
        records_dir=args.records,
    )
    if args.records:
        try:
            Path(args.records).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"error: cannot make the records directory {args.records}: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return 2
    try:
        stack.__enter__()
    except (*server.STARTUP_ERRORS, ListenError) as exc:  # the user's to fix: no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as entered:
        entered.push(stack)  # entered above: stopped on the way out
        print(
            f"model server  {stack.model_url}  "
            f"(SageMaker runtime: POST /endpoints/{stack.endpoint_name}/invocations)"
        )
        print(f"scoring API   {stack.api_url}  (POST /score, GET /health, GET /swagger)")
        if args.api_key:
            print("              requires the header x-api-key")
        if args.decision_thresholds:
            print(f"decisions     {args.decision_thresholds}")
        if args.records:
            print(f"records       {args.records}/yyyy/mm/dd/hh/")
        if args.capture_dir:
            print(f"data capture  {args.capture_dir}/{stack.endpoint_name}/")
        print("Ctrl-C stops both.", flush=True)
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print("stopping", file=sys.stderr)
    if stack.capture is not None:  # stopped and flushed: what was written and dropped
        print(stack.capture.summary, file=sys.stderr)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .demo import demo
    from .stack import ListenError

    try:
        return demo(Path(args.model_dir), api_port=args.port, model_port=args.model_port)
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
