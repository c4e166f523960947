"""deploy-api: the sam commands, the stack's outputs through Stubber, the printed client snippet."""

from __future__ import annotations

import ast
import io
import json
import tarfile
from pathlib import Path

import pytest
from aws_plan import NOW, Plan
from botocore.response import StreamingBody
from conftest import LENDER_SCHEMA
from credit_explainer_tools.deploy import DeployConfig
from credit_explainer_tools.deploy.api import (
    ApiInfo,
    client_snippet,
    sam_commands,
    served_schema,
    stack_outputs,
)
from credit_explainer_tools.deploy.errors import DeployError
from credit_schema import BUILTIN

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"


def test_sam_deploy_passes_the_endpoint_and_tags_the_stack():
    plan = Plan()
    build, deploy = sam_commands(
        plan.aws, DeployConfig(sam_parameters=("ApiKeyRequired=true",)), "credit-explainer"
    )
    assert build[:2] == ["sam", "build"]
    assert deploy[deploy.index("--parameter-overrides") + 1 : deploy.index("--tags")] == [
        "EndpointName=credit-explainer",
        "ApiKeyRequired=true",
    ]
    assert "CAPABILITY_AUTO_EXPAND" in deploy  # the template uses AWS::LanguageExtensions
    assert deploy[deploy.index("--tags") + 1] == "credit-explainer:deployment=credit-explainer"


def test_stack_outputs_and_a_snippet_that_is_valid_python_and_shell():
    plan = Plan()
    plan.ok(
        "cloudformation",
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "credit-explainer",
                    "CreationTime": NOW,
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": "ApiUrl", "OutputValue": URL},
                        {"OutputKey": "ApiKeyId", "OutputValue": "k3y1d"},
                    ],
                }
            ]
        },
        {"StackName": "credit-explainer"},
    )
    info = stack_outputs(plan.aws, DeployConfig())
    plan.verify()
    assert (info.url, info.api_key_id) == (URL, "k3y1d")
    snippet = client_snippet(info, "eu-west-1")
    python = snippet.split("python - <<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    tree = ast.parse(python)
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "CreditExplainerClient"
    )
    assert call.args[0].value == URL
    assert "--api-key k3y1d --include-value" in snippet  # the key is fetched, never printed
    assert f"curl -s -X POST {URL}/score" in snippet


def test_the_dry_run_plan_lists_the_template_s_decision_record_resources():
    from credit_explainer_tools.deploy.api import run_sam
    from credit_explainer_tools.deploy.aws import Aws

    aws = Aws(region="eu-west-1", profile=None, dry_run=True, verbose=False, poll_seconds=0)
    run_sam(aws, DeployConfig(), "credit-explainer")
    [change] = aws.planned
    for resource in (
        "DecisionRecordsStream (AWS::KinesisFirehose::DeliveryStream)",
        "DecisionRecordsBucket (AWS::S3::Bucket)",
        "DecisionRecordsDeliveryRole (AWS::IAM::Role)",
        "ScoringFunction (AWS::Serverless::Function)",
    ):
        assert resource in change


# -- the schema the API ships: the served model's -------------------------------------------------

MODEL_DATA = "s3://bucket/credit-explainer/job/output/model.tar.gz"


def _model_tar(files: dict[str, bytes]) -> StreamingBody:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return StreamingBody(io.BytesIO(raw), len(raw))


def _endpoint_serving(plan: Plan, body: StreamingBody) -> None:
    plan.ok(
        "sagemaker",
        "describe_endpoint",
        {
            "EndpointName": "credit-explainer",
            "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/credit-explainer",
            "EndpointConfigName": "credit-explainer-cfg",
            "EndpointStatus": "InService",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
        {"EndpointName": "credit-explainer"},
    )
    plan.ok(
        "sagemaker",
        "describe_endpoint_config",
        {
            "EndpointConfigName": "credit-explainer-cfg",
            "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/x",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m-1"}],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": "credit-explainer-cfg"},
    )
    plan.ok(
        "sagemaker",
        "describe_model",
        {
            "ModelName": "m-1",
            "ModelArn": "arn:aws:sagemaker:eu-west-1:123456789012:model/m-1",
            "CreationTime": NOW,
            "PrimaryContainer": {"Image": "img", "ModelDataUrl": MODEL_DATA},
        },
        {"ModelName": "m-1"},
    )
    plan.ok(
        "s3",
        "get_object",
        {"Body": body},
        {"Bucket": "bucket", "Key": "credit-explainer/job/output/model.tar.gz"},
    )


def test_the_api_ships_the_schema_in_the_endpoints_model_data(tmp_path: Path) -> None:
    plan = Plan()
    document = json.dumps(LENDER_SCHEMA).encode()
    _endpoint_serving(plan, _model_tar({"model.joblib": b"x", "./schema.json": document}))
    path, schema = served_schema(plan.aws, DeployConfig(), "credit-explainer", tmp_path)
    plan.verify()
    assert path is not None and path.read_bytes() == document
    assert (schema.features, schema.id_columns) == (("housing", "late_payments"), ("application_ref",))
    snippet = client_snippet(ApiInfo(URL, None), "eu-west-1", schema)
    assert '{"housing": "rent", "late_payments": 0}' in snippet


def test_a_model_without_a_schema_gets_the_built_in(tmp_path: Path) -> None:
    plan = Plan()
    _endpoint_serving(plan, _model_tar({"model.joblib": b"x"}))
    path, schema = served_schema(plan.aws, DeployConfig(), "credit-explainer", tmp_path)
    plan.verify()
    assert (path, schema) == (None, BUILTIN)
    snippet = client_snippet(ApiInfo(URL, None), "eu-west-1", schema)
    assert '"RevolvingUtilizationOfUnsecuredLines": 0.3, "age": 45' in snippet  # as before


def test_a_schema_given_is_shipped_without_reading_the_model(tmp_path: Path) -> None:
    plan = Plan()
    given = tmp_path / "mine.json"
    given.write_text(json.dumps(LENDER_SCHEMA))
    path, schema = served_schema(plan.aws, DeployConfig(schema=str(given)), "x", tmp_path)
    plan.verify()  # no request
    assert (path, schema.name) == (given, "a-lender")
    given.write_text(json.dumps({**LENDER_SCHEMA, "features": []}))
    with pytest.raises(DeployError, match=r"--schema: .*features"):
        served_schema(plan.aws, DeployConfig(schema=str(given)), "x", tmp_path)
