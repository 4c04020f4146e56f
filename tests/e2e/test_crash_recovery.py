"""Nothing accepted is lost: a server killed with SIGKILL at any moment, restarted, brings every
accepted message to a final status; no batch is ever half-written."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from tests.eventually import eventually
from textbridge.db import Database
from textbridge.kit.clock import utcnow
from textbridge.messages.writer import PREPARING_GRACE, recover_prepared
from textbridge.models import Account, BulkJob, Conversation, LedgerEntry, Message

pytestmark = pytest.mark.slow

FINAL = {"delivered", "failed", "expired", "cancelled"}


def numbers(start: int, count: int) -> list[str]:
    return [f"+1415200{n:04d}" for n in range(start, start + count)]


async def status_counts(db: Database) -> Counter[str]:
    async with db.transaction() as session:
        rows = await session.execute(select(Message.status, func.count()).group_by(Message.status))
        return Counter({status: count for status, count in rows.all()})


async def wait_all_final(
    client: httpx.Client, ids: list[str], *, within: float = 60
) -> dict[str, str]:
    """Each message's status once all are final (only those still moving are asked again)."""
    statuses: dict[str, str] = {}

    def all_final() -> dict[str, str]:
        for message_id in [i for i in ids if statuses.get(i) not in FINAL]:
            answer = client.get(f"/v1/messages/{message_id}")
            assert answer.status_code == 200, answer.text
            statuses[message_id] = answer.json()["status"]
        pending = sum(statuses[i] not in FINAL for i in ids)
        assert not pending, f"{pending} messages never reached a final status"
        return statuses

    return await eventually(all_final, within=within, interval=0.2)


