"""Exact explanations: probability of class 1 and path-dependent TreeSHAP values.

An :class:`Explainer` turns raw inputs (float64 rows in model feature order,
NaN where a value is missing) into probabilities of ``SeriousDlqin2yrs = 1`` and
one SHAP value per feature, with ``base_value + shap.sum(axis=1) == probability``.
SHAP values are those of the forest on the imputed inputs (imputation is part of
the input, as in the original), reported against the raw feature values.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

#: The class explained: SeriousDlqin2yrs = 1.
POSITIVE_CLASS = 1


class Explainer(Protocol):
    base_value: float

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X[n, 10]`` raw -> ``(probability[n], shap[n, 10])``."""
        ...


def split_pipeline(pipeline: Any) -> tuple[Any, Any]:
    """``(preprocessing or None, forest)`` of a Pipeline, or ``(None, model)``."""
    from sklearn.pipeline import Pipeline

    if isinstance(pipeline, Pipeline):
        pre = pipeline[:-1] if len(pipeline.steps) > 1 else None
        return pre, pipeline.steps[-1][1]
    return None, pipeline


class ShapTreeExplainer:
    """The reference: ``shap.TreeExplainer`` (path-dependent) on the fitted forest.

    Newer shap returns a ``(n, features, classes)`` array for classifiers where
    older versions returned a list per class: both are read as class 1 here.
    """

    def __init__(self, pipeline: Any) -> None:
        import shap

        self._pre, self._model = split_pipeline(pipeline)
        classes = list(getattr(self._model, "classes_", [0, 1]))
        self._class_index = classes.index(POSITIVE_CLASS)
        self._tree = shap.TreeExplainer(self._model, feature_perturbation="tree_path_dependent")
        expected = np.atleast_1d(np.asarray(self._tree.expected_value, dtype=np.float64))
        self.base_value = float(expected[self._class_index] if expected.size > 1 else expected[0])

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xi = self._pre.transform(X) if self._pre is not None else X
        proba = self._model.predict_proba(Xi)[:, self._class_index]
        values = self._tree.shap_values(Xi, check_additivity=False)
        if isinstance(values, list):
            values = values[self._class_index]
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 3:
            values = values[:, :, self._class_index]
        return np.asarray(proba, dtype=np.float64), values


def build_explainer(pipeline: Any) -> Explainer:
    """The explainer for a fitted model."""
    return ShapTreeExplainer(pipeline)
