from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class LedgerKind(StrEnum):
    DEBIT = "debit"  # messages accepted
    REFUND = "refund"  # a message failed, expired or was cancelled
    TOPUP = "topup"  # money minted by the operator
    TRANSFER_IN = "transfer_in"  # from the parent account
    TRANSFER_OUT = "transfer_out"  # to a sub-account


class LedgerEntry(Base):
    """One change of an account's balance; the balance is the sum of its entries."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    amount_micros: Mapped[int] = mapped_column(BigInteger)  # signed
    balance_after_micros: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(64))  # batch, message or account id
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
