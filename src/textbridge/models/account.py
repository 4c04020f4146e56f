from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class Account(Base):
    """A tenant. Sub-accounts have a parent; the admin account has none and ``is_admin``."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    parent_id: Mapped[str | None] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    balance_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
