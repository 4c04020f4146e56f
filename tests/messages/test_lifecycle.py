"""The message lifecycle through the simulator's number ranges: failures and refunds, expiry,
retries, scheduling, cancelling, listing and inbound messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings, wait_for
from textbridge.settings import Settings

US_PRICE = 0.0079

REJECTED = "+14155550190"
FAILS_AFTER_SENT = "+14155550192"
NEVER_DELIVERED = "+14155550194"
FLAKY = "+14155550196"
ALWAYS_BUSY = "+14155550198"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Three attempts at most, so the always-busy range gives up quickly."""
    return make_settings(database_url, tmp_path, max_attempts=3)


async def send(client: httpx.AsyncClient, to: str | list[str], **extra: Any) -> dict[str, Any]:
    answer = await client.post("/v1/messages", json={"to": to, "text": "hello", **extra})
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def send_one(client: httpx.AsyncClient, to: str, **extra: Any) -> str:
    message_id: str = (await send(client, to, **extra))["messages"][0]["id"]
    return message_id


async def balance(client: httpx.AsyncClient) -> float:
    value: float = (await client.get("/v1/account")).json()["balance"]
    return value


async def ledger(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await client.get("/v1/account/ledger")).json()["data"]
    return entries


async def assert_ledger_adds_up(client: httpx.AsyncClient) -> None:
    """The balance is the sum of the ledger, and each entry states the balance after it."""
    entries = list(reversed(await ledger(client)))
    running = 0.0
    for entry in entries:
        running = round(running + entry["amount"], 6)
        assert entry["balance_after"] == running, entries
    assert await balance(client) == running


async def assert_refunded(client: httpx.AsyncClient, message: dict[str, Any]) -> None:
    assert await balance(client) == 100
    refunds = [e for e in await ledger(client) if e["kind"] == "refund"]
    assert [(e["reference"], e["amount"]) for e in refunds] == [(message["id"], message["price"])]
    await assert_ledger_adds_up(client)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_rejected_message_fails_at_once_and_is_refunded(
    tenant: httpx.AsyncClient,
) -> None:
    message = await wait_for(tenant, await send_one(tenant, REJECTED))
    assert message["status"] == "failed"
    assert message["error"]["code"] == "simulated_rejected"
    assert "sent" not in message["status_times"]
    assert list(message["status_times"]) == ["accepted", "queued", "dispatching", "failed"]
    assert message["price"] == US_PRICE
    await assert_refunded(tenant, message)


async def test_a_message_failing_after_sent_is_refunded(tenant: httpx.AsyncClient) -> None:
    message = await wait_for(tenant, await send_one(tenant, FAILS_AFTER_SENT))
    assert message["status"] == "failed"
    assert message["error"]["code"] == "simulated_undeliverable"
    assert list(message["status_times"]) == [
        "accepted",
        "queued",
        "dispatching",
        "sent",
        "failed",
    ]
    assert message["status_times"]["sent"] <= message["status_times"]["failed"]
    await assert_refunded(tenant, message)


async def test_a_message_never_delivered_expires_at_its_ttl_and_is_refunded(
    tenant: httpx.AsyncClient,
) -> None:
    message_id = await send_one(tenant, NEVER_DELIVERED, ttl_seconds=1)
    # Its times say it was sent and then expired: a loaded machine may never show it "sent".
    message = await wait_for(tenant, message_id)
    assert message["status"] == "expired"
    assert list(message["status_times"])[-2:] == ["sent", "expired"]
    assert moment(message["expires_at"]) - moment(message["created_at"]) == timedelta(seconds=1)
    assert message["error"]["code"] == "expired"
    assert moment(message["status_times"]["expired"]) >= moment(message["expires_at"])
    await assert_refunded(tenant, message)


async def test_a_flaky_number_is_delivered_after_retries(tenant: httpx.AsyncClient) -> None:
    message = await wait_for(tenant, await send_one(tenant, FLAKY))
    assert message["status"] == "delivered"
    assert message["attempts"] == 3  # two temporary errors, then through
    assert message["error"] is None
    assert await balance(tenant) == 100 - US_PRICE
    assert [e["kind"] for e in await ledger(tenant)] == ["debit", "transfer_in"]


