"""Engine and session factory, with the per-database settings that make each one behave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from textbridge.db._sqlite import connect as sqlite_connector

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Database:
    """Owns the engine; hands out sessions. The caller of ``transaction()`` owns the commit."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # One connection: SQLite has one writer at a time anyway, and queueing on our pool
            # is fair and instant where SQLite's busy handler sleeps and retries.
            kwargs.update(
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
                async_creator=sqlite_connector(make_url(url).database or ":memory:"),
            )
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends and rolls back on an exception.

        Callbacks registered with ``after_commit`` run once the commit succeeded."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            run_after_commit(session)

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run ``work`` in a transaction, again from the start when the database refused it for
        a reason that goes away (a deadlock, a serialization failure, SQLite being locked).

        For background work that must not be dropped: a worker's outcome that is lost would
        leave messages dispatching until their lease lapses, and then send them twice."""
        for attempt in range(attempts):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except DBAPIError as exc:
                if attempt == attempts - 1 or not _is_transient(exc):
                    raise
                log.info("transaction retried", reason=str(exc.orig)[:120], attempt=attempt + 1)
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let us issue BEGIN ourselves (below) instead of pysqlite's implicit, deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL + synchronous=NORMAL: a committed transaction survives the process being killed
        # (only an OS crash or power loss can lose the last commits).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction can never
        # fail half-way with SQLITE_BUSY when another process (a worker, the CLI) wrote meanwhile.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _is_transient(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code in ("40P01", "40001"):  # deadlock detected, serialization failure
        return True
    return "database is locked" in str(exc.orig)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction is committed (never if rolled back).

    Services use it to wake workers for rows that only exist once the edge commits."""
    session.info.setdefault("after_commit", []).append(callback)


def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop("after_commit", []):
        callback()
