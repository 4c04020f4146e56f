"""Cancelling a message a phone holds, as the app learns of it: ``Cancelling`` in its pull and
``MessageCancelled`` on its stream; cancelled and refunded once when it confirms or never
answers, sent and charged when it had already sent it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings, wait_for
from tests.devices.test_messages import a_phone, pull, state, status_of
from tests.devices.test_registration import MOBILE, phone
from tests.webhooks.conftest import Receiver
from textbridge.devices.hub import hub
from textbridge.settings import Settings

MESSAGE_EVENTS = [
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.expired",
    "message.received",
]


@pytest.fixture
def take_seconds() -> int:
    """How long a phone has to take what it was given (a test may shorten it)."""
    return 30


@pytest.fixture
def settings(database_url: str, tmp_path: Path, take_seconds: int) -> Settings:
    return make_settings(
        database_url, tmp_path, device_take_seconds=take_seconds, device_send_seconds=30
    )


async def given(tenant: httpx.AsyncClient, device: dict[str, Any]) -> tuple[str, float]:
    """A message the phone has pulled, and the account's balance before it was sent."""
    balance = (await tenant.get("/v1/account")).json()["balance"]
    sent = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "Hi"})
    message_id: str = sent.json()["messages"][0]["id"]
    async with phone(tenant, device["token"]) as app:
        assert [m["id"] for m in await pull(app, 1)] == [message_id]
    return message_id, balance


async def refunds(tenant: httpx.AsyncClient, message_id: str) -> int:
    ledger = (await tenant.get("/v1/account/ledger")).json()["data"]
    return sum(1 for e in ledger if e["kind"] == "refund" and e["reference"] == message_id)


async def event_types(tenant: httpx.AsyncClient, message_id: str) -> list[str]:
    events = (await tenant.get("/v1/events", params={"subject_id": message_id})).json()["data"]
    return sorted(e["type"] for e in events)


async def test_a_phone_confirms_the_cancel_and_the_price_comes_back_once(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": MESSAGE_EVENTS})
    device = await a_phone(tenant)
    message_id, balance = await given(tenant, device)

    cancelled = await tenant.post(f"/v1/messages/{message_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "dispatching"  # until the phone confirms
    again = await tenant.post(f"/v1/messages/{message_id}/cancel")
    assert (again.status_code, again.json()["status"]) == (200, "dispatching")

    async with phone(tenant, device["token"]) as app:
        [asked] = await pull(app, 1)
        assert (asked["id"], asked["state"]) == (message_id, "Cancelling")
        # A phone that already had it re-sends its state: it is still to cancel.
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
        assert [m["state"] for m in await pull(app, 1)] == ["Cancelling"]
        for _ in range(2):  # the app retries its reports
            answer = await app.patch(f"{MOBILE}/message", json=[state(message_id, "Cancelled")])
            assert answer.status_code == 204, answer.text
        assert await pull(app, 0) == []

    found = await status_of(tenant, message_id)
    assert found["status"] == "cancelled"
    assert (await tenant.get("/v1/account")).json()["balance"] == balance
    assert await refunds(tenant, message_id) == 1
    assert await event_types(tenant, message_id) == []  # never sent
    conflict = await tenant.post(f"/v1/messages/{message_id}/cancel")
    assert conflict.status_code == 409, conflict.text


async def test_a_phone_that_had_sent_it_wins(tenant: httpx.AsyncClient, receiver: Receiver) -> None:
    await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": MESSAGE_EVENTS})
    device = await a_phone(tenant)
    message_id, balance = await given(tenant, device)
    async with phone(tenant, device["token"]) as app:
        await app.patch(f"{MOBILE}/message", json=[state(message_id, "Processed")])
        assert await pull(app, 0) == []  # taken
        assert (await tenant.post(f"/v1/messages/{message_id}/cancel")).status_code == 200
        # Taken, and asked to cancel: the pull says so again.
        assert [m["state"] for m in await pull(app, 1)] == ["Cancelling"]
        at = "2026-11-22T10:00:00.000Z"
        reports = [state(message_id, "Delivered", Sent=at, Delivered=at)]
        assert (await app.patch(f"{MOBILE}/message", json=reports)).status_code == 204
        late = await app.patch(f"{MOBILE}/message", json=[state(message_id, "Cancelled")])
        assert late.status_code == 204

    found = await status_of(tenant, message_id)
    assert found["status"] == "delivered"
    after = (await tenant.get("/v1/account")).json()["balance"]
    assert round(balance - after, 6) == round(float(found["price"]), 6)  # charged
    assert await refunds(tenant, message_id) == 0
    assert await event_types(tenant, message_id) == ["message.delivered", "message.sent"]


@pytest.mark.parametrize("take_seconds", [2])
async def test_an_unanswered_cancel_becomes_cancelled_when_the_lease_lapses(
    tenant: httpx.AsyncClient,
) -> None:
    device = await a_phone(tenant)
    other = await a_phone(tenant)
    message_id, balance = await given(tenant, device)
    answer = await tenant.post(f"/v1/messages/{message_id}/cancel")
    assert answer.json()["status"] == "dispatching", answer.text

    found = await wait_for(tenant, message_id, {"cancelled", "queued"}, within=15)
    assert found["status"] == "cancelled"  # never back to the queue
    assert (found["device_id"], found["attempts"]) == (device["id"], 1)
    assert (await tenant.get("/v1/account")).json()["balance"] == balance
    assert await refunds(tenant, message_id) == 1
    await asyncio.sleep(0.3)  # housekeeping runs every 0.1 s: it stays cancelled
    for each in (device, other):
        async with phone(tenant, each["token"]) as app:
            assert await pull(app, 0) == []
    assert await refunds(tenant, message_id) == 1


async def test_another_accounts_message_is_not_found(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    device = await a_phone(tenant)
    message_id, _ = await given(tenant, device)
    answer = await client.post(f"/v1/messages/{message_id}/cancel")
    assert answer.status_code == 404, answer.text
    async with phone(tenant, device["token"]) as app:
        assert [m["state"] for m in await pull(app, 1)] == ["Pending"]


async def test_the_phones_stream_hears_of_the_cancel_after_the_commit(
    tenant: httpx.AsyncClient,
) -> None:
    device = await a_phone(tenant)
    message_id, _ = await given(tenant, device)
    stream = hub.subscribe(device["id"])
    try:
        assert (await tenant.post(f"/v1/messages/{message_id}/cancel")).status_code == 200
        told = stream.get_nowait()  # the request committed before it answered
        assert told == ("MessageCancelled", {"messageId": message_id})
        refused = await tenant.post(f"/v1/messages/{message_id}x/cancel")
        assert refused.status_code == 404
        assert stream.empty()
    finally:
        hub.unsubscribe(device["id"], stream)
