"""The channel protocol: how the dispatcher hands messages to a way of sending them.

A channel takes a batch of due messages and answers, per message, ``sent`` (with its own
reference), ``retry`` (a temporary problem, with a delay), ``failed`` (permanent) or
``assigned`` (the device channel: given to a phone's SIM, which pulls it and reports). Later status
reports and inbound messages flow back through the ``ChannelReporter`` the dispatcher gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from textbridge.models import MessageStatus, MessageType


class ChannelKind(StrEnum):
    SIMULATOR = "simulator"
    DEVICE = "device"
    SMPP = "smpp"


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    ASSIGNED = "assigned"  # handed to a phone's SIM; the phone pulls it and reports
    WAIT = "wait"  # no sender can take it now: queued again, not counted as an attempt


@dataclass(frozen=True, slots=True)
class Capabilities:
    message_types: frozenset[MessageType] = frozenset({MessageType.PLAIN})
    alphanumeric_sender: bool = False
    delivery_reports: bool = False
    max_batch: int = 100
    throughput_per_second: float | None = None
    # ``send`` gives messages away (to a carrier, the simulated one included), so a crash
    # before its answers are recorded leaves messages that may have gone out: they are marked
    # handed first and the channel is asked about them (``resume``) before they go again.
    # False for a channel whose ``send`` only decides (the device channel: phones pull later).
    gives_away: bool = True


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a channel needs to send one message; it never sees the database row."""

    id: str
    phone: str
    sender: str | None
    type: MessageType
    text: str
    encoding: str
    segments: int
    attempts: int
    extra: dict[str, Any] | None = None
    account_id: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    outcome: Outcome
    channel_ref: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None  # seconds, for RETRY
    device_id: str | None = None  # for ASSIGNED
    sim_card_id: int | None = None

    @classmethod
    def assigned(cls, message_id: str, device_id: str, sim_card_id: int) -> SendResult:
        return cls(message_id, Outcome.ASSIGNED, device_id=device_id, sim_card_id=sim_card_id)

    @classmethod
    def wait(
        cls, message_id: str, reason: str, retry_after: float, *, code: str = "senders_busy"
    ) -> SendResult:
        return cls(
            message_id,
            Outcome.WAIT,
            error_code=code,
            error_message=reason,
            retry_after=retry_after,
        )

    @classmethod
    def sent(cls, message_id: str, channel_ref: str) -> SendResult:
        return cls(message_id, Outcome.SENT, channel_ref=channel_ref)

    @classmethod
    def retry(cls, message_id: str, error: ChannelError) -> SendResult:
        return cls(
            message_id,
            Outcome.RETRY,
            error_code=error.code,
            error_message=str(error),
            retry_after=error.retry_after,
        )

    @classmethod
    def failed(cls, message_id: str, error: ChannelError) -> SendResult:
        return cls(message_id, Outcome.FAILED, error_code=error.code, error_message=str(error))


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A delivery report: a sent message reached a final status."""

    message_id: str
    status: MessageStatus  # delivered, failed or expired
    at: datetime
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class InboundSms:
    phone: str  # the sender
    to: str | None  # our number it was sent to
    text: str
    received_at: datetime
    account_id: str
    extra: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None  # the channel's own id: the same ref twice is stored once


@dataclass(frozen=True, slots=True)
class InFlight:
    """A message a channel accepted earlier that has no final status yet (after a restart)."""

    message_id: str
    phone: str
    channel_ref: str | None
    sent_at: datetime


class ChannelError(Exception):
    """Base of channel errors; ``code`` is the channel's own (an SMPP command_status, ...)."""

    retriable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str = "channel_error", retry_after: float = 0.0):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class RetriableChannelError(ChannelError):
    retriable = True


class PermanentChannelError(ChannelError):
    retriable = False


class ChannelReporter(Protocol):
    """Given to each channel at start: where its status reports and inbound messages go."""

    async def report(self, reports: Sequence[StatusReport]) -> None: ...

    async def receive(self, messages: Sequence[InboundSms]) -> None: ...


@runtime_checkable
class Channel(Protocol):
    kind: ClassVar[ChannelKind]
    name: str
    capabilities: Capabilities

    async def start(self, reporter: ChannelReporter) -> None:
        """Open connections, start background work. Called once before any ``send``."""

    async def stop(self) -> None: ...

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Hand over a batch; one result per message, in any order.

        Raising ``RetriableChannelError`` retries the whole batch later."""

    async def resume(
        self, in_flight: Sequence[InFlight], handed: Sequence[OutboundMessage] = ()
    ) -> list[SendResult]:
        """After a crash: re-arm whatever produces status reports for messages ``in_flight``
        (recorded ``sent``), and answer for messages ``handed`` to this channel whose answer
        a crash lost: a result for each one the channel knows it took (or refused), none for
        the others, which are then sent again (and their history shows both sends)."""

    def healthy(self) -> bool: ...
