"""Another lender's data through the real local stack: the API, the SDK and the ``score`` CLI
work from the schema of the model behind them (``GET /schema``), not from Give Me Some Credit.

The synthetic second data set (:func:`credit_model.synth.generate_other`: categories, an id
column, a prohibited basis, a text target), a schema drafted from it, a model trained with it;
then HTTP -> local API Gateway -> the real scoring Lambda (validating with the model directory's
``schema.json``) -> boto3 -> the real model server.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from credit_explainer import (
    CreditExplainerClient,
    InvalidApplicantError,
    Score,
    ValidationError,
)
from credit_explainer.cli import main as cli_main
from credit_explainer_tools.local import LocalStack
from credit_schema import SCHEMA_FILE, ApplicantSchema, compile_schema, read_schema

pd = pytest.importorskip("pandas")
synth = pytest.importorskip("credit_model.synth")

API_KEY = "other-lender-key"
ID = synth.OTHER_ID


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from credit_model.data import encode_frame
    from credit_model.infer import draft
    from credit_model.train import Hyperparameters, train

    frame = synth.generate_other(2_000, seed=5)
    drafted, _ = draft(
        frame,
        target=synth.OTHER_TARGET,
        positive="default",
        id_columns=[ID],
        prohibited=[synth.OTHER_PROHIBITED],
        name="other-lender",
    )
    schema = compile_schema(drafted)
    directory = tmp_path_factory.mktemp("other-lender-model")
    train(
        encode_frame(frame, schema, "synthetic"),
        directory,
        schema=schema,
        hyperparameters=Hyperparameters(n_estimators=20, n_jobs=1),
        log=lambda *_: None,
    )
    return directory


@pytest.fixture(scope="module")
def schema(model_dir: Path) -> ApplicantSchema:
    return read_schema(model_dir / SCHEMA_FILE)


@pytest.fixture(scope="module")
def stack(model_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(model_dir, api_key=API_KEY) as running:
        yield running


@pytest.fixture
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"x-api-key": API_KEY}) as c:
        yield c


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    """Applicants as the lender's file holds them: ids, categories, a missing amount, and the
    prohibited basis and the target (both read and dropped)."""
    frame = synth.generate_other(30, seed=99)
    out = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    assert any(r["loan_amount"] is None for r in out)
    return out


def _numbers(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) else value


def test_get_schema_returns_the_served_models_schema(
    http: httpx.Client, schema: ApplicantSchema
) -> None:
    answer = http.get("/schema")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == schema.document()
    assert [f["name"] for f in answer.json()["features"]] == list(schema.features)
    assert answer.json()["id_columns"] == [ID]


def test_the_openapi_request_model_is_the_served_schemas(
    http: httpx.Client, schema: ApplicantSchema
) -> None:
    doc = http.get("/swagger", params={"format": "json"}).json()
    applicant = doc["components"]["schemas"]["Applicant"]
    assert list(applicant["properties"]) == [*schema.features, ID]
    assert set(applicant["properties"]["housing"]["enum"]) == {"own", "rent", "with_family"}
    assert "/schema" in doc["paths"]


def test_score_returns_ids_category_texts_and_explanations_that_add_up(
    http: httpx.Client, schema: ApplicantSchema, records: list[dict[str, Any]]
) -> None:
    answer = http.post("/score", json=records)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(records)
    for sent, result in zip(records, results, strict=True):
        assert result["ids"] == {ID: sent[ID]}
        by_feature = {c["feature"]: c["value"] for c in result["contributions"]}
        assert list(by_feature) != [] and set(by_feature) == set(schema.features)
        assert {f: _numbers(sent[f]) for f in schema.features} == by_feature  # texts echoed
        assert isinstance(by_feature["housing"], str)
        total = math.fsum([result["base_value"], *(c["shap_value"] for c in result["contributions"])])
        assert abs(total - result["probability"]) <= 1e-9
    assert synth.OTHER_PROHIBITED not in json.dumps(results)


def test_the_legacy_shape_names_the_schemas_features(
    http: httpx.Client, schema: ApplicantSchema, records: list[dict[str, Any]]
) -> None:
    answer = http.post("/score", params={"format": "legacy"}, json=records[:3])
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["shap_values"]) == list(schema.features)


@pytest.mark.parametrize(
    ("update", "drop", "field", "type_"),
    [
        ({"housing": "castle"}, None, "housing", "literal_error"),
        ({}, "duration_months", "duration_months", "missing"),
        ({"application_id": "A-1"}, None, "application_id", "extra_forbidden"),
    ],
    ids=["unknown category", "missing feature", "unknown field"],
)
def test_a_bad_applicant_is_a_422_naming_applicant_and_field(
    http: httpx.Client,
    records: list[dict[str, Any]],
    update: dict[str, Any],
    drop: str | None,
    field: str,
    type_: str,
) -> None:
    bad = {k: v for k, v in records[1].items() if k != drop} | update
    answer = http.post("/score", json=[records[0], bad])
    assert answer.status_code == 422, answer.text
    details = answer.json()["error"]["details"]
    assert [(d["applicant"], d["field"], d["type"]) for d in details] == [(1, field, type_)]


def test_the_sdk_validates_locally_against_the_fetched_schema(
    stack: LocalStack, schema: ApplicantSchema, records: list[dict[str, Any]]
) -> None:
    with CreditExplainerClient(stack.api_url, api_key=API_KEY) as client:
        assert client.schema().features == schema.features
        assert client.schema() is client.schema()  # fetched once
        with pytest.raises(InvalidApplicantError) as caught:
            client.score(dict(records[0], housing="castle"))
        assert not isinstance(caught.value, ValidationError)  # refused here, not by the API
        assert [(e.applicant, e.field) for e in caught.value.errors] == [(0, "housing")]
        # a list of values in the schema's order
        score = client.score([records[0][f] for f in schema.features])
        assert isinstance(score, Score) and score.ids is None
        assert list(score.shap_values) == list(schema.features)
        assert score.inputs["housing"] == records[0]["housing"]
        assert score.to_text().startswith("probability of default:")


def test_the_sdk_carries_ids_into_the_dataframe(
    stack: LocalStack, schema: ApplicantSchema, records: list[dict[str, Any]]
) -> None:
    frame = pd.DataFrame(records)
    with CreditExplainerClient(stack.api_url, api_key=API_KEY) as client:
        results = client.score_many(frame, batch_size=7)
        broken = frame.copy()
        broken.loc[3, "housing"] = "castle"
        collected = client.score_many(broken, on_error="collect")
    out = results.to_dataframe()
    assert list(out[ID]) == list(frame[ID])
    assert [c for c in out.columns if c.startswith("shap_")] == [
        f"shap_{f}" for f in schema.features
    ]
    assert [s.ids for s in results.scores] == [{ID: r[ID]} for r in records]
    # Results pickle (multiprocessing, caches) with their schema, as they did before schemas.
    assert pickle.loads(pickle.dumps(results)).to_dataframe().equals(out)
    failed = collected.to_dataframe()
    assert failed.loc[3, ID] == records[3][ID] and "housing" in failed.loc[3, "error"]
    assert failed[ID].tolist() == frame[ID].tolist()


def test_the_score_cli_works_from_the_served_schema(
    stack: LocalStack, schema: ApplicantSchema, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    src = tmp_path / "loans.csv"
    columns = list(records[0])
    with src.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i, r in enumerate(records[:12]):
            row = dict(r, housing="castle") if i == 5 else r
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
    out = tmp_path / "scored.csv"
    code = cli_main(
        ["score", "--url", stack.api_url, "--api-key", API_KEY, str(src), "-o", str(out),
         "--no-progress"]
    )
    assert code == 1  # one row rejected
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:3] == ["row", ID, "probability"]
    assert [c for c in header if c.startswith("shap_")] == [f"shap_{f}" for f in schema.features]
    assert [r[ID] for r in rows] == [r[ID] for i, r in enumerate(records[:12]) if i != 5]
    with (tmp_path / "scored.rejects.csv").open(newline="") as f:
        rejected = list(csv.DictReader(f))
    assert [(r["row"], r[ID]) for r in rejected] == [("5", records[5][ID])]
    assert "housing" in rejected[0]["error"]
