"""The locks shipped to AWS: every requirement pinned exactly and hashed, and consistent.

* ``lambda_fn/requirements.txt`` (the Lambda bundle): no scikit-learn, shap, pandas, numpy.
* ``container/requirements.lock`` (the model image): the `model` extra's exact pins
  (a fitted model does not travel across scikit-learn versions) and the training toolkit.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s\\;]+)")


def requirements(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes); fails on anything not pinned with ==."""
    text = path.read_text().replace("\\\n", " ")
    out: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not an exact pin: {line[:80]}"
        out[match.group(1).lower().replace("_", "-")] = (
            match.group(3),
            line.count("--hash=sha256:"),
        )
    return out


@pytest.mark.parametrize("lock", ["lambda_fn/requirements.txt", "container/requirements.lock"])
def test_every_requirement_is_pinned_with_hashes(lock: str) -> None:
    reqs = requirements(ROOT / lock)
    assert reqs
    unhashed = [name for name, (_, hashes) in reqs.items() if hashes == 0]
    assert not unhashed, f"{lock}: no hash for {unhashed}"


def test_the_lambda_bundle_stays_free_of_the_model_stack() -> None:
    reqs = requirements(ROOT / "lambda_fn/requirements.txt")
    assert not {"scikit-learn", "shap", "pandas", "numpy"} & reqs.keys()


def test_the_container_lock_has_the_model_extras_exact_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = requirements(ROOT / "container/requirements.lock")
    for spec in project["optional-dependencies"]["model"]:
        name, sep, version = spec.partition("==")
        if sep:
            assert reqs[name.lower()][0] == version, name
        else:
            assert re.split(r"[<>=!~]", spec)[0].lower() in reqs, spec
    assert "sagemaker-training" in reqs
    dockerfile = (ROOT / "container/Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
