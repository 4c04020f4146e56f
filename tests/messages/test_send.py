"""POST /v1/messages: acceptance, pricing, the lifecycle through the simulator."""

from __future__ import annotations

import httpx

from tests.conftest import wait_for


async def test_single_message_is_delivered_with_a_time_per_status(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/v1/messages", json={"to": "+14155550100", "text": "hello"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["count"] == 1
    assert body["status"] == "queued"
    [accepted] = body["messages"]
    assert accepted["to"] == "+14155550100"
    assert accepted["encoding"] == "gsm7"
    assert accepted["segments"] == 1
    assert accepted["country"] == "United States"
    assert accepted["price"] == 0.0079

    message = await wait_for(client, accepted["id"])
    assert message["status"] == "delivered"
    assert list(message["status_times"]) == [
        "accepted",
        "queued",
        "dispatching",
        "sent",
        "delivered",
    ]
    times = list(message["status_times"].values())
    assert times == sorted(times)
    assert message["channel"] == "simulator"
    assert message["batch_id"] == body["batch_id"]


async def test_many_recipients_share_a_batch_and_each_gets_a_row(
    client: httpx.AsyncClient,
) -> None:
    numbers = ["+14155550100", "+381690156360", "+447911123456"]
    answer = await client.post("/v1/messages", json={"to": numbers, "text": "hi €"})
    assert answer.status_code == 202
    body = answer.json()
    assert [m["to"] for m in body["messages"]] == numbers
    assert [m["country"] for m in body["messages"]] == ["United States", "Serbia", "Guernsey"]
    assert len({m["id"] for m in body["messages"]}) == 3
    assert body["total_price"] == round(sum(m["price"] for m in body["messages"]), 6)
    listed = await client.get("/v1/messages", params={"batch_id": body["batch_id"]})
    assert {m["id"] for m in listed.json()["data"]} == {m["id"] for m in body["messages"]}


async def test_price_is_segments_times_the_country_price(client: httpx.AsyncClient) -> None:
    text = "x" * 161  # two GSM-7 segments
    answer = await client.post("/v1/messages", json={"to": "+381690156360", "text": text})
    [accepted] = answer.json()["messages"]
    assert accepted["segments"] == 2
    assert accepted["price"] == 0.30  # Serbia: 0.15 per segment

    emoji = "😀" * 36  # 72 UTF-16 units: two UCS-2 segments
    answer = await client.post("/v1/messages", json={"to": "+14155550100", "text": emoji})
    [accepted] = answer.json()["messages"]
    assert (accepted["encoding"], accepted["segments"]) == ("ucs2", 2)


async def test_numbers_are_normalised_to_e164(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/messages", json={"to": ["1 (415) 555-0100", "00381 69 0156360"], "text": "x"}
    )
    assert [m["to"] for m in answer.json()["messages"]] == ["+14155550100", "+381690156360"]


async def test_sender_and_custom_id_are_kept(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/messages",
        json={"to": "+14155550100", "text": "x", "sender": "Textbridge", "custom_id": "order-7"},
    )
    message = await wait_for(client, answer.json()["messages"][0]["id"])
    assert message["from"] == "Textbridge"
    assert message["custom_id"] == "order-7"


async def test_send_debits_the_balance_with_one_ledger_entry(
    tenant: httpx.AsyncClient,
) -> None:
    answer = await tenant.post(
        "/v1/messages", json={"to": ["+381690156360", "+381690156361"], "text": "x"}
    )
    assert answer.status_code == 202
    account = (await tenant.get("/v1/account")).json()
    assert account["balance"] == 100 - 0.30
    ledger = (await tenant.get("/v1/account/ledger")).json()["data"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("debit", -0.3), ("transfer_in", 100)]
    assert ledger[0]["reference"] == answer.json()["batch_id"]
    assert ledger[0]["balance_after"] == 99.7


async def test_voice_and_mms_need_their_fields(client: httpx.AsyncClient) -> None:
    base = {"to": "+14155550100", "text": "Your code is 1234"}
    voice = await client.post(
        "/v1/messages", json={**base, "type": "voice", "language": "en-us", "gender": "male"}
    )
    assert voice.status_code == 202, voice.text
    mms = await client.post(
        "/v1/messages",
        json={"to": "+14155550100", "text": "", "type": "mms", "media_url": "https://x.test/a.png"},
    )
    assert mms.status_code == 202, mms.text
    for body, field in [
        ({**base, "type": "voice", "gender": "male"}, "language"),
        ({**base, "type": "voice", "language": "xx-yy", "gender": "male"}, "language"),
        ({**base, "type": "voice", "language": "en-us"}, "gender"),
        ({**base, "type": "mms"}, "media_url"),
        ({**base, "type": "mms", "media_url": "ftp://x.test/a.png"}, "media_url"),
    ]:
        answer = await client.post("/v1/messages", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["field"] == field
    for sent in (voice, mms):
        message = await wait_for(client, sent.json()["messages"][0]["id"])
        assert message["status"] == "delivered"
        assert message["extra"] in (
            {"language": "en-us", "gender": "male"},
            {"media_url": "https://x.test/a.png"},
        )
