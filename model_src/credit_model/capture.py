"""Data capture in SageMaker's own format, written off the request path.

Every successful invocation becomes one JSON line, as SageMaker Data Capture
writes it::

    {"captureData": {"endpointInput": {"observedContentType": ..., "mode": "INPUT",
                                       "data": ..., "encoding": "JSON"},
                     "endpointOutput": {... "mode": "OUTPUT" ...}},
     "eventMetadata": {"eventId": ..., "inferenceId": ..., "inferenceTime": "...Z"},
     "eventVersion": "0"}

under ``<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl`` (the
UTC hour of the record). ``encoding`` is ``JSON`` with the body as text for the
JSON content types (:data:`credit_schema.content_types.CAPTURE_JSON_CONTENT_TYPES`,
what the AWS endpoint is configured with) in UTF-8, else ``BASE64``, as SageMaker does.

The request only appends the bodies to a bounded queue; one writer thread wakes every
:data:`WRITE_INTERVAL` seconds, encodes and appends what is there (waking it per record cost a
thread switch per request: a third of the server's requests/s). When the queue is full the record is dropped, counted
(:attr:`CaptureWriter.dropped`) and logged (the first, then every 1,000th): a
request never waits for the disk. :meth:`CaptureWriter.close` (clean shutdown)
writes everything queued before it returns. Logs carry counts and paths, never
bodies.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Final, NamedTuple

from credit_schema import DEFAULT_VARIANT
from credit_schema.capture_format import CAPTURE_LINE, INFERENCE_TIME
from credit_schema.content_types import CAPTURE_JSON_CONTENT_TYPES, media_type
from credit_schema.edge import new_id
from pydantic_core import to_json

logger = logging.getLogger("credit_model.capture")

#: The request header boto3's ``invoke_endpoint(InferenceId=...)`` sends.
INFERENCE_ID_HEADER: Final = "x-amzn-sagemaker-inference-id"
CAPTURE_DIR_ENV: Final = "CREDIT_EXPLAINER_CAPTURE_DIR"
#: Records waiting for the writer; past this, records are dropped rather than requests delayed.
DEFAULT_MAX_QUEUE: Final = 10_000
_LOG_EVERY_DROP: Final = 1_000
#: How often the writer thread writes what is queued (at most this much is unwritten on a crash);
#: small batches refill the page-cache pages the last one freed while the CPU still caches them.
WRITE_INTERVAL: Final = 0.03


class CaptureError(ValueError):
    """The capture directory cannot be used (named in the message)."""


def capture_directory(root: str | Path, endpoint_name: str, variant: str = DEFAULT_VARIANT) -> Path:
    """``root/endpoint/variant``, made and checked writable: an unusable root fails the start."""
    directory = Path(root) / endpoint_name / variant
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise CaptureError(f"cannot write captures to {directory}: {exc.strerror}") from None
    return directory


class _Invocation(NamedTuple):
    time: float  # epoch seconds, when the answer was ready
    inference_id: str
    input_type: str
    input_body: bytes
    output_type: str
    output_body: bytes


#: Linux's page-cache hint (absent on macOS and Windows): see :meth:`CaptureWriter._append`.
_FADVISE: Final = getattr(os, "posix_fadvise", None)


@functools.lru_cache(maxsize=64)
def _observed(content_type: str) -> tuple[bytes, bool]:
    """The content type as JSON, and whether its bodies are captured as text."""
    return to_json(content_type), media_type(content_type) in CAPTURE_JSON_CONTENT_TYPES


def _payload(content_type: str, body: bytes) -> tuple[bytes, bytes, bytes]:
    """The content type, the body and its encoding, each as it goes into the line."""
    observed, text = _observed(content_type)
    if text:
        try:
            return observed, to_json(body, bytes_mode="utf8"), b"JSON"
        except ValueError:  # not UTF-8
            pass
    return observed, b'"' + base64.b64encode(body) + b'"', b"BASE64"


def capture_line(invocation: _Invocation, inference_time: bytes) -> bytes:
    """One invocation as SageMaker Data Capture's JSON line (UTF-8, ending in a newline);
    ``inference_time`` is its second, formatted by the caller."""
    return CAPTURE_LINE % (
        *_payload(invocation.input_type, invocation.input_body),
        *_payload(invocation.output_type, invocation.output_body),
        new_id().encode(),
        to_json(invocation.inference_id),
        inference_time,
    )


class CaptureWriter:
    """Appends invocations to capture files from a writer thread; a context manager."""

    def __init__(
        self,
        root: str | Path,
        endpoint_name: str,
        *,
        variant: str = DEFAULT_VARIANT,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.directory = capture_directory(root, endpoint_name, variant)
        self.dropped = 0
        self.written = 0
        self.max_queue = max_queue
        self._queue: collections.deque[_Invocation] = collections.deque()
        self._stop = threading.Event()
        self._file: IO[bytes] | None = None
        self._hour = -1  # the UTC hour (epoch hours) of the open file
        self._second, self._stamp = -1, b""  # the last record's second, as inferenceTime
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    def record(
        self,
        input_type: str,
        input_body: bytes,
        output_type: str,
        output_body: bytes,
        inference_id: str,
    ) -> None:
        """Queue one invocation; never blocks (a full queue drops and counts it)."""
        item = _Invocation(
            time.time(), inference_id, input_type, input_body, output_type, output_body
        )
        if len(self._queue) < self.max_queue:
            self._queue.append(item)  # deque.append is atomic: no lock, no wake-up
            return
        self.dropped += 1
        if self.dropped % _LOG_EVERY_DROP == 1:
            logger.warning(
                "data capture queue full (%d records): %d record(s) dropped so far",
                self.max_queue,
                self.dropped,
            )

    def close(self) -> None:
        """Write every queued record, close the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()  # the writer drains every record already queued, then stops
        self._thread.join()
        logger.info("%s", self.summary)

    @property
    def summary(self) -> str:
        """The shutdown line: what was written where, and what was dropped."""
        return (
            f"data capture closed: {self.written} record(s) written to {self.directory}, "
            f"{self.dropped} dropped"
        )

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            stopping = self._stop.wait(WRITE_INTERVAL)
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            if not batch:
                continue
            written = self.written
            try:
                self._write(batch)
            except Exception:  # a full disk must not kill the thread (logged without values)
                lost = len(batch) - (self.written - written)
                self.dropped += lost
                logger.exception("data capture could not write %d record(s)", lost)
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, batch: list[_Invocation]) -> None:
        # One write per file a batch touches (one, unless the UTC hour changes within it).
        lines: list[bytes] = []
        for item in batch:
            second = int(item.time)
            if second != self._second:  # one strftime a second, not one a record
                stamp = time.strftime(INFERENCE_TIME, time.gmtime(second)).encode()
                self._second, self._stamp = second, stamp
            if second // 3600 != self._hour or self._file is None:
                self._append(lines)
                self._open(item.time)
            lines.append(capture_line(item, self._stamp))
        self._append(lines)

    def _open(self, moment: float) -> None:
        if self._file is not None:
            self._file.close()
        utc = time.gmtime(moment)
        folder = self.directory / time.strftime("%Y/%m/%d/%H", utc)
        folder.mkdir(parents=True, exist_ok=True)
        millis = int(moment * 1000) % 1000
        name = f"{time.strftime('%M-%S', utc)}-{millis:03d}-{new_id()}.jsonl"
        self._file = open(folder / name, "ab")
        self._hour = int(moment) // 3600

    def _append(self, lines: list[bytes]) -> None:
        if lines and self._file is not None:
            self._file.write(b"".join(lines))
            self._file.flush()
            self.written += len(lines)
            lines.clear()
            if _FADVISE is not None:
                # Written once, read rarely: start the disk write now and let the kernel reuse
                # the pages (a third less writer CPU than filling new ones, docs/performance.md).
                with contextlib.suppress(OSError):
                    _FADVISE(self._file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
