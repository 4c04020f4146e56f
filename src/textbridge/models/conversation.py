from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class Conversation(Base):
    """Everything an account exchanged with one phone number, summed up for the chat list: kept
    up to date by a trigger on ``messages`` (migration 0004), so listing never scans messages."""

    __tablename__ = "conversations"
    # On SQLite the key is the table (no rowid beside it): one B-tree fewer to write per
    # message accepted.
    __table_args__ = (
        Index(None, "account_id", "last_message_id"),
        {"sqlite_with_rowid": False},
    )

    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_message_id: Mapped[str] = mapped_column(String(26))
    last_direction: Mapped[str] = mapped_column(String(3))
    last_text: Mapped[str] = mapped_column(String(200))  # the start of it
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unread: Mapped[int] = mapped_column(Integer, default=0)  # inbound since last read
