"""One distribution per deployable (docs/architecture.md#distributions), each with its packages only.

Each wheel is built (``pip wheel --no-deps``) from a copy of the checkout's sources, so that a
stale ``build/`` or egg-info of this checkout cannot leak into it, and its top-level packages and
modules are compared with the source tree. The model image (container/Dockerfile, read without
Docker) copies model_src/ and container/ only and installs the model's wheel and its lock; the
model's wheel, installed alone, serves without the client, the tools or the scoring API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import PACKAGE_DIRS, ROOT
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow

#: Each distribution's directory -> its name and the packages its wheel holds.
DISTRIBUTIONS = {
    "client": ("credit-explainer", {"credit_explainer", "credit_schema"}),
    "model_src": ("credit-explainer-model", {"credit_model", "credit_schema"}),
    "lambda_fn": ("credit-explainer-api", {"scoring_api", "credit_schema"}),
    ".": ("credit-explainer-tools", {"credit_explainer_tools"}),
}


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheels")
    listed = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    for name in listed.stdout.splitlines():  # the sources, as a fresh clone has them
        if (ROOT / name).is_file():
            (tmp / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp / "src" / name)
    built = {}
    for directory, (name, _) in DISTRIBUTIONS.items():
        out = tmp / "out" / directory.strip(".") / "x"
        done = _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
             str(tmp / "src" / directory)]
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        [built[directory]] = out.glob(f"{name.replace('-', '_')}-*.whl")
    return built


def _modules(package: str) -> set[str]:
    """The files of a package as its wheel should hold them: modules, py.typed, schemas."""
    source = PACKAGE_DIRS[package]
    return {
        f"{package}/{p.relative_to(source).as_posix()}"
        for p in source.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and (p.suffix == ".py" or p.name == "py.typed" or p.parent.name == "schemas")
    }


@pytest.mark.parametrize("directory", list(DISTRIBUTIONS))
def test_each_wheel_holds_exactly_its_packages(wheels: dict[str, Path], directory: str) -> None:
    name, packages = DISTRIBUTIONS[directory]
    files = [n for n in zipfile.ZipFile(wheels[directory]).namelist() if ".dist-info/" not in n]
    assert {f.split("/")[0] for f in files} == packages
    assert set(files) == set().union(*map(_modules, packages))
    project = tomllib.loads((ROOT / directory / "pyproject.toml").read_text())["project"]
    assert project["name"] == name


def test_only_the_client_has_the_command_and_only_the_tools_need_the_others(
    wheels: dict[str, Path],
) -> None:
    def metadata(directory: str) -> tuple[list[str], str]:
        with zipfile.ZipFile(wheels[directory]) as wheel:
            info = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            points = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
            lines = re.findall(r"^Requires-Dist: (.+)$", wheel.read(info).decode(), re.M)
            # what an install without extras brings
            requires = [r.name for r in map(Requirement, lines) if "extra" not in str(r.marker)]
            return requires, "".join(wheel.read(p).decode() for p in points)

    ours = {name for name, _ in DISTRIBUTIONS.values()}
    for directory in DISTRIBUTIONS:
        requires, scripts = metadata(directory)
        needed = ours & set(requires)
        assert needed == (ours - {"credit-explainer-tools"} if directory == "." else set())
        assert ("credit-explainer = credit_explainer.cli:main" in scripts) == (
            directory == "client"
        )
    client, _ = metadata("client")
    assert {"httpx", "pydantic", "tqdm"} <= set(client)
    assert not {"numpy", "pandas", "scikit-learn", "shap", "boto3", "uvicorn"} & set(client)


def test_the_model_image_copies_and_installs_the_model_alone() -> None:
    dockerfile = (ROOT / "container" / "Dockerfile").read_text().replace("\\\n", " ")
    copies = [line.split()[1:] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    sources = [c[-2] for c in copies if not c[0].startswith("--from=")]
    assert sources and all(s.startswith(("model_src/", "container/")) for s in sources), sources
    model = tomllib.loads((ROOT / "model_src" / "pyproject.toml").read_text())["project"]["name"]
    runs = [" ".join(line.split()) for line in dockerfile.splitlines() if line.startswith("RUN ")]
    wheel = [r for r in runs if "pip wheel" in r]
    assert wheel == [
        "RUN pip wheel --no-cache-dir --wheel-dir /wheels --require-hashes -r requirements.lock"
        " && pip wheel --no-cache-dir --wheel-dir /wheels --no-deps ./model_src"
    ]
    [install] = [r for r in runs if "pip install" in r]
    named = install.split("&&")[0].split("/tmp/wheels", 1)[1].split()
    assert named == [model, "sagemaker-training"]


def test_the_model_wheel_alone_serves_without_the_client(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    # A venv with the model's wheel --no-deps; its libraries from this environment's
    # site-packages added as a plain path (their .pth files, our editable installs, not run).
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    [site] = (venv / "lib").glob("python3*/site-packages")
    with zipfile.ZipFile(wheels["model_src"]) as wheel:
        wheel.extractall(site)
    libraries = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    (site / "libraries.pth").write_text(f"{libraries}\n")
    code = (
        "import importlib.util as u, json, sys\n"
        "import credit_model.server, credit_model.handlers, credit_model.__main__\n"
        "ours = ['credit_explainer', 'credit_explainer_tools', 'scoring_api']\n"
        "print(json.dumps([credit_model.server.__file__, [m for m in ours if u.find_spec(m)],\n"
        "                  [m for m in ('httpx', 'tqdm') if m in sys.modules]]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = _run([str(python), "-c", code], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    where, importable, loaded = json.loads(done.stdout)
    assert where.startswith(str(site))
    assert importable == [] and loaded == []  # nothing of ours beside it; the client's HTTP unused
    serve = _run([str(python), "-m", "credit_model", "serve", "--help"], cwd=tmp_path, env=env)
    assert serve.returncode == 0 and "--model-dir" in serve.stdout, serve.stderr
