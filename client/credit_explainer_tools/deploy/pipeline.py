"""The steps of ``credit-explainer deploy``, each usable alone, and the whole run."""

from __future__ import annotations

import importlib
from typing import Any

from .api import ApiInfo, deploy_api, sam_tools
from .aws import Aws
from .config import DeployConfig
from .errors import DeployError
from .hosting import check_capture, deploy_endpoint
from .image import DEFAULT_BASE_IMAGE, build_and_push, image_exists
from .training import (
    check_training_inputs,
    ensure_bucket,
    ensure_role,
    latest_model_data,
    train,
    upload_source,
)


def preflight(aws: Aws, cfg: DeployConfig, *, training: bool, api: bool) -> None:
    """What a run needs outside AWS, checked before its first write (a dry run only notes it)."""
    try:
        if training:
            check_training_inputs(cfg)
        if api:
            sam_tools()
    except DeployError as exc:
        if not aws.dry_run:
            raise
        aws.say(f"    note: {exc} (a real run stops here, before any change)")


def framework_image_uri(region: str, version: str = "1.4-2") -> str:
    """The SageMaker scikit-learn framework image for a region, via the SageMaker SDK's lookup."""
    retrieve: Any
    try:
        retrieve = importlib.import_module("sagemaker.core.image_uris").retrieve  # SDK v3
    except ImportError:
        try:
            retrieve = importlib.import_module("sagemaker.image_uris").retrieve  # SDK v2
        except ImportError as exc:
            raise DeployError(
                "--framework-image needs the SageMaker SDK's image lookup: pip install sagemaker "
                "(or pass --image-uri with the scikit-learn image of your region)"
            ) from exc
    return str(
        retrieve(
            "sklearn", region=region, version=version, py_version="py3", instance_type="ml.m5.large"
        )
    )


def resolve_image(aws: Aws, cfg: DeployConfig) -> str:
    """The image for training and hosting: given, the framework's, or ours in ECR."""
    if cfg.image_uri:
        return cfg.image_uri
    if cfg.framework_image:
        return framework_image_uri(aws.region)
    found = aws.exists(
        "ecr",
        "describe_repositories",
        ("RepositoryNotFoundException",),
        repositoryNames=[cfg.repository],
    )
    tag = cfg.image_tag()
    if found is None or not image_exists(aws, cfg, tag):
        if aws.dry_run:
            return f"{aws.account}.dkr.ecr.{aws.region}.amazonaws.com/{cfg.repository}:{tag}"
        raise DeployError(
            f"no image {cfg.repository}:{tag} in ECR for these sources: "
            "run `credit-explainer deploy build-image` first (or pass --image-uri)"
        )
    return f"{found['repositories'][0]['repositoryUri']}:{tag}"


def step_train(aws: Aws, cfg: DeployConfig, image: str | None = None) -> str:
    preflight(aws, cfg, training=True, api=False)
    return train(aws, cfg, image=image or resolve_image(aws, cfg))


def step_create_endpoint(
    aws: Aws,
    cfg: DeployConfig,
    *,
    image: str | None = None,
    model_data: str | None = None,
    bucket: str | None = None,
    role: str | None = None,
) -> str:
    check_capture(cfg)  # before the bucket and role are made
    image = image or resolve_image(aws, cfg)
    model_data = model_data or cfg.model_data or latest_model_data(aws, cfg)
    bucket = bucket or ensure_bucket(aws, cfg)
    role = role or ensure_role(aws, cfg, bucket)
    submit_dir = None
    if cfg.framework_image:
        submit_dir = upload_source(aws, cfg, bucket, cfg.versioned("serve"))
    return deploy_endpoint(
        aws, cfg, image=image, role=role, model_data=model_data, submit_dir=submit_dir
    )


def deploy_all(
    aws: Aws,
    cfg: DeployConfig,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    docker_url: str | None = None,
    skip_api: bool = False,
) -> ApiInfo | None:
    """Image -> training -> endpoint (create or update) -> scoring API."""
    check_capture(cfg)
    preflight(aws, cfg, training=cfg.model_data is None, api=not skip_api)
    if cfg.image_uri or cfg.framework_image:
        image = resolve_image(aws, cfg)
    else:
        image = build_and_push(aws, cfg, base_image=base_image, docker_url=docker_url)
    aws.step("S3 bucket and SageMaker execution role")
    bucket = ensure_bucket(aws, cfg)
    role = ensure_role(aws, cfg, bucket)
    model_data = cfg.model_data or train(aws, cfg, image=image, bucket=bucket, role=role)
    endpoint = step_create_endpoint(
        aws, cfg, image=image, model_data=model_data, bucket=bucket, role=role
    )
    if skip_api:
        return None
    return deploy_api(aws, cfg, endpoint, model_data)
