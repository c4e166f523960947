"""Training: median imputation + random forest, held-out metrics, model directory.

Runs three ways, with the same code:

* SageMaker script mode (``model_src/entry_point.py`` as ``entry_point``): reads
  ``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``, optional ``SM_CHANNEL_TEST`` and
  ``SM_OUTPUT_DATA_DIR``; hyperparameters arrive as ``--name value`` arguments;
* ``credit-explainer train --data PATH --model-dir DIR``;
* :func:`train` from Python.

Metrics are printed as ``validation:roc_auc=0.861234;`` lines that
:data:`METRIC_DEFINITIONS` (SageMaker training-job metric definitions) match; the command
prints them as one line for people instead (``for_people=True``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from credit_schema import BUILTIN, SPACES, ApplicantSchema
from credit_schema.points import Scorecard

from . import artifacts, constraints, families, monitor, stability
from .data import DataError, load_csv, split_xy
from .families.forest import NO_OUT_OF_BAG
from .interventional import CUTOFF_POOL_ROWS

if TYPE_CHECKING:
    import pandas as pd

#: rf only: how the leaves are re-fitted after training (families/forest.py calibrate_leaves).
LEAF_CALIBRATIONS: Final = ("oob", "none")
METRIC_NAMES: Final = ("roc_auc", "pr_auc", "brier", "log_loss")
#: SageMaker ``MetricDefinitions`` for the training job.
METRIC_DEFINITIONS: Final = [
    {"Name": f"validation:{name}", "Regex": f"validation:{name}=([0-9.eE+-]+);"}
    for name in METRIC_NAMES
]


@dataclass(frozen=True)
class Hyperparameters:
    """Every knob of the model; the defaults are the original blog's forest."""

    model: str = "rf"
    n_estimators: int = 50
    max_depth: int | None = 6
    max_leaf_nodes: int | None = 30
    min_samples_leaf: int = 1
    min_samples_split: int = 2
    max_features: str | float | None = "sqrt"
    class_weight: str | None = None
    bootstrap: bool = True
    leaf_calibration: str = "oob"
    random_state: int = 42
    test_size: float = 0.2
    n_jobs: int = -1
    constraints: str = constraints.ALL  # the declared directions of risk, unless "none"
    learning_rate: float = 0.1
    space: str = "probability"
    points: str = ""


def _none_or(kind: type) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null", "") else kind(text)

    return parse


def _max_features(text: str) -> str | float | None:
    if text.lower() in ("none", "null"):
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and value > 1 else value


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def _constraints(text: str) -> str:
    """Checked, kept as written: whether a constraint was named or came with ``all`` matters
    once the schema is known (:func:`credit_model.constraints.check_named`)."""
    try:
        constraints.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _leaf_calibration(text: str) -> str:
    if text.lower() not in LEAF_CALIBRATIONS:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(LEAF_CALIBRATIONS)}")
    return text.lower()


def _family(text: str) -> str:
    if text not in families.FAMILIES:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(families.FAMILIES)}")
    return text


def _space(text: str) -> str:
    if text not in SPACES:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SPACES)}")
    return text


