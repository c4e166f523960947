"""destroy deletes exactly what deploy tagged; batch runs a transform job. All through Stubber,
for the exact order of requests and a Failed transform job (moto's never fail); the same
commands run against moto's server in tests/integration/test_deploy_moto.py."""

from __future__ import annotations

import pytest
from aws_plan import ACCOUNT, ANY, NOW, REGION, Plan
from credit_explainer_tools.deploy import DeployConfig, TransformJobFailedError
from credit_explainer_tools.deploy.batch import run_batch
from credit_explainer_tools.deploy.destroy import destroy

OURS = [{"Key": "credit-explainer:deployment", "Value": "credit-explainer"}]
OTHER = [{"Key": "credit-explainer:deployment", "Value": "credit-explainer-prod"}]
RID = "endpoint/credit-explainer/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
BUCKET = f"credit-explainer-{ACCOUNT}-{REGION}"
SM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def stack(tags):
    return {
        "Stacks": [
            {
                "StackName": "credit-explainer",
                "CreationTime": NOW,
                "StackStatus": "UPDATE_COMPLETE",
                "Tags": tags,
            }
        ]
    }


def role(tags):
    return {
        "Role": {
            "Path": "/",
            "RoleName": "credit-explainer-sagemaker",
            "RoleId": "AROAEXAMPLE1234567",
            "Arn": f"arn:aws:iam::{ACCOUNT}:role/credit-explainer-sagemaker",
            "CreateDate": NOW,
            "Tags": tags,
        }
    }


def expect_identity(plan):
    plan.ok(
        "sts",
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": "arn:aws:iam::1:user/u", "UserId": "U"},
    )


def test_destroy_removes_every_tagged_resource_in_a_safe_order():
    plan = Plan()
    plan.ok("cloudformation", "describe_stacks", stack(OURS), {"StackName": "credit-explainer"})
    plan.ok("cloudformation", "delete_stack", {}, {"StackName": "credit-explainer"})
    plan.ok(
        "cloudformation",
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "credit-explainer",
                    "CreationTime": NOW,
                    "StackStatus": "DELETE_COMPLETE",
                }
            ]
        },
    )
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
                    "RoleARN": "arn:aws:iam::1:role/r",
                    "CreationTime": NOW,
                }
            ]
        },
    )
    plan.ok(
        "sagemaker",
        "describe_endpoint",
        {
            "EndpointName": "credit-explainer",
            "EndpointArn": f"{SM}:endpoint/credit-explainer",
            "EndpointStatus": "InService",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
    )
    plan.ok(
        "sagemaker", "list_tags", {"Tags": OURS}, {"ResourceArn": f"{SM}:endpoint/credit-explainer"}
    )
    plan.ok(
        "application-autoscaling",
        "deregister_scalable_target",
        {},
        {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM},
    )
    plan.ok("sagemaker", "delete_endpoint", {}, {"EndpointName": "credit-explainer"})
    plan.error(
        "sagemaker", "describe_endpoint", "ValidationException", "Could not find endpoint"
    )  # waiter: gone
    old, other = "credit-explainer-20261101-120000", "credit-explainer-prod-20261101-120000"
    plan.ok(
        "sagemaker",
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": old,
                    "EndpointConfigArn": f"{SM}:endpoint-config/{old}",
                    "CreationTime": NOW,
                }
            ],
            "NextToken": "page2",
        },
        {"NameContains": "credit-explainer"},
    )
    plan.ok(
        "sagemaker",
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": other,
                    "EndpointConfigArn": f"{SM}:endpoint-config/{other}",
                    "CreationTime": NOW,
                }
            ]
        },
        {"NameContains": "credit-explainer", "NextToken": "page2"},
    )
    plan.ok("sagemaker", "list_tags", {"Tags": OURS})
    plan.ok("sagemaker", "delete_endpoint_config", {}, {"EndpointConfigName": old})
    plan.ok("sagemaker", "list_tags", {"Tags": OTHER})  # another deployment's: kept
    plan.ok(
        "sagemaker",
        "list_models",
        {"Models": [{"ModelName": old, "ModelArn": f"{SM}:model/{old}", "CreationTime": NOW}]},
    )
    plan.ok("sagemaker", "list_tags", {"Tags": OURS})
    plan.ok("sagemaker", "delete_model", {}, {"ModelName": old})
    repo_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/credit-explainer"
    plan.ok(
        "ecr",
        "describe_repositories",
        {"repositories": [{"repositoryArn": repo_arn, "repositoryName": "credit-explainer"}]},
    )
    plan.ok("ecr", "list_tags_for_resource", {"tags": OURS}, {"resourceArn": repo_arn})
    plan.ok("ecr", "delete_repository", {}, {"repositoryName": "credit-explainer", "force": True})
    expect_identity(plan)
    plan.ok("s3", "head_bucket", {}, {"Bucket": BUCKET})
    plan.ok("s3", "get_bucket_tagging", {"TagSet": OURS}, {"Bucket": BUCKET})
    plan.ok(
        "s3",
        "list_objects_v2",
        {"CommonPrefixes": [{"Prefix": "credit-explainer/"}]},
        {"Bucket": BUCKET, "Delimiter": "/", "MaxKeys": 2},
    )
    plan.ok(
        "s3",
        "list_objects_v2",
        {
            "Contents": [
                {"Key": "credit-explainer/models/a/model.tar.gz"},
                {"Key": "credit-explainer/code/a/sourcedir.tar.gz"},
            ]
        },
        {"Bucket": BUCKET, "Prefix": "credit-explainer/"},
    )
    plan.ok(
        "s3",
        "delete_objects",
        {},
        {
            "Bucket": BUCKET,
            "Delete": {
                "Objects": [
                    {"Key": "credit-explainer/models/a/model.tar.gz"},
                    {"Key": "credit-explainer/code/a/sourcedir.tar.gz"},
                ],
                "Quiet": True,
            },
        },
    )
    plan.ok("s3", "delete_bucket", {}, {"Bucket": BUCKET})
    plan.ok("iam", "get_role", role(OURS), {"RoleName": "credit-explainer-sagemaker"})
    plan.ok(
        "iam",
        "list_role_policies",
        {"PolicyNames": ["credit-explainer-least-privilege"], "IsTruncated": False},
    )
    plan.ok(
        "iam",
        "delete_role_policy",
        {},
        {
            "RoleName": "credit-explainer-sagemaker",
            "PolicyName": "credit-explainer-least-privilege",
        },
    )
    plan.ok("iam", "delete_role", {}, {"RoleName": "credit-explainer-sagemaker"})
    destroy(plan.aws, DeployConfig())
    plan.verify()


