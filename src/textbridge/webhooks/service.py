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
from textbridge.models import (
    Direction,
    Message,
    MessageStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from textbridge.settings import Settings
from textbridge.webhooks.bodies import (
    FORMATS,
    NATIVE,
    TEXTLINK,
    TEXTLINK_EVENTS,
    TEXTLINK_HOOKS,
    Subject,
    render,
)
from textbridge.webhooks.guard import DestinationRefused, check_destination
from textbridge.webhooks.repository import WebhookRepository
from textbridge.webhooks.sender import http_client, post

MAX_URL = 300  # TextLink's limit


def event_types(endpoint: WebhookEndpoint) -> list[str]:
    return [name for name in endpoint.events.split(",") if name]


def _format(value: Any) -> str:
    if value not in FORMATS:
        raise ValidationFailed("format must be one of " + ", ".join(FORMATS), field="format")
    return str(value)


def _events(values: Any, format: str) -> str:
    if not isinstance(values, list) or not values:
        raise ValidationFailed("events must list at least one event type", field="events")
    known = {kind.value for kind in EventType} if format == NATIVE else TEXTLINK_EVENTS
    for index, value in enumerate(values):
        if value not in known:
            raise ValidationFailed(
                f"{str(value)[:60]!r} is not an event type"
                + (" TextLink has a body for" if format == TEXTLINK else "")
                + ": one of "
                + ", ".join(sorted(known)),
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
        format = _format(body.get("format", NATIVE))
        endpoint = WebhookEndpoint(
            id=new_id(),
            account_id=caller.account_id,
            url=await _url(body.get("url"), settings),
            format=format,
            events=_events(body.get("events"), format),
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
        if "format" in changes:
            values["format"] = _format(changes["format"])
        if "events" in changes or "format" in changes:
            format = values.get("format", endpoint.format)
            events = changes["events"] if "events" in changes else event_types(endpoint)
            values["events"] = _events(events, format)
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
                data, subject = _sample(kind)
                body = render(endpoint.format, event_id, kind, now, data, subject, endpoint.secret)
                status_code, error = await post(
                    http, endpoint.url, endpoint.secret, event_id, body, settings
                )
                results.append(TestResult(kind, event_id, status_code, error))
        return results

    # TextLink's four account-level URLs ----------------------------------------------------

    async def textlink_hooks(
        self, session: AsyncSession, caller: Principal
    ) -> dict[str, WebhookEndpoint]:
        """The endpoints that are TextLink's received / sent / failed / tag URLs: in its
        format, wanting exactly that hook's events."""
        hooks = {}
        for endpoint in await self.endpoints(session, caller):
            if endpoint.format != TEXTLINK:
                continue
            for name, kinds in TEXTLINK_HOOKS.items():
                if sorted(event_types(endpoint)) == sorted(kinds) and name not in hooks:
                    hooks[name] = endpoint
        return hooks

    async def set_textlink_hooks(
        self,
        session: AsyncSession,
        caller: Principal,
        urls: Mapping[str, str | None],
        secret: str | None,
        settings: Settings,
    ) -> dict[str, WebhookEndpoint]:
        """Set the four URLs as TextLink's dashboard does: a URL creates or moves its
        endpoint (pending deliveries kept), none removes it. One secret for all four: the one
        given, else the one they have, else a new one."""
        hooks = await self.textlink_hooks(session, caller)
        if secret is None:
            secret = next((hook.secret for hook in hooks.values()), None)
        secret = _secret(secret)
        for name, kinds in TEXTLINK_HOOKS.items():
            url, endpoint = urls.get(name), hooks.pop(name, None)
            if url is None:
                if endpoint is not None:
                    await self.delete(session, caller, endpoint.id)
                continue
            changes = {"url": url, "secret": secret}
            try:
                if endpoint is None:
                    body = {**changes, "format": TEXTLINK, "events": list(kinds)}
                    hooks[name] = await self.create(session, caller, body, settings)
                else:
                    hooks[name] = await self.update(session, caller, endpoint.id, changes, settings)
            except ValidationFailed as exc:
                if exc.field == "url":
                    exc.field = name
                raise
        return hooks


def _sample(kind: str) -> tuple[dict[str, Any], Subject]:
    """An event of ``kind`` to send as a test, as the real one would be."""
    if kind == "contact.tag_changed":
        data = {
            "contact_id": _SAMPLE_ID,
            "phone": _SAMPLE_PHONE,
            "name": "Ana Silva",
            "old_tag": "Cold",
            "tag": "Warm",
        }
        return {"sample": True, **data}, Subject()
    if kind == "verification.approved":
        data = {"phone": _SAMPLE_PHONE, "service": "", "status": "approved"}
        return {"sample": True, **data}, Subject()
    if kind in (EventType.DEVICE_ONLINE, EventType.DEVICE_OFFLINE):
        data = {
            "device_id": _SAMPLE_DEVICE,
            "name": "Pixel 7",
            "last_seen_at": utcnow().isoformat(),
        }
        return {"sample": True, **data}, Subject()
    status = kind.removeprefix("message.")
    inbound = status == "received"
    now = utcnow()
    message = Message(
        id=_SAMPLE_ID,
        batch_id=_SAMPLE_ID,
        direction=Direction.IN if inbound else Direction.OUT,
        phone=_SAMPLE_PHONE,
        sender=None,
        type="plain",
        text="A sample message",
        encoding="gsm7",
        segments=1,
        region="US",
        country="United States",
        price_micros=0,
        status=status,
        custom_id=None if inbound else "sample",
        extra=None,
        channel=None if inbound else "simulator",
        attempts=0 if inbound else 1,
        created_at=now,
        **{f"{MessageStatus(status).value}_at": now},
    )
    return {"sample": True, "status": status}, Subject(
        message=message, contact_name="Ana Silva" if inbound else None, contact_tag=None
    )


_SAMPLE_ID = "01JSAMPLE00000000000000000"
_SAMPLE_PHONE = "+14155550100"
_SAMPLE_DEVICE = "SampleDevice000000000"  # the app's 21 characters


@dataclass(frozen=True, slots=True)
class TestResult:
    type: str
    event_id: str
    status_code: int | None
    error: str | None


webhooks = WebhookService()
