"""A process that dies between giving messages to a channel and recording the answers: the
messages it handed are marked, and whoever finds their lease lapsed asks the channel before
sending them again; what the channel cannot vouch for goes again, and its history says so."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import client_of, make_settings, wait_for
from textbridge.db import Database
from textbridge.kit.clock import utcnow
from textbridge.messages.repository import MessageRepository
from textbridge.models import Message
from textbridge.settings import Role, Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # No worker here: the test plays the process that died, then starts one that settles.
    return make_settings(database_url, tmp_path, role="api")


async def _hand_over_and_die(client: httpx.AsyncClient, db: Database, count: int) -> list[str]:
    """Accept ``count`` messages, claim them and mark them handed to the simulator, as a
    dispatcher does just before ``send``; then let the lease lapse, as if it was killed."""
    answer = await client.post(
        "/v1/messages",
        json={"to": [f"+1415300{i:04d}" for i in range(count)], "text": "once"},
    )
    assert answer.status_code == 202, answer.text
    ids = [m["id"] for m in answer.json()["messages"]]
    now = utcnow()
    async with db.transaction() as session:
        repository = MessageRepository(session)
        claimed = await repository.claim(
            now=now, lease_until=now + timedelta(seconds=30), owner="dead", limit=count
        )
        assert len(claimed) == count
        await repository.hand_over("dead", "simulator", ids, now, now)
        await session.execute(update(Message).values(lease_expires_at=now - timedelta(seconds=1)))
    return ids


async def test_a_channel_that_remembers_is_asked_and_nothing_goes_twice(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    ids = await _hand_over_and_die(client, db, 30)
    async with client_of(settings, role=Role.ALL) as worker:
        for message_id in ids:
            body = await wait_for(worker, message_id)
            assert body["status"] == "delivered"
            assert body["attempts"] == 1
            assert [send["acknowledged"] for send in body["sends"]] == [True]
            assert body["sends"][0]["channel_ref"] == f"sim-{message_id}"


async def test_a_channel_that_keeps_no_record_sends_again_and_the_history_shows_both(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    ids = await _hand_over_and_die(client, db, 30)
    async with client_of(settings, role=Role.ALL, simulator_remembers=False) as worker:
        for message_id in ids:
            body = await wait_for(worker, message_id)
            assert body["status"] == "delivered"
            assert body["attempts"] == 2
            sends = body["sends"]
            assert [(s["attempt"], s["acknowledged"]) for s in sends] == [(1, False), (2, True)]
            assert sends[0]["at"] <= sends[1]["at"]


async def test_a_lapsed_claim_that_never_handed_anything_goes_back_without_a_send(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    answer = await client.post("/v1/messages", json={"to": ["+14153000001"], "text": "x"})
    message_id = answer.json()["messages"][0]["id"]
    now = utcnow()
    async with db.transaction() as session:
        await MessageRepository(session).claim(
            now=now, lease_until=now - timedelta(seconds=1), owner="dead", limit=1
        )
    async with client_of(settings, role=Role.ALL, simulator_remembers=False) as worker:
        body = await wait_for(worker, message_id)
    assert body["status"] == "delivered"
    assert [(s["attempt"], s["acknowledged"]) for s in body["sends"]] == [(2, True)]


async def test_a_retry_is_routed_afresh_not_pinned_to_the_channel_it_was_handed(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """The hand-over mark names its channel apart from ``channel``, the one the sender named:
    a message a channel answered 'try later' is free to go elsewhere next time."""
    async with client_of(
        settings, role=Role.ALL, simulator_temporary_failures=100, retry_base_seconds=30
    ) as worker:
        answer = await worker.post("/v1/messages", json={"to": ["+14155550196"], "text": "x"})
        message_id = answer.json()["messages"][0]["id"]
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            async with db.transaction() as session:
                row = await session.get(Message, message_id)
                assert row is not None
            if row.attempts >= 1 and row.status == "queued":
                break
            assert asyncio.get_running_loop().time() < deadline, row.status
            await asyncio.sleep(0.05)
    assert row.error_code == "simulated_busy"
    assert row.handed_to == "simulator"
    assert row.channel is None
