"""What sends the SMS for an agent, and what a sender tells the agent back.

A backend sends one SMS at a time per SIM (``send``) and answers ``None`` when it went or the
reason it did not. What it learns later comes through ``Events``: a delivery report for a
message it sent (only backends whose ``sent_state`` is ``Sent``; the others know no more than
that it went), and an SMS it received, which the agent posts to the server before the
backend may forget it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Incoming:
    """An SMS the phone received."""

    id: str  # stable across restarts, so a repeat is stored once
    sender: str
    text: str
    received_at: datetime
    sim_number: int = 1
    recipient: str | None = None


@dataclass(slots=True)
class Events:
    """Where a backend reports: ``delivered(message_id, error)`` once per message (``error``
    ``None`` when delivered), and ``received(sms)``, which returns once the server has it."""

    delivered: Callable[[str, str | None], None]
    received: Callable[[Incoming], Awaitable[None]]


class Backend(Protocol):
    sims: int
    #: What a message is once ``send`` succeeded: ``Delivered`` for a sender that knows no
    #: more (the simulated phone), ``Sent`` for one whose reports come later through
    #: ``Events.delivered`` or never (Termux).
    sent_state: Literal["Sent", "Delivered"]

    async def start(self, events: Events) -> None:
        """Open the device; from here on, report through ``events``."""

    async def send(self, message_id: str, phone: str, text: str, sim_number: int) -> str | None:
        """Send one SMS through that SIM; ``None`` when it went, else why it failed."""

    async def replay(self, since: datetime, until: datetime) -> list[Incoming]:
        """The SMS it received in that span that it still has (``MessagesExportRequested``)."""

    async def close(self) -> None: ...


@dataclass
class SimulatedBackend:
    """A phone that takes ``delay`` seconds per SMS and fails ``failure_rate`` of them."""

    sims: int = 2
    delay: float = 0.05
    failure_rate: float = 0.0
    sent_state: Literal["Sent", "Delivered"] = field(default="Delivered", init=False)

    async def start(self, events: Events) -> None:
        pass

    async def send(self, message_id: str, phone: str, text: str, sim_number: int) -> str | None:
        await asyncio.sleep(self.delay)
        if random.random() < self.failure_rate:
            return "RESULT_ERROR_GENERIC_FAILURE"
        return None

    async def replay(self, since: datetime, until: datetime) -> list[Incoming]:
        return []  # it receives nothing

    async def close(self) -> None:
        pass
