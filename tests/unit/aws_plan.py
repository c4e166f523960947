"""Test helper: botocore Stubbers (real service models, parameter validation on) on every
client of a deploy ``Aws``, with the order of requests across services checked too."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from credit_explainer_tools.deploy.aws import Aws

NOW = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
ACCOUNT = "111122223333"
REGION = "eu-west-1"
__all__ = ["ACCOUNT", "ANY", "NOW", "REGION", "Plan", "no_aws_credentials"]


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No credentials anywhere botocore looks (a dry run then cannot see any account)."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)


class UnplannedRequest(AssertionError):
    pass


def _no_network(request: Any, **_: Any) -> None:
    raise UnplannedRequest(f"unplanned AWS request: {request.method} {request.url}")


class Plan:
    """Expected AWS requests, in order; ``verify()`` checks all were made, in that order."""

    def __init__(self, region: str = REGION, **aws_options: Any) -> None:
        session = boto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=region
        )
        # Nothing may reach the network: a request that no Stubber answered fails at once.
        session._session.register("before-send", _no_network)
        self.out = io.StringIO()
        self.sleeps: list[float] = []
        self.aws = Aws(
            session=session, poll_seconds=0, out=self.out, sleep=self.sleeps.append, **aws_options
        )
        self.expected: list[str] = []
        self.actual: list[str] = []
        self._stubbers: dict[str, Stubber] = {}

    def _stubber(self, service: str, region: str | None) -> Stubber:
        key = f"{service}@{region or self.aws.region}"
        if key not in self._stubbers:
            client = self.aws.client(service, region)
            stubber = Stubber(client)
            client.meta.events.register("before-parameter-build.*.*", self._record)
            stubber.activate()
            self._stubbers[key] = stubber
        return self._stubbers[key]

    def _record(self, model: Any, **_: Any) -> None:
        self.actual.append(f"{model.service_model.service_name}.{model.name}")

    def _operation(self, service: str, method: str, region: str | None) -> str:
        client = self.aws.client(service, region)
        return (
            f"{client.meta.service_model.service_name}.{client.meta.method_to_api_mapping[method]}"
        )

    def ok(
        self,
        service: str,
        method: str,
        response: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        region: str | None = None,
    ) -> Plan:
        self._stubber(service, region).add_response(method, response or {}, params)
        self.expected.append(self._operation(service, method, region))
        return self

    def error(
        self,
        service: str,
        method: str,
        code: str,
        message: str = "",
        status: int = 400,
        params: dict[str, Any] | None = None,
        region: str | None = None,
    ) -> Plan:
        self._stubber(service, region).add_client_error(
            method,
            service_error_code=code,
            service_message=message or code,
            http_status_code=status,
            expected_params=params,
        )
        self.expected.append(self._operation(service, method, region))
        return self

    def verify(self) -> None:
        assert self.actual == self.expected
        for stubber in self._stubbers.values():
            stubber.assert_no_pending_responses()

    @property
    def printed(self) -> str:
        return self.out.getvalue()
