"""A worker killed again and again under load re-sends at most what it had handed to the
channel and not yet recorded: one chunk (``DISPATCH_CHUNK_SIZE``) per kill, not the claim's
whole batch; and every repeat is visible in the message's history."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import ADMIN_KEY
from tests.e2e.server import ServerProcess
from tests.e2e.test_crash_recovery import wait_all_final
from textbridge.db import Database
from textbridge.models import Message, MessageSend

pytestmark = pytest.mark.slow

CHUNK = 20
KILLS = 3


async def test_each_kill_resends_at_most_one_chunk_and_says_so(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    port = free_port()
    settings = {
        # A carrier that keeps no record: what was handed before a kill is sent again, the
        # path where a repeat can happen at all (the default simulator remembers).
        "simulator_remembers": False,
        "simulator_send_latency_ms": 100,  # a chunk takes a while at the channel
        "simulator_delivery_delay_ms": 100,
        "dispatch_batch_size": 200,
        "dispatch_chunk_size": CHUNK,
        "lease_seconds": 1,
        "maintenance_interval_seconds": 0.2,
    }

    def start() -> ServerProcess:
        return ServerProcess(
            port=port, data_dir=tmp_path, database_url=database_url, **settings
        ).start()

    rng = random.Random(13)
    accepted: list[str] = []
    posting = threading.Event()
    posting.set()

    def load() -> None:
        """Sends all along, to whichever server is up (refused while it restarts)."""
        batch = 0
        while posting.is_set():
            to = [f"+14157{batch % 100:02d}{i:04d}" for i in range(40)]
            batch += 1
            try:
                answer = httpx.post(
                    f"{server.url}/v1/messages",
                    json={"to": to, "text": "once"},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                    timeout=10,
                )
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if answer.status_code == 202:
                accepted.extend(m["id"] for m in answer.json()["messages"])
            time.sleep(0.05)

    server = start()
    loader = threading.Thread(target=load)
    loader.start()
    try:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.8, 1.5))  # load meanwhile, then a kill at random
            server.kill()
            server = start()
        await asyncio.sleep(0.5)  # the last server takes load too
        posting.clear()
        loader.join()
        # A kill between a commit and its answer leaves messages the client never heard of:
        # accepted all the same, so they count too.
        async with db.transaction() as session:
            stored = list((await session.execute(select(Message.id))).scalars())
        assert set(accepted) <= set(stored)
        with server.client() as client:
            statuses = await wait_all_final(client, stored, within=90)
            sample = client.get(f"/v1/messages/{accepted[0]}").json()
    finally:
        posting.clear()
        loader.join()
        server.stop()

    assert Counter(statuses.values()) == Counter({"delivered": len(stored)})
    async with db.transaction() as session:
        rows = (
            await session.execute(select(MessageSend.message_id, MessageSend.acknowledged))
        ).all()
    sends = Counter(message_id for message_id, _ in rows)
    acknowledged = Counter(message_id for message_id, ack in rows if ack)
    assert set(sends) == set(stored)  # every delivered message went out, and says so
    assert set(acknowledged.values()) == {1}  # and the channel took each once, as recorded
    repeated = [message_id for message_id, count in sends.items() if count > 1]
    # Each kill finds at most one chunk handed and unanswered.
    assert len(repeated) <= KILLS * CHUNK, (len(repeated), KILLS * CHUNK)
    assert sample["sends"], sample
