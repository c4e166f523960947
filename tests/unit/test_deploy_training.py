"""The training step through Stubber: bucket, data and source upload, role, the job, the wait,
and a Failed job reported with its FailureReason (moto's jobs complete at once, never fail:
the successful run is also in tests/integration/test_deploy_moto.py)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from aws_plan import ACCOUNT, ANY, NOW, REGION, Plan, no_aws_credentials
from credit_explainer.cli import main
from credit_explainer_tools.deploy import AwsCallError, DeployConfig, TrainingJobFailedError
from credit_explainer_tools.deploy.training import latest_model_data, pack_source, train
from credit_model.train import METRIC_DEFINITIONS

__all__ = ["no_aws_credentials"]

BUCKET = f"credit-explainer-{ACCOUNT}-{REGION}"
JOB = "credit-explainer-20261125-090000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/credit-explainer-sagemaker"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/credit-explainer:src-1"
OURS = [{"Key": "credit-explainer:deployment", "Value": "credit-explainer"}]
MODEL = f"s3://{BUCKET}/credit-explainer/models/{JOB}/output/model.tar.gz"


def job(status, secondary, reason=None, metrics=()):
    response = {
        "TrainingJobName": JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{JOB}",
        "ModelArtifacts": {"S3ModelArtifacts": MODEL},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": NOW,
        "FinalMetricDataList": [
            {"MetricName": n, "Value": v, "Timestamp": NOW} for n, v in metrics
        ],
    }
    if reason:
        response["FailureReason"] = reason
    return response


def expect_until_created(plan, data_file):
    plan.ok(
        "sts",
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": "arn:aws:iam::1:user/u", "UserId": "U"},
    )
    plan.ok("s3", "head_bucket", {}, {"Bucket": BUCKET})  # exists: used as it is
    plan.ok(
        "s3",
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": f"credit-explainer/data/20261125-090000/train/{data_file.name}",
            "Body": data_file.read_bytes(),
            "Tagging": "credit-explainer%3Adeployment=credit-explainer",
        },
    )
    plan.error("iam", "get_role", "NoSuchEntity", "The role cannot be found", status=404)
    plan.ok(
        "iam",
        "create_role",
        {
            "Role": {
                "Path": "/",
                "RoleName": "credit-explainer-sagemaker",
                "RoleId": "AROAEXAMPLE1234567",
                "Arn": ROLE,
                "CreateDate": NOW,
            }
        },
        {
            "RoleName": "credit-explainer-sagemaker",
            "AssumeRolePolicyDocument": ANY,
            "Description": ANY,
            "Tags": OURS,
        },
    )
    plan.ok(
        "iam",
        "put_role_policy",
        {},
        {
            "RoleName": "credit-explainer-sagemaker",
            "PolicyName": "credit-explainer-least-privilege",
            "PolicyDocument": ANY,
        },
    )
    plan.ok(
        "s3",
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": f"credit-explainer/code/{JOB}/sourcedir.tar.gz",
            "Body": ANY,
            "Tagging": ANY,
        },
    )
    # a role created seconds ago is not assumable yet: SageMaker says so, deploy retries
    plan.error(
        "sagemaker",
        "create_training_job",
        "ValidationException",
        "Could not assume role arn:aws:iam::111122223333:role/credit-explainer-sagemaker.",
    )
    submit = f"s3://{BUCKET}/credit-explainer/code/{JOB}/sourcedir.tar.gz"
    plan.ok(
        "sagemaker",
        "create_training_job",
        {"TrainingJobArn": "arn:aws:sagemaker:x:1:training-job/j"},
        {
            "TrainingJobName": JOB,
            "HyperParameters": {
                "sagemaker_program": '"entry_point.py"',
                "sagemaker_submit_directory": json.dumps(submit),
                "sagemaker_region": f'"{REGION}"',
                "sagemaker_container_log_level": "20",
                "n_estimators": "100",
            },
            "AlgorithmSpecification": {
                "TrainingImage": IMAGE,
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
                "EnableSageMakerMetricsTimeSeries": True,
            },
            "RoleArn": ROLE,
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "ContentType": "text/csv",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{BUCKET}/credit-explainer/data/20261125-090000/train/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/credit-explainer/models/"},
            "ResourceConfig": {
                "InstanceType": "ml.m5.large",
                "InstanceCount": 1,
                "VolumeSizeInGB": 10,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "Tags": OURS,
        },
    )


@pytest.fixture
def data_file(tmp_path, sample_applicants):
    path = tmp_path / "applicants.csv"
    path.write_text("a,b\n1,2\n")
    return path


def config(data_file):
    return DeployConfig(
        stamp="20261125-090000", data=str(data_file), hyperparameters={"n_estimators": "100"}
    )


def test_training_job_runs_and_reports_its_metrics(data_file):
    plan = Plan()
    expect_until_created(plan, data_file)
    plan.ok(
        "sagemaker",
        "describe_training_job",
        job("InProgress", "Starting"),
        {"TrainingJobName": JOB},
    )
    plan.ok("sagemaker", "describe_training_job", job("InProgress", "Training"))
    plan.ok(
        "sagemaker",
        "describe_training_job",
        job(
            "Completed",
            "Completed",
            metrics=[("validation:roc_auc", 0.861), ("validation:brier", 0.049)],
        ),
    )
    assert train(plan.aws, config(data_file), image=IMAGE) == MODEL
    plan.verify()
    assert "InProgress / Training" in plan.printed
    assert "validation:roc_auc = 0.8610" in plan.printed
    assert plan.sleeps == [0, 0, 0]  # the role retry and two polls


def test_failed_training_job_raises_with_its_failure_reason(data_file):
    plan = Plan()
    expect_until_created(plan, data_file)
    reason = "AlgorithmError: ExecuteUserScriptError: ValueError: training data has no SeriousDlqin2yrs column"
    plan.ok("sagemaker", "describe_training_job", job("InProgress", "Training"))
    plan.ok("sagemaker", "describe_training_job", job("Failed", "Failed", reason=reason))
    with pytest.raises(TrainingJobFailedError) as info:
        train(plan.aws, config(data_file), image=IMAGE)
    plan.verify()
    assert info.value.status == "Failed" and "no SeriousDlqin2yrs column" in str(info.value)


def test_a_bucket_owned_by_another_account_is_an_error(data_file):
    plan = Plan()
    plan.ok(
        "sts",
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": "arn:aws:iam::1:user/u", "UserId": "U"},
    )
    plan.error("s3", "head_bucket", "403", "Forbidden", status=403)
    with pytest.raises(AwsCallError, match="HeadBucket failed: 403"):
        train(plan.aws, config(data_file), image=IMAGE)
    plan.verify()


def test_source_tarball_has_the_entry_point_at_the_top_and_no_caches():
    with tarfile.open(fileobj=io.BytesIO(pack_source(DeployConfig().root))) as tar:
        names = tar.getnames()
    assert "entry_point.py" in names and "requirements.txt" in names
    assert "credit_model/train.py" in names and "credit_schema/applicant.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # the egg-info an editable install writes into model_src/ is not source
    assert (DeployConfig().root / "model_src" / "credit_explainer_model.egg-info").is_dir()
    assert not [n for n in names if ".egg-info" in n]
    packed = pack_source(DeployConfig().root)
    assert packed == pack_source(DeployConfig().root)  # reproducible
    assert packed[:2] == b"\x1f\x8b" and packed[4:8] == bytes(4)  # gzip mtime 0: not the clock's


@pytest.mark.usefixtures("no_aws_credentials")
def test_full_deploy_dry_run_prints_the_whole_plan(capsys):
    code = main(["deploy", "--dry-run", "--region", "eu-west-1", "--instance-count", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    steps = [
        line.split("] ", 1)[1] for line in out.splitlines() if line.startswith("==> [dry-run]")
    ]
    assert [s.split()[0] for s in steps] == [
        "Container",
        "S3",
        "Upload",
        "Training",
        "Model",
        "Create",
        "Autoscaling",
        "Scoring",
        "What",  # a real run ends with (not "Ready": nothing was made ready)
        "Plan:",
    ]
    for call in (
        "sagemaker CreateTrainingJob",
        "sagemaker CreateEndpoint ",
        "application-autoscaling PutScalingPolicy",
    ):
        assert f"aws {call}" in out
    assert "docker push" in out and "$ sam build" in out and "EndpointName=credit-explainer" in out
    assert "CreditExplainerClient(" in out
    plan = out.split("Plan: ", 1)[1]
    for change in ("docker build and push", "sagemaker CreateTrainingJob", "sam deploy stack"):
        assert change in plan
    assert "cannot see the account" in out


def test_the_default_model_is_the_newest_job_of_this_deployment_on_any_page():
    def summary(name):
        return {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
            "CreationTime": NOW,
            "TrainingJobStatus": "Completed",
        }

    listing = {
        "NameContains": "credit-explainer",
        "StatusEquals": "Completed",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    plan = Plan()
    others = ["credit-explainer-staging-20261126-090000", "credit-explainer-batch-20261126-080000"]
    page = {"TrainingJobSummaries": [summary(n) for n in others], "NextToken": "t"}
    plan.ok("sagemaker", "list_training_jobs", page, listing)
    page = {"TrainingJobSummaries": [summary(JOB)]}
    plan.ok("sagemaker", "list_training_jobs", page, {**listing, "NextToken": "t"})
    plan.ok(
        "sagemaker",
        "describe_training_job",
        job("Completed", "Completed"),
        {"TrainingJobName": JOB},
    )
    assert latest_model_data(plan.aws, DeployConfig()) == MODEL
    plan.verify()
