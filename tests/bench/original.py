"""The original blog's scoring path, re-implemented faithfully: the bench's reference.

Kept in the bench only, never in the product. As in the blog's SageMaker
script: the request body is the blog client's ``json.dumps(df.to_json(orient=
"records"))``; ``input_fn`` turns it into a pandas DataFrame, ``predict_fn``
imputes with the pipeline's SimpleImputer, calls the forest's
``predict_proba`` and ``shap.TreeExplainer.shap_values`` (built once, at model
load: the most generous reading), and ``output_fn`` answers with
``json.dumps`` in the blog's shape (``prediction``, ``shap_base``,
``shap_values`` as feature -> list). The only change: class 1 is taken from the
3-D array current shap returns (the blog's ``shap_values(X)[1]`` breaks on it).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import shap
from credit_schema import FEATURES


class OriginalPath:
    def __init__(self, pipeline: Any) -> None:
        self.imputer = pipeline[0]
        self.forest = pipeline[-1]
        self.explainer = shap.TreeExplainer(self.forest)

    def input_fn(self, body: bytes | str) -> pd.DataFrame:
        data = json.loads(body)
        if isinstance(data, str):  # the blog's client double-encodes
            return pd.read_json(io.StringIO(data), orient="records")[list(FEATURES)]
        return pd.DataFrame(data)[list(FEATURES)]

    def predict_fn(self, frame: pd.DataFrame) -> dict[str, Any]:
        X = self.imputer.transform(frame)
        prediction = self.forest.predict_proba(X)[:, 1]
        shap_values = self.explainer.shap_values(X)[:, :, 1]
        return {
            "prediction": prediction.tolist(),
            "shap_base": float(self.explainer.expected_value[1]),
            "shap_values": {f: shap_values[:, j].tolist() for j, f in enumerate(FEATURES)},
        }

    def output_fn(self, result: dict[str, Any]) -> str:
        return json.dumps(result)

    def __call__(self, body: bytes | str) -> str:
        return self.output_fn(self.predict_fn(self.input_fn(body)))
