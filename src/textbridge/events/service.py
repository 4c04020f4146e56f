"""Events: what happened to an account's resources, recorded in the same transaction as the
change itself (no event without its change, no change without its event), together with a
webhook delivery for every endpoint that wants it (the outbox the sender works through).

Message events carry the status they are about (and the error, for a failure); the message
itself is rendered when the webhook is sent."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import JSON, String, Table, bindparam, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.db.base import UTCDateTime
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.models import Event, Message
from textbridge.webhooks.repository import fan_out

_TABLE = cast(Table, Event.__table__)


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_EXPIRED = "message.expired"
    CONTACT_TAG_CHANGED = "contact.tag_changed"
    VERIFICATION_APPROVED = "verification.approved"


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
    session: AsyncSession, type: EventType, message_ids: Sequence[str], data: dict[str, Any]
) -> None:
    """One ``type`` event per message, each in its message's account (read in the statement:
    the callers know only the ids), with the deliveries they cause."""
    if not message_ids:
        return
    now = utcnow()
    ids = {message_id: new_id() for message_id in message_ids}
    messages = Message.__table__
    statement = insert(_TABLE).from_select(
        ["id", "account_id", "type", "subject_id", "data", "created_at"],
        select(
            bindparam("e_id", type_=String),
            messages.c.account_id,
            literal(type.value, String),
            messages.c.id,
            bindparam("e_data", type_=JSON),
            bindparam("e_at", type_=UTCDateTime),
        ).where(messages.c.id == bindparam("e_message")),
    )
    connection = await session.connection()
    await connection.execute(
        statement,
        [
            {"e_id": event_id, "e_message": message_id, "e_data": data, "e_at": now}
            for message_id, event_id in ids.items()
        ],
    )
    await fan_out(session, list(ids.values()))


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
