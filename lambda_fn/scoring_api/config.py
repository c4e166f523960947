"""The scoring API's configuration, read once from the environment at cold start.

==================================  =========================================================
variable                            meaning (default)
==================================  =========================================================
``ENDPOINT_NAME``                   SageMaker endpoint to invoke (``credit-explainer``)
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``  botocore's own override of the runtime URL (local stack)
``MAX_APPLICANTS``                  applicants per request, 413 above (2000)
``MAX_BODY_BYTES``                  request body size, 413 above (6,000,000 bytes)
``DECISION_THRESHOLDS``             decision bands, e.g. ``approve:0.08,review:0.2,decline``
``REASONS_REFERENCE``               ``training`` (default) or ``cutoff``: explain against the
                                    applicants just inside the approval cutoff (needs bands)
                                    (label:upper bound, exclusive; the last label takes the
                                    rest); unset: no ``decision`` in responses
``SAGEMAKER_CONNECT_TIMEOUT``       seconds (2)
``SAGEMAKER_READ_TIMEOUT``          seconds per attempt (8)
``SAGEMAKER_MAX_ATTEMPTS``          total attempts including the first (3); an attempt is
                                    made only if it ends, at its longest, within the
                                    request's time budget (:meth:`Settings.time_budget`)
``AWS_RETRY_MODE``                  botocore retry mode, ``standard`` or ``adaptive`` (standard)
``HEALTH_CHECK``                    ``describe-endpoint`` (SageMaker DescribeEndpoint, needs
                                    ``sagemaker:DescribeEndpoint``) or ``ping`` (``GET /ping``
                                    on the runtime URL: the local model server) (describe-endpoint)
``HEALTH_CACHE_SECONDS``            how long a health result is reused (10)
``ENABLE_SWAGGER``                  serve ``GET /swagger`` (UI, ``?format=json`` for the
                                    document) (true)
``RECORDS_STREAM``                  Amazon Data Firehose stream that keeps the decision records
                                    (:mod:`scoring_api.records`); template.yaml sets it
``RECORDS_DIR``                     or a directory for them (the local stack's ``--records``);
                                    neither: no records kept
``CREDIT_EXPLAINER_SCHEMA``         the schema file of the model the API fronts (its
                                    ``schema.json``, shipped with the function; a relative
                                    path is read from the working directory); unset: the
                                    built-in Give Me Some Credit schema
==================================  =========================================================

A bad value fails the cold start with a message naming the variable: a
misconfigured function must not answer with silently wrong decisions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from credit_schema import (
    DEFAULT_ENDPOINT_NAME,
    DEFAULT_MAX_APPLICANTS,
    DEFAULT_MAX_BODY_BYTES,
    ApplicantSchema,
    SchemaError,
    builtin_schema,
    read_schema,
)
from credit_schema.decisions import DecisionBands
from credit_schema.edge import API_GATEWAY_TIMEOUT_SECONDS

HEALTH_CHECKS = ("describe-endpoint", "ping")
#: Names the schema file of the model the API fronts.
SCHEMA_ENV = "CREDIT_EXPLAINER_SCHEMA"
#: Seconds kept back from the time budget to build and return the answer.
ANSWER_RESERVE_SECONDS = 2.0


class ConfigurationError(ValueError):
    """An environment variable holds a value the API cannot run with."""


def _bands(text: str) -> DecisionBands:
    try:
        bands = DecisionBands.parse(text)
        bands.custom_attributes()  # sent to the model with every request: must fit its header
        return bands
    except ValueError as exc:
        raise ConfigurationError(f"DECISION_THRESHOLDS: {exc}") from None


def _positive(env: Mapping[str, str], name: str, default: float, kind: type = int) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {raw!r}")
    return float(value) if kind is float else int(value)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    endpoint_name: str = DEFAULT_ENDPOINT_NAME
    max_applicants: int = DEFAULT_MAX_APPLICANTS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    decision_bands: DecisionBands | None = None
    #: ``cutoff``: reasons against the applicants just inside the approval cutoff.
    reasons_reference: str = "training"
    connect_timeout: float = 2.0
    read_timeout: float = 8.0
    max_attempts: int = 3
    retry_mode: str = "standard"
    health_check: str = "describe-endpoint"
    health_cache_seconds: float = 10.0
    enable_swagger: bool = True
    records_stream: str | None = None
    records_dir: str | None = None
    schema_file: str | None = None

    def schema(self) -> ApplicantSchema:
        """The schema requests are validated with: the model's file, else the built-in one."""
        if not self.schema_file:
            return builtin_schema()
        try:
            return read_schema(self.schema_file)
        except SchemaError as exc:
            raise ConfigurationError(f"{SCHEMA_ENV}: {exc}") from None

    def time_budget(self, remaining_seconds: float) -> float:
        """Seconds a request may spend on the endpoint: within the Lambda's remaining time and
        API Gateway's timeout, with :data:`ANSWER_RESERVE_SECONDS` left to answer."""
        return min(remaining_seconds, API_GATEWAY_TIMEOUT_SECONDS) - ANSWER_RESERVE_SECONDS

    def __post_init__(self) -> None:
        if self.records_stream and self.records_dir:
            raise ConfigurationError("set RECORDS_STREAM or RECORDS_DIR, not both")
        if self.records_dir and not os.path.isdir(self.records_dir):
            raise ConfigurationError(f"RECORDS_DIR: no directory {self.records_dir}")
        if self.connect_timeout + self.read_timeout > self.time_budget(math.inf):
            raise ConfigurationError(
                "SAGEMAKER_CONNECT_TIMEOUT + SAGEMAKER_READ_TIMEOUT must leave "
                f"{ANSWER_RESERVE_SECONDS:g} s of API Gateway's {API_GATEWAY_TIMEOUT_SECONDS:g} s "
                f"to answer, got {self.connect_timeout:g} + {self.read_timeout:g} s"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        endpoint = env.get("ENDPOINT_NAME", "").strip() or cls.endpoint_name
        retry_mode = env.get("AWS_RETRY_MODE", "").strip() or "standard"
        if retry_mode not in ("standard", "adaptive"):
            raise ConfigurationError(
                f"AWS_RETRY_MODE must be standard or adaptive, got {retry_mode!r}"
            )
        health = env.get("HEALTH_CHECK", "").strip() or cls.health_check
        if health not in HEALTH_CHECKS:
            raise ConfigurationError(f"HEALTH_CHECK must be one of {HEALTH_CHECKS}, got {health!r}")
        thresholds = env.get("DECISION_THRESHOLDS", "").strip()
        reference = env.get("REASONS_REFERENCE", "").strip() or "training"
        if reference not in ("training", "cutoff") or (reference == "cutoff" and not thresholds):
            raise ConfigurationError(
                "REASONS_REFERENCE must be training, or cutoff with DECISION_THRESHOLDS set, "
                f"got {reference!r}"
            )
        return cls(
            reasons_reference=reference,
            endpoint_name=endpoint,
            max_applicants=int(_positive(env, "MAX_APPLICANTS", DEFAULT_MAX_APPLICANTS)),
            max_body_bytes=int(_positive(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            decision_bands=_bands(thresholds) if thresholds else None,
            connect_timeout=_positive(env, "SAGEMAKER_CONNECT_TIMEOUT", 2.0, float),
            read_timeout=_positive(env, "SAGEMAKER_READ_TIMEOUT", 8.0, float),
            max_attempts=int(_positive(env, "SAGEMAKER_MAX_ATTEMPTS", 3)),
            retry_mode=retry_mode,
            health_check=health,
            health_cache_seconds=_positive(env, "HEALTH_CACHE_SECONDS", 10.0, float),
            enable_swagger=_flag(env, "ENABLE_SWAGGER", True),
            records_stream=env.get("RECORDS_STREAM", "").strip() or None,
            records_dir=env.get("RECORDS_DIR", "").strip() or None,
            schema_file=env.get(SCHEMA_ENV, "").strip() or None,
        )