def _points(text: str) -> str:
    if text.lower() in ("", "none"):
        return ""
    try:
        return Scorecard.parse(text).text()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_PARSERS: Final[dict[str, Any]] = {
    "model": _family,
    "n_estimators": int,
    "max_depth": _none_or(int),
    "max_leaf_nodes": _none_or(int),
    "min_samples_leaf": int,
    "min_samples_split": int,
    "max_features": _max_features,
    "class_weight": _none_or(str),
    "bootstrap": _bool,
    "leaf_calibration": _leaf_calibration,
    "random_state": int,
    "test_size": float,
    "n_jobs": int,
    "constraints": _constraints,
    "learning_rate": float,
    "space": _space,
    "points": _points,
}
_HELP: Final[dict[str, str]] = {
    "model": "estimator family: rf (random forest), hgb (scikit-learn's HistGradientBoosting), "
    "xgboost or lightgbm (the gbm extra)",
    "n_estimators": "trees in the forest, or boosting rounds",
    "max_depth": "deepest a tree grows (none: no limit)",
    "max_leaf_nodes": "most leaves per tree (none: no limit)",
    "min_samples_leaf": "fewest training rows in a leaf (rf)",
    "min_samples_split": "fewest training rows in a node that is split (rf)",
    "max_features": "features tried at each split: sqrt, log2, a fraction, a count or none "
    "(all) (rf)",
    "class_weight": "balanced, balanced_subsample or none (rf)",
    "bootstrap": "each tree on a bootstrap sample: true or false (rf)",
    "leaf_calibration": "oob (each tree's class proportions re-fitted as expit(a logit(v) + b) "
    "to the out-of-bag rows, so that the averaged probability is calibrated; needs bootstrap) "
    "or none (rf)",
    "random_state": "seed: the same data and seed give the same forest and model version",
    "test_size": "share of --data held out for the metrics when there is no --test-data",
    "n_jobs": "training threads (-1: every CPU; the forest is the same)",
    "learning_rate": "boosting's shrinkage (hgb, xgboost, lightgbm)",
    "points": "scorecard points SCORE:ODDS:PDO, e.g. 600:50:20 (600 points at odds 50:1, 20 "
    "points to double the odds); boosted models only: every answer carries its score and each "
    "feature's points",
    "space": "where explanations add up by default: probability (boosting: exact "
    "interventional TreeSHAP against a background of training rows) or log_odds (boosting "
    "only: path-dependent TreeSHAP); each request may ask for the other",
    "constraints": "shape constraints, comma-separated: risk (each feature moves the risk only "
    "in the direction its schema declares), elderly_age (age never raises the risk of an "
    "applicant aged 62+, Regulation B), all (the default: each family's monotonic "
    "constraints) or none",
}


def add_hyperparameter_arguments(parser: argparse.ArgumentParser) -> None:
    """``--n-estimators`` and SageMaker's ``--n_estimators`` spellings for every field."""
    group = parser.add_argument_group("hyperparameters")
    for field in fields(Hyperparameters):
        dashed = "--" + field.name.replace("_", "-")
        options = {"dest": field.name, "type": _PARSERS[field.name], "default": field.default}
        default = str(field.default).lower() if field.default not in (None, "") else "none"
        group.add_argument(
            dashed,
            metavar=field.name.upper(),
            help=f"{_HELP[field.name]} (default: {default})",
            **options,
        )
        if dashed != "--" + field.name:  # SageMaker passes hyperparameters with underscores
            group.add_argument("--" + field.name, help=argparse.SUPPRESS, **options)


def summary_statistics(
    X: np.ndarray, schema: ApplicantSchema = BUILTIN
) -> dict[str, dict[str, float | None]]:
    """Per-feature statistics of the training data (for drift checks and documentation)."""

    def num(v: float) -> float | None:
        return None if not math.isfinite(v) else float(v)

    stats: dict[str, dict[str, float | None]] = {}
    for j, name in enumerate(schema.features):
        col = X[:, j]
        present = col[~np.isnan(col)]
        if present.size == 0:
            stats[name] = {"missing_rate": 1.0}
            continue
        q = np.quantile(present, [0.01, 0.5, 0.99])
        stats[name] = {
            "missing_rate": float(np.isnan(col).mean()),
            "mean": num(present.mean()),
            "std": num(present.std()),
            "min": num(present.min()),
            "p01": num(q[0]),
            "median": num(q[1]),
            "p99": num(q[2]),
            "max": num(present.max()),
        }
    return stats


def build_pipeline(hp: Hyperparameters, schema: ApplicantSchema = BUILTIN) -> Any:
    """The estimator ``hp.model`` names: the imputer and forest, or a boosted model (which
    routes missing values itself), constrained in the schema's directions of risk."""
    if hp.model != "rf":
        cst = constraints.monotonic_cst(hp.constraints, schema)
        return families.module(hp.model).build(hp, cst)
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("imputer", SimpleImputer(strategy="median")),
            (
                "forest",
                RandomForestClassifier(
                    n_estimators=hp.n_estimators,
                    max_depth=hp.max_depth,
                    max_leaf_nodes=hp.max_leaf_nodes,
                    min_samples_leaf=hp.min_samples_leaf,
                    min_samples_split=hp.min_samples_split,
                    max_features=hp.max_features,
                    class_weight=hp.class_weight,
                    bootstrap=hp.bootstrap,
                    random_state=hp.random_state,
                    n_jobs=hp.n_jobs,
                    monotonic_cst=constraints.monotonic_cst(hp.constraints, schema),
                ),
            ),
        ]
    )


