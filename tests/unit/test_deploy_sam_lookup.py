"""``deploy`` finds the virtualenv's ``sam`` when the environment is not activated.

The README calls the command as ``.venv/bin/credit-explainer``; ``make venv`` installs
aws-sam-cli into the same bin directory, which is then not on PATH.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("boto3")

from credit_explainer_tools.deploy import api


def test_sam_is_found_beside_the_interpreter_when_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    sam = bin_dir / "sam"
    sam.write_text("#!/bin/sh\n")
    sam.chmod(0o755)
    runtime = tmp_path / "python3.13"
    monkeypatch.setattr(api, "_python313", lambda: runtime)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    assert api.sam_tools() == (str(sam), runtime)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(api.ToolError, match="not on PATH: pip install aws-sam-cli"):
        api.sam_tools()
