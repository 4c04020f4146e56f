"""Background work for messages: the dispatcher, housekeeping, and the reporter channels use.

Every loop commits its own transactions (the task wrapper is the edge here) and survives a
failed iteration: an exception is logged and the loop goes on after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.channels import (
    Channel,
    ChannelError,
    ChannelKind,
    Channels,
    InboundSms,
    InFlight,
    OutboundMessage,
    SendResult,
    StatusReport,
)
from textbridge.db import Database
from textbridge.db.engine import log_failure
from textbridge.db.listen import listen
from textbridge.devices.service import devices
from textbridge.idempotency.service import idempotency
from textbridge.kit.clock import utcnow
from textbridge.kit.ids import new_id
from textbridge.messages.repository import QUEUE_CHANNEL, MessageRepository
from textbridge.messages.service import fill_code, messages
from textbridge.messages.writer import recover_prepared
from textbridge.metrics import DISPATCH_BATCH_SECONDS
from textbridge.models import MessageType
from textbridge.notices.service import Mailer
from textbridge.settings import Settings
from textbridge.webhooks.sender import WebhookSender

log = structlog.get_logger(__name__)


class Reporter:
    """Where channels send delivery reports and inbound messages: straight into the database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def report(self, reports: Sequence[StatusReport]) -> None:
        await self.db.run(lambda session: messages.record_reports(session, reports))

    async def receive(self, inbound: Sequence[InboundSms]) -> None:
        async def store(session: AsyncSession) -> None:
            for sms in inbound:
                await messages.receive(session, sms, settings=self.settings)

        await self.db.run(store)


