"""The HTTP protocol ``textbridge serve`` runs: uvicorn's httptools protocol with deadlines for
reading a request and a cap on open connections.

uvicorn (0.54) times out idle kept-alive connections only. A client that sends a header line
every 5 s, or its body a byte at a time, holds its connection and a file descriptor for as
long as it likes: 500 of them stayed open for 40 s, and 1,100 under a limit of 1,024
descriptors locked every new client out (issue 13). Its ``limit_concurrency`` does not help:
it is checked only once a request's headers are complete, so connections that never complete
them are never refused, and beyond it complete requests get the 503s. Hypercorn's
``read_timeout`` or Granian's header timeout cover part of this, but another server changes
the TLS options, the event loop and the benchmarks; this subclass is the smaller change. It
hooks uvicorn's parser callbacks (``on_message_begin``, ``on_headers_complete``, ``on_body``,
``on_message_complete``); tests/e2e/test_bad_clients.py holds it to its word on a real server.

Deadlines, as Apache's mod_reqtimeout sets them:

- the headers within ``header_timeout`` of the connection (the first request) or of the
  request's first byte (the next ones on a kept-alive connection, whose idle time uvicorn's
  keep-alive timeout already bounds); then 408 and close;
- the body within ``body_timeout`` of the headers, plus a second per ``body_min_rate`` bytes
  received, so a large upload on a slow but steady link goes on; then close (the route waiting
  for the body sees the client gone). Time the application itself takes to read what came (the
  transport paused) does not count against the client. The answer is never timed: a response,
  an event stream, goes on as long as it likes once the request is read.
"""

from __future__ import annotations

import asyncio
import enum
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from textbridge.settings import Settings

log = structlog.get_logger(__name__)

# What is left of the open-file limit after the connections: the database pool, webhook and
# SMTP clients, log and SQLite files.
_FILES_FOR_CONNECTIONS = 0.8

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\nretry-after: 1\r\nconnection: close\r\n\r\nService Unavailable"
)
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
)


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    body_min_rate: int  # bytes per second, each giving the body another second; 0: none
    max_connections: int

    @classmethod
    def of(cls, settings: Settings, *, open_files: int | None = None) -> ConnectionLimits:
        """The settings' limits, with at most 80% of the open-file limit (``open_files``, by
        default this process's soft ``RLIMIT_NOFILE``) as connections: beyond the limit
        ``accept`` fails and nobody gets in, not even to be told 503."""
        if open_files is None:
            open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        most = settings.max_connections
        if open_files != resource.RLIM_INFINITY:
            most = max(1, min(most, int(open_files * _FILES_FOR_CONNECTIONS)))
        return cls(
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            body_min_rate=settings.body_min_rate,
            max_connections=most,
        )


class _Reading(enum.Enum):
    NOTHING = enum.auto()  # between requests, or the answer streaming
    HEADERS = enum.auto()
    BODY = enum.auto()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol with ``limits`` (set on the subclass ``protocol_with`` makes)."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading = _Reading.NOTHING
        self._read_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_received = 0

    # The connection.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Answered and closed at once: the client knows, and the descriptor is free.
            transport.write(_BUSY)
            transport.close()
            return
        self._read(_Reading.HEADERS, self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._read(_Reading.NOTHING)
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._read(_Reading.NOTHING)  # the connection is no longer ours to time
        super().handle_websocket_upgrade()

    # The parser's callbacks.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._reading is _Reading.NOTHING:  # the next request on a kept-alive connection
            self._read(_Reading.HEADERS, self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._body_started = self.loop.time()
        self._body_received = 0
        self._read(_Reading.BODY, self.limits.body_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_received += len(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._read(_Reading.NOTHING)

    # The deadlines.

    def _read(self, reading: _Reading, within: float = 0.0) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._reading = reading
        if reading is not _Reading.NOTHING:
            self._read_timer = self.loop.call_later(within, self._read_timed_out)

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self._reading is _Reading.BODY:
            now = self.loop.time()
            deadline = self._body_started + self.limits.body_timeout
            if self.limits.body_min_rate:
                deadline += self._body_received / self.limits.body_min_rate
            if self.flow.read_paused or self.cycle.waiting_for_100_continue:
                # The application has not read what came yet: not the client's time.
                deadline = max(deadline, now + self.limits.body_timeout)
            if deadline > now:
                self._read_timer = self.loop.call_at(deadline, self._read_timed_out)
                return
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.write(_TIMED_OUT)  # no answer of ours is on its way
        log.debug("request too slow", reading=self._reading.name.lower(), client=self.client)
        self._reading = _Reading.NOTHING
        self.transport.close()


def protocol_with(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to give uvicorn (``http=``): it makes one object per connection
    and passes it only its own config."""

    class Protocol(GuardedHttpToolsProtocol):
        pass

    Protocol.limits = limits
    return Protocol
