"""Engine and session factory, with the per-database settings that make each one behave."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from textbridge.db._sqlite import connect as sqlite_connector

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Database:
    """Owns the engine; hands out sessions. The caller of ``transaction()`` owns the commit."""

    def __init__(self, url: str, *, echo: bool = False, timeout: float = 5.0) -> None:
        """``timeout`` bounds each wait on the database: for a connection from the pool, to
        connect, for a statement's answer (PostgreSQL), for another process's write lock
        (SQLite). A database that is down, full or unreachable then fails a request within
        it (a 503, ``unavailable``) instead of hanging it: with no timeout anywhere, a
        partition held every request for as long as it lasted."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.timeout = timeout
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # One connection: SQLite has one writer at a time anyway, and queueing on our pool
            # is fair and instant where SQLite's busy handler sleeps and retries. The wait for
            # it is this process's own queue, not an outage (a 100,000-row import holds it
            # for seconds), so it is not bounded by ``timeout``.
            kwargs.update(
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
                async_creator=sqlite_connector(make_url(url).database or ":memory:"),
            )
        else:
            kwargs.update(
                pool_size=10,
                max_overflow=10,
                pool_timeout=timeout,
                pool_pre_ping=False,
                # asyncpg's own deadlines, checked on the client: a server that does not
                # answer at all (a partition) trips them as surely as a slow one.
                connect_args={"timeout": timeout, "command_timeout": timeout},
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, busy_ms=round(timeout * 1000))
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

    async def writable(self) -> bool:
        """Whether a transaction can write now, found by writing: a database that answers
        reads can still refuse writes (a full disk). The write changes nothing, on the one
        row nothing else writes but a migration (``alembic_version``)."""
        try:
            async with asyncio.timeout(self.timeout), self.transaction() as session:
                await session.execute(text("UPDATE alembic_version SET version_num = version_num"))
        except Exception as exc:
            log.warning("database not writable", reason=f"{type(exc).__name__}: {exc}"[:200])
            return False
        return True

    @asynccontextmanager
    async def unbounded(self) -> AsyncIterator[AsyncEngine]:
        """An engine whose statements have no deadline, for migrations: one may rewrite a
        large table, and the advisory lock it first waits on is held for as long as another
        process migrates."""
        if self.is_sqlite:
            yield self.engine
            return
        engine = create_async_engine(
            self.url, poolclass=NullPool, connect_args={"timeout": self.timeout}
        )
        try:
            yield engine
        finally:
            await engine.dispose()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine, *, busy_ms: int) -> None:
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
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
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


# PostgreSQL's classes of "the server cannot do it now": connection exceptions (08), no
# resources (53: disk full, out of memory, too many connections), shutting down or starting
# up (57P01-57P03), a statement cancelled by its timeout (57014).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "57014")
_UNAVAILABLE_SQLITE = (
    "database or disk is full",
    "disk i/o error",
    "database is locked",
    "unable to open database file",
)


# The exceptions ``unavailable`` looks into.
UNAVAILABLE_KINDS: tuple[type[Exception], ...] = (OSError, SQLAlchemyTimeoutError, DBAPIError)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or written (down, refusing,
    silent past the timeout, full, locked too long), as opposed to a bug in a query: the
    one a request answers with 503 and the other 500."""
    if isinstance(exc, SQLAlchemyTimeoutError | InterfaceError):
        return True  # the pool's own timeout; a connection found closed
    if isinstance(exc, OSError):
        # asyncpg raises its connection and timeout errors unwrapped (OSError includes
        # TimeoutError): the database's only if they came out of the database layer, not an
        # SMTP server, a webhook receiver or an ``asyncio.timeout`` of ours.
        return _raised_by_database(exc)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            return True
        state = str(getattr(exc.orig, "sqlstate", "") or "")
        if state and state.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        message = str(exc.orig).lower()
        return any(reason in message for reason in _UNAVAILABLE_SQLITE)
    return False


_DATABASE_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3", "textbridge.db.")


def _raised_by_database(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it came from) passed through the database driver or
    SQLAlchemy on its way up."""
    seen: BaseException | None = exc
    while seen is not None:
        for frame, _ in traceback.walk_tb(seen.__traceback__):
            if str(frame.f_globals.get("__name__", "")).startswith(_DATABASE_MODULES):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def log_failure(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """A background loop's failed round: one warning line while the database is unavailable
    (an outage is no bug, and a traceback every second of it says nothing more), the
    traceback otherwise."""
    if unavailable(exc):
        logger.warning(event, reason=f"{type(exc).__name__}: {exc}"[:200], **fields)
    else:
        logger.error(event, exc_info=exc, **fields)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction is committed (never if rolled back).

    Services use it to wake workers for rows that only exist once the edge commits."""
    session.info.setdefault("after_commit", []).append(callback)


def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop("after_commit", []):
        callback()
