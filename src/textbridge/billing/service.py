"""Money moves here and only here: every balance change writes its ledger entry in the same
transaction, and the balance never goes below zero."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.billing.repository import BillingRepository
from textbridge.db import Database
from textbridge.errors import InsufficientBalance, NotFound, ValidationFailed
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.kit.money import from_micros, to_micros
from textbridge.kit.phone import is_region
from textbridge.models import DEFAULT_COUNTRY, LedgerEntry, LedgerKind

# Per segment, in the currency's units. Editable through the API; these seed an empty table.
DEFAULT_PRICES: dict[str, str] = {
    DEFAULT_COUNTRY: "0.05",
    "US": "0.0079",
    "CA": "0.0079",
    "GB": "0.04",
    "DE": "0.08",
    "FR": "0.07",
    "NL": "0.09",
    "RS": "0.15",
    "IN": "0.003",
    "BR": "0.02",
}

_PRICE_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Charge:
    """One debit among several written together (see ``charge_many``)."""

    account_id: str
    amount: int  # micros
    reference: str
    description: str


@dataclass(frozen=True, slots=True)
class Refund:
    account_id: str
    message_id: str
    amount: int  # micros
    reason: str


class BillingService:
    def __init__(self) -> None:
        # The price table is read on every send; a few seconds of staleness across processes
        # is fine, and an update in this process clears it at once.
        self._prices: dict[str, int] | None = None
        self._prices_loaded_at = 0.0

    def forget(self) -> None:
        """Drop cached state (a new runtime starts cold)."""
        self._prices = None

    async def price_table(self, db: Database) -> dict[str, int]:
        """The price table, read through a short transaction of its own when the cache is
        stale (the send path holds no session of its own while it waits to be written)."""
        now = time.monotonic()
        if self._prices is None or now - self._prices_loaded_at > _PRICE_CACHE_SECONDS:
            async with db.transaction() as session:
                self._prices = await BillingRepository(session).prices()
            self._prices_loaded_at = now
        return self._prices

    async def prices(self, session: AsyncSession) -> dict[str, int]:
        """The price table as stored now (uncached)."""
        return await BillingRepository(session).prices()

    async def ensure_default_prices(self, session: AsyncSession) -> None:
        repository = BillingRepository(session)
        if not await repository.prices():
            await repository.add_prices(
                {country: to_micros(price) for country, price in DEFAULT_PRICES.items()},
                utcnow(),
            )
        self._prices = None

    async def set_price(self, session: AsyncSession, country: str, micros: int) -> None:
        if country != DEFAULT_COUNTRY and not is_region(country):
            # No number would ever be priced by it.
            raise ValidationFailed(f"{country} is not a country code", field="country")
        await BillingRepository(session).set_price(country, micros, utcnow())
        self._prices = None

    async def delete_price(self, session: AsyncSession, country: str) -> None:
        if country == DEFAULT_COUNTRY:
            raise ValidationFailed(
                "the default price can be changed but not removed", field="country"
            )
        if not await BillingRepository(session).delete_price(country):
            raise NotFound(f"no price for {country}", field="country")
        self._prices = None

    @staticmethod
    def unit_price(prices: dict[str, int], region: str) -> int:
        return prices.get(region, prices.get(DEFAULT_COUNTRY, 0))

    async def charge_many(
        self, session: AsyncSession, charges: Sequence[Charge]
    ) -> list[InsufficientBalance | None]:
        """Debit several charges in one go, each all or nothing: the answer says, per charge,
        ``None`` (debited) or the ``InsufficientBalance`` it failed with.

        One conditional update per account covers all its charges when the balance allows
        (the usual case); otherwise that account's charges are tried one by one in order."""
        repository = BillingRepository(session)
        outcomes: list[InsufficientBalance | None] = [None] * len(charges)
        by_account: dict[str, list[int]] = defaultdict(list)
        for index, charge in enumerate(charges):
            by_account[charge.account_id].append(index)
        entries = []
        for account_id, indexes in sorted(by_account.items()):
            total = sum(charges[i].amount for i in indexes)
            balance = await repository.debit_if_covered(account_id, total)
            if balance is not None:
                # Walk back from the final balance so each entry states the balance after it.
                after = balance + total
                for i in indexes:
                    after -= charges[i].amount
                    entries.append(_debit_entry(charges[i], after))
                continue
            for i in indexes:
                balance = await repository.debit_if_covered(account_id, charges[i].amount)
                if balance is None:
                    outcomes[i] = await self._shortfall(repository, account_id, charges[i].amount)
                else:
                    entries.append(_debit_entry(charges[i], balance))
        await repository.add_entries(entries)
        return outcomes

    async def shortfall(
        self, session: AsyncSession, account_id: str, amount: int
    ) -> InsufficientBalance | None:
        """What a charge of ``amount`` would fail with now, if anything; a look, not a debit
        (only ``charge_many`` decides)."""
        repository = BillingRepository(session)
        if await repository.balance(account_id) >= amount:
            return None
        return await self._shortfall(repository, account_id, amount)

    @staticmethod
    async def _shortfall(
        repository: BillingRepository, account_id: str, amount: int
    ) -> InsufficientBalance:
        available = await repository.balance(account_id)
        return InsufficientBalance(
            f"balance {from_micros(available)} does not cover the price {from_micros(amount)}"
        )

    async def credit(
        self,
        session: AsyncSession,
        *,
        account_id: str,
        amount: int,
        kind: LedgerKind,
        reference: str | None,
        description: str,
    ) -> int:
        repository = BillingRepository(session)
        balance = await repository.add_to_balance(account_id, amount)
        await repository.add_entries(
            [_entry(account_id, kind, amount, balance, reference, description)]
        )
        return balance

    async def transfer(
        self, session: AsyncSession, *, source_id: str, target_id: str, amount: int
    ) -> int:
        """Move money from an account to another; returns the target's new balance."""
        repository = BillingRepository(session)
        source_balance = await repository.debit_if_covered(source_id, amount)
        if source_balance is None:
            raise InsufficientBalance(
                f"balance {from_micros(await repository.balance(source_id))} does not cover "
                f"{from_micros(amount)}",
                field="amount",
            )
        target_balance = await repository.add_to_balance(target_id, amount)
        await repository.add_entries(
            [
                _entry(source_id, LedgerKind.TRANSFER_OUT, -amount, source_balance, target_id, ""),
                _entry(target_id, LedgerKind.TRANSFER_IN, amount, target_balance, source_id, ""),
            ]
        )
        return target_balance

    async def refund(self, session: AsyncSession, refunds: Iterable[Refund]) -> None:
        """Give back the price of messages that will never be delivered: one balance update
        per account, one ledger entry per message."""
        by_account: dict[str, list[Refund]] = defaultdict(list)
        for refund in refunds:
            if refund.amount > 0:
                by_account[refund.account_id].append(refund)
        repository = BillingRepository(session)
        for account_id, items in sorted(by_account.items()):
            balance = await repository.add_to_balance(account_id, sum(r.amount for r in items))
            # Walk back from the final balance so each entry states the balance after it.
            entries = []
            for item in reversed(items):
                entries.append(
                    _entry(
                        account_id,
                        LedgerKind.REFUND,
                        item.amount,
                        balance,
                        item.message_id,
                        f"message {item.reason}",
                    )
                )
                balance -= item.amount
            entries.reverse()
            await repository.add_entries(entries)

    async def ledger(
        self, session: AsyncSession, account_id: str, *, before: str | None, limit: int
    ) -> Sequence[LedgerEntry]:
        return await BillingRepository(session).entries(account_id, before=before, limit=limit)

    async def balance(self, session: AsyncSession, account_id: str) -> int:
        return await BillingRepository(session).balance(account_id)


def _debit_entry(charge: Charge, balance_after: int) -> dict[str, object]:
    return _entry(
        charge.account_id,
        LedgerKind.DEBIT,
        -charge.amount,
        balance_after,
        charge.reference,
        charge.description,
    )


def _entry(
    account_id: str,
    kind: LedgerKind,
    amount: int,
    balance_after: int,
    reference: str | None,
    description: str,
) -> dict[str, object]:
    return {
        "id": new_id(),
        "account_id": account_id,
        "kind": kind.value,
        "amount_micros": amount,
        "balance_after_micros": balance_after,
        "reference": reference,
        "description": description,
        "created_at": utcnow(),
    }


billing = BillingService()
