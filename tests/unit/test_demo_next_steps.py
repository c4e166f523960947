"""make demo's "next:" commands run when pasted into a fresh shell, where .venv/bin is not on PATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("numpy")

from credit_explainer_tools.local.demo import next_steps


def _venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    command = bin_dir / "credit-explainer"
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    return bin_dir


def test_the_commands_name_the_virtualenvs_path_when_it_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _venv(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    commands = [line for line in next_steps(Path("models/default")).splitlines() if line[:3] == "  ."]
    assert [c.split()[:2] for c in commands] == [
        [".venv/bin/credit-explainer", "up"],
        [".venv/bin/credit-explainer", "synth"],
        [".venv/bin/credit-explainer", "score"],
        [".venv/bin/credit-explainer", "deploy"],
    ]


def test_the_commands_are_bare_once_the_virtualenv_is_activated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_venv(tmp_path, monkeypatch)))
    steps = next_steps(Path("models/default"))
    assert "\n  credit-explainer up --decision-thresholds" in steps and ".venv" not in steps
