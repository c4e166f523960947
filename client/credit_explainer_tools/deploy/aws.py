"""One door to AWS: boto3 clients, the printed plan, ``--dry-run``, error conversion.

Every AWS request of deploy, batch and destroy goes through :meth:`Aws.call`, which
prints the step (``service Operation {parameters}``), makes the request and converts
botocore's errors into :mod:`credit_explainer_tools.deploy.errors` at this one boundary.

``--dry-run`` is a plan. It uses the same real botocore clients, so every request
is still validated against the service model; with credentials the reads
(Describe/List/Get/Head) are really made, and a ``before-call`` hook answers every
write (the way botocore's ``Stubber`` does) instead of sending it, listing it in
the plan (:attr:`Aws.planned`). Without credentials nothing is sent at all: the
hook answers the reads too, as a fresh account would (nothing exists yet; jobs
complete; endpoints come InService), and the plan says it cannot see the account.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

from .errors import AwsCallError, DeployError, ThrottledError

#: Tag put on every resource deploy creates; destroy deletes only what carries it.
TAG_KEY: Final = "credit-explainer:deployment"
DRY_RUN_ACCOUNT: Final = "123456789012"

_THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)

Response = dict[str, Any]

#: Operations that only read: made for real by a dry run that has credentials.
_READ_PREFIXES: Final = ("Describe", "List", "Get", "Head")
#: Reads about what the plan itself would create: answered by the plan, not the account.
_PLANNED_READS: Final = {
    "DescribeTrainingJob": "TrainingJobName",
    "DescribeTransformJob": "TransformJobName",
    "DescribeEndpoint": "EndpointName",
}


def is_read(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


def _open(session: Any, profile: str | None, region: str | None) -> tuple[Any, bool]:
    """The session (made for ``profile`` unless given) and whether it finds credentials;
    a missing profile or a failing SSO login is an error line, not a traceback."""
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        if session is None:
            session = boto3.Session(profile_name=profile, region_name=region)
        return session, session.get_credentials() is not None
    except ProfileNotFound as exc:
        raise DeployError(f"{exc}: pass an existing --profile or fix AWS_PROFILE") from exc
    except BotoCoreError as exc:
        raise DeployError(f"AWS credentials: {exc}") from exc


def tags(name: str) -> list[dict[str, str]]:
    """The ``[{"Key", "Value"}]`` tag list put on every resource of deployment ``name``."""
    return [{"Key": TAG_KEY, "Value": name}]


def has_tag(tag_list: list[Mapping[str, str]], name: str) -> bool:
    """True when a tag list (any casing of Key/Value) marks the resource as ``name``'s."""
    for tag in tag_list:
        key = tag.get("Key", tag.get("key"))
        value = tag.get("Value", tag.get("value"))
        if key == TAG_KEY and value == name:
            return True
    return False


