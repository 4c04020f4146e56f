"""``Idempotency-Key`` on ``POST /v1/messages``: a retry with the same key and body answers the
first answer and creates nothing; another body with that key is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import wait_for

BODY = {"to": ["+14155550100", "+14155550101"], "text": "your order shipped"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/v1/messages", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def ledger_kinds(client: httpx.AsyncClient) -> list[str]:
    return [e["kind"] for e in (await client.get("/v1/account/ledger")).json()["data"]]


async def test_a_retry_answers_the_first_answer_and_creates_nothing(
    tenant: httpx.AsyncClient,
) -> None:
    first = await tenant.post("/v1/messages", json=BODY, headers=key("order-1"))
    assert first.status_code == 202, first.text
    await wait_for(tenant, first.json()["messages"][0]["id"])  # the message moves on meanwhile

    again = await tenant.post("/v1/messages", json=BODY, headers=key("order-1"))
    assert again.status_code == 202
    assert again.content == first.content
    assert again.json()["status"] == "queued"  # the first answer, not today's state

    messages = await listed(tenant)
    assert len(messages) == 2
    assert {m["batch_id"] for m in messages} == {first.json()["batch_id"]}
    assert (await tenant.get("/v1/account")).json()["balance"] == round(100 - 2 * 0.0079, 6)
    assert await ledger_kinds(tenant) == ["debit", "transfer_in"]


async def test_the_same_key_with_another_body_is_422(tenant: httpx.AsyncClient) -> None:
    first = await tenant.post("/v1/messages", json=BODY, headers=key("order-2"))
    assert first.status_code == 202
    for other in [
        {**BODY, "text": "your order was cancelled"},
        {**BODY, "to": "+14155550100"},
        {**BODY, "custom_id": "x"},
    ]:
        answer = await tenant.post("/v1/messages", json=other, headers=key("order-2"))
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "Idempotency-Key"
        assert error["code"] == "idempotency_key_reused"
    assert len(await listed(tenant)) == 2
    assert await ledger_kinds(tenant) == ["debit", "transfer_in"]
    # The first body still replays.
    replay = await tenant.post("/v1/messages", json=BODY, headers=key("order-2"))
    assert replay.content == first.content


async def test_keys_belong_to_their_account(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    mine = await tenant.post("/v1/messages", json=BODY, headers=key("shared"))
    theirs = await client.post("/v1/messages", json=BODY, headers=key("shared"))
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["batch_id"] != theirs.json()["batch_id"]
    other_body = {"to": "+14155550102", "text": "another text"}
    also_theirs = await client.post("/v1/messages", json=other_body, headers=key("shared-2"))
    also_mine = await tenant.post("/v1/messages", json=BODY, headers=key("shared-2"))
    assert also_theirs.status_code == also_mine.status_code == 202
    assert len(await listed(tenant)) == 4
    assert len(await listed(client)) == 3


async def test_distinct_keys_are_distinct_requests(tenant: httpx.AsyncClient) -> None:
    one = await tenant.post("/v1/messages", json=BODY, headers=key("a"))
    two = await tenant.post("/v1/messages", json=BODY, headers=key("b"))
    three = await tenant.post("/v1/messages", json=BODY)
    four = await tenant.post("/v1/messages", json=BODY)
    batches = {r.json()["batch_id"] for r in (one, two, three, four)}
    assert len(batches) == 4
    assert len(await listed(tenant)) == 8


async def test_a_refused_request_does_not_use_up_its_key(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    bad = await tenant.post(
        "/v1/messages", json={"to": "+1415", "text": "x"}, headers=key("order-3")
    )
    assert bad.status_code == 400
    good = await tenant.post("/v1/messages", json=BODY, headers=key("order-3"))
    assert good.status_code == 202, good.text

    # Not enough balance: a 402 is not remembered either, so the retry after a top-up works.
    await client.put("/v1/prices/RS", json={"price_per_segment": 200})
    dear = {"to": "+381690156360", "text": "x"}
    refused = await tenant.post("/v1/messages", json=dear, headers=key("order-4"))
    assert refused.status_code == 402
    tenant_id = (await tenant.get("/v1/account")).json()["id"]
    topped = await client.post(f"/v1/accounts/{tenant_id}/top-up", json={"amount": 200})
    assert topped.status_code == 200, topped.text
    accepted = await tenant.post("/v1/messages", json=dear, headers=key("order-4"))
    assert accepted.status_code == 202, accepted.text


async def test_concurrent_retries_create_one_batch(tenant: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(tenant.post("/v1/messages", json=BODY, headers=key("order-5")) for _ in range(5))
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {202, 409}, [a.text for a in answers]
    accepted = [a for a in answers if a.status_code == 202]
    assert accepted
    assert len({a.content for a in accepted}) == 1
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["error"]["field"] == "Idempotency-Key"
    assert len(await listed(tenant)) == 2
    assert await ledger_kinds(tenant) == ["debit", "transfer_in"]
