"""The locks shipped to AWS: every requirement pinned exactly and hashed, and consistent.

* ``lambda_fn/requirements.txt`` (the Lambda bundle): no scikit-learn, shap, pandas, numpy.
* ``container/requirements.lock`` (the model image): the model distribution's exact pins
  (a fitted model does not travel across scikit-learn versions) and the training toolkit.

Each lock satisfies its distribution's pyproject.toml (one rule: the lock's pins within the
distribution's ranges), so the bundle and the image run what the tests run.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

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


@pytest.mark.parametrize(
    ("lock", "distribution"),
    [
        ("container/requirements.lock", "model_src/pyproject.toml"),
        ("lambda_fn/requirements.txt", "lambda_fn/pyproject.toml"),
    ],
)
def test_each_lock_satisfies_its_distributions_dependencies(lock: str, distribution: str) -> None:
    pins = requirements(ROOT / lock)
    dependencies = tomllib.loads((ROOT / distribution).read_text())["project"]["dependencies"]
    assert dependencies
    for spec in map(Requirement, dependencies):
        if spec.marker is not None and not spec.marker.evaluate({"sys_platform": "linux"}):
            continue
        name = spec.name.lower().replace("_", "-")
        assert name in pins, f"{lock}: {name} ({distribution}) is not locked"
        assert spec.specifier.contains(pins[name][0], prereleases=True), (
            f"{lock}: {name}=={pins[name][0]} is outside {distribution}'s {spec.specifier}"
        )


def test_the_container_lock_has_the_models_exact_pins_and_nothing_of_the_client() -> None:
    model = tomllib.loads((ROOT / "model_src/pyproject.toml").read_text())["project"]
    reqs = requirements(ROOT / "container/requirements.lock")
    exact = [s for s in model["dependencies"] if "==" in s]
    assert {Requirement(s).name for s in exact} >= {"numpy", "scikit-learn", "shap", "skops"}
    assert "sagemaker-training" in reqs
    # the client's HTTP stack (httpx; tqdm comes with shap) and our other distributions stay out
    assert not {"httpx", "httpcore", "credit-explainer", "credit-explainer-api"} & reqs.keys()
    dockerfile = (ROOT / "container/Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
