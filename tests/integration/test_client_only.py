"""The client alone (``pip install ./client``, as the README says): the analyst's SDK and CLI.

Builds a fresh virtualenv with the client distribution only (uv when it is there: a few
seconds from its cache; pip otherwise), checks that none of the model's or AWS's libraries
and none of our other distributions came with it, and runs the installed ``credit-explainer``
against the real local stack running in this process.
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
#: Our other distributions' packages (credit_schema comes with the client).
NOT_OURS = ("credit_model", "scoring_api", "credit_explainer_tools")


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
            [uv, "pip", "install", "-q", "--python", str(python), str(ROOT / "client")],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", str(ROOT / "client")],
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


def test_the_client_alone_has_none_of_the_heavy_libraries_nor_our_other_packages(
    client_venv: Path,
) -> None:
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = _run([str(client_venv / "bin" / "python"), "-c", probe, *HEAVY, *NOT_OURS])
    assert found.returncode == 0 and found.stdout.strip() == ""
    ours = _run(
        [str(client_venv / "bin" / "python"), "-c", probe, "credit_explainer", "credit_schema"]
    )
    assert ours.stdout.split() == ["credit_explainer", "credit_schema"]


def test_help_lists_every_command_and_score_help_works(client_venv: Path) -> None:
    top = cli(client_venv, "--help")
    assert top.returncode == 0, top.stderr
    for command in ("synth", "train", "serve-model", "bench", "up", "demo", "score", "deploy"):
        assert f"    {command}" in top.stdout
    score = cli(client_venv, "score", "--help")
    assert score.returncode == 0 and "--rejects" in score.stdout and "--url" in score.stdout


@pytest.mark.parametrize(
    ("args", "distribution", "install"),
    [
        (["train"], "credit-explainer-model", "./model_src"),
        (["synth", "--rows", "3"], "credit-explainer-model", "./model_src"),
        (["up"], "credit-explainer-tools", "./client ./model_src ./lambda_fn ."),
        (["deploy", "--dry-run"], "credit-explainer-tools", "./client ./model_src ./lambda_fn ."),
    ],
)
def test_a_command_of_another_distribution_says_which_and_how_to_install_it(
    client_venv: Path, tmp_path: Path, args: list[str], distribution: str, install: str
) -> None:
    done = cli(client_venv, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: credit-explainer {args[0]} is part of {distribution}, which this installation "
        f"lacks: pip install {install} in the credit-explainer checkout"
    )
    assert f"pip install {install} " in (ROOT / "README.md").read_text()  # the README's command


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


def test_every_help_works_in_the_client_alone(client_venv: Path) -> None:
    # every command of the full install (this process's), so that a new command is covered
    commands = _every_command()
    assert ["decisions", "show"] in commands and ["serve"] in commands
    for command in commands:
        done = cli(client_venv, *command, "--help")
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.startswith("usage: credit-explainer"), (command, done.stdout)
    train = cli(client_venv, "train", "--help")
    assert "credit-explainer train is part of credit-explainer-model" in train.stdout
    assert "pip install ./model_src in the credit-explainer checkout" in train.stdout


def test_the_sdks_extras_are_named_by_their_install_command(client_venv: Path) -> None:
    code = (
        "from credit_explainer import ScoreResults, MissingDependencyError\n"
        "from credit_explainer._plot import plot_score\n"
        "for call in (lambda: ScoreResults.to_dataframe(None), lambda: plot_score(None)):\n"
        "    try:\n        call()\n"
        "    except MissingDependencyError as exc:\n        print(exc)\n"
    )
    done = _run([str(client_venv / "bin" / "python"), "-c", code])
    assert done.returncode == 0, done.stderr
    readme = (ROOT / "README.md").read_text()
    for line, extra in zip(done.stdout.splitlines(), ("pandas", "plot"), strict=True):
        assert line.endswith(f"pip install './client[{extra}]' in the credit-explainer checkout")
        assert f"'./client[{extra}]'" in readme


def test_score_a_csv_from_the_client_alone(client_venv: Path, stack: str, tmp_path: Path) -> None:
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


def test_score_a_mixed_file_from_the_client_alone(
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
