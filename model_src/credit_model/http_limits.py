"""Read timeouts and a header size limit for the HTTP servers uvicorn runs.

uvicorn times out idle kept-alive connections only: a client that trickles its
headers (slowloris) or promises a body it never sends holds a connection and a
task for as long as it likes, and with httptools any header size is read. The
protocol classes here give every request a deadline for its head (request line
and headers), another for its body, and a size limit for its head (431); other
connections are served meanwhile. An answer the client does not read (its send buffer
full) is given :data:`SEND_TIMEOUT`, then the connection is dropped; an idle kept-alive
one is closed after :data:`KEEP_ALIVE_TIMEOUT`. Used by the model server (``serve-model``,
the container) and the local stack's servers. Needs uvicorn only (not numpy).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from credit_schema.edge import SECURITY_HEADERS
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

#: Request line + headers, bytes (API Gateway allows 10 KiB; h11's own default is this).
MAX_HEAD_BYTES: Final = 16 * 1024
#: Seconds for a request's head to arrive, from the connection or the request's first byte.
HEAD_TIMEOUT: Final = 10.0
#: Seconds for a request's whole body to arrive once its head has.
BODY_TIMEOUT: Final = 20.0
#: Seconds an idle kept-alive connection stays open (uvicorn's own default).
KEEP_ALIVE_TIMEOUT: Final = 5
#: Seconds an answer may wait on a client that does not read it (the connection's send
#: buffer full) before the connection is dropped.
SEND_TIMEOUT: Final = 20.0

_SECURITY: Final = "".join(f"\r\n{k}: {v}" for k, v in SECURITY_HEADERS.items()).encode()
_CLOSE: Final = _SECURITY + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_REQUEST_TIMEOUT: Final = b"HTTP/1.1 408 Request Timeout" + _CLOSE
_HEAD_TOO_LARGE: Final = b"HTTP/1.1 431 Request Header Fields Too Large" + _CLOSE
_END_OF_HEAD: Final = b"\r\n\r\n"


class _Limits:
    """Mixed into a uvicorn HTTP protocol: each request's head, then its body, in bounded time;
    its head in bounded size (counted up to the blank line, as it arrives)."""

    transport: asyncio.Transport
    cycle: Any  # uvicorn's RequestResponseCycle of the current request (None before the first)
    _timer: asyncio.TimerHandle | None = None
    _unread: asyncio.TimerHandle | None = None  # armed while the client does not read
    _owed: str = ""  # what the client still owes: "head", "body" or "" (nothing)
    _due = 0.0  # when it is due (loop time)
    _head_bytes = 0
    _tail = b""  # the head's last bytes so far: its blank line may span two reads

    def _expect(self, owed: str, seconds: float) -> None:
        """Owe ``owed`` within ``seconds``; the timer is armed only while it stays owed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owed, self._due = owed, asyncio.get_running_loop().time() + seconds
        if owed == "head":
            self._head_bytes, self._tail = 0, b""

    def _arm(self) -> None:
        if self._owed and self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(self._due, self._expired)

    def _head_too_large(self, data: bytes) -> bool:
        seen = self._tail + data
        end = seen.find(_END_OF_HEAD)
        self._head_bytes += len(data) if end < 0 else end + len(_END_OF_HEAD) - len(self._tail)
        self._tail = seen[-(len(_END_OF_HEAD) - 1) :]
        return self._head_bytes > MAX_HEAD_BYTES

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        logger.warning("request %s not received in time: connection closed", self._owed)
        if self._owed == "head":  # no request under way: the client can be told why
            self.transport.write(_REQUEST_TIMEOUT)
        # Mid-body, the application sees the client disconnect, as when a client leaves.
        self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._expect("head", HEAD_TIMEOUT)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self._owed and (self.cycle is None or self.cycle.response_complete):
            self._expect("head", HEAD_TIMEOUT)  # the next request on a kept-alive connection
        if self._owed == "head" and self._head_too_large(data):
            logger.warning("request head over %d bytes: connection closed", MAX_HEAD_BYTES)
            self._expect("", 0)
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()
            return
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # the head is complete
            if not cycle.more_body:
                if self._owed:
                    self._expect("", 0)
                return  # the whole request is in (the common case: no timer at all)
            if self._owed == "head":
                self._expect("body", BODY_TIMEOUT)
        self._arm()  # something is still owed after this read

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        if self._unread is None:
            self._unread = asyncio.get_running_loop().call_later(SEND_TIMEOUT, self._not_read)

    def resume_writing(self) -> None:
        if self._unread is not None:
            self._unread.cancel()
            self._unread = None
        super().resume_writing()  # type: ignore[misc]

    def _not_read(self) -> None:
        self._unread = None
        logger.warning("answer not read within %g s: connection dropped", SEND_TIMEOUT)
        self.transport.abort()  # close() would wait for the client to read it all

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect("", 0)
        if self._unread is not None:
            self._unread.cancel()
            self._unread = None
        super().connection_lost(exc)  # type: ignore[misc]


class GuardedH11Protocol(_Limits, H11Protocol):
    """h11 with the limits."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # an install without httptools: h11 it is, as uvicorn would choose
    GuardedProtocol: type[asyncio.Protocol] = GuardedH11Protocol
else:

    class GuardedHttpToolsProtocol(_Limits, HttpToolsProtocol):
        """httptools with the limits."""

    GuardedProtocol = GuardedHttpToolsProtocol


#: uvicorn.Config / uvicorn.run keyword arguments that apply these limits.
UVICORN_OPTIONS: Final[dict[str, Any]] = {
    "http": GuardedProtocol,
    "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
}
#: And the security headers on every answer, for a server whose application sets none
#: (the model server; the local gateway passes on the function's own).
SERVER_OPTIONS: Final[dict[str, Any]] = {
    **UVICORN_OPTIONS,
    "headers": list(SECURITY_HEADERS.items()),
}
