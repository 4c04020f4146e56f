"""A TCP proxy in front of PostgreSQL that can fail the way networks do: refuse connections
(the database is down) or hold every byte (a partition: nothing answers, nothing closes).

It runs its own event loop in a thread, so tests driving real server processes with blocking
clients can switch it while the server talks through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from enum import StrEnum


class Mode(StrEnum):
    FORWARD = "forward"
    HOLD = "hold"  # connections accepted, bytes read and kept: nothing answers
    REFUSE = "refuse"  # new connections reset, open ones cut


class FaultyProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        self.target = (target_host, target_port)
        self.mode = Mode.FORWARD
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._resumed = asyncio.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set(self, mode: Mode) -> None:
        asyncio.run_coroutine_threadsafe(self._set(mode), self._loop).result(timeout=10)

    async def _set(self, mode: Mode) -> None:
        self.mode = mode
        if mode is Mode.FORWARD:
            self._resumed.set()
        else:
            self._resumed.clear()
        if mode is Mode.REFUSE:
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()

    async def _start(self) -> None:
        self._resumed.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.mode is Mode.REFUSE:
            client_w.transport.abort()
            return
        self._writers.add(client_w)
        try:
            await self._resumed.wait()  # a partition: the connection hangs before it begins
            if self.mode is Mode.REFUSE:
                return
            server_r, server_w = await asyncio.open_connection(*self.target)
            self._writers.add(server_w)
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client_w, locals().get("server_w")):
                if writer is not None:
                    self._writers.discard(writer)
                    with contextlib.suppress(Exception):
                        writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            # Held: the bytes are read (the sender sees no back-pressure) and kept until the
            # partition heals, as a network that drops nothing but delivers nothing would.
            await self._resumed.wait()
            if self.mode is Mode.REFUSE:
                break
            writer.write(data)
            await writer.drain()
        writer.transport.abort()
