"""Nothing accepted is lost: a server killed with SIGKILL at any moment, restarted, brings every
accepted message to a final status; no batch is ever half-written."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.e2e.server import ServerProcess
from textbridge.db import Database
from textbridge.models import LedgerEntry, Message

pytestmark = pytest.mark.slow

FINAL = {"delivered", "failed", "expired", "cancelled"}


def numbers(start: int, count: int) -> list[str]:
    return [f"+1415200{n:04d}" for n in range(start, start + count)]


async def status_counts(db: Database) -> Counter[str]:
    async with db.transaction() as session:
        rows = await session.execute(select(Message.status, func.count()).group_by(Message.status))
        return Counter({status: count for status, count in rows.all()})


def wait_all_final(client: httpx.Client, ids: list[str], timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        still = []
        for message_id in pending:
            answer = client.get(f"/v1/messages/{message_id}")
            assert answer.status_code == 200, answer.text
            status = answer.json()["status"]
            statuses[message_id] = status
            if status not in FINAL:
                still.append(message_id)
        pending = still
        if pending:
            time.sleep(0.2)
    assert not pending, f"{len(pending)} messages never reached a final status"
    return statuses


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
            time.sleep(0.6)
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
            statuses = wait_all_final(client, accepted)
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
    time.sleep(1.5)
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
