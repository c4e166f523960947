"""The scoring API: ``sam build && sam deploy`` with the endpoint name, then its URL.

SAM is run as a subprocess (it is the tool that owns packaging Lambda code and
layers); the stack is tagged like every other resource so ``destroy`` finds it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .aws import TAG_KEY, Aws
from .config import DeployConfig
from .errors import ToolError


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


def run_sam(aws: Aws, cfg: DeployConfig, endpoint: str) -> None:
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


def client_snippet(info: ApiInfo, region: str) -> str:
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
    applicant = (
        '{"RevolvingUtilizationOfUnsecuredLines": 0.3, "age": 45, '
        '"NumberOfTime30-59DaysPastDueNotWorse": 0, "DebtRatio": 0.35, "MonthlyIncome": 5400, '
        '"NumberOfOpenCreditLinesAndLoans": 8, "NumberOfTimes90DaysLate": 0, '
        '"NumberRealEstateLoansOrLines": 1, "NumberOfTime60-89DaysPastDueNotWorse": 0, '
        '"NumberOfDependents": 2}'
    )
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


def deploy_api(aws: Aws, cfg: DeployConfig, endpoint: str) -> ApiInfo:
    aws.step(f"Scoring API: sam build && sam deploy (stack {cfg.stack}, endpoint {endpoint})")
    run_sam(aws, cfg, endpoint)
    if aws.dry_run:
        info = ApiInfo(
            url=f"https://<api-id>.execute-api.{aws.region}.amazonaws.com/v1", api_key_id="<key-id>"
        )
    else:
        info = stack_outputs(aws, cfg)
    aws.step("Ready" if not aws.dry_run else "What a real run ends with (<...>: its values)")
    aws.say(f"    API URL: {info.url}")
    aws.say("    Try it:\n")
    aws.say(client_snippet(info, aws.region))
    return info
