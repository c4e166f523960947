"""credit_model.fast_io: the batch encoders give what credit_schema's dict builders give."""

from __future__ import annotations

import json

import numpy as np
from credit_model.fast_io import legacy_json, model_response_json
from credit_schema import FEATURES, LegacyResponse, ModelResponse, explanation_dict, legacy_dict
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

FINITE = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.just(len(FEATURES))),
        elements=st.sampled_from([0.0, -0.0, 0.5, -0.5, 1e-17]) | FINITE,
    ),
    st.data(),
)
def test_same_as_explanation_dict_and_legacy_dict(
    shap_values: np.ndarray, data: st.DataObject
) -> None:
    n = shap_values.shape[0]
    proba = np.linspace(0.0, 1.0, n)
    rows = [data.draw(st.lists(st.none() | FINITE, min_size=10, max_size=10)) for _ in range(n)]
    body = model_response_json("v1", proba, 0.07, rows, shap_values)
    expected = {
        "model_version": "v1",
        "predictions": [
            explanation_dict(proba[i], 0.07, rows[i], shap_values[i].tolist()) for i in range(n)
        ],
    }
    assert json.loads(body) == expected
    ModelResponse.model_validate_json(body)
    legacy = legacy_json(proba, 0.07, shap_values)
    assert json.loads(legacy) == legacy_dict(proba.tolist(), 0.07, shap_values.tolist())
    LegacyResponse.model_validate_json(legacy)


def test_ranking_ties_keep_feature_order_and_directions() -> None:
    phi = np.array([[0.1, -0.1, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, -0.3]])
    out = json.loads(model_response_json("v", np.array([0.5]), 0.1, [[1.0] * 10], phi))
    contributions = out["predictions"][0]["contributions"]
    assert [c["feature"] for c in contributions[:4]] == [
        FEATURES[3],
        FEATURES[9],
        FEATURES[0],
        FEATURES[1],
    ]
    assert [c["direction"] for c in contributions[:5]] == ["up", "down", "up", "down", "none"]
