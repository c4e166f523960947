"""Hosting: model, endpoint configuration, endpoint (create or in-place update), autoscaling.

An update never touches the running configuration: a new model and endpoint
configuration are created and ``UpdateEndpoint`` swaps them in (SageMaker's
blue/green deployment: the old fleet serves until the new one passes its health
checks, so there is no downtime). When the new fleet fails, SageMaker rolls back
and the endpoint stays InService on the old configuration: that is reported as
:class:`EndpointRolledBackError`, not as success.
"""

from __future__ import annotations

from typing import Any, Final

from credit_schema.content_types import CAPTURE_JSON_CONTENT_TYPES

from .aws import Aws, Response, tags
from .config import ENTRY_POINT, VARIANT, DeployConfig
from .errors import DeployError, EndpointFailedError, EndpointRolledBackError

_SETTLED: Final = frozenset({"InService", "Failed", "OutOfService", "UpdateRollbackFailed"})
SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def create_model(
    aws: Aws,
    cfg: DeployConfig,
    *,
    name: str,
    image: str,
    role: str,
    model_data: str,
    submit_dir: str | None = None,
) -> None:
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": model_data}
    if cfg.framework_image:
        # The framework image's inference toolkit imports our handlers from the source
        # tarball and pip-installs its requirements.txt at start-up (needs network).
        container["Environment"] = {
            "SAGEMAKER_PROGRAM": ENTRY_POINT,
            "SAGEMAKER_SUBMIT_DIRECTORY": submit_dir or "",
            "SAGEMAKER_REGION": aws.region,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        }
    aws.call(
        "sagemaker",
        "create_model",
        ModelName=name,
        PrimaryContainer=container,
        ExecutionRoleArn=role,
        Tags=tags(cfg.name),
        **_isolation(cfg),
    )


def _isolation(cfg: DeployConfig) -> dict[str, Any]:
    """Our image carries everything, so no network; Serverless Inference does not support it."""
    if cfg.serverless:
        return {}
    return {"EnableNetworkIsolation": not cfg.framework_image}


def production_variant(cfg: DeployConfig, model_name: str) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model_name}
    if cfg.serverless:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": cfg.serverless_memory_mb,
            "MaxConcurrency": cfg.serverless_max_concurrency,
        }
    else:
        variant.update(
            InstanceType=cfg.instance_type,
            InitialInstanceCount=cfg.instance_count,
            InitialVariantWeight=1.0,
        )
    return variant


def check_capture(cfg: DeployConfig) -> None:
    """``--capture`` is an ``s3://bucket/prefix`` and ``--capture-percent`` in 1-100."""
    if cfg.capture is None:
        return
    bucket, _, _ = cfg.capture.removeprefix("s3://").partition("/")
    if not cfg.capture.startswith("s3://") or not bucket:
        raise DeployError(f"--capture wants s3://bucket/prefix, got {cfg.capture!r}")
    if not 1 <= cfg.capture_percent <= 100:
        raise DeployError(f"--capture-percent is 1-100, got {cfg.capture_percent}")


def data_capture_config(cfg: DeployConfig) -> dict[str, Any]:
    """SageMaker Data Capture of requests and answers to ``cfg.capture`` (JSON kept as text)."""
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": cfg.capture_percent,
        "DestinationS3Uri": str(cfg.capture).rstrip("/"),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": list(CAPTURE_JSON_CONTENT_TYPES)},
    }


def create_endpoint_config(aws: Aws, cfg: DeployConfig, *, name: str, model_name: str) -> None:
    capture: dict[str, Any] = {"DataCaptureConfig": data_capture_config(cfg)} if cfg.capture else {}
    aws.call(
        "sagemaker",
        "create_endpoint_config",
        EndpointConfigName=name,
        ProductionVariants=[production_variant(cfg, model_name)],
        Tags=tags(cfg.name),
        **capture,
    )


def _endpoint_progress(endpoint: Response) -> str:
    return f"endpoint {endpoint['EndpointStatus']} ({endpoint.get('EndpointConfigName', '?')})"


def wait_for_endpoint(aws: Aws, endpoint: str) -> Response:
    return aws.poll(
        "sagemaker",
        "describe_endpoint",
        status_key="EndpointStatus",
        done=_SETTLED,
        describe=_endpoint_progress,
        EndpointName=endpoint,
    )


def scaling_registered(aws: Aws, endpoint: str) -> bool:
    found = aws.call(
        "application-autoscaling",
        "describe_scalable_targets",
        ServiceNamespace="sagemaker",
        ResourceIds=[resource_id(endpoint)],
        ScalableDimension=SCALABLE_DIMENSION,
    )
    return bool(found.get("ScalableTargets"))


