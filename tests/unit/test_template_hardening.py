"""template.yaml, issue 20: the image repository ARN for a digest, the function's concurrency cap."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = loads((ROOT / "template.yaml").read_text())
ACCOUNT, REGION = "111122223333", "eu-west-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def evaluate(node: Any, params: dict[str, str]) -> Any:
    """The intrinsic functions the role's ARN uses, as CloudFormation evaluates them."""
    if isinstance(node, dict) and len(node) == 1:
        ((name, arg),) = node.items()
        if name == "Ref":
            return {"AWS::Partition": "aws", "AWS::Region": REGION}.get(arg, params.get(arg))
        if name == "Fn::Split":
            return str(evaluate(arg[1], params)).split(arg[0])
        if name == "Fn::Select":
            return evaluate(arg[1], params)[int(arg[0])]
        if name == "Fn::Sub":
            text, names = arg if isinstance(arg, list) else (arg, {})
            values = {k: evaluate(v, params) for k, v in names.items()}
            return re.sub(
                r"\$\{([^}]+)\}",
                lambda m: str(values.get(m[1]) or evaluate({"Ref": m[1]}, params)),
                text,
            )
    return node


def pull_resource(image: str) -> str:
    role = TEMPLATE["Resources"]["SageMakerExecutionRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    # (a statement under a condition, such as capture's, is an !If here: not a plain dict)
    (statement,) = [s for s in statements if isinstance(s, dict) and s.get("Sid") == "PullOwnImage"]
    return str(evaluate(statement["Resource"], {"ModelImage": image}))


@pytest.mark.parametrize(
    "image",
    [
        f"{HOST}/credit-explainer:src-0123456789abcdef",
        f"{HOST}/credit-explainer@{DIGEST}",
        f"{HOST}/team/credit-explainer@{DIGEST}",
    ],
)
def test_the_image_pull_permission_names_the_repository_for_a_tag_or_a_digest(image: str) -> None:
    repository = "team/credit-explainer" if "/team/" in image else "credit-explainer"
    assert pull_resource(image) == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repository}"
    pattern = TEMPLATE["Parameters"]["ModelImage"]["AllowedPattern"]
    assert re.fullmatch(pattern, image)


@pytest.mark.parametrize(
    "image", [f"{HOST}/credit-explainer", f"{HOST}/credit-explainer@sha256:abc", "nginx:latest"]
)
def test_an_image_without_tag_or_full_digest_is_not_allowed(image: str) -> None:
    assert not re.fullmatch(TEMPLATE["Parameters"]["ModelImage"]["AllowedPattern"], image)


def test_the_function_has_reserved_concurrency_by_default() -> None:
    parameter = TEMPLATE["Parameters"]["ReservedConcurrency"]
    assert parameter["Default"] > 0
    function = TEMPLATE["Resources"]["ScoringFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert TEMPLATE["Conditions"]["ReserveConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, "0"]}]
    }