def test_destroy_leaves_untagged_resources_and_a_users_bucket_alone():
    plan = Plan()
    plan.ok("cloudformation", "describe_stacks", stack([]))  # same name, not ours
    plan.ok("application-autoscaling", "describe_scalable_targets", {"ScalableTargets": []})
    plan.ok(
        "sagemaker",
        "describe_endpoint",
        {
            "EndpointName": "credit-explainer",
            "EndpointArn": f"{SM}:endpoint/credit-explainer",
            "EndpointStatus": "InService",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
    )
    plan.ok("sagemaker", "list_tags", {"Tags": []})
    plan.ok("sagemaker", "list_endpoint_configs", {"EndpointConfigs": []})
    plan.ok("sagemaker", "list_models", {"Models": []})
    plan.error("ecr", "describe_repositories", "RepositoryNotFoundException", "none")
    plan.ok("s3", "head_bucket", {}, {"Bucket": "shared-ml-bucket"})
    plan.error("s3", "get_bucket_tagging", "NoSuchTagSet", "none", status=404)
    plan.ok(
        "s3",
        "list_objects_v2",
        {"KeyCount": 0},
        {"Bucket": "shared-ml-bucket", "Prefix": "credit-explainer/"},
    )
    plan.ok("iam", "get_role", role([]))
    destroy(plan.aws, DeployConfig(bucket="shared-ml-bucket"))
    plan.verify()
    for kept in (
        "stack credit-explainer is not tagged",
        "endpoint credit-explainer is not tagged",
        "bucket shared-ml-bucket was not created",
        "role credit-explainer-sagemaker is not tagged",
    ):
        assert kept in plan.printed


def transform(status, reason=None):
    job = {
        "TransformJobName": "credit-explainer-batch-20261125-090000",
        "TransformJobArn": f"{SM}:transform-job/x",
        "TransformJobStatus": status,
        "ModelName": "m-1",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/a.csv"}}
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CreationTime": NOW,
    }
    if reason:
        job["FailureReason"] = reason
    return job


def expect_batch_start(plan, content_type):
    plan.ok(
        "sagemaker",
        "describe_endpoint",
        {
            "EndpointName": "credit-explainer",
            "EndpointArn": f"{SM}:endpoint/credit-explainer",
            "EndpointConfigName": "cfg-1",
            "EndpointStatus": "InService",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
    )
    plan.ok(
        "sagemaker",
        "describe_endpoint_config",
        {
            "EndpointConfigName": "cfg-1",
            "EndpointConfigArn": f"{SM}:endpoint-config/cfg-1",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m-1"}],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": "cfg-1"},
    )
    plan.ok(
        "sagemaker",
        "describe_model",
        {
            "ModelName": "m-1",
            "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/credit-explainer-sagemaker",
            "CreationTime": NOW,
            "ModelArn": f"{SM}:model/m-1",
        },
        {"ModelName": "m-1"},
    )
    plan.ok(
        "iam",
        "put_role_policy",
        {},
        {
            "RoleName": "credit-explainer-sagemaker",
            "PolicyName": "credit-explainer-batch",
            "PolicyDocument": ANY,
        },
    )
    plan.ok(
        "sagemaker",
        "create_transform_job",
        {"TransformJobArn": f"{SM}:transform-job/x"},
        {
            "TransformJobName": "credit-explainer-batch-20261125-090000",
            "ModelName": "m-1",
            "MaxPayloadInMB": 6,
            "BatchStrategy": "MultiRecord",
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/a.csv"}
                },
                "ContentType": content_type,
                "SplitType": "Line",
                "CompressionType": "None",
            },
            "TransformOutput": {
                "S3OutputPath": "s3://out/",
                "Accept": "application/jsonlines",
                "AssembleWith": "Line",
            },
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "Tags": OURS,
        },
    )


def test_batch_uses_the_endpoints_model_and_waits():
    plan = Plan()
    expect_batch_start(plan, "text/csv")
    plan.ok("sagemaker", "describe_transform_job", transform("InProgress"))
    plan.ok("sagemaker", "describe_transform_job", transform("Completed"))
    run_batch(
        plan.aws,
        DeployConfig(stamp="20261125-090000"),
        s3_input="s3://in/a.csv",
        s3_output="s3://out/",
    )
    plan.verify()


def test_batch_failure_carries_the_failure_reason():
    plan = Plan()
    expect_batch_start(plan, "text/csv")
    plan.ok(
        "sagemaker",
        "describe_transform_job",
        transform("Failed", "ClientError: 422 from the model on line 7"),
    )
    with pytest.raises(TransformJobFailedError, match="422 from the model on line 7"):
        run_batch(
            plan.aws,
            DeployConfig(stamp="20261125-090000"),
            s3_input="s3://in/a.csv",
            s3_output="s3://out/",
        )
    plan.verify()
