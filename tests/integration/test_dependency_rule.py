"""The dependency rule (docs/architecture.md), checked on the import graph and on real processes.

credit_schema at the bottom (pydantic and the standard library); credit_model and scoring_api
import only it among our packages; the SDK (credit_explainer._*) imports only it; the client's
command (cli, scoring_cli) only the SDK and it; the tools (credit_explainer_tools: local stack,
deploy, decisions, monitor) sit on top, and nothing imports them (cli's registry names them, as
strings, for an install that has them). Every module has a layer. The model image serves without
the client.
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
from conftest import PACKAGE_DIRS, ROOT, SAMPLE_APPLICANTS, wait_for_ping

OURS = (
    "credit_schema",
    "credit_model",
    "scoring_api",
    "credit_explainer",
    "credit_explainer_tools",
)
#: What each layer may import among our packages.
ALLOWED = {
    "credit_schema": {"credit_schema"},
    "credit_model": {"credit_model", "credit_schema"},
    "scoring_api": {"scoring_api", "credit_schema"},
    # the SDK's own private modules (credit_explainer._x), never the commands beside it
    "sdk": {"credit_explainer", "credit_schema"},
    # the client's command (cli, score): the SDK and the schema; the tools only by name, from
    # cli's registry, which tolerates their absence in a client-only install
    "client": {"credit_explainer", "credit_schema"},
    # the tools on top (credit_explainer_tools): any of our packages
    "credit_explainer_tools": set(OURS),
}
#: The client's command modules; every other module of credit_explainer is the SDK's, private.
CLIENT_COMMAND = {"cli", "scoring_cli", "__main__"}
CLIENT_DIR = PACKAGE_DIRS["credit_explainer"]


def _imports(path: Path, package: str | None = None) -> set[str]:
    """What a module imports among our packages: top-level names, and for the client package
    its module or subpackage (``credit_explainer._client``); relative imports resolved against
    ``package``, the module's own dotted name."""
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
            if node.level == 0 and node.module in OURS:  # from credit_model import server
                names += [f"{node.module}.{alias.name}" for alias in node.names]
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


def _client_layer(name: str) -> str:
    """The layer of ``credit_explainer.<name>`` (a module or a subpackage); "none" for a module
    of neither (a tool belongs in credit_explainer_tools)."""
    if name in CLIENT_COMMAND:
        return "client"
    return "sdk" if name.startswith("_") else "none"  # the private modules and __init__


def _layer(package: str, path: Path) -> str:
    if package != "credit_explainer":
        return package
    return _client_layer(path.relative_to(CLIENT_DIR).parts[0].removesuffix(".py"))


def _forbidden(layer: str, seen: set[str]) -> set[str]:
    """What ``seen`` holds that ``layer`` may not import."""
    assert layer in ALLOWED, f"no layer {layer!r}: a tool belongs in credit_explainer_tools"
    extra = {m for m in seen if "." not in m} - ALLOWED[layer]
    below = {"sdk": {"sdk"}, "client": {"sdk", "client"}}.get(layer)
    if below is not None:  # the SDK and the client's command: nothing of what sits above them
        extra |= {m for m in seen if "." in m and _client_layer(m.split(".")[1]) not in below}
    return extra


def test_every_module_has_a_layer_and_imports_only_what_it_may() -> None:
    broken, layers = [], {}
    for package, directory in PACKAGE_DIRS.items():
        for path in sorted(directory.rglob("*.py")):
            layer = layers[path] = _layer(package, path)
            module = ".".join(path.relative_to(directory.parent).with_suffix("").parts)
            extra = _forbidden(layer, _imports(path, module))
            if extra:
                broken.append(f"{path.relative_to(ROOT)} ({layer}) imports {sorted(extra)}")
    assert not broken, "\n".join(broken)
    client = {
        p.relative_to(CLIENT_DIR).as_posix(): v
        for p, v in layers.items()
        if CLIENT_DIR in p.parents
    }
    assert client["_client.py"] == client["__init__.py"] == "sdk"
    assert client["scoring_cli.py"] == client["cli.py"] == "client"
    assert set(client.values()) == {"sdk", "client"}  # no tool left in the client's package
    tools = PACKAGE_DIRS["credit_explainer_tools"]
    assert layers[tools / "decisions.py"] == layers[tools / "local" / "stack.py"] == tools.name


#: One planted violation per layer that has something forbidden: (layer, module, source).
PLANTED = [
    ("credit_schema", "credit_schema.x", "import pydantic\nfrom credit_model import train\n"),
    ("credit_model", "credit_model.x", "from credit_explainer import CreditExplainerClient\n"),
    (
        "credit_model",
        "credit_model.x",
        "import importlib\nimportlib.import_module('scoring_api')\n",
    ),
    ("scoring_api", "scoring_api.x", "def f():\n    from credit_model import handlers\n"),
    ("sdk", "credit_explainer._x", "from .decisions import show\n"),
    ("sdk", "credit_explainer._x", "from credit_explainer import monitor\n"),
    ("sdk", "credit_explainer._x", "from . import scoring_cli\n"),
    ("client", "credit_explainer.scoring_cli", "from credit_model import synth\n"),
    ("client", "credit_explainer.cli", "from .local.stack import LocalStack\n"),
    # the tools' package, imported by anything below it
    ("sdk", "credit_explainer._x", "from credit_explainer_tools import decisions\n"),
    ("client", "credit_explainer.cli", "from credit_explainer_tools.local import LocalStack\n"),
    ("credit_model", "credit_model.x", "from credit_explainer_tools.deploy import config\n"),
    ("scoring_api", "scoring_api.x", "def f():\n    import credit_explainer_tools.monitor\n"),
    ("credit_schema", "credit_schema.x", "import credit_explainer_tools\n"),
]


@pytest.mark.parametrize(("layer", "module", "source"), PLANTED)
def test_the_checker_sees_a_planted_violation(
    tmp_path: Path, layer: str, module: str, source: str
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert _forbidden(layer, _imports(bad, module))
    # what the tools may all do
    assert not _forbidden("credit_explainer_tools", _imports(bad, module))


def test_no_module_of_ours_is_imported_by_name_as_any() -> None:
    # importlib.import_module hides the module from mypy; a plain import inside the function is
    # as lazy. cli's registry (names in a table) is left.
    hidden = []
    for path in sorted(p for d in PACKAGE_DIRS.values() for p in d.rglob("*.py")):
        if path == CLIENT_DIR / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and str(arg.value).split(".")[0] in OURS:
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} {arg.value}")
    assert not hidden, hidden


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
