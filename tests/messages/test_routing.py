"""Which channel takes a message, by profile: in production nothing is "delivered" by the
simulator unless it is enabled; a message with no real route waits queued (``no_route``),
spending no attempts, until a phone appears or its ttl ends. Every send answer names the
channel each message is routed to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import client_of, make_settings, wait_for
from tests.devices.test_messages import a_phone, pull
from tests.devices.test_registration import phone
from tests.eventually import eventually
from textbridge.db import Database
from textbridge.settings import Environment, Settings

TO = "+14155550100"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Two attempts only: a wait that spent them would fail the message within a second.
    return make_settings(
        database_url,
        tmp_path,
        env=Environment.PRODUCTION,
        no_route_recheck_seconds=0.1,
        max_attempts=2,
    )


async def send(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post("/v1/messages", json={"to": TO, "text": "hi", **body})
    assert answer.status_code == 202, answer.text
    message: dict[str, Any] = answer.json()["messages"][0]
    return message


async def rechecked(client: httpx.AsyncClient, message_id: str, times: int) -> dict[str, Any]:
    """The message once the dispatcher has taken it ``times`` times (each claim stamps its
    ``dispatching`` time afresh) and put it back."""
    seen: set[str] = set()

    async def put_back() -> dict[str, Any]:
        body: dict[str, Any] = (await client.get(f"/v1/messages/{message_id}")).json()
        if (stamp := body["status_times"].get("dispatching")) is not None:
            seen.add(stamp)
        assert len(seen) >= times, f"taken {len(seen)} times: {body}"
        assert body["status"] == "queued", body
        return body

    return await eventually(put_back, interval=0.02)


async def balance(client: httpx.AsyncClient) -> float:
    value: float = (await client.get("/v1/account")).json()["balance"]
    return value


async def test_with_no_route_a_message_waits_queued_until_a_phone_takes_it(
    tenant: httpx.AsyncClient,
) -> None:
    message = await send(tenant)
    assert (message["status"], message["channel"]) == ("queued", None)
    waiting = await rechecked(tenant, message["id"], times=4)
    assert waiting["error"]["code"] == "no_route"
    assert waiting["attempts"] == 0  # four looks, more than MAX_ATTEMPTS, none spent

    device = await a_phone(tenant)
    async with phone(tenant, device["token"]) as app:
        assert [m["id"] for m in await pull(app, 1)] == [message["id"]]
    taken = (await tenant.get(f"/v1/messages/{message['id']}")).json()
    assert (taken["status"], taken["channel"], taken["attempts"]) == ("dispatching", "device", 1)
    assert taken["error"] is None


async def test_with_no_route_a_message_expires_at_its_ttl_and_is_refunded(
    tenant: httpx.AsyncClient,
) -> None:
    before = await balance(tenant)
    message = await send(tenant, ttl_seconds=2)
    assert await balance(tenant) < before
    expired = await wait_for(tenant, message["id"], {"expired"})
    assert (expired["error"]["code"], expired["attempts"]) == ("expired", 0)
    assert expired["sends"] == []
    assert await balance(tenant) == before


async def test_messages_for_phones_that_were_removed_wait_for_a_route(
    tenant: httpx.AsyncClient,
) -> None:
    device = await a_phone(tenant)
    assert (await tenant.delete(f"/v1/devices/{device['id']}")).status_code == 204
    message = await send(tenant, channel="device")
    assert message["channel"] is None
    waiting = await rechecked(tenant, message["id"], times=2)
    assert (waiting["error"]["code"], waiting["channel"]) == ("no_route", "device")


async def test_the_answer_names_the_phones_of_an_account_that_has_them(
    tenant: httpx.AsyncClient,
) -> None:
    await a_phone(tenant)
    assert (await send(tenant))["channel"] == "device"
    body = {"to": TO, "text": "x", "channel": "simulator"}
    refused = await tenant.post("/v1/messages", json=body)
    assert refused.status_code == 400, refused.text  # production: there is none
    assert refused.json()["error"]["field"] == "channel"


async def test_production_with_the_simulator_enabled_works_as_before(
    settings: Settings, db: Database
) -> None:
    async with client_of(settings, simulator_enabled=True) as client:
        message = await send(client)
        assert message["channel"] == "simulator"
        delivered = await wait_for(client, message["id"])
        assert (delivered["status"], delivered["channel"]) == ("delivered", "simulator")


async def test_development_has_the_simulator_even_for_phones_that_were_removed(
    settings: Settings, db: Database
) -> None:
    async with client_of(settings, env=Environment.DEVELOPMENT) as client:
        plain = await send(client)
        assert plain["channel"] == "simulator"
        assert (await wait_for(client, plain["id"]))["status"] == "delivered"
        # No phones: what is named for them goes to the simulator, and says so.
        named = await send(client, channel="device")
        assert named["channel"] == "simulator"
        delivered = await wait_for(client, named["id"])
        assert (delivered["status"], delivered["channel"]) == ("delivered", "simulator")
