"""The scoring API: ``sam build && sam deploy`` with the endpoint name, then its URL.

SAM is run as a subprocess (it is the tool that owns packaging Lambda code and
layers); the stack is tagged like every other resource so ``destroy`` finds it.
The API ships the schema of the model it fronts (``--schema``, else the
``schema.json`` in the endpoint's model data): ``sam build`` puts it in the
layer, where the function reads it (``CREDIT_EXPLAINER_SCHEMA``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from credit_schema import BUILTIN, SCHEMA_FILE, ApplicantSchema, Kind, SchemaError, read_schema

from .aws import TAG_KEY, Aws
from .config import DeployConfig
from .errors import DeployError, ToolError

#: What ``sam build`` hands build-CreditSchemaLayer (the Makefile): the schema file to ship.
SCHEMA_BUILD_ENV: Final = "CREDIT_EXPLAINER_API_SCHEMA"


@dataclass(frozen=True)
class ApiInfo:
    url: str
    api_key_id: str | None


def sam_commands(aws: Aws, cfg: DeployConfig, endpoint: str) -> list[list[str]]:
    template = str(cfg.root / "template.yaml")
    build = ["sam", "build", "--template-file", template]
    deploy = [
        "sam",
        "deploy",
        "--stack-name",
        cfg.stack,
        "--region",
        aws.region,
        "--resolve-s3",
        "--capabilities",
        "CAPABILITY_IAM",
        "CAPABILITY_AUTO_EXPAND",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        f"EndpointName={endpoint}",
        *cfg.sam_parameters,
        "--tags",
        f"{TAG_KEY}={cfg.name}",
    ]
    return [build, deploy]


def run_sam(aws: Aws, cfg: DeployConfig, endpoint: str, schema_file: Path | None = None) -> None:
    commands = sam_commands(aws, cfg, endpoint)
    for command in commands:
        aws.say(f"    $ {shlex.join(command)}")
    if aws.dry_run:
        resources = ", ".join(f"{name} ({kind})" for name, kind in template_resources(cfg.root))
        aws.plan(f"sam deploy stack {cfg.stack} (the scoring API): {resources}")
        return
    sam, runtime = sam_tools()
    env = dict(os.environ, AWS_REGION=aws.region, AWS_DEFAULT_REGION=aws.region)
    env["PATH"] = f"{runtime.parent}{os.pathsep}{env.get('PATH', '')}"
    if schema_file is not None:
        env[SCHEMA_BUILD_ENV] = str(schema_file.resolve())
    else:
        env.pop(SCHEMA_BUILD_ENV, None)  # the built-in schema
    for command in commands:
        result = subprocess.run([sam, *command[1:]], cwd=cfg.root, env=env, check=False)  # noqa: S603
        if result.returncode != 0:
            raise ToolError(f"`{shlex.join(command[:2])}` exited with {result.returncode}")


_RESOURCE = re.compile(r"^  ([A-Za-z0-9]+):\n(?:    [A-Za-z]+:.*\n)*?    Type: (\S+)", re.M)


def template_resources(root: Path) -> list[tuple[str, str]]:
    """(logical id, type) of every resource template.yaml declares, in its order."""
    text = (root / "template.yaml").read_text(encoding="utf-8")
    resources = text.partition("\nResources:\n")[2].partition("\nOutputs:\n")[0]
    return _RESOURCE.findall("\n" + resources)


def sam_tools() -> tuple[str, Path]:
    """``sam`` and python3.13 (the Lambda runtime ``sam build`` needs), or :class:`ToolError`."""
    sam = shutil.which("sam")
    if sam is None:
        raise ToolError("`sam` (AWS SAM CLI) is not on PATH: pip install aws-sam-cli")
    runtime = _python313()
    if runtime is None:
        raise ToolError(
            "`sam build` needs python3.13 (the Lambda runtime) on PATH: "
            "install it (e.g. pyenv install 3.13) and re-run"
        )
    return sam, runtime


def _python313() -> Path | None:
    """python3.13 on PATH, or in pyenv's versions directory."""
    found = shutil.which("python3.13")
    if found:
        return Path(found)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.13*/bin/python3.13"), reverse=True)
    return candidates[0] if candidates else None


