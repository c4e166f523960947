"""The model server's settings from its environment, each read one way.

A set variable that is not a positive number refuses the start with one line naming it
(``SettingError`` is one of the server's start-up errors); unset or empty takes the default.
"""

from __future__ import annotations

import os


class SettingError(ValueError):
    """An environment variable the model server cannot use; the message names it and why."""


def env_int(name: str, default: int) -> int:
    """``$name`` as a positive whole number, or ``default`` when unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise SettingError(f"{name} must be a positive whole number, not {text[:40]!r}")
    return int(text)


def env_seconds(name: str, default: float) -> float:
    """``$name`` as a positive number of seconds, or ``default`` when unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise SettingError(f"{name} must be a positive number of seconds, not {text[:40]!r}")
    return value
