"""The one ensemble form every estimator family is turned into before compilation.

A family module (:mod:`credit_model.families`) reads a fitted estimator of its
library and returns an :class:`Ensemble`: trees whose splits send ``x`` left when
``x <= threshold`` (the threshold already moved to where the library's own comparison
falls, for example XGBoost's ``x < t`` in float32), a per-split default direction
for missing values, leaf values in the space the trees combine in, node covers for
path-dependent TreeSHAP, and how trees combine (``raw = sum / divisor + offset``)
and map to a probability (the link). :func:`credit_model.forest.compile_ensemble`
then builds the same tables for every family, and :mod:`credit_model.kernel`
explains them: serving never imports the library that fitted the model.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

#: How raw outputs become probabilities: ``identity`` (averaged probabilities, the random
#: forest) or ``logistic`` (summed margins, gradient boosting: probability = expit(raw)).
Link = Literal["identity", "logistic"]
LINKS: Final[tuple[Link, ...]] = ("identity", "logistic")
LEAF: Final = -1  #: ``left``/``right`` of a leaf


class UnsupportedModelError(TypeError):
    """The fast path does not cover this model (the caller falls back to shap)."""


@dataclass(frozen=True, slots=True)
class Tree:
    """One tree as node arrays (node 0 the root, children after their parent)."""

    left: IndexArray  #: left child, :data:`LEAF` at a leaf
    right: IndexArray  #: right child, :data:`LEAF` at a leaf
    feature: IndexArray  #: column compared (ignored at a leaf)
    threshold: FloatArray  #: ``x <= threshold`` goes left
    missing_right: IndexArray  #: 1 where a missing value (NaN) goes right, else 0
    value: FloatArray  #: leaf value (ignored at a split)
    cover: FloatArray  #: training weight through the node (path-dependent TreeSHAP)


@dataclass(frozen=True, slots=True)
class Ensemble:
    """Trees that combine as ``raw = sum(leaf values) / divisor + offset``, then the link."""

    trees: tuple[Tree, ...]
    n_features: int
    divisor: float  #: number of trees when averaged (forests), 1 when summed (boosting)
    offset: float  #: the boosting's initial margin (0 for forests)
    link: Link
    #: Inputs rounded to float32 before comparing (scikit-learn forests, XGBoost).
    float32_inputs: bool


def expit(raw: FloatArray) -> FloatArray:
    """The logistic link (scipy's ``expit``, without scipy)."""
    with np.errstate(over="ignore"):  # exp(-raw) = inf: probability 0, as expit gives
        out: FloatArray = 1.0 / (1.0 + np.exp(-raw))
    return out


def logit(p: float) -> float:
    """The log-odds of a probability (the space path-dependent GBM explanations add up in)."""
    return math.log(p) - math.log1p(-p)


def fingerprint(ensemble: Ensemble) -> str:
    """SHA-256 of everything that decides an answer: the same trees give the same version."""
    digest = hashlib.sha256()
    head = (
        f"{ensemble.n_features}|{ensemble.divisor!r}|{ensemble.offset!r}|{ensemble.link}|"
        f"{ensemble.float32_inputs}|{len(ensemble.trees)}"
    )
    digest.update(head.encode())
    for tree in ensemble.trees:
        for ints in (tree.left, tree.right, tree.feature, tree.missing_right):
            digest.update(np.ascontiguousarray(ints, dtype=np.int64).tobytes())
        for floats in (tree.threshold, tree.value, tree.cover):
            digest.update(np.ascontiguousarray(floats, dtype=np.float64).tobytes())
    return digest.hexdigest()
