"""The agent's protocol side: what the Android app does against a private server.

It registers once with a pairing token (``POST /device``) and keeps its device id and token in
a state file; it reads its signing key (``GET /settings``) and where to post events
(``GET /webhooks``); then it listens to the server's event stream (``GET /events``) and pulls
what it was given (``GET /message``) when told and every ``poll`` seconds. Each message is
reported taken (``Processed``) and goes to its SIM's outbox; each SIM sends one SMS at a time
while the agent goes on pulling, as the app's worker does. Once sent, a message is reported
as the backend knows it: ``Delivered`` or ``Failed`` at once, or ``Sent`` and later what its
delivery report said. A message the server asks back (``Cancelling``) before it was sent is
reported ``Cancelled``. An SMS the backend received is posted, signed, to the server's
``sms:received`` URL until it is taken.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import structlog

from textbridge.agent.backend import Backend, Events, Incoming
from textbridge.kit.clock import as_utc, millis_iso, utcnow
from textbridge.kit.secrets import sign_phone_event

log = structlog.get_logger(__name__)

USER_AGENT = "me.capcom.smsgateway/1.55.0 (textbridge-agent)"
_RELOAD = ("SettingsUpdated", "WebhooksUpdated")


class Report(NamedTuple):
    message_id: str
    phones: Sequence[str]
    state: str
    error: str | None = None
    went: bool = False  # a failure after the SMS left (its delivery report): it was sent


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
        verify: bool | ssl.SSLContext = True,
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
        self.signing_key: str | None = None
        self.hook_url: str | None = None  # where received SMS go
        self.wake = asyncio.Event()
        self.handled: set[str] = set()  # ids taken by this run: never sent twice
        self.last_state: dict[str, Report] = {}  # what became of each: said again if asked
        self.awaiting: dict[str, Sequence[str]] = {}  # sent, their delivery report to come
        self.journal = journal  # a line per SMS sent and per report the server took
        self._tasks: set[asyncio.Task[None]] = set()
        self._outboxes: dict[int, asyncio.Queue[dict[str, Any]]] = {}  # taken, per SIM
        self._unsent: set[str] = set()  # in an outbox: a cancel still stops them
        self._senders: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None

    async def run(self) -> None:
        async with httpx.AsyncClient(
            headers={"user-agent": USER_AGENT}, timeout=30, verify=self.verify
        ) as http:
            self._http = http
            await self.register(http)
            await self.reload(http)
            await self.backend.start(Events(delivered=self._delivered, received=self.post_received))
            listener = asyncio.create_task(self.listen(http))
            try:
                while True:
                    self.wake.clear()  # before the pull: news during it pulls again
                    try:
                        if await self.pull_once(http):
                            continue  # more may wait: a pull gives at most 100
                    except httpx.HTTPError as exc:
                        log.warning("pull failed", error=str(exc))
                    try:
                        async with asyncio.timeout(self.poll):
                            await self.wake.wait()
                    except TimeoutError:
                        pass
            finally:
                listener.cancel()
                for sender in self._senders:
                    sender.cancel()
                await self.backend.close()

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

    async def reload(self, http: httpx.AsyncClient) -> None:
        """The signing key for our events and the URL received SMS go to, as the app reads
        them at start and on ``SettingsUpdated`` / ``WebhooksUpdated``."""
        settings = await http.get(f"{self.base}/settings", headers=self._auth())
        settings.raise_for_status()
        self.signing_key = (settings.json().get("webhooks") or {}).get("signing_key")
        hooks = await http.get(f"{self.base}/webhooks", headers=self._auth())
        hooks.raise_for_status()
        self.hook_url = next(
            (hook["url"] for hook in hooks.json() if hook.get("event") == "sms:received"), None
        )

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
                    kind = ""
                    async for line in stream.aiter_lines():
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: "):
                            await self._heard(http, kind, line[6:])
            except httpx.HTTPError as exc:
                log.info("event stream lost; reconnecting", error=str(exc), seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _heard(self, http: httpx.AsyncClient, kind: str, data: str) -> None:
        if kind in ("MessageEnqueued", "MessageCancelled"):
            self.wake.set()
        elif kind in _RELOAD:
            await self.reload(http)
        elif kind == "MessagesExportRequested":
            try:
                span = orjson.loads(data)
                since = as_utc(datetime.fromisoformat(span["since"]))
                until = as_utc(datetime.fromisoformat(span["until"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("unreadable export request", data=data[:200])
                return
            for sms in await self.backend.replay(since, until):
                self._spawn(self.post_received(sms))

    async def pull_once(self, http: httpx.AsyncClient) -> int:
        answer = await http.get(f"{self.base}/message", headers=self._auth())
        answer.raise_for_status()
        said: list[Report] = []
        given: list[dict[str, Any]] = []
        for message in answer.json():
            message_id, asked_back = message["id"], message.get("state") == "Cancelling"
            if asked_back and (message_id not in self.handled or message_id in self._unsent):
                # Asked back before it was sent (still in its SIM's outbox, or new): cancelled.
                self._unsent.discard(message_id)
                said.append(Report(message_id, message["phoneNumbers"], "Cancelled"))
            elif message_id in self.last_state:
                # Given again (its hold lapsed before our report came) or asked back once it
                # was on its way: its state again, as the app does; never the SMS.
                said.append(self.last_state[message_id])
            elif not asked_back and message_id not in self.handled:
                given.append(message)
            self.handled.add(message_id)
        if said:
            await self.report(http, said)
        if not given:
            return 0
        await self.report(http, [Report(m["id"], m["phoneNumbers"], "Processed") for m in given])
        for message in given:
            self._unsent.add(message["id"])
            self._outbox(http, message.get("simNumber") or 1).put_nowait(message)
        return len(given)

    def _outbox(self, http: httpx.AsyncClient, sim: int) -> asyncio.Queue[dict[str, Any]]:
        """The SIM's queue of taken messages, with the task that sends them."""
        outbox = self._outboxes.get(sim)
        if outbox is None:
            outbox = self._outboxes[sim] = asyncio.Queue()
            self._senders.append(asyncio.create_task(self._send_all(http, sim, outbox)))
        return outbox

    async def _send_all(
        self, http: httpx.AsyncClient, sim: int, outbox: asyncio.Queue[dict[str, Any]]
    ) -> None:
        """One SIM sends one SMS at a time, in the order they were taken."""
        while True:
            message = await outbox.get()
            if message["id"] not in self._unsent:
                continue  # cancelled while it waited
            self._unsent.discard(message["id"])
            try:
                await self._send(http, sim, message)
            except Exception:  # a backend's bug: the other messages still go
                log.exception("sending failed", id=message["id"], sim=sim)

    async def _send(self, http: httpx.AsyncClient, sim: int, message: dict[str, Any]) -> None:
        text = (message.get("textMessage") or {}).get("text") or message.get("message", "")
        phones = message["phoneNumbers"]
        if self.backend.sent_state == "Sent":
            self.awaiting[message["id"]] = phones  # its report may beat our own
        errors = [await self.backend.send(message["id"], p, text, sim) for p in phones]
        self._write(message["id"], "sent", sim)
        error = next((e for e in errors if e), None)
        if error:
            self.awaiting.pop(message["id"], None)
        state = "Failed" if error else self.backend.sent_state
        if await self.report(http, [Report(message["id"], phones, state, error)]):
            self._write(message["id"], "reported", sim)

    def _delivered(self, message_id: str, error: str | None) -> None:
        """A delivery report from the backend: reported in the background."""
        phones = self.awaiting.pop(message_id, None)
        if phones is None or self._http is None:
            return  # not ours (an earlier run's): the server keeps it sent
        state = "Failed" if error else "Delivered"
        self._spawn(self.report(self._http, [Report(message_id, phones, state, error, went=True)]))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def post_received(self, sms: Incoming) -> None:
        """``sms:received`` to the server, signed as the app signs it; retried until taken
        (backing off to a minute), so the backend may then forget the SMS."""
        delay = 1.0
        while True:
            try:
                await self._post_event("sms:received", {
                    "messageId": sms.id, "message": sms.text, "sender": sms.sender,
                    "recipient": sms.recipient, "simNumber": sms.sim_number,
                    "receivedAt": millis_iso(sms.received_at),
                })  # fmt: skip
                log.info("received SMS posted", id=sms.id)
                return
            except httpx.HTTPError as exc:
                log.warning("posting a received SMS failed; again", error=str(exc), seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _post_event(self, event: str, payload: dict[str, Any]) -> None:
        if self._http is None or self.hook_url is None or self.signing_key is None:
            raise httpx.TransportError("no event URL or signing key from the server yet")
        body = orjson.dumps(
            {"id": str(uuid.uuid4()), "webhookId": "textbridge-agent", "event": event,
             "deviceId": self.device_id, "payload": payload}
        )  # fmt: skip
        timestamp = str(int(utcnow().timestamp()))
        answer = await self._http.post(
            self.hook_url,
            content=body,
            headers={
                "content-type": "application/json",
                "x-timestamp": timestamp,
                "x-signature": sign_phone_event(self.signing_key, body, timestamp),
            },
        )
        answer.raise_for_status()

    def _write(self, message_id: str, event: str, sim: int) -> None:
        if self.journal is not None:
            line = json.dumps(
                {"id": message_id, "event": event, "sim": sim, "at": millis_iso(utcnow())}
            )
            with self.journal.open("a") as journal:
                journal.write(line + "\n")

    async def report(self, http: httpx.AsyncClient, states: Sequence[Report]) -> bool:
        """``PATCH /message``, retried like the app (up to 10 times, with backoff); whether
        the server took it."""
        self.last_state.update((r.message_id, r) for r in states)
        now = millis_iso(utcnow())
        body = [
            {
                "id": r.message_id,
                "state": r.state,
                "recipients": [
                    {"phoneNumber": p, "state": r.state, "error": r.error} for p in r.phones
                ],
                "states": {"Sent": now, r.state: now}
                if r.state in ("Sent", "Delivered") or r.went
                else {r.state: now},
            }
            for r in states
        ]
        for attempt in range(10):
            try:
                answer = await http.patch(f"{self.base}/message", json=body, headers=self._auth())
                answer.raise_for_status()
                return True
            except httpx.HTTPError as exc:
                log.warning("report failed; again", error=str(exc), attempt=attempt + 1)
                await asyncio.sleep(min(2**attempt, 30))
        return False
