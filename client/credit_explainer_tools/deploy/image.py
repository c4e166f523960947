"""The model image: ECR repository, ECR login with boto3, build and push with the Docker SDK.

No ``docker-credential-ecr-login`` download and no shelling out to ``docker``:
``ecr GetAuthorizationToken`` gives the registry password, the Docker SDK's
low-level ``APIClient`` builds and pushes while streaming the daemon's progress.

The Docker SDK does not raise when a build step or a push fails: the daemon
reports the failure inside the stream (``{"error": ..., "errorDetail": {...}}``).
:func:`check_chunk` looks at every streamed chunk and raises :class:`DockerError`
with the daemon's own message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .aws import Aws, tags
from .config import DeployConfig
from .errors import DeployError, DockerError

DEFAULT_BASE_IMAGE: Final = "public.ecr.aws/docker/library/python:3.12-slim-bookworm"
DOCKERFILE: Final = "container/Dockerfile"
_PRIVATE_ECR: Final = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$"
)


@dataclass(frozen=True)
class RegistryLogin:
    registry: str  # host name, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    username: str
    password: str

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def registry_of(image: str) -> str:
    """The registry host of an image reference ('' for Docker Hub)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


# ---------------------------------------------------------------------- ECR ------
def find_repository(aws: Aws, cfg: DeployConfig) -> str | None:
    """The deployment's private ECR repository URI, None when there is none yet."""
    found = aws.exists(
        "ecr",
        "describe_repositories",
        ("RepositoryNotFoundException",),
        repositoryNames=[cfg.repository],
    )
    return None if found is None else str(found["repositories"][0]["repositoryUri"])


def create_repository(aws: Aws, cfg: DeployConfig) -> str:
    """The deployment's private ECR repository (scanned, tagged, immutable tags): its URI."""
    created = aws.call(
        "ecr",
        "create_repository",
        repositoryName=cfg.repository,
        imageTagMutability="IMMUTABLE",  # tags are content hashes: never overwritten
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "AES256"},
        tags=[{"Key": t["Key"], "Value": t["Value"]} for t in tags(cfg.name)],
    )
    return str(created["repository"]["repositoryUri"])


def image_exists(aws: Aws, cfg: DeployConfig, tag: str) -> bool:
    found = aws.exists(
        "ecr",
        "describe_images",
        ("ImageNotFoundException",),
        repositoryName=cfg.repository,
        imageIds=[{"imageTag": tag}],
    )
    return bool(found and found.get("imageDetails"))


