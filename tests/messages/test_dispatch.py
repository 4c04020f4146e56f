"""The dispatcher under load: reports that overtake their own ``sent`` record, batches that
race on the same rows, and nothing sent twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.eventually import eventually
from textbridge.db import Database
from textbridge.models import Message
from textbridge.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # No delivery delay: the simulator's reports race the dispatcher's own writes.
    return make_settings(
        database_url, tmp_path, simulator_delivery_delay_ms=0, dispatch_batch_size=500
    )


async def test_three_thousand_messages_are_each_sent_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/messages",
                json={"to": [f"+1415400{r:02d}{i:02d}" for i in range(100)], "text": "load"},
            )
            for r in range(30)
        )
    )
    assert all(answer.status_code == 202 for answer in answers)

    async def all_delivered() -> bool:
        async with db.transaction() as session:
            counts = dict(
                (
                    await session.execute(
                        select(Message.status, func.count()).group_by(Message.status)
                    )
                ).all()
            )
        assert counts == {"delivered": 3000}, counts
        return True

    await eventually(all_delivered, within=60, interval=0.1)
    async with db.transaction() as session:
        attempts = (await session.execute(select(func.max(Message.attempts)))).scalar_one()
    assert attempts == 1  # a lost outcome would have let the lease lapse and sent it again