def deregister_scaling(aws: Aws, endpoint: str) -> None:
    aws.call(
        "application-autoscaling",
        "deregister_scalable_target",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
    )


def register_scaling(aws: Aws, cfg: DeployConfig, endpoint: str) -> None:
    """Target tracking on invocations per instance (real-time endpoints only)."""
    minimum = cfg.min_instances if cfg.min_instances is not None else cfg.instance_count
    maximum = max(cfg.max_instances, minimum)
    aws.call(
        "application-autoscaling",
        "register_scalable_target",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=minimum,
        MaxCapacity=maximum,
        Tags={"credit-explainer:deployment": cfg.name},
    )
    aws.call(
        "application-autoscaling",
        "put_scaling_policy",
        PolicyName=f"{endpoint}-invocations-per-instance",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id(endpoint),
        ScalableDimension=SCALABLE_DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": cfg.invocations_per_instance,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    )


def deploy_endpoint(
    aws: Aws,
    cfg: DeployConfig,
    *,
    image: str,
    role: str,
    model_data: str,
    submit_dir: str | None = None,
) -> str:
    """Create the endpoint, or update it in place; returns the endpoint name."""
    endpoint = cfg.endpoint_name
    name = cfg.versioned()
    check_capture(cfg)
    aws.step(f"Model and endpoint configuration {name}")
    create_model(
        aws, cfg, name=name, image=image, role=role, model_data=model_data, submit_dir=submit_dir
    )
    create_endpoint_config(aws, cfg, name=name, model_name=name)

    current = aws.exists("sagemaker", "describe_endpoint", (), EndpointName=endpoint)
    if current is None:
        aws.step(f"Create endpoint {endpoint}")
        aws.call(
            "sagemaker",
            "create_endpoint",
            EndpointName=endpoint,
            EndpointConfigName=name,
            Tags=tags(cfg.name),
        )
        final = wait_for_endpoint(aws, endpoint)
        if final["EndpointStatus"] != "InService":
            raise EndpointFailedError(
                endpoint, str(final.get("FailureReason", final["EndpointStatus"]))
            )
    else:
        status = str(current["EndpointStatus"])
        if status != "InService":
            raise DeployError(
                f"endpoint {endpoint} is {status}: it can be updated only when InService "
                "(wait, or `credit-explainer destroy` a Failed one)"
            )
        aws.step(
            f"Update endpoint {endpoint} in place: {current.get('EndpointConfigName')} -> {name}"
        )
        # SageMaker refuses an update that changes the instance type of an autoscaled
        # variant: take the scaling target off during the update, put it back after.
        registered = scaling_registered(aws, endpoint)
        if registered:
            deregister_scaling(aws, endpoint)
        try:
            final = _update(aws, endpoint, name)
        except DeployError:
            if registered:
                _restore_scaling(aws, cfg, endpoint)
            raise
        served = str(final.get("EndpointConfigName", ""))
        if final["EndpointStatus"] != "InService" or served != name:
            if registered:
                _restore_scaling(aws, cfg, endpoint)  # the old fleet keeps its autoscaling
            if final["EndpointStatus"] == "InService":
                raise EndpointRolledBackError(
                    endpoint, served, str(final.get("FailureReason", "unknown"))
                )
            raise EndpointFailedError(
                endpoint, str(final.get("FailureReason", final["EndpointStatus"]))
            )
    if not cfg.serverless:
        aws.step(f"Autoscaling {endpoint}: target tracking on invocations per instance")
        register_scaling(aws, cfg, endpoint)
    aws.outcome(f"endpoint {endpoint} InService on {name}")
    return endpoint


def _update(aws: Aws, endpoint: str, name: str) -> Response:
    aws.call(
        "sagemaker",
        "update_endpoint",
        EndpointName=endpoint,
        EndpointConfigName=name,
        RetainAllVariantProperties=False,
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "ALL_AT_ONCE",
                    "WaitIntervalInSeconds": 0,
                },
                "TerminationWaitInSeconds": 0,
            }
        },
    )
    return wait_for_endpoint(aws, endpoint)


def _restore_scaling(aws: Aws, cfg: DeployConfig, endpoint: str) -> None:
    """Autoscaling back on an endpoint whose update failed; the update's error stays the error."""
    try:
        register_scaling(aws, cfg, endpoint)
    except DeployError as exc:
        aws.say(f"    could not restore the autoscaling of {endpoint}: {exc}")
