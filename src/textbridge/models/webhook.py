from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from textbridge.db.base import Base, UTCDateTime


class WebhookEndpoint(Base):
    """A URL of the account's that wants some events, signed with its secret."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(String(300))  # TextLink's limit
    # "native" (id, type, created_at, data) or "textlink" (TextLink's documented bodies).
    format: Mapped[str] = mapped_column(String(16), default="native", server_default="native")
    # The event types it wants, as ",a,b," so SQL can match one with LIKE on both databases.
    events: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))  # signs; needed in clear to sign
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # deliveries failed in a row
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event owed to one endpoint: the outbox row, written in the transaction of the event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "endpoint_id", "event_id"),
        # The claim's "no earlier pending event of this resource here": all four, or SQLite
        # walks every earlier delivery of the endpoint instead (23 s a claim at 20,000 due).
        Index(None, "endpoint_id", "subject_id", "status", "event_id"),
    )

    event_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    endpoint_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(26))
    subject_id: Mapped[str] = mapped_column(String(26))  # the event's: its order is kept
    status: Mapped[str] = mapped_column(String(12))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """The delivery log: every request made, with what came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "endpoint_id", "event_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(26))
    endpoint_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))


class Notice(Base):
    """Something the account is told by email (a delivery that failed for good, an endpoint
    disabled), written in the transaction that caused it and sent when SMTP is configured."""

    __tablename__ = "notices"
    __table_args__ = (Index(None, "sent_at"), Index(None, "account_id", "sent_at"))

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
