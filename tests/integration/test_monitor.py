"""Issue 18, done when: through the local stack with capture, decisions found and replayed, and
``monitor`` quiet on applicants drawn like the training data, naming the shifted features."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import MOTO_REGION
from credit_explainer import CreditExplainerClient
from credit_explainer.cli import main
from credit_explainer_tools.local import LocalStack
from credit_model.synth import generate
from credit_schema import FEATURES

SHIFTED = {"DebtRatio": 3.0, "MonthlyIncome": 0.5}


def drawn(n: int, seed: int, scale: dict[str, float] | None = None) -> list[dict[str, Any]]:
    frame = generate(n, seed=seed)[list(FEATURES)]
    for feature, factor in (scale or {}).items():
        frame[feature] = frame[feature] * factor
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[no-any-return]


def score_into(model_dir: Path, capture: Path, people: list[dict[str, Any]]) -> list[Any]:
    with (
        LocalStack(model_dir, capture_dir=capture, log_level="ERROR") as stack,
        CreditExplainerClient(stack.api_url) as client,
    ):
        return [
            s for i in range(0, len(people), 100) for s in client.score_many(people[i : i + 100])
        ]


def test_monitor_is_quiet_on_like_applicants_and_names_the_shifted_features(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(synthetic_model_dir)
    like, shifted = tmp_path / "like", tmp_path / "shifted"
    scores = score_into(synthetic_model_dir, like, drawn(600, seed=99))
    score_into(synthetic_model_dir, shifted, drawn(600, seed=98, scale=SHIFTED))
    capsys.readouterr()

    # Every decision kept, found by the API's request id with the reasons it sent, replayed.
    given = next(s for s in scores if s.principal_reasons)
    assert main(["decisions", "show", given.request_id, "--capture", str(like)]) == 0
    shown = capsys.readouterr().out
    assert all(f"reason {r.code}: {r.text}" in shown for r in given.principal_reasons or [])
    assert main(["decisions", "replay", "--capture", str(like), "--model-dir", model]) == 0
    assert "replayed 600 applicant(s)" in capsys.readouterr().out

    report_file = tmp_path / "like.json"
    argv = ["monitor", "--model-dir", model, "--json", str(report_file)]
    assert main([*argv, "--capture", str(like)]) == 0
    out = capsys.readouterr().out
    assert "status: ok" in out and "alert" not in out
    report = json.loads(report_file.read_text())
    assert (report["applicants"], report["decisions"], report["status"]) == (600, 6, "ok")
    assert [f["feature"] for f in report["features"]] == list(FEATURES)
    assert all(f["psi"] < 0.1 for f in report["features"])
    assert report["attribution"]["ndcg"] > 0.95
    assert sum(report["score"]["current_shares"]) == pytest.approx(1.0)

    page = tmp_path / "shifted.html"
    assert main([*argv, "--capture", str(shifted), "--html", str(page)]) == 1
    out = capsys.readouterr().out
    text = page.read_text()
    assert text.count('src="data:image/png;base64,') == 4 and "Act: " in text
    report = json.loads(report_file.read_text())
    named = {a["feature"] for a in report["alerts"] if a["feature"]}
    assert named == set(SHIFTED), report["alerts"]
    for feature in SHIFTED:
        assert f"alert (act): {feature}: PSI " in out
    assert report["status"] == "act"

    # Thresholds are the user's: raised above every figure, nothing is reported.
    loose = [
        "--psi-watch",
        "50",
        "--psi-act",
        "60",
        "--out-of-range-watch",
        "1.1",
        "--ndcg-watch",
        "0",
    ]
    assert main([*argv, "--capture", str(shifted), *loose]) == 0


def test_monitor_refuses_what_it_cannot_read(
    synthetic_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(synthetic_model_dir)
    capture = tmp_path / "capture"
    score_into(synthetic_model_dir, capture, drawn(5, seed=3))
    capsys.readouterr()
    assert main(["monitor", "--model-dir", model, "--capture", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: no capture directory")
    assert (
        main(["monitor", "--model-dir", model, "--capture", str(capture), "--since", "2999-01-01"])
        == 2
    )
    assert capsys.readouterr().err.startswith("error: no decisions of model ")
    with pytest.raises(SystemExit) as exc:
        main(["monitor", "--model-dir", model, "--capture", str(capture), "--since", "yesterday"])
    assert exc.value.code == 2
    assert "not an ISO 8601 date or time: 'yesterday'" in capsys.readouterr().err
    assert main(["monitor", "--model-dir", str(tmp_path), "--capture", str(capture)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_decisions_and_monitor_read_an_endpoint_s_capture_in_s3(
    synthetic_model_dir: Path, tmp_path: Path, account: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "capture"
    scores = score_into(synthetic_model_dir, local, drawn(300, seed=97))
    s3 = account.client("s3")
    s3.create_bucket(
        Bucket="captures", CreateBucketConfiguration={"LocationConstraint": MOTO_REGION}
    )
    for path in local.rglob("*.jsonl"):  # as SageMaker writes them: <prefix>/<endpoint>/...
        s3.upload_file(str(path), "captures", f"prod/{path.relative_to(local).as_posix()}")
    s3.put_object(Bucket="captures", Key="prod/README.txt", Body=b"not a capture file")
    capsys.readouterr()

    assert main(["decisions", "show", scores[0].request_id, "--capture", "s3://captures/prod"]) == 0
    assert capsys.readouterr().out.startswith(f"decision {scores[0].request_id} at ")
    model = ["--model-dir", str(synthetic_model_dir)]
    reports = []
    for where in (str(local), "s3://captures/prod"):
        assert (
            main(["monitor", *model, "--capture", where, "--json", str(tmp_path / "r.json")]) == 0
        )
        reports.append(
            {
                k: v
                for k, v in json.loads((tmp_path / "r.json").read_text()).items()
                if k != "capture"
            }
        )
    assert reports[0] == reports[1]
    capsys.readouterr()

    assert main(["monitor", *model, "--capture", "s3://no-such-bucket/prod"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: cannot read s3://no-such-bucket/prod: ")
        and "NoSuchBucket" in err
    )
    assert main(["decisions", "export", "--capture", "s3:///prod"]) == 2
    assert capsys.readouterr().err == "error: no bucket in s3:///prod (s3://bucket/prefix)\n"


def test_monitor_publishes_its_figures_to_cloudwatch(
    synthetic_model_dir: Path,
    tmp_path: Path,
    account: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from credit_explainer_tools.monitor import NAMESPACE

    capture = tmp_path / "capture"
    score_into(synthetic_model_dir, capture, drawn(200, seed=96, scale=SHIFTED))
    argv = ["monitor", "--model-dir", str(synthetic_model_dir), "--capture", str(capture)]
    report_file = tmp_path / "r.json"
    assert main([*argv, "--publish", "--endpoint-name", "prod", "--json", str(report_file)]) == 1
    assert "published 25 metric(s) to CloudWatch" in capsys.readouterr().err
    report = json.loads(report_file.read_text())

    cloudwatch = account.client("cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "Applicants", "ScorePSI", "MaxFeaturePSI", "AttributionNDCG", "Alerts", "FeaturePSI",
        "OutOfRangeShare",
    }  # fmt: skip
    debt = [
        {"Name": "EndpointName", "Value": "prod"},
        {"Name": "Feature", "Value": "DebtRatio"},
    ]
    for name, dimensions, expected in (
        ("ScorePSI", debt[:1], report["score"]["psi"]),
        (
            "FeaturePSI",
            debt,
            next(f["psi"] for f in report["features"] if f["feature"] == "DebtRatio"),
        ),
        ("Applicants", debt[:1], 200),
    ):
        stats = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=name, Dimensions=dimensions,
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC) + timedelta(hours=1), Period=3600,
            Statistics=["Maximum"],
        )["Datapoints"]  # fmt: skip
        assert [d["Maximum"] for d in stats] == [pytest.approx(expected)], name

    capsys.readouterr()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)  # else its credentials are cached
    assert main([*argv, "--publish"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot publish to CloudWatch: ")
