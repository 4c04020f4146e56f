"""The message lifecycle: accept (validate, price, debit, store), read, cancel, receive, and
record what channels report. Every status change refunds what must be refunded in the same
transaction."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

import regex
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal, accounts
from textbridge.billing.service import Refund, billing
from textbridge.channels import (
    ChannelKind,
    Channels,
    InboundSms,
    Outcome,
    SendResult,
    StatusReport,
)
from textbridge.contacts.service import contacts, template_values
from textbridge.db import Database
from textbridge.db.engine import after_commit
from textbridge.devices.channel import DeviceChannel
from textbridge.devices.hub import announce
from textbridge.errors import Conflict, NotFound, ValidationFailed
from textbridge.events.service import EventType, record_for_messages
from textbridge.idempotency.service import StoredAnswer
from textbridge.kit.clock import as_utc, utcnow
from textbridge.kit.encoding import segment
from textbridge.kit.ids import new_id
from textbridge.kit.phone import InvalidPhoneNumber, Phone, country_name, parse_phone
from textbridge.kit.secrets import one_time_code
from textbridge.kit.template import Template, has_placeholders, parse
from textbridge.messages.repository import (
    CANCELLING,
    Finished,
    MessageFilter,
    MessageRepository,
)
from textbridge.messages.writer import Acceptance, AcceptanceWriter, IdempotencyClaim
from textbridge.metrics import MESSAGE_TRANSITIONS, MESSAGES_RECEIVED
from textbridge.models import (
    BulkJob,
    Direction,
    Message,
    MessageSend,
    MessageStatus,
    MessageType,
)
from textbridge.settings import Settings

VOICE_LANGUAGES = frozenset(
    [
        "cy-gb",
        "da-dk",
        "de-de",
        "el-gr",
        "en-au",
        "en-gb",
        "en-gb-wls",
        "en-in",
        "en-us",
        "es-es",
        "es-mx",
        "es-us",
        "fr-ca",
        "fr-fr",
        "id-id",
        "is-is",
        "it-it",
        "ja-jp",
        "ko-kr",
        "ms-my",
        "nb-no",
        "nl-nl",
        "pl-pl",
        "pt-br",
        "pt-pt",
        "ro-ro",
        "ru-ru",
        "sv-se",
        "ta-in",
        "th-th",
        "tr-tr",
        "vi-vn",
        "zh-cn",
        "zh-hk",
    ]
)
VOICE_GENDERS = frozenset({"male", "female"})
_ALPHANUMERIC_SENDER = regex.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ._-]{1,11}$")
# Recipients handled between two turns of the event loop (about 3 ms of parsing numbers): a
# 100,000-recipient job took 3 s of parsing alone, and every other request waited for it. A
# single send takes several turns, each behind one slice: 500 made them 75 ms at p50.
_TURN = 100
_PAGE = 1000  # contacts read in one transaction (about 13 ms on SQLite)
# Not yet handed to a channel: ``preparing`` is a committed bulk job's row not yet released
# (messages/writer.py).
_UNSENT = (MessageStatus.PREPARING, MessageStatus.ACCEPTED, MessageStatus.QUEUED)
_PAST_TOLERANCE = timedelta(seconds=60)


class Priority(IntEnum):
    """Lower goes first: verification codes overtake bulk campaigns."""

    URGENT = 0
    NORMAL = 5
    BULK = 9


@dataclass(frozen=True, kw_only=True)
class SendCommand:
    """A request to send one text to one or more recipients, in any dialect."""

    recipients: Sequence[str]
    text: str
    sender: str | None = None
    type: MessageType = MessageType.PLAIN
    schedule_at: datetime | None = None
    ttl_seconds: int | None = None
    custom_id: str | None = None
    extra: dict[str, Any] | None = None
    priority: Priority = Priority.NORMAL
    # A bulk job: up to MAX_BULK_RECIPIENTS, queued behind ordinary traffic, followed in
    # /v1/bulk-jobs. The name says which API started it.
    bulk_source: str | None = None
    # Contacts and groups to send to, besides (or instead of) ``recipients``.
    contacts: Sequence[str] = ()
    groups: Sequence[str] = ()
    # Fill ``{placeholders}`` in the text from each recipient's contact (kit/template.py).
    personalize: bool = False
    # A one-time code in the text: ``{code}`` stands for it and is filled in only when the
    # message is handed to its channel (from this nonce and the server secret), so the code is
    # stored nowhere. (nonce, number of digits).
    one_time_code: tuple[str, int] | None = None
    # The channel to send through, by name ("simulator", "device"); by default the account's
    # phones if it has any, else the first channel able to carry the type.
    channel: str | None = None


@dataclass(frozen=True)
class Accepted:
    batch_id: str
    messages: list[dict[str, Any]]  # the stored rows
    scheduled: bool

    @property
    def total_price_micros(self) -> int:
        """What was charged: nothing for recipients who opted out."""
        return sum(row["price_micros"] for row in self.messages)


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """An ``Idempotency-Key`` request: its key, its fingerprint, and how to render its answer
    (stored with the messages, replayed for a retry)."""

    key: str
    request_hash: str
    render: Callable[[Accepted], StoredAnswer]


@dataclass(frozen=True, slots=True)
class BulkProgress:
    job: BulkJob
    by_status: dict[str, int]

    @classmethod
    def of(cls, accepted: Accepted, source: str) -> BulkProgress:
        """A job just accepted, from its rows: counting 100,000 rows again in the database held
        SQLite (and the event loop) for 100 ms."""
        first = accepted.messages[0]
        job = BulkJob(
            id=accepted.batch_id,
            account_id=first["account_id"],
            total=len(accepted.messages),
            source=source,
            created_at=first["created_at"],
        )
        return cls(job, dict(Counter(str(row["status"]) for row in accepted.messages)))

    @property
    def pending(self) -> int:
        waiting = (*_UNSENT, MessageStatus.DISPATCHING)
        return sum(self.by_status.get(status, 0) for status in waiting)


@dataclass(frozen=True, slots=True)
class QueueFigures:
    depth: int
    oldest_age_seconds: float | None
    by_status: dict[str, int]


def fill_code(text: str, extra: dict[str, Any] | None, secret: str) -> str:
    """Put a one-time code into its message at the last moment (it is stored nowhere)."""
    code = (extra or {}).get("one_time_code")
    if not code:
        return text
    return text.replace("{code}", one_time_code(secret, code["nonce"], code["digits"]))


@dataclass(frozen=True, slots=True)
class PhoneReport:
    """A phone's word on one message: its state (the app's), when, and why it failed."""

    message_id: str
    state: str  # Pending, Processed, Sent, Delivered, Failed, Cancelled
    at: datetime
    sent_at: datetime | None = None
    error: str | None = None


def _by_error(reports: Iterable[PhoneReport]) -> dict[str | None, list[str]]:
    grouped: dict[str | None, list[str]] = defaultdict(list)
    for report in reports:
        grouped[report.error].append(report.message_id)
    return grouped


class MessageService:
    def __init__(self) -> None:
        # Set after a commit that queued messages, so this process's dispatcher starts at once
        # instead of at its next poll.
        self.wakeup = asyncio.Event()

    # Accepting -----------------------------------------------------------------------------

    async def send(
        self,
        caller: Principal,
        command: SendCommand,
        *,
        settings: Settings,
        channels: Channels,
        writer: AcceptanceWriter,
        idempotent: IdempotentRequest | None = None,
    ) -> Accepted | StoredAnswer:
        """Validate, price and store one message per recipient, debiting the account; answers
        once they are committed.

        Raises before writing anything: a bad recipient, text or time is a 400 naming it, a
        balance that does not cover the whole batch is a 402. With ``idempotent`` the answer is
        the rendered answer stored for the key: this request's, or, for a request seen before,
        that one's (and nothing is written)."""
        now = utcnow()
        bulk = command.bulk_source is not None
        limit = settings.max_bulk_recipients if bulk else settings.max_recipients
        by_contact = bool(command.groups or command.contacts)
        phones = await _parse_recipients(command.recipients, limit, allow_empty=by_contact)
        # An MMS may be its picture alone.
        text = _check_text(
            command.text, settings.max_text_length, allow_empty=command.type is MessageType.MMS
        )
        sender = _check_sender(command.sender)
        if command.custom_id is not None and "\x00" in command.custom_id:
            raise ValidationFailed("custom_id must not contain NUL characters", field="custom_id")
        _check_type_fields(command.type, command.extra or {})
        if not channels.carries(command.type):
            raise ValidationFailed(
                f"no channel can send {command.type.value} messages", field="type"
            )
        _check_channel(command.channel, command.type, channels)
        due_at = _check_schedule(command.schedule_at, now, settings)
        ttl = command.ttl_seconds or settings.default_ttl_seconds
        if not 1 <= ttl <= settings.max_ttl_seconds:
            raise ValidationFailed(
                f"ttl_seconds must be between 1 and {settings.max_ttl_seconds}",
                field="ttl_seconds",
            )
        scheduled = due_at > now
        expires_at = due_at + timedelta(seconds=ttl)
        extra = command.extra
        template = parse(text) if command.personalize and has_placeholders(text) else None
        if template is not None and not template.placeholders:
            text, template = template.render({}), None  # only {{ or }}: the same for everyone
        texts: list[str] | None = None  # one per recipient, when the text is a template
        if by_contact or template is not None:
            phones, texts = await _address(
                writer.db, caller, command, phones, template, limit, settings
            )
        if command.one_time_code is not None:
            nonce, digits = command.one_time_code
            extra = {**(extra or {}), "one_time_code": {"nonce": nonce, "digits": digits}}
            segmentation = segment(text.replace("{code}", "0" * digits))
        else:
            segmentation = segment(text)
        segmentations = {text: segmentation}
        prices = await billing.price_table(writer.db)
        batch_id = new_id()
        status = MessageStatus.ACCEPTED if scheduled else MessageStatus.QUEUED
        rows: list[dict[str, Any]] = []
        for index, phone in enumerate(phones):
            await _turn(index)
            body = text if texts is None else texts[index]
            parts = segmentations.get(body)
            if parts is None:
                parts = segmentations[body] = segment(body)
            rows.append(
                {
                    "id": new_id(),
                    "account_id": caller.account_id,
                    "batch_id": batch_id,
                    "direction": Direction.OUT,
                    "phone": phone.e164,
                    "sender": sender,
                    "type": command.type,
                    "text": body,
                    "encoding": parts.encoding,
                    "segments": parts.segments,
                    "region": phone.region,
                    "country": phone.country,
                    "price_micros": parts.segments * billing.unit_price(prices, phone.region),
                    "status": status,
                    "priority": Priority.BULK if bulk else command.priority,
                    "custom_id": command.custom_id,
                    "extra": extra,
                    "attempts": 0,
                    "due_at": due_at,
                    "expires_at": expires_at,
                    "created_at": now,
                    "accepted_at": now,
                    "queued_at": None if scheduled else now,
                    "channel": command.channel,
                }
            )
        accepted = Accepted(batch_id, rows, scheduled)
        claim = None
        if idempotent is not None:
            render = idempotent.render
            claim = IdempotencyClaim(
                idempotent.key, idempotent.request_hash, lambda: render(accepted)
            )
        stored = await writer.submit(
            Acceptance(
                account_id=caller.account_id,
                batch_id=batch_id,
                rows=rows,
                description=f"{len(rows)} message(s)",
                idempotency=claim,
                wakes_dispatcher=not scheduled,
                bulk_job=(
                    {
                        "id": batch_id,
                        "account_id": caller.account_id,
                        "total": len(rows),
                        "source": command.bulk_source,
                        "created_at": now,
                    }
                    if bulk
                    else None
                ),
            )
        )
        return accepted if stored is None else stored

    async def routed_now(
        self, caller: Principal, type: MessageType, named: str | None, channels: Channels
    ) -> str | None:
        """The channel a new message of the caller's would go through if it were dispatched
        now (``Channels.route``), for the answer to a send; None: none can take it yet, so it
        waits queued (``no_route``). The one it went through is the message's ``channel``."""
        device = channels.get(ChannelKind.DEVICE)
        phones = (
            named in (None, ChannelKind.DEVICE)
            and isinstance(device, DeviceChannel)
            and await device.has_phones(caller.account_id)
        )
        channel = channels.route(type, named=named, phones=phones)
        return channel.name if channel is not None else None

    async def receive(
        self, session: AsyncSession, sms: InboundSms, *, settings: Settings
    ) -> dict[str, Any]:
        """Store an inbound SMS (from the simulator, a phone or a carrier)."""
        try:
            phone = parse_phone(sms.phone)
        except InvalidPhoneNumber as exc:
            raise ValidationFailed(str(exc), field="from") from exc
        to = None
        if sms.to:
            try:
                to = parse_phone(sms.to).e164
            except InvalidPhoneNumber as exc:
                raise ValidationFailed(str(exc), field="to") from exc
        text = _check_text(sms.text, settings.max_text_length, allow_empty=True)
        repository = MessageRepository(session)
        if sms.ref and await repository.received_before(sms.account_id, phone.e164, sms.ref):
            return {}  # a channel sending it again (a phone retrying its webhook)
        segmentation = segment(text)
        row = {
            "id": new_id(),
            "account_id": sms.account_id,
            "batch_id": new_id(),
            "direction": Direction.IN,
            "phone": phone.e164,
            "sender": to,
            "type": MessageType.PLAIN,
            "text": text,
            "encoding": segmentation.encoding,
            "segments": segmentation.segments,
            "region": phone.region,
            "country": phone.country,
            "price_micros": 0,
            "status": MessageStatus.RECEIVED,
            "priority": Priority.NORMAL,
            "extra": sms.extra or None,
            "channel_ref": sms.ref,
            "attempts": 0,
            "created_at": sms.received_at,
            "received_at": sms.received_at,
        }
        await repository.insert_many([row])
        await record_for_messages(
            session,
            EventType.MESSAGE_RECEIVED,
            [(str(row["id"]), sms.account_id)],
            {"status": "received"},
        )
        account = await accounts.get(session, sms.account_id)
        await contacts.apply_keyword(session, account, phone, text, sms.received_at)
        after_commit(session, MESSAGES_RECEIVED.inc)
        return row

    # Reading and cancelling ------------------------------------------------------------------

    async def get(self, session: AsyncSession, caller: Principal, message_id: str) -> Message:
        message = await MessageRepository(session).get(caller.account_id, message_id)
        if message is None:
            raise NotFound(f"no message {message_id}", field="id")
        return message

    async def sends(
        self, session: AsyncSession, message_ids: Sequence[str]
    ) -> dict[str, list[MessageSend]]:
        """The send history of messages already read for their caller."""
        return await MessageRepository(session).sends(message_ids)

    async def search(
        self,
        session: AsyncSession,
        caller: Principal,
        where: MessageFilter,
        *,
        limit: int,
        offset: int = 0,
    ) -> Sequence[Message]:
        """Newest first. Prefer the cursor (``where.before``); ``offset`` serves APIs that
        page by number."""
        return await MessageRepository(session).search(
            caller.account_id, where, limit=limit, offset=offset
        )

    async def count(self, session: AsyncSession, caller: Principal) -> int:
        return await MessageRepository(session).count(caller.account_id)

    async def bulk_jobs(
        self, session: AsyncSession, caller: Principal, *, before: str | None, limit: int
    ) -> list[BulkProgress]:
        """The account's bulk jobs, newest first, each with its messages counted by status."""
        repository = MessageRepository(session)
        jobs = await repository.bulk_jobs(caller.account_id, before=before, limit=limit)
        counts = await repository.count_by_batch([job.id for job in jobs])
        return [BulkProgress(job, counts.get(job.id, {})) for job in jobs]

    async def bulk_job(self, session: AsyncSession, caller: Principal, job_id: str) -> BulkProgress:
        repository = MessageRepository(session)
        job = await repository.bulk_job(caller.account_id, job_id)
        if job is None:
            raise NotFound(f"no bulk job {job_id}", field="id")
        counts = await repository.count_by_batch([job.id])
        return BulkProgress(job, counts.get(job.id, {}))

    async def cancel_bulk_job(
        self, session: AsyncSession, caller: Principal, job_id: str
    ) -> BulkProgress:
        """Cancel what of a bulk job has not been handed to a channel yet, refunding it."""
        await self.bulk_job(session, caller, job_id)  # 404 for another account's job
        repository = MessageRepository(session)
        ids = await repository.unsent_in_batch(caller.account_id, job_id)
        now = utcnow()
        for start in range(0, len(ids), 1000):  # bounded IN lists
            finished = await repository.finish(
                ids[start : start + 1000],
                status=MessageStatus.CANCELLED,
                from_statuses=_UNSENT,
                now=now,
                account_id=caller.account_id,
            )
            await self._settle(session, finished, MessageStatus.CANCELLED)
        return await self.bulk_job(session, caller, job_id)

    async def bulk_pending(self, session: AsyncSession, caller: Principal) -> int:
        """Recipients of the account's bulk jobs not yet handed to a channel."""
        return await MessageRepository(session).bulk_pending(caller.account_id)

    async def cancel(self, session: AsyncSession, caller: Principal, message_id: str) -> Message:
        """Cancel a message that has not been handed to a channel yet; its price comes back.

        A message a phone holds (``dispatching``, given to a phone) can be cancelled too, but
        only by the phone: it is asked to (``MessageCancelled``, and ``Cancelling`` in its
        pull) and the answer shows the message still ``dispatching``. It becomes ``cancelled``
        and refunded when the phone reports it cancelled, or when the phone's lease lapses
        without an answer; a phone that had already sent it reports so, and then it is sent
        and charged. Any other status is a 409."""
        repository = MessageRepository(session)
        finished = await repository.finish(
            [message_id],
            status=MessageStatus.CANCELLED,
            from_statuses=(MessageStatus.ACCEPTED, MessageStatus.QUEUED),
            now=utcnow(),
            account_id=caller.account_id,
        )
        if finished:
            await self._settle(session, finished, MessageStatus.CANCELLED)
            return await self.get(session, caller, message_id)
        phone = await repository.cancel_on_phone(caller.account_id, message_id)
        message = await self.get(session, caller, message_id)  # 404 for another account's
        if phone is None:
            raise Conflict(
                f"message {message_id} is {message.status}; only accepted or queued messages, "
                "or ones a phone holds, can be cancelled",
                field="id",
            )
        await announce(session, [phone], "MessageCancelled", {"messageId": message_id})
        return message

    async def queue_figures(
        self, session: AsyncSession, *, by_status: bool = False
    ) -> QueueFigures:
        """How much waits to be sent and how long the oldest has waited."""
        now = utcnow()
        repository = MessageRepository(session)
        depth, oldest = await repository.queue_stats(now)
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
        counts = await repository.count_by_status() if by_status else {}
        return QueueFigures(depth, age, counts)

    # Recording what channels did -------------------------------------------------------------

    async def record_results(
        self,
        session: AsyncSession,
        *,
        owner: str,
        channel: str,
        results: Iterable[SendResult],
        attempts: dict[str, int],
        accounts: dict[str, str],
        settings: Settings,
    ) -> None:
        """Apply a channel's answers to messages this worker holds the lease on (``attempts``
        and ``accounts``: each message's, from the claim)."""
        now = utcnow()
        repository = MessageRepository(session)
        sent: list[tuple[str, str, str | None]] = []
        assigned: list[tuple[str, str, str, int]] = []
        retries: list[tuple[str, datetime, str | None, str | None]] = []
        waiting: list[tuple[str, datetime, str | None, str | None]] = []
        failures: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
        for result in results:
            if result.outcome is Outcome.SENT:
                sent.append((result.message_id, channel, result.channel_ref))
            elif (
                result.outcome is Outcome.ASSIGNED
                and result.device_id is not None
                and result.sim_card_id is not None
            ):
                assigned.append((result.message_id, channel, result.device_id, result.sim_card_id))
            elif result.outcome is Outcome.WAIT:
                due = now + timedelta(seconds=result.retry_after or 1.0)
                waiting.append((result.message_id, due, result.error_code, result.error_message))
            elif result.outcome is Outcome.RETRY and (
                attempts.get(result.message_id, 0) < settings.max_attempts
            ):
                delay = _backoff(attempts.get(result.message_id, 1), result.retry_after, settings)
                due = now + timedelta(seconds=delay)
                retries.append((result.message_id, due, result.error_code, result.error_message))
            else:
                failures[(result.error_code, result.error_message)].append(result.message_id)
        await repository.mark_sent(owner, now, sent)
        # Under our lease every one of them moved (if the lease had lapsed and another worker
        # sent it too, the message was in fact sent twice, and says so twice).
        await repository.add_sends(
            [
                {
                    "message_id": message_id,
                    "attempt": attempts.get(message_id, 0),
                    "channel": name,
                    "channel_ref": ref,
                    "at": now,
                }
                for message_id, name, ref in sent
            ]
        )
        await _record_sent(session, [(message_id, accounts[message_id]) for message_id, *_ in sent])
        await repository.requeue(owner, now, retries)
        await repository.requeue(owner, now, waiting, counted=False)
        await repository.assign(
            owner, assigned, now + timedelta(seconds=settings.device_take_seconds)
        )
        if assigned:  # their phones pull as soon as they hear of it
            phones = [device_id for _, _, device_id, _ in assigned]
            await announce(session, phones, "MessageEnqueued")
        for (code, text), ids in failures.items():
            finished = await repository.finish(
                ids,
                status=MessageStatus.FAILED,
                from_statuses=(MessageStatus.DISPATCHING,),
                now=now,
                owner=owner,
                error_code=code or "failed",
                error_message=text,
            )
            await self._settle(session, finished, MessageStatus.FAILED)

    async def given_to_phone(
        self, session: AsyncSession, device_id: str, *, newest_first: bool, settings: Settings
    ) -> list[tuple[Message, str, bool]]:
        """What a phone pulls: each message with its text as it is sent (a one-time code
        filled in now; it is stored nowhere), and whether the phone is to cancel it."""
        given = await MessageRepository(session).given_to(
            device_id,
            newest_first=newest_first,
            limit=100,
            lease_until=utcnow() + timedelta(seconds=settings.device_take_seconds),
        )
        secret = settings.resolved_secret_key
        return [
            (
                message,
                fill_code(message.text, message.extra, secret),
                (message.lease_owner or "").startswith(CANCELLING),
            )
            for message in given
        ]

    async def record_phone_reports(
        self,
        session: AsyncSession,
        device_id: str,
        reports: Sequence[PhoneReport],
        settings: Settings,
    ) -> None:
        """What a phone says became of the messages it was given. Ids it was not given are
        ignored; a state a message has already passed changes nothing.

        A report also renews the phone's hold on every message it took: it is working through
        them, one at a time and at its own pace (the app's interval and limits), so
        ``DEVICE_SEND_SECONDS`` is how long it may be silent, not how long a hundred may take.
        Counted from the taking, a hold lapsed under a phone still sending, and another phone
        was given what the first then sent (its report was ignored: no longer its message)."""
        repository = MessageRepository(session)
        accounts = await repository.of_device(device_id, [r.message_id for r in reports])
        mine = [report for report in reports if report.message_id in accounts]
        taken = [r.message_id for r in mine if r.state in ("Pending", "Processed")]
        now = utcnow()
        hold = timedelta(seconds=settings.device_send_seconds)
        await repository.taken(device_id, taken, now + hold)
        # Renewed once a tenth of the hold has passed: not a write per row on every report.
        await repository.renew_taken(device_id, now + hold, expiring_before=now + hold * 0.9)
        # Delivered and failed-after-sending imply sent: recorded first, with its event.
        sent = [
            (r.message_id, r.sent_at or r.at)
            for r in mine
            if r.state in ("Sent", "Delivered") or (r.state == "Failed" and r.sent_at)
        ]
        moved = await repository.sent_by_phone(device_id, sent)
        await repository.record_sends(moved, acknowledged=True)
        await _record_sent(session, [(i, accounts[i]) for i in moved])
        now = utcnow()
        for state, status, origins in (
            ("Delivered", MessageStatus.DELIVERED, (MessageStatus.SENT,)),
            ("Failed", MessageStatus.FAILED, (MessageStatus.SENT, MessageStatus.DISPATCHING)),
            ("Cancelled", MessageStatus.CANCELLED, (MessageStatus.DISPATCHING,)),
        ):
            for error, ids in _by_error(r for r in mine if r.state == state).items():
                finished = await repository.finish(
                    ids,
                    status=status,
                    from_statuses=origins,
                    now=now,
                    error_code="phone_failed" if status is MessageStatus.FAILED else None,
                    error_message=error,
                )
                await self._settle(session, finished, status)

    async def record_reports(self, session: AsyncSession, reports: Iterable[StatusReport]) -> None:
        """Apply delivery reports. A report can overtake the ``sent`` record of its own message,
        so ``dispatching`` messages accept it too."""
        groups: dict[tuple[MessageStatus, str | None, str | None], list[str]] = defaultdict(list)
        for report in reports:
            groups[(report.status, report.error_code, report.error_message)].append(
                report.message_id
            )
        repository = MessageRepository(session)
        now = utcnow()
        for (status, code, text), ids in groups.items():
            finished = await repository.finish(
                ids,
                status=status,
                from_statuses=(MessageStatus.SENT, MessageStatus.DISPATCHING),
                now=now,
                error_code=code,
                error_message=text,
            )
            await self._settle(session, finished, status)

    async def cancel_unanswered(self, session: AsyncSession, *, limit: int = 1000) -> int:
        """Messages a phone was asked to cancel and never answered for, before its lease
        lapsed, are cancelled and refunded: a silent phone must not hold them forever, and
        no other SIM may send them."""
        now = utcnow()
        repository = MessageRepository(session)
        ids = await repository.unanswered_cancels(now, limit)
        finished = await repository.finish(
            ids, status=MessageStatus.CANCELLED, from_statuses=(MessageStatus.DISPATCHING,), now=now
        )
        await self._settle(session, finished, MessageStatus.CANCELLED)
        return len(finished)

    async def expire_due(self, session: AsyncSession, *, limit: int = 1000) -> int:
        """Messages past their validity that never got out (or never got a report) expire."""
        now = utcnow()
        repository = MessageRepository(session)
        ids = await repository.due_to_expire(now, limit)
        finished = await repository.finish(
            ids,
            status=MessageStatus.EXPIRED,
            from_statuses=(MessageStatus.ACCEPTED, MessageStatus.QUEUED, MessageStatus.SENT),
            now=now,
            error_code="expired",
            error_message="validity period ended before delivery",
        )
        await self._settle(session, finished, MessageStatus.EXPIRED)
        return len(finished)

    async def _settle(
        self, session: AsyncSession, finished: list[Finished], status: MessageStatus
    ) -> None:
        """Refund messages that reached a final status without being delivered; the events of
        the change."""
        kind = _EVENT_OF_STATUS.get(status)
        if kind is not None:
            await record_for_messages(
                session, kind, [(f.id, f.account_id) for f in finished], {"status": status.value}
            )
        if status is not MessageStatus.DELIVERED:
            await billing.refund(
                session,
                (Refund(f.account_id, f.id, f.price_micros, status.value) for f in finished),
            )
        _count_after_commit(session, status, len(finished))


