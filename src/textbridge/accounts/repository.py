"""All SQL for accounts and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import Account, ApiKey


@dataclass(frozen=True, slots=True)
class KeyOwner:
    key_id: str
    account_id: str
    account_name: str
    is_admin: bool
    parent_id: str | None


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: str) -> Account | None:
        return await self.session.get(Account, account_id)

    async def get_by_name(self, name: str) -> Account | None:
        result = await self.session.execute(select(Account).where(Account.name == name))
        return result.scalar_one_or_none()

    async def get_admin(self) -> Account | None:
        result = await self.session.execute(
            select(Account).where(Account.is_admin.is_(True)).order_by(Account.id).limit(1)
        )
        return result.scalar_one_or_none()

    async def children(self, parent_id: str) -> Sequence[Account]:
        result = await self.session.execute(
            select(Account).where(Account.parent_id == parent_id).order_by(Account.id)
        )
        return result.scalars().all()

    def add(self, account: Account) -> None:
        self.session.add(account)


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def owner_of(self, key_hash: str) -> KeyOwner | None:
        result = await self.session.execute(
            select(ApiKey.id, Account.id, Account.name, Account.is_admin, Account.parent_id)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
        row = result.one_or_none()
        return None if row is None else KeyOwner(*row)

    async def exists(self, key_hash: str) -> bool:
        result = await self.session.execute(select(ApiKey.id).where(ApiKey.key_hash == key_hash))
        return result.first() is not None

    async def list_for(self, account_id: str) -> Sequence[ApiKey]:
        result = await self.session.execute(
            select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id)
        )
        return result.scalars().all()

    async def revoke(self, *, account_id: str, key_id: str, now: datetime) -> ApiKey | None:
        key = await self.session.get(ApiKey, key_id)
        if key is None or key.account_id != account_id:
            return None
        if key.revoked_at is None:
            await self.session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=now)
            )
            key.revoked_at = now
        return key

    def add(self, key: ApiKey) -> None:
        self.session.add(key)
