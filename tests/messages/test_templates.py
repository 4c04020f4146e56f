"""Messages to contacts and groups: each recipient once, the text filled in per recipient, and
segments and price counted on what is actually sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import wait_for
from textbridge.db import Database
from textbridge.models import Message


async def contact(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post("/v1/contacts", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def group(client: httpx.AsyncClient, name: str, *members: dict[str, Any]) -> str:
    group_id: str = (await client.post("/v1/groups", json={"name": name})).json()["id"]
    if members:
        answer = await client.post(
            f"/v1/groups/{group_id}/contacts", json={"contact_ids": [m["id"] for m in members]}
        )
        assert answer.status_code == 200, answer.text
    return group_id


async def balance(client: httpx.AsyncClient) -> float:
    value: float = (await client.get("/v1/account")).json()["balance"]
    return value


async def test_a_group_message_is_filled_in_per_recipient(tenant: httpx.AsyncClient) -> None:
    ana = await contact(tenant, phone="+14155550100", first_name="Ana", fields={"plan": "gold"})
    zoe = await contact(tenant, phone="+14155550101", first_name="Zoë")  # ë is not GSM-7
    long = await contact(tenant, phone="+14155550102", first_name="Bo", fields={"plan": "p" * 200})
    everyone = await group(tenant, "Everyone", ana, zoe, long)
    start = await balance(tenant)
    answer = await tenant.post(
        "/v1/messages",
        json={
            "groups": [everyone],
            "to": ["+14155550103"],  # not a contact: fallbacks, and empty for {plan}
            "text": "Hi {first_name|there}, plan: {plan}. {{not a placeholder}}",
        },
    )
    assert answer.status_code == 202, answer.text
    sent = {m["to"]: m for m in answer.json()["messages"]}
    assert list(sent) == ["+14155550103", "+14155550100", "+14155550101", "+14155550102"]
    texts = {}
    for phone, accepted in sent.items():
        texts[phone] = (await wait_for(tenant, accepted["id"]))["text"]
    assert texts["+14155550100"] == "Hi Ana, plan: gold. {not a placeholder}"
    assert texts["+14155550103"] == "Hi there, plan: . {not a placeholder}"
    assert texts["+14155550101"].startswith("Hi Zoë,")
    assert (sent["+14155550100"]["encoding"], sent["+14155550100"]["segments"]) == ("gsm7", 1)
    assert (sent["+14155550101"]["encoding"], sent["+14155550101"]["segments"]) == ("ucs2", 1)
    assert sent["+14155550102"]["segments"] == 2
    total = answer.json()["total_price"]
    assert total == pytest.approx(sum(m["price"] for m in sent.values()))
    assert sent["+14155550102"]["price"] == pytest.approx(2 * sent["+14155550100"]["price"])
    assert await balance(tenant) == pytest.approx(start - total)


async def test_each_recipient_once_however_often_named(tenant: httpx.AsyncClient) -> None:
    ana = await contact(tenant, phone="+14155550100")
    bo = await contact(tenant, phone="+14155550101")
    first = await group(tenant, "First", ana, bo)
    second = await group(tenant, "Second", ana)
    answer = await tenant.post(
        "/v1/messages",
        json={
            "to": "+1 415 555 0100",
            "contacts": [ana["id"], bo["id"], ana["id"]],
            "groups": [first, second],
            "text": "once",
        },
    )
    assert answer.status_code == 202, answer.text
    assert [m["to"] for m in answer.json()["messages"]] == ["+14155550100", "+14155550101"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"text": "Hi {frist_name}"}, "text", "{frist_name}"),
        ({"text": "hi", "groups": ["empty"]}, "groups", "no contacts"),
        ({"text": "hi", "groups": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}, "groups[0]", "no group"),
        ({"text": "hi", "contacts": ["nope"]}, "contacts[0]", "no contact"),
        ({"text": "{long}"}, "text", "once filled in"),
    ],
)
async def test_bad_group_messages_are_refused_and_charge_nothing(
    tenant: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    ana = await contact(tenant, phone="+14155550100", first_name="Ana", fields={"long": "x" * 1000})
    full = await group(tenant, "Full", ana)
    await contact(tenant, phone="+14155550101", fields={"long": "y" * 1000})
    empty = await group(tenant, "Empty")
    request = {**body, "groups": [empty if g == "empty" else g for g in body.get("groups", [full])]}
    if body["text"] == "{long}":
        request = {"to": ["+14155550101"], "text": "{long}" * 2, "groups": [full]}
    start = await balance(tenant)
    answer = await tenant.post("/v1/messages", json=request)
    assert answer.status_code in (400, 404), answer.text
    error = answer.json()["error"]
    assert error["field"] == field
    assert words in error["message"]
    assert await balance(tenant) == start
    assert (await tenant.get("/v1/messages")).json()["data"] == []


async def test_a_campaign_goes_to_a_group(tenant: httpx.AsyncClient) -> None:
    members = [
        await contact(tenant, phone=f"+1415555{index:04d}", first_name=f"P{index}")
        for index in range(5)
    ]
    audience = await group(tenant, "Audience", *members)
    answer = await tenant.post(
        "/v1/bulk-jobs", json={"groups": [audience], "text": "Dear {first_name}"}
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["total"] == 5
    listed = (await tenant.get("/v1/messages", params={"batch_id": job["id"]})).json()["data"]
    assert sorted(m["text"] for m in listed) == [f"Dear P{index}" for index in range(5)]


async def test_textlink_and_textflow_send_braces_as_they_are(tenant: httpx.AsyncClient) -> None:
    await contact(tenant, phone="+14155550100", first_name="Ana")
    answer = await tenant.post(
        "/textlink/api/send-sms", json={"phone_number": "+14155550100", "text": "{first_name}"}
    )
    assert answer.json() == {"ok": True}
    [message] = (await tenant.get("/v1/messages")).json()["data"]
    assert message["text"] == "{first_name}"


async def test_braces_alone_are_escapes_even_without_placeholders(
    tenant: httpx.AsyncClient,
) -> None:
    answer = await tenant.post(
        "/v1/messages", json={"to": "+14155550100", "text": 'JSON: {{"a": 1}}'}
    )
    assert answer.status_code == 202, answer.text
    message = await wait_for(tenant, answer.json()["messages"][0]["id"])
    assert message["text"] == 'JSON: {"a": 1}'


async def test_large_groups_and_many_numbers_are_read_a_page_at_a_time(
    tenant: httpx.AsyncClient, db: Database
) -> None:
    phones = [f"+1415570{i:04d}" for i in range(2500)]
    audience = await group(tenant, "Many")
    rows = "phone,first_name\n" + "".join(f"{p},P{i}\n" for i, p in enumerate(phones))
    imported = await tenant.post(
        "/v1/contacts/import",
        content=rows.encode(),
        params={"group_id": audience},
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text

    async def texts(batch_id: str) -> dict[str, str]:
        async with db.transaction() as session:
            found = await session.execute(
                select(Message.phone, Message.text).where(Message.batch_id == batch_id)
            )
            return dict(found.all())

    by_group = await tenant.post(
        "/v1/bulk-jobs", json={"groups": [audience], "text": "Hi {first_name}"}
    )
    assert by_group.json()["total"] == 2500, by_group.text
    assert await texts(by_group.json()["id"]) == {p: f"Hi P{i}" for i, p in enumerate(phones)}
    by_number = await tenant.post(
        "/v1/bulk-jobs", json={"to": phones[:1200], "text": "Yo {first_name|you}"}
    )
    assert by_number.json()["total"] == 1200, by_number.text
    expected = {p: f"Yo P{i}" for i, p in enumerate(phones[:1200])}
    assert await texts(by_number.json()["id"]) == expected
