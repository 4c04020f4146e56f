"""Webhook endpoints: which URLs of an account get which events, and what was delivered."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal
from textbridge.errors import NotFound, ValidationFailed
from textbridge.events.service import EventType
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from textbridge.settings import Settings
from textbridge.webhooks.guard import DestinationRefused, check_destination
from textbridge.webhooks.repository import WebhookRepository
from textbridge.webhooks.sender import http_client, payload, post

MAX_URL = 300  # TextLink's limit


def event_types(endpoint: WebhookEndpoint) -> list[str]:
    return [name for name in endpoint.events.split(",") if name]


def _events(values: Any) -> str:
    if not isinstance(values, list) or not values:
        raise ValidationFailed("events must list at least one event type", field="events")
    known = {kind.value for kind in EventType}
    for index, value in enumerate(values):
        if value not in known:
            raise ValidationFailed(
                f"{str(value)[:60]!r} is not an event type: one of " + ", ".join(sorted(known)),
                field=f"events[{index}]",
            )
    return "," + ",".join(dict.fromkeys(values)) + ","


async def _url(value: Any, settings: Settings) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("url is required", field="url")
    url = value.strip()
    if len(url) > MAX_URL:
        raise ValidationFailed(f"url is {len(url)} characters; at most {MAX_URL}", field="url")
    try:
        await check_destination(url, allow_private=settings.webhook_allow_private)
    except DestinationRefused as exc:
        raise ValidationFailed(str(exc), field="url") from exc
    return url


def _secret(value: Any) -> str:
    if value is None:
        return "whsec_" + secrets.token_urlsafe(32)
    if not isinstance(value, str) or not 8 <= len(value) <= 128 or "\x00" in value:
        raise ValidationFailed("secret must be 8 to 128 characters", field="secret")
    return value


class WebhookService:
    async def create(
        self, session: AsyncSession, caller: Principal, body: Mapping[str, Any], settings: Settings
    ) -> WebhookEndpoint:
        now = utcnow()
        endpoint = WebhookEndpoint(
            id=new_id(),
            account_id=caller.account_id,
            url=await _url(body.get("url"), settings),
            events=_events(body.get("events")),
            secret=_secret(body.get("secret")),
            enabled=bool(body.get("enabled", True)),
            failures=0,
            created_at=now,
            updated_at=now,
        )
        WebhookRepository(session).add(endpoint)
        await session.flush()
        return endpoint

    async def get(
        self, session: AsyncSession, caller: Principal, endpoint_id: str
    ) -> WebhookEndpoint:
        endpoint = await WebhookRepository(session).get(caller.account_id, endpoint_id)
        if endpoint is None:
            raise NotFound(f"no webhook {endpoint_id}", field="id")
        return endpoint

    async def endpoints(
        self, session: AsyncSession, caller: Principal
    ) -> Sequence[WebhookEndpoint]:
        return await WebhookRepository(session).endpoints(caller.account_id)

    async def update(
        self,
        session: AsyncSession,
        caller: Principal,
        endpoint_id: str,
        changes: Mapping[str, Any],
        settings: Settings,
    ) -> WebhookEndpoint:
        endpoint = await self.get(session, caller, endpoint_id)
        values: dict[str, Any] = {}
        if "url" in changes:
            values["url"] = await _url(changes["url"], settings)
        if "events" in changes:
            values["events"] = _events(changes["events"])
        if "secret" in changes:
            values["secret"] = _secret(changes["secret"])
        if changes.get("enabled") is not None:
            values["enabled"] = bool(changes["enabled"])
            if values["enabled"]:
                values.update(failures=0, disabled_reason=None)
        for name, value in values.items():
            setattr(endpoint, name, value)
        endpoint.updated_at = utcnow()
        await session.flush()
        return endpoint

    async def delete(self, session: AsyncSession, caller: Principal, endpoint_id: str) -> None:
        endpoint = await self.get(session, caller, endpoint_id)
        await WebhookRepository(session).delete(endpoint)

    async def deliveries(
        self,
        session: AsyncSession,
        caller: Principal,
        endpoint_id: str,
        *,
        before: str | None,
        limit: int,
    ) -> tuple[Sequence[WebhookDelivery], dict[str, list[WebhookAttempt]]]:
        """The endpoint's deliveries, newest event first, each with its attempts."""
        await self.get(session, caller, endpoint_id)
        repository = WebhookRepository(session)
        deliveries = await repository.deliveries(endpoint_id, before=before, limit=limit)
        attempts: dict[str, list[WebhookAttempt]] = {d.event_id: [] for d in deliveries}
        for attempt in await repository.attempts(endpoint_id, list(attempts)):
            attempts[attempt.event_id].append(attempt)
        return deliveries, attempts

    async def redeliver(
        self, session: AsyncSession, caller: Principal, endpoint_id: str, event_id: str
    ) -> None:
        """Send a delivery again (delivered or failed, or pending: then now)."""
        await self.get(session, caller, endpoint_id)
        if not await WebhookRepository(session).redeliver(endpoint_id, event_id, utcnow()):
            raise NotFound(f"no delivery of event {event_id} to this webhook", field="event_id")

    async def test(
        self, session: AsyncSession, caller: Principal, endpoint_id: str, settings: Settings
    ) -> list[TestResult]:
        """A sample of each event the endpoint wants, sent now, signed like the real ones
        (TextLink's "Test webhooks" button). Nothing is stored."""
        endpoint = await self.get(session, caller, endpoint_id)
        now = utcnow()
        results = []
        async with http_client(settings) as http:
            for kind in event_types(endpoint):
                event_id = new_id()
                body = payload(event_id, kind, now, {"sample": True, **_SAMPLES.get(kind, {})})
                status_code, error = await post(
                    http, endpoint.url, endpoint.secret, event_id, body, settings
                )
                results.append(TestResult(kind, event_id, status_code, error))
        return results


@dataclass(frozen=True, slots=True)
class TestResult:
    type: str
    event_id: str
    status_code: int | None
    error: str | None


_MESSAGE_SAMPLE = {
    "id": "01JSAMPLE0000000000000000",
    "direction": "out",
    "to": "+14155550100",
    "from": None,
    "text": "A sample message",
    "custom_id": None,
}
_SAMPLES: dict[str, dict[str, Any]] = {
    "message.sent": {**_MESSAGE_SAMPLE, "status": "sent"},
    "message.delivered": {**_MESSAGE_SAMPLE, "status": "delivered"},
    "message.failed": {**_MESSAGE_SAMPLE, "status": "failed"},
    "message.expired": {**_MESSAGE_SAMPLE, "status": "expired"},
    "message.received": {
        **_MESSAGE_SAMPLE,
        "direction": "in",
        "to": None,
        "from": "+14155550100",
        "status": "received",
    },
    "contact.tag_changed": {
        "phone": "+14155550100",
        "name": "Ana Silva",
        "old_tag": "cold",
        "tag": "warm",
    },
    "verification.approved": {"phone": "+14155550100", "service": "", "status": "approved"},
}


webhooks = WebhookService()
