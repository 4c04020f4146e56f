"""The database layer: retried transactions, the SQLite connection, UTC times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.db import Database
from textbridge.models import Price


async def test_run_retries_work_that_lost_a_deadlock(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: no deadlocks")
    async with db.transaction() as session:
        for country in ("AA", "BB"):
            session.add(Price(country=country, price_micros=1, updated_at=datetime.now(UTC)))
    first_locked = asyncio.Event()
    second_locked = asyncio.Event()
    runs = 0

    async def touch(session: AsyncSession, country: str) -> None:
        await session.execute(
            update(Price)
            .where(Price.country == country)
            .values(price_micros=Price.price_micros + 1)
        )

    async def holder() -> None:
        # Locks AA, then waits for BB; patient, so the other side is the one PostgreSQL picks.
        async with db.transaction() as session:
            await session.execute(text("SET LOCAL deadlock_timeout = '5s'"))
            await touch(session, "AA")
            first_locked.set()
            await second_locked.wait()
            await touch(session, "BB")

    async def contender(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await session.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
        await touch(session, "BB")
        if runs == 1:
            second_locked.set()
        await touch(session, "AA")

    holder_task = asyncio.create_task(holder())
    await first_locked.wait()
    await db.run(contender)
    await holder_task
    assert runs == 2  # the deadlock victim was run again, and both committed
    async with db.transaction() as session:
        prices = dict((await session.execute(select(Price.country, Price.price_micros))).all())
    assert (prices["AA"], prices["BB"]) == (3, 3)


async def test_run_does_not_retry_a_real_error(db: Database) -> None:
    runs = 0

    async def broken(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        await db.run(broken)
    assert runs == 1


async def test_times_come_back_in_utc_whatever_zone_they_went_in(db: Database) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    async with db.transaction() as session:
        session.add(Price(country="ZZ", price_micros=1, updated_at=moment))
    async with db.transaction() as session:
        stored = (
            await session.execute(select(Price.updated_at).where(Price.country == "ZZ"))
        ).scalar_one()
        earlier = (
            (
                await session.execute(
                    select(Price.country).where(
                        Price.updated_at < moment + timedelta(microseconds=1)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert stored == moment
    assert stored.tzinfo == UTC
    assert "ZZ" in earlier


async def test_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with db.transaction() as session:
            session.add(Price(country="ZY", price_micros=1, updated_at=datetime(2026, 1, 1)))
