"""Errors raised by ``credit_explainer_tools.deploy``.

Foreign errors (botocore's ``ClientError``/``BotoCoreError``, the Docker SDK's
``DockerException``, a failed ``sam`` subprocess) are converted once, where the
call is made (``Aws.call``, ``image``, ``api``), with ``raise ... from exc``.
The CLI prints ``str(error)`` and exits 1; no stack trace.

Tree::

    DeployError
    ├── AwsCallError            an AWS request failed (service, operation, error code)
    │   └── ThrottledError      still throttled after botocore's retries
    ├── TrainingJobFailedError  the training job ended Failed/Stopped (FailureReason)
    ├── EndpointFailedError     the endpoint ended Failed (FailureReason)
    │   └── EndpointRolledBackError  an update failed and SageMaker kept the old configuration
    ├── TransformJobFailedError the Batch Transform job ended Failed/Stopped
    ├── DockerError             no Docker daemon, or the daemon reported a build/push error
    └── ToolError               an external tool (sam) is missing or failed
"""

from __future__ import annotations


class DeployError(Exception):
    """Base class: a deployment step that cannot go on. ``str()`` is the user-facing message."""


class AwsCallError(DeployError):
    def __init__(self, service: str, operation: str, code: str, message: str) -> None:
        super().__init__(f"{service} {operation} failed: {code}: {message}")
        self.service = service
        self.operation = operation
        self.code = code


class ThrottledError(AwsCallError):
    """AWS kept throttling after botocore's retries. Deploy steps are idempotent: re-run."""


class TrainingJobFailedError(DeployError):
    def __init__(self, job_name: str, status: str, reason: str) -> None:
        super().__init__(f"training job {job_name} {status}: {reason}")
        self.job_name = job_name
        self.status = status
        self.reason = reason


class EndpointFailedError(DeployError):
    def __init__(self, endpoint_name: str, reason: str) -> None:
        super().__init__(f"endpoint {endpoint_name} failed: {reason}")
        self.endpoint_name = endpoint_name
        self.reason = reason


class EndpointRolledBackError(EndpointFailedError):
    def __init__(self, endpoint_name: str, kept_config: str, reason: str) -> None:
        DeployError.__init__(
            self,
            f"update of endpoint {endpoint_name} failed and was rolled back "
            f"(still serving {kept_config}): {reason}",
        )
        self.endpoint_name = endpoint_name
        self.kept_config = kept_config
        self.reason = reason


class TransformJobFailedError(DeployError):
    def __init__(self, job_name: str, status: str, reason: str) -> None:
        super().__init__(f"transform job {job_name} {status}: {reason}")
        self.job_name = job_name
        self.status = status
        self.reason = reason


class DockerError(DeployError):
    """No Docker daemon, or the daemon reported an error while building or pushing."""


class ToolError(DeployError):
    """An external tool (``sam``) is missing or exited non-zero."""
