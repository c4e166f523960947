"""Estimator families, one module each, behind one seam (kserve style).

Every module turns a fitted estimator of its library into the one
:class:`~credit_model.ensemble.Ensemble` form (``to_ensemble``), and trains, saves and
loads it in the library's own safe format (``build``, ``save``, ``load``,
``MODEL_FILE``). Only training, import and the report import a family's library:
serving loads the compiled tables.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Final

from ..ensemble import UnsupportedModelError

#: ``train --model`` choices; the random forest is the default.
FAMILIES: Final = ("rf", "hgb", "xgboost", "lightgbm")
#: The families whose trees add up margins (log-odds): path-dependent TreeSHAP adds up there.
BOOSTED: Final = FAMILIES[1:]


def module(name: str) -> ModuleType:
    """The family module for ``name`` (one of :data:`FAMILIES`)."""
    from . import forest, hgb, lightgbm, xgboost

    modules = {"rf": forest, "hgb": hgb, "xgboost": xgboost, "lightgbm": lightgbm}
    if name not in modules:
        raise ValueError(f"unknown model family {name!r}: choose from {', '.join(FAMILIES)}")
    return modules[name]


def of(estimator: Any) -> str:
    """The family of a fitted estimator (a Pipeline ending in a forest is ``rf``)."""
    kind = type(estimator)
    qualified = f"{kind.__module__}.{kind.__qualname__}"
    if qualified.startswith("xgboost."):
        return "xgboost"
    if qualified.startswith("lightgbm.") or qualified.endswith("lightgbm.BoosterModel"):
        return "lightgbm"
    if kind.__name__ == "HistGradientBoostingClassifier":
        return "hgb"
    if kind.__name__ in ("Pipeline", "RandomForestClassifier", "ExtraTreesClassifier"):
        return "rf"
    raise UnsupportedModelError(f"{kind.__name__} is not an estimator family this project covers")


__all__ = ["BOOSTED", "FAMILIES", "module", "of"]
