"""The inference handlers: every input shape, every output type, every error."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import numpy as np
import pytest
from conftest import payloads
from credit_model.handlers import (
    OUTPUT_CONTENT_TYPES,
    ExplanationError,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
    transform,
)
from credit_schema import (
    CONTENT_TYPE_JSONLINES,
    CONTENT_TYPE_LEGACY_JSON,
    FEATURES,
    LegacyResponse,
    ModelResponse,
    NotAcceptableError,
    PayloadError,
)


def test_every_input_shape_gives_identical_numbers(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    results = {}
    for name, (body, ctype) in payloads(sample_applicants).items():
        out, out_type = transform(synthetic_model, body, ctype, "application/json")
        assert out_type == "application/json"
        results[name] = json.loads(out)
    first = results.pop("records")
    assert all(r == first for r in results.values())
    parsed = ModelResponse.model_validate(first)
    assert len(parsed.predictions) == len(sample_applicants)
    assert parsed.model_version == synthetic_model.version
    for p, a in zip(parsed.predictions, sample_applicants, strict=True):
        assert sorted(c.feature for c in p.contributions) == sorted(FEATURES)
        assert p.base_value + sum(c.shap_value for c in p.contributions) == pytest.approx(
            p.probability, abs=1e-9
        )
        assert [abs(c.shap_value) for c in p.contributions] == sorted(
            (abs(c.shap_value) for c in p.contributions), reverse=True
        )
        assert {c.feature: c.value for c in p.contributions} == {
            f: (None if a[f] is None else float(a[f])) for f in FEATURES
        }


def test_one_object_is_one_prediction(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    single, _ = transform(
        synthetic_model, json.dumps(sample_applicants[0]), "application/json", None
    )
    batch, _ = transform(synthetic_model, json.dumps(sample_applicants), "application/json", None)
    assert json.loads(single)["predictions"] == json.loads(batch)["predictions"][:1]


def test_legacy_shape_matches(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    new = json.loads(
        transform(synthetic_model, json.dumps(sample_applicants), "application/json", None)[0]
    )
    body, ctype = transform(
        synthetic_model, json.dumps(sample_applicants), "application/json", CONTENT_TYPE_LEGACY_JSON
    )
    assert ctype == CONTENT_TYPE_LEGACY_JSON
    legacy = LegacyResponse.model_validate_json(body)
    assert legacy.prediction == [p["probability"] for p in new["predictions"]]
    for i, p in enumerate(new["predictions"]):
        by_feature = {c["feature"]: c["shap_value"] for c in p["contributions"]}
        assert {f: legacy.shap_values[f][i] for f in FEATURES} == by_feature
        assert legacy.shap_base == p["base_value"]


def test_jsonlines_and_csv_outputs(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    rows = input_fn(json.dumps(sample_applicants), "application/json")
    prediction = predict_fn(rows, synthetic_model)
    lines, ctype = output_fn(prediction, "application/jsonlines")
    assert ctype == CONTENT_TYPE_JSONLINES
    decoded = [json.loads(line) for line in lines.decode().splitlines()]
    assert [d["probability"] for d in decoded] == prediction.probability.tolist()
    table, ctype = output_fn(prediction, "text/csv")
    parsed = list(csv.DictReader(io.StringIO(table.decode())))
    assert ctype == "text/csv" and len(parsed) == len(sample_applicants)
    assert [float(r["probability"]) for r in parsed] == prediction.probability.tolist()
    assert float(parsed[0]["shap_age"]) == prediction.shap_values[0, FEATURES.index("age")]
    # RFC 4180's header=absent: rows only, so Batch Transform can join mini-batches by line.
    rows_only, ctype = output_fn(prediction, "text/csv; header=absent")
    assert ctype == "text/csv"
    assert rows_only.decode().splitlines() == table.decode().splitlines()[1:]


def test_missing_values_are_imputed_not_refused(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    rows = input_fn(json.dumps(sample_applicants[2]), "application/json")
    assert np.isnan(rows.rows[0, FEATURES.index("MonthlyIncome")])
    prediction = predict_fn(rows, synthetic_model)
    assert 0.0 <= prediction.probability[0] <= 1.0


@pytest.mark.parametrize(
    ("body", "ctype", "accept", "status", "field"),
    [
        ("{not json", "application/json", None, 400, None),
        ('{"a": 1}', "application/xml", None, 415, None),
        ("[]", "application/json", "image/png", 406, None),
        ("BAD-AGE", "application/json", None, 422, "age"),
        ("MISSPELT", "application/json", None, 422, "Age"),
        ("1,2,3\n", "text/csv", None, 422, None),
    ],
)
def test_bad_requests_are_4xx_naming_applicant_and_field(
    synthetic_model: Any,
    sample_applicants: list[dict[str, Any]],
    body: str,
    ctype: str,
    accept: str | None,
    status: int,
    field: str | None,
) -> None:
    if body == "BAD-AGE":
        body = json.dumps([sample_applicants[0], dict(sample_applicants[1], age=12)])
    elif body == "MISSPELT":
        bad = dict(sample_applicants[0])
        bad["Age"] = bad.pop("age")
        body = json.dumps([sample_applicants[1], bad])
    with pytest.raises(PayloadError) as info:
        transform(synthetic_model, body, ctype, accept)
    assert info.value.status_code == status
    if status == 422:
        assert all(d.applicant == (1 if field else 0) for d in info.value.details)
        if field:
            assert field in {d.field for d in info.value.details}


def test_accept_negotiation() -> None:
    def negotiate(accept: str | None) -> str:
        return output_fn_type(accept)

    assert (
        negotiate(None)
        == negotiate("*/*")
        == negotiate("application/*")
        == negotiate("application/json; q=0.9")
        == "application/json"
    )
    assert negotiate("image/png, application/jsonlines") == CONTENT_TYPE_JSONLINES
    assert negotiate("application/x-jsonlines") == CONTENT_TYPE_JSONLINES
    assert negotiate(CONTENT_TYPE_LEGACY_JSON) == CONTENT_TYPE_LEGACY_JSON
    assert negotiate("text/*") == "text/csv"
    with pytest.raises(NotAcceptableError):
        negotiate("image/png, text/html")


def output_fn_type(accept: str | None) -> str:
    from credit_schema import negotiate

    return negotiate(accept, OUTPUT_CONTENT_TYPES)


def test_an_inconsistent_explanation_is_never_returned(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    class Broken:
        base_value = synthetic_model.explainer.base_value

        def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            proba, values = synthetic_model.explainer.explain(X)
            return proba, values * 1.01

        def explain_checked(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
            proba, values = self.explain(X)
            gaps = np.abs(self.base_value + values.sum(axis=1) - proba)
            return proba, values, float(gaps.max())

    broken = dataclasses.replace(synthetic_model, explainer=Broken())
    with pytest.raises(ExplanationError):
        transform(broken, json.dumps(sample_applicants), "application/json", None)


def test_a_broken_fast_explanation_is_caught_by_the_kernels_gap(
    synthetic_model_dir: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    model = model_fn(synthetic_model_dir)  # its own copy: the table is changed below
    body = json.dumps(sample_applicants)
    transform(model, body, "application/json", None)
    model.explainer.compiled.table[...] *= 1.001
    with pytest.raises(ExplanationError, match="inconsistent explanation"):
        transform(model, body, "application/json", None)


@pytest.mark.parametrize("accept", ["application/json", CONTENT_TYPE_JSONLINES])
def test_contributions_are_ranked_by_absolute_shap_value(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]], accept: str
) -> None:
    prediction = predict_fn(input_fn(json.dumps(sample_applicants), None), synthetic_model)
    body, _ = output_fn(prediction, accept)
    docs = (
        json.loads(body)["predictions"]
        if accept == "application/json"
        else [json.loads(line) for line in body.splitlines()]
    )
    for doc, shap in zip(docs, prediction.shap_values, strict=True):
        magnitudes = [abs(c["shap_value"]) for c in doc["contributions"]]
        assert magnitudes == sorted(magnitudes, reverse=True)
        by_feature = {c["feature"]: c["shap_value"] for c in doc["contributions"]}
        assert [by_feature[f] for f in FEATURES] == shap.tolist()