async def test_a_number_always_busy_fails_after_the_last_attempt(
    tenant: httpx.AsyncClient,
) -> None:
    message = await wait_for(tenant, await send_one(tenant, ALWAYS_BUSY))
    assert message["status"] == "failed"
    assert message["attempts"] == 3
    assert message["error"]["code"] == "simulated_busy"
    assert "sent" not in message["status_times"]
    await assert_refunded(tenant, message)


async def test_only_the_failed_part_of_a_batch_is_refunded(tenant: httpx.AsyncClient) -> None:
    accepted = await send(tenant, ["+14155550100", REJECTED, "+14155550101"])
    ids = [m["id"] for m in accepted["messages"]]
    finals = [await wait_for(tenant, message_id) for message_id in ids]
    assert [m["status"] for m in finals] == ["delivered", "failed", "delivered"]
    assert await balance(tenant) == round(100 - 2 * US_PRICE, 6)
    kinds = [(e["kind"], e["reference"]) for e in await ledger(tenant)]
    assert kinds[0] == ("refund", ids[1])
    assert [k for k, _ in kinds] == ["refund", "debit", "transfer_in"]
    await assert_ledger_adds_up(tenant)


async def test_a_scheduled_message_waits_then_goes_out(client: httpx.AsyncClient) -> None:
    schedule_at = datetime.now(UTC) + timedelta(seconds=1)
    accepted = await send(client, "+14155550100", schedule_at=schedule_at.isoformat())
    message_id = accepted["messages"][0]["id"]
    await asyncio.sleep(0.3)  # the dispatcher polls several times meanwhile
    waiting = (await client.get(f"/v1/messages/{message_id}")).json()
    asked_in_time = datetime.now(UTC) < schedule_at

    message = await wait_for(client, message_id)
    assert message["status"] == "delivered"
    assert moment(message["status_times"]["queued"]) >= schedule_at
    assert moment(message["status_times"]["sent"]) >= schedule_at
    # A loaded machine may be past the second before the message is accepted or looked at
    # again: what was seen then is held to "waiting" only if it was seen in time.
    if moment(message["created_at"]) < schedule_at:
        assert (accepted["status"], accepted["messages"][0]["status"]) == ("accepted", "accepted")
        assert moment(message["schedule_at"]) == schedule_at
    if asked_in_time:
        assert (waiting["status"], list(waiting["status_times"])) == ("accepted", ["accepted"])


async def test_a_schedule_time_without_offset_is_utc(client: httpx.AsyncClient) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    message_id = await send_one(client, "+14155550100", schedule_at=later.isoformat())
    message = (await client.get(f"/v1/messages/{message_id}")).json()
    assert moment(message["schedule_at"]) == later.replace(tzinfo=UTC)


async def test_cancelling_a_scheduled_message_refunds_it(tenant: httpx.AsyncClient) -> None:
    schedule_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    message_id = await send_one(tenant, "+381690156360", schedule_at=schedule_at)
    assert await balance(tenant) == 100 - 0.15

    answer = await tenant.post(f"/v1/messages/{message_id}/cancel")
    assert answer.status_code == 200, answer.text
    cancelled = answer.json()
    assert cancelled["status"] == "cancelled"
    assert list(cancelled["status_times"]) == ["accepted", "cancelled"]
    assert (await tenant.get(f"/v1/messages/{message_id}")).json()["status"] == "cancelled"
    await assert_refunded(tenant, cancelled)

    again = await tenant.post(f"/v1/messages/{message_id}/cancel")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "conflict"
    await assert_refunded(tenant, cancelled)  # still one refund


async def test_a_delivered_message_cannot_be_cancelled(tenant: httpx.AsyncClient) -> None:
    message = await wait_for(tenant, await send_one(tenant, "+14155550100"))
    assert message["status"] == "delivered"
    answer = await tenant.post(f"/v1/messages/{message['id']}/cancel")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "conflict"
    assert error["field"] == "id"
    assert "delivered" in error["message"]
    assert (await tenant.get(f"/v1/messages/{message['id']}")).json()["status"] == "delivered"
    assert await balance(tenant) == 100 - US_PRICE
    assert "refund" not in [e["kind"] for e in await ledger(tenant)]


