"""All SQL for balances, ledger entries and prices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Account, LedgerEntry, Price

# Core tables: balance updates and ledger inserts sit on the send path, and Core statements
# skip the ORM's session synchronisation and bulk-persistence bookkeeping.
_ACCOUNTS = cast(Table, Account.__table__)
_LEDGER = cast(Table, LedgerEntry.__table__)


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def debit_if_covered(self, account_id: str, amount: int) -> int | None:
        """Take ``amount`` if the balance covers it, in one conditional statement.

        Returns the new balance, or ``None`` when the balance is too low (nothing changed)."""
        connection = await self.session.connection()
        result = await connection.execute(
            update(_ACCOUNTS)
            .where(_ACCOUNTS.c.id == account_id, _ACCOUNTS.c.balance_micros >= amount)
            .values(balance_micros=_ACCOUNTS.c.balance_micros - amount)
            .returning(_ACCOUNTS.c.balance_micros)
        )
        balance: int | None = result.scalar_one_or_none()
        return balance

    async def add_to_balance(self, account_id: str, amount: int) -> int:
        connection = await self.session.connection()
        result = await connection.execute(
            update(_ACCOUNTS)
            .where(_ACCOUNTS.c.id == account_id)
            .values(balance_micros=_ACCOUNTS.c.balance_micros + amount)
            .returning(_ACCOUNTS.c.balance_micros)
        )
        balance: int = result.scalar_one()
        return balance

    async def balance(self, account_id: str) -> int:
        result = await self.session.execute(
            select(Account.balance_micros).where(Account.id == account_id)
        )
        return result.scalar_one()

    async def add_entries(self, entries: Iterable[dict[str, Any]]) -> None:
        rows = list(entries)
        if rows:
            connection = await self.session.connection()
            await connection.execute(insert(_LEDGER), rows)

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

    async def add_prices(self, prices: dict[str, int], now: datetime) -> None:
        """Prices of countries that have none yet, in one statement."""
        await self.session.execute(
            insert(Price),
            [
                {"country": country, "price_micros": micros, "updated_at": now}
                for country, micros in prices.items()
            ],
        )

    async def delete_price(self, country: str) -> bool:
        result = await self.session.execute(
            delete(Price).where(Price.country == country).returning(Price.country)
        )
        return result.first() is not None
