"""Scale-out on PostgreSQL: API-only processes and separate workers share one database; the
workers never take the same message twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Row, select

from tests.e2e.server import ServerProcess
from tests.eventually import eventually
from textbridge.db import Database
from textbridge.models import Message

pytestmark = pytest.mark.slow


async def test_api_and_two_workers_deliver_everything_once(
    db: Database, database_url: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    if db.is_sqlite:
        pytest.skip("scale-out is a PostgreSQL deployment")
    common = {
        "data_dir": tmp_path,
        "database_url": database_url,
        "simulator_delivery_delay_ms": 20,
        "dispatch_batch_size": 20,
        # Workers would poll only every minute: new work must reach them by NOTIFY.
        "dispatch_poll_seconds": 60,
        "simulator_send_latency_ms": 20,
    }
    api = ServerProcess(port=free_port(), role="api", **common).start()
    workers = [
        ServerProcess(port=free_port(), command="worker", **common).start() for _ in range(2)
    ]
    try:
        with api.client() as client:
            for batch in range(10):
                to = [f"+1415300{batch:02d}{i:02d}" for i in range(40)]
                answer = client.post("/v1/messages", json={"to": to, "text": "scale"})
                assert answer.status_code == 202, answer.text
            assert client.get("/health").json()["role"] == "api"

        async def all_delivered() -> Sequence[Row[tuple[str, int]]]:
            async with db.transaction() as session:
                rows = (await session.execute(select(Message.status, Message.attempts))).all()
            assert all(status == "delivered" for status, _ in rows), Counter(s for s, _ in rows)
            return rows

        rows = await eventually(all_delivered, within=30, interval=0.2)
    finally:
        api.stop()
        for worker in workers:
            worker.stop()
    assert len(rows) == 400
    assert {status for status, _ in rows} == {"delivered"}
    # Each message was claimed once, though two workers claimed side by side.
    assert {attempts for _, attempts in rows} == {1}
    worker_logs = [w.log.read_text() for w in workers]
    assert all("Traceback" not in log for log in worker_logs)
