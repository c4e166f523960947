"""Client configuration: named defaults, timeouts and the retry policy.

Timeouts are :class:`httpx.Timeout` objects (re-exported as
``credit_explainer.Timeout``); a float sets all four. Retries are a
:class:`RetryPolicy`; ``max_retries`` on the client is the common shortcut.
"""

from __future__ import annotations

import random
import shlex
from dataclasses import dataclass, replace
from typing import Final

import httpx

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUT",
    "INSTALL_TARGETS",
    "URL_ENV",
    "RetryPolicy",
    "install_hint",
]


#: What installs each of the project's distributions from a checkout (the README's commands),
#: its own directory last: the tools name the three they need by path (none is on PyPI: a name
#: left to the index could install someone else's package).
INSTALL_TARGETS: Final[dict[str, tuple[str, ...]]] = {
    "credit-explainer": ("./client",),
    "credit-explainer-model": ("./model_src",),
    "credit-explainer-tools": ("./client", "./model_src", "./lambda_fn", "."),
}


def install_hint(distribution: str, extra: str | None = None) -> str:
    """The command that installs ``distribution`` (with ``extra``) from a checkout."""
    *others, own = INSTALL_TARGETS[distribution]
    targets = [*others, f"{own}[{extra}]" if extra else own]
    return f"pip install {' '.join(map(shlex.quote, targets))} in the credit-explainer checkout"


#: Environment variables read when ``url`` / ``api_key`` are not given.
URL_ENV: Final = "CREDIT_EXPLAINER_URL"
API_KEY_ENV: Final = "CREDIT_EXPLAINER_API_KEY"

#: API Gateway gives up after 29 s; a read timeout just above lets its 504 arrive.
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
#: Retries after the first attempt (on 429, 503 and connection errors only).
DEFAULT_MAX_RETRIES: Final = 3
#: Applicants per request in ``score_many``: well inside the API's default
#: limits (2,000 applicants, 6,000,000 bytes) and small enough for a smooth progress bar.
DEFAULT_BATCH_SIZE: Final = 500


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` honoured up to ``max_retry_after``.

    The n-th retry (n = 0, 1, ...) waits ``uniform(0, min(max_backoff, initial_backoff * 2**n))``
    (without jitter: the upper bound itself), or what ``Retry-After`` asks when
    the API sends it. A ``Retry-After`` longer than ``max_retry_after`` is not
    waited for: the error is raised at once.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    jitter: bool = True
    retry_statuses: frozenset[int] = frozenset({429, 503})

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("backoff times must be >= 0")

    def with_max_retries(self, max_retries: int) -> RetryPolicy:
        return replace(self, max_retries=max_retries)

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) when the API gave no Retry-After."""
        cap = min(self.max_backoff, self.initial_backoff * (2.0**retry))
        return random.uniform(0.0, cap) if self.jitter else cap  # noqa: S311 - not cryptographic

    def delay(self, retry: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry ``retry``, or None when the policy says give up."""
        if retry >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(retry)


DEFAULT_RETRY_POLICY: Final = RetryPolicy()
