"""``textbridge agent``: a device that speaks the SMSGate device protocol, as the Android app
does, for GSM modems, Termux and tests.

It registers once with a pairing token (``POST /device``) and keeps its device id and token in
a state file; then it listens to the server's event stream (``GET /events``) and pulls what it
was given (``GET /message``) when told and every ``poll`` seconds. Each message is reported
taken (``Processed``) before it is sent, then ``Sent`` and ``Delivered`` or ``Failed``, as the
app reports them. Backends: ``simulated`` (a phone with configurable SIMs, send delay and
failure rate); GSM modems and Termux come next.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog

from textbridge.kit.clock import millis_iso, utcnow

log = structlog.get_logger(__name__)

USER_AGENT = "me.capcom.smsgateway/1.55.0 (textbridge-agent)"


class Backend(Protocol):
    sims: int

    async def send(self, phone: str, text: str, sim_number: int) -> str | None:
        """Send one SMS through that SIM; ``None`` when it went, else why it failed."""


@dataclass
class SimulatedBackend:
    """A phone that takes ``delay`` seconds per SMS and fails ``failure_rate`` of them."""

    sims: int = 2
    delay: float = 0.05
    failure_rate: float = 0.0
    sent: int = 0

    async def send(self, phone: str, text: str, sim_number: int) -> str | None:
        await asyncio.sleep(self.delay)
        if random.random() < self.failure_rate:
            return "RESULT_ERROR_GENERIC_FAILURE"
        self.sent += 1
        return None


class Agent:
    def __init__(
        self,
        server: str,
        token: str,
        backend: Backend,
        *,
        name: str = "textbridge-agent",
        state: Path | None = None,
        poll: float = 60.0,
        verify: bool | str = True,
        journal: Path | None = None,
    ) -> None:
        self.base = server.rstrip("/") + "/api/mobile/v1"
        self.token = token
        self.backend = backend
        self.name = name
        self.state = state
        self.poll = poll
        self.verify = verify
        self.device_id: str | None = None
        self.device_token: str | None = None
        self.wake = asyncio.Event()
        self.handled: set[str] = set()  # ids taken by this run: never sent twice
        self.journal = journal  # a line per SMS sent and per report the server took

    async def run(self) -> None:
        async with httpx.AsyncClient(
            headers={"user-agent": USER_AGENT}, timeout=30, verify=self.verify
        ) as http:
            await self.register(http)
            listener = asyncio.create_task(self.listen(http))
            try:
                while True:
                    try:
                        await self.pull_once(http)
                    except httpx.HTTPError as exc:
                        log.warning("pull failed", error=str(exc))
                    self.wake.clear()
                    try:
                        async with asyncio.timeout(self.poll):
                            await self.wake.wait()
                    except TimeoutError:
                        pass
            finally:
                listener.cancel()

    async def register(self, http: httpx.AsyncClient) -> None:
        """The device kept in the state file, or a new one registered with the token."""
        if self.state is not None and self.state.exists():
            saved = json.loads(self.state.read_text())
            self.device_id, self.device_token = saved["id"], saved["token"]
            return
        sims = [
            {"slotIndex": n - 1, "simNumber": n, "phoneNumber": None, "carrierName": None,
             "iccid": None}
            for n in range(1, self.backend.sims + 1)
        ]  # fmt: skip
        answer = await http.post(
            f"{self.base}/device",
            json={"name": self.name, "pushToken": None, "simCards": sims},
            headers={"authorization": f"Bearer {self.token}"},
        )
        answer.raise_for_status()
        body = answer.json()
        self.device_id, self.device_token = body["id"], body["token"]
        if self.state is not None:
            self.state.write_text(json.dumps({"id": body["id"], "token": body["token"]}))
            self.state.chmod(0o600)
        log.info("registered", device_id=self.device_id, login=body["login"])

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.device_token}"}

    async def listen(self, http: httpx.AsyncClient) -> None:
        """The event stream; reconnects after 5 s, backing off to 60 s, as the app does."""
        delay = 5.0
        while True:
            try:
                async with http.stream(
                    "GET", f"{self.base}/events", headers=self._auth(), timeout=None
                ) as stream:
                    stream.raise_for_status()
                    delay = 5.0
                    self.wake.set()  # pull right after connecting
                    async for line in stream.aiter_lines():
                        if line.startswith("event: MessageEnqueued"):
                            self.wake.set()
            except httpx.HTTPError as exc:
                log.info("event stream lost; reconnecting", error=str(exc), seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def pull_once(self, http: httpx.AsyncClient) -> int:
        answer = await http.get(f"{self.base}/message", headers=self._auth())
        answer.raise_for_status()
        given = [m for m in answer.json() if m["id"] not in self.handled]
        if not given:
            return 0
        self.handled.update(m["id"] for m in given)
        await self.report(http, [(m["id"], m["phoneNumbers"], "Processed", None) for m in given])
        by_sim: dict[int, list[dict[str, Any]]] = {}
        for message in given:
            by_sim.setdefault(message.get("simNumber") or 1, []).append(message)
        await asyncio.gather(*(self._send_all(http, sim, batch) for sim, batch in by_sim.items()))
        return len(given)

    async def _send_all(
        self, http: httpx.AsyncClient, sim: int, batch: Sequence[dict[str, Any]]
    ) -> None:
        """One SIM sends one SMS at a time."""
        for message in batch:
            text = (message.get("textMessage") or {}).get("text") or message.get("message", "")
            errors = [await self.backend.send(p, text, sim) for p in message["phoneNumbers"]]
            self._write(message["id"], "sent", sim)
            error = next((e for e in errors if e), None)
            state = "Failed" if error else "Delivered"
            await self.report(http, [(message["id"], message["phoneNumbers"], state, error)])
            self._write(message["id"], "reported", sim)

    def _write(self, message_id: str, event: str, sim: int) -> None:
        if self.journal is not None:
            line = json.dumps(
                {"id": message_id, "event": event, "sim": sim, "at": millis_iso(utcnow())}
            )
            with self.journal.open("a") as journal:
                journal.write(line + "\n")

    async def report(
        self,
        http: httpx.AsyncClient,
        states: Sequence[tuple[str, Sequence[str], str, str | None]],
    ) -> None:
        """``PATCH /message``, retried like the app (up to 10 times, with backoff)."""
        now = millis_iso(utcnow())
        body = [
            {
                "id": message_id,
                "state": state,
                "recipients": [{"phoneNumber": p, "state": state, "error": error} for p in phones],
                "states": {"Sent": now, state: now} if state != "Processed" else {state: now},
            }
            for message_id, phones, state, error in states
        ]
        for attempt in range(10):
            try:
                answer = await http.patch(f"{self.base}/message", json=body, headers=self._auth())
                answer.raise_for_status()
                return
            except httpx.HTTPError as exc:
                log.warning("report failed; again", error=str(exc), attempt=attempt + 1)
                await asyncio.sleep(min(2**attempt, 30))
