"""Request ids and API Gateway's timeout: rules the API, the model server and the local
stack share.

Standard library only, like the rest of :mod:`credit_schema`.
"""

from __future__ import annotations

import random
import re
from typing import Final

#: What AWS issues as a request id (``x-amzn-RequestId``): a UUID, 36 characters.
_REQUEST_ID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
REQUEST_ID_LENGTH: Final = 36
# uuid4's version and variant bits, set on 128 random bits as uuid.UUID(version=4) does.
_UUID4_CLEAR: Final = ~(0xF000 << 64 | 0xC000 << 48)
_UUID4_SET: Final = 0x4000 << 64 | 0x8000 << 48


def new_id() -> str:
    """A random UUID4: unique, not secret (uuid.uuid4 makes a system call each time)."""
    hexa = "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


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