def holdout_split(X: np.ndarray, y: np.ndarray, test_size: float, random_state: int) -> Any:
    """``(X_train, X_test, y_train, y_test)``: the stratified held-out split training uses."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=random_state)


def training_baseline(
    pipeline: Any,
    X: np.ndarray,
    schema: ApplicantSchema = BUILTIN,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    space: str = "probability",
    background: Any = None,
) -> dict[str, Any]:
    """Bins of every feature (by its kind in ``schema``) and of the score on the training rows,
    for PSI later, and what monitoring compares with (ranges, high-risk threshold, attributions
    and reasons of a seeded sample of rows, explained in the space the model serves by default;
    with ``reference``, the held-out rows, the calibration of estimated performance)."""
    from .explainer import explainer_in_space

    sample = X
    if len(X) > monitor.ATTRIBUTION_SAMPLE:
        rows = np.random.default_rng(0).choice(len(X), monitor.ATTRIBUTION_SAMPLE, replace=False)
        sample = X[np.sort(rows)]
    probability, shap_values = explainer_in_space(pipeline, space, background).explain(sample)
    score = pipeline.predict_proba(X)[:, 1]
    extra = monitor.attribution_baseline(
        X, sample, probability, shap_values, schema, training_score=score, space=space
    )
    binnings = stability.binnings(schema)
    if reference is not None and len(np.unique(reference[1])) == 2:
        held_out = pipeline.predict_proba(reference[0])[:, 1]
        extra["calibration"] = monitor.calibration_map(held_out, reference[1])
    return {
        "features": {
            name: stability.baseline(X[:, j], binnings[name])
            for j, name in enumerate(schema.features)
        },
        "score": stability.baseline(score),
        "monitoring": extra,
    }


def background_rows(X: np.ndarray, seed: int, rows: int | None = None) -> np.ndarray:
    """``rows`` training rows (default: the background probability-space explanations are
    taken against), a seeded sample."""
    from .interventional import BACKGROUND_ROWS

    n = BACKGROUND_ROWS if rows is None else rows
    if len(X) <= n:
        return X
    chosen = np.random.default_rng(seed).choice(len(X), n, replace=False)
    return X[np.sort(chosen)]


def evaluate(pipeline: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    p = pipeline.predict_proba(X)[:, 1]
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
    }


def metric_lines(metrics: dict[str, float]) -> list[str]:
    return [f"validation:{name}={metrics[name]:.6f};" for name in METRIC_NAMES]


_METRIC_LABELS: Final = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "brier": "Brier",
    "log_loss": "log loss",
}


def metric_summary(metrics: dict[str, float], rows: int) -> list[str]:
    """The same metrics as one line for a terminal (SageMaker reads :func:`metric_lines`)."""
    figures = ", ".join(f"{_METRIC_LABELS[n]} {metrics[n]:.4f}" for n in METRIC_NAMES)
    return [f"held-out {rows:,} rows: {figures}"]


def train(
    data: pd.DataFrame,
    model_dir: str | Path,
    *,
    hyperparameters: Hyperparameters | None = None,
    test_data: pd.DataFrame | None = None,
    data_source: str = "dataframe",
    log: Any = print,
    schema: ApplicantSchema = BUILTIN,
    for_people: bool = False,
) -> dict[str, Any]:
    """Fit on ``data`` (held-out split unless ``test_data``), write ``model_dir``; returns metrics.

    ``data`` holds ``schema``'s columns as :func:`credit_model.data.load_csv` reads them."""
    hp = hyperparameters or Hyperparameters()
    constraints.check_named(hp.constraints, schema)
    hp = replace(hp, constraints=constraints.parse(hp.constraints))  # canonical in metadata
    check_family_choices(hp.model, hp.space, hp.points)
    if hp.model == "rf" and hp.leaf_calibration == "oob" and not hp.bootstrap:
        raise ValueError(NO_OUT_OF_BAG)
    X, y = split_xy(data, schema)
    if test_data is not None:
        X_train, y_train = X, y
        X_test, y_test = split_xy(test_data, schema)
    else:
        X_train, X_test, y_train, y_test = holdout_split(X, y, hp.test_size, hp.random_state)
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"the training data needs both classes of {schema.target}")
    started = time.perf_counter()
    prepared = constraints.prepare_training(X_train, hp.constraints, schema)
    pipeline = build_pipeline(hp, schema).fit(prepared, y_train)
    fit_seconds = time.perf_counter() - started
    leaf_calibration = None
    if hp.model == "rf":
        forest = pipeline.named_steps["forest"]
        if hp.leaf_calibration == "oob":  # on the rows as the forest saw them
            leaf_calibration = families.module("rf").calibrate_leaves(
                forest, pipeline[:-1].transform(prepared), y_train, seed=hp.random_state
            )
        forest.n_jobs = None  # serving scores small batches: no pool
    return write_model_dir(
        pipeline,
        model_dir,
        hp,
        (X_train, y_train),
        (X_test, y_test),
        data_source=data_source,
        extra={"fit_seconds": round(fit_seconds, 3)},
        log=log,
        schema=schema,
        for_people=for_people,
        leaf_calibration=leaf_calibration,
    )


