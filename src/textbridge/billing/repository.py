"""All SQL for balances, ledger entries and prices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Account, LedgerEntry, Price


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def debit_if_covered(self, account_id: str, amount: int) -> int | None:
        """Take ``amount`` if the balance covers it, in one conditional statement.

        Returns the new balance, or ``None`` when the balance is too low (nothing changed)."""
        result = await self.session.execute(
            update(Account)
            .where(Account.id == account_id, Account.balance_micros >= amount)
            .values(balance_micros=Account.balance_micros - amount)
            .returning(Account.balance_micros)
        )
        return result.scalar_one_or_none()

    async def add_to_balance(self, account_id: str, amount: int) -> int:
        result = await self.session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(balance_micros=Account.balance_micros + amount)
            .returning(Account.balance_micros)
        )
        return result.scalar_one()

    async def balance(self, account_id: str) -> int:
        result = await self.session.execute(
            select(Account.balance_micros).where(Account.id == account_id)
        )
        return result.scalar_one()

    async def add_entries(self, entries: Iterable[dict[str, Any]]) -> None:
        rows = list(entries)
        if rows:
            await self.session.execute(insert(LedgerEntry), rows)

    async def entries(
        self, account_id: str, *, before: str | None, limit: int
    ) -> Sequence[LedgerEntry]:
        query = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
        if before is not None:
            query = query.where(LedgerEntry.id < before)
        result = await self.session.execute(query.order_by(LedgerEntry.id.desc()).limit(limit))
        return result.scalars().all()

    async def prices(self) -> dict[str, int]:
        result = await self.session.execute(select(Price.country, Price.price_micros))
        return {country: micros for country, micros in result.all()}

    async def set_price(self, country: str, micros: int, now: datetime) -> None:
        changed = await self.session.execute(
            update(Price)
            .where(Price.country == country)
            .values(price_micros=micros, updated_at=now)
            .returning(Price.country)
        )
        if changed.first() is None:
            await self.session.execute(
                insert(Price).values(country=country, price_micros=micros, updated_at=now)
            )

    async def delete_price(self, country: str) -> bool:
        result = await self.session.execute(
            delete(Price).where(Price.country == country).returning(Price.country)
        )
        return result.first() is not None
