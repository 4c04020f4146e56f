"""Native API: webhook endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from textbridge.api.deps import CallerDep, SessionDep, SettingsDep
from textbridge.api.pagination import PageDep
from textbridge.api.routing import make_router
from textbridge.kit.pagination import encode_cursor
from textbridge.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from textbridge.webhooks.service import event_types, webhooks

router = make_router(prefix="/v1/webhooks", tags=["webhooks"])

Text = Annotated[str, StringConstraints(max_length=2000)]
Format = Annotated[str, StringConstraints(max_length=16)]
EventTypes = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=20)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text = Field(
        description="http(s), at most 300 characters", examples=["https://example.com/hooks"]
    )
    events: EventTypes
    secret: Text | None = Field(default=None, description="8-128 characters; one is made if none")
    enabled: bool = True
    format: Format = Field(
        default="native",
        description="native: {id, type, created_at, data}; textlink: TextLink's bodies",
    )


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text | None = None
    events: (
        Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=20)]
        | None
    ) = None
    secret: Text | None = None
    enabled: bool | None = None
    format: Format | None = None


class WebhookOut(BaseModel):
    id: str
    url: str
    format: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    secret_prefix: str = Field(description="The secret itself is shown when it is set")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            format=endpoint.format,
            events=event_types(endpoint),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            secret_prefix=endpoint.secret[:10],
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class WebhookWithSecret(WebhookOut):
    secret: str


class AttemptOut(BaseModel):
    at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptOut:
        return cls(
            at=attempt.at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
        )


class DeliveryOut(BaseModel):
    event_id: str
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
        return cls(
            event_id=delivery.event_id,
            status=delivery.status,
            attempts=[AttemptOut.of(attempt) for attempt in attempts],
            next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            failed_at=delivery.failed_at,
        )


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None


def _with_secret(endpoint: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.post("", status_code=201, response_model=WebhookWithSecret)
async def create_webhook(
    body: WebhookIn, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> WebhookWithSecret:
    """A URL that gets the events listed, each signed with the secret (in this answer)."""
    endpoint = await webhooks.create(session, caller, body.model_dump(), settings)
    return _with_secret(endpoint)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(session: SessionDep, caller: CallerDep) -> list[WebhookOut]:
    return [WebhookOut.of(endpoint) for endpoint in await webhooks.endpoints(session, caller)]


class TextLinkHooks(BaseModel):
    """TextLink's four webhook URLs and their one secret, sent in each body."""

    model_config = ConfigDict(extra="forbid")

    received: Text | None = None
    sent: Text | None = None
    failed: Text | None = Field(default=None, description="failed and expired messages")
    tag: Text | None = Field(default=None, description="contact tag changes")
    secret: Text | None = None


@router.get("/textlink", response_model=TextLinkHooks)
async def get_textlink_hooks(session: SessionDep, caller: CallerDep) -> TextLinkHooks:
    """The endpoints in TextLink's format that stand for its four account-level URLs."""
    return _hooks(await webhooks.textlink_hooks(session, caller))


@router.put("/textlink", response_model=TextLinkHooks)
async def set_textlink_hooks(
    body: TextLinkHooks, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> TextLinkHooks:
    """Set all four at once, as TextLink's dashboard does: a missing or null URL removes its
    endpoint. Each is an ordinary endpoint too (listed, logged, tested, redelivered)."""
    urls = body.model_dump(exclude={"secret"})
    return _hooks(await webhooks.set_textlink_hooks(session, caller, urls, body.secret, settings))


def _hooks(hooks: dict[str, WebhookEndpoint]) -> TextLinkHooks:
    secret = next((hook.secret for hook in hooks.values()), None)
    return TextLinkHooks(**{name: hook.url for name, hook in hooks.items()}, secret=secret)


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: str, session: SessionDep, caller: CallerDep) -> WebhookOut:
    return WebhookOut.of(await webhooks.get(session, caller, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookWithSecret)
async def update_webhook(
    webhook_id: str,
    body: WebhookPatch,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
) -> WebhookWithSecret:
    """Change what is sent; enabling again clears the failure count."""
    endpoint = await webhooks.update(
        session, caller, webhook_id, body.model_dump(exclude_unset=True), settings
    )
    return _with_secret(endpoint)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, session: SessionDep, caller: CallerDep) -> Response:
    await webhooks.delete(session, caller, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    webhook_id: str, session: SessionDep, caller: CallerDep, page: PageDep
) -> DeliveryPage:
    """Newest event first, each with every attempt made."""
    deliveries, attempts = await webhooks.deliveries(
        session, caller, webhook_id, before=page.before, limit=page.fetch
    )
    shown = deliveries[: page.limit]
    more = len(deliveries) > page.limit
    return DeliveryPage(
        data=[DeliveryOut.of(d, attempts[d.event_id]) for d in shown],
        next_cursor=encode_cursor(shown[-1].event_id) if more else None,
    )


@router.post("/{webhook_id}/deliveries/{event_id}/redeliver", status_code=202)
async def redeliver(
    webhook_id: str, event_id: str, session: SessionDep, caller: CallerDep
) -> Response:
    """Send one delivery again, now (with a new day of retries)."""
    await webhooks.redeliver(session, caller, webhook_id, event_id)
    return Response(status_code=202)


class TestOut(BaseModel):
    type: str
    event_id: str
    status_code: int | None
    error: str | None


@router.post("/{webhook_id}/test", response_model=list[TestOut])
async def test_webhook(
    webhook_id: str, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> list[TestOut]:
    """A sample of each event the endpoint wants, sent now and signed, with what came back."""
    results = await webhooks.test(session, caller, webhook_id, settings)
    return [TestOut.model_validate(result, from_attributes=True) for result in results]
