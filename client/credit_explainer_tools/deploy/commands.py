"""``credit-explainer deploy [build-image|train|create-endpoint|deploy-api]``, ``batch``, ``destroy``.

``deploy`` with no step runs them all. Every command takes ``--dry-run`` (a plan:
the reads are made, every write is printed and listed, none is sent) and ``--name``
(the deployment: every resource is named from it and tagged with it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from credit_schema import DEFAULT_ENDPOINT_NAME

_STEPS = ("build-image", "train", "create-endpoint", "deploy-api")


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("deployment")
    group.add_argument(
        "--name",
        default=DEFAULT_ENDPOINT_NAME,
        help="deployment name: names and tags every resource, lower-case "
        f"(default: {DEFAULT_ENDPOINT_NAME})",
    )
    group.add_argument("--region", help="AWS region (default: your AWS configuration)")
    group.add_argument("--profile", help="AWS named profile (default: AWS_PROFILE or none)")
    group.add_argument("--bucket", help="S3 bucket (default: <name>-<account>-<region>, created)")
    group.add_argument(
        "--role-arn", help="SageMaker execution role (default: <name>-sagemaker, created)"
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="a plan: make the reads, print every request and list every change; change nothing "
        "(default: make the changes)",
    )
    group.add_argument(
        "--verbose", "-v", action="store_true", help="print every AWS request (default: steps only)"
    )
    group.add_argument("--poll-seconds", type=float, default=30.0, help=argparse.SUPPRESS)


def _image(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image")
    group.add_argument(
        "--image-uri",
        help="use this image for training and hosting, no build (default: build and push ours)",
    )
    group.add_argument(
        "--framework-image",
        action="store_true",
        help="use the SageMaker scikit-learn framework image + model_src/requirements.txt "
        "(default: our own image)",
    )


def _build(parser: argparse.ArgumentParser) -> None:
    from .image import DEFAULT_BASE_IMAGE

    group = parser.add_argument_group("build")
    group.add_argument(
        "--base-image",
        default=DEFAULT_BASE_IMAGE,
        help=f"the Dockerfile's BASE_IMAGE (default: {DEFAULT_BASE_IMAGE})",
    )
    group.add_argument(
        "--docker-url", help="Docker daemon URL (default: DOCKER_HOST or the local socket)"
    )


def _train(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--data", help="training CSV file/directory or s3:// prefix (default: synthetic)"
    )
    group.add_argument(
        "--train-instance-type",
        default="ml.m5.large",
        help="training instance type (default: ml.m5.large)",
    )
    group.add_argument(
        "--hyperparameter",
        "-H",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the entry point as --KEY VALUE, repeatable (default: none)",
    )
    group.add_argument(
        "--max-runtime", type=int, default=3600, help="training time limit, seconds (default: 3600)"
    )


def _hosting(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("endpoint")
    group.add_argument(
        "--model-data", help="s3://.../model.tar.gz (default: the latest training job)"
    )
    group.add_argument(
        "--instance-type",
        default="ml.m5.large",
        help="endpoint instance type (default: ml.m5.large)",
    )
    group.add_argument(
        "--instance-count", type=int, default=1, help="instances to start with (default: 1)"
    )
    group.add_argument(
        "--max-instances", type=int, default=4, help="autoscaling maximum (default: 4)"
    )
    group.add_argument(
        "--invocations-per-instance",
        type=float,
        default=100.0,
        help="autoscaling target, invocations per instance per minute (default: 100)",
    )
    group.add_argument(
        "--serverless",
        action="store_true",
        help="SageMaker Serverless Inference (default: real-time instances)",
    )
    group.add_argument(
        "--serverless-memory",
        type=int,
        default=2048,
        choices=[1024, 2048, 3072, 4096, 5120, 6144],
        help="serverless memory, MB (default: 2048)",
    )
    group.add_argument(
        "--serverless-concurrency",
        type=int,
        default=5,
        help="serverless maximum concurrency (default: 5)",
    )
    group.add_argument(
        "--capture",
        metavar="S3_URI",
        help="data capture: every request and answer under s3://bucket/prefix, in SageMaker "
        "Data Capture's format (default: none)",
    )
    group.add_argument(
        "--capture-percent",
        type=int,
        default=100,
        metavar="N",
        help="with --capture: the share of invocations captured, 1-100 (default: 100)",
    )


def _api(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API")
    group.add_argument("--stack-name", help="CloudFormation stack (default: the deployment name)")
    group.add_argument(
        "--sam-parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra template parameter for sam deploy, repeatable (default: none)",
    )
    group.add_argument(
        "--schema",
        help="the schema file the API validates with: the served model's schema.json "
        "(default: read from the endpoint's model data; the built-in for a model without one)",
    )


class _StepParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    """A step parses into deploy's namespace: options count the same before or after the step
    name, and repeated ones add up (argparse's own parses into a fresh one and overwrites)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name, *rest = values
        setattr(namespace, self.dest, name)
        step = self.choices[name]  # argparse has checked the name
        _, extras = step.parse_known_args(rest, namespace)  # deploy's defaults are all there
        if extras:
            step.error(f"unrecognized arguments: {' '.join(extras)}")


_SECTIONS = {
    "build-image": (_image, _build),
    "train": (_image, _train),
    "create-endpoint": (_image, _hosting),
    "deploy-api": (_api,),
}


def register(sub: Any) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="deploy to AWS: image, training job, endpoint, scoring API",
        description="Run every step (or one: see the sub-commands). Re-running updates the "
        "endpoint in place with a new model, without downtime.",
    )
    for add in (_common, _image, _build, _train, _hosting, _api):
        add(deploy)
    deploy.add_argument(
        "--skip-api", action="store_true", help="stop after the endpoint (default: deploy the API)"
    )
    deploy.set_defaults(func=run_deploy, step=None)
    steps = deploy.add_subparsers(dest="step", metavar="STEP", action=_StepParsers)
    helps = {
        "build-image": "build container/Dockerfile and push it to ECR",
        "train": "upload data and source, run the SageMaker training job",
        "create-endpoint": "create (or update in place) the endpoint and its autoscaling",
        "deploy-api": "sam build && sam deploy the scoring API in front of the endpoint",
    }
    for step in _STEPS:
        parser = steps.add_parser(step, help=helps[step], description=helps[step])
        _common(parser)
        for add in _SECTIONS[step]:
            add(parser)
        parser.set_defaults(func=run_deploy, step=step)

    batch = sub.add_parser(
        "batch",
        help="score a large S3 file with SageMaker Batch Transform",
        description="Score a CSV or JSON-lines file (or every file under a prefix) in S3 with "
        "the deployed model, as a SageMaker Batch Transform job; one explanation per line "
        "under s3://out. Waits for the job unless --no-wait.",
    )
    batch.add_argument("s3_input", metavar="s3://in", help="CSV or JSON lines file or prefix")
    batch.add_argument("s3_output", metavar="s3://out", help="where the explanations go")
    _common(batch)
    batch.add_argument("--model-name", help="SageMaker model (default: the endpoint's)")
    batch.add_argument("--content-type", help="csv or jsonl (default: from the input's suffix)")
    batch.add_argument(
        "--instance-type",
        default="ml.m5.large",
        help="transform instance type (default: ml.m5.large)",
    )
    batch.add_argument(
        "--instance-count", type=int, default=1, help="transform instances (default: 1)"
    )
    batch.add_argument(
        "--no-wait",
        action="store_true",
        help="start the job, print its name and return (default: wait for it)",
    )
    batch.set_defaults(func=run_batch)

    destroy = sub.add_parser(
        "destroy",
        help="remove what deploy created (and nothing else)",
        description="Delete the deployment's stack, endpoint, configurations, models, data, "
        "image repository and role: only resources tagged with its name. Needs --yes "
        "(or --dry-run to see the plan).",
    )
    _common(destroy)
    _api(destroy)
    destroy.add_argument(
        "--keep-data", action="store_true", help="keep the S3 data and models (default: delete)"
    )
    destroy.add_argument(
        "--keep-image", action="store_true", help="keep the ECR repository (default: delete)"
    )
    destroy.add_argument(
        "--yes", action="store_true", help="do it, required unless --dry-run (default: refuse)"
    )
    destroy.set_defaults(func=run_destroy)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    from .errors import DeployError

    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _get(args: argparse.Namespace, name: str, default: Any) -> Any:
    value = getattr(args, name, None)
    return default if value is None else value


