from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class Contact(Base):
    """A person the account writes to: one per phone number and account."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "phone"),
        Index(None, "account_id", "id"),
        Index(None, "account_id", "opted_out_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    phone: Mapped[str] = mapped_column(String(16))  # E.164
    region: Mapped[str] = mapped_column(String(3))  # of the phone: a send needs no parse
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    tag: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # custom values
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # STOP, until START
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def name(self) -> str | None:
        parts = [part for part in (self.first_name, self.last_name) if part]
        return " ".join(parts) or None


class ContactGroup(Base):
    __tablename__ = "contact_groups"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (Index(None, "contact_id"),)

    group_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("contact_groups.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
