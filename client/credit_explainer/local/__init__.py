"""The local stack: everything of the AWS deployment, on loopback, with no AWS account.

``credit-explainer up`` and :class:`LocalStack` start the model server (the
SageMaker container's server) and a local API Gateway that turns HTTP requests
into API Gateway proxy events for the real scoring handler, whose boto3 client
reaches the model server through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``.
"""

from .stack import LocalStack, handler_environment

__all__ = ["LocalStack", "handler_environment"]
