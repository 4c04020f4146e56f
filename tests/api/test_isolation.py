"""Accounts never see each other: another account's message is 404 (not 403), lists are scoped,
a sub-account sees neither its parent nor its siblings, and keys are secret and revocable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, keyed, wait_for


async def create_account(client: httpx.AsyncClient, name: str, balance: float) -> dict[str, Any]:
    answer = await client.post("/v1/accounts", json={"name": name, "balance": balance})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


@pytest.fixture
async def sibling(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A second sub-account of the admin, next to ``tenant``."""
    created = await create_account(client, "sibling", 50)
    async with keyed(client, created["api_key"]) as http:
        yield http


async def send(client: httpx.AsyncClient, to: str = "+14155550100", **extra: Any) -> str:
    answer = await client.post("/v1/messages", json={"to": to, "text": "private", **extra})
    assert answer.status_code == 202, answer.text
    message_id: str = answer.json()["messages"][0]["id"]
    return message_id


async def account_id(client: httpx.AsyncClient) -> str:
    value: str = (await client.get("/v1/account")).json()["id"]
    return value


async def test_another_accounts_message_is_404_on_read_and_cancel(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient, sibling: httpx.AsyncClient
) -> None:
    own = await send(tenant)
    # A scheduled message could be cancelled by its owner: a stranger must not.
    later = await send(tenant, schedule_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    admins = await send(client)

    for stranger, message_id in [
        (sibling, own),
        (sibling, later),
        (client, own),  # even the admin reads only its own messages through this API
        (tenant, admins),
    ]:
        for answer in [
            await stranger.get(f"/v1/messages/{message_id}"),
            await stranger.post(f"/v1/messages/{message_id}/cancel"),
        ]:
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "not_found"
            assert answer.json()["error"]["field"] == "id"

    # The strangers' attempts changed nothing: the owner still has it, still cancellable.
    assert (await tenant.get(f"/v1/messages/{later}")).json()["status"] == "accepted"
    assert (await tenant.post(f"/v1/messages/{later}/cancel")).status_code == 200
    assert (await wait_for(tenant, own))["status"] == "delivered"
    assert (await wait_for(client, admins))["status"] == "delivered"


async def test_lists_show_only_the_callers_messages(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient, sibling: httpx.AsyncClient
) -> None:
    mine = {await send(tenant), await send(tenant, to="+14155550111")}
    theirs_to_100 = await send(sibling)
    theirs_to_111 = await send(sibling, to="+14155550111")
    theirs = {theirs_to_100, theirs_to_111}
    admins = {await send(client)}
    inbound = await tenant.post(
        "/v1/simulator/inbound", json={"from": "+14155550123", "text": "for tenant"}
    )
    mine.add(inbound.json()["id"])

    async def listed(who: httpx.AsyncClient, **params: Any) -> set[str]:
        answer = await who.get("/v1/messages", params=params)
        assert answer.status_code == 200, answer.text
        return {m["id"] for m in answer.json()["data"]}

    assert await listed(tenant) == mine
    assert await listed(sibling) == theirs
    assert await listed(client) == admins
    # Filters narrow the caller's own messages; they never widen to someone else's.
    assert await listed(sibling, phone="+14155550111") == {theirs_to_111}
    assert await listed(sibling, direction="in") == set()
    assert await listed(client, phone="+14155550111") == set()
    assert await listed(client, phone="+14155550123") == set()
    other_batch = (await sibling.get(f"/v1/messages/{theirs_to_100}")).json()["batch_id"]
    assert await listed(tenant, batch_id=other_batch) == set()
    assert await listed(sibling, batch_id=other_batch) == {theirs_to_100}
    # Nor do ledgers mix.
    sibling_ledger = (await sibling.get("/v1/account/ledger")).json()["data"]
    tenant_ledger = (await tenant.get("/v1/account/ledger")).json()["data"]
    assert other_batch in {e["reference"] for e in sibling_ledger}
    assert other_batch not in {e["reference"] for e in tenant_ledger}
    assert {e["id"] for e in sibling_ledger}.isdisjoint({e["id"] for e in tenant_ledger})


async def test_a_sub_account_cannot_see_its_parent_or_a_sibling(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient, sibling: httpx.AsyncClient
) -> None:
    admin_id = await account_id(client)
    tenant_id = await account_id(tenant)
    sibling_id = await account_id(sibling)
    for other in (admin_id, sibling_id, "01J0000000000000000000000Z"):
        answer = await tenant.get(f"/v1/accounts/{other}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
    assert (await tenant.get(f"/v1/accounts/{tenant_id}")).status_code == 200
    assert (await tenant.get("/v1/accounts")).json() == []
    # The parent sees its children.
    children = {a["id"] for a in (await client.get("/v1/accounts")).json()}
    assert children == {tenant_id, sibling_id}
    assert (await client.get(f"/v1/accounts/{tenant_id}")).json()["balance"] == 100
    # A grandchild is visible to its parent, not to its parent's sibling.
    grandchild = await create_account(tenant, "grandchild", 10)
    assert (await tenant.get(f"/v1/accounts/{grandchild['id']}")).status_code == 200
    assert (await sibling.get(f"/v1/accounts/{grandchild['id']}")).status_code == 404
    async with keyed(client, grandchild["api_key"]) as grandchild_client:
        for other in (admin_id, tenant_id, sibling_id):
            assert (await grandchild_client.get(f"/v1/accounts/{other}")).status_code == 404


async def test_a_sub_account_cannot_top_up_what_it_does_not_own(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient, sibling: httpx.AsyncClient
) -> None:
    admin_id = await account_id(client)
    tenant_id = await account_id(tenant)
    sibling_id = await account_id(sibling)
    admin_before = (await client.get("/v1/account")).json()["balance"]
    for target, allowed in [(admin_id, (403, 404)), (sibling_id, (403, 404)), (tenant_id, (403,))]:
        answer = await tenant.post(f"/v1/accounts/{target}/top-up", json={"amount": 1})
        assert answer.status_code in allowed, (target, answer.text)
        assert answer.json()["error"]["code"] in ("forbidden", "not_found")
    assert (await tenant.get("/v1/account")).json()["balance"] == 100
    assert (await sibling.get("/v1/account")).json()["balance"] == 50
    assert (await client.get("/v1/account")).json()["balance"] == admin_before
    ledger = (await tenant.get("/v1/account/ledger")).json()["data"]
    assert [e["kind"] for e in ledger] == ["transfer_in"]


async def test_only_the_admin_changes_prices(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    prices = (await tenant.get("/v1/prices")).json()
    for method, path, body in [
        ("PUT", "/v1/prices/US", {"price_per_segment": 0}),
        ("PUT", "/v1/prices/*", {"price_per_segment": 0}),
        ("DELETE", "/v1/prices/US", None),
    ]:
        answer = await tenant.request(method, path, json=body)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "forbidden"
    assert (await tenant.get("/v1/prices")).json() == prices
    assert (await client.get("/v1/prices")).json() == prices


async def test_a_revoked_key_is_refused_at_once(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    created = await tenant.post("/v1/keys", json={"name": "ci"})
    assert created.status_code == 201, created.text
    key = created.json()
    async with keyed(client, key["key"]) as ci:
        assert (await ci.get("/v1/account")).status_code == 200  # now cached as valid
        revoked = await tenant.delete(f"/v1/keys/{key['id']}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None
        for method, path in [("GET", "/v1/account"), ("POST", "/v1/messages")]:
            answer = await ci.request(method, path, json={"to": "+14155550100", "text": "x"})
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["code"] == "unauthorized"
    # The other key of the account still works.
    assert (await tenant.get("/v1/account")).status_code == 200
    assert (await tenant.get("/v1/messages")).json()["data"] == []


async def test_a_key_revoking_itself_stops_working(tenant: httpx.AsyncClient) -> None:
    keys = (await tenant.get("/v1/keys")).json()
    [own] = keys
    assert (await tenant.delete(f"/v1/keys/{own['id']}")).status_code == 200
    assert (await tenant.get("/v1/account")).status_code == 401


async def test_nobody_revokes_another_accounts_key(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient, sibling: httpx.AsyncClient
) -> None:
    [tenant_key] = (await tenant.get("/v1/keys")).json()
    admin_keys = (await client.get("/v1/keys")).json()
    for stranger, key_id in [
        (sibling, tenant_key["id"]),
        (tenant, admin_keys[0]["id"]),
        (client, tenant_key["id"]),
    ]:
        answer = await stranger.delete(f"/v1/keys/{key_id}")
        assert answer.status_code == 404, answer.text
    assert (await tenant.get("/v1/account")).status_code == 200
    assert (await client.get("/v1/account")).status_code == 200


async def test_key_lists_show_prefixes_never_keys(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    raw = (await tenant.post("/v1/keys", json={"name": "second"})).json()["key"]
    tenant_key = tenant.headers["Authorization"].removeprefix("Bearer ")
    answer = await tenant.get("/v1/keys")
    assert answer.status_code == 200
    keys = answer.json()
    assert [k["name"] for k in keys] == ["default", "second"]
    for key in keys:
        assert set(key) == {"id", "name", "prefix", "created_at", "revoked_at"}
        assert len(key["prefix"]) < len(raw)
    by_name = {k["name"]: k["prefix"] for k in keys}
    assert raw.startswith(by_name["second"])
    assert tenant_key.startswith(by_name["default"])
    assert raw not in answer.text
    assert tenant_key not in answer.text
    # Only the caller's keys are listed.
    admin_listing = await client.get("/v1/keys")
    assert raw not in admin_listing.text
    assert ADMIN_KEY not in admin_listing.text
    assert {k["id"] for k in admin_listing.json()}.isdisjoint({k["id"] for k in keys})
