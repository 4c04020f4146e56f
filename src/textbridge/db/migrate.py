"""Schema migrations through Alembic, driven from code so no ``alembic.ini`` is needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


# One key for every Textbridge process on a PostgreSQL database ("textbrdg").
_MIGRATION_LOCK = 0x7465787462726467


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate, one process at a time: processes started together on an empty database would
    otherwise all create ``alembic_version``, and all but one fail. On PostgreSQL an advisory
    lock is held to the migration's commit (its DDL is transactional), so the others wait and
    then find the schema at its head; on SQLite the transaction's ``BEGIN IMMEDIATE`` is
    already that lock."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade)
