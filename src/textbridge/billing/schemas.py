"""The native API's ledger and price shapes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from textbridge.kit.money import from_micros
from textbridge.models import LedgerEntry


class LedgerEntryOut(BaseModel):
    id: str
    kind: str
    amount: float
    balance_after: float
    reference: str | None
    description: str
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerEntryOut:
        return cls(
            id=entry.id,
            kind=entry.kind,
            amount=from_micros(entry.amount_micros),
            balance_after=from_micros(entry.balance_after_micros),
            reference=entry.reference,
            description=entry.description,
            created_at=entry.created_at,
        )


class LedgerPage(BaseModel):
    data: list[LedgerEntryOut]
    next_cursor: str | None


class PriceOut(BaseModel):
    country: str = Field(description="ISO 3166-1 alpha-2 code, or * for every other country")
    price_per_segment: float


class PriceTable(BaseModel):
    currency: str
    prices: list[PriceOut]


class SetPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_per_segment: Annotated[
        Decimal, Field(ge=0, le=Decimal(1000), max_digits=12, decimal_places=6)
    ]


def price_table(currency: str, prices: dict[str, int]) -> PriceTable:
    return PriceTable(
        currency=currency,
        prices=[
            PriceOut(country=country, price_per_segment=from_micros(micros))
            for country, micros in sorted(prices.items())
        ],
    )
