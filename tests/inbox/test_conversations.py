"""Conversations: every phone an account exchanged messages with, latest first, with its
contact and unread count; and opting out by replying STOP, end to end through the simulator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import wait_for


async def send(client: httpx.AsyncClient, to: str | list[str], text: str = "hello") -> list[str]:
    answer = await client.post("/v1/messages", json={"to": to, "text": text})
    assert answer.status_code == 202, answer.text
    return [m["id"] for m in answer.json()["messages"]]


async def receive(client: httpx.AsyncClient, phone: str, text: str) -> str:
    answer = await client.post("/v1/simulator/inbound", json={"from": phone, "text": text})
    assert answer.status_code == 201, answer.text
    message_id: str = answer.json()["id"]
    return message_id


async def conversations(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/v1/conversations", params=params)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_conversations_are_listed_latest_first_with_unread_counts(
    tenant: httpx.AsyncClient,
) -> None:
    ana = "+14155550100"
    await tenant.post(
        "/v1/contacts", json={"phone": ana, "first_name": "Ana", "last_name": "Silva", "tag": "vip"}
    )
    [to_ana] = await send(tenant, ana, "Your order shipped")
    await receive(tenant, "+1 (415) 555-0100", "Thanks!")
    await receive(tenant, ana, "When does it arrive?")
    await send(tenant, "+14155550101", "x" * 300)
    stranger = await receive(tenant, "+14155550102", "Who is this?")

    listed = await conversations(tenant)
    assert [c["phone"] for c in listed] == ["+14155550102", "+14155550101", ana]
    assert [c["unread"] for c in listed] == [1, 0, 2]
    assert listed[0]["contact"] is None
    assert listed[0]["last_message_id"] == stranger
    assert listed[0]["last_direction"] == "in"
    assert len(listed[1]["last_text"]) == 200  # a preview
    assert listed[2]["contact"]["name"] == "Ana Silva"
    assert listed[2]["contact"]["tag"] == "vip"
    assert listed[2]["last_text"] == "When does it arrive?"
    assert [c["phone"] for c in await conversations(tenant, unread="true")] == [
        "+14155550102",
        ana,
    ]
    page = (await tenant.get("/v1/conversations", params={"limit": 2})).json()
    rest = await conversations(tenant, cursor=page["next_cursor"])
    assert [c["phone"] for c in page["data"] + rest] == [c["phone"] for c in listed]

    thread = (await tenant.get(f"/v1/conversations/{ana}/messages")).json()["data"]
    assert [(m["direction"], m["text"]) for m in thread] == [
        ("in", "When does it arrive?"),
        ("in", "Thanks!"),
        ("out", "Your order shipped"),
    ]
    assert thread[2]["id"] == to_ana
    read = await tenant.post("/v1/conversations/14155550100/read")  # the + is optional
    assert read.status_code == 200, read.text
    assert read.json()["unread"] == 0
    # Replying is sending to the phone: the conversation moves to the top.
    await send(tenant, ana, "Tomorrow")
    top = (await conversations(tenant))[0]
    assert (top["phone"], top["last_direction"], top["unread"]) == (ana, "out", 0)


async def test_conversations_belong_to_their_account(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    await receive(client, "+14155550100", "to the admin")
    await send(tenant, "+14155550101")
    assert [c["phone"] for c in await conversations(tenant)] == ["+14155550101"]
    assert [c["phone"] for c in await conversations(client)] == ["+14155550100"]
    for path in ("", "/messages"):
        answer = await tenant.get(f"/v1/conversations/+14155550100{path}")
        assert answer.status_code == 404, answer.text
    assert (await tenant.post("/v1/conversations/+14155550100/read")).status_code == 404
    assert (await tenant.get("/v1/conversations/12")).json()["error"]["field"] == "phone"


@pytest.mark.parametrize("stop", ["STOP", "  stop. ", "Unsubscribe", "end", "QUIT!"])
async def test_a_stop_reply_opts_the_phone_out_until_start(
    tenant: httpx.AsyncClient, stop: str
) -> None:
    phone = "+14155550100"
    await receive(tenant, phone, stop)
    [contact] = (await tenant.get("/v1/contacts")).json()["data"]  # created by the STOP
    assert (contact["phone"], contact["opted_out"]) == (phone, True)

    start = (await tenant.get("/v1/account")).json()["balance"]
    answer = await tenant.post(
        "/v1/messages", json={"to": [phone, "+14155550101"], "text": "Big sale"}
    )
    assert answer.status_code == 202, answer.text
    refused, sent = answer.json()["messages"]
    assert (refused["status"], refused["price"]) == ("failed", 0)
    assert answer.json()["total_price"] == sent["price"]
    assert (await tenant.get("/v1/account")).json()["balance"] == pytest.approx(
        start - sent["price"]
    )
    final = await wait_for(tenant, refused["id"])
    assert final["error"] == {
        "code": "opted_out",
        "message": "the recipient opted out (replied STOP)",
    }
    assert "sent" not in final["status_times"]  # never handed to a channel
    assert (await wait_for(tenant, sent["id"]))["status"] == "delivered"

    await receive(tenant, phone, "start")
    [again] = await send(tenant, phone, "Welcome back")
    assert (await wait_for(tenant, again))["status"] == "delivered"


async def test_the_keywords_are_an_account_setting(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient
) -> None:
    defaults = (await tenant.get("/v1/account/settings")).json()
    assert "STOP" in defaults["opt_out_keywords"]
    answer = await tenant.patch(
        "/v1/account/settings", json={"opt_out_keywords": ["halt", "Basta"]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["opt_out_keywords"] == ["HALT", "BASTA"]
    assert answer.json()["opt_in_keywords"] == defaults["opt_in_keywords"]
    await receive(tenant, "+14155550100", "STOP")  # no longer a keyword here
    await receive(tenant, "+14155550101", "basta")
    assert [c["phone"] for c in (await tenant.get("/v1/contacts")).json()["data"]] == [
        "+14155550101"
    ]
    # Another account keeps the defaults.
    await receive(client, "+14155550100", "STOP")
    [theirs] = (await client.get("/v1/contacts")).json()["data"]
    assert theirs["opted_out"] is True

    for body, field in [
        ({"opt_in_keywords": ["HALT"]}, "opt_in_keywords"),
        ({"opt_out_keywords": ["two words"]}, "opt_out_keywords[0]"),
        ({"verify_countries": ["XX"]}, "verify_countries[0]"),
        ({"colour": "red"}, "colour"),
    ]:
        answer = await tenant.patch("/v1/account/settings", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == field
    assert (await tenant.get("/v1/account/settings")).json()["opt_out_keywords"] == [
        "HALT",
        "BASTA",
    ]


async def test_a_contact_can_be_opted_out_by_hand(tenant: httpx.AsyncClient) -> None:
    created = (
        await tenant.post("/v1/contacts", json={"phone": "+14155550100", "opted_out": True})
    ).json()
    answer = await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "hi"})
    assert answer.json()["messages"][0]["status"] == "failed"
    await tenant.patch(f"/v1/contacts/{created['id']}", json={"opted_out": False})
    [again] = await send(tenant, "+14155550100")
    assert (await wait_for(tenant, again))["status"] == "delivered"


@pytest.mark.parametrize("opted_out", [3, 2_001])  # read all at once, or phone by phone
async def test_opt_outs_are_found_however_many_the_account_has(
    tenant: httpx.AsyncClient, opted_out: int
) -> None:
    rows = ["phone,opted_out_at"] + [
        f"+1415{5000000 + index:07d},2026-01-01T00:00:00+00:00" for index in range(opted_out)
    ]
    answer = await tenant.post(
        "/v1/contacts/import", content="\n".join(rows), headers={"content-type": "text/csv"}
    )
    assert answer.json()["created"] == opted_out, answer.text
    last = f"+1415{5000000 + opted_out - 1:07d}"
    answer = await tenant.post("/v1/messages", json={"to": [last, "+14155550100"], "text": "hi"})
    assert [m["status"] for m in answer.json()["messages"]] == ["failed", "queued"]