_EVENT_OF_STATUS = {
    MessageStatus.DELIVERED: EventType.MESSAGE_DELIVERED,
    MessageStatus.FAILED: EventType.MESSAGE_FAILED,
    MessageStatus.EXPIRED: EventType.MESSAGE_EXPIRED,
}


async def _record_sent(session: AsyncSession, messages: Sequence[tuple[str, str]]) -> None:
    """What goes with messages (id, account id) that moved to ``sent``: their event, counted.
    (Their send is in their history already.)"""
    await record_for_messages(session, EventType.MESSAGE_SENT, messages, {"status": "sent"})
    _count_after_commit(session, MessageStatus.SENT, len(messages))


def _count_after_commit(session: AsyncSession, status: MessageStatus, count: int) -> None:
    if count:
        after_commit(session, lambda: MESSAGE_TRANSITIONS.labels(status).inc(count))


def _backoff(attempt: int, hint: float | None, settings: Settings) -> float:
    """Exponential backoff with full jitter, never sooner than the channel asked."""
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempt - 1))
    return max(hint or 0.0, random.uniform(ceiling / 2, ceiling))


async def _address(
    db: Database,
    caller: Principal,
    command: SendCommand,
    phones: list[Phone],
    template: Template | None,
    limit: int,
    settings: Settings,
) -> tuple[list[Phone], list[str] | None]:
    """Every recipient of a message to numbers, contacts and groups (each phone once, in that
    order), and, when the text is a template, each one's text."""
    async with db.transaction() as session:
        named = await contacts.recipients(
            session, caller.account_id, contact_ids=command.contacts, group_ids=command.groups
        )
    # The groups' members, and the contacts of the numbers for a template, a page at a time,
    # each page its own transaction: 100,000 in one read held SQLite, and so every request,
    # for more than a second.
    after = None
    while command.groups:
        async with db.transaction() as session:
            page = await contacts.members(
                session, caller.account_id, command.groups, after=after, limit=_PAGE
            )
        named += page
        if len(page) < _PAGE:
            break
        after = page[-1].id
    known = {contact.phone: contact for contact in named}
    if template is not None:
        bare = [phone.e164 for phone in phones if phone.e164 not in known]
        for start in range(0, len(bare), _PAGE):
            async with db.transaction() as session:
                known.update(
                    await contacts.recipients_by_phone(
                        session, caller.account_id, bare[start : start + _PAGE]
                    )
                )
    recipients = phones
    if named:
        everyone = {phone.e164: phone for phone in phones}
        for contact in named:
            if contact.phone not in everyone:  # stored parsed: no need to parse it again
                everyone[contact.phone] = Phone(
                    contact.phone, contact.region, country_name(contact.region)
                )
        recipients = list(everyone.values())
    if not recipients:
        raise ValidationFailed("the groups have no contacts: no one to send to", field="groups")
    if len(recipients) > limit:
        raise ValidationFailed(
            f"{len(recipients)} recipients; at most {limit} per request"
            + ("" if command.bulk_source else " (a bulk job takes more)"),
            field="to",
        )
    if template is None:
        return recipients, None
    values = []
    for index, phone in enumerate(recipients):
        await _turn(index)
        values.append(template_values(known.get(phone.e164), phone.e164))
    missing = template.unfillable(values)
    if missing:
        raise ValidationFailed(
            "no recipient has a value for "
            + ", ".join(f"{{{name}}}" for name in missing)
            + f"; give a fallback, as in {{{missing[0]}|friend}}, or check the spelling",
            field="text",
        )
    texts = []
    for index, (phone, value) in enumerate(zip(recipients, values, strict=True)):
        await _turn(index)
        body = template.render(value)
        texts.append(body)
        if len(body) > settings.max_text_length:
            raise ValidationFailed(
                f"text for {phone.e164} is {len(body)} characters once filled in; "
                f"the limit is {settings.max_text_length}",
                field="text",
            )
    return recipients, texts