class Dispatcher:
    """Claims due messages under a lease, hands them to their channel, records the outcome."""

    def __init__(self, db: Database, channels: Channels, settings: Settings) -> None:
        self.db = db
        self.channels = channels
        self.settings = settings

    async def run(self) -> None:
        while True:
            try:
                handled = await self.dispatch_once()
            except Exception as exc:
                log_failure(log, "dispatch iteration failed", exc)
                handled = 0
                await asyncio.sleep(1.0)
            if handled == 0:
                messages.wakeup.clear()
                # asyncio.timeout, not wait_for, which can swallow a cancellation on 3.11.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.dispatch_poll_seconds):
                        await messages.wakeup.wait()

    async def dispatch_once(self) -> int:
        """One claim-send-record round; answers how many messages it handled.

        A channel that gives messages away (``Capabilities.gives_away``) gets them in chunks of
        ``DISPATCH_CHUNK_SIZE`` (or its own ``max_batch``, if smaller); before each chunk goes
        its hand-over is marked, in the claim's transaction for the first chunk and with the
        answers to the chunk before for the others. A crash at any instant then leaves at most
        one chunk handed and unanswered, which is asked about (``settle_lapsed``) rather than
        sent again blindly. The cost: a transaction per further chunk."""
        started = time.perf_counter()
        owner = new_id()
        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        async with self.db.transaction() as session:
            repository = MessageRepository(session)
            claimed = await repository.claim(
                now=now,
                lease_until=lease_until,
                owner=owner,
                limit=self.settings.dispatch_batch_size,
            )
            with_phones = await devices.accounts_with_devices(
                session, {row.account_id for row in claimed}
            )
            plan, unroutable = self._plan(claimed, with_phones)
            # The first chunk is marked handed in the claim's own transaction: a round of one
            # chunk then costs the two transactions it did before hand-overs were marked.
            premarked = bool(plan) and plan[0].gives_away
            if premarked:
                first = plan[0]
                ids = [message.id for message in first.chunks[0]]
                await repository.hand_over(owner, first.name, ids, now, lease_until)
        if not claimed:
            return 0
        claim = _Claim(owner, claimed)
        answers: list[tuple[str, list[SendResult]]] = [("", unroutable)] if unroutable else []
        for step in plan:
            for chunk in step.chunks:
                if step.gives_away and not premarked:
                    held = await self._record(claim, answers, handing=(step.name, chunk))
                    answers = []
                    chunk = [message for message in chunk if message.id in held]
                    if not chunk:
                        continue
                premarked = False
                answers.append((step.name, await _send(step.channel, chunk)))
        await self._record(claim, answers)
        DISPATCH_BATCH_SECONDS.observe(time.perf_counter() - started)
        return len(claimed)

    def _plan(
        self, claimed: Sequence[Any], with_phones: set[str]
    ) -> tuple[list[_Step], list[SendResult]]:
        """Each claimed message's channel, in chunks that channel takes at a time; and the
        answers for those no channel can take now."""
        by_channel: dict[str, list[OutboundMessage]] = defaultdict(list)
        unroutable: list[SendResult] = []
        simulated = 0  # messages for phones that went to the simulator instead
        for row in claimed:
            message = _outbound(row, self.settings)
            channel = self.channels.route(
                message.type, named=row.channel, phones=row.account_id in with_phones
            )
            if channel is None:
                # No phone, no carrier (and no simulator, in production): not a failure of
                # the message, so it waits without spending attempts until a route appears
                # or its ttl ends (expired, refunded).
                reason = "no channel can send this message now: queued until one can"
                wait = self.settings.no_route_recheck_seconds
                unroutable.append(SendResult.wait(row.id, reason, wait, code="no_route"))
            else:
                by_channel[channel.name].append(message)
                if row.channel == ChannelKind.DEVICE and channel.kind is ChannelKind.SIMULATOR:
                    simulated += 1
        if simulated:
            log.warning("messages for phones go to the simulator: no phones", count=simulated)
        plan = []
        for name, batch in by_channel.items():
            channel = self.channels.get(name)
            assert channel is not None
            gives_away = channel.capabilities.gives_away
            size = max(1, channel.capabilities.max_batch)
            if gives_away:
                size = min(size, self.settings.dispatch_chunk_size)
            chunks = [batch[start : start + size] for start in range(0, len(batch), size)]
            plan.append(_Step(name, channel, gives_away, chunks))
        return plan, unroutable

    async def settle_lapsed(self) -> int:
        """Messages handed to a channel by a process that died before recording the answers:
        the channel says which it took (``Channel.resume``); the rest are recorded as a send
        that may have happened and go back to the queue. Answers how many were settled."""
        now = utcnow()
        owner = new_id()
        async with self.db.transaction() as session:
            rows = await MessageRepository(session).take_lapsed_handoffs(
                now=now,
                lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                owner=owner,
                limit=self.settings.dispatch_batch_size,
            )
        if not rows:
            return 0
        claim = _Claim(owner, rows)
        by_channel: dict[str, list[OutboundMessage]] = defaultdict(list)
        for row in rows:
            by_channel[row.handed_to].append(_outbound(row, self.settings))
        answers: list[tuple[str, list[SendResult]]] = []
        lost: list[str] = []
        for name, handed in by_channel.items():
            channel = self.channels.get(name)
            known: list[SendResult] = []
            if channel is not None:
                try:
                    known = await channel.resume([], handed)
                except Exception:
                    log.exception("channel could not say what it was handed", channel=name)
            answered = {result.message_id for result in known}
            unknown = [message.id for message in handed if message.id not in answered]
            error = ChannelError(
                f"handed to {name} before a crash, which lost its answer: sent again",
                code="handoff_lost",
            )
            answers.append((name, [*known, *(SendResult.retry(i, error) for i in unknown)]))
            lost += unknown
        log.warning("settled lapsed hand-overs", count=len(rows), sent_again=len(lost))
        await self._record(claim, answers, lost=lost)
        return len(rows)

    async def _record(
        self,
        claim: _Claim,
        answers: list[tuple[str, list[SendResult]]],
        *,
        handing: tuple[str, list[OutboundMessage]] | None = None,
        lost: Sequence[str] = (),
    ) -> set[str]:
        """One transaction: the channels' answers, the sends a crash may have made (``lost``),
        and the hand-over mark of the chunk about to go; answers the ids of that chunk this
        claim still holds, which alone may go."""
        if not answers and handing is None:
            return set()
        held: set[str] = set()

        async def record(session: AsyncSession) -> None:
            repository = MessageRepository(session)
            await repository.record_sends(lost, acknowledged=False)
            for name, results in answers:
                await messages.record_results(
                    session,
                    owner=claim.owner,
                    channel=name,
                    results=results,
                    attempts=claim.attempts,
                    accounts=claim.accounts,
                    settings=self.settings,
                )
            if handing is not None:
                now = utcnow()
                name, chunk = handing
                ids = {message.id for message in chunk}
                held.clear()  # a rerun of the transaction answers afresh
                held.update(
                    await repository.hand_over(
                        claim.owner,
                        name,
                        sorted(ids),
                        now,
                        now + timedelta(seconds=self.settings.lease_seconds),
                        rest=sorted(claim.unanswered - answered - ids) if renew else (),
                    )
                )

        answered = {result.message_id for _, results in answers for result in results}
        # The rest of the claim's lease is renewed once a third of it has passed: a round
        # that long is alive but slow (under load). A renewal per chunk, an update of every
        # row left, cost the end-to-end bench a third of its throughput at 25 a chunk.
        renew = time.monotonic() - claim.renewed > self.settings.lease_seconds / 3
        await self.db.run(record)
        if renew:
            claim.renewed = time.monotonic()
        claim.unanswered -= answered
        return held


@dataclass(frozen=True, slots=True)
class _Step:
    """A channel's part of a round: its messages in the chunks it is given at a time."""

    name: str
    channel: Channel
    gives_away: bool
    chunks: list[list[OutboundMessage]]


