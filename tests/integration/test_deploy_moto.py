"""deploy, batch and destroy against moto's server: an implementation of the AWS APIs that
keeps state, answers with its own fields and fails in its own ways.

The server runs in a thread of this process on a free loopback port; botocore reaches it through
``AWS_ENDPOINT_URL`` with dummy credentials, and the account's state is checked afterwards
with boto3. What moto cannot do stays with the Stubber tests in tests/unit: it has no
``UpdateEndpoint`` (a successful, rolled-back or Failed in-place update: test_deploy_hosting),
no ``ecr-public`` and no Docker registry (test_deploy_image); it does not keep a model's
``EnableNetworkIsolation`` (test_deploy_hosting) nor check IAM policies against requests
(the policy documents: test_deploy_template); its training and transform jobs complete at
once without running anything (the entry point: test_entry_point).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import MOTO_REGION as REGION
from credit_explainer.cli import main

pytest.importorskip("moto.server")

ACCOUNT = "123456789012"  # moto's default account
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/credit-explainer:src-test"
BUCKET = f"credit-explainer-{ACCOUNT}-{REGION}"
ROLE = "credit-explainer-sagemaker"
TAG = {"Key": "credit-explainer:deployment", "Value": "credit-explainer"}
RID = "endpoint/credit-explainer/variant/AllTraffic"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--poll-seconds", "0"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def plan_of(out: str) -> str:
    return out.split("Plan: ", 1)[1]


def training_jobs(session: Any) -> list[str]:
    jobs = session.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    return sorted(job["TrainingJobName"] for job in jobs)


def scaling_targets(session: Any) -> list[dict[str, Any]]:
    found = session.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker"
    )
    return list(found["ScalableTargets"])


def stack(session: Any, name: str, tags: list[dict[str, str]]) -> None:
    """A stand-in for the scoring API's stack (sam cannot deploy to moto): one SNS topic."""
    body = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    session.client("cloudformation").create_stack(StackName=name, TemplateBody=body, Tags=tags)


def everything(session: Any) -> dict[str, Any]:
    """What exists in the account, by kind."""
    sm = session.client("sagemaker")
    s3 = session.client("s3")
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "objects": sorted(
            o["Key"]
            for b in s3.list_buckets()["Buckets"]
            for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
        ),
        "roles": sorted(r["RoleName"] for r in session.client("iam").list_roles()["Roles"]),
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
        "configs": sorted(
            c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]
        ),
        "models": sorted(m["ModelName"] for m in sm.list_models()["Models"]),
        "scaling": [t["ResourceId"] for t in scaling_targets(session)],
        "stacks": sorted(
            s["StackName"]
            for s in session.client("cloudformation").list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"
        ),
    }


