"""The dependency rule (docs/architecture.md), checked on the import graph and on real processes.

credit_schema at the bottom (pydantic and the standard library); credit_model and scoring_api
import only it among our packages; the SDK (credit_explainer._*) imports only it; the tools
(CLI, local stack, deploy) sit on top. The model image serves without the client package.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, SAMPLE_APPLICANTS, wait_for_ping

OURS = ("credit_schema", "credit_model", "scoring_api", "credit_explainer")
PACKAGE_DIRS = {
    "credit_schema": ROOT / "model_src" / "credit_schema",
    "credit_model": ROOT / "model_src" / "credit_model",
    "scoring_api": ROOT / "lambda_fn" / "scoring_api",
    "credit_explainer": ROOT / "client" / "credit_explainer",
}
#: What each layer may import among our packages.
ALLOWED = {
    "credit_schema": {"credit_schema"},
    "credit_model": {"credit_model", "credit_schema"},
    "scoring_api": {"scoring_api", "credit_schema"},
    # the SDK's own private modules (credit_explainer._x), never the tools beside it
    "sdk": {"credit_explainer", "credit_schema"},
}
#: The client package's tools: the SDK may not import them.
TOOLS = {"credit_explainer.local", "credit_explainer.deploy", "credit_explainer.cli",
         "credit_explainer.scoring_cli"}  # fmt: skip


def _imports(path: Path, package: str | None = None) -> set[str]:
    """What a module imports among our packages: top-level names, and for the client package
    its subpackage (``credit_explainer.local``); relative imports resolved against ``package``,
    the module's own dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names = [node.module]
            elif node.level and package:
                parts = package.split(".")  # the module itself: level 1 is its package
                base = ".".join(parts[: len(parts) - node.level])
                names = (
                    [f"{base}.{node.module}"]
                    if node.module
                    else [f"{base}.{alias.name}" for alias in node.names]
                )
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                names = [str(node.args[0].value)]
        for name in names:
            parts = name.split(".")
            if parts[0] in OURS:
                found.add(parts[0])
                if parts[0] == "credit_explainer" and len(parts) > 1:
                    found.add(f"credit_explainer.{parts[1]}")
    return found


def _layer(package: str, path: Path) -> str | None:
    if package != "credit_explainer":
        return package
    # The SDK is the package's private modules and its __init__; the tools sit on top.
    relative = path.relative_to(PACKAGE_DIRS[package])
    is_sdk = len(relative.parts) == 1 and (
        relative.name.startswith("_") and relative.name != "__main__.py"
    )
    return "sdk" if is_sdk else None


def test_every_module_imports_only_what_its_layer_may() -> None:
    broken = []
    for package, directory in PACKAGE_DIRS.items():
        for path in sorted(directory.rglob("*.py")):
            layer = _layer(package, path)
            if layer is None:
                continue
            module = ".".join(path.relative_to(directory.parent).with_suffix("").parts)
            seen = _imports(path, module)
            extra = {m for m in seen if "." not in m} - ALLOWED[layer]
            if layer == "sdk":
                extra |= seen & TOOLS
            if extra:
                broken.append(f"{path.relative_to(ROOT)} ({layer}) imports {sorted(extra)}")
    assert not broken, "\n".join(broken)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from credit_explainer.local.stack import ServerThread\nimport credit_model\n")
    assert _imports(bad) == {"credit_explainer", "credit_explainer.local", "credit_model"}
    relative = tmp_path / "rel.py"
    relative.write_text("from .deploy import aws\nfrom . import local\nfrom ._models import Score\n")
    assert _imports(relative, "credit_explainer._client") >= {
        "credit_explainer.deploy",
        "credit_explainer.local",
    }


def test_importing_the_schema_loads_no_heavy_library() -> None:
    heavy = ["numpy", "pandas", "sklearn", "shap", "numba", "boto3", "botocore", "httpx"]
    code = (
        "import sys, json, credit_schema; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []


@pytest.mark.slow
def test_container_serve_works_without_the_client_package(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    # A module of the client's name that refuses to load, ahead of the installed package.
    (tmp_path / "credit_explainer.py").write_text("raise ImportError('no client in the image')\n")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SM_MODEL_DIR": str(synthetic_model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "CREDIT_EXPLAINER_SERVE_HOST": "127.0.0.1",
    }
    proc = subprocess.Popen(
        ["sh", str(ROOT / "container" / "serve")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, proc, "container/serve")
        response = httpx.post(f"{url}/invocations", json=SAMPLE_APPLICANTS, timeout=30)
        assert response.status_code == 200
        predictions = response.json()["predictions"]
        assert len(predictions) == len(SAMPLE_APPLICANTS)
        for p in predictions:
            total = p["base_value"] + sum(c["shap_value"] for c in p["contributions"])
            assert abs(total - p["probability"]) <= 1e-9
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
