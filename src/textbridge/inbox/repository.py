"""All SQL for conversations: one row per account and phone, upserted as messages are accepted
and received, and read joined with the contact of that phone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.db.upsert import insert_on_conflict
from textbridge.models import Contact, Conversation, Direction

_TABLE = cast(Table, Conversation.__table__)
_PREVIEW = 200
_LAST = ("last_message_id", "last_direction", "last_text", "last_message_at")


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "phone": row["phone"],
        "last_message_id": row["id"],
        "last_direction": row["direction"],
        "last_text": row["text"][:_PREVIEW],
        "last_message_at": row["created_at"],
        "unread": 1 if row["direction"] == Direction.IN else 0,
    }


def _with_contact() -> Select[Conversation, Contact]:
    return select(Conversation, Contact).outerjoin(
        Contact,
        and_(Contact.account_id == Conversation.account_id, Contact.phone == Conversation.phone),
    )


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_outbound(self, messages: Iterable[dict[str, Any]]) -> None:
        """Bring the conversations of these new outbound messages up to date."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in messages:
            key = (row["account_id"], row["phone"])
            current = latest.get(key)
            if current is None or row["id"] > current["id"]:
                latest[key] = row
        # In key order: two transactions touching the same conversations lock them in the
        # same order, so they wait for each other instead of deadlocking (PostgreSQL).
        summaries = [_summary(latest[key]) for key in sorted(latest)]
        if not summaries:
            return
        statement = insert_on_conflict(self.session, _TABLE)
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.account_id, _TABLE.c.phone],
            set_={name: statement.excluded[name] for name in _LAST},
            where=statement.excluded.last_message_id > _TABLE.c.last_message_id,
        )
        # One statement, many parameter sets: compiled once, run by the driver's executemany
        # (a multi-row VALUES of 500 rows was compiled afresh each time: 8 s per 100,000).
        connection = await self.session.connection()
        await connection.execute(statement, summaries)

    async def record_inbound(self, message: dict[str, Any]) -> None:
        """An inbound message: the newest of its conversation, and one more unread."""
        statement = insert_on_conflict(self.session, _TABLE)
        await self.session.execute(
            statement.values(_summary(message)).on_conflict_do_update(
                index_elements=[_TABLE.c.account_id, _TABLE.c.phone],
                set_={
                    **{name: statement.excluded[name] for name in _LAST},
                    "unread": _TABLE.c.unread + 1,
                },
            )
        )

    async def search(
        self, account_id: str, *, unread_only: bool, before: str | None, limit: int
    ) -> Sequence[Row[Conversation, Contact | None]]:
        """Latest first, each with the contact of its phone, if there is one."""
        query = _with_contact().where(Conversation.account_id == account_id)
        if unread_only:
            query = query.where(Conversation.unread > 0)
        if before is not None:
            query = query.where(Conversation.last_message_id < before)
        result = await self.session.execute(
            query.order_by(Conversation.last_message_id.desc()).limit(limit)
        )
        return result.all()

    async def get(self, account_id: str, phone: str) -> Row[Conversation, Contact | None] | None:
        rows = await self.session.execute(
            _with_contact()
            .where(Conversation.account_id == account_id, Conversation.phone == phone)
            .execution_options(populate_existing=True)  # after mark_read's UPDATE
        )
        return rows.one_or_none()

    async def mark_read(self, account_id: str, phone: str) -> None:
        await self.session.execute(
            update(_TABLE)
            .where(_TABLE.c.account_id == account_id, _TABLE.c.phone == phone)
            .values(unread=0)
        )
