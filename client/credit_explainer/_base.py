"""The one implementation behind the sync and async clients.

Everything except the I/O lives here: configuration, request building,
response parsing, the conversion of foreign errors, the retry decision, and the
``score_many`` batching plan (a generator the two clients drive, each with its
own send). The clients only send requests and sleep.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
from credit_schema import (
    CONTENT_TYPE_JSON,
    ApplicantBase,
    ApplicantSchema,
    ErrorDetail,
    SchemaError,
    ScoreResponse,
    compile_schema,
    parse_schema,
)
from pydantic import ValidationError as PydanticValidationError

from ._config import (
    API_KEY_ENV,
    DEFAULT_RETRY_POLICY,
    URL_ENV,
    RetryPolicy,
)
from ._exceptions import (
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    ConnectError,
    CreditExplainerError,
    NotFoundError,
    PayloadTooLargeError,
    TimeoutError,
    TransportError,
    UsageError,
    ValidationError,
    error_for_response,
)
from ._inputs import (
    ApplicantsLike,
    describe,
    invalid_applicants_error,
    record_ids,
    records_and_labels,
    validate_applicants,
)
from ._models import ADDITIVITY_TOLERANCE, Failure, Score, ScoreResults
from ._version import __version__

logger = logging.getLogger("credit_explainer")

SCORE_PATH: Final = "/score"
HEALTH_PATH: Final = "/health"
SCHEMA_PATH: Final = "/schema"
USER_AGENT: Final = (
    f"credit-explainer-python/{__version__} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)

OnError = Literal["raise", "collect"]
#: ``progress(done, total)``: called after every batch with the inputs handled so far.
ProgressCallback = Callable[[int, int], None]


class ClientCore:
    """Configuration and the I/O-free halves of every call, shared by both clients."""

    def __init__(
        self,
        url: str | None,
        *,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int | None,
        retry_policy: RetryPolicy | None,
        batch_size: int,
        headers: dict[str, str] | None,
        check_additivity: bool,
    ) -> None:
        url = url or os.environ.get(URL_ENV)
        if not url:
            raise UsageError(
                f"no API URL: pass url=... (the CLI: --url) or set {URL_ENV} "
                "(for the local stack, the URL `credit-explainer up` prints)"
            )
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        self.base_url = url.rstrip("/")
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        policy = retry_policy or DEFAULT_RETRY_POLICY
        self.retry_policy = policy if max_retries is None else policy.with_max_retries(max_retries)
        self.batch_size = batch_size
        self.check_additivity = check_additivity
        self.headers: dict[str, str] = {
            "user-agent": USER_AGENT,
            "accept": CONTENT_TYPE_JSON,
            **(headers or {}),
        }
        if api_key:
            self.headers["x-api-key"] = api_key  # API Gateway's API key header

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the ``httpx.Client`` / ``httpx.AsyncClient``."""
        return {"base_url": self.base_url, "headers": self.headers, "timeout": self.timeout}

    # -- requests ----------------------------------------------------------------------------

    @staticmethod
    def score_body(applicants: Sequence[ApplicantBase]) -> bytes:
        """The canonical request: ``{"instances": [{wire name: value, ...}, ...]}``."""
        instances = [a.model_dump(by_alias=True) for a in applicants]
        return json.dumps({"instances": instances}, allow_nan=False).encode()

    @staticmethod
    def score_headers() -> dict[str, str]:
        return {"content-type": CONTENT_TYPE_JSON}

    # -- responses ---------------------------------------------------------------------------

    @classmethod
    def parse_schema(cls, response: httpx.Response) -> ApplicantSchema:
        """A 2xx ``GET /schema`` response -> the compiled schema the API validates with."""
        try:
            return compile_schema(parse_schema(cls.parse_json(response), source="GET /schema"))
        except SchemaError as exc:
            raise APIResponseError(f"the API's schema cannot be used: {exc}", response=response) from exc

    def parse_scores(
        self, response: httpx.Response, indices: Sequence[int], schema: ApplicantSchema
    ) -> list[Score]:
        """A 2xx ``POST /score`` response -> one :class:`Score` per applicant sent."""
        try:
            body = ScoreResponse.model_validate_json(response.content)
        except PydanticValidationError as exc:
            raise APIResponseError(
                f"the API's response is not a ScoreResponse: {exc.error_count()} problem(s), "
                f"first: {exc.errors()[0]['msg']}",
                response=response,
            ) from exc
        if len(body.results) != len(indices):
            raise APIResponseError(
                f"sent {len(indices)} applicant(s), the API answered {len(body.results)}",
                response=response,
            )
        results = sorted(body.results, key=lambda r: r.index)
        if [r.index for r in results] != list(range(len(indices))):
            raise APIResponseError(
                "the API's results do not number the applicants sent 0..n-1", response=response
            )
        scores: list[Score] = []
        for position, result in zip(indices, results, strict=True):
            score = Score.model_construct(
                **{name: getattr(result, name) for name in type(result).model_fields},
                model_version=body.model_version,
                request_id=body.request_id,
                reason_codes_version=body.reason_codes_version,
            )
            score.index = position
            score._schema = schema
            if self.check_additivity:
                score.check(ADDITIVITY_TOLERANCE)
            scores.append(score)
        return scores

    @staticmethod
    def parse_json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise APIResponseError("the API's response is not JSON", response=response) from exc
        if not isinstance(data, dict):
            raise APIResponseError("the API's response is not a JSON object", response=response)
        return data

    # -- errors and retries ------------------------------------------------------------------

    @staticmethod
    def convert(exc: httpx.HTTPError) -> CreditExplainerError:
        """The one boundary where httpx's errors become ours (callers add ``from exc``)."""
        where = f" ({exc.request.method} {exc.request.url})" if _has_request(exc) else ""
        if isinstance(exc, httpx.TimeoutException):
            kind = type(exc).__name__.replace("Timeout", " timeout").lower()
            return TimeoutError(f"{kind}{where}: {exc}")
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            local = isinstance(exc, httpx.ConnectError) and _is_loopback(exc)
            hint = "; is the local stack running? (credit-explainer up)" if local else ""
            return ConnectError(f"cannot reach the API{where}: {exc}{hint}")
        return TransportError(f"request failed{where}: {exc}")

    def retry_delay(
        self, retry: int, error: CreditExplainerError, cause: BaseException | None
    ) -> float | None:
        """Seconds to wait before retrying after ``error``, or None: do not retry."""
        if isinstance(error, APIStatusError):
            if error.status not in self.retry_policy.retry_statuses:
                return None
            return self.retry_policy.delay(retry, error.retry_after)
        if isinstance(error, ConnectError) or isinstance(
            cause, httpx.ConnectTimeout | httpx.PoolTimeout
        ):
            return self.retry_policy.delay(retry, None)
        return None  # read/write timeouts and the rest: the request may have been processed

    @staticmethod
    def log_retry(
        request: httpx.Request,
        error: CreditExplainerError,
        delay: float,
        retry: int,
        max_retries: int,
    ) -> None:
        reason = str(error.status) if isinstance(error, APIStatusError) else type(error).__name__
        logger.info(
            "retrying %s %s in %.2f s after %s (retry %d of %d)",
            request.method,
            request.url.path,
            delay,
            reason,
            retry + 1,
            max_retries,
        )

    @staticmethod
    def error_for(response: httpx.Response) -> APIStatusError:
        return error_for_response(response)


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when unset
    except RuntimeError:
        return False
    return True