def config_from(args: argparse.Namespace) -> Any:
    from .config import DeployConfig

    get = args.__dict__.get
    params = _pairs(get("sam_parameter") or [], "--sam-parameter")
    return DeployConfig(
        name=args.name,
        bucket=get("bucket"),
        role_arn=get("role_arn"),
        image_uri=get("image_uri"),
        framework_image=bool(get("framework_image")),
        data=get("data"),
        train_instance_type=_get(args, "train_instance_type", "ml.m5.large"),
        max_runtime_seconds=_get(args, "max_runtime", 3600),
        hyperparameters=_pairs(get("hyperparameter") or [], "--hyperparameter"),
        model_data=get("model_data"),
        instance_type=_get(args, "instance_type", "ml.m5.large"),
        instance_count=_get(args, "instance_count", 1),
        serverless=bool(get("serverless")),
        serverless_memory_mb=_get(args, "serverless_memory", 2048),
        serverless_max_concurrency=_get(args, "serverless_concurrency", 5),
        max_instances=_get(args, "max_instances", 4),
        invocations_per_instance=_get(args, "invocations_per_instance", 100.0),
        capture=get("capture"),
        capture_percent=_get(args, "capture_percent", 100),
        stack_name=get("stack_name"),
        schema=get("schema"),
        sam_parameters=tuple(f"{k}={v}" for k, v in params.items()),
    )


