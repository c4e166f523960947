"""Least privilege, encryption and authentication, checked mechanically over template.yaml.

cfn-lint with the project's own rules (``.ci/cfn-rules``): the template passes,
and each deliberately bad copy (a wildcard action, a wildcard resource, the API
opened by default, a route opting out of the key, a public function URL, an
unencrypted bucket, ...) fails with the rule that catches it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
RULES = ROOT / ".ci" / "cfn-rules"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

RESOURCES_END = "\nOutputs:"
INVOKE = "                - sagemaker:InvokeEndpoint\n"
ENDPOINT_ARN = 'Resource: !Sub "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${EndpointName}"'


def add_resource(text: str) -> tuple[str, str]:
    return RESOURCES_END, text + RESOURCES_END


#: name -> ([(old, new), ...] edits of template.yaml, the rule that must catch it)
BAD_COPIES: dict[str, tuple[list[tuple[str, str]], str]] = {
    "wildcard-action": ([(INVOKE, "                - sagemaker:*\n")], "E9101"),
    "star-action": ([(INVOKE, '                - "*"\n')], "E9101"),
    "wildcard-resource": ([(ENDPOINT_ARN, 'Resource: "*"')], "E9102"),
    "all-endpoints": (
        [(ENDPOINT_ARN, ENDPOINT_ARN.replace("endpoint/${EndpointName}", "endpoint/*"))],
        "E9102",
    ),
    "api-open-by-default": (
        [
            (
                '  ApiKeyRequired:\n    Type: String\n    Default: "true"',
                '  ApiKeyRequired:\n    Type: String\n    Default: "false"',
            )
        ],
        "E9103",
    ),
    "route-opts-out": (
        [
            (
                "            Path: /score\n            Method: POST\n",
                "            Path: /score\n            Method: POST\n            Auth:\n              ApiKeyRequired: false\n",
            )
        ],
        "E9103",
    ),
    "public-function-url": (
        [
            (
                "      AutoPublishAlias: live\n",
                "      AutoPublishAlias: live\n      FunctionUrlConfig:\n        AuthType: NONE\n",
            )
        ],
        "E9103",
    ),
    "unencrypted-bucket": (
        [add_resource("  DataBucket:\n    Type: AWS::S3::Bucket\n")],
        "E9104",
    ),
    "admin-role": (
        [
            add_resource(
                "  AdminRole:\n    Type: AWS::IAM::Role\n    Properties:\n"
                "      AssumeRolePolicyDocument:\n        Version: '2012-10-17'\n        Statement:\n"
                "          - Effect: Allow\n            Principal: { Service: sagemaker.amazonaws.com }\n"
                "            Action: sts:AssumeRole\n"
                "      ManagedPolicyArns: [arn:aws:iam::aws:policy/AmazonSageMakerFullAccess]\n"
            )
        ],
        "E9102",
    ),
    "endpoint-config-without-kms": (
        [
            add_resource(
                "  EndpointConfig:\n    Type: AWS::SageMaker::EndpointConfig\n    Properties:\n"
                "      ProductionVariants:\n        - ModelName: m\n          VariantName: AllTraffic\n"
                "          InitialInstanceCount: 1\n          InstanceType: ml.m5.large\n"
            )
        ],
        "E9104",
    ),
}


def lint(paths: list[Path]) -> dict[str, set[str]]:
    """cfn-lint with our rules -> {template file name: rule ids that fired}."""
    proc = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--append-rules", str(RULES), "--", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode in (0, 2, 4, 6, 8, 10, 12, 14), proc.stderr  # not a crash
    found: dict[str, set[str]] = {p.name: set() for p in paths}
    for match in json.loads(proc.stdout or "[]"):
        found[Path(match["Filename"]).name].add(match["Rule"]["Id"])
    return found


def test_the_template_passes_and_every_bad_copy_fails_with_its_rule(tmp_path: Path) -> None:
    text = TEMPLATE.read_text()
    copies = []
    for name, (edits, _) in BAD_COPIES.items():
        bad = text
        for old, new in edits:
            assert bad.count(old) == 1, f"{name}: the template changed, update this edit"
            bad = bad.replace(old, new)
        path = tmp_path / f"{name}.yaml"
        path.write_text(bad)
        copies.append(path)
    found = lint([TEMPLATE, *copies])
    assert found.pop("template.yaml") == set(), "template.yaml must pass cfn-lint and our rules"
    for name, (_, rule) in BAD_COPIES.items():
        assert rule in found[f"{name}.yaml"], (
            f"{name}: {rule} did not fire ({found[name + '.yaml']})"
        )