def test_dry_run_before_the_step_name_creates_nothing(account, capsys, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("SeriousDlqin2yrs,age\n0,45\n")
    argv = ("train", "--image-uri", IMAGE, "--data", str(data))
    code, out, _ = run(capsys, "deploy", "--dry-run", "--region", REGION, *argv)
    assert code == 0
    assert everything(account)["buckets"] == [] and everything(account)["roles"] == []
    assert training_jobs(account) == []
    plan = plan_of(out)
    for change in ("s3 CreateBucket", "iam CreateRole", "sagemaker CreateTrainingJob"):
        assert change in plan
    assert "cannot see the account" not in out  # it had credentials: the reads were real


@pytest.mark.slow
def test_train_endpoint_failed_update_batch_and_destroy(account, capsys):
    assert run(capsys, "deploy", "train", "--image-uri", IMAGE)[0] == 0
    (job,) = training_jobs(account)
    assert job.startswith("credit-explainer-")
    s3 = account.client("s3")
    assert s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"] == [TAG]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.endswith("/sourcedir.tar.gz") for k in keys)
    assert any(k.endswith("/synthetic.csv") for k in keys)

    code, out, _ = run(capsys, "deploy", "create-endpoint", "--image-uri", IMAGE)
    assert code == 0 and out.strip().endswith("credit-explainer")
    sm = account.client("sagemaker")
    first = sm.describe_endpoint(EndpointName="credit-explainer")
    assert first["EndpointStatus"] == "InService"
    model = sm.describe_model(ModelName=first["EndpointConfigName"])
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith(f"/{job}/output/model.tar.gz")
    assert [t["ResourceId"] for t in scaling_targets(account)] == [RID]

    # moto has no UpdateEndpoint: the in-place update fails, as a refused update would on AWS.
    code, _, err = run(capsys, "deploy", "create-endpoint", "--image-uri", IMAGE)
    assert code == 1 and err.startswith("error: sagemaker UpdateEndpoint failed")
    after = sm.describe_endpoint(EndpointName="credit-explainer")
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == (
        "InService",
        first["EndpointConfigName"],
    )
    (target,) = scaling_targets(account)  # the old fleet is autoscaled again
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (RID, 1, 4)

    code, out, _ = run(
        capsys, "batch", f"s3://{BUCKET}/in/applicants.csv", f"s3://{BUCKET}/out/", "--no-wait"
    )
    assert code == 0
    batch_job = out.strip().splitlines()[-1]
    described = sm.describe_transform_job(TransformJobName=batch_job)
    assert described["ModelName"] == first["EndpointConfigName"]
    granted = account.client("iam").get_role_policy(
        RoleName=ROLE, PolicyName="credit-explainer-batch"
    )["PolicyDocument"]
    resources = [s["Resource"] for s in granted["Statement"]]
    assert [f"arn:aws:s3:::{BUCKET}/in/applicants.csv*"] in resources
    assert [f"arn:aws:s3:::{BUCKET}/out/*"] in resources

    stack(account, "credit-explainer", [TAG])
    before = everything(account)
    code, out, _ = run(capsys, "destroy", "--dry-run")
    assert code == 0
    assert everything(account) == before  # nothing deleted
    plan = plan_of(out)
    assert "removed" not in out
    assert "sagemaker DeleteEndpoint EndpointName=credit-explainer" in plan
    for name in before["configs"]:
        assert f"sagemaker DeleteEndpointConfig EndpointConfigName={name}" in plan
    for name in before["models"]:
        assert f"sagemaker DeleteModel ModelName={name}" in plan
    for key in before["objects"]:
        assert f"Key={key}" in plan
    assert f"s3 DeleteBucket Bucket={BUCKET}" in plan
    assert f"application-autoscaling DeregisterScalableTarget ResourceId={RID}" in plan
    assert f"iam DeleteRole RoleName={ROLE}" in plan
    assert "cloudformation DeleteStack StackName=credit-explainer" in plan

    code, out, _ = run(capsys, "destroy", "--yes")
    assert code == 0 and "deployment credit-explainer removed" in out
    assert everything(account) == {
        "buckets": [],
        "objects": [],
        "roles": [],
        "endpoints": [],
        "configs": [],
        "models": [],
        "scaling": [],
        "stacks": [],
    }
    assert training_jobs(account) == [job]  # jobs are history, not resources


@pytest.mark.slow
def test_a_deployment_never_takes_another_deployments_model(account, capsys, tmp_path):
    data = tmp_path / "train.csv"  # moto's jobs read nothing: a header is enough
    data.write_text("SeriousDlqin2yrs,age\n0,45\n")
    staging = ("--name", "credit-explainer-staging", "--image-uri", IMAGE, "--data", str(data))
    mine = ("--image-uri", IMAGE, "--data", str(data))
    assert run(capsys, "deploy", "train", *staging)[0] == 0
    code, _, err = run(capsys, "deploy", "create-endpoint", "--image-uri", IMAGE)
    assert code == 1 and "no completed training job named credit-explainer-<stamp>" in err
    assert everything(account)["endpoints"] == []

    assert run(capsys, "deploy", "train", *mine)[0] == 0
    assert run(capsys, "deploy", "train", *staging)[0] == 0  # staging's is the newest job
    assert run(capsys, "deploy", "create-endpoint", "--image-uri", IMAGE)[0] == 0
    sm = account.client("sagemaker")
    config = sm.describe_endpoint(EndpointName="credit-explainer")["EndpointConfigName"]
    data = sm.describe_model(ModelName=config)["PrimaryContainer"]["ModelDataUrl"]
    assert "/credit-explainer/models/credit-explainer-2" in data
    assert "staging" not in data


def test_serverless_endpoint_without_autoscaling(account, capsys):
    model_data = f"s3://{BUCKET}/credit-explainer/models/given/model.tar.gz"
    argv = ("deploy", "create-endpoint", "--serverless", "--image-uri", IMAGE)
    assert run(capsys, *argv, "--model-data", model_data)[0] == 0
    sm = account.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="credit-explainer")
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert scaling_targets(account) == []


