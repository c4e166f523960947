"""credit-explainer: an explainable credit-risk model on AWS, and its Python client."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("credit-explainer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
