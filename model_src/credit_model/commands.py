"""``credit-explainer synth | train | import | serve-model | bench``."""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

from credit_schema import SPACES

#: Where ``train`` and the demo put a model when no directory is given.
DEFAULT_MODEL_DIR: Final = Path("models") / "default"
#: The benchmark harness lives with the tests, in the source checkout: it holds the
#: original blog's scoring path as its reference, which is never part of the product.
BENCH_SCRIPT: Final = Path("tests") / "bench" / "bench_explain.py"


def train_default(
    model_dir: str | Path = DEFAULT_MODEL_DIR, *, data: str | Path | None = None
) -> dict[str, Any]:
    """Train with the default hyperparameters (on the synthetic data when ``data`` is None)."""
    from .train import load_training_data, train

    frame, source = load_training_data(data)
    return train(frame, model_dir, data_source=source, for_people=True)  # the demo's terminal


def _synth(args: argparse.Namespace) -> int:
    from .synth import generate

    if args.rows < 1:
        print("error: --rows must be at least 1", file=sys.stderr)
        return 2
    frame = generate(args.rows, seed=args.seed)
    if args.output in (None, "-"):
        frame.to_csv(sys.stdout, index=False)
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.output, index=False)
        print(f"wrote {len(frame)} rows to {args.output}", file=sys.stderr)
    return 0


def _schema(path: str | None) -> Any:
    """The compiled ``--schema`` (the built-in one without it); warns of texts under review."""
    from credit_schema import BUILTIN, compile_schema, load_schema

    from .infer import review_marks

    if not path:
        return BUILTIN
    document = load_schema(path)
    marks = review_marks(document)
    if marks:
        print(
            f"warning: {path}: {len(marks)} text(s) still marked for review "
            f"(credit-explainer schema check {path})",
            file=sys.stderr,
        )
    return compile_schema(document)


def _train(args: argparse.Namespace) -> int:
    from .artifacts import ModelArtifactError
    from .data import load_csv
    from .train import hyperparameters_from, load_training_data, train

    started = time.perf_counter()
    try:
        schema = _schema(args.schema)
        frame, source = load_training_data(
            args.data, rows=args.rows, seed=args.seed, schema=schema
        )
        test = load_csv(args.test_data, schema) if args.test_data else None
        print(f"training on {source}: {len(frame)} rows", flush=True)
        train(
            frame,
            args.model_dir,
            hyperparameters=hyperparameters_from(args),
            test_data=test,
            data_source=source,
            schema=schema,
            for_people=True,
        )
    # SchemaError, DataError, one-class data, bad hyperparameters, a signing key
    except (ValueError, ModelArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def _schema_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--schema",
        help="the data set's schema file, .json or .yaml (default: the built-in Give Me Some "
        "Credit schema; credit-explainer schema infer drafts one)",
    )


def _model_dir_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model-dir",
        default=str(DEFAULT_MODEL_DIR),
        help=f"where to write the model (default: {DEFAULT_MODEL_DIR})",
    )


