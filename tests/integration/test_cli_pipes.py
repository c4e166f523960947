"""Commands piped into ``head``: they stop quietly when the reader goes away."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("numpy")  # synth writes with pandas


def test_synth_into_head_stops_without_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "credit_explainer", "synth", "--rows", "50000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(2)]
    proc.stdout.close()  # what head does after its lines
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert head[0].startswith(b"SeriousDlqin2yrs,")
    assert err == ""
    assert code == 141  # 128 + SIGPIPE, as a command the signal stopped
