"""SQLite without a thread hop per statement.

aiosqlite runs every call on a helper thread and hands the result back through the event loop:
about 0.2 ms per statement here, several times what SQLite itself takes on a local file, and
on the hot path (accepting a message is five statements) it made SQLite several times slower
than it is. This connection keeps aiosqlite's interface, which SQLAlchemy's aiosqlite dialect
expects, but runs each call inline on the event loop: its work queue executes what is put in it
at once. Each call blocks the loop for the microseconds SQLite needs; the one long wait, another
*process* holding the write lock, is bounded by ``busy_timeout`` (a single ``textbridge serve``
never waits on itself: its pool has one connection). Scale-out deployments use PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs each job as it arrives."""

    def put_nowait(self, job: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = job
        try:
            result = function()
        except BaseException as error:
            if future is not None:
                future.set_exception(error)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        # The parent starts its worker thread here; there is none to start.
        return self._connect().__await__()


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def connect(path: str) -> Callable[[], Coroutine[Any, Any, aiosqlite.Connection]]:
    """An ``async_creator`` for SQLAlchemy's ``sqlite+aiosqlite`` dialect."""

    def connector() -> sqlite3.Connection:
        # autocommit mode: we issue BEGIN IMMEDIATE ourselves (see engine.py).
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # SQLite's own lower() folds ASCII only; searches ("zoë" finding "Zoë", ILIKE renders as
        # lower() LIKE lower()) get Python's, as PostgreSQL's lower() does by its locale.
        connection.create_function("lower", 1, _lower, deterministic=True)
        return connection

    async def creator() -> aiosqlite.Connection:
        return await InlineConnection(connector)

    return creator
