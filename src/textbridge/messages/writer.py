"""Group commit for accepted messages, and large bulk jobs written in chunks.

Accepting a message is a few small writes (the debit, its ledger entry, the message rows, an
idempotency record) and a commit; done one request per transaction, the fixed cost of each
statement and commit through SQLAlchemy is most of a single-message request. The writer takes
every acceptance waiting at that moment and writes them in one transaction: one conditional
debit per account, one multi-row insert per table, one commit. Nobody waits for a batch to
fill: while one transaction runs, the next requests queue up, so batches grow with the load and
a lone request goes straight through.

Each acceptance stays all or nothing. A charge the balance does not cover is refused alone
(``charge_many``); if the batch's transaction fails for any other reason, its acceptances are
written again one per transaction, so a bad one cannot take the others down with it. The
request is answered only after the commit that holds its rows.

A bulk job of more than ``CHUNK_ROWS`` recipients does not join a batch. Written in one
transaction, 100,000 rows held SQLite's only writer (and, the statements running inline, the
event loop) or this process's writer on PostgreSQL for 10-13 s: every single send and
``/health`` waited that long. It is written in three steps, each a run of short transactions
with a turn of the event loop between them, so other requests' transactions go in between:

1. its rows, ``CHUNK_ROWS`` a transaction, as ``preparing``: nothing reads, counts or sends
   such a row, and the conversation trigger skips it (migration 0010);
2. one short transaction, the commit point: the opt-out check, the debit and its ledger entry,
   the ``bulk_jobs`` row. Before it the job does not exist; after it, it does, whole;
3. its rows released, ``CHUNK_ROWS`` a transaction: ``queued`` (or ``accepted`` when
   scheduled), their conversations upserted. Then the request is answered.

A failure before the commit point deletes the rows written. A process killed before it leaves
``preparing`` rows of a job that does not exist, and one killed during step 3 leaves some of a
committed job's rows unreleased: housekeeping deletes the first and releases the second once
they are ``PREPARING_GRACE`` old (``recover_prepared``), so no job is ever seen half-written.

The cost: every row is written twice (inserted, then released with its conversation), about a
quarter of the job's time: 100,000 recipients take 13-16 s instead of 11-12 s on SQLite alone
(the requests around them are answered meanwhile); a job a crash interrupted after its commit
point goes out up to ``PREPARING_GRACE`` late. A bulk job with an idempotency key keeps the
group commit (no endpoint gives one today).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.billing.service import Charge, billing
from textbridge.contacts.service import contacts
from textbridge.db import Database
from textbridge.db.engine import unavailable
from textbridge.errors import TextbridgeError
from textbridge.events.service import EventType, record_for_messages
from textbridge.idempotency.service import StoredAnswer, idempotency
from textbridge.messages.repository import MessageRepository
from textbridge.metrics import MESSAGES_ACCEPTED
from textbridge.models import MessageStatus

log = structlog.get_logger(__name__)

MAX_ROWS_PER_TRANSACTION = 5000
# Rows a transaction of a bulk job written in chunks: about 10 ms each, so a single send or
# /health waits behind one at most.
CHUNK_ROWS = 500
# Unreleased rows this old belong to a write that stopped (the process died): housekeeping
# settles them. Far above the time a chunked write takes (100,000 rows: about 10 s).
PREPARING_GRACE = timedelta(minutes=10)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """Replay the stored answer for ``key``, or store ``render()``'s answer with the rows."""

    key: str
    request_hash: str
    render: Callable[[], StoredAnswer]


