"""``credit-explainer monitor``: captured decisions against the model's training baseline.

Over records (``--records DIR``, ``--athena``) the query engine counts the decisions of the model
directory's version (made since ``--since``) and :mod:`.aggregates` folds its counts into the
figures of :mod:`credit_model.monitor`; a capture (or ``s3://``) is read as ``decisions`` does and
counted here, a chunk at a time. Exit status:
0 nothing crosses a threshold, 1 something does (one line per alert), 2 an error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credit_explainer._config import install_hint
from credit_model.drift import Thresholds
from credit_schema import DEFAULT_ENDPOINT_NAME
from credit_schema.records import DecisionRecord

from .decisions import (
    EXIT_SKIPPED,
    CaptureReadError,
    Source,
    add_model_dir,
    add_source,
    moment_arg,
    records_within,
    source_of,
)
from .engine import QueryError
from .outcomes import Joined, OutcomeError, read_outcomes

if TYPE_CHECKING:  # the aggregates import numpy: not at every command's start
    from . import aggregates

#: Applicants turned into arrays and counted at a time: memory stays flat whatever the store.
CHUNK_APPLICANTS = 20_000


#: ``--window``: the period of a decision's ISO 8601 time (UTC, as recorded).
WINDOWS = ("day", "week", "month")


def period_of(moment: datetime, window: str) -> str:
    """``2026-12-06`` (day), ``2026-W49`` (ISO week) or ``2026-12`` (month) of ``moment``, UTC."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    if window == "day":
        return moment.strftime("%Y-%m-%d")
    if window == "month":
        return moment.strftime("%Y-%m")
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _arrays(
    decisions: list[DecisionRecord],
    names: list[str],
    codes: dict[str, dict[str, int]] | None = None,
) -> tuple[Any, Any, Any, list[list[str]]]:
    """Inputs (NaN: missing; a category as its code), probabilities, SHAP values (``names``
    order), reasons' features."""
    np: Any = importlib.import_module("numpy")
    from .aggregates import number

    codes = codes or {}
    rows, probability, shap, reasons = [], [], [], []
    for decision in decisions:
        for applicant, result in zip(decision.applicants, decision.results, strict=True):
            rows.append([number(applicant.get(f), codes.get(f)) for f in names])
            probability.append(result.probability)
            by_feature = {c.feature: c.shap_value for c in result.contributions}
            shap.append([by_feature[f] for f in names])
            reasons.append([r.feature for r in result.principal_reasons or []])
    as_array = np.asarray
    return as_array(rows, float), as_array(probability, float), as_array(shap, float), reasons


def _summary(report: dict[str, Any]) -> str:
    width = max([len("feature"), *(len(f["feature"]) for f in report["features"])])
    out = [
        f"model {report['model_version']}: {report['applicants']} applicant(s) in "
        f"{report['decisions']} decision(s), {report['window']['first']} to "
        f"{report['window']['last']}"
        + (f"; {report['other_model_decisions']} decision(s) of other models skipped"
           if report["other_model_decisions"] else ""),
        f"{'feature':<{width}}  {'PSI':>7}  level  {'missing':>15}  outside range",
    ]  # fmt: skip
    for f in report["features"]:
        missing = f"{f['missing_rate']:.3f} ({f['baseline_missing_rate']:.3f})"
        out.append(
            f"{f['feature']:<{width}}  {f['psi']:7.4f}  {f['level']:<5}  {missing:>15}  "
            f"{f['out_of_range_share']:.4f}"
        )
    score, attribution = report["score"], report["attribution"]
    out.append(f"score PSI {score['psi']:.4f} ({score['level']}), mean {score['mean']:.4f}")
    out.append(f"attribution NDCG {attribution['ndcg']:.4f} ({attribution['level']})")
    for m in (report.get("estimated") or {}).get("periods", []):
        auc = (
            "-"
            if m["auc"] is None
            else "{:.4f} ({:.4f}-{:.4f})".format(m["auc"], *m["auc_interval"])
        )
        out.append(
            f"estimated {m['period']}: {m['applicants']} applicant(s), default rate "
            "{:.4f} ({:.4f}-{:.4f}), AUC {}".format(
                m["default_rate"], *m["default_rate_interval"], auc
            )
        )
    for m in (report.get("outcomes") or {}).get("periods", []):
        auc = "-" if m["auc"] is None else f"{m['auc']:.4f}"
        ks = "-" if m["ks"] is None else f"{m['ks']:.4f}"
        out.append(
            f"outcomes {m['period']}: {m['applicants']} applicant(s), default rate "
            f"{m['default_rate']:.4f} (predicted {m['mean_predicted']:.4f}, binomial p "
            f"{m['binomial_p']:.4f}), AUC {auc}, KS {ks}"
        )
    out.extend(f"alert ({a['level']}): {a['message']}" for a in report["alerts"])
    out.append(f"status: {report['status']}")
    return "\n".join(out)


