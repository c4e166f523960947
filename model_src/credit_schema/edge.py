"""Request ids and API Gateway's timeout: rules the API, the model server and the local
stack share.

Standard library only, like the rest of :mod:`credit_schema`.
"""

from __future__ import annotations

import random
import re
import time
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


def new_id() -> str:
    """A UUIDv7: unique, not secret, and time-ordered, so an id names the hour of its record
    (uuid.uuid4 would make a system call each time; this takes random bits from ``random``)."""
    bits = random.getrandbits(74)
    rand_a, rand_b = bits >> 62, bits & ((1 << 62) - 1)
    value = (
        time.time_ns() // 1_000_000 << 80 | _UUID7_VERSION | rand_a << 64 | _UUID7_VARIANT | rand_b
    )
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


#: SageMaker's ``InferenceId``: 1 to 64 printable characters.
INFERENCE_ID_MAX_CHARS: Final = 64


def inference_id(value: str | None) -> str | None:
    """``value`` if SageMaker would take it as an ``InferenceId``, else None."""
    if value and len(value) <= INFERENCE_ID_MAX_CHARS and value.isprintable():
        return value
    return None


#: API Gateway's integration timeout for a REST API, seconds: past it the caller gets its
#: own ``504 {"message": "Endpoint request timed out"}``, whatever the function does.
API_GATEWAY_TIMEOUT_SECONDS: Final = 29.0
