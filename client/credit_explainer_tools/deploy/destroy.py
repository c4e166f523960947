"""Tear-down: delete what deploy created, and nothing else.

Resources are found by the deployment's names and deleted only when they carry
the tag ``credit-explainer:deployment=<name>`` that deploy puts on everything it
creates. A bucket or role given with ``--bucket``/``--role-arn`` (not created by
deploy) is left in place; only the deployment's own S3 prefix is emptied.
Training and transform jobs are records, not resources: they stay in the history.
"""

from __future__ import annotations

from typing import Any

from .aws import TAG_KEY, Aws, has_tag
from .config import DeployConfig
from .errors import DeployError
from .hosting import deregister_scaling, scaling_registered


def _sagemaker_tagged(aws: Aws, arn: str, name: str) -> bool:
    found = aws.call("sagemaker", "list_tags", ResourceArn=arn)
    return has_tag(found.get("Tags", []), name)


def destroy_stack(aws: Aws, cfg: DeployConfig) -> None:
    found = aws.exists(
        "cloudformation", "describe_stacks", ("ValidationError",), StackName=cfg.stack
    )
    if not found or not found.get("Stacks"):
        return
    stack = found["Stacks"][0]
    if not has_tag(stack.get("Tags", []), cfg.name):
        aws.say(f"    stack {cfg.stack} is not tagged {TAG_KEY}={cfg.name}: left alone")
        return
    aws.call("cloudformation", "delete_stack", StackName=cfg.stack)
    aws.wait("cloudformation", "stack_delete_complete", StackName=cfg.stack)


def destroy_endpoint(aws: Aws, cfg: DeployConfig) -> None:
    endpoint = cfg.endpoint_name
    registered = scaling_registered(aws, endpoint)
    found = aws.exists("sagemaker", "describe_endpoint", (), EndpointName=endpoint)
    if found is not None and not _sagemaker_tagged(aws, str(found["EndpointArn"]), cfg.name):
        aws.say(f"    endpoint {endpoint} is not tagged {TAG_KEY}={cfg.name}: left alone")
        return
    if registered:
        deregister_scaling(aws, endpoint)
    if found is not None:
        aws.call("sagemaker", "delete_endpoint", EndpointName=endpoint)
        aws.wait("sagemaker", "endpoint_deleted", EndpointName=endpoint)


def _paged(aws: Aws, method: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        extra: dict[str, Any] = {"NextToken": token} if token else {}
        page = aws.call("sagemaker", method, **params, **extra)
        items.extend(page.get(key, []))
        token = page.get("NextToken")
        if not token:
            return items


def destroy_configs_and_models(aws: Aws, cfg: DeployConfig) -> None:
    for config in _paged(aws, "list_endpoint_configs", "EndpointConfigs", NameContains=cfg.name):
        if _sagemaker_tagged(aws, config["EndpointConfigArn"], cfg.name):
            aws.call(
                "sagemaker",
                "delete_endpoint_config",
                EndpointConfigName=config["EndpointConfigName"],
            )
    for model in _paged(aws, "list_models", "Models", NameContains=cfg.name):
        if _sagemaker_tagged(aws, model["ModelArn"], cfg.name):
            aws.call("sagemaker", "delete_model", ModelName=model["ModelName"])


def destroy_repository(aws: Aws, cfg: DeployConfig) -> None:
    found = aws.exists(
        "ecr",
        "describe_repositories",
        ("RepositoryNotFoundException",),
        repositoryNames=[cfg.repository],
    )
    if found is None:
        return
    arn = found["repositories"][0]["repositoryArn"]
    repo_tags = aws.call("ecr", "list_tags_for_resource", resourceArn=arn).get("tags", [])
    if has_tag(repo_tags, cfg.name):
        aws.call("ecr", "delete_repository", repositoryName=cfg.repository, force=True)
    else:
        aws.say(f"    repository {cfg.repository} is not tagged {TAG_KEY}={cfg.name}: left alone")


def destroy_storage(aws: Aws, cfg: DeployConfig) -> None:
    bucket = cfg.bucket or cfg.bucket_for(aws.account, aws.region)
    if aws.exists("s3", "head_bucket", ("404", "NoSuchBucket", "NotFound"), Bucket=bucket) is None:
        return
    tagging = aws.exists("s3", "get_bucket_tagging", ("NoSuchTagSet",), Bucket=bucket)
    ours = tagging is not None and has_tag(tagging.get("TagSet", []), cfg.name)
    others = False
    if ours:  # looked at before deleting, so a dry run (which deletes nothing) sees the same
        top = aws.call("s3", "list_objects_v2", Bucket=bucket, Delimiter="/", MaxKeys=2)
        prefixes = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
        others = bool(top.get("Contents")) or any(p != f"{cfg.prefix}/" for p in prefixes)
    token: str | None = None
    while True:
        extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
        page = aws.call("s3", "list_objects_v2", Bucket=bucket, Prefix=f"{cfg.prefix}/", **extra)
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            aws.call("s3", "delete_objects", Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        token = page.get("NextContinuationToken")
        if not token:
            break
    if not ours:
        aws.say(
            f"    bucket {bucket} was not created by this deployment: only {cfg.prefix}/ emptied"
        )
    elif others:
        aws.say(f"    bucket {bucket} holds other objects: kept")
    else:
        aws.call("s3", "delete_bucket", Bucket=bucket)


def destroy_role(aws: Aws, cfg: DeployConfig) -> None:
    found = aws.exists("iam", "get_role", ("NoSuchEntity",), RoleName=cfg.role_name)
    if found is None:
        return
    if not has_tag(found["Role"].get("Tags", []), cfg.name):
        aws.say(f"    role {cfg.role_name} is not tagged {TAG_KEY}={cfg.name}: left alone")
        return
    for policy in aws.call("iam", "list_role_policies", RoleName=cfg.role_name).get(
        "PolicyNames", []
    ):
        aws.call("iam", "delete_role_policy", RoleName=cfg.role_name, PolicyName=policy)
    aws.call("iam", "delete_role", RoleName=cfg.role_name)


def destroy(
    aws: Aws, cfg: DeployConfig, *, keep_data: bool = False, keep_image: bool = False
) -> None:
    if aws.dry_run and not aws.sees_account:
        raise DeployError(
            "destroy --dry-run needs AWS credentials: without them it cannot see the account, "
            "so it cannot say what would be deleted"
        )
    aws.step(f"Destroy deployment {cfg.name} (only resources tagged {TAG_KEY}={cfg.name})")
    destroy_stack(aws, cfg)
    destroy_endpoint(aws, cfg)
    destroy_configs_and_models(aws, cfg)
    if not keep_image:
        destroy_repository(aws, cfg)
    if not keep_data:
        destroy_storage(aws, cfg)
    destroy_role(aws, cfg)
    if not aws.dry_run:
        aws.say(f"    deployment {cfg.name} removed")
