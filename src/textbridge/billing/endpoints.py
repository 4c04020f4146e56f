"""Native API: the ledger and the price table."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from textbridge.api.deps import AdminDep, CallerDep, SessionDep, SettingsDep
from textbridge.api.pagination import PageDep
from textbridge.api.routing import make_router
from textbridge.billing.schemas import LedgerEntryOut, LedgerPage, PriceTable, SetPrice, price_table
from textbridge.billing.service import billing
from textbridge.kit.money import to_micros

router = make_router(prefix="/v1", tags=["billing"])

Country = Annotated[str, Path(pattern=r"^([A-Z]{2}|\*)$", description="ISO alpha-2 or *")]


@router.get("/account/ledger", response_model=LedgerPage)
async def ledger(session: SessionDep, caller: CallerDep, page: PageDep) -> LedgerPage:
    """Every change of the account's balance, newest first."""
    rows = await billing.ledger(session, caller.account_id, before=page.before, limit=page.fetch)
    return LedgerPage(
        data=[LedgerEntryOut.of(r) for r in rows[: page.limit]],
        next_cursor=page.next_cursor(rows),
    )


@router.get("/prices", response_model=PriceTable)
async def get_prices(session: SessionDep, caller: CallerDep, settings: SettingsDep) -> PriceTable:
    """Price per segment by destination country; ``*`` applies to every country not listed."""
    return price_table(settings.currency, await billing.prices(session))


@router.put("/prices/{country}", response_model=PriceTable)
async def set_price(
    country: Country, body: SetPrice, session: SessionDep, admin: AdminDep, settings: SettingsDep
) -> PriceTable:
    """Set the price per segment for a country (admin key)."""
    await billing.set_price(session, country, to_micros(body.price_per_segment))
    return price_table(settings.currency, await billing.prices(session))


@router.delete("/prices/{country}", response_model=PriceTable)
async def delete_price(
    country: Country, session: SessionDep, admin: AdminDep, settings: SettingsDep
) -> PriceTable:
    """Remove a country's price so the default (``*``) applies to it (admin key)."""
    await billing.delete_price(session, country)
    return price_table(settings.currency, await billing.prices(session))
