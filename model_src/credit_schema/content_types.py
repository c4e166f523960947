"""Content types and their negotiation: the one statement of what each service reads and writes.

``negotiate`` picks the answer's type from an ``Accept`` header and ``check_content_type``
the request's from its ``Content-Type``; the model server, the scoring API and the client
use these, with their own lists of what they offer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .errors import NotAcceptableError, UnsupportedMediaTypeError

CONTENT_TYPE_JSON: Final = "application/json"
CONTENT_TYPE_CSV: Final = "text/csv"
CONTENT_TYPE_JSONLINES: Final = "application/jsonlines"
#: The original blog's response shape (``prediction``, ``shap_base``, ``shap_values``).
CONTENT_TYPE_LEGACY_JSON: Final = "application/vnd.credit-explainer.legacy+json"
#: Other names clients and SageMaker Batch Transform use for JSON Lines.
JSONLINES_ALIASES: Final = frozenset(
    {CONTENT_TYPE_JSONLINES, "application/x-jsonlines", "application/jsonl"}
)
#: Bodies that data capture records as text (``encoding: JSON``); any other body is base64.
#: SageMaker's ``CaptureContentTypeHeader.JsonContentTypes`` on AWS, the local capture's rule
#: (SageMaker's pattern for these refuses the legacy type's "+": its answers are base64).
CAPTURE_JSON_CONTENT_TYPES: Final = (CONTENT_TYPE_JSON, CONTENT_TYPE_JSONLINES)


def media_type(header: str | None) -> str:
    """``"application/json; charset=utf-8"`` -> ``"application/json"`` (aliases folded)."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    return CONTENT_TYPE_JSONLINES if kind in JSONLINES_ALIASES else kind


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The first type in ``accept``'s order that ``offered`` has; ``offered[0]`` for none or ``*/*``.

    ``type/*`` takes the first offered type of that family. Raises
    :class:`NotAcceptableError` (406) when nothing listed can be produced.
    """
    if not accept or not accept.strip():
        return offered[0]
    for part in accept.split(","):
        kind = media_type(part)
        if kind == "*/*":
            return offered[0]
        if kind.endswith("/*"):
            family = kind[:-1]
            match = next((o for o in offered if o.startswith(family)), None)
            if match is not None:
                return match
        elif kind in offered:
            return kind
    raise NotAcceptableError(
        f"cannot answer {accept.strip()[:100]!r}; available: {', '.join(offered)}"
    )


def check_content_type(content_type: str | None, accepted: Sequence[str]) -> str:
    """The request's media type if ``accepted`` has it (none given: ``accepted[0]``), else 415."""
    kind = media_type(content_type) or accepted[0]
    if kind not in accepted:
        raise UnsupportedMediaTypeError(
            f"content type {kind[:100]!r} is not supported; use {' or '.join(accepted)}"
        )
    return kind
