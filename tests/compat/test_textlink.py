"""TextLink's send-sms, with the seed's request bodies and answer shapes
(``shared/seeds/textlink-api.md``)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ADMIN_KEY, BASE_URL, client_of, wait_for
from tests.e2e.server import ServerProcess
from textbridge.db import Database
from textbridge.settings import Role, Settings


@pytest.mark.parametrize("prefix", ["/textlink/api", "/api"])
async def test_send_sms_answers_ok_and_the_message_is_delivered(
    client: httpx.AsyncClient, prefix: str
) -> None:
    answer = await client.post(
        f"{prefix}/send-sms",
        json={"phone_number": "+381611231234", "text": "Dummy message text..."},
    )
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
    [message] = (await client.get("/v1/messages")).json()["data"]
    assert (message["to"], message["text"]) == ("+381611231234", "Dummy message text...")
    assert (await wait_for(client, message["id"]))["status"] == "delivered"


async def test_optional_fields_are_kept(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/textlink/api/send-sms",
        json={
            "phone_number": "+381611231234",
            "text": "x",
            "sim_card_id": 7,
            "custom_id": "order-1",
        },
    )
    assert answer.json() == {"ok": True}
    [message] = (await client.get("/v1/messages")).json()["data"]
    assert message["custom_id"] == "order-1"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"phone_number": "+1", "text": "x"}, 200, "'+1' is not a valid phone number"),
        ({"phone_number": "+381611231234", "text": ""}, 200, "text must not be empty"),
        ({"phone_number": "+381611231234", "text": "x" * 1601}, 200, "1601 characters"),
        ({"text": "x"}, 400, "phone_number is required"),
        ({"phone_number": ["+381611231234"], "text": "x"}, 400, "phone_number"),
        ({"phone_number": 381611231234, "text": "x"}, 400, "phone_number"),
        ({"phone_number": "+381611231234", "text": "x", "sim_card_id": "a"}, 400, "sim_card_id"),
    ],
)
async def test_refusals_are_ok_false_with_the_reason(
    client: httpx.AsyncClient, body: dict[str, object], status: int, says: str
) -> None:
    answer = await client.post("/textlink/api/send-sms", json=body)
    assert answer.status_code == status
    assert answer.json()["ok"] is False
    assert says in answer.json()["message"]
    assert set(answer.json()) == {"ok", "message"}
    assert (await client.get("/v1/messages")).json()["data"] == []


async def test_a_bad_key_and_a_malformed_body(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/textlink/api/send-sms",
        json={"phone_number": "+381611231234", "text": "x"},
        headers={"Authorization": "Bearer nope-nope-nope-nope"},
    )
    assert (answer.status_code, answer.json()) == (401, {"ok": False, "message": "Invalid API key"})
    answer = await client.post(
        "/textlink/api/send-sms", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "message": "the body is not valid JSON"}
    answer = await client.post("/textlink/api/send-sms", content=b"x" * (9 * 1024 * 1024))
    assert answer.status_code == 413
    assert answer.json()["ok"] is False


async def test_no_balance_is_a_sending_failure(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/accounts", json={"name": "poor"})
    async with httpx.AsyncClient(
        transport=client._transport,
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {created.json()['api_key']}"},
    ) as poor:
        answer = await poor.post(
            "/textlink/api/send-sms", json={"phone_number": "+381611231234", "text": "x"}
        )
    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert "does not cover" in answer.json()["message"]


def test_the_published_python_client_works_unchanged(
    live_server: Callable[..., ServerProcess], redirect: Callable[[str, str], None]
) -> None:
    """The ``textlink`` package from PyPI, unchanged, against a real server whose root dialect
    is TextLink (the default): only the host changes."""
    import textlink as tl

    server = live_server()
    redirect("https://textlinksms.com", server.url)
    tl.useKey(ADMIN_KEY)
    result = tl.sendSMS("+381637443242", "Your message text...")
    assert result.ok is True
    refused = tl.sendSMS("+1234", "Your message text...")
    assert refused.ok is False
    assert "not a valid phone number" in refused.message
    tl.useKey("tb_not_a_key_at_all_000000")
    assert tl.sendSMS("+381637443242", "x").ok is False
    with server.client() as http:
        sent = http.get("/v1/messages").json()["data"]
    assert [m["to"] for m in sent] == ["+381637443242"]


async def test_queued_when_no_sender_here_can_take_it(settings: Settings, db: Database) -> None:
    """An API-only process hands messages to workers elsewhere: TextLink's "queued"."""
    async with client_of(settings, role=Role.API) as http:
        answer = await http.post(
            "/textlink/api/send-sms", json={"phone_number": "+381611231234", "text": "x"}
        )
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "queued": True})
