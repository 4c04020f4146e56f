from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


class MessageType(StrEnum):
    PLAIN = "plain"
    VOICE = "voice"
    MMS = "mms"


class MessageStatus(StrEnum):
    """``accepted`` (scheduled for later) → ``queued`` → ``dispatching`` → ``sent`` → a final
    status; ``received`` for inbound. ``preparing``: a large bulk job's row, written before the
    job is (messages/writer.py); nothing reads or sends it until it is released."""

    PREPARING = "preparing"
    ACCEPTED = "accepted"
    QUEUED = "queued"
    DISPATCHING = "dispatching"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    RECEIVED = "received"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.EXPIRED,
        MessageStatus.CANCELLED,
        MessageStatus.RECEIVED,
    }
)


class Message(Base):
    """One row per recipient (or per inbound SMS). ``phone`` is always the other party."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_queue", "status", "priority", "due_at"),
        Index("ix_messages_expiry", "status", "expires_at"),
        Index("ix_messages_account", "account_id", "id"),
        # Partial: only messages that went to phones are in them.
        Index(
            "ix_messages_device",
            "device_id",
            "status",
            sqlite_where=text("device_id IS NOT NULL"),
            postgresql_where=text("device_id IS NOT NULL"),
        ),  # a phone's pull
        Index(
            "ix_messages_sim",
            "sim_card_id",
            "dispatching_at",
            sqlite_where=text("sim_card_id IS NOT NULL"),
            postgresql_where=text("sim_card_id IS NOT NULL"),
        ),  # a SIM's limits
        Index("ix_messages_account_phone", "account_id", "phone"),
        Index("ix_messages_batch", "batch_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    batch_id: Mapped[str] = mapped_column(String(26))
    direction: Mapped[str] = mapped_column(String(3))
    phone: Mapped[str] = mapped_column(String(16))  # recipient (out) or originator (in), E.164
    sender: Mapped[str | None] = mapped_column(String(32))  # our side: sender id or our number
    type: Mapped[str] = mapped_column(String(8), default=MessageType.PLAIN)
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(SmallInteger)
    region: Mapped[str] = mapped_column(String(3))
    country: Mapped[str] = mapped_column(String(64))
    price_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(12))
    priority: Mapped[int] = mapped_column(SmallInteger, default=5)  # lower goes first
    custom_id: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True)
    )  # type-specific fields

    channel: Mapped[str | None] = mapped_column(String(32))
    channel_ref: Mapped[str | None] = mapped_column(String(64))
    # The phone and SIM a device-routed message went to (no foreign key: a removed phone
    # leaves its history).
    device_id: Mapped[str | None] = mapped_column(String(21))
    sim_card_id: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(26))  # which claim holds it
    # When this claim gave it to ``channel``, before the channel answered: a message still
    # ``dispatching`` with this set, whose lease lapsed, may have gone out (a crash lost the
    # answer); the channel is asked before it is sent again.
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ... and to which channel (``channel`` stays the one the sender named, if any, so a
    # retry is routed afresh).
    handed_to: Mapped[str | None] = mapped_column(String(32))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatching_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageSend(Base):
    """Each time a message went to a channel, or may have: ``acknowledged`` when the channel
    said it took it, not when a crash lost its answer and the channel could not say. Two rows
    for one message mean it may have gone out twice, and the operator can see so."""

    __tablename__ = "message_sends"
    __table_args__ = (Index("ix_message_sends_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("messages.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(32))
    channel_ref: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged: Mapped[bool] = mapped_column(Boolean)
