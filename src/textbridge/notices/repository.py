"""All SQL for notices: written with the change they tell of, read by the mailer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Notice


class NoticeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, notice: Notice) -> None:
        self.session.add(notice)

    async def unsent(self, limit: int) -> Sequence[Notice]:
        """Oldest first."""
        result = await self.session.execute(
            select(Notice).where(Notice.sent_at.is_(None)).order_by(Notice.id).limit(limit)
        )
        return result.scalars().all()

    async def last_sent(self, account_ids: set[str]) -> dict[str, datetime]:
        """When each account was last emailed."""
        result = await self.session.execute(
            select(Notice.account_id, func.max(Notice.sent_at))
            .where(Notice.account_id.in_(account_ids), Notice.sent_at.is_not(None))
            .group_by(Notice.account_id)
        )
        return {account_id: at for account_id, at in result.all() if at is not None}

    async def mark_sent(self, ids: Sequence[str], now: datetime) -> None:
        await self.session.execute(update(Notice).where(Notice.id.in_(ids)).values(sent_at=now))
