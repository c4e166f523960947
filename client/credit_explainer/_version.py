"""The installed distribution's version (sent in the User-Agent)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("credit-explainer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
