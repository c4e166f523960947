"""Content types, request ids and API Gateway's timeout: rules the API, the model server and
the local stack share.

Standard library only, like the rest of :mod:`credit_schema`.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from .errors import UnsupportedMediaTypeError
from .responses import CONTENT_TYPE_JSON

#: What AWS issues as a request id (``x-amzn-RequestId``): a UUID, 36 characters.
_REQUEST_ID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
REQUEST_ID_LENGTH: Final = 36


def media_type(header: str | None) -> str:
    """``"application/json; charset=utf-8"`` -> ``"application/json"`` ("" when absent)."""
    return (header or "").split(";", 1)[0].strip().lower()


def is_json_content_type(header: str | None) -> bool:
    """A request body the scoring API reads: ``application/json`` (any parameters) or no type.

    No ``Content-Type`` reads as JSON: ``requests.post(url, data=json.dumps(...))``, as the
    original blog sends it, has none.
    """
    return media_type(header) in ("", CONTENT_TYPE_JSON)


def check_json_content_type(headers: list[str]) -> None:
    """Raise :class:`UnsupportedMediaTypeError` (415) unless every ``Content-Type`` sent is JSON."""
    if not all(is_json_content_type(h) for h in headers):
        # The header is not echoed: what the client sent stays out of the answer.
        raise UnsupportedMediaTypeError(f"send the applicants as {CONTENT_TYPE_JSON}")


def request_id(header: str | None) -> str:
    """The caller's request id if it has the shape AWS issues (a UUID), else a new one.

    Anything else (too long, other characters, log-line text) is replaced, never echoed.
    """
    if header is not None and len(header) == REQUEST_ID_LENGTH and _REQUEST_ID.fullmatch(header):
        return header
    return str(uuid.uuid4())


#: API Gateway's integration timeout for a REST API, seconds: past it the caller gets its
#: own ``504 {"message": "Endpoint request timed out"}``, whatever the function does.
API_GATEWAY_TIMEOUT_SECONDS: Final = 29.0
