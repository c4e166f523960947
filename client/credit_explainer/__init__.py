"""credit-explainer: an explainable credit-risk model on AWS, and its Python client.

::

    from credit_explainer import CreditExplainerClient

    with CreditExplainerClient("http://127.0.0.1:3000") as client:  # `credit-explainer up`
        score = client.score(applicant)
        print(score)                            # ranked contributions, as text
        print(score.reasons(cutoff=0.2))        # principal reasons above the cut-off
"""

# The client imports nothing heavy (httpx, pydantic), so importing it here keeps
# `import credit_explainer` cheap and `from credit_explainer import CreditExplainerClient` working.
from credit_schema import Applicant, Contribution, ErrorDetail
from httpx import Timeout

from ._client import AsyncCreditExplainerClient, CreditExplainerClient
from ._config import (
    API_KEY_ENV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUT,
    URL_ENV,
    RetryPolicy,
)
from ._exceptions import (
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    CreditExplainerError,
    GatewayTimeoutError,
    InconsistentExplanationError,
    InvalidApplicantError,
    MissingDependencyError,
    ModelError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    TransportError,
    UsageError,
    ValidationError,
)
from ._models import ADDITIVITY_TOLERANCE, Failure, Score, ScoreResults
from ._reasons import (
    DEFAULT_MAX_REASONS,
    DEFAULT_REASONS,
    DEFAULT_REASONS_WHEN_MISSING,
    Reason,
    ReasonCodes,
    ReasonText,
)
from ._render import render_text
from ._version import __version__

__all__ = [
    "ADDITIVITY_TOLERANCE",
    "API_KEY_ENV",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_REASONS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REASONS",
    "DEFAULT_REASONS_WHEN_MISSING",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUT",
    "URL_ENV",
    "APIResponseError",
    "APIStatusError",
    "Applicant",
    "AsyncCreditExplainerClient",
    "AuthenticationError",
    "BadRequestError",
    "ConnectError",
    "Contribution",
    "CreditExplainerClient",
    "CreditExplainerError",
    "ErrorDetail",
    "Failure",
    "GatewayTimeoutError",
    "InconsistentExplanationError",
    "InvalidApplicantError",
    "MissingDependencyError",
    "ModelError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "Reason",
    "ReasonCodes",
    "ReasonText",
    "RetryPolicy",
    "Score",
    "ScoreResults",
    "ServerError",
    "ServiceUnavailableError",
    "Timeout",
    "TimeoutError",
    "TransportError",
    "UsageError",
    "ValidationError",
    "__version__",
    "render_text",
]