@dataclass(eq=False)
class Acceptance:
    """One request's messages, priced, waiting to be written."""

    account_id: str
    batch_id: str
    rows: list[dict[str, Any]]
    description: str
    idempotency: IdempotencyClaim | None = None
    wakes_dispatcher: bool = True
    bulk_job: dict[str, Any] | None = None  # the bulk_jobs row, when this is one
    outcome: asyncio.Future[StoredAnswer | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AcceptanceWriter:
    def __init__(self, db: Database, *, on_commit: Callable[[], None]) -> None:
        self.db = db
        self.on_commit = on_commit
        # ``None`` in the queue asks the writer to stop once what came before it is written.
        self._queue: asyncio.Queue[Acceptance | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="acceptance-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def submit(self, acceptance: Acceptance) -> StoredAnswer | None:
        """Write ``acceptance``; answers once committed. With an idempotency claim the answer is
        the one stored for the key: just now with these rows, or by an earlier request (then
        nothing was written); without, ``None``."""
        if _in_chunks(acceptance):
            await self._write_in_chunks(acceptance)
            return None
        if self._task is None:
            # No writer running (a CLI or test process): write it alone, right away.
            await self._write([acceptance])
        else:
            self._queue.put_nowait(acceptance)
        return await acceptance.outcome

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            await self._write(self._take_batch(first))

    def _take_batch(self, first: Acceptance) -> list[Acceptance]:
        batch = [first]
        rows = len(first.rows)
        keys = {_key_of(first)}
        deferred: list[Acceptance | None] = []
        while rows < MAX_ROWS_PER_TRANSACTION and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                deferred.append(None)  # stop, but after what was deferred
                break
            key = _key_of(item)
            if key is not None and key in keys:
                deferred.append(item)  # the same idempotency key: after this batch commits
                continue
            keys.add(key)
            batch.append(item)
            rows += len(item.rows)
        for item in deferred:
            self._queue.put_nowait(item)
        return batch

    async def _write(self, batch: list[Acceptance]) -> None:
        try:
            async with self.db.transaction() as session:
                outcomes = await _apply(session, batch)
        except Exception as exc:
            if unavailable(exc):
                # The database, not a request, is at fault: one by one would only make each
                # wait its own timeout. Every request answers 503.
                for acceptance in batch:
                    _settle(acceptance, exc)
                return
            if len(batch) > 1:
                for acceptance in batch:
                    await self._write([acceptance])
                return
            if not isinstance(exc, TextbridgeError):
                log.exception("could not write accepted messages", batch_id=batch[0].batch_id)
            _settle(batch[0], exc)
            return
        written = 0
        wake = False
        for acceptance, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, _Written):
                written += len(acceptance.rows)
                wake = wake or acceptance.wakes_dispatcher
                outcome = outcome.answer
            _settle(acceptance, outcome)
        if written:
            MESSAGES_ACCEPTED.inc(written)
        if wake:
            self.on_commit()

    async def _write_in_chunks(self, acceptance: Acceptance) -> None:
        """A large bulk job: its rows as ``preparing``, the commit point, its rows released
        (the module's docstring). Answers once every row is released."""
        ids = [row["id"] for row in acceptance.rows]
        written = 0
        try:
            async with self.db.transaction() as session:  # no point writing what cannot be paid
                shortfall = await billing.shortfall(
                    session, acceptance.account_id, _price(acceptance)
                )
            if shortfall is not None:
                raise shortfall
            preparing = MessageStatus.PREPARING
            for part in _chunks(acceptance.rows):
                async with self.db.transaction() as session:
                    await MessageRepository(session).insert_many(
                        [{**row, "status": preparing} for row in part]
                    )
                written += len(part)
                await asyncio.sleep(0)
            async with self.db.transaction() as session:
                await _commit_prepared(session, acceptance)
        except Exception as exc:
            if not isinstance(exc, TextbridgeError):
                log.exception("could not write a bulk job", batch_id=acceptance.batch_id)
            await _discard(self.db, ids[:written])
            raise
        try:
            await _release(self.db, ids, self.on_commit if acceptance.wakes_dispatcher else None)
        except Exception:
            # The job is committed, whole and paid for: answered as accepted (a 500 would be
            # sent again, as a second job); housekeeping releases what is left.
            log.exception("bulk job committed, not all released", batch_id=acceptance.batch_id)
        MESSAGES_ACCEPTED.inc(len(ids))


async def recover_prepared(
    db: Database, *, now: datetime, on_commit: Callable[[], None] | None = None
) -> int:
    """Settle what chunked writes that stopped left (a process killed mid-way): ``preparing``
    rows older than ``PREPARING_GRACE`` are released when their job was committed, deleted
    when it was not. Answers how many rows it settled."""
    async with db.transaction() as session:
        batches = await MessageRepository(session).stale_prepared(now - PREPARING_GRACE)
    settled = 0
    for batch_id, committed in batches:
        async with db.transaction() as session:
            ids = list(await MessageRepository(session).prepared(batch_id))
        log.info("bulk job left half-written", batch_id=batch_id, rows=len(ids), kept=committed)
        if committed:
            await _release(db, ids, on_commit)
        else:
            await _discard(db, ids)
        settled += len(ids)
    return settled


def _in_chunks(acceptance: Acceptance) -> bool:
    return (
        acceptance.bulk_job is not None
        and acceptance.idempotency is None
        and len(acceptance.rows) > CHUNK_ROWS
    )


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK_ROWS):
        yield items[start : start + CHUNK_ROWS]


