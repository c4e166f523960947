"""The local stack: everything of the AWS deployment, on loopback, with no AWS account.

``credit-explainer up`` and :class:`LocalStack` start the model server (the
SageMaker container's server) and a local API Gateway that turns HTTP requests
into API Gateway proxy events for the real scoring handler, whose boto3 client
reaches the model server through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .stack import LocalStack, handler_environment

__all__ = ["EXAMPLE_DECISION_THRESHOLDS", "LocalStack", "handler_environment"]

#: The one example of decision bands (DECISION_THRESHOLDS): the demo uses it, `up --help`
#: and the docs show it. An example, not a credit policy: set your own.
EXAMPLE_DECISION_THRESHOLDS: Final = "approve:0.08,review:0.2,decline"


def __getattr__(name: str) -> Any:
    # Imported on first use: the stack needs uvicorn, and the CLI imports this package to list
    # `up` and `demo` in --help without loading it.
    if name in ("LocalStack", "handler_environment"):
        from . import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
