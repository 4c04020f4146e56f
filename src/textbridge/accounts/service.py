"""Accounts, sub-accounts, API keys and who a request is."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.repository import AccountRepository, ApiKeyRepository
from textbridge.accounts.schemas import AccountSettings
from textbridge.billing.service import billing
from textbridge.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.kit.phone import is_region
from textbridge.kit.secrets import display_prefix, hash_api_key, new_api_key
from textbridge.models import Account, ApiKey, LedgerKind

_AUTH_CACHE_SECONDS = 5.0
_AUTH_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: an account, through one of its keys."""

    account_id: str
    account_name: str
    key_id: str
    is_admin: bool
    parent_id: str | None


class AccountService:
    def __init__(self) -> None:
        # key digest -> (principal, loaded at). Authentication runs on every request; a revoked
        # key stops working at once in this process and within seconds in the others.
        self._auth_cache: dict[str, tuple[Principal, float]] = {}

    def forget(self) -> None:
        """Drop cached state (a new runtime starts cold)."""
        self._auth_cache.clear()

    def cached(self, raw_key: str) -> Principal | None:
        """The key's owner if it was authenticated in the last few seconds."""
        cached = self._auth_cache.get(hash_api_key(raw_key))
        if cached is not None and time.monotonic() - cached[1] < _AUTH_CACHE_SECONDS:
            return cached[0]
        return None

    async def authenticate(self, session: AsyncSession, raw_key: str) -> Principal:
        digest = hash_api_key(raw_key)
        cached = self._auth_cache.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[1] < _AUTH_CACHE_SECONDS:
            return cached[0]
        owner = await ApiKeyRepository(session).owner_of(digest)
        if owner is None:
            self._auth_cache.pop(digest, None)
            raise Unauthorized("invalid API key")
        principal = Principal(
            account_id=owner.account_id,
            account_name=owner.account_name,
            key_id=owner.key_id,
            is_admin=owner.is_admin,
            parent_id=owner.parent_id,
        )
        if len(self._auth_cache) >= _AUTH_CACHE_MAX:
            self._auth_cache.clear()
        self._auth_cache[digest] = (principal, now)
        return principal

    async def create(
        self,
        session: AsyncSession,
        *,
        name: str,
        parent_id: str | None,
        is_admin: bool = False,
        raw_key: str | None = None,
    ) -> tuple[Account, str]:
        """Create an account with a first API key (``raw_key`` or a new one); returns the
        account and the raw key."""
        repository = AccountRepository(session)
        if await repository.get_by_name(name) is not None:
            raise Conflict(f"an account named {name!r} exists already", field="name")
        account = Account(
            id=new_id(),
            name=name,
            parent_id=parent_id,
            is_admin=is_admin,
            balance_micros=0,
            settings={},
            created_at=utcnow(),
        )
        repository.add(account)
        await session.flush()
        _, raw_key = await self.create_key(
            session, account_id=account.id, name="default", raw_key=raw_key
        )
        return account, raw_key

    async def create_sub_account(
        self, session: AsyncSession, caller: Principal, *, name: str, balance: int
    ) -> tuple[Account, str]:
        """A sub-account of the caller, funded from the caller's balance."""
        account, raw_key = await self.create(session, name=name, parent_id=caller.account_id)
        if balance:
            account.balance_micros = await billing.transfer(
                session, source_id=caller.account_id, target_id=account.id, amount=balance
            )
        return account, raw_key

    async def mint(self, session: AsyncSession, account: Account, amount: int) -> None:
        """Operator money out of thin air (CLI and the admin's first balance only)."""
        account.balance_micros = await billing.credit(
            session,
            account_id=account.id,
            amount=amount,
            kind=LedgerKind.TOPUP,
            reference=None,
            description="operator top-up",
        )

    async def top_up(
        self, session: AsyncSession, caller: Principal, *, account_id: str, amount: int
    ) -> Account:
        """The parent (or the admin) moves money from its own balance into an account."""
        account = await self.get_visible(session, caller, account_id)
        if account.id == caller.account_id:
            raise Forbidden("an account cannot top itself up", field="account_id")
        if account.parent_id != caller.account_id and not caller.is_admin:
            raise Forbidden("only the parent account or the admin can top up an account")
        account.balance_micros = await billing.transfer(
            session, source_id=caller.account_id, target_id=account.id, amount=amount
        )
        return account

    async def update_settings(
        self, session: AsyncSession, caller: Principal, changes: dict[str, Any]
    ) -> Account:
        """Merge ``changes`` (already typed by ``AccountSettingsPatch``) into the account's
        settings."""
        account = await self.get(session, caller.account_id)
        merged = AccountSettings.model_validate({**(account.settings or {}), **changes})
        overlap = set(merged.opt_out_keywords) & set(merged.opt_in_keywords)
        if overlap:
            raise ValidationFailed(
                f"{sorted(overlap)[0]} cannot both opt out and opt in", field="opt_in_keywords"
            )
        for index, region in enumerate(merged.verify_countries):
            if not is_region(region):
                raise ValidationFailed(
                    f"{region} is not a region phone numbers belong to",
                    field=f"verify_countries[{index}]",
                )
        account.settings = merged.model_dump()
        await session.flush()
        return account

    async def get(self, session: AsyncSession, account_id: str) -> Account:
        account = await AccountRepository(session).get(account_id)
        if account is None:
            raise NotFound(f"no account {account_id}")
        return account

    async def get_by_name(self, session: AsyncSession, name: str) -> Account:
        account = await AccountRepository(session).get_by_name(name)
        if account is None:
            raise NotFound(f"no account named {name!r}", field="name")
        return account

    async def get_admin(self, session: AsyncSession) -> Account | None:
        return await AccountRepository(session).get_admin()

    async def get_visible(
        self, session: AsyncSession, caller: Principal, account_id: str
    ) -> Account:
        """The account itself, one of its sub-accounts, or anything for the admin; else 404."""
        account = await AccountRepository(session).get(account_id)
        if account is None or not (
            caller.is_admin
            or account.id == caller.account_id
            or account.parent_id == caller.account_id
        ):
            raise NotFound(f"no account {account_id}", field="account_id")
        return account

    async def children(self, session: AsyncSession, caller: Principal) -> Sequence[Account]:
        return await AccountRepository(session).children(caller.account_id)

    async def create_key(
        self, session: AsyncSession, *, account_id: str, name: str, raw_key: str | None = None
    ) -> tuple[ApiKey, str]:
        raw_key = raw_key or new_api_key()
        if len(raw_key) < 16:
            raise ValidationFailed("an API key must be at least 16 characters", field="key")
        repository = ApiKeyRepository(session)
        if await repository.exists(hash_api_key(raw_key)):
            raise Conflict("that API key is in use already", field="key")
        key = ApiKey(
            id=new_id(),
            account_id=account_id,
            name=name,
            prefix=display_prefix(raw_key),
            key_hash=hash_api_key(raw_key),
            created_at=utcnow(),
        )
        repository.add(key)
        await session.flush()
        return key, raw_key

    async def key_exists(self, session: AsyncSession, raw_key: str) -> bool:
        return await ApiKeyRepository(session).exists(hash_api_key(raw_key))

    async def list_keys(self, session: AsyncSession, caller: Principal) -> Sequence[ApiKey]:
        return await ApiKeyRepository(session).list_for(caller.account_id)

    async def revoke_key(self, session: AsyncSession, caller: Principal, key_id: str) -> ApiKey:
        key = await ApiKeyRepository(session).revoke(
            account_id=caller.account_id, key_id=key_id, now=utcnow()
        )
        if key is None:
            raise NotFound(f"no API key {key_id}", field="key_id")
        self._auth_cache = {
            digest: entry for digest, entry in self._auth_cache.items() if entry[0].key_id != key_id
        }
        return key


accounts = AccountService()
