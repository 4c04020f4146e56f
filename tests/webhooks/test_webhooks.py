"""Webhooks to a real HTTP receiver on 127.0.0.1: signed payloads, retries until a 2xx, the
delivery log, and the guard against internal addresses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.conftest import client_of, wait_for
from tests.eventually import eventually
from tests.verify.test_verifications import code_of
from tests.webhooks.conftest import Receiver, delivered, subscribe
from textbridge.db import Database
from textbridge.kit.secrets import verify_webhook
from textbridge.settings import Settings

SENT = ["message.sent"]


async def test_a_tag_change_arrives_once_signed(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await subscribe(tenant, receiver.url)
    assert endpoint["secret"].startswith("whsec_")
    listed = (await tenant.get("/v1/webhooks")).json()
    assert "secret" not in listed[0]
    assert listed[0]["secret_prefix"] == endpoint["secret"][:10]

    await tenant.post(
        "/textlink/api/update-contact-tag", json={"phone_number": "+381690156360", "tag": "Warm"}
    )
    await eventually(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    assert headers["content-type"] == "application/json"
    assert verify_webhook(
        endpoint["secret"],
        body,
        headers["x-textbridge-timestamp"],
        headers["x-textbridge-signature"],
    )
    assert not verify_webhook(
        "another secret", body, headers["x-textbridge-timestamp"], headers["x-textbridge-signature"]
    )
    event = json.loads(body)
    assert event["id"] == headers["x-textbridge-event-id"]
    assert event["type"] == "contact.tag_changed"
    assert (event["data"]["phone"], event["data"]["old_tag"], event["data"]["tag"]) == (
        "+381690156360",
        None,
        "Warm",
    )
    [listed_event] = (await tenant.get("/v1/events")).json()["data"]
    assert listed_event["id"] == event["id"]
    await asyncio.sleep(0.3)  # deliveries are looked for every 0.05 s: no second one comes
    assert len(receiver.received) == 1  # once


async def test_a_failing_receiver_gets_it_again_until_it_answers_2xx(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503, 404]
    endpoint = await subscribe(tenant, receiver.url)
    await tenant.post("/v1/contacts", json={"phone": "+14155550100", "tag": "cold"})
    await eventually(lambda: len(receiver.received) == 4)
    ids = {headers["x-textbridge-event-id"] for headers, _ in receiver.received}
    assert len(ids) == 1  # the same event each time
    answer = await tenant.get(f"/v1/webhooks/{endpoint['id']}/deliveries")
    assert len(answer.json()["data"]) == 1
    delivery = await delivered(tenant, endpoint)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 404, 200]
    assert delivery["attempts"][0]["error"] == "answered 500"
    await asyncio.sleep(0.3)  # deliveries are looked for every 0.05 s: no fifth one comes
    assert len(receiver.received) == 4  # exactly once after the 2xx


async def test_a_receiver_that_is_down_gets_everything_when_it_is_back(
    tenant: httpx.AsyncClient, receiver: Receiver, free_port: Any
) -> None:
    # Nobody listens on this port yet: connection refused, again and again.
    port = free_port()
    endpoint = await subscribe(tenant, f"http://127.0.0.1:{port}/hooks")
    for index in range(20):
        await tenant.post("/v1/contacts", json={"phone": f"+1415555{index:04d}", "tag": "new"})

    async def each_refused() -> list[dict[str, Any]]:
        listed = f"/v1/webhooks/{endpoint['id']}/deliveries"
        deliveries: list[dict[str, Any]] = (await tenant.get(listed)).json()["data"]
        assert len(deliveries) == 20
        assert all(d["attempts"] for d in deliveries), deliveries  # each tried, each refused
        return deliveries

    deliveries = await eventually(each_refused)
    assert {d["status"] for d in deliveries} == {"pending"}
    assert {a["status_code"] for d in deliveries for a in d["attempts"]} == {None}
    # It comes back (at the receiver's address).
    await tenant.patch(f"/v1/webhooks/{endpoint['id']}", json={"url": receiver.url})
    await eventually(lambda: len(receiver.received) >= 20)
    phones = sorted(body["data"]["phone"] for body in receiver.bodies())
    assert phones == [f"+1415555{index:04d}" for index in range(20)]  # none lost, none twice


async def test_a_disabled_endpoint_gets_nothing_until_enabled(
    tenant: httpx.AsyncClient, receiver: Receiver, free_port: Any
) -> None:
    endpoint = await subscribe(tenant, f"http://127.0.0.1:{free_port()}/down")
    await tenant.post("/v1/contacts", json={"phone": "+14155550100", "tag": "a"})
    answer = await tenant.patch(
        f"/v1/webhooks/{endpoint['id']}", json={"enabled": False, "url": receiver.url}
    )
    assert answer.json()["enabled"] is False
    await asyncio.sleep(0.3)  # retries come within 0.2 s: none to a disabled endpoint
    assert receiver.received == []  # pending, held back
    await tenant.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": True})
    await eventually(lambda: len(receiver.received) == 1)


async def test_one_resources_events_arrive_in_order(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500]  # the first event fails twice: the later ones must wait
    await subscribe(tenant, receiver.url)
    contact = (
        await tenant.post("/v1/contacts", json={"phone": "+14155550100", "tag": "t0"})
    ).json()
    for index in range(1, 6):
        await tenant.patch(f"/v1/contacts/{contact['id']}", json={"tag": f"t{index}"})
    await eventually(lambda: len(receiver.received) == 8)
    tags = [body["data"]["tag"] for body in receiver.bodies()]
    assert tags == ["t0", "t0", "t0", "t1", "t2", "t3", "t4", "t5"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://example.com/x", "events": ["contact.tag_changed"]}, "url", "http"),
        (
            {"url": "https://example.com/" + "x" * 300, "events": ["contact.tag_changed"]},
            "url",
            "at most 300",
        ),
        ({"url": "https://example.com/", "events": []}, "events", "at least one"),
        (
            {"url": "https://example.com/", "events": ["message.sent", "nope"]},
            "events[1]",
            "not an event type",
        ),
        (
            {"url": "https://example.com/", "events": ["message.sent"], "secret": "short"},
            "secret",
            "8 to 128",
        ),
        ({"url": "https://user:pw@example.com/", "events": ["message.sent"]}, "url", "password"),
    ],
)
async def test_bad_webhooks_are_refused_naming_the_field(
    tenant: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    answer = await tenant.post("/v1/webhooks", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert words in answer.json()["error"]["message"]
    assert (await tenant.get("/v1/webhooks")).json() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://192.168.1.1/",
    ],
)
async def test_internal_addresses_are_refused_unless_allowed(settings: Settings, url: str) -> None:
    async with client_of(settings, webhook_allow_private=False) as guarded:
        answer = await guarded.post("/v1/webhooks", json={"url": url, "events": ["message.sent"]})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == "url"
        assert "private or internal" in answer.json()["error"]["message"]


async def test_webhooks_belong_to_their_account(
    client: httpx.AsyncClient, tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    theirs = await subscribe(client, receiver.url)
    for attempt in [
        tenant.get(f"/v1/webhooks/{theirs['id']}"),
        tenant.patch(f"/v1/webhooks/{theirs['id']}", json={"enabled": False}),
        tenant.delete(f"/v1/webhooks/{theirs['id']}"),
        tenant.get(f"/v1/webhooks/{theirs['id']}/deliveries"),
    ]:
        assert (await attempt).status_code == 404
    # The tenant's tag changes never reach the admin's endpoint.
    await tenant.post("/v1/contacts", json={"phone": "+14155550100", "tag": "x"})
    await asyncio.sleep(0.3)  # deliveries are looked for every 0.05 s: none comes
    assert receiver.received == []
    assert (await client.get(f"/v1/webhooks/{theirs['id']}")).json()["enabled"] is True


ALL_MESSAGE_EVENTS = [
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.expired",
    "message.received",
]


async def test_message_events_carry_the_message_at_each_status(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": ALL_MESSAGE_EVENTS})
    ok = (
        await tenant.post(
            "/v1/messages", json={"to": "+14155550100", "text": "hi", "custom_id": "c-1"}
        )
    ).json()
    failing = (await tenant.post("/v1/messages", json={"to": "+14155550192", "text": "no"})).json()
    await tenant.post("/v1/simulator/inbound", json={"from": "+14155550123", "text": "hello"})
    ok_id, failing_id = ok["messages"][0]["id"], failing["messages"][0]["id"]

    def of(message_id: str) -> list[tuple[str, str]]:
        return [
            (body["type"], body["data"]["status"])
            for body in receiver.bodies()
            if body["data"]["id"] == message_id
        ]

    await eventually(lambda: len(of(ok_id)) == 2 and len(of(failing_id)) == 2)
    assert of(ok_id) == [("message.sent", "sent"), ("message.delivered", "delivered")]
    assert of(failing_id) == [("message.sent", "sent"), ("message.failed", "failed")]
    sent = next(
        b for b in receiver.bodies() if b["type"] == "message.sent" and b["data"]["id"] == ok_id
    )
    assert (sent["data"]["to"], sent["data"]["text"], sent["data"]["custom_id"]) == (
        "+14155550100",
        "hi",
        "c-1",
    )
    received = [b for b in receiver.bodies() if b["type"] == "message.received"]
    assert [(b["data"]["from"], b["data"]["text"]) for b in received] == [("+14155550123", "hello")]
    # Every event is also in the account's event list.
    listed = {
        e["id"] for e in (await tenant.get("/v1/events", params={"limit": 50})).json()["data"]
    }
    assert {b["id"] for b in receiver.bodies()} <= listed


async def test_an_opted_out_recipient_is_a_failed_message_event(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": ["message.failed"]})
    await tenant.post("/v1/contacts", json={"phone": "+14155550100", "opted_out": True})
    await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "sale"})
    await eventually(lambda: len(receiver.received) == 1)
    data = receiver.bodies()[0]["data"]
    assert (data["status"], data["error"]["code"]) == ("failed", "opted_out")


async def test_an_approved_verification_is_an_event(
    tenant: httpx.AsyncClient, receiver: Receiver, db: Database, settings: Settings
) -> None:
    await tenant.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["verification.approved"]}
    )
    started = (await tenant.post("/v1/verifications", json={"phone": "+381690156360"})).json()
    wrong = await tenant.post(
        "/v1/verifications/check", json={"verification_id": started["id"], "code": "000000"}
    )
    assert wrong.status_code == 200
    code = await code_of(db, settings, started["id"])
    checked = await tenant.post(
        "/v1/verifications/check", json={"verification_id": started["id"], "code": code}
    )
    assert checked.json()["valid"] is True, checked.text
    await eventually(lambda: len(receiver.received) == 1)
    event = receiver.bodies()[0]
    assert event["type"] == "verification.approved"
    assert (event["data"]["id"], event["data"]["phone"]) == (started["id"], "+381690156360")
    assert code not in receiver.received[0][1].decode()  # the code is in no payload


async def test_message_events_are_kept_only_for_accounts_that_want_them(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    first = (await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "a"})).json()
    await wait_for(tenant, first["messages"][0]["id"])
    assert (await tenant.get("/v1/events")).json()["data"] == []
    await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": ["message.delivered"]})
    second = (await tenant.post("/v1/messages", json={"to": "+14155550100", "text": "b"})).json()
    await eventually(lambda: len(receiver.received) == 1)
    events = (await tenant.get("/v1/events")).json()["data"]
    assert [(e["type"], e["subject_id"]) for e in events] == [
        ("message.delivered", second["messages"][0]["id"])
    ]


async def test_test_webhooks_sends_a_signed_sample_of_each_event(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [200, 500]
    events = ["message.received", "contact.tag_changed"]
    endpoint = (
        await tenant.post("/v1/webhooks", json={"url": receiver.url, "events": events})
    ).json()
    answer = await tenant.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert answer.status_code == 200, answer.text
    assert [(r["type"], r["status_code"], r["error"]) for r in answer.json()] == [
        ("message.received", 200, None),
        ("contact.tag_changed", 500, "answered 500"),
    ]
    for headers, body in receiver.received:
        stamp, signature = headers["x-textbridge-timestamp"], headers["x-textbridge-signature"]
        assert verify_webhook(endpoint["secret"], body, stamp, signature)
    assert [b["data"]["sample"] for b in receiver.bodies()] == [True, True]
    assert (await tenant.get(f"/v1/webhooks/{endpoint['id']}/deliveries")).json()["data"] == []


async def test_a_delivery_can_be_sent_again_by_hand(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await subscribe(tenant, receiver.url)
    await tenant.post("/v1/contacts", json={"phone": "+14155550100", "tag": "x"})
    await eventually(lambda: len(receiver.received) == 1)
    event_id = receiver.bodies()[0]["id"]
    # Recorded first: a redelivery asked while the first answer is on its way is that answer
    # (settle_many), so the receiver would rightly see it once.
    await delivered(tenant, endpoint)
    path = f"/v1/webhooks/{endpoint['id']}/deliveries/{event_id}/redeliver"
    assert (await tenant.post(path)).status_code == 202
    await eventually(lambda: len(receiver.received) == 2)
    assert receiver.bodies()[1]["id"] == event_id  # the same event: receivers can tell
    missing = await tenant.post(f"/v1/webhooks/{endpoint['id']}/deliveries/NOPE/redeliver")
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "event_id"
