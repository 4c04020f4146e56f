from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class BulkJob(Base):
    """A campaign: one text to many recipients, queued behind ordinary traffic. Its id is the
    ``batch_id`` of its messages, whose statuses are its progress."""

    __tablename__ = "bulk_jobs"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    total: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # the API it came through
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
