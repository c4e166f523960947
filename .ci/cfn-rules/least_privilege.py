"""cfn-lint rules for credit-explainer's templates: least privilege, encryption, no anonymous access.

Run with ``cfn-lint template.yaml --append-rules .ci/cfn-rules`` (``make lint``
does; tests/unit/test_template_policy.py proves each rule fails a bad copy).
They read the template as written (SAM resources included, intrinsic functions
resolved against the parameters' defaults and the conditions), so they check
what a plain ``sam deploy`` creates.

* E9101 an IAM statement allows a wildcard action (``*``, ``svc:*``, ``svc:Get*``) or
  uses NotAction;
* E9102 an IAM statement allows a wildcard resource (``*``, ``arn:...:*``,
  ``arn:...:endpoint/*``) or uses NotResource; or a broad AWS managed policy is attached;
* E9103 something is reachable without authentication by default: an API whose
  methods need neither an API key nor an authorizer, a route opting out, a Lambda
  function URL or permission open to anyone;
* E9104 data at rest without encryption (S3 bucket without default encryption or
  public access block, SNS/SQS without KMS, SageMaker endpoint config without a KMS
  key, an API cache without encryption).

A deliberate exception is written on the resource, where a reviewer sees it::

    Metadata:
      cfn-lint:
        config:
          ignore_checks: [E9104]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch

_BROAD_MANAGED = re.compile(r"(AdministratorAccess|PowerUserAccess|FullAccess)$")
_WILDCARD_RESOURCE_ID = re.compile(r"^(\*|[A-Za-z0-9-]+/\*)$")


# -- reading the template as deployed with default parameters -----------------------------


class _Values:
    def __init__(self, template: dict[str, Any]) -> None:
        self.params = {
            name: p.get("Default") for name, p in (template.get("Parameters") or {}).items()
        }
        self.conditions = template.get("Conditions") or {}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions.get(name, False)))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref", "Condition")):
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            if arg in self.params:
                return self.resolve(self.params[arg])
            return "AWS::NoValue" if arg == "AWS::NoValue" else value
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            a, b = (self.resolve(x) for x in arg)
            return str(a).lower() == str(b).lower()
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(x) for x in arg)
        if key == "Fn::Or":
            return any(self.resolve(x) for x in arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
        return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _resources(cfn: Any) -> Iterator[tuple[str, str, dict[str, Any], _Values]]:
    values = _Values(cfn.template)
    for name, res in (cfn.template.get("Resources") or {}).items():
        if not isinstance(res, dict):
            continue
        if "Condition" in res and not values.condition(res["Condition"]):
            continue  # not created with the default parameters
        yield name, str(res.get("Type", "")), res.get("Properties") or {}, values


def _statements(
    rtype: str, props: dict[str, Any], values: _Values
) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """(path, statement) for every IAM statement a resource defines."""
    docs: list[tuple[list[str], Any]] = []
    if rtype in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for i, policy in enumerate(_as_list(props.get("Policies"))):
            if isinstance(policy, dict):
                docs.append(
                    (
                        ["Properties", "Policies", str(i), "PolicyDocument"],
                        policy.get("PolicyDocument"),
                    )
                )
    elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        docs.append((["Properties", "PolicyDocument"], props.get("PolicyDocument")))
    elif rtype in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for i, policy in enumerate(_as_list(props.get("Policies"))):
            if isinstance(policy, dict) and "Statement" in policy:
                docs.append((["Properties", "Policies", str(i)], policy))
    for path, doc in docs:
        doc = values.resolve(doc)
        if not isinstance(doc, dict):
            continue
        for j, st in enumerate(_as_list(doc.get("Statement"))):
            if isinstance(st, dict) and values.resolve(st.get("Effect")) == "Allow":
                yield [*path, "Statement", str(j)], st


class _Rule(CloudFormationLintRule):
    tags = ["security", "credit-explainer"]  # noqa: RUF012 - cfn-lint's own attribute

    def _match(self, path: list[str], message: str) -> RuleMatch:
        return RuleMatch(path, message)


class WildcardAction(_Rule):
    id = "E9101"
    shortdesc = "IAM wildcard action"
    description = "IAM statements must name their actions: no '*', 'service:*' or NotAction"
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html"

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, rtype, props, values in _resources(cfn):
            for path, st in _statements(rtype, props, values):
                full = ["Resources", name, *path]
                if "NotAction" in st:
                    matches.append(
                        self._match(full, f"{name}: NotAction allows every other action")
                    )
                for action in _as_list(values.resolve(st.get("Action"))):
                    if isinstance(action, str) and "*" in action:
                        matches.append(
                            self._match([*full, "Action"], f"{name}: wildcard action {action!r}")
                        )
        return matches


class WildcardResource(_Rule):
    id = "E9102"
    shortdesc = "IAM wildcard resource"
    description = "IAM statements must name their resources; no broad AWS managed policies"
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html"

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, rtype, props, values in _resources(cfn):
            for path, st in _statements(rtype, props, values):
                full = ["Resources", name, *path]
                if "NotResource" in st:
                    matches.append(
                        self._match(full, f"{name}: NotResource allows every other resource")
                    )
                for resource in _as_list(values.resolve(st.get("Resource"))):
                    if isinstance(resource, str) and _wildcard_resource(resource):
                        matches.append(
                            self._match(
                                [*full, "Resource"], f"{name}: wildcard resource {resource!r}"
                            )
                        )
            for key in ("Policies", "ManagedPolicyArns"):
                for i, policy in enumerate(_as_list(values.resolve(props.get(key)))):
                    if isinstance(policy, str) and _BROAD_MANAGED.search(policy):
                        matches.append(
                            self._match(
                                ["Resources", name, "Properties", key, str(i)],
                                f"{name}: broad managed policy {policy!r}",
                            )
                        )
        return matches


def _wildcard_resource(resource: str) -> bool:
    if resource.strip() == "*":
        return True
    parts = re.sub(r"\$\{[^}]*\}", "x", resource).split(":", 5)  # ${AWS::Region} etc.
    return len(parts) == 6 and bool(_WILDCARD_RESOURCE_ID.match(parts[5]))


class AnonymousAccess(_Rule):
    id = "E9103"
    shortdesc = "Reachable without authentication"
    description = (
        "APIs, routes, function URLs and Lambda permissions must require authentication by default"
    )
    source_url = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-usage-plans.html"

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        apis: dict[str, bool] = {}  # Serverless::Api -> methods need auth by default
        resources = list(_resources(cfn))
        for name, rtype, props, values in resources:
            if rtype == "AWS::Serverless::Api":
                auth = values.resolve(props.get("Auth")) or {}
                protected = _truthy(auth.get("ApiKeyRequired")) or bool(
                    auth.get("DefaultAuthorizer") not in (None, "NONE", "AWS::NoValue")
                )
                apis[name] = protected
                if not protected:
                    matches.append(
                        self._match(
                            ["Resources", name, "Properties", "Auth"],
                            f"{name}: methods need neither an API key nor an authorizer by default",
                        )
                    )
            elif rtype == "AWS::ApiGateway::Method":
                kind = str(values.resolve(props.get("AuthorizationType", "NONE"))).upper()
                if kind == "NONE" and not _truthy(values.resolve(props.get("ApiKeyRequired"))):
                    if str(values.resolve(props.get("HttpMethod"))).upper() != "OPTIONS":
                        matches.append(
                            self._match(
                                ["Resources", name, "Properties"],
                                f"{name}: method needs neither an API key nor an authorizer",
                            )
                        )
            elif rtype == "AWS::Lambda::Url":
                if str(values.resolve(props.get("AuthType"))).upper() == "NONE":
                    matches.append(
                        self._match(
                            ["Resources", name, "Properties", "AuthType"],
                            f"{name}: public function URL",
                        )
                    )
            elif rtype == "AWS::Lambda::Permission":
                if values.resolve(props.get("Principal")) == "*":
                    matches.append(
                        self._match(
                            ["Resources", name, "Properties", "Principal"],
                            f"{name}: invocable by anyone",
                        )
                    )
        for name, rtype, props, values in resources:
            if rtype != "AWS::Serverless::Function":
                continue
            url = values.resolve(props.get("FunctionUrlConfig")) or {}
            if str(url.get("AuthType", "")).upper() == "NONE":
                matches.append(
                    self._match(
                        ["Resources", name, "Properties", "FunctionUrlConfig"],
                        f"{name}: public function URL",
                    )
                )
            for event_name, event in (values.resolve(props.get("Events")) or {}).items():
                if not isinstance(event, dict) or event.get("Type") != "Api":
                    continue
                ev = event.get("Properties") or {}
                api = ev.get("RestApiId")
                api_name = api.get("Ref") if isinstance(api, dict) else None
                auth = ev.get("Auth") or {}
                opened = "ApiKeyRequired" in auth and not _truthy(auth["ApiKeyRequired"])
                opened |= auth.get("Authorizer") == "NONE" and not _truthy(
                    auth.get("ApiKeyRequired")
                )
                implicit = api_name is None  # SAM's implicit API: open unless the route says
                if opened or (implicit and not _truthy(auth.get("ApiKeyRequired"))):
                    if opened or auth.get("Authorizer") in (None, "NONE"):
                        matches.append(
                            self._match(
                                ["Resources", name, "Properties", "Events", event_name],
                                f"{name}: route {event_name} is reachable without an API key or authorizer",
                            )
                        )
        return matches


class MissingEncryption(_Rule):
    id = "E9104"
    shortdesc = "Data at rest without encryption"
    description = "Buckets, topics, queues, SageMaker volumes and API caches must be encrypted"
    source_url = "https://docs.aws.amazon.com/wellarchitected/latest/security-pillar/protecting-data-at-rest.html"

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, rtype, props, values in _resources(cfn):
            path = ["Resources", name, "Properties"]
            problem = None
            if rtype == "AWS::S3::Bucket":
                block = values.resolve(props.get("PublicAccessBlockConfiguration")) or {}
                if not props.get("BucketEncryption"):
                    problem = "S3 bucket without default encryption (BucketEncryption)"
                elif not all(
                    _truthy(block.get(k))
                    for k in (
                        "BlockPublicAcls",
                        "BlockPublicPolicy",
                        "IgnorePublicAcls",
                        "RestrictPublicBuckets",
                    )
                ):
                    problem = "S3 bucket without a full PublicAccessBlockConfiguration"
            elif rtype == "AWS::SNS::Topic" and not props.get("KmsMasterKeyId"):
                problem = "SNS topic without KmsMasterKeyId"
            elif rtype == "AWS::SQS::Queue" and not (
                props.get("KmsMasterKeyId")
                or _truthy(values.resolve(props.get("SqsManagedSseEnabled")))
            ):
                problem = "SQS queue without encryption"
            elif rtype == "AWS::SageMaker::EndpointConfig" and values.resolve(
                props.get("KmsKeyId")
            ) in (
                None,
                "",
                "AWS::NoValue",
            ):
                problem = "SageMaker endpoint configuration without KmsKeyId"
            elif rtype in ("AWS::Serverless::Api", "AWS::ApiGateway::Stage"):
                for setting in _as_list(values.resolve(props.get("MethodSettings"))):
                    if (
                        isinstance(setting, dict)
                        and _truthy(setting.get("CachingEnabled"))
                        and not _truthy(setting.get("CacheDataEncrypted"))
                    ):
                        problem = "API cache without CacheDataEncrypted"
            if problem:
                matches.append(self._match(path, f"{name}: {problem}"))
        return matches
