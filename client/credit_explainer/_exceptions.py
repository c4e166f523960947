"""Every error the client raises, in one tree.

Foreign errors are converted where they enter, with ``raise ... from exc``:
httpx's transport errors in the client's send, the schema's validation errors
and unreadable inputs in :mod:`credit_explainer._inputs`, unreadable responses
in the response parsing. Callers catch these classes and nothing else.

Tree::

    CreditExplainerError
    ├── UsageError                  the call itself is wrong: no URL, batch_size 0, one applicant
    │                               to score_many (also a ValueError and a TypeError)
    ├── InvalidApplicantError       bad applicant data: ``.errors`` lists applicant index + field
    │   │                           (raised locally, before anything is sent, by credit_schema)
    │   └── ValidationError         422 from the API (also an APIStatusError)
    ├── InconsistentExplanationError  base value + sum of SHAP values != probability
    ├── TransportError              no HTTP response
    │   ├── ConnectError            connection refused / reset / DNS        (retried)
    │   └── TimeoutError            connect, read, write or pool timeout    (connect timeouts retried)
    ├── APIResponseError            a 2xx response the client cannot read (not the documented shape)
    └── APIStatusError              an HTTP error status: ``.status_code``, ``.code``, ``.request_id``
        ├── BadRequestError         400 malformed request
        ├── AuthenticationError     401/403 missing or wrong API key
        ├── NotFoundError           404, or API Gateway's 403 "Missing Authentication Token":
        │                           wrong URL (check the stage path)
        ├── PayloadTooLargeError    413 body or batch over the API's limits
        ├── ValidationError         422 (see above)
        ├── RateLimitError          429 throttled; ``.retry_after``                   (retried)
        └── ServerError             5xx
            ├── ModelError          502 the model failed on the request
            ├── ServiceUnavailableError  503 not ready / unreachable; ``.retry_after`` (retried)
            └── GatewayTimeoutError 504 the model did not answer in time

Retries (exponential backoff with full jitter, ``Retry-After`` honoured) happen
before any of these reach the caller; a retried error that persists is raised
as the last one seen. 4xx errors are never retried.
"""

from __future__ import annotations

from typing import ClassVar

import httpx
from credit_schema import ErrorBody, ErrorDetail

from ._config import API_KEY_ENV

__all__ = [
    "APIResponseError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConnectError",
    "CreditExplainerError",
    "GatewayTimeoutError",
    "InconsistentExplanationError",
    "InvalidApplicantError",
    "MissingDependencyError",
    "ModelError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "TimeoutError",
    "TransportError",
    "UsageError",
    "ValidationError",
    "error_for_response",
]


class CreditExplainerError(Exception):
    """Base class of every error the client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CreditExplainerError, ValueError, TypeError):
    """The call itself is wrong (arguments, configuration); nothing was sent."""


class MissingDependencyError(CreditExplainerError, ImportError):
    """An optional library the call needs is not installed; the message says how to add it."""


class InvalidApplicantError(CreditExplainerError, ValueError):
    """Applicant data that fails the schema. ``errors`` names each applicant (index) and field."""

    def __init__(self, message: str, errors: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.errors: list[ErrorDetail] = list(errors or [])

    @property
    def bad_indices(self) -> list[int]:
        """Indices (in the request) of the applicants at fault, sorted."""
        return sorted({e.applicant for e in self.errors if e.applicant is not None})

    def __str__(self) -> str:
        lines = [self.message]
        for e in self.errors[:20]:
            where = ", ".join(
                part
                for part in (
                    None if e.applicant is None else f"applicant {e.applicant}",
                    None if e.field is None else f"field {e.field!r}",
                )
                if part
            )
            lines.append(f"  - {where}: {e.message}" if where else f"  - {e.message}")
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more")
        return "\n".join(lines)


class InconsistentExplanationError(CreditExplainerError):
    """An explanation whose base value plus SHAP values does not equal its probability."""


class TransportError(CreditExplainerError):
    """The request got no HTTP response."""


class ConnectError(TransportError):
    """The API could not be reached (refused, reset, name resolution)."""


class TimeoutError(TransportError):  # httpx names it the same way
    """Connect, read, write or pool timeout (see :class:`httpx.Timeout`)."""


class APIResponseError(CreditExplainerError):
    """A successful status with a body that is not the documented response shape."""

    def __init__(self, message: str, *, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


class APIStatusError(CreditExplainerError):
    """The API answered with an error status.

    ``code`` is the machine-readable code of the API's error body
    (``validation_error``, ``payload_too_large``, ...), ``request_id`` the id to
    quote to the API's operators, ``body`` the parsed error body when there was one.
    """

    status_code: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: ErrorBody | None = None,
    ) -> None:
        super().__init__(message)
        self.response = response
        self.body = body
        self.status: int = response.status_code
        self.code: str | None = body.error.code if body else None
        self.request_id: str | None = (body.error.request_id if body else None) or (
            response.headers.get("x-amzn-requestid")
        )

    @property
    def retry_after(self) -> float | None:
        """Seconds the API asked to wait (``Retry-After``), if it said."""
        return parse_retry_after(self.response.headers.get("retry-after"))

    def __str__(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.message}{rid}"


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class PayloadTooLargeError(APIStatusError):
    status_code = 413


class ValidationError(APIStatusError, InvalidApplicantError):
    """422: the API refused applicants; ``errors`` lists every problem (index, field, message)."""

    status_code = 422

    def __init__(
        self, message: str, *, response: httpx.Response, body: ErrorBody | None = None
    ) -> None:
        APIStatusError.__init__(self, message, response=response, body=body)
        self.errors = list(body.error.details) if body else []

    def __str__(self) -> str:
        return InvalidApplicantError.__str__(self)


class RateLimitError(APIStatusError):
    status_code = 429


class ServerError(APIStatusError):
    status_code = 500


class ModelError(ServerError):
    status_code = 502


class ServiceUnavailableError(ServerError):
    status_code = 503


class GatewayTimeoutError(ServerError):
    status_code = 504


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    502: ModelError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def error_for_response(response: httpx.Response) -> APIStatusError:
    """The exception for an error response, its ErrorBody parsed when it has one.

    API Gateway's own errors (``{"message": "Forbidden"}``) and non-JSON bodies
    are understood too; the message never repeats more than 300 characters of a
    body the client could not parse.
    """
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIStatusError)
    body: ErrorBody | None = None
    try:
        body = ErrorBody.model_validate_json(response.content)
        message = body.error.message
    except ValueError:  # pydantic.ValidationError is a ValueError
        message = _gateway_message(response) or response.reason_phrase or "error"
        if status == 403 and message == "Missing Authentication Token":
            # What an API Gateway REST API answers for a path it does not have.
            cls = NotFoundError
            message = (
                f"no such route: {response.request.url.path} (check the URL and its stage path, "
                "e.g. .../Prod)"
            )
    if cls is AuthenticationError:
        message += (
            f": this API wants a valid API key: pass api_key=... (the CLI: --api-key) "
            f"or set {API_KEY_ENV}"
        )
    return cls(message, response=response, body=body)


def _gateway_message(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text else None
    if isinstance(data, dict):
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])[:300]
    return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
