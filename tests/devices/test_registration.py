"""The SMSGate device protocol's registration family, replayed as the app sends it: pairing,
the three ways to register, the phone's own calls, and the native devices API."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from tests.conftest import keyed

MOBILE = "/api/mobile/v1"
APP = {"User-Agent": "me.capcom.smsgateway/1.55.0"}
APP_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
SIMS = [
    {"slotIndex": 0, "simNumber": 1, "phoneNumber": "****1234", "carrierName": "T-Mobile",
     "iccid": None},
    {"slotIndex": 1, "simNumber": 2, "phoneNumber": None, "carrierName": "Vodafone",
     "iccid": "8944"},
]  # fmt: skip


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


async def register(
    client: httpx.AsyncClient, authorization: str, name: str = "Samsung/beyond0lte", **body: Any
) -> httpx.Response:
    return await client.post(
        f"{MOBILE}/device",
        json={"name": name, "pushToken": None, "simCards": SIMS, **body},
        headers={**APP, "Authorization": authorization},
    )


def phone(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    """The app, calling with its device token."""
    return keyed(client, token)


async def paired(tenant: httpx.AsyncClient) -> dict[str, Any]:
    answer = await tenant.post("/v1/devices/pairing")
    assert answer.status_code == 201, answer.text
    pairing: dict[str, Any] = answer.json()
    return pairing


async def test_three_phones_join_by_token_login_and_code(tenant: httpx.AsyncClient) -> None:
    pairing = await paired(tenant)
    assert pairing["token"].startswith("tbp_")
    assert re.fullmatch(r"\d{5}-\d{5}-\d{5}", pairing["code"])

    first = await register(tenant, f"Bearer {pairing['token']}")
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"id", "token", "login", "password"}
    assert len(body["id"]) == 21
    assert isinstance(body["password"], str)

    second = await register(tenant, basic(body["login"], body["password"]), name="Pixel 7")
    assert second.status_code == 201, second.text
    assert (second.json()["login"], second.json()["password"]) == (body["login"], None)

    third = await register(tenant, f"Code {pairing['code']}", name="Moto")
    assert third.status_code == 201, third.text
    again = await register(tenant, f"Code {pairing['code']}", name="Moto 2")
    assert again.status_code == 401
    assert again.json() == {"message": "unknown or expired code"}

    async with phone(tenant, body["token"]) as app:
        code = await app.get(f"{MOBILE}/user/code", headers={
            "Authorization": basic(body["login"], body["password"])})  # fmt: skip
    assert code.status_code == 200, code.text
    assert APP_DATE.match(code.json()["validUntil"])
    fourth = await register(tenant, f"Code {code.json()['code']}", name="Nokia")
    assert fourth.status_code == 201, fourth.text

    listed = (await tenant.get("/v1/devices")).json()
    assert {d["name"] for d in listed} == {"Samsung/beyond0lte", "Pixel 7", "Moto", "Nokia"}
    assert all(d["online"] for d in listed)
    sims = listed[0]["sim_cards"]
    assert [(s["sim_number"], s["carrier_name"], s["present"]) for s in sims] == [
        (1, "T-Mobile", True),
        (2, "Vodafone", True),
    ]
    assert all(isinstance(s["id"], int) for s in sims)


async def test_the_phone_reads_itself_its_settings_and_patches_its_sims(
    tenant: httpx.AsyncClient,
) -> None:
    pairing = await paired(tenant)
    device = (await register(tenant, f"Bearer {pairing['token']}")).json()
    async with phone(tenant, device["token"]) as app:
        me = (await app.get(f"{MOBILE}/device")).json()
        assert me["device"]["id"] == device["id"]
        assert APP_DATE.match(me["device"]["lastSeen"])
        assert "externalIp" in me
        settings = (await app.get(f"{MOBILE}/settings")).json()
        assert re.fullmatch(r"[0-9a-f]{64}", settings["webhooks"]["signing_key"])
        assert settings["ping"]["interval_seconds"] >= 10

        patched = await app.patch(
            f"{MOBILE}/device",
            json={"id": device["id"], "pushToken": None, "simCards": SIMS[:1]},
        )
        assert patched.status_code == 204, patched.text
        other = await app.patch(f"{MOBILE}/device", json={"id": "x" * 21, "pushToken": None})
        assert other.status_code == 403
        assert "message" in other.json()
    anonymous = (await tenant.get(f"{MOBILE}/device", headers={"Authorization": ""})).json()
    assert "device" not in anonymous
    sims = (await tenant.get("/v1/sim-cards")).json()
    assert [(s["sim_number"], s["present"]) for s in sims] == [(1, True), (2, False)]


async def test_the_password_changes_with_the_current_one(tenant: httpx.AsyncClient) -> None:
    pairing = await paired(tenant)
    device = (await register(tenant, f"Bearer {pairing['token']}")).json()
    path = f"{MOBILE}/user/password"
    async with phone(tenant, device["token"]) as app:
        wrong = await app.patch(path, json={"currentPassword": "nope", "newPassword": "n" * 12})
        assert wrong.status_code == 401
        short = await app.patch(
            path, json={"currentPassword": device["password"], "newPassword": "short"}
        )
        assert short.status_code == 400
        ok = await app.patch(
            path, json={"currentPassword": device["password"], "newPassword": "a new password"}
        )
        assert ok.status_code == 204
    old = await register(tenant, basic(device["login"], device["password"]))
    assert old.status_code == 401
    new = await register(tenant, basic(device["login"], "a new password"))
    assert new.status_code == 201


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer tbp_unknown", "Basic !!!", "Basic " + base64.b64encode(b"NOBODY:x").decode(),
     "Code 000000", "Token abc"],
)  # fmt: skip
async def test_bad_credentials_are_401_in_the_apps_shape(
    tenant: httpx.AsyncClient, authorization: str
) -> None:
    answer = await register(tenant, authorization)
    assert answer.status_code == 401
    assert set(answer.json()) == {"message"}
    assert (await tenant.get("/v1/devices")).json() == []


async def test_a_malformed_registration_is_400_naming_the_field(
    tenant: httpx.AsyncClient,
) -> None:
    pairing = await paired(tenant)
    for body in ({"name": ""}, {"name": "x" * 129}, {"simCards": [{"simNumber": "one"}]}):
        answer = await register(tenant, f"Bearer {pairing['token']}", **body)
        assert answer.status_code in (400, 422), answer.text
        assert "message" in answer.json()
    assert (await tenant.get("/v1/devices")).json() == []


async def test_guessing_codes_is_cut_off(tenant: httpx.AsyncClient) -> None:
    for n in range(10):
        assert (await register(tenant, f"Code {n:06d}")).status_code == 401
    pairing = await paired(tenant)
    blocked = await register(tenant, f"Code {pairing['code']}")  # even a good one, for now
    assert blocked.status_code == 429
    assert "retry-after" in blocked.headers


async def test_a_disabled_or_removed_phone_is_refused(tenant: httpx.AsyncClient) -> None:
    pairing = await paired(tenant)
    device = (await register(tenant, f"Bearer {pairing['token']}")).json()
    async with phone(tenant, device["token"]) as app:
        answer = await tenant.patch(f"/v1/devices/{device['id']}", json={"enabled": False})
        assert answer.json()["enabled"] is False
        assert (await app.get(f"{MOBILE}/settings")).status_code == 403
        await tenant.patch(f"/v1/devices/{device['id']}", json={"enabled": True})
        assert (await app.get(f"{MOBILE}/settings")).status_code == 200
        assert (await tenant.delete(f"/v1/devices/{device['id']}")).status_code == 204
        assert (await app.get(f"{MOBILE}/settings")).status_code == 401
    assert (await tenant.get("/v1/sim-cards")).json() == []


async def test_sim_card_limits_and_work_hours(tenant: httpx.AsyncClient) -> None:
    pairing = await paired(tenant)
    await register(tenant, f"Bearer {pairing['token']}")
    sim = (await tenant.get("/v1/sim-cards")).json()[0]
    path = f"/v1/sim-cards/{sim['id']}"
    answer = await tenant.patch(
        path, json={"per_minute": 20, "per_day": 500, "work_start": "08:00", "work_end": "20:00"}
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["per_minute"], answer.json()["work_end"]) == (20, "20:00")
    cleared = await tenant.patch(path, json={"per_minute": None})
    assert cleared.json()["per_minute"] is None
    lonely = await tenant.patch(path, json={"work_start": None})
    assert (lonely.status_code, lonely.json()["error"]["field"]) == (400, "work_end")
    bad = await tenant.patch(path, json={"work_start": "25:00"})
    assert bad.status_code == 400
    assert (await tenant.get("/v1/sim-cards")).json()[0]["work_start"] == "08:00"


async def test_a_sim_card_is_enabled_or_not_never_null(tenant: httpx.AsyncClient) -> None:
    """Null clears a limit; ``enabled`` has nothing to clear: a 400 naming it, nothing changed."""
    pairing = await paired(tenant)
    await register(tenant, f"Bearer {pairing['token']}")
    sim = (await tenant.get("/v1/sim-cards")).json()[0]
    answer = await tenant.patch(f"/v1/sim-cards/{sim['id']}", json={"enabled": None})
    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "enabled"), answer.text
    assert (await tenant.get("/v1/sim-cards")).json()[0] == sim


async def test_devices_belong_to_their_account(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    pairing = await paired(tenant)
    device = (await register(tenant, f"Bearer {pairing['token']}")).json()
    sim_id = (await tenant.get("/v1/sim-cards")).json()[0]["id"]
    assert (await client.get("/v1/devices")).json() == []
    assert (await client.get("/v1/sim-cards")).json() == []
    for answer in (
        await client.patch(f"/v1/devices/{device['id']}", json={"name": "mine"}),
        await client.delete(f"/v1/devices/{device['id']}"),
        await client.patch(f"/v1/sim-cards/{sim_id}", json={"enabled": False}),
    ):
        assert answer.status_code == 404
    assert (await tenant.get("/v1/devices")).json()[0]["name"] == "Samsung/beyond0lte"


async def test_the_phone_limit_in_its_settings_follows_its_sims(tenant: httpx.AsyncClient) -> None:
    """The app's one limit per phone is the sum of its SIMs' (per minute, else per day)."""
    pairing = await paired(tenant)
    device = (await register(tenant, f"Bearer {pairing['token']}")).json()
    sims = [s["id"] for s in (await tenant.get("/v1/sim-cards")).json()]
    assert len(sims) == 2
    async with phone(tenant, device["token"]) as app:

        async def limit() -> dict[str, Any]:
            settings: dict[str, Any] = (await app.get(f"{MOBILE}/settings")).json()
            return settings["messages"]

        assert await limit() == {"limit_period": "Disabled", "limit_value": 0}
        await tenant.patch(f"/v1/sim-cards/{sims[0]}", json={"per_minute": 10, "per_day": 100})
        assert (await limit())["limit_period"] == "Disabled"  # the other SIM has none
        await tenant.patch(f"/v1/sim-cards/{sims[1]}", json={"per_minute": 20})
        assert await limit() == {"limit_period": "PerMinute", "limit_value": 30}
        await tenant.patch(f"/v1/sim-cards/{sims[1]}", json={"per_minute": None, "per_day": 50})
        assert await limit() == {"limit_period": "PerDay", "limit_value": 150}
        await tenant.patch(f"/v1/sim-cards/{sims[1]}", json={"enabled": False})
        assert await limit() == {"limit_period": "PerMinute", "limit_value": 10}