async def test_listing_filters_and_pages(client: httpx.AsyncClient) -> None:
    numbers = [f"+1415555010{i}" for i in range(1, 7)] + [REJECTED]
    early = [await send(client, number) for number in numbers[:3]]
    await asyncio.sleep(0.02)  # the boundary falls clearly between two creation times
    boundary = datetime.now(UTC)
    await asyncio.sleep(0.02)
    late = [await send(client, number) for number in numbers[3:]]
    batches = early + late
    ids = [b["messages"][0]["id"] for b in batches]
    finals = [await wait_for(client, message_id) for message_id in ids]
    assert [m["status"] for m in finals] == ["delivered"] * 6 + ["failed"]

    async def listed(**params: Any) -> list[str]:
        answer = await client.get("/v1/messages", params=params)
        assert answer.status_code == 200, answer.text
        return [m["id"] for m in answer.json()["data"]]

    # Pages of three, newest first, each message once.
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        answer = (await client.get("/v1/messages", params=params)).json()
        pages.append([m["id"] for m in answer["data"]])
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == list(reversed(ids))
    # A page that ends exactly at the last message says so.
    answer = (await client.get("/v1/messages", params={"limit": 7})).json()
    assert answer["next_cursor"] is None
    assert len(answer["data"]) == 7

    assert await listed(status="failed") == [ids[6]]
    assert await listed(status="delivered") == list(reversed(ids[:6]))
    assert await listed(status="queued") == []
    assert await listed(direction="out") == list(reversed(ids))
    assert await listed(direction="in") == []
    assert await listed(phone=numbers[4]) == [ids[4]]
    assert await listed(phone="1 (415) 555-0105") == [ids[4]]  # normalised like a recipient
    assert await listed(batch_id=batches[1]["batch_id"]) == [ids[1]]
    assert await listed(since=boundary.isoformat()) == list(reversed(ids[3:]))
    assert await listed(until=boundary.isoformat()) == list(reversed(ids[:3]))
    window = {"since": boundary.isoformat(), "until": datetime.now(UTC).isoformat()}
    assert await listed(**window) == list(reversed(ids[3:]))
    # Filters and pages combine.
    first = (await client.get("/v1/messages", params={"status": "delivered", "limit": 4})).json()
    assert [m["id"] for m in first["data"]] == list(reversed(ids[2:6]))
    rest = await listed(status="delivered", limit=4, cursor=first["next_cursor"])
    assert rest == list(reversed(ids[:2]))


async def test_an_injected_inbound_message_is_received(client: httpx.AsyncClient) -> None:
    before = await balance(client)
    outbound = await send_one(client, "+14155550100")
    answer = await client.post(
        "/v1/simulator/inbound",
        json={"from": "1 (415) 555-0123", "to": "+14155550100", "text": "STOP"},
    )
    assert answer.status_code == 201, answer.text
    inbound = answer.json()
    assert inbound["status"] == "received"
    assert inbound["direction"] == "in"
    assert inbound["from"] == "+14155550123"
    assert inbound["to"] == "+14155550100"
    assert inbound["text"] == "STOP"
    assert inbound["price"] == 0
    assert list(inbound["status_times"]) == ["received"]
    assert (await client.get(f"/v1/messages/{inbound['id']}")).json() == inbound

    async def listed(**params: Any) -> list[str]:
        return [m["id"] for m in (await client.get("/v1/messages", params=params)).json()["data"]]

    assert await listed(direction="in") == [inbound["id"]]
    assert await listed(direction="out") == [outbound]
    assert await listed(status="received") == [inbound["id"]]
    assert await listed(phone="+14155550123") == [inbound["id"]]
    assert await balance(client) == round(before - US_PRICE, 6)  # receiving costs nothing
    # An inbound message is final: it cannot be cancelled.
    assert (await client.post(f"/v1/messages/{inbound['id']}/cancel")).status_code == 409
