"""Batch scoring: a SageMaker Batch Transform job over S3 with the endpoint's own model.

Input is CSV (``text/csv``) or JSON lines (``application/jsonlines``), split by line
into mini-batches; the container answers ``application/jsonlines``, one
explanation per input line, assembled by line into ``<input file>.out``.
"""

from __future__ import annotations

from typing import Final

from .aws import Aws, tags
from .config import DeployConfig
from .errors import DeployError, TransformJobFailedError

CONTENT_TYPES: Final = {"csv": "text/csv", "jsonl": "application/jsonlines"}
ACCEPT: Final = "application/jsonlines"
_DONE: Final = frozenset({"Completed", "Failed", "Stopped"})


def content_type_for(s3_input: str, given: str | None) -> str:
    if given:
        return CONTENT_TYPES.get(given, given)
    lowered = s3_input.lower()
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        return CONTENT_TYPES["jsonl"]
    return CONTENT_TYPES["csv"]


def serving_model(aws: Aws, cfg: DeployConfig) -> str:
    """The model behind the deployment's endpoint (what batch scores with by default)."""
    endpoint = aws.exists("sagemaker", "describe_endpoint", (), EndpointName=cfg.endpoint_name)
    if endpoint is None:
        raise DeployError(f"no endpoint {cfg.endpoint_name}: deploy first, or pass --model-name")
    config = aws.call(
        "sagemaker", "describe_endpoint_config", EndpointConfigName=endpoint["EndpointConfigName"]
    )
    return str(config["ProductionVariants"][0]["ModelName"])


def run_batch(
    aws: Aws,
    cfg: DeployConfig,
    *,
    s3_input: str,
    s3_output: str,
    model_name: str | None = None,
    content_type: str | None = None,
    instance_type: str = "ml.m5.large",
    instance_count: int = 1,
    wait: bool = True,
) -> str:
    for uri in (s3_input, s3_output):
        if not uri.startswith("s3://"):
            raise DeployError(f"{uri}: batch input and output must be s3:// URIs")
    aws.step(f"Batch Transform {s3_input} -> {s3_output}")
    model = model_name or serving_model(aws, cfg)
    job = cfg.versioned("batch")
    aws.call(
        "sagemaker",
        "create_transform_job",
        TransformJobName=job,
        ModelName=model,
        MaxPayloadInMB=6,
        BatchStrategy="MultiRecord",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": s3_input}},
            "ContentType": content_type_for(s3_input, content_type),
            "SplitType": "Line",
            "CompressionType": "None",
        },
        TransformOutput={"S3OutputPath": s3_output, "Accept": ACCEPT, "AssembleWith": "Line"},
        TransformResources={"InstanceType": instance_type, "InstanceCount": instance_count},
        Tags=tags(cfg.name),
    )
    if not wait:
        return job
    final = aws.poll(
        "sagemaker",
        "describe_transform_job",
        status_key="TransformJobStatus",
        done=_DONE,
        TransformJobName=job,
    )
    status = str(final["TransformJobStatus"])
    if status != "Completed":
        raise TransformJobFailedError(
            job, status, str(final.get("FailureReason", "no reason given"))
        )
    aws.say(f"    explanations written under {s3_output}")
    return job
