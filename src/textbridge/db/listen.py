"""PostgreSQL ``LISTEN``: a callback for each notification on a channel, for as long as the
process runs (reconnecting after a lost connection).

``NOTIFY`` is delivered at commit to every listening connection, the sender's own process
included, so it carries what other processes must hear of (due work, a phone to wake).
Notifications sent while a process was not listening are lost: ``on_connect`` runs after
each (re)connection so the process can catch up by other means.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from textbridge.db.engine import Database, log_failure

log = structlog.get_logger(__name__)


async def listen(
    db: Database,
    channel: str,
    on_notify: Callable[[str], None],
    on_connect: Callable[[], None] = lambda: None,
) -> None:
    while True:
        try:
            await _listen_once(db, channel, on_notify, on_connect)
        except Exception as exc:
            log_failure(log, "lost the LISTEN connection; reconnecting", exc, channel=channel)
        await asyncio.sleep(1.0)


async def _listen_once(
    db: Database, channel: str, on_notify: Callable[[str], None], on_connect: Callable[[], None]
) -> None:
    async with db.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        listener: Any = raw.driver_connection  # asyncpg.Connection
        closed = asyncio.Event()
        listener.add_termination_listener(lambda *_: closed.set())
        await listener.add_listener(channel, lambda *args: on_notify(args[-1]))
        on_connect()
        await closed.wait()
