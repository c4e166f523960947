"""What a deployment is: names, sizes and options, derived from one deployment name.

Every resource is named from ``name`` (default ``credit-explainer``) and tagged
``credit-explainer:deployment=<name>``, so two deployments in one account never
touch each other and ``destroy`` finds exactly what ``deploy`` made.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from credit_schema import DEFAULT_ENDPOINT_NAME, DEFAULT_VARIANT

from .errors import DeployError

#: The one production variant of the endpoint.
VARIANT: Final = DEFAULT_VARIANT
#: Files whose content decides the image tag (same sources, same tag: no rebuild).
IMAGE_INPUTS: Final = ("container", "model_src")
SOURCE_DIR: Final = "model_src"
ENTRY_POINT: Final = "entry_point.py"


_NOT_SOURCE: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", "build"})


def is_source(relative: Path) -> bool:
    """Whether a file under a source directory is source: not a cache, nor the build/ and
    egg-info that building or installing writes beside it (.dockerignore leaves out the same)."""
    parts = relative.parts
    return relative.suffix != ".pyc" and not any(
        part in _NOT_SOURCE or part.endswith(".egg-info") for part in parts
    )


def utc_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def repo_root() -> Path:
    """The project checkout (container/, model_src/, template.yaml live there)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "model_src").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True, kw_only=True)
class DeployConfig:
    name: str = DEFAULT_ENDPOINT_NAME
    root: Path = field(default_factory=repo_root)
    stamp: str = field(default_factory=utc_stamp)
    # storage and identity
    bucket: str | None = None
    role_arn: str | None = None
    # image: None = our image in ECR (built by `deploy build-image`)
    image_uri: str | None = None
    framework_image: bool = False
    # training
    data: str | None = None
    train_instance_type: str = "ml.m5.large"
    train_volume_gb: int = 10
    max_runtime_seconds: int = 3600
    hyperparameters: dict[str, str] = field(default_factory=dict)
    model_data: str | None = None
    # hosting
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    serverless: bool = False
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    min_instances: int | None = None
    max_instances: int = 4
    invocations_per_instance: float = 100.0
    # data capture: s3://bucket/prefix, or None for none
    capture: str | None = None
    capture_percent: int = 100
    # API
    stack_name: str | None = None
    sam_parameters: tuple[str, ...] = ()
    #: The schema file shipped with the API (None: the served model's, from its model data).
    schema: str | None = None

    def __post_init__(self) -> None:
        if self.serverless and self.capture:
            raise DeployError(
                "--serverless with --capture: SageMaker Serverless Inference has no data "
                "capture; leave out --capture (the scoring API's decision records keep every "
                "decision) or deploy real-time instances"
            )

    # ------------------------------------------------------------------ names ----
    @property
    def endpoint_name(self) -> str:
        return self.name

    @property
    def prefix(self) -> str:
        """S3 key prefix holding everything of this deployment."""
        return self.name

    @property
    def repository(self) -> str:
        return self.name

    @property
    def role_name(self) -> str:
        return f"{self.name}-sagemaker"

    @property
    def stack(self) -> str:
        return self.stack_name or self.name

    def versioned(self, kind: str = "") -> str:
        """``<name>[-kind]-<UTC stamp>``: names of training jobs, models, endpoint configs."""
        middle = f"-{kind}" if kind else ""
        return f"{self.name}{middle}-{self.stamp}"[:63]

    def is_versioned(self, candidate: str, kind: str = "") -> bool:
        """True for a name :meth:`versioned` gives this deployment, not one of a longer name."""
        middle = f"-{kind}" if kind else ""
        return (
            re.fullmatch(rf"{re.escape(self.name + middle)}-\d{{8}}-\d{{6}}", candidate) is not None
        )

    def bucket_for(self, account: str, region: str) -> str:
        return self.bucket or f"{self.name}-{account}-{region}"

    def image_tag(self) -> str:
        """Content hash of everything that goes into the image."""
        digest = hashlib.sha256()
        for top in IMAGE_INPUTS:
            path = self.root / top
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if not is_source(file.relative_to(self.root)) or not file.exists():
                    continue
                digest.update(str(file.relative_to(self.root)).encode())
                digest.update(file.read_bytes())
        return "src-" + digest.hexdigest()[:16]
