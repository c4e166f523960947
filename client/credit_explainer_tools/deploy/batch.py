"""Batch scoring: a SageMaker Batch Transform job over S3 with the endpoint's own model.

Input is CSV (``text/csv``) or JSON lines (``application/jsonlines``), split by line
into mini-batches; the container answers ``application/jsonlines``, one
explanation per input line, assembled by line into ``<input file>.out``.
"""

from __future__ import annotations

import json
from typing import Final

from credit_schema import CONTENT_TYPE_CSV, CONTENT_TYPE_JSONLINES

from .aws import Aws, tags
from .config import DeployConfig
from .errors import DeployError, TransformJobFailedError
from .training import s3_statements

CONTENT_TYPES: Final = {"csv": CONTENT_TYPE_CSV, "jsonl": CONTENT_TYPE_JSONLINES}
ACCEPT: Final = CONTENT_TYPE_JSONLINES
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


def grant_s3(aws: Aws, cfg: DeployConfig, model: str, s3_input: str, s3_output: str) -> None:
    """Let the model's role read the input and write the output, when the role is ours."""
    role = str(aws.call("sagemaker", "describe_model", ModelName=model)["ExecutionRoleArn"])
    if role.rsplit("/", 1)[-1] != cfg.role_name:
        aws.say(f"    model {model} runs as {role}: it must read {s3_input} and write {s3_output}")
        return
    statements = s3_statements("ReadBatchInput", [s3_input], ["s3:GetObject"], aws.partition)
    statements += s3_statements("WriteBatchOutput", [s3_output], ["s3:PutObject"], aws.partition)
    aws.call(
        "iam",
        "put_role_policy",
        RoleName=cfg.role_name,
        PolicyName="credit-explainer-batch",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


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
    grant_s3(aws, cfg, model, s3_input, s3_output)
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
        aws.outcome(f"transform job {job} started (not waiting for it)")
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
    aws.outcome(f"explanations written under {s3_output}")
    return job
