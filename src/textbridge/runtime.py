"""The objects a process builds once at startup and shares: settings, database, channels and,
when this process runs them, the background workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

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
from textbridge.settings import Role, Settings, make_private_dir
from textbridge.verify.service import verifications

log = structlog.get_logger(__name__)


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
        keep_private(settings)
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


# What Textbridge writes into the data folder besides the SQLite database.
PRIVATE_FILES = ("secret-key", "admin-api-key")


def keep_private(settings: Settings) -> None:
    """The data folder mode 700 and Textbridge's files mode 600, made so at every start (a
    folder from before was 755 and the database 644, readable by any local user, with webhook
    secrets and phones' signing keys in it).

    A missing SQLite database is created empty, mode 600, before SQLite opens it: SQLite gives
    its -wal and -shm files the database file's mode, so they are born private too."""
    make_private_dir(settings.data_dir)
    paths = [settings.data_dir / name for name in PRIVATE_FILES]
    database = _sqlite_file(settings)
    if database is not None:
        with contextlib.suppress(FileNotFoundError):  # no folder for it: SQLite will say so
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
        paths += [
            database.with_name(database.name + end) for end in ("", "-wal", "-shm", "-journal")
        ]
    for path, wanted in [(settings.data_dir, 0o700), *((path, 0o600) for path in paths)]:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode == wanted:
            continue
        try:
            path.chmod(wanted)
        except PermissionError:  # another user's: left as it is, and said
            log.warning("cannot make a data file private", path=str(path), mode=oct(mode))
            continue
        log.warning("made a data file private", path=str(path), mode=oct(wanted), was=oct(mode))


def _sqlite_file(settings: Settings) -> Path | None:
    url = make_url(settings.resolved_database_url)
    name = url.database
    if url.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)
