"""Webhook endpoints: which URLs of an account get which events, and what was delivered."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
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


webhooks = WebhookService()
