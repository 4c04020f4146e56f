"""The device channel: gives each message to a SIM of one of its account's phones.

The phone pulls what it was given (``GET /message``) and reports what became of it, so this
channel only chooses: the SIM a message pins (``sim_card_id``), else the least busy SIM that
is enabled, present, on a phone that is enabled and online (seen within
``DEVICE_ONLINE_SECONDS``; one with its event stream open to this process first), inside its
work hours and under its limits per minute and per day. When none can take a message, it
waits in the queue (TextLink's ``queued: true``) and is tried again shortly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from time import monotonic
from typing import Any, ClassVar

from textbridge.channels.base import (
    Capabilities,
    ChannelKind,
    ChannelReporter,
    InFlight,
    OutboundMessage,
    SendResult,
)
from textbridge.db import Database
from textbridge.devices.hub import hub
from textbridge.devices.repository import DeviceRepository
from textbridge.devices.service import online
from textbridge.kit.clock import utcnow
from textbridge.settings import Settings

_WAIT = 5.0  # seconds before a message no SIM could take is tried again
# An account seen with or without phones is believed so this long (a first or a last phone
# counts for TextLink's "queued" answer and a send's "channel" that much later; routing always
# asks) ...
_PHONELESS_SECONDS = 10.0
_PHONELESS_KEPT = 10_000  # ... and this many accounts are remembered


@dataclass
class Sender:
    """A SIM as routing sees it: who it belongs to, whether it can send now, and its load."""

    id: int
    account_id: str
    device_id: str
    usable: bool  # enabled, present, its phone enabled and online, inside work hours
    per_minute: int | None
    per_day: int | None
    last_minute: int
    last_day: int
    in_flight: int
    connected: bool = False  # its event stream is open to this process

    def has_room(self) -> bool:
        return (self.per_minute is None or self.last_minute < self.per_minute) and (
            self.per_day is None or self.last_day < self.per_day
        )

    def take(self) -> None:
        self.last_minute += 1
        self.last_day += 1
        self.in_flight += 1


def within(start: str | None, end: str | None, now: datetime) -> bool:
    """Whether ``now`` (UTC) is inside the work hours "HH:MM"-"HH:MM" (overnight allowed)."""
    if start is None or end is None:
        return True
    begin, finish, moment = time.fromisoformat(start), time.fromisoformat(end), now.time()
    if begin <= finish:
        return begin <= moment < finish
    return moment >= begin or moment < finish


def able(account_id: str, pin: Any, senders: Mapping[int, Sender]) -> list[Sender]:
    """The SIMs (``senders`` by id) that could take a message of this account now: the one it
    pins, if that is a SIM of the account's, else any of the account's."""
    pinned = senders.get(pin) if isinstance(pin, int) else None
    candidates: Iterable[Sender]
    if pinned is not None and pinned.account_id == account_id:
        candidates = [pinned]
    else:  # no pin, or not a SIM of the account's: routing chooses
        candidates = (s for s in senders.values() if s.account_id == account_id)
    return [s for s in candidates if s.usable and s.has_room()]


def choose(messages: Sequence[OutboundMessage], senders: Sequence[Sender]) -> list[SendResult]:
    """One result per message: assigned to a SIM, or to wait."""
    by_id = {sender.id: sender for sender in senders}
    results = []
    for message in messages:
        pin = (message.extra or {}).get("sim_card_id")
        able_now = able(message.account_id, pin, by_id)
        if not able_now:
            reason = "all senders busy: queued until a SIM can take it"
            results.append(SendResult.wait(message.id, reason, _WAIT))
            continue
        # A phone with its stream open here first: one that went quiet may be gone.
        sender = min(able_now, key=lambda s: (not s.connected, s.in_flight, s.last_minute, s.id))
        sender.take()
        results.append(SendResult.assigned(message.id, sender.device_id, sender.id))
    return results


class DeviceChannel:
    kind: ClassVar[ChannelKind] = ChannelKind.DEVICE
    capabilities = Capabilities(max_batch=500, gives_away=False)

    def __init__(self, db: Database, settings: Settings) -> None:
        self.name = ChannelKind.DEVICE.value
        self.db = db
        self.settings = settings
        # Accounts found with or without phones, and when: asking again on every send cost
        # TextLink's route two thirds of its throughput on SQLite (a transaction per request).
        self._known: dict[str, tuple[float, bool]] = {}

    async def start(self, reporter: ChannelReporter) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def resume(
        self, in_flight: Sequence[InFlight], handed: Sequence[OutboundMessage] = ()
    ) -> list[SendResult]:
        return []  # the phones report by themselves; nothing is ever handed (``gives_away``)

    def healthy(self) -> bool:
        return True

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        accounts = {message.account_id for message in messages}
        return choose(messages, await self.db.run(lambda session: self._senders(session, accounts)))

    async def has_phones(self, account_id: str) -> bool:
        """Whether the account has phones, so that routing gives its messages here: what was
        found is believed for ``_PHONELESS_SECONDS`` either way (asked on every send, it was
        a transaction per request on the send path; the dispatcher always asks afresh)."""
        believed = self._believed(account_id)
        if believed is not None:
            return believed

        async def ask(session: Any) -> bool:
            return bool(await DeviceRepository(session).accounts_with_devices({account_id}))

        found = await self.db.run(ask)
        self._remember(account_id, found)
        return found

    def _believed(self, account_id: str) -> bool | None:
        known = self._known.get(account_id)
        if known is None or monotonic() - known[0] >= _PHONELESS_SECONDS:
            return None
        return known[1]

    def _remember(self, account_id: str, has_phones: bool) -> None:
        if len(self._known) >= _PHONELESS_KEPT:
            self._known.clear()
        self._known[account_id] = (monotonic(), has_phones)

    async def can_take_now(self, account_id: str, sim_card_id: int | None) -> bool | None:
        """Whether a SIM of the account's phones could take a message now (the one it pins,
        if that is the account's), by the rules of ``send``: TextLink's ``queued`` when not.
        None for an account without phones (its messages do not come here)."""

        if self._believed(account_id) is False:
            return None

        async def ask(session: Any) -> bool | None:
            if not await DeviceRepository(session).accounts_with_devices({account_id}):
                self._remember(account_id, False)
                return None
            senders = await self._senders(session, {account_id})
            return bool(able(account_id, sim_card_id, {s.id: s for s in senders}))

        return await self.db.run(ask)

    async def _senders(self, session: Any, accounts: set[str]) -> list[Sender]:
        now = utcnow()
        repository = DeviceRepository(session)
        rows = await repository.senders(accounts)
        load = await repository.sim_load([row.id for row in rows], now)
        return [self._sender(row, load.get(row.id, (0, 0, 0)), now) for row in rows]

    def _sender(self, row: Any, load: tuple[int, int, int], now: datetime) -> Sender:
        usable = (
            row.enabled
            and row.present
            and row.device_enabled
            and online(row.last_seen_at, self.settings, now)
            and within(row.work_start, row.work_end, now)
        )
        return Sender(
            id=row.id,
            account_id=row.account_id,
            device_id=row.device_id,
            usable=usable,
            per_minute=row.per_minute,
            per_day=row.per_day,
            last_minute=load[0],
            last_day=load[1],
            in_flight=load[2],
            connected=hub.connected(row.device_id),
        )
