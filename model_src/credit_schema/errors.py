"""Errors raised while decoding and validating scoring payloads.

Every error carries the HTTP status it maps to and a machine-readable code, and
renders to the one JSON error shape used by the model server, the scoring API
and understood by the client::

    {"error": {"code": "validation_error", "message": "...", "request_id": "...",
               "details": [{"applicant": 0, "field": "age", "message": "...", "type": "..."}]}}

Error details never carry the offending input value: error bodies and logs must
not repeat applicant data.

Every service error of the project extends :class:`ServiceError`: the model
server's, the scoring API's upstream errors and these.

Tree::

    ServiceError (500 base: status, code, message, body)
    └── PayloadError (400 base)
        ├── MalformedPayloadError    400  not JSON/CSV, or not one of the accepted shapes
        ├── ApplicantValidationError 422  applicants that fail the schema (all problems listed)
        ├── PayloadTooLargeError     413  body or batch over the configured limits
        ├── UnsupportedMediaTypeError 415 Content-Type not understood
        └── NotAcceptableError       406  Accept not producible
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    """One problem: which applicant (index in the request), which field, what is wrong."""

    applicant: int | None = Field(
        default=None, description="Index of the applicant in the request."
    )
    field: str | None = Field(default=None, description="Wire name of the field at fault.")
    message: str
    type: str | None = Field(default=None, description="Machine-readable kind of problem.")


class ErrorInfo(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The one JSON error shape."""

    error: ErrorInfo


class ServiceError(Exception):
    """Base class: an error a service answers with its status and the one JSON error shape."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    #: Seconds a caller should wait before retrying (sent as ``Retry-After``), or None.
    retry_after: ClassVar[int | None] = None

    def __init__(self, message: str, details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def to_body(self, request_id: str | None = None) -> ErrorBody:
        return ErrorBody(
            error=ErrorInfo(
                code=self.code, message=self.message, request_id=request_id, details=self.details
            )
        )

    def to_dict(self, request_id: str | None = None) -> dict[str, Any]:
        return self.to_body(request_id).model_dump(mode="json")


class RouteNotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class PayloadError(ServiceError, ValueError):
    """Base class: a request the model cannot score."""

    status_code = 400
    code = "bad_request"


class MalformedPayloadError(PayloadError):
    status_code = 400
    code = "malformed_request"


class ApplicantValidationError(PayloadError):
    status_code = 422
    code = "validation_error"


class PayloadTooLargeError(PayloadError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(PayloadError):
    status_code = 415
    code = "unsupported_media_type"


class NotAcceptableError(PayloadError):
    status_code = 406
    code = "not_acceptable"
