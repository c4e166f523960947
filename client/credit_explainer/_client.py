"""``CreditExplainerClient`` and ``AsyncCreditExplainerClient``: the scoring API from Python.

::

    from credit_explainer import CreditExplainerClient

    with CreditExplainerClient("http://127.0.0.1:3000") as client:   # or CREDIT_EXPLAINER_URL
        score = client.score(applicant)
        print(score.top(3), score.reasons(cutoff=0.2))

Both clients share :class:`~credit_explainer._base.ClientCore` (request
building, response parsing, errors, the retry decision, the batching plan);
each adds only its I/O: send and sleep. Applicants are validated against the
schema the API serves (``GET /schema``, fetched once per client).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
from credit_schema import BUILTIN, ApplicantBase, ApplicantSchema

from ._base import (
    HEALTH_PATH,
    SCHEMA_PATH,
    SCORE_PATH,
    Batch,
    ClientCore,
    OnError,
    Outcome,
    ProgressCallback,
    ScoreManyPlan,
)
from ._config import DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT, RetryPolicy
from ._exceptions import CreditExplainerError, NotFoundError, UsageError
from ._inputs import ApplicantLike, ApplicantsLike, validate_one
from ._models import Score, ScoreResults

__all__ = ["AsyncCreditExplainerClient", "CreditExplainerClient"]

# Module-level so tests of the retry timing can record the waits instead of waiting.
_sleep = time.sleep
_async_sleep = asyncio.sleep


HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)


class _ClientBase(Generic[HttpT]):
    """What both clients share beyond :class:`ClientCore`: accessors and the score_many plan."""

    _core: ClientCore
    _http: HttpT
    _schema: ApplicantSchema | None

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._core.retry_policy

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    def _plan(
        self,
        applicants: ApplicantsLike,
        schema: ApplicantSchema,
        batch_size: int | None,
        on_error: OnError,
        progress: ProgressCallback | None,
    ) -> ScoreManyPlan:
        return ScoreManyPlan(
            applicants,
            schema=schema,
            batch_size=self._core.batch_size if batch_size is None else batch_size,
            on_error=on_error,
            progress=progress,
        )

    def _schema_response(self, response: httpx.Response | None) -> ApplicantSchema:
        # None: the API answered 404 for GET /schema (one from before it served its schema),
        # so it serves the built-in one.
        self._schema = BUILTIN if response is None else self._core.parse_schema(response)
        return self._schema

    def _score_request(self, batch: Batch) -> httpx.Request:
        return self._http.build_request(
            "POST",
            SCORE_PATH,
            content=self._core.score_body(batch.applicants),
            headers=self._core.score_headers(),
        )


class CreditExplainerClient(_ClientBase[httpx.Client]):
    """A synchronous client of the credit-explainer scoring API.

    ``url`` is the API's base URL (with its stage, e.g.
    ``https://abc123.execute-api.eu-west-1.amazonaws.com/Prod``; the local stack's
    ``http://127.0.0.1:3000``), else ``$CREDIT_EXPLAINER_URL``; ``api_key`` is
    sent as ``x-api-key``, else ``$CREDIT_EXPLAINER_API_KEY``. ``timeout`` is a
    float or an :class:`httpx.Timeout`; ``max_retries`` retries after 429, 503 and
    connection errors (:class:`RetryPolicy` for the rest of the policy).
    ``batch_size`` is ``score_many``'s applicants per request. ``transport``
    replaces httpx's network transport (tests, proxies). Applicants are
    validated locally first, against ``schema`` (default: the schema the API
    serves, fetched once with ``GET /schema``); every explanation is checked to add up.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        headers: dict[str, str] | None = None,
        check_additivity: bool = True,
        transport: httpx.BaseTransport | None = None,
        schema: ApplicantSchema | None = None,
    ) -> None:
        self._core = ClientCore(
            url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            batch_size=batch_size,
            headers=headers,
            check_additivity=check_additivity,
        )
        self._http = httpx.Client(transport=transport, **self._core.client_options())
        self._schema = schema

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the API -----------------------------------------------------------------------------

    def schema(self) -> ApplicantSchema:
        """The schema the API validates with (``GET /schema``, fetched once per client)."""
        if self._schema is not None:
            return self._schema
        try:
            response: httpx.Response | None = self._send(self._http.build_request("GET", SCHEMA_PATH))
        except NotFoundError:
            response = None
        return self._schema_response(response)

    def score(self, applicant: ApplicantLike) -> Score:
        """Score one applicant (a dict, a list of values in schema order, a pandas row, or an
        applicant model such as the built-in ``Applicant``)."""
        schema = self.schema()
        one = validate_one(applicant, schema)
        return self._score_batch(Batch([0], [one]), schema)[0]

    def score_many(
        self,
        applicants: ApplicantsLike,
        *,
        batch_size: int | None = None,
        on_error: OnError = "raise",
        progress: ProgressCallback | None = None,
        concurrency: int = 1,
    ) -> ScoreResults:
        """Score a list or DataFrame of applicants in batches; results in input order.

        ``on_error="raise"`` refuses the whole input if any applicant is invalid
        (nothing is sent) and raises the first API error; ``"collect"`` scores
        what it can and returns the rest as :class:`Failure` items with their
        errors (transport and authentication errors are raised in any mode).
        ``progress(done, total)`` is called after each batch. ``concurrency``
        requests are in flight at once (threads; mind the API's rate limits).
        """
        plan = self._plan(applicants, self.schema(), batch_size, on_error, progress)
        if concurrency < 1:
            raise UsageError("concurrency must be at least 1")
        if concurrency == 1:
            while (batch := plan.next_batch()) is not None:
                plan.record(batch, self._try_batch(batch, plan.schema))
            return plan.result()
        with ThreadPoolExecutor(concurrency, thread_name_prefix="credit-explainer") as pool:
            running: dict[Future[Outcome], Batch] = {}
            try:
                while True:
                    while len(running) < concurrency and (batch := plan.next_batch()):
                        running[pool.submit(self._try_batch, batch, plan.schema)] = batch
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        plan.record(running.pop(future), future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return plan.result()

    def health(self) -> dict[str, Any]:
        """``GET /health``: the API's view of the model endpoint (raises on 503)."""
        return self._core.parse_json(self._send(self._http.build_request("GET", HEALTH_PATH)))

    # -- I/O ---------------------------------------------------------------------------------

    def _try_batch(self, batch: Batch, schema: ApplicantSchema) -> Outcome:
        try:
            return self._score_batch(batch, schema)
        except CreditExplainerError as exc:
            return exc

    def _score_batch(self, batch: Batch, schema: ApplicantSchema) -> list[Score]:
        response = self._send(self._score_request(batch))
        return self._core.parse_scores(response, batch.indices, schema)

    def _send(self, request: httpx.Request) -> httpx.Response:
        retry = 0
        while True:
            cause: httpx.HTTPError | None = None
            try:
                response = self._http.send(request)
            except httpx.HTTPError as exc:
                cause, error = exc, self._core.convert(exc)
            else:
                if not response.is_error:
                    return response
                error = self._core.error_for(response)
            delay = self._core.retry_delay(retry, error, cause)
            if delay is None:
                raise error from cause
            self._core.log_retry(request, error, delay, retry, self.retry_policy.max_retries)
            _sleep(delay)
            retry += 1


class AsyncCreditExplainerClient(_ClientBase[httpx.AsyncClient]):
    """The asyncio twin of :class:`CreditExplainerClient` (same options, same results)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        headers: dict[str, str] | None = None,
        check_additivity: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        schema: ApplicantSchema | None = None,
    ) -> None:
        self._core = ClientCore(
            url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            batch_size=batch_size,
            headers=headers,
            check_additivity=check_additivity,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._core.client_options())
        self._schema = schema

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    close = aclose

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def schema(self) -> ApplicantSchema:
        """The schema the API validates with (``GET /schema``, fetched once per client)."""
        if self._schema is not None:
            return self._schema
        try:
            request = self._http.build_request("GET", SCHEMA_PATH)
            response: httpx.Response | None = await self._send(request)
        except NotFoundError:
            response = None
        return self._schema_response(response)

    async def score(self, applicant: ApplicantLike) -> Score:
        """Score one applicant (see :meth:`CreditExplainerClient.score`)."""
        schema = await self.schema()
        one: ApplicantBase = validate_one(applicant, schema)
        return (await self._score_batch(Batch([0], [one]), schema))[0]

    async def score_many(
        self,
        applicants: ApplicantsLike,
        *,
        batch_size: int | None = None,
        on_error: OnError = "raise",
        progress: ProgressCallback | None = None,
        concurrency: int = 1,
    ) -> ScoreResults:
        """See :meth:`CreditExplainerClient.score_many` (``concurrency``: tasks in flight)."""
        plan = self._plan(applicants, await self.schema(), batch_size, on_error, progress)
        if concurrency < 1:
            raise UsageError("concurrency must be at least 1")
        running: dict[asyncio.Task[Outcome], Batch] = {}
        try:
            while True:
                while len(running) < concurrency and (batch := plan.next_batch()):
                    running[asyncio.ensure_future(self._try_batch(batch, plan.schema))] = batch
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    plan.record(running.pop(task), task.result())
        finally:
            for task in running:
                task.cancel()
        return plan.result()

    async def _try_batch(self, batch: Batch, schema: ApplicantSchema) -> Outcome:
        try:
            return await self._score_batch(batch, schema)
        except CreditExplainerError as exc:
            return exc

    async def health(self) -> dict[str, Any]:
        """``GET /health``: the API's view of the model endpoint (raises on 503)."""
        return self._core.parse_json(await self._send(self._http.build_request("GET", HEALTH_PATH)))

    async def _score_batch(self, batch: Batch, schema: ApplicantSchema) -> list[Score]:
        response = await self._send(self._score_request(batch))
        return self._core.parse_scores(response, batch.indices, schema)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        retry = 0
        while True:
            cause: httpx.HTTPError | None = None
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                cause, error = exc, self._core.convert(exc)
            else:
                if not response.is_error:
                    return response
                error = self._core.error_for(response)
            delay = self._core.retry_delay(retry, error, cause)
            if delay is None:
                raise error from cause
            self._core.log_retry(request, error, delay, retry, self.retry_policy.max_retries)
            await _async_sleep(delay)
            retry += 1