def check_family_choices(model: str, space: str, points: str) -> None:
    """Refuse what the family cannot explain: the forest is additive in probability only."""
    if model == "rf" and space != "probability":
        raise ValueError(
            "the random forest averages probabilities: its explanations add up in probability "
            "only (--space probability), log-odds need a boosted model (--model hgb, xgboost "
            "or lightgbm)"
        )
    if model == "rf" and points:
        raise ValueError(
            "scorecard points need a model additive in log-odds: the random forest averages "
            "probabilities; train a boosted model (--model hgb, xgboost or lightgbm)"
        )


def write_model_dir(
    pipeline: Any,
    model_dir: str | Path,
    hp: Hyperparameters,
    train_rows: tuple[np.ndarray, np.ndarray],
    test_rows: tuple[np.ndarray, np.ndarray],
    *,
    data_source: str,
    extra: dict[str, Any],
    log: Any = print,
    imported: dict[str, Any] | None = None,
    schema: ApplicantSchema = BUILTIN,
    for_people: bool = False,
    leaf_calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metrics on ``test_rows``, baselines and background from ``train_rows``, the model
    directory written (trained here or imported); returns the metrics and model version."""
    X_train, y_train = train_rows
    X_test, y_test = test_rows
    background = background_rows(X_train, hp.random_state)
    metrics: dict[str, Any] = dict(evaluate(pipeline, X_test, y_test))
    for line in metric_summary(metrics, len(y_test)) if for_people else metric_lines(metrics):
        log(line)
    metrics.update(
        **extra,
        train_rows=len(y_train),
        test_rows=len(y_test),
        test_positive_rate=float(np.mean(y_test)),
    )
    meta = artifacts.save(
        pipeline,
        model_dir,
        metadata={
            "hyperparameters": asdict(hp),
            "training_data": {
                "source": data_source,
                "rows": len(y_train),
                "positive_rate": float(np.mean(y_train)),
                "features": summary_statistics(X_train, schema),
            },
            "constraints": constraints.describe(hp.constraints, schema),
            "leaf_calibration": leaf_calibration,
            "space": hp.space,
            "points": hp.points or None,
            "imported": imported,
            "baseline": training_baseline(
                pipeline,
                X_train,
                schema,
                reference=(X_test, y_test),
                space=hp.space,
                background=background,
            ),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        metrics=metrics,
        background=background,
        schema=schema,
        cutoff_pool=background_rows(X_train, hp.random_state + 1, CUTOFF_POOL_ROWS),
    )
    log(f"model {meta['model_version']} written to {model_dir}")
    return {**metrics, "model_version": meta["model_version"]}


def load_estimator(path: str | Path) -> Any:
    """A model fitted elsewhere, from its library's safe format: XGBoost JSON/UBJSON,
    LightGBM text, scikit-learn through skops (trusted types only)."""
    file = Path(path)
    kinds = {".json": "xgboost", ".ubj": "xgboost", ".txt": "lightgbm", ".skops": "hgb"}
    if file.suffix.lower() not in kinds:
        raise ValueError(
            f"{file.name}: an estimator file is XGBoost .json/.ubj, LightGBM .txt or "
            "scikit-learn .skops"
        )
    if not file.is_file():
        raise ValueError(f"{file}: no such file")
    try:
        return families.module(kinds[file.suffix.lower()]).load(file)
    except Exception as exc:  # noqa: BLE001 - each library raises its own error type
        raise ValueError(f"{file.name}: not a loadable model ({exc})") from None


def import_model(
    estimator_file: str | Path,
    data: pd.DataFrame,
    model_dir: str | Path,
    *,
    space: str = "probability",
    points: str = "",
    data_source: str = "dataframe",
    log: Any = print,
    schema: ApplicantSchema = BUILTIN,
    for_people: bool = False,
) -> dict[str, Any]:
    """Write a model directory for a model the lender already fitted: metrics, baselines and
    the background from ``data``, the same files and checks as a model trained here
    (``for_people``: the metrics as one line, as ``train`` prints them)."""
    from .artifacts import sha256_file
    from .explainer import fast_explainer_for

    estimator = load_estimator(estimator_file)
    X, y = split_xy(data, schema)
    try:
        family = families.of(estimator)
        n_features = fast_explainer_for(estimator).compiled.n_features
    except TypeError as exc:  # UnsupportedModelError: not a model the kernel covers
        raise ValueError(f"{Path(estimator_file).name}: {exc}") from None
    if n_features != X.shape[1]:
        raise ValueError(
            f"{Path(estimator_file).name} takes {n_features} features, the data has {X.shape[1]}"
        )
    check_family_choices(family, space, points)
    hp = Hyperparameters(model=family, constraints=constraints.NONE, space=space, points=points)

    imported = {"file": Path(estimator_file).name, "sha256": sha256_file(Path(estimator_file))}
    return write_model_dir(
        estimator,
        model_dir,
        hp,
        (X, y),
        (X, y),
        data_source=data_source,
        extra={},
        log=log,
        imported=imported,
        schema=schema,
        for_people=for_people,
    )


def load_training_data(
    path: str | Path | None,
    *,
    rows: int | None = None,
    seed: int | None = None,
    schema: ApplicantSchema = BUILTIN,
) -> tuple[pd.DataFrame, str]:
    """The CSV file/directory at ``path``, or the seeded synthetic default (built-in schema)."""
    if path:
        return load_csv(path, schema), str(path)
    if schema is not BUILTIN:
        raise DataError(f"the schema {schema.name!r} needs its data: give --data FILE")
    from . import synth

    n = rows or synth.DEFAULT_ROWS
    s = synth.DEFAULT_SEED if seed is None else seed
    return synth.generate(n, seed=s), f"synthetic(rows={n}, seed={s})"


def _sagemaker_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train the credit-explainer model (SageMaker script mode)."
    )
    parser.add_argument(
        "--model-dir", "--model_dir", default=os.environ.get("SM_MODEL_DIR", "model")
    )
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST"))
    parser.add_argument(
        "--schema",
        help="the data set's schema file (default: schema.json in the train channel when there, "
        "else the built-in schema)",
    )
    parser.add_argument(
        "--output-data-dir", "--output_data_dir", default=os.environ.get("SM_OUTPUT_DATA_DIR")
    )
    add_hyperparameter_arguments(parser)
    return parser


def _channel_schema(path: str | None, train_channel: str | None) -> ApplicantSchema:
    """The schema named, or the ``schema.json`` a training job's train channel carries."""
    from credit_schema import SCHEMA_FILE, read_schema

    if path:
        return read_schema(path)
    if train_channel and (Path(train_channel) / SCHEMA_FILE).is_file():
        return read_schema(Path(train_channel) / SCHEMA_FILE)
    return BUILTIN


def hyperparameters_from(args: argparse.Namespace) -> Hyperparameters:
    return Hyperparameters(**{f.name: getattr(args, f.name) for f in fields(Hyperparameters)})


def main(argv: Sequence[str] | None = None) -> int:
    """SageMaker training entry point (also ``python model_src/entry_point.py``)."""
    args = _sagemaker_parser().parse_args(argv)
    schema = _channel_schema(args.schema, args.train)
    data, source = load_training_data(args.train, schema=schema)
    test = load_csv(args.test, schema) if args.test else None
    metrics = train(
        data,
        args.model_dir,
        hyperparameters=hyperparameters_from(args),
        test_data=test,
        data_source=source,
        schema=schema,
    )
    if args.output_data_dir:
        out = Path(args.output_data_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        validation_report(args.model_dir, args.test or args.train, out, holdout=not args.test)
    sys.stdout.flush()
    return 0


def validation_report(
    model_dir: str | Path, data: str | Path | None, out: Path, *, holdout: bool
) -> None:
    """The model's validation report beside its artifacts (SageMaker's output.tar.gz): the
    figures as JSON, and the HTML page where matplotlib (the ``plot`` extra) is installed."""
    import importlib.util

    from . import report

    built = report.build(model_dir, data, holdout=holdout)
    html = out / report.REPORT_FILE if importlib.util.find_spec("matplotlib") else None
    report.write(built, html, out / "report.json")


train_fn = train
