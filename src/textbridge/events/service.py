"""Events: what happened to an account's resources, recorded in the same transaction as the
change itself (no event without its change, no change without its event), together with a
webhook delivery for every endpoint that wants it (the outbox the sender works through).

Message events carry the status they are about; the message itself is rendered when the
webhook is sent. They are recorded only for accounts with an endpoint that wants them; the
others (``contact.tag_changed``, ``verification.approved``, ``device.online`` and
``device.offline``) always."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.models import Event
from textbridge.webhooks.repository import fan_out, subscribed

_TABLE = cast(Table, Event.__table__)


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_EXPIRED = "message.expired"
    CONTACT_TAG_CHANGED = "contact.tag_changed"
    VERIFICATION_APPROVED = "verification.approved"
    DEVICE_ONLINE = "device.online"
    DEVICE_OFFLINE = "device.offline"


def event(
    *, account_id: str, type: EventType, subject_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """An event row, for ``record``."""
    return {
        "id": new_id(),
        "account_id": account_id,
        "type": type,
        "subject_id": subject_id,
        "data": data,
        "created_at": utcnow(),
    }


async def record(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Write events in the session's transaction: the one that makes the change they tell."""
    if events:
        connection = await session.connection()
        await connection.execute(insert(_TABLE), list(events))
        await fan_out(session, [event["id"] for event in events])


async def record_for_messages(
    session: AsyncSession,
    type: EventType,
    messages: Sequence[tuple[str, str]],
    data: dict[str, Any],
) -> None:
    """One ``type`` event per message, given as (message id, account id), for the accounts
    with a webhook endpoint that wants it: a message goes through several statuses, and
    recording each for nobody cost a fifth of the end-to-end throughput (docs/benchmarks.md).
    Whether anyone wants them is read in this transaction, so an endpoint gets every event
    from its creation on."""
    wanted = await subscribed(session, {account_id for _, account_id in messages}, type.value)
    if not wanted:
        return
    await record(
        session,
        [
            event(account_id=account_id, type=type, subject_id=message_id, data=data)
            for message_id, account_id in messages
            if account_id in wanted
        ],
    )


async def search(
    session: AsyncSession,
    account_id: str,
    *,
    type: EventType | None,
    subject_id: str | None,
    before: str | None,
    limit: int,
) -> Sequence[Event]:
    """Newest first."""
    query = select(Event).where(Event.account_id == account_id)
    if type is not None:
        query = query.where(Event.type == type)
    if subject_id is not None:
        query = query.where(Event.subject_id == subject_id)
    if before is not None:
        query = query.where(Event.id < before)
    result = await session.execute(query.order_by(Event.id.desc()).limit(limit))
    return result.scalars().all()
