"""A lender's own data end to end on the model side: schema infer, train --schema, the real model
server over HTTP (ids, categories, exact explanations), report. The synthetic second data set
always; German credit from ../shared when it is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from credit_model.artifacts import ModelArtifactError, load, verify
from credit_model.data import load_csv, split_xy
from credit_model.handlers import model_fn
from credit_model.synth import OTHER_ID, OTHER_PROHIBITED, OTHER_TARGET, generate_other
from credit_schema import SCHEMA_FILE, read_schema

GERMAN = ROOT.parent / "shared" / "data" / "german-credit" / "german_credit.csv"
CLI = [sys.executable, "-m", "credit_explainer"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def _lender(tmp: Path, data: Path, target: str, positive: str, ids: list[str], prohibited: str) -> Path:
    """schema infer, a reviewer's edits (a reason text, a risk direction), train --schema."""
    id_args = [a for c in ids for a in ("--id-column", c)]
    _cli("schema", "infer", "--data", str(data), "--target", target, "--positive", positive,
         *id_args, "--prohibited", prohibited, "-o", "schema.yaml", cwd=tmp)
    text = (tmp / "schema.yaml").read_text()
    (tmp / "schema.yaml").write_text(text.replace("TODO(review): adverse-action text for ", "", 3))
    done = _cli("train", "--data", str(data), "--schema", "schema.yaml", "--model-dir", "model",
                "--n-jobs", "1", cwd=tmp)
    assert "still marked for review" in done.stderr  # the draft was only partly reviewed
    return tmp / "model"


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("other-lender")
    frame = generate_other(3_000, seed=21)
    frame.to_csv(tmp / "loans.csv", index=False)
    return _lender(tmp, tmp / "loans.csv", OTHER_TARGET, "default", [OTHER_ID], OTHER_PROHIBITED), frame


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    if not GERMAN.is_file():
        pytest.skip(f"German credit not present at {GERMAN}")
    tmp = tmp_path_factory.mktemp("german")
    frame = pd.read_csv(GERMAN, dtype=str)
    frame.insert(0, "application_id", [f"G{i:05d}" for i in range(len(frame))])
    frame.to_csv(tmp / "german.csv", index=False)
    model = _lender(tmp, tmp / "german.csv", "creditability", "bad", ["application_id"],
                    "personal_status_and_sex")
    return model, frame


@pytest.fixture(params=["other", "german"])
def lender(request: pytest.FixtureRequest) -> tuple[Path, pd.DataFrame]:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_the_model_directory_carries_its_schema_under_the_manifest(lender: Any, tmp_path: Path) -> None:
    model_dir, _ = lender
    meta = verify(model_dir)
    schema = read_schema(model_dir / SCHEMA_FILE)
    assert meta["features"] == list(schema.features)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert SCHEMA_FILE in manifest["files"]
    # the schema is served: changing it is tampering
    copy = tmp_path / "m"
    copy.mkdir()
    for f in model_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / SCHEMA_FILE).write_text((copy / SCHEMA_FILE).read_text().replace('"integer"', '"number"', 1))
    with pytest.raises(ModelArtifactError, match=SCHEMA_FILE):
        verify(copy)


def test_scored_over_http_with_ids_categories_and_exact_explanations(lender: Any) -> None:
    import shap
    from credit_explainer_tools.local.stack import ModelServer

    model_dir, frame = lender
    schema = read_schema(model_dir / SCHEMA_FILE)
    id_column = schema.id_columns[0]
    rows = frame.head(40)
    records = json.loads(rows.drop(columns=[schema.target]).to_json(orient="records"))
    with ModelServer(model_fn(model_dir)) as server:
        response = httpx.post(f"{server.url}/invocations", json=records, timeout=60)
        assert response.status_code == 200, response.text
        answers = response.json()["predictions"]
        bad = dict(records[3], **{schema.categorical and sorted(schema.categorical)[0]: "castle"})
        refused = httpx.post(f"{server.url}/invocations", json=[records[0], bad], timeout=60)
    assert refused.status_code == 422
    (detail,) = refused.json()["error"]["details"]
    assert detail["applicant"] == 1 and detail["field"] == sorted(schema.categorical)[0]

    assert [a["ids"] for a in answers] == [{id_column: r[id_column]} for r in records]
    for a, r in zip(answers, records, strict=True):
        assert abs(a["base_value"] + sum(c["shap_value"] for c in a["contributions"]) - a["probability"]) <= 1e-9
        values = {c["feature"]: c["value"] for c in a["contributions"]}
        assert set(values) == set(schema.features)  # one SHAP value per declared feature
        for name in schema.categorical:
            assert values[name] == r[name]  # the applicant's category, as sent
        assert all(p not in json.dumps(a) for p in schema.prohibited)
        assert all(reason["feature"] in schema.features for reason in a["reasons"])

    # exact: equal to shap's TreeExplainer on the same encoded rows
    artifacts = load(model_dir)
    X, _ = split_xy(load_csv(_csv(rows, model_dir), schema), schema)
    imputer, forest = artifacts.pipeline.named_steps.values()
    reference = shap.TreeExplainer(forest).shap_values(imputer.transform(X))[..., 1]
    got = np.array([[{c["feature"]: c["shap_value"] for c in a["contributions"]}[f] for f in schema.features] for a in answers])
    np.testing.assert_allclose(got, reference, atol=1e-9, rtol=0)
    np.testing.assert_allclose([a["probability"] for a in answers], artifacts.pipeline.predict_proba(X)[:, 1], atol=1e-12)


