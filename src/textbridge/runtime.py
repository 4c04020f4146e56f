"""The objects a process builds once at startup and shares: settings, database, channels and,
when this process runs them, the background workers."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from textbridge.accounts.service import accounts
from textbridge.billing.service import billing
from textbridge.channels import Channels
from textbridge.db import Database
from textbridge.devices import hub
from textbridge.devices.channel import DeviceChannel
from textbridge.devices.service import devices
from textbridge.messages.service import messages
from textbridge.messages.tasks import Worker
from textbridge.messages.writer import AcceptanceWriter
from textbridge.settings import Role, Settings
from textbridge.verify.service import verifications


@dataclass
class Runtime:
    settings: Settings
    db: Database
    channels: Channels
    writer: AcceptanceWriter
    worker: Worker | None = None
    _relay: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        accounts.forget()
        billing.forget()
        verifications.forget()
        devices.forget()
        db = Database(settings.resolved_database_url, timeout=settings.database_timeout_seconds)
        channels = Channels.from_settings(settings, DeviceChannel(db, settings))
        worker = Worker(db, channels, settings) if settings.role is not Role.API else None
        writer = AcceptanceWriter(db, on_commit=messages.wakeup.set)
        return cls(settings=settings, db=db, channels=channels, writer=writer, worker=worker)

    async def start(self) -> None:
        if self.settings.role is not Role.WORKER:
            await self.writer.start()
            if not self.db.is_sqlite:  # phones' streams hear what other processes announce
                self._relay = asyncio.create_task(hub.relay(self.db), name="device-relay")
        if self.worker is not None:
            await self.worker.start()

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay
        await self.writer.stop()
        if self.worker is not None:
            await self.worker.stop()
        await self.db.dispose()