def _price(acceptance: Acceptance) -> int:
    return sum(row["price_micros"] for row in acceptance.rows)


async def _commit_prepared(session: AsyncSession, acceptance: Acceptance) -> None:
    """The commit point of a job written in chunks: opted-out recipients refused, the debit
    (a 402 rolls it all back), the ``bulk_jobs`` row."""
    refused = await _refuse_opted_out(session, [acceptance])
    charge = Charge(
        acceptance.account_id, _price(acceptance), acceptance.batch_id, acceptance.description
    )
    [refusal] = await billing.charge_many(session, [charge])
    if refusal is not None:
        raise refusal
    repository = MessageRepository(session)
    if refused:
        rows = [row for row in acceptance.rows if "error_code" in row]
        ids = [row["id"] for row in rows]
        for part in _chunks(ids):
            await repository.update_prepared(part, **_refusal(rows[0]["created_at"]))
            await repository.upsert_conversations(part)
        await record_for_messages(
            session,
            EventType.MESSAGE_FAILED,
            [(message_id, acceptance.account_id) for message_id in ids],
            {"status": "failed"},
        )
    assert acceptance.bulk_job is not None
    await repository.insert_bulk_jobs([acceptance.bulk_job])


async def _release(db: Database, ids: Sequence[str], on_commit: Callable[[], None] | None) -> None:
    """A committed job's rows join the queue, chunk by chunk (``Database.run``: a transaction
    refused for a passing reason is tried again)."""
    for part in _chunks(ids):
        await db.run(partial(_release_part, part=part, announce=on_commit is not None))
        if on_commit is not None:
            on_commit()
        await asyncio.sleep(0)


async def _release_part(session: AsyncSession, *, part: Sequence[str], announce: bool) -> None:
    repository = MessageRepository(session)
    await repository.release_prepared(part)
    if announce:
        await repository.announce_due_work()


async def _discard(db: Database, ids: Sequence[str]) -> None:
    """Rows of a job that was never committed; what cannot be deleted now (the database is
    gone), housekeeping deletes later."""
    try:
        for part in _chunks(ids):
            await db.run(partial(_discard_part, part=part))
            await asyncio.sleep(0)
    except Exception:
        log.exception("could not delete the rows of a bulk job", rows=len(ids))


async def _discard_part(session: AsyncSession, *, part: Sequence[str]) -> None:
    await MessageRepository(session).discard_prepared(part)


@dataclass(frozen=True, slots=True)
class _Written:
    answer: StoredAnswer | None  # what was stored for the idempotency key, if there was one


