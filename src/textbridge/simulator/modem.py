"""A simulated GSM modem on a pseudo-terminal: what ``textbridge agent --backend modem`` is
tested against, byte for byte as a serial modem answers (3GPP TS 27.005).

It keeps what was sent (``sent``, decoded), answers each part with a status report after
``report_delay`` seconds (a failure, ``0x41``, for numbers starting with ``fail_prefix``),
and stores SMS given to ``receive`` on its SIM and announces them (``+CMTI``) as a modem
does. PDU and text mode (with the ``GSM`` or ``UCS2`` character set); it echoes commands until
``ATE0``; a SIM PIN can be required.
"""

from __future__ import annotations

import contextlib
import csv
import os
import select
import threading
import tty
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from textbridge.kit import pdu


@dataclass(frozen=True, slots=True)
class SentSms:
    number: str
    text: str
    concat: pdu.Concat | None
    status_report: bool
    reference: int


class ModemSimulator:
    def __init__(
        self, *, report_delay: float = 0.05, fail_prefix: str | None = None, pin: str | None = None
    ) -> None:
        self.report_delay = report_delay
        self.fail_prefix = fail_prefix
        self.pin = pin
        self.sent: list[SentSms] = []
        self.commands: list[str] = []
        self.storage: dict[int, str] = {}  # index → SMS-DELIVER PDU
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._echo, self._text_mode, self._charset = True, False, "GSM"
        self._dcs, self._locked = 0, pin is not None
        self._reference = 0
        self._prompt: str | None = None  # the AT+CMGS line waiting for its payload
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="modem-simulator", daemon=True)
        self._timers: list[threading.Timer] = []

    def start(self) -> ModemSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # What the test does --------------------------------------------------------------------

    def receive(self, sender: str, text: str, at: datetime | None = None) -> list[int]:
        """An SMS from ``sender`` arrives: stored on the SIM (in parts when long), announced."""
        indexes = []
        for hex_pdu in pdu.encode_deliver(sender, text, at or datetime.now(UTC), concat_ref=7):
            index = next(i for i in range(1, 1000) if i not in self.storage)
            self.storage[index] = hex_pdu
            indexes.append(index)
            self._send(f'+CMTI: "SM",{index}')
        return indexes

    # The line ------------------------------------------------------------------------------

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            buffer += chunk
            while True:
                if self._prompt is not None:
                    end = buffer.find(b"\x1a")
                    if end < 0:
                        break
                    payload, buffer = buffer[:end].decode("latin-1"), buffer[end + 1 :]
                    self._payload(payload.strip())
                    continue
                end = buffer.find(b"\r")
                if end < 0:
                    break
                line, buffer = buffer[:end].decode("latin-1").strip(), buffer[end + 1 :]
                if line:
                    if self._echo:
                        self._write(line + "\r")
                    self.commands.append(line)
                    self._command(line)

    def _write(self, data: str) -> None:
        with self._write_lock, contextlib.suppress(OSError):
            os.write(self._master, data.encode("latin-1"))

    def _send(self, *lines: str) -> None:
        self._write("".join(f"\r\n{line}\r\n" for line in lines))

    def _command(self, line: str) -> None:
        upper = line.upper()
        name, _, argument = upper.partition("=")
        if upper in ("AT", "ATZ") or name in ("AT+CMEE", "AT+CNMI", "AT+CSMS"):
            self._send("OK")
        elif upper in ("ATE0", "ATE1"):
            self._echo = upper == "ATE1"
            self._send("OK")
        elif upper == "AT+CPIN?":
            self._send("+CPIN: SIM PIN" if self._locked else "+CPIN: READY", "OK")
        elif name == "AT+CPIN":
            self._locked = self._locked and line.split("=", 1)[1].strip('"') != self.pin
            self._send("+CME ERROR: 16" if self._locked else "OK")
        elif self._locked:
            self._send("+CME ERROR: 11")  # SIM PIN required
        elif name == "AT+CMGF":
            self._text_mode = argument == "1"
            self._send("OK")
        elif name == "AT+CSCS":
            self._charset = line.split("=", 1)[1].strip('"').upper()
            self._send("OK")
        elif name == "AT+CSMP":
            self._dcs = int(argument.split(",")[3])
            self._send("OK")
        elif name == "AT+CMGS":
            self._prompt = line.split("=", 1)[1]
            self._write("\r\n> ")
        elif name == "AT+CMGL":
            self._list()
        elif name == "AT+CMGR":
            self._read(int(argument))
        elif name == "AT+CMGD":
            self.storage.pop(int(argument.split(",")[0]), None)
            self._send("OK")
        else:
            self._send("+CME ERROR: 4" if "+" in upper else "ERROR")  # operation not supported

    # Sending -------------------------------------------------------------------------------

    def _payload(self, payload: str) -> None:
        argument, self._prompt = self._prompt or "", None
        try:
            if self._text_mode:
                number = self._decode_text(next(csv.reader([argument]))[0])
                sms = SentSms(number, self._decode_text(payload), None, True, self._next())
            else:
                submit = pdu.decode("00" + payload if _has_no_smsc(payload, argument) else payload)
                if not isinstance(submit, pdu.Submit):
                    raise ValueError("not an SMS-SUBMIT")
                sms = SentSms(
                    submit.number, submit.text, submit.concat, submit.status_report, self._next()
                )
        except (ValueError, IndexError):
            self._send("+CMS ERROR: 304")  # invalid PDU mode parameter
            return
        self.sent.append(sms)
        self._send(f"+CMGS: {sms.reference}", "OK")
        if sms.status_report:
            timer = threading.Timer(self.report_delay, self._report, (sms,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def _next(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    def _report(self, sms: SentSms) -> None:
        failed = self.fail_prefix is not None and sms.number.lstrip("+").startswith(
            self.fail_prefix.lstrip("+")
        )
        status = 0x41 if failed else 0x00
        now = datetime.now(UTC)
        if self._text_mode:
            stamp = f"{now:%y/%m/%d,%H:%M:%S}+00"
            number = self._encode_text(sms.number)
            self._send(f'+CDS: 6,{sms.reference},"{number}",145,"{stamp}","{stamp}",{status}')
            return
        report = pdu.encode_status_report(sms.reference, sms.number, status, now)
        self._write(f"\r\n+CDS: {len(report) // 2 - 1}\r\n{report}\r\n")

    # Storage -------------------------------------------------------------------------------

    def _list(self) -> None:
        lines = []
        for index in sorted(self.storage):
            lines.extend(self._entry(index, listed=True))
        self._send(*lines, "OK")

    def _read(self, index: int) -> None:
        if index not in self.storage:
            self._send("OK")
            return
        self._send(*self._entry(index, listed=False), "OK")

    def _entry(self, index: int, *, listed: bool) -> list[str]:
        hex_pdu = self.storage[index]
        head = f"+CMGL: {index}," if listed else "+CMGR: "
        if not self._text_mode:
            return [f"{head}0,,{len(hex_pdu) // 2 - 1}", hex_pdu]
        sms = pdu.decode(hex_pdu)
        assert isinstance(sms, pdu.Deliver)
        zone = int((sms.timestamp.utcoffset() or timedelta(0)).total_seconds() // 900)
        stamp = f"{sms.timestamp:%y/%m/%d,%H:%M:%S}{zone:+03d}"
        sender = self._encode_text(sms.sender)
        return [f'{head}"REC UNREAD","{sender}",,"{stamp}"', self._encode_text(sms.text)]

    def _encode_text(self, text: str) -> str:
        return text.encode("utf-16-be").hex().upper() if self._charset == "UCS2" else text

    def _decode_text(self, value: str) -> str:
        return bytes.fromhex(value).decode("utf-16-be") if self._charset == "UCS2" else value


def _has_no_smsc(payload: str, length: str) -> bool:
    """``AT+CMGS=<n>`` counts the octets after the SMSC field; a payload of exactly that
    many octets came without one."""
    return len(payload) // 2 == int(length)
