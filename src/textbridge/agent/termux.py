"""Termux on Android as an agent's sender, through the Termux:API commands.

``termux-sms-send -n <number> -s <slot> <text>`` sends (Android splits a long text itself and
tells no more: a message is ``Sent``, never ``Delivered``). Received SMS are read with
``termux-sms-list -t inbox`` every ``inbox_seconds``; the newest id posted is kept in a file,
so a restart neither loses nor repeats one, and the first run starts from the inbox as it
is (its history is not replayed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from textbridge.agent.backend import Events, Incoming

log = structlog.get_logger(__name__)

_LIMIT = 50  # inbox entries read per look
_REPLAYED = 1000  # inbox entries an export request looks through


class TermuxError(Exception):
    pass


@dataclass
class TermuxBackend:
    sims: int = 1
    seen: Path | None = None  # where the newest inbox id posted is kept
    inbox_seconds: float = 10.0
    timeout: float = 60.0
    sent_state: Literal["Sent", "Delivered"] = field(default="Sent", init=False)

    def __post_init__(self) -> None:
        self._watch: asyncio.Task[None] | None = None

    async def start(self, events: Events) -> None:
        newest = self._load()
        if newest is None:  # first run: what is in the inbox already is history
            newest = max((int(sms["_id"]) for sms in await self._inbox()), default=0)
            self._save(newest)
        self._watch = asyncio.create_task(self._watch_inbox(events, newest))

    async def replay(self, since: datetime, until: datetime) -> list[Incoming]:
        """What the inbox's newest ``_REPLAYED`` hold from that span, oldest first."""
        found = [_incoming(sms) for sms in await self._inbox(_REPLAYED)]
        return sorted(
            (sms for sms in found if since <= sms.received_at <= until),
            key=lambda sms: sms.received_at,
        )

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def send(self, message_id: str, phone: str, text: str, sim_number: int) -> str | None:
        try:
            slot = str(sim_number - 1)
            await _run("termux-sms-send", "-n", phone, "-s", slot, text, seconds=self.timeout)
        except TermuxError as exc:
            return str(exc)[:255]
        return None

    async def _watch_inbox(self, events: Events, newest: int) -> None:
        while True:
            try:
                for sms in sorted(await self._inbox(), key=lambda s: int(s["_id"])):
                    if int(sms["_id"]) <= newest:
                        continue
                    await events.received(_incoming(sms))
                    newest = int(sms["_id"])
                    self._save(newest)
            except (TermuxError, KeyError, ValueError) as exc:
                log.warning("reading the inbox failed", error=str(exc))
            await asyncio.sleep(self.inbox_seconds)

    async def _inbox(self, limit: int = _LIMIT) -> list[dict[str, Any]]:
        answer = await _run(
            "termux-sms-list", "-t", "inbox", "-l", str(limit), seconds=self.timeout
        )
        listed = json.loads(answer or "[]")
        if not isinstance(listed, list):
            raise TermuxError(f"termux-sms-list answered {answer[:200]!r}")
        return [sms for sms in listed if isinstance(sms, dict) and "_id" in sms]

    def _load(self) -> int | None:
        if self.seen is None or not self.seen.exists():
            return None
        with contextlib.suppress(ValueError):
            return int(self.seen.read_text().strip())
        return None

    def _save(self, newest: int) -> None:
        if self.seen is not None:
            self.seen.write_text(str(newest))


def _incoming(sms: dict[str, Any]) -> Incoming:
    # "received" is the phone's local time, without a zone.
    received = datetime.strptime(str(sms["received"]), "%Y-%m-%d %H:%M:%S").astimezone()
    return Incoming(
        id=f"termux-{sms['_id']}",
        sender=str(sms.get("number") or sms.get("address") or ""),
        text=str(sms.get("body") or ""),
        received_at=received,
    )


async def _run(*command: str, seconds: float) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise TermuxError(
            f"{command[0]}: {exc.strerror}; is the Termux:API package installed?"
        ) from exc
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    except TimeoutError:
        await _kill(process)
        raise TermuxError(f"{command[0]} did not finish in {seconds:g} s") from None
    except asyncio.CancelledError:  # the agent stops: no command outlives it
        await _kill(process)
        raise
    if process.returncode != 0 or err.strip():
        said = (err or out).decode(errors="replace").strip()
        raise TermuxError(f"{command[0]} failed: {said[:200]}")
    return out.decode()


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
