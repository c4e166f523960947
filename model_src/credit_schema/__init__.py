"""The applicant schema and wire formats of credit-explainer: the one source of truth.

Shared by the model code (``model_src/credit_model``), the scoring Lambda
(``lambda_fn/scoring_api``, which receives this package as a SAM layer) and the
client (``client/credit_explainer``). Depends on pydantic and the standard
library only.
"""

from .applicant import (
    ALIAS_BY_FIELD,
    COUNT_FEATURES,
    DESCRIPTIONS,
    FEATURES,
    FIELD_BY_ALIAS,
    NULLABLE_FEATURES,
    TARGET,
    Applicant,
)
from .errors import (
    ApplicantValidationError,
    ErrorBody,
    ErrorDetail,
    ErrorInfo,
    MalformedPayloadError,
    NotAcceptableError,
    PayloadError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from .payload import (
    DEFAULT_MAX_APPLICANTS,
    DEFAULT_MAX_BODY_BYTES,
    check_body_size,
    check_count,
    csv_records,
    decode_json,
    parse_csv_applicants,
    parse_json_applicants,
    to_records,
    validate_records,
)
from .requests import ScoreRequest
from .responses import (
    CONTENT_TYPE_CSV,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_LEGACY_JSON,
    Contribution,
    Explanation,
    LegacyResponse,
    ModelResponse,
    ScoredApplicant,
    ScoreResponse,
    direction_of,
    explanation_dict,
    legacy_dict,
)

__all__ = [
    "ALIAS_BY_FIELD",
    "CONTENT_TYPE_CSV",
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_LEGACY_JSON",
    "COUNT_FEATURES",
    "DEFAULT_MAX_APPLICANTS",
    "DEFAULT_MAX_BODY_BYTES",
    "DESCRIPTIONS",
    "FEATURES",
    "FIELD_BY_ALIAS",
    "NULLABLE_FEATURES",
    "TARGET",
    "Applicant",
    "ApplicantValidationError",
    "Contribution",
    "ErrorBody",
    "ErrorDetail",
    "ErrorInfo",
    "Explanation",
    "LegacyResponse",
    "MalformedPayloadError",
    "ModelResponse",
    "NotAcceptableError",
    "PayloadError",
    "PayloadTooLargeError",
    "ScoreRequest",
    "ScoreResponse",
    "ScoredApplicant",
    "UnsupportedMediaTypeError",
    "check_body_size",
    "check_count",
    "csv_records",
    "decode_json",
    "direction_of",
    "explanation_dict",
    "legacy_dict",
    "parse_csv_applicants",
    "parse_json_applicants",
    "to_records",
    "validate_records",
]
