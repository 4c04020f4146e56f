"""The Python client against a real server, and its webhook verifier on what the server sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from tests.eventually import eventually_sync
from tests.webhooks.conftest import serving
from textbridge.client import Client, WebhookError, parse_webhook
from textbridge.kit.secrets import sign_webhook

pytestmark = pytest.mark.slow


def test_the_client_sends_and_verifies_the_webhooks_it_gets(
    database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(
        port=free_port(),
        data_dir=tmp_path,
        database_url=database_url,
        webhook_allow_private=1,
        webhook_poll_seconds=0.05,
    ).start()
    try:
        with serving() as receiver, Client(server.url, ADMIN_KEY) as textbridge:
            hook = textbridge.create_webhook(receiver.url, ["message.sent"])
            sent = textbridge.send("+14155550100", "Hello", custom_id="order-1")
            message_id = sent["messages"][0]["id"]
            eventually_sync(lambda: receiver.received, within=20)
            assert textbridge.message(message_id)["custom_id"] == "order-1"
    finally:
        server.stop()
    headers, body = receiver.received[0]
    event = parse_webhook(hook["secret"], body, headers)
    assert (event["type"], event["data"]["id"]) == ("message.sent", message_id)
    assert event["id"] == headers["x-textbridge-event-id"]

    with pytest.raises(WebhookError, match="does not match"):
        parse_webhook(hook["secret"], body.replace(b"Hello", b"Hallo"), headers)
    with pytest.raises(WebhookError, match="does not match"):
        parse_webhook("whsec_another", body, headers)
    with pytest.raises(WebhookError, match="header"):
        parse_webhook(hook["secret"], body, {"content-type": "application/json"})
    old = int(time.time()) - 600  # a replay, signed correctly ten minutes ago
    replayed = {
        "X-Textbridge-Timestamp": str(old),
        "X-Textbridge-Signature": "v1=" + sign_webhook(hook["secret"], old, body),
    }
    with pytest.raises(WebhookError, match="too old"):
        parse_webhook(hook["secret"], body, replayed)
    assert parse_webhook(hook["secret"], body, replayed, tolerance=900)["id"] == event["id"]
