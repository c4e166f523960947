"""Endpoint creation, in-place update, rollback and failures: every request through Stubber.

Stubber, because moto has no UpdateEndpoint and its endpoints never fail; creation, the
failed update call and serverless run against moto in tests/integration/test_deploy_moto.py."""

from __future__ import annotations

import pytest
from aws_plan import ACCOUNT, ANY, NOW, REGION, Plan
from credit_explainer_tools.deploy import (
    DeployConfig,
    EndpointFailedError,
    EndpointRolledBackError,
    ThrottledError,
)
from credit_explainer_tools.deploy.hosting import deploy_endpoint

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/credit-explainer:src-abc"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/credit-explainer-sagemaker"
DATA = "s3://bucket/credit-explainer/models/job/output/model.tar.gz"
TAGS = [{"Key": "credit-explainer:deployment", "Value": "credit-explainer"}]
RID = "endpoint/credit-explainer/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
EP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/credit-explainer"


def endpoint(status: str, config: str, reason: str | None = None) -> dict:
    response = {
        "EndpointName": "credit-explainer",
        "EndpointArn": EP_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if reason:
        response["FailureReason"] = reason
    return response


def cfg(**kw) -> DeployConfig:
    return DeployConfig(stamp="20261125-090000", **kw)


NEW = "credit-explainer-20261125-090000"


def expect_model_and_config(
    plan: Plan, *, variant: dict, isolated: bool = True, capture: dict | None = None
) -> None:
    model = {
        "ModelName": NEW,
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": DATA},
        "ExecutionRoleArn": ROLE,
        "Tags": TAGS,
    }
    if isolated:
        model["EnableNetworkIsolation"] = True
    plan.ok(
        "sagemaker",
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{NEW}"},
        model,
    )
    plan.ok(
        "sagemaker",
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{NEW}"},
        {
            "EndpointConfigName": NEW,
            "ProductionVariants": [variant],
            "Tags": TAGS,
            **({"DataCaptureConfig": capture} if capture else {}),
        },
    )


def expect_scaling(plan: Plan, minimum: int = 1, maximum: int = 4) -> None:
    plan.ok(
        "application-autoscaling",
        "register_scalable_target",
        {},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": RID,
            "ScalableDimension": DIM,
            "MinCapacity": minimum,
            "MaxCapacity": maximum,
            "Tags": {"credit-explainer:deployment": "credit-explainer"},
        },
    )
    plan.ok(
        "application-autoscaling",
        "put_scaling_policy",
        {"PolicyARN": "arn:aws:autoscaling:policy"},
        {
            "PolicyName": "credit-explainer-invocations-per-instance",
            "ServiceNamespace": "sagemaker",
            "ResourceId": RID,
            "ScalableDimension": DIM,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        },
    )


REALTIME = {
    "VariantName": "AllTraffic",
    "ModelName": NEW,
    "InstanceType": "ml.m5.large",
    "InitialInstanceCount": 1,
    "InitialVariantWeight": 1.0,
}


def test_first_deploy_creates_endpoint_waits_and_registers_autoscaling():
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    plan.error(
        "sagemaker",
        "describe_endpoint",
        "ValidationException",
        'Could not find endpoint "credit-explainer".',
        params={"EndpointName": "credit-explainer"},
    )
    plan.ok(
        "sagemaker",
        "create_endpoint",
        {"EndpointArn": EP_ARN},
        {"EndpointName": "credit-explainer", "EndpointConfigName": NEW, "Tags": TAGS},
    )
    plan.ok("sagemaker", "describe_endpoint", endpoint("Creating", NEW))
    plan.error(
        "sagemaker", "describe_endpoint", "ThrottlingException", "Rate exceeded"
    )  # tolerated
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", NEW))
    expect_scaling(plan)

    assert (
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
        == "credit-explainer"
    )
    plan.verify()
    assert "endpoint Creating" in plan.printed and "endpoint InService" in plan.printed
    assert "throttled while polling" in plan.printed


def test_serverless_endpoint_has_no_instances_no_autoscaling_and_no_network_isolation():
    # Serverless Inference does not support network isolation; moto does not keep the flag.
    plan = Plan()
    expect_model_and_config(
        plan,
        variant={
            "VariantName": "AllTraffic",
            "ModelName": NEW,
            "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 8},
        },
        isolated=False,
    )
    plan.error("sagemaker", "describe_endpoint", "ValidationException", "Could not find endpoint")
    plan.ok("sagemaker", "create_endpoint", {"EndpointArn": EP_ARN})
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", NEW))
    config = cfg(serverless=True, serverless_memory_mb=3072, serverless_max_concurrency=8)
    deploy_endpoint(plan.aws, config, image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()


def expect_update(plan: Plan, old: str, *, registered: bool) -> None:
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", old))
    plan.ok(
        "application-autoscaling",
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": RID,
                    "ScalableDimension": DIM,
                    "MinCapacity": 1,
                    "MaxCapacity": 4,
                    "RoleARN": ROLE,
                    "CreationTime": NOW,
                }
            ]
            if registered
            else []
        },
        {"ServiceNamespace": "sagemaker", "ResourceIds": [RID], "ScalableDimension": DIM},
    )
    if registered:
        plan.ok(
            "application-autoscaling",
            "deregister_scalable_target",
            {},
            {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM},
        )
    plan.ok(
        "sagemaker",
        "update_endpoint",
        {"EndpointArn": EP_ARN},
        {
            "EndpointName": "credit-explainer",
            "EndpointConfigName": NEW,
            "RetainAllVariantProperties": False,
            "DeploymentConfig": ANY,
        },
    )


