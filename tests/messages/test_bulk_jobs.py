"""Native bulk jobs: many recipients in one request, behind ordinary traffic, with progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import keyed, wait_for
from tests.eventually import eventually
from textbridge.billing.service import billing
from textbridge.db import Database
from textbridge.errors import InsufficientBalance
from textbridge.messages.repository import MessageRepository
from textbridge.messages.writer import CHUNK_ROWS
from textbridge.models import BulkJob, Conversation, Message


async def test_a_bulk_job_is_accepted_whole_and_drains(client: httpx.AsyncClient) -> None:
    numbers = [f"+1415600{i:04d}" for i in range(2500)]  # over the 1,000 of POST /v1/messages
    answer = await client.post("/v1/bulk-jobs", json={"to": numbers, "text": "Sale!"})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["source"], job["total"]) == ("native", 2500)
    assert sum(job["by_status"].values()) == 2500

    async def drained() -> dict[str, Any]:
        found: dict[str, Any] = (await client.get(f"/v1/bulk-jobs/{job['id']}")).json()
        assert found["by_status"] == {"delivered": 2500}, found["by_status"]
        return found

    job = await eventually(drained, within=60, interval=0.2)
    assert job["pending"] == 0
    ledger = (await client.get("/v1/account/ledger")).json()["data"]
    assert ledger[0]["reference"] == job["id"]
    assert ledger[0]["amount"] == round(-2500 * 0.0079, 6)


async def test_ordinary_messages_overtake_a_bulk_job(client: httpx.AsyncClient) -> None:
    numbers = [f"+1415700{i:04d}" for i in range(3000)]
    await client.post("/v1/bulk-jobs", json={"to": numbers, "text": "Campaign"})
    answer = await client.post("/v1/messages", json={"to": "+14155550100", "text": "Urgent"})
    urgent = answer.json()["messages"][0]["id"]
    await wait_for(client, urgent, {"sent", "delivered"}, within=30)
    [job] = (await client.get("/v1/bulk-jobs")).json()["data"]
    # The urgent message went out while most of the campaign still waited.
    assert job["pending"] > 1000


async def test_bulk_job_bad_input_and_isolation(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/bulk-jobs", json={"to": [], "text": "x"})
    assert answer.status_code == 400
    answer = await client.post(
        "/v1/bulk-jobs", json={"to": [f"+1415800{i:04d}" for i in range(10)] + ["12"], "text": "x"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "to[10]"
    assert (await client.get("/v1/bulk-jobs")).json()["data"] == []
    answer = await client.get("/v1/bulk-jobs/01NOTAJOB")
    assert answer.status_code == 404
    created = await client.post("/v1/accounts", json={"name": "other", "balance": 1})
    job = (await client.post("/v1/bulk-jobs", json={"to": ["+14158000001"], "text": "x"})).json()
    async with keyed(client, created.json()["api_key"]) as other:
        assert (await other.get(f"/v1/bulk-jobs/{job['id']}")).status_code == 404
        assert (await other.get("/v1/bulk-jobs")).json()["data"] == []


async def test_cancelling_a_scheduled_bulk_job_refunds_it(client: httpx.AsyncClient) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    before = (await client.get("/v1/account")).json()["balance"]
    job = (
        await client.post(
            "/v1/bulk-jobs",
            json={
                "to": [f"+1415900{i:04d}" for i in range(1500)],
                "text": "x",
                "schedule_at": later,
            },
        )
    ).json()
    assert job["by_status"] == {"accepted": 1500}
    scheduled = await client.get("/v1/messages", params={"status": "accepted", "limit": 5})
    assert len(scheduled.json()["data"]) == 5
    cancelled = await client.post(f"/v1/bulk-jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["by_status"] == {"cancelled": 1500}
    assert cancelled.json()["pending"] == 0
    assert (await client.get("/v1/account")).json()["balance"] == before
    again = await client.post(f"/v1/bulk-jobs/{job['id']}/cancel")
    assert again.json()["by_status"] == {"cancelled": 1500}
    assert (await client.post("/v1/bulk-jobs/01NOPE/cancel")).status_code == 404


async def test_a_job_written_in_chunks_refuses_opted_out_recipients(
    tenant: httpx.AsyncClient, db: Database
) -> None:
    numbers = [f"+1415610{i:04d}" for i in range(2 * CHUNK_ROWS + 10)]
    for phone in numbers[:3]:
        await tenant.post("/v1/contacts", json={"phone": phone, "opted_out": True})
    before = (await tenant.get("/v1/account")).json()["balance"]
    answer = await tenant.post("/v1/bulk-jobs", json={"to": numbers, "text": "Chunks"})
    assert answer.status_code == 202, answer.text
    by_status = answer.json()["by_status"]
    assert (by_status["failed"], sum(by_status.values())) == (3, len(numbers))
    after = (await tenant.get("/v1/account")).json()["balance"]
    assert round(before - after, 6) == round((len(numbers) - 3) * 0.0079, 6)
    failed = await tenant.get("/v1/messages", params={"status": "failed"})
    assert {m["error"]["code"] for m in failed.json()["data"]} == {"opted_out"}
    assert {m["to"] for m in failed.json()["data"]} == set(numbers[:3])
    async with db.transaction() as session:  # every recipient's conversation, refused or not
        phones = await session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.phone.in_(numbers))
        )
    assert phones == len(numbers)


async def test_a_job_written_in_chunks_and_refused_leaves_nothing(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await client.post("/v1/accounts", json={"name": "poor", "balance": 1})
    body = {"to": [f"+1415620{i:04d}" for i in range(CHUNK_ROWS + 1)], "text": "Too dear"}
    async with keyed(client, created.json()["api_key"]) as poor:
        answer = await poor.post("/v1/bulk-jobs", json=body)  # refused before writing
        assert answer.status_code == 402, answer.text

        async def covered(*args: object) -> InsufficientBalance | None:
            return None

        # Refused at the commit point instead, every row already written (the balance can
        # drop in between): the rows are deleted again.
        monkeypatch.setattr(billing, "shortfall", covered)
        answer = await poor.post("/v1/bulk-jobs", json=body)
        assert answer.status_code == 402, answer.text
        assert answer.json()["error"]["code"] == "insufficient_balance"
        assert (await poor.get("/v1/account")).json()["balance"] == 1
        assert (await poor.get("/v1/bulk-jobs")).json()["data"] == []
    async with db.transaction() as session:
        for table in (Message, Conversation, BulkJob):
            assert await session.scalar(select(func.count()).select_from(table)) == 0


async def test_the_rows_of_a_committed_job_are_never_discarded(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A commit point that raised as the database went away may have committed all the same:
    its rows are left for ``recover_prepared`` to release, not deleted with the job paid."""
    answer = await client.post(
        "/v1/bulk-jobs",
        json={"to": [f"+1415555{i:04d}" for i in range(1000, 1010)], "text": "kept"},
    )
    assert answer.status_code == 202, answer.text
    async with db.transaction() as session:
        ids = list((await session.execute(select(Message.id))).scalars())
        await session.execute(update(Message).values(status="preparing"))
    async with db.transaction() as session:
        await MessageRepository(session).discard_prepared(ids)
    async with db.transaction() as session:
        left = (await session.execute(select(func.count(Message.id)))).scalar_one()
    assert left == len(ids) == 10