def _import(args: argparse.Namespace) -> int:
    """``import``: a model fitted elsewhere, into a model directory."""
    from .artifacts import ModelArtifactError
    from .data import load_csv
    from .train import import_model

    try:
        schema = _schema(args.schema)
        import_model(
            args.estimator,
            load_csv(args.data, schema),
            args.model_dir,
            space=args.space,
            points=args.points or "",
            data_source=str(args.data),
            schema=schema,
            for_people=True,
        )
    # SchemaError, DataError, a file that is no model or not covered, a signing key
    except (ValueError, ModelArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _report(args: argparse.Namespace) -> int:
    from .artifacts import ModelArtifactError
    from .report import REPORT_FILE, build, write
    from .report.html import ReportDependencyError

    if args.no_html:
        if not args.json:
            print("error: --no-html leaves nothing to write: add --json FILE", file=sys.stderr)
            return 2
        args.output = None
    elif not args.output:  # --json adds the figures; it does not replace the page
        args.output = str(Path(args.model_dir) / REPORT_FILE)
    started = time.perf_counter()
    try:
        report = build(
            args.model_dir,
            args.data,
            holdout=args.holdout,
            thresholds=args.thresholds,
            prohibited=args.prohibited,
        )
        write(report, args.output, args.json)
    except (ModelArtifactError, ValueError, ReportDependencyError) as exc:  # DataError, thresholds
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reg, mono = report.figures["regulation_b"], report.figures["monotonicity"]
    d = report.figures["discrimination"]
    print(
        f"AUC {d['auc']:.4f}, Gini {d['gini']:.4f}, KS {d['ks']:.4f}; Regulation B "
        f"{'pass' if reg['passed'] else 'FAIL'} ({reg['age_raises_risk']} of "
        f"{reg['elderly_applicants']} aged 62+); monotonicity "
        f"{'pass' if mono['passed'] else 'FAIL'}"
    )
    failed = [v["check"] for v in report.figures["verdicts"] if not v["passed"]]
    for check in failed:
        print(f"check failed: {check}")
    for path in (args.output, args.json):
        if path:
            print(f"wrote {path}")
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 1 if args.strict and failed else 0


def _serve(args: argparse.Namespace) -> int:
    # Start-up makes ~200,000 objects that all live as long as the server: collecting while
    # they are made is ~10% of a fresh start. run() turns the collector back on once loaded.
    gc.disable()
    # Before numpy loads, on either path: OpenBLAS's worker thread would spin at start (~40 ms
    # of CPU) on the cores the server uses, and neither path needs it. The kernels, shap's
    # TreeExplainer (its C extension) and the trees' predictions call no BLAS; its only calls
    # are the interventional explainer's margins (one matrix-vector product of its background
    # or cutoff pool, built once); large requests have the server's own threads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .explain import explainer_kind
    from .forest import TABLES_FILE

    if (Path(args.model_dir) / TABLES_FILE).is_file() and explainer_kind() != "shap":
        # Served from its tables (numpy and the kernel only), this process needs neither scipy
        # nor cffi, which numba imports on its first load for linear algebra and C calls
        # (see docs/performance.md).
        for unused in ("scipy", "cffi"):
            if unused not in sys.modules:
                sys.modules[unused] = None  # type: ignore[assignment]  # None: "not importable"
    from .server import STARTUP_ERRORS, run

    try:
        run(
            args.model_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            endpoint_name=args.endpoint_name,
            log_level=args.log_level,
            timeout=args.timeout,
            capture_dir=args.capture_dir,
        )
    except STARTUP_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        gc.enable()  # a start that failed (run() enables it once the model is loaded)
    return 0


def _warm_up(args: argparse.Namespace) -> int:
    from . import interventional
    from .kernel import compile_kernel

    started = time.perf_counter()
    kernel = compile_kernel()
    where = getattr(getattr(kernel, "_cache", None), "cache_path", None)  # numba's, if on disk
    cached = f"cached in {where}" if where else "not cached: no writable cache directory"
    print(f"TreeSHAP kernel ready in {time.perf_counter() - started:.1f} s, {cached}")
    interventional.warm_up()
    return 0


def _bench(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parents[2] / BENCH_SCRIPT
    if not script.is_file():
        print(
            "error: the benchmark runs from a source checkout of credit-explainer "
            f"({BENCH_SCRIPT} was not found next to this installation): "
            "clone the repository and run `make bench`",
            file=sys.stderr,
        )
        return 2
    forwarded = [
        *(["--quick"] if args.quick else []),
        *(["--no-http"] if args.no_http else []),
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--out", args.out] if args.out else []),
    ]
    return subprocess.call([sys.executable, str(script), *forwarded])  # noqa: S603 - our own script


def _lazy_hyperparameters(parser: argparse.ArgumentParser) -> None:
    """Add train's hyperparameter options when ``train`` is chosen, not when the CLI starts.

    They are defined in train.py, which needs numpy: ``credit-explainer --help`` and the
    client-only install's ``score`` must not import it.
    """
    parse = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        if not any(a.dest == "n_estimators" for a in parser._actions):
            try:
                from .train import add_hyperparameter_arguments
            except ModuleNotFoundError:
                if not {"-h", "--help"} & set(args or ()):
                    raise  # training itself: the CLI names what to install
                parser.epilog = (
                    "The hyperparameter options are listed once the model's dependencies are installed "
                    "(`credit-explainer train` says how)."
                )
            else:
                add_hyperparameter_arguments(parser)
        return parse(args, namespace)

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "synth",
        help="write the seeded synthetic data set as CSV",
        description="Write rows drawn like Give Me Some Credit's (target and ten features), "
        "from a seed: the default training data when there is no real data.",
    )
    p.add_argument("--rows", type=int, default=20_000, help="rows to generate (default: 20000)")
    p.add_argument("--seed", type=int, default=20_101, help="random seed (default: 20101)")
    p.add_argument("-o", "--output", help="CSV file to write (default: stdout)")
    p.set_defaults(func=_synth)

    p = sub.add_parser(
        "train",
        help="train the model locally and write a model directory",
        description="Train a model (--model: the estimator family) on a data set (--schema: its "
        "schema); print held-out ROC AUC, PR AUC, Brier score and log loss.",
    )
    p.add_argument("--data", help="CSV file or directory of CSVs (default: the synthetic data)")
    _schema_argument(p)
    p.add_argument("--test-data", help="held-out CSV (default: a stratified split of --data)")
    _model_dir_argument(p)
    p.add_argument("--rows", type=int, help="synthetic rows when no --data (default: 20000)")
    p.add_argument("--seed", type=int, help="synthetic seed when no --data (default: 20101)")
    _lazy_hyperparameters(p)
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "import",
        help="write a model directory for a model fitted elsewhere (XGBoost, LightGBM, skops)",
        description="Compile a model the lender already fitted (XGBoost JSON/UBJSON, LightGBM "
        "text, scikit-learn .skops) into a model directory served like one trained here: "
        "metrics, baselines and the probability-space background from --data.",
    )
    p.add_argument(
        "--estimator",
        required=True,
        help="the fitted model's file: XGBoost .json/.ubj, LightGBM .txt or scikit-learn .skops",
    )
    p.add_argument("--data", required=True, help="labelled CSV file or directory")
    _schema_argument(p)
    _model_dir_argument(p)
    p.add_argument(
        "--space",
        choices=SPACES,
        default="probability",
        help="where explanations add up unless a request asks otherwise (default: probability)",
    )
    p.add_argument("--points", help="scorecard points SCORE:ODDS:PDO (default: none)")
    p.set_defaults(func=_import)

    p = sub.add_parser(
        "report",
        help="model validation report (HTML and JSON): discrimination, calibration, "
        "explanations, stability, segments, reasons, fair-lending checks",
        description="Score a labelled data set with the model and its exact TreeSHAP "
        "explanations; write one self-contained HTML file (plots embedded) and, with --json, "
        "the figures as JSON too (--no-html: the JSON alone).",
    )
    p.add_argument(
        "--model-dir",
        default=str(DEFAULT_MODEL_DIR),
        help=f"trained model directory (default: {DEFAULT_MODEL_DIR})",
    )
    p.add_argument(
        "--data",
        help="labelled CSV file or directory (default: the model's synthetic training data, "
        "regenerated, held-out split)",
    )
    p.add_argument(
        "--holdout",
        action="store_true",
        help="report on the split training held out, when --data is the training data "
        "(default: every row of --data)",
    )
    p.add_argument("-o", "--output", help="HTML file (default: MODEL_DIR/report.html)")
    p.add_argument("--json", help="also write the figures as JSON to this file (default: none)")
    p.add_argument(
        "--no-html",
        action="store_true",
        help="write only --json's figures: no HTML, no matplotlib needed (default: the HTML too)",
    )
    p.add_argument(
        "--decision-thresholds",
        dest="thresholds",
        metavar="BANDS",
        help="decision bands as label:upper bound, e.g. approve:0.08,review:0.2,decline, "
        "as `up` takes them (default: none)",
    )
    # The name this option had before it was spelt as up's: scripts that use it still work.
    p.add_argument("--thresholds", dest="thresholds", help=argparse.SUPPRESS)
    p.add_argument(
        "--prohibited",
        action="append",
        metavar="COLUMN",
        help="a prohibited-basis attribute of the model's schema (sex, marital status, ...) to "
        "test for disparate impact: approval rates and adverse impact ratios by its groups; "
        "repeatable (default: every one the schema names that --data holds)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a check fails: Regulation B, monotonicity, calibration, disparate "
        "impact (default: exit 0 with the failures reported)",
    )
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "serve-model",
        aliases=["serve"],
        help="serve a model directory with the SageMaker container contract and runtime API",
        description="The model container's server: GET /ping, POST /invocations (and "
        "/endpoints/NAME/invocations, as the SageMaker runtime API), on loopback by default.",
    )
    p.add_argument(
        "--model-dir",
        default=str(DEFAULT_MODEL_DIR),
        help=f"trained model directory (default: {DEFAULT_MODEL_DIR})",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        help="port to listen on (default: $SAGEMAKER_BIND_TO_PORT or 8080)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="worker processes, each loading the model once (default: "
        "$SAGEMAKER_MODEL_SERVER_WORKERS or 1)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds per request before a 504 (default: $SAGEMAKER_MODEL_SERVER_TIMEOUT or 60)",
    )
    p.add_argument(
        "--endpoint-name",
        help="also answer on /endpoints/NAME/invocations (default: /invocations only)",
    )
    p.add_argument(
        "--capture",
        "--capture-dir",  # its earlier name, kept working
        dest="capture_dir",
        metavar="DIR",
        help="write every successful invocation to DIR/<endpoint>/AllTraffic/yyyy/mm/dd/hh/*.jsonl "
        "in SageMaker Data Capture's format (default: no capture)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="server log level (default: info)",
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "warm-up",
        help="compile the TreeSHAP kernel into numba's cache now (the model image's build runs "
        "it, so a new container does not compile)",
        description="Compile the TreeSHAP kernel into numba's on-disk cache, so that the next "
        "model server starts without compiling (several seconds). Prints where the cache is.",
    )
    p.set_defaults(func=_warm_up)

    p = sub.add_parser(
        "bench",
        help="benchmark the scoring path against the original blog's (make bench runs it, "
        "then the HTTP serving benchmarks)",
        description="Train on ../shared's real data when present (synthetic otherwise), then time "
        "the original blog's path and ours in one process, alternating; check that both give the "
        "same probabilities and SHAP values to 1e-9; print ratios; write out/bench.json.",
    )
    p.add_argument(
        "--quick", action="store_true", help="a few runs only, as a smoke test (default: every run)"
    )
    p.add_argument(
        "--no-http", action="store_true", help="skip the model server over HTTP (default: included)"
    )
    p.add_argument("--threads", type=int, help="threads for large requests (default: the CPUs)")
    p.add_argument("--out", help="results JSON (default: out/bench.json)")
    p.set_defaults(func=_bench)
