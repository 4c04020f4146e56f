"""``device.online`` and ``device.offline``: a phone that registers or is seen again is online,
one silent for ``DEVICE_ONLINE_SECONDS`` goes offline in housekeeping. Each transition is told
once, however many processes see or sweep it, and reaches the account's webhooks signed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import keyed, make_settings
from tests.devices.test_messages import a_phone
from tests.devices.test_registration import MOBILE, phone
from tests.eventually import eventually
from tests.webhooks.conftest import Receiver, serving
from textbridge.client import parse_webhook
from textbridge.db import Database
from textbridge.devices.service import devices
from textbridge.kit.clock import utcnow
from textbridge.messages.tasks import Housekeeping
from textbridge.models import Device
from textbridge.settings import Settings

DEVICE_EVENTS = ["device.online", "device.offline"]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, device_online_seconds=10)


async def silent(db: Database, device_id: str, seconds: float) -> None:
    """As if the phone was last seen ``seconds`` ago."""
    async with db.transaction() as session:
        await session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(last_seen_at=utcnow() - timedelta(seconds=seconds))
        )


async def events_of(client: httpx.AsyncClient, device_id: str) -> list[str]:
    """The device's events, oldest first."""
    answer = await client.get("/v1/events", params={"subject_id": device_id})
    assert answer.status_code == 200, answer.text
    return [event["type"] for event in reversed(answer.json()["data"])]


async def subscribe(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await client.post("/v1/webhooks", json={"url": url, "events": DEVICE_EVENTS})
    assert answer.status_code == 201, answer.text
    endpoint: dict[str, Any] = answer.json()
    return endpoint


async def test_a_phone_goes_online_offline_and_online_again_once_each(
    client: httpx.AsyncClient,
    tenant: httpx.AsyncClient,
    receiver: Receiver,
    db: Database,
    settings: Settings,
) -> None:
    endpoint = await subscribe(tenant, receiver.url)
    other = await client.post("/v1/accounts", json={"name": "other", "balance": 1})
    with serving() as bystander:
        async with keyed(client, other.json()["api_key"]) as stranger:
            await subscribe(stranger, bystander.url)

            device = await a_phone(tenant)
            assert await events_of(tenant, device["id"]) == ["device.online"]

            await silent(db, device["id"], 11)
            housekeeping = Housekeeping(db, settings)
            for _ in range(2):  # and the app's own housekeeping sweeps meanwhile
                await housekeeping.run_once()
            assert await events_of(tenant, device["id"]) == ["device.online", "device.offline"]
            listed = (await tenant.get("/v1/devices")).json()
            assert [d["online"] for d in listed] == [False]

            async with phone(tenant, device["token"]) as app:
                for _ in range(2):
                    assert (await app.get(f"{MOBILE}/message")).status_code == 200
            await housekeeping.run_once()
            assert await events_of(tenant, device["id"]) == [
                "device.online",
                "device.offline",
                "device.online",
            ]

            await eventually(lambda: len(receiver.received) >= 3)
            await asyncio.sleep(0.3)  # nothing more comes
            assert len(receiver.received) == 3
            assert bystander.received == []
            assert await events_of(stranger, device["id"]) == []

    bodies = [
        parse_webhook(endpoint["secret"], body, headers) for headers, body in receiver.received
    ]
    assert [body["type"] for body in bodies] == [
        "device.online",
        "device.offline",
        "device.online",
    ]
    for body in bodies:
        assert set(body["data"]) == {"device_id", "name", "last_seen_at"}
        assert body["data"]["device_id"] == device["id"]
        assert body["data"]["name"] == "Samsung/beyond0lte"
    seen = [datetime.fromisoformat(body["data"]["last_seen_at"]) for body in bodies]
    assert all(moment.tzinfo is not None for moment in seen)
    # Offline tells when it was last seen: the silence began before it, and after it again.
    assert seen[1] < seen[0] < seen[2]


async def test_one_transition_however_many_see_or_sweep_it(
    tenant: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    device = await a_phone(tenant)
    await silent(db, device["id"], 11)
    sweepers = [Database(settings.resolved_database_url) for _ in range(3)]
    try:
        await asyncio.gather(
            *(
                sweeper.run(lambda session: devices.sweep_offline(session, settings))
                for sweeper in sweepers
            )
        )
        await asyncio.gather(
            *(
                sweeper.run(lambda session: devices.seen(session, device["id"]))
                for sweeper in sweepers
            )
        )
    finally:
        for sweeper in sweepers:
            await sweeper.dispose()
    assert await events_of(tenant, device["id"]) == [
        "device.online",
        "device.offline",
        "device.online",
    ]


async def test_device_events_are_native_only(tenant: httpx.AsyncClient, receiver: Receiver) -> None:
    answer = await tenant.post(
        "/v1/webhooks",
        json={"url": receiver.url, "format": "textlink", "events": ["device.offline"]},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "events[0]"
    assert "TextLink" in answer.json()["error"]["message"]

    endpoint = await subscribe(tenant, receiver.url)
    answer = await tenant.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert answer.status_code == 200, answer.text
    assert [(r["type"], r["status_code"]) for r in answer.json()] == [
        ("device.online", 200),
        ("device.offline", 200),
    ]
    samples = [parse_webhook(endpoint["secret"], b, h)["data"] for h, b in receiver.received]
    assert [set(data) for data in samples] == [{"sample", "device_id", "name", "last_seen_at"}] * 2