def aws_from(args: argparse.Namespace) -> Any:
    from .aws import Aws

    return Aws(
        region=args.region,
        profile=args.profile,
        dry_run=args.dry_run,
        verbose=args.verbose,
        poll_seconds=args.poll_seconds,
    )


def _guarded(run: Any, args: argparse.Namespace) -> int:
    from .errors import DeployError

    try:
        run(args)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> None:
        from . import pipeline
        from .api import deploy_api
        from .image import build_and_push

        aws, cfg = aws_from(args), config_from(args)
        if args.dry_run:
            aws.announce(f"deployment {cfg.name!r}")
        step = args.step
        if step is None:
            pipeline.deploy_all(
                aws,
                cfg,
                base_image=args.base_image,
                docker_url=args.docker_url,
                skip_api=args.skip_api,
            )
        elif step == "build-image":
            print(build_and_push(aws, cfg, base_image=args.base_image, docker_url=args.docker_url))
        elif step == "train":
            print(pipeline.step_train(aws, cfg))
        elif step == "create-endpoint":
            print(pipeline.step_create_endpoint(aws, cfg))
        elif step == "deploy-api":
            deploy_api(aws, cfg, cfg.endpoint_name)
        if aws.dry_run:
            aws.print_plan()

    return _guarded(run, args)


def run_batch(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> None:
        from .batch import run_batch as start

        aws, cfg = aws_from(args), config_from(args)
        if aws.dry_run:
            aws.announce(f"a batch transform of {args.s3_input}")
        job = start(
            aws,
            cfg,
            s3_input=args.s3_input,
            s3_output=args.s3_output,
            model_name=args.model_name,
            content_type=args.content_type,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            wait=not args.no_wait,
        )
        print(job)
        if aws.dry_run:
            aws.print_plan()

    return _guarded(run, args)


def run_destroy(args: argparse.Namespace) -> int:
    if not args.dry_run and not args.yes:
        print(
            "error: destroy deletes AWS resources: pass --yes (or --dry-run to see the plan)",
            file=sys.stderr,
        )
        return 2

    def run(args: argparse.Namespace) -> None:
        from .destroy import destroy

        aws = aws_from(args)
        destroy(aws, config_from(args), keep_data=args.keep_data, keep_image=args.keep_image)
        if aws.dry_run:
            aws.print_plan()

    return _guarded(run, args)


__all__ = ["Path", "register"]