class _Claim:
    """What a round holds: its lease owner, each message's attempt and account, and those
    whose answers are not recorded yet."""

    __slots__ = ("accounts", "attempts", "owner", "renewed", "unanswered")

    def __init__(self, owner: str, rows: Sequence[Any]) -> None:
        self.owner = owner
        self.renewed = time.monotonic()  # when its lease was last set
        self.unanswered: set[str] = {row.id for row in rows}
        self.attempts: dict[str, int] = {row.id: row.attempts for row in rows}
        self.accounts: dict[str, str] = {row.id: row.account_id for row in rows}


def _outbound(row: Any, settings: Settings) -> OutboundMessage:
    return OutboundMessage(
        id=row.id,
        phone=row.phone,
        sender=row.sender,
        type=MessageType(row.type),
        text=fill_code(row.text, row.extra, settings.resolved_secret_key),
        encoding=row.encoding,
        segments=row.segments,
        attempts=row.attempts,
        extra=row.extra,
        account_id=row.account_id,
    )


async def _send(channel: Channel, chunk: list[OutboundMessage]) -> list[SendResult]:
    """One chunk to its channel; a channel error answers for the whole chunk."""
    try:
        return await channel.send(chunk)
    except ChannelError as error:
        make = SendResult.retry if error.retriable else SendResult.failed
        return [make(message.id, error) for message in chunk]
    except Exception as exc:
        # A bug or an unexpected failure in a channel: retry rather than lose the messages.
        log.exception("channel send failed", channel=channel.name)
        crash = ChannelError(f"channel error: {type(exc).__name__}", code="channel_crash")
        return [SendResult.retry(message.id, crash) for message in chunk]


class Housekeeping:
    """Periodic jobs: release scheduled messages, reclaim lapsed leases (cancelling what a
    phone was asked to cancel), mark phones gone silent offline (``device.offline``), expire
    what is too old, forget idempotency records after a day, finish or delete bulk jobs a dead
    process left half-written (``recover_prepared``); and ask channels about what a dead
    process handed them (``settle``: the dispatcher's ``settle_lapsed``)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        settle: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.settle = settle
        self._purged_at = 0.0

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                log_failure(log, "housekeeping iteration failed", exc)
            await asyncio.sleep(self.settings.maintenance_interval_seconds)

    async def run_once(self) -> None:
        now = utcnow()
        async with self.db.transaction() as session:
            repository = MessageRepository(session)
            promoted = await repository.promote_scheduled(now)
            cancelled = await messages.cancel_unanswered(session)
            released = await repository.release_lapsed_leases(now)
            offline = await devices.sweep_offline(session, self.settings)
        if self.settle is not None:
            try:
                released += await self.settle()
            except Exception as exc:  # the rest of the round (expiry, purges) goes on
                log_failure(log, "settling lapsed hand-overs failed", exc)
        if offline:
            log.info("devices offline", count=offline)
        if promoted or released or cancelled:
            log.info(
                "queue maintenance",
                scheduled_due=promoted,
                leases_released=released,
                unanswered_cancels=cancelled,
            )
            messages.wakeup.set()
        if time.monotonic() - self._purged_at > 60:
            async with self.db.transaction() as session:
                await idempotency.purge_expired(session)
            await recover_prepared(self.db, now=now, on_commit=messages.wakeup.set)
            self._purged_at = time.monotonic()
        while True:
            async with self.db.transaction() as session:
                expired = await messages.expire_due(session)
            if expired < 1000:
                break


class Worker:
    """The background half of a Textbridge process: channels, dispatcher and housekeeping."""

    def __init__(self, db: Database, channels: Channels, settings: Settings) -> None:
        self.db = db
        self.channels = channels
        self.settings = settings
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.channels.start(Reporter(self.db, self.settings))
        await self._resume_in_flight()
        dispatcher = Dispatcher(self.db, self.channels, self.settings)
        jobs: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "dispatcher": dispatcher.run,
            "housekeeping": Housekeeping(self.db, self.settings, dispatcher.settle_lapsed).run,
            "webhooks": WebhookSender(self.db, self.settings).run,
        }
        if self.settings.smtp_host:
            jobs["mailer"] = Mailer(self.db, self.settings).run
        if not self.db.is_sqlite:  # another process announced due work: dispatch now
            wake = messages.wakeup.set
            jobs["queue-listener"] = lambda: listen(self.db, QUEUE_CHANNEL, lambda _: wake(), wake)
        self._tasks = [asyncio.create_task(job(), name=name) for name, job in jobs.items()]

    async def _resume_in_flight(self) -> None:
        for channel in self.channels:
            async with self.db.transaction() as session:
                rows = await MessageRepository(session).in_flight(channel.name)
            if rows:
                log.info("resuming reports", channel=channel.name, count=len(rows))
                await channel.resume(
                    [InFlight(r.id, r.phone, r.channel_ref, r.sent_at) for r in rows]
                )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.channels.stop()
