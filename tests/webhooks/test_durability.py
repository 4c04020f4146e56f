"""What webhooks survive: a receiver down while a thousand events pile up, and a receiver so
slow it would hold the sender forever."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.eventually import eventually
from tests.webhooks.conftest import Receiver, delivered, serving, subscribe
from textbridge.settings import Settings


@pytest.fixture
def webhook_timeout() -> float:
    # Long enough that a receiver on two busy cores always answers in time: an answer after
    # the timeout is a failed attempt, and the event rightly comes again.
    return 5.0


@pytest.fixture
def settings(database_url: str, tmp_path: Path, webhook_timeout: float) -> Settings:
    return make_settings(database_url, tmp_path, webhook_timeout_seconds=webhook_timeout)


async def test_a_receiver_down_while_1000_events_pile_up_gets_each_once_in_order(
    client: httpx.AsyncClient, free_port: Any
) -> None:
    port = free_port()  # nobody listens here yet
    url = f"http://127.0.0.1:{port}/hooks"
    events = ["message.sent", "message.delivered"]
    endpoint = (await client.post("/v1/webhooks", json={"url": url, "events": events})).json()
    phones = [f"+1415556{n:04d}" for n in range(500)]
    job = (await client.post("/v1/bulk-jobs", json={"to": phones, "text": "pile"})).json()

    async def all_delivered() -> bool:
        found = (await client.get(f"/v1/bulk-jobs/{job['id']}")).json()
        return found["by_status"].get("delivered", 0) >= 500

    await eventually(all_delivered, within=60, interval=0.2)
    # 1,000 events recorded, each tried and refused at least once by now.
    deliveries = f"/v1/webhooks/{endpoint['id']}/deliveries"
    page = (await client.get(deliveries, params={"limit": 100})).json()["data"]
    assert {d["status"] for d in page} == {"pending"}

    with serving(port) as receiver:  # back, at the same address
        await eventually(lambda: len(receiver.received) >= 1000, within=60)
        await asyncio.sleep(0.5)  # anything more would be a duplicate
        bodies = receiver.bodies()
    ids = Counter(body["id"] for body in bodies)
    assert len(ids) == 1000  # none lost
    assert set(ids.values()) == {1}  # none twice
    per_message: dict[str, list[str]] = {}
    for body in bodies:
        per_message.setdefault(body["data"]["id"], []).append(body["type"])
    assert len(per_message) == 500
    assert set(map(tuple, per_message.values())) == {("message.sent", "message.delivered")}


@pytest.mark.parametrize("webhook_timeout", [0.5])
async def test_a_slow_receiver_holds_the_sender_no_longer_than_the_timeout(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    with serving() as slow:
        slow.trickle = 0.2  # each byte in time for a per-read timeout, never done in 0.5 s
        hooks = {}
        for name, target in (("slow", slow), ("fast", receiver)):
            body = {"url": target.url, "events": ["contact.tag_changed"]}
            hooks[name] = (await client.post("/v1/webhooks", json=body)).json()
        started = time.monotonic()
        for n in range(3):
            await client.post("/v1/contacts", json={"phone": f"+141555501{n:02d}", "tag": "t"})
        await eventually(lambda: len(receiver.received) == 3)
        assert time.monotonic() - started < 3.5  # three rounds, each cut at 0.5 s
        deliveries = f"/v1/webhooks/{hooks['slow']['id']}/deliveries"

        async def attempts() -> list[dict[str, Any]]:
            page = (await client.get(deliveries)).json()["data"]
            tried = [attempt for delivery in page for attempt in delivery["attempts"]]
            assert len(tried) >= 3, tried
            return tried

        tried = await eventually(attempts)  # cut off: recorded by now
        assert time.monotonic() - started < 3.5
    assert {a["error"] for a in tried} == {"no answer within 0.5 s"}
    assert max(a["duration_ms"] for a in tried) < 1000


async def test_redirects_are_not_followed_and_answers_not_read_to_the_end(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    with serving() as elsewhere:
        receiver.statuses = [302]
        receiver.location = elsewhere.url
        receiver.answer_bytes = 256 * 1024 * 1024  # far more than any buffer holds
        endpoint = await subscribe(client, receiver.url)
        await client.post("/v1/contacts", json={"phone": "+14155550100", "tag": "t"})
        delivery = await delivered(client, endpoint)
        await eventually(lambda: receiver.cut_off == 2)  # both answers: the 302, then the 200
        assert elsewhere.received == []
    assert [(a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (302, "answered 302"),
        (200, None),
    ]