def stack_outputs(aws: Aws, cfg: DeployConfig) -> ApiInfo:
    stacks = aws.call("cloudformation", "describe_stacks", StackName=cfg.stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise ToolError(f"stack {cfg.stack} has no ApiUrl output")
    return ApiInfo(url=str(outputs["ApiUrl"]), api_key_id=outputs.get("ApiKeyId"))


def endpoint_model_data(aws: Aws, endpoint: str) -> str | None:
    """The model data (``s3://.../model.tar.gz``) the endpoint serves, or None: no endpoint."""
    described = aws.exists(
        "sagemaker", "describe_endpoint", ("ValidationException",), EndpointName=endpoint
    )
    if described is None:
        return None
    config = aws.call(
        "sagemaker", "describe_endpoint_config", EndpointConfigName=described["EndpointConfigName"]
    )
    model = aws.call(
        "sagemaker", "describe_model", ModelName=config["ProductionVariants"][0]["ModelName"]
    )
    url = model.get("PrimaryContainer", {}).get("ModelDataUrl")
    return str(url) if url else None


def schema_from_model_data(aws: Aws, model_data: str, into: Path) -> Path | None:
    """The model's ``schema.json`` out of its ``model.tar.gz`` on S3 (checked), or None for a
    model written before schemas travelled with the model (it serves the built-in schema)."""
    bucket, _, key = model_data.removeprefix("s3://").partition("/")
    body = aws.call("s3", "get_object", Bucket=bucket, Key=key)["Body"]
    path = into / SCHEMA_FILE
    with tarfile.open(fileobj=body, mode="r|gz") as tar:
        for member in tar:
            if member.isfile() and member.name.removeprefix("./") == SCHEMA_FILE:
                extracted = tar.extractfile(member)
                assert extracted is not None
                path.write_bytes(extracted.read())
                break
        else:
            return None
    try:
        read_schema(path)
    except SchemaError as exc:
        raise DeployError(f"{model_data}: {exc}") from None
    return path


def served_schema(
    aws: Aws, cfg: DeployConfig, endpoint: str, into: Path, model_data: str | None = None
) -> tuple[Path | None, ApplicantSchema]:
    """The schema file to ship with the API (None: the built-in) and the schema itself."""
    if cfg.schema:
        try:
            return Path(cfg.schema), read_schema(cfg.schema)
        except SchemaError as exc:
            raise DeployError(f"--schema: {exc}") from None
    if aws.dry_run:  # the model may be planned, not there yet: the real run reads its schema
        aws.say(f"    schema: the served model's {SCHEMA_FILE}, read from its model data")
        return None, BUILTIN
    source = model_data or endpoint_model_data(aws, endpoint)
    if source is None or not source.startswith("s3://"):
        aws.say("    schema: the built-in (no model data to read one from; --schema names one)")
        return None, BUILTIN
    path = schema_from_model_data(aws, source, into)
    if path is None:
        aws.say(f"    schema: the built-in ({source} holds no {SCHEMA_FILE})")
        return None, BUILTIN
    schema = read_schema(path)
    aws.say(f"    schema: {schema.name} ({len(schema.features)} features), from {source}")
    return path, schema


def example_applicant(schema: ApplicantSchema) -> dict[str, Any]:
    """One applicant of ``schema`` for the printed snippet: each feature's example, else a
    value its rules accept (the first category, the minimum, or 0)."""
    out: dict[str, Any] = {}
    for f in schema.schema.features:
        if f.example is not None:
            out[f.name] = f.example
        elif f.kind is Kind.CATEGORY:
            out[f.name] = (f.categories or [""])[0]
        else:
            value = max(0.0, f.minimum) if f.minimum is not None else 0.0
            out[f.name] = int(value) if f.kind is Kind.INTEGER else value
    return out


def client_snippet(info: ApiInfo, region: str, schema: ApplicantSchema = BUILTIN) -> str:
    key_line = ""
    key_arg = ""
    if info.api_key_id:
        key_line = (
            "export CREDIT_EXPLAINER_API_KEY=$(aws apigateway get-api-key "
            f"--api-key {info.api_key_id} --include-value --query value --output text "
            f"--region {region})\n"
        )
        key_arg = ', api_key=os.environ["CREDIT_EXPLAINER_API_KEY"]'
    header = ' -H "x-api-key: $CREDIT_EXPLAINER_API_KEY"' if info.api_key_id else ""
    applicant = json.dumps(example_applicant(schema))
    return (
        f"{key_line}"
        f"curl -s -X POST {info.url}/score{header} -H 'Content-Type: application/json' "
        f"-d '{applicant}'\n\n"
        "python - <<'PY'\n"
        "import os\n"
        "from credit_explainer import CreditExplainerClient\n"
        f'with CreditExplainerClient("{info.url}"{key_arg}) as client:\n'
        f"    score = client.score({applicant})\n"
        "    print(score)  # probability and contributions ranked by |SHAP|\n"
        "PY"
    )


def deploy_api(
    aws: Aws, cfg: DeployConfig, endpoint: str, model_data: str | None = None
) -> ApiInfo:
    """``model_data``: the endpoint's model (else looked up), whose schema the API ships."""
    aws.step(f"Scoring API: sam build && sam deploy (stack {cfg.stack}, endpoint {endpoint})")
    with tempfile.TemporaryDirectory(prefix="credit-explainer-schema-") as tmp:
        schema_file, schema = served_schema(aws, cfg, endpoint, Path(tmp), model_data)
        run_sam(aws, cfg, endpoint, schema_file)
    if aws.dry_run:
        info = ApiInfo(
            url=f"https://<api-id>.execute-api.{aws.region}.amazonaws.com/v1", api_key_id="<key-id>"
        )
    else:
        info = stack_outputs(aws, cfg)
    aws.step("Ready" if not aws.dry_run else "What a real run ends with (<...>: its values)")
    aws.say(f"    API URL: {info.url}")
    aws.say("    Try it:\n")
    aws.say(client_snippet(info, aws.region, schema))
    return info