def _engine_rows(rows: Iterator[aggregates.Row]) -> Iterator[aggregates.Row]:
    try:
        yield from rows
    except QueryError as exc:
        raise CaptureReadError(str(exc)) from None


def _join(joined: Joined, engine: Any, version: str, since: datetime | None, window: str) -> None:
    """The outcomes joined to the applicants of the requests they name, which the engine finds
    (memory grows with the outcomes, not with the decisions)."""
    ids = sorted({request_id for request_id, _ in joined.outcomes})
    line: list[tuple[Any, ...]] = []
    for row in [*_engine_rows(engine.scored(ids, version, since)), None]:
        if line and (row is None or row[:3] != line[0][:3]):  # one record line's applicants
            request_id, moment, _, parts, count = line[0][:5]
            joined.add(
                request_id,
                [(index, p) for *_, index, p in line],
                period_of(datetime.fromisoformat(moment), window),
                alone=parts == 1 and count == 1,
            )
            line = []
        if row is not None:
            line.append(row)


def _finish(
    args: argparse.Namespace,
    source: Source,
    metadata: dict[str, Any],
    folded: aggregates.Folded,
    query: aggregates.Query,
    joined: Joined | None,
) -> int:
    """The report of the engine's aggregates: what :func:`_run` prints and writes."""
    from credit_model import monitor as monitoring

    from . import aggregates

    version = metadata["model_version"]
    if folded.first is None or folded.last is None or not folded.periods:
        since = f" since {args.since.isoformat()}" if args.since else ""
        print(f"error: no decisions of model {version} under {source}{since}", file=sys.stderr)
        return source.status(2)
    thresholds = Thresholds(
        **{k: v for k, v in vars(args).items() if k in _THRESHOLDS and v is not None}
    )
    report = monitoring.report(aggregates.total(query, folded.periods.values()), thresholds)
    if args.window:
        report["trend"] = {
            "window": args.window,
            "periods": monitoring.trend(dict(sorted(folded.periods.items())), thresholds),
        }
    if folded.estimated is not None:
        report["estimated"] = folded.estimated
    if joined is not None and _outcomes(args, joined, version, thresholds, report):
        return 2
    return _write(args, source, version, folded.first, folded.last, folded.decisions,
                  folded.other, report)  # fmt: skip


def _outcomes(
    args: argparse.Namespace,
    joined: Joined,
    version: str,
    thresholds: Thresholds,
    report: dict[str, Any],
) -> bool:
    """The realised figures of the outcomes joined, into ``report``; False after an error."""
    import numpy as np
    from credit_model import artifacts
    from credit_model import monitor as monitoring

    if not joined.observed:
        print(f"error: no outcome in {args.outcomes} matches a decision of model {version}",
              file=sys.stderr)  # fmt: skip
        return True
    if joined.unmatched:
        print(f"{joined.unmatched} outcome(s) in {args.outcomes} match no decision of model "
              f"{version} (skipped)", file=sys.stderr)  # fmt: skip
    metrics = json.loads((Path(args.model_dir) / artifacts.METRICS_FILE).read_text())
    figures, alerts = monitoring.outcome_figures(
        np.asarray(joined.probability, dtype=np.float64),
        np.asarray(joined.observed, dtype=np.int64),
        joined.periods,
        reference_auc=metrics.get("roc_auc"),
        thresholds=thresholds,
    )
    report["outcomes"] = figures
    report["alerts"] += alerts
    report["status"] = monitoring.status(report["alerts"])
    return False


