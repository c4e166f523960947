"""``credit-explainer up`` on a port that is taken: one ``error:`` line, exit 2, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from credit_explainer.cli import main


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.parametrize(
    ("option", "what"), [("--port", "local API"), ("--model-port", "model server")]
)
def test_a_busy_port_is_one_error_line(
    synthetic_model_dir: Path,
    busy_port: int,
    option: str,
    what: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    free = {"--port": "0", "--model-port": "0"} | {option: str(busy_port)}
    argv = ["up", "--model-dir", str(synthetic_model_dir), "--log-level", "ERROR"]
    code = main([*argv, *(a for pair in free.items() for a in pair)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{busy_port} for the {what}: ")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_no_model_names_the_directory_it_looked_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["up"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no model in {tmp_path / 'models' / 'default'} ")
    assert "--model-dir" in err


def test_up_prints_the_endpoint_name_its_runtime_route_answers(synthetic_model_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    argv = ["up", "--model-dir", str(synthetic_model_dir), "--port", "0", "--model-port", "0"]
    up = subprocess.Popen(
        [sys.executable, "-m", "credit_explainer", *argv], stdout=subprocess.PIPE, text=True
    )
    try:
        assert up.stdout is not None
        first = up.stdout.readline()
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    assert first.startswith("model server  http://127.0.0.1:")
    assert first.rstrip().endswith("(SageMaker runtime: POST /endpoints/credit-explainer-local/invocations)")
