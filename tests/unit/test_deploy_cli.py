"""The deploy/batch/destroy commands: --help, --dry-run plans, refusals, exit codes."""

from __future__ import annotations

import json
import re

import pytest
from aws_plan import no_aws_credentials
from credit_explainer.cli import build_parser, main

pytestmark = pytest.mark.usefixtures("no_aws_credentials")
__all__ = ["no_aws_credentials"]

DATA = "s3://b/credit-explainer/models/j/output/model.tar.gz"
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/credit-explainer:src-1"
CREATE_ENDPOINT = ["deploy", "create-endpoint", "--dry-run", "--region", "eu-west-1"]
CREATE_ENDPOINT += ["--model-data", DATA, "--image-uri", IMAGE, "--instance-count"]


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy"],
        ["deploy", "build-image"],
        ["deploy", "train"],
        ["deploy", "create-endpoint"],
        ["deploy", "deploy-api"],
        ["batch"],
        ["destroy"],
    ],
)
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*argv, "--help"])
    assert info.value.code == 0
    assert "--dry-run" in capsys.readouterr().out


def test_create_endpoint_dry_run_prints_every_request_and_sends_none(capsys):
    code = main(
        [
            *CREATE_ENDPOINT,
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    calls = [line.split(None, 3) for line in out.splitlines() if line.strip().startswith("aws ")]
    ops = [f"{c[1]} {c[2]}" for c in calls]
    assert ops == [
        "sts GetCallerIdentity",
        "s3 HeadBucket",
        "s3 CreateBucket",
        "s3 PutPublicAccessBlock",
        "s3 PutBucketTagging",
        "iam GetRole",
        "iam CreateRole",
        "iam PutRolePolicy",
        "sagemaker CreateModel",
        "sagemaker CreateEndpointConfig",
        "sagemaker DescribeEndpoint",
        "sagemaker CreateEndpoint",
        "sagemaker DescribeEndpoint",
        "application-autoscaling RegisterScalableTarget",
        "application-autoscaling PutScalingPolicy",
    ]
    config = json.loads(calls[ops.index("sagemaker CreateEndpointConfig")][3])
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    policy = json.loads(json.loads(calls[ops.index("iam PutRolePolicy")][3])["PolicyDocument"])
    resources = [s["Resource"] for s in policy["Statement"]]
    assert "arn:aws:s3:::credit-explainer-123456789012-eu-west-1/credit-explainer/*" in resources


def test_dry_run_still_validates_parameters_against_the_service_model(capsys):
    code = main(
        [
            *CREATE_ENDPOINT,
            "0",
        ]
    )
    assert code == 1  # InitialInstanceCount has a minimum of 1 in the SageMaker model
    assert "InitialInstanceCount" in capsys.readouterr().err


def test_batch_dry_run(capsys):
    code = main(
        [
            "batch",
            "s3://in/applicants.jsonl",
            "s3://out/",
            "--dry-run",
            "--region",
            "eu-west-1",
            "--model-name",
            "credit-explainer-20261125-090000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    line = next(x for x in out.splitlines() if "CreateTransformJob" in x)
    request = json.loads(line.split("CreateTransformJob", 1)[1])
    assert request["TransformInput"]["ContentType"] == "application/jsonlines"
    assert request["TransformOutput"]["Accept"] == "application/jsonlines"


def test_batch_refuses_local_paths(capsys):
    assert main(["batch", "in.csv", "s3://out/", "--dry-run", "--region", "eu-west-1"]) == 1
    assert "must be s3:// URIs" in capsys.readouterr().err


def test_destroy_needs_yes(capsys):
    assert main(["destroy", "--region", "eu-west-1"]) == 2
    assert "--yes" in capsys.readouterr().err


def test_no_region_is_a_clear_error(capsys, monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert main(["deploy", "deploy-api"]) == 1
    assert "no AWS region" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--dry-run", "--region", "us-east-1", "--name", "b", "train"],
        ["deploy", "train", "--dry-run", "--region", "us-east-1", "--name", "b"],
        ["deploy", "--dry-run", "--name", "a", "train", "--region", "us-east-1", "--name", "b"],
    ],
)
def test_options_before_or_after_the_step_name_are_kept(argv):
    args = build_parser().parse_args(argv)
    assert (args.step, args.dry_run, args.region, args.name) == ("train", True, "us-east-1", "b")
    assert args.max_runtime == 3600 and args.hyperparameter == []  # defaults still there
    assert args.func.__name__ == "run_deploy"


def test_a_repeated_option_adds_up_across_the_step_name(capsys):
    args = build_parser().parse_args(["deploy", "-H", "a=1", "train", "-H", "b=2"])
    assert args.hyperparameter == ["a=1", "b=2"]
    assert build_parser().parse_args(["deploy", "train"]).hyperparameter == []
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deploy", "train", "--serverless"])  # not a train option
    assert "unrecognized arguments: --serverless" in capsys.readouterr().err


def test_a_missing_profile_is_an_error_line(capsys, monkeypatch):
    code = main(["destroy", "--yes", "--region", "eu-west-1", "--profile", "nope"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: The config profile (nope) could not be found")
    monkeypatch.setenv("AWS_PROFILE", "nope")
    assert main(["deploy", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The config profile (nope) could not be found")
    assert "Traceback" not in err


def test_credentials_that_fail_to_load_are_an_error_line(capsys, monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.write_text("[profile broken]\ncredential_process = false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert main(["destroy", "--dry-run", "--region", "eu-west-1", "--profile", "broken"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: AWS credentials: ") and "Traceback" not in err


def test_a_malformed_key_value_option_is_an_error_line(capsys):
    assert main(["deploy", "train", "--dry-run", "--region", "eu-west-1", "-H", "trees"]) == 1
    assert capsys.readouterr().err == "error: --hyperparameter expects KEY=VALUE, got 'trees'\n"


def test_a_dry_run_says_first_what_it_assumes_and_prints_no_progress(capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert main(["deploy", "--dry-run"]) == 1  # as the real run: no region is no plan
    assert capsys.readouterr().err == "error: no AWS region: pass --region or set AWS_REGION\n"

    assert main(["deploy", "--dry-run", "--region", "eu-west-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[dry-run] plan for deployment 'credit-explainer' in eu-west-1: ")
    assert lines[1].startswith("[dry-run] no AWS credentials: ") and "123456789012" in lines[1]
    # No status seen by nobody: no polled "hh:mm:ss Completed", no endpoint said InService.
    assert not [line for line in lines if re.match(r"\s+\d\d:\d\d:\d\d ", line)]
    claims = [line for line in lines if "InService" in line and " aws " not in f" {line}"]
    assert claims and all(
        "a real run waits here" in line or "[dry-run, not done]" in line for line in claims
    )
