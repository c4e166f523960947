"""Errors of the scoring API's upstream side (the SageMaker endpoint).

Request errors are :class:`credit_schema.PayloadError` (400/413/415/422, raised
while decoding and validating). Everything that goes wrong after validation is
an :class:`UpstreamError`, raised at one boundary (:mod:`scoring_api.endpoint`)
from the botocore exception with ``raise ... from exc``. Both render to the one
JSON error shape through :class:`credit_schema.ServiceError`; the message is written for
the caller and never carries a stack trace or applicant data.

Tree::

    UpstreamError                  502 base
    ├── ModelFailedError           502 model_error        the model container answered an error
    ├── BadModelResponseError      502 bad_model_response not a ModelResponse for this request
    │   └── InconsistentExplanationError 502 inconsistent_explanation  base + sum(SHAP) != p
    ├── EndpointError              502 endpoint_error     endpoint missing, access denied, ...
    ├── ModelTimeoutError          504 model_timeout      no answer within the read timeout
    ├── ThrottledError             429 throttled          SageMaker throttled (Retry-After)
    └── ModelUnavailableError      503 model_unavailable  not ready / unreachable (Retry-After)
"""

from __future__ import annotations

from typing import ClassVar

from credit_schema import ServiceError


class UpstreamError(ServiceError):
    status_code: ClassVar[int] = 502
    code: ClassVar[str] = "upstream_error"


class ModelFailedError(UpstreamError):
    code = "model_error"


class BadModelResponseError(UpstreamError):
    code = "bad_model_response"


class InconsistentExplanationError(BadModelResponseError):
    code = "inconsistent_explanation"


class EndpointError(UpstreamError):
    code = "endpoint_error"


class ModelTimeoutError(UpstreamError):
    status_code = 504
    code = "model_timeout"


class ThrottledError(UpstreamError):
    status_code = 429
    code = "throttled"
    retry_after = 1


class ModelUnavailableError(UpstreamError):
    status_code = 503
    code = "model_unavailable"
    retry_after = 5
