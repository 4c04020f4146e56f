"""Sub-accounts, their money and their API keys, through the native API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import keyed


async def account(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/v1/account")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def ledger(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/v1/account/ledger")
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["data"]
    return entries


async def test_get_account_answers_the_caller(client: httpx.AsyncClient) -> None:
    admin = await account(client)
    assert admin["name"] == "admin"
    assert admin["is_admin"] is True
    assert admin["parent_id"] is None
    assert admin["balance"] == 1_000_000
    [opening] = await ledger(client)
    assert (opening["kind"], opening["amount"], opening["balance_after"]) == (
        "topup",
        1_000_000,
        1_000_000,
    )


async def test_a_sub_account_is_funded_by_its_parent_and_its_key_works(
    client: httpx.AsyncClient,
) -> None:
    admin = await account(client)
    answer = await client.post("/v1/accounts", json={"name": "shop", "balance": "250.5"})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["name"] == "shop"
    assert created["parent_id"] == admin["id"]
    assert created["is_admin"] is False
    assert created["balance"] == 250.5
    assert created["api_key"]

    async with keyed(client, created["api_key"]) as shop:
        own = await account(shop)
        assert own["id"] == created["id"]
        assert own["balance"] == 250.5
        [transfer_in] = await ledger(shop)
        assert transfer_in["kind"] == "transfer_in"
        assert transfer_in["amount"] == 250.5
        assert transfer_in["balance_after"] == 250.5
        assert transfer_in["reference"] == admin["id"]
        # The key sends too.
        sent = await shop.post("/v1/messages", json={"to": "+14155550100", "text": "hi"})
        assert sent.status_code == 202, sent.text

    parent = await account(client)
    assert parent["balance"] == 1_000_000 - 250.5
    transfer_out = (await ledger(client))[0]
    assert transfer_out["kind"] == "transfer_out"
    assert transfer_out["amount"] == -250.5
    assert transfer_out["balance_after"] == parent["balance"]
    assert transfer_out["reference"] == created["id"]


async def test_a_sub_account_without_balance_starts_at_zero(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/accounts", json={"name": "empty"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["balance"] == 0
    async with keyed(client, answer.json()["api_key"]) as empty:
        assert await ledger(empty) == []
        refused = await empty.post("/v1/messages", json={"to": "+14155550100", "text": "hi"})
        assert refused.status_code == 402
    assert (await account(client))["balance"] == 1_000_000


async def test_the_parent_tops_up_a_sub_account(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    tenant_id = (await account(tenant))["id"]
    before = (await account(client))["balance"]
    answer = await client.post(f"/v1/accounts/{tenant_id}/top-up", json={"amount": 25})
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == tenant_id
    assert answer.json()["balance"] == 125
    assert (await account(tenant))["balance"] == 125
    assert (await account(client))["balance"] == before - 25
    top_up = (await ledger(tenant))[0]
    assert (top_up["kind"], top_up["amount"], top_up["balance_after"]) == (
        "transfer_in",
        25,
        125,
    )
    parent_entry = (await ledger(client))[0]
    assert (parent_entry["kind"], parent_entry["amount"]) == ("transfer_out", -25)
    assert parent_entry["reference"] == tenant_id


async def test_a_sub_account_tops_up_its_own_children_from_its_balance(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    created = await tenant.post("/v1/accounts", json={"name": "team", "balance": 30})
    assert created.status_code == 201, created.text
    team_id = created.json()["id"]
    assert (await account(tenant))["balance"] == 70
    answer = await tenant.post(f"/v1/accounts/{team_id}/top-up", json={"amount": "20"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == 50
    assert (await account(tenant))["balance"] == 50
    assert [e["kind"] for e in await ledger(tenant)] == [
        "transfer_out",
        "transfer_out",
        "transfer_in",
    ]
    # The admin may top up any account, a grandchild too.
    admin_answer = await client.post(f"/v1/accounts/{team_id}/top-up", json={"amount": 1})
    assert admin_answer.status_code == 200, admin_answer.text
    assert admin_answer.json()["balance"] == 51


async def test_a_top_up_beyond_the_parents_balance_is_402_and_changes_nothing(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    created = await tenant.post("/v1/accounts", json={"name": "team", "balance": 10})
    team_id = created.json()["id"]
    tenant_ledger = await ledger(tenant)
    admin_ledger = await ledger(client)
    answer = await tenant.post(f"/v1/accounts/{team_id}/top-up", json={"amount": "90.000001"})
    assert answer.status_code == 402, answer.text
    assert answer.json()["error"]["code"] == "insufficient_balance"
    assert answer.json()["error"]["field"] == "amount"
    assert (await account(tenant))["balance"] == 90
    assert (await client.get(f"/v1/accounts/{team_id}")).json()["balance"] == 10
    assert await ledger(tenant) == tenant_ledger
    assert await ledger(client) == admin_ledger
    # Exactly what it has is fine.
    answer = await tenant.post(f"/v1/accounts/{team_id}/top-up", json={"amount": 90})
    assert answer.status_code == 200, answer.text
    assert (await account(tenant))["balance"] == 0


async def test_creating_a_sub_account_beyond_the_balance_writes_nothing(
    tenant: httpx.AsyncClient,
) -> None:
    answer = await tenant.post("/v1/accounts", json={"name": "dear", "balance": 100.01})
    assert answer.status_code == 402, answer.text
    assert (await tenant.get("/v1/accounts")).json() == []
    assert (await account(tenant))["balance"] == 100
    assert [e["kind"] for e in await ledger(tenant)] == ["transfer_in"]
    # The name was not taken by the half-made account.
    answer = await tenant.post("/v1/accounts", json={"name": "dear", "balance": 100})
    assert answer.status_code == 201, answer.text


async def test_bad_top_ups_are_refused(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    tenant_id = (await account(tenant))["id"]
    for amount in [0, -5, "abc", "0.0000001"]:
        answer = await client.post(f"/v1/accounts/{tenant_id}/top-up", json={"amount": amount})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == "amount"
    answer = await client.post(f"/v1/accounts/{tenant_id}/top-up", json={})
    assert answer.json()["error"]["field"] == "amount"
    answer = await client.post("/v1/accounts/01J0000000000000000000000Z/top-up", json={"amount": 1})
    assert answer.status_code == 404
    admin_id = (await account(client))["id"]
    answer = await client.post(f"/v1/accounts/{admin_id}/top-up", json={"amount": 1})
    assert answer.status_code == 403
    assert (await account(tenant))["balance"] == 100


async def test_a_duplicate_name_is_409(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    before = (await account(client))["balance"]
    for owner, name in [(client, "tenant"), (tenant, "tenant"), (client, "admin")]:
        answer = await owner.post("/v1/accounts", json={"name": name, "balance": 1})
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "conflict"
        assert answer.json()["error"]["field"] == "name"
    assert (await account(client))["balance"] == before
    assert (await account(tenant))["balance"] == 100
    assert [a["name"] for a in (await client.get("/v1/accounts")).json()] == ["tenant"]


async def test_keys_are_created_listed_and_revoked(tenant: httpx.AsyncClient) -> None:
    answer = await tenant.post("/v1/keys", json={"name": "deploy"})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["name"] == "deploy"
    assert created["revoked_at"] is None
    assert created["key"].startswith(created["prefix"])
    assert len(created["key"]) >= 32

    async with keyed(tenant, created["key"]) as deploy:
        assert (await account(deploy))["id"] == (await account(tenant))["id"]
        listed = (await tenant.get("/v1/keys")).json()
        assert [(k["name"], k["revoked_at"]) for k in listed] == [
            ("default", None),
            ("deploy", None),
        ]
        answer = await tenant.delete(f"/v1/keys/{created['id']}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == created["id"]
        assert answer.json()["revoked_at"] is not None
        assert (await deploy.get("/v1/account")).status_code == 401

    listed = (await tenant.get("/v1/keys")).json()
    assert [k["name"] for k in listed] == ["default", "deploy"]
    assert listed[0]["revoked_at"] is None
    assert listed[1]["revoked_at"] is not None
    # Revoking again is harmless; an unknown key is 404.
    assert (await tenant.delete(f"/v1/keys/{created['id']}")).status_code == 200
    assert (await tenant.delete("/v1/keys/01J0000000000000000000000Z")).status_code == 404
    # Each new key is different.
    first = (await tenant.post("/v1/keys", json={})).json()
    second = (await tenant.post("/v1/keys", json={})).json()
    assert first["key"] != second["key"]
    assert first["name"] == "api"


async def test_the_ledger_pages_newest_first(client: httpx.AsyncClient) -> None:
    children = []
    for index in range(5):
        answer = await client.post("/v1/accounts", json={"name": f"child-{index}", "balance": 1})
        children.append(answer.json()["id"])
    first = (await client.get("/v1/account/ledger", params={"limit": 4})).json()
    assert first["next_cursor"]
    rest = (
        await client.get("/v1/account/ledger", params={"limit": 4, "cursor": first["next_cursor"]})
    ).json()
    assert rest["next_cursor"] is None
    entries = first["data"] + rest["data"]
    assert [e["kind"] for e in entries] == ["transfer_out"] * 5 + ["topup"]
    assert [e["reference"] for e in entries[:5]] == list(reversed(children))
    assert [e["balance_after"] for e in entries] == [1_000_000 - n for n in range(5, -1, -1)]
    assert len({e["id"] for e in entries}) == 6
