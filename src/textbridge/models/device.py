from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class Device(Base):
    """A phone (or a device agent) that sends the account's messages through its SIM cards,
    speaking the SMSGate device protocol."""

    __tablename__ = "devices"
    __table_args__ = (
        Index(None, "account_id", "id"),
        Index(None, "online", "last_seen_at"),  # housekeeping's sweep for phones gone silent
    )

    id: Mapped[str] = mapped_column(String(21), primary_key=True)  # the app's id length
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))
    push_token: Mapped[str | None] = mapped_column(String(512))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # its bearer token's
    # Signs the events the phone posts to us; the phone takes it from GET /settings.
    signing_key: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The state the last device.online / device.offline event told: only the UPDATE that
    # flips it records the event, so each transition is told once, whichever process sees it.
    online: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SimCard(Base):
    """A SIM of a device. Its id is a number, as TextLink's ``sim_card_id``."""

    __tablename__ = "sim_cards"
    __table_args__ = (
        UniqueConstraint("device_id", "sim_number"),
        Index(None, "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    device_id: Mapped[str] = mapped_column(String(21), ForeignKey("devices.id", ondelete="CASCADE"))
    sim_number: Mapped[int] = mapped_column(Integer)  # 1-based, as the app counts
    slot_index: Mapped[int | None] = mapped_column(Integer)
    phone_number: Mapped[str | None] = mapped_column(String(32))  # often redacted: "****1234"
    carrier_name: Mapped[str | None] = mapped_column(String(64))
    iccid: Mapped[str | None] = mapped_column(String(32))
    present: Mapped[bool] = mapped_column(Boolean, default=True)  # in the phone's last report
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    per_minute: Mapped[int | None] = mapped_column(Integer)  # limits; None: none
    per_day: Mapped[int | None] = mapped_column(Integer)
    work_start: Mapped[str | None] = mapped_column(String(5))  # "HH:MM", the server's UTC
    work_end: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeviceLogin(Base):
    """The account's login and password in the device protocol (``Basic``), made when its
    first phone registers: they add more phones and ask for one-time codes."""

    __tablename__ = "device_logins"

    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    login: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeviceCredential(Base):
    """A way to register a phone to the account: a pairing token (``Bearer``, until it
    expires) or a one-time code (``Code``, once). Only a digest is kept."""

    __tablename__ = "device_credentials"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(8))  # token, code
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
