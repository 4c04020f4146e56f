"""TextLink's ``queued: true`` for an account with phones: no SIM of its own (or not the one
pinned) can take the message now, by the rules routing applies."""

from __future__ import annotations

from typing import Any

import httpx

from tests.devices.test_messages import a_phone, pull
from tests.devices.test_registration import SIMS, paired, phone, register

QUEUED = {"ok": True, "queued": True}


async def send(tenant: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await tenant.post(
        "/textlink/api/send-sms", json={"phone_number": "+14155550100", "text": "x", **body}
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def one_sim_phone(tenant: httpx.AsyncClient) -> tuple[dict[str, Any], int]:
    pairing = await paired(tenant)
    answer = await register(tenant, f"Bearer {pairing['token']}", simCards=SIMS[:1])
    assert answer.status_code == 201, answer.text
    [sim] = (await tenant.get("/v1/sim-cards")).json()
    return answer.json(), sim["id"]


async def test_a_sim_at_its_limit_per_minute_queues(tenant: httpx.AsyncClient) -> None:
    device, sim = await one_sim_phone(tenant)
    await tenant.patch(f"/v1/sim-cards/{sim}", json={"per_minute": 1})
    assert await send(tenant) == {"ok": True}
    async with phone(tenant, device["token"]) as app:
        await pull(app, 1)  # the SIM took its one for this minute
    assert await send(tenant) == QUEUED


async def test_a_disabled_sim_queues(tenant: httpx.AsyncClient) -> None:
    _, sim = await one_sim_phone(tenant)
    await tenant.patch(f"/v1/sim-cards/{sim}", json={"enabled": False})
    assert await send(tenant) == QUEUED


async def test_a_pin_asks_only_its_sim(tenant: httpx.AsyncClient) -> None:
    await a_phone(tenant)
    first, second = sorted(s["id"] for s in (await tenant.get("/v1/sim-cards")).json())
    await tenant.patch(f"/v1/sim-cards/{second}", json={"enabled": False})
    assert await send(tenant) == {"ok": True}
    assert await send(tenant, sim_card_id=first) == {"ok": True}
    assert await send(tenant, sim_card_id=second) == QUEUED
    # Not a SIM of the account's: routing chooses, as it does for the message.
    assert await send(tenant, sim_card_id=second + 1000) == {"ok": True}


async def test_an_account_without_phones_is_answered_as_before(
    tenant: httpx.AsyncClient,
) -> None:
    assert await send(tenant) == {"ok": True}
