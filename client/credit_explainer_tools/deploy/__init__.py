"""Deploy credit-explainer to AWS: image to ECR, SageMaker training and endpoint, the API.

boto3 directly (no SageMaker SDK): every request goes through
:class:`credit_explainer_tools.deploy.aws.Aws`, which prints it, runs it (or, with
``dry_run=True``, makes only the reads and lists the writes as a plan) and converts
errors. The CLI is
``credit-explainer deploy|batch|destroy`` (:mod:`credit_explainer_tools.deploy.commands`).
"""

from .aws import TAG_KEY, Aws
from .config import DeployConfig
from .errors import (
    AwsCallError,
    DeployError,
    DockerError,
    EndpointFailedError,
    EndpointRolledBackError,
    ThrottledError,
    ToolError,
    TrainingJobFailedError,
    TransformJobFailedError,
)

__all__ = [
    "TAG_KEY",
    "Aws",
    "AwsCallError",
    "DeployConfig",
    "DeployError",
    "DockerError",
    "EndpointFailedError",
    "EndpointRolledBackError",
    "ThrottledError",
    "ToolError",
    "TrainingJobFailedError",
    "TransformJobFailedError",
]
