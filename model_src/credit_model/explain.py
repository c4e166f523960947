"""Exact explanations: probability of class 1 and path-dependent TreeSHAP values.

An :class:`Explainer` turns raw inputs (float64 rows in model feature order,
NaN where a value is missing) into probabilities of the risk label (class 1) and
one SHAP value per feature, with ``base_value + shap.sum(axis=1) == probability``.
SHAP values are those of the forest on the imputed inputs (imputation is part of
the input, as in the original), reported against the raw feature values.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final, Protocol

import numpy as np
from credit_schema.responses import Space

log = logging.getLogger(__name__)

#: The class explained: the schema's risk label, encoded 1.
POSITIVE_CLASS = 1


class Explainer(Protocol):
    base_value: float
    #: Where ``base_value + shap.sum(axis=1)`` adds up: ``probability`` or ``log_odds``.
    space: Space

    def explain(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X[n, 10]`` raw -> ``(probability[n], shap[n, 10])``."""
        ...

    def explain_checked(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """:meth:`explain` and ``max |base + sum(shap) - probability|`` (NaN if any is NaN)."""
        ...


def additivity_gap(base_value: float, proba: np.ndarray, values: np.ndarray) -> float:
    """``max |base + sum(shap) - probability|`` over the rows; NaN when any row has a NaN."""
    if not len(proba):
        return 0.0
    gaps = np.abs(base_value + values.sum(axis=1) - proba)
    return float(np.nan if np.isnan(gaps).any() else gaps.max())


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
        from . import families

        self.space: Space = "probability" if families.of(pipeline) == "rf" else "log_odds"
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

    def explain_checked(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        proba, values = self.explain(X)
        target = proba if self.space == "probability" else np.log(proba) - np.log1p(-proba)
        return proba, values, additivity_gap(self.base_value, target, values)


#: ``auto`` (default): the fast exact explainer where it covers the model, else shap's;
#: ``fast``: the fast one or an error; ``shap``: always the reference.
EXPLAINER_ENV: Final = "CREDIT_EXPLAINER_EXPLAINER"


def explainer_kind(kind: str | None = None) -> str:
    """``kind``, else :data:`EXPLAINER_ENV`, else ``auto``; checked."""
    kind = (kind or os.environ.get(EXPLAINER_ENV) or "auto").strip().lower()
    if kind not in ("auto", "fast", "shap"):
        raise ValueError(f"{EXPLAINER_ENV} must be auto, fast or shap, not {kind!r}")
    return kind


def build_explainer(pipeline: Any, kind: str | None = None) -> Explainer:
    """The explainer for a fitted model.

    By default :class:`credit_model.explainer.FastTreeExplainer` (the same
    numbers as shap's path-dependent TreeExplainer, to 1e-9, many times
    faster), or :class:`ShapTreeExplainer` for models the fast path does not
    cover (see :func:`credit_model.forest.supports`).
    """
    from .explainer import fast_explainer_for
    from .forest import UnsupportedModelError

    kind = explainer_kind(kind)
    if kind != "shap":
        try:
            return fast_explainer_for(pipeline)
        except UnsupportedModelError as exc:
            if kind == "fast":
                raise
            log.info("fast TreeSHAP does not cover this model (%s): using shap's", exc)
    return ShapTreeExplainer(pipeline)
