"""A server killed with SIGKILL in the middle of webhook retries: after a restart every event
is delivered, and each is answered 2xx exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.e2e.server import ServerProcess
from tests.eventually import eventually
from tests.webhooks.conftest import Receiver, serving
from textbridge.db import Database
from textbridge.models import WebhookDelivery

pytestmark = pytest.mark.slow

WEBHOOKS = {
    "webhook_allow_private": 1,
    "webhook_timeout_seconds": 1,
    "webhook_batch_size": 10,
    "webhook_poll_seconds": 0.05,
    "webhook_retry_base_seconds": 0.1,
    "webhook_retry_max_seconds": 0.3,
}


async def test_sigkill_in_the_middle_of_retries_delivers_every_event_once(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    port = free_port()
    first = ServerProcess(
        port=port, data_dir=tmp_path, database_url=database_url, **WEBHOOKS
    ).start()
    with serving() as receiver:
        receiver.statuses = [500] * 100_000  # failing until told otherwise
        try:
            with first.client() as client:
                body = {"url": receiver.url, "events": ["contact.tag_changed"]}
                assert client.post("/v1/webhooks", json=body).status_code == 201
                for n in range(50):
                    phone = f"+1415557{n:04d}"
                    client.post("/v1/contacts", json={"phone": phone, "tag": "lead"})
                await eventually(
                    lambda: len(set(receiver.bodies_ids())) >= 50 and len(receiver.received) >= 150,
                    within=30,
                )
        finally:
            first.kill()  # mid-retry: some requests in flight, others waiting for their turn

        async with db.transaction() as session:
            rows = await session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            )
            assert dict(rows.all()) == {"pending": 50}
        assert set(receiver.answers) == {500}

        receiver.statuses.clear()  # the receiver is fixed while the server is down
        second = ServerProcess(
            port=port, data_dir=tmp_path, database_url=database_url, **WEBHOOKS
        ).start()
        try:
            await eventually(lambda: _delivered(receiver) >= 50, within=60, interval=0.1)
            await asyncio.sleep(0.5)  # retries come within 0.3 s: no event is answered 2xx twice
        finally:
            second.stop()
    ok = Counter(
        event_id
        for event_id, status in zip(receiver.bodies_ids(), receiver.answers, strict=True)
        if status == 200
    )
    assert len(ok) == 50
    assert set(ok.values()) == {1}  # each event answered 2xx exactly once
    async with db.transaction() as session:
        rows = await session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        )
        assert dict(rows.all()) == {"delivered": 50}


def _delivered(receiver: Receiver) -> int:
    return receiver.answers.count(200)
