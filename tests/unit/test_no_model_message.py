"""A command that finds no model says the absolute path it looked in (docs/cli.md), every one."""

from __future__ import annotations

from pathlib import Path

import pytest
from credit_explainer import cli

pytest.importorskip("numpy")


@pytest.mark.parametrize(
    "argv",
    [
        ["report"],
        ["serve-model", "--port", "0"],
        ["monitor", "--records", "records"],
        ["decisions", "replay", "--records", "records"],
        ["up", "--port", "0", "--model-port", "0"],
    ],
)
def test_a_missing_model_directory_is_named_by_its_absolute_path(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "records").mkdir()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: no model in {tmp_path / 'models' / 'default'} (relative paths start where you "
        "are): pass --model-dir, or train one (credit-explainer train --model-dir models/default"
    ), err
    assert "Traceback" not in err
