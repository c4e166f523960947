"""Rules stated once in credit_schema and read, not re-typed, by every deployment unit."""

from __future__ import annotations

from pathlib import Path

import yaml
from credit_schema import (
    DEFAULT_ENDPOINT_NAME,
    DEFAULT_MAX_APPLICANTS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_VARIANT,
)
from credit_schema.edge import API_GATEWAY_TIMEOUT_SECONDS

ROOT = Path(__file__).resolve().parents[2]


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_the_templates_defaults_are_the_schemas() -> None:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)
    parameters = template["Parameters"]
    assert parameters["MaxBodyBytes"]["Default"] == DEFAULT_MAX_BODY_BYTES
    assert parameters["MaxApplicants"]["Default"] == DEFAULT_MAX_APPLICANTS
    assert parameters["EndpointName"]["Default"] == DEFAULT_ENDPOINT_NAME
    resources = template["Resources"]
    # The function's timeout is API Gateway's integration timeout, which the budget is cut to.
    function = resources["ScoringFunction"]["Properties"]
    timeout = function.get("Timeout", template.get("Globals", {}).get("Function", {}).get("Timeout"))
    assert timeout == API_GATEWAY_TIMEOUT_SECONDS
    variants = resources["SageMakerEndpointConfig"]["Properties"]["ProductionVariants"]
    assert [v["VariantName"] for v in variants] == [DEFAULT_VARIANT]


def test_every_service_defaults_to_the_same_endpoint_name() -> None:
    from credit_explainer.cli import build_parser
    from credit_explainer_tools.deploy.config import DeployConfig
    from scoring_api.config import Settings

    assert Settings().endpoint_name == DEFAULT_ENDPOINT_NAME
    assert DeployConfig.__dataclass_fields__["name"].default == DEFAULT_ENDPOINT_NAME
    assert build_parser().parse_args(["deploy", "--dry-run"]).name == DEFAULT_ENDPOINT_NAME
