"""TextLink's four webhook URLs: its documented bodies, field for field, to a real receiver."""

from __future__ import annotations

import httpx

from tests.eventually import eventually
from tests.webhooks.conftest import Receiver
from textbridge.kit.secrets import verify_webhook

SECRET = "YOUR_WEBHOOK_SECRET"


async def set_hooks(tenant: httpx.AsyncClient, receiver: Receiver) -> dict[str, str]:
    base = receiver.url.removesuffix("/hooks")
    hooks = {name: f"{base}/{name}" for name in ("received", "sent", "failed", "tag")}
    answer = await tenant.put("/v1/webhooks/textlink", json={**hooks, "secret": SECRET})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**hooks, "secret": SECRET}
    return hooks


async def test_the_four_urls_get_textlinks_bodies(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    await set_hooks(tenant, receiver)
    tenant_id = (await tenant.get("/v1/account")).json()["id"]
    await tenant.post(
        "/textlink/api/update-contact-tag", json={"phone_number": "+381690156360", "tag": "Cold"}
    )
    contact = (await tenant.get("/v1/contacts")).json()["data"][0]
    await tenant.patch(
        f"/v1/contacts/{contact['id']}",
        json={"first_name": "Aleksandar", "last_name": "Spremo", "tag": "Warm"},
    )
    await tenant.post("/v1/simulator/inbound", json={"from": "+381690156360", "text": "General"})
    await tenant.post(
        "/textlink/api/send-sms",
        json={"phone_number": "+381690156360", "text": "Hello there", "sim_card_id": 123},
    )
    failing = await tenant.post(
        "/v1/messages", json={"to": "+14155550192", "text": "no", "custom_id": "1234"}
    )
    failing_id = failing.json()["messages"][0]["id"]
    await eventually(lambda: len(receiver.received) == 6)

    for headers, body in receiver.received:  # signed like every other webhook
        assert verify_webhook(
            SECRET, body, headers["x-textbridge-timestamp"], headers["x-textbridge-signature"]
        )
    tags = receiver.at("/tag")
    assert tags == [
        {"secret": SECRET, "name": None, "phone_number": "+381690156360", "tag": "Cold",
         "subuser_id": tenant_id},
        {"secret": SECRET, "name": "Aleksandar Spremo", "phone_number": "+381690156360",
         "tag": "Warm", "subuser_id": tenant_id},
    ]  # fmt: skip
    [received] = receiver.at("/received")
    assert isinstance(received.pop("timestamp"), int)
    assert received == {
        "secret": SECRET,
        "phone_number": "+381690156360",
        "text": "General",
        "tag": "Warm",
        "name": "Aleksandar Spremo",
    }
    sent = {body["phone_number"]: body for body in receiver.at("/sent")}
    assert set(sent) == {"+381690156360", "+14155550192"}  # a failed one is sent first
    hello = sent["+381690156360"]
    assert hello.pop("timestamp") > 1_700_000_000_000  # milliseconds
    assert hello == {
        "secret": SECRET,
        "phone_number": "+381690156360",
        "text": "Hello there",
        "portal": False,
        "sim_card_id": 123,
    }
    [failed] = receiver.at("/failed")
    assert isinstance(failed.pop("timestamp"), int)
    assert failed == {
        "secret": SECRET,
        "phone_number": "+14155550192",
        "text": "no",
        "portal": False,
        "textlink_id": failing_id,
        "custom_id": "1234",
        "sim_card_id": None,
    }


async def test_the_admin_account_is_no_subuser(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await client.put("/v1/webhooks/textlink", json={"tag": receiver.url})
    await client.post("/v1/contacts", json={"phone": "+14155550100", "tag": "Hot"})
    await eventually(lambda: len(receiver.received) == 1)
    body = receiver.bodies()[0]
    assert "subuser_id" not in body
    assert body["secret"].startswith("whsec_")  # one was made: it is in every body


async def test_setting_the_urls_again_moves_them_and_null_removes_one(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    hooks = await set_hooks(tenant, receiver)
    before = {e["id"]: e for e in (await tenant.get("/v1/webhooks")).json()}
    assert {e["format"] for e in before.values()} == {"textlink"}
    assert sorted(sorted(e["events"]) for e in before.values()) == [
        ["contact.tag_changed"],
        ["message.expired", "message.failed"],
        ["message.received"],
        ["message.sent"],
    ]
    moved = {**hooks, "sent": hooks["sent"] + "-v2", "tag": None}
    answer = await tenant.put("/v1/webhooks/textlink", json=moved)  # the secret is kept
    assert answer.json() == {**moved, "tag": None, "secret": SECRET}
    after = {e["id"]: e for e in (await tenant.get("/v1/webhooks")).json()}
    assert set(after) < set(before)  # the same endpoints (deliveries kept), one fewer
    assert (await tenant.get("/v1/webhooks/textlink")).json() == answer.json()


async def test_bad_textlink_hooks_are_refused_naming_the_field(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    answer = await tenant.put(
        "/v1/webhooks/textlink", json={"received": receiver.url, "sent": "ftp://x"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "sent"
    assert (await tenant.get("/v1/webhooks")).json() == []  # nothing half-written
    answer = await tenant.put("/v1/webhooks/textlink", json={"tag": "x" * 301})
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "tag"
    answer = await tenant.put("/v1/webhooks/textlink", json={"tag": receiver.url, "secret": "s"})
    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "secret")
    answer = await tenant.post(
        "/v1/webhooks",
        json={"url": receiver.url, "format": "textlink", "events": ["message.delivered"]},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "events[0]"
    assert "TextLink" in answer.json()["error"]["message"]
    answer = await tenant.post(
        "/v1/webhooks", json={"url": receiver.url, "format": "xml", "events": ["message.sent"]}
    )
    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "format")


async def test_test_webhooks_sends_textlink_samples(
    tenant: httpx.AsyncClient, receiver: Receiver
) -> None:
    await set_hooks(tenant, receiver)
    for endpoint in (await tenant.get("/v1/webhooks")).json():
        answer = await tenant.post(f"/v1/webhooks/{endpoint['id']}/test")
        assert {r["status_code"] for r in answer.json()} == {200}
    assert len(receiver.received) == 5
    assert set(receiver.at("/received")[0]) == {
        "secret", "phone_number", "text", "tag", "name", "timestamp"
    }  # fmt: skip
    assert set(receiver.at("/sent")[0]) == {
        "secret", "phone_number", "text", "portal", "timestamp", "sim_card_id"
    }  # fmt: skip
    for failed in receiver.at("/failed"):
        assert set(failed) == {
            "secret", "phone_number", "text", "portal", "timestamp", "textlink_id", "custom_id",
            "sim_card_id",
        }  # fmt: skip
    assert receiver.at("/tag")[0]["tag"] == "Warm"
