"""All SQL for messages: inserts, reads, the queue claim and every status transition.

Each transition is one conditional UPDATE (``WHERE status IN (...)``), so two actors racing on
one message (a report and an expiry, two workers) can never both apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.models import (
    BulkJob,
    Conversation,
    Direction,
    Message,
    MessageSend,
    MessageStatus,
)

_STATUS_TIME = {
    MessageStatus.ACCEPTED: Message.accepted_at,
    MessageStatus.QUEUED: Message.queued_at,
    MessageStatus.DISPATCHING: Message.dispatching_at,
    MessageStatus.SENT: Message.sent_at,
    MessageStatus.DELIVERED: Message.delivered_at,
    MessageStatus.FAILED: Message.failed_at,
    MessageStatus.EXPIRED: Message.expired_at,
    MessageStatus.CANCELLED: Message.cancelled_at,
    MessageStatus.RECEIVED: Message.received_at,
}

QUEUE_CHANNEL = "textbridge_queue"  # PostgreSQL LISTEN/NOTIFY channel: "work is due"

_TABLE = cast(Table, Message.__table__)  # Core table, for executemany updates by id

# Lease owners of a message a phone holds, before its device id: given (``d:``), taken
# (``t:``), asked to cancel (``c:``). A dispatcher's owner is a bare id.
CANCELLING = "c:"
_HELD_BY_PHONE = ("d:", "t:", CANCELLING)

_CLAIM_COLUMNS = (
    Message.id,
    Message.account_id,
    Message.phone,
    Message.sender,
    Message.type,
    Message.text,
    Message.encoding,
    Message.segments,
    Message.attempts,
    Message.extra,
    Message.channel,
)


def _not_another_phones(device_id: str) -> tuple[ColumnElement[bool], ...]:
    """A message last given to this phone that no other phone or channel has since: held by
    this phone, back in the queue, or claimed by a dispatcher that has not chosen a phone for
    it yet (choosing one makes it that phone's, ``assign``). A report of this phone's about
    it is the truth: it has the message."""
    return (
        Message.device_id == device_id,
        or_(
            Message.status == MessageStatus.QUEUED,
            and_(Message.status == MessageStatus.DISPATCHING, Message.handed_at.is_(None)),
        ),
    )


def _preparing() -> ColumnElement[bool]:
    # ``status || ''``: the same test, which SQLite cannot answer from an index. Without
    # statistics it would otherwise pick ix_messages_queue over the primary key and walk every
    # preparing row of the job (100,000) for each chunk of ids.
    return _TABLE.c.status.concat("") == MessageStatus.PREPARING.value


@dataclass(frozen=True, slots=True)
class MessageFilter:
    status: MessageStatus | None = None
    direction: str | None = None
    batch_id: str | None = None
    phone: str | None = None
    id_from: str | None = None  # inclusive, from a time range
    id_to: str | None = None
    before: str | None = None  # cursor: ids strictly below


@dataclass(frozen=True, slots=True)
class Finished:
    """A message that just reached a final status, with what it cost."""

    id: str
    account_id: str
    price_micros: int


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        # Core insert on the session's connection: the ORM's bulk path adds ~30% per row.
        if not rows:
            return
        connection = await self.session.connection()
        await connection.execute(insert(_TABLE), list(rows))

    async def get(self, account_id: str, message_id: str) -> Message | None:
        result = await self.session.execute(
            select(Message).where(Message.id == message_id, Message.account_id == account_id)
        )
        return result.scalar_one_or_none()

    async def search(
        self, account_id: str, where: MessageFilter, *, limit: int, offset: int = 0
    ) -> Sequence[Message]:
        query = select(Message).where(
            Message.account_id == account_id, Message.status != MessageStatus.PREPARING
        )
        if where.status is not None:
            query = query.where(Message.status == where.status)
        if where.direction is not None:
            query = query.where(Message.direction == where.direction)
        if where.batch_id is not None:
            query = query.where(Message.batch_id == where.batch_id)
        if where.phone is not None:
            query = query.where(Message.phone == where.phone)
        if where.id_from is not None:
            query = query.where(Message.id >= where.id_from)
        if where.id_to is not None:
            query = query.where(Message.id <= where.id_to)
        if where.before is not None:
            query = query.where(Message.id < where.before)
        result = await self.session.execute(
            query.order_by(Message.id.desc()).offset(offset).limit(limit)
        )
        return result.scalars().all()

    async def insert_bulk_jobs(self, jobs: Sequence[dict[str, Any]]) -> None:
        if jobs:
            await self.session.execute(insert(BulkJob), list(jobs))

    # A bulk job written in chunks (messages/writer.py) ------------------------------------

    async def update_prepared(self, ids: Sequence[str], **values: Any) -> None:
        await self.session.execute(
            update(_TABLE).where(_TABLE.c.id.in_(ids), _preparing()).values(**values)
        )

    async def release_prepared(self, ids: Sequence[str]) -> None:
        """``preparing`` rows of a committed job join the others: ``accepted`` when scheduled
        for later, else ``queued``; and their conversations are brought up to date, as the
        trigger on ``messages`` does for every other row (migration 0010)."""
        await self.session.execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_(ids), _preparing())
            .values(
                status=case(
                    (_TABLE.c.due_at > _TABLE.c.created_at, MessageStatus.ACCEPTED.value),
                    else_=MessageStatus.QUEUED.value,
                )
            )
        )
        await self.upsert_conversations(ids)

    async def discard_prepared(self, ids: Sequence[str]) -> None:
        """Rows of a job that was never committed. Never those of one that was: a commit
        point that failed as the database went away may have committed all the same, and
        its rows are then released by ``recover_prepared``, not lost."""
        committed = exists().where(BulkJob.id == _TABLE.c.batch_id)
        await self.session.execute(
            delete(_TABLE).where(_TABLE.c.id.in_(ids), _preparing(), ~committed)
        )

    async def upsert_conversations(self, ids: Sequence[str]) -> None:
        """The conversations of outbound messages ``ids``, each moved to its newest message
        (what the trigger does for rows inserted in any other status). Phones in key order:
        concurrent upserts lock shared conversations in the same order."""
        newest = (
            select(func.max(Message.id))
            .where(Message.id.in_(ids))
            .group_by(Message.account_id, Message.phone)
        )
        rows = (
            select(
                Message.account_id,
                Message.phone,
                Message.id,
                Message.direction,
                func.substr(Message.text, 1, 200),
                Message.created_at,
                literal(0),
            )
            .where(Message.id.in_(newest))
            .order_by(Message.account_id, Message.phone)
        )
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        table = cast(Table, Conversation.__table__)
        columns = ["account_id", "phone", "last_message_id", "last_direction", "last_text"]
        upsert = dialect.insert(table).from_select([*columns, "last_message_at", "unread"], rows)
        await self.session.execute(
            upsert.on_conflict_do_update(
                index_elements=["account_id", "phone"],
                set_={name: upsert.excluded[name] for name in [*columns[2:], "last_message_at"]},
                where=upsert.excluded.last_message_id > table.c.last_message_id,
            )
        )

    async def prepared(self, batch_id: str) -> Sequence[str]:
        """Ids of a batch's ``preparing`` rows."""
        result = await self.session.execute(
            select(Message.id).where(
                Message.batch_id == batch_id, Message.status == MessageStatus.PREPARING
            )
        )
        return result.scalars().all()

    async def stale_prepared(self, before: datetime) -> Sequence[Row[str, bool]]:
        """Batches with ``preparing`` rows written before ``before``, each with whether its job
        was committed (its ``bulk_jobs`` row exists)."""
        result = await self.session.execute(
            select(Message.batch_id, BulkJob.id.is_not(None))
            .outerjoin(BulkJob, BulkJob.id == Message.batch_id)
            .where(Message.status == MessageStatus.PREPARING, Message.created_at < before)
            .distinct()
        )
        return result.all()

    async def bulk_jobs(
        self, account_id: str, *, before: str | None, limit: int
    ) -> Sequence[BulkJob]:
        query = select(BulkJob).where(BulkJob.account_id == account_id)
        if before is not None:
            query = query.where(BulkJob.id < before)
        result = await self.session.execute(query.order_by(BulkJob.id.desc()).limit(limit))
        return result.scalars().all()

    async def bulk_job(self, account_id: str, job_id: str) -> BulkJob | None:
        result = await self.session.execute(
            select(BulkJob).where(BulkJob.id == job_id, BulkJob.account_id == account_id)
        )
        return result.scalar_one_or_none()

    async def count_by_batch(self, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        if not batch_ids:
            return {}
        result = await self.session.execute(
            select(Message.batch_id, Message.status, func.count())
            .where(Message.batch_id.in_(batch_ids))
            .group_by(Message.batch_id, Message.status)
        )
        counts: dict[str, dict[str, int]] = {}
        for batch_id, status, count in result.all():
            counts.setdefault(batch_id, {})[status] = int(count)
        return counts

    async def unsent_in_batch(self, account_id: str, batch_id: str) -> Sequence[str]:
        """Ids of a batch's messages not yet handed to a channel."""
        result = await self.session.execute(
            select(Message.id).where(
                Message.account_id == account_id,
                Message.batch_id == batch_id,
                Message.status.in_(
                    [MessageStatus.PREPARING, MessageStatus.ACCEPTED, MessageStatus.QUEUED]
                ),
            )
        )
        return result.scalars().all()

    async def bulk_pending(self, account_id: str) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(Message)
            .join(BulkJob, BulkJob.id == Message.batch_id)
            .where(
                BulkJob.account_id == account_id,
                Message.status.in_(
                    [
                        MessageStatus.PREPARING,
                        MessageStatus.ACCEPTED,
                        MessageStatus.QUEUED,
                        MessageStatus.DISPATCHING,
                    ]
                ),
            )
        )
        return int(result.scalar_one())

    async def count(self, account_id: str) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(Message).where(Message.account_id == account_id)
        )
        return int(result.scalar_one())

    # The queue ---------------------------------------------------------------------------

    async def claim(
        self, *, now: datetime, lease_until: datetime, owner: str, limit: int
    ) -> Sequence[Row[Any]]:
        """Take up to ``limit`` due queued messages under a lease, most urgent first.

        On PostgreSQL ``SKIP LOCKED`` lets many workers claim side by side without waiting on
        each other; SQLite has one writer at a time, so the plain subquery is already exclusive.
        """
        due = (
            select(Message.id)
            .where(Message.status == MessageStatus.QUEUED, Message.due_at <= now)
            .order_by(Message.priority, Message.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            update(Message)
            .where(Message.id.in_(due.scalar_subquery()))
            .values(
                status=MessageStatus.DISPATCHING,
                dispatching_at=now,
                lease_expires_at=lease_until,
                lease_owner=owner,
                handed_at=None,
                attempts=Message.attempts + 1,
            )
            .returning(*_CLAIM_COLUMNS)
        )
        return result.all()

    async def hand_over(
        self,
        owner: str,
        channel: str,
        ids: Sequence[str],
        now: datetime,
        lease_until: datetime,
        *,
        rest: Sequence[str] = (),
    ) -> list[str]:
        """Messages this claim is about to give ``channel``; answers those it still holds
        (the others' lease lapsed and they are someone else's now: they must not go). Their
        lease, and that of the ``rest`` of the claim, runs again from now: a worker that is
        alive and working keeps its claim however long its round, and one that died loses
        it a lease after its last chunk. If it dies before their answers are recorded,
        whoever finds the lease lapsed asks the channel first."""
        if rest:
            await self.session.execute(
                update(Message)
                .where(
                    Message.id.in_(rest),
                    Message.status == MessageStatus.DISPATCHING,
                    Message.lease_owner == owner,
                )
                .values(lease_expires_at=lease_until)
            )
        if not ids:
            return []
        result = await self.session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.status == MessageStatus.DISPATCHING,
                Message.lease_owner == owner,
            )
            .values(handed_to=channel, handed_at=now, lease_expires_at=lease_until)
            .returning(Message.id)
        )
        return list(result.scalars())

    async def take_lapsed_handoffs(
        self, *, now: datetime, lease_until: datetime, owner: str, limit: int
    ) -> Sequence[Row[Any]]:
        """Messages handed to a channel by a claim whose lease lapsed before it recorded the
        channel's answer (its process died): taken under a new lease, to ask the channel."""
        lapsed = (
            select(Message.id)
            .where(
                Message.status == MessageStatus.DISPATCHING,
                Message.lease_expires_at < now,
                Message.handed_at.is_not(None),
            )
            .order_by(Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            update(Message)
            .where(Message.id.in_(lapsed.scalar_subquery()))
            .values(lease_expires_at=lease_until, lease_owner=owner)
            .returning(*_CLAIM_COLUMNS, Message.handed_to)
        )
        return result.all()

    async def record_sends(self, ids: Sequence[str], *, acknowledged: bool) -> None:
        """A send of each message in its history, as its row says now (attempt, channel, its
        reference, and when: ``sent_at``, or ``handed_at`` when the answer was lost): for
        messages that just moved, or that this claim holds."""
        if not ids:
            return
        at = Message.sent_at if acknowledged else Message.handed_at
        channel = Message.channel if acknowledged else Message.handed_to
        ref = Message.channel_ref if acknowledged else null()
        await self.session.execute(
            insert(MessageSend).from_select(
                ["message_id", "attempt", "channel", "channel_ref", "at", "acknowledged"],
                select(
                    Message.id,
                    Message.attempts,
                    channel,
                    ref,
                    at,
                    literal(acknowledged),
                ).where(Message.id.in_(ids)),
            )
        )

    async def add_sends(self, sends: Sequence[dict[str, Any]]) -> None:
        """Sends a channel acknowledged, as it said them (``message_id``, ``attempt``,
        ``channel``, ``channel_ref``, ``at``): whether or not the message moved, as one sent
        by a claim that had lost its lease went out all the same."""
        if sends:
            await self.session.execute(
                insert(MessageSend), [{**send, "acknowledged": True} for send in sends]
            )

    async def sends(self, message_ids: Sequence[str]) -> dict[str, list[MessageSend]]:
        """Each message's sends, oldest first."""
        result = await self.session.execute(
            select(MessageSend)
            .where(MessageSend.message_id.in_(message_ids))
            .order_by(MessageSend.message_id, MessageSend.id)
        )
        history: dict[str, list[MessageSend]] = {}
        for send in result.scalars():
            history.setdefault(send.message_id, []).append(send)
        return history

    async def promote_scheduled(self, now: datetime) -> int:
        """Scheduled messages whose time has come join the queue."""
        result = await self.session.execute(
            update(Message)
            .where(Message.status == MessageStatus.ACCEPTED, Message.due_at <= now)
            .values(status=MessageStatus.QUEUED, queued_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def release_lapsed_leases(self, now: datetime) -> int:
        """Messages whose worker died mid-dispatch go back to the queue; not those being
        cancelled on a phone (``unanswered_cancels``), which no other SIM may send."""
        result = await self.session.execute(
            update(Message)
            .where(
                Message.status == MessageStatus.DISPATCHING,
                Message.lease_expires_at < now,
                Message.lease_owner.not_like(f"{CANCELLING}%"),
                # A channel may have these: it is asked first (``take_lapsed_handoffs``).
                Message.handed_at.is_(None),
            )
            .values(
                status=MessageStatus.QUEUED,
                queued_at=now,
                due_at=now,
                lease_expires_at=None,
                lease_owner=None,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_sent(
        self, owner: str, now: datetime, sent: Iterable[tuple[str, str, str | None]]
    ) -> None:
        """``sent``: (message id, channel name, channel reference) for each, under our lease."""
        await self._update_held(
            owner,
            [{"m_id": i, "m_channel": c, "m_ref": r} for i, c, r in sent],
            status=MessageStatus.SENT,
            sent_at=now,
            channel=bindparam("m_channel"),
            channel_ref=bindparam("m_ref"),
            # A temporary error of an earlier attempt is no longer the message's state.
            error_code=None,
            error_message=None,
        )

    async def requeue(
        self,
        owner: str,
        now: datetime,
        retries: Iterable[tuple[str, datetime, str | None, str | None]],
        *,
        counted: bool = True,
    ) -> None:
        """Back to the queue after a temporary error: (id, when, error code, error message).
        Not ``counted``: the claim's attempt is given back (nobody could take it)."""
        extra = {} if counted else {"attempts": _TABLE.c.attempts - 1}
        await self._update_held(
            owner,
            [{"m_id": i, "m_due": d, "m_code": c, "m_text": t} for i, d, c, t in retries],
            status=MessageStatus.QUEUED,
            queued_at=now,
            due_at=bindparam("m_due"),
            error_code=bindparam("m_code"),
            error_message=bindparam("m_text"),
            **extra,
        )

    async def assign(
        self,
        owner: str,
        assigned: Iterable[tuple[str, str, str, int]],
        lease_until: datetime,
    ) -> None:
        """Give messages to phones: (message id, channel, device id, SIM id). They stay
        ``dispatching``, held by the phone (``d:<device id>``, ``t:<device id>`` once it
        took them, ``c:<device id>`` once it is asked to cancel them); if it does not take
        them before ``lease_until``, back to the queue."""
        rows = [
            {"m_id": i, "m_channel": c, "m_device": d, "m_sim": s, "m_owner": f"d:{d}"}
            for i, c, d, s in assigned
        ]
        if not rows:
            return
        rows.sort(key=lambda row: str(row["m_id"]))
        await self.session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.id == bindparam("m_id"),
                _TABLE.c.status == MessageStatus.DISPATCHING,
                _TABLE.c.lease_owner == owner,
            )
            .values(
                channel=bindparam("m_channel"),
                device_id=bindparam("m_device"),
                sim_card_id=bindparam("m_sim"),
                lease_owner=bindparam("m_owner"),
                lease_expires_at=lease_until,
                # What it waited for (a SIM, a route) is no longer its state.
                error_code=None,
                error_message=None,
            ),
            rows,
        )

    async def received_before(self, account_id: str, phone: str, ref: str) -> bool:
        """Whether an inbound message with this channel reference is stored (the index on
        account and phone narrows it to the conversation)."""
        result = await self.session.execute(
            select(Message.id).where(
                Message.account_id == account_id,
                Message.phone == phone,
                Message.direction == Direction.IN,
                Message.channel_ref == ref,
            )
        )
        return result.first() is not None

    # A phone's side --------------------------------------------------------------------------

    async def given_to(
        self, device_id: str, *, newest_first: bool, limit: int, lease_until: datetime
    ) -> list[Message]:
        """What the phone was given and has not taken yet, and what it is asked to cancel: the
        pull answers them until the phone reports a state, so a lost answer loses nothing.

        The pull hands them over: a given message is held for the phone until ``lease_until``
        (its time to say it took it, from now: one pulled just before its hold lapsed had
        none), and only what the phone still holds as it pulls is answered (a hold that lapsed
        meanwhile is the queue's). A message to cancel keeps its lease's end."""
        given = f"d:{device_id}"
        held = (
            Message.device_id == device_id,
            Message.status == MessageStatus.DISPATCHING,
            Message.lease_owner.in_([given, f"{CANCELLING}{device_id}"]),
        )
        first = (
            select(Message.id)
            .where(*held)
            .order_by(Message.priority, Message.id.desc() if newest_first else Message.id)
            .limit(limit)
        )
        result = await self.session.execute(
            update(Message)
            .where(Message.id.in_(first.scalar_subquery()), *held)
            .values(
                lease_expires_at=case(
                    (Message.lease_owner == given, lease_until), else_=Message.lease_expires_at
                )
            )
            .returning(Message)
            .execution_options(synchronize_session=False)
        )
        answered = list(result.scalars())
        answered.sort(key=lambda message: message.id, reverse=newest_first)
        answered.sort(key=lambda message: message.priority)  # stable: by id within a priority
        return answered

    async def of_device(self, device_id: str, ids: Sequence[str]) -> dict[str, str]:
        """Those of ``ids`` given to this phone, with their accounts (the others are ignored,
        as the app expects)."""
        if not ids:
            return {}
        result = await self.session.execute(
            select(Message.id, Message.account_id).where(
                Message.id.in_(ids), Message.device_id == device_id
            )
        )
        return {message_id: account_id for message_id, account_id in result.all()}

    async def taken(self, device_id: str, ids: Sequence[str], lease_until: datetime) -> None:
        """The phone has them, held for it until ``lease_until`` (``renew_taken``); what it
        reported sent never goes back to the queue.

        Also those its hold on lapsed before this report came, as long as no other phone has
        them (back in the queue, or claimed by a dispatcher that has not given them to a
        phone yet): the phone will send them, so another must not. Not one it is asked to
        cancel (it answers ``Cancelled`` or ``Sent``)."""
        if not ids:
            return
        await self.session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                *_not_another_phones(device_id),
                Message.lease_owner.is_distinct_from(f"{CANCELLING}{device_id}"),
            )
            .values(
                status=MessageStatus.DISPATCHING,
                lease_owner=f"t:{device_id}",
                lease_expires_at=lease_until,
            )
        )

    async def renew_taken(
        self, device_id: str, lease_until: datetime, *, expiring_before: datetime
    ) -> None:
        """The phone is working through what it took: its holds that end before
        ``expiring_before`` now end at ``lease_until``."""
        await self.session.execute(
            update(Message)
            .where(
                Message.device_id == device_id,
                Message.status == MessageStatus.DISPATCHING,
                Message.lease_owner == f"t:{device_id}",
                Message.lease_expires_at < expiring_before,
            )
            .values(lease_expires_at=lease_until)
        )

    async def cancel_on_phone(self, account_id: str, message_id: str) -> str | None:
        """Ask the phone holding a message to cancel it: its lease owner becomes
        ``c:<device id>`` (the lease keeps its end). Answers the phone, or None when no phone
        holds it (not dispatching, or still with the dispatcher)."""
        held = or_(
            *(Message.lease_owner == prefix + Message.device_id for prefix in _HELD_BY_PHONE)
        )
        result = await self.session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.account_id == account_id,
                Message.status == MessageStatus.DISPATCHING,
                held,
            )
            .values(lease_owner=CANCELLING + Message.device_id)
            .returning(Message.device_id)
            .execution_options(synchronize_session=False)
        )
        device_id: str | None = result.scalar_one_or_none()
        return device_id

    async def unanswered_cancels(self, now: datetime, limit: int) -> Sequence[str]:
        """Messages a phone was asked to cancel and whose lease lapsed without its answer."""
        result = await self.session.execute(
            select(Message.id)
            .where(
                Message.status == MessageStatus.DISPATCHING,
                Message.lease_expires_at < now,
                Message.lease_owner.like(f"{CANCELLING}%"),
            )
            .limit(limit)
        )
        return result.scalars().all()

    async def sent_by_phone(
        self, device_id: str, sent: Sequence[tuple[str, datetime]]
    ) -> list[str]:
        """(id, when) the phone sent, even one it was asked to cancel (too late), or one
        whose hold lapsed before the report came and that no other phone has (back in the
        queue, or claimed by a dispatcher that has not given it to a phone yet: the phone's
        word is the truth, and sending it again would send it twice); answers those that
        moved to ``sent``."""
        moved = []
        for message_id, at in sorted(sent):
            result = await self.session.execute(
                update(Message)
                .where(Message.id == message_id, *_not_another_phones(device_id))
                .values(
                    status=MessageStatus.SENT,
                    sent_at=at,
                    lease_owner=None,
                    lease_expires_at=None,
                    error_code=None,
                    error_message=None,
                )
            )
            if getattr(result, "rowcount", 0):
                moved.append(message_id)
        return moved

    async def _update_held(self, owner: str, rows: list[dict[str, Any]], **values: Any) -> None:
        """One update per row (``m_id`` and the row's own values), for the messages this
        claim still holds, releasing the lease."""
        if not rows:
            return
        # In id order, like every multi-row update here: two transactions that lock the same
        # rows in the same order wait for each other instead of deadlocking.
        rows.sort(key=lambda row: str(row["m_id"]))
        statement = (
            update(_TABLE)
            .where(
                _TABLE.c.id == bindparam("m_id"),
                _TABLE.c.status == MessageStatus.DISPATCHING,
                _TABLE.c.lease_owner == owner,
            )
            .values(lease_expires_at=None, lease_owner=None, **values)
        )
        await self.session.execute(statement, rows)

    async def finish(
        self,
        ids: Sequence[str],
        *,
        status: MessageStatus,
        from_statuses: Iterable[MessageStatus],
        now: datetime,
        owner: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        account_id: str | None = None,
    ) -> list[Finished]:
        """Move messages to a final status if they are still in one of ``from_statuses``;
        answers the ones that moved (the others had already moved on)."""
        if not ids:
            return []
        # Lock the rows in id order first (PostgreSQL; SQLite has one writer anyway), as the
        # dispatcher's per-row updates do: a report racing its own message's ``sent`` record
        # then waits for it instead of deadlocking (which PostgreSQL only sees after a second).
        in_order = (
            select(Message.id)
            .where(Message.id.in_(ids))
            .order_by(Message.id)
            .with_for_update()
            .scalar_subquery()
        )
        conditions: list[ColumnElement[bool]] = [
            Message.id.in_(in_order),
            Message.status.in_(list(from_statuses)),
        ]
        if owner is not None:
            conditions.append(Message.lease_owner == owner)
        if account_id is not None:
            conditions.append(Message.account_id == account_id)
        values: dict[str, Any] = {
            "status": status,
            _STATUS_TIME[status].key: now,
            "lease_expires_at": None,
            "lease_owner": None,
        }
        if error_code is not None:
            values.update(error_code=error_code, error_message=(error_message or "")[:255])
        result = await self.session.execute(
            update(Message)
            .where(*conditions)
            .values(**values)
            .returning(Message.id, Message.account_id, Message.price_micros)
        )
        return [Finished(*row) for row in result.all()]

    async def due_to_expire(self, now: datetime, limit: int) -> Sequence[str]:
        result = await self.session.execute(
            select(Message.id)
            .where(
                Message.status.in_(
                    [MessageStatus.ACCEPTED, MessageStatus.QUEUED, MessageStatus.SENT]
                ),
                Message.expires_at <= now,
            )
            .limit(limit)
        )
        return result.scalars().all()

    async def in_flight(self, channel: str) -> Sequence[Row[str, str, str | None, datetime | None]]:
        """Messages a channel accepted that are still waiting for their report."""
        result = await self.session.execute(
            select(Message.id, Message.phone, Message.channel_ref, Message.sent_at).where(
                Message.status == MessageStatus.SENT, Message.channel == channel
            )
        )
        return result.all()

    async def announce_due_work(self) -> None:
        """Wake the workers of every process (PostgreSQL ``NOTIFY``, delivered at commit).

        On SQLite there is one process, and its dispatcher is woken in memory."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text(f"NOTIFY {QUEUE_CHANNEL}"))

    # Figures -----------------------------------------------------------------------------

    async def queue_stats(self, now: datetime) -> tuple[int, datetime | None]:
        """How many messages wait to be sent, and since when the oldest due one waits."""
        result = await self.session.execute(
            select(func.count(), func.min(Message.due_at)).where(
                or_(
                    Message.status == MessageStatus.QUEUED,
                    Message.status == MessageStatus.DISPATCHING,
                    and_(Message.status == MessageStatus.ACCEPTED, Message.due_at <= now),
                )
            )
        )
        count, oldest = result.one()
        return int(count), oldest

    async def count_by_status(self) -> dict[str, int]:
        result = await self.session.execute(
            select(Message.status, func.count()).group_by(Message.status)
        )
        return {status: int(count) for status, count in result.all()}