async def _apply(
    session: AsyncSession, batch: list[Acceptance]
) -> list[_Written | StoredAnswer | TextbridgeError | None]:
    """Write the batch in the session's transaction; per acceptance: ``_Written``, the stored
    answer of an earlier request to replay, or the error that refused it."""
    outcomes: list[_Written | StoredAnswer | TextbridgeError | None] = [None] * len(batch)
    for index, acceptance in enumerate(batch):
        claim = acceptance.idempotency
        if claim is not None:
            try:
                outcomes[index] = await idempotency.replay(
                    session,
                    account_id=acceptance.account_id,
                    key=claim.key,
                    request_hash=claim.request_hash,
                )
            except TextbridgeError as error:
                outcomes[index] = error
    pending = [i for i, outcome in enumerate(outcomes) if outcome is None]
    refused = await _refuse_opted_out(session, [batch[i] for i in pending])
    refusals = await billing.charge_many(
        session,
        [
            Charge(
                batch[i].account_id,
                sum(row["price_micros"] for row in batch[i].rows),
                batch[i].batch_id,
                batch[i].description,
            )
            for i in pending
        ],
    )
    rows: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    for i, refusal in zip(pending, refusals, strict=True):
        if refusal is not None:
            outcomes[i] = refusal
            continue
        rows.extend(batch[i].rows)
        bulk_job = batch[i].bulk_job
        if bulk_job is not None:
            jobs.append(bulk_job)
        claim = batch[i].idempotency
        answer = None
        if claim is not None:
            answer = claim.render()
            await idempotency.remember(
                session,
                account_id=batch[i].account_id,
                key=claim.key,
                request_hash=claim.request_hash,
                answer=answer,
            )
        outcomes[i] = _Written(answer)
    if rows:
        repository = MessageRepository(session)
        if refused:  # their rows have three more columns: one insert per shape
            refusals_ = [row for row in rows if "error_code" in row]
            await repository.insert_many([row for row in rows if "error_code" not in row])
            await repository.insert_many(refusals_)
            await record_for_messages(
                session,
                EventType.MESSAGE_FAILED,
                [(row["id"], row["account_id"]) for row in refusals_],
                {"status": "failed"},
            )
        else:
            await repository.insert_many(rows)
        await repository.insert_bulk_jobs(jobs)
        if any(isinstance(outcomes[i], _Written) and batch[i].wakes_dispatcher for i in pending):
            await repository.announce_due_work()
    await session.flush()
    return outcomes


async def _refuse_opted_out(session: AsyncSession, batch: list[Acceptance]) -> int:
    """Recipients who opted out (replied STOP) get a message that failed at once, costs
    nothing and is never sent. Checked here, in the transaction that writes the messages, so a
    STOP committed before it is never missed."""
    refused = 0
    phones: dict[str, set[str]] = defaultdict(set)
    for acceptance in batch:
        phones[acceptance.account_id].update(row["phone"] for row in acceptance.rows)
    for account_id, numbers in phones.items():
        blocked = await contacts.opted_out(session, account_id, list(numbers))
        if not blocked:
            continue
        for acceptance in batch:
            if acceptance.account_id != account_id:
                continue
            for row in acceptance.rows:
                if row["phone"] in blocked:
                    row.update(_refusal(row["created_at"]))
                    refused += 1
    return refused


def _refusal(created_at: datetime) -> dict[str, Any]:
    """What a message to a recipient who opted out becomes."""
    return {
        "status": MessageStatus.FAILED,
        "price_micros": 0,
        "queued_at": None,
        "failed_at": created_at,
        "error_code": "opted_out",
        "error_message": "the recipient opted out (replied STOP)",
    }


def _settle(acceptance: Acceptance, outcome: StoredAnswer | BaseException | None) -> None:
    if acceptance.outcome.done():
        return
    if isinstance(outcome, BaseException):
        acceptance.outcome.set_exception(outcome)
    else:
        acceptance.outcome.set_result(outcome)


def _key_of(acceptance: Acceptance) -> tuple[str, str] | None:
    claim = acceptance.idempotency
    return None if claim is None else (acceptance.account_id, claim.key)
