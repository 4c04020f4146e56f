"""The native API's account and API-key shapes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

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


DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_OPT_IN_KEYWORDS = ("START", "UNSTOP")

Keyword = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$", to_upper=True)
]
Keywords = Annotated[list[Keyword], Field(max_length=20)]
Region = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]


class AccountSettings(BaseModel):
    """How the account behaves: what an inbound reply opts a phone out or back in, where codes
    may be sent, whether TextFlow echoes a valid code, and where notices are emailed."""

    opt_out_keywords: Keywords = Field(
        default=list(DEFAULT_OPT_OUT_KEYWORDS),
        description="An inbound message that is one of these words (any case) opts its phone out",
    )
    opt_in_keywords: Keywords = Field(
        default=list(DEFAULT_OPT_IN_KEYWORDS), description="... and one of these opts it back in"
    )
    verify_countries: Annotated[list[Region], Field(max_length=300)] = Field(
        default_factory=list,
        description="Regions (ISO 3166 alpha-2) verification codes may go to; empty: all",
    )
    echo_valid_code: bool = Field(
        default=False, description="TextFlow's verify answer carries the valid code"
    )
    notify_email: EmailStr | None = Field(
        default=None,
        description="Where notices go (a webhook that failed for good, an endpoint disabled), "
        "when the server has SMTP configured",
    )


def settings_of(account: Account) -> AccountSettings:
    """An account's settings, defaults filled in."""
    return AccountSettings.model_validate(account.settings or {})


class AccountSettingsPatch(BaseModel):
    """Only the settings sent change."""

    model_config = ConfigDict(extra="forbid")

    opt_out_keywords: Keywords | None = None
    opt_in_keywords: Keywords | None = None
    verify_countries: Annotated[list[Region], Field(max_length=300)] | None = None
    echo_valid_code: bool | None = None
    notify_email: EmailStr | None = None


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
