"""The image and the framework-image path install exactly the model's pinned versions."""

from __future__ import annotations

import tomllib

from credit_explainer_tools.deploy.config import repo_root
from packaging.requirements import Requirement

ROOT = repo_root()


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[req.name.lower()] = str(req.specifier)
    return out


def test_requirements_txt_pins_exactly_what_the_model_distribution_pins():
    model = tomllib.loads((ROOT / "model_src" / "pyproject.toml").read_text())["project"]
    pyproject = _pins(model["dependencies"])
    requirements = _pins((ROOT / "model_src" / "requirements.txt").read_text().splitlines())
    exact = {name: spec for name, spec in pyproject.items() if spec.startswith("==")}
    assert {"numpy", "scikit-learn", "shap", "skops"} <= exact.keys()
    for name, spec in exact.items():
        assert requirements.get(name) == spec, name


def test_dockerfile_installs_the_project_model_extra_and_the_training_toolkit():
    dockerfile = (ROOT / "container" / "Dockerfile").read_text()
    # Dependencies come from the hashed lock (make lock-container), the project itself --no-deps.
    lock = (ROOT / "container" / "requirements.lock").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile and "sagemaker-training==" in lock
    assert "ARG BASE_IMAGE=" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert "COPY container/serve /usr/local/bin/serve" in dockerfile
    serve = (ROOT / "container" / "serve").read_text()
    assert "python -m credit_model serve" in serve and "SAGEMAKER_BIND_TO_PORT:-8080" in serve
