"""The group commit: many requests in one transaction, each still all or nothing."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import keyed


async def test_concurrent_requests_past_the_balance_get_402_alone(
    client: httpx.AsyncClient,
) -> None:
    # Serbia costs 0.15 a segment: a balance of 1.00 covers six of these requests, not seven.
    created = await client.post("/v1/accounts", json={"name": "small", "balance": "1.00"})
    async with keyed(client, created.json()["api_key"]) as small:
        answers = await asyncio.gather(
            *(
                small.post("/v1/messages", json={"to": f"+38169015{i:04d}", "text": "x"})
                for i in range(20)
            )
        )
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [202] * 6 + [402] * 14
        refused = next(answer for answer in answers if answer.status_code == 402)
        assert refused.json()["error"]["code"] == "insufficient_balance"
        account = (await small.get("/v1/account")).json()
        assert account["balance"] == 0.1
        ledger = (await small.get("/v1/account/ledger")).json()["data"]
        debits = [entry for entry in ledger if entry["kind"] == "debit"]
        assert len(debits) == 6
        # Each entry states the balance right after it, in order.
        assert sorted(round(e["balance_after"], 6) for e in debits) == [
            0.1,
            0.25,
            0.4,
            0.55,
            0.7,
            0.85,
        ]
        listed = (await small.get("/v1/messages", params={"limit": 100})).json()["data"]
        assert len(listed) == 6


async def test_many_accounts_in_one_batch_are_charged_each_their_own(
    client: httpx.AsyncClient,
) -> None:
    keys = []
    for n in range(5):
        created = await client.post("/v1/accounts", json={"name": f"shop{n}", "balance": 10})
        keys.append(created.json()["api_key"])
    clients = [keyed(client, key) for key in keys]
    try:
        answers = await asyncio.gather(
            *(
                shop.post("/v1/messages", json={"to": ["+381690156360"] * (i + 1), "text": "x"})
                for i, shop in enumerate(clients)
                for _ in range(3)
            )
        )
        assert {answer.status_code for answer in answers} == {202}
        balances = [(await shop.get("/v1/account")).json()["balance"] for shop in clients]
        assert balances == [round(10 - 3 * 0.15 * (i + 1), 6) for i in range(5)]
    finally:
        for shop in clients:
            await shop.aclose()
