"""The migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from textbridge.db import Database
from textbridge.db.base import Base


async def test_the_migrated_schema_is_the_models(db: Database) -> None:
    def differences(connection: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
