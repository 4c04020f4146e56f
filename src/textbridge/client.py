"""A small Python client for the native API, and the webhook verifier a receiver runs.

It needs only httpx and the standard library, so a receiver can use it without the server's
dependencies being imported::

    from textbridge.client import Client, WebhookError, parse_webhook

    with Client("https://sms.example.com", api_key) as textbridge:
        sent = textbridge.send("+14155550100", "Hello")

    # in your webhook handler, with the raw body and the request's headers:
    try:
        event = parse_webhook(secret, raw_body, request.headers)
    except WebhookError:
        return 401
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from textbridge.kit.secrets import verify_webhook

__all__ = ["Client", "WebhookError", "parse_webhook", "verify_webhook"]


class WebhookError(ValueError):
    """The request is not a webhook from this Textbridge: unsigned, badly signed, or old."""


def parse_webhook(
    secret: str, body: bytes, headers: Mapping[str, str], *, tolerance: int = 300
) -> dict[str, Any]:
    """The event of a webhook request, once its signature and timestamp check out.

    ``headers`` may be any mapping (a framework's case-insensitive one or a plain dict).
    ``tolerance``: how many seconds old a request may be, so a captured one cannot be
    replayed later. Drop repeats by ``X-Textbridge-Event-Id`` (also the native body's ``id``):
    a crash between sending and recording sends an event again."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get("x-textbridge-timestamp", "")
    signature = lowered.get("x-textbridge-signature", "")
    if not timestamp or not signature:
        raise WebhookError("no X-Textbridge-Timestamp or X-Textbridge-Signature header")
    if not verify_webhook(secret, body, timestamp, signature, tolerance=tolerance):
        raise WebhookError("the signature does not match, or the request is too old")
    event: dict[str, Any] = json.loads(body)
    return event


class Client:
    """The native API over HTTP. Errors raise ``httpx.HTTPStatusError``; the answer's
    ``error`` object names the field and what is wrong with it."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, to: str | Sequence[str], text: str, **options: Any) -> dict[str, Any]:
        """``POST /v1/messages``; ``options``: ``custom_id``, ``schedule_at``, ``contacts``,
        ``groups``... as the API documents them."""
        return self._call("POST", "/v1/messages", json={"to": to, "text": text, **options})

    def message(self, message_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/messages/{message_id}")

    def create_webhook(self, url: str, events: Sequence[str], **options: Any) -> dict[str, Any]:
        """``POST /v1/webhooks``; the answer carries the secret that signs its requests."""
        body = {"url": url, "events": list(events), **options}
        return self._call("POST", "/v1/webhooks", json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.http.request(method, path, **kwargs)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body
