"""The image helper: ECR repository and logins through Stubber, Docker stream checking on the
documented chunk shapes, and the real Docker SDK failing with the daemon's message (no daemon here).

Stubber, not moto's server: moto has no ecr-public and no registry to push to."""

from __future__ import annotations

import base64
import tarfile

import docker
import pytest
from aws_plan import ACCOUNT, NOW, REGION, Plan
from credit_explainer_tools.deploy import DeployConfig, DockerError
from credit_explainer_tools.deploy.config import repo_root
from credit_explainer_tools.deploy.image import (
    DOCKERFILE,
    build_and_push,
    check_chunk,
    follow,
    logins_for,
    progress_line,
    registry_of,
)

REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
REPO_URI = f"{REGISTRY}/credit-explainer"


def token(password: str) -> dict:
    return {
        "authorizationData": [
            {
                "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
                "proxyEndpoint": f"https://{REGISTRY}",
                "expiresAt": NOW,
            }
        ]
    }


# Shapes the Docker Engine API streams (docker build / docker push, decode=True).
BUILD_OK = [
    {"stream": "Step 1/9 : ARG BASE_IMAGE"},
    {"status": "Pulling from docker/library/python", "id": "3.12-slim-bookworm"},
    {"status": "Downloading", "progressDetail": {"current": 10, "total": 100}, "id": "a1b2"},
    {"aux": {"ID": "sha256:0123"}},
    {"stream": "Successfully built 0123\n"},
]
PUSH_OK = [
    {"status": "The push refers to repository [x/credit-explainer]"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 1024}, "id": "d3e4"},
    {"status": "Pushed", "progressDetail": {}, "id": "d3e4"},
    {"status": "src-1: digest: sha256:feed size: 1234"},
    {"progressDetail": {}, "aux": {"Tag": "src-1", "Digest": "sha256:feed", "Size": 1234}},
]
FAILURES = [
    # a failing RUN step
    (
        {
            "errorDetail": {
                "code": 1,
                "message": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
            },
            "error": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
        },
        "returned a non-zero code: 1",
    ),
    # push refused (no login / expired token)
    (
        {
            "errorDetail": {
                "message": "denied: Your authorization token has expired. Reauthenticate and try again."
            },
            "error": "denied: Your authorization token has expired.",
        },
        "Reauthenticate",
    ),
    # older daemons: only "error"
    ({"error": "unauthorized: authentication required"}, "authentication required"),
    # only errorDetail
    ({"errorDetail": {"message": "manifest unknown"}}, "manifest unknown"),
]


@pytest.mark.parametrize(("chunk", "message"), FAILURES)
def test_every_error_chunk_shape_raises_with_the_daemons_message(chunk, message):
    with pytest.raises(DockerError, match=message):
        check_chunk(chunk)


def test_progress_chunks_pass_and_a_failure_midstream_stops_the_push():
    plan = Plan()
    assert len(follow(BUILD_OK, plan.aws)) == len(BUILD_OK)
    assert len(follow(PUSH_OK, plan.aws)) == len(PUSH_OK)
    assert "Step 1/9" in plan.printed and "pushed src-1 sha256:feed" in plan.printed
    assert "512" not in plan.printed  # byte counters are not printed
    consumed = []

    def stream():
        for chunk in [PUSH_OK[0], FAILURES[1][0], PUSH_OK[-1]]:
            consumed.append(chunk)
            yield chunk

    with pytest.raises(DockerError, match="token has expired"):
        follow(stream(), plan.aws)
    assert len(consumed) == 2


def test_progress_line_shapes():
    assert progress_line({"status": "Pushed", "id": "d3e4"}) == "d3e4: Pushed"
    assert progress_line({"stream": "\n"}) is None
    assert progress_line({"aux": {"ID": "sha256:1"}}) == "built sha256:1"


def test_registry_of():
    assert registry_of(f"{REPO_URI}:t") == REGISTRY
    assert registry_of("public.ecr.aws/docker/library/python:3.12-slim") == "public.ecr.aws"
    assert registry_of("python:3.12") == ""
    assert registry_of("library/python:3.12") == ""


def test_ecr_logins_for_the_target_and_a_private_base_image_in_another_region():
    plan = Plan()
    plan.ok("ecr", "get_authorization_token", token("target-pw"), {})
    plan.ok("ecr", "get_authorization_token", token("base-pw"), {}, region="us-west-2")
    base = "763104351884.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
    logins = logins_for(plan.aws, target_registry=REGISTRY, base_image=base)
    plan.verify()
    assert [(x.registry, x.username, x.password) for x in logins] == [
        (REGISTRY, "AWS", "target-pw"),
        ("763104351884.dkr.ecr.us-west-2.amazonaws.com", "AWS", "base-pw"),
    ]


def test_public_ecr_base_image_logs_in_through_ecr_public():
    plan = Plan()
    plan.ok("ecr", "get_authorization_token", token("target-pw"), {})
    plan.ok(
        "ecr-public",
        "get_authorization_token",
        {
            "authorizationData": {
                "authorizationToken": base64.b64encode(b"AWS:public-pw").decode(),
                "expiresAt": NOW,
            }
        },
        {},
        region="us-east-1",
    )
    logins = logins_for(
        plan.aws,
        target_registry=REGISTRY,
        base_image="public.ecr.aws/docker/library/python:3.12-slim-bookworm",
    )
    plan.verify()
    assert logins[1].registry == "public.ecr.aws" and logins[1].password == "public-pw"


def test_no_docker_daemon_fails_with_the_daemons_message_before_any_write(tmp_path):
    cfg = DeployConfig(stamp="20261125-090000")
    plan = Plan()
    plan.error(
        "ecr",
        "describe_repositories",
        "RepositoryNotFoundException",
        "not found",
        params={"repositoryNames": ["credit-explainer"]},
    )  # and no CreateRepository: the daemon is checked first
    with pytest.raises(DockerError) as info:
        build_and_push(plan.aws, cfg, docker_url=f"unix://{tmp_path}/docker.sock")
    plan.verify()
    message = str(info.value)
    assert "cannot reach the Docker daemon" in message
    assert "No such file or directory" in message  # the daemon connection's own error


def test_an_image_already_in_ecr_is_not_rebuilt():
    cfg = DeployConfig()
    plan = Plan()
    plan.ok("ecr", "describe_repositories", {"repositories": [{"repositoryUri": REPO_URI}]})
    plan.ok("ecr", "describe_images", {"imageDetails": [{"imageTags": [cfg.image_tag()]}]})
    assert build_and_push(plan.aws, cfg) == f"{REPO_URI}:{cfg.image_tag()}"
    plan.verify()


def test_build_context_holds_the_sources_and_nothing_else():
    root = repo_root()
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = docker.utils.build.tar(str(root), exclude=patterns, dockerfile=(DOCKERFILE, None))
    names = set(tarfile.open(fileobj=context).getnames())
    for wanted in (
        DOCKERFILE,
        "container/serve",
        "container/requirements.lock",  # the Dockerfile's COPY
        "model_src/pyproject.toml",
        "model_src/credit_schema/applicant.py",
        "model_src/credit_model/server.py",
    ):
        assert wanted in names
    # the model's sources and container/ only: nothing of the client, the Lambda or the tests
    assert {n.split("/")[0] for n in names} == {"container", "model_src", ".dockerignore"}
    assert not [n for n in names if ".egg-info" in n or "__pycache__" in n]
    assert not [n for n in names if n.endswith((".csv", ".pyc"))]
