"""A large bulk job does not stop the process that accepts it: while 50,000 recipients are
parsed, priced and written, single sends and ``/health`` keep being answered.

The bound is generous on purpose (speed is measured in ``make bench``, phase
``bulk_interference``, not asserted): before bulk jobs were written in chunks, every request
waited for the whole job: up to 12 s at this size."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from textbridge.bench import bulk_interference
from textbridge.db import Database
from textbridge.models import Message

pytestmark = pytest.mark.slow

RECIPIENTS = 50_000
BOUND_MS = 2_000


async def test_single_sends_and_health_go_on_while_a_bulk_job_is_accepted(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(port=free_port(), data_dir=tmp_path, database_url=database_url)
    server.start()
    try:
        async with asyncio.timeout(240):
            seen = await bulk_interference(
                server.url, admin_key=ADMIN_KEY, recipients=RECIPIENTS, quiet_seconds=1
            )
    finally:
        server.stop()
    assert seen.job_status == 202
    assert seen.errors == 0
    sends, healths = seen.during["send"], seen.during["health"]
    assert max(sends) < BOUND_MS, seen.figures()
    assert max(healths) < BOUND_MS, seen.figures()
    # ... and all along the job (100 sends a second were asked for, /health 20 times).
    assert len(sends) > 10 * seen.job_seconds, seen.figures()
    assert len(healths) > 2 * seen.job_seconds, seen.figures()
    async with db.transaction() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.text == "Interference")
        )
    assert stored == RECIPIENTS
