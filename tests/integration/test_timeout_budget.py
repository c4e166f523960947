"""Issue 20: the scoring API's time budget holds for every setting the template allows.

An invocation makes no attempt that could end, at its longest (connect + read timeouts,
after botocore's longest backoff), past the request's budget: the Lambda's remaining
time and API Gateway's 29 s, less 2 s to answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import standard
from cfnlint.decode.cfn_yaml import loads
from credit_schema.edge import API_GATEWAY_TIMEOUT_SECONDS
from scoring_api.config import ConfigurationError, Settings
from scoring_api.endpoint import longest_backoff, worst_case_seconds

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = loads((ROOT / "template.yaml").read_text())
FUNCTION_ENV = TEMPLATE["Resources"]["ScoringFunction"]["Properties"]["Environment"]["Variables"]
LAMBDA_TIMEOUT = float(TEMPLATE["Globals"]["Function"]["Timeout"])
READ = TEMPLATE["Parameters"]["SageMakerReadTimeout"]
#: Every read timeout the template allows, in half seconds.
ALLOWED_READ_TIMEOUTS = [
    READ["MinValue"] + i / 2 for i in range(int(2 * (READ["MaxValue"] - READ["MinValue"])) + 1)
]


def template_settings(read_timeout: float) -> Settings:
    return Settings.from_env(
        {
            "SAGEMAKER_READ_TIMEOUT": str(read_timeout),
            "SAGEMAKER_CONNECT_TIMEOUT": FUNCTION_ENV["SAGEMAKER_CONNECT_TIMEOUT"],
            "SAGEMAKER_MAX_ATTEMPTS": FUNCTION_ENV["SAGEMAKER_MAX_ATTEMPTS"],
            "AWS_RETRY_MODE": FUNCTION_ENV["AWS_RETRY_MODE"],
        }
    )


@pytest.mark.parametrize("read_timeout", ALLOWED_READ_TIMEOUTS)
def test_the_worst_case_leaves_2_s_of_the_lambda_and_api_gateway_timeouts(
    read_timeout: float,
) -> None:
    settings = template_settings(read_timeout)
    budget = settings.time_budget(LAMBDA_TIMEOUT)
    worst = worst_case_seconds(settings, budget)
    assert worst <= min(LAMBDA_TIMEOUT, API_GATEWAY_TIMEOUT_SECONDS) - 2.0
    # The reference: the most attempts n with n * (connect + read) + their backoffs in budget.
    per_attempt = settings.connect_timeout + read_timeout
    for n in range(settings.max_attempts, 0, -1):
        total = n * per_attempt + sum(min(2.0 ** (k - 1), 20.0) for k in range(1, n))
        if total <= budget:
            break
    assert worst == total
    assert n >= 1 and worst >= per_attempt


@pytest.mark.parametrize("attempts", range(1, 8))
@pytest.mark.parametrize("new_retries", [False, True])
def test_longest_backoff_bounds_botocores_own(
    attempts: int, new_retries: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(standard, "NEW_RETRIES_ENABLED", new_retries)
    backoff = standard.ExponentialBackoff(
        random=lambda: 1.0,  # jitter at its largest
        throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter()),
    )
    throttled = standard.RetryContext(
        attempt_number=attempts,
        parsed_response={"Error": {"Code": "ThrottlingException"}},
        http_response=AWSResponse("https://x", 400, {"x-amz-retry-after": "600000"}, None),
    )
    timed_out = standard.RetryContext(attempt_number=attempts)
    assert backoff.delay_amount(timed_out) <= longest_backoff(attempts)
    retry_after = longest_backoff(attempts, retry_after=new_retries)
    assert backoff.delay_amount(throttled) == pytest.approx(retry_after)


def test_timeouts_that_cannot_fit_api_gateways_budget_fail_the_cold_start() -> None:
    with pytest.raises(ConfigurationError, match="SAGEMAKER_READ_TIMEOUT"):
        Settings.from_env({"SAGEMAKER_READ_TIMEOUT": "26", "SAGEMAKER_CONNECT_TIMEOUT": "2"})
    assert Settings.from_env({"SAGEMAKER_READ_TIMEOUT": "25"}).read_timeout == 25.0