def test_destroy_leaves_another_deployment_alone(account, capsys):
    other = ("--name", "credit-explainer-staging")
    model_data = "s3://elsewhere/model.tar.gz"
    argv = ("deploy", "create-endpoint", "--image-uri", IMAGE, "--model-data", model_data)
    assert run(capsys, *argv, *other)[0] == 0
    stack(account, "credit-explainer", [])  # named like ours, not tagged: someone else's
    before = everything(account)
    code, out, _ = run(capsys, "destroy", "--dry-run")
    assert code == 0 and "Plan: 0 change(s), none made" in out
    assert run(capsys, "destroy", "--yes")[0] == 0
    assert everything(account) == before


def test_missing_prerequisites_stop_a_deploy_before_any_change(
    account, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sam, no python3.13
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))  # nor beside this Python
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    code, _, err = run(capsys, "deploy", "--image-uri", IMAGE)
    assert code == 1 and err.startswith("error: `sam` (AWS SAM CLI) is not on PATH")
    code, _, err = run(capsys, "deploy", "train", "--image-uri", IMAGE, "--data", "missing.csv")
    assert code == 1 and err == "error: no CSV data at missing.csv\n"
    assert everything(account)["buckets"] == [] and everything(account)["roles"] == []
    assert training_jobs(account) == []


def test_dry_runs_of_an_update_and_a_batch_read_the_account_and_change_nothing(account, capsys):
    model_data = f"s3://{BUCKET}/credit-explainer/models/given/model.tar.gz"
    argv = ("deploy", "create-endpoint", "--image-uri", IMAGE, "--model-data", model_data)
    assert run(capsys, *argv)[0] == 0
    before = everything(account)

    code, out, _ = run(capsys, *argv, "--dry-run")
    assert code == 0
    plan = plan_of(out)
    changes = [line.split()[:2] for line in plan.splitlines()[1:] if line.strip()]
    assert changes == [
        ["iam", "PutRolePolicy"],  # the bucket and the role exist: the reads saw them
        ["sagemaker", "CreateModel"],
        ["sagemaker", "CreateEndpointConfig"],
        ["application-autoscaling", "DeregisterScalableTarget"],
        ["sagemaker", "UpdateEndpoint"],
        ["application-autoscaling", "RegisterScalableTarget"],
        ["application-autoscaling", "PutScalingPolicy"],
    ]
    assert "Update endpoint credit-explainer in place" in out

    code, out, _ = run(capsys, "batch", f"s3://{BUCKET}/in.csv", f"s3://{BUCKET}/out/", "--dry-run")
    assert code == 0
    (job,) = [line for line in out.splitlines() if line.startswith("credit-explainer-batch-")]
    assert [line.split()[:2] for line in plan_of(out).splitlines()[1:] if line.strip()] == [
        ["iam", "PutRolePolicy"],
        ["sagemaker", "CreateTransformJob"],
    ]
    assert everything(account) == before
    assert account.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []
    assert f"CreateTransformJob TransformJobName={job}" in plan_of(out)


def test_create_endpoint_with_data_capture_and_a_role_that_may_write_there(account, capsys):
    model_data = f"s3://{BUCKET}/credit-explainer/models/given/model.tar.gz"
    capture = "s3://audit-bucket/decisions/credit"
    argv = ("deploy", "create-endpoint", "--image-uri", IMAGE, "--model-data", model_data)
    assert run(capsys, *argv, "--capture", capture, "--capture-percent", "40")[0] == 0
    sm = account.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="credit-explainer")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 40,
        "DestinationS3Uri": capture,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": ["application/json", "application/jsonlines"]
        },
    }
    policy = account.client("iam").get_role_policy(
        RoleName=ROLE, PolicyName="credit-explainer-least-privilege"
    )["PolicyDocument"]
    (write,) = [s for s in policy["Statement"] if s.get("Sid") == "WriteCapture"]
    assert write["Action"] == ["s3:PutObject"]
    assert write["Resource"] == ["arn:aws:s3:::audit-bucket/decisions/credit*"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--capture", "audit-bucket/x"), "--capture wants s3://bucket/prefix"),
        (("--capture", "s3://b/p", "--capture-percent", "0"), "--capture-percent is 1-100"),
    ],
)
def test_bad_capture_options_stop_before_any_endpoint(account, capsys, flags, message):
    model_data = f"s3://{BUCKET}/credit-explainer/models/given/model.tar.gz"
    argv = ("deploy", "create-endpoint", "--image-uri", IMAGE, "--model-data", model_data)
    code, _, err = run(capsys, *argv, *flags)
    assert code == 1 and f"error: {message}" in err
    assert account.client("sagemaker").list_endpoint_configs()["EndpointConfigs"] == []
