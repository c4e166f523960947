"""The real ``sam build`` output: contents, architecture, and the handler run from it.

``make test`` runs ``sam validate --lint`` and ``sam build`` (arm64, the deployable
build, in .aws-sam/build; and an x86_64 twin in .aws-sam-x86_64/build) before
pytest. The x86_64 bundle is imported and run under python3.13 (the runtime's
Python) in an isolated interpreter (``-I -S``: no site-packages), so a
dependency missing from requirements.txt or from the layer fails here.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import LENDER_SCHEMA
from credit_schema import BUILTIN

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
BUILD_X86 = ROOT / ".aws-sam-x86_64" / "build"
EVENTS = ROOT / "events"
SCHEMA_SRC = ROOT / "model_src" / "credit_schema"
HEAVY = ("sklearn", "shap", "pandas", "numpy", "scipy")


def _python313() -> str | None:
    candidates = [
        os.environ.get("PYTHON313_BIN", ""),
        *glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin")),
    ]
    candidates += glob.glob("/root/.pyenv/versions/3.13*/bin")
    for d in candidates:
        exe = Path(d) / "python3.13"
        if d and exe.exists():
            return str(exe)
    return shutil.which("python3.13")


def _require(build: Path) -> Path:
    if not (build / "ScoringFunction" / "scoring_api" / "app.py").exists():
        pytest.fail(f"{build} is missing: run `make sam-build` (make test does)")
    return build


@pytest.mark.parametrize("build", [BUILD, BUILD_X86], ids=["arm64", "x86_64"])
def test_bundle_is_free_of_the_model_stack_and_gets_the_schema_from_the_layer(build: Path) -> None:
    build = _require(build)
    function = build / "ScoringFunction"
    present = {p.name for p in function.iterdir()}
    assert not present & set(HEAVY), present & set(HEAVY)
    assert "credit_schema" not in present  # not copied: it comes from the layer
    assert {"scoring_api", "aws_lambda_powertools", "pydantic", "pydantic_core", "boto3"} <= present
    layer = build / "CreditSchemaLayer" / "python" / "credit_schema"
    sources = sorted(p.name for p in SCHEMA_SRC.glob("*.py"))
    assert sorted(p.name for p in layer.glob("*.py")) == sources
    for name in sources:
        assert (layer / name).read_bytes() == (SCHEMA_SRC / name).read_bytes()
    built = (build / "template.yaml").read_text()
    assert "ContentUri: CreditSchemaLayer" in built and "CodeUri: ScoringFunction" in built
    # The served model's schema, where the function's CREDIT_EXPLAINER_SCHEMA names it
    # (/opt/credit-explainer/schema.json); `make sam-build` without API_SCHEMA: the built-in.
    assert "CREDIT_EXPLAINER_SCHEMA: /opt/credit-explainer/schema.json" in built
    served = build / "CreditSchemaLayer" / "credit-explainer" / "schema.json"
    assert served.read_bytes() == (SCHEMA_SRC / "schemas" / "give-me-some-credit.json").read_bytes()


def test_deployable_build_is_arm64_and_twin_is_x86_64() -> None:
    arm = list(_require(BUILD).glob("ScoringFunction/pydantic_core/_pydantic_core*.so"))
    x86 = list(_require(BUILD_X86).glob("ScoringFunction/pydantic_core/_pydantic_core*.so"))
    assert [p.name for p in arm] == ["_pydantic_core.cpython-313-aarch64-linux-gnu.so"]
    assert [p.name for p in x86] == ["_pydantic_core.cpython-313-x86_64-linux-gnu.so"]


RUNNER = r"""
import json, os, sys, time
build = sys.argv[1]
sys.path[:0] = [os.path.join(build, "ScoringFunction"), os.path.join(build, "CreditSchemaLayer", "python")]
started = time.perf_counter()
import scoring_api.app as app
import_ms = (time.perf_counter() - started) * 1000

class Context:
    function_name = "ScoringFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ScoringFunction"
    aws_request_id = "built-artifact-test"
    def get_remaining_time_in_millis(self):
        return 29000

results = {}
for path in sys.argv[2:]:
    with open(path) as f:
        event = json.load(f)
    out = app.lambda_handler(event, Context())
    results[os.path.basename(path)] = {"status": int(out["statusCode"]), "body": out["body"]}
modules = sorted(m.split(".")[0] for m in sys.modules)
print(json.dumps({"import_ms": import_ms, "results": results,
                  "app": app.__file__, "schema": sys.modules["credit_schema"].__file__,
                  "modules": sorted(set(modules))}))
"""


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


def run_built_handler(build: Path, env: dict[str, str], events: list[Path]) -> dict[str, Any]:
    python = _python313()
    if python is None:
        pytest.fail("python3.13 (the Lambda runtime's Python) is needed: pyenv install 3.13")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    proc = subprocess.run(
        [python, "-I", "-S", "-c", RUNNER, str(build), *map(str, events)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **base,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            **env,
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def test_built_handler_imports_from_the_bundle_and_answers_without_a_model(
    closed_port_url: str,
) -> None:
    build = _require(BUILD_X86)
    report = run_built_handler(
        build,
        {
            "ENDPOINT_NAME": "credit-explainer-local",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": closed_port_url,
            "HEALTH_CHECK": "ping",
            "SAGEMAKER_MAX_ATTEMPTS": "1",
            "CREDIT_EXPLAINER_SCHEMA": str(build / "CreditSchemaLayer" / "credit-explainer" / "schema.json"),
        },
        sorted(EVENTS.glob("*.json")),
    )
    assert report["app"].startswith(str(build / "ScoringFunction"))
    assert report["schema"].startswith(str(build / "CreditSchemaLayer"))
    assert not set(HEAVY) & set(report["modules"])
    statuses = {name: r["status"] for name, r in report["results"].items()}
    # No model behind it: the invalid event is refused before any call, the schema is the
    # function's own, the rest are 503.
    assert statuses.pop("score-invalid.json") == 422
    assert statuses.pop("get-schema.json") == 200
    served = json.loads(report["results"]["get-schema.json"]["body"])
    assert served == BUILTIN.document()
    assert statuses and set(statuses.values()) == {503}, statuses


def test_the_built_handler_validates_with_the_schema_it_is_given(
    closed_port_url: str, tmp_path: Path
) -> None:
    """Another lender's schema file: served on GET /schema, and the built-in's applicants are
    refused by it (422 naming applicant and field) before any call to the model."""
    (tmp_path / "schema.json").write_text(json.dumps(LENDER_SCHEMA))
    report = run_built_handler(
        _require(BUILD_X86),
        {
            "ENDPOINT_NAME": "credit-explainer-local",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": closed_port_url,
            "SAGEMAKER_MAX_ATTEMPTS": "1",
            "CREDIT_EXPLAINER_SCHEMA": str(tmp_path / "schema.json"),
        },
        [EVENTS / "get-schema.json", EVENTS / "score-single.json"],
    )
    served = report["results"]["get-schema.json"]
    assert served["status"] == 200
    assert json.loads(served["body"])["features"][0]["categories"] == ["rent", "own"]
    refused = report["results"]["score-single.json"]
    assert refused["status"] == 422
    details = json.loads(refused["body"])["error"]["details"]
    assert {(d["applicant"], d["field"], d["type"]) for d in details} >= {
        (0, "housing", "missing"),
        (0, "age", "extra_forbidden"),
    }
