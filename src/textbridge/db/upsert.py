"""``INSERT ... ON CONFLICT`` for whichever database the session is on: SQLite and PostgreSQL
spell it the same, but SQLAlchemy builds it from each dialect's own ``insert``."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_on_conflict(session: AsyncSession, table: Table) -> sqlite.Insert:
    """An insert with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` (the PostgreSQL
    statement has the same methods; typed as SQLite's for one signature)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return postgresql.insert(table)  # type: ignore[return-value]
    return sqlite.insert(table)