def _is_loopback(exc: httpx.HTTPError) -> bool:
    """A refused connection to this machine: most often the local stack is not started."""
    return _has_request(exc) and exc.request.url.host in {"127.0.0.1", "localhost", "::1"}


# -- score_many: the batching plan ---------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Applicants to send in one request, with their positions in the caller's input."""

    indices: list[int]
    applicants: list[ApplicantBase]


Outcome = list[Score] | CreditExplainerError

#: Errors after which no other batch can succeed either: stop and raise, in any mode.
_FATAL = (TransportError, AuthenticationError, NotFoundError, APIResponseError)


class ScoreManyPlan:
    """Validation, batching and assembly of ``score_many``'s result, without I/O.

    A driver takes batches with :meth:`next_batch`, sends them (several at once
    if it likes), and hands each outcome, scores or error, to :meth:`record`,
    until :attr:`finished`; :meth:`result` is then the answer. A 413 splits the
    batch in two and queues both halves; a 422 from the API in ``collect`` mode
    marks the applicants it names as failed and queues the rest again; other API
    errors fail the batch (``collect``) or are raised (``raise``). Transport and
    authentication errors are always raised.
    """

    def __init__(
        self,
        applicants: ApplicantsLike,
        *,
        schema: ApplicantSchema,
        batch_size: int,
        on_error: OnError,
        progress: ProgressCallback | None,
    ) -> None:
        if on_error not in ("raise", "collect"):
            raise UsageError("on_error must be 'raise' or 'collect'")
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        records, self.labels = records_and_labels(applicants, schema)
        self.schema = schema
        self.total = len(records)
        self.on_error: OnError = on_error
        self.progress = progress
        validated, problems = validate_applicants(records, schema)
        # Kept for the applicants that get no score, so that their failures carry them too.
        self.ids = [record_ids(r, schema) for r in records] if schema.id_columns else None
        if problems and on_error == "raise":
            raise invalid_applicants_error(problems, self.total)
        self.applicants = validated
        self.items: list[Score | Failure | None] = [None] * self.total
        for i, details in problems.items():
            if i >= 0:
                self.items[i] = self._failure(i, describe(details), details, None, "validation_error")
        self.done = sum(1 for x in self.items if x is not None)
        good = [i for i, a in enumerate(validated) if a is not None]
        self.queue: deque[list[int]] = deque(
            good[start : start + batch_size] for start in range(0, len(good), batch_size)
        )
        self.in_flight = 0
        self._report()

    def _failure(
        self, i: int, message: str, errors: list[ErrorDetail], status: int | None, code: str | None
    ) -> Failure:
        ids = self.ids[i] if self.ids is not None else None
        return Failure(i, message, errors, status, code, ids)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    @property
    def finished(self) -> bool:
        return not self.queue and not self.in_flight

    def next_batch(self) -> Batch | None:
        """The next batch to send, or None when none is waiting (some may be in flight)."""
        if not self.queue:
            return None
        idx = self.queue.popleft()
        self.in_flight += 1
        applicants = [self.applicants[i] for i in idx]
        return Batch(idx, [a for a in applicants if a is not None])

    def record(self, batch: Batch, outcome: Outcome) -> None:
        """Take the outcome of a batch; raises what must stop the whole run."""
        self.in_flight -= 1
        idx = batch.indices
        if isinstance(outcome, list):
            for score in outcome:
                self.items[score.index] = score
            self.done += len(idx)
        elif isinstance(outcome, PayloadTooLargeError) and len(idx) > 1:
            mid = len(idx) // 2
            logger.info("413 for a batch of %d: splitting it in two", len(idx))
            self.queue.appendleft(idx[mid:])
            self.queue.appendleft(idx[:mid])
            return
        elif self.on_error == "raise" or isinstance(outcome, _FATAL):
            raise outcome
        elif isinstance(outcome, ValidationError) and _names_applicants(outcome, len(idx)):
            by_position: dict[int, list[ErrorDetail]] = {}
            for d in outcome.errors:
                assert d.applicant is not None
                by_position.setdefault(d.applicant, []).append(
                    d.model_copy(update={"applicant": idx[d.applicant]})
                )
            for j, details in by_position.items():
                self.items[idx[j]] = self._failure(
                    idx[j], describe(details), details, 422, outcome.code
                )
            rest = [i for j, i in enumerate(idx) if j not in by_position]
            if rest:
                self.queue.appendleft(rest)
            self.done += len(by_position)
        else:
            status = outcome.status if isinstance(outcome, APIStatusError) else None
            code = outcome.code if isinstance(outcome, APIStatusError) else None
            for i in idx:
                self.items[i] = self._failure(i, str(outcome), [], status, code)
            self.done += len(idx)
        self._report()

    def result(self) -> ScoreResults:
        assert self.finished and all(x is not None for x in self.items)
        return ScoreResults(
            [x for x in self.items if x is not None], self.labels, schema=self.schema
        )


def _names_applicants(error: ValidationError, n: int) -> bool:
    return bool(error.errors) and all(
        d.applicant is not None and 0 <= d.applicant < n for d in error.errors
    )