async def test_sigkill_with_messages_queued_dispatching_and_sent_loses_none(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    port = free_port()
    # A slow channel and small batches, so the kill finds messages in every state.
    first = ServerProcess(
        port=port,
        data_dir=tmp_path,
        database_url=database_url,
        simulator_send_latency_ms=150,
        simulator_delivery_delay_ms=3000,
        dispatch_batch_size=10,
        lease_seconds=2,
    ).start()
    accepted: list[str] = []
    try:
        with first.client() as client:
            for batch in range(20):
                answer = client.post(
                    "/v1/messages", json={"to": numbers(batch * 10, 10), "text": "survive"}
                )
                assert answer.status_code == 202, answer.text
                accepted += [m["id"] for m in answer.json()["messages"]]

        async def in_flight() -> bool:
            counts = await status_counts(db)
            return counts["sent"] + counts["dispatching"] > 0

        await eventually(in_flight, interval=0.02)
    finally:
        first.kill()

    before = await status_counts(db)
    assert sum(before.values()) == 200
    assert before["queued"] > 0, before
    assert before["sent"] + before["dispatching"] > 0, before

    second = ServerProcess(
        port=port,
        data_dir=tmp_path,
        database_url=database_url,
        simulator_delivery_delay_ms=100,
        maintenance_interval_seconds=0.2,
        lease_seconds=2,
    ).start()
    try:
        with second.client() as client:
            statuses = await wait_all_final(client, accepted)
    finally:
        second.stop()
    assert Counter(statuses.values()) == Counter({"delivered": 200}), before


async def test_sigkill_during_acceptance_leaves_no_half_written_batch(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    server = ServerProcess(port=free_port(), data_dir=tmp_path, database_url=database_url)
    server.start()
    answered: list[dict[str, object]] = []
    stop = threading.Event()

    def hammer(offset: int) -> None:
        with server.client() as client:
            n = 0
            while not stop.is_set():
                try:
                    answer = client.post(
                        "/v1/messages",
                        json={"to": numbers(offset + (n % 50) * 20, 20), "text": "crash test"},
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 202:
                    answered.append(answer.json())
                n += 1

    threads = [threading.Thread(target=hammer, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        await eventually(lambda: len(answered) >= 10)  # the kill comes amid a stream of writes
    finally:
        server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert answered, "no request was accepted before the kill"

    async with db.transaction() as session:
        per_batch = dict(
            (
                await session.execute(
                    select(Message.batch_id, func.count()).group_by(Message.batch_id)
                )
            ).all()
        )
        debits = dict(
            (
                await session.execute(
                    select(LedgerEntry.reference, LedgerEntry.amount_micros).where(
                        LedgerEntry.kind == "debit"
                    )
                )
            ).all()
        )
        prices = dict(
            (
                await session.execute(
                    select(Message.batch_id, func.sum(Message.price_micros)).group_by(
                        Message.batch_id
                    )
                )
            ).all()
        )
    # Every answered batch is there in full; every stored batch is whole and paid for.
    for body in answered:
        assert per_batch.get(body["batch_id"]) == 20
    assert set(per_batch.values()) == {20}
    assert set(debits) == set(per_batch)
    assert all(-debits[batch] == prices[batch] for batch in per_batch)


BULK = 30_000  # 60 chunks: a window of a second or more to kill it in, on either side


def post_bulk_job(url: str, first: int, text: str) -> threading.Thread:
    """Post a bulk job from a thread (its answer never comes: the server is killed)."""
    body = {"to": [f"+1415{first + i:07d}" for i in range(BULK)], "text": text}

    def post() -> None:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with contextlib.suppress(httpx.TransportError):
            httpx.post(f"{url}/v1/bulk-jobs", json=body, headers=headers, timeout=120)

    thread = threading.Thread(target=post)
    thread.start()
    return thread


async def job_state(db: Database, text: str) -> tuple[Counter[str], str | None, int | None]:
    """A bulk job's rows by status, its id once committed, and its debit (negative)."""
    async with db.transaction() as session:
        rows = await session.execute(
            select(Message.status, func.count())
            .where(Message.text == text)
            .group_by(Message.status)
        )
        statuses = Counter({status: count for status, count in rows.all()})
        batch = await session.scalar(select(Message.batch_id).where(Message.text == text).limit(1))
        job = await session.scalar(select(BulkJob.id).where(BulkJob.id == batch))
        debit = await session.scalar(
            select(LedgerEntry.amount_micros).where(LedgerEntry.reference == batch)
        )
    return statuses, job, debit


def _sqlite_job_state(db: Database, text: str) -> tuple[Counter[str], str | None]:
    """``job_state`` by a plain read: the suite's ``db.transaction()`` begins IMMEDIATE, so on
    SQLite it queued for the write lock behind the server's chunks and saw the job only once
    it had passed the moment the test waited for."""
    path = str(db.engine.url.database)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        statuses = Counter(
            dict(
                connection.execute(
                    "SELECT status, count(*) FROM messages WHERE text = ? GROUP BY status",
                    (text,),
                ).fetchall()
            )
        )
        found = connection.execute(
            "SELECT b.id FROM bulk_jobs b JOIN messages m ON m.batch_id = b.id"
            " WHERE m.text = ? LIMIT 1",
            (text,),
        ).fetchone()
    return statuses, found[0] if found else None


async def conversations_of(db: Database, first: int) -> int:
    phones = [f"+1415{first + i:07d}" for i in range(BULK)]
    async with db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.phone.between(phones[0], phones[-1]))
            )
            or 0
        )


async def kill_when(
    server: ServerProcess,
    db: Database,
    text: str,
    ready: Callable[[Counter[str], str | None], bool],
) -> None:

    async def is_ready() -> bool:
        if db.is_sqlite:
            statuses, job = _sqlite_job_state(db, text)
        else:
            statuses, job, _ = await job_state(db, text)
        assert ready(statuses, job), f"never ready: {statuses}, job {job}"
        return True

    try:
        await eventually(is_ready, within=60, interval=0.005)
    finally:
        server.kill()


async def test_sigkill_during_a_bulk_job_leaves_it_whole_or_absent(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    """Killed while its rows are written, a bulk job does not exist: not listed, not charged,
    no conversation touched, and housekeeping deletes its rows. Killed once committed, while its
    rows are released, it exists whole and paid for, and housekeeping releases the rest."""
    port = free_port()
    server = ServerProcess(port=port, data_dir=tmp_path, database_url=database_url).start()
    async with db.transaction() as session:
        balance = await session.scalar(select(Account.balance_micros).where(Account.is_admin))
    post = post_bulk_job(server.url, 5_000_000, "killed while written")
    # As soon as the first chunk is written: waiting for 5,000 let a fast writer reach its
    # commit point first (once, in a full run), and the kill then found the job whole.
    await kill_when(server, db, "killed while written", lambda s, job: s["preparing"] > 0)
    post.join(timeout=30)
    statuses, job, debit = await job_state(db, "killed while written")
    assert set(statuses) == {"preparing"}, statuses
    assert statuses["preparing"] < BULK
    assert (job, debit) == (None, None)
    assert await conversations_of(db, 5_000_000) == 0

    server = ServerProcess(port=port, data_dir=tmp_path, database_url=database_url).start()
    try:
        with server.client() as client:
            assert client.get("/v1/bulk-jobs").json()["data"] == []
            listed = client.get("/v1/messages", params={"limit": 100}).json()["data"]
            assert listed == []
            assert round(client.get("/v1/account").json()["balance"] * 1_000_000) == balance
        post = post_bulk_job(server.url, 6_000_000, "killed while released")
        await kill_when(
            server, db, "killed while released", lambda s, job: job is not None and s["queued"] > 0
        )
    finally:
        server.stop()
    post.join(timeout=30)
    statuses, job, debit = await job_state(db, "killed while released")
    assert job is not None
    assert statuses["preparing"] > 0, statuses  # the kill came mid-release
    assert statuses.total() == BULK
    assert debit == -BULK * 7900

    # Housekeeping, once the rows are PREPARING_GRACE old: the first job's rows go, the
    # second's join the queue with their conversations.
    await recover_prepared(db, now=utcnow() + PREPARING_GRACE + timedelta(seconds=1))
    assert (await job_state(db, "killed while written"))[0] == Counter()
    statuses, _, _ = await job_state(db, "killed while released")
    assert statuses["preparing"] == 0, statuses  # the rest queued, as the first were
    assert statuses.total() == BULK
    assert await conversations_of(db, 6_000_000) == BULK
