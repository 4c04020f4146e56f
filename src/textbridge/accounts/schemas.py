"""The native API's account and API-key shapes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from textbridge.kit.money import from_micros
from textbridge.models import Account, ApiKey

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
]
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), max_digits=19, decimal_places=6)]


class AccountOut(BaseModel):
    id: str
    name: str
    parent_id: str | None
    is_admin: bool
    balance: float
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            name=account.name,
            parent_id=account.parent_id,
            is_admin=account.is_admin,
            balance=from_micros(account.balance_micros),
            created_at=account.created_at,
        )


class CreateAccount(BaseModel):
    """A sub-account of the caller, funded with ``balance`` taken from the caller's balance."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    balance: Amount = Decimal(0)


class CreatedAccount(AccountOut):
    api_key: str = Field(description="The sub-account's first API key. Shown only this once.")


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[Decimal, Field(gt=0, le=Decimal("1e12"), max_digits=19, decimal_places=6)]


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = "api"


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class CreatedKey(KeyOut):
    key: str = Field(description="The API key. Shown only this once; store it now.")
