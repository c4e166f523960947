"""Training on SageMaker: bucket, execution role, data and source upload, the job, the wait.

Script mode by hand (boto3, no SageMaker SDK): ``model_src/`` is packed as
``sourcedir.tar.gz`` and named by the ``sagemaker_program`` /
``sagemaker_submit_directory`` hyperparameters, which is exactly what the
``sagemaker-training`` toolkit in our image (and in the framework images) reads.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Final

from credit_explainer._config import install_hint
from credit_schema import CONTENT_TYPE_CSV

from .aws import Aws, Response, has_tag, tags
from .config import ENTRY_POINT, SOURCE_DIR, DeployConfig, is_source
from .errors import AwsCallError, DeployError, TrainingJobFailedError

_TRAINING_DONE: Final = frozenset({"Completed", "Failed", "Stopped"})
# ------------------------------------------------------------------- bucket ------
def ensure_bucket(aws: Aws, cfg: DeployConfig) -> str:
    """The deployment's bucket: used if it exists, else created private and tagged."""
    bucket = cfg.bucket or cfg.bucket_for(aws.account, aws.region)
    found = aws.exists("s3", "head_bucket", ("404", "NoSuchBucket", "NotFound"), Bucket=bucket)
    if found is not None:  # HeadBucket answers an empty body
        aws.say(f"    bucket s3://{bucket} exists: using it")
        return bucket
    create: dict[str, Any] = {"Bucket": bucket}
    if aws.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    aws.call("s3", "create_bucket", **create)
    aws.call(
        "s3",
        "put_public_access_block",
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    aws.call("s3", "put_bucket_tagging", Bucket=bucket, Tagging={"TagSet": tags(cfg.name)})
    return bucket


# --------------------------------------------------------------------- role ------
def given_s3(cfg: DeployConfig, bucket: str) -> list[str]:
    """The S3 URIs outside the deployment's prefix that training or hosting will read."""
    given = (cfg.data, cfg.model_data)
    return [u for u in given if u and u.startswith("s3://") and not _own(cfg, bucket, u)]


def _own(cfg: DeployConfig, bucket: str, uri: str) -> bool:
    return uri.startswith(f"s3://{bucket}/{cfg.prefix}/")


def s3_statements(
    sid: str, uris: list[str], actions: list[str], partition: str = "aws"
) -> list[dict[str, Any]]:
    """``actions`` on the objects under each URI, and listing there (empty for no URIs)."""
    if not uris:
        return []
    objects, buckets = [], []
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        objects.append(f"arn:{partition}:s3:::{bucket}/{key}*")
        buckets.append((f"arn:{partition}:s3:::{bucket}", f"{key}*"))
    return [
        {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": objects},
        *(
            {
                "Sid": f"{sid}List{i}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": [prefix]}},
            }
            for i, (arn, prefix) in enumerate(buckets)
        ),
    ]


