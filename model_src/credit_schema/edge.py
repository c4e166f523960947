"""Request ids and API Gateway's timeout: rules the API, the model server and the local
stack share.

Standard library only, like the rest of :mod:`credit_schema`.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

#: What AWS issues as a request id (``x-amzn-RequestId``): a UUID, 36 characters.
_REQUEST_ID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
REQUEST_ID_LENGTH: Final = 36
# UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, version 7, 74 random bits, variant 10.
_UUID7_VERSION: Final = 0x7 << 76
_UUID7_VARIANT: Final = 0b10 << 62


def new_id(at: datetime | None = None) -> str:
    """A UUIDv7: unique, not secret, and time-ordered, so an id names the hour of its record
    (uuid.uuid4 would make a system call each time; this takes random bits from ``random``).
    ``at``: the moment it names (default: now; a benchmark's store of past hours)."""
    bits = random.getrandbits(74)
    rand_a, rand_b = bits >> 62, bits & ((1 << 62) - 1)
    millis = time.time_ns() // 1_000_000 if at is None else int(at.timestamp() * 1000)
    value = millis << 80 | _UUID7_VERSION | rand_a << 64 | _UUID7_VARIANT | rand_b
    hexa = f"{value:032x}"
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def id_time(value: str) -> datetime | None:
    """When a UUIDv7 was made (UTC, to the millisecond); None for any other id."""
    if len(value) != REQUEST_ID_LENGTH or not _REQUEST_ID.fullmatch(value) or value[14] != "7":
        return None
    return datetime.fromtimestamp(int(value[:8] + value[9:13], 16) / 1000.0, UTC)


def decision_id(given: str | None) -> str:
    """The id a decision is recorded under: ``given`` when it is already a UUIDv7 (the local
    gateway issues those), else a new one (API Gateway's ids are random UUIDs)."""
    if given is not None and id_time(given) is not None:
        return given
    return new_id()


def request_id(header: str | None) -> str:
    """The caller's request id if it has the shape AWS issues (a UUID), else a new one.

    Anything else (too long, other characters, log-line text) is replaced, never echoed.
    """
    if header is not None and len(header) == REQUEST_ID_LENGTH and _REQUEST_ID.fullmatch(header):
        return header
    return new_id()


#: SageMaker's ``InferenceId``: at most 64 characters.
INFERENCE_ID_MAX_CHARS: Final = 64
#: The inference ids kept: a letter or digit, then letters, digits and ``. _ : -`` (request
#: ids and UUIDs fit). No slash, quote, space or leading ``= + - @``: nothing that is a path,
#: a spreadsheet formula or markup where capture and exports carry it.
_INFERENCE_ID: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{INFERENCE_ID_MAX_CHARS - 1}}}")


def inference_id(value: str | None) -> str | None:
    """``value`` if it has the safe shape of an ``InferenceId`` (kept), else None (replaced)."""
    if value and len(value) <= INFERENCE_ID_MAX_CHARS and _INFERENCE_ID.fullmatch(value):
        return value
    return None


#: API Gateway's integration timeout for a REST API, seconds: past it the caller gets its
#: own ``504 {"message": "Endpoint request timed out"}``, whatever the function does.
API_GATEWAY_TIMEOUT_SECONDS: Final = 29.0


#: The policy of an answer that is data, not a page: it loads nothing and is never framed.
DATA_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
#: Sent with every answer of the scoring API, the local gateway and the model server (API
#: Gateway's own answers get them from template.yaml's GatewayResponses).
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": DATA_POLICY,
}
_INLINE: Final = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def page_policy(page: str) -> str:
    """The Content-Security-Policy an HTML page we serve satisfies: its own inline scripts and
    styles (by SHA-256, so no other script runs), images from itself or ``data:`` URIs, calls
    back to its own origin ("Try it out"); nothing else, and never framed."""
    allowed: dict[str, list[str]] = {"script": [], "style": []}
    for kind, text in _INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        allowed[kind].append(f"'sha256-{digest}'")
    scripts = " ".join(allowed["script"]) or "'none'"
    styles = " ".join(allowed["style"]) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def security_headers(content_type: str | None, body: str) -> dict[str, str]:
    """:data:`SECURITY_HEADERS` for an answer; an HTML page gets :func:`page_policy`."""
    headers = dict(SECURITY_HEADERS)
    if content_type and content_type.split(";")[0].strip().lower() == "text/html":
        headers["Content-Security-Policy"] = page_policy(body)
    return headers
