"""The phones connected to this process by Server-Sent Events, and what to tell them.

In memory: a message given to a phone reaches its stream only if the stream is held by the
process that gave it. Phones also pull every ``ping.interval_seconds`` and right after they
connect, so nothing waits longer than that where processes are several.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

_QUEUE_LIMIT = 100  # events a slow stream may owe before the oldest are dropped


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


hub = DeviceHub()
