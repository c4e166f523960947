"""credit_model.fast_io: the batch encoders give what credit_schema's dict builders give.

The reference is ``credit_schema.explanation_dict`` (and ``legacy_dict``) serialised
by pydantic-core's ``to_json``, the encoder the model server used before the
compiled one: the fast encoders must give the same bytes, hence the same floats
bit for bit, the same ranking (ties in model feature order) and ``null`` for a
missing input.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from conftest import require_real_data
from credit_model import fast_io
from credit_model.data import load_csv, split_xy
from credit_model.fast_io import csv_rows, jsonlines, legacy_json, model_response_json
from credit_model.handlers import (
    CONTENT_TYPE_JSONLINES,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)
from credit_model.synth import generate
from credit_schema import FEATURES, LegacyResponse, ModelResponse, explanation_dict, legacy_dict
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic_core import to_json

M = len(FEATURES)
EDGES = [0.0, -0.0, 0.5, -0.5, 1e-17, 5e-324, -5e-324, 1e-300, 1e300, -1.7976931348623157e308]
ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
#: SHAP values: few distinct magnitudes (ties), signed zeros, tiny and huge numbers.
SHAP = st.sampled_from(EDGES) | st.floats(-1.0, 1.0, allow_nan=False) | ANY_FLOAT
#: Inputs: NaN is a missing value (sent as null).
INPUT = st.sampled_from([math.nan, *EDGES]) | ANY_FLOAT
PROBABILITY = st.sampled_from([0.0, 1.0, 0.5, 5e-324]) | st.floats(0.0, 1.0)
VERSION = (
    st.sampled_from(["v1", 'quote " backslash \\ tab \t nl \n', "\x00\x1f\u2028é😀"]) | st.text()
)


def reference(
    model_version: str,
    proba: np.ndarray,
    base: float,
    inputs: np.ndarray,
    shap_values: np.ndarray,
) -> list[dict[str, Any]]:
    """``explanation_dict`` per applicant, from Python floats (None where an input is NaN)."""
    return [
        explanation_dict(
            p,
            base,
            [None if math.isnan(v) else v for v in row],
            phi,
        )
        for p, row, phi in zip(proba.tolist(), inputs.tolist(), shap_values.tolist(), strict=True)
    ]


def assert_same_floats(got: Any, expected: Any) -> None:
    """Equal, with floats equal bit for bit (so -0.0 is not 0.0), keys in the same order."""
    assert got == expected
    assert repr(got) == repr(expected)


batches = st.integers(0, 7).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, (n,), elements=PROBABILITY),
        arrays(np.float64, (n, M), elements=INPUT),
        arrays(np.float64, (n, M), elements=SHAP),
    )
)


@settings(max_examples=300, deadline=None)
@given(batches, st.sampled_from(EDGES) | ANY_FLOAT, VERSION, st.sampled_from([1, 2, 3, 256]))
def test_same_bytes_as_explanation_dict_through_to_json(
    batch: tuple[np.ndarray, np.ndarray, np.ndarray], base: float, version: str, block: int
) -> None:
    proba, inputs, shap_values = batch
    expected = reference(version, proba, base, inputs, shap_values)
    with mock.patch.object(fast_io, "_BLOCK", block):  # several blocks per request
        body = model_response_json(version, proba, base, inputs, shap_values)
        lines = jsonlines(version, proba, base, inputs, shap_values)
    assert body == to_json({"model_version": version, "predictions": expected})
    assert_same_floats(json.loads(body), {"model_version": version, "predictions": expected})
    with_version = [{"model_version": version, **e} for e in expected]
    assert lines == b"".join(to_json(e) + b"\n" for e in with_version)
    assert_same_floats([json.loads(line) for line in lines.splitlines()], with_version)


@settings(max_examples=100, deadline=None)
@given(batches, st.data())
def test_a_given_order_is_used_as_is(
    batch: tuple[np.ndarray, np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    proba, inputs, shap_values = batch
    order = np.array(
        [data.draw(st.permutations(range(M))) for _ in range(len(proba))], dtype=np.int64
    ).reshape(-1, M)
    body = json.loads(model_response_json("v", proba, 0.1, inputs, shap_values, order=order))
    for prediction, ranked, phi in zip(body["predictions"], order, shap_values, strict=True):
        features = [c["feature"] for c in prediction["contributions"]]
        assert features == [FEATURES[j] for j in ranked]
        assert [c["shap_value"] for c in prediction["contributions"]] == phi[ranked].tolist()
    ranked = np.argsort(-np.abs(shap_values), axis=1, kind="stable")
    assert model_response_json(
        "v", proba, 0.1, inputs, shap_values, order=ranked
    ) == model_response_json("v", proba, 0.1, inputs, shap_values)


@pytest.mark.parametrize("rows", [1, 3])  # one applicant: Python; more: the compiled loop
@pytest.mark.parametrize("bad", [[0] * M, [*range(M - 1), M], [-1, *range(1, M)]])
def test_an_order_that_is_not_a_permutation_is_refused(rows: int, bad: list[int]) -> None:
    order = [list(range(M))] * (rows - 1) + [bad]
    zeros = np.zeros((rows, M))
    with pytest.raises(ValueError, match="permutation"):
        model_response_json("v", [0.5] * rows, 0.1, zeros, zeros, order=order)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="shapes"):
        model_response_json("v", [0.5, 0.5], 0.1, np.zeros((1, M)), np.zeros((1, M)))
    with pytest.raises(ValueError, match="features"):
        model_response_json("v", [0.5], 0.1, np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="order must have shape"):
        model_response_json("v", [0.5], 0.1, np.zeros((1, M)), np.zeros((1, M)), order=[[0, 1]])


def test_ranking_ties_keep_feature_order_and_directions() -> None:
    phi = np.array([[0.1, -0.1, 0.0, 0.3, -0.0, 0.0, 0.0, 0.0, 0.0, -0.3]])
    out = json.loads(model_response_json("v", np.array([0.5]), 0.1, np.ones((1, M)), phi))
    contributions = out["predictions"][0]["contributions"]
    assert [c["feature"] for c in contributions[:5]] == [
        FEATURES[3],
        FEATURES[9],
        FEATURES[0],
        FEATURES[1],
        FEATURES[2],
    ]
    assert [c["direction"] for c in contributions[:6]] == [
        "up",
        "down",
        "up",
        "down",
        "none",
        "none",
    ]
    assert contributions[5]["feature"] == FEATURES[4]
    assert math.copysign(1.0, contributions[5]["shap_value"]) == -1.0  # -0.0 kept, "none"


def test_no_applicants() -> None:
    empty = np.zeros((0, M))
    assert json.loads(model_response_json("v", [], 0.1, empty, empty)) == {
        "model_version": "v",
        "predictions": [],
    }
    assert jsonlines("v", [], 0.1, empty, empty) == b""
    assert csv_rows([], 0.1, empty) == b""


@settings(max_examples=100, deadline=None)
@given(batches, st.sampled_from(EDGES) | ANY_FLOAT)
def test_legacy_and_csv_give_the_same_floats(
    batch: tuple[np.ndarray, np.ndarray, np.ndarray], base: float
) -> None:
    proba, _, shap_values = batch
    legacy = legacy_json(proba, base, shap_values)
    assert_same_floats(json.loads(legacy), legacy_dict(proba.tolist(), base, shap_values.tolist()))
    LegacyResponse.model_validate_json(legacy)
    rows = list(csv.reader(io.StringIO(csv_rows(proba, base, shap_values).decode())))
    assert_same_floats(
        [[float(v) for v in row] for row in rows],
        [[p, base, *phi] for p, phi in zip(proba.tolist(), shap_values.tolist(), strict=True)],
    )


def test_input_values_are_none_where_missing() -> None:
    X = np.array([[1.0, np.nan], [np.nan, 2.5]])
    assert fast_io.input_values(X) == [[1.0, None], [None, 2.5]]


def check_model_outputs(model: Any, X: np.ndarray) -> None:
    """output_fn on the model's own predictions: the reference bytes, every output type."""
    prediction = predict_fn(X, model)
    expected = reference(
        model.version,
        prediction.probability,
        prediction.base_value,
        prediction.inputs,
        prediction.shap_values,
    )
    body, ctype = output_fn(prediction, "application/json")
    assert ctype == "application/json"
    assert body == to_json({"model_version": model.version, "predictions": expected})
    ModelResponse.model_validate_json(body)
    lines, ctype = output_fn(prediction, CONTENT_TYPE_JSONLINES)
    assert ctype == CONTENT_TYPE_JSONLINES
    assert lines == b"".join(
        to_json({"model_version": model.version, **e}) + b"\n" for e in expected
    )
    table, _ = output_fn(prediction, "text/csv")
    records = list(csv.DictReader(io.StringIO(table.decode())))
    assert [float(r["probability"]) for r in records] == prediction.probability.tolist()
    assert [[float(r[f"shap_{f}"]) for f in FEATURES] for r in records] == (
        prediction.shap_values.tolist()
    )
    assert {float(r["base_value"]) for r in records} == {prediction.base_value}


def test_the_model_server_outputs_on_synthetic_applicants(synthetic_model: Any) -> None:
    frame = generate(700, seed=3)[list(FEATURES)]  # several blocks; synthetic rows have gaps
    X = input_fn(frame.to_json(orient="records"), "application/json")
    assert np.isnan(X).any()
    check_model_outputs(synthetic_model, X)
    check_model_outputs(synthetic_model, X[:1])


@pytest.mark.real_data
def test_the_model_server_outputs_on_real_applicants(real_model_dir: Path) -> None:
    X, _ = split_xy(load_csv(require_real_data()))
    check_model_outputs(model_fn(real_model_dir), X[:3000])
