"""The simulator: a virtual carrier inside the process, and the default channel.

It accepts every message it is given and reports delivery after a delay. Numbers whose last
seven digits fall in a reserved range behave badly on purpose, so every path can be reproduced
(the NANP range 555-0100..0199 is reserved for fiction, e.g. ``+1 415 555 0190``):

| last 7 digits | what happens |
|---|---|
| 5550190, 5550191 | refused at once: ``failed`` without being sent |
| 5550192, 5550193 | ``sent``, then a report of ``failed`` |
| 5550194, 5550195 | ``sent``, never reported: the message expires at its ``ttl`` |
| 5550196, 5550197 | a temporary error for the first N attempts (a setting), then delivered |
| 5550198 | a temporary error on every attempt, until the attempts run out |
| anything else | ``sent``, then ``delivered`` after the delay (or ``failed`` at the loss rate) |
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

import structlog

from textbridge.channels.base import (
    Capabilities,
    ChannelKind,
    ChannelReporter,
    InFlight,
    OutboundMessage,
    PermanentChannelError,
    RetriableChannelError,
    SendResult,
    StatusReport,
)
from textbridge.db.engine import log_failure
from textbridge.kit.clock import utcnow
from textbridge.models import MessageStatus, MessageType
from textbridge.settings import Settings

log = structlog.get_logger(__name__)


class Behaviour(StrEnum):
    DELIVER = "deliver"
    REJECT = "reject"
    FAIL_AFTER_SENT = "fail_after_sent"
    NEVER_DELIVER = "never_deliver"
    FLAKY = "flaky"
    ALWAYS_TEMPORARY = "always_temporary"


_RANGES = {
    "5550190": Behaviour.REJECT,
    "5550191": Behaviour.REJECT,
    "5550192": Behaviour.FAIL_AFTER_SENT,
    "5550193": Behaviour.FAIL_AFTER_SENT,
    "5550194": Behaviour.NEVER_DELIVER,
    "5550195": Behaviour.NEVER_DELIVER,
    "5550196": Behaviour.FLAKY,
    "5550197": Behaviour.FLAKY,
    "5550198": Behaviour.ALWAYS_TEMPORARY,
}


# What a report says: status, error code, error text.
_Outcome = tuple[MessageStatus, str | None, str | None]
_DELIVERED: _Outcome = (MessageStatus.DELIVERED, None, None)
_UNDELIVERABLE: _Outcome = (
    MessageStatus.FAILED,
    "simulated_undeliverable",
    "simulated: handset unreachable",
)
_LOST: _Outcome = (MessageStatus.FAILED, "simulated_loss", "simulated: lost in the network")


def behaviour_of(phone: str) -> Behaviour:
    return _RANGES.get(phone[-7:], Behaviour.DELIVER)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    delivery_delay: float = 1.0  # seconds from sent to the delivery report
    send_latency: float = 0.0  # seconds one send() call takes
    loss_rate: float = 0.0  # share of ordinary messages reported failed
    temporary_failures: int = 2  # attempts that fail for the flaky range
    remembers: bool = True  # after a crash, knows what it was handed (a carrier that keeps no
    # record, False, makes the dispatcher send those again: the path a real carrier link takes)


class SimulatorChannel:
    kind: ClassVar[ChannelKind] = ChannelKind.SIMULATOR
    capabilities = Capabilities(
        message_types=frozenset(MessageType),
        alphanumeric_sender=True,
        delivery_reports=True,
        max_batch=1000,
    )

    def __init__(self, config: SimulatorConfig, *, name: str = "simulator") -> None:
        self.name = name
        self.config = config
        self._reporter: ChannelReporter | None = None
        # Reports owed: (due on the monotonic clock, tie-breaker, message id, outcome).
        self._pending: list[tuple[float, int, str, _Outcome]] = []
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SimulatorChannel:
        return cls(
            SimulatorConfig(
                delivery_delay=settings.simulator_delivery_delay_ms / 1000,
                send_latency=settings.simulator_send_latency_ms / 1000,
                loss_rate=settings.simulator_loss_rate,
                temporary_failures=settings.simulator_temporary_failures,
                remembers=settings.simulator_remembers,
            )
        )

    async def start(self, reporter: ChannelReporter) -> None:
        self._reporter = reporter
        self._task = asyncio.create_task(self._report_loop(), name="simulator-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if self.config.send_latency:
            await asyncio.sleep(self.config.send_latency)
        return [self._take(message) for message in messages]

    async def resume(
        self, in_flight: Sequence[InFlight], handed: Sequence[OutboundMessage] = ()
    ) -> list[SendResult]:
        """The carrier remembers what it accepted: reports still owed are scheduled again.

        A message handed over before a crash was taken at that instant (this carrier answers
        at once, and its answer depends only on the number and the attempt), so it is
        answered now as it was then, and never sent twice; unless the simulator plays a
        carrier that keeps no record (``remembers``), when none is answered."""
        now = utcnow()
        for item in in_flight:
            elapsed = (now - item.sent_at).total_seconds()
            remaining = max(0.0, self.config.delivery_delay - elapsed)
            self._schedule(item.message_id, behaviour_of(item.phone), remaining)
        if not self.config.remembers:
            return []
        return [self._take(message) for message in handed]

    def _take(self, message: OutboundMessage) -> SendResult:
        behaviour = behaviour_of(message.phone)
        if behaviour is Behaviour.REJECT:
            rejection = PermanentChannelError("simulated rejection", code="simulated_rejected")
            return SendResult.failed(message.id, rejection)
        if behaviour is Behaviour.ALWAYS_TEMPORARY or (
            behaviour is Behaviour.FLAKY and message.attempts <= self.config.temporary_failures
        ):
            busy = RetriableChannelError("simulated temporary error", code="simulated_busy")
            return SendResult.retry(message.id, busy)
        self._schedule(message.id, behaviour, self.config.delivery_delay)
        return SendResult.sent(message.id, channel_ref=f"sim-{message.id}")

    def _schedule(self, message_id: str, behaviour: Behaviour, delay: float) -> None:
        if behaviour is Behaviour.NEVER_DELIVER:
            return
        if behaviour is Behaviour.FAIL_AFTER_SENT:
            outcome = _UNDELIVERABLE
        elif self._lost(message_id):
            outcome = _LOST
        else:
            outcome = _DELIVERED
        self._push(time.monotonic() + delay, message_id, outcome)

    def _push(self, due: float, message_id: str, outcome: _Outcome) -> None:
        heapq.heappush(self._pending, (due, next(self._counter), message_id, outcome))
        self._wakeup.set()

    def _lost(self, message_id: str) -> bool:
        if self.config.loss_rate <= 0:
            return False
        # Deterministic per message, so a rerun loses the same messages.
        digest = hashlib.blake2b(message_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest) / 2**64 < self.config.loss_rate

    async def _report_loop(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            delay = self._pending[0][0] - time.monotonic()
            if delay > 0:
                self._wakeup.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
                # cancellation that stop() sends, and the loop then never ends.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
                continue
            due: list[tuple[str, _Outcome]] = []
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now and len(due) < 1000:
                _, _, message_id, outcome = heapq.heappop(self._pending)
                due.append((message_id, outcome))
            assert self._reporter is not None
            at = utcnow()
            try:
                await self._reporter.report(
                    [
                        StatusReport(message_id, status, at, code, text)
                        for message_id, (status, code, text) in due
                    ]
                )
            except Exception as exc:
                # Put them back and try again shortly: a report is owed until it is recorded.
                log_failure(
                    log, "simulator could not record reports; retrying", exc, count=len(due)
                )
                for message_id, outcome in due:
                    self._push(time.monotonic() + 1.0, message_id, outcome)
                await asyncio.sleep(1.0)
