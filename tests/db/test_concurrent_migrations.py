"""Any number of processes may start at once on an empty database: migrations are serialized
(an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so one migrates
and the others find the schema at its head."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POSTGRES_ADMIN_URL, _asyncpg_url

pytestmark = pytest.mark.slow

PROCESSES = 4
ROUNDS = 3


def _migrate_together(database_url: str, data_dir: Path) -> list[tuple[int, str]]:
    env = {
        **os.environ,
        "TEXTBRIDGE_DATABASE_URL": database_url,
        "TEXTBRIDGE_DATA_DIR": str(data_dir),
        "TEXTBRIDGE_SECRET_KEY": "test-secret-key-not-for-production",
    }
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "textbridge", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(PROCESSES)
    ]
    outcomes = []
    for process in started:
        output, _ = process.communicate(timeout=120)
        outcomes.append((process.returncode, output.decode()))
    return outcomes


async def test_processes_migrating_an_empty_postgresql_database_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        for _ in range(ROUNDS):
            name = f"textbridge_migrate_{secrets.token_hex(4)}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = _asyncpg_url(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
                outcomes = _migrate_together(url, tmp_path)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            assert [code for code, _ in outcomes] == [0] * PROCESSES, outcomes
    finally:
        await admin.close()


def test_processes_migrating_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'textbridge.db'}"
    outcomes = _migrate_together(url, tmp_path)
    assert [code for code, _ in outcomes] == [0] * PROCESSES, outcomes
