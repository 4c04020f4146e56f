"""TextBoost's SMS, balance and profile endpoints (``shared/seeds/textboost-api.txt``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import client_of, wait_for
from textbridge.db import Database
from textbridge.settings import Settings

# The seed's voice example (its curl writes "language=en-gb" inside the JSON; fields here).
VOICE = {
    "recipient": "31612345678",
    "sender_id": "YourName",
    "type": "voice",
    "language": "en-gb",
    "gender": "female",
    "message": "This is a test message",
}


@pytest.mark.parametrize("prefix", ["/textboost/api", "/api"])
async def test_send_plain_as_documented(client: httpx.AsyncClient, prefix: str) -> None:
    answer = await client.post(
        f"{prefix}/http/sms/send",
        json={
            "recipient": "31612345678",
            "sender_id": "YourName",
            "type": "plain",
            "message": "This is a test message",
        },
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success"
    sms = body["data"]
    assert (sms["to"], sms["from"], sms["message"], sms["type"]) == (
        "31612345678",
        "YourName",
        "This is a test message",
        "plain",
    )
    assert (sms["status"], sms["sms_count"], sms["country"]) == ("queued", 1, "Netherlands")
    delivered = await wait_for(client, sms["uid"])
    assert delivered["status"] == "delivered"
    viewed = await client.get(f"{prefix}/v3/sms/{sms['uid']}")
    assert viewed.json()["data"]["status"] == "delivered"
    also = await client.get(f"{prefix}/http/sms/{sms['uid']}")
    assert also.json() == viewed.json()


async def test_several_recipients_and_a_schedule(client: httpx.AsyncClient) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    answer = await client.post(
        "/api/http/sms/send",
        json={
            "recipient": "31612345678,8801721970168",
            "sender_id": "YourName",
            "type": "plain",
            "message": "This is a test message",
            "schedule_time": later,
        },
    )
    assert answer.status_code == 200, answer.text
    reports = answer.json()["data"]
    assert [r["to"] for r in reports] == ["31612345678", "8801721970168"]
    assert {r["status"] for r in reports} == {"accepted"}
    native = (await client.get(f"/v1/messages/{reports[0]['uid']}")).json()
    assert native["schedule_at"].startswith(later.replace(" ", "T"))


async def test_voice_and_mms_keep_their_fields(client: httpx.AsyncClient) -> None:
    voice = await client.post(
        "/api/http/sms/send",
        json=VOICE,
    )
    assert voice.status_code == 200, voice.text
    assert (voice.json()["data"]["type"], voice.json()["data"]["language"]) == ("voice", "en-gb")
    mms = await client.post(
        "/api/http/sms/send",
        json={
            "recipient": "31612345678",
            "sender_id": "YourName",
            "type": "mms",
            "media_url": "https://via.placeholder.com/150.jpg",
        },
    )
    assert mms.status_code == 200, mms.text
    assert mms.json()["data"]["media_url"] == "https://via.placeholder.com/150.jpg"
    for sent in (voice, mms):
        assert (await wait_for(client, sent.json()["data"]["uid"]))["status"] == "delivered"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"sender_id": "YourName", "type": "plain", "message": "x"}, 400, "recipient"),
        ({"recipient": "31612345678", "type": "plain", "message": "x"}, 400, "sender_id"),
        ({"recipient": "31612345678", "sender_id": "YourName", "type": "plain"}, 400, "message"),
        (
            {"recipient": "12", "sender_id": "YourName", "type": "plain", "message": "x"},
            400,
            "'12'",
        ),
        (
            {"recipient": "31612345678,12", "sender_id": "Y", "type": "plain", "message": "x"},
            400,
            "recipient [1]",
        ),
        (
            {
                "recipient": "31612345678",
                "sender_id": "TooLongSender",
                "type": "plain",
                "message": "x",
            },
            400,
            "sender",
        ),
        (
            {"recipient": "31612345678", "sender_id": "Y", "type": "fax", "message": "x"},
            400,
            "type",
        ),
        (
            {"recipient": "31612345678", "sender_id": "Y", "type": "voice", "message": "x"},
            400,
            "language",
        ),
        ({"recipient": "31612345678", "sender_id": "Y", "type": "mms"}, 400, "media_url"),
        (
            {
                "recipient": "31612345678",
                "sender_id": "Y",
                "type": "plain",
                "message": "x",
                "schedule_time": "2021-12-20T07:00:00Z",
            },
            400,
            "Y-m-d H:i",
        ),
        (
            {"recipient": ["31612345678"], "sender_id": "Y", "type": "plain", "message": "x"},
            400,
            "recipient",
        ),
    ],
)
async def test_errors_are_status_error_with_a_message(
    client: httpx.AsyncClient, body: dict[str, object], status: int, says: str
) -> None:
    answer = await client.post("/api/http/sms/send", json=body)
    assert answer.status_code == status
    assert answer.json()["status"] == "error"
    assert says in answer.json()["message"]
    assert set(answer.json()) == {"status", "message"}
    assert (await client.get("/v1/messages")).json()["data"] == []


async def test_unknown_uid_and_bad_key(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v3/sms/nope")
    assert answer.status_code == 404
    assert answer.json()["status"] == "error"
    answer = await client.get("/api/http/balance", headers={"Authorization": "Bearer 49|xyz"})
    assert answer.status_code == 401
    assert answer.json() == {"status": "error", "message": "invalid API key"}


async def test_list_pages_like_textboost(client: httpx.AsyncClient) -> None:
    for batch in range(3):
        to = ",".join(f"3161234{batch}{i:03d}" for i in range(10))
        answer = await client.post(
            "/api/http/sms/send",
            json={"recipient": to, "sender_id": "Y", "type": "plain", "message": "x"},
        )
        assert answer.status_code == 200, answer.text
    first = (await client.get("/api/v3/sms")).json()["data"]
    assert (first["current_page"], first["per_page"], first["total"], first["last_page"]) == (
        1,
        25,
        30,
        2,
    )
    second = (await client.get("/api/v3/sms", params={"page": 2})).json()["data"]
    assert len(first["data"]) + len(second["data"]) == 30
    assert not {m["uid"] for m in first["data"]} & {m["uid"] for m in second["data"]}


async def test_balance_and_me(client: httpx.AsyncClient) -> None:
    balance = (await client.get("/api/http/balance")).json()
    assert balance == {
        "status": "success",
        "data": {"remaining_balance": 1_000_000.0, "currency": "USD"},
    }
    me = (await client.get("/textboost/api/http/me")).json()["data"]
    assert (me["name"], me["balance"]) == ("admin", 1_000_000.0)


async def test_voice_without_a_voice_channel_is_refused_not_downgraded(
    settings: Settings, db: Database
) -> None:
    async with client_of(settings, simulator_enabled=False) as http:
        answer = await http.post(
            "/api/http/sms/send",
            json=VOICE,
        )
        assert answer.status_code == 400
        assert answer.json() == {
            "status": "error",
            "message": "no channel can send voice messages",
        }
        assert (await http.get("/v1/messages")).json()["data"] == []
