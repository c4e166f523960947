"""Where the scoring API keeps its decision records: one sink interface, two implementations.

* :class:`FileSink` (``RECORDS_DIR``, the local stack's ``up --records DIR``): one JSON line
  per record under ``DIR/yyyy/mm/dd/hh/<id>.jsonl``, written and fsync'd before the answer.
* :class:`FirehoseSink` (``RECORDS_STREAM``, on AWS): ``PutRecord`` to an Amazon Data Firehose
  stream that delivers to S3 under the same ``yyyy/mm/dd/hh/`` prefixes.

Both raise :class:`RecordUnavailableError` (503 ``record_unavailable``) when a record cannot be
kept, so nothing is answered that is not recorded, and both say in :meth:`RecordSink.problem`
why ``/health`` should not pass. The record's format is :mod:`credit_schema.records`'.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Protocol

from credit_schema import ServiceError
from credit_schema.edge import new_id
from credit_schema.records import FIREHOSE_MAX_RECORD_BYTES, hour_prefix

logger = logging.getLogger(__name__)

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class RecordUnavailableError(ServiceError):
    """The decision record could not be kept: the request is refused rather than unrecorded."""

    status_code: ClassVar[int] = 503
    code: ClassVar[str] = "record_unavailable"
    retry_after = 5


class RecordSink(Protocol):
    """Keeps decision records; a record is durable once :meth:`put` returns."""

    #: The largest line :meth:`put` takes (None: any); larger requests are recorded in parts.
    max_bytes: int | None

    def put(self, lines: list[bytes], moment: datetime) -> None:
        """Keep ``lines`` (one request's record, time ``moment``) or raise
        :class:`RecordUnavailableError`."""

    def problem(self) -> str | None:
        """Why records cannot be kept now, or None."""


class _State:
    """The last failure, logged once when it starts and once when it ends (no log storm)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failure: str | None = None
        self.refused = 0

    def failed(self, reason: str) -> RecordUnavailableError:
        self.refused += 1
        if self.failure != reason:
            logger.warning("decision records unavailable (%s): %s", self.name, reason)
        self.failure = reason
        return RecordUnavailableError(f"the decision record could not be kept: {reason}")

    def succeeded(self) -> None:
        if self.failure is not None:
            logger.warning(
                "decision records written again (%s) after %d refused request(s)",
                self.name,
                self.refused,
            )
        self.failure, self.refused = None, 0


def _reason(exc: OSError, root: str) -> str:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return f"no space left for records in {root}"
    if exc.errno == errno.ENOENT:
        return f"the records directory {root} is gone"
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return f"a symlink or file in place of a folder under {root}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"the records directory {root} is not writable"
    return f"cannot write records under {root} ({exc.strerror or exc})"


class FileSink:
    """Records as JSON lines under ``root/yyyy/mm/dd/hh/``; each :meth:`put` is on disk (fsync)
    before it returns. Folders are opened without following symlinks, so a symlinked hour (or
    any symlink below ``root``) refuses records instead of sending them elsewhere. A failed write
    is cut back off the file and the next record starts a new file: records are never glued."""

    max_bytes: int | None = None

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)  # the directory as given when the API starts
        self._lock = threading.Lock()  # the gateway may run invocations concurrently
        self._fd: int | None = None
        self._where: tuple[str, str] | None = None  # (hour prefix, file name) of the open file
        self._state = _State("files")
        self._needed = 0  # the size of the record the disk had no room for

    def put(self, lines: list[bytes], moment: datetime) -> None:
        data = b"".join(lines)
        with self._lock:
            try:
                fd = self._file(hour_prefix(moment))
                size = os.fstat(fd).st_size
                try:
                    written = 0
                    while written < len(data):
                        written += os.write(fd, data[written:])
                    os.fdatasync(fd)
                except OSError:
                    with contextlib.suppress(OSError):  # through the fd: never another file
                        os.ftruncate(fd, size)
                    self._close()  # the next record starts a new file, after what was cut
                    raise
            except OSError as exc:
                self._needed = len(data)
                raise self._state.failed(_reason(exc, self.root)) from None
            self._needed = 0
            self._state.succeeded()

    def problem(self) -> str | None:
        hour = tuple(hour_prefix(datetime.now(UTC)).split("/"))
        try:
            os.close(self._open_dir(self.root, hour, missing_ok=True))
            if self._needed and _free_bytes(self.root) < self._needed:
                return f"no space left for records in {self.root}"
        except OSError as exc:
            return _reason(exc, self.root)
        return None  # the last failure (if any) has gone: the next record will tell

    # -- files -----------------------------------------------------------------------------------

    def _path(self) -> str:
        assert self._where is not None
        return os.path.join(self.root, *self._where)

    def _file(self, hour: str) -> int:
        if self._fd is not None and self._where is not None and self._where[0] == hour:
            try:  # still the file at that path (not deleted, not replaced through a symlink)?
                st, fst = os.stat(self._path(), follow_symlinks=False), os.fstat(self._fd)
                if (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino):
                    return self._fd
            except OSError:
                pass
        self._close()
        parts = tuple(hour.split("/"))
        folder = self._open_dir(self.root, parts, create=True)
        try:
            name = f"{new_id()}.jsonl"
            self._fd = os.open(name, _FILE_FLAGS, 0o640, dir_fd=folder)
            os.fsync(folder)  # the new file's name is durable too
        finally:
            os.close(folder)
        self._where = (hour, name)
        return self._fd

    @staticmethod
    def _open_dir(
        root: str, parts: tuple[str, ...], *, create: bool = False, missing_ok: bool = False
    ) -> int:
        """An fd of ``root/parts...``, each step refusing a symlink (ELOOP); with
        ``missing_ok``, of the deepest of them that exists."""
        fd = os.open(root, _DIR_FLAGS)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o750, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if missing_ok:
                        break
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


def _free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class FirehoseSink:
    """Records put to an Amazon Data Firehose stream (``firehose:PutRecord`` on it alone)."""

    max_bytes: int | None = FIREHOSE_MAX_RECORD_BYTES

    def __init__(self, stream: str, client: Any) -> None:
        self.stream = stream
        self._client = client
        self._state = _State("firehose")

    def put(self, lines: list[bytes], moment: datetime) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for line in lines:
                self._client.put_record(DeliveryStreamName=self.stream, Record={"Data": line})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise self._state.failed(f"Firehose stream {self.stream}: {code}") from None
        except BotoCoreError as exc:
            raise self._state.failed(
                f"Firehose stream {self.stream}: {type(exc).__name__}"
            ) from None
        self._state.succeeded()

    def problem(self) -> str | None:
        return self._state.failure


def make_sink(settings: Any) -> RecordSink | None:
    """The sink the settings name (:class:`scoring_api.config.Settings`), or None."""
    if settings.records_stream:
        import boto3
        from botocore.config import Config

        # Within the answer's reserve: one quick attempt, then a 503 (the caller retries).
        config = Config(connect_timeout=0.5, read_timeout=1.0, retries={"total_max_attempts": 1})
        return FirehoseSink(settings.records_stream, boto3.client("firehose", config=config))
    if settings.records_dir:
        return FileSink(settings.records_dir)
    return None
