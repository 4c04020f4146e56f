"""All SQL for webhooks: endpoints, the deliveries owed to them (the outbox), and the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import (
    Account,
    Contact,
    Event,
    Message,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
_EVENTS = cast(Table, Event.__table__)
_ATTEMPTS = cast(Table, WebhookAttempt.__table__)


async def fan_out(session: AsyncSession, event_ids: Sequence[str]) -> None:
    """A delivery for every enabled endpoint of the event's account that wants its type: one
    statement, in the transaction that records the events."""
    if not event_ids:
        return
    wanted = (
        select(
            _EVENTS.c.id,
            _ENDPOINTS.c.id,
            _EVENTS.c.account_id,
            _EVENTS.c.subject_id,
            literal("pending"),
            literal(0),
            _EVENTS.c.created_at,
            _EVENTS.c.created_at,
        )
        .join(
            _ENDPOINTS,
            and_(
                _ENDPOINTS.c.account_id == _EVENTS.c.account_id,
                _ENDPOINTS.c.enabled.is_(True),
                _ENDPOINTS.c.events.like(literal("%,") + _EVENTS.c.type + literal(",%")),
            ),
        )
        .where(_EVENTS.c.id.in_(event_ids))
    )
    columns = [
        "event_id",
        "endpoint_id",
        "account_id",
        "subject_id",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    await session.execute(insert(_DELIVERIES).from_select(columns, wanted))


async def subscribed(session: AsyncSession, account_ids: set[str], kind: str) -> set[str]:
    """Which of the accounts have an enabled endpoint that wants ``kind``."""
    if not account_ids:
        return set()
    result = await session.execute(
        select(_ENDPOINTS.c.account_id)
        .where(
            _ENDPOINTS.c.account_id.in_(account_ids),
            _ENDPOINTS.c.enabled.is_(True),
            _ENDPOINTS.c.events.contains(f",{kind},", autoescape=True),
        )
        .distinct()
    )
    return set(result.scalars())


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, endpoint: WebhookEndpoint) -> None:
        self.session.add(endpoint)

    async def get(self, account_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        result = await self.session.execute(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.account_id == account_id
            )
        )
        return result.scalar_one_or_none()

    async def endpoints(self, account_id: str) -> Sequence[WebhookEndpoint]:
        result = await self.session.execute(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id)
            .order_by(WebhookEndpoint.id)
        )
        return result.scalars().all()

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        await self.session.delete(endpoint)

    async def deliveries(
        self, endpoint_id: str, *, before: str | None, limit: int
    ) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(WebhookDelivery.event_id < before)
        result = await self.session.execute(
            query.order_by(WebhookDelivery.event_id.desc()).limit(limit)
        )
        return result.scalars().all()

    async def attempts(self, endpoint_id: str, event_ids: Sequence[str]) -> list[WebhookAttempt]:
        if not event_ids:
            return []
        result = await self.session.execute(
            select(WebhookAttempt)
            .where(
                WebhookAttempt.endpoint_id == endpoint_id, WebhookAttempt.event_id.in_(event_ids)
            )
            .order_by(WebhookAttempt.id)
        )
        return list(result.scalars())

    # The sender ----------------------------------------------------------------------------

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Any]:
        """Due deliveries, leased to the caller; oldest events first. Only the first pending
        delivery of each resource at each endpoint is due: "delivered" never overtakes "sent"
        for one message, while other resources' events go on."""
        earlier = _DELIVERIES.alias("earlier")
        due = (
            select(
                _DELIVERIES.c.event_id,
                _DELIVERIES.c.endpoint_id,
                _DELIVERIES.c.account_id,
                _DELIVERIES.c.subject_id,
                _DELIVERIES.c.attempts,
                _DELIVERIES.c.created_at,
                _EVENTS.c.type,
                _EVENTS.c.data,
                _EVENTS.c.created_at.label("event_at"),
                _ENDPOINTS.c.url,
                _ENDPOINTS.c.secret,
                _ENDPOINTS.c.format,
            )
            .join(_EVENTS, _EVENTS.c.id == _DELIVERIES.c.event_id)
            # A disabled endpoint's deliveries wait until it is enabled again.
            .join(
                _ENDPOINTS,
                and_(
                    _ENDPOINTS.c.id == _DELIVERIES.c.endpoint_id,
                    _ENDPOINTS.c.enabled.is_(True),
                ),
            )
            .where(
                _DELIVERIES.c.status == "pending",
                _DELIVERIES.c.next_attempt_at <= now,
                or_(
                    _DELIVERIES.c.lease_expires_at.is_(None),
                    _DELIVERIES.c.lease_expires_at < now,
                ),
                ~select(earlier.c.event_id)
                .where(
                    earlier.c.endpoint_id == _DELIVERIES.c.endpoint_id,
                    earlier.c.subject_id == _DELIVERIES.c.subject_id,
                    earlier.c.status == "pending",
                    earlier.c.event_id < _DELIVERIES.c.event_id,
                )
                .exists(),
            )
            .order_by(_DELIVERIES.c.event_id)
            .limit(limit)
        )
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=_DELIVERIES)
        rows = (await self.session.execute(due)).all()
        if rows:
            await self.session.execute(
                update(_DELIVERIES)
                .where(
                    or_(
                        *(
                            and_(
                                _DELIVERIES.c.event_id == row.event_id,
                                _DELIVERIES.c.endpoint_id == row.endpoint_id,
                            )
                            for row in rows
                        )
                    )
                )
                .values(lease_expires_at=lease_until)
            )
        return rows

    async def messages(self, ids: Sequence[str]) -> dict[str, Message]:
        if not ids:
            return {}
        result = await self.session.execute(select(Message).where(Message.id.in_(ids)))
        return {message.id: message for message in result.scalars()}

    async def contacts(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Contact]:
        """Contacts by (account id, phone)."""
        if not keys:
            return {}
        result = await self.session.execute(
            select(Contact).where(tuple_(Contact.account_id, Contact.phone).in_(keys))
        )
        return {(contact.account_id, contact.phone): contact for contact in result.scalars()}

    async def sub_accounts(self, account_ids: set[str]) -> set[str]:
        """Which of the accounts have a parent."""
        if not account_ids:
            return set()
        result = await self.session.execute(
            select(Account.id).where(Account.id.in_(account_ids), Account.parent_id.is_not(None))
        )
        return set(result.scalars())

    async def settle_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """What became of claimed deliveries, by (``b_event_id``, ``b_endpoint_id``); one
        more attempt each. Only a pending delivery changes: one redelivered by hand meanwhile
        is pending too, and the answer just received counts for it."""
        if not rows:
            return
        connection = await self.session.connection()
        await connection.execute(
            update(_DELIVERIES)
            .where(
                _DELIVERIES.c.event_id == bindparam("b_event_id"),
                _DELIVERIES.c.endpoint_id == bindparam("b_endpoint_id"),
                _DELIVERIES.c.status == "pending",
            )
            .values(
                status=bindparam("status"),
                attempts=_DELIVERIES.c.attempts + 1,
                next_attempt_at=bindparam("next_attempt_at"),
                lease_expires_at=None,
                last_status_code=bindparam("last_status_code"),
                last_error=bindparam("last_error"),
                delivered_at=bindparam("delivered_at"),
                failed_at=bindparam("failed_at"),
            ),
            list(rows),
        )

    async def redeliver(self, endpoint_id: str, event_id: str, now: datetime) -> bool:
        """Due again now, whatever became of it; answers whether there is such a delivery."""
        result = await self.session.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.endpoint_id == endpoint_id, _DELIVERIES.c.event_id == event_id)
            .values(
                status="pending",
                next_attempt_at=now,
                lease_expires_at=None,
                delivered_at=None,
                failed_at=None,
                created_at=now,  # a new day of retries
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def log_many(self, attempts: Sequence[dict[str, Any]]) -> None:
        if attempts:
            connection = await self.session.connection()
            await connection.execute(insert(_ATTEMPTS), list(attempts))

    async def failures(self, endpoint_ids: set[str]) -> dict[str, int]:
        """Deliveries failed for good in a row, per endpoint."""
        result = await self.session.execute(
            select(_ENDPOINTS.c.id, _ENDPOINTS.c.failures).where(_ENDPOINTS.c.id.in_(endpoint_ids))
        )
        return {endpoint_id: failures for endpoint_id, failures in result.all()}

    async def set_failures(self, endpoint_id: str, failures: int) -> None:
        await self.session.execute(
            update(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id).values(failures=failures)
        )

    async def disable(self, endpoint_id: str, reason: str, now: datetime) -> None:
        await self.session.execute(
            update(_ENDPOINTS)
            .where(_ENDPOINTS.c.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
