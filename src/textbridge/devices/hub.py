"""The phones connected to this process by Server-Sent Events, and what to tell them.

``announce`` tells a phone wherever its stream is held: on PostgreSQL by ``NOTIFY`` on
``textbridge_devices`` at commit, which every API process relays to the streams it holds
(``relay``); on SQLite, where there is one process, in memory after the commit. A
notification lost while a process was reconnecting costs little: it then tells all its
streams to pull, and phones pull every ``ping.interval_seconds`` and after they connect.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.db import Database
from textbridge.db.engine import after_commit
from textbridge.db.listen import listen

log = structlog.get_logger(__name__)

CHANNEL = "textbridge_devices"
_QUEUE_LIMIT = 100  # events a slow stream may owe before the oldest are dropped
_PER_NOTIFY = 200  # device ids per notification: a payload stays far under 8,000 bytes


class DeviceHub:
    def __init__(self) -> None:
        self._streams: dict[str, set[asyncio.Queue[tuple[str, Any]]]] = defaultdict(set)

    def subscribe(self, device_id: str) -> asyncio.Queue[tuple[str, Any]]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(_QUEUE_LIMIT)
        self._streams[device_id].add(queue)
        return queue

    def unsubscribe(self, device_id: str, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        streams = self._streams.get(device_id)
        if streams is not None:
            streams.discard(queue)
            if not streams:
                del self._streams[device_id]

    def connected(self, device_id: str) -> bool:
        return device_id in self._streams

    def tell(self, device_ids: Iterable[str], event: str, data: Any = None) -> None:
        """``event`` (``MessageEnqueued``, ``SettingsUpdated``...) to each open stream of these
        phones; an event a full stream cannot take is dropped (the phone pulls anyway)."""
        for device_id in set(device_ids):
            for queue in self._streams.get(device_id, ()):
                if queue.full():
                    continue
                queue.put_nowait((event, data))

    def everyone(self) -> list[str]:
        return list(self._streams)


hub = DeviceHub()


async def announce(
    session: AsyncSession, device_ids: Iterable[str], event: str, data: Any = None
) -> None:
    """``event`` to these phones' streams in any process, once the transaction commits."""
    ids = sorted(set(device_ids))
    if session.get_bind().dialect.name != "postgresql":
        after_commit(session, lambda: hub.tell(ids, event, data))
        return
    for start in range(0, len(ids), _PER_NOTIFY):
        payload = {"devices": ids[start : start + _PER_NOTIFY], "event": event, "data": data}
        await session.execute(select(func.pg_notify(CHANNEL, orjson.dumps(payload).decode())))


def _relayed(payload: str) -> None:
    try:
        told = orjson.loads(payload)
        hub.tell(told["devices"], told["event"], told.get("data"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("unreadable device notification", payload=payload[:200])


async def relay(db: Database) -> None:
    """This process's streams hear what any process announced (PostgreSQL)."""
    await listen(
        db, CHANNEL, _relayed, on_connect=lambda: hub.tell(hub.everyone(), "MessageEnqueued")
    )