def test_update_is_a_new_config_swapped_in_place():
    old = "credit-explainer-20261101-120000"
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    expect_update(plan, old, registered=True)
    plan.ok("sagemaker", "describe_endpoint", endpoint("Updating", old))
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", NEW))
    expect_scaling(plan)
    deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()
    assert f"{old} -> {NEW}" in plan.printed


def test_update_rolled_back_is_an_error_and_the_old_fleet_keeps_autoscaling():
    old = "credit-explainer-20261101-120000"
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    expect_update(plan, old, registered=True)
    plan.ok("sagemaker", "describe_endpoint", endpoint("Updating", old))
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", old, reason))
    expect_scaling(plan)
    with pytest.raises(EndpointRolledBackError) as info:
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()
    assert info.value.kept_config == old
    assert "ping health check" in str(info.value) and "rolled back" in str(info.value)


def test_create_failure_carries_the_failure_reason():
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    plan.error("sagemaker", "describe_endpoint", "ValidationException", "Could not find endpoint")
    plan.ok("sagemaker", "create_endpoint", {"EndpointArn": EP_ARN})
    plan.ok("sagemaker", "describe_endpoint", endpoint("Failed", NEW, "Image not found in ECR"))
    with pytest.raises(EndpointFailedError, match="Image not found in ECR"):
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()


def test_throttling_after_retries_is_a_clear_error():
    plan = Plan()
    plan.error("sagemaker", "create_model", "ThrottlingException", "Rate exceeded")
    with pytest.raises(ThrottledError, match="sagemaker CreateModel failed: ThrottlingException"):
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()


def test_an_endpoint_that_is_busy_is_not_updated():
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    plan.ok("sagemaker", "describe_endpoint", endpoint("Updating", "other"))
    with pytest.raises(Exception, match="is Updating"):
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()


@pytest.mark.parametrize(
    ("status", "error"),
    [("Failed", EndpointFailedError), ("UpdateRollbackFailed", EndpointFailedError)],
)
def test_an_update_that_ends_failed_puts_the_autoscaling_back(status, error):
    # moto has no UpdateEndpoint, so these end states are only reachable through Stubber.
    old = "credit-explainer-20261101-120000"
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    expect_update(plan, old, registered=True)
    plan.ok("sagemaker", "describe_endpoint", endpoint(status, old, "health check failed"))
    expect_scaling(plan)
    with pytest.raises(error, match="health check failed"):
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()


def test_an_update_call_that_raises_puts_the_autoscaling_back():
    old = "credit-explainer-20261101-120000"
    plan = Plan()
    expect_model_and_config(plan, variant=REALTIME)
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", old))
    plan.ok(
        "application-autoscaling",
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": RID,
                    "ScalableDimension": DIM,
                    "MinCapacity": 1,
                    "MaxCapacity": 4,
                    "RoleARN": ROLE,
                    "CreationTime": NOW,
                }
            ]
        },
    )
    plan.ok("application-autoscaling", "deregister_scalable_target", {})
    plan.error("sagemaker", "update_endpoint", "ValidationException", "Cannot update endpoint")
    expect_scaling(plan)
    with pytest.raises(Exception, match="Cannot update endpoint"):
        deploy_endpoint(plan.aws, cfg(), image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()


def test_an_update_with_capture_swaps_in_a_config_that_captures():
    # moto has no UpdateEndpoint: turning capture on for a running endpoint is checked here.
    old = "credit-explainer-20261101-120000"
    plan = Plan()
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": "s3://audit/decisions",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": ["application/json", "application/jsonlines"]
        },
    }
    expect_model_and_config(plan, variant=REALTIME, capture=capture)
    expect_update(plan, old, registered=False)
    plan.ok("sagemaker", "describe_endpoint", endpoint("InService", NEW))
    expect_scaling(plan)
    settings = cfg(capture="s3://audit/decisions/", capture_percent=25)
    deploy_endpoint(plan.aws, settings, image=IMAGE, role=ROLE, model_data=DATA)
    plan.verify()