async def _turn(index: int) -> None:
    """Let other requests in every ``_TURN`` recipients."""
    if index % _TURN == _TURN - 1:
        await asyncio.sleep(0)


async def _parse_recipients(
    recipients: Sequence[str], limit: int, *, allow_empty: bool = False
) -> list[Phone]:
    if not recipients and not allow_empty:
        raise ValidationFailed("at least one recipient is needed", field="to")
    if len(recipients) > limit:
        raise ValidationFailed(
            f"{len(recipients)} recipients; at most {limit} per request", field="to"
        )
    phones = []
    single = len(recipients) == 1
    for index, raw in enumerate(recipients):
        await _turn(index)
        try:
            phones.append(parse_phone(raw))
        except InvalidPhoneNumber as exc:
            field_name = "to" if single else f"to[{index}]"
            raise ValidationFailed(str(exc), field=field_name) from exc
    return phones


def _check_text(text: str, limit: int, *, allow_empty: bool = False) -> str:
    if not text and not allow_empty:
        raise ValidationFailed("text must not be empty", field="text")
    if len(text) > limit:
        raise ValidationFailed(
            f"text is {len(text)} characters; the limit is {limit}", field="text"
        )
    if "\x00" in text:
        raise ValidationFailed("text must not contain NUL characters", field="text")
    return text


