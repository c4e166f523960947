"""deploy-api: the sam commands, the stack's outputs through Stubber, the printed client snippet."""

from __future__ import annotations

import ast

from aws_plan import NOW, Plan
from credit_explainer.deploy import DeployConfig
from credit_explainer.deploy.api import client_snippet, sam_commands, stack_outputs

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
    from credit_explainer.deploy.api import run_sam
    from credit_explainer.deploy.aws import Aws

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