class Aws:
    """boto3 clients for one region, with printing, dry-run and error conversion.

    ``session`` is a ``boto3.Session`` (tests pass one with dummy credentials and
    attach ``botocore.stub.Stubber`` to :meth:`client`). ``poll_seconds`` is the
    interval between status polls (0 in tests).
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        session: Any = None,
        dry_run: bool = False,
        verbose: bool = False,
        poll_seconds: float = 30.0,
        out: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import boto3

        #: False without credentials: a dry run then cannot read the account.
        session, self.sees_account = _open(session, profile, region)
        if dry_run and not self.sees_account:
            session = boto3.Session(
                aws_access_key_id="dry-run",
                aws_secret_access_key="dry-run",  # noqa: S106 - placeholder, never sent
                region_name=region or session.region_name,  # none: refused below, as a real run
            )
        self.session = session
        self.region: str = session.region_name or ""
        if not self.region:
            raise DeployError("no AWS region: pass --region or set AWS_REGION")
        self.dry_run = dry_run
        self.verbose = verbose or dry_run
        self.poll_seconds = poll_seconds
        self.out = out if out is not None else sys.stdout
        self.sleep = sleep
        self._clients: dict[str, Any] = {}
        self._dry = _DryRunResponder(self.region, self.sees_account) if dry_run else None
        self._account: str | None = None
        #: The writes a dry run skipped, one line each: the plan.
        self.planned: list[str] = []

    # ----------------------------------------------------------------- clients ----
    def client(self, service: str, region: str | None = None) -> Any:
        """The (cached) botocore client for ``service``, standard retries, our user agent."""
        key = f"{service}@{region or self.region}"
        if key not in self._clients:
            from botocore.config import Config
            from credit_explainer import __version__

            # AWS_MAX_ATTEMPTS as botocore reads it, else 8 (SageMaker throttles eagerly).
            attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or 8)
            config = Config(
                retries={"mode": "standard", "max_attempts": attempts},
                user_agent_extra=f"credit-explainer/{__version__}",
                connect_timeout=10,
                read_timeout=60,
            )
            client = self.session.client(service, region_name=region or self.region, config=config)
            if self._dry is not None:
                client.meta.events.register("before-parameter-build.*.*", self._dry.remember)
                client.meta.events.register("before-call.*.*", self._dry.answer)
            self._clients[key] = client
        return self._clients[key]

    @property
    def account(self) -> str:
        """The caller's account id (``sts GetCallerIdentity``, once)."""
        if self._account is None:
            self._account = str(self.call("sts", "get_caller_identity")["Account"])
        return self._account

    @property
    def partition(self) -> str:
        from botocore.session import get_session

        return str(get_session().get_partition_for_region(self.region))

    # ------------------------------------------------------------------ output ----
    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def step(self, title: str) -> None:
        prefix = "[dry-run] " if self.dry_run else ""
        self.say(f"\n==> {prefix}{title}")

    def announce(self, subject: str) -> None:
        """A dry run's first lines: what it plans, and everything it assumes to do so."""
        self.say(
            f"[dry-run] plan for {subject} in {self.region}: every AWS request is validated and "
            "printed; writes are not sent"
        )
        if not self.sees_account:
            self.say(
                "[dry-run] no AWS credentials: this plan cannot see the account; it assumes "
                f"account {DRY_RUN_ACCOUNT}, where nothing exists yet, and that every job and "
                "endpoint it creates succeeds"
            )

    def outcome(self, message: str) -> None:
        """A result line; a dry run marks it as what a real run would end with."""
        self.say(f"    {'[dry-run, not done] ' if self.dry_run else ''}{message}")

    def plan(self, change: str) -> None:
        """Record a change a dry run does not make (AWS writes are recorded by :meth:`call`)."""
        self.planned.append(change)

    def print_plan(self) -> None:
        """The end of a dry run: every change it would have made, and that none was."""
        seen = "" if self.sees_account else f", assuming a fresh account {DRY_RUN_ACCOUNT}"
        self.step(f"Plan: {len(self.planned)} change(s), none made{seen}")
        for change in self.planned:
            self.say(f"    {change}")

    # ------------------------------------------------------------------- calls ----
    def call(
        self,
        service: str,
        method: str,
        *,
        quiet: bool = False,
        region: str | None = None,
        **params: Any,
    ) -> Response:
        """Make one AWS request (``method`` in boto3's snake_case), print it, convert errors."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(service, region)
        operation = client.meta.method_to_api_mapping.get(method, method)
        if self.verbose and not quiet:
            shown = json.dumps(params, default=_shown) if params else ""
            where = f" --region {region}" if region and region != self.region else ""
            self.say(f"    aws {service} {operation}{where} {shown}".rstrip())
        if self.dry_run and not is_read(operation):
            self.plan(f"{service} {operation}{_names(params)}")
        try:
            response: Response = getattr(client, method)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            message = str(error.get("Message", exc))
            cls = ThrottledError if code in _THROTTLING_CODES else AwsCallError
            raise cls(service, operation, code, message) from exc
        except BotoCoreError as exc:
            raise AwsCallError(service, operation, type(exc).__name__, str(exc)) from exc
        response.pop("ResponseMetadata", None)
        return response

    def exists(
        self, service: str, method: str, missing: tuple[str, ...], **params: Any
    ) -> Response | None:
        """``call`` that answers None when the error code says the resource does not exist."""
        try:
            return self.call(service, method, **params)
        except ThrottledError:
            raise
        except AwsCallError as exc:
            if exc.code in missing:
                return None
            if exc.code == "ValidationException" and "Could not find" in str(exc):
                return None  # SageMaker's way of saying "no such resource"
            raise

    def poll(
        self,
        service: str,
        method: str,
        *,
        status_key: str,
        done: frozenset[str],
        describe: Callable[[Response], str] | None = None,
        **params: Any,
    ) -> Response:
        """Poll a Describe call until ``status_key`` is in ``done``; print each change.

        A throttled poll is not fatal: the next one is tried after the interval.
        """
        last = ""
        if self.dry_run:  # a plan shows the request, never a status nobody saw
            response = self.call(service, method, **params)
            self.say(
                f"    [dry-run] a real run waits here until {status_key} is one of "
                f"{', '.join(sorted(done))}"
            )
            return response
        while True:
            try:
                response = self.call(service, method, quiet=bool(last), **params)
            except ThrottledError:
                self.say("    (throttled while polling; trying again)")
                self.sleep(self.poll_seconds)
                continue
            status = str(response[status_key])
            line = describe(response) if describe is not None else status
            if line != last:
                stamp = time.strftime("%H:%M:%S")
                self.say(f"    {stamp} {line}")
                last = line
            if status in done:
                return response
            self.sleep(self.poll_seconds)

    def wait(self, service: str, waiter: str, **params: Any) -> None:
        """A botocore waiter (for deletions, where there is no progress to show)."""
        from botocore.exceptions import WaiterError

        if self.verbose:
            self.say(f"    wait {service} {waiter} {json.dumps(params)}")
        if self.dry_run:
            return  # what it waits for was not done
        delay = max(1, int(self.poll_seconds)) if self.poll_seconds else 0
        try:
            self.client(service).get_waiter(waiter).wait(
                WaiterConfig={"Delay": delay, "MaxAttempts": 240}, **params
            )
        except WaiterError as exc:
            raise DeployError(f"{service} {waiter}: {exc}") from exc


_NAME_KEYS: Final = frozenset({"Bucket", "Key", "ResourceId"})


def _names(params: Mapping[str, Any]) -> str:
    """What a write acts on, for the plan: its name-like parameters and the S3 keys it deletes."""
    shown = [
        f"{key}={value}"
        for key, value in params.items()
        if isinstance(value, str) and (key.lower().endswith("name") or key in _NAME_KEYS)
    ]
    deleted = params.get("Delete", {}).get("Objects", [])
    shown += [f"Key={item['Key']}" for item in deleted]
    return "".join(f" {item}" for item in shown)


def _shown(value: Any) -> str:
    """How a non-JSON parameter (a request body) appears in the printed plan."""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


class _DryRunResponder:
    """Answers the writes of ``--dry-run``, and its reads when it cannot see the account.

    Reads of what the plan itself created (a job, an endpoint) are answered as a fresh
    account would; with ``sees_account`` every other read goes to AWS (see module doc).
    """

    _MISSING: Final = {
        "HeadBucket": ("404", "Not Found", 404),
        "GetRole": ("NoSuchEntity", "The role cannot be found.", 404),
        "DescribeRepositories": ("RepositoryNotFoundException", "repository not found", 400),
        "DescribeImages": ("ImageNotFoundException", "image not found", 400),
        "DescribeEndpoint": ("ValidationException", "Could not find endpoint.", 400),
        "DescribeStacks": ("ValidationError", "Stack does not exist", 400),
        "GetBucketTagging": ("NoSuchTagSet", "The TagSet does not exist", 404),
    }

    def __init__(self, region: str, sees_account: bool) -> None:
        self.region = region
        self.sees_account = sees_account
        self.created: set[str] = set()
        self.jobs: dict[str, str] = {}
        self._args: dict[str, Any] = {}

    def remember(self, params: dict[str, Any], **_: Any) -> None:
        self._args = dict(params)

    def answer(self, model: Any, **_: Any) -> tuple[Any, Response] | None:
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        op: str = model.name
        if self.sees_account and is_read(op) and not self._planned(op):
            return None  # a real read: botocore sends it
        if model.service_model.service_name == "ecr-public" and op == "GetAuthorizationToken":
            op = "GetPublicAuthorizationToken"
        parsed = self._parsed(op, self._args)
        status = 200
        if "Error" in parsed:
            status = int(parsed.pop("_status", 400))
        return AWSResponse("https://dry-run", status, HTTPHeaders(), None), parsed

    def _planned(self, op: str) -> bool:
        key = _PLANNED_READS.get(op)
        return key is not None and self._args.get(key) in self.created

    def _error(self, op: str) -> Response:
        code, message, status = self._MISSING[op]
        return {"Error": {"Code": code, "Message": message}, "_status": status}

    def _parsed(self, op: str, args: dict[str, Any]) -> Response:
        acct, region = DRY_RUN_ACCOUNT, self.region
        if op == "GetCallerIdentity":
            return {"Account": acct, "Arn": f"arn:aws:iam::{acct}:user/dry-run", "UserId": "DRYRUN"}
        if op == "DescribeEndpoint":
            name = args.get("EndpointName", "")
            if name in self.created:
                return {
                    "EndpointName": name,
                    "EndpointStatus": "InService",
                    "EndpointConfigName": self.jobs.get(name, ""),
                }
            return self._error(op)
        if op in self._MISSING:
            return self._error(op)
        if op == "CreateRole":
            name = args.get("RoleName", "role")
            return {"Role": {"Arn": f"arn:aws:iam::{acct}:role/{name}", "RoleName": name}}
        if op == "CreateRepository":
            name = args.get("repositoryName", "repo")
            uri = f"{acct}.dkr.ecr.{region}.amazonaws.com/{name}"
            return {"repository": {"repositoryUri": uri, "repositoryName": name}}
        if op == "GetAuthorizationToken":
            token = base64.b64encode(b"AWS:dry-run").decode()
            endpoint = f"https://{acct}.dkr.ecr.{region}.amazonaws.com"
            return {"authorizationData": [{"authorizationToken": token, "proxyEndpoint": endpoint}]}
        if op == "GetPublicAuthorizationToken":
            token = base64.b64encode(b"AWS:dry-run").decode()
            return {"authorizationData": {"authorizationToken": token}}
        if op == "CreateTrainingJob":
            name = args["TrainingJobName"]
            self.created.add(name)
            self.jobs[name] = args["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            return {"TrainingJobArn": f"arn:aws:sagemaker:{region}:{acct}:training-job/{name}"}
        if op == "DescribeTrainingJob":
            name = args["TrainingJobName"]
            out = self.jobs.get(name, "s3://dry-run")
            return {
                "TrainingJobName": name,
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": f"{out}/{name}/output/model.tar.gz"},
                "FinalMetricDataList": [],
            }
        if op == "CreateEndpoint":
            self.created.add(args["EndpointName"])
            self.jobs[args["EndpointName"]] = args["EndpointConfigName"]
            return {
                "EndpointArn": f"arn:aws:sagemaker:{region}:{acct}:endpoint/{args['EndpointName']}"
            }
        if op == "UpdateEndpoint":
            self.created.add(args["EndpointName"])
            self.jobs[args["EndpointName"]] = args["EndpointConfigName"]
            return {
                "EndpointArn": f"arn:aws:sagemaker:{region}:{acct}:endpoint/{args['EndpointName']}"
            }
        if op == "CreateTransformJob":
            self.created.add(args["TransformJobName"])
            name = args["TransformJobName"]
            return {"TransformJobArn": f"arn:aws:sagemaker:{region}:{acct}:transform-job/{name}"}
        if op == "DescribeTransformJob":
            return {
                "TransformJobName": args.get("TransformJobName", ""),
                "TransformJobStatus": "Completed",
            }
        if op == "DescribeModel":  # a model named on the command line: its role is unknown
            role = f"arn:aws:iam::{acct}:role/unknown-to-a-dry-run"
            return {"ModelName": args.get("ModelName", ""), "ExecutionRoleArn": role}
        if op == "ListTrainingJobs":
            return {"TrainingJobSummaries": []}
        if op == "DescribeScalableTargets":
            return {"ScalableTargets": []}
        if op.startswith("List"):
            return {}
        return {}
