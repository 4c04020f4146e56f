"""All SQL for conversations: one row per account and phone, read joined with the contact of
that phone. The database keeps them up to date: a trigger on ``messages`` (migration 0004)
upserts the conversation of every message inserted, accepted or received."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Row, Select, Table, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Contact, Conversation

_TABLE = cast(Table, Conversation.__table__)


def _with_contact() -> Select[Conversation, Contact]:
    return select(Conversation, Contact).outerjoin(
        Contact,
        and_(Contact.account_id == Conversation.account_id, Contact.phone == Conversation.phone),
    )


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
