"""Native API: the caller's account, sub-accounts and API keys."""

from __future__ import annotations

from textbridge.accounts.schemas import (
    AccountOut,
    AccountSettings,
    AccountSettingsPatch,
    CreateAccount,
    CreatedAccount,
    CreatedKey,
    CreateKey,
    KeyOut,
    TopUp,
    settings_of,
)
from textbridge.accounts.service import accounts
from textbridge.api.deps import CallerDep, SessionDep
from textbridge.api.routing import make_router
from textbridge.kit.money import to_micros

router = make_router(prefix="/v1", tags=["accounts"])


@router.get("/account", response_model=AccountOut)
async def get_own_account(session: SessionDep, caller: CallerDep) -> AccountOut:
    """The caller's account and its balance."""
    return AccountOut.of(await accounts.get(session, caller.account_id))


@router.get("/account/settings", response_model=AccountSettings)
async def get_settings(session: SessionDep, caller: CallerDep) -> AccountSettings:
    """The caller's account settings, defaults included."""
    return settings_of(await accounts.get(session, caller.account_id))


@router.patch("/account/settings", response_model=AccountSettings)
async def update_settings(
    body: AccountSettingsPatch, session: SessionDep, caller: CallerDep
) -> AccountSettings:
    """Change the settings sent; the others stay. ``notify_email: null`` clears it; a null
    anywhere else changes nothing."""
    changes = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None or k == "notify_email"}
    return settings_of(await accounts.update_settings(session, caller, changes))


@router.post("/accounts", status_code=201, response_model=CreatedAccount)
async def create_sub_account(
    body: CreateAccount, session: SessionDep, caller: CallerDep
) -> CreatedAccount:
    """Create a sub-account of the caller; answers it with its first API key."""
    account, raw_key = await accounts.create_sub_account(
        session, caller, name=body.name, balance=to_micros(body.balance)
    )
    return CreatedAccount(**AccountOut.of(account).model_dump(), api_key=raw_key)


@router.get("/accounts", response_model=list[AccountOut])
async def list_sub_accounts(session: SessionDep, caller: CallerDep) -> list[AccountOut]:
    """The caller's sub-accounts."""
    return [AccountOut.of(account) for account in await accounts.children(session, caller)]


@router.get("/accounts/{account_id}", response_model=AccountOut)
async def get_account(account_id: str, session: SessionDep, caller: CallerDep) -> AccountOut:
    """The caller's account or one of its sub-accounts (any account for the admin)."""
    return AccountOut.of(await accounts.get_visible(session, caller, account_id))


@router.post("/accounts/{account_id}/top-up", response_model=AccountOut)
async def top_up(
    account_id: str, body: TopUp, session: SessionDep, caller: CallerDep
) -> AccountOut:
    """Move money from the caller's balance to a sub-account (parent or admin key)."""
    account = await accounts.top_up(
        session, caller, account_id=account_id, amount=to_micros(body.amount)
    )
    return AccountOut.of(account)


@router.post("/keys", status_code=201, response_model=CreatedKey)
async def create_key(body: CreateKey, session: SessionDep, caller: CallerDep) -> CreatedKey:
    """A new API key for the caller's account. The key is in this answer only."""
    key, raw_key = await accounts.create_key(session, account_id=caller.account_id, name=body.name)
    return CreatedKey(**KeyOut.of(key).model_dump(), key=raw_key)


@router.get("/keys", response_model=list[KeyOut])
async def list_keys(session: SessionDep, caller: CallerDep) -> list[KeyOut]:
    """The account's API keys (their prefixes, never the keys)."""
    return [KeyOut.of(key) for key in await accounts.list_keys(session, caller)]


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, session: SessionDep, caller: CallerDep) -> KeyOut:
    """Revoke an API key; it stops working at once."""
    return KeyOut.of(await accounts.revoke_key(session, caller, key_id))