def _csv(rows: pd.DataFrame, model_dir: Path) -> Path:
    path = model_dir.parent / "rows.csv"
    rows.to_csv(path, index=False)
    return path


def test_report_names_the_lenders_columns(lender: Any) -> None:
    model_dir, frame = lender
    schema = read_schema(model_dir / SCHEMA_FILE)
    data = model_dir.parent / "all.csv"
    frame.to_csv(data, index=False)
    _cli("report", "--model-dir", str(model_dir), "--data", str(data), "--json", "r.json",
         "-o", "r.html", cwd=model_dir.parent)
    figures = json.loads((model_dir.parent / "r.json").read_text())
    assert figures["model"]["features"] == list(schema.features)
    assert {r["feature"] for r in figures["explanations"]["importance"]} == set(schema.features)
    assert figures["regulation_b"]["elderly_applicants"] > 0  # the schema's age feature
    assert all(p not in figures["model"]["features"] for p in schema.prohibited)
    assert "castle" not in (model_dir.parent / "r.html").read_text()


def test_through_the_local_stack_ids_come_back_in_every_output(lender: Any, tmp_path: Path) -> None:
    """score (CLI) of a CSV with an id column, the SDK on a DataFrame, the decision records,
    decisions show and export: the lender's names, its ids, no prohibited basis anywhere."""
    from credit_explainer import CreditExplainerClient
    from credit_explainer.cli import main as cli_main
    from credit_explainer_tools.local import LocalStack

    model_dir, frame = lender
    schema = read_schema(model_dir / SCHEMA_FILE)
    id_column = schema.id_columns[0]
    rows = frame.head(25)
    rows.to_csv(tmp_path / "applications.csv", index=False)  # target and prohibited included
    records = tmp_path / "records"
    records.mkdir()
    capture = tmp_path / "capture"
    with LocalStack(model_dir, records_dir=records, capture_dir=capture) as stack:
        out = tmp_path / "scored.csv"
        assert cli_main(["score", str(tmp_path / "applications.csv"), "--url", stack.api_url,
                         "-o", str(out)]) == 0
        scored = pd.read_csv(out, dtype=str)
        assert scored[id_column].tolist() == rows[id_column].tolist()
        assert [f"shap_{f}" in scored.columns for f in schema.features] == [True] * len(schema.features)
        results = CreditExplainerClient(stack.api_url).score_many(rows.drop(columns=[schema.target]))
        table = results.to_dataframe()
        assert table[id_column].tolist() == rows[id_column].tolist()
        request_id = results[0].request_id
        # a space this model does not serve is the caller's 400, not the model's 502
        refused = httpx.post(f"{stack.api_url}/score?space=log_odds",
                             json=json.loads(rows.head(1).drop(columns=[schema.target]).to_json(orient="records")))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "bad_request" and "log_odds" in refused.text
    for score in results:
        assert abs(score.base_value + sum(c.shap_value for c in score.contributions) - score.probability) <= 1e-9
    written = "".join(p.read_text() for p in sorted(records.rglob("*.jsonl")))
    assert all(r in written for r in rows[id_column]) and not any(p in written for p in schema.prohibited)
    shown = subprocess.run([*CLI, "decisions", "show", request_id, "--records", str(records)],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert rows[id_column].iloc[0] in shown.stdout and schema.features[0] in shown.stdout
    # the model side's view, SageMaker Data Capture, reads back with the lender's features too
    captured = subprocess.run([*CLI, "decisions", "show", request_id, "--capture", str(capture)],
                              capture_output=True, text=True, timeout=120)
    assert captured.returncode == 0, captured.stderr
    assert "skipped" not in captured.stderr and schema.features[0] in captured.stdout
    export = tmp_path / "export.csv"
    done = subprocess.run([*CLI, "decisions", "export", "--records", str(records), "-o", str(export)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    exported = pd.read_csv(export, dtype=str)
    assert set(rows[id_column]) <= set(exported[id_column])
    # monitor over the records: categories binned by category, the lender's names
    watched = subprocess.run(
        [*CLI, "monitor", "--records", str(records), "--model-dir", str(model_dir), "--json",
         str(tmp_path / "monitor.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert watched.returncode in (0, 1) and "Traceback" not in watched.stderr, watched.stderr
    assert (tmp_path / "monitor.json").is_file(), watched.stdout + watched.stderr
    report = json.loads((tmp_path / "monitor.json").read_text())
    assert [f["feature"] for f in report["features"]] == list(schema.features)
    assert report["applicants"] == 2 * len(rows)  # the CLI's and the SDK's
