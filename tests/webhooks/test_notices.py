"""Email notices through a real SMTP server on 127.0.0.1: a delivery that failed for good, and
an endpoint disabled for failing, reach the account's notify_email, grouped and throttled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import make_settings
from tests.eventually import eventually
from tests.webhooks.conftest import subscribe
from textbridge.settings import Settings


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox(free_port: Any) -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def notice_interval() -> float:
    return 3600


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, inbox: tuple[Inbox, int], notice_interval: float
) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=inbox[1],
        smtp_security="none",
        smtp_from="Textbridge <noreply@textbridge.test>",
        notice_poll_seconds=0.05,
        notice_interval_seconds=notice_interval,
        webhook_max_age_seconds=1,  # a delivery fails for good after a second
        webhook_disable_after=2,
    )


def text_of(mail: Message) -> str:
    part = mail.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode()


async def failing_endpoint(tenant: httpx.AsyncClient, port: int, events: int) -> dict[str, Any]:
    """An endpoint nobody answers at, and ``events`` events for it."""
    endpoint = await subscribe(tenant, f"http://127.0.0.1:{port}/down")
    await tag_changes(tenant, events)
    return endpoint


async def tag_changes(tenant: httpx.AsyncClient, count: int) -> None:
    for _ in range(count):
        phone = f"+1415555{len(await contacts(tenant)):04d}"
        await tenant.post("/v1/contacts", json={"phone": phone, "tag": "new"})


async def contacts(tenant: httpx.AsyncClient) -> list[Any]:
    found: list[Any] = (await tenant.get("/v1/contacts")).json()["data"]
    return found


async def until_disabled(tenant: httpx.AsyncClient, endpoint: dict[str, Any]) -> None:
    async def disabled() -> bool:
        found = (await tenant.get(f"/v1/webhooks/{endpoint['id']}")).json()
        return found["enabled"] is False

    await eventually(disabled, interval=0.1)


async def test_a_failed_delivery_is_emailed_and_the_next_notice_waits_an_hour(
    tenant: httpx.AsyncClient, inbox: tuple[Inbox, int], free_port: Any
) -> None:
    mails = inbox[0].mails
    answer = await tenant.patch("/v1/account/settings", json={"notify_email": "ops@example.com"})
    assert answer.json()["notify_email"] == "ops@example.com"
    endpoint = await failing_endpoint(tenant, free_port(), 1)
    await eventually(lambda: len(mails) == 1, within=15)
    [mail] = mails
    assert (mail["To"], mail["From"]) == ("ops@example.com", "Textbridge <noreply@textbridge.test>")
    assert mail["Subject"] == "Textbridge: webhook deliveries failed"
    assert "contact.tag_changed event" in text_of(mail)
    assert f"/v1/webhooks/{endpoint['id']}/deliveries/" in text_of(mail)  # how to resend it
    # The second failure disables the endpoint; that notice waits for the hour to pass.
    await tag_changes(tenant, 1)
    await until_disabled(tenant, endpoint)
    deliveries = (await tenant.get(f"/v1/webhooks/{endpoint['id']}/deliveries")).json()["data"]
    assert [d["status"] for d in deliveries] == ["failed", "failed"]
    await asyncio.sleep(0.3)  # notices are looked for every 0.05 s: none goes out
    assert len(mails) == 1


@pytest.mark.parametrize("notice_interval", [0])
async def test_a_disabled_endpoint_is_emailed(
    tenant: httpx.AsyncClient, inbox: tuple[Inbox, int], free_port: Any
) -> None:
    mails = inbox[0].mails
    await tenant.patch("/v1/account/settings", json={"notify_email": "ops@example.com"})
    endpoint = await failing_endpoint(tenant, free_port(), 2)
    await eventually(lambda: any("disabled" in mail["Subject"] for mail in mails), within=15)
    text = "".join(text_of(mail) for mail in mails)
    assert text.count("could not be delivered") == 2
    assert f"The webhook endpoint {endpoint['id']}" in text
    assert "2 deliveries in a row failed for good" in text


async def test_notices_need_an_address(
    tenant: httpx.AsyncClient, inbox: tuple[Inbox, int], free_port: Any
) -> None:
    bad = await tenant.patch("/v1/account/settings", json={"notify_email": "not an address"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "notify_email")
    await tenant.patch("/v1/account/settings", json={"notify_email": "ops@example.com"})
    cleared = await tenant.patch("/v1/account/settings", json={"notify_email": None})
    assert cleared.json()["notify_email"] is None
    endpoint = await failing_endpoint(tenant, free_port(), 2)
    await until_disabled(tenant, endpoint)
    await asyncio.sleep(0.3)  # notices are looked for every 0.05 s: none goes out
    assert inbox[0].mails == []
