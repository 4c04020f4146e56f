"""What phones post to us: received SMS and status events, signed with the key the phone took
from GET /settings (X-Timestamp, X-Signature = HMAC-SHA256(key, body + timestamp))."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from tests.devices.test_messages import a_phone, pull, status_of
from tests.devices.test_registration import MOBILE, phone
from tests.eventually import eventually
from tests.webhooks.conftest import Receiver
from textbridge.kit.secrets import sign_phone_event


async def post_event(
    client: httpx.AsyncClient,
    device: dict[str, Any],
    key: str,
    event: str,
    payload: dict[str, Any],
    *,
    event_id: str = "evt-1",
    age: int = 0,
    signing_key: str | None = None,
) -> httpx.Response:
    body = orjson.dumps(
        {"id": event_id, "webhookId": "textbridge-x", "event": event, "deviceId": device["id"],
         "payload": payload}
    )  # fmt: skip
    stamp = str(int(time.time()) - age)
    return await client.post(
        f"{MOBILE}/hook",
        content=body,
        headers={
            "content-type": "application/json",
            "x-timestamp": stamp,
            "x-signature": sign_phone_event(signing_key or key, body, stamp),
            "authorization": "",
        },
    )


async def key_of(tenant: httpx.AsyncClient, device: dict[str, Any]) -> str:
    async with phone(tenant, device["token"]) as app:
        settings = (await app.get(f"{MOBILE}/settings")).json()
    key: str = settings["webhooks"]["signing_key"]
    return key


def received(sender: str, text: str, message_id: str = "m-1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "message": text,
        "sender": sender,
        "recipient": "+14155550000",
        "simNumber": 2,
        "receivedAt": "2026-11-22T10:00:00.000+00:00",
    }


async def test_the_phone_is_told_our_own_urls(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    async with phone(tenant, device["token"]) as app:
        hooks = (await app.get(f"{MOBILE}/webhooks")).json()
    assert {hook["event"] for hook in hooks} >= {"sms:received", "sms:sent", "sms:failed"}
    assert {hook["url"] for hook in hooks} == {f"http://textbridge.test{MOBILE}/hook"}


async def test_a_received_sms_reaches_the_conversation_and_the_webhook(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": ["message.received"]})
    device = await a_phone(tenant)
    key = await key_of(tenant, device)
    sims = {s["sim_number"]: s["id"] for s in (await tenant.get("/v1/sim-cards")).json()}
    for _ in range(2):  # the phone retries: stored once
        answer = await post_event(
            tenant, device, key, "sms:received", received("381690156360", "Hi")
        )
        assert answer.status_code == 204, answer.text
    [conversation] = (await tenant.get("/v1/conversations")).json()["data"]
    assert conversation["phone"] == "+381690156360"  # a number without its +
    thread = (await tenant.get("/v1/conversations/+381690156360/messages")).json()["data"]
    assert [(m["direction"], m["text"]) for m in thread] == [("in", "Hi")]
    assert thread[0]["extra"] == {"device_id": device["id"], "sim_card_id": sims[2]}
    await eventually(lambda: len(receiver.received) == 1)
    assert receiver.bodies()[0]["data"]["text"] == "Hi"


async def test_status_events_move_the_message(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    key = await key_of(tenant, device)
    sent = await tenant.post(
        "/v1/messages", json={"to": ["+14155550100", "+14155550101"], "text": "Hi"}
    )
    ok, bad = (m["id"] for m in sent.json()["messages"])
    async with phone(tenant, device["token"]) as app:
        await pull(app, 2)
    at = "2026-11-22T10:00:00.000Z"
    await post_event(tenant, device, key, "sms:sent", {"messageId": ok, "sentAt": at}, event_id="1")
    await post_event(
        tenant, device, key, "sms:delivered", {"messageId": ok, "deliveredAt": at}, event_id="2"
    )
    await post_event(
        tenant, device, key, "sms:failed",
        {"messageId": bad, "failedAt": at, "reason": "RESULT_ERROR_NO_SERVICE"}, event_id="3",
    )  # fmt: skip
    assert (await status_of(tenant, ok))["status"] == "delivered"
    failed = await status_of(tenant, bad)
    assert (failed["status"], failed["error"]["message"]) == ("failed", "RESULT_ERROR_NO_SERVICE")


async def test_unsigned_old_or_foreign_events_are_refused(tenant: httpx.AsyncClient) -> None:
    device = await a_phone(tenant)
    key = await key_of(tenant, device)
    payload = received("+381690156360", "Hi")
    wrong = await post_event(tenant, device, key, "sms:received", payload, signing_key="0" * 64)
    old = await post_event(tenant, device, key, "sms:received", payload, age=600)
    nobody = await post_event(tenant, {"id": "x" * 21}, key, "sms:received", payload)
    for answer in (wrong, old, nobody):
        assert answer.status_code == 401
        assert set(answer.json()) == {"message"}
    not_json = await tenant.post(f"{MOBILE}/hook", content=b"{", headers={"authorization": ""})
    assert not_json.status_code == 400
    assert (await tenant.get("/v1/conversations")).json()["data"] == []


async def test_a_sender_that_is_no_number_is_dropped_not_retried(
    tenant: httpx.AsyncClient,
) -> None:
    device = await a_phone(tenant)
    key = await key_of(tenant, device)
    answer = await post_event(tenant, device, key, "sms:received", received("Google", "G-123"))
    assert answer.status_code == 204
    assert (await tenant.get("/v1/conversations")).json()["data"] == []
