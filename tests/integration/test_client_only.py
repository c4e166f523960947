"""The base install alone (``pip install credit-explainer``, no extras): the analyst's CLI.

Builds a fresh virtualenv with only the base dependencies (uv when it is there: a few
seconds from its cache; pip otherwise), checks that none of the model's or AWS's
libraries came with it, and runs the installed ``credit-explainer`` against the real
local stack running in this process.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_APPLICANTS
from credit_schema import FEATURES

pytestmark = pytest.mark.slow

HEAVY = ("numpy", "pandas", "sklearn", "shap", "numba", "boto3", "uvicorn", "matplotlib")


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("client-only") / "venv"
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    python = venv / "bin" / "python"
    if uv:
        steps = [
            [uv, "venv", "-q", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "-q", "--python", str(python), str(ROOT)],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", str(ROOT)],
        ]
    for step in steps:
        done = _run(step)
        assert done.returncode == 0, done.stderr
    return venv


@pytest.fixture(scope="module")
def stack(synthetic_model_dir: Path) -> Iterator[str]:
    from credit_explainer_tools.local import LocalStack

    with LocalStack(synthetic_model_dir, log_level="ERROR") as running:
        yield running.api_url


def cli(venv: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_EXPLAINER_")}
    return _run([str(venv / "bin" / "credit-explainer"), *args], env=env, cwd=cwd)


def test_the_base_install_has_none_of_the_heavy_libraries(client_venv: Path) -> None:
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = _run([str(client_venv / "bin" / "python"), "-c", probe, *HEAVY])
    assert found.returncode == 0 and found.stdout.strip() == ""


def test_help_lists_every_command_and_score_help_works(client_venv: Path) -> None:
    top = cli(client_venv, "--help")
    assert top.returncode == 0, top.stderr
    for command in ("synth", "train", "serve-model", "bench", "up", "demo", "score", "deploy"):
        assert f"    {command}" in top.stdout
    score = cli(client_venv, "score", "--help")
    assert score.returncode == 0 and "--rejects" in score.stdout and "--url" in score.stdout


@pytest.mark.parametrize(
    ("args", "missing", "extra"),
    [
        (["train"], "numpy", "model"),
        (["synth", "--rows", "3"], "numpy", "model"),
        (["up"], "starlette", "model,api"),  # the model server's, imported first
        (["deploy", "--dry-run"], "boto3", "deploy"),
    ],
)
def test_commands_needing_an_extra_say_which(
    client_venv: Path, tmp_path: Path, args: list[str], missing: str, extra: str
) -> None:
    # `up` checks for a model first: give it a directory that looks like one.
    (tmp_path / "models" / "default").mkdir(parents=True)
    (tmp_path / "models" / "default" / "metadata.json").write_text("{}")
    done = cli(client_venv, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: credit-explainer {args[0]} needs {missing}, which this installation lacks: "
        f"pip install '.[{extra}]' in the credit-explainer checkout"
    )
    # The README's own command, with the extra: `pip install .` installs the client alone.
    assert "`pip install .` installs the client alone" in (ROOT / "README.md").read_text()


def _every_command() -> list[list[str]]:
    import argparse

    from credit_explainer.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
        found = [path]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += walk(sub, [*path, name])
        return found

    return walk(build_parser(), [])


def test_every_help_works_without_the_extras(client_venv: Path) -> None:
    for command in _every_command():
        done = cli(client_venv, *command, "--help")
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.startswith("usage: credit-explainer")
    train = cli(client_venv, "train", "--help")
    assert "--model-dir" in train.stdout and "model extra is installed" in train.stdout


def test_score_a_csv_from_the_base_install(client_venv: Path, stack: str, tmp_path: Path) -> None:
    src = tmp_path / "applicants.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES)
        for a in SAMPLE_APPLICANTS:
            w.writerow(["" if a[c] is None else a[c] for c in FEATURES])
    done = cli(client_venv, "score", "--url", stack, str(src), "--no-progress")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "applicants.scored.csv").open()))
    assert [r["row"] for r in rows] == ["0", "1", "2"]
    assert all(0.0 < float(r["probability"]) < 1.0 for r in rows)


def test_score_a_mixed_file_from_the_base_install(
    client_venv: Path, stack: str, tmp_path: Path
) -> None:
    src = tmp_path / "mixed.csv"
    good = [["" if a[c] is None else str(a[c]) for c in FEATURES] for a in SAMPLE_APPLICANTS]
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES)
        w.writerows([good[0], good[1][:5], [*good[2][:1], "7", *good[2][2:]], good[2]])
    done = cli(client_venv, "score", "--url", stack, str(src), "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    scored = list(csv.DictReader((tmp_path / "mixed.scored.csv").open()))
    assert [r["row"] for r in scored] == ["0", "3"]
    rejects = list(csv.reader((tmp_path / "mixed.scored.rejects.csv").open()))
    assert [r[:2] for r in rejects] == [
        ["row", "error"],
        ["1", f"5 cells; the header has {len(FEATURES)}"],
        ["2", "age: Input should be greater than or equal to 18"],
    ]
