from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class Event(Base):
    """Something that happened to an account's resources, written in the transaction of the
    change itself: the record webhooks are delivered from."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "account_id", "id"), Index(None, "account_id", "subject_id"))

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(40))  # e.g. contact.tag_changed
    subject_id: Mapped[str] = mapped_column(String(26))  # the resource it is about
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
