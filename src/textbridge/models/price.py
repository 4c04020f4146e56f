from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime

DEFAULT_COUNTRY = "*"


class Price(Base):
    """Price of one segment to a destination country (ISO alpha-2), ``*`` being the default."""

    __tablename__ = "prices"

    country: Mapped[str] = mapped_column(String(3), primary_key=True)
    price_micros: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