def execution_role_policy(
    cfg: DeployConfig, *, bucket: str, account: str, region: str, partition: str = "aws"
) -> dict[str, Any]:
    """Least privilege for training and hosting: this bucket prefix and the S3 URIs it was
    given (``--data``, ``--model-data``), this ECR repository, logs and SageMaker metrics."""
    s3 = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            *s3_statements("ReadGivenS3", given_s3(cfg, bucket), ["s3:GetObject"], partition),
            *s3_statements(
                "WriteCapture",
                [cfg.capture] if cfg.capture and not _own(cfg, bucket, cfg.capture + "/") else [],
                ["s3:PutObject"],
                partition,
            ),
            {
                "Sid": "ReadWriteOwnPrefix",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{s3}/{cfg.prefix}/*",
            },
            {
                "Sid": "ListOwnPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": s3,
                "Condition": {"StringLike": {"s3:prefix": [f"{cfg.prefix}/*"]}},
            },
            {
                "Sid": "PullOwnImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": f"arn:{partition}:ecr:{region}:{account}:repository/{cfg.repository}",
            },
            {
                # GetAuthorizationToken has no resource-level permissions: "*" is the only form.
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/*",
            },
            {
                # PutMetricData has no resource-level permissions: "*", limited by namespace.
                "Sid": "PutSageMakerMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            },
        ],
    }


_TRUST: Final = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def ensure_role(aws: Aws, cfg: DeployConfig, bucket: str) -> str:
    """The SageMaker execution role: ``--role-arn`` if given, else ours (created, tagged)."""
    if cfg.role_arn:
        return cfg.role_arn
    policy = execution_role_policy(
        cfg, bucket=bucket, account=aws.account, region=aws.region, partition=aws.partition
    )
    found = aws.exists("iam", "get_role", ("NoSuchEntity",), RoleName=cfg.role_name)
    if found is not None:
        role = found["Role"]
        if not has_tag(role.get("Tags", []), cfg.name):
            raise DeployError(
                f"IAM role {cfg.role_name} exists but was not created by this deployment "
                f"(no tag {cfg.name}); pass --role-arn to use it"
            )
        arn = str(role["Arn"])
    else:
        created = aws.call(
            "iam",
            "create_role",
            RoleName=cfg.role_name,
            AssumeRolePolicyDocument=json.dumps(_TRUST),
            Description=f"SageMaker execution role of credit-explainer deployment {cfg.name}",
            Tags=tags(cfg.name),
        )
        arn = str(created["Role"]["Arn"])
    aws.call(
        "iam",
        "put_role_policy",
        RoleName=cfg.role_name,
        PolicyName="credit-explainer-least-privilege",
        PolicyDocument=json.dumps(policy),
    )
    return arn


# ------------------------------------------------------------------- upload ------
def pack_source(root: Path) -> bytes:
    """``model_src/`` as ``sourcedir.tar.gz`` (entry point at the top), reproducibly."""
    source = root / SOURCE_DIR
    if not (source / ENTRY_POINT).is_file():
        raise DeployError(f"{source / ENTRY_POINT} not found: is this a credit-explainer checkout?")
    buffer = io.BytesIO()
    # gzip's header holds a timestamp: 0, or the bytes change from one second to the next.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if not is_source(rel):
                continue
            if path.is_file():
                info = tar.gettarinfo(str(path), arcname=str(rel))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    return buffer.getvalue()


def upload_source(aws: Aws, cfg: DeployConfig, bucket: str, job_name: str) -> str:
    key = f"{cfg.prefix}/code/{job_name}/sourcedir.tar.gz"
    body = pack_source(cfg.root)
    aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=body, Tagging=_tagging(cfg))
    return f"s3://{bucket}/{key}"


def _tagging(cfg: DeployConfig) -> str:
    from urllib.parse import urlencode

    return urlencode({"credit-explainer:deployment": cfg.name})


def _local_data(cfg: DeployConfig) -> list[Path]:
    """The CSV files of a local ``--data`` (a file, or a directory's ``*.csv``)."""
    path = Path(cfg.data or "")
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DeployError(f"no CSV data at {path}")
    return files


def check_training_inputs(cfg: DeployConfig) -> None:
    """The data and the metric definitions training needs, before anything is created."""
    metric_definitions()
    if not cfg.data:
        from credit_model import synth  # noqa: F401 - credit_model is there: it imports
    elif not cfg.data.startswith("s3://"):
        _local_data(cfg)


def upload_data(aws: Aws, cfg: DeployConfig, bucket: str) -> str:
    """The training channel's S3 prefix: ``--data`` as given if ``s3://``, else uploaded."""
    if cfg.data and cfg.data.startswith("s3://"):
        return cfg.data
    key_prefix = f"{cfg.prefix}/data/{cfg.stamp}/train"
    if cfg.data:
        for file in _local_data(cfg):
            aws.call(
                "s3",
                "put_object",
                Bucket=bucket,
                Key=f"{key_prefix}/{file.name}",
                Body=file.read_bytes(),
                Tagging=_tagging(cfg),
            )
    else:
        aws.say("    no --data: uploading the seeded synthetic data set (credit_model.synth)")
        aws.call(
            "s3",
            "put_object",
            Bucket=bucket,
            Key=f"{key_prefix}/synthetic.csv",
            Body=_synthetic_csv(),
            Tagging=_tagging(cfg),
        )
    return f"s3://{bucket}/{key_prefix}/"


def _synthetic_csv() -> bytes:
    """The project's seeded synthetic data set (``credit-explainer synth``) as CSV bytes."""
    try:
        from credit_model import synth
    except ImportError as exc:
        raise DeployError(
            "no --data and credit_model is not installed to synthesise some: "
            f"{install_hint('credit-explainer-model')}, or pass --data"
        ) from exc
    return str(synth.generate().to_csv(index=False)).encode()


# ---------------------------------------------------------------------- job ------
def metric_definitions() -> list[dict[str, str]]:
    """The regexes SageMaker applies to the training log (owned by credit_model)."""
    try:
        from credit_model.train import METRIC_DEFINITIONS as definitions
    except ImportError as exc:  # credit-explainer-model is not installed
        raise DeployError(
            "credit_model is needed for the training metric definitions: "
            f"{install_hint('credit-explainer-model')}"
        ) from exc
    return [{"Name": str(m["Name"]), "Regex": str(m["Regex"])} for m in definitions]


def script_mode_hyperparameters(cfg: DeployConfig, submit_dir: str, region: str) -> dict[str, str]:
    """Hyperparameters JSON-encoded the way the SageMaker SDK sends them in script mode."""
    values: dict[str, Any] = {
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": submit_dir,
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
    }
    for key, raw in cfg.hyperparameters.items():
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return {key: json.dumps(value) for key, value in values.items()}


def create_training_job(
    aws: Aws, cfg: DeployConfig, *, image: str, role: str, bucket: str, data: str, job_name: str
) -> None:
    submit_dir = upload_source(aws, cfg, bucket, job_name)
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "HyperParameters": script_mode_hyperparameters(cfg, submit_dir, aws.region),
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": role,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": data,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": CONTENT_TYPE_CSV,
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{cfg.prefix}/models/"},
        "ResourceConfig": {
            "InstanceType": cfg.train_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": cfg.train_volume_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": cfg.max_runtime_seconds},
        "Tags": tags(cfg.name),
    }
    # A role created seconds ago may not be assumable yet (IAM is eventually consistent).
    for attempt in range(6):
        try:
            aws.call("sagemaker", "create_training_job", **request)
            return
        except AwsCallError as exc:
            if (
                exc.code != "ValidationException"
                or "assume" not in str(exc).lower()
                or attempt == 5
            ):
                raise
            aws.say("    the new execution role is not assumable yet; retrying in a moment")
            aws.sleep(max(aws.poll_seconds, 5.0) if aws.poll_seconds else 0)


def _progress(job: Response) -> str:
    line = f"{job['TrainingJobStatus']} / {job['SecondaryStatus']}"
    transitions = job.get("SecondaryStatusTransitions") or []
    if transitions and transitions[-1].get("StatusMessage"):
        line += f": {transitions[-1]['StatusMessage']}"
    return line


def wait_for_training(aws: Aws, job_name: str) -> Response:
    """Poll the job, printing each status change; raise with its FailureReason on failure."""
    job = aws.poll(
        "sagemaker",
        "describe_training_job",
        status_key="TrainingJobStatus",
        done=_TRAINING_DONE,
        describe=_progress,
        TrainingJobName=job_name,
    )
    status = str(job["TrainingJobStatus"])
    if status != "Completed":
        raise TrainingJobFailedError(
            job_name, status, str(job.get("FailureReason", "no reason given"))
        )
    for metric in job.get("FinalMetricDataList") or []:
        aws.say(f"    {metric['MetricName']} = {metric['Value']:.4f}")
    return job


def train(
    aws: Aws, cfg: DeployConfig, *, image: str, bucket: str | None = None, role: str | None = None
) -> str:
    """The whole training step; returns the S3 URL of ``model.tar.gz``."""
    aws.step("Upload training data and source to S3")
    bucket = bucket or ensure_bucket(aws, cfg)
    data = upload_data(aws, cfg, bucket)
    role = role or ensure_role(aws, cfg, bucket)
    job_name = cfg.versioned()
    aws.step(f"Training job {job_name} (script mode, {cfg.train_instance_type})")
    create_training_job(
        aws, cfg, image=image, role=role, bucket=bucket, data=data, job_name=job_name
    )
    job = wait_for_training(aws, job_name)
    model_data = str(job["ModelArtifacts"]["S3ModelArtifacts"])
    aws.outcome(f"model: {model_data}")
    return model_data


def latest_model_data(aws: Aws, cfg: DeployConfig) -> str:
    """``model.tar.gz`` of this deployment's newest completed training job.

    NameContains also matches other deployments' jobs (``<name>-staging-...``): only a name
    this deployment's naming scheme gives is taken.
    """
    token: str | None = None
    while True:
        extra: dict[str, Any] = {"NextToken": token} if token else {}
        found = aws.call(
            "sagemaker",
            "list_training_jobs",
            NameContains=cfg.name,
            StatusEquals="Completed",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=100,
            **extra,
        )
        for summary in found.get("TrainingJobSummaries") or []:
            if cfg.is_versioned(summary["TrainingJobName"]):
                job = aws.call(
                    "sagemaker", "describe_training_job", TrainingJobName=summary["TrainingJobName"]
                )
                return str(job["ModelArtifacts"]["S3ModelArtifacts"])
        token = found.get("NextToken")
        if not token:
            raise DeployError(
                f"no completed training job named {cfg.name}-<stamp>: run `credit-explainer "
                "deploy train` or pass --model-data s3://.../model.tar.gz"
            )
