"""template.yaml's optional SageMaker part: cfn-lint clean as shipped and with the SageMaker
resources enabled, and its execution role least-privilege (its bucket prefix, its ECR repository)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode.cfn_yaml import loads
from credit_explainer_tools.deploy import DeployConfig
from credit_explainer_tools.deploy.hosting import data_capture_config
from credit_explainer_tools.deploy.training import execution_role_policy
from credit_schema.content_types import CAPTURE_JSON_CONTENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "template.yaml").read_text()
MODEL_DATA = (
    "s3://credit-explainer-111122223333-eu-west-1/credit-explainer/models/j/output/model.tar.gz"
)
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/credit-explainer:src-0123456789abcdef"


def enabled_template() -> str:
    """template.yaml with DeploySageMaker=true and real-looking model parameters as defaults,
    and without the one cfn-lint exception the empty defaults need."""
    text = TEMPLATE
    for name, value in (
        ("DeploySageMaker", '"true"'),
        ("ModelDataUrl", MODEL_DATA),
        ("ModelImage", IMAGE),
    ):
        text, count = re.subn(
            rf"(\n  {name}:\n    Type: String\n    Default: )[^\n]*", rf"\g<1>{value}", text
        )
        assert count == 1, name
    text, count = re.subn(
        r"\n    Metadata:\n      cfn-lint:\n        config:\n(          #[^\n]*\n)*          ignore_checks: \[W1031\]",
        "",
        text,
    )
    assert count == 1
    return text


@pytest.mark.parametrize("variant", ["as shipped", "SageMaker enabled"])
def test_cfn_lint_clean(variant):
    text = TEMPLATE if variant == "as shipped" else enabled_template()
    # errors and warnings in the default region, as the cfn-lint command reports them
    matches = [
        m for m in lint(text, config=ManualArgs(regions=["us-east-1"])) if m.rule.id[0] in "EW"
    ]
    assert [str(m) for m in matches] == []


def test_the_enabled_variant_really_has_the_sagemaker_resources():
    template = loads(enabled_template())
    assert template["Parameters"]["DeploySageMaker"]["Default"] == "true"
    kinds = {
        r["Type"]
        for r in template["Resources"].values()
        if r.get("Condition") in {"CreateSageMaker", "CreateScaling", "CreateCapture"}
    }
    assert kinds == {
        "AWS::IAM::Role",
        "AWS::S3::Bucket",
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    }
    # the endpoint the stack owns is the one the Lambda invokes
    assert template["Resources"]["SageMakerEndpoint"]["Properties"]["EndpointName"] == {
        "Ref": "EndpointName"
    }


def _statements(policy_document) -> dict:
    """Sid -> statement; a conditional statement (``!If [cond, statement, NoValue]``) as its own."""
    found = (s["Fn::If"][1] if "Fn::If" in s else s for s in policy_document["Statement"])
    return {s["Sid"]: s for s in found}


def test_template_execution_role_is_least_privilege():
    role = loads(TEMPLATE)["Resources"]["SageMakerExecutionRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"
    }
    statements = _statements(role["Policies"][0]["PolicyDocument"])
    assert statements["ReadOwnModelPrefix"]["Action"] == "s3:GetObject"
    assert (
        "${Bucket}/${ModelDataPrefix}/*"
        in statements["ReadOwnModelPrefix"]["Resource"]["Fn::Sub"][0]
    )
    assert ":repository/${Repository}" in statements["PullOwnImage"]["Resource"]["Fn::Sub"][0]
    stars = [sid for sid, s in statements.items() if s["Resource"] == "*"]
    assert stars == ["EcrLogin"]  # GetAuthorizationToken has no resource-level permissions
    assert statements["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"


def test_cli_execution_role_is_least_privilege():
    policy = execution_role_policy(
        DeployConfig(), bucket="b", account="111122223333", region="eu-west-1"
    )
    statements = _statements(policy)
    assert statements["ReadWriteOwnPrefix"]["Resource"] == "arn:aws:s3:::b/credit-explainer/*"
    assert statements["ListOwnPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["credit-explainer/*"]}
    }
    assert (
        statements["PullOwnImage"]["Resource"]
        == "arn:aws:ecr:eu-west-1:111122223333:repository/credit-explainer"
    )
    # Neither has resource-level permissions; metrics are limited to SageMaker's namespaces.
    assert [sid for sid, s in statements.items() if s["Resource"] == "*"] == [
        "EcrLogin",
        "PutSageMakerMetrics",
    ]
    assert statements["PutSageMakerMetrics"]["Action"] == "cloudwatch:PutMetricData"
    assert statements["PutSageMakerMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }
    assert "ReadGivenS3" not in statements  # nothing given outside the prefix
    actions = [
        a
        for s in statements.values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert not [a for a in actions if "*" in a]


def test_cli_execution_role_may_read_the_s3_uris_it_was_given():
    cfg = DeployConfig(data="s3://data-lake/credit/train/", model_data="s3://models/m.tar.gz")
    inside = DeployConfig(model_data="s3://b/credit-explainer/models/j/output/model.tar.gz")
    own = execution_role_policy(inside, bucket="b", account="111122223333", region="eu-west-1")
    assert "ReadGivenS3" not in _statements(own)  # the prefix is readable already
    statements = _statements(
        execution_role_policy(cfg, bucket="b", account="111122223333", region="eu-west-1")
    )
    assert statements["ReadGivenS3"]["Action"] == ["s3:GetObject"]
    assert statements["ReadGivenS3"]["Resource"] == [
        "arn:aws:s3:::data-lake/credit/train/*",
        "arn:aws:s3:::models/m.tar.gz*",
    ]
    assert statements["ReadGivenS3List0"]["Resource"] == "arn:aws:s3:::data-lake"
    assert statements["ReadGivenS3List0"]["Condition"] == {
        "StringLike": {"s3:prefix": ["credit/train/*"]}
    }
    assert statements["ReadGivenS3List1"]["Resource"] == "arn:aws:s3:::models"


def test_template_model_is_isolated_except_on_serverless_inference():
    # Serverless Inference does not support network isolation (AWS: serverless endpoints,
    # feature exclusions); the CLI's CreateModel follows the same rule (test_deploy_hosting).
    model = loads(TEMPLATE)["Resources"]["SageMakerModel"]["Properties"]
    assert model["EnableNetworkIsolation"] == {
        "Fn::If": ["UseServerless", {"Ref": "AWS::NoValue"}, True]
    }


def test_template_captures_to_a_private_encrypted_bucket_kept_25_months():
    template = loads(TEMPLATE)
    params, resources = template["Parameters"], template["Resources"]
    assert params["CapturePercent"]["Default"] == 100
    assert params["CaptureRetentionDays"]["Default"] == 762  # 25 months
    assert template["Conditions"]["CreateCapture"] == {
        "Fn::And": [
            {"Condition": "CreateSageMaker"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "CapturePercent"}, 0]}]},
        ]
    }
    bucket = resources["CaptureBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "CaptureRetentionDays"}
    assert rule["Prefix"] == {"Fn::Sub": "${CapturePrefix}/"}
    config = resources["SageMakerEndpointConfig"]["Properties"]["DataCaptureConfig"]["Fn::If"]
    assert config[0] == "CreateCapture" and config[2] == {"Ref": "AWS::NoValue"}
    capture = config[1]
    assert capture["DestinationS3Uri"] == {"Fn::Sub": "s3://${CaptureBucket}/${CapturePrefix}"}
    assert capture["InitialSamplingPercentage"] == {"Ref": "CapturePercent"}
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    # The same capture settings as `deploy create-endpoint --capture` (one list of JSON types).
    cli = data_capture_config(DeployConfig(capture="s3://b/p"))
    assert capture["CaptureContentTypeHeader"] == cli["CaptureContentTypeHeader"]
    assert cli["CaptureContentTypeHeader"]["JsonContentTypes"] == list(CAPTURE_JSON_CONTENT_TYPES)
    role = resources["SageMakerExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (write,) = [
        s["Fn::If"][1]
        for s in role["Statement"]
        if "Fn::If" in s and s["Fn::If"][0] == "CreateCapture"
    ]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${CaptureBucket}/${CapturePrefix}/*"
    }


def test_cli_execution_role_may_write_its_capture_prefix_only():
    outside = DeployConfig(capture="s3://audit/decisions")
    statements = _statements(
        execution_role_policy(outside, bucket="b", account="111122223333", region="eu-west-1")
    )
    assert statements["WriteCapture"]["Action"] == ["s3:PutObject"]
    assert statements["WriteCapture"]["Resource"] == ["arn:aws:s3:::audit/decisions*"]
    inside = DeployConfig(capture="s3://b/credit-explainer/capture")
    own = execution_role_policy(inside, bucket="b", account="111122223333", region="eu-west-1")
    assert "WriteCapture" not in _statements(own)  # the own prefix is writable already


def test_monitoring_alarms_read_what_monitor_publishes_with_its_thresholds() -> None:
    from credit_explainer_tools.monitor import NAMESPACE, metric_data
    from credit_model.drift import Thresholds

    template = loads(TEMPLATE)
    report = {
        "window": {"last": "2026-12-01T00:00:00Z"},
        "applicants": 3,
        "score": {"psi": 0.3},
        "attribution": {"ndcg": 0.8},
        "alerts": [],
        "features": [{"feature": "age", "psi": 0.2, "out_of_range_share": 0.0}],
    }
    published = {d["MetricName"]: d for d in metric_data(report, "ep")}
    alarms = {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert len(alarms) == 3
    for alarm in alarms.values():
        assert alarm["Namespace"] == NAMESPACE
        dims = published[alarm["MetricName"]]["Dimensions"]
        assert [d["Name"] for d in alarm["Dimensions"]] == [d["Name"] for d in dims]
        assert alarm["TreatMissingData"] == "notBreaching"
    parameters = template["Parameters"]
    defaults = Thresholds()
    assert float(parameters["MonitorPsiAlarm"]["Default"]) == defaults.psi_act
    assert float(parameters["MonitorNdcgAlarm"]["Default"]) == defaults.ndcg_watch


def test_decision_records_stream_bucket_and_the_function_s_one_permission_on_them():
    from cfnlint.decode.cfn_yaml import loads

    template = loads((ROOT / "template.yaml").read_text())
    resources = template["Resources"]
    function = resources["ScoringFunction"]["Properties"]
    assert function["Environment"]["Variables"]["RECORDS_STREAM"] == {
        "Ref": "DecisionRecordsStream"
    }
    statements = [s for p in function["Policies"] for s in p["Statement"]]
    firehose = [s for s in statements if "firehose" in str(s["Action"])]
    assert firehose == [
        {"Sid": "PutDecisionRecords", "Effect": "Allow", "Action": "firehose:PutRecord",
         "Resource": {"Fn::GetAtt": ["DecisionRecordsStream", "Arn"]}}
    ]  # fmt: skip
    bucket = resources["DecisionRecordsBucket"]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    [rule] = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "RecordRetentionDays"}
    assert template["Parameters"]["RecordRetentionDays"]["Default"] == 762  # 25 months
    lock = props["ObjectLockConfiguration"]["Fn::If"][1]["Rule"]["DefaultRetention"]
    assert lock == {"Mode": "COMPLIANCE", "Days": {"Ref": "RecordRetentionDays"}}
    stream = resources["DecisionRecordsStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert (
        stream["Prefix"]
        == "records/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
    )


def test_the_records_glue_table_is_the_record_format_with_hours_projected():
    from cfnlint.decode.cfn_yaml import loads
    from credit_schema.records import HOUR_FORMAT, DecisionRecord

    table = loads((ROOT / "template.yaml").read_text())["Resources"]["DecisionRecordsTable"]
    given = table["Properties"]["TableInput"]
    columns = [c["Name"] for c in given["StorageDescriptor"]["Columns"]]
    assert columns == list(DecisionRecord.model_fields)  # the one format, column for field
    params = given["Parameters"]
    assert params["projection.enabled"] == "true" and params["projection.hour.type"] == "date"
    # Java's yyyy/MM/dd/HH is the records' own %Y/%m/%d/%H
    java = HOUR_FORMAT.replace("%Y", "yyyy").replace("%m", "MM").replace("%d", "dd")
    assert params["projection.hour.format"] == java.replace("%H", "HH")
    assert params["storage.location.template"]["Fn::Sub"].endswith("/records/${!hour}/")