def _check_type_fields(kind: MessageType, extra: dict[str, Any]) -> None:
    """What a voice or MMS message needs besides its text (kept in ``extra``)."""
    if kind is MessageType.VOICE:
        if extra.get("language") not in VOICE_LANGUAGES:
            raise ValidationFailed(
                "language is required for voice messages: one of "
                + ", ".join(sorted(VOICE_LANGUAGES)),
                field="language",
            )
        if extra.get("gender") not in VOICE_GENDERS:
            raise ValidationFailed(
                "gender is required for voice messages: male or female", field="gender"
            )
    if kind is MessageType.MMS:
        url = extra.get("media_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValidationFailed(
                "media_url (an http or https URL) is required for mms", field="media_url"
            )


def _check_channel(name: str | None, type: MessageType, channels: Channels) -> None:
    """A channel asked for by name exists here and carries the message's type."""
    if name is None:
        return
    channel = channels.get(name)
    if channel is None:
        known = ", ".join(sorted(c.name for c in channels))
        raise ValidationFailed(f"channel must be one of: {known}", field="channel")
    if type not in channel.capabilities.message_types:
        raise ValidationFailed(
            f"channel {name} does not send {type.value} messages", field="channel"
        )


def _check_sender(sender: str | None) -> str | None:
    if sender is None or sender == "":
        return None
    if sender.lstrip("+").isdigit():
        try:
            return parse_phone(sender).e164
        except InvalidPhoneNumber as exc:
            raise ValidationFailed(str(exc), field="sender") from exc
    if not _ALPHANUMERIC_SENDER.match(sender):
        raise ValidationFailed(
            "sender must be a phone number or 1 to 11 letters and digits", field="sender"
        )
    return sender


def _check_schedule(schedule_at: datetime | None, now: datetime, settings: Settings) -> datetime:
    if schedule_at is None:
        return now
    try:
        moment = as_utc(schedule_at)
    except OverflowError as exc:  # e.g. year 1 at +14:00 is before the first UTC moment
        raise ValidationFailed("schedule_at is out of range", field="schedule_at") from exc
    if moment < now - _PAST_TOLERANCE:
        raise ValidationFailed("schedule_at is in the past", field="schedule_at")
    if moment > now + timedelta(days=settings.max_schedule_days):
        raise ValidationFailed(
            f"schedule_at is more than {settings.max_schedule_days} days ahead",
            field="schedule_at",
        )
    return max(moment, now)


messages = MessageService()
