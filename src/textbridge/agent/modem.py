"""A GSM modem on a serial port, driven with AT commands (3GPP TS 27.005), as an agent's
sender.

PDU mode (the default) sends what the server would bill: the text split by
``kit.encoding.segment`` into concatenated parts (GSM-7 or UCS-2), each with a status report
requested. Text mode is for modems without PDU support: the character set is UCS-2 so any
text goes, and a long text leaves as separate SMS (text mode has no concatenation header).

New SMS are announced (``+CMTI``) and stay on the SIM until the server has them; then they
are deleted. So an SMS that arrives while the server or the agent is down is posted on the
next start (``AT+CMGL``). Status reports come directly (``+CDS``) and are matched to their
part by the reference ``+CMGS`` answered; a message is delivered once all its parts are.

The AT dialogue is written here: the Python GSM libraries are thread-based and unmaintained,
and an asyncio driver for this short list of commands is smaller than adapting one.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import itertools
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import serial_asyncio_fast
import structlog

from textbridge.agent.backend import Events, Incoming
from textbridge.kit import pdu
from textbridge.kit.encoding import Encoding, segment

log = structlog.get_logger(__name__)

_FINAL = ("OK", "ERROR", "+CME ERROR", "+CMS ERROR", "NO CARRIER")
_CTRL_Z = "\x1a"
_PDU_ALL, _TEXT_ALL = "4", '"ALL"'
_AWAITED = 5000  # messages (and parts) whose status reports are awaited, at most


class ModemError(Exception):
    """The modem answered an error, or nothing in time."""


@dataclass(frozen=True, slots=True)
class _Stored:
    """An SMS on the SIM, one part of a message."""

    index: int
    sender: str
    text: str
    timestamp: datetime
    concat: pdu.Concat | None = None


@dataclass(slots=True)
class _Outgoing:
    """A sent message whose status reports are awaited."""

    parts: int
    error: str | None = None


@dataclass
class ModemBackend:
    port: str
    baudrate: int = 115200
    mode: Literal["pdu", "text"] = "pdu"
    pin: str | None = None
    timeout: float = 30.0  # seconds an answer may take (+CMGS waits for the network)
    sims: int = field(default=1, init=False)
    sent_state: Literal["Sent", "Delivered"] = field(default="Sent", init=False)

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()
        self._lines: list[str] = []
        self._done: asyncio.Future[list[str]] | None = None
        self._prompt = asyncio.Event()
        self._echo = ""
        self._unsolicited: str | None = None  # "+CDS"/"+CMT": the next line is its PDU
        self._events: Events | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outgoing: dict[str, _Outgoing] = {}
        self._references: dict[tuple[int, str], str] = {}  # (+CMGS reference, number) → id
        self._parts: dict[tuple[str, int, int], dict[int, _Stored]] = {}
        self._reading: set[int] = set()  # storage indexes being read or posted
        self._concat = itertools.count(1)

    # Opening -------------------------------------------------------------------------------

    async def start(self, events: Events) -> None:
        self._events = events
        reader, self._writer = await serial_asyncio_fast.open_serial_connection(
            url=self.port, baudrate=self.baudrate
        )
        self._reader_task = asyncio.create_task(self._read(reader))
        for attempt in range(5):  # a modem just powered may not answer the first AT
            try:
                await self.command("AT", seconds=2)
                break
            except ModemError:
                if attempt == 4:
                    raise
        await self.command("ATE0")
        await self.command("AT+CMEE=1")
        await self._unlock()
        await self.command(f"AT+CMGF={0 if self.mode == 'pdu' else 1}")
        if self.mode == "text":
            await self.command('AT+CSCS="UCS2"')
        await self.command("AT+CNMI=2,1,0,1,0")  # new SMS: stored and announced; reports: direct
        listed = await self.command(f"AT+CMGL={_PDU_ALL if self.mode == 'pdu' else _TEXT_ALL}")
        for stored in self._listed(listed, "+CMGL:"):
            self._arrived(stored)
        log.info("modem ready", port=self.port, mode=self.mode)

    async def _unlock(self) -> None:
        state = " ".join(await self.command("AT+CPIN?"))
        if "READY" in state:
            return
        if "SIM PIN" in state and self.pin:
            await self.command(f'AT+CPIN="{self.pin}"')
            return
        raise ModemError(f"the SIM is not ready ({state.strip()}); give its PIN with --modem-pin")

    async def replay(self, since: datetime, until: datetime) -> list[Incoming]:
        """Nothing: an SMS leaves the SIM once the server has it, and what is still there is
        being posted anyway."""
        return []

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._reader_task] if self._reader_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()

    # Sending -------------------------------------------------------------------------------

    async def send(self, message_id: str, phone: str, text: str, sim_number: int) -> str | None:
        try:
            if self.mode == "pdu":
                references = await self._send_pdu(phone, text)
            else:
                references = await self._send_text(phone, text)
        except (ModemError, ValueError) as exc:
            return str(exc)[:255]
        self._outgoing[message_id] = _Outgoing(parts=len(references))
        for reference in references:
            self._references[(reference, _digits(phone))] = message_id
        # Reports that never came (a network without them): stop waiting, oldest first.
        _forget_oldest(self._outgoing)
        _forget_oldest(self._references)
        return None

    async def _send_pdu(self, phone: str, text: str) -> list[int]:
        parts = pdu.encode_submit(phone, text, concat_ref=next(self._concat) % 256)
        return [
            _reference(await self.command(f"AT+CMGS={part.tpdu_length}", payload=part.hex))
            for part in parts
        ]

    async def _send_text(self, phone: str, text: str) -> list[int]:
        cut = segment(text)
        dcs = 0 if cut.encoding is Encoding.GSM7 else 8
        await self.command(f"AT+CSMP=49,167,0,{dcs}")  # status report wanted; its alphabet
        return [
            _reference(await self.command(f'AT+CMGS="{_ucs2(phone)}"', payload=_ucs2(part)))
            for part in cut.parts
        ]

    # The AT dialogue -----------------------------------------------------------------------

    async def command(
        self, line: str, *, payload: str | None = None, seconds: float | None = None
    ) -> list[str]:
        """Send ``line`` (and, after the ``>`` prompt, ``payload``); the answer's lines before
        ``OK``. An error answer or none in time raises ``ModemError``."""
        assert self._writer is not None, "start() first"
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._lines, self._done, self._echo = [], loop.create_future(), line
            self._prompt.clear()
            self._writer.write(line.encode() + b"\r")
            try:
                async with asyncio.timeout(seconds or self.timeout):
                    if payload is not None:
                        prompt = asyncio.ensure_future(self._prompt.wait())
                        await asyncio.wait(
                            (prompt, self._done), return_when=asyncio.FIRST_COMPLETED
                        )
                        prompt.cancel()
                        if not self._done.done():
                            self._writer.write(payload.encode() + _CTRL_Z.encode())
                    lines = await self._done
            except TimeoutError:
                raise ModemError(f"no answer to {line.split('=')[0]}") from None
            finally:
                self._done = None
        if lines[-1] != "OK":
            raise ModemError(f"{line.split('=')[0]}: {lines[-1]}")
        return lines[:-1]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                log.warning("modem closed the line", port=self.port)
                return
            buffer += chunk
            *lines, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                if raw.startswith(b">"):  # the prompt, with a result code right behind it
                    self._prompt.set()
                    raw = raw[1:]
                if raw.strip():
                    self._line(raw.decode("latin-1").strip())
            if buffer.strip() == b">" or buffer.startswith(b"> "):
                buffer = b""
                self._prompt.set()

    def _line(self, line: str) -> None:
        if self._unsolicited is not None:
            kind, self._unsolicited = self._unsolicited, None
            self._unsolicited_pdu(kind, line)
        elif line.startswith("+CMTI:"):  # +CMTI: "SM",3
            self._spawn(self._read_stored(int(line.rsplit(",", 1)[1])))
        elif line.startswith(("+CDS:", "+CMT:")):
            if self.mode == "pdu":
                self._unsolicited = line[:4]
            elif line.startswith("+CDS:"):
                self._text_report(line)
        elif self._done is not None and not self._done.done():
            if line == self._echo:
                return  # the modem echoes until ATE0
            self._lines.append(line)
            if line.startswith(_FINAL):
                self._done.set_result(self._lines)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Reports -------------------------------------------------------------------------------

    def _unsolicited_pdu(self, kind: str, hex_pdu: str) -> None:
        try:
            decoded = pdu.decode(hex_pdu)
        except ValueError as exc:
            log.warning("unreadable PDU from the modem", kind=kind, error=str(exc))
            return
        if isinstance(decoded, pdu.StatusReport):
            self._report(decoded.reference, decoded.recipient, decoded.status)
        elif isinstance(decoded, pdu.Deliver):  # routed directly (+CMT), never stored
            sender, text, at = decoded.sender, decoded.text, decoded.timestamp
            self._arrived(_Stored(-1, sender, text, at, decoded.concat))

    def _text_report(self, line: str) -> None:
        # +CDS: <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>
        fields = next(csv.reader([line.split(":", 1)[1].strip()]))
        try:
            self._report(int(fields[1]), _from_ucs2(fields[2]), int(fields[-1]))
        except (IndexError, ValueError):
            log.warning("unreadable status report", line=line)

    def _report(self, reference: int, recipient: str, status: int) -> None:
        if 0x20 <= status < 0x40:
            return  # the network is still trying
        message_id = self._references.pop((reference, _digits(recipient)), None)
        outgoing = self._outgoing.get(message_id) if message_id else None
        if message_id is None or outgoing is None or self._events is None:
            return
        if status >= 0x40:
            outgoing.error = outgoing.error or f"status report 0x{status:02X}"
        outgoing.parts -= 1
        if outgoing.parts == 0:
            del self._outgoing[message_id]
            self._events.delivered(message_id, outgoing.error)

    # Receiving -----------------------------------------------------------------------------

    async def _read_stored(self, index: int) -> None:
        if index in self._reading:
            return
        for stored in self._listed(await self.command(f"AT+CMGR={index}"), "+CMGR:", index):
            self._arrived(stored)

    def _listed(self, lines: Sequence[str], prefix: str, index: int | None = None) -> list[_Stored]:
        """``+CMGL`` answers (a header line starting with the index, then the SMS) or one
        ``+CMGR`` answer (the same without the index, given here)."""
        found = []
        for header, body in zip(lines[::2], lines[1::2], strict=False):
            if not header.startswith(prefix):
                continue
            fields = next(csv.reader([header.split(":", 1)[1].strip()]))
            if index is not None:
                fields = [str(index), *fields]
            try:
                found.append(self._parse(int(fields[0]), fields, body))
            except (ValueError, IndexError) as exc:
                log.warning("unreadable SMS on the SIM; left there", line=header, error=str(exc))
        return found

    def _parse(self, index: int, fields: Sequence[str], body: str) -> _Stored:
        if self.mode == "pdu":
            decoded = pdu.decode(body)
            if not isinstance(decoded, pdu.Deliver):
                raise ValueError(f"not an incoming SMS: {type(decoded).__name__}")
            return _Stored(index, decoded.sender, decoded.text, decoded.timestamp, decoded.concat)
        # Text mode: <index>,<stat>,<oa>,[<alpha>],<scts> and the text, both in UCS-2 hex.
        return _Stored(index, _from_ucs2(fields[2]), _from_ucs2(body), _scts(fields[4]))

    def _arrived(self, stored: _Stored) -> None:
        if stored.index in self._reading:
            return
        if stored.index >= 0:
            self._reading.add(stored.index)
        if stored.concat is None or stored.concat.total == 1:
            self._spawn(self._post([stored]))
            return
        key = (stored.sender, stored.concat.reference, stored.concat.total)
        parts = self._parts.setdefault(key, {})
        parts[stored.concat.sequence] = stored
        if len(parts) == stored.concat.total:
            del self._parts[key]
            self._spawn(self._post([parts[n] for n in sorted(parts)]))

    async def _post(self, parts: Sequence[_Stored]) -> None:
        """The whole SMS to the server; then, and only then, off the SIM."""
        assert self._events is not None
        first, text = parts[0], "".join(part.text for part in parts)
        digest = hashlib.sha256(f"{first.sender}|{first.timestamp.isoformat()}|{text}".encode())
        await self._events.received(
            Incoming(
                id=f"modem-{digest.hexdigest()[:24]}",
                sender=first.sender,
                text=text,
                received_at=first.timestamp.astimezone(UTC),
            )
        )
        for part in parts:
            if part.index >= 0:
                await self.command(f"AT+CMGD={part.index}")
                self._reading.discard(part.index)


def _forget_oldest(waiting: dict[Any, Any]) -> None:
    while len(waiting) > _AWAITED:
        del waiting[next(iter(waiting))]


def _reference(lines: Sequence[str]) -> int:
    """The message reference in ``+CMGS: <mr>``."""
    for line in lines:
        if line.startswith("+CMGS:"):
            return int(line.split(":", 1)[1].split(",")[0])
    raise ModemError("no +CMGS reference in the answer")


def _digits(number: str) -> str:
    return number.lstrip("+")


def _ucs2(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def _from_ucs2(value: str) -> str:
    """A UCS-2 hex field; a modem that ignored ``AT+CSCS`` sends plain text."""
    try:
        return bytes.fromhex(value).decode("utf-16-be") if len(value) % 4 == 0 else value
    except ValueError:
        return value


def _scts(value: str) -> datetime:
    """``yy/MM/dd,hh:mm:ss±zz`` (zone in quarter hours), as text mode gives it."""
    stamp, sign, quarters = value[:17], value[17:18], int(value[18:] or 0)
    offset = quarters * 15 * (-1 if sign == "-" else 1)
    moment = datetime.strptime(stamp, "%y/%m/%d,%H:%M:%S")
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