def _run(args: argparse.Namespace) -> int:
    source = source_of(args)
    if source is None:
        return 2
    # The model side (credit-explainer-model): numpy and the baseline's rules.
    import numpy as np
    from credit_model import artifacts, server
    from credit_model import monitor as monitoring

    try:
        metadata = artifacts.verify(args.model_dir)
        schema = artifacts.model_schema(Path(args.model_dir))  # read once: codes and target
        monitoring.check_baseline(metadata)
    except monitoring.BaselineError as exc:
        print(f"error: {args.model_dir}/metadata.json: {exc}; retrain with this version",
              file=sys.stderr)  # fmt: skip
        return 2
    except server.STARTUP_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    joined = None
    if args.outcomes:
        try:
            joined = Joined(read_outcomes(args.outcomes, schema.schema.target))
        except OSError as exc:
            print(f"error: cannot read {args.outcomes}: {exc.strerror}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    window = args.window or "month"  # outcomes and estimates: by month unless --window
    version = metadata["model_version"]
    totals = monitoring.Aggregates(metadata)
    by_period: dict[str, Any] = {}  # --window: each period's own aggregates
    # Estimated performance: each applicant's probability and period (8 + 4 bytes).
    scores, codes = array("d"), array("i")
    labels: dict[str, int] = {}
    chunk: list[DecisionRecord] = []
    other = decisions = waiting = 0
    first = last = None

    def count(chunk: list[DecisionRecord]) -> None:
        totals.add(*_arrays(chunk, totals.names, schema.codes))
        if args.window:
            groups: dict[str, list[DecisionRecord]] = {}
            for d in chunk:
                groups.setdefault(period_of(d.time, window), []).append(d)
            for period, group in groups.items():
                if period not in by_period:
                    by_period[period] = monitoring.Aggregates(metadata)
                by_period[period].add(*_arrays(group, totals.names, schema.codes))

    aggregate = getattr(source.engine, "aggregate", None)
    try:
        if aggregate is not None:  # counted by the engine, not here
            from . import aggregates

            query = aggregates.Query(metadata, schema.codes, version, unit=window)
            label = lambda day: period_of(datetime(day.year, day.month, day.day), window)  # noqa: E731
            folded = aggregates.fold(
                query,
                _engine_rows(aggregate(query, args.since, None, source.skip)),
                label,
                metadata["baseline"]["monitoring"].get("calibration"),
            )
            if joined is not None:
                _join(joined, source.engine, version, args.since, window)
            return _finish(args, source, metadata, folded, query, joined)
        for decision in records_within(source, args.since, None):
            if decision.model_version != version:
                other += 1
                continue
            decisions += 1
            first = decision.time if first is None else min(first, decision.time)
            last = decision.time if last is None else max(last, decision.time)
            period = period_of(decision.time, window)
            probabilities = [r.probability for r in decision.results]
            scores.extend(probabilities)
            codes.extend([labels.setdefault(period, len(labels))] * len(probabilities))
            if joined is not None:
                joined.add(
                    decision.request_id,
                    [(r.index, r.probability) for r in decision.results],
                    period,
                    alone=decision.parts == 1 and len(decision.results) == 1,
                )
            chunk.append(decision)
            waiting += len(decision.results)
            if waiting >= CHUNK_APPLICANTS:
                count(chunk)
                chunk, waiting = [], 0
    except CaptureReadError as exc:
        print(f"error: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    except OutcomeError as exc:  # an outcome without its index: the join's alone
        print(f"error: {args.outcomes}: {exc}", file=sys.stderr)
        return 2
    if chunk:
        count(chunk)
    if first is None or last is None:
        since = f" since {args.since.isoformat()}" if args.since else ""
        print(f"error: no decisions of model {version} under {source}{since}", file=sys.stderr)
        return source.status(2)
    thresholds = Thresholds(
        **{k: v for k, v in vars(args).items() if k in _THRESHOLDS and v is not None}
    )
    report = monitoring.report(totals, thresholds)
    if args.window:
        report["trend"] = {"window": window, "periods": monitoring.trend(by_period, thresholds)}
    calibration = metadata["baseline"]["monitoring"].get("calibration")
    names = sorted(labels, key=labels.__getitem__)
    if calibration:  # models trained before estimated performance have none
        report["estimated"] = monitoring.estimated_figures(
            np.frombuffer(scores), np.frombuffer(codes, dtype=np.int32), calibration, names
        )
    if joined is not None and _outcomes(args, joined, version, thresholds, report):
        return 2

    return _write(args, source, version, first, last, decisions, other, report)


def _write(
    args: argparse.Namespace,
    source: Source,
    version: str,
    first: datetime,
    last: datetime,
    decisions: int,
    other: int,
    report: dict[str, Any],
) -> int:
    """Print the report's summary, write its JSON and HTML, publish it, as asked."""

    def text(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    report = {
        "model_version": version,
        "capture": str(source),
        "since": args.since.isoformat() if args.since else None,
        "window": {"first": text(first), "last": text(last)},
        "decisions": decisions,
        "other_model_decisions": other,
        **report,
    }
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.json}: {exc.strerror}", file=sys.stderr)
            return 2
    if args.html:
        try:
            from credit_model.report import monitor_html

            page = monitor_html.render(report)
            Path(args.html).write_text(page, encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.html}: {exc.strerror}", file=sys.stderr)
            return 2
        except RuntimeError as exc:  # ReportDependencyError: matplotlib is missing
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.publish:
        failed = _publish(report, args.endpoint_name)
        if failed:
            print(f"error: {failed}", file=sys.stderr)
            return 2
    print(_summary(report))
    return source.status(1 if report["alerts"] else 0)


#: CloudWatch namespace of ``monitor --publish`` (the template's alarms read the same names).
NAMESPACE = "CreditExplainer/Monitoring"
#: put_metric_data's limit of datums a call.
_DATUMS_PER_CALL = 1000


def metric_data(report: dict[str, Any], endpoint_name: str) -> list[dict[str, Any]]:
    """The report's figures as CloudWatch datums, dimensioned by endpoint (and feature)."""
    at = datetime.now(UTC)  # the alarms' period is the run's: windows may be old
    endpoint = {"Name": "EndpointName", "Value": endpoint_name}

    def datum(
        name: str, value: float, unit: str = "None", feature: str | None = None
    ) -> dict[str, Any]:
        dims = [endpoint, *([{"Name": "Feature", "Value": feature}] if feature else [])]
        return {
            "MetricName": name,
            "Dimensions": dims,
            "Timestamp": at,
            "Value": value,
            "Unit": unit,
        }

    data = [
        datum("Applicants", report["applicants"], "Count"),
        datum("ScorePSI", report["score"]["psi"]),
        datum("MaxFeaturePSI", max(f["psi"] for f in report["features"])),
        datum("AttributionNDCG", report["attribution"]["ndcg"]),
        datum("Alerts", len(report["alerts"]), "Count"),
    ]
    for f in report["features"]:
        data.append(datum("FeaturePSI", f["psi"], feature=f["feature"]))
        data.append(datum("OutOfRangeShare", f["out_of_range_share"], feature=f["feature"]))
    periods = (report.get("outcomes") or {}).get("periods") or []
    if periods:  # the latest period of decisions with outcomes
        latest = periods[-1]
        data.append(datum("RealisedDefaultRate", latest["default_rate"]))
        data.append(datum("PredictedDefaultRate", latest["mean_predicted"]))
        if latest["auc"] is not None:
            data.append(datum("RealisedAUC", latest["auc"]))
    return data


def publish(report: dict[str, Any], endpoint_name: str, *, cloudwatch: Any) -> int:
    """put_metric_data for every datum of :func:`metric_data`; returns how many were sent."""
    data = metric_data(report, endpoint_name)
    for i in range(0, len(data), _DATUMS_PER_CALL):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[i : i + _DATUMS_PER_CALL])
    return len(data)


def _publish(report: dict[str, Any], endpoint_name: str) -> str | None:
    """Publish with the environment's credentials; the error line on failure."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return f"--publish needs boto3: {install_hint('credit-explainer-tools')}"
    try:
        sent = publish(report, endpoint_name, cloudwatch=boto3.client("cloudwatch"))
    except (BotoCoreError, ClientError) as exc:
        return f"cannot publish to CloudWatch: {exc}"
    print(f"published {sent} metric(s) to CloudWatch {NAMESPACE}, EndpointName={endpoint_name}",
          file=sys.stderr)  # fmt: skip
    return None


_THRESHOLDS = {
    "psi_watch": "a feature's or the score's PSI at or above it: watch",
    "psi_act": "PSI at or above it: act",
    "out_of_range_watch": "share of applicants outside a feature's training range: watch",
    "ndcg_watch": "attribution NDCG below it: watch",
    "auc_drop_watch": "--outcomes: a period's realised AUC this far below training's held-out "
    "AUC: watch",
    "calibration_p_watch": "--outcomes: a period's defaults against its mean predicted rate, "
    "exact binomial p below it: watch",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "monitor",
        help="recorded (or captured) applicants against the training baseline: PSI, missing "
        "and out-of-range shares, score PSI, attribution drift, reasons (exit 1 when a "
        "threshold is crossed)",
        description="Read the applicants and answers the API's decision records (or data "
        "capture) kept, compare them with the model's training baseline (feature and score "
        "PSI, missing and out-of-range shares, attribution drift, principal reasons) and print "
        "a summary; write HTML and JSON on request. Exit status: 0 all within thresholds, 1 a "
        f"threshold crossed (named), 2 the run failed, {EXIT_SKIPPED} done but unreadable "
        "lines were skipped (each named).",
    )
    add_source(p)
    add_model_dir(p)
    p.add_argument(
        "--since",
        type=moment_arg,
        help="only decisions at or after this ISO 8601 date/time, UTC unless given (default: all)",
    )
    p.add_argument(
        "--outcomes",
        metavar="FILE",
        help="observed outcomes, a CSV with request_id, index (an applicant's position in its "
        "request) and the model's target column (0 or 1, or the schema's labels): realised "
        "AUC, KS, default rate and calibration by period of decision (default: none)",
    )
    p.add_argument(
        "--window",
        choices=WINDOWS,
        help="trends: PSI, score, estimated and realised performance per day, ISO week or month "
        "of decision, as rows in the JSON and plots in the HTML (default: none; outcomes and "
        "estimates by month)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON (default: none)")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page with plots (default: none)",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help=f"put the figures to CloudWatch ({NAMESPACE}) for the template's alarms "
        "(default: off)",
    )
    p.add_argument(
        "--endpoint-name",
        default=DEFAULT_ENDPOINT_NAME,
        help=f"--publish: the EndpointName dimension (default: {DEFAULT_ENDPOINT_NAME})",
    )
    defaults = Thresholds()
    for name, meaning in _THRESHOLDS.items():
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            metavar="X",
            help=f"{meaning} (default: {getattr(defaults, name)})",
        )
    p.set_defaults(func=_run)