def ecr_login(aws: Aws, registry: str) -> RegistryLogin:
    """Credentials for a private ECR registry, from ``ecr GetAuthorizationToken``.

    The token is valid for every registry the caller may pull from; the request is
    made in the registry's own region (a base image may live in another region).
    """
    match = _PRIVATE_ECR.match(registry)
    if match is None:
        raise DeployError(f"{registry} is not a private ECR registry")
    data = aws.call("ecr", "get_authorization_token", region=match.group("region"))
    auth = data["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    return RegistryLogin(registry=registry, username=user, password=password)


def public_ecr_login(aws: Aws) -> RegistryLogin:
    """Credentials for ``public.ecr.aws`` (higher pull limits than anonymous; us-east-1 only)."""
    data = aws.call("ecr-public", "get_authorization_token", region="us-east-1")
    auth = data["authorizationData"]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    return RegistryLogin(registry="public.ecr.aws", username=user, password=password)


def logins_for(aws: Aws, *, target_registry: str, base_image: str) -> list[RegistryLogin]:
    """Log in to the target registry and, when it is an ECR one, the base image's registry."""
    logins = [ecr_login(aws, target_registry)]
    base = registry_of(base_image)
    if base and base != target_registry:
        if _PRIVATE_ECR.match(base):
            logins.append(ecr_login(aws, base))
        elif base == "public.ecr.aws":
            logins.append(public_ecr_login(aws))
    return logins


# ------------------------------------------------------------------- Docker ------
def check_chunk(chunk: Mapping[str, Any]) -> Mapping[str, Any]:
    """Raise :class:`DockerError` when a streamed build/push chunk reports a failure.

    The daemon reports failures in-band: ``{"errorDetail": {"message": ...}, "error": ...}``
    (older daemons send only ``error``, newer ones may send only ``errorDetail``).
    """
    detail = chunk.get("errorDetail")
    if detail or chunk.get("error"):
        message = ""
        if isinstance(detail, Mapping):
            message = str(detail.get("message") or "")
        raise DockerError(f"docker: {message or chunk.get('error') or detail}")
    return chunk


def progress_line(chunk: Mapping[str, Any]) -> str | None:
    """A printable line for a streamed chunk (None for noise such as byte counters)."""
    if "stream" in chunk:
        text = str(chunk["stream"]).rstrip()
        return text or None
    if "status" in chunk:
        status = str(chunk["status"])
        if chunk.get("progressDetail") and status in {"Downloading", "Extracting", "Pushing"}:
            return None  # per-chunk byte counters: too chatty for a terminal log
        ident = chunk.get("id")
        return f"{ident}: {status}" if ident else status
    if "aux" in chunk and isinstance(chunk["aux"], Mapping):
        aux = chunk["aux"]
        if "Digest" in aux:
            return f"pushed {aux.get('Tag', '')} {aux['Digest']}"
        if "ID" in aux:
            return f"built {aux['ID']}"
    return None


def follow(chunks: Iterable[Mapping[str, Any]], aws: Aws) -> list[Mapping[str, Any]]:
    """Print the progress of a streamed operation, failing on the first error chunk."""
    seen: list[Mapping[str, Any]] = []
    for chunk in chunks:
        check_chunk(chunk)
        line = progress_line(chunk)
        if line:
            aws.say(f"    {line}")
        seen.append(chunk)
    return seen


def docker_client(base_url: str | None = None) -> Any:
    """A low-level Docker API client, or :class:`DockerError` with the daemon's message."""
    import docker  # type: ignore[import-untyped]
    from docker.errors import DockerException  # type: ignore[import-untyped]

    try:
        if base_url:
            return docker.APIClient(base_url=base_url, version="auto", timeout=600)
        return docker.from_env(timeout=600).api
    except DockerException as exc:
        raise DockerError(
            f"cannot reach the Docker daemon ({exc}); start Docker, or set DOCKER_HOST"
        ) from exc


def _stream(call: Iterator[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    from docker.errors import DockerException

    try:
        yield from call
    except DockerException as exc:
        raise DockerError(f"docker: {exc}") from exc


def build_and_push(
    aws: Aws,
    cfg: DeployConfig,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    docker_url: str | None = None,
    platform: str = "linux/amd64",
    force: bool = False,
) -> str:
    """Build ``container/Dockerfile`` and push it to ECR; returns the image URI.

    The tag is a content hash of the sources (see ``DeployConfig.image_tag``): when
    ECR already holds it, nothing is built (``force`` rebuilds anyway).
    """
    aws.step("Container image")
    found = find_repository(aws, cfg)
    tag = cfg.image_tag()
    if found is not None and not force and image_exists(aws, cfg, tag):
        aws.say(f"    {found}:{tag} is already in ECR: nothing to build")
        return f"{found}:{tag}"
    # The daemon is a prerequisite: reached before the first write (the repository).
    api = None if aws.dry_run else docker_client(docker_url)
    repo_uri = found or create_repository(aws, cfg)
    image = f"{repo_uri}:{tag}"
    registry = registry_of(repo_uri)
    if api is None:  # a dry run
        aws.say(
            f"    docker build {cfg.root} -f {DOCKERFILE} -t {image} "
            f"--build-arg BASE_IMAGE={base_image} --platform {platform} --pull"
        )
        aws.say(f"    docker push {image}")
        aws.plan(f"docker build and push {image}")
        return image
    logins = logins_for(aws, target_registry=registry, base_image=base_image)
    for login in logins:
        try:
            api.login(
                username=login.username,
                password=login.password,
                registry=login.registry,
                reauth=True,
            )
        except Exception as exc:
            raise DockerError(f"docker login to {login.registry} failed: {exc}") from exc
    aws.say(f"    building {image} from {DOCKERFILE} (base {base_image})")
    follow(
        _stream(
            api.build(
                path=str(cfg.root),
                dockerfile=DOCKERFILE,
                tag=image,
                buildargs={"BASE_IMAGE": base_image},
                platform=platform,
                pull=True,
                rm=True,
                forcerm=True,
                decode=True,
            )
        ),
        aws,
    )
    aws.say(f"    pushing {image}")
    target = next(x for x in logins if x.registry == registry)
    follow(
        _stream(
            api.push(repo_uri, tag=tag, stream=True, decode=True, auth_config=target.auth_config())
        ),
        aws,
    )
    return image
